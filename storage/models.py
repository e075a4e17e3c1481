"""SQLModel tables: people, concerns and everything that happens to them."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import DateTime, Index, String, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel

# A messenger's file id, or a file's web address (Zalo's signed addresses can be long).
FILE_ID_LENGTH = 2048


class Status(StrEnum):
    """Where a concern is in its lifecycle (stored as these strings)."""

    NEW = "new"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    ANSWERED = "answered"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    WITHDRAWN = "withdrawn"
    REOPENED = "reopened"


OPEN_STATES = (Status.NEW, Status.ACCEPTED, Status.ASSIGNED, Status.ANSWERED, Status.REOPENED)
QUEUE_STATES = (Status.NEW, Status.REOPENED, Status.ACCEPTED, Status.ANSWERED)  # waiting for the union
# The condition of the partial index of open concerns (a query must imply it to use the index).
OPEN_CONCERN = "status IN ({})".format(", ".join(f"'{state.value}'" for state in OPEN_STATES))


class Role(StrEnum):
    """What a person does in kiennghi."""

    WORKER = "worker"
    OFFICER = "officer"
    AGENCY = "agency"
    ADMIN = "admin"


class Visibility(StrEnum):
    """Who may know a concern's author: the union, or nobody."""

    UNION = "union"
    ANONYMOUS = "anonymous"


class AssignmentStatus(StrEnum):
    """An agency's part of a concern: waiting for its answer, or answered."""

    PENDING = "pending"
    ANSWERED = "answered"
    CANCELLED = "cancelled"  # the concern was withdrawn or merged: nothing to answer any more


class ExtensionStatus(StrEnum):
    """An agency's request for a later deadline."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REFUSED = "refused"


class EnumText(TypeDecorator[Any]):
    """A StrEnum stored as its plain string value (no database enum type, no migration)."""

    impl = String
    cache_ok = True

    def __init__(self, enum: type[StrEnum], length: int = 16) -> None:
        super().__init__(length)
        self.enum = enum

    def process_bind_param(self, value: Any, dialect: object) -> str | None:
        return None if value is None else self.enum(value).value

    def process_result_value(self, value: Any, dialect: object) -> StrEnum | None:
        return None if value is None else self.enum(value)


def row_id(row: SQLModel) -> int:
    """The id of a stored row (flushed, so the database has given it one)."""
    value = getattr(row, "id", None)
    if not isinstance(value, int):
        raise ValueError(f"{type(row).__name__} has no id yet: flush it first")
    return value


def utcnow() -> datetime:
    """The current time, in UTC, aware."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC (portable across SQLite and PostgreSQL), returns aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.astimezone(UTC).replace(tzinfo=None) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


class Person(SQLModel, table=True):
    """One account on one messenger: a worker, union officer, agency liaison or admin."""

    __table_args__ = (UniqueConstraint("messenger", "external_id"),)
    id: int | None = Field(default=None, primary_key=True)
    messenger: str = Field(max_length=16)
    external_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=64)
    display_name: str = Field(default="", max_length=128)
    locale: str | None = Field(default=None, max_length=8)  # the language the person chose
    # The language their messenger reports, for messages to someone who never chose one.
    messenger_locale: str | None = Field(default=None, max_length=8)
    role: Role = Field(default=Role.WORKER, sa_type=EnumText(Role), index=True)
    agency_code: str | None = Field(default=None, max_length=32)
    consent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    # Since when the person gets no broadcasts (None: they do); news of their own concerns still comes.
    broadcasts_muted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ReferenceItem(SQLModel, table=True):
    """A category, district, industrial park or agency, loaded from the reference data file."""

    kind: str = Field(primary_key=True, max_length=16)
    code: str = Field(primary_key=True, max_length=32)
    name_vi: str = Field(max_length=200)
    name_en: str = Field(max_length=200)
    position: int = 0
    active: bool = True  # listed in the reference file (an item dropped from it is kept, inactive)
    # The days the item is offered on, both ends included; None: no limit (the file's `since`, `until`).
    valid_from: date | None = None
    valid_until: date | None = None


class Enterprise(SQLModel, table=True):
    """An enterprise workers have named, offered again to later workers who type a match."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    search_key: str = Field(max_length=200, unique=True)


class Concern(SQLModel, table=True):
    """A concern (kiến nghị) raised by a worker or entered by an officer on a worker's behalf."""

    # Measured on 1,000,000 concerns (README, Benchmark): a report or export of a period reads the concerns
    # raised in it, and /find lists matches newest first (it stops at the tenth when the words are common).
    __table_args__ = (Index("ix_concern_created_id", "created_at", "id"),
                      # The queue and the merge candidates: the few open concerns by age. Without it PostgreSQL
                      # walks the index above from the oldest concern, taking the open ones (the newest) to be
                      # spread evenly; the queries name the states as literals, so that the index applies.
                      Index("ix_concern_open_created", "created_at", "id", postgresql_where=text(OPEN_CONCERN),
                            sqlite_where=text(OPEN_CONCERN)),
                      # A broadcast to a place or a topic reads who raised concerns there, a batch at a time.
                      Index("ix_concern_place_author", "place_code", "author_id"),
                      Index("ix_concern_category_author", "category_code", "author_id"))
    id: int | None = Field(default=None, primary_key=True)
    tracking_code: str = Field(max_length=16, unique=True)
    # None for a fully anonymous concern: nobody, not even the store, knows its author.
    author_id: int | None = Field(default=None, foreign_key="person.id", index=True)
    visibility: Visibility = Field(default=Visibility.UNION, sa_type=EnumText(Visibility))
    category_code: str = Field(max_length=32)
    enterprise: str = Field(default="", max_length=200)
    place_code: str | None = Field(default=None, max_length=32)
    description: str = Field(default="", max_length=3000)
    # The content and the enterprise in lower case without diacritics, for /find: an officer types
    # "luong" on a phone without Vietnamese keys, and SQL's LIKE folds no Vietnamese letter.
    search_text: str | None = Field(default=None, max_length=3300)
    status: Status = Field(default=Status.NEW, sa_type=EnumText(Status), index=True)
    me_too: int = 1
    merged_into_id: int | None = Field(default=None, foreign_key="concern.id", index=True)
    reject_reason: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Rating(SQLModel, table=True):
    """A follower's rating (1 to 5) of how a concern was answered."""

    id: int | None = Field(default=None, primary_key=True)
    concern_id: int = Field(foreign_key="concern.id", index=True)
    # None for the holder of an anonymous concern's code.
    person_id: int | None = Field(default=None, foreign_key="person.id")
    score: int
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Attachment(SQLModel, table=True):
    """A voice note, photo or document sent with a concern, kept as the messenger's file id."""

    id: int | None = Field(default=None, primary_key=True)
    concern_id: int = Field(foreign_key="concern.id", index=True)
    messenger: str = Field(max_length=16)
    file_id: str = Field(max_length=FILE_ID_LENGTH)
    kind: str = Field(max_length=16)
    size: int | None = None


class StatusChange(SQLModel, table=True):
    """One change of a concern's state: who, when, from what, to what, and why."""

    id: int | None = Field(default=None, primary_key=True)
    concern_id: int = Field(foreign_key="concern.id", index=True)
    # None when the actor is the author of an anonymous concern, or the system.
    actor_id: int | None = Field(default=None, foreign_key="person.id", index=True)  # /forget finds them
    actor_role: str = Field(max_length=16)
    from_status: Status | None = Field(default=None, sa_type=EnumText(Status))
    to_status: Status = Field(sa_type=EnumText(Status))
    note: str | None = Field(default=None, max_length=1000)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CaseNote(SQLModel, table=True):
    """A question to the worker, the worker's reply, or a comment, kept on the case."""

    id: int | None = Field(default=None, primary_key=True)
    concern_id: int = Field(foreign_key="concern.id", index=True)
    kind: str = Field(max_length=16)  # question | reply | comment
    text: str = Field(max_length=3000)
    actor_id: int | None = Field(default=None, foreign_key="person.id")
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Assignment(SQLModel, table=True):
    """A concern handed to one agency, with a deadline and, later, the agency's written answer."""

    # An agency's list (/mine) and the reminder sweep read pending assignments by deadline.
    __table_args__ = (UniqueConstraint("concern_id", "agency_code"),
                      Index("ix_assignment_agency_status_deadline", "agency_code", "status", "deadline"),
                      # The reminder sweep reads every agency's pending assignments near their deadline,
                      # and the digest counts the answers not yet relayed.
                      Index("ix_assignment_status_deadline", "status", "deadline"),
                      Index("ix_assignment_status_relayed", "status", "relayed_at"))
    id: int | None = Field(default=None, primary_key=True)
    concern_id: int = Field(foreign_key="concern.id", index=True)
    agency_code: str = Field(max_length=32, index=True)
    deadline: date
    status: AssignmentStatus = Field(default=AssignmentStatus.PENDING, sa_type=EnumText(AssignmentStatus))
    answer_text: str | None = Field(default=None, max_length=3000)
    answer_file_id: str | None = Field(default=None, max_length=FILE_ID_LENGTH)
    answer_file_kind: str | None = Field(default=None, max_length=16)
    answer_messenger: str | None = Field(default=None, max_length=16)
    answered_by: int | None = Field(default=None, foreign_key="person.id")
    answered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    extension_requested: date | None = None
    extension_reason: str | None = Field(default=None, max_length=500)
    extension_status: ExtensionStatus | None = Field(default=None, sa_type=EnumText(ExtensionStatus))
    relayed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    assigned_by: int | None = Field(default=None, foreign_key="person.id")
    assigned_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class DialogueSession(SQLModel, table=True):
    """A dialogue conference (hội nghị đối thoại): its concerns share a response deadline."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    held_on: date
    deadline: date
    created_by: int | None = Field(default=None, foreign_key="person.id")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class ConcernOrigin(SQLModel, table=True):
    """Where a concern came from when it was not typed by its worker: a session, who entered it.

    A table of its own (not columns of `concern`), so that stores made before it need no migration.
    The speaker's name is for the union only: agencies never see it."""

    concern_id: int = Field(primary_key=True, foreign_key="concern.id")
    session_id: int | None = Field(default=None, foreign_key="dialoguesession.id", index=True)
    entered_by: int | None = Field(default=None, foreign_key="person.id")
    speaker_name: str | None = Field(default=None, max_length=128)


class SentNotice(SQLModel, table=True):
    """A reminder, escalation, digest or batch notice already queued: each is sent at most once."""

    kind: str = Field(primary_key=True, max_length=16)  # stage | overdue | escalation | digest | arrivals
    key: str = Field(primary_key=True, max_length=128)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class Invitation(SQLModel, table=True):
    """A one-time token that makes whoever opens it a union officer or an agency liaison."""

    token: str = Field(primary_key=True, max_length=32)
    role: Role = Field(sa_type=EnumText(Role))
    agency_code: str | None = Field(default=None, max_length=32)
    created_by: int | None = Field(default=None, foreign_key="person.id")
    expires_at: datetime = Field(sa_type=UTCDateTime)
    used_by: int | None = Field(default=None, foreign_key="person.id")
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Receipt(SQLModel, table=True):
    """Replies that must reach a person even if the process dies before showing them.

    Kept only until the replies are shown (an anonymous author's tracking code: without it the
    concern could never be followed), so no lasting link between the chat and the concern remains."""

    id: int | None = Field(default=None, primary_key=True)
    messenger: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    replies: str  # JSON: [[text, [[key, label], ...]], ...]
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)


class DialogState(SQLModel, table=True):
    """Where one chat is in a dialog, and the choices last shown to it; survives restarts."""

    messenger: str = Field(primary_key=True, max_length=16)
    chat_id: str = Field(primary_key=True, max_length=64)
    flow: str | None = Field(default=None, max_length=32)
    step: str | None = Field(default=None, max_length=32)
    data: str = Field(default="{}")
    options: str = Field(default="[]")
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class ProcessedUpdate(SQLModel, table=True):
    """An update already handled, so that one delivered twice is handled once."""

    messenger: str = Field(primary_key=True, max_length=16)
    update_key: str = Field(primary_key=True, max_length=128)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)  # pruned by age


class OutboxMessage(SQLModel, table=True):
    """A message for someone other than the person who acted, sent after the commit.

    pending → sending (committed just before the call to the messenger) → sent; failed when it
    cannot be delivered; uncertain when the process died during the send (possibly delivered:
    never sent again on its own); waiting when the messenger takes it only after the person writes
    again (Zalo OA's window), pending again when they do."""

    # The sender sends a chat's messages in order: it looks up the earlier ones of the same chat.
    __table_args__ = (Index("ix_outboxmessage_chat_status", "messenger", "chat_id", "status", "id"),
                      # The digest counts recent undeliverable messages; purging reads old sent ones.
                      Index("ix_outboxmessage_status_created", "status", "created_at"))
    id: int | None = Field(default=None, primary_key=True)
    messenger: str = Field(max_length=16)
    chat_id: str = Field(max_length=64)
    text: str
    options: str = Field(default="[]")
    file_id: str | None = Field(default=None, max_length=FILE_ID_LENGTH)
    file_kind: str | None = Field(default=None, max_length=16)
    status: str = Field(default="pending", max_length=16, index=True)  # pending|sending|sent|failed|uncertain|waiting
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # One message of a broadcast: sent after the chat's other messages, counted in the admin's report.
    broadcast_id: int | None = Field(default=None, foreign_key="broadcast.id", index=True)


class Broadcast(SQLModel, table=True):
    """A message from an admin to many workers (all, or those of a place or a topic), sent through the outbox."""

    id: int | None = Field(default=None, primary_key=True)
    admin_id: int | None = Field(default=None, foreign_key="person.id")
    text: str = Field(max_length=1000)
    audience: str = Field(max_length=16)  # all | place | category
    audience_code: str | None = Field(default=None, max_length=32)
    recipients: int = 0  # messages queued
    unreachable: int = 0  # workers left out: the messenger had refused them before
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    progress_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the admin's last progress notice
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)  # the final count was sent


class Unreachable(SQLModel, table=True):
    """An account the bot cannot reach: the person blocked the bot, or the account is gone.

    Written when the messenger refuses a message (Telegram's 403); removed when a message gets
    through again (the person unblocked the bot)."""

    messenger: str = Field(primary_key=True, max_length=16)
    chat_id: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=500)
    since: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class LastWrote(SQLModel, table=True):
    """When a person last wrote to the bot, on a messenger that lets the bot write only for a while
    after that (Zalo OA's messaging window); messages waiting for it go out when they write again."""

    messenger: str = Field(primary_key=True, max_length=16)
    chat_id: str = Field(primary_key=True, max_length=64)
    at: datetime = Field(sa_type=UTCDateTime)


class ZaloOAToken(SQLModel, table=True):
    """The Zalo OA's current token pair, one row per app: the access token (about 25 h) and the
    refresh token (about 3 months, usable ONCE), renewed before the access token expires.

    `version` grows with each new pair; `renewing_until` is a lease taken (by a conditional update)
    before the refresh token is spent, so that two processes never both spend it."""

    app_id: str = Field(primary_key=True, max_length=64)
    access_token: str = Field(max_length=2000)
    refresh_token: str = Field(default="", max_length=2000)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    version: int = 1
    renewing_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    seed: str = Field(max_length=64)  # a hash of the pair from the settings this row started from
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
