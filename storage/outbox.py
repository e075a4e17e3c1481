"""The outbox: messages for other people, written with the change that caused them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from sqlalchemy import delete, func, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from storage.models import LastWrote, OutboxMessage, Person, Receipt, Unreachable, utcnow

MAX_ATTEMPTS = 10
# An outbox message's status: waiting (or waiting to be retried), being sent (committed just before
# the call to the messenger), delivered, given up, or possibly delivered by a process that died.
PENDING, SENDING, SENT, FAILED, UNCERTAIN = "pending", "sending", "sent", "failed", "uncertain"
# Held until its person writes again: the messenger lets the bot write only for a while after a
# person's last message (Zalo OA). Not a failure; it goes out when they write (see note_wrote).
WAITING = "waiting"


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


class OutboxBatch:
    """Messages queued by the hundred (a reminder sweep): written in one statement at the end."""

    def __init__(self, broadcast_id: int | None = None) -> None:
        self.rows: list[dict[str, object]] = []
        self.broadcast_id = broadcast_id  # the messages of one broadcast

    def add(self, recipient: Person, text: str, *, options: list[tuple[str, str]] | None = None) -> None:
        """Queue one message for a person."""
        now = utcnow()
        self.rows.append({
            "messenger": recipient.messenger, "chat_id": recipient.chat_id, "text": text,
            "options": json.dumps([list(o) for o in options or []], ensure_ascii=False), "file_id": None,
            "file_kind": None, "status": PENDING, "attempts": 0, "last_error": None, "next_attempt_at": now,
            "created_at": now, "sent_at": None, "broadcast_id": self.broadcast_id})

    def write(self, *, session: Session) -> int:
        """Store the queued messages (sent once the caller's transaction commits); how many."""
        if self.rows:
            session.execute(insert(OutboxMessage), self.rows)
            session.info["outbox_written"] = True  # the dispatcher wakes the sender after the commit
        return len(self.rows)


def options_of(message: OutboxMessage) -> list[tuple[str, str]]:
    """The (key, label) choices queued with a message."""
    return [(key, label) for key, label in json.loads(message.options or "[]")]


def count_pending(*, session: Session) -> int:
    """Messages waiting to be sent (due now or at a retry): the outbox's backlog."""
    return session.exec(select(func.count()).where(OutboxMessage.status == PENDING)).one()


def due_messages(messengers: list[str], *, session: Session, limit: int = 50,
                 now: datetime | None = None) -> list[OutboxMessage]:
    """Messages to send now on these messengers, oldest first (retries wait their turn)."""
    query = select(OutboxMessage).where(
        OutboxMessage.status == PENDING, col(OutboxMessage.messenger).in_(messengers),
        col(OutboxMessage.next_attempt_at) <= (now or utcnow()),
    )
    return list(session.exec(query.order_by(col(OutboxMessage.id)).limit(limit)))


def mark_sent(message: OutboxMessage, *, session: Session, at: datetime | None = None) -> None:
    """Record a message as delivered."""
    message.status = SENT
    message.sent_at = at or utcnow()
    message.attempts += 1
    session.add(message)
    session.commit()


# ---- the sender's steps: each commits at once, so that a killed process leaves a true record ----

def due_heads(messengers: list[str], *, session: Session, after_id: int = 0, limit: int = 200,
              now: datetime | None = None, broadcasts: bool | None = None) -> list[tuple[int, str, str]]:
    """(id, messenger, chat id) of each chat's first waiting message, if it is due, oldest first;
    `broadcasts` True or False: only chats whose first message is (or is not) part of a broadcast.

    A chat's later messages wait behind an earlier one that waits for a retry or is being sent:
    one chat's messages are delivered in the order they were queued.

    Each chat's first waiting (or sending) message is found in one pass over the waiting ones, grouped by
    chat: its cost follows the backlog whatever the planner believes. Asked per message instead ("is there
    an earlier one?"), PostgreSQL, whose statistics still said "nothing waits" minutes after a broadcast
    queued 16,000 messages, compared every waiting message with every other: over a minute a call
    (README, Benchmark)."""
    firsts = (select(func.min(OutboxMessage.id).label("id"))
              .where(col(OutboxMessage.status).in_((PENDING, SENDING)), col(OutboxMessage.messenger).in_(messengers))
              .group_by(col(OutboxMessage.messenger), col(OutboxMessage.chat_id)).subquery())
    query = (select(OutboxMessage.id, OutboxMessage.messenger, OutboxMessage.chat_id)
             .join(firsts, firsts.c.id == col(OutboxMessage.id))
             .where(OutboxMessage.status == PENDING, col(OutboxMessage.id) > after_id,
                    col(OutboxMessage.next_attempt_at) <= (now or utcnow()))
             .order_by(col(OutboxMessage.id)).limit(limit))
    if broadcasts is not None:
        query = query.where(col(OutboxMessage.broadcast_id).is_not(None) if broadcasts
                            else col(OutboxMessage.broadcast_id).is_(None))
    return [(int(row[0] or 0), row[1], row[2]) for row in session.exec(query)]


def waiting_for_chat(messenger: str, chat_id: str, *, session: Session, limit: int = 20) -> list[OutboxMessage]:
    """A chat's waiting messages, in the order they were queued (due or not)."""
    query = select(OutboxMessage).where(
        OutboxMessage.messenger == messenger, OutboxMessage.chat_id == chat_id, OutboxMessage.status == PENDING)
    return list(session.exec(query.order_by(col(OutboxMessage.id)).limit(limit)))


def claim_for_sending(message_id: int, *, session: Session) -> bool:
    """pending → sending, committed before the message goes out; False if it was not waiting.

    While it is "sending", `next_attempt_at` holds when the send began (see mark_uncertain)."""
    claimed = session.execute(update(OutboxMessage).where(
        col(OutboxMessage.id) == message_id, col(OutboxMessage.status) == PENDING,
    ).values(status=SENDING, next_attempt_at=utcnow()).returning(col(OutboxMessage.id))).first()
    session.commit()
    return claimed is not None


def record_sent(message_id: int, *, session: Session, at: datetime | None = None) -> None:
    """sending → sent; a person who gets a message again is reachable again."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return
    message.status = SENT
    message.sent_at = at or utcnow()
    message.attempts += 1
    session.add(message)
    session.execute(delete(Unreachable).where(
        col(Unreachable.messenger) == message.messenger, col(Unreachable.chat_id) == message.chat_id))
    session.commit()


def record_failure(message_id: int, error: str, *, session: Session, permanent: bool, retry_at: datetime,
                   rest: tuple[str, bool] | None = None) -> str:
    """A failed attempt: retried at `retry_at`, or given up with the reason after a permanent error
    or too many attempts; the new status. `rest` (text left, file left) when part was delivered."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return FAILED
    message.attempts += 1
    message.last_error = error[:500]
    _keep_rest(message, rest)
    if permanent or message.attempts >= MAX_ATTEMPTS:
        message.status = FAILED
    else:
        message.status = PENDING
        message.next_attempt_at = retry_at
    session.add(message)
    session.commit()
    return message.status


def record_wait(message_id: int, error: str, *, session: Session, until: datetime,
                rest: tuple[str, bool] | None = None) -> None:
    """The messenger asked us to wait (a flood limit): waiting again, and not a failed attempt."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        return
    message.status = PENDING
    message.next_attempt_at = until
    message.last_error = error[:500]
    _keep_rest(message, rest)
    session.add(message)
    session.commit()


def record_waiting(message_id: int, error: str, *, session: Session, since: datetime,
                   rest: tuple[str, bool] | None = None) -> str:
    """The messenger takes this message only after its person writes again: it waits for that (not a
    failed attempt), unless they wrote after `since` (the attempt began): then it is due again now.
    The new status."""
    message = session.get(OutboxMessage, message_id)
    if message is None or message.status not in (PENDING, SENDING):
        return message.status if message is not None else FAILED
    message.status = WAITING
    message.last_error = error[:500]
    _keep_rest(message, rest)
    session.add(message)
    session.flush()  # written before the check: note_wrote, running meanwhile, then releases it
    # Locked (PostgreSQL): a note_wrote under way finishes first, and its news is read here.
    wrote = session.get(LastWrote, (message.messenger, message.chat_id), with_for_update=True,
                        populate_existing=True)
    if wrote is not None and wrote.at > since:
        message.status = PENDING
        message.next_attempt_at = utcnow()
        session.add(message)
    session.commit()
    return message.status


def note_wrote(messenger: str, chat_id: str, *, session: Session, at: datetime | None = None) -> int:
    """A person wrote to the bot: remember when, and make their waiting messages due now, in one
    commit. How many messages were released."""
    at = at or utcnow()
    for attempt in range(2):
        try:
            known = session.get(LastWrote, (messenger, chat_id), with_for_update=True, populate_existing=True)
            if known is None:
                session.add(LastWrote(messenger=messenger, chat_id=chat_id, at=at))
            elif at > known.at:
                known.at = at
                session.add(known)
            session.flush()
            released = session.execute(update(OutboxMessage).where(
                col(OutboxMessage.messenger) == messenger, col(OutboxMessage.chat_id) == chat_id,
                col(OutboxMessage.status) == WAITING,
            ).values(status=PENDING, next_attempt_at=utcnow()).returning(col(OutboxMessage.id))).all()
            session.commit()
            return len(released)
        except IntegrityError:  # another process wrote the chat's first row at the same moment
            session.rollback()
            if attempt:
                raise
    return 0


def last_wrote(messenger: str, chat_id: str, *, session: Session) -> datetime | None:
    """When this person last wrote to the bot, if it was noted (see note_wrote)."""
    known = session.get(LastWrote, (messenger, chat_id))
    return known.at if known is not None else None


def _keep_rest(message: OutboxMessage, rest: tuple[str, bool] | None) -> None:
    """Keep only what was not delivered, so that a retry (even after a restart) repeats nothing."""
    if rest is None:
        return
    text, with_file = rest
    message.text = text
    if not with_file:
        message.file_id = message.file_kind = None


def mark_uncertain(messengers: list[str], *, session: Session, older_than: timedelta = timedelta(0)) -> int:
    """Messages "sending" for longer than any send takes were being sent by a process that died, and
    may have arrived; they become "uncertain", for officers to see, and are never sent again on their
    own. Younger ones may be in the hands of another process running on the same store: left alone."""
    result = session.execute(update(OutboxMessage).where(
        col(OutboxMessage.status) == SENDING, col(OutboxMessage.messenger).in_(messengers),
        col(OutboxMessage.next_attempt_at) < utcnow() - older_than,
    ).values(status=UNCERTAIN, last_error="possibly sent: the process stopped during the send")
     .returning(col(OutboxMessage.id)))
    count = len(result.all())
    session.commit()
    return count


def record_unreachable(messenger: str, chat_id: str, reason: str, *, session: Session) -> None:
    """The messenger says this account cannot be reached (blocked the bot, deactivated)."""
    known = session.get(Unreachable, (messenger, chat_id))
    if known is None:
        session.add(Unreachable(messenger=messenger, chat_id=chat_id, reason=reason[:500]))
    else:
        known.reason = reason[:500]
        session.add(known)
    session.commit()


def unreachable(messenger: str, chat_id: str, *, session: Session) -> Unreachable | None:
    """Why and since when an account cannot be reached, if it cannot."""
    return session.get(Unreachable, (messenger, chat_id))


PURGE_BATCH = 10_000  # rows deleted per transaction: the write lock is never held for long


def purge_sent(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Delete delivered messages older than this, a batch per commit (undeliverable ones stay)."""
    cutoff = (now or utcnow()) - older_than
    # In no particular order: by (status, created_at) it finds the old ones directly; in id order it read
    # past every kept message (the undeliverable ones, the recent ones) on each run (README, Benchmark).
    oldest = (select(OutboxMessage.id).where(col(OutboxMessage.status) == SENT, col(OutboxMessage.created_at) < cutoff)
              .limit(PURGE_BATCH))
    total = 0
    while True:
        result = session.execute(delete(OutboxMessage).where(col(OutboxMessage.id).in_(oldest)))
        session.commit()
        deleted = int(getattr(result, "rowcount", 0) or 0)
        total += deleted
        if deleted < PURGE_BATCH:
            return total


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


def undelivered_messages(*, session: Session, limit: int = 20) -> list[OutboxMessage]:
    """Messages given up on ("failed"), possibly sent ("uncertain") or held until their person writes
    again ("waiting", its reason in `last_error`), newest first, for officers to see."""
    query = select(OutboxMessage).where(col(OutboxMessage.status).in_((FAILED, UNCERTAIN, WAITING)))
    return list(session.exec(query.order_by(col(OutboxMessage.id).desc()).limit(limit)))
