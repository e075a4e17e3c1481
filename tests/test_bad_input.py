"""What workers really send: stickers, places, contacts, markup, odd Unicode, floods, repeats."""

from __future__ import annotations

import asyncio
import logging
import unicodedata
from collections.abc import Iterator

import pytest
from sqlmodel import select

from storage.db import new_session
from storage.models import Concern, DialogState, Enterprise, ProcessedUpdate
from tests.worker_flow import (
    DESCRIPTION,
    buttons_of,
    codes_in,
    dialog_row,
    onboard,
    reach_summary,
    rows,
    submit_concern,
    telegram_app,
    text_of,
)

STICKER = {"file_id": "stk-1", "file_unique_id": "stk-1u", "type": "regular", "width": 512, "height": 512,
           "is_animated": False, "is_video": False}
LOCATION = {"latitude": 21.2731, "longitude": 106.1946}
CONTACT = {"phone_number": "+84912345678", "first_name": "Lan", "user_id": 530}
MENU = ["/new", "/status", "/help"]
ONLY_SUPPORTED = "I can read text, voice notes, photos and documents only"


@pytest.fixture(autouse=True)
def never_an_exception(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No input, however odd, may reach the error handler or log an error."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


async def _at_step(telegram, user_id: int, step: str):
    """An English-speaking worker who has reached a step of the /new dialog."""
    lan = telegram.person(user_id)
    await onboard(lan, "en")
    await lan.send("/new")
    if step == "category":
        return lan
    await lan.press("cat:wages")
    if step == "enterprise":
        return lan
    await lan.press("ent:none")
    if step == "place":
        return lan
    await lan.press("place:")
    assert step == "description"
    return lan


# ---- things the bot cannot read ------------------------------------------------------------


async def test_sticker_outside_a_dialog_gets_a_polite_refusal(telegram) -> None:
    lan = telegram.person(801, language_code="en")
    replies = await lan.send_raw(sticker=STICKER)
    assert len(replies) == 1 and ONLY_SUPPORTED in replies[0].text


async def test_sticker_mid_dialog_keeps_the_step_and_its_buttons(telegram) -> None:
    lan = await _at_step(telegram, 802, "category")
    replies = await lan.send_raw(sticker=STICKER)
    assert ONLY_SUPPORTED in text_of(replies)
    assert dialog_row(telegram.core.engine, "telegram", 802).step == "category"
    # The buttons of the step still work, pressed or typed.
    replies = await lan.press("cat:wages")
    assert buttons_of(replies) == ["ent:none", "cancel"]


async def test_sticker_mid_dialog_then_typing_a_number_still_chooses(telegram) -> None:
    lan = await _at_step(telegram, 803, "category")
    await lan.send_raw(sticker=STICKER)
    replies = await lan.send("3")
    assert buttons_of(replies) == ["ent:none", "cancel"]
    assert '"category": "hours"' in dialog_row(telegram.core.engine, "telegram", 803).data


async def test_location_at_the_description_step_is_refused_and_not_stored(telegram) -> None:
    lan = await _at_step(telegram, 804, "description")
    replies = await lan.send_raw(location=LOCATION)
    assert ONLY_SUPPORTED in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 804)
    assert state.step == "description" and "21.27" not in state.data and "attachments" not in state.data
    replies = await lan.send(DESCRIPTION)
    assert "Step 5 of 6" in text_of(replies)


async def test_contact_is_refused_and_the_phone_number_is_not_kept(telegram) -> None:
    lan = await _at_step(telegram, 805, "description")
    replies = await lan.send_raw(contact=CONTACT)
    assert ONLY_SUPPORTED in text_of(replies)
    await lan.send(DESCRIPTION)
    await lan.press("files:done")
    await lan.press("vis:union")
    await lan.press("send")
    with new_session(telegram.core.engine) as session:
        stored = [repr(row) for model in (Concern, DialogState) for row in session.exec(select(model))]
    assert not any("912345678" in row for row in stored)


async def test_empty_or_whitespace_text_asks_for_words(telegram) -> None:
    lan = await _at_step(telegram, 806, "enterprise")
    for blank in ("   ", "\n\t ", "\u200b"):
        replies = await lan.send(blank)
        assert "Your message was empty" in text_of(replies), repr(blank)
    assert dialog_row(telegram.core.engine, "telegram", 806).step == "enterprise"


# ---- text is kept as written, shown literally ----------------------------------------------


async def test_control_characters_are_stripped_from_the_description(telegram) -> None:
    lan = await _at_step(telegram, 810, "description")
    await lan.send("Công ty\x07 nợ lương\x00 hai tháng\x1b[0m.\nTổ 3 đều bị.\u200e")
    await lan.press("files:done")
    await lan.press("vis:union")
    await lan.press("send")
    assert rows(telegram.core.engine, Concern)[0].description == "Công ty nợ lương hai tháng[0m.\nTổ 3 đều bị."


async def test_html_in_the_description_is_shown_literally(telegram) -> None:
    lan = telegram.person(811)
    await onboard(lan, "en")
    markup = "<b>Công ty</b> <a href='http://x.vn'>nợ</a> lương & thưởng <i>3 tháng</i>"
    summary = await reach_summary(lan, description=markup, enterprise="<script>alert(1)</script> & Co")
    assert markup in text_of(summary)
    assert "<script>alert(1)</script> & Co" in text_of(summary)
    assert all("parse_mode" not in call.params for call in telegram.api.sent(811))
    code = codes_in(await lan.press("send"))[0]
    assert markup in text_of(await lan.send(code))
    assert rows(telegram.core.engine, Concern)[0].description == markup


async def test_markdown_in_the_description_is_shown_literally(telegram) -> None:
    lan = telegram.person(812)
    await onboard(lan, "en")
    markdown = "*Lương* _chậm_ `3 tháng` [xem](http://x.vn) ~~hết~~ \\*"
    summary = await reach_summary(lan, description=markdown)
    assert markdown in text_of(summary)
    assert all("parse_mode" not in call.params for call in telegram.api.sent(812))


async def test_decomposed_vietnamese_is_stored_composed(telegram) -> None:
    lan = telegram.person(813)
    await onboard(lan, "en")
    description = unicodedata.normalize("NFD", "Công ty không trả lương làm thêm giờ.")
    enterprise = unicodedata.normalize("NFD", "Công ty TNHH Hồng Hải")
    assert description != unicodedata.normalize("NFC", description)
    await submit_concern(lan, description=description, enterprise=enterprise)
    concern = rows(telegram.core.engine, Concern)[0]
    assert concern.description == "Công ty không trả lương làm thêm giờ."
    assert concern.enterprise == "Công ty TNHH Hồng Hải"
    assert [e.name for e in rows(telegram.core.engine, Enterprise)] == ["Công ty TNHH Hồng Hải"]


async def test_decomposed_name_finds_the_composed_enterprise(telegram) -> None:
    first = telegram.person(814)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Hồng Hải")
    second = telegram.person(815)
    await onboard(second, "en")
    await second.send("/new")
    await second.press("cat:wages")
    replies = await second.send(unicodedata.normalize("NFD", "Công ty TNHH Hồng Hải"))
    assert "place:kcn_dinh_tram" in buttons_of(replies)  # exact match: no suggestion step
    assert len(rows(telegram.core.engine, Enterprise)) == 1


# ---- commands, text and buttons out of place -----------------------------------------------


async def test_unknown_command_gets_the_unknown_command_reply(telegram) -> None:
    lan = telegram.person(820, language_code="en")
    replies = await lan.send("/foo")
    assert len(replies) == 1
    assert "I do not know the command /foo" in replies[0].text and "/help" in replies[0].text


async def test_unknown_command_mid_dialog_keeps_the_dialog(telegram) -> None:
    lan = await _at_step(telegram, 821, "place")
    replies = await lan.send("/foo@kiennghi_bot bar")
    assert "I do not know the command /foo" in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 821)
    assert (state.flow, state.step) == ("new", "place")


async def test_staff_command_from_a_worker_is_an_unknown_command(telegram) -> None:
    lan = telegram.person(822, language_code="en")
    assert "I do not know the command /queue" in text_of(await lan.send("/queue"))


async def test_text_outside_any_dialog_gets_a_hint_with_buttons(telegram) -> None:
    lan = telegram.person(823)
    await onboard(lan, "en")
    replies = await lan.send("Cho tôi hỏi về lương")
    assert "New concern" in text_of(replies)
    assert buttons_of(replies) == MENU


async def test_file_outside_any_dialog_gets_the_hint(telegram) -> None:
    lan = telegram.person(824)
    await onboard(lan, "en")
    replies = await lan.send_photo("lost-photo")
    assert buttons_of(replies) == MENU


async def test_button_from_an_earlier_step_gets_a_clear_reply_and_the_current_step(telegram) -> None:
    lan = await _at_step(telegram, 825, "place")
    replies = await lan.press_data("cat:housing")
    assert "earlier message" in text_of(replies)
    assert buttons_of(replies)[0] == "place:kcn_dinh_tram"  # the place step, asked again
    state = dialog_row(telegram.core.engine, "telegram", 825)
    assert state.step == "place" and '"category": "wages"' in state.data


async def test_button_from_a_finished_dialog_gets_a_clear_reply(telegram) -> None:
    lan = telegram.person(826)
    await onboard(lan, "en")
    await submit_concern(lan)
    replies = await lan.press_data("vis:anonymous")
    assert "earlier message" in text_of(replies)
    assert buttons_of(replies) == MENU
    replies = await lan.press_data("send")
    assert "earlier message" in text_of(replies)
    assert len(rows(telegram.core.engine, Concern)) == 1


async def test_made_up_button_data_is_harmless(telegram) -> None:
    lan = await _at_step(telegram, 827, "category")
    for data in ("cat:nonexistent", "ent:999999", "", "x" * 64, "/status KN-ZZZZ"):
        replies = await lan.press_data(data)
        assert replies, repr(data)
    assert rows(telegram.core.engine, Concern) == []


async def test_very_long_text_outside_a_dialog_is_fine(telegram) -> None:
    lan = telegram.person(828, language_code="en")
    replies = await lan.send("ă" * 4096)
    assert buttons_of(replies) == MENU


# ---- flood and daily limit -----------------------------------------------------------------


async def test_flood_gets_one_slow_down_reply_then_silence_and_spares_others(make_core) -> None:
    core = make_core(flood_messages=5, flood_window_seconds=10)
    async with telegram_app(core) as telegram:
        lan = telegram.person(830, language_code="en")
        hoa = telegram.person(831, language_code="en")
        for number in range(5):
            assert len(await lan.send(f"tin nhắn {number}")) == 1
        sixth = await lan.send("tin nhắn 5")
        assert len(sixth) == 1 and "sending messages very fast" in sixth[0].text
        for number in range(6, 10):
            assert await lan.send(f"tin nhắn {number}") == []
        replies = await hoa.send("/start")
        assert replies and "sending messages very fast" not in text_of(replies)


async def test_after_a_flood_the_buttons_of_the_current_step_still_work(make_core) -> None:
    core = make_core(flood_messages=3, flood_window_seconds=0.6)
    async with telegram_app(core) as telegram:
        lan = telegram.person(835)
        await onboard(lan, "en")
        await asyncio.sleep(0.7)
        await lan.send("/new")
        await lan.send("?")
        await lan.send("??")
        warned = await lan.send("???")
        assert "sending messages very fast" in text_of(warned)
        await asyncio.sleep(0.7)
        replies = await lan.press("cat:meals")
        assert "earlier message" not in text_of(replies)
        assert buttons_of(replies) == ["ent:none", "cancel"]


async def test_daily_concern_limit_refuses_a_second_new_politely(make_core) -> None:
    core = make_core(daily_concern_limit=1, flood_messages=1000)
    async with telegram_app(core) as telegram:
        lan = telegram.person(832)
        await onboard(lan, "en")
        await submit_concern(lan)
        replies = await lan.send("/new")
        assert "You have sent 1 concerns today" in text_of(replies)
        assert "cat:wages" not in buttons_of(replies)
        assert dialog_row(core.engine, "telegram", 832).flow is None
        # Another worker may still send one.
        hoa = telegram.person(833)
        await onboard(hoa, "en")
        await submit_concern(hoa)
        assert len(rows(core.engine, Concern)) == 2


async def test_daily_limit_also_holds_for_a_dialog_started_before_the_limit(make_core) -> None:
    core = make_core(daily_concern_limit=1, flood_messages=1000)
    async with telegram_app(core) as telegram:
        lan = telegram.person(834)
        await onboard(lan, "en")
        await reach_summary(lan)  # a first dialog left at its summary...
        await submit_concern(lan)  # ...then /new again and sent
        replies = await lan.press_data("send")
        assert len(rows(core.engine, Concern)) == 1
        assert not codes_in(replies)


# ---- the same update twice -----------------------------------------------------------------


async def test_same_text_update_delivered_twice_is_handled_once(telegram) -> None:
    lan = telegram.person(840)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    first = await lan.send("Công ty TNHH Minh Phát")
    again = await lan.deliver(lan.last_update)
    assert len(first) == 1 and again == []
    assert dialog_row(telegram.core.engine, "telegram", 840).step == "place"


async def test_send_button_delivered_twice_stores_one_concern(telegram) -> None:
    lan = telegram.person(841)
    await onboard(lan, "en")
    await reach_summary(lan)
    first = await lan.press("send")
    again = await lan.deliver(lan.last_update)
    assert codes_in(first) and again == []
    assert len(rows(telegram.core.engine, Concern)) == 1
    update_id = str(lan.last_update["update_id"])
    keys = [u.update_key for u in rows(telegram.core.engine, ProcessedUpdate)]
    assert keys.count(update_id) == 1


async def test_an_update_handled_by_another_process_is_not_handled_again(telegram, make_core) -> None:
    lan = telegram.person(842)
    await onboard(lan, "en")
    await reach_summary(lan)
    await lan.press("send")
    other_process = make_core(flood_messages=1000)
    async with telegram_app(other_process) as elsewhere:
        replay = elsewhere.person(842)
        assert await replay.deliver(lan.last_update) == []
    assert len(rows(telegram.core.engine, Concern)) == 1
