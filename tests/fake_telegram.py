"""A fake Telegram Bot API at the request layer: answers calls locally and records them."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass
from typing import Any

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


class FakeBotAPI(BaseRequest):
    """Answers Bot API calls locally and records them; `blocked` chats answer 403."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.blocked: set[str] = set()
        self.flaky: set[str] = set()
        self.old_queries = False  # answerCallbackQuery fails as for a press answered too late
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
        params = dict(request_data.json_parameters) if request_data else {}
        if "reply_markup" in params:  # JSON-encoded by python-telegram-bot; decode for the tests
            params["reply_markup"] = json.loads(params["reply_markup"])
        chat = str(params.get("chat_id", ""))
        if name in SENDS and chat in self.blocked:
            return 403, json.dumps({"ok": False, "error_code": 403,
                                    "description": "Forbidden: bot was blocked by the user"}).encode()
        if name == "answerCallbackQuery" and self.old_queries:
            self.calls.append(Call(name, params))
            return 400, json.dumps({"ok": False, "error_code": 400, "description": (
                "Bad Request: query is too old and response timeout expired or query id is invalid")}).encode()
        if name in SENDS and chat in self.flaky:
            return 502, json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"}).encode()
        self.calls.append(Call(name, params))
        return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()

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
