"""A concern's lifecycle: which state may follow which, and the history of every change."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from locales import N_
from storage.cases import cancel_pending
from storage.concerns import add_status_change
from storage.models import Concern, Person, Role, Status, utcnow

S = Status
# Which state may follow which; anything else is refused.
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.NEW: frozenset({S.ACCEPTED, S.REJECTED, S.DUPLICATE, S.WITHDRAWN}),
    S.ACCEPTED: frozenset({S.ASSIGNED, S.REJECTED, S.DUPLICATE, S.WITHDRAWN}),
    S.ASSIGNED: frozenset({S.ANSWERED, S.WITHDRAWN, S.DUPLICATE}),
    S.ANSWERED: frozenset({S.RESOLVED, S.ASSIGNED, S.REOPENED, S.WITHDRAWN, S.CLOSED}),
    S.RESOLVED: frozenset({S.CLOSED, S.REOPENED}),
    S.CLOSED: frozenset({S.REOPENED}),
    S.REOPENED: frozenset({S.ACCEPTED, S.ASSIGNED, S.REJECTED, S.DUPLICATE, S.WITHDRAWN, S.RESOLVED}),
    S.REJECTED: frozenset(),
    S.DUPLICATE: frozenset(),
    S.WITHDRAWN: frozenset(),
}
ANSWERED_STATES = frozenset({S.ANSWERED, S.RESOLVED, S.CLOSED})
# What each state is called, for every reader (msgids).
STATUS_LABELS = {
    Status.NEW: N_("Received, waiting for the union"),
    Status.ACCEPTED: N_("Accepted by the union"),
    Status.ASSIGNED: N_("Sent to the responsible agency"),
    Status.ANSWERED: N_("Answered by the agency"),
    Status.RESOLVED: N_("Resolved"),
    Status.CLOSED: N_("Closed"),
    Status.REJECTED: N_("Not accepted"),
    Status.DUPLICATE: N_("Merged with a similar concern"),
    Status.WITHDRAWN: N_("Withdrawn"),
    Status.REOPENED: N_("Reopened"),
}


class TransitionRefused(Exception):
    """The change asked for is not in the lifecycle."""

    def __init__(self, from_status: Status, to_status: Status) -> None:
        super().__init__(f"{from_status} -> {to_status}")
        self.from_status = from_status
        self.to_status = to_status


def change_status(
    concern: Concern, to_status: Status, *, actor: Person | None, actor_role: Role | str,
    session: Session, note: str | None = None, at: datetime | None = None,
) -> None:
    """Move a concern to a new state, refusing moves outside the lifecycle, and record it."""
    from_status = Status(concern.status)
    if to_status not in TRANSITIONS[from_status]:
        raise TransitionRefused(from_status, to_status)
    at = at or utcnow()
    concern.status = to_status
    concern.updated_at = at
    session.add(concern)
    add_status_change(concern, from_status, to_status, actor=actor, actor_role=str(actor_role), note=note,
                      at=at, session=session)
    if to_status in (S.WITHDRAWN, S.DUPLICATE):
        cancel_pending(concern, session=session)  # the agencies have nothing left to answer
