"""Fixtures: settings on a temporary SQLite file, the core, and the channels on fake APIs."""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import locales
from bot.app import build_core, build_sender, build_telegram_application, build_zalo_channel
from bot.config import Settings
from bot.host import Host
from handlers.dispatch import Core
from tests.fake_telegram import FakeBotAPI
from tests.fake_zalo import TOKEN as ZALO_TOKEN
from tests.fake_zalo import FakeZalo


@pytest.fixture
def no_error_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The test fails if anything logged an error (a handler's failure, an apology sent)."""
    caplog.set_level(logging.ERROR)
    yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


@pytest.fixture(autouse=True)
def strict_translations(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any message shown without a translation fails the test that showed it."""
    monkeypatch.setattr(locales, "STRICT", True)


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test: a fresh SQLite file, no .env, a fake token."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{tmp_path}/kiennghi.db",
        "telegram_bot_token": "123456:TEST",
        "default_locale": "vi",
        "timezone": "Asia/Ho_Chi_Minh",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """A flood limit no scripted dialog reaches (the flood guard's tests set their own)."""
    return make_settings(tmp_path, flood_messages=1000)


@pytest.fixture
def core(settings: Settings) -> Core:
    return build_core(settings)


@pytest.fixture
def make_core(tmp_path: Path) -> Callable[..., Core]:
    """Build a core on the test's database with setting overrides (e.g. a low flood limit)."""

    def build(**overrides: Any) -> Core:
        return build_core(make_settings(tmp_path, **overrides))

    return build


@asynccontextmanager
async def open_world(tmp_path: Path, kind: str, **overrides: Any) -> AsyncIterator[Any]:
    """The bot on one channel ("telegram", "terminal" or "zalo") with setting overrides; person 1 is an admin."""
    from tests.chat import TelegramWorld, TerminalWorld, ZaloWorld

    # The fake Bot APIs keep no limits unless asked: scenarios need not wait a second per chat
    # (tests/test_delivery.py tests the sender under Telegram's limits).
    values: dict[str, Any] = {"admin_ids": f"{kind}:1", "flood_messages": 1000,
                              "telegram_messages_per_second": 10_000, "telegram_chat_messages_per_second": 10_000,
                              "zalo_bot_token": ZALO_TOKEN, "zalo_messages_per_second": 10_000,
                              "zalo_chat_messages_per_second": 10_000, "files_dir": tmp_path / "files"}
    values.update(overrides)
    settings = make_settings(tmp_path, **values)
    core = build_core(settings)
    if kind == "telegram":
        api = FakeBotAPI()
        app = build_telegram_application(settings, core, request=api, rate_limit=False)
        await app.initialize()
        chosen: Any = TelegramWorld(core, app, api)
    elif kind == "zalo":
        fake = FakeZalo()
        channel = build_zalo_channel(settings, Host(core, threads=0), transport=fake.transport())
        chosen = ZaloWorld(core, channel, fake, build_sender(settings, core, [channel]))
    else:
        chosen = TerminalWorld(core)
    try:
        yield chosen
    finally:
        await chosen.close()
        core.engine.dispose()


@pytest.fixture(params=["telegram", "terminal", "zalo"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """The bot on each channel in turn; person 1 is an admin (see tests/chat.py). A scenario marked
    `@pytest.mark.needs("language_code")` is skipped on a channel that does not offer it (World.offers)."""
    from tests.chat import TelegramWorld, TerminalWorld, ZaloWorld

    kinds = {"telegram": TelegramWorld, "terminal": TerminalWorld, "zalo": ZaloWorld}
    missing = {need for mark in request.node.iter_markers("needs") for need in mark.args} - kinds[request.param].offers
    if missing:
        pytest.skip(f"{request.param} does not offer {', '.join(sorted(missing))}")
    async with open_world(tmp_path, request.param) as chosen:
        yield chosen


@pytest.fixture
async def telegram_world(tmp_path: Path) -> AsyncIterator[Any]:
    """Telegram only, for what only Telegram has: stale buttons, redelivered updates, raw content."""
    async with open_world(tmp_path, "telegram") as chosen:
        yield chosen


# A PostgreSQL server for the tests that must run on it too (`.ci/run` starts one and sets this).
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    if not POSTGRES_URL:
        if os.environ.get("CI"):
            pytest.fail("TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests")
        pytest.skip("TEST_POSTGRES_URL is not set (see .ci/run)")
    name = f"kn_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    for attempt in range(10):
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            break
        except OperationalError:  # "template1 is being accessed by other users": another test run's CREATE
            if attempt == 9:
                raise
            time.sleep(0.5)
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store in turn: the embedded SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/kiennghi.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def bot_api() -> Iterator[Any]:
    """A fake Telegram Bot API on a loopback port, for the real `kiennghi run` and `serve` processes."""
    from tests.test_run_polling import FakeBotServer

    server = FakeBotServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()
