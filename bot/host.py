"""The async host: runs the synchronous core for the channels without stalling the event loop."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bot.metrics import UPDATE_SECONDS, UPDATES
from handlers.core import Incoming
from handlers.dispatch import Core, Outcome

log = logging.getLogger(__name__)
T = TypeVar("T")


class Host:
    """Hands each event to the core, in worker threads when `threads` > 0, and reports mail.

    Ordering within a chat is the channel's duty (one chat's events are handed over one at a
    time); events of different chats may run here concurrently, up to `threads` at once.
    """

    def __init__(self, core: Core, *, threads: int) -> None:
        self.core = core
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="store") if threads > 0 else None
        self.on_queued: Callable[[], None] | None = None  # the outbox sender's kick, once it runs
        self._batch: list[tuple[Incoming, asyncio.Future[Outcome]]] = []

    async def handle(self, incoming: Incoming) -> Outcome:
        """Handle one event; its outcome once everything it changed is committed."""
        started = time.perf_counter()
        if self._executor is None:
            outcome = await self._in_next_batch(incoming)
        else:
            outcome = await self._run(self.core.handle, incoming)
        seconds = time.perf_counter() - started
        UPDATES.labels(incoming.messenger).inc()
        UPDATE_SECONDS.labels(incoming.messenger).observe(seconds)
        log.info("update handled: messenger=%s latency_ms=%.1f", incoming.messenger, seconds * 1000)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        return outcome

    async def _in_next_batch(self, incoming: Incoming) -> Outcome:
        # On the event loop (SQLite), events that arrive together share one commit: each waits
        # only for the end of the current loop iteration, then all are handled in one transaction.
        waiting: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._batch.append((incoming, waiting))
        if len(self._batch) == 1:
            asyncio.get_running_loop().call_soon(self._handle_batch)
        return await waiting

    def _handle_batch(self) -> None:
        batch, self._batch = self._batch, []
        outcomes = self.core.handle_batch([incoming for incoming, _ in batch])
        for (_, waiting), outcome in zip(batch, outcomes, strict=True):
            if not waiting.done():
                waiting.set_result(outcome)

    async def shown(self, outcome: Outcome) -> None:
        """The channel has shown the outcome's replies (replies kept in a receipt may go)."""
        if outcome.receipts:
            await self._run(self.core.shown, outcome)

    async def _run(self, work: Callable[[Any], T], argument: Any) -> T:
        if self._executor is None:
            return work(argument)
        return await asyncio.get_running_loop().run_in_executor(self._executor, work, argument)

    def close(self) -> None:
        """Wait for running events, then stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
