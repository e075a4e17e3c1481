"""The whole loop on every channel: worker submits, officer assigns to two agencies, both answer,
the worker receives both answers in their language and rates them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import select

from storage.db import new_session
from storage.models import Assignment, Concern, Invitation, OutboxMessage, Person, Rating, StatusChange
from tests.cast import (
    INSURANCE,
    INSURANCE_AGENCY,
    LABOUR,
    LABOUR_AGENCY,
    OFFICER,
    OTHER,
    PAYSLIP,
    WORKER,
    assign_to_labour,
    delivered,
    invite,
    staff_up,
    submit,
    texts,
)
from tests.chat import options_of, text_of
from tests.flows import onboard


async def test_worker_to_two_agencies_and_back(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)

    # The officer sees the concern in the queue, with the worker's name (union visibility).
    queue = await cast.officer.send("/queue")
    assert code in queue[0].text and code in queue[0].options
    case = await cast.officer.choose(code)
    assert "Lan Nguyễn" in case[0].text
    assert any(s.file == ("photo", world.file_ref(PAYSLIP)) for s in case)

    await cast.officer.choose("Giao xử lý")
    await cast.officer.choose(LABOUR_AGENCY)
    await cast.officer.choose(INSURANCE_AGENCY)
    await cast.officer.choose("Tiếp tục (đã chọn 2)")
    done = await cast.officer.send("20/08/2099")
    assert "20/08/2099" in done[-1].text

    fresh = await delivered(world)
    notice = texts(fresh[LABOUR])[0]
    assert code in notice and "Quý cơ quan" in notice and "20/08/2099" in notice
    assert texts(fresh[INSURANCE])
    worker_news = "\n".join(texts(fresh[WORKER]))
    assert "20 Aug 2099" in worker_news  # the worker chose English

    mine = await cast.labour.send("/mine")
    assert code in mine[0].text
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp; lương sẽ được trả trước 30/6.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    await cast.insurance.send(f"/answer {code}")
    await cast.insurance.send("BHXH tỉnh đã kiểm tra, doanh nghiệp đóng đủ bảo hiểm.")
    # Zalo withholds documents from bots: there the written answer comes as a photo.
    answer_file = "document" if "documents" in world.offers else "photo"
    await cast.insurance.send_file(answer_file, "bhxh-reply-pdf", size=100000)
    await cast.insurance.choose("Gửi văn bản trả lời")

    fresh = await delivered(world)
    assert any("All agencies have answered" in t or code in t for t in texts(fresh[OFFICER]))
    assert not fresh[WORKER], "answers reach the worker only once the union relays them"

    relayed = await cast.officer.send(f"/relay {code}")
    assert code in relayed[0].text
    received = (await delivered(world))[WORKER]
    seen = text_of(received)
    assert "lương sẽ được trả trước 30/6" in seen and "đóng đủ bảo hiểm" in seen
    assert "has answered your concern" in seen  # in the worker's language
    assert any(s.file == (answer_file, world.file_ref("bhxh-reply-pdf")) for s in received)

    # The worker is asked to rate once, when the union marks it resolved; meanwhile the code's view
    # offers the rating, since there is an answer to rate.
    assert not any("Rate the answer" in s.options for s in received)
    view = await cast.worker.send(code)
    assert "Rate the answer" in options_of(view) and "Not resolved" in options_of(view)
    await cast.worker.choose("Rate the answer")
    thanks = await cast.worker.choose("5")
    assert "Thank you" in thanks[0].text
    with new_session(world.engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        assert concern.status == "answered"
        assert [r.score for r in session.exec(select(Rating))] == [5]
        answers = session.exec(select(Assignment)).all()
        assert {a.status for a in answers} == {"answered"} and len(answers) == 2
        history = [(h.from_status, h.to_status) for h in session.exec(
            select(StatusChange).where(StatusChange.concern_id == concern.id).order_by(StatusChange.id))]
        assert history == [(None, "new"), ("new", "accepted"), ("accepted", "assigned"), ("assigned", "answered")]


async def test_agency_never_sees_worker_identity(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    await world.deliver_outbox()
    await cast.labour.send(f"/case {code}")
    await cast.labour.send("/mine")
    seen = text_of(cast.labour.inbox)  # everything the liaison ever received
    assert code in seen
    for secret in ("Lan Nguyễn", "Nguyễn", f"telegram:{WORKER}", f"terminal:{WORKER}", f"{WORKER}:"):
        assert secret not in seen
    assert not any(s.file for s in cast.labour.inbox), "attachments may identify"
    # Another agency cannot tell an assigned concern from one that does not exist.
    other = (await cast.insurance.send(f"/case {code}"))[0].text
    missing = (await cast.insurance.send("/case KN-0000-0000"))[0].text
    assert other.replace(code, "KN-0000-0000") == missing
    with new_session(world.engine) as session:
        queued = session.exec(select(OutboxMessage).where(OutboxMessage.chat_id == str(LABOUR))).all()
        assert queued and all("Lan" not in m.text for m in queued)


async def test_staff_commands_refused_like_unknown_ones(world: Any) -> None:
    cast = await staff_up(world)
    stranger = world.person(OTHER, "Tư Trần", language="en")
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


async def test_invitation_is_single_use_and_expires(world: Any) -> None:
    cast = await staff_up(world)
    token = await invite(cast.admin, "officer")
    first = world.person(10, "An Lê", language="en")
    second = world.person(11, "Bình Phạm", language="en")
    await onboard(first, "en")
    await onboard(second, "en")
    assert "Welcome" in (await first.send(f"/start {token}"))[0].text
    reused = (await second.send(f"/start {token}"))[0].text
    assert "not valid" in reused
    expired = await invite(cast.admin, "officer")
    with new_session(world.engine) as session:
        invitation = session.get(Invitation, expired[4:])
        assert invitation is not None
        invitation.expires_at = invitation.expires_at - timedelta(days=8)
        session.add(invitation)
        session.commit()
    assert "not valid" in (await second.send(f"/start {expired}"))[0].text
    with new_session(world.engine) as session:
        roles = {p.external_id: p.role for p in session.exec(select(Person))}
    assert roles["10"] == "officer" and roles["11"] == "worker"
