"""What must hold under redelivery, late presses, odd numbers and concurrency, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path

import pytest
from sqlmodel import select

from handlers.core import Incoming
from storage.db import create_db_engine, new_session
from storage.dialogs import claim_update
from storage.models import Assignment, Concern, Enterprise, utcnow
from tests.bad_input_steps import at_step
from tests.chat import codes_in, options_of, text_of
from tests.conftest import open_world
from tests.flows import onboard, reach_summary, rows, submit_concern

APOLOGY = "Sorry, something went wrong"
PICK_A_TOPIC = "Please choose a topic from the list"
ODD_NUMBERS = ["²", "①", "¹²", "３", "٣", "99999999999999999999", "0", "-1", "1.5"]


pytestmark = pytest.mark.usefixtures("no_error_logged")  # no input may reach the error handler


# ---- late and repeated button presses (Telegram) ------------------------------------------------------

async def test_a_press_answered_too_late_still_gets_its_reply_once(telegram_world) -> None:
    """Telegram refuses to answer a query that is too old; the person gets the next step, not an apology."""
    lan = await at_step(telegram_world, 901, "category")
    telegram_world.api.old_queries = True
    replies = await lan.choose("Shift meals")
    assert "Step 2 of 6" in text_of(replies) and APOLOGY not in text_of(replies)
    assert any(c.method == "answerCallbackQuery" for c in telegram_world.api.calls)
    again = await lan.resend()  # Telegram delivers the same press again after a restart
    assert again == []
    assert lan.dialog().step == "enterprise"


async def test_the_press_is_answered_after_it_is_handled(telegram_world) -> None:
    lan = await at_step(telegram_world, 902, "category")
    await lan.choose("Shift meals")
    methods = [c.method for c in telegram_world.api.calls]
    answered = len(methods) - 1 - methods[::-1].index("answerCallbackQuery")
    step_two = max(i for i, c in enumerate(telegram_world.api.calls) if "Step 2 of 6" in c.text)
    assert answered < step_two  # the spinner stops before the next question arrives...
    assert lan.dialog().step == "enterprise"  # ...and only once the press is in the store


# ---- numbers in other scripts, or absurdly long ---------------------------------------------------

@pytest.mark.parametrize("typed", ODD_NUMBERS)
async def test_odd_numbers_at_a_choice_get_the_normal_please_choose(world, typed: str) -> None:
    lan = await at_step(world, 910, "category")
    replies = await lan.send(typed)
    assert PICK_A_TOPIC in text_of(replies)
    assert "Wages and bonuses" in options_of(replies)
    assert lan.dialog().step == "category"


async def test_odd_numbers_in_staff_commands_get_ordinary_replies(world) -> None:
    admin = world.person(1, "Hà Admin", "en")
    await onboard(admin, "en")
    for typed in ODD_NUMBERS:
        for command in ("queue", "grant", "refuse", "revoke"):
            replies = await admin.send(f"/{command} {typed}")
            assert replies and APOLOGY not in text_of(replies), (command, typed)
            if command in ("grant", "refuse"):
                assert "This request for more time has already been decided" in text_of(replies)
    assert "The queue is empty" in text_of(await admin.send("/queue 99999999999999999999"))


async def test_odd_numbers_as_a_rating_ask_again(world) -> None:
    lan = world.person(911, language="en")
    await onboard(lan, "en")
    code = await submit_concern(lan, anonymous=True)
    with new_session(world.engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        concern.status = "answered"
        session.add(concern)
        # The answer has reached the worker: only then is there something to rate.
        session.add(Assignment(concern_id=concern.id, agency_code="snv", deadline=date(2099, 1, 1),
                               status="answered", answer_text="Đã trả lời.", relayed_at=utcnow()))
        session.commit()
    await lan.send(f"/rate {code}")
    for typed in ("５", "⑤", "55555555555555555555"):
        replies = await lan.send(typed)
        assert "How satisfied are you" in text_of(replies), typed
    await lan.choose("4")
    assert "Thank you for your rating" in text_of(lan.inbox[-1:])


# ---- redelivery, on each store -----------------------------------------------------------------------

def test_claiming_an_update_twice_says_so_on_each_store(database_url: str) -> None:
    engine = create_db_engine(database_url)
    try:
        with new_session(engine) as session:
            assert claim_update("telegram", "42", session=session) is True
            assert claim_update("telegram", "42", session=session) is False
            assert claim_update("zalo", "42", session=session) is True
            session.commit()
        with new_session(engine) as session:
            assert claim_update("telegram", "42", session=session) is False
    finally:
        engine.dispose()


async def test_an_update_delivered_twice_is_handled_once_on_each_store(tmp_path: Path, database_url: str) -> None:
    async with open_world(tmp_path, "telegram", database_url=database_url) as world:
        lan = world.person(920, language="en")
        await onboard(lan, "en")
        await reach_summary(lan)
        first = await lan.choose("Send")
        assert codes_in(first)
        assert await lan.resend() == []
        update = lan.last_update
    # Another process on the same store, handed the same update: nothing happens twice.
    async with open_world(tmp_path, "telegram", database_url=database_url) as elsewhere:
        replay = elsewhere.person(920, language="en")
        assert await replay.deliver(update) == []
        assert len(rows(elsewhere.engine, Concern)) == 1


# ---- concurrency: a new enterprise named by many at once -----------------------------------------------

async def test_workers_naming_the_same_new_enterprise_at_once_all_get_their_code(
        tmp_path: Path, database_url: str) -> None:
    """Twelve workers at their summary press Send at the same moment, from twelve threads."""
    name = "Công ty TNHH Điện tử Hoàn Toàn Mới"
    async with open_world(tmp_path, "terminal", database_url=database_url) as world:
        workers = [world.person(930 + n, language="en") for n in range(12)]
        for chat in workers:
            await onboard(chat, "en")
            await reach_summary(chat, enterprise=name)
        start = threading.Barrier(len(workers))
        outcomes: dict[str, list[str]] = {}

        def press_send(chat_id: str) -> None:
            start.wait()
            outcome = world.core.handle(Incoming(messenger="terminal", chat_id=chat_id, user_id=chat_id,
                                                 text="1"))  # "1. Send"
            outcomes[chat_id] = [reply.text for reply in outcome.replies]

        threads = [threading.Thread(target=press_send, args=(chat.chat_id,)) for chat in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert all(any("Tracking code" in text for text in texts) for texts in outcomes.values()), outcomes
        assert len(outcomes) == 12
        assert len(rows(world.engine, Concern)) == 12
        assert [e.name for e in rows(world.engine, Enterprise)] == [name]


# ---- cost that follows the work, not the history --------------------------------------------------

def test_pruning_old_update_ids_goes_in_small_batches_and_keeps_recent_ones(database_url: str,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import timedelta

    import storage.dialogs
    from storage.models import ProcessedUpdate, utcnow

    monkeypatch.setattr(storage.dialogs, "PRUNE_BATCH", 100)
    engine = create_db_engine(database_url)
    try:
        old, recent = utcnow() - timedelta(days=30), utcnow()
        with new_session(engine) as session:
            session.add_all([ProcessedUpdate(messenger="telegram", update_key=str(n), at=old) for n in range(250)])
            session.add_all([ProcessedUpdate(messenger="telegram", update_key=f"r{n}", at=recent) for n in range(5)])
            session.commit()
        with new_session(engine) as session:
            assert storage.dialogs.prune_processed_updates(session=session, older_than=timedelta(days=7)) == 250
        assert sorted(u.update_key for u in rows(engine, ProcessedUpdate)) == [f"r{n}" for n in range(5)]
    finally:
        engine.dispose()


async def test_a_withdrawn_concern_leaves_nothing_for_its_agency_to_answer(world) -> None:
    from storage.models import Assignment
    from tests.cast import LABOUR_AGENCY, staff_up, submit

    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.officer.send(f"/assign {code}")
    await cast.officer.choose(LABOUR_AGENCY)
    await cast.officer.choose("Tiếp tục (đã chọn 1)")
    await cast.officer.send("20/08/2099")
    assert code in text_of(await cast.labour.send("/mine"))
    await cast.worker.send(f"/withdraw {code}")
    await cast.worker.choose("Yes, withdraw")
    assert [a.status for a in rows(world.engine, Assignment)] == ["cancelled"]
    assert code not in text_of(await cast.labour.send("/mine"))
    refused = await cast.labour.send(f"/answer {code}")
    assert "đã được rút hoặc gộp" in text_of(refused)
    assert not options_of(await cast.labour.send(f"/case {code}"))
