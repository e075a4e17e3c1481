"""Long polling that confirms an update to Telegram only once it has been handled.

python-telegram-bot's own updater confirms a batch when it fetches the next one, while the
batch may still wait in its in-memory queue: a killed process loses those updates. Here the
offset moves past an update only after it was handled (its replies sent or its duplicate
recognised), so after a kill Telegram hands the rest over again and the store's record of
handled updates makes each count once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import Update
from telegram.error import Forbidden, InvalidToken, NetworkError, RetryAfter, TimedOut
from telegram.ext import Application

log = logging.getLogger(__name__)
ALLOWED_UPDATES = ["message", "callback_query"]
LONG_POLL_SECONDS = 30


async def handle_batch(application: Application[Any, Any, Any, Any, Any, Any], updates: list[Update]) -> None:
    """Handle a batch: chats concurrently, one chat's updates in order; return when all are done."""
    processor = application.update_processor
    await asyncio.gather(*(processor.process_update(update, application.process_update(update))
                           for update in updates))


async def poll(application: Application[Any, Any, Any, Any, Any, Any], stop: asyncio.Event) -> None:
    """Fetch and handle updates until `stop` is set; network trouble waits and tries again."""
    bot = application.bot
    offset: int | None = None
    pause = 1.0
    while not stop.is_set():
        fetch = asyncio.ensure_future(bot.get_updates(offset=offset, timeout=LONG_POLL_SECONDS,
                                                      allowed_updates=ALLOWED_UPDATES))
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait({fetch, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not fetch.done():  # asked to stop during a long poll: nothing was fetched
            fetch.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetch
            break
        try:
            updates = list(fetch.result())
        except (InvalidToken, Forbidden):
            raise
        except RetryAfter as exc:
            await _sleep(stop, float(exc.retry_after if isinstance(exc.retry_after, int | float) else 5))
            continue
        except (NetworkError, TimedOut) as exc:
            log.warning("getUpdates failed (%s); trying again in %.0f s", exc, pause)
            await _sleep(stop, pause)
            pause = min(pause * 2, 30.0)
            continue
        pause = 1.0
        if updates:
            await handle_batch(application, updates)
            offset = updates[-1].update_id + 1


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM (on the running loop): what stops `kiennghi run`."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop


async def run_polling(application: Application[Any, Any, Any, Any, Any, Any], stop: asyncio.Event | None = None,
                      beside: Sequence[Callable[[asyncio.Event], Awaitable[None]]] = ()) -> None:
    """Start the application and its services, poll until `stop` (by default SIGINT or SIGTERM),
    then stop cleanly. `beside`: other pollers (Zalo) run meanwhile with the same `stop`; if one
    fails, all stop and its error is raised."""
    stop = stop or stop_on_signals()
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await application.bot.delete_webhook()  # polling and a webhook exclude each other
        await application.start()
        try:
            await together(stop, [poll(application, stop), *(run(stop) for run in beside)])
        finally:
            await application.stop()
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


async def together(stop: asyncio.Event, jobs: Sequence[Awaitable[None]]) -> None:
    """Run jobs until all end; the first to fail sets `stop` for the others, and its error is raised."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in tasks:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
