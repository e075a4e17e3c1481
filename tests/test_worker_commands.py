"""The worker's commands: /status, /help, /cancel, /language, and which language is spoken."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import select

from storage.db import new_session
from storage.models import Concern
from tests.chat import Chat, Screen, codes_in, options_of, text_of
from tests.flows import DESCRIPTION, MENU, MENU_VI, onboard, rows, submit_concern


def _backdate(engine, code: str, when: datetime) -> None:
    with new_session(engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        concern.created_at = concern.updated_at = when
        session.add(concern)
        session.commit()


async def _to_description_in_vietnamese(chat: Chat) -> list[Screen]:
    """/new with Vietnamese labels: wages, no company, no place; what step 4 sent."""
    await chat.send("/new")
    await chat.choose("Tiền lương, thưởng")
    await chat.choose("Không nêu tên công ty")
    return await chat.choose("Bỏ qua")


async def _submit_in_vietnamese(chat: Chat, category: str = "Tiền lương, thưởng") -> str:
    """A whole concern through the Vietnamese labels; its tracking code."""
    await chat.send("/new")
    await chat.choose(category)
    await chat.send("Công ty TNHH Minh Phát")
    await chat.choose("KCN Đình Trám")
    await chat.send(DESCRIPTION)
    await chat.choose("Bỏ qua")
    await chat.choose("Công đoàn được biết (nên chọn)")
    replies = await chat.choose("Gửi")
    codes = codes_in(replies)
    assert codes, text_of(replies)
    return codes[0]


# ---- /status -------------------------------------------------------------------------------


async def test_status_lists_own_concerns_newest_first_with_vietnamese_dates(world) -> None:
    lan = world.person(701)
    await onboard(lan, "vi")
    oldest = await _submit_in_vietnamese(lan)
    middle = await _submit_in_vietnamese(lan, category="Nhà ở, nhà trọ")
    newest = await _submit_in_vietnamese(lan, category="Bữa ăn ca")
    engine = world.engine
    _backdate(engine, oldest, datetime(2026, 3, 5, 2, 0, tzinfo=UTC))
    _backdate(engine, middle, datetime(2026, 8, 20, 9, 0, tzinfo=UTC))
    # 20:30 UTC on 23 November is already 24 November in Vietnam.
    _backdate(engine, newest, datetime(2026, 11, 23, 20, 30, tzinfo=UTC))

    replies = await lan.send("/status")
    text = text_of(replies)
    assert text.index(newest) < text.index(middle) < text.index(oldest)
    assert "24/11/2026" in text and "20/08/2026" in text and "05/03/2026" in text
    assert options_of(replies) == [newest, middle, oldest]

    details = await lan.choose(middle)
    assert middle in text_of(details) and "20/08/2026" in text_of(details)


async def test_status_list_uses_english_dates_for_english_speakers(world) -> None:
    lan = world.person(702)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    _backdate(world.engine, code, datetime(2026, 11, 23, 20, 30, tzinfo=UTC))
    text = text_of(await lan.send("/status"))
    assert "Your concerns, newest first" in text
    assert "24 Nov 2026" in text


async def test_status_without_concerns_says_so_and_offers_the_menu(world) -> None:
    lan = world.person(703)
    await onboard(lan, "en")
    replies = await lan.send("/status")
    assert "No concern is linked to your account yet" in text_of(replies)
    assert options_of(replies) == MENU


async def test_status_shows_only_the_persons_own_concerns(world) -> None:
    lan = world.person(704)
    hoa = world.person(705)
    await onboard(lan, "en")
    await onboard(hoa, "en")
    mine = await submit_concern(lan)
    theirs = await submit_concern(hoa)
    text = text_of(await lan.send("/status"))
    assert mine in text and theirs not in text


# ---- /help, /cancel ------------------------------------------------------------------------


async def test_help_lists_the_worker_commands_only(world) -> None:
    lan = world.person(710)
    await onboard(lan, "en")
    replies = await lan.send("/help")
    text = text_of(replies)
    # A short plain guide, not a list of slash commands; everything is a button or a word to type.
    assert "How it works:" in text and "“cancel”" in text and "“help”" in text
    assert "/" not in text
    assert options_of(replies) == ["New concern", "My concerns", "Personal data", "Language"]


async def test_menu_choices_run_their_commands(world) -> None:
    lan = world.person(711)
    await onboard(lan, "en")
    replies = await lan.choose("Help")
    replies = await lan.choose("Personal data")
    assert "Decree 13/2023/NĐ-CP" in text_of(replies) and "Delete my data" in options_of(replies)
    replies = await lan.choose("Delete my data")
    assert "This deletes your name" in text_of(replies)
    replies = await lan.choose("Keep it")
    assert "Your data is kept as it is." in text_of(replies)
    replies = await lan.choose("New concern")
    assert "Step 1 of 6" in text_of(replies)


async def test_cancel_command_mid_dialog_forgets_the_answers(world) -> None:
    lan = world.person(712)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.send("Công ty TNHH Minh Phát")
    await lan.choose("Đình Trám Industrial Park")
    replies = await lan.send("/cancel")
    assert "Cancelled. Your concern has not been sent." in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.flow is None and state.step is None and state.data == "{}"
    assert rows(world.engine, Concern) == []
    # A new concern starts afresh at step 1.
    assert "Step 1 of 6" in text_of(await lan.send("/new"))


async def test_cancel_outside_a_dialog_says_there_is_nothing_to_cancel(world) -> None:
    lan = world.person(713)
    await onboard(lan, "en")
    replies = await lan.send("/cancel")
    assert "There is nothing to cancel" in text_of(replies)


async def test_cancel_typed_as_the_options_text(world) -> None:
    lan = world.person(714)
    await onboard(lan, "en")
    await lan.send("/new")
    replies = await lan.send("cancel")
    assert "Cancelled. Your concern has not been sent." in text_of(replies)


# ---- language ------------------------------------------------------------------------------


async def test_language_command_switches_to_english(world) -> None:
    lan = world.person(720, language="vi")
    await onboard(lan, "vi")
    vietnamese = text_of(await _to_description_in_vietnamese(lan))
    assert "Bước 4/6" in vietnamese
    await lan.send("/cancel")
    replies = await lan.send("/language")
    assert options_of(replies) == ["Tiếng Việt", "English"]
    replies = await lan.choose("English")
    assert "Language saved." in text_of(replies)
    assert options_of(replies) == MENU
    assert lan.person_row().locale == "en"
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.choose("No specific company")
    english = text_of(await lan.choose("Skip"))
    assert "Step 4 of 6. Describe your concern" in english


@pytest.mark.needs("language_code")
async def test_messenger_language_code_is_used_until_a_language_is_chosen(world) -> None:
    john = world.person(721, name="John", language="en-GB")
    replies = await john.send("/start")
    assert replies[0].text.startswith("Welcome to the union's channel for concerns!")
    assert john.person_row().locale is None
    # Still no stored choice: the notice and the steps follow the messenger's language.
    replies = await john.send("/new")
    assert "Personal data (Decree 13/2023/NĐ-CP)" in text_of(replies)
    await john.choose("I agree")
    await john.choose("Wages and bonuses")
    await john.choose("No specific company")
    assert "Step 4 of 6" in text_of(await john.choose("Skip"))


async def test_vietnamese_is_the_default_for_other_language_codes(world) -> None:
    pierre = world.person(722, name="Pierre Martin", language="fr")
    await pierre.send("/new")
    await pierre.choose("Tôi đồng ý")
    await pierre.choose("Tiền lương, thưởng")
    await pierre.choose("Không nêu tên công ty")
    assert "Bước 4/6" in text_of(await pierre.choose("Bỏ qua"))


async def test_stored_choice_wins_over_the_messenger_language_code(world) -> None:
    lan = world.person(723, language="vi")
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.choose("No specific company")
    assert "Step 4 of 6" in text_of(await lan.choose("Skip"))


async def test_language_change_keeps_the_concerns(world) -> None:
    lan = world.person(724)
    await onboard(lan, "en")
    code = await submit_concern(lan, description=DESCRIPTION)
    await lan.send("/language")
    replies = await lan.choose("Tiếng Việt")
    assert options_of(replies) == MENU_VI
    assert code in text_of(await lan.send("/status"))


def test_dates_follow_the_locale_and_time_zone(core) -> None:
    moment = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    assert core.catalogs.get("vi").date(moment) == "24/11/2026"
    assert core.catalogs.get("en").date(moment) == "24 Nov 2026"
    assert core.catalogs.get("vi").datetime(moment) == "03:30 ngày 24/11/2026"  # "giờ ngày", as Vietnamese writes it


async def test_keeping_what_one_was_about_to_remove_never_says_nothing_was_saved(world) -> None:
    """Review A2: "No, keep it" and "Keep it" answer with what stays, not "nothing was saved"."""
    lan = world.person(760, language="en")
    await onboard(lan, "en")
    code = await submit_concern(lan)
    await lan.send(f"/withdraw {code}")
    kept = await lan.choose("No, keep it")
    assert f"{code} is kept as it is." in text_of(kept) and "Nothing was saved" not in text_of(kept)
    await lan.send("/forget")
    kept = await lan.choose("Keep it")
    assert "Your data is kept as it is." in text_of(kept) and "Nothing was saved" not in text_of(kept)
    assert lan.person_row().display_name  # nothing was deleted


async def test_the_anonymous_receipt_says_to_send_the_code_and_step_five_names_its_button(world) -> None:
    """Review A16 and A1: no slash command to learn; the step names the button it shows."""
    lan = world.person(761, language="vi")
    await onboard(lan, "vi")
    await _to_description_in_vietnamese(lan)
    step_five = await lan.send_voice("voice-9")
    assert "chọn “Xong”" in text_of(step_five) and options_of(step_five) == ["Xong", "Hủy"]
    await lan.choose("Xong")
    await lan.choose("Ẩn danh hoàn toàn")
    sent = await lan.choose("Gửi")
    code = codes_in(sent)[0]
    assert f"bạn chỉ cần gửi mã {code} vào đây" in text_of(sent) and "/status" not in text_of(sent)
    assert code in text_of(await lan.send(code))  # and sending it works
