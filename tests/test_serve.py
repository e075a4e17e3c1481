"""`kiennghi serve`: Telegram's webhook, /healthz and /metrics in one ASGI app, in process and as the real command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import select

from bot.app import build_webhook_app, check_serve_settings
from bot.config import Settings, SettingsError
from bot.logs import JsonFormatter
from storage.db import new_session
from storage.models import Person
from storage.outbox import enqueue
from tests.conftest import make_settings
from tests.fake_telegram import FakeBotAPI
from tests.fake_zalo import TOKEN as ZALO_TOKEN
from tests.fake_zalo import FakeZalo
from tests.fake_zalo_oa import FakeZaloOA, signed
from tests.test_config_cli import assert_refused, kiennghi
from tests.test_run_polling import (
    LOGS,
    TOKEN,
    USER_ID,
    FakeBotServer,
    output_of,
    sent_to_worker,
    stop_cleanly,
    wait_for,
)
from tests.test_zalo_oa import oa_settings

SECRET = "s3cret-Webhook_token"
PUBLIC_URL = "https://bot.example.org"
HEADERS = {"X-Telegram-Bot-Api-Secret-Token": SECRET}


def start_update(update_id: int = 1, user_id: int = USER_ID) -> dict[str, Any]:
    """A worker's /start, as Telegram posts it."""
    user = {"id": user_id, "is_bot": False, "first_name": "Lan", "language_code": "vi"}
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": "/start", "from": user,
        "chat": {"id": user_id, "type": "private", "first_name": "Lan"},
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


class Served:
    """The app in process: its httpx client, the fake Bot API it calls, its store."""

    def __init__(self, app: Any, client: httpx.AsyncClient, api: FakeBotAPI) -> None:
        self.app, self.client, self.api = app, client, api

    @property
    def engine(self) -> Any:
        return self.app.state.services.core.engine

    def people(self) -> list[Person]:
        with new_session(self.engine) as session:
            return list(session.exec(select(Person)))

    async def post(self, body: bytes | dict[str, Any], headers: dict[str, str] | None = None) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return await self.client.post("/telegram", content=content,
                                      headers={"Content-Type": "application/json", **(HEADERS if headers is None
                                                                                       else headers)})

    async def scrape(self) -> tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
        """/metrics: its text, and its samples as {(name, labels): value}."""
        response = await self.client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        return response.text, {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
                               for family in text_string_to_metric_families(response.text)
                               for sample in family.samples}


@asynccontextmanager
async def serving(tmp_path: Path, settings: Settings | None = None,
                  transport: httpx.AsyncBaseTransport | None = None) -> AsyncIterator[Served]:
    """The webhook app with Telegram on the fake Bot API, started and stopped as uvicorn does (lifespan)."""
    settings = settings or make_settings(tmp_path, public_url=PUBLIC_URL, telegram_webhook_secret=SECRET,
                                         flood_messages=1000)
    api = FakeBotAPI()
    app = build_webhook_app(settings, request=api, transport=transport)
    async with app.router.lifespan_context(app), httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kiennghi.test") as client:
        yield Served(app, client, api)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path) as served:
        yield served


async def until(condition: Callable[[], Any], seconds: float = 10) -> Any:
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
    return result


# ---- the webhook, in process ---------------------------------------------------------------------------

async def test_a_workers_start_posted_with_the_secret_gets_the_welcome(served: Served) -> None:
    response = await served.post(start_update())
    assert response.status_code == 200 and response.json() == {"ok": True}
    welcome = await until(lambda: served.api.texts(USER_ID))
    assert "Bắc Ninh" in welcome[0]
    assert [p.external_id for p in served.people()] == [str(USER_ID)]
    # At start the webhook was set to PUBLIC_URL/telegram with the secret, keeping what waits at Telegram.
    [webhook] = [c.params for c in served.api.calls if c.method == "setWebhook"]
    assert webhook["url"] == f"{PUBLIC_URL}/telegram" and webhook["secret_token"] == SECRET
    assert webhook["drop_pending_updates"] == "false"  # as python-telegram-bot encodes it


async def test_the_webhook_answers_once_the_update_is_stored_before_the_reply_is_sent(served: Served) -> None:
    served.api.round_trip = 1.0  # Telegram is slow to take the reply: the webhook must not wait for it
    started = time.monotonic()
    response = await served.post(start_update())
    answered = time.monotonic() - started
    assert response.status_code == 200 and answered < 0.5, answered
    with new_session(served.engine) as session:  # a process killed now has lost nothing
        assert session.exec(select(Person).where(Person.external_id == str(USER_ID))).one()
    await until(lambda: served.api.texts(USER_ID))


@pytest.mark.parametrize("headers", [{}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
                                     {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]}])
async def test_a_wrong_or_missing_secret_gets_403_and_nothing_is_stored(
        served: Served, headers: dict[str, str]) -> None:
    response = await served.post(start_update(), headers=headers)
    assert response.status_code == 403
    await asyncio.sleep(0.2)  # were it queued, it would be handled by now
    assert served.people() == [] and served.api.texts(USER_ID) == []


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'{"message": {"text": "/start"}}', b"",
                                  b'{"update_id": "x", "message": 5}'])
async def test_a_body_that_is_no_update_gets_400_and_nothing_is_stored(served: Served, body: bytes) -> None:
    assert (await served.post(body)).status_code == 400
    await asyncio.sleep(0.1)
    assert served.people() == [] and served.api.texts(USER_ID) == []


async def test_an_oversized_body_gets_413_and_nothing_is_stored(served: Served) -> None:
    update = start_update()
    update["message"]["text"] = "x" * 1_100_000
    assert (await served.post(update)).status_code == 413
    await asyncio.sleep(0.1)
    assert served.people() == []


async def test_stopping_handles_the_updates_already_answered(tmp_path: Path) -> None:
    async with serving(tmp_path) as served:
        served.api.round_trip = 0.3
        assert (await served.post(start_update())).status_code == 200
    assert "Bắc Ninh" in served.api.texts(USER_ID)[0]  # sent before the stop completed


async def test_telegram_and_the_zalo_oa_are_served_by_one_app_with_one_sender(tmp_path: Path) -> None:
    oa = FakeZaloOA()
    settings = oa_settings(tmp_path, public_url=PUBLIC_URL, telegram_webhook_secret=SECRET)
    async with serving(tmp_path, settings, oa.transport()) as served:
        assert [route.path for route in served.app.routes] == ["/zalo-oa", "/telegram", "/healthz", "/metrics"]
        assert set(served.app.state.services.sender.channels) == {"telegram", "zalo_oa"}
        body, headers = signed(oa.text_event(55, "/start"))
        assert (await served.client.post("/zalo-oa", content=body, headers=headers)).status_code == 200
        assert (await served.post(start_update())).status_code == 200
        await until(lambda: oa.texts(55) and served.api.texts(USER_ID))
        assert sorted((p.messenger, p.external_id) for p in served.people()) == [
            ("telegram", str(USER_ID)), ("zalo_oa", "55")]


async def test_serve_registers_the_zalo_bots_webhook_with_its_secret(tmp_path: Path) -> None:
    zalo = FakeZalo()
    settings = make_settings(tmp_path, public_url=PUBLIC_URL, telegram_webhook_secret=SECRET,
                             zalo_bot_token=ZALO_TOKEN, zalo_webhook_secret="zalo-" + SECRET)
    async with serving(tmp_path, settings, zalo.transport()) as served:
        assert "/zalo" in [route.path for route in served.app.routes]
        assert [c.params for c in zalo.calls if c.method == "setWebhook"] == [
            {"url": f"{PUBLIC_URL}/zalo", "secret_token": "zalo-" + SECRET}]


# ---- /healthz and /metrics --------------------------------------------------------------------------------

async def test_healthz_shows_the_store_the_scheduler_and_the_outbox_backlog(served: Served) -> None:
    with new_session(served.engine) as session:  # mail for a messenger this app does not serve: it waits
        person = Person(messenger="zalo", external_id="42", chat_id="42", display_name="Hà")
        session.add(person)
        session.flush()
        enqueue(person, "Câu trả lời của cơ quan.", session=session)
        session.commit()
    response = await served.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "store": "ok", "scheduler": "running", "outbox_pending": 1}


async def test_healthz_says_503_when_the_store_does_not_answer(
        served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def unreachable(*, session: Any) -> int:
        raise OperationalError("SELECT count(*)", {}, Exception("connection refused"))

    monkeypatch.setattr("bot.app.count_pending", unreachable)
    response = await served.client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unhealthy", "store": "unreachable", "scheduler": "running",
                               "outbox_pending": None}
    assert (await served.client.get("/metrics")).status_code == 200  # the counters are still scraped


async def test_metrics_count_the_update_its_latency_and_the_backlog(served: Served) -> None:
    telegram = (("messenger", "telegram"),)
    _, before = await served.scrape()
    await served.post(start_update())
    await until(lambda: served.api.texts(USER_ID))
    text, after = await served.scrape()

    def grew(name: str, labels: tuple[tuple[str, str], ...] = telegram) -> float:
        return after[(name, labels)] - before.get((name, labels), 0.0)

    assert grew("kiennghi_updates_total") == 1
    assert grew("kiennghi_update_seconds_count") == 1 and grew("kiennghi_update_seconds_sum") > 0
    assert after[("kiennghi_outbox_pending", ())] == 0
    for name in ("kiennghi_outbox_sent_total", "kiennghi_outbox_failed_total", "kiennghi_reminders_total"):
        assert f"# TYPE {name} counter" in text  # declared; a sample per label once counted


# ---- settings and logs --------------------------------------------------------------------------------------

def test_serve_refuses_a_telegram_token_without_public_url_or_secret(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "serve", TELEGRAM_BOT_TOKEN=TOKEN)
    assert_refused(result, "PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET")
    result = kiennghi(tmp_path, "serve", TELEGRAM_BOT_TOKEN=TOKEN, PUBLIC_URL=PUBLIC_URL)
    assert_refused(result, "TELEGRAM_WEBHOOK_SECRET")
    assert "PUBLIC_URL and" not in result.stderr
    assert not (tmp_path / "kiennghi.db").exists()  # refused before touching anything


def test_serve_says_in_one_line_when_telegram_cannot_be_reached(tmp_path: Path) -> None:
    with socket.socket() as closed:  # a port nobody listens on: Telegram "down"
        closed.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{closed.getsockname()[1]}/bot"
    result = kiennghi(tmp_path, "serve", TELEGRAM_BOT_TOKEN=TOKEN, PUBLIC_URL=PUBLIC_URL,
                      TELEGRAM_WEBHOOK_SECRET=SECRET, TELEGRAM_BASE_URL=base)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Telegram could not be reached" in lines[0], result.stderr
    assert "Traceback" not in result.stderr and SECRET not in result.stderr


def test_serve_without_any_messenger_names_what_to_set(tmp_path: Path) -> None:
    result = kiennghi(tmp_path, "serve", PUBLIC_URL=PUBLIC_URL)
    assert_refused(result, "TELEGRAM_BOT_TOKEN")
    assert "ZALO_OA_APP_ID" in result.stderr and "ZALO_WEBHOOK_SECRET" in result.stderr


def test_serve_refuses_a_zalo_token_without_its_webhook_secret(tmp_path: Path) -> None:
    assert_refused(kiennghi(tmp_path, "serve", ZALO_BOT_TOKEN="1:abc"), "ZALO_WEBHOOK_SECRET")


def test_public_url_without_a_telegram_token_is_fine_with_zalo(tmp_path: Path) -> None:
    zalo_oa = {"zalo_oa_app_id": "app", "zalo_oa_secret_key": "key", "zalo_oa_access_token": "access"}
    check_serve_settings(make_settings(tmp_path, telegram_bot_token=None, public_url=PUBLIC_URL, **zalo_oa))
    with pytest.raises(SettingsError, match="TELEGRAM_WEBHOOK_SECRET"):
        check_serve_settings(make_settings(tmp_path, public_url=PUBLIC_URL, **zalo_oa))


def test_a_bad_webhook_secret_or_public_url_is_refused(tmp_path: Path) -> None:
    assert_refused(kiennghi(tmp_path, "shell", TELEGRAM_WEBHOOK_SECRET="has space"), "TELEGRAM_WEBHOOK_SECRET")
    assert_refused(kiennghi(tmp_path, "shell", PUBLIC_URL="bot.example.org"), "PUBLIC_URL")


def test_a_json_log_line_is_one_object_with_the_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.LogRecord("bot.sender", logging.ERROR, __file__, 1, "outbox message %s failed", (7,),
                                   sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["level"], entry["logger"], entry["message"]) == ("ERROR", "bot.sender", "outbox message 7 failed")
    assert entry["time"].endswith("+00:00") and "ValueError: boom" in entry["exception"]


# ---- the real command --------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_kiennghi_serve_end_to_end(bot_api: FakeBotServer, tmp_path: Path) -> None:
    """The real process on a loopback port: the webhook is set at start, a posted update gets its reply
    through the fake Bot API, /healthz answers, SIGTERM ends it with 0, every log line is JSON and
    holds no secret."""
    port = free_port()
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(("TELEGRAM_", "DATABASE_", "ZALO_", "PUBLIC_URL", "LOG_", "HOST", "PORT"))
           and "PROXY" not in key.upper()}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=bot_api.base_url, PUBLIC_URL=PUBLIC_URL,
               TELEGRAM_WEBHOOK_SECRET=SECRET, HOST="127.0.0.1", PORT=str(port), LOG_FORMAT="json",
               DATABASE_URL=f"sqlite:///{tmp_path}/kn.db", NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    log = open(tmp_path / "serve.log", "w+", encoding="utf-8")  # noqa: SIM115 (read while it runs)
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True)
    LOGS[process.pid] = log  # where output_of reads it
    try:
        webhooks = wait_for(lambda: [p for m, p in bot_api.recorded() if m == "setWebhook"], 30, "setWebhook",
                            process)
        assert webhooks[0]["url"] == f"{PUBLIC_URL}/telegram" and webhooks[0]["secret_token"] == SECRET
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, trust_env=False) as client:
            wait_for(lambda: _answers(client), 30, "the server to listen", process)
            refused = client.post("/telegram", json=start_update(), headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
            assert refused.status_code == 403
            started = time.monotonic()
            response = client.post("/telegram", json=start_update(), headers=HEADERS)
            answered = time.monotonic() - started
            assert response.status_code == 200 and answered < 1.0, answered
            welcome = wait_for(sent_to_worker(bot_api, "Bắc Ninh"), 20, "the welcome", process)
            assert welcome
            health = client.get("/healthz")
            assert health.status_code == 200 and health.json()["outbox_pending"] == 0
        output = stop_cleanly(process, timeout=20)
        assert SECRET not in output and TOKEN not in output
        lines = [json.loads(line) for line in output.splitlines() if line.strip()]
        messages = [entry["message"] for entry in lines]
        assert any(m.startswith("update handled: messenger=telegram latency_ms=") for m in messages), messages
        assert "/start" not in output  # what a person wrote is never logged
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code == 200
    except httpx.TransportError:
        return False


# ---- two real processes on one PostgreSQL ------------------------------------------------------------------

def start_serve(bot_api: FakeBotServer, tmp_path: Path, database_url: str, name: str) -> tuple[Any, str]:
    """A real `kiennghi serve` on a free loopback port; the process and its base address."""
    port = free_port()
    folder = tmp_path / name
    folder.mkdir()
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(("TELEGRAM_", "DATABASE_", "ZALO_", "PUBLIC_URL", "LOG_", "HOST", "PORT"))
           and "PROXY" not in key.upper()}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=bot_api.base_url, PUBLIC_URL=PUBLIC_URL,
               TELEGRAM_WEBHOOK_SECRET=SECRET, HOST="127.0.0.1", PORT=str(port), DATABASE_URL=database_url,
               NO_PROXY="127.0.0.1,localhost", PYTHONUNBUFFERED="1", OUTBOX_INTERVAL_SECONDS="1")
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    log = open(folder / "serve.log", "w+", encoding="utf-8")  # noqa: SIM115 (read while it runs)
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], cwd=folder, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True)
    LOGS[process.pid] = log
    return process, f"http://127.0.0.1:{port}"


def text_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    """A worker's text message, as Telegram posts it."""
    update = start_update(update_id, user_id)
    update["message"]["text"] = text
    del update["message"]["entities"]
    return update


def test_two_serve_processes_on_one_postgresql_handle_each_update_once(
        bot_api: FakeBotServer, tmp_path: Path, postgres_url: str) -> None:
    """Behind one proxy: an update posted to both is answered once, a chat's dialog goes on whichever
    process gets its next message, and when one is killed the other carries on."""
    first, first_url = start_serve(bot_api, tmp_path, postgres_url, "a")
    second, second_url = start_serve(bot_api, tmp_path, postgres_url, "b")
    processes = (first, second)
    try:
        with httpx.Client(base_url=first_url, trust_env=False) as one, \
                httpx.Client(base_url=second_url, trust_env=False) as two:
            for client, process in ((one, first), (two, second)):
                wait_for(lambda client=client: _answers(client), 60, "the server to listen", process)
            # The same update reaches both processes: one welcome.
            assert one.post("/telegram", json=start_update(1), headers=HEADERS).status_code == 200
            assert two.post("/telegram", json=start_update(1), headers=HEADERS).status_code == 200
            wait_for(sent_to_worker(bot_api, "Bắc Ninh"), 30, "the welcome", first)
            # One chat's messages go to alternate processes: the dialog goes on from where it is.
            two.post("/telegram", json=text_update(2, USER_ID, "Tiếng Việt"), headers=HEADERS)
            wait_for(sent_to_worker(bot_api, "Nghị định 13/2023/NĐ-CP"), 30, "the privacy notice", second)
            one.post("/telegram", json=text_update(3, USER_ID, "Tôi đồng ý"), headers=HEADERS)
            wait_for(sent_to_worker(bot_api, "Bạn muốn làm gì?"), 30, "the menu", first)

            def welcomes() -> dict[str, int]:
                found: dict[str, int] = {}
                for method, params in bot_api.recorded():
                    if method == "sendMessage" and "Chọn ngôn ngữ / Choose" in str(params.get("text", "")):
                        found[str(params["chat_id"])] = found.get(str(params["chat_id"]), 0) + 1
                return found

            # Twenty workers, alternately, on both: each gets one welcome.
            for number in range(20):
                client = one if number % 2 else two
                assert client.post("/telegram", json=start_update(100 + number, 9000 + number),
                                   headers=HEADERS).status_code == 200
            # (Replies go out after the commit that the 200 waits for: let the first send its own before
            # it is killed, so that every worker can be counted below.)
            wait_for(lambda: len(welcomes()) >= 21, 60, "21 welcomes", first)
            first.kill()  # SIGKILL; the other goes on
            first.wait(timeout=10)
            for number in range(20, 25):
                assert two.post("/telegram", json=start_update(100 + number, 9000 + number),
                                headers=HEADERS).status_code == 200

            wait_for(lambda: len(welcomes()) >= 26, 60, "26 welcomes", second)
            time.sleep(2)  # anything sent twice would have arrived by now
        counted = welcomes()
        assert counted.get(str(USER_ID)) == 1 and len(sent_to_worker(bot_api, "Nghị định 13/2023/NĐ-CP")()) == 1
        assert all(counted.get(str(9000 + n)) == 1 for n in range(25)), counted
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=10)
    assert "Traceback" not in output_of(second), output_of(second)
