"""Officer actions beyond the main loop: merge, questions, reopen, withdraw, extensions, roles,
refused transitions, and the outbox under failure and restart."""

from __future__ import annotations

from sqlmodel import select

from bot.app import build_core, build_telegram_application
from storage.db import new_session
from storage.models import Assignment, CaseNote, Concern, OutboxMessage, Person, StatusChange
from tests.cast import LABOUR, OFFICER, WORKER, onboard, staff_up, submit
from tests.conftest import TelegramHarness
from tests.fake_telegram import FakeBotAPI


def concern(loop: TelegramHarness, code: str) -> Concern:
    with new_session(loop.core.engine) as session:
        return session.exec(select(Concern).where(Concern.tracking_code == code)).one()


async def assign_to_labour(loop: TelegramHarness, officer, code: str) -> None:  # type: ignore[no-untyped-def]
    await officer.send(f"/assign {code}")
    await officer.press("ag:sldtbxh")
    await officer.press("ag:done")
    await officer.press("dl:default")


async def test_merge_counts_me_too_and_tells_every_reporter(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    kept = await submit(cast.worker)
    second = loop.person(20, "Hùng", "Vũ", language_code="en")
    dup = await submit(second)
    third = loop.person(21, "Mai", "Đỗ", language_code="en")
    dup2 = await submit(third)
    await cast.officer.send(f"/merge {dup2} {dup}")  # a chain: dup2 -> dup -> kept
    await cast.officer.send(f"/merge {dup}")
    done = await cast.officer.send(kept)
    assert kept in done[-1].text and "3" in done[-1].text
    assert concern(loop, kept).me_too == 3
    assert concern(loop, dup).status == "duplicate" and concern(loop, dup2).merged_into_id == concern(loop, kept).id
    loop.api.clear()
    await loop.drain_outbox()
    assert any(kept in t for t in loop.api.texts(20)) and any(kept in t for t in loop.api.texts(21))
    # From now on the merged reporters hear about the kept concern.
    await cast.officer.send(f"/accept {kept}")
    loop.api.clear()
    await loop.drain_outbox()
    for chat in (WORKER, 20, 21):
        assert any(kept in t and "accepted" in t for t in loop.api.texts(chat)), chat
    # And may see it in full, as followers.
    view = await second.send(f"/status {kept}")
    assert "Công ty chưa trả lương" in view[0].text


async def test_officer_question_and_worker_reply_stay_anonymous(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await cast.officer.send(f"/ask {code}")
    await cast.officer.send("Bạn làm ở phân xưởng nào?")
    loop.api.clear()
    await loop.drain_outbox()
    question = loop.api.sent(WORKER)[-1]
    assert "Bạn làm ở phân xưởng nào?" in question.text and "Minh" not in question.text
    await cast.worker.press(f"/reply {code}")
    await cast.worker.send("Phân xưởng may số 3.")
    loop.api.clear()
    await loop.drain_outbox()
    relayed = loop.api.texts(OFFICER)[-1]
    assert "Phân xưởng may số 3." in relayed
    assert "Nguyễn" not in relayed and "telegram:" not in relayed
    with new_session(loop.core.engine) as session:
        kinds = [n.kind for n in session.exec(select(CaseNote).order_by(CaseNote.id))]
    assert kinds == ["question", "reply"]


async def test_anonymous_concern_has_no_author_anywhere(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker, visibility="vis:anonymous")
    case = await cast.officer.send(f"/case {code}")
    assert "Nguyễn" not in case[0].text
    with new_session(loop.core.engine) as session:
        queued_before = len(session.exec(select(OutboxMessage)).all())
    asked = await cast.officer.send(f"/ask {code}")
    assert code in asked[0].text
    with new_session(loop.core.engine) as session:
        assert len(session.exec(select(OutboxMessage)).all()) == queued_before
    with new_session(loop.core.engine) as session:
        worker = session.exec(select(Person).where(Person.external_id == str(WORKER))).one()
        row = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        assert row.author_id is None
        assert all(h.actor_id != worker.id for h in session.exec(select(StatusChange)))
    # The code holder can still withdraw it.
    await cast.worker.send(f"/withdraw {code}")
    await cast.worker.press("withdraw:yes")
    assert concern(loop, code).status == "withdrawn"


async def test_reopen_after_answer_returns_to_queue(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await assign_to_labour(loop, cast.officer, code)
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Doanh nghiệp đã cam kết trả lương trước ngày 30.")
    await cast.labour.press("doc:none")
    await cast.officer.send(f"/relay {code}")
    await cast.officer.send(f"/resolve {code}")
    await loop.drain_outbox()
    await cast.worker.press(f"/reopen {code}")
    await cast.worker.send("Đến nay công ty vẫn chưa trả lương.")
    assert concern(loop, code).status == "reopened"
    queue = await cast.officer.send("/queue")
    assert code in queue[0].text
    loop.api.clear()
    await loop.drain_outbox()
    assert any("vẫn chưa trả lương" in t for t in loop.api.texts(OFFICER))


async def test_worker_withdraws_and_others_cannot(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    stranger = loop.person(30, "Tư", "Trần", language_code="en")
    await onboard(stranger, "en")
    refused = await stranger.send(f"/withdraw {code}")
    assert "No concern" in refused[0].text
    await cast.worker.send(f"/withdraw {code}")
    await cast.worker.press("withdraw:yes")
    assert concern(loop, code).status == "withdrawn"
    again = await cast.worker.send(f"/withdraw {code}")
    assert "no longer open" in again[0].text


async def test_transitions_outside_the_lifecycle_are_refused(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    resolved = await cast.officer.send(f"/resolve {code}")
    assert "cannot become" in resolved[0].text or "không thể" in resolved[0].text.lower()
    await cast.officer.send(f"/reject {code}")
    await cast.officer.press("why:0")
    accept = await cast.officer.send(f"/accept {code}")
    assert concern(loop, code).status == "rejected"
    assert accept[0].text != resolved[0].text
    with new_session(loop.core.engine) as session:
        history = [h.to_status for h in session.exec(select(StatusChange).order_by(StatusChange.id))]
    assert history == ["new", "rejected"]
    loop.api.clear()
    await loop.drain_outbox()
    assert any("Not a labour matter" in t for t in loop.api.texts(WORKER))  # reason, in English


async def test_extension_request_approved_moves_the_deadline(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await assign_to_labour(loop, cast.officer, code)
    with new_session(loop.core.engine) as session:
        old = session.exec(select(Assignment)).one().deadline
    await cast.labour.send(f"/extend {code}")
    await cast.labour.send("31/12/2099")
    await cast.labour.send("Cần phối hợp thanh tra với Sở Tài chính.")
    loop.api.clear()
    await loop.drain_outbox()
    request = loop.api.sent(OFFICER)[-1]
    assert "Sở Tài chính" in request.text
    approve = next(data for _, data in request.buttons if data.startswith("/grant"))
    await cast.officer.press_data(approve)
    with new_session(loop.core.engine) as session:
        assignment = session.exec(select(Assignment)).one()
    assert assignment.deadline.isoformat() == "2099-12-31" and assignment.deadline != old
    loop.api.clear()
    await loop.drain_outbox()
    assert any("31/12/2099" in t for t in loop.api.texts(LABOUR))
    assert any("31 Dec 2099" in t for t in loop.api.texts(WORKER))


async def test_revoked_officer_loses_the_commands(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    with new_session(loop.core.engine) as session:
        officer_id = session.exec(select(Person).where(Person.external_id == str(OFFICER))).one().id
    staff = await cast.admin.send("/staff")
    assert "Minh" in staff[0].text
    await cast.admin.send(f"/revoke {officer_id}")
    denied = await cast.officer.send("/queue")
    assert "/queue" in denied[0].text and "0" not in denied[0].text


async def test_blocked_recipient_is_marked_undeliverable_with_reason(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    loop.api.blocked.add(str(WORKER))
    await cast.officer.send(f"/accept {code}")
    await loop.drain_outbox()
    with new_session(loop.core.engine) as session:
        message = session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == str(WORKER))).one()
    assert message.status == "failed" and "blocked" in (message.last_error or "")
    shown = (await cast.officer.send("/undelivered"))[0].text
    assert f"telegram:{WORKER}" in shown and "blocked" in shown and code in shown


async def test_outbox_survives_a_restart(loop: TelegramHarness, settings) -> None:  # type: ignore[no-untyped-def]
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await cast.officer.send(f"/accept {code}")  # queued, not yet sent: the process "dies" here
    database_url = str(loop.core.engine.url)
    restarted_core = build_core(settings.model_copy(update={"database_url": database_url}))
    api = FakeBotAPI()
    app = build_telegram_application(restarted_core.settings, restarted_core, request=api, rate_limit=False)
    await app.initialize()
    try:
        sent = await app.bot_data["sender"].drain()
        assert sent >= 1
        assert any(code in c.text for c in api.sent(WORKER))
        assert await app.bot_data["sender"].drain() == 0  # sent once
    finally:
        await app.shutdown()


async def test_anonymous_submission_leaves_no_timestamp_on_the_authors_chat(loop: TelegramHarness) -> None:
    from storage.models import DialogState

    cast = await staff_up(loop)
    await submit(cast.worker, visibility="vis:anonymous")
    with new_session(loop.core.engine) as session:
        assert session.get(DialogState, ("telegram", str(WORKER))) is None


async def test_queue_pages_and_filters_for_a_busy_officer(loop: TelegramHarness) -> None:
    from storage.concerns import create_concern, record_change

    cast = await staff_up(loop)
    with new_session(loop.core.engine) as session:
        officer = session.exec(select(Person).where(Person.external_id == str(OFFICER))).one()
        for n in range(19):
            made = create_concern(
                author=None, visibility="anonymous", category_code="wages", enterprise=f"Công ty {n}",
                place_code=None, description=f"Kiến nghị số {n} về tiền lương.", attachments=[],
                messenger="telegram", actor=None, actor_role="worker", session=session)
            if n % 3 == 0:
                record_change(made, "accepted", actor=officer, actor_role="officer", session=session)
        session.commit()
    first = (await cast.officer.send("/queue"))[0]
    labels = [label for label, _ in first.buttons]
    assert "12" in first.text and "7" in first.text
    assert sum(1 for _, data in first.buttons if data.startswith("/case ")) == 8
    assert ("/queue 2" in [data for _, data in first.buttons]) and any("(7)" in label for label in labels)
    accepted = (await cast.officer.press_data("/queue accepted"))[0]
    cases = [data for _, data in accepted.buttons if data.startswith("/case ")]
    assert len(cases) == 7 and not any(data == "/queue accepted 2" for _, data in accepted.buttons)
    last = (await cast.officer.send("/queue 3"))[0]
    assert sum(1 for _, data in last.buttons if data.startswith("/case ")) == 3
    assert "/queue 2" in [data for _, data in last.buttons]


async def test_topic_change_is_noted_in_each_officers_language(loop: TelegramHarness) -> None:
    from tests.cast import invite

    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await cast.officer.send(f"/topic {code}")
    await cast.officer.press("cat:housing")
    english = loop.person(40, "Sam", "Lee", language_code="en")
    await onboard(english, "en")
    await english.send(f"/start {await invite(cast.admin, 'officer')}")
    case = (await english.send(f"/case {code}"))[0].text
    assert "Topic: Housing and rented rooms" in case
    assert "Topic changed to" in case and "Nhà ở" not in case
