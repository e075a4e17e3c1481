"""Case work: raising, assigning, answering, relaying, merging, and who hears about a concern."""

from __future__ import annotations

from datetime import date, datetime

from rapidfuzz import fuzz
from sqlmodel import Session

from handlers.rules.lifecycle import ANSWERED_STATES, change_status
from storage.cases import add_assignment, assignment_for, assignments_of, merged_authors, merged_into
from storage.concerns import create_concern, merge_candidates
from storage.models import (
    Assignment,
    AssignmentStatus,
    Concern,
    Person,
    Role,
    Status,
    Visibility,
    utcnow,
)
from storage.people import people_with_role
from storage.reference import remember_enterprise, search_key


def raise_concern(
    *, author: Person | None, visibility: Visibility, category_code: str, enterprise: str,
    place_code: str | None, description: str, attachments: list[dict[str, object]],
    messenger: str, actor: Person | None, actor_role: Role, session: Session,
) -> Concern:
    """Store a new concern; an anonymous one keeps no trace of its author, not even in its history."""
    if visibility == Visibility.ANONYMOUS:
        author = None
        if actor_role == Role.WORKER:
            actor = None
    concern = create_concern(
        author=author, visibility=visibility, category_code=category_code, enterprise=enterprise,
        place_code=place_code, description=description, attachments=attachments, messenger=messenger,
        actor=actor, actor_role=actor_role, session=session)
    if enterprise:
        remember_enterprise(enterprise, session=session)
    return concern


def followers(concern: Concern, *, session: Session) -> list[Person]:
    """Who hears about a concern: its author and the authors of concerns merged into it."""
    ids = {concern.author_id} if concern.author_id else set()
    ids.update(merged_authors(concern, session=session))
    return [p for p in (session.get(Person, i) for i in sorted(ids)) if p is not None]


def is_follower(concern: Concern, person: Person, *, session: Session) -> bool:
    """Whether the person raised this concern or one merged into it."""
    return any(p.id == person.id for p in followers(concern, session=session))


def union_staff(*, session: Session) -> list[Person]:
    """Who is told about case events: the union officers (the admins when there are none)."""
    return people_with_role(Role.OFFICER, session=session) or people_with_role(Role.ADMIN, session=session)


def liaisons(agency_code: str, *, session: Session) -> list[Person]:
    """The people who answer for one agency."""
    return people_with_role(Role.AGENCY, agency_code=agency_code, session=session)


def assign(concern: Concern, agency_codes: list[str], deadline: date, *, officer: Person,
           session: Session) -> list[Assignment]:
    """Hand a concern to agencies with a deadline (accepting it first if still new); the new assignments."""
    if concern.status in (Status.NEW, Status.REOPENED):
        change_status(concern, Status.ACCEPTED, actor=officer, actor_role=Role.OFFICER, session=session)
    created = [add_assignment(concern, code, deadline, officer=officer, session=session)
               for code in agency_codes if assignment_for(concern, code, session=session) is None]
    if concern.status != Status.ASSIGNED:
        change_status(concern, Status.ASSIGNED, actor=officer, actor_role=Role.OFFICER, session=session,
                      note=", ".join(agency_codes))
    session.flush()
    return created


def record_answer(assignment: Assignment, concern: Concern, *, text: str, file_id: str | None,
                  file_kind: str | None, messenger: str, liaison: Person, session: Session) -> bool:
    """Store an agency's written answer; True when every agency has now answered."""
    assignment.status = AssignmentStatus.ANSWERED
    assignment.answer_text = text
    assignment.answer_file_id = file_id
    assignment.answer_file_kind = file_kind
    assignment.answer_messenger = messenger
    assignment.answered_by = liaison.id
    assignment.answered_at = utcnow()
    session.add(assignment)
    session.flush()
    everyone = all(a.status == AssignmentStatus.ANSWERED for a in assignments_of(concern, session=session))
    if everyone and concern.status == Status.ASSIGNED:
        change_status(concern, Status.ANSWERED, actor=liaison, actor_role=Role.AGENCY, session=session,
                      note=assignment.agency_code)
    return everyone


def unrelayed_answers(concern: Concern, *, session: Session) -> list[Assignment]:
    """Answers the union has not yet passed on to the worker."""
    return [a for a in assignments_of(concern, session=session)
            if a.status == AssignmentStatus.ANSWERED and a.relayed_at is None]


def may_rate(concern: Concern, *, session: Session) -> bool:
    """Whether there is an answer to rate: the concern is answered and the worker has received it."""
    return concern.status in ANSWERED_STATES and any(
        a.relayed_at is not None for a in assignments_of(concern, session=session))


def may_reopen(concern: Concern, *, now: datetime, days: int) -> bool:
    """Whether the worker may still say the concern is not resolved (answered, not long ago)."""
    return concern.status in ANSWERED_STATES and (now - concern.updated_at).days <= days


def relay(concern: Concern, *, session: Session, now: datetime | None = None) -> list[Assignment]:
    """Mark the answers not yet relayed as relayed to the worker; returns them."""
    fresh = unrelayed_answers(concern, session=session)
    for assignment in fresh:
        assignment.relayed_at = now or utcnow()
        session.add(assignment)
    return fresh


SIMILAR_AT = 60  # token-set similarity (0-100) from which two descriptions read as the same problem


def similar_concerns(concern: Concern, *, session: Session, limit: int = 3) -> list[tuple[Concern, int]]:
    """Up to `limit` open concerns that look like the same problem: same enterprise or place and similar
    words (rapidfuzz's token-set ratio, accents and case ignored), the most similar first."""
    words = search_key(concern.description)
    if not words:
        return []
    scored = []
    for other in merge_candidates(concern, session=session):
        if not (other.enterprise and other.enterprise == concern.enterprise) and not (
                other.place_code and other.place_code == concern.place_code):
            continue
        score = round(fuzz.token_set_ratio(words, search_key(other.description)))
        if score >= SIMILAR_AT:
            scored.append((other, score))
    return sorted(scored, key=lambda pair: -pair[1])[:limit]


def same_author(one: Concern, other: Concern, *, session: Session) -> bool:
    """Whether a worker who raised one of the concerns also follows the other."""
    authors = {p.id for p in followers(one, session=session)}
    return bool(authors) and authors <= {p.id for p in followers(other, session=session)}


def merge(duplicate: Concern, kept: Concern, *, officer: Person, session: Session) -> None:
    """Merge a concern into another: the kept one's "me too" count grows by the duplicate's,
    unless one worker raised both (a person is counted once)."""
    same_worker = same_author(duplicate, kept, session=session)
    change_status(duplicate, Status.DUPLICATE, actor=officer, actor_role=Role.OFFICER, session=session,
                  note=kept.tracking_code)
    duplicate.merged_into_id = kept.id
    if not same_worker:
        kept.me_too += duplicate.me_too
    kept.updated_at = utcnow()
    # Concerns merged earlier into the duplicate now follow the kept one directly.
    for earlier in merged_into(duplicate, session=session):
        earlier.merged_into_id = kept.id
        session.add(earlier)
    session.add(duplicate)
    session.add(kept)
