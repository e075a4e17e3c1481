"""Tracking codes: their format, how they are recognised, what whoever holds one sees; anonymity."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from storage.concerns import CROCKFORD, looks_like_tracking_code, new_tracking_code, parse_tracking_code
from storage.db import new_session
from storage.models import Concern, StatusChange
from tests.chat import CODE, codes_in, options_of, text_of
from tests.flows import ANONYMOUS, MENU, onboard, rows, submit_concern

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


@pytest.mark.needs("language_code")
async def test_a_plain_eight_letter_word_outside_a_dialog_gets_the_hint_not_a_code_lookup(world: Any) -> None:
    assert not looks_like_tracking_code("congnhan")
    lan = world.person(600, language="en")
    replies = await lan.send("congnhan")
    assert "No concern has the code" not in text_of(replies)
    assert options_of(replies) == MENU


# ---- a code sent to the bot ----------------------------------------------------------------


async def test_sending_just_the_code_outside_a_dialog_shows_the_status(world: Any) -> None:
    lan = world.person(601)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    for typed in (code, code.lower(), code.replace("-", ""), code.replace("-", " ").lower()):
        replies = await lan.send(typed)
        assert f"Concern {code}" in text_of(replies), typed
        assert "Status: Received, waiting for the union" in text_of(replies)


async def test_status_command_with_a_code(world: Any) -> None:
    lan = world.person(602)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    replies = await lan.send(f"/status {code.lower()}")
    assert f"Concern {code}" in text_of(replies)
    assert "Withdraw" in options_of(replies)
    confirm = await lan.choose("Withdraw")  # the choice is /withdraw <code>
    assert f"Withdraw {code}?" in text_of(confirm)


@pytest.mark.needs("language_code")
async def test_unknown_code_says_so(world: Any) -> None:
    lan = world.person(603, language="en")
    replies = await lan.send("KN-2222-3333")
    assert "No concern has the code KN-2222-3333" in text_of(replies)


@pytest.mark.needs("language_code")
async def test_someone_holding_only_the_code_sees_the_state_but_not_content_files_or_author(world: Any) -> None:
    lan = world.person(604, name="Thị Lan Nguyễn")
    await onboard(lan, "en")
    secret = "Tổ trưởng Trần Văn Bình quát mắng công nhân nữ."
    code = await submit_concern(lan, description=secret, photos=["ph-1", "ph-2"])

    other = world.person(605, name="Hùng Phạm", language="en")
    shown = await other.send(code)
    seen = text_of(shown)
    assert f"Concern {code}" in seen
    assert "Status: Received, waiting for the union" in seen
    assert "Topic: Wages and bonuses" in seen
    assert secret not in seen and "Content" not in seen
    assert "Files attached" not in seen and not any(s.file for s in shown)
    assert "Lan" not in seen and "Nguyễn" not in seen

    own = text_of(await lan.send(code))
    assert f"Content: {secret}" in own
    assert "Files attached: 2" in own


# ---- anonymous concerns --------------------------------------------------------------------


async def test_anonymous_concern_is_tied_to_nobody(world: Any) -> None:
    lan = world.person(610)
    await onboard(lan, "en")
    await submit_concern(lan)  # one under her name, for comparison
    await submit_concern(lan, anonymous=True)
    me = lan.person_row()
    with new_session(world.engine) as session:
        anonymous = session.exec(select(Concern).where(Concern.visibility == "anonymous")).one()
        history = list(session.exec(select(StatusChange).where(StatusChange.concern_id == anonymous.id)))
        mine = list(session.exec(select(StatusChange).where(StatusChange.actor_id == me.id)))
    assert anonymous.author_id is None
    assert [(h.from_status, h.to_status, h.actor_id) for h in history] == [(None, "new", None)]
    assert all(change.concern_id != anonymous.id for change in mine)


async def test_anonymous_reply_tells_to_keep_the_code(world: Any) -> None:
    lan = world.person(611)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.choose("No specific company")
    await lan.choose("Skip")  # no place
    await lan.send("Công ty bắt làm thêm giờ quá quy định.")
    await lan.choose("Skip")  # no files
    replies = await lan.choose(ANONYMOUS)
    assert "Fully anonymous" in text_of(replies)
    replies = await lan.choose("Send")
    code = rows(world.engine, Concern)[0].tracking_code
    assert set(codes_in(replies)) == {code}
    assert "Keep this code" in text_of(replies)
    assert f"just send the code {code} here" in text_of(replies)  # review A16: no command to learn


async def test_anonymous_concern_is_not_in_the_authors_status_list(world: Any) -> None:
    lan = world.person(612)
    await onboard(lan, "en")
    named = await submit_concern(lan)
    hidden = await submit_concern(lan, anonymous=True)
    replies = await lan.send("/status")
    assert named in text_of(replies) and named in options_of(replies)  # a choice opening /status <code>
    assert hidden not in text_of(replies) and hidden not in options_of(replies)
    opened = await lan.choose(named)
    assert f"Concern {named}" in text_of(opened)


async def test_anonymous_author_follows_the_concern_by_its_code_like_anyone(world: Any) -> None:
    lan = world.person(613)
    await onboard(lan, "en")
    hidden = await submit_concern(lan, anonymous=True, description="Nhà trọ không có nước sạch.")
    seen = text_of(await lan.send(hidden))
    assert f"Concern {hidden}" in seen and "Status:" in seen
    assert "Nhà trọ không có nước sạch." not in seen  # the store does not know it is hers
