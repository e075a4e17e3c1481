"""The whole loop on Telegram: worker submits, officer assigns to two agencies, both answer,
the worker receives both answers in their language and rates them."""

from __future__ import annotations

from sqlmodel import select

from storage.db import new_session
from storage.models import Assignment, Concern, Invitation, OutboxMessage, Person, Rating, StatusChange
from tests.cast import (
    INSURANCE,
    LABOUR,
    OFFICER,
    OTHER,
    WORKER,
    invite,
    onboard,
    staff_up,
    submit,
)
from tests.conftest import TelegramHarness


async def test_worker_to_two_agencies_and_back(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)

    # The officer sees the concern in the queue, with the worker's name (union visibility).
    queue = await cast.officer.send("/queue")
    assert code in queue[0].text
    case = await cast.officer.press(f"/case {code}")
    assert "Lan Nguyễn" in case[0].text
    assert any(c.method == "sendPhoto" and c.params["photo"] == "payslip-photo" for c in case)

    await cast.officer.press(f"/assign {code}")
    await cast.officer.press("ag:sldtbxh")
    await cast.officer.press("ag:bhxh")
    await cast.officer.press("ag:done")
    done = await cast.officer.send("20/08/2099")
    assert "20/08/2099" in done[-1].text

    loop.api.clear()
    await loop.drain_outbox()
    notice = loop.api.texts(LABOUR)[0]
    assert code in notice and "Quý cơ quan" in notice and "20/08/2099" in notice
    assert loop.api.texts(INSURANCE)
    worker_news = "\n".join(loop.api.texts(WORKER))
    assert "20 Aug 2099" in worker_news  # the worker chose English

    mine = await cast.labour.send("/mine")
    assert code in mine[0].text
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp; lương sẽ được trả trước 30/6.")
    await cast.labour.press("doc:none")
    await cast.insurance.send(f"/answer {code}")
    await cast.insurance.send("BHXH tỉnh đã kiểm tra, doanh nghiệp đóng đủ bảo hiểm.")
    await cast.insurance.send_document("bhxh-reply-pdf")

    loop.api.clear()
    await loop.drain_outbox()
    assert any("All agencies have answered" in t or code in t for t in loop.api.texts(OFFICER))
    assert not loop.api.texts(WORKER), "answers reach the worker only once the union relays them"

    relayed = await cast.officer.send(f"/relay {code}")
    assert code in relayed[0].text
    loop.api.clear()
    await loop.drain_outbox()
    received = loop.api.sent(WORKER)
    texts = "\n".join(c.text for c in received)
    assert "lương sẽ được trả trước 30/6" in texts and "đóng đủ bảo hiểm" in texts
    assert "Answer to your concern" in texts  # in the worker's language
    assert any(c.method == "sendDocument" and c.params["document"] == "bhxh-reply-pdf" for c in received)

    await cast.worker.press(f"/rate {code}")
    thanks = await cast.worker.press("rate:5")
    assert "Thank you" in thanks[0].text
    with new_session(loop.core.engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        assert concern.status == "answered"
        assert [r.score for r in session.exec(select(Rating))] == [5]
        answers = session.exec(select(Assignment)).all()
        assert {a.status for a in answers} == {"answered"} and len(answers) == 2
        history = [(h.from_status, h.to_status) for h in session.exec(
            select(StatusChange).where(StatusChange.concern_id == concern.id).order_by(StatusChange.id))]
        assert history == [(None, "new"), ("new", "accepted"), ("accepted", "assigned"), ("assigned", "answered")]


async def test_agency_never_sees_worker_identity(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    code = await submit(cast.worker)
    await cast.officer.send(f"/assign {code}")
    await cast.officer.press("ag:sldtbxh")
    await cast.officer.press("ag:done")
    await cast.officer.press("dl:default")
    await loop.drain_outbox()
    await cast.labour.send(f"/case {code}")
    await cast.labour.send("/mine")
    seen = "\n".join(c.text for c in loop.api.sent(LABOUR))
    assert code in seen
    for secret in ("Lan Nguyễn", "Nguyễn", f"telegram:{WORKER}", f"{WORKER}:"):
        assert secret not in seen
    assert not any(c.method == "sendPhoto" for c in loop.api.sent(LABOUR)), "attachments may identify"
    # Another agency cannot tell an assigned concern from one that does not exist.
    other = (await cast.insurance.send(f"/case {code}"))[0].text
    missing = (await cast.insurance.send("/case KN-0000-0000"))[0].text
    assert other.replace(code, "KN-0000-0000") == missing
    with new_session(loop.core.engine) as session:
        queued = session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == str(LABOUR))).all()
        assert all("Lan" not in m.text for m in queued)


async def test_staff_commands_refused_like_unknown_ones(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    stranger = loop.person(OTHER, "Tư", "Trần", language_code="en")
    await onboard(stranger, "en")
    unknown = (await stranger.send("/frobnicate"))[0].text
    for attempt in ("/queue", "/case KN-0000-0000", "/assign KN-0000-0000", "/invite officer",
                    "/staff", "/revoke 2", "/mine", "/answer KN-0000-0000", "/grant 1", "/relay KN-0000-0000"):
        reply = (await stranger.send(attempt))[0].text
        name = attempt.split()[0][1:]
        assert reply == unknown.replace("frobnicate", name), attempt
    # An agency liaison may not act as an officer either.
    denied = (await cast.labour.send("/queue"))[0].text
    assert "/queue" in denied and "Queue" not in denied


async def test_invitation_is_single_use_and_expires(loop: TelegramHarness) -> None:
    cast = await staff_up(loop)
    token = await invite(cast.admin, "officer")
    first = loop.person(10, "An", "Lê", language_code="en")
    second = loop.person(11, "Bình", "Phạm", language_code="en")
    await onboard(first, "en")
    await onboard(second, "en")
    assert "Welcome" in (await first.send(f"/start {token}"))[0].text
    reused = (await second.send(f"/start {token}"))[0].text
    assert "not valid" in reused
    expired = await invite(cast.admin, "officer")
    with new_session(loop.core.engine) as session:
        invitation = session.get(Invitation, expired[4:])
        from datetime import timedelta

        invitation.expires_at = invitation.expires_at - timedelta(days=8)
        session.add(invitation)
        session.commit()
    assert "not valid" in (await second.send(f"/start {expired}"))[0].text
    with new_session(loop.core.engine) as session:
        roles = {p.external_id: p.role for p in session.exec(select(Person))}
    assert roles["10"] == "officer" and roles["11"] == "worker"
