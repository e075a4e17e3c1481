"""The async host: runs the synchronous core for the channels without stalling the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from handlers.core import Incoming
from handlers.dispatch import Core, Outcome

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

    async def handle(self, incoming: Incoming) -> Outcome:
        """Handle one event; its outcome once everything it changed is committed."""
        outcome = await self._run(self.core.handle, incoming)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        return outcome

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
