"""Reminders before the deadline, overdue notices, escalation, digests and arrivals, on a controlled clock.

Deadlines are set in March 2027 (no public holiday): Monday 15/03/2027 has its 7-, 3-, 1- and
0-working-day reminders on Thursday 04/03, Wednesday 10/03, Friday 12/03 and Monday 15/03.
Local time is Asia/Ho_Chi_Minh (UTC+7): 08:00 there is 01:00 UTC.
"""

from __future__ import annotations

import re
import threading
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.app import build_core
from bot.scheduler import run_sweep
from handlers.rules.calendar import Calendar, ReminderPolicy
from handlers.rules.reminders import due_escalation, due_stage
from storage.db import new_session
from storage.models import OutboxMessage, SentNotice
from tests.cast import LABOUR, LABOUR_AGENCY, OFFICER, WORKER, Cast, delivered, staff_up, texts
from tests.chat import CODE, text_of
from tests.conftest import make_settings, open_world
from tests.flows import onboard, submit_concern

CALENDAR = Calendar()
POLICY = ReminderPolicy()


def local(day: str, hour: int = 8, minute: int = 0) -> datetime:
    """A moment in Vietnam (UTC+7), as the aware UTC time the sweep is given."""
    moment = datetime.combine(date.fromisoformat(day), time(hour, minute))
    return datetime(moment.year, moment.month, moment.day, moment.hour, moment.minute, tzinfo=UTC) - (
        datetime(2000, 1, 1, 7) - datetime(2000, 1, 1))


# ---- the calendar and the stages, without any chat ------------------------------------------------

def test_weekends_and_public_holidays_are_not_working_days() -> None:
    assert CALENDAR.is_working_day(date(2027, 3, 15))  # Monday
    assert not CALENDAR.is_working_day(date(2027, 3, 13))  # Saturday
    assert not CALENDAR.is_working_day(date(2027, 2, 8))  # Tết: the lunar new year, a Monday
    assert not CALENDAR.is_working_day(date(2026, 9, 2))  # National Day
    assert not Calendar(extra_days_off=frozenset({date(2027, 3, 15)})).is_working_day(date(2027, 3, 15))


def test_stage_dates_count_working_days_back_from_the_deadline() -> None:
    deadline = date(2027, 3, 15)
    assert [CALENDAR.working_days_before(deadline, k) for k in (7, 3, 1, 0)] == [
        date(2027, 3, 4), date(2027, 3, 10), date(2027, 3, 12), date(2027, 3, 15)]
    assert due_stage(deadline, date(2027, 3, 3), POLICY) is None
    assert due_stage(deadline, date(2027, 3, 4), POLICY) == 7
    assert due_stage(deadline, date(2027, 3, 11), POLICY) == 3
    assert due_stage(deadline, date(2027, 3, 12), POLICY) == 1  # the latest due only: never 7 after 1
    assert due_stage(deadline, date(2027, 3, 15), POLICY) == 0


def test_the_lunar_new_year_is_skipped_and_a_day_off_moves_a_reminder_earlier() -> None:
    # Tết 2027: 04/02 to 10/02 are days off. Three working days before Friday 12/02 is Tuesday 02/02.
    assert CALENDAR.working_days_before(date(2027, 2, 12), 1) == date(2027, 2, 11)
    assert CALENDAR.working_days_before(date(2027, 2, 12), 3) == date(2027, 2, 2)
    # A deadline on a Saturday: its "on the day" reminder goes out on the Friday before.
    assert CALENDAR.working_days_before(date(2027, 3, 20), 0) == date(2027, 3, 19)


def test_escalations_fall_on_the_first_working_day_overdue_then_weekly() -> None:
    deadline = date(2027, 3, 12)  # a Friday: first working day overdue is Monday 15/03
    assert due_escalation(deadline, date(2027, 3, 13), POLICY) is None
    assert due_escalation(deadline, date(2027, 3, 15), POLICY) == 0
    assert due_escalation(deadline, date(2027, 3, 19), POLICY) == 0
    assert due_escalation(deadline, date(2027, 3, 22), POLICY) == 1
    assert due_escalation(deadline, date(2027, 3, 29), POLICY) == 2


def test_quiet_hours_wrap_midnight() -> None:
    assert POLICY.is_quiet(time(21, 0)) and POLICY.is_quiet(time(6, 59)) and POLICY.is_quiet(time(0, 30))
    assert not POLICY.is_quiet(time(7, 0)) and not POLICY.is_quiet(time(20, 59))


# ---- the sweep over the store, the messages people receive ------------------------------------------

async def assigned(world: Any, cast: Cast, count: int, *, deadline: str = "15/03/2027",
                   agency: str = LABOUR_AGENCY) -> list[str]:
    """`count` concerns raised by the worker and assigned to one agency with this deadline; their codes."""
    if not cast.worker.inbox:
        await onboard(cast.worker, "en")
    codes = []
    for number in range(count):
        code = await submit_concern(cast.worker, description=f"Công ty chưa trả lương tháng {number + 1} cho tổ 3.")
        await cast.officer.send(f"/assign {code}")
        await cast.officer.choose(agency)
        await cast.officer.choose("Tiếp tục (đã chọn 1)")
        done = await cast.officer.send(deadline)
        assert code in text_of(done), text_of(done)
        codes.append(code)
    await world.deliver_outbox()  # the assignment notices: out of the way
    return codes


def sweep_at(world: Any, moment: datetime, **kwargs: Any) -> Any:
    """One sweep at a moment of the test's choosing."""
    return run_sweep(world.core, now=moment, **kwargs)


def notices(world: Any, kind: str) -> list[str]:
    """The keys of the notices of one kind recorded as sent."""
    with new_session(world.engine) as session:
        return sorted(n.key for n in session.exec(select(SentNotice).where(SentNotice.kind == kind)))


@pytest.fixture
async def cast(world: Any) -> Cast:
    """The cast of the case loop, on each channel."""
    return await staff_up(world)


async def test_one_message_per_agency_per_stage_listing_all_its_concerns(world, cast: Cast) -> None:
    codes = await assigned(world, cast, 3)
    assert sweep_at(world, local("2027-03-04", 7, 59)).total == 0  # not before 08:00
    report = sweep_at(world, local("2027-03-04", 8, 0))
    assert report.stages == 1
    received = (await delivered(world))[LABOUR]
    assert len(received) == 1
    reminder = received[0]
    assert reminder.text.startswith(f"Kính gửi: {LABOUR_AGENCY}\nLiên đoàn Lao động thành phố Bắc Ninh trân trọng")
    assert "Quý cơ quan" in reminder.text and "3 kiến nghị sắp đến hạn" in reminder.text
    assert all(code in reminder.text for code in codes) and "15/03/2027" in reminder.text
    assert sorted(CODE.findall(" ".join(reminder.options))) == sorted(codes)  # a button to open each
    assert (await delivered(world))[WORKER] == []  # workers are not reminded of the agency's deadline
    # The same stage is never sent twice, whatever the number of sweeps.
    assert sweep_at(world, local("2027-03-04", 8, 1)).total == 0
    assert sweep_at(world, local("2027-03-05", 9, 0)).total == 0
    assert (await delivered(world))[LABOUR] == []


async def test_after_downtime_only_the_latest_stage_is_caught_up(world, cast: Cast) -> None:
    await assigned(world, cast, 1)
    # The bot was down from before the 7-day reminder until the day before the deadline's Friday.
    assert sweep_at(world, local("2027-03-12", 10, 30)).stages == 1
    received = texts((await delivered(world))[LABOUR])
    assert len(received) == 1 and "3 days left" not in received[0]
    assert [key.rsplit(":", 1)[1] for key in notices(world, "stage")] == ["1"]
    # On the day, the last one.
    assert sweep_at(world, local("2027-03-15", 8, 0)).stages == 1
    assert len((await delivered(world))[LABOUR]) == 1
    assert [key.rsplit(":", 1)[1] for key in notices(world, "stage")] == ["0", "1"]


async def test_nothing_on_a_weekend_or_during_quiet_hours_unless_forced(world, cast: Cast) -> None:
    await assigned(world, cast, 1, deadline="22/03/2027")  # 7 working days before: Thursday 11/03
    assert sweep_at(world, local("2027-03-13", 9, 0)).total == 0  # Saturday
    assert sweep_at(world, local("2027-03-11", 22, 0)).total == 0  # quiet hours
    assert sweep_at(world, local("2027-03-11", 6, 30)).total == 0
    assert sweep_at(world, local("2027-03-11", 6, 30), force=True).stages == 1  # an admin's /remind now


async def test_overdue_daily_to_the_agency_and_escalated_to_admins_weekly(world, cast: Cast) -> None:
    codes = await assigned(world, cast, 2, deadline="12/03/2027")  # a Friday
    sweep_at(world, local("2027-03-12", 8, 0))
    await world.deliver_outbox()
    # Monday: the first working day overdue.
    report = sweep_at(world, local("2027-03-15", 8, 0))
    assert (report.overdue, report.escalations) == (1, 1)
    received = await delivered(world)
    overdue = texts(received[LABOUR])
    assert len(overdue) == 1 and "đã quá hạn trả lời" in overdue[0] and all(c in overdue[0] for c in codes)
    escalation = texts(received[1])  # person 1: the admin
    assert len(escalation) == 1 and LABOUR_AGENCY in escalation[0] and all(c in escalation[0] for c in codes)
    # Tuesday: the agency again (daily), no new escalation (weekly).
    report = sweep_at(world, local("2027-03-16", 8, 0))
    assert (report.overdue, report.escalations) == (1, 0)
    # A week after the first escalation, the next one.
    assert sweep_at(world, local("2027-03-22", 8, 0)).escalations == 1


async def test_an_extension_restarts_the_reminders_and_the_agency_is_told(world, cast: Cast) -> None:
    (code,) = await assigned(world, cast, 1)
    sweep_at(world, local("2027-03-12", 8, 0))  # the 1-day reminder
    await world.deliver_outbox()
    moved = await cast.officer.send(f"/extend {code} 29/03/2027 chờ kết quả thanh tra")
    assert "29/03/2027" in text_of(moved)
    received = await delivered(world)
    told = texts(received[LABOUR])
    assert any(t.startswith(f"Kính gửi: {LABOUR_AGENCY}") and "29/03/2027" in t and "chờ kết quả thanh tra" in t
               for t in told)
    assert any("29 Mar 2027" in t for t in texts(received[WORKER]))
    # No overdue notice for the old deadline; the new one has its own reminders.
    assert sweep_at(world, local("2027-03-16", 8, 0)).overdue == 0
    assert sweep_at(world, local("2027-03-18", 8, 0)).stages == 1  # 7 working days before 29/03
    case = await cast.officer.send(f"/case {code}")
    assert f"hạn trả lời của {LABOUR_AGENCY} được điều chỉnh: 15/03/2027 → 29/03/2027" in text_of(case)


async def test_the_digest_comes_only_with_something_in_it(world, cast: Cast) -> None:
    assert sweep_at(world, local("2027-03-04", 8, 0)).digests == 0  # nothing waits for the union
    await onboard(cast.worker, "en")
    await submit_concern(cast.worker)
    assert sweep_at(world, local("2027-03-04", 9, 0)).digests == 0  # one digest a day, even if empty
    with new_session(world.engine) as session:  # held for a Zalo OA worker outside the messaging window
        session.add(OutboxMessage(messenger="zalo_oa", chat_id="55", text="Câu trả lời đã được chuyển.",
                                  status="waiting", created_at=local("2027-03-04", 20, 0)))
        session.commit()
    report = sweep_at(world, local("2027-03-05", 8, 0))
    assert report.digests == 1
    digest = [t for t in texts((await delivered(world))[OFFICER]) if "Tổng hợp ngày 05/03/2027" in t]
    assert len(digest) == 1 and "Kiến nghị mới chưa tiếp nhận: 1" in digest[0]
    assert "Tin nhắn chưa gửi được: 1" in digest[0]


async def test_new_concerns_are_told_to_officers_in_batches_during_working_hours(world, cast: Cast) -> None:
    await onboard(cast.worker, "en")
    first = await submit_concern(cast.worker)
    assert sweep_at(world, local("2027-03-05", 18, 0)).arrivals == 0  # after working hours
    assert sweep_at(world, local("2027-03-06", 9, 0)).arrivals == 0  # Saturday
    assert sweep_at(world, local("2027-03-08", 9, 0)).arrivals == 1  # Monday morning
    batch = [t for t in texts((await delivered(world))[OFFICER]) if "Có kiến nghị mới" in t]
    assert len(batch) == 1 and first in batch[0]
    second = await submit_concern(cast.worker)
    assert sweep_at(world, local("2027-03-08", 9, 10)).arrivals == 0  # within 30 minutes of the last
    assert sweep_at(world, local("2027-03-08", 9, 31)).arrivals == 1
    later = [t for t in texts((await delivered(world))[OFFICER]) if "Có kiến nghị mới" in t]
    assert len(later) == 1 and second in later[0] and first not in later[0]


async def test_remind_now_sends_what_is_due_and_says_so(world, cast: Cast) -> None:
    soon = date.today() + timedelta(days=3)  # its 7-working-day reminder is due already
    await assigned(world, cast, 1, deadline=f"{soon:%d/%m/%Y}")
    reply = await cast.admin.send("/remind now")
    assert "Đã đưa vào hàng đợi gửi: 1 lời nhắc hạn" in text_of(reply)
    received = texts((await delivered(world))[LABOUR])
    assert len(received) == 1 and "Quý cơ quan" in received[0]
    again = await cast.admin.send("/remind now")
    assert "Chưa có nội dung nào đến hạn" in text_of(again)


async def test_sessions_give_their_deadline_to_the_concerns_entered_at_them(world, cast: Cast) -> None:
    officer = cast.officer
    await officer.send("/session new")
    await officer.send("Đối thoại công nhân KCN Đình Trám 2027")
    await officer.send("25/05/2026")
    created = await officer.send("20/08/2027")
    assert "20/08/2027" in text_of(created)
    await officer.choose("Nhập kiến nghị")
    await officer.choose("Đối thoại công nhân KCN Đình Trám 2027")
    await officer.choose("Tiền lương, thưởng")
    await officer.send("Công ty TNHH Minh Phát")
    await officer.choose("KCN Đình Trám")
    await officer.send("Công nhân phản ánh công ty chậm trả lương hai tháng.")
    await officer.choose("Bỏ qua")  # no files
    await officer.send("Nguyễn Văn An, tổ may 3")
    saved = await officer.choose("Lưu")
    (code,) = CODE.findall(text_of(saved))
    case = await officer.send(f"/case {code}")
    assert "Nguyễn Văn An, tổ may 3" in text_of(case) and "Đối thoại công nhân KCN Đình Trám 2027" in text_of(case)
    await officer.send(f"/assign {code}")
    await officer.choose(LABOUR_AGENCY)
    await officer.choose("Tiếp tục (đã chọn 1)")
    assert "20/08/2027 (hạn của Đối thoại công nhân KCN Đình Trám 2027)" in officer.last_options()
    await officer.choose("20/08/2027 (hạn của Đối thoại công nhân KCN Đình Trám 2027)")
    notice = texts((await delivered(world))[LABOUR])
    assert any(code in t and "20/08/2027" in t for t in notice)
    assert not any("Nguyễn Văn An" in t for t in notice)  # the speaker is for the union only
    agency_view = await cast.labour.send(f"/case {code}")
    assert "Nguyễn Văn An" not in text_of(agency_view)
    listing = await officer.send("/sessions")
    assert "Đối thoại công nhân KCN Đình Trám 2027" in text_of(listing) and "1 kiến nghị" in text_of(listing)
    deadlines = await officer.send("/deadlines")
    assert LABOUR_AGENCY in text_of(deadlines) and "chưa đến hạn: 1" in text_of(deadlines)
    # The worker can follow it with the code the officer hands over.
    lan = world.person(WORKER + 40, "Nguyễn Văn An", language="vi")
    seen = await lan.send(code)
    assert code in text_of(seen) and "20/08/2027" in text_of(seen)


# ---- two processes sweeping one store at once ------------------------------------------------------

@pytest.mark.parametrize("kind", ["terminal"])
async def test_two_processes_sweeping_at_once_send_each_reminder_once(tmp_path: Path, database_url: str,
                                                                      kind: str) -> None:
    async with open_world(tmp_path, kind, database_url=database_url) as world:
        cast = await staff_up(world)
        await assigned(world, cast, 2)
        await assigned(world, cast, 1, deadline="12/03/2027")
        other = build_core(make_settings(tmp_path, database_url=database_url, admin_ids=f"{kind}:1"))
        moment = local("2027-03-15", 8, 0)
        start = threading.Barrier(2)
        reports: list[Any] = []

        def sweep_in(core: Any) -> None:
            start.wait()
            reports.append(run_sweep(core, now=moment))

        threads = [threading.Thread(target=sweep_in, args=(core,)) for core in (world.core, other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        other.engine.dispose()
        assert len(reports) == 2
        with new_session(world.engine) as session:
            to_labour = [m for m in session.exec(select(OutboxMessage).where(
                OutboxMessage.chat_id == str(LABOUR), OutboxMessage.status == "pending"))]
        assert len(to_labour) == 2  # one 0-day reminder for the two due today, one overdue notice
        assert sum(r.total for r in reports) == len(to_labour) + 2  # + escalation to the admin, digest


async def test_date_examples_are_in_the_future_not_a_date_long_past(world, cast: Cast) -> None:
    """Review B1: the example of a date to type is the default deadline, never 20/08/2024."""
    await onboard(cast.worker, "en")
    code = await submit_concern(cast.worker)
    await cast.officer.send(f"/assign {code}")
    await cast.officer.choose(LABOUR_AGENCY)
    prompt = text_of(await cast.officer.choose("Tiếp tục (đã chọn 1)"))
    (example,) = re.findall(r"\d{2}/\d{2}/\d{4}", prompt)
    assert datetime.strptime(example, "%d/%m/%Y").date() > date.today() and "20/08/2024" not in prompt
    refused = text_of(await cast.officer.send("01/01/2020"))
    assert example in refused and "20/08/2024" not in refused


async def test_stopping_the_scheduler_while_a_job_runs_logs_no_error(tmp_path: Any, caplog: Any) -> None:
    """A restart during a sweep leaves no traceback in the log: the job was cancelled, not broken."""
    import asyncio
    import threading

    from bot.scheduler import start_scheduler
    from storage.db import create_db_engine

    started, release = threading.Event(), threading.Event()

    class SlowSender:
        def kick(self) -> None:
            started.set()
            release.wait(5)

    engine = create_db_engine(f"sqlite:///{tmp_path / 'store.db'}")
    scheduler = start_scheduler(engine, SlowSender(), interval_seconds=0.05)  # type: ignore[arg-type]
    await asyncio.to_thread(started.wait, 5)
    scheduler.shutdown(wait=False)
    release.set()
    await asyncio.sleep(0.1)
    assert "Traceback" not in caplog.text and "Error running job" not in caplog.text
