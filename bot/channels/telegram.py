"""The Telegram channel, through python-telegram-bot: updates in, inline keyboards out."""

from __future__ import annotations

import logging
from typing import Any

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from telegram.error import BadRequest, Forbidden, TelegramError
from telegram.ext import Application, ContextTypes

from bot.channels import split_text
from locales import N_
from handlers.core import Attachment, Incoming, Option
from handlers.dispatch import Core
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


async def send(bot: Any, chat_id: str, text: str, markup: InlineKeyboardMarkup | None,
               attachment: Attachment | None = None) -> None:
    """Send text (split when long; the keyboard goes with the last piece) and maybe a file."""
    if attachment is not None and attachment.kind in SEND_FILE:
        await getattr(bot, SEND_FILE[attachment.kind])(chat_id, attachment.file_id)
    pieces = split_text(text, TEXT_LIMIT)
    for number, piece in enumerate(pieces, 1):
        # No parse_mode: every text, the person's included, is shown literally.
        await bot.send_message(chat_id, piece, reply_markup=markup if number == len(pieces) else None)


async def on_update(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Handle any update: normalise it, let the core decide, render the replies."""
    core: Core = context.bot_data["core"]
    if core.deep_link_base is None:
        core.deep_link_base = f"https://t.me/{context.bot.username}?start="
    incoming = to_incoming(update)
    if update.callback_query is not None:
        await update.callback_query.answer()
    if incoming is None:
        return
    for reply in core.handle(incoming):
        await send(context.bot, incoming.chat_id, reply.text, keyboard(reply.options, reply.columns),
                   reply.attachment)
    kick = context.bot_data.get("kick_outbox")
    if core.outbox_waiting and kick is not None:
        core.outbox_waiting = False
        kick()


async def deliver(bot: Any, message: OutboxMessage) -> tuple[bool, str | None, bool]:
    """Send one outbox message: (sent, error, permanent)."""
    attachment = Attachment(message.file_kind, message.file_id) if message.file_id and message.file_kind else None
    try:
        await send(bot, message.chat_id, message.text, keyboard(options_of(message), 1), attachment)
    except (Forbidden, BadRequest) as exc:  # blocked the bot, chat gone, bad file: retrying won't help
        return False, f"{type(exc).__name__}: {exc}", True
    except TelegramError as exc:
        return False, f"{type(exc).__name__}: {exc}", False
    return True, None, False


async def error_handler(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Log any exception with its traceback; the person gets a short apology, never a trace."""
    log.error("error while handling an update", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        core: Core = context.bot_data["core"]
        user = update.effective_user
        t = core.catalogs.pick(None, user.language_code if user else None)
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


async def set_command_menus(application: Application, core: Core) -> None:
    """The command menu in each language (Vietnamese is also the default for others)."""
    for locale in ("vi", "en"):
        t = core.catalogs.get(locale)
        commands = [BotCommand(name, t(text)) for name, text in COMMAND_MENU]
        await application.bot.set_my_commands(commands, language_code=locale)
        if locale == core.settings.default_locale:
            await application.bot.set_my_commands(commands)
