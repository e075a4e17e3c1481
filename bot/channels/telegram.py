"""The Telegram channel, through python-telegram-bot: updates in, inline keyboards out."""

from __future__ import annotations

import asyncio
import logging
import warnings
from collections.abc import Awaitable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Message,
    Update,
)
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import BaseUpdateProcessor, ContextTypes
from telegram.warnings import PTBUserWarning

from bot.channels import Delivery, Pace, Rest, foreign_file_as_text, split_text
from bot.channels.zalo import local_copy_name
from bot.host import Host
from handlers.core import Attachment, Incoming, Option, Reply
from handlers.rules.menus import MENU, WORKER_MENU
from locales import Catalogs
from storage.models import OutboxMessage
from storage.outbox import options_of

log = logging.getLogger(__name__)
# send_reply calls sendMessage through do_api_request on purpose (it needs no Message back).
warnings.filterwarnings("ignore", message=r"Please use 'Bot\.sendMessage'", category=PTBUserWarning)

MESSENGER = "telegram"
TEXT_LIMIT = 4096
REPLY_ATTEMPTS = 3
WAITING_UPDATES = 100_000  # updates received and waiting for their chat's turn or a slot
KEPT_COPIES = ("zalo", "zalo_oa")  # messengers whose files are fetched and kept (bot/channels/zalo.py)
UPLOAD_LIMIT = 10 * 1024 * 1024  # a photo Telegram takes by upload; the kept copies are smaller anyway
SEND_FILE = {"photo": "send_photo", "voice": "send_voice", "audio": "send_audio",
             "video": "send_video", "document": "send_document"}


def attachment_of(message: Message) -> Attachment | None:
    """The file or other non-text content of a message, if any."""
    if message.photo:
        largest = message.photo[-1]
        return Attachment("photo", largest.file_id, largest.file_size)
    if message.animation or message.sticker:
        return Attachment("sticker" if message.sticker else "other")
    for kind in ("voice", "audio", "document", "video", "video_note"):
        media = getattr(message, kind)
        if media is not None:
            return Attachment("video" if kind == "video_note" else kind, media.file_id, media.file_size)
    if message.location or message.venue:
        return Attachment("location")
    if message.contact:
        return Attachment("contact")
    return None


def to_incoming(update: Update) -> Incoming | None:
    """Turn a Telegram update into an `Incoming`; None for what the bot ignores."""
    user = update.effective_user
    chat = update.effective_chat
    if user is None or chat is None or chat.type != "private":
        return None
    base: dict[str, Any] = {
        "messenger": MESSENGER, "chat_id": str(chat.id), "user_id": str(user.id),
        "display_name": user.full_name, "language_code": user.language_code,
        "update_key": str(update.update_id),
    }
    if update.callback_query is not None:
        return Incoming(**base, choice=update.callback_query.data or "")
    message = update.message
    if message is None:  # edited messages, channel posts...
        return None
    attachment = attachment_of(message)
    text = message.text if message.text is not None else message.caption
    if text is None and attachment is None:
        attachment = Attachment("other")
    return Incoming(**base, text=text, attachment=attachment)


def keyboard(options: list[Option] | list[tuple[str, str]], columns: int = 1) -> InlineKeyboardMarkup | None:
    """Options as an inline keyboard, `columns` buttons a row."""
    pairs = [(o.key, o.label) if isinstance(o, Option) else (o[0], o[1]) for o in options]
    if not pairs:
        return None
    buttons = [InlineKeyboardButton(label, callback_data=key) for key, label in pairs]
    return InlineKeyboardMarkup(button_rows(buttons, [label for _, label in pairs], columns))


def keyboard_data(options: list[Option], columns: int = 1) -> dict[str, Any] | None:
    """Options as the Bot API's inline keyboard, in plain data (what `InlineKeyboardMarkup` sends)."""
    if not options:
        return None
    buttons = [{"text": o.label, "callback_data": o.key} for o in options]
    return {"inline_keyboard": button_rows(buttons, [o.label for o in options], columns)}


# Wider than this, a label is cut off on a small phone when it shares its row.
ROW_SHARING_LABEL = 18


def button_rows(buttons: list[Any], labels: list[str], columns: int) -> list[list[Any]]:
    """Buttons `columns` a row, except that a long label gets a row of its own."""
    rows: list[list[Any]] = []
    row: list[Any] = []
    for button, label in zip(buttons, labels, strict=True):
        if columns > 1 and len(label) > ROW_SHARING_LABEL:
            rows += [row] if row else []
            rows.append([button])
            row = []
            continue
        row.append(button)
        if len(row) == columns:
            rows.append(row)
            row = []
    return rows + ([row] if row else [])


async def send_reply(bot: Bot, chat_id: str, reply: Reply) -> None:
    """Send a reply to the person who acted (split when long; the keyboard with the last piece).

    Text goes out as a plain Bot API call whose answer is not turned into a `Message`: a reply needs
    nothing back, and building that object was a quarter of a dialog step (see README, Benchmark)."""
    file = reply.attachment
    if file is not None and file.kind in SEND_FILE:
        # A file the bot made (a chart, a report) is uploaded; a person's file is sent by its id.
        content = InputFile(file.data, filename=file.name) if file.data is not None else file.file_id
        await getattr(bot, SEND_FILE[file.kind])(chat_id, content)
    pieces = split_text(reply.text, TEXT_LIMIT)
    markup = keyboard_data(reply.options, reply.columns)
    for number, piece in enumerate(pieces, 1):
        # No parse_mode: every text, the person's included, is shown literally.
        parameters: dict[str, Any] = {"chat_id": chat_id, "text": piece}
        if markup is not None and number == len(pieces):
            parameters["reply_markup"] = markup
        await bot.do_api_request("sendMessage", api_kwargs=parameters)


class TelegramChannel:
    """Telegram for the core: updates become events, replies become messages with inline keyboards."""

    messenger = MESSENGER
    typed_choices = False  # inline buttons: a press carries its choice

    def __init__(self, bot: Bot, host: Host, *, files_dir: Path | None = None) -> None:
        self.bot = bot
        self.host = host
        self.files_dir = files_dir  # kept copies of files people sent on Zalo, shown to staff here
        self.username: str | None = None  # known once the bot is initialized (getMe)
        self._handled: dict[int, asyncio.Future[None]] = {}  # update id -> done once it is in the store

    def when_handled(self, update_id: int) -> asyncio.Future[None]:
        """A future done once this update's changes are committed (the webhook answers after it)."""
        return self._handled.setdefault(update_id, asyncio.get_running_loop().create_future())

    def forget_handled(self, update_id: int) -> None:
        """Stop waiting for an update (the webhook gave up on it)."""
        self._handled.pop(update_id, None)

    def shown_here(self, reply: Reply) -> Reply:
        """A file a worker sent on Zalo is uploaded from its kept copy (a Zalo address means nothing to
        Telegram); one without a copy, or from elsewhere, becomes its note."""
        file = reply.attachment
        if file is None or file.origin is None or file.origin == MESSENGER:
            return reply
        if self.files_dir is not None and file.origin in KEPT_COPIES:
            kept = self.files_dir / local_copy_name(file.file_id)
            if kept.is_file() and kept.stat().st_size <= UPLOAD_LIMIT:
                kind = file.kind if file.kind in SEND_FILE else "document"
                return replace(reply, attachment=Attachment(kind, data=kept.read_bytes(), name=kept.name))
        return foreign_file_as_text(reply, MESSENGER)

    async def on_update(self, update: Update) -> None:
        """Handle any update: normalise it, let the core decide, render the replies."""
        incoming = to_incoming(update)
        try:
            outcome = await self.host.handle(incoming) if incoming is not None else None
        finally:  # committed (or refused, or failed and rolled back): Telegram may forget it now
            waiting = self._handled.pop(update.update_id, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(None)
        if update.callback_query is not None:
            # Answered after the update is handled (or found handled already): a press delivered
            # twice or late still gets its reply once; Telegram refuses answers to old queries.
            try:
                await update.callback_query.answer()
            except TelegramError as exc:
                log.info("could not answer callback query: %s", exc)
        if incoming is not None and outcome is not None:
            await self.send_replies(incoming, outcome.replies)
            await self.host.shown(outcome)

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Send each reply to the chat the event came from; a passing network error is tried again."""
        for reply in replies:
            reply = await asyncio.to_thread(self.shown_here, reply)
            for attempt in range(REPLY_ATTEMPTS):
                try:
                    await send_reply(self.bot, incoming.chat_id, reply)
                    break
                except RetryAfter as exc:
                    wait = exc.retry_after if isinstance(exc.retry_after, int | float) else 1.0
                    await asyncio.sleep(min(float(wait), 30.0))
                except NetworkError as exc:  # includes TimedOut; the update is in the store already
                    if attempt == REPLY_ATTEMPTS - 1:
                        raise
                    log.warning("reply to chat %s not sent (%s); trying again", incoming.chat_id, exc)
                    await asyncio.sleep(0.5 * (attempt + 1))

    async def deliver(self, message: OutboxMessage, pace: Pace | None = None) -> Delivery:
        """Send one outbox message as `send` does (a file, then the text in pieces of at most 4,096
        characters, the keyboard with the last), awaiting `pace()` before each call to the Bot API.
        A failure says why, and what is left once part of the message was delivered. A command menu
        (`MENU`) becomes the chat's own menu."""
        if message.file_kind == MENU:
            return await self._set_chat_menu(message, pace)
        file_left = bool(message.file_id and message.file_kind in SEND_FILE)
        pieces = split_text(message.text, TEXT_LIMIT)
        markup = keyboard(options_of(message), 1)
        done = 0  # pieces of the text delivered
        try:
            if file_left:
                if pace is not None:
                    await pace()
                await getattr(self.bot, SEND_FILE[message.file_kind or ""])(message.chat_id, message.file_id)
                file_left = False
            for number, piece in enumerate(pieces, 1):
                if pace is not None:
                    await pace()
                await self.bot.send_message(message.chat_id, piece,
                                            reply_markup=markup if number == len(pieces) else None)
                done = number
        except TelegramError as exc:
            partly = done > 0 or (bool(message.file_id and message.file_kind in SEND_FILE) and not file_left)
            return failed_delivery(exc, Rest("\n".join(pieces[done:]), file_left) if partly else None)
        return Delivery(True)

    async def _set_chat_menu(self, message: OutboxMessage, pace: Pace | None) -> Delivery:
        commands = [BotCommand(*line.split(" ", 1)) for line in message.text.splitlines()]
        if pace is not None:
            await pace()
        try:
            await self.bot.set_my_commands(commands, scope=BotCommandScopeChat(int(message.chat_id)))
        except TelegramError as exc:
            return failed_delivery(exc)
        return Delivery(True)

    def invitation_link(self, payload: str) -> str | None:
        """https://t.me/<bot>?start=<payload>."""
        return f"https://t.me/{self.username}?start={payload}" if self.username else None

    async def set_command_menus(self, catalogs: Catalogs, default_locale: str) -> None:
        """The command menu in each language (the default locale's is also shown to others)."""
        for locale in ("vi", "en"):
            t = catalogs.get(locale)
            commands = [BotCommand(name, t(text)) for name, text in WORKER_MENU]
            await self.bot.set_my_commands(commands, language_code=locale)
            if locale == default_locale:
                await self.bot.set_my_commands(commands)


def failed_delivery(exc: TelegramError, rest: Rest | None = None) -> Delivery:
    """What a Bot API error means for an outbox message."""
    error = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, RetryAfter):  # 429, flood control: wait as long as Telegram says, then send it
        return Delivery(False, error, retry_after=retry_seconds(exc), rest=rest)
    if isinstance(exc, Forbidden):  # 403: the person blocked the bot, or the account is gone
        return Delivery(False, error, permanent=True, unreachable=True, rest=rest)
    if isinstance(exc, BadRequest | ChatMigrated):  # chat not found, bad file: retrying won't help
        return Delivery(False, error, permanent=True, rest=rest)
    return Delivery(False, error, rest=rest)  # network errors, 5xx, timeouts: try again later


def retry_seconds(exc: RetryAfter) -> float:
    """The wait a 429 names, in seconds (python-telegram-bot gives an int or a timedelta)."""
    with warnings.catch_warnings():  # the int form is deprecated; both are read here
        warnings.simplefilter("ignore")
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class PerChatOrder(BaseUpdateProcessor):
    """Updates of different chats are handled concurrently; those of one chat strictly in order.

    An update waits for its chat's previous one before it takes one of the `max_concurrent_updates`
    running slots, so a burst from a few chats cannot hold every slot while it waits."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(WAITING_UPDATES)  # python-telegram-bot's own limit only bounds the waiting
        self._running = asyncio.BoundedSemaphore(max_concurrent_updates)
        self._chains: dict[int, asyncio.Future[None]] = {}

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        """Wait for the chat's previous update, then handle this one."""
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None:
            await coroutine
            return
        previous = self._chains.get(chat.id)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chains[chat.id] = done
        try:
            if previous is not None:
                await asyncio.shield(previous)
            async with self._running:
                await coroutine
        finally:
            done.set_result(None)
            if self._chains.get(chat.id) is done:
                del self._chains[chat.id]

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to release."""


async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """python-telegram-bot's handler for every update: the channel does the work."""
    channel: TelegramChannel = context.bot_data["channel"]
    await channel.on_update(update)


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log any exception with its traceback; the person gets a short apology, never a trace."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        catalogs: Catalogs = context.bot_data["catalogs"]
        user = update.effective_user
        t = catalogs.pick(None, user.language_code if user else None)
        try:
            await context.bot.send_message(update.effective_chat.id, t(
                "Sorry, something went wrong on our side. Please try again in a moment."))
        except TelegramError:
            pass
