"""A fake Telegram Bot API at the request layer, and people who talk to the real Application."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from telegram import Update
from telegram.ext import Application
from telegram.request import BaseRequest, RequestData

BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Kiến nghị", "username": "kiennghi_bot",
            "can_join_groups": False, "can_read_all_group_messages": False,
            "supports_inline_queries": False}
_SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo"}


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
        if name in _SENDS and chat in self.blocked:
            return 403, json.dumps({"ok": False, "error_code": 403,
                                    "description": "Forbidden: bot was blocked by the user"}).encode()
        if name in _SENDS and chat in self.flaky:
            return 502, json.dumps({"ok": False, "error_code": 502, "description": "Bad Gateway"}).encode()
        self.calls.append(Call(name, params))
        return 200, json.dumps({"ok": True, "result": self._result(name, params)}).encode()

    def _result(self, name: str, params: dict[str, Any]) -> Any:
        if name == "getMe":
            return BOT_USER
        if name in _SENDS:
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
        return [c for c in self.calls if c.method in _SENDS and (chat_id is None or c.chat_id == str(chat_id))]

    def texts(self, chat_id: int | str) -> list[str]:
        return [c.text for c in self.sent(chat_id) if c.method == "sendMessage"]

    def clear(self) -> None:
        self.calls.clear()


_update_ids = itertools.count(1000)


@dataclass
class TelegramPerson:
    """Someone writing to the bot in a private chat, through the real Application."""

    app: Application  # type: ignore[type-arg]
    api: FakeBotAPI
    user_id: int
    first_name: str = "Lan"
    last_name: str = "Nguyễn"
    language_code: str | None = "vi"
    last_update: dict[str, Any] = field(default_factory=dict)

    def _user(self) -> dict[str, Any]:
        user = {"id": self.user_id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    def _message(self, **content: Any) -> dict[str, Any]:
        return {"update_id": next(_update_ids), "message": {
            "message_id": next(_update_ids), "date": int(time.time()),
            "chat": {"id": self.user_id, "type": "private", "first_name": self.first_name},
            "from": self._user(), **content}}

    async def deliver(self, data: dict[str, Any]) -> list[Call]:
        """Feed one raw update; returns what the bot sent to this chat meanwhile."""
        before = len(self.api.calls)
        self.last_update = data
        await self.app.process_update(Update.de_json(data, self.app.bot))
        return [c for c in self.api.calls[before:] if c.method in _SENDS and c.chat_id == str(self.user_id)]

    async def send(self, text: str) -> list[Call]:
        """Type and send a text message."""
        return await self.deliver(self._message(text=text))

    async def press(self, label_or_data: str) -> list[Call]:
        """Press a button of the last message that had buttons, by its label or data."""
        for call in reversed(self.api.sent(self.user_id)):
            for label, data in call.buttons:
                if label_or_data in (label, data):
                    return await self.press_data(data)
        raise AssertionError(f"no button {label_or_data!r} in chat {self.user_id}")

    async def press_data(self, data: str) -> list[Call]:
        """Send a callback query with this data (as from any button, old or new)."""
        update = {"update_id": next(_update_ids), "callback_query": {
            "id": str(next(_update_ids)), "from": self._user(), "chat_instance": "ci", "data": data,
            "message": {"message_id": 1, "date": int(time.time()),
                        "chat": {"id": self.user_id, "type": "private"}, "from": BOT_USER, "text": "…"}}}
        return await self.deliver(update)

    async def send_photo(self, file_id: str = "photo-1", caption: str | None = None) -> list[Call]:
        content: dict[str, Any] = {"photo": [
            {"file_id": file_id + "-small", "file_unique_id": file_id + "s", "width": 90, "height": 90},
            {"file_id": file_id, "file_unique_id": file_id + "u", "width": 800, "height": 800,
             "file_size": 54321}]}
        if caption:
            content["caption"] = caption
        return await self.deliver(self._message(**content))

    async def send_voice(self, file_id: str = "voice-1") -> list[Call]:
        return await self.deliver(self._message(voice={"file_id": file_id, "file_unique_id": file_id + "u",
                                                        "duration": 12, "file_size": 20480}))

    async def send_document(self, file_id: str = "doc-1", name: str = "answer.pdf") -> list[Call]:
        return await self.deliver(self._message(document={
            "file_id": file_id, "file_unique_id": file_id + "u", "file_name": name,
            "mime_type": "application/pdf", "file_size": 100000}))

    async def send_raw(self, **content: Any) -> list[Call]:
        """Send a message with any content (sticker, location, contact...)."""
        return await self.deliver(self._message(**content))
