"""The Zalo channel (Zalo Bot Platform): events in, plain text with numbered choices out.

Zalo's Bot API is modelled on Telegram's (`POST {base}/bot{token}/{method}` with JSON; answers
`{"ok": true, "result": ...}` or `{"ok": false, "error_code": ..., "description": ...}`), but it
has no buttons, no update ids, and hands out one update per `getUpdates`. What is known of it
comes from secondary sources (shared/context/zalo.md), so the shapes they disagree on are all
accepted: an error with HTTP 200 or with an error status, an update wrapped or flat, one update
or a list.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import time
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx

from bot.channels import Delivery, Pace, Rest, foreign_file_as_text, numbered, render, split_text
from bot.config import SettingsError
from bot.host import Host
from handlers.core import Attachment, Incoming, Option, Reply
from storage.models import OutboxMessage
from storage.outbox import options_of

log = logging.getLogger(__name__)

MESSENGER = "zalo"
TEXT_LIMIT = 2000  # characters per message (the default of ZALO_TEXT_LIMIT)
LONG_POLL_SECONDS = 30
NOTHING_YET = 408  # a long poll that ended without an update: poll again at once
CALL_TIMEOUT = 20.0
DOWNLOAD_TIMEOUT = 30.0  # seconds for a whole photo or voice note
MAX_PAUSE = 30.0  # the longest wait between failed polls
MAX_IN_FLIGHT = 64  # updates being handled at once; the poll waits beyond that
REPLY_ATTEMPTS = 3
LIMIT_WAIT = 60.0  # a limit error that names no wait: the outbox tries again after this
# Zalo's limits are undocumented: an error that names one means "later", never "failed".
LIMIT_WORDS = ("too many", "rate limit", "quota", "flood", "spam")
GONE_WORDS = ("block", "user not found", "deactivat")
FILE_EVENTS = {"message.image.received": ("photo", "photo_url"), "message.voice.received": ("voice", "voice_url")}
UPDATE_KEY_LENGTH = 128  # ProcessedUpdate.update_key
# Group chats are in beta; the bot serves private chats only and says so once per group.
GROUP_NOTICE = unicodedata.normalize(
    "NFC", "Xin chào! Bot chỉ trò chuyện trong tin nhắn riêng. "
           "Anh/chị vui lòng nhắn riêng cho bot để gửi kiến nghị. Xin cảm ơn!")
MAX_GROUPS_TOLD = 10_000
NO_UPLOAD = unicodedata.normalize("NFC", "(Tệp {name} không gửi được qua Zalo: vui lòng dùng Telegram "
                                          "hoặc lệnh kiennghi export.)")


class ZaloError(Exception):
    """The Bot API refused a call: its error code (or the HTTP status) and description."""

    def __init__(self, code: int, description: str, retry_after: float | None = None) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.retry_after = retry_after


def result_of(response: httpx.Response) -> Any:
    """The `result` of a Bot API answer; ZaloError for a refusal, with HTTP 200 or an error status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body if isinstance(body, dict) else {}
    if envelope.get("ok") is False or response.is_error:
        code = envelope.get("error_code")
        if not isinstance(code, int):
            code = int(code) if isinstance(code, str) and code.isdigit() else 0
        if not code and response.is_error:
            code = response.status_code
        description = str(envelope.get("description") or response.reason_phrase or "")[:300]
        parameters = envelope.get("parameters")
        wait = parameters.get("retry_after") if isinstance(parameters, dict) else None
        raise ZaloError(code, description, float(wait) if isinstance(wait, int | float) else None)
    return envelope["result"] if "result" in envelope else body


class ZaloBotAPI:
    """The few Bot API methods the bot calls, over one httpx client (which also fetches files)."""

    def __init__(self, token: str, base_url: str, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._methods = f"{base_url.rstrip('/')}/bot{token}/"
        self.http = httpx.AsyncClient(transport=transport, timeout=CALL_TIMEOUT)

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float | None = None) -> Any:
        """Call a method with a JSON body; its result, or ZaloError (httpx.HTTPError for the network)."""
        response = await self.http.post(self._methods + method, json=params or {},
                                        timeout=timeout if timeout is not None else CALL_TIMEOUT)
        return result_of(response)

    async def close(self) -> None:
        """Close the connections."""
        await self.http.aclose()


def unwrap(body: Any) -> dict[str, Any] | None:
    """The update in a body, flat or wrapped as {"ok": true, "result": {...}}; None if it is none."""
    if isinstance(body, dict) and "event_name" not in body and isinstance(body.get("result"), dict):
        body = body["result"]
    if isinstance(body, dict) and isinstance(body.get("event_name"), str) and isinstance(body.get("message"), dict):
        return body
    return None


def updates_in(result: Any) -> list[dict[str, Any]]:
    """The updates in a getUpdates result: one update, or (by some accounts) a list of them."""
    items = result if isinstance(result, list) else [result]
    return [update for update in map(unwrap, items) if update is not None]


def _ids(update: dict[str, Any]) -> tuple[str, str, str]:
    """(chat id, chat type, sender id) of an update, as strings (Zalo's ids are large numbers)."""
    message = update["message"]
    chat = message.get("chat") if isinstance(message.get("chat"), dict) else {}
    sender = message.get("from") if isinstance(message.get("from"), dict) else {}
    user_id = str(sender.get("id") or "")
    return str(chat.get("id") or user_id), str(chat.get("chat_type") or "PRIVATE").upper(), user_id


def update_key(update: dict[str, Any]) -> str | None:
    """`event_name:message_id`, what makes a redelivered update count once (hashed if too long)."""
    return event_key(update["event_name"], update["message"].get("message_id"))


def event_key(event_name: object, message_id: object) -> str | None:
    """`event_name:message_id` of a Zalo event (either API), hashed if too long; None without an id."""
    if message_id in (None, ""):
        return None
    key = f"{event_name}:{message_id}"
    if len(key) > UPDATE_KEY_LENGTH:
        key = f"{str(event_name)[:40]}:{hashlib.sha256(str(message_id).encode()).hexdigest()}"
    return key


def failed_delivery(exc: Exception, rest: Rest | None = None) -> Delivery:
    """What a Bot API error means for an outbox message (as Telegram's errors do)."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ZaloError):
        words = exc.description.casefold()
        if exc.code == 429 or any(word in words for word in LIMIT_WORDS):
            return Delivery(False, error, retry_after=exc.retry_after or LIMIT_WAIT, rest=rest)
        if exc.code == 403 or any(word in words for word in GONE_WORDS):
            return Delivery(False, error, permanent=True, unreachable=True, rest=rest)
        if exc.code == 400:  # refused as sent (too long, a bad chat or file): sending it again cannot help
            return Delivery(False, error, permanent=True, rest=rest)
    # 401/404 (a token or host the operator must fix), 5xx, timeouts, network: try again later.
    return Delivery(False, error, rest=rest)


def with_choices(pieces: list[str], choices: list[str], limit: int) -> list[str]:
    """Pieces of a text, the numbered choices added to the last one (or after it, when too long)."""
    block = "\n".join(choices)
    if not block:
        return pieces
    pieces = list(pieces)
    if not pieces[-1].strip():
        pieces[-1:] = split_text(block, limit)
    elif len(pieces[-1]) + 1 + len(block) <= limit:
        pieces[-1] += "\n" + block
    else:
        pieces.extend(split_text(block, limit))
    return pieces


class InTurn:
    """Runs each chat's work one piece at a time, in the order it came; chats run concurrently."""

    def __init__(self) -> None:
        self._chains: dict[str, asyncio.Future[None]] = {}

    async def run(self, chat_id: str, work: Callable[[], Awaitable[None]]) -> None:
        """Await `work()` after the chat's earlier work has finished (however it ended)."""
        previous = self._chains.get(chat_id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chains[chat_id] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            await work()
        finally:
            done.set_result(None)
            if self._chains.get(chat_id) is done:
                del self._chains[chat_id]


def text_pieces(text: str, options: list[Option], attachment: Attachment | None,
                limit: int) -> tuple[list[str], list[str]]:
    """(the text and any file line in pieces of at most `limit`, the same with the numbered choices)."""
    body = split_text(render(Reply(text, [], attachment)), limit)
    return body, with_choices(body, numbered(options), limit)


def without_upload(reply: Reply) -> Reply:
    """A reply as Zalo can send it: both of its APIs send files by address only, so a chart or report
    the bot made becomes a line saying where to get it."""
    file = reply.attachment
    if file is None or file.data is None:
        return reply
    return replace(reply, text=f"{reply.text}\n{NO_UPLOAD.format(name=file.name)}", attachment=None)


def local_copy_name(url: str) -> str:
    """The file name of the kept copy of a file sent by its address: found again from the attachment
    that holds the address, so it goes when the attachment goes (deleted data, retention)."""
    return hashlib.sha256(url.encode()).hexdigest() + _suffix(url)


def remove_unlinked_copies(files_dir: Path, linked: set[str], *, older_than: timedelta) -> int:
    """Delete kept copies that no attachment holds any more (and that no dialog in progress may still use)."""
    if not files_dir.is_dir():
        return 0
    names = {local_copy_name(url) for url in linked}
    cutoff = time.time() - older_than.total_seconds()
    removed = 0
    for path in files_dir.iterdir():
        if path.is_file() and path.name not in names and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed += 1
    return removed


async def fetch_file(http: httpx.AsyncClient, url: str, *, files_dir: Path, max_bytes: int, chat_id: str) -> int | None:
    """Fetch a photo or voice note a person sent into `files_dir`, named after its address; its size.

    None when it is too large or cannot be fetched: the message still counts (with the URL), and
    the log says why. The URL is not logged: it opens a person's file."""
    if not url.startswith(("https://", "http://")):
        log.warning("a file from Zalo chat %s has no web address; not kept", chat_id)
        return None
    files_dir.mkdir(parents=True, exist_ok=True)
    partial = files_dir / f".part-{uuid.uuid4().hex}"
    size = 0
    try:
        async with asyncio.timeout(DOWNLOAD_TIMEOUT):
            async with http.stream("GET", url, follow_redirects=True) as response:
                if response.status_code != 200:
                    log.warning("a file from Zalo chat %s could not be fetched (HTTP %s); not kept",
                                chat_id, response.status_code)
                    return None
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > max_bytes:
                    log.warning("a file from Zalo chat %s is larger than ZALO_MAX_FILE_BYTES (%s bytes); "
                                "not kept", chat_id, declared)
                    return None
                with partial.open("wb") as out:
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            log.warning("a file from Zalo chat %s is larger than ZALO_MAX_FILE_BYTES; not kept",
                                        chat_id)
                            return None
                        out.write(chunk)
        os.replace(partial, files_dir / local_copy_name(url))
        return size
    except (httpx.HTTPError, TimeoutError, OSError) as exc:
        log.warning("a file from Zalo chat %s could not be fetched (%s); not kept", chat_id, type(exc).__name__)
        return None
    finally:
        partial.unlink(missing_ok=True)


def _photo_url(attachment: Attachment | None) -> str | None:
    """The URL of a photo Zalo can send (sendPhoto takes a URL, not an uploaded file)."""
    if attachment is not None and attachment.kind == "photo" and attachment.file_id.startswith(("https://", "http://")):
        return attachment.file_id
    return None


class ZaloChannel:
    """Zalo for the core: updates become events; replies become plain text with numbered choices."""

    messenger = MESSENGER
    typed_choices = True

    def __init__(self, api: ZaloBotAPI, host: Host, *, files_dir: Path, max_file_bytes: int,
                 text_limit: int = TEXT_LIMIT) -> None:
        self.api = api
        self.host = host
        self.files_dir = Path(files_dir)
        self.max_file_bytes = max_file_bytes
        self.text_limit = text_limit
        self._turns = InTurn()
        self._groups_told: set[str] = set()
        self._prepared = False

    # ---- incoming ---------------------------------------------------------------------------
    async def receive(self, update: dict[str, Any]) -> None:
        """Handle one update after the earlier ones of its chat (from polling or the webhook)."""
        try:
            await self._turns.run(_ids(update)[0], lambda: self.handle(update))
        except Exception:  # one update's failure must not stop the poll or the next update
            log.exception("error while handling Zalo update %s", update_key(update))

    async def handle(self, update: dict[str, Any]) -> None:
        """Normalise an update, let the core decide, send the replies."""
        chat_id, chat_type, _ = _ids(update)
        if chat_type != "PRIVATE":
            await self._tell_group(chat_id)
            return
        incoming = await self.to_incoming(update)
        if incoming is None:
            return
        outcome = await self.host.handle(incoming)
        await self.send_replies(incoming, outcome.replies)
        await self.host.shown(outcome)

    async def to_incoming(self, update: dict[str, Any]) -> Incoming | None:
        """Turn a private chat's update into an `Incoming` (a photo or voice note is fetched and kept
        first); None for what the bot ignores (another bot, no sender)."""
        message = update["message"]
        chat_id, _, user_id = _ids(update)
        sender = message.get("from") if isinstance(message.get("from"), dict) else {}
        if not chat_id or not user_id or sender.get("is_bot") is True:
            return None
        event = update["event_name"]
        text: str | None = None
        attachment: Attachment | None = None
        if event == "message.text.received":
            text = str(message.get("text") or "")
        elif event in FILE_EVENTS:
            kind, field = FILE_EVENTS[event]
            url = str(message.get(field) or "")
            caption = message.get("caption") or message.get("text")
            text = str(caption) if caption else None
            if url:
                attachment = Attachment(kind, url, await self.keep_file(url, chat_id))
            else:
                log.warning("a %s from Zalo chat %s came without its URL", kind, chat_id)
                attachment = Attachment("other")
        elif event == "message.sticker.received":
            attachment = Attachment("sticker")
        else:  # message.unsupported.received (content withheld by Zalo), and events not known yet
            attachment = Attachment("other")
        return Incoming(messenger=MESSENGER, chat_id=chat_id, user_id=user_id,
                        display_name=str(sender.get("display_name") or ""), language_code=None,
                        text=text, attachment=attachment, update_key=update_key(update))

    async def keep_file(self, url: str, chat_id: str) -> int | None:
        """Fetch a photo or voice note into FILES_DIR under its content's hash; its size in bytes
        (None when it is too large or cannot be fetched; see fetch_file)."""
        return await fetch_file(self.api.http, url, files_dir=self.files_dir, max_bytes=self.max_file_bytes,
                                chat_id=chat_id)

    async def _tell_group(self, chat_id: str) -> None:
        if chat_id in self._groups_told:
            return
        if len(self._groups_told) >= MAX_GROUPS_TOLD:  # memory stays bounded; a group may hear it twice
            self._groups_told.clear()
        self._groups_told.add(chat_id)
        try:
            await self._call_retrying("sendMessage", {"chat_id": chat_id, "text": GROUP_NOTICE})
        except (ZaloError, httpx.HTTPError) as exc:
            log.info("could not tell Zalo group %s that the bot works in private chats: %s", chat_id, exc)

    # ---- outgoing ---------------------------------------------------------------------------
    def pieces(self, text: str, options: list[Option], attachment: Attachment | None) -> tuple[list[str], list[str]]:
        """(the text and any file line in pieces of at most the limit, the same with the numbered choices)."""
        return text_pieces(text, options, attachment, self.text_limit)

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send each reply to the chat the event came from: a photo, then the text with its choices."""
        for reply in (foreign_file_as_text(without_upload(r), self.messenger) for r in replies):
            photo = _photo_url(reply.attachment)
            if photo is not None:
                await self._call_retrying("sendPhoto", {"chat_id": incoming.chat_id, "photo": photo})
            _, pieces = self.pieces(reply.text, reply.options, None if photo else reply.attachment)
            for piece in pieces:
                if piece.strip():
                    # Plain text, never parse_mode: a person's words are shown as written.
                    await self._call_retrying("sendMessage", {"chat_id": incoming.chat_id, "text": piece})

    async def _call_retrying(self, method: str, params: dict[str, Any]) -> Any:
        """A call for a reply, tried again after a passing network error or a limit (the update is
        in the store already; what cannot be shown now is shown by the outbox sender later)."""
        for attempt in range(REPLY_ATTEMPTS):
            try:
                return await self.api.call(method, params)
            except ZaloError as exc:
                delivery = failed_delivery(exc)
                if delivery.retry_after is None or attempt == REPLY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(min(exc.retry_after or 1.0, MAX_PAUSE))
            except httpx.TransportError as exc:
                if attempt == REPLY_ATTEMPTS - 1:
                    raise
                log.warning("reply to Zalo chat %s not sent (%s); trying again", params.get("chat_id"),
                            type(exc).__name__)
                await asyncio.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    async def deliver(self, message: OutboxMessage, pace: Pace | None = None) -> Delivery:
        """Send one outbox message: a photo (by its URL), then the text in pieces of at most the
        limit, the numbered choices with the last; `pace()` is awaited before each call. A failure
        says why, and what is left once part of the message was delivered."""
        attachment = Attachment(message.file_kind, message.file_id) if message.file_id and message.file_kind else None
        photo = _photo_url(attachment)
        options = [Option.of_key(key, label) for key, label in options_of(message)]
        body, pieces = self.pieces(message.text, options, None if photo else attachment)
        photo_left = photo is not None
        done = 0  # pieces delivered
        try:
            if photo is not None:
                if pace is not None:
                    await pace()
                await self.api.call("sendPhoto", {"chat_id": message.chat_id, "photo": photo})
                photo_left = False
            for number, piece in enumerate(pieces, 1):
                if piece.strip():
                    if pace is not None:
                        await pace()
                    await self.api.call("sendMessage", {"chat_id": message.chat_id, "text": piece})
                done = number
        except (ZaloError, httpx.HTTPError) as exc:
            partly = done > 0 or (photo is not None and not photo_left)
            # What is left of the text (its choices are added again from the message's options).
            return failed_delivery(exc, Rest("\n".join(body[done:]), photo_left) if partly else None)
        return Delivery(True)

    def invitation_link(self, payload: str) -> str | None:
        """Zalo bots have no start links: the invited person types `/start <payload>`."""
        return None

    # ---- long polling -------------------------------------------------------------------------
    async def poll(self, stop: asyncio.Event) -> None:
        """Fetch updates until `stop` is set, each handled in its chat's turn (chats concurrently).

        Zalo hands an update over once and has no offset to confirm it with: updates fetched but not
        yet handled when the process is killed are lost (at most MAX_IN_FLIGHT); on SIGINT or
        SIGTERM those under way are finished first."""
        await self.prepare_polling()
        slots = asyncio.Semaphore(MAX_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        pause = 1.0
        try:
            while not stop.is_set():
                try:
                    result = await _unless_stopped(stop, self.api.call(
                        "getUpdates", {"timeout": str(LONG_POLL_SECONDS)}, timeout=LONG_POLL_SECONDS + 10))
                except _Stopped:
                    break
                except ZaloError as exc:
                    if exc.code == NOTHING_YET:
                        continue
                    if exc.code == 401:
                        raise SettingsError(f"Invalid setting ZALO_BOT_TOKEN: Zalo refused it ({exc})") from None
                    log.warning("Zalo getUpdates failed (%s); trying again in %.0f s", exc, pause)
                    await _sleep(stop, pause)
                    pause = min(pause * 2, MAX_PAUSE)
                    continue
                except httpx.ReadTimeout:  # the long poll outlasted our wait: nothing came
                    continue
                except httpx.HTTPError as exc:
                    log.warning("Zalo getUpdates failed (%s); trying again in %.0f s", type(exc).__name__, pause)
                    await _sleep(stop, pause)
                    pause = min(pause * 2, MAX_PAUSE)
                    continue
                pause = 1.0
                for update in updates_in(result):
                    await slots.acquire()
                    task = asyncio.create_task(self.receive(update))
                    task.add_done_callback(lambda _: slots.release())
                    running.add(task)
                    task.add_done_callback(running.discard)
        finally:
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    async def prepare_polling(self) -> None:
        """Check the token (getMe; SettingsError if Zalo refuses it) and remove any webhook: polling
        and a webhook exclude each other. Done once; `poll` does it if nobody did before."""
        if self._prepared:
            return
        self._prepared = True
        try:
            me = await self.api.call("getMe")
            await self.api.call("deleteWebhook")
        except ZaloError as exc:
            if exc.code in (401, 403):
                raise SettingsError(f"Invalid setting ZALO_BOT_TOKEN: Zalo refused it ({exc})") from None
            if exc.code == 404:
                raise SettingsError(f"Invalid setting ZALO_BASE_URL or ZALO_BOT_TOKEN: no bot there ({exc})") from None
            log.warning("Zalo getMe/deleteWebhook failed (%s); polling all the same", exc)
            return
        except httpx.HTTPError as exc:
            log.warning("Zalo is not reachable (%s); polling will try again", type(exc).__name__)
            return
        names = me if isinstance(me, dict) else {}
        log.info("polling Zalo as %s", names.get("account_name") or names.get("display_name") or names.get("id"))

    async def close(self) -> None:
        """Close the connections to Zalo."""
        await self.api.close()


class _Stopped(Exception):
    """Asked to stop while waiting."""


async def _unless_stopped(stop: asyncio.Event, call: Any) -> Any:
    """Await a call, or give it up (cancelled) when `stop` is set first."""
    fetch = asyncio.ensure_future(call)
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    if not fetch.done():
        fetch.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await fetch
        raise _Stopped
    return fetch.result()


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


_SUFFIX = re.compile(r"^\.[a-z0-9]{1,5}$")


def _suffix(url: str) -> str:
    """The file's extension as its URL names it (.jpg, .aac), if it is a plain one."""
    suffix = PurePosixPath(urlsplit(url).path).suffix.lower()
    return suffix if _SUFFIX.match(suffix) else ""

