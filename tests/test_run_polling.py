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
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
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


class FakeBotServer:
    """A Bot API on 127.0.0.1: answers the methods the bot uses, hands out queued updates."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.paths: set[str] = set()
        self.lock = threading.Lock()
        self.updates: list[dict[str, Any]] = []
        self.new_update = threading.Condition(self.lock)
        self._message_ids = iter(range(1000, 10**9))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/bot"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
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


@pytest.fixture
def bot_api() -> Iterator[FakeBotServer]:
    server = FakeBotServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(condition: Callable[[], Any], timeout: float, what: str, process: subprocess.Popen[str]) -> Any:
    """Poll `condition` until it gives something truthy; fail early if the bot has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        if process.poll() is not None:
            _, err = process.communicate(timeout=5)
            pytest.fail(f"the bot exited ({process.returncode}) before {what}:\n{err}")
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


def sent_to_worker(server: FakeBotServer, needle: str) -> Callable[[], list[dict[str, Any]]]:
    def find() -> list[dict[str, Any]]:
        return [params for method, params in server.recorded()
                if method == "sendMessage" and str(params.get("chat_id")) == str(USER_ID)
                and needle in str(params.get("text", ""))]
    return find


def test_run_polling_end_to_end(bot_api: FakeBotServer, tmp_path: Path) -> None:
    database = tmp_path / "kn.db"
    env = {key: value for key, value in os.environ.items()
           if not key.upper().startswith(("TELEGRAM_", "DATABASE_")) and "PROXY" not in key.upper()}
    env.update(TELEGRAM_BOT_TOKEN=TOKEN, TELEGRAM_BASE_URL=bot_api.base_url,
               DATABASE_URL=f"sqlite:///{database}", NO_PROXY="127.0.0.1,localhost",
               PYTHONUNBUFFERED="1")
    # The project may not be installed in the child's sys.path: put its root first.
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)

    now = int(time.time())
    bot_api.queue({"update_id": 1, "message": {
        "message_id": 1, "date": now, "chat": CHAT, "from": WORKER, "text": "/start",
        "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}})

    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "run"], cwd=tmp_path, env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        welcome = wait_for(sent_to_worker(bot_api, "kiennghi"), 20, "the welcome message", process)
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

        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=15)
        assert process.returncode == 0, err
        assert "Traceback" not in err, err
        assert bot_api.paths == {f"/bot{TOKEN}"}
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)

    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT messenger, locale FROM person WHERE external_id = '777'").fetchall()
    assert rows == [("telegram", "en")]
