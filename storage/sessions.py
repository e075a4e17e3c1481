"""Dialogue sessions and where concerns came from."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import (
    Assignment,
    AssignmentStatus,
    Concern,
    ConcernOrigin,
    DialogueSession,
    Person,
    row_id,
)


def add_session(name: str, held_on: date, deadline: date, *, creator: Person, session: Session) -> DialogueSession:
    """Store a new dialogue session."""
    dialogue = DialogueSession(name=name, held_on=held_on, deadline=deadline, created_by=creator.id)
    session.add(dialogue)
    session.flush()
    return dialogue


def list_sessions(*, session: Session, open_only: bool = False, limit: int = 20) -> list[DialogueSession]:
    """Sessions, the most recent first."""
    query = select(DialogueSession)
    if open_only:
        query = query.where(col(DialogueSession.closed_at).is_(None))
    return list(session.exec(query.order_by(col(DialogueSession.held_on).desc(), col(DialogueSession.id).desc())
                             .limit(limit)))


def close_session(dialogue: DialogueSession, *, at: datetime, session: Session) -> None:
    """Close a session: no more concerns are entered into it."""
    dialogue.closed_at = at
    session.add(dialogue)


def record_origin(concern: Concern, *, dialogue: DialogueSession | None, entered_by: Person | None,
                  speaker_name: str | None, session: Session) -> None:
    """Note that a concern was raised at a session, or entered by an officer for a worker."""
    session.add(ConcernOrigin(concern_id=row_id(concern), session_id=dialogue.id if dialogue else None,
                              entered_by=entered_by.id if entered_by else None, speaker_name=speaker_name))


def origin_of(concern: Concern, *, session: Session) -> ConcernOrigin | None:
    """Where a concern came from, if it was entered for a worker or raised at a session."""
    return session.get(ConcernOrigin, concern.id)


def session_of(concern: Concern, *, session: Session) -> DialogueSession | None:
    """The dialogue session a concern belongs to, if any."""
    origin = origin_of(concern, session=session)
    return session.get(DialogueSession, origin.session_id) if origin and origin.session_id else None


def session_counts(dialogue: DialogueSession, *, today: date, session: Session) -> dict[str, int]:
    """How many concerns a session raised, how many assignments were answered and are overdue."""
    of_session = select(ConcernOrigin.concern_id).where(ConcernOrigin.session_id == dialogue.id)
    raised = session.exec(select(func.count()).select_from(ConcernOrigin)
                          .where(ConcernOrigin.session_id == dialogue.id)).one()
    answered = session.exec(select(func.count()).select_from(Assignment).where(
        col(Assignment.concern_id).in_(of_session), Assignment.status == AssignmentStatus.ANSWERED)).one()
    overdue = session.exec(select(func.count()).select_from(Assignment).where(
        col(Assignment.concern_id).in_(of_session), Assignment.status == AssignmentStatus.PENDING,
        col(Assignment.deadline) < today)).one()
    return {"raised": int(raised), "answered": int(answered), "overdue": int(overdue)}
