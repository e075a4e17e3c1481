"""The Zalo Official Account channel (OA API v3): webhook events in, plain text with numbered choices out.

A second Zalo mode beside the Bot Platform (bot/channels/zalo.py), as the messenger "zalo_oa": the
same person on both is two accounts. What is known of the OA API comes from secondary sources
(shared/context/zalo.md), so hosts and limits are settings and errors are read by code and by words:

- send: `POST {base}/v3.0/oa/message/cs`, header `access_token`, JSON
  `{"recipient": {"user_id": ...}, "message": {"text": ...}}`; success is HTTP 200 and `"error": 0`,
  and most errors come with HTTP 200 too (-216: the access token expired).
- tokens: the access token lasts about 25 h, the refresh token about 3 months and works ONCE; the
  pair is kept in the store (storage/zalo_oa.py) and renewed before the access token expires.
- window: the OA may write to a person only for a while after they last wrote (48 h or 7 days,
  sources disagree: ZALO_OA_WINDOW_HOURS). Later messages wait, and go out when the person writes.
- events come by webhook only (bot/webhooks.py): `user_send_text`, `user_send_image`, ...
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
from sqlalchemy.engine import Engine

from bot.channels import Delivery, Pace, Rest, foreign_file_as_text
from bot.channels.zalo import LIMIT_WORDS, InTurn, event_key, fetch_file, text_pieces, without_upload
from bot.host import Host
from handlers.core import Attachment, Incoming, Option, Reply
from storage.db import new_session
from storage.models import OutboxMessage, ZaloOAToken, utcnow
from storage.outbox import last_wrote, note_wrote, options_of
from storage.zalo_oa import claim_renewal, end_renewal, store_renewed, token_row

log = logging.getLogger(__name__)
T = TypeVar("T")

MESSENGER = "zalo_oa"
SEND_PATH = "/v3.0/oa/message/cs"
CALL_TIMEOUT = 20.0
REPLY_ATTEMPTS = 3
LIMIT_WAIT = 60.0  # a limit that names no wait: the outbox tries again after this
TOKEN_EXPIRED = -216
# Error codes as secondary sources give them; the words in the message are read too.
WINDOW_CODES = {-230}  # the person has not written within the window
GONE_CODES = {-213, -227}  # the person does not follow the OA; blocked or inactive
LIMIT_CODES = {-32, 429}
REFUSED_CODES = {-201, 400}  # the message was refused as sent: sending it again cannot help
WINDOW_WORDS = ("interact", "48 hours", "7 days", "tương tác")
GONE_WORDS = ("not follow", "unfollow", "block", "user not found", "inactive", "deactivat", "chưa quan tâm")
# What officers read in /undelivered for a message held until the person writes again.
WAITING_ERROR = "waiting: outside Zalo's messaging window (the person must write first)"
FILE_EVENTS = {"user_send_image": "photo", "user_send_audio": "voice"}
RENEW_BEFORE = timedelta(hours=1)  # the access token is renewed when less than this is left
RENEWAL_LEASE = timedelta(seconds=60)  # how long one process may take to renew before another may
RENEW_AGAIN_AFTER = 300.0  # seconds after a failed renewal before the next try
DEFAULT_LIFETIME = 25 * 3600.0  # seconds, when Zalo's answer names no expires_in


class ZaloOAError(Exception):
    """The OA API refused a call: its error code (or the HTTP status) and message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def _code(value: Any) -> int | None:
    """An error code given as a number or as a string of one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return None


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The body of a successful answer (HTTP 200 and "error": 0); ZaloOAError for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    envelope = body if isinstance(body, dict) else {}
    code = _code(envelope.get("error"))
    if response.status_code == 200 and code == 0:
        return envelope
    message = str(envelope.get("message") or envelope.get("error_description") or envelope.get("error_name")
                  or response.reason_phrase or "")[:300]
    raise ZaloOAError(code if code else response.status_code, message)


class ZaloOAAPI:
    """The two OA calls the bot makes (send a text, renew the token), over one httpx client."""

    def __init__(self, base_url: str, oauth_url: str, app_id: str, app_secret: str | None, *,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.send_url = base_url.rstrip("/") + SEND_PATH
        self.oauth_url = oauth_url
        self.app_id = app_id
        self.app_secret = app_secret
        self.http = httpx.AsyncClient(transport=transport, timeout=CALL_TIMEOUT)

    async def send_text(self, access_token: str, user_id: str, text: str) -> dict[str, Any]:
        """Send one plain text to a person; Zalo's answer, or ZaloOAError (httpx.HTTPError for the network)."""
        response = await self.http.post(self.send_url, headers={"access_token": access_token},
                                        json={"recipient": {"user_id": user_id}, "message": {"text": text}})
        return answer_of(response)

    async def renew(self, refresh_token: str) -> tuple[str, str, float]:
        """Spend the refresh token: (access token, refresh token, seconds the access token lasts)."""
        response = await self.http.post(self.oauth_url, headers={"secret_key": self.app_secret or ""}, data={
            "refresh_token": refresh_token, "app_id": self.app_id, "grant_type": "refresh_token"})
        try:
            body = response.json()
        except ValueError:
            body = None
        envelope = body if isinstance(body, dict) else {}
        access, refresh = envelope.get("access_token"), envelope.get("refresh_token")
        if response.status_code != 200 or not isinstance(access, str) or not access or not isinstance(refresh, str):
            code = _code(envelope.get("error")) or response.status_code
            message = str(envelope.get("error_description") or envelope.get("error_name") or envelope.get("message")
                          or response.reason_phrase or "no token in the answer")[:300]
            raise ZaloOAError(code, message)
        try:  # a number of seconds, sent as a string ("90000") by the accounts seen
            seconds = float(envelope.get("expires_in") or 0)
        except (TypeError, ValueError):
            seconds = 0.0
        return access, refresh, seconds if seconds > 0 else DEFAULT_LIFETIME

    async def close(self) -> None:
        """Close the connections."""
        await self.http.aclose()


class Store:
    """Runs one store function in its own session: on the event loop (SQLite) or in a thread."""

    def __init__(self, engine: Engine, *, in_thread: bool) -> None:
        self.engine = engine
        self.in_thread = in_thread

    async def __call__(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """The result of `work(*args, session=..., **kwargs)`."""
        def run() -> T:
            with new_session(self.engine) as session:
                return work(*args, session=session, **kwargs)

        return await asyncio.to_thread(run) if self.in_thread else run()


@dataclass(frozen=True)
class Pair:
    """The token pair as last read: what a call needs, and when to renew it."""

    access_token: str
    expires_at: datetime
    version: int

    @classmethod
    def of(cls, row: ZaloOAToken) -> Pair:
        """The pair a stored row holds."""
        return cls(row.access_token, row.expires_at, row.version)


class OATokens:
    """The access token for each call: the stored pair, renewed before it expires (or when Zalo says
    it has), by one caller at a time in this process (a lock) and across processes (a lease)."""

    def __init__(self, api: ZaloOAAPI, store: Store, app_id: str, *, can_renew: bool) -> None:
        self.api = api
        self.store = store
        self.app_id = app_id
        self.can_renew = can_renew
        self._lock = asyncio.Lock()
        self._pair: Pair | None = None
        self._renew_again_at = 0.0  # the event loop's time: no renewal before it, after one failed
        self._told_cannot_renew = False

    async def access_token(self) -> str:
        """The access token to call with, renewed first when less than an hour is left."""
        pair = self._pair
        if pair is None or self._due(pair):
            async with self._lock:
                pair = await self._current(stale=None)
        return pair.access_token

    async def renew(self, stale: str) -> str | None:
        """Zalo refused `stale` as expired (-216): a newer access token (renewed now, or by another
        process meanwhile), or None when there is none."""
        async with self._lock:
            pair = await self._current(stale=stale)
        return pair.access_token if pair.access_token != stale else None

    def _due(self, pair: Pair) -> bool:
        return pair.expires_at - utcnow() < RENEW_BEFORE and self._may_renew()

    def _may_renew(self) -> bool:
        if not self.can_renew:
            if not self._told_cannot_renew:
                self._told_cannot_renew = True
                log.warning("the Zalo OA access token cannot be renewed: ZALO_OA_APP_SECRET or "
                            "ZALO_OA_REFRESH_TOKEN is not set")
            return False
        return asyncio.get_running_loop().time() >= self._renew_again_at

    async def _current(self, *, stale: str | None) -> Pair:
        """Under the lock: the stored pair, renewed first if it is due (or is still `stale`)."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + RENEWAL_LEASE.total_seconds() + 5
        while True:
            row = await self.store(token_row, self.app_id)
            if row is None:
                raise ZaloOAError(0, "no Zalo OA token is stored (ZALO_OA_ACCESS_TOKEN)")
            pair = self._pair = Pair.of(row)
            wanted = row.access_token == stale if stale is not None else self._due(pair)
            if not wanted or not row.refresh_token or not self._may_renew():
                return pair
            now = utcnow()
            if await self.store(claim_renewal, self.app_id, row.version, until=now + RENEWAL_LEASE, now=now):
                return await self._renew(row)
            if loop.time() > give_up_at:
                return pair
            await asyncio.sleep(0.2)  # another process is renewing: its new pair is read next

    async def _renew(self, row: ZaloOAToken) -> Pair:
        """Spend the refresh token (the lease is ours) and store the new pair in one write."""
        try:
            access, refresh, seconds = await self.api.renew(row.refresh_token)
        except (ZaloOAError, httpx.HTTPError) as exc:
            self._renew_again_at = asyncio.get_running_loop().time() + RENEW_AGAIN_AFTER
            await self.store(end_renewal, self.app_id, row.version)
            refused = isinstance(exc, ZaloOAError)
            log.log(logging.ERROR if refused else logging.WARNING,
                    "the Zalo OA access token was not renewed (%s); the current pair is kept and renewal is "
                    "tried again in %.0f minutes%s", f"{type(exc).__name__}: {exc}", RENEW_AGAIN_AFTER / 60,
                    ": if Zalo keeps refusing, put a new pair in ZALO_OA_ACCESS_TOKEN and ZALO_OA_REFRESH_TOKEN"
                    if refused else "")
            return Pair.of(row)
        expires_at = utcnow() + timedelta(seconds=seconds)
        for pause in (0.5, 1, 2, 4):  # the old refresh token is spent: the new pair must be kept
            try:
                if not await self.store(store_renewed, self.app_id, row.version, access, refresh, expires_at):
                    log.error("the renewed Zalo OA token pair was not stored: the row changed meanwhile")
                break
            except Exception:
                log.exception("could not store the renewed Zalo OA token pair; trying again")
                await asyncio.sleep(pause)
        else:
            log.error("the renewed Zalo OA token pair could not be stored: this process uses it until it stops; "
                      "then put a new pair in ZALO_OA_ACCESS_TOKEN and ZALO_OA_REFRESH_TOKEN")
        log.info("the Zalo OA access token was renewed; it lasts until %s", expires_at.isoformat(timespec="minutes"))
        self._pair = Pair(access, expires_at, row.version + 1)
        return self._pair


def token_refused(exc: ZaloOAError) -> bool:
    """Whether Zalo refused the access token (-216, or a message naming it: one table gives -201 for it)."""
    return exc.code == TOKEN_EXPIRED or "access token" in exc.message.casefold() or "access_token" in exc.message


def failed_delivery(exc: Exception, rest: Rest | None = None) -> Delivery:
    """What an OA error means for an outbox message."""
    error = f"{type(exc).__name__}: {exc}"
    if not isinstance(exc, ZaloOAError):
        return Delivery(False, error, rest=rest)  # timeouts, the network: try again later
    waiting = Delivery(False, f"{WAITING_ERROR}; Zalo said {exc}", until_person_writes=True, rest=rest)
    later = Delivery(False, error, retry_after=LIMIT_WAIT, rest=rest)
    gone = Delivery(False, error, permanent=True, unreachable=True, rest=rest)
    # The codes first (the sources agree on them more than on the words), then the words.
    for codes, meaning in ((WINDOW_CODES, waiting), (LIMIT_CODES, later), (GONE_CODES, gone)):
        if exc.code in codes:
            return meaning
    if exc.code in REFUSED_CODES and not token_refused(exc):
        return Delivery(False, error, permanent=True, rest=rest)
    text = exc.message.casefold()
    for words, meaning in ((WINDOW_WORDS, waiting), ((*LIMIT_WORDS, "exceed"), later), (GONE_WORDS, gone)):
        if any(word in text for word in words):
            return meaning
    # -216 after a failed renewal, other codes, 5xx: try again later.
    return Delivery(False, error, rest=rest)


def sender_of(event: dict[str, Any]) -> str:
    """The id of the person who sent an event (a string: Zalo's ids are large numbers), or ""."""
    sender = event.get("sender")
    return str(sender.get("id") or "") if isinstance(sender, dict) else ""


def written_by_person(event: dict[str, Any]) -> bool:
    """Whether the event is something a person wrote to the OA in a private chat (user_send_...)."""
    name = str(event.get("event_name") or "")
    return name.startswith("user_send_") and "group" not in name and bool(sender_of(event))


def update_key(event: dict[str, Any]) -> str | None:
    """`event_name:msg_id`, what makes an event posted twice count once (hashed if too long)."""
    return event_key(event["event_name"], _message_of(event).get("msg_id"))


def _message_of(event: dict[str, Any]) -> dict[str, Any]:
    message = event.get("message")
    return message if isinstance(message, dict) else {}


def _file_urls(message: dict[str, Any]) -> list[str]:
    """The URLs of the files in a message's attachments (`[{"type", "payload": {"url", ...}}]`)."""
    attachments = message.get("attachments")
    urls = []
    for item in attachments if isinstance(attachments, list) else []:
        payload = item.get("payload") if isinstance(item, dict) else None
        url = payload.get("url") if isinstance(payload, dict) else None
        if isinstance(url, str) and url:
            urls.append(url)
    return urls


class ZaloOAChannel:
    """Zalo OA for the core: webhook events become events; replies become plain text with numbered choices."""

    messenger = MESSENGER
    typed_choices = True

    def __init__(self, api: ZaloOAAPI, host: Host, tokens: OATokens, store: Store, *, files_dir: Path,
                 max_file_bytes: int, text_limit: int, window: timedelta) -> None:
        self.api = api
        self.host = host
        self.tokens = tokens
        self.store = store
        self.files_dir = Path(files_dir)
        self.max_file_bytes = max_file_bytes
        self.text_limit = text_limit
        self.window = window
        self._turns = InTurn()

    # ---- incoming ---------------------------------------------------------------------------
    async def receive(self, event: dict[str, Any]) -> None:
        """Handle one webhook event after the earlier ones of its person (events of others concurrently)."""
        if not written_by_person(event):
            return  # what the OA sent, seen, followed...: nothing for the core
        try:
            await self._turns.run(sender_of(event), lambda: self.handle(event))
        except Exception:  # one event's failure must not stop the next
            log.exception("error while handling Zalo OA event %s", update_key(event))

    async def handle(self, event: dict[str, Any]) -> None:
        """Note that the person wrote (their waiting messages become due), let the core decide, reply."""
        released = await self.store(note_wrote, MESSENGER, sender_of(event))
        if released and self.host.on_queued is not None:
            self.host.on_queued()
        for incoming in await self.to_incoming(event):
            outcome = await self.host.handle(incoming)
            await self.send_replies(incoming, outcome.replies)
            await self.host.shown(outcome)

    async def to_incoming(self, event: dict[str, Any]) -> list[Incoming]:
        """The events for the core: a text, each photo or voice note (fetched and kept first), or the
        sticker or other content the core answers briefly."""
        user_id = sender_of(event)
        name = str(event["event_name"])
        message = _message_of(event)
        key = update_key(event)
        made = Incoming(messenger=MESSENGER, chat_id=user_id, user_id=user_id, update_key=key)
        if name == "user_send_text":
            return [replace(made, text=str(message.get("text") or ""))]
        if name in FILE_EVENTS:
            kind = FILE_EVENTS[name]
            caption = message.get("text")
            urls = _file_urls(message)
            if not urls:
                log.warning("a %s from Zalo OA user %s came without its URL", kind, user_id)
                return [replace(made, attachment=Attachment("other"))]
            files = []
            for number, url in enumerate(urls, 1):  # one event per file, each counted once
                size = await fetch_file(self.api.http, url, files_dir=self.files_dir, max_bytes=self.max_file_bytes,
                                        chat_id=user_id)
                files.append(replace(made, text=str(caption) if caption and number == 1 else None,
                                     attachment=Attachment(kind, url, size),
                                     update_key=key if number == 1 or key is None else f"{key[:120]}#{number}"))
            return files
        if name in ("user_send_sticker", "user_send_gif"):
            return [replace(made, attachment=Attachment("sticker"))]
        return [replace(made, attachment=Attachment("other"))]  # files, links, locations...: the short refusal

    # ---- outgoing ---------------------------------------------------------------------------
    def pieces(self, text: str, options: list[Option], attachment: Attachment | None) -> tuple[list[str], list[str]]:
        """(the text and any file line in pieces of at most the limit, the same with the numbered choices)."""
        return text_pieces(text, options, attachment, self.text_limit)

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send each reply to the person who wrote, as plain text with its choices numbered."""
        for reply in (foreign_file_as_text(without_upload(r), self.messenger) for r in replies):
            for piece in self.pieces(reply.text, reply.options, reply.attachment)[1]:
                if piece.strip():
                    await self._reply(incoming.chat_id, piece)

    async def _reply(self, user_id: str, text: str) -> None:
        """Send a piece of a reply, again after a passing network error or a limit (the event is in the
        store already; what cannot be shown now is shown by the outbox sender later)."""
        for attempt in range(REPLY_ATTEMPTS):
            try:
                await self._send(user_id, text)
                return
            except ZaloOAError as exc:
                if failed_delivery(exc).retry_after is None or attempt == REPLY_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(1.0)
            except httpx.TransportError as exc:
                if attempt == REPLY_ATTEMPTS - 1:
                    raise
                log.warning("reply to Zalo OA user %s not sent (%s); trying again", user_id, type(exc).__name__)
                await asyncio.sleep(0.5 * (attempt + 1))

    async def _send(self, user_id: str, text: str) -> None:
        """One message with the current access token; once more with a renewed one if Zalo says it expired."""
        token = await self.tokens.access_token()
        try:
            await self.api.send_text(token, user_id, text)
        except ZaloOAError as exc:
            if not token_refused(exc):
                raise
            renewed = await self.tokens.renew(token)
            if renewed is None:
                raise
            await self.api.send_text(renewed, user_id, text)

    async def deliver(self, message: OutboxMessage, pace: Pace | None = None) -> Delivery:
        """Send one outbox message as text in pieces of at most the limit, the numbered choices with the
        last; `pace()` is awaited before each call. Outside the person's messaging window it waits,
        unsent, until they write again."""
        wrote = await self.store(last_wrote, MESSENGER, message.chat_id)
        if wrote is not None and utcnow() - wrote > self.window:
            return Delivery(False, WAITING_ERROR, until_person_writes=True)
        attachment = Attachment(message.file_kind, message.file_id) if message.file_id and message.file_kind else None
        options = [Option.of_key(key, label) for key, label in options_of(message)]
        body, pieces = self.pieces(message.text, options, attachment)
        done = 0  # pieces delivered
        try:
            for number, piece in enumerate(pieces, 1):
                if piece.strip():
                    if pace is not None:
                        await pace()
                    await self._send(message.chat_id, piece)
                done = number
        except (ZaloOAError, httpx.HTTPError) as exc:
            # The file, if any, is a line of the text here: what is left is text only.
            return failed_delivery(exc, Rest("\n".join(body[done:]), False) if done else None)
        return Delivery(True)

    def invitation_link(self, payload: str) -> str | None:
        """The OA has no start links: the invited person types `/start <payload>`."""
        return None

    async def close(self) -> None:
        """Close the connections to Zalo."""
        await self.api.close()
