"""Helpers for tests/test_bad_input.py: a worker part-way through /new, and what the store holds.

Written against `Chat` (tests/chat.py), so they serve every channel; choices are named by the
label a person reads (English, see locales/en/LC_MESSAGES/messages.po and
storage/reference/bac_ninh.toml).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine

from tests.chat import Chat
from tests.flows import onboard, rows

ONLY_SUPPORTED = "We can read text, voice notes, photos, videos and documents only"
EMPTY = "The message was empty"
EARLIER = "That button belongs to an earlier message"
TOO_FAST = "sending messages very fast"
# The enterprise step's choices (step 2 of 6), in order.
ENTERPRISE_CHOICES = ["No specific company", "Cancel"]
STEPS = ("category", "enterprise", "place", "description")


async def at_step(world: Any, user_id: int, step: str) -> Chat:
    """An English-speaking worker who has reached a step of the /new dialog.

    Topic "Wages and bonuses", no specific company, place skipped."""
    assert step in STEPS, step
    lan = world.person(user_id)
    await onboard(lan, "en")
    await lan.send("/new")
    if step == "category":
        return lan
    await lan.choose("Wages and bonuses")
    if step == "enterprise":
        return lan
    await lan.choose("No specific company")
    if step == "place":
        return lan
    await lan.choose("Skip")
    return lan


def dialog_data(chat: Chat) -> dict[str, Any]:
    """The answers the chat's open dialog holds so far."""
    state = chat.dialog()
    assert state is not None
    return dict(json.loads(state.data))


def stored_text(engine: Engine, *models: type[Any]) -> list[str]:
    """Every stored row of these tables, as text (to look for what must not be kept)."""
    return [repr(row) for model in models for row in rows(engine, model)]
