"""A fake Zalo Official Account API (OA API v3) following the documented shapes, recording every call.

- `POST {BASE}/v3.0/oa/message/cs` with header `access_token` and JSON
  `{"recipient": {"user_id"}, "message": {"text"}}`: success is HTTP 200 with `"error": 0`; every
  refusal comes with HTTP 200 too: -216 for an access token that is unknown or expired, -230 for a
  person who has not written within the fake's window (`wrote`, set by the events built here), -213
  for one who does not follow the OA (`not_following`), -201 for a text over 2,000 characters.
  `failures[user]` scripts what that person's next sends meet: "limit" (-32), "window" (-230) or
  "500" (HTTP 500, not JSON).
- `POST {OAUTH}` (form `refresh_token`, `app_id`, `grant_type=refresh_token`; header `secret_key`):
  a refresh token works ONCE; the answer is a new pair with `expires_in` as a string of seconds, or
  `{"error": -14014, ...}` with HTTP 200 for a token already spent or unknown.
- Files people send live at `file_url(name)` (`add_file`).
- Webhook events as Zalo posts them (`text_event`, `image_event`, `event`), signed by `signed`:
  `X-ZEvent-Signature: mac=<sha256(app_id + body + timestamp + OA secret key)>`.

Served in-process through an httpx `MockTransport` (`transport()`).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx

APP_ID = "3608465249409039670"
OA_ID = "388613280878808645"
SECRET_KEY = "oa-webhook-secret-key"  # the OA secret key: signs the webhook posts
APP_SECRET = "app-secret-key"  # the app's secret key: renews tokens
FIRST_ACCESS = "access-0"
FIRST_REFRESH = "refresh-0"
BASE = "https://openapi.zalo.test"
OAUTH = "https://oauth.zalo.test/v4/oa/access_token"
FILES = "https://files.zalo.test/oa/"
TEXT_LIMIT = 2000
MESSAGE_IDS = itertools.count(int(time.time() * 1000) % 10**9)


@dataclass
class Sent:
    """One message the OA sent (accepted by the fake)."""

    user_id: str
    text: str
    access_token: str


class FakeZaloOA:
    """The fake's state and answers."""

    def __init__(self, *, window: timedelta = timedelta(hours=48)) -> None:
        self.window = window
        self.access_tokens: dict[str, datetime] = {FIRST_ACCESS: datetime.now(UTC) + timedelta(hours=25)}
        self.refresh_tokens: set[str] = {FIRST_REFRESH}
        self.renewals: list[str] = []  # refresh tokens presented, accepted or not
        self.renew_delay = 0.0  # seconds the token endpoint takes
        self.send_delay = 0.0  # seconds the message endpoint takes
        self.requests: list[dict[str, Any]] = []  # every send asked for
        self.sent: list[Sent] = []  # the sends that went through
        self.wrote: dict[str, datetime] = {}  # when each person last wrote (for the window)
        self.not_following: set[str] = set()
        self.failures: dict[str, list[str]] = {}
        self.files: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self._pairs = itertools.count(1)

    # ---- what a test does ---------------------------------------------------------------------
    def texts(self, user_id: int | str) -> list[str]:
        """The texts a person received, in order."""
        with self.lock:
            return [s.text for s in self.sent if s.user_id == str(user_id)]

    def expire(self, access_token: str) -> None:
        """The access token expires now (Zalo then answers -216)."""
        with self.lock:
            self.access_tokens[access_token] = datetime.now(UTC) - timedelta(seconds=1)

    def add_file(self, name: str, content: bytes) -> str:
        """Serve a file a person sent; its URL."""
        with self.lock:
            self.files[name] = content
        return FILES + name

    def file_url(self, name: str) -> str:
        return FILES + name

    # ---- answering ------------------------------------------------------------------------------
    def send(self, access_token: str, body: dict[str, Any]) -> tuple[int, Any]:
        """(HTTP status, body) for POST /v3.0/oa/message/cs."""
        recipient = body.get("recipient") if isinstance(body.get("recipient"), dict) else {}
        user_id = str(recipient.get("user_id", ""))
        text = (body.get("message") or {}).get("text")
        now = datetime.now(UTC)
        with self.lock:
            self.requests.append({"access_token": access_token, **body})
            expires = self.access_tokens.get(access_token)
            script = self.failures.get(user_id)
            scripted = script.pop(0) if script else "ok"
            last = self.wrote.get(user_id)
        if expires is None or expires <= now:
            return 200, {"error": -216, "message": "Access token is invalid"}
        if scripted == "500":
            return 500, "Internal Server Error"
        if scripted == "limit":
            return 200, {"error": -32, "message": "Exceeded the limit of requests"}
        if user_id in self.not_following:
            return 200, {"error": -213, "message": "User has not followed the OA"}
        if scripted == "window" or last is None or now - last > self.window:
            return 200, {"error": -230, "message": "User has not interacted with the OA in the past 7 days"}
        if not isinstance(text, str) or not text or len(text) > TEXT_LIMIT:
            return 200, {"error": -201, "message": f"Parameters are invalid: text must be 1 to {TEXT_LIMIT} characters"}
        with self.lock:
            self.sent.append(Sent(user_id, text, access_token))
        return 200, {"data": {"message_id": f"oa{next(MESSAGE_IDS)}", "user_id": user_id}, "error": 0,
                     "message": "Success"}

    def renew(self, secret_key: str, form: dict[str, str]) -> tuple[int, Any]:
        """(HTTP status, body) for the token endpoint: a refresh token works once."""
        refresh = form.get("refresh_token", "")
        with self.lock:
            self.renewals.append(refresh)
            valid = (secret_key == APP_SECRET and form.get("app_id") == APP_ID
                     and form.get("grant_type") == "refresh_token" and refresh in self.refresh_tokens)
            if not valid:
                return 200, {"error": -14014, "error_name": "Invalid refresh token",
                             "error_reason": "refresh token is invalid or was used",
                             "error_description": "Refresh token is invalid or already used"}
            self.refresh_tokens.discard(refresh)
            number = next(self._pairs)
            access, new_refresh = f"access-{number}", f"refresh-{number}"
            self.access_tokens[access] = datetime.now(UTC) + timedelta(seconds=90000)
            self.refresh_tokens.add(new_refresh)
        return 200, {"access_token": access, "refresh_token": new_refresh, "expires_in": "90000"}

    def transport(self) -> httpx.MockTransport:
        """The fake behind an httpx transport, for the bot's client in this process."""

        async def handle(request: httpx.Request) -> httpx.Response:
            url = str(request.url)
            if url.startswith(FILES):
                with self.lock:
                    content = self.files.get(url[len(FILES):])
                return httpx.Response(200, content=content) if content is not None else httpx.Response(404)
            if url == OAUTH:
                if self.renew_delay:
                    await asyncio.sleep(self.renew_delay)
                form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
                status, body = self.renew(request.headers.get("secret_key", ""), form)
            elif url == BASE + "/v3.0/oa/message/cs":
                if self.send_delay:
                    await asyncio.sleep(self.send_delay)
                status, body = self.send(request.headers.get("access_token", ""), json.loads(request.content or b"{}"))
            else:
                status, body = 404, {"error": 404, "message": "not found"}
            if isinstance(body, str):
                return httpx.Response(status, text=body)
            return httpx.Response(status, json=body)

        return httpx.MockTransport(handle)

    # ---- webhook events -------------------------------------------------------------------------
    def event(self, name: str, user_id: int | str, *, message: dict[str, Any] | None = None,
              msg_id: str | None = None) -> dict[str, Any]:
        """An event as Zalo posts it; the person counts as having written now (the fake's window)."""
        now = datetime.now(UTC)
        with self.lock:
            self.wrote[str(user_id)] = now
        return {"app_id": APP_ID, "sender": {"id": str(user_id)}, "user_id_by_app": f"9{user_id}",
                "recipient": {"id": OA_ID}, "event_name": name,
                "message": {"msg_id": msg_id or f"msg{next(MESSAGE_IDS)}", **(message or {})},
                "timestamp": str(int(now.timestamp() * 1000))}

    def text_event(self, user_id: int | str, text: str, **fields: Any) -> dict[str, Any]:
        """A person's text message."""
        return self.event("user_send_text", user_id, message={"text": text}, **fields)

    def image_event(self, user_id: int | str, urls: list[str], text: str | None = None) -> dict[str, Any]:
        """A person's photo(s), with an optional caption."""
        attachments = [{"type": "image", "payload": {"thumbnail": url + "?thumb", "url": url}} for url in urls]
        message: dict[str, Any] = {"attachments": attachments}
        if text:
            message["text"] = text
        return self.event("user_send_image", user_id, message=message)


def signature(body: bytes, timestamp: str, *, app_id: str = APP_ID, secret_key: str = SECRET_KEY) -> str:
    """The value of X-ZEvent-Signature for this body."""
    return "mac=" + hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()


def signed(event: dict[str, Any], **keys: str) -> tuple[bytes, dict[str, str]]:
    """The body Zalo posts for an event, and its headers with a correct signature."""
    body = json.dumps(event, ensure_ascii=False).encode()
    return body, {"Content-Type": "application/json", "X-ZEvent-Signature": signature(body, event["timestamp"], **keys)}
