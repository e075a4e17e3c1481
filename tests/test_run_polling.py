"""End to end: the real `kiennghi run` (long polling) against a fake Bot API server on loopback."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import parse_qsl

import pytest

TOKEN = "123456:TEST"
USER_ID = 777
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "Kiến nghị", "username": "kiennghi_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
WORKER = {"id": USER_ID, "is_bot": False, "first_name": "Lan", "last_name": "Nguyễn",
          "language_code": "en"}
CHAT = {"id": USER_ID, "type": "private", "first_name": "Lan", "last_name": "Nguyễn"}


def _decode(value: str) -> Any:
    """python-telegram-bot form-encodes JSON for nested values (reply_markup, commands)."""
    try:
        return json.loads(value)
    except ValueError:
        return value


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # a burst of concurrent sends must not find the backlog full


class FakeBotServer:
    """A Bot API on 127.0.0.1: answers the methods the bot uses, hands out queued updates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.paths: set[str] = set()
        self.lock = threading.Lock()
        self.updates: list[dict[str, Any]] = []
        self.new_update = threading.Condition(self.lock)
        self._message_ids = iter(range(1000, 10**9))
        self.hold: str | None = None  # a sendMessage whose text contains this never gets an answer
        self.held = threading.Event()
        self.release = threading.Event()
        self.httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/bot"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def queue(self, update: dict[str, Any]) -> None:
        with self.new_update:
            self.updates.append(update)
            self.new_update.notify_all()

    def recorded(self) -> list[tuple[str, dict[str, Any]]]:
        with self.lock:
            return list(self.calls)

    def answer(self, method: str, params: dict[str, Any]) -> Any:
        if method == "sendMessage" and self.hold and self.hold in str(params.get("text", "")):
            self.held.set()
            self.release.wait()  # the bot waits for an answer that never comes (it is killed meanwhile)
            return True
        with self.lock:
            self.calls.append((method, params))
        if method == "getMe":
            return BOT_USER
        if method == "getUpdates":
            return self._get_updates(params)
        if method == "sendMessage":
            with self.lock:
                message_id = next(self._message_ids)
            chat_id = int(params.get("chat_id", 0))
            return {"message_id": message_id, "date": int(time.time()), "from": BOT_USER,
                    "chat": {"id": chat_id, "type": "private"}, "text": str(params.get("text", ""))}
        return True  # deleteWebhook, setMyCommands, answerCallbackQuery and anything else

    def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        wait = min(0.5, float(params.get("timeout") or 0))
        deadline = time.monotonic() + wait
        with self.new_update:
            # As Telegram does: an offset confirms every earlier update, which is then gone for good.
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while True:
                ready = [u for u in self.updates if u["update_id"] >= offset]
                remaining = deadline - time.monotonic()
                if ready or remaining <= 0:
                    return ready
                self.new_update.wait(remaining)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8") if length else ""
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    params = json.loads(body or "{}")
                else:
                    params = {key: _decode(value) for key, value in parse_qsl(body, keep_blank_values=True)}
                prefix, _, method = self.path.rstrip("/").rpartition("/")
                with server.lock:
                    server.paths.add(prefix)
                payload = json.dumps({"ok": True, "result": server.answer(method, params)}).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot gave up on a long poll (it is stopping): nobody to answer

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def wait_for(condition: Callable[[], Any], timeout: float, what: str, process: subprocess.Popen[str]) -> Any:
    """Poll `condition` until it gives something truthy; fail early if the bot has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if process.poll() is not None:
            process.wait(timeout=5)
            err = output_of(process)
            pytest.fail(f"the bot exited ({process.returncode}) before {what}:\n{err}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def sent_to_worker(server: FakeBotServer, needle: str) -> Callable[[], list[dict[str, Any]]]:
    def find() -> list[dict[str, Any]]:
        return [params for method, params in server.recorded()
                if method == "sendMessage" and str(params.get("chat_id")) == str(USER_ID)
                and needle in str(params.get("text", ""))]
    return find


def start_bot(bot_api: FakeBotServer, tmp_path: Path, database: Path) -> subprocess.Popen[str]:
    """`kiennghi run` in a child process, on the fake Bot API and a SQLite file."""
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(("TELEGRAM_", "DATABASE_")) and "PROXY" not in key.upper()}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=bot_api.base_url,
               DATABASE_URL=f"sqlite:///{database}", NO_PROXY="127.0.0.1,localhost",
               PYTHONUNBUFFERED="1", OUTBOX_INTERVAL_SECONDS="0.2")
    # The project may not be installed in the child's sys.path: put its root first.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    # The log goes to a file: a pipe nobody reads fills up and would stall the bot.
    log = open(tmp_path / f"bot-{time.monotonic_ns()}.log", "w+", encoding="utf-8")  # noqa: SIM115
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, text=True)
    LOGS[process.pid] = log
    return process


LOGS: dict[int, TextIO] = {}


def output_of(process: subprocess.Popen[str]) -> str:
    """What the bot wrote to its log so far."""
    log = LOGS[process.pid]
    log.flush()
    log.seek(0)
    return log.read()


def stop_cleanly(process: subprocess.Popen[str], timeout: float = 15) -> str:
    """SIGTERM, as systemd stops the bot: it must end with 0 and no traceback; its log."""
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=timeout)
    log = output_of(process)
    assert process.returncode == 0, log
    assert "Traceback" not in log, log
    return log


def test_run_polling_end_to_end(bot_api: FakeBotServer, tmp_path: Path) -> None:
    database = tmp_path / "kn.db"

    now = int(time.time())
    bot_api.queue({"update_id": 1, "message": {
        "message_id": 1, "date": now, "chat": CHAT, "from": WORKER, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})

    process = start_bot(bot_api, tmp_path, database)
    try:
        welcome = wait_for(sent_to_worker(bot_api, "Bắc Ninh"), 20, "the welcome message", process)
        assert welcome
        menus = [params for method, params in bot_api.recorded() if method == "setMyCommands"]
        assert {params.get("language_code") for params in menus} >= {"vi", "en"}
        assert all(params.get("commands") for params in menus)

        bot_api.queue({"update_id": 2, "callback_query": {
            "id": "cb-1", "from": WORKER, "chat_instance": "ci-777", "data": "lang:en",
            "message": {"message_id": 1000, "date": now, "chat": CHAT, "from": BOT_USER,
                        "text": "Chọn ngôn ngữ / Choose your language:"}}})
        wait_for(sent_to_worker(bot_api, "Decree 13/2023"), 20, "the privacy notice", process)
        assert any(method == "answerCallbackQuery" and params.get("callback_query_id") == "cb-1"
                   for method, params in bot_api.recorded())

        stop_cleanly(process)
        assert bot_api.paths == {f"/bot{TOKEN}"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT messenger, locale FROM person WHERE external_id = '777'").fetchall()
    assert rows == [("telegram", "en")]


def _text_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"Công nhân {user_id}", "language_code": "vi"}
    message: dict[str, Any] = {"message_id": update_id, "date": int(time.time()), "text": text, "from": user,
                               "chat": {"id": user_id, "type": "private", "first_name": user["first_name"]}}
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    return {"update_id": update_id, "message": message}


def test_killed_in_a_burst_loses_no_update_and_handles_none_twice(bot_api: FakeBotServer, tmp_path: Path) -> None:
    """30 workers each send 5 updates at once; SIGKILL mid-burst; the restarted bot finishes the rest.

    Each update is handled exactly once and in order, or the final state of a chat would differ:
    English chosen, notice accepted, then at step 2 of a new concern with the topic chosen."""
    database = tmp_path / "kn.db"
    workers = range(5001, 5031)
    script = ["/start", "2", "1", "/new", "1"]  # English, I agree, New concern... typed as numbers
    update_id = 10
    for step in script:
        for user_id in workers:
            update_id += 1
            bot_api.queue(_text_update(update_id, user_id, step))
    total = update_id - 10

    def handled() -> int:
        if not database.exists():
            return 0
        with sqlite3.connect(database) as db:
            try:
                return int(db.execute("SELECT count(*) FROM processedupdate").fetchone()[0])
            except sqlite3.OperationalError:
                return 0

    first = start_bot(bot_api, tmp_path, database)
    try:
        wait_for(lambda: handled() >= 20, 30, "the first updates to be handled", first)
    finally:
        first.kill()  # SIGKILL: mid-burst, with updates fetched but not handled
        first.wait(timeout=10)
    assert handled() < total, "the kill came too late to prove anything"

    second = start_bot(bot_api, tmp_path, database)
    try:
        wait_for(lambda: handled() >= total, 60, "every update to be handled", second)
        stop_cleanly(second)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)

    with sqlite3.connect(database) as db:
        keys = [int(k) for (k,) in db.execute("SELECT update_key FROM processedupdate")]
        people = db.execute("SELECT external_id, locale, consent_at IS NOT NULL FROM person").fetchall()
        dialogs = db.execute("SELECT chat_id, flow, step, data FROM dialogstate").fetchall()
    assert sorted(keys) == list(range(11, 11 + total))
    assert sorted(people) == sorted((str(w), "en", 1) for w in workers)
    assert sorted((chat, flow, step) for chat, flow, step, _ in dialogs) == sorted(
        (str(w), "new", "enterprise") for w in workers)
    assert all(json.loads(data) == {"category": "wages"} for *_, data in dialogs)


def test_anonymous_code_reaches_its_author_after_a_kill_between_commit_and_reply(
        bot_api: FakeBotServer, tmp_path: Path) -> None:
    """The reply with the code is held by the Bot API until the bot is killed: the concern is
    committed, the code was never shown. After the restart the author gets it all the same, and
    nothing is left in the store that ties the chat to the concern."""
    database = tmp_path / "kn.db"
    worker = 6001
    script = ["/start", "2", "1", "/new", "1", "Công ty TNHH Minh Phát", "1",
              "Công ty nợ lương tháng 6 và tháng 7 của công nhân.", "1", "2", "1"]  # ... anonymous, Send
    for number, text in enumerate(script, 1):
        bot_api.queue(_text_update(100 + number, worker, text))
    bot_api.hold = "Tracking code"

    first = start_bot(bot_api, tmp_path, database)
    try:
        wait_for(bot_api.held.is_set, 30, "the reply with the tracking code", first)
    finally:
        first.kill()
        first.wait(timeout=10)
    with sqlite3.connect(database) as db:
        codes = [code for (code,) in db.execute("SELECT tracking_code FROM concern WHERE author_id IS NULL")]
        assert db.execute("SELECT count(*) FROM receipt").fetchone()[0] == 1
    assert len(codes) == 1
    assert not [p for m, p in bot_api.recorded() if m == "sendMessage" and codes[0] in str(p.get("text"))]

    bot_api.hold = None
    second = start_bot(bot_api, tmp_path, database)
    try:
        shown = wait_for(sent_to_worker_id(bot_api, worker, codes[0]), 30, "the code after the restart", second)
        assert "Tracking code" in shown[0]["text"]
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=15)
    finally:
        if second.poll() is None:
            second.kill()
            second.wait(timeout=10)
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM receipt").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM concern").fetchone()[0] == 1
        # The chat keeps its menu, but no time that could tie it to the anonymous concern.
        stamps = db.execute("SELECT updated_at FROM dialogstate WHERE chat_id = ?", (str(worker),)).fetchall()
        assert all(str(at).startswith("2000-01-01") for (at,) in stamps), stamps


def sent_to_worker_id(server: FakeBotServer, user_id: int, needle: str) -> Callable[[], list[dict[str, Any]]]:
    def find() -> list[dict[str, Any]]:
        return [params for method, params in server.recorded()
                if method == "sendMessage" and str(params.get("chat_id")) == str(user_id)
                and needle in str(params.get("text", ""))]
    return find
