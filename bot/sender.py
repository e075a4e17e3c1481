"""The outbox sender: delivers committed outbox messages within each messenger's limits.

- **Order and concurrency.** A chat with a message due gets a lane, an asyncio task that sends
  that chat's messages one at a time in the order they were queued; a message waiting for a
  retry holds back the chat's later ones. Lanes of different chats run concurrently, so a round
  trip to the messenger (100 ms or more) does not cap the rate.
- **Limits.** A `Pacer` per messenger spaces the calls to it: at most `per_second` overall and
  `chat_per_second` to any one chat (Telegram: 30 and 1), each call of a long message or of a
  file and its text counted. A 429 holds that chat for the `retry_after` it names.
- **Crash safety.** A message is marked "sending" (committed) right before its first call and
  "sent" after the last; at start-up a message still "sending" may have been delivered: it
  becomes "uncertain", is never sent again on its own, and officers see it in /undelivered.
- **Errors.** A 429 waits and tries again (not a failed attempt); network errors, 5xx and
  timeouts are retried with back-off; a 403 marks the account unreachable and the message
  failed; a message that keeps failing ends failed, with its reason.
- **Waiting for the person.** A message the messenger takes only after its person writes again
  (Zalo OA's messaging window) is "waiting": no failed attempt, shown in /undelivered, and due
  again as soon as the person writes (`storage.outbox.note_wrote`).
- **Typed choices.** On messengers without buttons (`typed_choices`: Zalo, the terminal) a
  delivered message's choices become its chat's current ones, in the commit that records it
  sent, unless the chat is in a dialog: typing "1" then picks the first.

The store's work runs in the sender's own threads (`threads`; 0 runs it on the loop).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.channels import Delivery, Pace
from bot.metrics import OUTBOX_FAILED, OUTBOX_SENT
from storage.db import new_session
from storage.dialogs import offer_choices
from storage.models import OutboxMessage, row_id, utcnow
from storage.outbox import (
    FAILED,
    PENDING,
    claim_for_sending,
    drop_receipts,
    due_heads,
    mark_uncertain,
    messages_of,
    options_of,
    receipts_left,
    record_failure,
    record_sent,
    record_unreachable,
    record_wait,
    record_waiting,
    waiting_for_chat,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# A receipt younger than this may still be shown by the process that wrote it.
RECEIPT_GRACE = timedelta(seconds=60)
# Back-off after a failed attempt (network error, 5xx, timeout): then hourly, up to MAX_ATTEMPTS.
RETRY_DELAYS: tuple[float, ...] = (2, 10, 60, 300, 900, 1800, 3600)
# The limits are kept over windows this much wider than a second (30 calls in any 1.02 s), so
# that the messenger, which sees the calls after some network jitter, never counts more.
MARGIN = 0.02
# Calls sent late by up to this (a busy loop) are made up for by the next ones.
TOLERANCE = 0.25
# A 429 asking for a longer wait than this leaves the message to a later pass.
MAX_INLINE_WAIT = 30.0
LANE_BATCH = 20  # a lane reads its chat's waiting messages this many at a time
FEED_BATCH = 200  # heads of chats read at a time
MAX_LANES = 500  # chats being sent to at once (at 30/s and 1/s per chat, 30 keep Telegram busy)
# A send takes seconds (a file, the pieces of a long text, a 429's wait of up to MAX_INLINE_WAIT): a
# message "sending" for longer belongs to a process that died during the send.
IN_FLIGHT = timedelta(minutes=2)
# A broadcast is fed a little at a time, to few lanes: an answer or a reminder queued meanwhile
# waits for about this many broadcast messages, not for the whole broadcast.
BROADCAST_BATCH = 50
BROADCAST_LANES = 40
RESCAN_SECONDS = 0.2  # new mail during a pass is looked for at most this often
WATCH_SECONDS = 0.1  # how often `run(until=...)` checks whether to stop


class Deliver(Protocol):
    """A channel's `deliver`: send one outbox message, awaiting `pace()` before each call."""

    async def __call__(self, message: OutboxMessage, pace: Pace | None = None, /) -> Delivery: ...


@dataclass(frozen=True)
class Limits:
    """A messenger's sending limits: messages per second overall, and to any one chat."""

    per_second: float
    chat_per_second: float


class Halted(Exception):
    """The sender is stopping: the message was not claimed, and waits for the next start."""


class NotClaimed(Exception):
    """The message was no longer waiting when its turn came."""


class Pacer:
    """When the next call to one messenger may go: overall, and to each chat.

    Times are the event loop's monotonic clock. Overall, for a limit of n calls a second:
    - never more than n calls within any `window` (a second, widened by the margin): the rule
      the messenger applies, kept here with room for network jitter, whatever else happens;
    - calls `interval` apart on average (a generic cell rate algorithm): a call the busy loop
      sent late, up to `tolerance`, is made up for by the next ones, so the rate holds at
      n ÷ window instead of losing every delay;
    - never closer than half an interval: no bursts.
    Per chat, calls are `chat_interval` apart, or later if the messenger asked for a wait (429).
    `lock` hands the overall slots out first come, first served."""

    def __init__(self, limits: Limits | None, *, margin: float = MARGIN, tolerance: float = TOLERANCE) -> None:
        if limits is None:
            per_window, self.window, self.chat_interval = 1, 0.0, 0.0
        else:
            per_window = max(1, int(limits.per_second))
            self.window = (1 + margin) * per_window / limits.per_second
            self.chat_interval = (1 + margin) / limits.chat_per_second
        self.interval = self.window / per_window
        self.tolerance = tolerance if limits is not None else 0.0
        self.lock = asyncio.Lock()
        self._recent: deque[float] = deque(maxlen=per_window)  # the last calls, oldest first
        self._theoretical = 0.0  # when the next call is due at the steady rate
        self._chats: dict[str, float] = {}

    @staticmethod
    def now() -> float:
        return asyncio.get_running_loop().time()

    def slot_wait(self) -> float:
        """Seconds until the next call may go, overall (0 or less: now)."""
        allowed = self._theoretical - self.tolerance
        if self._recent:
            allowed = max(allowed, self._recent[-1] + self.interval / 2)
            if len(self._recent) == self._recent.maxlen:
                allowed = max(allowed, self._recent[0] + self.window)
        return allowed - self.now()

    def chat_wait(self, chat_id: str) -> float:
        """Seconds until this chat may get a call (0 or less: now)."""
        return self._chats.get(chat_id, 0.0) - self.now()

    def hold(self, chat_id: str, seconds: float) -> None:
        """No call to this chat for `seconds` (the messenger's retry_after)."""
        self._chats[chat_id] = max(self._chats.get(chat_id, 0.0), self.now() + seconds)

    def sent(self, chat_id: str) -> None:
        """A call to this chat goes out now."""
        now = self.now()
        self._theoretical = max(self._theoretical, now) + self.interval
        self._recent.append(now)
        self._chats[chat_id] = max(self._chats.get(chat_id, 0.0), now + self.chat_interval)
        if len(self._chats) > 10_000:  # forget chats whose pause is over
            self._chats = {chat: at for chat, at in self._chats.items() if at > now}


class OutboxSender:
    """Sends committed outbox messages through the channel of each recipient's messenger."""

    def __init__(self, engine: Engine, channels: dict[str, Deliver], *, limits: dict[str, Limits] | None = None,
                 threads: int = 1, retry_delays: Sequence[float] = RETRY_DELAYS, max_lanes: int = MAX_LANES,
                 typed_choices: Collection[str] = (), in_flight: timedelta = IN_FLIGHT) -> None:
        self.engine = engine
        self.in_flight = in_flight  # a message "sending" longer than this was left by a dead process
        self.channels = channels
        # Messengers without buttons: a delivered message's choices become its chat's current ones.
        self.typed_choices = frozenset(typed_choices)
        self.pacers = {messenger: Pacer((limits or {}).get(messenger)) for messenger in channels}
        self.retry_delays = tuple(retry_delays)
        self.max_lanes = max_lanes
        self.started_at = utcnow()
        self.sent = 0  # messages delivered by this sender
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="outbox") if threads > 0 else None
        self._lanes: dict[tuple[str, str], asyncio.Future[None]] = {}
        self._lane_done = asyncio.Event()
        self._wake = asyncio.Event()
        self._halted = asyncio.Event()
        self._pass: asyncio.Future[int] | None = None
        self._requests = 0  # drains and kicks asked for
        self._served = 0  # the requests a finished pass has answered
        self._recovered_at: float | None = None  # when "sending" messages were last looked at
        self._loop: asyncio.AbstractEventLoop | None = None

    # ---- what the program calls ------------------------------------------------------------------
    async def drain(self) -> int:
        """Send everything due now; return once it is sent, failed or waiting for a retry.

        Joins a pass already under way (which then looks for new mail) rather than starting a
        second one; the number of messages the pass or passes sent."""
        self._loop = asyncio.get_running_loop()
        self._poke()
        wanted = self._requests
        sent = 0
        while self._served < wanted and not self._halted.is_set():
            if self._pass is None or self._pass.done():
                self._pass = asyncio.ensure_future(self._run_pass())
            sent += await asyncio.shield(self._pass)
        return sent

    async def run(self, *, until: Callable[[], bool] | None = None) -> None:
        """Send continuously: a pass at start and whenever kicked, until `halt()` (or `until()`
        turns true: checked every WATCH_SECONDS); messages being sent then are finished."""
        self._loop = asyncio.get_running_loop()
        watcher = asyncio.ensure_future(self._watch(until)) if until is not None else None
        try:
            while not self._halted.is_set():
                try:
                    await self.drain()
                except Exception:  # the store is away for a moment: keep the sender alive
                    log.exception("an outbox pass failed; trying again in a few seconds")
                    await self._sleep(5)
                    continue
                await self._wake.wait()
        finally:
            if watcher is not None:
                watcher.cancel()

    def kick(self) -> None:
        """New mail is queued, or a retry may be due: look for it soon. Safe from any thread."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon_threadsafe(self._poke)
            return
        self._poke()

    def halt(self) -> None:
        """Stop claiming messages; lanes finish the message they are sending and end."""
        self._halted.set()
        self._wake.set()
        self._lane_done.set()

    async def close(self) -> None:
        """Halt, wait for the sends under way, release the threads."""
        self.halt()
        if self._pass is not None:
            await asyncio.gather(self._pass, return_exceptions=True)
        await asyncio.gather(*self._lanes.values(), return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)

    # ---- a pass: lanes for the chats with mail due, until none is left -----------------------------
    def _poke(self) -> None:
        self._requests += 1
        self._wake.set()

    async def _watch(self, until: Callable[[], bool]) -> None:
        while not until() and not self._halted.is_set():
            await asyncio.sleep(WATCH_SECONDS)
        self.halt()

    async def _run_pass(self) -> int:
        sent_before = self.sent
        loop = asyncio.get_running_loop()
        if self._recovered_at is None or loop.time() - self._recovered_at >= self.in_flight.total_seconds():
            # At start-up, then now and then: another process on the store may be the one that died.
            count = await self._store(mark_uncertain, list(self.channels), older_than=self.in_flight)
            self._recovered_at = loop.time()
            if count:
                log.warning("%d outbox message(s) were being sent when the bot stopped: marked uncertain "
                            "(possibly sent), not sent again; officers see them in /undelivered", count)
        await self._show_receipts_left()
        while not self._halted.is_set():
            seen = self._requests
            self._wake.clear()
            scanned_at = loop.time()
            await self._feed()
            if not self._lanes:
                if self._requests == seen:  # nothing asked for since this scan began
                    self._served = seen
                    break
                continue
            # Until every lane is done, or new mail may be waiting for a chat without a lane.
            while self._lanes and not self._wake.is_set():
                self._lane_done.clear()
                await _first(self._lane_done, self._wake)
            if self._lanes:
                await asyncio.sleep(max(0.0, scanned_at + RESCAN_SECONDS - loop.time()))
        if self._halted.is_set():
            await asyncio.gather(*self._lanes.values(), return_exceptions=True)
        return self.sent - sent_before

    async def _feed(self) -> None:
        """Start a lane for each chat whose first waiting message is due (and that has none): other
        messages first, then broadcasts a batch at a time, looking for other messages between batches
        (a broadcast to thousands must not hold back an answer or a reminder for minutes)."""
        cursors = {False: 0, True: 0}
        others_done = False
        messengers = list(self.channels)
        while not self._halted.is_set():
            broadcasts = others_done
            batch, lanes = (BROADCAST_BATCH, min(BROADCAST_LANES, self.max_lanes)) if broadcasts else (
                FEED_BATCH, self.max_lanes)
            heads = await self._store(due_heads, messengers, after_id=cursors[broadcasts], limit=batch,
                                      broadcasts=broadcasts)
            # After a full batch of broadcasts, look for other messages again.
            others_done = not broadcasts and len(heads) < batch
            for message_id, messenger, chat_id in heads:
                cursors[broadcasts] = message_id
                while len(self._lanes) >= lanes and not self._halted.is_set():
                    self._lane_done.clear()
                    await self._lane_done.wait()
                if self._halted.is_set():
                    return
                key = (messenger, chat_id)
                if key not in self._lanes:
                    self._lanes[key] = asyncio.ensure_future(self._lane(messenger, chat_id))
            if broadcasts and len(heads) < batch:
                return

    async def _lane(self, messenger: str, chat_id: str) -> None:
        """Send one chat's waiting messages in order, until none is left or one must wait."""
        deliver = self.channels[messenger]
        pacer = self.pacers[messenger]
        try:
            while not self._halted.is_set():
                waiting = await self._store(waiting_for_chat, messenger, chat_id, limit=LANE_BATCH)
                if not waiting:
                    return
                for message in waiting:
                    if message.next_attempt_at > utcnow():
                        return  # a retry not yet due: the chat's later messages wait behind it
                    if not await self._send(message, deliver, pacer):
                        return
        except Exception:  # the store failed: the chat's messages stay waiting for the next pass
            log.exception("sending to %s:%s stopped", messenger, chat_id)
        finally:
            del self._lanes[(messenger, chat_id)]
            self._lane_done.set()

    async def _send(self, message: OutboxMessage, deliver: Deliver, pacer: Pacer) -> bool:
        """Deliver one message, waiting out 429s; False if it must wait (a retry, a halt)."""
        message_id = row_id(message)
        while True:
            claim = True
            started = utcnow()

            async def pace() -> None:
                nonlocal claim
                first, claim = claim, False
                await self._pace(pacer, message.chat_id, message_id if first else None)

            try:
                delivery = await deliver(message, pace)
            except NotClaimed:
                return True
            except Halted:
                return False
            except Exception as exc:  # a bug in a channel must not stop the sender
                log.exception("delivery of outbox message %s failed", message_id)
                delivery = Delivery(False, repr(exc))
            if delivery.sent:
                offered = options_of(message) if message.messenger in self.typed_choices else []
                await self._settle(record_sent_offering, message_id, message.messenger, message.chat_id, offered)
                self.sent += 1
                OUTBOX_SENT.labels(message.messenger).inc()
                log.info("outbox message %s sent (%s)", message_id, message.messenger)
                return True
            error = delivery.error or "?"
            rest = None
            if delivery.rest is not None:  # what was delivered is not sent again, even after a restart
                rest = (delivery.rest.text, delivery.rest.with_file)
                message.text = delivery.rest.text
                if not delivery.rest.with_file:
                    message.file_id = message.file_kind = None
            if delivery.retry_after is not None:
                wait = max(0.0, delivery.retry_after)
                pacer.hold(message.chat_id, wait)
                await self._settle(record_wait, message_id, error, until=utcnow() + timedelta(seconds=wait), rest=rest)
                log.info("outbox message %s: the messenger asks to wait %.1f s (%s)", message_id, wait, error)
                if wait > MAX_INLINE_WAIT:
                    return False  # a later pass sends it, when it is due
                continue  # pace() waits for the chat, then claims it again
            if delivery.until_person_writes:
                status = await self._settle(record_waiting, message_id, error, since=started, rest=rest)
                if status == PENDING:  # the person wrote during the attempt: try again at once
                    continue
                log.info("outbox message %s waits until its person writes again (%s)", message_id, error)
                return True  # the chat's later messages are tried (they usually wait too)
            if delivery.unreachable:
                await self._store(record_unreachable, message.messenger, message.chat_id, error)
            retry_at = utcnow() + timedelta(seconds=self._retry_delay(message.attempts + 1))
            status = await self._settle(record_failure, message_id, error, permanent=delivery.permanent,
                                        retry_at=retry_at, rest=rest)
            message.attempts += 1
            if status == FAILED:
                OUTBOX_FAILED.labels(message.messenger).inc()
                log.warning("outbox message %s not delivered: %s", message_id, error)
                return True
            log.info("outbox message %s not sent (%s); trying again at %s", message_id, error, retry_at)
            return False

    async def _pace(self, pacer: Pacer, chat_id: str, claim_id: int | None) -> None:
        """Wait for the chat, then for an overall slot; claim the message (first call only) and go.

        The claim is made at the head of the queue for slots, while waiting for the slot (at most
        one interval): its commit does not delay the call, and a kill in between leaves at most one
        message per messenger "uncertain" that was not sent."""
        while (wait := pacer.chat_wait(chat_id)) > 0:  # a 429 may lengthen the wait meanwhile
            await self._sleep(wait)
        async with pacer.lock:
            if claim_id is not None:
                if self._halted.is_set():
                    raise Halted
                if not await self._store(claim_for_sending, claim_id):
                    raise NotClaimed
            wait = pacer.slot_wait()
            if wait > 0:
                await asyncio.sleep(wait)
            pacer.sent(chat_id)

    def _retry_delay(self, attempts: int) -> float:
        return self.retry_delays[min(attempts, len(self.retry_delays)) - 1] if self.retry_delays else 0.0

    async def _sleep(self, seconds: float) -> None:
        """Sleep, or less if the sender halts (a claim after it is refused)."""
        if self._halted.is_set():
            return
        try:
            await asyncio.wait_for(self._halted.wait(), seconds)
        except TimeoutError:
            pass

    async def _settle(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Record how a send ended, trying again if the store fails for a moment: a message left
        "sending" would hold back its chat until the next start (and then be "uncertain")."""
        for pause in (0.5, 1, 2, 4, 8):
            try:
                return await self._store(work, *args, **kwargs)
            except Exception:
                log.exception("could not record how outbox message %s ended; trying again", args[0])
                await self._sleep(pause)
        return await self._store(work, *args, **kwargs)

    async def _store(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run one store function in its own session, in the sender's threads."""
        def run() -> T:
            with new_session(self.engine) as session:
                return work(*args, session=session, **kwargs)

        if self._executor is None:
            return run()
        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    # ---- receipts: replies a process committed but never showed ------------------------------------
    async def _show_receipts_left(self) -> None:
        """Show replies a process committed but never confirmed shown: it died, or the send failed."""
        before = max(self.started_at, utcnow() - RECEIPT_GRACE)
        left = await self._store(receipts_left, list(self.channels), before=before)
        for receipt in left:
            if self._halted.is_set():
                return
            deliver = self.channels[receipt.messenger]
            pacer = self.pacers[receipt.messenger]
            results = [await self._show(message, deliver, pacer) for message in messages_of(receipt)]
            if all(d.sent for d in results) or any(d.permanent for d in results):
                await self._store(drop_receipts, [row_id(receipt)])
                log.info("replies kept in receipt %s shown after all", receipt.id)

    async def _show(self, message: OutboxMessage, deliver: Deliver, pacer: Pacer) -> Delivery:
        async def pace() -> None:
            await self._pace(pacer, message.chat_id, None)

        while True:
            try:
                delivery = await deliver(message, pace)
            except Exception as exc:
                log.exception("showing a kept reply failed")
                return Delivery(False, repr(exc))
            if delivery.retry_after is None or delivery.retry_after > MAX_INLINE_WAIT or self._halted.is_set():
                return delivery
            pacer.hold(message.chat_id, delivery.retry_after)
            if delivery.rest is not None:  # not stored: this message lives in the receipt
                message.text = delivery.rest.text
                if not delivery.rest.with_file:
                    message.file_id = message.file_kind = None


def record_sent_offering(message_id: int, messenger: str, chat_id: str, options: list[tuple[str, str]], *,
                         session: Session) -> None:
    """Record a message as delivered and, in the same commit, offer its choices to its chat (if any)."""
    if options:
        offer_choices(messenger, chat_id, options, session=session)
    record_sent(message_id, session=session)


async def _first(*events: asyncio.Event) -> None:
    """Wait until any of these events is set."""
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
