"""One adapter per messenger: each turns its events into `Incoming` and renders `Reply`.

Every channel implements the small interface below; `handlers/` never sees a messenger.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from handlers.core import Incoming, Reply
from storage.models import OutboxMessage


class Delivery(NamedTuple):
    """The result of sending one outbox message."""

    sent: bool
    error: str | None = None
    permanent: bool = False  # retrying cannot help (blocked, chat gone)


class Channel(Protocol):
    """What every messenger adapter does."""

    messenger: str

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Show the replies to the person who acted, in the messenger's idiom."""

    async def deliver(self, message: OutboxMessage) -> Delivery:
        """Send one outbox message to its recipient."""

    def invitation_link(self, payload: str) -> str | None:
        """A link that opens the bot with this start payload, if the messenger has such links."""


def split_text(text: str, limit: int) -> list[str]:
    """Cut a long text into pieces of at most `limit` characters, at line breaks if possible."""
    pieces: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = text.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        pieces.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    pieces.append(text)
    return pieces
