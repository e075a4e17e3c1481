"""What the Labour Federation reports: counts, answers on time, ratings, and the rows of the annex."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from statistics import median
from typing import Any

from sqlalchemy import func
from sqlalchemy import select as sa_select
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from storage.models import (
    Assignment,
    AssignmentStatus,
    Concern,
    ConcernOrigin,
    Person,
    Rating,
    Status,
    Visibility,
)

BATCH = 1000  # concerns read at a time for an export: memory stays flat however many there are


@dataclass(frozen=True)
class Scope:
    """Which concerns a report covers: those of one dialogue session, or raised in a time range."""

    session_id: int | None = None
    since: datetime | None = None  # inclusive, UTC
    until: datetime | None = None  # exclusive, UTC

    def conditions(self) -> list[ColumnElement[bool]]:
        """The conditions on `Concern` that select the scope."""
        found: list[ColumnElement[bool]] = []
        if self.session_id is not None:
            found.append(col(Concern.id).in_(select(ConcernOrigin.concern_id)
                                             .where(ConcernOrigin.session_id == self.session_id)))
        if self.since is not None:
            found.append(col(Concern.created_at) >= self.since)
        if self.until is not None:
            found.append(col(Concern.created_at) < self.until)
        return found


@dataclass
class AgencyLine:
    """One agency's share of a report."""

    assigned: int = 0
    on_time: int = 0
    late: int = 0
    overdue: int = 0  # unanswered, past the deadline


@dataclass
class Summary:
    """The figures of a report."""

    total: int = 0
    by_status: dict[str, int] = field(default_factory=dict)
    by_category: dict[str, int] = field(default_factory=dict)
    by_place: dict[str, int] = field(default_factory=dict)
    agencies: dict[str, AgencyLine] = field(default_factory=dict)
    median_days: float | None = None  # from raising a concern to an agency's answer
    rating_average: float | None = None
    rated: int = 0

    @property
    def answered(self) -> int:
        """Answers given, on time or late."""
        return sum(a.on_time + a.late for a in self.agencies.values())

    @property
    def on_time_share(self) -> float | None:
        """The share of answers given by their deadline (None before any answer)."""
        answered = self.answered
        return sum(a.on_time for a in self.agencies.values()) / answered if answered else None


def _counts(session: Session, column: Any, conditions: list[ColumnElement[bool]]) -> dict[str, int]:
    query = select(column, func.count()).where(*conditions).group_by(column)
    return {str(key) if key is not None else "": int(n) for key, n in session.exec(query)}


def summarise(scope: Scope, *, today: date, due_end: Callable[[date], datetime], session: Session) -> Summary:
    """Counts by state, topic, place and agency; answers on time; median days to answer; ratings.

    `due_end(deadline)` is the moment (UTC) a deadline falls due: the end of its day, locally."""
    # Merged duplicates count in the states; elsewhere a concern is counted once, where it was kept.
    kept = [*scope.conditions(), col(Concern.status) != Status.DUPLICATE]
    summary = Summary(by_status=_counts(session, Concern.status, scope.conditions()),
                      by_category=_counts(session, Concern.category_code, kept),
                      by_place=_counts(session, Concern.place_code, kept))
    summary.total = sum(summary.by_status.values())
    days: list[float] = []
    # Plain rows, not model objects: a report reads every assignment of the scope.
    query = (sa_select(col(Assignment.agency_code), col(Assignment.status), col(Assignment.deadline),
                       col(Assignment.answered_at), col(Concern.created_at))
             .join(Concern, col(Concern.id) == Assignment.concern_id)
             .where(*kept, col(Assignment.status) != AssignmentStatus.CANCELLED))
    for agency, status, deadline, answered_at, raised in session.execute(query):
        line = summary.agencies.setdefault(agency, AgencyLine())
        line.assigned += 1
        if status == AssignmentStatus.ANSWERED and answered_at is not None:
            if answered_at < due_end(deadline):
                line.on_time += 1
            else:
                line.late += 1
            days.append((answered_at - raised).total_seconds() / 86400)
        elif deadline < today:
            line.overdue += 1
    summary.median_days = median(days) if days else None
    average, rated = session.exec(select(func.avg(Rating.score), func.count(col(Rating.id)))
                                  .join(Concern, col(Concern.id) == Rating.concern_id).where(*kept)).one()
    summary.rating_average = float(average) if average is not None else None
    summary.rated = int(rated)
    return summary


@dataclass
class ExportRow:
    """One concern as the annex lists it (plain rows with the models' column names); its author only
    when an admin asked for names, and never for an anonymous concern."""

    concern: Any
    assignments: list[Any]
    rating: float | None
    author: str | None = None


CONCERN_COLUMNS = [col(c) for c in (Concern.id, Concern.tracking_code, Concern.category_code, Concern.description,
                                    Concern.enterprise, Concern.place_code, Concern.created_at, Concern.status,
                                    Concern.me_too)]
ASSIGNMENT_COLUMNS = [col(c) for c in (Assignment.concern_id, Assignment.agency_code, Assignment.deadline,
                                       Assignment.answered_at, Assignment.answer_text)]


def export_rows(scope: Scope, *, session: Session, with_authors: bool = False) -> Iterator[ExportRow]:
    """The scope's concerns (merged duplicates are counted in the concern they joined), oldest first;
    `with_authors`: with who raised each (the worker's name, or the speaker's for one entered at a
    session), except anonymous ones."""
    last = 0
    while True:
        concerns = list(session.execute(
            sa_select(*CONCERN_COLUMNS).where(*scope.conditions(), col(Concern.status) != Status.DUPLICATE,
                                           col(Concern.id) > last).order_by(col(Concern.id)).limit(BATCH)))
        if not concerns:
            return
        ids = [c.id for c in concerns]
        assignments: dict[int, list[Any]] = defaultdict(list)
        for assignment in session.execute(sa_select(*ASSIGNMENT_COLUMNS).where(
                col(Assignment.concern_id).in_(ids), col(Assignment.status) != AssignmentStatus.CANCELLED)
                .order_by(col(Assignment.id))):
            assignments[assignment.concern_id].append(assignment)
        ratings = {concern_id: float(avg) for concern_id, avg in session.exec(
            select(Rating.concern_id, func.avg(Rating.score)).where(col(Rating.concern_id).in_(ids))
            .group_by(col(Rating.concern_id)))}
        authors = _authors(ids, session=session) if with_authors else {}
        for concern in concerns:
            yield ExportRow(concern, assignments.get(concern.id, []), ratings.get(concern.id), authors.get(concern.id))
        last = int(concerns[-1].id)


def _authors(ids: list[int], *, session: Session) -> dict[int, str]:
    """Who raised these concerns, where the union may know it (never an anonymous concern's author)."""
    named = session.execute(
        sa_select(col(Concern.id), col(Person.display_name), col(ConcernOrigin.speaker_name))
        .outerjoin(Person, col(Person.id) == col(Concern.author_id))
        .outerjoin(ConcernOrigin, col(ConcernOrigin.concern_id) == col(Concern.id))
        .where(col(Concern.id).in_(ids), col(Concern.visibility) != Visibility.ANONYMOUS))
    return {concern_id: speaker or name for concern_id, name, speaker in named if speaker or name}
