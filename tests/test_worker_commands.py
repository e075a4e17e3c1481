"""The worker's commands: /status, /help, /cancel, /language, and which language is spoken."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sqlmodel import select

from storage.db import new_session
from storage.models import Concern
from tests.worker_flow import (
    DESCRIPTION,
    buttons_of,
    dialog_row,
    onboard,
    person_row,
    rows,
    submit_concern,
    text_of,
)


def _backdate(engine, code: str, when: datetime) -> None:
    with new_session(engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        concern.created_at = concern.updated_at = when
        session.add(concern)
        session.commit()


# ---- /status -------------------------------------------------------------------------------


async def test_status_lists_own_concerns_newest_first_with_vietnamese_dates(telegram) -> None:
    lan = telegram.person(701)
    await onboard(lan, "vi")
    oldest = await submit_concern(lan)
    middle = await submit_concern(lan, category="housing")
    newest = await submit_concern(lan, category="meals")
    engine = telegram.core.engine
    _backdate(engine, oldest, datetime(2026, 3, 5, 2, 0, tzinfo=UTC))
    _backdate(engine, middle, datetime(2026, 8, 20, 9, 0, tzinfo=UTC))
    # 20:30 UTC on 23 November is already 24 November in Vietnam.
    _backdate(engine, newest, datetime(2026, 11, 23, 20, 30, tzinfo=UTC))

    replies = await lan.send("/status")
    text = text_of(replies)
    assert text.index(newest) < text.index(middle) < text.index(oldest)
    assert "24/11/2026" in text and "20/08/2026" in text and "05/03/2026" in text
    assert buttons_of(replies) == [f"/status {newest}", f"/status {middle}", f"/status {oldest}"]

    details = await lan.press(f"/status {middle}")
    assert middle in text_of(details) and "20/08/2026" in text_of(details)


async def test_status_list_uses_english_dates_for_english_speakers(telegram) -> None:
    lan = telegram.person(702)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    _backdate(telegram.core.engine, code, datetime(2026, 11, 23, 20, 30, tzinfo=UTC))
    text = text_of(await lan.send("/status"))
    assert "Your concerns, newest first" in text
    assert "24 Nov 2026" in text


async def test_status_without_concerns_says_so_and_offers_the_menu(telegram) -> None:
    lan = telegram.person(703)
    await onboard(lan, "en")
    replies = await lan.send("/status")
    assert "You have not sent any concerns yet" in text_of(replies)
    assert buttons_of(replies) == ["/new", "/status", "/help"]


async def test_status_shows_only_the_persons_own_concerns(telegram) -> None:
    lan = telegram.person(704)
    hoa = telegram.person(705)
    await onboard(lan, "en")
    await onboard(hoa, "en")
    mine = await submit_concern(lan)
    theirs = await submit_concern(hoa)
    text = text_of(await lan.send("/status"))
    assert mine in text and theirs not in text


# ---- /help, /cancel ------------------------------------------------------------------------


async def test_help_lists_the_worker_commands_only(telegram) -> None:
    lan = telegram.person(710)
    await onboard(lan, "en")
    replies = await lan.send("/help")
    text = text_of(replies)
    for name in ("/new", "/status", "/withdraw", "/cancel", "/language", "/forget"):
        assert name in text
    assert "/queue" not in text and "/invite" not in text and "/mine" not in text
    assert buttons_of(replies) == ["/new", "/status", "/help"]


async def test_menu_buttons_run_their_commands(telegram) -> None:
    lan = telegram.person(711)
    await onboard(lan, "en")
    replies = await lan.press("/help")
    assert "/forget" in text_of(replies)
    replies = await lan.press("/new")
    assert "Step 1 of 6" in text_of(replies)


async def test_cancel_command_mid_dialog_forgets_the_answers(telegram) -> None:
    lan = telegram.person(712)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.send("Công ty TNHH Minh Phát")
    await lan.press("place:kcn_dinh_tram")
    replies = await lan.send("/cancel")
    assert "Cancelled. Nothing was saved." in text_of(replies)
    state = dialog_row(telegram.core.engine, "telegram", 712)
    assert state.flow is None and state.step is None and state.data == "{}"
    assert rows(telegram.core.engine, Concern) == []
    # A new concern starts afresh at step 1.
    assert "Step 1 of 6" in text_of(await lan.send("/new"))


async def test_cancel_outside_a_dialog_says_there_is_nothing_to_cancel(telegram) -> None:
    lan = telegram.person(713)
    await onboard(lan, "en")
    replies = await lan.send("/cancel")
    assert "There is nothing to cancel" in text_of(replies)


async def test_cancel_typed_as_the_options_text(telegram) -> None:
    lan = telegram.person(714)
    await onboard(lan, "en")
    await lan.send("/new")
    replies = await lan.send("cancel")
    assert "Cancelled. Nothing was saved." in text_of(replies)


# ---- language ------------------------------------------------------------------------------


async def test_language_command_switches_to_english(telegram) -> None:
    lan = telegram.person(720, language_code="vi")
    await onboard(lan, "vi")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    vietnamese = text_of(await lan.press("place:"))
    assert "3.000" in vietnamese  # numbers in Vietnamese style
    await lan.send("/cancel")
    replies = await lan.send("/language")
    assert buttons_of(replies) == ["lang:vi", "lang:en"]
    replies = await lan.press("lang:en")
    assert "Language saved." in text_of(replies)
    assert [label for c in replies for label, _ in c.buttons] == ["New concern", "My concerns", "Help"]
    assert person_row(telegram.core.engine, "telegram", 720).locale == "en"
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    english = text_of(await lan.press("place:"))
    assert "Step 4 of 6. Describe your concern" in english and "3,000" in english


async def test_telegram_language_code_is_used_until_a_language_is_chosen(telegram) -> None:
    john = telegram.person(721, first_name="John", last_name="", language_code="en-GB")
    replies = await john.send("/start")
    assert replies[0].text.startswith("Welcome to kiennghi!")
    assert person_row(telegram.core.engine, "telegram", 721).locale is None
    # Still no stored choice: the notice and the steps follow the messenger's language.
    replies = await john.send("/new")
    assert "Privacy notice" in text_of(replies)
    await john.press("agree")
    await john.press("cat:wages")
    await john.press("ent:none")
    assert "3,000" in text_of(await john.press("place:"))


async def test_vietnamese_is_the_default_for_other_language_codes(telegram) -> None:
    pierre = telegram.person(722, language_code="fr")
    await pierre.send("/new")
    await pierre.press("agree")
    await pierre.press("cat:wages")
    await pierre.press("ent:none")
    assert "3.000" in text_of(await pierre.press("place:"))


async def test_stored_choice_wins_over_the_telegram_language_code(telegram) -> None:
    lan = telegram.person(723, language_code="vi")
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    assert "3,000" in text_of(await lan.press("place:"))


async def test_language_change_keeps_the_concerns(telegram) -> None:
    lan = telegram.person(724)
    await onboard(lan, "en")
    code = await submit_concern(lan, description=DESCRIPTION)
    await lan.send("/language")
    await lan.press("lang:vi")
    assert code in text_of(await lan.send("/status"))


def test_dates_follow_the_locale_and_time_zone(core) -> None:
    moment = datetime(2026, 11, 23, 20, 30, tzinfo=UTC)
    assert core.catalogs.get("vi").date(moment) == "24/11/2026"
    assert core.catalogs.get("en").date(moment) == "24 Nov 2026"
    assert re.fullmatch(r"03:30 24/11/2026", core.catalogs.get("vi").datetime(moment))
