"""End to end: the real `kiennghi run` with only ZALO_BOT_TOKEN, polling a fake Zalo Bot API on loopback."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.fake_zalo import TOKEN, FakeZaloServer, text_event
from tests.test_run_polling import LOGS, output_of, stop_cleanly, wait_for

WORKER = 8801


@pytest.fixture
def zalo_api() -> Iterator[FakeZaloServer]:
    server = FakeZaloServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def start_bot(server: FakeZaloServer, tmp_path: Path, database: Path, **more: str) -> subprocess.Popen[str]:
    """`kiennghi run` in a child process with Zalo only (or `more` settings), on the fake and a SQLite file."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(("TELEGRAM_", "ZALO_", "DATABASE_")) and "PROXY" not in key.upper()}
    env.update(ZALO_BOT_TOKEN=TOKEN, ZALO_BASE_URL=server.base_url, DATABASE_URL=f"sqlite:///{database}",
               FILES_DIR=str(tmp_path / "files"), NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1",
               OUTBOX_INTERVAL_SECONDS="0.2", **more)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    log = open(tmp_path / f"bot-{time.monotonic_ns()}.log", "w+", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True)
    LOGS[process.pid] = log
    return process


def sent_to(server: FakeZaloServer, needle: str) -> Callable[[], list[str]]:
    def find() -> list[str]:
        return [text for text in server.fake.texts(WORKER) if needle in text]
    return find


def test_run_with_zalo_only_answers_survives_a_kill_and_continues(zalo_api: FakeZaloServer, tmp_path: Path) -> None:
    database = tmp_path / "kn.db"
    zalo_api.fake.queue(text_event(WORKER, "/start", display_name="Lan Nguyễn"))
    first = start_bot(zalo_api, tmp_path, database)
    try:
        welcome = wait_for(sent_to(zalo_api, "Bắc Ninh"), 20, "the welcome", first)
        assert "  1. Tiếng Việt" in welcome[0] and "  2. English" in welcome[0]
        assert any(c.method == "deleteWebhook" for c in zalo_api.fake.requests)  # polling, not a webhook
    finally:
        first.kill()  # SIGKILL: no clean stop
        first.wait(timeout=10)

    second = start_bot(zalo_api, tmp_path, database)
    try:
        # Once the new process polls (and the dead one's open poll has expired at the fake, which would
        # otherwise hand the update to nobody, as Zalo would), the worker goes on.
        wait_for(lambda: sum(c.method == "deleteWebhook" for c in zalo_api.fake.requests) == 2, 20,
                 "the restarted bot to poll", second)
        time.sleep(zalo_api.fake.idle_seconds + 0.2)
        zalo_api.fake.queue(text_event(WORKER, "2"))  # English, typed under the welcome shown before the kill
        wait_for(sent_to(zalo_api, "Decree 13/2023"), 20, "the privacy notice", second)
        zalo_api.fake.queue(text_event(WORKER, "1"))  # I agree
        wait_for(sent_to(zalo_api, "New concern"), 20, "the menu", second)
        log = stop_cleanly(second)
        assert TOKEN.split(":")[1] not in log, log
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)

    with sqlite3.connect(database) as db:
        people = db.execute("SELECT messenger, external_id, display_name, locale, consent_at IS NOT NULL "
                            "FROM person").fetchall()
    assert people == [("zalo", str(WORKER), "Lan Nguyễn", "en", 1)]
    assert all(len(text) <= 2000 for text in zalo_api.fake.texts(WORKER))


def test_run_with_telegram_and_zalo_serves_both_in_one_process(zalo_api: FakeZaloServer, tmp_path: Path) -> None:
    from tests.test_run_polling import TOKEN as TELEGRAM_TOKEN
    from tests.test_run_polling import FakeBotServer, _text_update, sent_to_worker_id

    telegram = FakeBotServer()
    telegram.start()
    database = tmp_path / "kn.db"
    telegram.queue(_text_update(1, 7701, "/start"))
    zalo_api.fake.queue(text_event(WORKER, "/start"))
    process = start_bot(zalo_api, tmp_path, database, TELEGRAM_BOT_TOKEN=TELEGRAM_TOKEN,
                        TELEGRAM_BASE_URL=telegram.base_url)
    try:
        wait_for(sent_to(zalo_api, "Bắc Ninh"), 20, "the welcome on Zalo", process)
        wait_for(sent_to_worker_id(telegram, 7701, "Bắc Ninh"), 20, "the welcome on Telegram", process)
        stop_cleanly(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        telegram.stop()
    with sqlite3.connect(database) as db:
        people = sorted(db.execute("SELECT messenger, external_id FROM person").fetchall())
    assert people == [("telegram", "7701"), ("zalo", str(WORKER))]


def test_run_with_a_refused_zalo_token_exits_2_naming_it(zalo_api: FakeZaloServer, tmp_path: Path) -> None:
    zalo_api.fake.token = "7100000000000000001:OTHER"
    process = start_bot(zalo_api, tmp_path, tmp_path / "kn.db")
    try:
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    log = output_of(process)
    assert process.returncode == 2, log
    assert log.strip().splitlines()[-1].startswith("kiennghi: Invalid setting ZALO_BOT_TOKEN"), log
    assert "Traceback" not in log and "TESTSECRET" not in log, log
