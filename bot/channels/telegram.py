"""The Telegram channel, through python-telegram-bot: updates in, inline keyboards out."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import BaseUpdateProcessor, ContextTypes

from bot.channels import Delivery, split_text
from bot.host import Host
from handlers.core import Attachment, Incoming, Option, Reply
from locales import N_, Catalogs
from storage.models import OutboxMessage
from storage.outbox import options_of

log = logging.getLogger(__name__)

MESSENGER = "telegram"
TEXT_LIMIT = 4096
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
    rows = [buttons[i:i + columns] for i in range(0, len(buttons), columns)]
    return InlineKeyboardMarkup(rows)


async def send(bot: Bot, chat_id: str, text: str, markup: InlineKeyboardMarkup | None,
               attachment: Attachment | None = None) -> None:
    """Send text (split when long; the keyboard goes with the last piece) and maybe a file."""
    if attachment is not None and attachment.kind in SEND_FILE:
        await getattr(bot, SEND_FILE[attachment.kind])(chat_id, attachment.file_id)
    pieces = split_text(text, TEXT_LIMIT)
    for number, piece in enumerate(pieces, 1):
        # No parse_mode: every text, the person's included, is shown literally.
        await bot.send_message(chat_id, piece, reply_markup=markup if number == len(pieces) else None)


class TelegramChannel:
    """Telegram for the core: updates become events, replies become messages with inline keyboards."""

    messenger = MESSENGER

    def __init__(self, bot: Bot, host: Host) -> None:
        self.bot = bot
        self.host = host
        self.username: str | None = None  # known once the bot is initialized (getMe)

    async def on_update(self, update: Update) -> None:
        """Handle any update: normalise it, let the core decide, render the replies."""
        incoming = to_incoming(update)
        outcome = await self.host.handle(incoming) if incoming is not None else None
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
        """Send each reply to the chat the event came from."""
        for reply in replies:
            await send(self.bot, incoming.chat_id, reply.text, keyboard(reply.options, reply.columns),
                       reply.attachment)

    async def deliver(self, message: OutboxMessage) -> Delivery:
        """Send one outbox message."""
        attachment = Attachment(message.file_kind, message.file_id) if message.file_id and message.file_kind else None
        try:
            await send(self.bot, message.chat_id, message.text, keyboard(options_of(message), 1), attachment)
        except (Forbidden, BadRequest) as exc:  # blocked the bot, chat gone, bad file: retrying won't help
            return Delivery(False, f"{type(exc).__name__}: {exc}", True)
        except TelegramError as exc:
            return Delivery(False, f"{type(exc).__name__}: {exc}", False)
        return Delivery(True)

    def invitation_link(self, payload: str) -> str | None:
        """https://t.me/<bot>?start=<payload>."""
        return f"https://t.me/{self.username}?start={payload}" if self.username else None

    async def set_command_menus(self, catalogs: Catalogs, default_locale: str) -> None:
        """The command menu in each language (the default locale's is also shown to others)."""
        for locale in ("vi", "en"):
            t = catalogs.get(locale)
            commands = [BotCommand(name, t(text)) for name, text in COMMAND_MENU]
            await self.bot.set_my_commands(commands, language_code=locale)
            if locale == default_locale:
                await self.bot.set_my_commands(commands)


class PerChatOrder(BaseUpdateProcessor):
    """Updates of different chats are handled concurrently; those of one chat strictly in order."""

    def __init__(self, max_concurrent_updates: int) -> None:
        super().__init__(max_concurrent_updates)
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


COMMAND_MENU = [
    ("new", N_("Send a new concern")),
    ("status", N_("Your concerns and their state")),
    ("help", N_("What this bot can do")),
    ("cancel", N_("Stop what you are doing")),
    ("language", N_("Change the language")),
]
