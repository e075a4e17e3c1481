"""What workers really send: stickers, places, contacts, markup, odd Unicode, floods, repeats.

Written once for every channel (the `world` fixture, or `open_world` over both kinds): choices are
named by the label a person reads. What only Telegram has (buttons of earlier messages, made-up
callback data, an update delivered twice, Bot API parameters) runs on `telegram_world`.
"""

from __future__ import annotations

import asyncio
import unicodedata
from pathlib import Path

import pytest

from storage.models import Attachment, Concern, DialogState, Enterprise, OutboxMessage, Person, ProcessedUpdate
from tests.bad_input_steps import (
    EARLIER,
    EMPTY,
    ENTERPRISE_CHOICES,
    ONLY_SUPPORTED,
    TOO_FAST,
    at_step,
    dialog_data,
    stored_text,
)
from tests.chat import codes_in, options_of, text_of
from tests.conftest import open_world
from tests.flows import DESCRIPTION, MENU, UNION, onboard, reach_summary, rows, submit_concern

CHANNELS = ["telegram", "terminal"]
PHONE = "+84912345678"
COORDINATES = "21.2731,106.1946"  # what a terminal person's "location" carries; Telegram sends 21.2731
HTML = "<b>Công ty</b> <a href='http://x.vn'>nợ</a> lương & thưởng <i>3 tháng</i>"
SCRIPT = "<script>alert(1)</script> & Co"
MARKDOWN = "*Lương* _chậm_ `3 tháng` [xem](http://x.vn) ~~hết~~ \\*"


pytestmark = pytest.mark.usefixtures("no_error_logged")  # no input may reach the error handler


# ---- things the bot cannot read ------------------------------------------------------------


@pytest.mark.needs("language_code")
async def test_sticker_outside_a_dialog_gets_a_polite_refusal(world) -> None:
    lan = world.person(801, language="en")
    replies = await lan.send_file("sticker", "stk-1")
    assert len(replies) == 1 and ONLY_SUPPORTED in replies[0].text


async def test_sticker_mid_dialog_keeps_the_step_and_its_choices(world) -> None:
    lan = await at_step(world, 802, "category")
    replies = await lan.send_file("sticker", "stk-1")
    assert ONLY_SUPPORTED in text_of(replies)
    assert lan.dialog().step == "category"
    # The choices of the step still work: the button pressed, or its number typed.
    replies = await lan.choose("Wages and bonuses")
    assert options_of(replies) == ENTERPRISE_CHOICES


async def test_sticker_mid_dialog_then_typing_a_number_still_chooses(world) -> None:
    lan = await at_step(world, 803, "category")
    await lan.send_file("sticker", "stk-1")
    replies = await lan.send("3")  # the third topic: Working hours and overtime
    assert options_of(replies) == ENTERPRISE_CHOICES
    assert dialog_data(lan)["category"] == "hours"


async def test_location_at_the_description_step_is_refused_and_not_stored(world) -> None:
    lan = await at_step(world, 804, "description")
    replies = await lan.send_file("location", COORDINATES)
    assert ONLY_SUPPORTED in text_of(replies)
    state = lan.dialog()
    assert state.step == "description" and "21.27" not in state.data and "attachments" not in state.data
    replies = await lan.send(DESCRIPTION)
    assert "Step 5 of 6" in text_of(replies)


async def test_contact_is_refused_and_the_phone_number_is_not_kept(world) -> None:
    lan = await at_step(world, 805, "description")
    replies = await lan.send_file("contact", PHONE)
    assert ONLY_SUPPORTED in text_of(replies)
    await lan.send(DESCRIPTION)
    await lan.choose("Skip")
    await lan.choose(UNION)
    assert codes_in(await lan.choose("Send"))
    stored = stored_text(world.engine, Concern, DialogState, Attachment, Person, OutboxMessage)
    assert not any("912345678" in row for row in stored)


async def test_empty_or_whitespace_text_asks_for_words(world) -> None:
    lan = await at_step(world, 806, "enterprise")
    for blank in ("   ", "\n\t ", "\u200b"):
        replies = await lan.send(blank)
        assert EMPTY in text_of(replies), repr(blank)
    assert lan.dialog().step == "enterprise"


# ---- text is kept as written, shown literally ----------------------------------------------


async def test_control_characters_are_stripped_from_the_description(world) -> None:
    lan = await at_step(world, 810, "description")
    await lan.send("Công ty\x07 nợ lương\x00 hai tháng\x1b[0m.\nTổ 3 đều bị.\u200e")
    await lan.choose("Skip")
    await lan.choose(UNION)
    await lan.choose("Send")
    assert rows(world.engine, Concern)[0].description == "Công ty nợ lương hai tháng[0m.\nTổ 3 đều bị."


async def test_html_in_the_description_is_shown_literally(world) -> None:
    lan = world.person(811)
    await onboard(lan, "en")
    summary = await reach_summary(lan, description=HTML, enterprise=SCRIPT)
    assert HTML in text_of(summary)
    assert SCRIPT in text_of(summary)
    code = codes_in(await lan.choose("Send"))[0]
    assert HTML in text_of(await lan.send(code))
    assert rows(world.engine, Concern)[0].description == HTML


async def test_markdown_in_the_description_is_shown_literally(world) -> None:
    lan = world.person(812)
    await onboard(lan, "en")
    summary = await reach_summary(lan, description=MARKDOWN)
    assert MARKDOWN in text_of(summary)
    code = codes_in(await lan.choose("Send"))[0]
    assert MARKDOWN in text_of(await lan.send(code))


@pytest.mark.parametrize(("description", "enterprise"), [(HTML, SCRIPT), (MARKDOWN, "Công ty TNHH Minh Phát")])
async def test_markup_goes_to_telegram_without_a_parse_mode(telegram_world, description, enterprise) -> None:
    lan = telegram_world.person(811)
    await onboard(lan, "en")
    await reach_summary(lan, description=description, enterprise=enterprise)
    code = codes_in(await lan.choose("Send"))[0]
    await lan.send(code)
    calls = [call for call in telegram_world.api.calls if call.chat_id == "811"]
    assert len(telegram_world.api.sent(811)) >= 10  # every step, the summary, the code and the status
    assert all("parse_mode" not in call.params for call in calls)


async def test_decomposed_vietnamese_is_stored_composed(world) -> None:
    lan = world.person(813)
    await onboard(lan, "en")
    description = unicodedata.normalize("NFD", "Công ty không trả lương làm thêm giờ.")
    enterprise = unicodedata.normalize("NFD", "Công ty TNHH Hồng Hải")
    assert description != unicodedata.normalize("NFC", description)
    await submit_concern(lan, description=description, enterprise=enterprise)
    concern = rows(world.engine, Concern)[0]
    assert concern.description == "Công ty không trả lương làm thêm giờ."
    assert concern.enterprise == "Công ty TNHH Hồng Hải"
    assert [e.name for e in rows(world.engine, Enterprise)] == ["Công ty TNHH Hồng Hải"]


async def test_decomposed_name_finds_the_composed_enterprise(world) -> None:
    first = world.person(814)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Hồng Hải")
    second = world.person(815)
    await onboard(second, "en")
    await second.send("/new")
    await second.choose("Wages and bonuses")
    replies = await second.send(unicodedata.normalize("NFD", "Công ty TNHH Hồng Hải"))
    assert "Đình Trám Industrial Park" in options_of(replies)  # exact match: no suggestion step
    assert second.dialog().step == "place"
    assert len(rows(world.engine, Enterprise)) == 1


# ---- commands and text out of place --------------------------------------------------------


@pytest.mark.needs("language_code")
async def test_unknown_command_gets_the_unknown_command_reply(world) -> None:
    lan = world.person(820, language="en")
    replies = await lan.send("/foo")
    assert len(replies) == 1
    assert "The command /foo is not available" in replies[0].text and "“help”" in replies[0].text


async def test_unknown_command_mid_dialog_keeps_the_dialog(world) -> None:
    lan = await at_step(world, 821, "place")
    replies = await lan.send("/foo@kiennghi_bot bar")
    assert "The command /foo is not available" in text_of(replies)
    state = lan.dialog()
    assert (state.flow, state.step) == ("new", "place")


@pytest.mark.needs("language_code")
async def test_staff_command_from_a_worker_is_an_unknown_command(world) -> None:
    lan = world.person(822, language="en")
    assert "The command /queue is not available" in text_of(await lan.send("/queue"))
    for staff_only in ("staff", "mine", "undelivered"):
        assert f"The command /{staff_only} is not available" in text_of(await lan.send(f"/{staff_only}"))
    assert lan.person_row().role == "worker"


async def test_text_outside_any_dialog_gets_a_hint_with_choices(world) -> None:
    lan = world.person(823)
    await onboard(lan, "en")
    replies = await lan.send("Cho tôi hỏi về lương")
    assert "New concern" in text_of(replies)
    assert options_of(replies) == MENU


async def test_file_outside_any_dialog_gets_the_hint(world) -> None:
    lan = world.person(824)
    await onboard(lan, "en")
    replies = await lan.send_photo("lost-photo")
    assert options_of(replies) == MENU


@pytest.mark.needs("language_code")
async def test_very_long_text_outside_a_dialog_is_fine(world) -> None:
    lan = world.person(828, language="en")
    replies = await lan.send("ă" * 4096)
    assert options_of(replies) == MENU


# ---- buttons out of place (Telegram: a chat keeps every earlier message's buttons) -------------


async def test_button_from_an_earlier_step_gets_a_clear_reply_and_the_current_step(telegram_world) -> None:
    lan = await at_step(telegram_world, 825, "place")
    replies = await lan.press_old("Housing and rented rooms")  # on the topic question, step 1
    assert EARLIER in text_of(replies)
    assert options_of(replies)[0] == "Đình Trám Industrial Park"  # the place step, asked again
    state = lan.dialog()
    assert state.step == "place" and dialog_data(lan)["category"] == "wages"


async def test_button_from_a_finished_dialog_gets_a_clear_reply(telegram_world) -> None:
    lan = telegram_world.person(826)
    await onboard(lan, "en")
    await submit_concern(lan)
    replies = await lan.press_old("Fully anonymous")  # on the sent concern's step 6
    assert EARLIER in text_of(replies)
    assert options_of(replies) == MENU
    replies = await lan.press_old("Send")  # on its summary
    assert EARLIER in text_of(replies)
    assert len(rows(telegram_world.engine, Concern)) == 1


async def test_made_up_button_data_is_harmless(telegram_world) -> None:
    lan = await at_step(telegram_world, 827, "category")
    for data in ("cat:nonexistent", "ent:999999", "", "x" * 64, "/status KN-ZZZZ"):
        replies = await lan.press_data(data)
        assert replies, repr(data)
    assert rows(telegram_world.engine, Concern) == []


# ---- flood and daily limit -----------------------------------------------------------------


@pytest.mark.parametrize("kind", CHANNELS)
async def test_flood_gets_one_slow_down_reply_then_silence_and_spares_others(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind, flood_messages=5, flood_window_seconds=10) as world:
        lan = world.person(830, language="en")
        hoa = world.person(831, language="en")
        for number in range(5):
            assert len(await lan.send(f"tin nhắn {number}")) == 1
        sixth = await lan.send("tin nhắn 5")
        assert len(sixth) == 1 and TOO_FAST in sixth[0].text
        for number in range(6, 10):
            assert await lan.send(f"tin nhắn {number}") == []
        replies = await hoa.send("/start")
        assert replies and TOO_FAST not in text_of(replies)


@pytest.mark.parametrize("kind", CHANNELS)
async def test_after_a_flood_the_choices_of_the_current_step_still_work(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind, flood_messages=3, flood_window_seconds=0.6) as world:
        lan = world.person(835)
        await onboard(lan, "en")
        await asyncio.sleep(0.7)
        await lan.send("/new")
        await lan.send("?")
        await lan.send("??")
        warned = await lan.send("???")
        assert TOO_FAST in text_of(warned)
        await asyncio.sleep(0.7)
        replies = await lan.choose("Shift meals")
        assert EARLIER not in text_of(replies)
        assert options_of(replies) == ENTERPRISE_CHOICES


@pytest.mark.parametrize("kind", CHANNELS)
async def test_daily_concern_limit_refuses_a_second_new_politely(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind, daily_concern_limit=1, flood_messages=1000) as world:
        lan = world.person(832)
        await onboard(lan, "en")
        await submit_concern(lan)
        replies = await lan.send("/new")
        assert "You have sent 1 concern today" in text_of(replies)
        assert "Wages and bonuses" not in options_of(replies)
        assert lan.dialog().flow is None
        # Another worker may still send one.
        hoa = world.person(833)
        await onboard(hoa, "en")
        await submit_concern(hoa)
        assert len(rows(world.engine, Concern)) == 2


@pytest.mark.parametrize("kind", CHANNELS)
async def test_daily_limit_also_holds_for_a_dialog_started_before_the_limit(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind, daily_concern_limit=1, flood_messages=1000) as world:
        lan = world.person(834)
        await onboard(lan, "en")
        await reach_summary(lan)  # a first dialog left at its summary...
        await submit_concern(lan)  # ...then /new again and sent
        # "Send" once more: the old summary's button on Telegram, the word typed on the terminal.
        replies = await (lan.press_old("Send") if kind == "telegram" else lan.send("Send"))
        assert len(rows(world.engine, Concern)) == 1
        assert not codes_in(replies)


# ---- the same update twice (Telegram redelivers what it believes was lost) --------------------


async def test_same_text_update_delivered_twice_is_handled_once(telegram_world) -> None:
    lan = telegram_world.person(840)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    first = await lan.send("Công ty TNHH Minh Phát")
    again = await lan.resend()
    assert len(first) == 1 and again == []
    assert lan.dialog().step == "place"


async def test_send_button_delivered_twice_stores_one_concern(telegram_world) -> None:
    lan = telegram_world.person(841)
    await onboard(lan, "en")
    await reach_summary(lan)
    first = await lan.choose("Send")
    again = await lan.resend()
    assert codes_in(first) and again == []
    assert len(rows(telegram_world.engine, Concern)) == 1
    update_id = str(lan.last_update["update_id"])
    keys = [u.update_key for u in rows(telegram_world.engine, ProcessedUpdate)]
    assert keys.count(update_id) == 1


async def test_an_update_handled_by_another_process_is_not_handled_again(telegram_world, tmp_path: Path) -> None:
    lan = telegram_world.person(842)
    await onboard(lan, "en")
    await reach_summary(lan)
    assert codes_in(await lan.choose("Send"))
    async with open_world(tmp_path, "telegram") as elsewhere:  # the same database
        replay = elsewhere.person(842)
        assert await replay.deliver(lan.last_update) == []
    assert len(rows(telegram_world.engine, Concern)) == 1
