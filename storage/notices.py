"""What the reminder sweep reads, and its record of what it has sent."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, case, func, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import (
    OPEN_STATES,
    Assignment,
    AssignmentStatus,
    Concern,
    ExtensionStatus,
    OutboxMessage,
    SentNotice,
    Status,
    utcnow,
)

_NOTICE: Table = SentNotice.__table__  # type: ignore[attr-defined]
# A conditional insert: of two processes sweeping at once, only one gets the row and sends.
_CLAIM = {
    "sqlite": sqlite_insert(_NOTICE).on_conflict_do_nothing().returning(_NOTICE.c.key),
    "postgresql": postgresql_insert(_NOTICE).on_conflict_do_nothing().returning(_NOTICE.c.key),
}


def claim_notice(kind: str, key: str, *, session: Session, at: datetime | None = None) -> bool:
    """Record a notice as sent; False when it was sent before (by this process or another)."""
    return key in claim_notices(kind, [key], session=session, at=at)


def claim_notices(kind: str, keys: list[str], *, session: Session, at: datetime | None = None) -> set[str]:
    """Record many notices in one statement; the keys that were not sent before (now claimed)."""
    if not keys:
        return set()
    when = at or utcnow()
    claim = _CLAIM.get(session.get_bind().dialect.name)
    if claim is None:  # another database: look, then add (no conditional insert to rely on)
        fresh = [key for key in keys if session.get(SentNotice, (kind, key)) is None]
        session.add_all([SentNotice(kind=kind, key=key, at=when) for key in fresh])
        return set(fresh)
    # Many parameter sets, one statement: SQLAlchemy sends them as batched multi-row inserts, and
    # RETURNING names the rows that were new.
    rows = [{"kind": kind, "key": key, "at": when} for key in keys]
    return {key for (key,) in session.execute(claim, rows)}


def last_notice_at(kind: str, *, session: Session) -> datetime | None:
    """When a notice of this kind was last sent."""
    query = select(func.max(SentNotice.at)).where(SentNotice.kind == kind)
    return session.exec(query).one()


@dataclass(frozen=True)
class Due:
    """An unanswered assignment near or past its deadline, and what a reminder shows of its concern."""

    assignment_id: int
    agency_code: str
    deadline: date
    tracking_code: str
    category_code: str
    description: str


def pending_until(last_day: date, *, session: Session) -> list[Due]:
    """Unanswered assignments of open concerns due on or before a day (overdue ones included)."""
    # Plain rows, not ORM objects: a sweep reads hundreds and needs six columns of each.
    query = (sa_select(col(Assignment.id), col(Assignment.agency_code), col(Assignment.deadline),
                       col(Concern.tracking_code), col(Concern.category_code), col(Concern.description))
             .join(Concern, col(Concern.id) == Assignment.concern_id)
             .where(col(Assignment.status) == AssignmentStatus.PENDING, col(Assignment.deadline) <= last_day,
                    col(Concern.status).in_(OPEN_STATES))
             .order_by(col(Assignment.agency_code), col(Assignment.deadline), col(Assignment.id)))
    return [Due(*row) for row in session.execute(query)]


def last_key(kind: str, *, session: Session) -> str | None:
    """The greatest key recorded for a kind of notice (keys made to sort, e.g. zero-padded ids)."""
    return session.exec(select(func.max(SentNotice.key)).where(SentNotice.kind == kind)).one()


def arrivals_after(concern_id: int, *, session: Session, limit: int = 50) -> list[Concern]:
    """New concerns not yet accepted, stored after this one, oldest first."""
    query = select(Concern).where(Concern.status == Status.NEW, col(Concern.id) > concern_id)
    return list(session.exec(query.order_by(col(Concern.id)).limit(limit)))


def union_work(*, today: date, week_end: date, session: Session, since: datetime) -> dict[str, int]:
    """The counts of an officers' digest: what waits for the union today."""

    def count(query: Any) -> int:
        return int(session.exec(query).one())

    pending = (Assignment.status == AssignmentStatus.PENDING)
    open_concern = col(Assignment.concern_id).in_(select(Concern.id).where(col(Concern.status).in_(OPEN_STATES)))
    return {
        "new": count(select(func.count()).select_from(Concern).where(Concern.status == Status.NEW)),
        # From the open concerns (a few thousand), not from every answer ever given.
        "to_relay": count(select(func.count()).select_from(Concern).join(
            Assignment, col(Assignment.concern_id) == Concern.id).where(
            col(Concern.status).in_(OPEN_STATES), Assignment.status == AssignmentStatus.ANSWERED,
            col(Assignment.relayed_at).is_(None))),
        "due_this_week": count(select(func.count()).select_from(Assignment).where(
            pending, col(Assignment.deadline) >= today, col(Assignment.deadline) <= week_end, open_concern)),
        "overdue": count(select(func.count()).select_from(Assignment).where(
            pending, col(Assignment.deadline) < today, open_concern)),
        "extensions": count(select(func.count()).select_from(Assignment).where(
            Assignment.extension_status == ExtensionStatus.REQUESTED, pending)),
        "undelivered": count(select(func.count()).select_from(OutboxMessage).where(
            # waiting: held until a Zalo OA person writes again; not delivered either, and listed in /undelivered
            col(OutboxMessage.status).in_(("failed", "uncertain", "waiting")), col(OutboxMessage.created_at) >= since)),
    }


def agency_deadlines(*, today: date, utc_offset_hours: float, session: Session) -> list[dict[str, Any]]:
    """Per agency: upcoming and overdue unanswered assignments, and answers on time or late.

    A deadline falls due at the end of its day in local time: `utc_offset_hours` says when that is."""
    deadline, answered_at = col(Assignment.deadline), col(Assignment.answered_at)
    pending = col(Assignment.status) == AssignmentStatus.PENDING
    answered = col(Assignment.status) == AssignmentStatus.ANSWERED
    due_end: ColumnElement[Any]
    if session.get_bind().dialect.name == "sqlite":
        due_end = func.datetime(deadline, "+1 day", f"{-utc_offset_hours:+} hours")
    else:
        due_end = deadline + literal_column("interval '1 day'") - func.make_interval(
            0, 0, 0, 0, 0, 0, utc_offset_hours * 3600)
    query = (sa_select(
        col(Assignment.agency_code),
        func.sum(case((and_(pending, deadline >= today), 1), else_=0)),
        func.sum(case((and_(pending, deadline < today), 1), else_=0)),
        func.sum(case((and_(answered, answered_at < due_end), 1), else_=0)),
        func.sum(case((and_(answered, answered_at >= due_end), 1), else_=0)),
    ).join(Concern, col(Concern.id) == Assignment.concern_id)
        .where(col(Concern.status) != Status.WITHDRAWN).group_by(Assignment.agency_code))
    rows = [{"agency": agency, "upcoming": int(up or 0), "overdue": int(over or 0), "on_time": int(ok or 0),
             "late": int(late or 0)} for agency, up, over, ok, late in session.execute(query)]
    return sorted(rows, key=lambda r: (-r["overdue"], r["agency"]))
