"""A first walk through the worker's dialog, on every channel."""

from __future__ import annotations

from storage.models import Concern
from tests.chat import codes_in, options_of
from tests.flows import MENU, MENU_VI, onboard, rows, submit_concern


async def test_worker_submits_a_concern_through_the_choices(world) -> None:
    lan = world.person(501)
    replies = await lan.send("/start")
    assert "kênh Kiến nghị của Công đoàn" in replies[0].text
    await lan.choose("Tiếng Việt")
    replies = await lan.choose("Tôi đồng ý")
    assert options_of(replies) == MENU_VI
    await lan.choose("Kiến nghị mới")
    await lan.choose("Tiền lương, thưởng")
    await lan.send("Công ty TNHH Minh Phát")
    await lan.choose("KCN Đình Trám")
    await lan.send("Công ty nợ lương tháng 6 và tháng 7 của công nhân.")
    await lan.choose("Bỏ qua")
    await lan.choose("Công đoàn được biết (nên chọn)")
    replies = await lan.choose("Gửi")
    concern = rows(world.engine, Concern)
    assert len(concern) == 1
    assert concern[0].tracking_code in replies[0].text
    assert concern[0].enterprise == "Công ty TNHH Minh Phát"


async def test_two_people_submit_with_the_common_walks(world) -> None:
    lan = world.person(5, language="en")
    replies = await lan.send("/start")
    assert options_of(replies) == ["Tiếng Việt", "English"]
    await lan.choose("English")
    replies = await lan.choose("I agree")
    assert options_of(replies) == MENU
    code = await submit_concern(lan, photos=["p1"])
    assert codes_in([lan.inbox[-2]]) == [code]
    hoa = world.person(6, language="vi")
    await onboard(hoa, "en")
    await submit_concern(hoa, anonymous=True, place=None, enterprise=None)
    state = lan.dialog()
    assert state is not None and state.flow is None
    anonymous = [c for c in rows(world.engine, Concern) if c.visibility == "anonymous"]
    assert len(anonymous) == 1 and anonymous[0].author_id is None
    assert anonymous[0].enterprise == "" and anonymous[0].place_code is None
