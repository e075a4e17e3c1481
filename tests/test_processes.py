"""Several processes on one store: what reaches two of them at once is handled once and in turn.

Each "process" here is a core of its own (its own engine and connections) on the same database,
driven from threads at the same moment; the real two-process run is in tests/test_serve.py."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlmodel import func, select

from bot.app import build_core
from bot.scheduler import run_sweep
from handlers.core import Incoming
from handlers.dispatch import Core, Outcome
from storage.db import new_session
from storage.dialogs import lock_chat
from storage.models import OutboxMessage, Person, ProcessedUpdate
from tests.cast import staff_up
from tests.conftest import make_settings, open_world
from tests.test_reminders import assigned

T = TypeVar("T")


@pytest.fixture
def two_cores(tmp_path: Path, database_url: str) -> Iterator[tuple[Core, Core]]:
    """Two cores on one store, as two processes would have."""
    cores = (build_core(make_settings(tmp_path, database_url=database_url)),
             build_core(make_settings(tmp_path, database_url=database_url)))
    yield cores
    for core in cores:
        core.engine.dispose()


def at_once(*calls: Callable[[], T]) -> list[T]:
    """Run the calls in threads released together by a barrier; their results, in order."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def start(user: int, update: str) -> Incoming:
    """A worker's /start on Telegram."""
    return Incoming(messenger="telegram", chat_id=str(user), user_id=str(user), display_name="Lan",
                    language_code="vi", text="/start", command="start", update_key=update)


def count(core: Core, model: Any) -> int:
    with new_session(core.engine) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


def texts(outcome: Outcome) -> str:
    return "\n".join(reply.text for reply in outcome.replies)


def test_an_update_delivered_to_two_processes_is_handled_once(two_cores: tuple[Core, Core]) -> None:
    first, second = two_cores
    for round_ in range(10):
        update = start(7000 + round_, f"u{round_}")
        outcomes = at_once(partial(first.handle, update), partial(second.handle, update))
        answered = [o for o in outcomes if o.replies]
        assert len(answered) == 1, [texts(o) for o in outcomes]
        assert "Xin lỗi" not in texts(answered[0])
    assert count(first, ProcessedUpdate) == 10 and count(first, Person) == 10


def test_a_first_contact_reaching_two_processes_at_once_makes_one_person(two_cores: tuple[Core, Core]) -> None:
    """Two messages of a new chat at the same moment: neither gets an apology, the person exists once."""
    first, second = two_cores
    for round_ in range(20):
        user = 7100 + round_
        outcomes = at_once(partial(first.handle, start(user, f"a{round_}")),
                           partial(second.handle, start(user, f"b{round_}")))
        assert all("Xin lỗi" not in texts(o) and o.replies for o in outcomes), [texts(o) for o in outcomes]
    assert count(first, Person) == 20


def test_a_chat_held_by_one_process_waits_in_the_other(postgres_url: str, tmp_path: Path) -> None:
    """The chat's lock is held until the transaction ends: the other process's event of that chat waits."""
    core = build_core(make_settings(tmp_path, database_url=postgres_url))
    try:
        with new_session(core.engine) as holder:
            lock_chat("telegram", "7200", session=holder)
            with ThreadPoolExecutor(1) as pool:
                waiting = pool.submit(core.handle, start(7200, "held"))
                time.sleep(0.5)
                assert not waiting.done()  # the other event of the chat waits for the lock
                holder.commit()
                assert "Xin lỗi" not in texts(waiting.result(timeout=10))
            with ThreadPoolExecutor(1) as pool:  # another chat is not held up
                assert pool.submit(core.handle, start(7201, "free")).result(timeout=2).replies
    finally:
        core.engine.dispose()


async def test_two_processes_sweeping_at_once_queue_each_reminder_once(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, "telegram", database_url=database_url) as world:
        cast = await staff_up(world)
        await assigned(world, cast, 2, deadline="15/03/2027")
        other = build_core(make_settings(tmp_path, database_url=database_url))
        try:
            with new_session(world.engine) as session:
                before = int(session.exec(select(func.count()).select_from(OutboxMessage)).one())
            moment = datetime(2027, 3, 4, 1, 0, tzinfo=UTC)  # 08:00 in Vietnam, three working days before
            reports = at_once(partial(run_sweep, world.core, now=moment), partial(run_sweep, other, now=moment))
        finally:
            other.engine.dispose()
        assert sorted(r.stages for r in reports) == [0, 1]  # one reminder to the agency, queued by one process
        with new_session(world.engine) as session:
            after = int(session.exec(select(func.count()).select_from(OutboxMessage)).one())
        assert after - before == sum(r.total for r in reports)
