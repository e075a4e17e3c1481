"""Tracking codes: their format, how they are recognised, what whoever holds one sees; anonymity."""

from __future__ import annotations

import pytest
from sqlmodel import select

from storage.concerns import CROCKFORD, looks_like_tracking_code, new_tracking_code, parse_tracking_code
from storage.db import new_session
from storage.models import Concern, StatusChange
from tests.worker_flow import (
    CODE,
    buttons_of,
    codes_in,
    onboard,
    person_row,
    rows,
    submit_concern,
    text_of,
)

# ---- format --------------------------------------------------------------------------------


def test_new_code_is_kn_and_two_groups_of_crockford_base32() -> None:
    codes = [new_tracking_code() for _ in range(2000)]
    for code in codes:
        assert CODE.fullmatch(code), code
        assert not set(code[3:].replace("-", "")) & set("ILOU")
    assert len(set(codes)) == len(codes)


def test_new_code_carries_40_random_bits() -> None:
    # Every one of the 8 positions takes every one of the 32 symbols: 8 x 5 = 40 bits.
    seen: list[set[str]] = [set() for _ in range(8)]
    for _ in range(3000):
        symbols = new_tracking_code()[3:].replace("-", "")
        for position, symbol in enumerate(symbols):
            seen[position].add(symbol)
    assert all(found == set(CROCKFORD) for found in seen)
    assert len(CROCKFORD) == 32 and not set(CROCKFORD) & set("ILOU")


@pytest.mark.parametrize("typed", [
    "KN-7K3M-Q9XA", "kn-7k3m-q9xa", "KN7K3MQ9XA", "kn 7k3m q9xa", "  KN - 7K3M - Q9XA  ",
    "7K3M-Q9XA", "7k3mq9xa",
])
def test_code_is_recognised_in_any_case_without_dashes_or_with_spaces(typed: str) -> None:
    assert parse_tracking_code(typed) == "KN-7K3M-Q9XA"


@pytest.mark.parametrize("typed", ["KNAB-CDEF", "knab cdef", "KNABCDEF", "KN-KNAB-CDEF", "kn knabcdef"])
def test_code_whose_symbols_begin_with_kn_is_recognised_with_or_without_prefix(typed: str) -> None:
    assert parse_tracking_code(typed) == "KN-KNAB-CDEF"


def test_letters_that_look_like_digits_are_read_as_the_digits() -> None:
    assert parse_tracking_code("KN-OOIL-1234") == "KN-0011-1234"


@pytest.mark.parametrize("typed", ["KN-ABCU-1234", "KN-ABC-1234", "KN-ABCDE-12345", "hello world",
                                   "xin chào bạn", ""])
def test_text_that_is_no_code_is_not_taken_for_one(typed: str) -> None:
    assert parse_tracking_code(typed) is None
    assert not looks_like_tracking_code(typed)


async def test_a_plain_eight_letter_word_outside_a_dialog_gets_the_hint_not_a_code_lookup(telegram) -> None:
    assert not looks_like_tracking_code("congnhan")
    lan = telegram.person(600, language_code="en")
    replies = await lan.send("congnhan")
    assert "No concern has the code" not in text_of(replies)
    assert buttons_of(replies) == ["/new", "/status", "/help"]


# ---- a code sent to the bot ----------------------------------------------------------------


async def test_sending_just_the_code_outside_a_dialog_shows_the_status(telegram) -> None:
    lan = telegram.person(601)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    for typed in (code, code.lower(), code.replace("-", ""), code.replace("-", " ").lower()):
        replies = await lan.send(typed)
        assert f"Concern {code}" in text_of(replies), typed
        assert "State: Received, waiting for the union" in text_of(replies)


async def test_status_command_with_a_code(telegram) -> None:
    lan = telegram.person(602)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    replies = await lan.send(f"/status {code.lower()}")
    assert f"Concern {code}" in text_of(replies)
    assert f"/withdraw {code}" in buttons_of(replies)


async def test_unknown_code_says_so(telegram) -> None:
    lan = telegram.person(603, language_code="en")
    replies = await lan.send("KN-2222-3333")
    assert "No concern has the code KN-2222-3333" in text_of(replies)


async def test_someone_holding_only_the_code_sees_the_state_but_not_content_files_or_author(telegram) -> None:
    lan = telegram.person(604, first_name="Thị Lan", last_name="Nguyễn")
    await onboard(lan, "en")
    secret = "Tổ trưởng Trần Văn Bình quát mắng công nhân nữ."
    code = await submit_concern(lan, description=secret, photos=["ph-1", "ph-2"])

    other = telegram.person(605, first_name="Hùng", last_name="Phạm", language_code="en")
    seen = text_of(await other.send(code))
    assert f"Concern {code}" in seen
    assert "State: Received, waiting for the union" in seen
    assert "Topic: Wages and bonuses" in seen
    assert secret not in seen and "Content" not in seen
    assert "Files attached" not in seen
    assert "Lan" not in seen and "Nguyễn" not in seen

    own = text_of(await lan.send(code))
    assert f"Content: {secret}" in own
    assert "Files attached: 2" in own


# ---- anonymous concerns --------------------------------------------------------------------


async def test_anonymous_concern_is_tied_to_nobody(telegram) -> None:
    lan = telegram.person(610)
    await onboard(lan, "en")
    await submit_concern(lan)  # one under her name, for comparison
    await submit_concern(lan, visibility="anonymous")
    engine = telegram.core.engine
    me = person_row(engine, "telegram", 610)
    with new_session(engine) as session:
        anonymous = session.exec(select(Concern).where(Concern.visibility == "anonymous")).one()
        history = list(session.exec(select(StatusChange).where(StatusChange.concern_id == anonymous.id)))
        mine = list(session.exec(select(StatusChange).where(StatusChange.actor_id == me.id)))
    assert anonymous.author_id is None
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "new", None)]
    assert all(change.concern_id != anonymous.id for change in mine)


async def test_anonymous_reply_tells_to_keep_the_code(telegram) -> None:
    lan = telegram.person(611)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.press("cat:wages")
    await lan.press("ent:none")
    await lan.press("place:")
    await lan.send("Công ty bắt làm thêm giờ quá quy định.")
    await lan.press("files:done")
    replies = await lan.press("vis:anonymous")
    assert "Fully anonymous" in text_of(replies)
    replies = await lan.press("send")
    code = rows(telegram.core.engine, Concern)[0].tracking_code
    assert set(codes_in(replies)) == {code}
    assert "Keep this code" in text_of(replies)
    assert f"/status {code}" in text_of(replies)


async def test_anonymous_concern_is_not_in_the_authors_status_list(telegram) -> None:
    lan = telegram.person(612)
    await onboard(lan, "en")
    named = await submit_concern(lan)
    hidden = await submit_concern(lan, visibility="anonymous")
    replies = await lan.send("/status")
    assert named in text_of(replies) and f"/status {named}" in buttons_of(replies)
    assert hidden not in text_of(replies) and f"/status {hidden}" not in buttons_of(replies)


async def test_anonymous_author_follows_the_concern_by_its_code_like_anyone(telegram) -> None:
    lan = telegram.person(613)
    await onboard(lan, "en")
    hidden = await submit_concern(lan, visibility="anonymous", description="Nhà trọ không có nước sạch.")
    seen = text_of(await lan.send(hidden))
    assert f"Concern {hidden}" in seen and "State:" in seen
    assert "Nhà trọ không có nước sạch." not in seen  # the store does not know it is hers
