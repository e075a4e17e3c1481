"""What every handler shares: the normalized event, choices, replies, the policy and the context."""

from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers.rules.calendar import ReminderPolicy
from handlers.rules.menus import queue_menu
from handlers.rules.notify import tell
from locales import Catalogs, Plural, Translator
from storage.dialogs import Dialog
from storage.models import Person, Role

if TYPE_CHECKING:
    from handlers.routing import Flow, Routes

log = logging.getLogger(__name__)

ACCEPTED_MEDIA = ("photo", "voice", "audio", "document", "video")
MAX_TYPED_NUMBER = 6  # digits: more than any list, page or id a person may type


@dataclass(frozen=True)
class Attachment:
    """A file a person sent or the bot sends: the messenger's own file id and its kind."""

    kind: str  # photo | voice | audio | document | video | sticker | location | contact | other
    file_id: str = ""
    size: int | None = None
    data: bytes | None = None  # a file the bot made (a chart, a report), sent as an upload
    name: str | None = None  # its file name
    # A person's file sent on another messenger (its file id is that messenger's): shown if the reader's
    # messenger can get it (Telegram uploads the kept copy of a Zalo photo), else `fallback` is said instead.
    origin: str | None = None
    fallback: str | None = None


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
    choice: str | None = None  # the key of a choice, as the channel received it
    attachment: Attachment | None = None
    update_key: str | None = None


@dataclass(frozen=True)
class Choice:
    """What a choice means: an action and its value (`cat` `wages`), or a command (`/case` `KN-…`)."""

    action: str
    value: str = ""

    @property
    def key(self) -> str:
        """The text a channel carries (callback data on Telegram): `cat:wages`, `/case KN-…`."""
        if self.action.startswith("/"):
            return f"{self.action} {self.value}".rstrip()
        return f"{self.action}:{self.value}" if self.value else self.action

    @classmethod
    def parse(cls, key: str) -> Choice:
        """The choice a key stands for."""
        if key.startswith("/"):
            action, _, value = key.partition(" ")
        else:
            action, _, value = key.partition(":")
        return cls(action, value.strip())

    @classmethod
    def command(cls, name: str, args: str = "") -> Choice:
        """A choice that runs a command: `Choice.command("case", code)`."""
        return cls("/" + name, args)


@dataclass(frozen=True)
class Option:
    """A choice offered to the person: a button, or a numbered line where there are none."""

    choice: Choice
    label: str

    @property
    def key(self) -> str:
        """The choice's key, as channels carry it."""
        return self.choice.key

    @classmethod
    def of_key(cls, key: str, label: str) -> Option:
        """An option read back from its key (as stored with an outgoing message)."""
        return cls(Choice.parse(key), label)


@dataclass(frozen=True)
class Answer:
    """What a person gave to a dialog step: text, a choice or a file."""

    text: str | None = None
    choice: Choice | None = None
    attachment: Attachment | None = None

    def chose(self, action: str) -> bool:
        """Whether the person picked this action."""
        return self.choice is not None and self.choice.action == action

    def picked(self, action: str) -> str | None:
        """The value of a choice of this action (None for anything else)."""
        return self.choice.value if self.chose(action) and self.choice is not None else None


@dataclass
class Reply:
    """Something the bot says back: text, choices (laid out in `columns`) and maybe a file."""

    text: str
    options: list[Option] = field(default_factory=list)
    attachment: Attachment | None = None
    columns: int = 1


@dataclass(frozen=True)
class Policy:
    """What handlers may know of the settings: limits, deadlines and the time zone; no secrets."""

    zone: ZoneInfo
    default_locale: str = "vi"
    admin_ids: frozenset[str] = frozenset()
    flood_messages: int = 20
    flood_window_seconds: float = 10
    daily_concern_limit: int = 10
    invitation_days: int = 7
    default_deadline_days: int = 30
    reopen_days: int = 30
    retention_months: int = 24
    reference_file: Path | None = None  # None: the bundled reference data
    # Who holds the data and answers workers (Decree 13 asks the notice to name them).
    federation_vi: str = "Liên đoàn Lao động"
    federation_en: str = "Labour Federation"
    reminders: ReminderPolicy = field(default_factory=ReminderPolicy)
    # Messengers that show each chat its own command menu (Telegram): staff see their commands there.
    command_menus: frozenset[str] = frozenset()

    def federation(self, locale: str) -> str:
        """The Labour Federation's name in a language."""
        return self.federation_vi if locale == "vi" else self.federation_en


class Quota(Protocol):
    """The daily allowance of concerns per person."""

    limit: int

    def exhausted(self, who: str, now: datetime) -> bool: ...

    def use(self, who: str, now: datetime) -> None: ...


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


def parse_number(text: str) -> int | None:
    """A whole number typed with ASCII digits and of sane length; None for anything else (², ①, 10**20)."""
    text = text.strip()
    if not text or len(text) > MAX_TYPED_NUMBER or not all("0" <= ch <= "9" for ch in text):
        return None
    return int(text)


_DATE = re.compile(r"^\s*(\d{1,2})\s*[/.\-]\s*(\d{1,2})\s*[/.\-]\s*(\d{4})\s*$", re.ASCII)


def parse_date(text: str) -> date | None:
    """A date typed the Vietnamese way: 20/08/2024, 20-8-2024 or 20.8.2024."""
    match = _DATE.match(text or "")
    if match is None:
        return None
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        return None


InvitationLinks = dict[str, Any]  # messenger -> function(payload) -> link


@dataclass
class Context:
    """Everything a handler may use while handling one incoming event."""

    session: Session
    policy: Policy
    catalogs: Catalogs
    routes: Routes
    incoming: Incoming
    person: Person
    t: Translator
    state: Dialog
    data: dict[str, Any]
    now: datetime
    quota: Quota
    invitation_links: InvitationLinks = field(default_factory=dict)
    forget_dialog: bool = False  # save the chat's dialog row without the time of this change
    must_show: bool = False  # keep the replies in the store until the channel has shown them
    replies: list[Reply] = field(default_factory=list)

    def say(self, text: str, options: list[Option] | None = None, *, columns: int = 1,
            attachment: Attachment | None = None) -> None:
        """Add a reply for the person who acted."""
        self.replies.append(Reply(text, list(options or []), attachment, columns))

    def start(self, flow: Flow, data: dict[str, Any] | None = None, *, at: str | None = None) -> None:
        """Enter a dialog at its first step (or `at`) and ask it."""
        self.state.flow = flow.name
        self.data = dict(data or {})
        self.goto(at or flow.first)

    def enter(self, flow: Flow, step: str, data: dict[str, Any] | None = None) -> None:
        """Put the chat at a dialog step without asking it (the caller answers it at once)."""
        self.state.flow, self.state.step = flow.name, step
        self.data = dict(data or {})

    def goto(self, step: str) -> None:
        """Move to a step of the current dialog and ask it."""
        flow = self.routes.flows[str(self.state.flow)]
        self.state.step = step
        flow.steps[step](self, None)

    def after(self, step: str) -> str:
        """The step the current dialog declares after this one."""
        return self.routes.flows[str(self.state.flow)].after(step)

    def next_step(self) -> str:
        """The step the current dialog declares after the current one."""
        return self.after(str(self.state.step))

    def end(self) -> None:
        """Leave the dialog; nothing of it is kept."""
        self.state.flow = None
        self.state.step = None
        self.data = {}

    def notify(self, recipient: Person, message: str | Plural, *, options: list[Option] | None = None,
               attachment: Attachment | None = None, **values: Any) -> None:
        """Queue a message for someone else, in their language, sent after this commit.

        `message` and option labels are msgids. Dates and reference items (agencies, topics) are
        rendered in the recipient's language; a value may also be a function of their translator.
        """
        tell(recipient, message, catalogs=self.catalogs, session=self.session,
             options=[(o.key, o.label) for o in options or []],
             file=(attachment.kind, attachment.file_id) if attachment else None, **values)

    def update_menu(self, person: Person) -> None:
        """Queue the person's command menu for their role and language (on messengers that have menus)."""
        queue_menu(person, catalogs=self.catalogs, session=self.session, messengers=self.policy.command_menus)

    def today(self) -> date:
        """Today's date in the configured time zone."""
        return self.now.astimezone(self.policy.zone).date()

    @property
    def who(self) -> str:
        """The person's messenger-qualified id, for limits and logs."""
        return f"{self.person.messenger}:{self.person.external_id}"


def text_answer(ctx: Context, answer: Answer | None, prompt: str, *, low: int, high: int) -> str | None:
    """A free-text step: ask (answer None), or return the text when its length fits, else say the limits."""
    if answer is None:
        ctx.say(prompt, [Option(Choice("cancel"), ctx.t("Cancel"))])
        return None
    text = answer.text or ""
    if not text and answer.attachment is not None:
        ctx.say(ctx.t("This step takes text only. Please type a few words."))
        return None
    if not low <= len(text) <= high:
        # An agency liaison is written to formally (Quý cơ quan), everyone else plainly.
        ctx.say(ctx.t("Please enter {min} to {max} characters.", min=low, max=ctx.t.number(high))
                if ctx.person.role == Role.AGENCY else
                ctx.t("Please write {min} to {max} characters.", min=low, max=ctx.t.number(high)))
        return None
    return text
