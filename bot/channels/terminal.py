"""The terminal channel: one person typing lines; choices print as a numbered list."""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.channels import Delivery, Pace, foreign_file_as_text, render
from bot.host import Host
from bot.sender import OutboxSender
from handlers.core import Attachment, Incoming, Option, Reply
from handlers.dispatch import Core
from storage.db import new_session
from storage.models import OutboxMessage, Role
from storage.outbox import options_of
from storage.people import get_or_create_person, set_role
from storage.reference import get_item, list_items

MESSENGER = "terminal"


class TerminalChannel:
    """Standard input and output: every terminal person of this shell reads the same screen."""

    messenger = MESSENGER
    typed_choices = True

    def __init__(self, out: TextIO, *, user_id: str) -> None:
        self.out = out
        self.user_id = user_id

    def incoming(self, line: str, *, display_name: str = "", language_code: str | None = None,
                 attachment: Attachment | None = None) -> Incoming:
        """One typed line as an event of this shell's person."""
        return Incoming(messenger=MESSENGER, chat_id=self.user_id, user_id=self.user_id,
                        display_name=display_name, language_code=language_code, text=line,
                        attachment=attachment)

    async def send_replies(self, incoming: Incoming, replies: list[Reply]) -> None:
        """Print the replies."""
        for reply in (foreign_file_as_text(r, self.messenger) for r in replies):
            file = reply.attachment
            if file is not None and file.data is not None:  # a chart or a report: saved, and its path shown
                path = Path(tempfile.mkdtemp(prefix="kiennghi-")) / (file.name or file.kind)
                path.write_bytes(file.data)
                reply = replace(reply, attachment=Attachment(file.kind, str(path), len(file.data)))
            self.out.write(render(reply) + "\n\n")
        self.out.flush()

    async def deliver(self, message: OutboxMessage, pace: Pace | None = None) -> Delivery:
        """Print a message for a terminal person; for someone else, with their address."""
        if pace is not None:
            await pace()
        prefix = "" if message.chat_id == self.user_id else f"[→ {message.chat_id}] "
        options = [Option.of_key(key, label) for key, label in options_of(message)]
        attachment = Attachment(message.file_kind, message.file_id) if message.file_id and message.file_kind else None
        self.out.write(prefix + render(Reply(message.text, options, attachment)) + "\n\n")
        self.out.flush()
        return Delivery(True)

    def invitation_link(self, payload: str) -> str | None:
        """A terminal has no links."""
        return None


def run_terminal(core: Core, stdin: TextIO, stdout: TextIO, *, user_id: str = "local",
                 display_name: str = "", prompt: bool = True) -> None:
    """Read lines until end of input, handle each as the terminal person, print the replies."""
    asyncio.run(_converse(core, stdin, stdout, user_id=user_id, display_name=display_name, prompt=prompt))


async def _converse(core: Core, stdin: TextIO, stdout: TextIO, *, user_id: str, display_name: str,
                    prompt: bool) -> None:
    host = Host(core, threads=0)  # one person typing: nothing to run concurrently
    channel = TerminalChannel(stdout, user_id=user_id)
    # No limits, no threads; a delivered message's numbers can be typed (see offer_choices).
    sender = OutboxSender(core.engine, {MESSENGER: channel.deliver}, threads=0, typed_choices={MESSENGER})
    if prompt:
        stdout.write("kiennghi shell: /start to begin, /help for commands, Ctrl-D to quit.\n")
    while True:
        if prompt:
            stdout.write("> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        incoming = channel.incoming(line.rstrip("\n"), display_name=display_name)
        outcome = await host.handle(incoming)
        await channel.send_replies(incoming, outcome.replies)
        await host.shown(outcome)
        await sender.drain()  # in a shell, every terminal person is here


def take_role(core: Core, as_role: str) -> str:
    """Make the terminal person a worker, officer, agency liaison or admin; their user id."""
    role, _, agency_code = as_role.partition(":")
    if role not in (Role.WORKER, Role.OFFICER, Role.AGENCY, Role.ADMIN):
        raise ValueError("use worker, officer, agency:<code> or admin")
    with new_session(core.engine) as session:
        if role == Role.AGENCY and get_item("agency", agency_code, session=session) is None:
            codes = ", ".join(a.code for a in list_items("agency", session=session))
            raise ValueError(f"unknown agency; known: {codes}")
        user_id = role if role != Role.AGENCY else f"agency-{agency_code}"
        person = get_or_create_person(MESSENGER, user_id, chat_id=user_id, display_name=role,
                                      session=session)
        if role != Role.WORKER:
            set_role(person, Role(role), agency_code or None, session=session)
        session.commit()
    return user_id
