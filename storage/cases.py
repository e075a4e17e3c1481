"""Case work: assignments to agencies, answers, notes, merges and invitations."""

from __future__ import annotations

import secrets
from datetime import date, datetime, timedelta

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.concerns import OPEN_STATES, record_change
from storage.models import Assignment, CaseNote, Concern, Invitation, Person, Rating, utcnow

QUEUE_STATES = ("new", "reopened", "accepted", "answered")


def assignments_of(concern: Concern, *, session: Session) -> list[Assignment]:
    """A concern's assignments, in the order they were made."""
    query = select(Assignment).where(Assignment.concern_id == concern.id)
    return list(session.exec(query.order_by(col(Assignment.id))))


def assignment_for(concern: Concern, agency_code: str | None, *, session: Session) -> Assignment | None:
    """The assignment of a concern to one agency, if there is one."""
    query = select(Assignment).where(Assignment.concern_id == concern.id, Assignment.agency_code == agency_code)
    return session.exec(query).first()


def queue(*, session: Session, states: tuple[str, ...] = QUEUE_STATES, offset: int = 0,
          limit: int = 8) -> list[Concern]:
    """Concerns waiting for the union (new, reopened, accepted, answered), oldest first."""
    query = select(Concern).where(col(Concern.status).in_(states))
    query = query.order_by(col(Concern.created_at), col(Concern.id)).offset(offset).limit(limit)
    return list(session.exec(query))


def queue_counts(*, session: Session) -> dict[str, int]:
    """How many concerns wait in each queue state."""
    query = (select(Concern.status, func.count()).where(col(Concern.status).in_(QUEUE_STATES))
             .group_by(Concern.status))
    counts = dict.fromkeys(QUEUE_STATES, 0)
    counts.update({status: int(n) for status, n in session.exec(query)})
    return counts


def assign(concern: Concern, agency_codes: list[str], deadline: date, *, officer: Person,
           session: Session) -> list[Assignment]:
    """Hand a concern to agencies with a deadline; accepts it first if it was still new."""
    if concern.status in ("new", "reopened"):
        record_change(concern, "accepted", actor=officer, actor_role="officer", session=session)
    created = []
    for code in agency_codes:
        if assignment_for(concern, code, session=session) is not None:
            continue
        assignment = Assignment(concern_id=concern.id, agency_code=code, deadline=deadline,
                                assigned_by=officer.id)
        session.add(assignment)
        created.append(assignment)
    if concern.status != "assigned":
        note = ", ".join(agency_codes)
        record_change(concern, "assigned", actor=officer, actor_role="officer", session=session, note=note)
    session.flush()
    return created


def record_answer(assignment: Assignment, concern: Concern, *, text: str, file_id: str | None,
                  file_kind: str | None, messenger: str, liaison: Person, session: Session) -> bool:
    """Store an agency's written answer; True when every agency has now answered."""
    assignment.status = "answered"
    assignment.answer_text = text
    assignment.answer_file_id = file_id
    assignment.answer_file_kind = file_kind
    assignment.answer_messenger = messenger
    assignment.answered_by = liaison.id
    assignment.answered_at = utcnow()
    session.add(assignment)
    session.flush()
    everyone = all(a.status == "answered" for a in assignments_of(concern, session=session))
    if everyone and concern.status == "assigned":
        record_change(concern, "answered", actor=liaison, actor_role="agency", session=session,
                      note=assignment.agency_code)
    return everyone


def mark_relayed(concern: Concern, *, session: Session) -> list[Assignment]:
    """Mark the answers not yet relayed as relayed to the worker; returns them."""
    fresh = [a for a in assignments_of(concern, session=session)
             if a.status == "answered" and a.relayed_at is None]
    for assignment in fresh:
        assignment.relayed_at = utcnow()
        session.add(assignment)
    return fresh


def agency_assignments(agency_code: str, *, session: Session, limit: int = 20) -> list[tuple[Assignment, Concern]]:
    """An agency's unanswered assignments, nearest deadline first."""
    query = (select(Assignment, Concern).join(Concern, col(Concern.id) == Assignment.concern_id)
             .where(Assignment.agency_code == agency_code, Assignment.status == "pending",
                    col(Concern.status).in_(OPEN_STATES))
             .order_by(col(Assignment.deadline), col(Assignment.id)).limit(limit))
    return [(a, c) for a, c in session.exec(query)]


def merge_concerns(duplicate: Concern, kept: Concern, *, officer: Person, session: Session) -> None:
    """Merge a concern into another: the kept one's "me too" count grows by the duplicate's."""
    record_change(duplicate, "duplicate", actor=officer, actor_role="officer", session=session,
                  note=kept.tracking_code)
    duplicate.merged_into_id = kept.id
    kept.me_too += duplicate.me_too
    kept.updated_at = utcnow()
    # Concerns merged earlier into the duplicate now follow the kept one directly.
    for earlier in session.exec(select(Concern).where(Concern.merged_into_id == duplicate.id)):
        earlier.merged_into_id = kept.id
        session.add(earlier)
    session.add(duplicate)
    session.add(kept)


def followers(concern: Concern, *, session: Session) -> list[Person]:
    """Who hears about a concern: its author and the authors of concerns merged into it."""
    ids = {concern.author_id} if concern.author_id else set()
    query = select(Concern.author_id).where(Concern.merged_into_id == concern.id)
    ids.update(author for author in session.exec(query) if author is not None)
    return [p for p in (session.get(Person, i) for i in sorted(ids)) if p is not None]


def add_note(concern: Concern, kind: str, text: str, *, actor: Person | None, session: Session) -> CaseNote:
    """Keep a question, reply or comment on the case."""
    note = CaseNote(concern_id=concern.id, kind=kind, text=text, actor_id=actor.id if actor else None)
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


def create_invitation(role: str, agency_code: str | None, *, admin: Person, days: int,
                      session: Session, now: datetime | None = None) -> Invitation:
    """A single-use invitation to a role, valid for `days` days."""
    invitation = Invitation(
        token=secrets.token_urlsafe(12), role=role, agency_code=agency_code, created_by=admin.id,
        expires_at=(now or utcnow()) + timedelta(days=days),
    )
    session.add(invitation)
    return invitation


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
    rating = Rating(concern_id=concern.id, person_id=person.id if person else None, score=score)
    session.add(rating)
    return rating
