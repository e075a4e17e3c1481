"""A fake Zalo Bot API (Bot Platform) that follows the documented shapes, and records every call.

- `POST /bot<token>/<method>` with JSON; answers `{"ok": true, "result": ...}` or
  `{"ok": false, "error_code": N, "description": ...}`, some with HTTP 200 and some with an error
  status, as the sources say Zalo does.
- `getUpdates` hands out ONE update per call (an object; `as_list` makes it a one-item list) and,
  when there is none, waits a moment and answers error 408 (`idle_status`: with HTTP 200 or 408).
- `sendMessage` refuses a text over 2,000 characters (error 400, HTTP 200); a `blocked` chat gets
  403; `failures[chat]` scripts what that chat's next sends meet: "429" (a limit), "quota" (a limit
  named in words, HTTP 200), "500" (not JSON), "timeout" (in-process only: no answer at all).
- Files people send live at `file_url(name)`, served by the same fake (`add_file`).
- `requests` records every call; `calls` those that went through (what a person received).

Served in-process through an httpx `MockTransport` (`transport()`), or on loopback by
`FakeZaloServer` for the real `kiennghi run` process.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.fake_telegram import Call  # the same shape: a method and its parameters

TOKEN = "7100000000000000001:TESTSECRET"
BOT_INFO = {"id": "7100000000000000001", "account_name": "bot.kiennghi", "account_type": "BASIC",
            "can_join_groups": False, "display_name": "Bot Kiến nghị"}
FILES = "https://files.zalo.test/files/"  # where in-process files live
TEXT_LIMIT = 2000
SENDS = {"sendMessage", "sendPhoto", "sendSticker", "sendVoice"}
# Message ids are unique across fakes, as Zalo's are: a second world on the same store is a restart.
MESSAGE_IDS = itertools.count(int(time.time() * 1000) % 10**9)


def event(name: str, user_id: int | str, *, display_name: str = "Lan Nguyễn", chat_id: int | str | None = None,
          chat_type: str = "PRIVATE", message_id: str | None = None, **content: Any) -> dict[str, Any]:
    """An update as Zalo sends it: `event_name` and a `message` from a person in a chat."""
    return {"event_name": name, "message": {
        "message_id": message_id or f"m{next(MESSAGE_IDS)}", "date": int(time.time() * 1000),
        "from": {"id": str(user_id), "display_name": display_name, "is_bot": False},
        "chat": {"id": str(chat_id if chat_id is not None else user_id), "chat_type": chat_type}, **content}}


def text_event(user_id: int | str, text: str, **fields: Any) -> dict[str, Any]:
    """A person's text message."""
    return event("message.text.received", user_id, text=text, **fields)


class FakeZalo:
    """The fake's state and answers, shared by both ways of serving it."""

    def __init__(self, token: str = TOKEN, *, idle_seconds: float = 0.05, files: str = FILES) -> None:
        self.token = token
        self.idle_seconds = idle_seconds
        self.files_base = files
        self.requests: list[Call] = []  # every call, answered or refused
        self.calls: list[Call] = []  # the calls that went through
        self.updates: deque[dict[str, Any]] = deque()
        self.files: dict[str, bytes] = {}
        self.blocked: set[str] = set()
        self.failures: dict[str, list[str]] = {}
        self.as_list = False  # getUpdates answers [update] instead of update
        self.idle_status = 200  # the HTTP status of the "nothing yet" answer (its error_code is 408)
        self.lock = threading.Lock()
        self._ids = itertools.count(1)

    # ---- what a test does ---------------------------------------------------------------------
    def queue(self, update: dict[str, Any]) -> None:
        """Hand this update out at the next getUpdates."""
        with self.lock:
            self.updates.append(update)

    def add_file(self, name: str, content: bytes) -> str:
        """Serve a file a person sent; its URL."""
        with self.lock:
            self.files[name] = content
        return self.file_url(name)

    def file_url(self, name: str) -> str:
        return self.files_base + name

    def sent(self, chat_id: int | str | None = None) -> list[Call]:
        """Messages and files sent, to one chat or to all."""
        with self.lock:
            calls = list(self.calls)
        return [c for c in calls if c.method in SENDS and (chat_id is None or c.chat_id == str(chat_id))]

    def texts(self, chat_id: int | str) -> list[str]:
        return [c.text for c in self.sent(chat_id) if c.method == "sendMessage"]

    # ---- answering ------------------------------------------------------------------------------
    def answer(self, path: str, params: dict[str, Any]) -> tuple[int, Any] | None:
        """(HTTP status, JSON body) for a call; None for getUpdates with nothing to hand out yet
        (then ask `take_update` until it gives one, or answer `nothing_yet`), or for a send
        scripted to time out."""
        prefix, _, method = path.rstrip("/").rpartition("/")
        with self.lock:
            self.requests.append(Call(method, params))
        if prefix.rsplit("/", 1)[-1] != f"bot{self.token}":
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method == "getUpdates":
            with self.lock:
                self.calls.append(Call(method, params))
            return self.take_update()
        if method in SENDS:
            return self._send(method, params)
        with self.lock:
            self.calls.append(Call(method, params))
        if method == "getMe":
            return 200, {"ok": True, "result": BOT_INFO}
        if method in ("deleteWebhook", "setWebhook", "sendChatAction"):
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": f"Method {method} not found"}

    def take_update(self) -> tuple[int, Any] | None:
        """The next update, as getUpdates answers it; None when there is none."""
        with self.lock:
            if not self.updates:
                return None
            update = self.updates.popleft()
        return 200, {"ok": True, "result": [update] if self.as_list else update}

    def nothing_yet(self) -> tuple[int, Any]:
        """What a long poll that found no update answers."""
        return self.idle_status, {"ok": False, "error_code": 408, "description": "Request timeout"}

    def _send(self, method: str, params: dict[str, Any]) -> tuple[int, Any] | None:
        chat = str(params.get("chat_id", ""))
        with self.lock:
            script = self.failures.get(chat)
            scripted = script.pop(0) if script else "ok"
        if chat in self.blocked:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: the user has blocked the bot"}
        if scripted == "timeout":
            return None
        if scripted == "429":
            return 429, {"ok": False, "error_code": 429, "description": "Too many requests",
                         "parameters": {"retry_after": 1}}
        if scripted == "quota":
            return 200, {"ok": False, "error_code": -201, "description": "Daily quota of messages reached"}
        if scripted == "500":
            return 500, "Internal Server Error"
        text = params.get("text")
        if method == "sendMessage" and (not isinstance(text, str) or not text or len(text) > TEXT_LIMIT):
            return 200, {"ok": False, "error_code": 400,
                         "description": f"Bad request: text must be 1 to {TEXT_LIMIT} characters"}
        with self.lock:
            self.calls.append(Call(method, params))
            message_id = next(self._ids)
        return 200, {"ok": True, "result": {"message_id": f"bot{message_id}", "date": int(time.time() * 1000)}}

    def file(self, name: str) -> bytes | None:
        with self.lock:
            return self.files.get(name)

    # ---- in-process ---------------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        """The fake behind an httpx transport, for the bot's client in this process."""

        async def handle(request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            if url.startswith(self.files_base):
                content = self.file(url[len(self.files_base):])
                return httpx.Response(200, content=content) if content is not None else httpx.Response(404)
            params = json.loads(request.content or b"{}")
            deadline = time.monotonic() + self.idle_seconds
            answer = self.answer(request.url.path, params)
            if answer is None and not request.url.path.endswith("/getUpdates"):
                raise httpx.ReadTimeout("timed out", request=request)
            while answer is None and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
                answer = self.take_update()
            status, body = answer or self.nothing_yet()
            return _response(status, body)

        return httpx.MockTransport(handle)


def _response(status: int, body: Any) -> httpx.Response:
    if isinstance(body, str):
        return httpx.Response(status, text=body)
    return httpx.Response(status, json=body)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


class FakeZaloServer:
    """The fake on 127.0.0.1, for a real process: Bot API calls, and the files at /files/<name>."""

    def __init__(self, token: str = TOKEN, *, idle_seconds: float = 0.5) -> None:
        self.httpd = _Server(("127.0.0.1", 0), self._handler_class())
        self.fake = FakeZalo(token, idle_seconds=idle_seconds, files=f"{self.base_url}/files/")
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                name = self.path.removeprefix("/files/")
                content = server.fake.file(name) if self.path.startswith("/files/") else None
                self._write(200 if content is not None else 404, content or b"", "application/octet-stream")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                params = json.loads(self.rfile.read(length) or b"{}") if length else {}
                fake = server.fake
                deadline = time.monotonic() + fake.idle_seconds
                answer = fake.answer(self.path, params)
                while answer is None and self.path.endswith("/getUpdates") and time.monotonic() < deadline:
                    time.sleep(0.01)
                    answer = fake.take_update()
                status, body = answer or fake.nothing_yet()
                payload = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self._write(status, payload, "text/plain" if isinstance(body, str) else "application/json")

            def _write(self, status: int, payload: bytes, kind: str) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", kind)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the bot gave up on a long poll (it is stopping, or was killed)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
