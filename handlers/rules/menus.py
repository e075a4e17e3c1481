"""Each role's command menu, in the person's language, set on their chat when their role changes."""

from __future__ import annotations

from sqlmodel import Session

from locales import N_, Catalogs
from storage.models import Person, Role
from storage.outbox import enqueue

# An outbox message of this kind is no text to show: it sets the chat's command menu, one
# "command description" per line (on messengers that have such menus; see Policy.command_menus).
MENU = "menu"

WORKER_MENU = [
    ("new", N_("Send a new concern")),
    ("status", N_("Your concerns and their status")),
    ("help", N_("How it works")),
    ("cancel", N_("Stop what you are doing")),
    ("language", N_("Change the language")),
]
OFFICER_MENU = [
    ("queue", N_("New concerns to sort")),
    ("find", N_("Search concerns")),
    ("deadlines", N_("Deadlines by agency")),
    ("sessions", N_("Dialogue sessions")),
    ("enter", N_("Enter a concern raised at a session")),
    ("stats", N_("Figures and a chart")),
    ("export", N_("The summary table as a spreadsheet")),
    ("undelivered", N_("Messages the bot could not deliver")),
    ("help", N_("Commands and how to use them")),
    ("cancel", N_("Stop what you are doing")),
    ("language", N_("Change the language")),
]
ADMIN_MENU = OFFICER_MENU[:-3] + [
    ("invite", N_("Invite an officer or an agency liaison")),
    ("staff", N_("Who holds which role")),
    ("broadcast", N_("An announcement to workers")),
    ("reload", N_("Read the reference data file again")),
] + OFFICER_MENU[-3:]
AGENCY_MENU = [
    ("mine", N_("Concerns assigned to the agency")),
    ("help", N_("How to answer")),
    ("cancel", N_("Stop the current step")),
    ("language", N_("Change the language")),
]
ROLE_MENUS = {Role.WORKER: WORKER_MENU, Role.OFFICER: OFFICER_MENU, Role.ADMIN: ADMIN_MENU, Role.AGENCY: AGENCY_MENU}


def menu_lines(person: Person, catalogs: Catalogs) -> list[tuple[str, str]]:
    """The person's commands and what each does, in their language."""
    t = catalogs.pick(person.locale, person.messenger_locale)
    return [(name, t(text)) for name, text in ROLE_MENUS[Role(person.role)]]


def queue_menu(person: Person, *, catalogs: Catalogs, session: Session, messengers: frozenset[str]) -> None:
    """Queue the person's command menu for their chat, if their messenger is one of `messengers`."""
    if person.messenger not in messengers:
        return
    lines = [f"{name} {text}" for name, text in menu_lines(person, catalogs)]
    enqueue(person, "\n".join(lines), session=session, file_kind=MENU)
