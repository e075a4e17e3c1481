"""One adapter per messenger: each turns its events into `Incoming` and renders `Reply`.

Every channel implements the small interface below; `handlers/` never sees a messenger.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import NamedTuple, Protocol

from handlers.core import Incoming, Option, Reply
from storage.models import OutboxMessage

# Awaited by a channel before each call to its messenger: the sender's pacing (and its claim).
Pace = Callable[[], Awaitable[None]]


class Rest(NamedTuple):
    """What is left of a message of which only a part was delivered (its file, or the first pieces of a long text)."""

    text: str
    with_file: bool


class Delivery(NamedTuple):
    """The result of sending one outbox message."""

    sent: bool
    error: str | None = None
    permanent: bool = False  # retrying cannot help (blocked, chat gone)
    retry_after: float | None = None  # the messenger's flood limit: try again after this many seconds
    unreachable: bool = False  # the person blocked the bot, or the account is gone
    rest: Rest | None = None  # part of the message was delivered: only this is left to send
    # The messenger takes the message only after the person writes again (Zalo OA's messaging window):
    # it waits for that, not counted as a failure.
    until_person_writes: bool = False


class Channel(Protocol):
    """What every messenger adapter does."""

    messenger: str
    # Choices are typed as numbers (no buttons): a delivered message's numbered choices become the
    # chat's current ones when it is in no dialog (see OutboxSender and storage.dialogs.offer_choices).
    typed_choices: bool

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Show the replies to the person who acted, in the messenger's idiom."""

    async def deliver(self, message: OutboxMessage, pace: Pace | None = None) -> Delivery:
        """Send one outbox message to its recipient, awaiting `pace()` before each call to the messenger."""

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


def numbered(options: list[Option]) -> list[str]:
    """Choices as numbered lines, for messengers without buttons (type the number or the text)."""
    return [f"  {number}. {option.label}" for number, option in enumerate(options, 1)]


def foreign_file_as_text(reply: Reply, messenger: str) -> Reply:
    """A reply whose file was sent on another messenger, which this one cannot show: its note instead."""
    file = reply.attachment
    if file is None or file.origin is None or file.origin == messenger:
        return reply
    return replace(reply, text=f"{reply.text} {file.fallback or ''}".rstrip(), attachment=None)


def render(reply: Reply) -> str:
    """A reply as plain text: the text, a line naming any file, then its choices numbered."""
    lines = [reply.text]
    if reply.attachment is not None:
        lines.append(f"[{reply.attachment.kind}: {reply.attachment.name or reply.attachment.file_id}]")
    lines.extend(numbered(reply.options))
    return "\n".join(lines)
