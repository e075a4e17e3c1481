"""The async host: runs the synchronous core for the channels without stalling the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from handlers.core import Incoming, Reply
from handlers.dispatch import Core


class Host:
    """Hands each event to the core, in worker threads when `threads` > 0, and reports mail.

    Ordering within a chat is the channel's duty (one chat's events are handed over one at a
    time); events of different chats may run here concurrently, up to `threads` at once.
    """

    def __init__(self, core: Core, *, threads: int) -> None:
        self.core = core
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="store") if threads > 0 else None
        self.on_queued: Callable[[], None] | None = None  # the outbox sender's kick, once it runs

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Handle one event; its replies once everything it changed is committed."""
        if self._executor is None:
            outcome = self.core.handle(incoming)
        else:
            outcome = await asyncio.get_running_loop().run_in_executor(self._executor, self.core.handle, incoming)
        if outcome.queued and self.on_queued is not None:
            self.on_queued()
        return outcome.replies

    def close(self) -> None:
        """Wait for running events, then stop the threads."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
