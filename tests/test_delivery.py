"""The outbox sender under Telegram's real limits and errors, on the fake Bot API (request layer).

The fake keeps Telegram's flood limits here (30 sends in any second, one a second per chat,
answered beyond with 429 and a retry_after), takes a round trip per call when asked, and meets
scripted failures per chat: 429, 5xx, timeouts, 403. The store is a real SQLite file, or
PostgreSQL where the store's part matters (`database_url`).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update
from sqlmodel import col, select

from bot.app import build_core, build_telegram_application
from bot.sender import IN_FLIGHT, Limits, OutboxSender
from handlers.dispatch import Core
from storage.db import new_session
from storage.models import Broadcast, OutboxMessage, Person, Receipt, Unreachable, utcnow
from storage.outbox import MAX_ATTEMPTS, OutboxBatch
from tests.cast import WORKER, staff_up, submit
from tests.chat import text_of
from tests.conftest import make_settings, open_world
from tests.fake_telegram import FakeBotAPI
from tests.flows import outbox_row

ROOT = Path(__file__).resolve().parent.parent
TELEGRAM = "telegram"
A, B = "1001", "1002"


@dataclass
class Rig:
    """The Telegram channel on a fake Bot API, a store, and a sender made for the test."""

    core: Core
    api: FakeBotAPI
    sender: OutboxSender

    def queue(self, chat_id: str, text: str, **fields: Any) -> int:
        """Queue a message, as a handler's transaction does; its id."""
        with new_session(self.core.engine) as session:
            message = OutboxMessage(messenger=TELEGRAM, chat_id=chat_id, text=text, **fields)
            session.add(message)
            session.commit()
            return int(message.id or 0)

    def row(self, message_id: int) -> OutboxMessage:
        return outbox_row(self.core.engine, message_id)

    def texts_to(self, chat_id: str) -> list[str]:
        """Texts delivered to a chat, in the order they arrived."""
        return [a.text for a in self.api.delivered() if a.chat_id == chat_id and a.method == "sendMessage"]

    async def drain_until(self, done: Callable[[], bool], seconds: float = 15.0) -> None:
        """Drain again and again (retries come due) until `done()`."""
        deadline = time.monotonic() + seconds
        while not done():
            assert time.monotonic() < deadline, "the outbox did not settle in time"
            await self.sender.drain()
            await asyncio.sleep(0.02)


@asynccontextmanager
async def rig(tmp_path: Path, *, database_url: str | None = None, round_trip: float = 0.0,
              limits: tuple[float, float] | None = (30, 1), retry_delays: tuple[float, ...] = (0.05,),
              ) -> AsyncIterator[Rig]:
    """`limits`: Telegram's, kept by the fake and the sender alike (None: no limits, for speed)."""
    overrides = {"database_url": database_url} if database_url else {}
    settings = make_settings(tmp_path, **overrides)
    core = build_core(settings)
    api = FakeBotAPI(round_trip=round_trip, limits=limits)
    app = build_telegram_application(settings, core, request=api, rate_limit=False)
    await app.initialize()
    channel = app.bot_data["channel"]
    sender = OutboxSender(core.engine, {TELEGRAM: channel.deliver}, limits={TELEGRAM: Limits(*limits or (1e6, 1e6))},
                          retry_delays=retry_delays)
    try:
        yield Rig(core, api, sender)
    finally:
        await sender.close()
        await app.shutdown()
        core.engine.dispose()


# ---- 429: wait what Telegram says, for that chat only ---------------------------------------------

async def test_a_429_waits_its_retry_after_for_that_chat_only_and_delivers_once(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.api.failures[A] = ["429:1"]
        first = r.queue(A, "A1")
        r.queue(B, "B1")
        await r.sender.drain()
        attempts = [a for a in r.api.attempts if a.chat_id == A]
        assert [a.outcome for a in attempts] == ["429", "ok"]
        assert attempts[1].at - attempts[0].at >= 1.0  # the retry_after was respected
        b_arrived = next(a.at for a in r.api.delivered() if a.chat_id == B)
        assert b_arrived < attempts[0].at + 0.5  # the other chat did not wait
        assert r.texts_to(A) == ["A1"]  # delivered once
        assert r.api.rate_limited == 0  # and no 429 provoked after it
        row = r.row(first)
        assert row.status == "sent" and row.attempts == 1  # the wait was not a failed attempt


async def test_three_in_a_row_to_one_chat_arrive_in_order_a_second_apart(tmp_path: Path,
                                                                          database_url: str) -> None:
    async with rig(tmp_path, database_url=database_url) as r:
        for number in (1, 2, 3):
            r.queue(A, f"A{number}")
            r.queue(B, f"B{number}")
        await asyncio.gather(r.sender.drain(), r.sender.drain())  # the second joins the first
        assert r.texts_to(A) == ["A1", "A2", "A3"]
        assert r.texts_to(B) == ["B1", "B2", "B3"]
        times = [a.at for a in r.api.delivered() if a.chat_id == A]
        assert all(later - earlier >= 1.0 for earlier, later in zip(times, times[1:], strict=False))
        assert r.api.rate_limited == 0
        with new_session(r.core.engine) as session:
            assert {m.status for m in session.exec(select(OutboxMessage))} == {"sent"}


async def test_chats_are_sent_to_concurrently_under_a_round_trip_within_30_a_second(tmp_path: Path) -> None:
    async with rig(tmp_path, round_trip=0.2) as r:
        for chat in range(45):
            r.queue(str(2000 + chat), f"hello {chat}")
        started = time.monotonic()
        sent = await r.sender.drain()
        wall = time.monotonic() - started
        assert sent == 45 and len(r.api.delivered()) == 45
        # One at a time would take 45 × 0.2 s = 9 s; at 30/s it takes about 1.5 s, plus a round trip.
        assert 1.0 <= wall < 4.0, wall
        assert r.api.rate_limited == 0 and r.api.busiest_second() <= 30


# ---- network errors, 5xx, timeouts: back-off; too many: failed --------------------------------------

async def test_server_errors_and_timeouts_are_retried_with_backoff(tmp_path: Path) -> None:
    async with rig(tmp_path, limits=None, retry_delays=(0.2, 0.4, 0.6)) as r:
        r.api.failures[A] = ["502", "timeout", "500"]
        message = r.queue(A, "A1")
        await r.drain_until(lambda: r.row(message).status == "sent")
        attempts = [a for a in r.api.attempts if a.chat_id == A]
        assert [a.outcome for a in attempts] == ["502", "timeout", "500", "ok"]
        gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
        assert gaps[0] >= 0.2 and gaps[1] >= 0.4 and gaps[2] >= 0.6, gaps
        assert r.texts_to(A) == ["A1"]
        assert r.row(message).attempts == 4


async def test_a_retried_message_holds_back_the_later_ones_of_its_chat(tmp_path: Path) -> None:
    async with rig(tmp_path, limits=None, retry_delays=(0.3,)) as r:
        r.api.failures[A] = ["502"]
        ids = [r.queue(A, f"A{number}") for number in (1, 2, 3)]
        r.queue(B, "B1")
        await r.sender.drain()
        assert r.texts_to(A) == [] and r.texts_to(B) == ["B1"]  # A1 waits for its retry, A2 and A3 behind it
        await r.drain_until(lambda: r.row(ids[-1]).status == "sent")
        assert r.texts_to(A) == ["A1", "A2", "A3"]


async def test_a_message_that_keeps_failing_ends_failed_with_its_reason(tmp_path: Path) -> None:
    async with rig(tmp_path, limits=None, retry_delays=(0.01,)) as r:
        r.api.flaky.add(A)
        message = r.queue(A, "A1")
        await r.drain_until(lambda: r.row(message).status == "failed")
        row = r.row(message)
        assert row.attempts == MAX_ATTEMPTS and "Bad Gateway" in (row.last_error or "")
        assert len([a for a in r.api.attempts if a.chat_id == A]) == MAX_ATTEMPTS


async def test_a_partly_delivered_message_sends_only_the_rest(tmp_path: Path) -> None:
    async with rig(tmp_path, limits=None, retry_delays=(0.05,)) as r:
        r.api.failures[A] = ["ok", "502"]  # the file goes, its text meets a 502
        message = r.queue(A, "The agency's answer is attached.", file_id="answer-doc", file_kind="document")
        await r.drain_until(lambda: r.row(message).status == "sent")
        assert [(a.method, a.outcome) for a in r.api.attempts] == [
            ("sendDocument", "ok"), ("sendMessage", "502"), ("sendMessage", "ok")]
        assert r.row(message).file_id is None  # what was delivered is not kept to send again


# ---- 403: the person blocked the bot ----------------------------------------------------------------

async def test_a_blocked_person_is_marked_unreachable_and_the_message_failed(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        r.api.blocked.add(A)
        first = r.queue(A, "A1")
        r.queue(B, "B1")
        await r.sender.drain()
        row = r.row(first)
        assert row.status == "failed" and row.attempts == 1 and "blocked" in (row.last_error or "")
        assert len([a for a in r.api.attempts if a.chat_id == A]) == 1  # not retried
        with new_session(r.core.engine) as session:
            unreachable = session.get(Unreachable, (TELEGRAM, A))
            assert unreachable is not None and "blocked" in unreachable.reason
        assert r.texts_to(B) == ["B1"]
        # Unblocked: the next message gets through, and the account is reachable again.
        r.api.blocked.discard(A)
        later = r.queue(A, "A2")
        await r.sender.drain()
        assert r.row(later).status == "sent"
        with new_session(r.core.engine) as session:
            assert session.get(Unreachable, (TELEGRAM, A)) is None


# ---- crash safety: "sending" at start-up becomes "uncertain", never resent ------------------------

CHILD = r"""
import asyncio, sys
from bot.sender import OutboxSender
from storage.db import create_db_engine

async def main(url):
    engine = create_db_engine(url)

    async def deliver(message, pace=None):
        await pace()  # the sender claims the message: "sending", committed
        print("calling the messenger for", message.id, flush=True)
        await asyncio.sleep(3600)  # the call never returns: the process is killed here

    await OutboxSender(engine, {"telegram": deliver}).drain()

asyncio.run(main(sys.argv[1]))
"""


async def test_killed_between_sending_and_sent_the_message_is_uncertain_and_never_resent(
        tmp_path: Path, database_url: str) -> None:
    async with rig(tmp_path, database_url=database_url) as r:
        a1, a2, b1 = r.queue(A, "A1"), r.queue(A, "A2"), r.queue(B, "B1")

        def sending() -> set[int]:
            with new_session(r.core.engine) as session:
                return {int(m.id or 0) for m in session.exec(
                    select(OutboxMessage).where(OutboxMessage.status == "sending"))}

        child = subprocess.Popen([sys.executable, "-c", CHILD, r.core.engine.url.render_as_string(False)],
                                 cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 30
            while sending() != {a1, b1}:
                assert child.poll() is None, child.communicate()[1]
                assert time.monotonic() < deadline, "the child never claimed its messages"
                await asyncio.sleep(0.05)
        finally:
            child.kill()  # SIGKILL, between "sending" and "sent"
            out, _ = child.communicate(timeout=10)
        assert "calling the messenger" in out

        await r.sender.drain()  # a new process on the same store, at once: the sends may still be under way
        assert [r.row(i).status for i in (a1, a2, b1)] == ["sending", "pending", "sending"]
        with new_session(r.core.engine) as session:  # longer ago than any send takes: that process died
            session.execute(update(OutboxMessage).where(col(OutboxMessage.status) == "sending")
                            .values(next_attempt_at=utcnow() - IN_FLIGHT - timedelta(seconds=1)))
            session.commit()
        fresh = OutboxSender(r.core.engine, r.sender.channels, limits={TELEGRAM: Limits(30, 1)})
        try:
            await fresh.drain()
            await fresh.drain()
        finally:
            await fresh.close()
        assert [r.row(i).status for i in (a1, a2, b1)] == ["uncertain", "sent", "uncertain"]
        assert r.texts_to(A) == ["A2"] and r.texts_to(B) == []  # the uncertain ones never sent again
        assert "possibly sent" in (r.row(a1).last_error or "")


async def test_a_process_starting_beside_another_leaves_its_sends_under_way_alone(
        tmp_path: Path, database_url: str) -> None:
    """A rolling restart: the new process does not take the old one's sends in flight for "possibly sent"."""
    async with rig(tmp_path, database_url=database_url, round_trip=1.0, limits=None) as r:
        message = r.queue(A, "A1")
        first = asyncio.ensure_future(r.sender.drain())
        while r.row(message).status != "sending":
            await asyncio.sleep(0.02)
        other = OutboxSender(r.core.engine, r.sender.channels, limits={TELEGRAM: Limits(1e6, 1e6)})
        try:
            await other.drain()  # starts while the first is waiting for Telegram
            assert r.row(message).status == "sending"  # not taken for "possibly sent"
        finally:
            await other.close()
        await first
        assert r.row(message).status == "sent" and r.texts_to(A) == ["A1"]


async def test_receipts_left_by_a_dead_process_are_still_shown(tmp_path: Path) -> None:
    async with rig(tmp_path) as r:
        with new_session(r.core.engine) as session:
            session.add(Receipt(messenger=TELEGRAM, chat_id=A, replies='[["Tracking code: KN-7F3K-Q9TZ", []]]',
                                created_at=utcnow() - timedelta(minutes=2)))
            session.commit()
        await r.sender.drain()
        assert r.texts_to(A) == ["Tracking code: KN-7F3K-Q9TZ"]
        with new_session(r.core.engine) as session:
            assert session.exec(select(Receipt)).all() == []


async def test_the_run_loop_sends_when_kicked_and_stops_cleanly(tmp_path: Path) -> None:
    async with rig(tmp_path, round_trip=0.05) as r:
        loop = asyncio.create_task(r.sender.run())
        await asyncio.sleep(0.1)
        message = r.queue(A, "A1")
        await asyncio.to_thread(r.sender.kick)  # from another thread, as the scheduler's job does
        deadline = time.monotonic() + 5
        while r.row(message).status != "sent":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        r.sender.halt()
        await asyncio.wait_for(loop, 2)


# ---- officers see what failed and what was possibly sent ------------------------------------------

async def test_undelivered_lists_failed_and_possibly_sent_messages(tmp_path: Path) -> None:
    async with open_world(tmp_path, "telegram") as world:
        cast = await staff_up(world)
        code = await submit(cast.worker)
        world.api.blocked.add(str(WORKER))
        with new_session(world.engine) as session:  # left "sending" by a process that was killed
            session.add(OutboxMessage(messenger=TELEGRAM, chat_id="4242", text="Kiến nghị đã được chuyển",
                                      status="sending", next_attempt_at=utcnow() - 2 * IN_FLIGHT))
            session.commit()
        await cast.officer.send(f"/accept {code}")
        await world.deliver_outbox()
        shown = text_of(await cast.officer.send("/undelivered"))  # the officer reads Vietnamese
        failed, _, uncertain = shown.partition("Có thể đã gửi")
        assert "Tin nhắn không gửi được" in failed and f"Telegram {WORKER}" in failed
        assert "người nhận đã chặn hệ thống" in failed
        assert "Telegram 4242 · có thể đã gửi" in uncertain and "Kiến nghị đã được chuyển" in uncertain


async def test_two_senders_on_one_store_send_every_message_once(tmp_path: Path, database_url: str) -> None:
    """Two processes' senders drain the same outbox at once: each message is claimed by one of them."""
    async with rig(tmp_path, database_url=database_url, limits=None) as r:
        texts = [f"{chat}-{n}" for n in range(3) for chat in range(2001, 2021)]
        for text in texts:
            r.queue(text.split("-")[0], text)
        other_core = build_core(make_settings(tmp_path, **({"database_url": database_url} if database_url else {})))
        channel_deliver = r.sender.channels[TELEGRAM]
        other = OutboxSender(other_core.engine, {TELEGRAM: channel_deliver}, limits={TELEGRAM: Limits(1e6, 1e6)})
        try:
            await asyncio.gather(r.sender.drain(), other.drain())
        finally:
            await other.close()
            other_core.engine.dispose()
        delivered = sorted(a.text for a in r.api.delivered() if a.method == "sendMessage")
        assert delivered == sorted(texts)  # every message, none twice
        for chat in range(2001, 2021):
            assert r.texts_to(str(chat)) == [f"{chat}-{n}" for n in range(3)]  # each chat in order


async def test_a_big_broadcast_does_not_hold_back_a_message_queued_during_it(tmp_path: Path) -> None:
    """Broadcast messages go after the others: an answer queued while thousands are being sent
    goes out within the next batch, not after the whole broadcast."""
    async with rig(tmp_path, limits=(300, 300)) as r:
        with new_session(r.core.engine) as session:
            broadcast = Broadcast(text="Thông báo", audience="all")
            session.add(broadcast)
            session.commit()
            batch = OutboxBatch(broadcast_id=broadcast.id)
            for number in range(600):
                batch.add(Person(messenger=TELEGRAM, external_id=str(5000 + number), chat_id=str(5000 + number)),
                          f"broadcast {number}")
            batch.write(session=session)
            session.commit()
        draining = asyncio.ensure_future(r.sender.drain())
        while len(r.api.delivered()) < 20:
            await asyncio.sleep(0.01)
        r.queue(A, "the agency's answer")
        r.sender.kick()
        await draining
        await r.drain_until(lambda: bool(r.texts_to(A)))
        order = [a.text for a in r.api.delivered()]
        assert len(order) == 601
        assert order.index("the agency's answer") < 200, order.index("the agency's answer")
