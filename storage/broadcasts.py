"""Broadcasts: who receives one, the record of it, and how far its sending has come."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import Exists, func, text
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage.models import Broadcast, Concern, OutboxMessage, Person, Role, Unreachable, utcnow

ALL, PLACE, CATEGORY = "all", "place", "category"


def _audience(audience: str, code: str | None) -> SelectOfScalar[Person]:
    """Workers who accepted the privacy notice and did not mute broadcasts; for a place or a topic,
    those who raised a concern there (an anonymous concern names nobody, so it counts for nobody)."""
    query = select(Person).where(Person.role == Role.WORKER, col(Person.consent_at).is_not(None),
                                 col(Person.broadcasts_muted_at).is_(None))
    if audience in (PLACE, CATEGORY):
        column = Concern.place_code if audience == PLACE else Concern.category_code
        authors = select(Concern.author_id).where(column == code, col(Concern.author_id).is_not(None))
        query = query.where(col(Person.id).in_(authors))
    return query


def _known_unreachable() -> Exists:
    return select(Unreachable.chat_id).where(Unreachable.messenger == Person.messenger,
                                             Unreachable.chat_id == Person.chat_id).exists()


def count_audience(audience: str, code: str | None, *, session: Session) -> tuple[int, int]:
    """How many workers a broadcast would reach, and how many of them the messenger refused before."""
    total, refused = session.execute(_audience(audience, code).with_only_columns(
        func.count(), func.count().filter(_known_unreachable()))).one()
    return int(total) - int(refused), int(refused)


def audience_of(audience: str, code: str | None, *, session: Session, batch: int = 1000) -> Iterator[Person]:
    """The workers a broadcast goes to (those the messenger refused before are left out), in batches."""
    last = 0
    while True:
        found = list(session.exec(_audience(audience, code).where(~_known_unreachable(), col(Person.id) > last)
                                  .order_by(col(Person.id)).limit(batch)))
        yield from found
        if len(found) < batch:
            return
        last = int(found[-1].id or 0)


def add_broadcast(admin: Person, text: str, audience: str, code: str | None, *, session: Session) -> Broadcast:
    """Record a broadcast (its messages are queued by the caller, in the same transaction)."""
    broadcast = Broadcast(admin_id=admin.id, text=text, audience=audience, audience_code=code)
    session.add(broadcast)
    session.flush()
    return broadcast


ANALYZE_FROM = 1000  # messages queued at once from which the outbox's statistics are taken again


def refresh_outbox_statistics(queued: int, *, session: Session) -> None:
    """After many messages were queued at once: on PostgreSQL, the outbox's statistics taken again, in the
    same transaction (ANALYZE counts its own rows), so that the sender's first statements are planned
    for the long queue. With the statistics of a quiet outbox ("nothing waits"), PostgreSQL read every
    waiting message for each one: a broadcast of 16,000 messages made one of the sender's reads take
    over a minute, and each claim read all 16,000 (README, Benchmark)."""
    if queued >= ANALYZE_FROM and session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE outboxmessage"))


def unfinished_broadcasts(*, session: Session) -> list[Broadcast]:
    """Broadcasts whose final count has not been sent to their admin yet."""
    return list(session.exec(select(Broadcast).where(col(Broadcast.finished_at).is_(None))
                             .order_by(col(Broadcast.id))))


def delivery_counts(broadcast: Broadcast, *, session: Session) -> dict[str, int]:
    """A broadcast's messages by outbox status (pending, sending, sent, failed, uncertain, waiting)."""
    rows = session.exec(select(OutboxMessage.status, func.count()).where(OutboxMessage.broadcast_id == broadcast.id)
                        .group_by(col(OutboxMessage.status)))
    return {status: int(count) for status, count in rows}


def set_muted(person: Person, muted: bool, *, session: Session, at: datetime | None = None) -> None:
    """Stop (or start again) broadcasts to this person."""
    person.broadcasts_muted_at = (at or utcnow()) if muted else None
    session.add(person)
