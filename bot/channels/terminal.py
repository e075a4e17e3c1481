"""The terminal channel: one person typing lines; choices print as a numbered list."""

from __future__ import annotations

from typing import TextIO

from handlers.core import Incoming, Option, Reply
from handlers.dispatch import Core
from storage.db import new_session
from storage.outbox import due_messages, mark_sent, options_of
from storage.people import get_or_create_person, set_role
from storage.reference import get_item, list_items

MESSENGER = "terminal"


def render(reply: Reply) -> str:
    """A reply as plain text, its choices numbered (type the number or the text)."""
    lines = [reply.text]
    if reply.attachment is not None:
        lines.append(f"[{reply.attachment.kind}: {reply.attachment.file_id}]")
    lines.extend(f"  {number}. {option.label}" for number, option in enumerate(reply.options, 1))
    return "\n".join(lines)


def run_terminal(core: Core, stdin: TextIO, stdout: TextIO, *, user_id: str = "local",
                 display_name: str = "", prompt: bool = True) -> None:
    """Read lines until end of input, handle each as the terminal person, print the replies."""
    if prompt:
        stdout.write("kiennghi shell: /start to begin, /help for commands, Ctrl-D to quit.\n")
    counter = 0
    while True:
        if prompt:
            stdout.write("> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        counter += 1
        incoming = Incoming(messenger=MESSENGER, chat_id=user_id, user_id=user_id,
                            display_name=display_name, text=line.rstrip("\n"))
        for reply in core.handle(incoming):
            stdout.write(render(reply) + "\n\n")
        stdout.flush()
        deliver_outbox(core, stdout, user_id)


def deliver_outbox(core: Core, stdout: TextIO, user_id: str) -> None:
    """Print messages queued for terminal people (in a shell, all of them are here)."""
    with new_session(core.engine) as session:
        for message in due_messages([MESSENGER], session=session, limit=100):
            prefix = "" if message.chat_id == user_id else f"[→ {message.chat_id}] "
            options = [Option(key, label) for key, label in options_of(message)]
            stdout.write(prefix + render(Reply(message.text, options)) + "\n\n")
            mark_sent(message, session=session)


def take_role(core: Core, as_role: str) -> str:
    """Make the terminal person a worker, officer, agency liaison or admin; their user id."""
    role, _, agency_code = as_role.partition(":")
    if role not in ("worker", "officer", "agency", "admin"):
        raise ValueError("use worker, officer, agency:<code> or admin")
    with new_session(core.engine) as session:
        if role == "agency" and get_item("agency", agency_code, session=session) is None:
            codes = ", ".join(a.code for a in list_items("agency", session=session))
            raise ValueError(f"unknown agency; known: {codes}")
        user_id = role if role != "agency" else f"agency-{agency_code}"
        person = get_or_create_person(MESSENGER, user_id, chat_id=user_id, display_name=role,
                                      session=session)
        if role != "worker":
            set_role(person, role, agency_code or None, session=session)
        session.commit()
    return user_id
