"""Case work: assignments to agencies, answers, notes, merges and invitations."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from storage.concerns import in_states
from storage.models import (
    OPEN_STATES,
    QUEUE_STATES,
    Assignment,
    AssignmentStatus,
    CaseNote,
    Concern,
    Invitation,
    Person,
    Rating,
    Status,
    row_id,
)


def assignments_of(concern: Concern, *, session: Session) -> list[Assignment]:
    """A concern's assignments, in the order they were made."""
    query = select(Assignment).where(Assignment.concern_id == concern.id)
    return list(session.exec(query.order_by(col(Assignment.id))))


def assignment_for(concern: Concern, agency_code: str | None, *, session: Session) -> Assignment | None:
    """The assignment of a concern to one agency, if there is one."""
    query = select(Assignment).where(Assignment.concern_id == concern.id, Assignment.agency_code == agency_code)
    return session.exec(query).first()


def queue(*, session: Session, states: tuple[Status, ...] = QUEUE_STATES, offset: int = 0,
          limit: int = 8) -> list[Concern]:
    """Concerns waiting for the union (new, reopened, accepted, answered), oldest first."""
    query = select(Concern).where(in_states(states))
    query = query.order_by(col(Concern.created_at), col(Concern.id)).offset(offset).limit(limit)
    return list(session.exec(query))


def queue_counts(*, session: Session) -> dict[Status, int]:
    """How many concerns wait in each queue state."""
    query = (select(Concern.status, func.count()).where(col(Concern.status).in_(QUEUE_STATES))
             .group_by(Concern.status))
    counts = dict.fromkeys(QUEUE_STATES, 0)
    counts.update({Status(status): int(n) for status, n in session.exec(query)})
    return counts


def add_assignment(concern: Concern, agency_code: str, deadline: date, *, officer: Person,
                   session: Session) -> Assignment:
    """A new assignment of a concern to one agency."""
    assignment = Assignment(concern_id=row_id(concern), agency_code=agency_code, deadline=deadline,
                            assigned_by=officer.id)
    session.add(assignment)
    return assignment


def cancel_pending(concern: Concern, *, session: Session) -> None:
    """A concern withdrawn or merged: its agencies have nothing left to answer."""
    session.execute(update(Assignment).where(col(Assignment.concern_id) == concern.id,
                                             col(Assignment.status) == AssignmentStatus.PENDING)
                    .values(status=AssignmentStatus.CANCELLED))


def cancel_stale(*, session: Session) -> int:
    """Cancel what stores made before cancelling existed still hold pending for closed concerns."""
    closed = select(Concern.id).where(col(Concern.status).not_in(OPEN_STATES))
    result = session.execute(update(Assignment).where(col(Assignment.status) == AssignmentStatus.PENDING,
                                                      col(Assignment.concern_id).in_(closed))
                             .values(status=AssignmentStatus.CANCELLED))
    return int(getattr(result, "rowcount", 0) or 0)


def agency_assignments(agency_code: str, *, session: Session, limit: int = 20) -> list[tuple[Assignment, Concern]]:
    """An agency's unanswered assignments, nearest deadline first."""
    query = (select(Assignment, Concern).join(Concern, col(Concern.id) == Assignment.concern_id)
             .where(Assignment.agency_code == agency_code, Assignment.status == AssignmentStatus.PENDING,
                    col(Concern.status).in_(OPEN_STATES))
             .order_by(col(Assignment.deadline), col(Assignment.id)).limit(limit))
    return [(a, c) for a, c in session.exec(query)]


def merged_into(concern: Concern, *, session: Session) -> list[Concern]:
    """The concerns merged into this one."""
    return list(session.exec(select(Concern).where(Concern.merged_into_id == concern.id)))


def merged_authors(concern: Concern, *, session: Session) -> set[int]:
    """The ids of the authors of concerns merged into this one."""
    query = select(Concern.author_id).where(Concern.merged_into_id == concern.id)
    return {author for author in session.exec(query) if author is not None}


def add_note(concern: Concern, kind: str, text: str, *, actor: Person | None, session: Session) -> CaseNote:
    """Keep a question, reply or comment on the case."""
    note = CaseNote(concern_id=row_id(concern), kind=kind, text=text, actor_id=actor.id if actor else None)
    session.add(note)
    return note


def notes_of(concern: Concern, *, session: Session) -> list[CaseNote]:
    """A case's notes, oldest first."""
    query = select(CaseNote).where(CaseNote.concern_id == concern.id)
    return list(session.exec(query.order_by(col(CaseNote.at), col(CaseNote.id))))


def last_asker(concern: Concern, *, session: Session) -> Person | None:
    """The officer who last asked the worker a question on this case."""
    query = (select(CaseNote).where(CaseNote.concern_id == concern.id, CaseNote.kind == "question")
             .order_by(col(CaseNote.id).desc()))
    note = session.exec(query).first()
    return session.get(Person, note.actor_id) if note and note.actor_id else None


def add_invitation(invitation: Invitation, *, session: Session) -> None:
    """Store a new invitation."""
    session.add(invitation)


def find_invitation(token: str, *, session: Session) -> Invitation | None:
    """An invitation by its token."""
    return session.get(Invitation, token[:32]) if token else None


def has_rated(concern: Concern, person: Person | None, *, session: Session) -> bool:
    """Whether this person (None: the anonymous code holder) has rated the concern."""
    person_id = person.id if person is not None else None
    query = select(Rating).where(Rating.concern_id == concern.id, Rating.person_id == person_id)
    return session.exec(query).first() is not None


def add_rating(concern: Concern, score: int, person: Person | None, *, session: Session) -> Rating:
    """Record a rating from 1 to 5."""
    rating = Rating(concern_id=row_id(concern), person_id=person.id if person else None, score=score)
    session.add(rating)
    return rating
