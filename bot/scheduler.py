"""Background work on APScheduler: drain the outbox, forget old update ids."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine

from bot.channels import Delivery
from handlers.dispatch import Core
from handlers.rules.reminders import SweepReport, sweep
from storage.db import new_session
from storage.dialogs import prune_processed_updates
from storage.models import OutboxMessage, row_id, utcnow
from storage.outbox import (
    drop_receipts,
    due_messages,
    mark_failed,
    mark_sent,
    messages_of,
    purge_sent,
    receipts_left,
)

log = logging.getLogger(__name__)
BATCH = 50
# A receipt younger than this may still be shown by the process that wrote it.
RECEIPT_GRACE = timedelta(seconds=60)

Deliver = Callable[[OutboxMessage], Awaitable[Delivery]]


class OutboxSender:
    """Sends committed outbox messages through the channel of each recipient's messenger."""

    def __init__(self, engine: Engine, channels: dict[str, Deliver]) -> None:
        self.engine = engine
        self.channels = channels
        self._lock = asyncio.Lock()
        self.started_at = utcnow()

    async def drain(self) -> int:
        """Send everything due, for the messengers that have a channel; one drain at a time."""
        sent = 0
        async with self._lock:
            await self._show_receipts_left()
            while True:
                with new_session(self.engine) as session:
                    batch = due_messages(list(self.channels), session=session, limit=BATCH)
                    for message in batch:
                        try:
                            ok, error, permanent = await self.channels[message.messenger](message)
                        except Exception as exc:  # a bug in a channel must not stop the sender
                            log.exception("delivery of outbox message %s failed", message.id)
                            ok, error, permanent = False, repr(exc), False
                        if ok:
                            mark_sent(message, session=session)
                            sent += 1
                        else:
                            log.warning("outbox message %s not sent: %s", message.id, error)
                            mark_failed(message, error or "?", session=session, permanent=permanent)
                if len(batch) < BATCH:
                    return sent


    async def _show_receipts_left(self) -> None:
        """Show replies a process committed but never confirmed shown: it died, or the send failed."""
        before = max(self.started_at, utcnow() - RECEIPT_GRACE)
        with new_session(self.engine) as session:
            left = receipts_left(list(self.channels), session=session, before=before)
        for receipt in left:
            results = [await self.channels[receipt.messenger](message) for message in messages_of(receipt)]
            if all(ok for ok, _, _ in results) or any(permanent for _, _, permanent in results):
                with new_session(self.engine) as session:
                    drop_receipts([row_id(receipt)], session=session)
                log.info("replies kept in receipt %s shown after all", receipt.id)


def run_sweep(core: Core, *, now: datetime | None = None, force: bool = False) -> SweepReport:
    """One reminder sweep in its own transaction: what is due now is queued, and recorded, once."""
    with new_session(core.engine) as session:
        report = sweep(session=session, now=now or utcnow(), zone=core.policy.zone, policy=core.policy.reminders,
                       catalogs=core.catalogs, force=force)
        session.commit()
    return report


def start_scheduler(engine: Engine, sender: OutboxSender, *, interval_seconds: float,
                    keep_sent_days: int = 30, core: Core | None = None,
                    sweep_seconds: float = 60) -> AsyncIOScheduler:
    """Start the jobs on the running event loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    if core is not None:
        reminders = core

        async def sweep_job() -> None:
            # The store's work runs in a thread; only what was sent is worth a line in the log.
            report = await asyncio.to_thread(run_sweep, reminders)
            if report.total:
                log.info("reminder sweep queued %d messages (%d reminders, %d overdue, %d escalations, "
                         "%d digests, %d arrival notices)", report.total, report.stages, report.overdue,
                         report.escalations, report.digests, report.arrivals)
                await sender.drain()

        scheduler.add_job(sweep_job, "interval", seconds=sweep_seconds, id="reminders", max_instances=1,
                          coalesce=True, next_run_time=datetime.now(UTC))
    scheduler.add_job(sender.drain, "interval", seconds=interval_seconds, id="outbox",
                      max_instances=1, coalesce=True)

    def prune() -> None:
        # Old update ids (no messenger redelivers after days) and delivered messages: the history
        # of a concern is in its own tables; what is kept here would only grow and hold names.
        with new_session(engine) as session:
            prune_processed_updates(session=session, older_than=timedelta(days=7))
            purge_sent(session=session, older_than=timedelta(days=keep_sent_days))

    scheduler.add_job(prune, "interval", hours=6, id="prune-updates", max_instances=1, coalesce=True)
    scheduler.start()
    return scheduler
