"""Webhook endpoints as ASGI routes (Starlette), for a web server (`kiennghi run` polls).

- **Telegram** (`/telegram`): Telegram posts each update with the secret given in `setWebhook`, in
  the header `X-Telegram-Bot-Api-Secret-Token`; the update goes on python-telegram-bot's update queue.
- **Zalo Bot Platform** (`/zalo`): Zalo posts each update with the secret it was given in
  `setWebhook`, in the header `X-Bot-Api-Secret-Token`.
- **Zalo Official Account** (`/zalo-oa`): Zalo signs each event in the header
  `X-ZEvent-Signature: mac=<hex>`, hex = sha256(app_id + raw body + timestamp + OA secret key).

Each endpoint checks the post in constant time before anything is read into the store, answers at
once and handles the event after answering, in its chat's turn; an event posted twice is handled
once (its `update_key`). `bot.app.build_webhook_app` serves the configured ones with the outbox
sender and the scheduler beside them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import Application

from bot.channels.zalo import ZaloChannel, unwrap
from bot.channels.zalo_oa import ZaloOAChannel

log = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
SECRET_HEADER = "X-Bot-Api-Secret-Token"
SIGNATURE_HEADER = "X-ZEvent-Signature"
# Some integrations read the signed timestamp from this header rather than from the body: both are tried.
TIMESTAMP_HEADER = "X-ZEvent-Timestamp"
MAX_BODY_BYTES = 1_000_000  # an update is a few hundred bytes; anything this large is not one
# A webhook answers within a second; an update not handled by then is refused and sent again later.
HANDLED_WAIT = 0.9


def telegram_route(application: Application[Any, Any, Any, Any, Any, Any], secret: str, *,
                   path: str = "/telegram") -> Route:
    """Telegram's endpoint at `path`: a wrong or missing secret gets 403, a body over 1 MB 413, one
    that is no update 400, and nothing is handled; an update goes on the application's update queue
    (handled in its chat's turn) and gets 200 once its changes are committed, before the replies are
    sent; one not handled within HANDLED_WAIT gets 503, and Telegram sends it again."""
    if not secret:
        raise ValueError("the Telegram webhook needs a secret (TELEGRAM_WEBHOOK_SECRET)")
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.headers.get(TELEGRAM_SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):  # in constant time: the secret is the only guard
            log.warning("a Telegram webhook post had a wrong or no secret; refused")
            return JSONResponse({"ok": False, "description": "forbidden"}, status_code=403)
        body = await _body(request)
        if body is None:
            log.warning("a Telegram webhook post was over %d bytes; refused", MAX_BODY_BYTES)
            return JSONResponse({"ok": False, "description": "too large"}, status_code=413)
        try:
            data = json.loads(body)
            update = Update.de_json(data, application.bot) if isinstance(data, dict) and "update_id" in data else None
        except Exception:  # anything that is not an update's JSON (python-telegram-bot raises several kinds)
            update = None
        if update is None:
            log.warning("a Telegram webhook post was no update; ignored")
            return JSONResponse({"ok": False, "description": "bad request"}, status_code=400)
        # Answered once the update is in the store, before the replies go out: a process killed after
        # the 200 loses nothing Telegram will not send again (a redelivery is found handled, once).
        channel = application.bot_data["channel"]
        handled = channel.when_handled(update.update_id)
        await application.update_queue.put(update)
        try:
            await asyncio.wait_for(asyncio.shield(handled), HANDLED_WAIT)
        except TimeoutError:
            channel.forget_handled(update.update_id)
            log.warning("update %s not handled within %.1f s; Telegram will send it again", update.update_id,
                        HANDLED_WAIT)
            return JSONResponse({"ok": False, "description": "busy, try again"}, status_code=503)
        return JSONResponse({"ok": True})

    return Route(path, receive, methods=["POST"])


def zalo_route(channel: ZaloChannel, secret: str, *, path: str = "/zalo") -> Route:
    """The Bot Platform's endpoint at `path`: a wrong or missing secret gets 403, a body that is no
    update (or over 1 MB) 400, and nothing is handled; an update gets 200 at once."""
    if not 8 <= len(secret) <= 256:
        raise ValueError("the webhook secret must be 8 to 256 characters (ZALO_WEBHOOK_SECRET)")
    expected = secret.encode()

    async def receive(request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, expected):  # in constant time: the secret is the only guard
            return JSONResponse({"ok": False, "description": "forbidden"}, status_code=403)
        body = await _body(request)
        update = None
        if body is not None:
            try:
                update = unwrap(json.loads(body))
            except ValueError:
                update = None
        if update is None:
            log.warning("a Zalo webhook post was no update (malformed or too large); ignored")
            return JSONResponse({"ok": False, "description": "bad request"}, status_code=400)
        # Zalo waits for the answer, not for the work: handled after the response is sent.
        return JSONResponse({"ok": True}, background=BackgroundTask(channel.receive, update))

    return Route(path, receive, methods=["POST"])


def zalo_webhook_app(channel: ZaloChannel, secret: str, *, path: str = "/zalo") -> Starlette:
    """An ASGI app with the Bot Platform's endpoint alone (see zalo_route)."""
    return Starlette(routes=[zalo_route(channel, secret, path=path)])


def signature_matches(header: str, body: bytes, app_id: str, secret_key: str, timestamps: list[str]) -> bool:
    """Whether `header` ("mac=<hex>") is sha256(app_id + body + timestamp + secret key) for one of the
    timestamps, each compared in constant time."""
    given = header.strip()
    if given[:4].lower() == "mac=":
        given = given[4:].strip()
    matched = False
    for timestamp in timestamps:
        expected = hashlib.sha256(app_id.encode() + body + timestamp.encode() + secret_key.encode()).hexdigest()
        matched |= hmac.compare_digest(given.lower().encode(), expected.encode())
    return matched


def zalo_oa_route(channel: ZaloOAChannel, app_id: str, secret_key: str, *, path: str = "/zalo-oa") -> Route:
    """The OA's endpoint at `path`: a missing or wrong signature gets 401, a body that is no event (or
    over 1 MB) 400, and nothing is handled; an event gets 200 at once (Zalo wants it within 2 s)."""
    if not app_id or not secret_key:
        raise ValueError("the OA webhook needs ZALO_OA_APP_ID and ZALO_OA_SECRET_KEY")

    async def receive(request: Request) -> Response:
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not signature.strip():
            return JSONResponse({"error": 401, "message": "unauthorized"}, status_code=401)
        body = await _body(request)
        event: Any = None
        if body is not None:
            try:
                event = json.loads(body)
            except ValueError:
                event = None
        if not isinstance(event, dict):
            log.warning("a Zalo OA webhook post was no event (malformed or too large); ignored")
            return JSONResponse({"error": 400, "message": "bad request"}, status_code=400)
        timestamps = [str(value) for value in (event.get("timestamp"), request.headers.get(TIMESTAMP_HEADER))
                      if value not in (None, "")]
        if not signature_matches(signature, body or b"", app_id, secret_key, timestamps):
            log.warning("a Zalo OA webhook post had a wrong signature; ignored")
            return JSONResponse({"error": 401, "message": "unauthorized"}, status_code=401)
        if not isinstance(event.get("event_name"), str):
            return JSONResponse({"error": 400, "message": "bad request"}, status_code=400)
        return JSONResponse({"error": 0}, background=BackgroundTask(channel.receive, event))

    return Route(path, receive, methods=["POST"])


def zalo_oa_webhook_app(channel: ZaloOAChannel, app_id: str, secret_key: str, *, path: str = "/zalo-oa") -> Starlette:
    """An ASGI app with the OA's endpoint alone (see zalo_oa_route)."""
    return Starlette(routes=[zalo_oa_route(channel, app_id, secret_key, path=path)])


async def _body(request: Request) -> bytes | None:
    """The request's body, or None when it is larger than MAX_BODY_BYTES (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)
