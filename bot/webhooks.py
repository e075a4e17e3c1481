"""Webhook endpoints as ASGI apps (Starlette), for a web server to mount (`kiennghi run` polls).

Zalo posts each update to the webhook with the secret it was given in `setWebhook`, in the
header `X-Bot-Api-Secret-Token`. The endpoint answers at once and handles the update after
answering, in its chat's turn; an update posted twice is handled once (its `update_key`).
"""

from __future__ import annotations

import hmac
import json
import logging

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.channels.zalo import ZaloChannel, unwrap

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Bot-Api-Secret-Token"
MAX_BODY_BYTES = 1_000_000  # an update is a few hundred bytes; anything this large is not one


def zalo_webhook_app(channel: ZaloChannel, secret: str, *, path: str = "/zalo") -> Starlette:
    """An ASGI app taking Zalo's webhook posts at `path`: a wrong or missing secret gets 403, a body
    that is no update (or over 1 MB) 400, and nothing is handled; an update gets 200 at once."""
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

    return Starlette(routes=[Route(path, receive, methods=["POST"])])


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
