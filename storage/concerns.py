"""Concerns, their tracking codes, attachments and the history of their states."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import ColumnElement, and_, bindparam, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import (
    OPEN_STATES,
    Attachment,
    CaseNote,
    Concern,
    ConcernOrigin,
    Person,
    Rating,
    Status,
    StatusChange,
    Visibility,
    row_id,
    utcnow,
)
from storage.reference import search_key

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_ALIASES = str.maketrans({"I": "1", "L": "1", "O": "0"})
_CODE_TEXT = re.compile(r"^(?:KN)?[\s\-]*([0-9A-Z]{4})[\s\-]*([0-9A-Z]{4})$")
_PREFIXED_CODE = re.compile(r"^\s*KN[\s\-]*[0-9A-Z]{4}[\s\-]*[0-9A-Z]{4}\s*$", re.IGNORECASE)

def new_tracking_code() -> str:
    """A fresh code KN-XXXX-XXXX: 40 random bits in Crockford base32."""
    bits = secrets.randbits(40)
    symbols = "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"KN-{symbols[:4]}-{symbols[4:]}"


def parse_tracking_code(text: str) -> str | None:
    """The canonical code for what a person typed (any case, dashes or not), or None."""
    cleaned = text.strip().upper().translate(_CROCKFORD_ALIASES)
    cleaned = cleaned.replace("K N", "KN")
    # The pattern's own optional KN lets a code whose symbols begin with KN read without its prefix.
    match = _CODE_TEXT.match(cleaned.strip(" -"))
    if match is None:
        return None
    symbols = match.group(1) + match.group(2)
    if any(ch not in CROCKFORD for ch in symbols):
        return None
    return f"KN-{symbols[:4]}-{symbols[4:]}"


def looks_like_tracking_code(text: str) -> bool:
    """True for text that is a code with its KN prefix (so plain words are not mistaken)."""
    return bool(_PREFIXED_CODE.match(text)) and parse_tracking_code(text) is not None


def add_status_change(
    concern: Concern, from_status: Status | None, to_status: Status, *, actor: Person | None, actor_role: str,
    session: Session, note: str | None = None, at: datetime | None = None,
) -> None:
    """Append one entry to a concern's history."""
    session.add(StatusChange(
        concern_id=row_id(concern), actor_id=actor.id if actor else None, actor_role=actor_role,
        from_status=from_status, to_status=to_status, note=note, at=at or utcnow(),
    ))


def create_concern(
    *, author: Person | None, visibility: Visibility, category_code: str, enterprise: str,
    place_code: str | None, description: str, attachments: list[dict[str, object]],
    messenger: str, actor: Person | None, actor_role: str, session: Session,
) -> Concern:
    """Store a new concern with its attachments and first history entry (not committed)."""
    for _ in range(5):
        concern = Concern(
            tracking_code=new_tracking_code(),
            author_id=author.id if author is not None else None,
            visibility=visibility, category_code=category_code, enterprise=enterprise,
            place_code=place_code, description=description, search_text=search_key(f"{description} {enterprise}"),
        )
        try:
            with session.begin_nested():
                session.add(concern)
                session.flush()
            break
        except IntegrityError:  # a code collision: 1 in a trillion, but cheap to survive
            continue
    else:  # pragma: no cover
        raise RuntimeError("could not allocate a tracking code")
    for item in attachments:
        session.add(Attachment(
            concern_id=row_id(concern), messenger=messenger, file_id=str(item["file_id"]),
            kind=str(item["kind"]), size=item.get("size"),  # type: ignore[arg-type]
        ))
    add_status_change(concern, None, Status.NEW, actor=actor, actor_role=actor_role, at=concern.created_at,
                      session=session)
    return concern


def get_concern_by_code(code: str, *, session: Session) -> Concern | None:
    """The concern with this canonical tracking code."""
    return session.exec(select(Concern).where(Concern.tracking_code == code)).first()


def concerns_by_author(author: Person, *, session: Session, limit: int = 10) -> list[Concern]:
    """A person's own concerns, newest first."""
    query = select(Concern).where(Concern.author_id == author.id)
    query = query.order_by(col(Concern.created_at).desc(), col(Concern.id).desc()).limit(limit)
    return list(session.exec(query))


def find_concerns(words: list[str], *, place_codes: list[str], session: Session, limit: int = 10) -> list[Concern]:
    """Concerns whose content or enterprise holds every word, with or without accents and capitals (or whose
    place is one of `place_codes`), newest first."""
    keys = [key for key in (search_key(word) for word in words) if key]
    matches = [col(Concern.search_text).like(f"%{key}%") for key in keys]
    found = and_(*matches) if matches else None
    if place_codes:
        found = or_(found, col(Concern.place_code).in_(place_codes)) if found is not None else col(
            Concern.place_code).in_(place_codes)
    if found is None:
        return []
    query = select(Concern).where(found, col(Concern.status) != Status.DUPLICATE)
    return list(session.exec(query.order_by(col(Concern.created_at).desc(), col(Concern.id).desc()).limit(limit)))


def in_states(states: tuple[Status, ...]) -> ColumnElement[bool]:
    """`status IN (...)` with the states written into the statement: PostgreSQL then knows them even in a
    prepared statement's generic plan, and can use the partial index of open concerns."""
    return col(Concern.status).in_(bindparam("states", [state.value for state in states], expanding=True,
                                             literal_execute=True))


def merge_candidates(concern: Concern, *, session: Session, limit: int = 200) -> list[Concern]:
    """Other concerns still being handled that share the topic, enterprise or place: where a duplicate may be."""
    shared = [col(Concern.category_code) == concern.category_code]
    if concern.enterprise:
        shared.append(col(Concern.enterprise) == concern.enterprise)
    if concern.place_code:
        shared.append(col(Concern.place_code) == concern.place_code)
    query = select(Concern).where(in_states(OPEN_STATES), col(Concern.id) != concern.id, or_(*shared))
    return list(session.exec(query.order_by(col(Concern.created_at).desc()).limit(limit)))


def attachment_addresses(messengers: tuple[str, ...], *, session: Session) -> set[str]:
    """The file ids (web addresses, for Zalo) of the attachments still kept from these messengers."""
    query = select(Attachment.file_id).where(col(Attachment.messenger).in_(messengers))
    return set(session.exec(query))


def attachments_of(concern: Concern, *, session: Session) -> list[Attachment]:
    """A concern's attachments, in the order they were sent."""
    query = select(Attachment).where(Attachment.concern_id == concern.id)
    return list(session.exec(query.order_by(col(Attachment.id))))


def history_of(concern: Concern, *, session: Session) -> list[StatusChange]:
    """A concern's history, oldest first."""
    query = select(StatusChange).where(StatusChange.concern_id == concern.id)
    return list(session.exec(query.order_by(col(StatusChange.at), col(StatusChange.id))))


def unlink_author(author: Person, *, session: Session) -> None:
    """Make a person's concerns, history entries, notes and ratings anonymous (on a deletion request)."""
    for concern in session.exec(select(Concern).where(Concern.author_id == author.id)):
        concern.author_id = None
        concern.visibility = Visibility.ANONYMOUS
        session.add(concern)
    for change in session.exec(select(StatusChange).where(StatusChange.actor_id == author.id)):
        change.actor_id = None
        session.add(change)
    # Their replies to the union and their ratings stay, without them.
    for note in session.exec(select(CaseNote).where(CaseNote.actor_id == author.id)):
        note.actor_id = None
        session.add(note)
    for rating in session.exec(select(Rating).where(Rating.person_id == author.id)):
        rating.person_id = None
        session.add(rating)


FINISHED = (Status.CLOSED, Status.REJECTED, Status.WITHDRAWN)


def anonymise_finished(before: datetime, *, session: Session, limit: int = 500) -> int:
    """Remove who raised a concern from concerns finished before `before` (the retention period).

    The content stays, for statistics; the author, their files (a voice is personal data), the
    speaker's name and the author's marks in the history go. A concern merged into another goes
    when that one has finished too. Returns how many concerns changed (at most `limit` a call)."""
    kept = select(Concern.id).where(col(Concern.status).in_(FINISHED), col(Concern.updated_at) < before)
    finished = or_(col(Concern.status).in_(FINISHED),
                   and_(col(Concern.status) == Status.DUPLICATE, col(Concern.merged_into_id).in_(kept)))
    with_author = col(Concern.author_id).is_not(None) | col(Concern.id).in_(select(Attachment.concern_id)) | col(
        Concern.id).in_(select(ConcernOrigin.concern_id).where(col(ConcernOrigin.speaker_name).is_not(None)))
    concerns = session.exec(select(Concern).where(finished, col(Concern.updated_at) < before, with_author)
                            .limit(limit)).all()
    for concern in concerns:
        author = concern.author_id
        if author is not None:
            for table in (StatusChange, CaseNote):
                for row in session.exec(select(table).where(table.concern_id == concern.id,
                                                            table.actor_id == author)):
                    row.actor_id = None
                    session.add(row)
            for rating in session.exec(select(Rating).where(Rating.concern_id == concern.id,
                                                            Rating.person_id == author)):
                rating.person_id = None
                session.add(rating)
        for attachment in session.exec(select(Attachment).where(Attachment.concern_id == concern.id)):
            session.delete(attachment)
        origin = session.get(ConcernOrigin, concern.id)
        if origin is not None and origin.speaker_name is not None:
            origin.speaker_name = None
            session.add(origin)
        concern.author_id = None
        concern.visibility = Visibility.ANONYMOUS
        session.add(concern)
    return len(concerns)
