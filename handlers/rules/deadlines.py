"""Deadlines: the default one, days left or overdue, and requests for more time."""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlmodel import Session

from locales import Translator
from storage.cases import add_note, assignments_of
from storage.models import Assignment, AssignmentStatus, Concern, DialogueSession, ExtensionStatus, Person
from storage.sessions import session_of


def default_deadline(today: date, days: int) -> date:
    """The deadline an assignment gets when the officer does not name one."""
    return today + timedelta(days=days)


def deadline_for(concern: Concern, today: date, days: int, *, session: Session) -> tuple[date, DialogueSession | None]:
    """The deadline an assignment gets by default: its session's, if it is still ahead, else `days` from today."""
    dialogue = session_of(concern, session=session)
    if dialogue is not None and dialogue.deadline > today:
        return dialogue.deadline, dialogue
    return default_deadline(today, days), None


def move_deadline(concern: Concern, until: date, reason: str, *, officer: Person,
                  session: Session) -> list[Assignment]:
    """Give every unanswered assignment of a concern a new deadline, noted on the case; those moved."""
    moved = [a for a in assignments_of(concern, session=session)
             if a.status == AssignmentStatus.PENDING and a.deadline != until]
    for assignment in moved:
        add_note(concern, "deadline", deadline_note(assignment, until, reason), actor=officer, session=session)
        assignment.deadline = until
        if assignment.extension_status == ExtensionStatus.REQUESTED:
            assignment.extension_status = ExtensionStatus.APPROVED if until >= (
                assignment.extension_requested or until) else ExtensionStatus.REFUSED
        session.add(assignment)
    return moved


def deadline_note(assignment: Assignment, new: date, reason: str, *, old: date | None = None) -> str:
    """A moved deadline as stored in a case note: data, so each reader sees it in their language."""
    return json.dumps({"agency": assignment.agency_code, "from": (old or assignment.deadline).isoformat(),
                       "to": new.isoformat(), "reason": reason}, ensure_ascii=False)


def days_left(deadline: date, today: date) -> int:
    """Whole days until the deadline: 0 on the day, negative once overdue."""
    return (deadline - today).days


def time_left(t: Translator, deadline: date, today: date) -> str:
    """'5 days left', 'due today' or '2 days overdue', in the reader's language."""
    days = days_left(deadline, today)
    if days > 0:
        return t.plural("{days} day left", "{days} days left", days, days=days)
    if days == 0:
        return t("due today")
    return t.plural("{days} day overdue", "{days} days overdue", -days, days=-days)


def request_extension(assignment: Assignment, until: date, reason: str, *, session: Session) -> None:
    """Record an agency's request for a later deadline; the union decides."""
    if until <= assignment.deadline:
        raise ValueError("an extension must end after the current deadline")
    assignment.extension_requested = until
    assignment.extension_reason = reason
    assignment.extension_status = ExtensionStatus.REQUESTED
    session.add(assignment)


def pending_extension(assignment: Assignment | None) -> bool:
    """Whether an assignment has a request for more time waiting for the union."""
    return (assignment is not None and assignment.extension_status == ExtensionStatus.REQUESTED
            and assignment.extension_requested is not None)


def decide_extension(assignment: Assignment, concern: Concern, *, approve: bool, officer: Person,
                     session: Session) -> date:
    """Approve (the deadline moves, noted on the case) or refuse a request; the deadline after."""
    if not pending_extension(assignment):
        raise ValueError("no request for more time is pending")
    if approve:
        old, new = assignment.deadline, assignment.extension_requested
        assert new is not None
        assignment.deadline = new
        assignment.extension_status = ExtensionStatus.APPROVED
        add_note(concern, "deadline", deadline_note(assignment, new, assignment.extension_reason or "", old=old),
                 actor=officer, session=session)
    else:
        assignment.extension_status = ExtensionStatus.REFUSED
    session.add(assignment)
    return assignment.deadline
