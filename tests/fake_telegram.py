"""A fake Telegram Bot API at the request layer: answers calls locally and records them.

By default it answers at once and keeps no limits. For the outbox tests and benchmark it can
also behave like the real one under load: a round trip per call (`round_trip`), Telegram's
flood limits (`limits`: at most 30 messages in any second overall and one a second per chat,
answered beyond that with 429 and a `retry_after`), and scripted failures per chat (`failures`:
429, 5xx, timeouts, 403)."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from telegram.error import TimedOut
from telegram.request import BaseRequest, RequestData

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Kiến nghị", "username": "kiennghi_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo"}


@dataclass
class Call:
    """One Bot API call the bot made."""

    method: str
    params: dict[str, Any]

    @property
    def chat_id(self) -> str:
        return str(self.params.get("chat_id"))

    @property
    def text(self) -> str:
        return str(self.params.get("text") or self.params.get("caption") or "")

    @property
    def buttons(self) -> list[tuple[str, str]]:
        """(label, callback data) of every inline button, row by row."""
        markup = self.params.get("reply_markup")
        if not markup:
            return []
        return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]

    @property
    def rows(self) -> list[list[str]]:
        markup = self.params.get("reply_markup")
        if not markup:
            return []
        return [[b["text"] for b in row] for row in markup["inline_keyboard"]]


@dataclass
class Attempt:
    """One send the bot tried: when it reached the API (monotonic clock), to whom, and how it ended."""

    at: float
    chat_id: str
    method: str
    text: str
    outcome: str  # "ok", "429", "403", "502", "500", "timeout"


class FakeBotAPI(BaseRequest):
    """Answers Bot API calls locally and records them; `blocked` chats answer 403, `flaky` ones 502.

    `limits=(per_second, per_chat_per_second)` enforces Telegram's flood limits on sends, measured
    when a call arrives: more than `per_second` in the last second, or a second one to a chat
    within 1/`per_chat_per_second`, gets 429 with `retry_after` (whole seconds, as Telegram).
    `failures[chat]` lists what that chat's next sends meet, in order: "ok", "429:<seconds>",
    "500", "502", "timeout" (TimedOut, nothing delivered) or "403". Every call takes `round_trip`
    seconds before its answer."""

    def __init__(self, *, round_trip: float = 0.0, limits: tuple[float, float] | None = None) -> None:
        self.calls: list[Call] = []
        self.blocked: set[str] = set()
        self.flaky: set[str] = set()
        self.old_queries = False  # answerCallbackQuery fails as for a press answered too late
        self.round_trip = round_trip
        self.limits = limits
        self.failures: dict[str, list[str]] = {}
        self.attempts: list[Attempt] = []  # every send, delivered or not
        self.rate_limited = 0  # 429s answered because a limit was exceeded (not scripted ones)
        self._window: deque[float] = deque()  # arrival times of the sends of the last second
        self._last_to: dict[str, float] = {}  # arrival time of the last send to each chat
        self._ids = itertools.count(1)

    async def initialize(self) -> None:
        pass

    async def shutdown(self) -> None:
        pass

    @property
    def read_timeout(self) -> float:
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         **_: Any) -> tuple[int, bytes]:
        name = url.rsplit("/", 1)[-1]
        params: dict[str, Any] = dict(request_data.json_parameters) if request_data else {}
        if request_data is not None and request_data.contains_files:  # an upload: keep its name and bytes
            name_of_file, content, *_ = next(iter(request_data.multipart_data.values()))
            params["_upload"] = (name_of_file, content)
        if "reply_markup" in params:  # JSON-encoded by python-telegram-bot; decode for the tests
            params["reply_markup"] = json.loads(params["reply_markup"])
        chat = str(params.get("chat_id", ""))
        if name in SENDS:
            return await self._send(name, params, chat)
        if name == "answerCallbackQuery" and self.old_queries:
            self.calls.append(Call(name, params))
            return 400, json.dumps({"ok": False, "error_code": 400, "description": (
                "Bad Request: query is too old and response timeout expired or query id is invalid")}).encode()
        self.calls.append(Call(name, params))
        return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()

    async def _send(self, name: str, params: dict[str, Any], chat: str) -> tuple[int, bytes]:
        """A send as the real API answers it: blocked and flaky chats, flood limits, scripted failures,
        a round trip."""
        now = time.monotonic()
        script = self.failures.get(chat)
        scripted = script.pop(0) if script else "ok"
        if chat in self.blocked:
            scripted = "403"
        elif chat in self.flaky:
            scripted = "502"
        wait = self._over_limit(chat, now) if scripted == "ok" else None
        if wait is not None:
            self.rate_limited += 1
            scripted = f"429:{wait}"
        self.attempts.append(Attempt(now, chat, name, str(params.get("text") or ""), scripted.split(":")[0]))
        if scripted == "ok":
            self._window.append(now)
            self._last_to[chat] = now
            self.calls.append(Call(name, params))
        if self.round_trip:
            await asyncio.sleep(self.round_trip)
        if scripted == "ok":
            return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()
        if scripted == "timeout":
            raise TimedOut("Timed out")
        if scripted.startswith("429"):
            seconds = int(scripted.partition(":")[2] or 1)
            return 429, json.dumps({"ok": False, "error_code": 429, "parameters": {"retry_after": seconds},
                                    "description": f"Too Many Requests: retry after {seconds}"}).encode()
        descriptions = {"403": "Forbidden: bot was blocked by the user", "500": "Internal Server Error",
                        "502": "Bad Gateway"}
        return int(scripted), json.dumps({"ok": False, "error_code": int(scripted),
                                          "description": descriptions[scripted]}).encode()

    def _over_limit(self, chat: str, now: float) -> int | None:
        """None if a send to this chat now keeps the limits; else the retry_after to answer."""
        if self.limits is None:
            return None
        per_second, per_chat = self.limits
        while self._window and self._window[0] <= now - 1.0:
            self._window.popleft()
        if len(self._window) >= per_second:
            return max(1, math.ceil(self._window[0] + 1.0 - now))
        last = self._last_to.get(chat)
        if last is not None and now - last < 1.0 / per_chat:
            return max(1, math.ceil(last + 1.0 / per_chat - now))
        return None

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return BOT_USER
        if name in SENDS:
            message: dict[str, Any] = {
                "message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": int(params["chat_id"]), "type": "private"}, "from": BOT_USER,
            }
            if "text" in params:
                message["text"] = params["text"]
            return message
        if name == "getUpdates":
            return []
        return True

    # ---- what tests read -------------------------------------------------------------------
    def sent(self, chat_id: int | str | None = None) -> list[Call]:
        """Messages and files sent, to one chat or to all."""
        return [c for c in self.calls if c.method in SENDS and (chat_id is None or c.chat_id == str(chat_id))]

    def texts(self, chat_id: int | str) -> list[str]:
        return [c.text for c in self.sent(chat_id) if c.method == "sendMessage"]

    def clear(self) -> None:
        self.calls.clear()

    def delivered(self) -> list[Attempt]:
        """The sends that reached their chat, in the order they arrived."""
        return [a for a in self.attempts if a.outcome == "ok"]

    def busiest_second(self) -> int:
        """The most sends delivered within any one second (the overall limit holds if <= 30)."""
        times = [a.at for a in self.delivered()]
        most, start = 0, 0
        for end, at in enumerate(times):
            while times[start] <= at - 1.0:
                start += 1
            most = max(most, end - start + 1)
        return most
