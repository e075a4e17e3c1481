"""Every screen tells the truth, in the words and register of the person who reads it (review 2026-11)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.channels.telegram import keyboard_data
from bot.scheduler import anonymise_old_concerns, months_before
from handlers.core import Choice, Option
from handlers.rules.deadlines import time_left
from storage.db import new_session
from storage.models import Assignment, Attachment, Concern, Rating
from tests.cast import (
    LABOUR_AGENCY,
    WORKER,
    assign_to_labour,
    concern,
    delivered,
    staff_up,
    submit,
    texts,
)
from tests.chat import options_of, text_of
from tests.flows import onboard, submit_concern

WORD = re.compile(r"\bbạn\b", re.IGNORECASE)


async def test_vietnamese_words_stand_for_the_commands(world: Any) -> None:
    lan = world.person(801, language="vi")
    await onboard(lan, "vi")
    assert "Cách gửi kiến nghị:" in text_of(await lan.send("trợ giúp"))
    assert "Cách gửi kiến nghị:" in text_of(await lan.send("Tro giup"))  # no accents, other case
    await lan.send("/new")
    await lan.choose("Tiền lương, thưởng")
    await lan.choose("Không nêu tên công ty")
    await lan.choose("Bỏ qua")
    await lan.send("Công ty chưa trả lương làm thêm giờ tháng 6.")
    await lan.choose("Bỏ qua")
    await lan.choose("Công đoàn được biết (nên chọn)")
    code = re.findall(r"KN-\w{4}-\w{4}", text_of(await lan.choose("Gửi")))[0]
    assert code in text_of(await lan.send("tra cứu"))
    await lan.send("/new")
    assert "Đã hủy. Kiến nghị chưa được gửi." in text_of(await lan.send("huỷ"))  # the other tone-mark style
    assert "Thao tác này xóa tên" in text_of(await lan.send("xóa dữ liệu"))
    assert "Dữ liệu của bạn vẫn được giữ nguyên." in text_of(await lan.send("huy"))
    # Typed inside a step whose answer is free text, a longer text stays the answer.
    await lan.send("/new")
    await lan.choose("Tiền lương, thưởng")
    replies = await lan.send("Công ty hủy hợp đồng")
    assert "Bước 3/6" in text_of(replies)


async def test_staff_read_their_own_welcome_guide_and_hints(world: Any) -> None:
    cast = await staff_up(world)
    # The configured admin was staff from the first message: no worker notice, no worker buttons.
    seen = cast.admin.inbox
    assert not any("13/2023" in screen.text or "Kiến nghị mới" in screen.options for screen in seen)
    welcome = text_of(await cast.officer.send("/start"))
    assert "Vai trò của bạn: cán bộ công đoàn" in welcome and "kênh Kiến nghị" not in welcome
    hint = await cast.officer.send("xin chào")
    assert "Chọn “Kiến nghị chờ xử lý”" in text_of(hint) and "Kiến nghị chờ xử lý" in options_of(hint)
    guide = text_of(await cast.officer.send("/help"))
    assert "/queue" in guide and "/new –" not in guide and "/forget" not in guide
    # An officer who sends a code opens the case itself, with its actions.
    code = await submit(cast.worker)
    case = await cast.officer.send(code)
    assert f"Kiến nghị {code} ·" in text_of(case) and "Tiếp nhận" in options_of(case)


async def test_agency_liaisons_are_addressed_formally_in_every_message(world: Any) -> None:
    cast = await staff_up(world)
    labour = cast.labour
    start = len(labour.inbox)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    await delivered(world)
    guide = text_of(await labour.send("/help"))
    assert "Hướng dẫn sử dụng dành cho Quý cơ quan" in guide and "đã ký, đóng dấu" in guide
    assert "Đề nghị Quý cơ quan chọn “Kiến nghị được giao”" in text_of(await labour.send("xin chào"))
    assert "trong danh sách giao cho Quý cơ quan" in text_of(await labour.send("/case KN-AAAA-AAAA"))
    await labour.send(f"/answer {code}")
    assert "Văn bản trả lời của Quý cơ quan chưa được gửi" in text_of(await labour.send("/cancel"))
    await labour.send(f"/extend {code}")
    assert "Đề nghị gia hạn chưa được gửi" in text_of(await labour.send("hủy"))
    notice = next(t for t in texts(labour.inbox[start:]) if code in t and t.startswith("Kính gửi:"))
    assert notice.startswith(f"Kính gửi: {LABOUR_AGENCY}\nLiên đoàn Lao động thành phố Bắc Ninh trân trọng chuyển")
    informal = [s.text for s in labour.inbox[start:] if WORD.search(s.text)]
    assert not informal, informal


async def test_rating_is_offered_only_when_there_is_an_answer_to_rate(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.officer.send(f"/accept {code}")
    await assign_to_labour(cast.officer, code)
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp về tiền lương.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    await delivered(world)
    # Answered, not yet passed on: the union cannot call it resolved, the worker has nothing to rate.
    case = await cast.officer.send(f"/case {code}")
    assert "Chuyển trả lời" in options_of(case) and "Xác nhận đã giải quyết" not in options_of(case)
    view = await cast.worker.send(code)
    assert "has answered; the union is reviewing the answer" in text_of(view)
    assert "Rate the answer" not in options_of(view) and "Not resolved" in options_of(view)
    assert "no answer to rate yet" in text_of(await cast.worker.send(f"/rate {code}"))
    # Resolving passes the answer on first; the worker is asked to rate once.
    told = await cast.officer.send(f"/resolve {code}")
    assert "mời đánh giá" in text_of(told)
    news = (await delivered(world))[WORKER]
    assert "Sở đã làm việc với doanh nghiệp" in text_of(news)
    assert [s.options for s in news if s.options] == [["Rate the answer", "Not resolved"]]
    await cast.worker.choose_delivered("Rate the answer")
    await cast.worker.choose("4")
    view = await cast.worker.send(code)
    assert "Rate the answer" not in options_of(view), "rated already: no button that would be refused"


async def test_anonymous_concerns_are_not_said_to_be_relayed_to_the_worker(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker, anonymous=True)
    await assign_to_labour(cast.officer, code)
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp về tiền lương.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    relayed = text_of(await cast.officer.send(f"/relay {code}"))
    assert "ẩn danh" in relayed and "cho người lao động" not in relayed
    resolved = text_of(await cast.officer.send(f"/resolve {code}"))
    assert "ẩn danh" in resolved and "mời đánh giá" not in resolved
    # The holder of the code sees the answer and may rate it, once.
    view = await cast.worker.send(code)
    assert "Sở đã làm việc" in text_of(view) and "Rate the answer" in options_of(view)


async def test_each_staff_action_offers_the_next_step(world: Any) -> None:
    cast = await staff_up(world)
    first = await submit(cast.worker)
    second = await submit_concern(cast.worker)
    assigned = await assign_to_labour(cast.officer, first)
    assert options_of(assigned) == [f"Mở {first}", "Về danh sách chờ xử lý"]
    await assign_to_labour(cast.officer, second)
    await cast.labour.send(f"/answer {first}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp về tiền lương.")
    preview = await cast.labour.choose("Không có văn bản")
    assert "Đề nghị Quý cơ quan kiểm tra" in text_of(preview)
    thanks = await cast.labour.choose("Gửi văn bản trả lời")
    assert "Xin cảm ơn Quý cơ quan" in text_of(thanks)
    assert options_of(thanks) == [f"Tiếp theo: {second}", "Kiến nghị được giao"]
    relayed = await cast.officer.send(f"/relay {first}")
    assert options_of(relayed) == ["Xác nhận đã giải quyết", "Tiếp tục theo dõi"]
    resolved = await cast.officer.choose("Xác nhận đã giải quyết")
    assert "Về danh sách chờ xử lý" in options_of(resolved)


async def test_an_agency_answer_is_sent_only_once_the_liaison_has_checked_it(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    await cast.labour.send(f"/answer {code}")
    await cast.labour.send("Sở đã làm viêc với doanh nghiệp.")  # a typo
    preview = await cast.labour.choose("Không có văn bản")
    assert "Sở đã làm viêc với doanh nghiệp." in text_of(preview) and "Văn bản đính kèm: không." in text_of(preview)
    assert options_of(preview) == ["Gửi văn bản trả lời", "Sửa lại", "Hủy"]
    with new_session(world.engine) as session:
        assert all(a.answer_text is None for a in session.exec(select(Assignment)))
    await cast.labour.choose("Sửa lại")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    with new_session(world.engine) as session:
        assert [a.answer_text for a in session.exec(select(Assignment))] == ["Sở đã làm việc với doanh nghiệp."]


async def test_reasons_notes_and_names_render_in_the_readers_language(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    await cast.officer.send(f"/extend {code} 20/12/2099 chờ kết quả thanh tra")
    case = text_of(await cast.officer.send(f"/case {code}"))
    assert f"hạn trả lời của {LABOUR_AGENCY} được điều chỉnh:" in case and "→ 20/12/2099" in case
    assert "snv" not in case and "Lý do: chờ kết quả thanh tra" in case
    other = await submit_concern(cast.worker)
    await cast.officer.send(f"/reject {other}")
    await cast.officer.choose("Không thuộc lĩnh vực lao động")
    news = text_of((await delivered(world))[WORKER])
    assert "Reason: Not a labour matter" in news and "grassroots union" in news  # and where to go next
    assert "Reason: Not a labour matter" in text_of(await cast.worker.send(other))
    assert concern(world, other).reject_reason == "Not a labour matter"  # the key, not a translation


@pytest.mark.needs("language_code")
async def test_messages_to_someone_who_never_chose_a_language_follow_their_messenger(world: Any) -> None:
    cast = await staff_up(world)
    john = world.person(830, "John", language="en-GB")
    await john.send("/new")
    await john.choose("I agree")  # the notice came in English; no language was chosen
    code = await submit_concern(john)
    assert john.person_row().locale is None
    await cast.officer.send(f"/accept {code}")
    news = texts((await delivered(world))[830])
    assert any("has been accepted by the union" in t for t in news), news


def test_english_counts_days_in_the_right_number(core: Any) -> None:
    en, vi = core.catalogs.get("en"), core.catalogs.get("vi")
    today = date(2026, 12, 1)
    assert time_left(en, today + timedelta(days=1), today) == "1 day left"
    assert time_left(en, today + timedelta(days=3), today) == "3 days left"
    assert time_left(en, today - timedelta(days=1), today) == "1 day overdue"
    assert time_left(vi, today + timedelta(days=1), today) == "còn 1 ngày"


def test_long_labels_take_a_row_of_their_own() -> None:
    options = [Option(Choice("p", code), label) for code, label in (
        ("a", "KCN Đình Trám"), ("b", "KCN Song Khê – Nội Hoàng"), ("c", "KCN Vân Trung"), ("d", "Bỏ qua"),
        ("e", "Xác nhận đã giải quyết"))]
    rows = keyboard_data(options, columns=2)["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [
        ["KCN Đình Trám"], ["KCN Song Khê – Nội Hoàng"], ["KCN Vân Trung", "Bỏ qua"], ["Xác nhận đã giải quyết"]]


async def test_names_leave_concerns_finished_past_the_retention_period(world: Any) -> None:
    lan = world.person(840, language="en")
    await onboard(lan, "en")
    old = await submit_concern(lan, photos=["payslip"])
    recent = await submit_concern(lan)
    still_open = await submit_concern(lan)
    await lan.send(f"/withdraw {old}")
    await lan.choose("Yes, withdraw")
    await lan.send(f"/withdraw {recent}")
    await lan.choose("Yes, withdraw")
    now = datetime(2030, 1, 15, tzinfo=UTC)
    with new_session(world.engine) as session:
        for code, age in ((old, 25), (recent, 23), (still_open, 30)):
            row = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
            row.updated_at = months_before(now, age)
            session.add(row)
        session.commit()
    assert anonymise_old_concerns(world.engine, retention_months=24, now=now) == 1
    assert concern(world, old).author_id is None and concern(world, old).visibility == "anonymous"
    assert concern(world, recent).author_id is not None and concern(world, still_open).author_id is not None
    with new_session(world.engine) as session:
        assert not session.exec(select(Attachment).where(Attachment.concern_id == concern(world, old).id)).all()
        assert session.exec(select(Rating)).all() == []
    # The worker's own list no longer holds it; its content stays for the statistics.
    assert old not in text_of(await lan.send("/status"))
    assert concern(world, old).description
    assert months_before(datetime(2026, 3, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)


async def test_a_concern_of_a_2024_session_is_entered_with_the_places_of_2024(world: Any) -> None:
    cast = await staff_up(world)
    await cast.officer.send("/session new")
    await cast.officer.send("Đối thoại công nhân năm 2024")
    await cast.officer.send("25/05/2024")
    await cast.officer.send("20/08/2099")
    await cast.officer.send("/enter")
    await cast.officer.choose("Đối thoại công nhân năm 2024")
    await cast.officer.choose("Tiền lương, thưởng")
    places = options_of(await cast.officer.choose("Không nêu tên công ty"))
    assert "Huyện Hiệp Hòa" in places and "Huyện Yên Dũng" in places and "Hiệp Hòa (cũ)" not in places
    prompt = text_of(await cast.officer.choose("Huyện Hiệp Hòa"))
    assert "như người lao động đã nêu" in prompt and "Bước" not in prompt  # spoken to the officer
