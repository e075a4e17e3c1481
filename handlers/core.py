"""What every handler shares: the normalized event, replies, the context and the dialog engine."""

from __future__ import annotations

import logging
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlmodel import Session

from bot.config import Settings
from locales import Catalogs, Translator
from storage.dialogs import Dialog
from storage.models import Person, ReferenceItem
from storage.outbox import enqueue

log = logging.getLogger(__name__)

ACCEPTED_MEDIA = ("photo", "voice", "audio", "document", "video")


@dataclass(frozen=True)
class Attachment:
    """A file a person sent or the bot sends: the messenger's own file id and its kind."""

    kind: str  # photo | voice | audio | document | video | sticker | location | contact | other
    file_id: str = ""
    size: int | None = None


@dataclass(frozen=True)
class Incoming:
    """One thing a person did, whatever the messenger: text, a command, a choice or a file."""

    messenger: str
    chat_id: str
    user_id: str
    display_name: str = ""
    language_code: str | None = None
    text: str | None = None
    command: str | None = None
    args: str = ""
    choice: str | None = None
    attachment: Attachment | None = None
    update_key: str | None = None


@dataclass(frozen=True)
class Option:
    """A choice offered to the person: a button, or a numbered line where there are none."""

    key: str
    label: str


@dataclass
class Reply:
    """Something the bot says back: text, choices (laid out in `columns`) and maybe a file."""

    text: str
    options: list[Option] = field(default_factory=list)
    attachment: Attachment | None = None
    columns: int = 1


def clean_text(text: str) -> str:
    """NFC, without control characters (keeping new lines), trimmed."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n")
    kept = (ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    return "".join(kept).strip()


def parse_command(text: str) -> tuple[str, str] | None:
    """Split '/name@bot args' into ('name', 'args'); None when the text is no command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, args = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
        return None
    return name, args.strip()


@dataclass
class Context:
    """Everything a handler may use while handling one incoming event."""

    session: Session
    settings: Settings
    catalogs: Catalogs
    incoming: Incoming
    person: Person
    t: Translator
    state: Dialog
    data: dict[str, Any]
    now: datetime
    quota: Any = None  # handlers.dispatch.DailyQuota
    deep_link_base: str | None = None  # e.g. https://t.me/<bot>?start= when Telegram runs
    forget_dialog: bool = False  # drop the chat's dialog row instead of stamping it
    replies: list[Reply] = field(default_factory=list)

    def say(self, text: str, options: list[Option] | None = None, *, columns: int = 1,
            attachment: Attachment | None = None) -> None:
        """Add a reply for the person who acted."""
        self.replies.append(Reply(text, list(options or []), attachment, columns))

    def start(self, flow: str, step: str, data: dict[str, Any] | None = None) -> None:
        """Enter a dialog at its first step and ask it."""
        self.state.flow = flow
        self.data = dict(data or {})
        self.goto(step)

    def goto(self, step: str) -> None:
        """Move to a step of the current dialog and ask it."""
        self.state.step = step
        FLOWS[str(self.state.flow)][step](self, None)

    def end(self) -> None:
        """Leave the dialog; nothing of it is kept."""
        self.state.flow = None
        self.state.step = None
        self.data = {}

    def notify(self, recipient: Person, message: str, *, options: list[tuple[str, str]] | None = None,
               attachment: Attachment | None = None, **values: object) -> None:
        """Queue a message for someone else, in their language, sent after this commit.

        `message` and option labels are msgids. Dates and reference items (agencies, topics) are
        rendered in the recipient's language; a value may also be a function of their translator.
        """
        t = self.catalogs.get(recipient.locale)
        resolved = {k: _localized(v, t) for k, v in values.items()}
        enqueue(recipient, t(message, **resolved), session=self.session,
                options=[(key, t(label)) for key, label in options or []],
                file_id=attachment.file_id if attachment else None,
                file_kind=attachment.kind if attachment else None)

    def today(self) -> date:
        """Today's date in the configured time zone."""
        return self.now.astimezone(self.settings.zone).date()

    @property
    def who(self) -> str:
        """The person's messenger-qualified id, for limits and logs."""
        return f"{self.person.messenger}:{self.person.external_id}"


def text_answer(ctx: Context, answer: Incoming | None, prompt: str, *, low: int, high: int) -> str | None:
    """A free-text step: ask (answer None), or return the text when its length fits, else say the limits."""
    if answer is None:
        ctx.say(prompt, [Option("cancel", ctx.t("Cancel"))])
        return None
    text = answer.text or ""
    if not low <= len(text) <= high:
        ctx.say(ctx.t("Please write {min} to {max} characters.", min=low, max=ctx.t.number(high)))
        return None
    return text


def _localized(value: object, t: Translator) -> object:
    if callable(value):
        return value(t)
    if isinstance(value, date):
        return t.date(value)
    if isinstance(value, ReferenceItem):
        return t.name(value)
    return value


# A step is asked with answer=None and then given each answer until it moves on.
StepFn = Callable[[Context, "Incoming | None"], None]
FLOWS: dict[str, dict[str, StepFn]] = {}


def step(flow: str, name: str) -> Callable[[StepFn], StepFn]:
    """Register a dialog step under its flow."""

    def register(function: StepFn) -> StepFn:
        FLOWS.setdefault(flow, {})[name] = function
        return function

    return register


@dataclass(frozen=True)
class Command:
    """A command name, who may use it, and what it does."""

    name: str
    run: Callable[[Context], None]
    roles: tuple[str, ...] = ()  # empty: everyone


COMMANDS: dict[str, Command] = {}


Handler = Callable[[Context], None]


def command(name: str, *, roles: tuple[str, ...] = ()) -> Callable[[Handler], Handler]:
    """Register a command, optionally only for some roles (admins may use every command)."""

    def register(function: Callable[[Context], None]) -> Callable[[Context], None]:
        COMMANDS[name] = Command(name, function, roles)
        return function

    return register


def may_use(person: Person, cmd: Command) -> bool:
    """Whether the person's role allows the command."""
    return not cmd.roles or person.role in cmd.roles or person.role == "admin"
