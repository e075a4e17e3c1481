"""The worker's dialog on Telegram: welcome, privacy notice, raising a concern step by step."""

from __future__ import annotations

from sqlmodel import select

from storage.db import new_session
from storage.models import Attachment, Concern, Enterprise, StatusChange
from tests.worker_flow import (
    DESCRIPTION,
    buttons_of,
    codes_in,
    dialog_row,
    onboard,
    person_row,
    reach_summary,
    rows,
    submit_concern,
    text_of,
)

# ---- /start, language, privacy notice ------------------------------------------------------


async def test_first_start_welcomes_and_asks_the_language(telegram) -> None:
    lan = telegram.person(501)
    replies = await lan.send("/start")
    assert "kiennghi" in replies[0].text
    assert buttons_of(replies) == ["lang:vi", "lang:en"]


async def test_privacy_notice_names_decree_and_forget_then_consent_is_stored(telegram) -> None:
    lan = telegram.person(502)
    await lan.send("/start")
    notice = await lan.press("lang:vi")
    assert "13/2023/NĐ-CP" in text_of(notice)
    assert "/forget" in text_of(notice)
    assert buttons_of(notice) == ["agree", "decline"]
    assert person_row(telegram.core.engine, "telegram", 502).consent_at is None

    replies = await lan.press("agree")
    person = person_row(telegram.core.engine, "telegram", 502)
    assert person.locale == "vi"
    assert person.consent_at is not None
    assert buttons_of(replies) == ["/new", "/status", "/help"]


async def test_declining_the_notice_stores_no_consent_and_new_asks_again(telegram) -> None:
    lan = telegram.person(503, language_code="en")
    await lan.send("/start")
    await lan.press("lang:en")
    replies = await lan.press("decline")
    assert "Without your agreement" in text_of(replies)
    assert person_row(telegram.core.engine, "telegram", 503).consent_at is None
    replies = await lan.send("/new")
    assert "13/2023/NĐ-CP" in text_of(replies)
    assert buttons_of(replies) == ["agree", "decline"]


async def test_new_before_start_shows_the_notice_then_goes_straight_to_the_first_step(telegram) -> None:
    lan = telegram.person(504, language_code="en")
    replies = await lan.send("/new")
    assert "Privacy notice" in text_of(replies)
    replies = await lan.press("agree")
    assert "Step 1 of 6" in text_of(replies)
    assert "cat:wages" in buttons_of(replies)


async def test_second_start_does_not_ask_the_language_again(telegram) -> None:
    lan = telegram.person(505)
    await onboard(lan, "en")
    replies = await lan.send("/start")
    assert "lang:vi" not in buttons_of(replies)
    assert buttons_of(replies) == ["/new", "/status", "/help"]


async def test_start_deep_link_with_tracking_code_opens_the_concern(telegram) -> None:
    lan = telegram.person(506)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    stranger = telegram.person(507, language_code="en")
    replies = await stranger.send(f"/start {code}")
    assert f"Concern {code}" in text_of(replies)
    assert "Received, waiting for the union" in text_of(replies)
    assert "lang:vi" not in buttons_of(replies)  # no welcome: straight to the concern


# ---- the whole dialog ----------------------------------------------------------------------


async def test_each_step_offers_its_choices_as_buttons(telegram) -> None:
    lan = telegram.person(510)
    await onboard(lan, "en")
    replies = await lan.send("/new")
    categories = buttons_of(replies)
    assert len(categories) == 13 + 1 and categories[0] == "cat:wages" and categories[-1] == "cancel"
    replies = await lan.press("cat:hours")
    assert buttons_of(replies) == ["ent:none", "cancel"]
    replies = await lan.send("Công ty TNHH Minh Phát")
    places = buttons_of(replies)
    assert len(places) == 8 + 10 + 1 and places[0] == "place:kcn_dinh_tram" and places[-1] == "place:"
    replies = await lan.press("place:hiep_hoa")
    assert "3,000" in text_of(replies)  # the limit, formatted for English
    assert buttons_of(replies) == ["cancel"]
    replies = await lan.send(DESCRIPTION)
    assert buttons_of(replies) == ["files:done"]
    replies = await lan.press("files:done")
    assert buttons_of(replies) == ["vis:union", "vis:anonymous"]
    replies = await lan.press("vis:union")
    assert buttons_of(replies) == ["send", "edit", "cancel"]
    summary = text_of(replies)
    for shown in ("Working hours and overtime", "Công ty TNHH Minh Phát", "Hiệp Hòa District", DESCRIPTION,
                  "The union may see your name"):
        assert shown in summary


async def test_sending_stores_concern_attachments_and_history_before_the_code_is_shown(telegram) -> None:
    lan = telegram.person(511)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["photo-a"], category="safety", place="tp_bac_giang")
    replies = await lan.press("send")
    codes = codes_in(replies)
    assert len(codes) == 1
    engine = telegram.core.engine
    author = person_row(engine, "telegram", 511)
    with new_session(engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == codes[0])).one()
        files = list(session.exec(select(Attachment).where(Attachment.concern_id == concern.id)))
        history = list(session.exec(select(StatusChange).where(StatusChange.concern_id == concern.id)))
    assert (concern.author_id, concern.visibility, concern.status) == (author.id, "union", "new")
    assert (concern.category_code, concern.place_code) == ("safety", "tp_bac_giang")
    assert concern.enterprise == "Công ty TNHH Minh Phát"
    assert concern.description == DESCRIPTION
    assert [(f.file_id, f.kind, f.size, f.messenger) for f in files] == [("photo-a", "photo", 54321, "telegram")]
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "new", author.id)]
    state = dialog_row(engine, "telegram", 511)
    assert state is not None and state.flow is None and state.data == "{}"
    assert buttons_of(replies)[-3:] == ["/new", "/status", "/help"]


async def test_photos_and_documents_are_stored_with_file_id_kind_and_size(telegram) -> None:
    lan = telegram.person(512)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    await lan.press("place:")
    await lan.send(DESCRIPTION)
    replies = await lan.send_photo("photo-1")
    assert "File 1 of 5 received" in text_of(replies)
    assert buttons_of(replies) == ["files:done"]
    replies = await lan.send_document("doc-1")
    assert "File 2 of 5 received" in text_of(replies)
    await lan.press("files:done")
    replies = await lan.press("vis:union")
    assert "Photos and documents: 2" in text_of(replies)
    await lan.press("send")
    concern = rows(telegram.core.engine, Concern)[0]
    assert concern.enterprise == "" and concern.place_code is None
    files = rows(telegram.core.engine, Attachment)
    assert sorted((f.file_id, f.kind, f.size) for f in files) == [
        ("doc-1", "document", 100000), ("photo-1", "photo", 54321)]


async def test_fifth_photo_moves_on_to_the_visibility_step(telegram) -> None:
    lan = telegram.person(513)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    await lan.press("place:")
    await lan.send(DESCRIPTION)
    for number in range(1, 5):
        await lan.send_photo(f"p{number}")
    replies = await lan.send_photo("p5")
    assert "File 5 of 5 received" in text_of(replies)
    assert buttons_of(replies) == ["vis:union", "vis:anonymous"]
    await lan.press("vis:union")
    await lan.press("send")
    assert sorted(f.file_id for f in rows(telegram.core.engine, Attachment)) == ["p1", "p2", "p3", "p4", "p5"]


async def test_whole_dialog_by_typing_numbers_as_on_a_messenger_without_buttons(telegram) -> None:
    lan = telegram.person(514, language_code="en")
    await lan.send("/start")
    await lan.send("2")          # English
    await lan.send("1")          # I agree
    await lan.send("1")          # New concern (main menu)
    await lan.send("2")          # Social and unemployment insurance
    await lan.send("Công ty CP May Bắc Giang")
    await lan.send("9")          # Bắc Giang City
    await lan.send("Công ty không đóng bảo hiểm xã hội cho công nhân.")
    await lan.send("1")          # Skip
    replies = await lan.send("2")  # fully anonymous
    assert "Fully anonymous" in text_of(replies)
    replies = await lan.send("1")  # Send
    concern = rows(telegram.core.engine, Concern)[0]
    assert set(codes_in(replies)) == {concern.tracking_code}
    assert (concern.category_code, concern.place_code, concern.visibility) == ("insurance", "tp_bac_giang",
                                                                              "anonymous")
    assert person_row(telegram.core.engine, "telegram", 514).locale == "en"


async def test_whole_dialog_by_typing_the_options_text(telegram) -> None:
    lan = telegram.person(515, language_code="en")
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
    concern = rows(telegram.core.engine, Concern)[0]
    assert codes_in(replies) == [concern.tracking_code]
    assert (concern.category_code, concern.place_code, concern.enterprise) == ("meals", "kcn_quang_chau", "")


async def test_typed_number_out_of_range_asks_again(telegram) -> None:
    lan = telegram.person(516)
    await onboard(lan, "en")
    await lan.send("/new")
    replies = await lan.send("99")
    assert "Please choose a topic from the list" in text_of(replies)
    assert "cat:wages" in buttons_of(replies)
    assert dialog_row(telegram.core.engine, "telegram", 516).step == "category"


# ---- enterprise suggestions ----------------------------------------------------------------


async def test_second_worker_typing_part_of_a_known_name_is_offered_it(telegram) -> None:
    first = telegram.person(520)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Điện tử Minh Phát")
    second = telegram.person(521)
    await onboard(second, "en")
    await second.send("/new")
    await second.press("cat:wages")
    replies = await second.send("dien tu MINH phat")  # no diacritics, other case, part of the name
    assert "Công ty TNHH Điện tử Minh Phát" in [label for c in replies for label, _ in c.buttons]
    assert "ent:typed" in buttons_of(replies)
    replies = await second.press("Công ty TNHH Điện tử Minh Phát")
    assert "place:kcn_dinh_tram" in buttons_of(replies)
    await second.press("place:kcn_dinh_tram")
    await second.send(DESCRIPTION)
    await second.press("files:done")
    await second.press("vis:union")
    await second.press("send")
    names = [c.enterprise for c in rows(telegram.core.engine, Concern)]
    assert names == ["Công ty TNHH Điện tử Minh Phát"] * 2
    assert len(rows(telegram.core.engine, Enterprise)) == 1


async def test_worker_may_keep_the_name_as_typed_instead_of_a_suggestion(telegram) -> None:
    first = telegram.person(522)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Minh Phát")
    second = telegram.person(523)
    await onboard(second, "en")
    await second.send("/new")
    await second.press("cat:wages")
    await second.send("Minh")
    replies = await second.press("ent:typed")
    assert "place:kcn_dinh_tram" in buttons_of(replies)
    await second.press("place:")
    await second.send(DESCRIPTION)
    await second.press("files:done")
    replies = await second.press("vis:union")
    assert "Enterprise: Minh" in text_of(replies)


async def test_typing_the_known_name_exactly_needs_no_suggestion_step(telegram) -> None:
    first = telegram.person(524)
    await onboard(first, "en")
    await submit_concern(first, enterprise="Công ty TNHH Minh Phát")
    second = telegram.person(525)
    await onboard(second, "en")
    await second.send("/new")
    await second.press("cat:wages")
    replies = await second.send("CÔNG TY TNHH MINH PHÁT")
    assert "place:kcn_dinh_tram" in buttons_of(replies)  # straight to the place step


async def test_enterprise_name_too_short_is_asked_again(telegram) -> None:
    lan = telegram.person(526)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    replies = await lan.send("A")
    assert "2 to 200 characters" in text_of(replies)
    assert dialog_row(telegram.core.engine, "telegram", 526).step == "enterprise"


# ---- description ---------------------------------------------------------------------------


async def _at_description(telegram, user_id: int):
    lan = telegram.person(user_id)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    await lan.press("place:")
    return lan


async def test_description_shorter_than_ten_characters_is_refused(telegram) -> None:
    lan = await _at_description(telegram, 530)
    replies = await lan.send("123456789")
    assert "too short" in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 530)
    assert state.step == "description" and "description" not in state.data
    replies = await lan.send("1234567890")
    assert "Step 5 of 6" in text_of(replies)


async def test_description_longer_than_3000_characters_is_refused(telegram) -> None:
    lan = await _at_description(telegram, 531)
    replies = await lan.send("x" * 3001)
    assert "too long (3,001 characters)" in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 531)
    assert state.step == "description" and "xxxx" not in state.data
    assert rows(telegram.core.engine, Concern) == []
    replies = await lan.send("y" * 3000)
    assert "Step 5 of 6" in text_of(replies)
    await lan.press("files:done")
    await lan.press("vis:union")
    await lan.press("send")
    assert rows(telegram.core.engine, Concern)[0].description == "y" * 3000


async def test_voice_note_can_be_the_description(telegram) -> None:
    lan = await _at_description(telegram, 532)
    replies = await lan.send_voice("voice-77")
    assert "Voice note received" in text_of(replies)
    assert "Step 5 of 6" in text_of(replies)
    await lan.press("files:done")
    replies = await lan.press("vis:union")
    assert "Content: (voice note)" in text_of(replies)
    assert "Voice notes: 1" in text_of(replies)
    replies = await lan.press("send")
    concern = rows(telegram.core.engine, Concern)[0]
    assert codes_in(replies) == [concern.tracking_code]
    assert concern.description == ""
    assert [(f.file_id, f.kind, f.size) for f in rows(telegram.core.engine, Attachment)] == [
        ("voice-77", "voice", 20480)]


async def test_photo_at_the_description_step_is_kept_but_words_are_still_asked(telegram) -> None:
    lan = await _at_description(telegram, 533)
    replies = await lan.send_photo("early-photo")
    assert "describe the concern" in text_of(replies)
    assert dialog_row(telegram.core.engine, "telegram", 533).step == "description"
    await lan.send(DESCRIPTION)
    await lan.press("files:done")
    await lan.press("vis:union")
    await lan.press("send")
    assert [f.file_id for f in rows(telegram.core.engine, Attachment)] == ["early-photo"]


async def test_caption_of_a_photo_at_the_description_step_is_the_description(telegram) -> None:
    lan = await _at_description(telegram, 534)
    replies = await lan.send_photo("payslip", caption=DESCRIPTION)
    assert "Step 5 of 6" in text_of(replies)
    await lan.press("files:done")
    replies = await lan.press("vis:union")
    assert f"Content: {DESCRIPTION}" in text_of(replies)
    assert "Photos and documents: 1" in text_of(replies)
    await lan.press("send")
    assert rows(telegram.core.engine, Concern)[0].description == DESCRIPTION
    assert [f.file_id for f in rows(telegram.core.engine, Attachment)] == ["payslip"]


async def test_too_short_caption_keeps_the_photo_and_asks_for_more_words(telegram) -> None:
    lan = await _at_description(telegram, 535)
    replies = await lan.send_photo("payslip", caption="Lương")
    assert "too short" in text_of(replies)
    assert dialog_row(telegram.core.engine, "telegram", 535).step == "description"
    await lan.send(DESCRIPTION)
    await lan.press("files:done")
    await lan.press("vis:union")
    await lan.press("send")
    assert [f.file_id for f in rows(telegram.core.engine, Attachment)] == ["payslip"]


# ---- summary: edit, cancel -----------------------------------------------------------------


async def test_edit_changes_one_field_and_returns_to_the_summary(telegram) -> None:
    lan = telegram.person(540)
    await onboard(lan, "en")
    await reach_summary(lan)
    replies = await lan.press("edit")
    assert buttons_of(replies) == ["edit:category", "edit:enterprise", "edit:place", "edit:description",
                                   "edit:attachments", "edit:visibility", "edit:back"]
    await lan.press("edit:description")
    replies = await lan.send("Công ty nợ lương tháng 8, chưa trả đồng nào.")
    assert buttons_of(replies) == ["send", "edit", "cancel"]  # back at the summary, not step 5
    assert "Content: Công ty nợ lương tháng 8, chưa trả đồng nào." in text_of(replies)
    assert "Công ty TNHH Minh Phát" in text_of(replies)  # the other answers are kept

    await lan.press("edit")
    await lan.press("edit:category")
    replies = await lan.press("cat:housing")
    assert buttons_of(replies) == ["send", "edit", "cancel"]
    assert "Topic: Housing and rented rooms" in text_of(replies)

    await lan.press("edit")
    await lan.press("edit:place")
    replies = await lan.press("place:yen_the")
    assert "Place: Yên Thế District" in text_of(replies)

    await lan.press("edit")
    await lan.press("edit:enterprise")
    replies = await lan.press("ent:none")
    assert buttons_of(replies) == ["send", "edit", "cancel"]
    assert "Enterprise: –" in text_of(replies)
    await lan.press("edit")
    await lan.press("edit:enterprise")
    replies = await lan.send("Công ty TNHH Minh Phát")
    assert "Enterprise: Công ty TNHH Minh Phát" in text_of(replies)

    await lan.press("edit")
    replies = await lan.press("edit:back")
    assert buttons_of(replies) == ["send", "edit", "cancel"]

    await lan.press("send")
    concern = rows(telegram.core.engine, Concern)[0]
    assert (concern.category_code, concern.place_code) == ("housing", "yen_the")
    assert concern.description == "Công ty nợ lương tháng 8, chưa trả đồng nào."
    assert concern.enterprise == "Công ty TNHH Minh Phát"


async def test_edit_files_replaces_the_photos(telegram) -> None:
    lan = telegram.person(541)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["old-1", "old-2"])
    await lan.press("edit")
    await lan.press("edit:attachments")
    await lan.send_photo("new-1")
    replies = await lan.press("files:done")
    assert "Photos and documents: 1" in text_of(replies)
    await lan.press("send")
    assert [f.file_id for f in rows(telegram.core.engine, Attachment)] == ["new-1"]


async def test_edit_visibility_to_anonymous(telegram) -> None:
    lan = telegram.person(542)
    await onboard(lan, "en")
    await reach_summary(lan)
    await lan.press("edit")
    await lan.press("edit:visibility")
    replies = await lan.press("vis:anonymous")
    assert "Fully anonymous" in text_of(replies)
    await lan.press("send")
    concern = rows(telegram.core.engine, Concern)[0]
    assert concern.visibility == "anonymous" and concern.author_id is None


async def test_cancel_at_the_summary_stores_nothing_and_clears_the_dialog(telegram) -> None:
    lan = telegram.person(543)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["p1"])
    replies = await lan.press("cancel")
    assert "Cancelled. Nothing was saved." in text_of(replies)
    assert buttons_of(replies) == ["/new", "/status", "/help"]
    engine = telegram.core.engine
    assert rows(engine, Concern) == [] and rows(engine, Attachment) == [] and rows(engine, StatusChange) == []
    assert rows(engine, Enterprise) == []
    state = dialog_row(engine, "telegram", 543)
    assert state.flow is None and state.step is None and state.data == "{}"
    # The old summary's Send button does nothing now.
    replies = await lan.press_data("send")
    assert rows(engine, Concern) == []
    assert not codes_in(replies)


async def test_cancel_button_in_the_middle_of_the_dialog(telegram) -> None:
    lan = telegram.person(544)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    replies = await lan.press("cancel")
    assert "Cancelled. Nothing was saved." in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 544)
    assert state.flow is None and state.data == "{}"
