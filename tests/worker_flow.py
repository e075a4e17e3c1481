"""Helpers for the worker-side tests: walk a Telegram person through the dialog, read the store."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, select

from bot.app import build_telegram_application
from handlers.dispatch import Core
from storage.db import new_session
from storage.models import DialogState, Person
from tests.conftest import TelegramHarness
from tests.fake_telegram import Call, FakeBotAPI, TelegramPerson

# KN- then 2 x 4 Crockford base32 symbols (no I, L, O, U).
CODE = re.compile(r"KN-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
DESCRIPTION = "Công ty nợ lương tháng 6 và tháng 7 của công nhân."

Row = TypeVar("Row", bound=SQLModel)


@asynccontextmanager
async def telegram_app(core: Core) -> AsyncIterator[TelegramHarness]:
    """The real Application on a fake Bot API, for a core built with special settings."""
    api = FakeBotAPI()
    app = build_telegram_application(core.settings, core, request=api, rate_limit=False)
    await app.initialize()
    try:
        yield TelegramHarness(app, api, core)
    finally:
        await app.shutdown()
        core.engine.dispose()


def rows(engine: Engine, model: type[Row]) -> list[Row]:
    """Every stored row of a table, read on a fresh session (what another process would see)."""
    with new_session(engine) as session:
        return list(session.exec(select(model)))


def person_row(engine: Engine, messenger: str, external_id: str | int) -> Person:
    with new_session(engine) as session:
        return session.exec(select(Person).where(
            Person.messenger == messenger, Person.external_id == str(external_id))).one()


def dialog_row(engine: Engine, messenger: str, chat_id: str | int) -> DialogState | None:
    with new_session(engine) as session:
        return session.get(DialogState, (messenger, str(chat_id)))


def text_of(calls: Sequence[Call]) -> str:
    """Everything the bot wrote in these calls, one message a paragraph."""
    return "\n\n".join(c.text for c in calls)


def buttons_of(calls: Sequence[Call]) -> list[str]:
    """The callback data of every button in these calls."""
    return [data for c in calls for _, data in c.buttons]


def codes_in(calls: Sequence[Call]) -> list[str]:
    return CODE.findall(text_of(calls))


async def onboard(person: TelegramPerson, language: str = "en") -> list[Call]:
    """/start, choose a language, accept the privacy notice."""
    await person.send("/start")
    await person.press(f"lang:{language}")
    return await person.press("agree")


async def reach_summary(
    person: TelegramPerson, *, category: str = "wages", enterprise: str | None = "Công ty TNHH Minh Phát",
    place: str = "kcn_dinh_tram", description: str = DESCRIPTION, photos: Sequence[str] = (),
    visibility: str = "union",
) -> list[Call]:
    """/new and answer every step with buttons; returns what the summary step sent."""
    await person.send("/new")
    await person.press(f"cat:{category}")
    if enterprise is None:
        await person.press("ent:none")
    else:
        await person.send(enterprise)
    await person.press(f"place:{place}")
    await person.send(description)
    for file_id in photos:
        await person.send_photo(file_id)
    if len(photos) < 5:
        await person.press("files:done")
    return await person.press(f"vis:{visibility}")


async def submit_concern(person: TelegramPerson, **answers: Any) -> str:
    """Raise a whole concern through the buttons; its tracking code as shown to the person."""
    await reach_summary(person, **answers)
    replies = await person.press("send")
    codes = codes_in(replies)
    assert codes, text_of(replies)
    return codes[0]
