"""The reminder sweep: what is due now, computed from the store, each notice sent at most once.

Nothing is scheduled ahead: every sweep reads the pending assignments and the record of notices
already sent (`SentNotice`), so a restart, a changed deadline or a new setting takes effect at the
next sweep. A notice is recorded in the same transaction that queues its message; of two
processes sweeping at once only one gets the record, and only it sends.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers.rules.calendar import ReminderPolicy
from handlers.rules.cases import union_staff
from handlers.rules.deadlines import time_left
from handlers.rules.notify import Verbatim, tell
from locales import N_, Catalogs, Plural, Translator
from storage.models import Person, Role
from storage.notices import (
    Due,
    arrivals_after,
    claim_notice,
    claim_notices,
    last_key,
    last_notice_at,
    pending_until,
    union_work,
)
from storage.outbox import OutboxBatch
from storage.people import liaisons_by_agency, people_with_role
from storage.reference import get_item

MAX_LISTED = 30  # concerns named in one message; the rest are counted
TITLE_CHARS = 40


@dataclass
class SweepReport:
    """How many messages one sweep queued, by kind."""

    stages: int = 0
    overdue: int = 0
    escalations: int = 0
    digests: int = 0
    arrivals: int = 0
    agencies: set[str] = field(default_factory=set)
    outbox: OutboxBatch = field(default_factory=OutboxBatch)  # written in one statement at the end

    @property
    def total(self) -> int:
        """All messages queued."""
        return self.stages + self.overdue + self.escalations + self.digests + self.arrivals


@lru_cache(maxsize=4096)  # a sweep asks again for every assignment sharing a deadline
def due_stage(deadline: date, today: date, policy: ReminderPolicy) -> int | None:
    """The latest reminder stage due by today (7, 3, 1 or 0 working days before), or None.

    Only the latest: after downtime, nobody gets "7 days left" once "1 day left" is due."""
    calendar = policy.calendar
    due = [k for k in policy.stages if calendar.working_days_before(deadline, k) <= today]
    return min(due) if due else None


@lru_cache(maxsize=4096)
def due_escalation(deadline: date, today: date, policy: ReminderPolicy) -> int | None:
    """Which escalation is due by today: 0 on the first working day overdue, then 1, 2... weekly."""
    first = policy.calendar.after(deadline)
    if today < first:
        return None
    every = policy.escalation_every_days
    # The weekly one falls on the working day on or before its date, so it may be due a little early.
    number = (today - first).days // every + 1
    while number > 0 and policy.calendar.on_or_before(first + timedelta(days=number * every)) > today:
        number -= 1
    return number


def sweep(*, session: Session, now: datetime, zone: ZoneInfo, policy: ReminderPolicy, catalogs: Catalogs,
          force: bool = False) -> SweepReport:
    """Queue every reminder, overdue notice, escalation, digest and arrivals notice due now.

    `force` (an admin's /remind now) runs the daily ones even before their hour, in quiet hours or
    on a day off; still at most once each. The caller commits."""
    report = SweepReport()
    local = now.astimezone(zone)
    today = local.date()
    if policy.is_quiet(local.time()) and not force:
        return report
    working_day = force or policy.calendar.is_working_day(today)
    # Messages are queued by the hundred: flushed once at the commit, not before every query.
    with session.no_autoflush:
        if working_day and (force or local.time() >= policy.hour):
            _deadline_notices(session, today, policy, catalogs, report)
            _digest(session, now, today, policy, catalogs, report)
        if working_day and policy.arrivals_minutes > 0 and (force or policy.in_working_hours(local.time())):
            _arrivals(session, now, policy, catalogs, report)
    report.outbox.write(session=session)
    return report


def _deadline_notices(session: Session, today: date, policy: ReminderPolicy, catalogs: Catalogs,
                      report: SweepReport) -> None:
    horizon = policy.calendar.working_days_after(today, max(policy.stages, default=0)) + timedelta(days=7)
    overdue: dict[str, list[Due]] = defaultdict(list)
    candidates: dict[str, dict[str, tuple[str, int, Due]]] = {"stage": {}, "escalation": {}}
    for due in pending_until(horizon, session=session):
        agency, deadline = due.agency_code, due.deadline
        if deadline < today:
            overdue[agency].append(due)
            number = due_escalation(deadline, today, policy)
            if number is not None:
                candidates["escalation"][f"{due.assignment_id}:{deadline}:{number}"] = (agency, number, due)
            continue
        stage = due_stage(deadline, today, policy)
        if stage is not None:
            candidates["stage"][f"{due.assignment_id}:{deadline}:{stage}"] = (agency, stage, due)
    # One statement records them all; only what no sweep (of this process or another) sent yet comes back.
    staff = liaisons_by_agency(session=session)  # one query for every agency's liaisons
    stages: dict[tuple[str, int], list[Due]] = defaultdict(list)
    escalated: dict[str, list[Due]] = defaultdict(list)
    for kind, found in candidates.items():
        for key in sorted(claim_notices(kind, list(found), session=session)):
            agency, number, row = found[key]
            if kind == "stage":
                stages[(agency, number)].append(row)
            else:
                escalated[agency].append(row)
    for (agency, _stage), rows in sorted(stages.items()):
        rows.sort(key=lambda due: (due.deadline, due.assignment_id))
        told = _tell_agency(agency, Plural(
            "To: {agency}\nA reminder from the {federation}: "
            "{count} concern is due for an answer soon:\n{lines}\nPlease answer in writing before the deadline.",
            "To: {agency}\nA reminder from the {federation}: "
            "{count} concerns are due for an answer soon:\n{lines}\nPlease answer in writing before the deadline.",
            len(rows)), rows, today, session, catalogs, staff, report.outbox, policy)
        report.stages += told
        if told:
            report.agencies.add(agency)
    claimed = claim_notices("overdue", [f"{agency}:{today}" for agency in overdue], session=session)
    for agency, rows in sorted(overdue.items()):
        if f"{agency}:{today}" not in claimed:
            continue
        told = _tell_agency(agency, Plural(
            "To: {agency}\n{count} concern is past its deadline:\n{lines}\nPlease answer in writing without delay.",
            "To: {agency}\n{count} concerns are past their deadline:\n{lines}\n"
            "Please answer in writing without delay.",
            len(rows)), rows, today, session, catalogs, staff, report.outbox, policy)
        report.overdue += told
        if told:
            report.agencies.add(agency)
    if escalated:
        sections = _by_language(lambda t: "\n\n".join(_section(t, agency, rows, today, session)
                                                       for agency, rows in sorted(escalated.items())))
        for admin in people_with_role(Role.ADMIN, session=session):
            tell(admin, N_("Concerns past their deadline, by agency:\n{sections}"), catalogs=catalogs,
                 into=report.outbox,
                 session=session, options=[("/deadlines", N_("Deadlines by agency"))], sections=sections)
            report.escalations += 1


def _by_language(render: Callable[[Translator], str]) -> Callable[[Translator], str]:
    """The same text for every reader of one language, made once per language."""
    made: dict[str, str] = {}

    def text(t: Translator) -> str:
        if t.locale not in made:
            made[t.locale] = render(t)
        return made[t.locale]

    return text


def _line(t: Translator, due: Due, today: date, session: Session) -> str:
    topic = get_item("category", due.category_code, session=session)
    title = due.description[:TITLE_CHARS] + ("…" if len(due.description) > TITLE_CHARS else "")
    return t("• {code} · {topic} · “{title}” · by {date} ({left})", code=due.tracking_code,
             topic=t.name(topic) if topic else "–", title=title or t("(voice note)"),
             date=t.date(due.deadline), left=time_left(t, due.deadline, today))


def _lines(t: Translator, rows: list[Due], today: date, session: Session) -> str:
    lines = [_line(t, due, today, session) for due in rows[:MAX_LISTED]]
    if len(rows) > MAX_LISTED:
        lines.append(t("… and {count} more.", count=len(rows) - MAX_LISTED))
    return "\n".join(lines)


def _section(t: Translator, agency: str, rows: list[Due], today: date,
             session: Session) -> str:
    item = get_item("agency", agency, session=session)
    return t("{agency} ({count}):", agency=t.name(item) if item else agency, count=len(rows)) + "\n" + _lines(
        t, rows, today, session)


def _tell_agency(agency: str, message: Plural, rows: list[Due], today: date, session: Session, catalogs: Catalogs,
                 staff: dict[str, list[Person]], into: OutboxBatch, policy: ReminderPolicy) -> int:
    """One message to each liaison of the agency; how many were queued."""
    options: list[tuple[str, str]] = [(f"/case {due.tracking_code}", Verbatim(due.tracking_code))
                                      for due in rows[:MAX_LISTED]]
    lines = _by_language(lambda t: _lines(t, rows, today, session))
    people = staff.get(agency, [])
    for liaison in people:
        tell(liaison, message, catalogs=catalogs, session=session, options=options, count=len(rows), lines=lines,
             agency=get_item("agency", agency, session=session) or agency, into=into,
             federation=lambda t: policy.federation_in(t.locale))
    return len(people)


def _digest(session: Session, now: datetime, today: date, policy: ReminderPolicy, catalogs: Catalogs,
            report: SweepReport) -> None:
    if not claim_notice("digest", str(today), session=session):
        return
    work = union_work(today=today, week_end=today + timedelta(days=6), since=now - timedelta(days=1),
                      session=session)
    if not any(work.values()):
        return  # recorded, so an empty morning stays quiet all day
    options = [("/queue", N_("Queue")), ("/deadlines", N_("Deadlines by agency"))]
    if work["undelivered"]:
        options.append(("/undelivered", N_("Undelivered messages")))
    for officer in union_staff(session=session):
        tell(officer, N_("Summary for {date}:\n• New, not yet accepted: {new}\n• Answers to relay: {to_relay}\n"
                         "• Due this week: {due_this_week}\n• Overdue: {overdue}\n"
                         "• Requests for more time: {extensions}\n• Messages not delivered: {undelivered}"),
             catalogs=catalogs, session=session, options=options, into=report.outbox, date=today, new=work["new"],
             to_relay=work["to_relay"], due_this_week=work["due_this_week"], overdue=work["overdue"],
             extensions=work["extensions"], undelivered=work["undelivered"])
        report.digests += 1


def _arrivals(session: Session, now: datetime, policy: ReminderPolicy, catalogs: Catalogs,
              report: SweepReport) -> None:
    interval = timedelta(minutes=policy.arrivals_minutes)
    last = last_notice_at("arrivals", session=session)
    if last is not None and now - last < interval:
        return
    # Told by id, not by time: the ids say exactly which concerns were in the last batch.
    told = last_key("arrivals", session=session)
    arrived = arrivals_after(int(told) if told else 0, session=session, limit=MAX_LISTED + 1)
    if not arrived or not claim_notice("arrivals", f"{arrived[:MAX_LISTED][-1].id:012d}", session=session, at=now):
        return

    def lines(t: Translator) -> str:
        shown = [t("• {code} · {topic}", code=c.tracking_code,
                   topic=t.name(item) if (item := get_item("category", c.category_code, session=session)) else "–")
                 for c in arrived[:MAX_LISTED]]
        if len(arrived) > MAX_LISTED:
            shown.append(t("… and more."))
        return "\n".join(shown)

    for officer in union_staff(session=session):
        tell(officer, N_("New concerns have arrived:\n{lines}"), catalogs=catalogs, session=session, into=report.outbox,
             options=[("/queue new", N_("Open the queue"))], lines=lines)
        report.arrivals += 1
