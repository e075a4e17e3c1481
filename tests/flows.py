"""Common walks through the bot, written once for every channel (see tests/chat.py).

Choices are named by the label a person reads. The helpers speak English unless told otherwise;
labels of reference data are passed as they appear (e.g. "Wages and bonuses").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from storage.db import new_session
from storage.models import OutboxMessage, Person
from tests.chat import Chat, Screen, codes_in, text_of

DESCRIPTION = "Công ty nợ lương tháng 6 và tháng 7 của công nhân."
LANGUAGE = {"vi": "Tiếng Việt", "en": "English"}
AGREE = {"vi": "Tôi đồng ý", "en": "I agree"}
UNION = "The union may know me (recommended)"
ANONYMOUS = "Fully anonymous"
MENU = ["New concern", "My concerns", "Help"]
MENU_VI = ["Kiến nghị mới", "Kiến nghị của tôi", "Hướng dẫn"]

Row = TypeVar("Row", bound=SQLModel)


def rows(engine: Engine, model: type[Row]) -> list[Row]:
    """Every stored row of a table, read on a fresh session (what another process would see)."""
    with new_session(engine) as session:
        return list(session.exec(select(model)))


def outbox_row(engine: Engine, message_id: int) -> OutboxMessage:
    """An outbox message as stored."""
    with new_session(engine) as session:
        message = session.get(OutboxMessage, message_id)
        assert message is not None
        return message


def person_row(engine: Engine, messenger: str, external_id: str | int) -> Person:
    """A person as stored, by messenger account."""
    with new_session(engine) as session:
        return session.exec(select(Person).where(
            Person.messenger == messenger, Person.external_id == str(external_id))).one()


async def onboard(chat: Chat, language: str = "en") -> list[Screen]:
    """/start, choose a language, accept the privacy notice (workers only); the last replies."""
    await chat.send("/start")
    replies = await chat.choose(LANGUAGE[language])
    if AGREE[language] not in chat.last_options():  # staff are not shown the workers' privacy notice
        return replies
    return await chat.choose(AGREE[language])


async def reach_summary(
    chat: Chat, *, category: str = "Wages and bonuses", enterprise: str | None = "Công ty TNHH Minh Phát",
    place: str | None = "Đình Trám Industrial Park", description: str = DESCRIPTION,
    photos: Sequence[str] = (), anonymous: bool = False,
) -> list[Screen]:
    """/new and answer every step (English labels); returns what the summary step sent."""
    await chat.send("/new")
    await chat.choose(category)
    if enterprise is None:
        await chat.choose("No specific company")
    else:
        await chat.send(enterprise)
    await chat.choose(place or "Skip")
    await chat.send(description)
    for file_id in photos:
        await chat.send_photo(file_id)
    if not photos:
        await chat.choose("Skip")
    elif len(photos) < 5:
        await chat.choose("Done")
    return await chat.choose(ANONYMOUS if anonymous else UNION)


async def submit_concern(chat: Chat, **answers: object) -> str:
    """Raise a whole concern; its tracking code as shown to the person."""
    await reach_summary(chat, **answers)  # type: ignore[arg-type]
    replies = await chat.choose("Send")
    codes = codes_in(replies)
    assert codes, text_of(replies)
    return codes[0]
