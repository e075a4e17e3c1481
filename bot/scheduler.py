"""Background work on APScheduler: wake the outbox sender, forget old update ids."""

from __future__ import annotations

import asyncio
import logging
from calendar import monthrange
from datetime import UTC, datetime, timedelta
from pathlib import Path

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from bot.channels.zalo import remove_unlinked_copies
from bot.metrics import REMINDERS
from bot.sender import OutboxSender
from handlers.dispatch import Core
from handlers.rules.broadcasts import report_progress
from handlers.rules.reminders import SweepReport, sweep
from storage.concerns import anonymise_finished, attachment_addresses
from storage.db import new_session
from storage.dialogs import prune_processed_updates
from storage.models import utcnow
from storage.outbox import purge_sent

log = logging.getLogger(__name__)


class _ShutdownIsNoError(logging.Filter):
    """Drop APScheduler's "Error running job" for a job that was only cancelled by the shutdown."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not isinstance(error, asyncio.CancelledError)


# Its asyncio executor cancels every job still running when the scheduler stops, and logs each as an
# error with a traceback; a job's thread finishes its transaction anyway, so nothing went wrong.
logging.getLogger("apscheduler.executors.default").addFilter(_ShutdownIsNoError())


def run_sweep(core: Core, *, now: datetime | None = None, force: bool = False) -> SweepReport:
    """One reminder sweep in its own transaction: what is due now is queued, and recorded, once."""
    for attempt in range(5):
        try:
            with new_session(core.engine) as session:
                report = sweep(session=session, now=now or utcnow(), zone=core.policy.zone,
                               policy=core.policy.reminders, catalogs=core.catalogs, force=force)
                session.commit()
            return report
        except OperationalError:
            # SQLite: another process wrote since this sweep began reading; sweep again, it will
            # find that process's notices recorded and send nothing twice.
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def months_before(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months earlier (the last day of a shorter month)."""
    month_index = moment.year * 12 + moment.month - 1 - months
    year, month = divmod(month_index, 12)
    day = min(moment.day, monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def anonymise_old_concerns(engine: Engine, *, retention_months: int, now: datetime | None = None) -> int:
    """Remove the authors of concerns finished more than `retention_months` ago; how many changed."""
    before = months_before(now or utcnow(), retention_months)
    total = 0
    while True:  # in batches, so a first run on a large store holds no lock for long
        with new_session(engine) as session:
            changed = anonymise_finished(before, session=session)
            session.commit()
        total += changed
        if changed == 0:
            return total


def remove_unlinked_files(engine: Engine, files_dir: Path) -> int:
    """Delete kept copies of Zalo files whose attachment is gone (a deletion request, the retention job)."""
    with new_session(engine) as session:
        linked = attachment_addresses(("zalo", "zalo_oa"), session=session)
    # A week's grace: a file sent in a dialog still in progress has no attachment row yet.
    return remove_unlinked_copies(files_dir, linked, older_than=timedelta(days=7))


def start_scheduler(engine: Engine, sender: OutboxSender, *, interval_seconds: float,
                    keep_sent_days: int = 30, core: Core | None = None,
                    sweep_seconds: float = 60, retention_months: int = 24,
                    files_dir: Path | None = None) -> AsyncIOScheduler:
    """Start the jobs on the running event loop."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    if core is not None:
        reminders = core

        async def sweep_job() -> None:
            # The store's work runs in a thread; only what was sent is worth a line in the log.
            try:
                report = await asyncio.to_thread(run_sweep, reminders)
            except asyncio.CancelledError:
                # The scheduler is shutting down (its asyncio executor cancels running jobs): the sweep's
                # thread still ends its transaction, and the loop waits for it. Nothing went wrong.
                return
            for kind, count in (("stage", report.stages), ("overdue", report.overdue),
                                ("escalation", report.escalations), ("digest", report.digests),
                                ("arrivals", report.arrivals)):
                REMINDERS.labels(kind).inc(count)
            if report.total:
                log.info("reminder sweep queued %d messages (%d reminders, %d overdue, %d escalations, "
                         "%d digests, %d arrival notices)", report.total, report.stages, report.overdue,
                         report.escalations, report.digests, report.arrivals)
                sender.kick()  # the sender runs on its own; waiting for a big backlog here would only delay

        scheduler.add_job(sweep_job, "interval", seconds=sweep_seconds, id="reminders", max_instances=1,
                          coalesce=True, next_run_time=datetime.now(UTC))
        def broadcast_progress() -> None:
            # Admins hear how their broadcasts go: now and then while sending, the final count once.
            with new_session(engine) as session:
                queued = report_progress(session=session, catalogs=reminders.catalogs, now=utcnow())
                session.commit()
            if queued:
                sender.kick()

        scheduler.add_job(broadcast_progress, "interval", seconds=30, id="broadcasts", max_instances=1,
                          coalesce=True)
    # The sender (bot/sender.py) runs on its own; this wakes it for retries that came due.
    scheduler.add_job(sender.kick, "interval", seconds=interval_seconds, id="outbox",
                      max_instances=1, coalesce=True)

    def prune() -> None:
        # Old update ids (no messenger redelivers after days) and delivered messages: the history
        # of a concern is in its own tables; what is kept here would only grow and hold names.
        with new_session(engine) as session:
            prune_processed_updates(session=session, older_than=timedelta(days=7))
            purge_sent(session=session, older_than=timedelta(days=keep_sent_days))

    scheduler.add_job(prune, "interval", hours=6, id="prune-updates", max_instances=1, coalesce=True)

    def retention() -> None:
        # The privacy notice promises this: names leave finished concerns after the retention period.
        changed = anonymise_old_concerns(engine, retention_months=retention_months)
        if files_dir is not None:
            remove_unlinked_files(engine, files_dir)
        if changed:
            log.info("removed the authors of %d concerns finished over %d months ago", changed, retention_months)

    scheduler.add_job(retention, "interval", hours=24, id="retention", max_instances=1, coalesce=True,
                      next_run_time=datetime.now(UTC) + timedelta(minutes=5))
    scheduler.start()
    return scheduler
