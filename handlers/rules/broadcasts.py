"""Broadcasts: an admin's message queued for many workers, and the admin told how its sending goes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from sqlmodel import Session

from handlers.rules.notify import tell
from locales import N_, Catalogs, Plural, Translator
from storage.broadcasts import (
    add_broadcast,
    audience_of,
    count_audience,
    delivery_counts,
    refresh_outbox_statistics,
    unfinished_broadcasts,
)
from storage.models import Broadcast, Person
from storage.outbox import FAILED, PENDING, SENDING, SENT, UNCERTAIN, WAITING, OutboxBatch

# What a worker receives: the admin's words, framed, and how to stop such messages (never their own news).
BROADCAST_MESSAGE = N_("Announcement from the {federation}:\n\n{text}\n\n"
                       "To stop receiving announcements, type “mute”.")
# A progress notice at most this often while a broadcast is being sent; the first after a minute.
PROGRESS_EVERY = timedelta(minutes=5)
FIRST_PROGRESS = timedelta(minutes=1)


def queue_broadcast(admin: Person, text: str, audience: str, code: str | None, *, session: Session,
                    catalogs: Catalogs, federation: Callable[[str], str]) -> Broadcast:
    """Record a broadcast and queue one message per worker of the audience, each in their language.

    Workers whose messenger refused the bot before are not sent to again; they are counted as
    unreachable. Broadcast messages go out after other messages (see bot.sender)."""
    broadcast = add_broadcast(admin, text, audience, code, session=session)
    batch = OutboxBatch(broadcast_id=broadcast.id)
    for worker in audience_of(audience, code, session=session):
        tell(worker, BROADCAST_MESSAGE, catalogs=catalogs, session=session, into=batch,
             options=[("/mute", N_("Stop announcements"))],
             federation=lambda t: federation(t.locale), text=text)
        if len(batch.rows) >= 1000:  # memory stays flat for any audience
            broadcast.recipients += batch.write(session=session)
            batch.rows.clear()
    broadcast.recipients += batch.write(session=session)
    refresh_outbox_statistics(broadcast.recipients, session=session)
    broadcast.unreachable = count_audience(audience, code, session=session)[1]
    session.add(broadcast)
    return broadcast


def report_progress(*, session: Session, catalogs: Catalogs, now: datetime) -> int:
    """Tell each admin how their broadcasts are going: progress now and then, the final count once.

    Returns how many notices were queued."""
    queued = 0
    for broadcast in unfinished_broadcasts(session=session):
        admin = session.get(Person, broadcast.admin_id) if broadcast.admin_id is not None else None
        counts = delivery_counts(broadcast, session=session)
        sent = counts.get(SENT, 0)
        failed = counts.get(FAILED, 0) + counts.get(UNCERTAIN, 0)
        if not counts.get(PENDING, 0) and not counts.get(SENDING, 0):
            broadcast.finished_at = now
            if admin is not None:
                tell(admin, Plural("The announcement has been sent: delivered to {sent} of {total} worker.\n"
                                   "Not delivered: {failed} (they blocked the bot or left the messenger).\n"
                                   "Will get it when they next write: {waiting}.",
                                   "The announcement has been sent: delivered to {sent} of {total} workers.\n"
                                   "Not delivered: {failed} (they blocked the bot or left the messenger).\n"
                                   "Will get it when they next write: {waiting}.",
                                   broadcast.recipients + broadcast.unreachable),
                     catalogs=catalogs, session=session, sent=_number(sent),
                     total=_number(broadcast.recipients + broadcast.unreachable),
                     failed=_number(failed + broadcast.unreachable), waiting=_number(counts.get(WAITING, 0)))
                queued += 1
        elif admin is not None and now - (broadcast.progress_at or broadcast.created_at) >= (
                PROGRESS_EVERY if broadcast.progress_at else FIRST_PROGRESS):
            broadcast.progress_at = now
            tell(admin, Plural("Sending the announcement: {done} of {total} message handled so far.",
                               "Sending the announcement: {done} of {total} messages handled so far.",
                               broadcast.recipients),
                 catalogs=catalogs, session=session, done=_number(sent + failed + counts.get(WAITING, 0)),
                 total=_number(broadcast.recipients))
            queued += 1
        session.add(broadcast)
    return queued


def _number(value: int) -> Callable[[Translator], str]:
    return lambda t: t.number(value)
