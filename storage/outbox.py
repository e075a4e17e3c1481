"""The outbox: messages for other people, written with the change that caused them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, select

from storage.models import OutboxMessage, Person, Receipt, utcnow

MAX_ATTEMPTS = 10


def enqueue(
    recipient: Person, text: str, *, session: Session, options: list[tuple[str, str]] | None = None,
    file_id: str | None = None, file_kind: str | None = None,
) -> OutboxMessage:
    """Queue a message for a person; it is sent only once the caller's transaction commits."""
    message = OutboxMessage(
        messenger=recipient.messenger, chat_id=recipient.chat_id, text=text,
        options=json.dumps([list(o) for o in options or []], ensure_ascii=False),
        file_id=file_id, file_kind=file_kind,
    )
    session.add(message)
    return message


def options_of(message: OutboxMessage) -> list[tuple[str, str]]:
    """The (key, label) choices queued with a message."""
    return [(key, label) for key, label in json.loads(message.options or "[]")]


def due_messages(messengers: list[str], *, session: Session, limit: int = 50,
                 now: datetime | None = None) -> list[OutboxMessage]:
    """Messages to send now on these messengers, oldest first (retries wait their turn)."""
    query = select(OutboxMessage).where(
        OutboxMessage.status == "pending", col(OutboxMessage.messenger).in_(messengers),
        col(OutboxMessage.next_attempt_at) <= (now or utcnow()),
    )
    return list(session.exec(query.order_by(col(OutboxMessage.id)).limit(limit)))


def mark_sent(message: OutboxMessage, *, session: Session, at: datetime | None = None) -> None:
    """Record a message as delivered."""
    message.status = "sent"
    message.sent_at = at or utcnow()
    message.attempts += 1
    session.add(message)
    session.commit()


def mark_failed(message: OutboxMessage, error: str, *, session: Session, permanent: bool) -> None:
    """Record a failed attempt; after too many, or a permanent error, give up with the reason."""
    message.attempts += 1
    message.last_error = error[:500]
    if permanent or message.attempts >= MAX_ATTEMPTS:
        message.status = "failed"
    else:  # back off: 20 s, 80 s, 5 min, 21 min, then hourly
        message.next_attempt_at = utcnow() + timedelta(seconds=min(3600, 5 * 4**message.attempts))
    session.add(message)
    session.commit()


def purge_sent(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete delivered messages older than this (undeliverable ones stay for officers to see)."""
    cutoff = (now or utcnow()) - older_than
    result = session.execute(delete(OutboxMessage).where(
        col(OutboxMessage.status) == "sent", col(OutboxMessage.created_at) < cutoff))
    session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


def add_receipt(messenger: str, chat_id: str, replies: list[tuple[str, list[tuple[str, str]]]], *,
                session: Session) -> Receipt:
    """Keep replies until they are shown: (text, [(key, label)]) each."""
    receipt = Receipt(messenger=messenger, chat_id=chat_id,
                      replies=json.dumps([[text, [list(o) for o in options]] for text, options in replies],
                                         ensure_ascii=False))
    session.add(receipt)
    session.flush()
    return receipt


def drop_receipts(ids: list[int], *, session: Session) -> None:
    """Forget receipts whose replies have been shown."""
    session.execute(delete(Receipt).where(col(Receipt.id).in_(ids)))
    session.commit()


def receipts_left(messengers: list[str], *, session: Session, before: datetime) -> list[Receipt]:
    """Receipts written before this time and never confirmed shown (their process died)."""
    query = select(Receipt).where(col(Receipt.messenger).in_(messengers), col(Receipt.created_at) < before)
    return list(session.exec(query.order_by(col(Receipt.id))))


def messages_of(receipt: Receipt) -> list[OutboxMessage]:
    """A receipt's replies as messages to send (not stored)."""
    return [OutboxMessage(messenger=receipt.messenger, chat_id=receipt.chat_id, text=text,
                          options=json.dumps(options, ensure_ascii=False))
            for text, options in json.loads(receipt.replies)]


def failed_messages(*, session: Session, limit: int = 20) -> list[OutboxMessage]:
    """Messages given up on, newest first, for officers to see."""
    query = select(OutboxMessage).where(OutboxMessage.status == "failed")
    return list(session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(limit)))
