"""The worker's dialog on every channel: welcome, privacy notice, raising a concern step by step."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.db import new_session
from storage.models import Attachment, Concern, Enterprise, StatusChange
from tests.chat import Chat, codes_in, options_of, text_of
from tests.flows import ANONYMOUS, DESCRIPTION, MENU, MENU_VI, UNION, onboard, reach_summary, rows, submit_concern

SUMMARY = ["Send", "Edit", "Cancel"]
VISIBILITY = [UNION, ANONYMOUS]

# ---- /start, language, privacy notice ------------------------------------------------------


async def test_first_start_welcomes_and_asks_the_language(world) -> None:
    lan = world.person(501)
    replies = await lan.send("/start")
    # The channel says whose it is: the Labour Federation named in the settings (not "kiennghi").
    assert "kênh Kiến nghị của Công đoàn" in replies[0].text
    assert "Liên đoàn Lao động thành phố Bắc Ninh" in replies[0].text
    assert options_of(replies) == ["Tiếng Việt", "English"]


async def test_privacy_notice_names_decree_and_forget_then_consent_is_stored(world) -> None:
    lan = world.person(502)
    await lan.send("/start")
    notice = await lan.choose("Tiếng Việt")
    notice_text = text_of(notice)
    # Decree 13: who holds the data, why, how long, who sees what, and how to see or delete it,
    # in Vietnamese words a worker can type (no English slash command).
    assert "13/2023/NĐ-CP" in notice_text and "/forget" not in notice_text
    for said in ("Liên đoàn Lao động thành phố Bắc Ninh lưu tên và mã tài khoản Telegram", "để tiếp nhận",
                 "sau 24 tháng", "Cơ quan giải quyết không thấy tên bạn, nhưng đọc nội dung bạn viết",
                 "đừng ghi tên, số điện thoại", "gõ “tra cứu”", "gõ “xóa dữ liệu”"):
        assert said in notice_text.replace("Terminal", "Telegram").replace("Zalo", "Telegram"), said
    assert options_of(notice) == ["Tôi đồng ý", "Để sau"]
    assert lan.person_row().consent_at is None

    replies = await lan.choose("Tôi đồng ý")
    person = lan.person_row()
    assert person.locale == "vi"
    assert person.consent_at is not None
    assert options_of(replies) == MENU_VI


async def test_declining_the_notice_stores_no_consent_and_new_asks_again(world) -> None:
    lan = world.person(503, language="en")
    await lan.send("/start")
    await lan.choose("English")
    replies = await lan.choose("Not now")
    assert "Without your agreement" in text_of(replies)
    assert lan.person_row().consent_at is None
    replies = await lan.send("/new")
    assert "13/2023/NĐ-CP" in text_of(replies)
    assert options_of(replies) == ["I agree", "Not now"]


@pytest.mark.needs("language_code")
async def test_new_before_start_shows_the_notice_then_goes_straight_to_the_first_step(world) -> None:
    lan = world.person(504, language="en")
    replies = await lan.send("/new")
    assert "Personal data (Decree 13/2023/NĐ-CP)" in text_of(replies)
    replies = await lan.choose("I agree")
    assert "Step 1 of 6" in text_of(replies)
    assert "Wages and bonuses" in options_of(replies)


async def test_second_start_does_not_ask_the_language_again(world) -> None:
    lan = world.person(505)
    await onboard(lan, "en")
    replies = await lan.send("/start")
    assert "Tiếng Việt" not in options_of(replies)
    assert options_of(replies) == MENU


@pytest.mark.needs("language_code")
async def test_start_deep_link_with_tracking_code_opens_the_concern(world) -> None:
    lan = world.person(506)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    stranger = world.person(507, language="en")
    replies = await stranger.send(f"/start {code}")
    assert f"Concern {code}" in text_of(replies)
    assert "Received, waiting for the union" in text_of(replies)
    assert "Tiếng Việt" not in options_of(replies)  # no welcome: straight to the concern


# ---- the whole dialog ----------------------------------------------------------------------


async def test_each_step_offers_its_choices(world) -> None:
    lan = world.person(510)
    await onboard(lan, "en")
    replies = await lan.send("/new")
    categories = options_of(replies)
    assert len(categories) == 13 + 1 and categories[0] == "Wages and bonuses" and categories[-1] == "Cancel"
    replies = await lan.choose("Working hours and overtime")
    assert options_of(replies) == ["No specific company", "Cancel"]
    replies = await lan.send("Công ty TNHH Minh Phát")
    places = options_of(replies)
    # Today's places: 13 industrial parks and 17 areas of the former districts (2024's are not offered).
    assert len(places) == 13 + 17 + 2 and places[0] == "Đình Trám Industrial Park" and places[-2:] == ["Skip", "Cancel"]
    assert "Hiệp Hòa District" not in places
    replies = await lan.choose("Hiệp Hòa (former)")
    assert "at least 10 characters" in text_of(replies) and "voice note" in text_of(replies)
    assert options_of(replies) == ["Cancel"]
    replies = await lan.send(DESCRIPTION)
    assert options_of(replies) == ["Skip", "Cancel"]
    replies = await lan.choose("Skip")
    assert options_of(replies) == [*VISIBILITY, "Cancel"]
    replies = await lan.choose(UNION)
    assert options_of(replies) == SUMMARY
    summary = text_of(replies)
    for shown in ("Working hours and overtime", "Công ty TNHH Minh Phát", "Hiệp Hòa (former)", DESCRIPTION,
                  "The union may see your name"):
        assert shown in summary


async def test_sending_stores_concern_attachments_and_history_before_the_code_is_shown(world) -> None:
    lan = world.person(511)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["photo-a"], category="Occupational safety and health",
                        place="Bắc Giang City (former)")
    replies = await lan.choose("Send")
    codes = codes_in(replies)
    assert len(codes) == 1
    engine = world.engine
    author = lan.person_row()
    with new_session(engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == codes[0])).one()
        files = list(session.exec(select(Attachment).where(Attachment.concern_id == concern.id)))
        history = list(session.exec(select(StatusChange).where(StatusChange.concern_id == concern.id)))
    assert (concern.author_id, concern.visibility, concern.status) == (author.id, "union", "new")
    assert (concern.category_code, concern.place_code) == ("safety", "kv_bac_giang")
    assert concern.enterprise == "Công ty TNHH Minh Phát"
    assert concern.description == DESCRIPTION
    assert [(f.file_id, f.kind, f.size, f.messenger) for f in files] == [
        (world.file_ref("photo-a"), "photo", 54321, world.kind)]
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "new", author.id)]
    state = lan.dialog()
    assert state is not None and state.flow is None and state.data == "{}"
    assert options_of(replies)[-3:] == MENU


async def _at_description(world, user_id: int) -> Chat:
    """A person onboarded in English, at step 4 (wages, no company, no place)."""
    lan = world.person(user_id)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.choose("No specific company")
    await lan.choose("Skip")
    return lan


@pytest.mark.needs("documents")
async def test_photos_and_documents_are_stored_with_file_id_kind_and_size(world) -> None:
    lan = await _at_description(world, 512)
    await lan.send(DESCRIPTION)
    replies = await lan.send_photo("photo-1")
    assert "File 1 of 5 received" in text_of(replies)
    assert options_of(replies) == ["Done", "Cancel"]
    replies = await lan.send_document("doc-1")
    assert "File 2 of 5 received" in text_of(replies)
    await lan.choose("Done")
    replies = await lan.choose(UNION)
    assert "Photos and documents: 2" in text_of(replies)
    await lan.choose("Send")
    concern = rows(world.engine, Concern)[0]
    assert concern.enterprise == "" and concern.place_code is None
    files = rows(world.engine, Attachment)
    assert sorted((f.file_id, f.kind, f.size) for f in files) == [
        ("doc-1", "document", 100000), ("photo-1", "photo", 54321)]


async def test_fifth_photo_moves_on_to_the_visibility_step(world) -> None:
    lan = await _at_description(world, 513)
    await lan.send(DESCRIPTION)
    for number in range(1, 5):
        await lan.send_photo(f"p{number}")
    replies = await lan.send_photo("p5")
    assert "File 5 of 5 received" in text_of(replies)
    assert options_of(replies) == [*VISIBILITY, "Cancel"]
    await lan.choose(UNION)
    await lan.choose("Send")
    assert sorted(f.file_id for f in rows(world.engine, Attachment)) == [
        world.file_ref(f"p{n}") for n in range(1, 6)]


async def test_whole_dialog_by_typing_numbers_as_on_a_messenger_without_buttons(world) -> None:
    lan = world.person(514, language="en")
    await lan.send("/start")
    await lan.send("2")          # English
    await lan.send("1")          # I agree
    await lan.send("1")          # New concern (main menu)
    await lan.send("2")          # Social and unemployment insurance
    await lan.send("Công ty CP May Bắc Giang")
    await lan.send("14")         # Bắc Giang City (former)
    await lan.send("Công ty không đóng bảo hiểm xã hội cho công nhân.")
    await lan.send("1")          # Skip
    replies = await lan.send("2")  # fully anonymous
    assert "Fully anonymous" in text_of(replies)
    replies = await lan.send("1")  # Send
    concern = rows(world.engine, Concern)[0]
    assert set(codes_in(replies)) == {concern.tracking_code}
    assert (concern.category_code, concern.place_code, concern.visibility) == ("insurance", "kv_bac_giang",
                                                                              "anonymous")
    assert lan.person_row().locale == "en"


async def test_whole_dialog_by_typing_the_options_text(world) -> None:
    lan = world.person(515, language="en")
    await lan.send("/start")
    await lan.send("english")
    await lan.send("I agree")
    await lan.send("New concern")
    await lan.send("shift meals")
    await lan.send("No specific company")
    await lan.send("Quang Châu Industrial Park")
    await lan.send("Bữa ăn ca quá ít thịt, công nhân bị đói.")
    await lan.send("Skip")
    await lan.send("The union may know me (recommended)")
    replies = await lan.send("Send")
    concern = rows(world.engine, Concern)[0]
    assert codes_in(replies) == [concern.tracking_code]
    assert (concern.category_code, concern.place_code, concern.enterprise) == ("meals", "kcn_quang_chau", "")


async def test_typed_number_out_of_range_asks_again(world) -> None:
    lan = world.person(516)
    await onboard(lan, "en")
    await lan.send("/new")
    replies = await lan.send("99")
    assert "Please choose a topic from the list" in text_of(replies)
    assert "Wages and bonuses" in options_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "category"


# ---- enterprise suggestions ----------------------------------------------------------------


async def test_second_worker_typing_part_of_a_known_name_is_offered_it(world) -> None:
    first = world.person(520)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Điện tử Minh Phát")
    second = world.person(521)
    await onboard(second, "en")
    await second.send("/new")
    await second.choose("Wages and bonuses")
    replies = await second.send("dien tu MINH phat")  # no diacritics, other case, part of the name
    assert "Công ty TNHH Điện tử Minh Phát" in options_of(replies)
    assert "Keep the name as typed: “dien tu MINH phat”" in options_of(replies)
    replies = await second.choose("Công ty TNHH Điện tử Minh Phát")
    assert "Đình Trám Industrial Park" in options_of(replies)
    await second.choose("Đình Trám Industrial Park")
    await second.send(DESCRIPTION)
    await second.choose("Skip")
    await second.choose(UNION)
    await second.choose("Send")
    names = [c.enterprise for c in rows(world.engine, Concern)]
    assert names == ["Công ty TNHH Điện tử Minh Phát"] * 2
    assert len(rows(world.engine, Enterprise)) == 1


async def test_worker_may_keep_the_name_as_typed_instead_of_a_suggestion(world) -> None:
    first = world.person(522)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Minh Phát")
    second = world.person(523)
    await onboard(second, "en")
    await second.send("/new")
    await second.choose("Wages and bonuses")
    await second.send("Minh")
    replies = await second.choose("Keep the name as typed: “Minh”")
    assert "Đình Trám Industrial Park" in options_of(replies)
    await second.choose("Skip")
    await second.send(DESCRIPTION)
    await second.choose("Skip")
    replies = await second.choose(UNION)
    assert "Enterprise: Minh" in text_of(replies)


async def test_typing_the_known_name_exactly_needs_no_suggestion_step(world) -> None:
    first = world.person(524)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Minh Phát")
    second = world.person(525)
    await onboard(second, "en")
    await second.send("/new")
    await second.choose("Wages and bonuses")
    replies = await second.send("CÔNG TY TNHH MINH PHÁT")
    assert "Đình Trám Industrial Park" in options_of(replies)  # straight to the place step


async def test_enterprise_name_too_short_is_asked_again(world) -> None:
    lan = world.person(526)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    replies = await lan.send("A")
    assert "2 to 200 characters" in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "enterprise"


# ---- description ---------------------------------------------------------------------------


async def test_description_shorter_than_ten_characters_is_refused(world) -> None:
    lan = await _at_description(world, 530)
    replies = await lan.send("123456789")
    assert "too short" in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "description" and "description" not in state.data
    replies = await lan.send("1234567890")
    assert "Step 5 of 6" in text_of(replies)


async def test_description_longer_than_3000_characters_is_refused(world) -> None:
    lan = await _at_description(world, 531)
    replies = await lan.send("x" * 3001)
    assert "too long (3,001 characters)" in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "description" and "xxxx" not in state.data
    assert rows(world.engine, Concern) == []
    replies = await lan.send("y" * 3000)
    assert "Step 5 of 6" in text_of(replies)
    await lan.choose("Skip")
    await lan.choose(UNION)
    await lan.choose("Send")
    assert rows(world.engine, Concern)[0].description == "y" * 3000


async def test_voice_note_can_be_the_description(world) -> None:
    lan = await _at_description(world, 532)
    replies = await lan.send_voice("voice-77")
    assert "Voice note received" in text_of(replies)
    assert "Step 5 of 6" in text_of(replies)
    assert options_of(replies) == ["Done", "Cancel"]  # the voice note is already there
    await lan.choose("Done")
    replies = await lan.choose(UNION)
    assert "Content: (voice note)" in text_of(replies)
    assert "Voice notes: 1" in text_of(replies)
    replies = await lan.choose("Send")
    concern = rows(world.engine, Concern)[0]
    assert codes_in(replies) == [concern.tracking_code]
    assert concern.description == ""
    assert [(f.file_id, f.kind, f.size) for f in rows(world.engine, Attachment)] == [
        (world.file_ref("voice-77"), "voice", 20480)]


async def _describe_then_send(lan) -> None:  # type: ignore[no-untyped-def]
    """After a photo at step 4: the words, then Done (the photo is already there), union, Send."""
    replies = await lan.send(DESCRIPTION)
    assert options_of(replies) == ["Done", "Cancel"]  # the photo is already there
    await lan.choose("Done")
    await lan.choose(UNION)
    await lan.choose("Send")


async def test_photo_at_the_description_step_is_kept_but_words_are_still_asked(world) -> None:
    lan = await _at_description(world, 533)
    replies = await lan.send_photo("early-photo")
    assert "describe the concern" in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "description"
    await _describe_then_send(lan)
    assert [f.file_id for f in rows(world.engine, Attachment)] == [world.file_ref("early-photo")]


async def test_caption_of_a_photo_at_the_description_step_is_the_description(world) -> None:
    lan = await _at_description(world, 534)
    replies = await lan.send_photo("payslip", caption=DESCRIPTION)
    assert "Step 5 of 6" in text_of(replies)
    assert options_of(replies) == ["Done", "Cancel"]  # the photo is already there
    await lan.choose("Done")
    replies = await lan.choose(UNION)
    assert f"Content: {DESCRIPTION}" in text_of(replies)
    assert "Photos and documents: 1" in text_of(replies)
    await lan.choose("Send")
    assert rows(world.engine, Concern)[0].description == DESCRIPTION
    assert [f.file_id for f in rows(world.engine, Attachment)] == [world.file_ref("payslip")]


async def test_too_short_caption_keeps_the_photo_and_asks_for_more_words(world) -> None:
    lan = await _at_description(world, 535)
    replies = await lan.send_photo("payslip", caption="Lương")
    assert "too short" in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.step == "description"
    await _describe_then_send(lan)
    assert [f.file_id for f in rows(world.engine, Attachment)] == [world.file_ref("payslip")]


# ---- summary: edit, cancel -----------------------------------------------------------------


async def test_edit_changes_one_field_and_returns_to_the_summary(world) -> None:
    lan = world.person(540)
    await onboard(lan, "en")
    await reach_summary(lan)
    replies = await lan.choose("Edit")
    assert options_of(replies) == ["Topic", "Enterprise", "Place", "Content", "Files", "Who may know me",
                                   "Back"]
    await lan.choose("Content")
    replies = await lan.send("Công ty nợ lương tháng 8, chưa trả đồng nào.")
    assert options_of(replies) == SUMMARY  # back at the summary, not step 5
    assert "Content: Công ty nợ lương tháng 8, chưa trả đồng nào." in text_of(replies)
    assert "Công ty TNHH Minh Phát" in text_of(replies)  # the other answers are kept

    await lan.choose("Edit")
    await lan.choose("Topic")
    replies = await lan.choose("Housing and rented rooms")
    assert options_of(replies) == SUMMARY
    assert "Topic: Housing and rented rooms" in text_of(replies)

    await lan.choose("Edit")
    await lan.choose("Place")
    replies = await lan.choose("Yên Thế (former)")
    assert "Place: Yên Thế (former)" in text_of(replies)

    await lan.choose("Edit")
    await lan.choose("Enterprise")
    replies = await lan.choose("No specific company")
    assert options_of(replies) == SUMMARY
    assert "Enterprise: –" in text_of(replies)
    await lan.choose("Edit")
    await lan.choose("Enterprise")
    replies = await lan.send("Công ty TNHH Minh Phát")
    assert "Enterprise: Công ty TNHH Minh Phát" in text_of(replies)

    await lan.choose("Edit")
    replies = await lan.choose("Back")
    assert options_of(replies) == SUMMARY

    await lan.choose("Send")
    concern = rows(world.engine, Concern)[0]
    assert (concern.category_code, concern.place_code) == ("housing", "kv_yen_the")
    assert concern.description == "Công ty nợ lương tháng 8, chưa trả đồng nào."
    assert concern.enterprise == "Công ty TNHH Minh Phát"


async def test_edit_files_replaces_the_photos(world) -> None:
    lan = world.person(541)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["old-1", "old-2"])
    await lan.choose("Edit")
    await lan.choose("Files")
    await lan.send_photo("new-1")
    replies = await lan.choose("Done")
    assert "Photos and documents: 1" in text_of(replies)
    await lan.choose("Send")
    assert [f.file_id for f in rows(world.engine, Attachment)] == [world.file_ref("new-1")]


async def test_edit_visibility_to_anonymous(world) -> None:
    lan = world.person(542)
    await onboard(lan, "en")
    await reach_summary(lan)
    await lan.choose("Edit")
    await lan.choose("Who may know me")
    replies = await lan.choose(ANONYMOUS)
    assert "Fully anonymous" in text_of(replies)
    await lan.choose("Send")
    concern = rows(world.engine, Concern)[0]
    assert concern.visibility == "anonymous" and concern.author_id is None


async def test_cancel_at_the_summary_stores_nothing_and_clears_the_dialog(world) -> None:
    lan = world.person(543)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["p1"])
    replies = await lan.choose("Cancel")
    assert "Cancelled. Your concern has not been sent." in text_of(replies)
    assert options_of(replies) == MENU
    engine = world.engine
    assert rows(engine, Concern) == [] and rows(engine, Attachment) == [] and rows(engine, StatusChange) == []
    assert rows(engine, Enterprise) == []
    state = lan.dialog()
    assert state is not None and state.flow is None and state.step is None and state.data == "{}"


async def test_old_send_button_after_cancel_does_nothing(telegram_world) -> None:
    """Telegram keeps the cancelled summary's buttons on screen; pressing Send there stores nothing."""
    lan = telegram_world.person(543)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["p1"])
    await lan.choose("Cancel")
    assert rows(telegram_world.engine, Concern) == []
    replies = await lan.press_old("Send")  # the cancelled summary's button
    assert rows(telegram_world.engine, Concern) == []
    assert not codes_in(replies)


async def test_cancel_button_in_the_middle_of_the_dialog(world) -> None:
    lan = world.person(544)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    replies = await lan.choose("Cancel")
    assert "Cancelled. Your concern has not been sent." in text_of(replies)
    state = lan.dialog()
    assert state is not None and state.flow is None and state.data == "{}"
