"""Dialog state per chat, and the record of updates already handled."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Table, bindparam, delete, text, tuple_
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import DialogState, ProcessedUpdate, utcnow

# The dialog row is read and written on every update: plain statements, built once, skip the
# ORM's unit of work (its flush costs more than the write itself).
_DIALOG: Table = DialogState.__table__  # type: ignore[attr-defined]
_OF_CHAT = (_DIALOG.c.messenger == bindparam("m")) & (_DIALOG.c.chat_id == bindparam("c"))
_LOAD = _DIALOG.select().where(_OF_CHAT)
_FIELDS = ("flow", "step", "data", "options", "updated_at")
_UPSERT = {
    "sqlite": sqlite_insert(_DIALOG).on_conflict_do_update(
        index_elements=["messenger", "chat_id"], set_={f: sqlite_insert(_DIALOG).excluded[f] for f in _FIELDS}),
    "postgresql": postgresql_insert(_DIALOG).on_conflict_do_update(
        index_elements=["messenger", "chat_id"], set_={f: postgresql_insert(_DIALOG).excluded[f] for f in _FIELDS}),
}


@dataclass
class Dialog:
    """A chat's place in a dialog, read from its `DialogState` row (a plain copy: cheap)."""

    messenger: str
    chat_id: str
    flow: str | None = None
    step: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # the answers collected so far
    options: list[list[str]] = field(default_factory=list)  # [key, label] of the choices last shown


# A lock per chat, held until the transaction ends (PostgreSQL's advisory locks need no row, so the
# first message of a chat is covered too; a rare hash collision only makes two chats take turns).
_LOCK_CHAT = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")


def lock_chat(messenger: str, chat_id: str, *, session: Session) -> None:
    """Make another process's event of the same chat wait until this transaction ends.

    Two messages of one chat that reach two processes at the same moment are then handled one
    after the other, each seeing the dialog the other left. PostgreSQL only: SQLite lets one
    writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_CHAT, {"key": f"{messenger}:{chat_id}"})


def load_dialog(messenger: str, chat_id: str, *, session: Session) -> Dialog:
    """The chat's dialog state (a fresh one if it has none); saved back by save_dialog."""
    row = session.execute(_LOAD, {"m": messenger, "c": chat_id}).mappings().first()
    if row is None:
        return Dialog(messenger, chat_id)
    return Dialog(messenger, chat_id, row["flow"], row["step"], json.loads(row["data"] or "{}"),
                  json.loads(row["options"] or "[]"))


# The time stored for a change that must leave no trace of when it happened.
UNDATED = datetime(2000, 1, 1, tzinfo=UTC)


def save_dialog(
    state: Dialog, *, flow: str | None, step: str | None, data: dict[str, Any],
    options: list[list[str]], session: Session, dated: bool = True,
) -> None:
    """Store where the chat is and the choices last shown to it (`dated=False`: with no time of change)."""
    state.flow, state.step, state.data, state.options = flow, step, data, options
    at = utcnow() if dated else UNDATED
    values = {"messenger": state.messenger, "chat_id": state.chat_id, "flow": flow, "step": step,
              "data": json.dumps(data, ensure_ascii=False), "options": json.dumps(options, ensure_ascii=False),
              "updated_at": at}
    upsert = _UPSERT.get(session.get_bind().dialect.name)
    if upsert is not None:
        session.execute(upsert, values)
    else:
        session.merge(DialogState(messenger=state.messenger, chat_id=state.chat_id, flow=flow, step=step,
                                  data=str(values["data"]), options=str(values["options"]),
                                  updated_at=at))


# INSERT ... ON CONFLICT DO NOTHING: one statement claims the update; no row inserted means it
# was handled before (also when another process claimed it a moment ago).
_PROCESSED: Table = ProcessedUpdate.__table__  # type: ignore[attr-defined]
# RETURNING, not rowcount: psycopg reports -1 rows for ON CONFLICT DO NOTHING.
_CLAIM = {
    "sqlite": sqlite_insert(_PROCESSED).on_conflict_do_nothing().returning(_PROCESSED.c.update_key),
    "postgresql": postgresql_insert(_PROCESSED).on_conflict_do_nothing().returning(_PROCESSED.c.update_key),
}


def claim_update(messenger: str, update_key: str, *, session: Session) -> bool:
    """Record an update as handled; False when it was handled before (a redelivery)."""
    claim = _CLAIM.get(session.get_bind().dialect.name)
    if claim is not None:
        result = session.execute(claim, {"messenger": messenger, "update_key": update_key, "at": utcnow()})
        return result.first() is not None
    if session.get(ProcessedUpdate, (messenger, update_key)) is not None:
        return False
    session.add(ProcessedUpdate(messenger=messenger, update_key=update_key))
    return True


PRUNE_BATCH = 10_000  # rows deleted per transaction: the write lock is never held for long


def prune_processed_updates(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget handled updates older than any messenger would redeliver, a batch per commit."""
    cutoff = (now or utcnow()) - older_than
    oldest = (select(ProcessedUpdate.messenger, ProcessedUpdate.update_key)
              .where(col(ProcessedUpdate.at) < cutoff).limit(PRUNE_BATCH))
    key = tuple_(col(ProcessedUpdate.messenger), col(ProcessedUpdate.update_key))
    total = 0
    while True:
        result = session.execute(delete(ProcessedUpdate).where(key.in_(oldest)))
        session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < PRUNE_BATCH:
            return total


def _offer(insert: Any) -> Any:
    statement = insert(_DIALOG)
    return statement.on_conflict_do_update(
        index_elements=["messenger", "chat_id"], set_={"options": statement.excluded.options},
        where=_DIALOG.c.flow.is_(None))


# Checked and written in one statement: a step the person takes meanwhile is never overwritten.
_OFFER = {"sqlite": _offer(sqlite_insert), "postgresql": _offer(postgresql_insert)}


def offer_choices(messenger: str, chat_id: str, options: list[tuple[str, str]], *, session: Session) -> None:
    """Make a delivered message's choices the chat's current ones, unless the chat is in a dialog.

    On a messenger without buttons a person answers a notification's numbered choices by typing a
    number, which means the chat's current choices; inside a dialog the step's choices stay."""
    shown = json.dumps([list(option) for option in options], ensure_ascii=False)
    offer = _OFFER.get(session.get_bind().dialect.name)
    if offer is not None:
        session.execute(offer, {"messenger": messenger, "chat_id": chat_id, "flow": None, "step": None,
                                "data": "{}", "options": shown, "updated_at": utcnow()})
        return
    row = session.get(DialogState, (messenger, chat_id))
    if row is None:
        session.add(DialogState(messenger=messenger, chat_id=chat_id, options=shown))
    elif row.flow is None:
        row.options = shown
        session.add(row)
