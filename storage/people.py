"""People: one row per messenger account, with role and language."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func
from sqlmodel import Session, col, select

from storage.models import CaseNote, DialogState, LastWrote, Person, Rating, Role, utcnow

STAFF_ROLES = (Role.ADMIN, Role.OFFICER, Role.AGENCY)


# Built once, run on every update: building a statement and its cache key costs more than
# running it.
_PERSON_BY_ACCOUNT = select(Person).where(
    Person.messenger == bindparam("messenger"), Person.external_id == bindparam("external_id"))


def find_person(messenger: str, external_id: str, *, session: Session) -> Person | None:
    """The person behind a messenger account, if known."""
    return session.exec(_PERSON_BY_ACCOUNT, params={"messenger": messenger, "external_id": external_id}).first()


def get_or_create_person(
    messenger: str, external_id: str, *, chat_id: str, display_name: str, session: Session,
    language_code: str | None = None,
) -> Person:
    """The person behind a messenger account, created on first contact; the messenger's language is kept."""
    language = (language_code or "").split("-")[0].lower()[:8] or None
    person = find_person(messenger, external_id, session=session)
    if person is None:
        person = Person(
            messenger=messenger, external_id=external_id, chat_id=chat_id,
            display_name=display_name[:128], messenger_locale=language,
        )
        session.add(person)
        session.flush()
    elif (person.chat_id != chat_id or (display_name and person.display_name != display_name[:128])
          or (language and person.messenger_locale != language)):
        person.chat_id = chat_id
        person.display_name = display_name[:128] or person.display_name
        person.messenger_locale = language or person.messenger_locale
        session.add(person)
    return person


def set_locale(person: Person, locale: str, *, session: Session) -> None:
    """Remember the person's language."""
    person.locale = locale
    session.add(person)


def record_consent(person: Person, *, session: Session, at: datetime | None = None) -> None:
    """Record that the person accepted the privacy notice."""
    person.consent_at = at or utcnow()
    session.add(person)


def set_role(person: Person, role: Role, agency_code: str | None, *, session: Session) -> None:
    """Give the person a role (worker, officer, agency, admin)."""
    person.role = role
    person.agency_code = agency_code if role == Role.AGENCY else None
    session.add(person)


def list_staff(*, session: Session) -> list[Person]:
    """Everyone holding a staff role, by role then name."""
    query = select(Person).where(col(Person.role).in_(STAFF_ROLES))
    return list(session.exec(query.order_by(col(Person.role), col(Person.display_name))))


def people_with_role(role: Role, *, session: Session, agency_code: str | None = None) -> list[Person]:
    """Everyone with one role (for an agency role, of one agency)."""
    query = select(Person).where(Person.role == role)
    if agency_code is not None:
        query = query.where(Person.agency_code == agency_code)
    return list(session.exec(query.order_by(col(Person.id))))


def liaisons_by_agency(*, session: Session) -> dict[str, list[Person]]:
    """Every agency liaison, by agency."""
    found: dict[str, list[Person]] = {}
    for person in people_with_role(Role.AGENCY, session=session):
        found.setdefault(str(person.agency_code), []).append(person)
    return found


def data_of(person: Person, *, session: Session) -> dict[str, int]:
    """How many ratings and notes (questions answered, "not resolved") the store keeps from this person."""
    ratings = session.exec(select(func.count()).select_from(Rating).where(Rating.person_id == person.id)).one()
    notes = session.exec(select(func.count()).select_from(CaseNote).where(CaseNote.actor_id == person.id)).one()
    return {"ratings": int(ratings), "notes": int(notes)}


def forget_person(person: Person, *, session: Session) -> None:
    """Erase a worker's personal data: name, consent, dialog; their concerns lose the author."""
    from storage.concerns import unlink_author

    unlink_author(person, session=session)
    for row in (session.get(DialogState, (person.messenger, person.chat_id)),
                session.get(LastWrote, (person.messenger, person.chat_id))):  # when they last wrote: gone too
        if row is not None:
            session.delete(row)
    person.display_name = ""
    person.consent_at = None
    person.locale = None
    person.messenger_locale = None
    session.add(person)
