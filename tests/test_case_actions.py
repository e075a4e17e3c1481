"""Officer actions beyond the main loop: merge, questions, reopen, withdraw, extensions, roles,
refused transitions, and the outbox under failure and restart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlmodel import select

from storage.concerns import create_concern
from storage.db import new_session
from storage.models import Assignment, CaseNote, Concern, OutboxMessage, StatusChange
from tests.cast import (
    LABOUR,
    OFFICER,
    WORKER,
    assign_to_labour,
    cases,
    concern,
    delivered,
    invite,
    staff_up,
    submit,
    texts,
)
from tests.chat import text_of
from tests.conftest import open_world
from tests.flows import onboard


async def test_merge_counts_me_too_and_tells_every_reporter(world: Any) -> None:
    cast = await staff_up(world)
    kept = await submit(cast.worker)
    second = world.person(20, "Hùng Vũ", language="en")
    dup = await submit(second)
    third = world.person(21, "Mai Đỗ", language="en")
    dup2 = await submit(third)
    await cast.officer.send(f"/merge {dup2} {dup}")  # a chain: dup2 -> dup -> kept
    await cast.officer.send(f"/merge {dup}")
    done = await cast.officer.send(kept)
    assert kept in done[-1].text and "3" in done[-1].text
    assert concern(world, kept).me_too == 3
    assert concern(world, dup).status == "duplicate"
    assert concern(world, dup2).merged_into_id == concern(world, kept).id
    fresh = await delivered(world)
    assert any(kept in t for t in texts(fresh[20])) and any(kept in t for t in texts(fresh[21]))
    # From now on the merged reporters hear about the kept concern.
    await cast.officer.send(f"/accept {kept}")
    fresh = await delivered(world)
    for chat in (WORKER, 20, 21):
        assert any(kept in t and "accepted" in t for t in texts(fresh[chat])), chat
    # And may see it in full, as followers.
    view = await second.send(f"/status {kept}")
    assert "Công ty chưa trả lương" in view[0].text


async def test_officer_question_and_worker_reply_stay_anonymous(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.officer.send(f"/ask {code}")
    await cast.officer.send("Bạn làm ở phân xưởng nào?")
    question = (await delivered(world))[WORKER][-1]
    assert "Bạn làm ở phân xưởng nào?" in question.text and "Minh" not in question.text
    assert question.options == ["Reply"]
    await cast.worker.choose_delivered("Reply")
    await cast.worker.send("Phân xưởng may số 3.")
    relayed = texts((await delivered(world))[OFFICER])[-1]
    assert "Phân xưởng may số 3." in relayed
    assert "Nguyễn" not in relayed and "telegram:" not in relayed and "terminal:" not in relayed
    with new_session(world.engine) as session:
        kinds = [n.kind for n in session.exec(select(CaseNote).order_by(CaseNote.id))]
    assert kinds == ["question", "reply"]


async def test_anonymous_concern_has_no_author_anywhere(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker, anonymous=True)
    case = await cast.officer.send(f"/case {code}")
    assert "Nguyễn" not in case[0].text
    with new_session(world.engine) as session:
        queued_before = len(session.exec(select(OutboxMessage)).all())
    asked = await cast.officer.send(f"/ask {code}")
    assert code in asked[0].text
    with new_session(world.engine) as session:
        assert len(session.exec(select(OutboxMessage)).all()) == queued_before
    worker = cast.worker.person_row()
    with new_session(world.engine) as session:
        row = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        assert row.author_id is None
        assert all(h.actor_id != worker.id for h in session.exec(select(StatusChange)))
    # The code holder can still withdraw it.
    await cast.worker.send(f"/withdraw {code}")
    await cast.worker.choose("Yes, withdraw")
    assert concern(world, code).status == "withdrawn"


async def test_reopen_after_answer_returns_to_queue(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Doanh nghiệp đã cam kết trả lương trước ngày 30.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    await cast.officer.send(f"/relay {code}")
    await cast.officer.send(f"/resolve {code}")
    await world.deliver_outbox()
    await cast.worker.choose_delivered("Not resolved")
    await cast.worker.send("Đến nay công ty vẫn chưa trả lương.")
    assert concern(world, code).status == "reopened"
    queue = await cast.officer.send("/queue")
    assert code in queue[0].text
    fresh = await delivered(world)
    assert any("vẫn chưa trả lương" in t for t in texts(fresh[OFFICER]))


async def test_worker_withdraws_and_others_cannot(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    stranger = world.person(30, "Tư Trần", language="en")
    await onboard(stranger, "en")
    refused = await stranger.send(f"/withdraw {code}")
    assert "No concern" in refused[0].text
    await cast.worker.send(f"/withdraw {code}")
    await cast.worker.choose("Yes, withdraw")
    assert concern(world, code).status == "withdrawn"
    again = await cast.worker.send(f"/withdraw {code}")
    assert "no longer open" in again[0].text


async def test_transitions_outside_the_lifecycle_are_refused(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    resolved = await cast.officer.send(f"/resolve {code}")
    assert "cannot become" in resolved[0].text or "không thể" in resolved[0].text.lower()
    await cast.officer.send(f"/reject {code}")
    await cast.officer.choose("Không thuộc lĩnh vực lao động")
    accept = await cast.officer.send(f"/accept {code}")
    assert concern(world, code).status == "rejected"
    assert accept[0].text != resolved[0].text
    with new_session(world.engine) as session:
        history = [h.to_status for h in session.exec(select(StatusChange).order_by(StatusChange.id))]
    assert history == ["new", "rejected"]
    fresh = await delivered(world)
    assert any("Not a labour matter" in t for t in texts(fresh[WORKER]))  # reason, in English


async def test_extension_request_approved_moves_the_deadline(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    with new_session(world.engine) as session:
        old = session.exec(select(Assignment)).one().deadline
    await cast.labour.send(f"/extend {code}")
    await cast.labour.send("31/12/2099")
    await cast.labour.send("Cần phối hợp thanh tra với Sở Tài chính.")
    request = (await delivered(world))[OFFICER][-1]
    assert "Sở Tài chính" in request.text
    assert request.options == ["Đồng ý", "Từ chối"]  # Approve, Refuse
    approved = await cast.officer.choose_delivered("Đồng ý")
    assert "31/12/2099" in text_of(approved)
    with new_session(world.engine) as session:
        assignment = session.exec(select(Assignment)).one()
    assert assignment.deadline.isoformat() == "2099-12-31" and assignment.deadline != old
    assert assignment.extension_status == "approved"
    fresh = await delivered(world)
    assert any("31/12/2099" in t for t in texts(fresh[LABOUR]))
    assert any("31 Dec 2099" in t for t in texts(fresh[WORKER]))


async def test_revoked_officer_loses_the_commands(world: Any) -> None:
    cast = await staff_up(world)
    officer_id = cast.officer.person_row().id
    staff = await cast.admin.send("/staff")
    assert "Minh" in staff[0].text
    asked = await cast.admin.send(f"/revoke {officer_id}")
    assert "Thu hồi vai trò của Minh Cán bộ (cán bộ công đoàn)?" in text_of(asked), text_of(asked)
    assert "/queue" not in text_of(await cast.officer.send("/queue"))  # nothing happened yet
    await cast.admin.choose("Thu hồi vai trò")
    denied = await cast.officer.send("/queue")
    assert "/queue" in denied[0].text and "0" not in denied[0].text


async def test_blocked_recipient_is_marked_undeliverable_with_reason(telegram_world: Any) -> None:
    world = telegram_world  # only Telegram answers 403 for a chat that blocked the bot
    cast = await staff_up(world)
    code = await submit(cast.worker)
    world.api.blocked.add(str(WORKER))
    await cast.officer.send(f"/accept {code}")
    await world.deliver_outbox()
    with new_session(world.engine) as session:
        message = session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == str(WORKER))).one()
    assert message.status == "failed" and "blocked" in (message.last_error or "")
    shown = (await cast.officer.send("/undelivered"))[0].text
    assert f"Telegram {WORKER}" in shown and "người nhận đã chặn hệ thống" in shown and code in shown


async def test_outbox_survives_a_restart(tmp_path: Path) -> None:
    # The Telegram application, restarted on the same database with a message still queued.
    async with open_world(tmp_path, "telegram") as before:
        cast = await staff_up(before)
        code = await submit(cast.worker)
        await cast.officer.send(f"/accept {code}")  # queued, not yet sent: the process "dies" here
    async with open_world(tmp_path, "telegram") as after:
        worker = after.person(WORKER, "Lan Nguyễn", language="en")
        sent = await after.deliver_outbox()
        assert sent >= 1
        assert any(code in s.text for s in worker.inbox)
        assert await after.deliver_outbox() == 0  # sent once


async def test_anonymous_submission_leaves_no_timestamp_on_the_authors_chat(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker, anonymous=True)
    state = cast.worker.dialog()  # the menu's choices are kept (typed numbers work), not the time
    assert state is not None and state.flow is None and state.updated_at.year == 2000
    assert code not in state.options
    # The menu shown with the code still answers to a typed number (as on a messenger without buttons).
    assert "No concern is linked to your account yet" in text_of(await cast.worker.send("2"))


async def test_queue_pages_and_filters_for_a_busy_officer(world: Any) -> None:
    cast = await staff_up(world)
    with new_session(world.engine) as session:
        made = [create_concern(
            author=None, visibility="anonymous", category_code="wages", enterprise=f"Công ty {n}",
            place_code=None, description=f"Kiến nghị số {n} về tiền lương.", attachments=[],
            messenger=world.kind, actor=None, actor_role="worker", session=session).tracking_code
            for n in range(19)]
        session.commit()
    for code in made[::3]:  # 7 of them accepted by the officer
        accepted = await cast.officer.send(f"/accept {code}")
        assert concern(world, code).status == "accepted", text_of(accepted)
    first = (await cast.officer.send("/queue"))[0]
    assert "12" in first.text and "7" in first.text
    assert len(cases(first)) == 8
    assert "Trang sau »" in first.options and "« Trang trước" not in first.options  # Next », « Previous
    assert "Chờ giao (7)" in first.options  # the "to assign" filter, with its count
    second = (await cast.officer.choose("Trang sau »"))[0]
    assert len(cases(second)) == 8 and not set(cases(second)) & set(cases(first))
    accepted = (await cast.officer.choose("Chờ giao (7)"))[0]
    assert len(cases(accepted)) == 7 and "Trang sau »" not in accepted.options
    last = (await cast.officer.send("/queue 3"))[0]
    assert len(cases(last)) == 3
    assert "« Trang trước" in last.options and "Trang sau »" not in last.options
    earlier = (await cast.officer.choose("« Trang trước"))[0]
    assert cases(earlier) == cases(second)


async def test_topic_change_is_noted_in_each_officers_language(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.officer.send(f"/topic {code}")
    await cast.officer.choose("Nhà ở, nhà trọ")
    english = world.person(40, "Sam Lee", language="en")
    await onboard(english, "en")
    await english.send(f"/start {await invite(cast.admin, 'officer')}")
    case = (await english.send(f"/case {code}"))[0].text
    assert "Topic: Housing and rented rooms" in case
    assert "topic changed to “Housing and rented rooms”" in case and "Nhà ở" not in case
