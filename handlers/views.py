"""How a concern and the menus read, shared by every role."""

from __future__ import annotations

from locales import N_
from handlers.core import Context, Option
from storage.cases import assignments_of
from storage.concerns import OPEN_STATES, attachments_of
from storage.models import Concern, Person
from storage.reference import get_item

STATUS_LABELS = {
    "new": N_("Received, waiting for the union"),
    "accepted": N_("Accepted by the union"),
    "assigned": N_("Sent to the responsible agency"),
    "answered": N_("Answered by the agency"),
    "resolved": N_("Resolved"),
    "closed": N_("Closed"),
    "rejected": N_("Not accepted"),
    "duplicate": N_("Merged with a similar concern"),
    "withdrawn": N_("Withdrawn"),
    "reopened": N_("Reopened"),
}


def main_menu(ctx: Context) -> list[Option]:
    """The person's main choices: a worker's, or their staff role's."""
    role = ctx.person.role
    if role in ("officer", "admin"):
        first = [Option("/queue", ctx.t("Queue"))]
        if role == "admin":
            first.append(Option("/staff", ctx.t("Staff")))
        return [*first, Option("/help", ctx.t("Help"))]
    if role == "agency":
        return [Option("/mine", ctx.t("Assigned to us")), Option("/help", ctx.t("Help"))]
    return [
        Option("/new", ctx.t("New concern")),
        Option("/status", ctx.t("My concerns")),
        Option("/help", ctx.t("Help")),
    ]


def place_name(ctx: Context, code: str | None) -> str:
    """The name of a district or industrial park, or a dash."""
    item = get_item("industrial_park", code, session=ctx.session) or get_item(
        "district", code, session=ctx.session)
    return ctx.t.name(item) if item else "–"


def category_name(ctx: Context, code: str | None) -> str:
    """The name of a category, or a dash."""
    item = get_item("category", code, session=ctx.session)
    return ctx.t.name(item) if item else "–"


def agency_name(ctx: Context, code: str | None) -> str:
    """The name of an agency, or its code if it left the reference data."""
    item = get_item("agency", code, session=ctx.session)
    return ctx.t.name(item) if item else str(code)


def concern_view(ctx: Context, concern: Concern, *, for_author: bool) -> tuple[str, list[Option]]:
    """A concern as a worker sees it: state, dates, agencies and answers; never who raised it."""
    lines = [
        ctx.t("Concern {code}", code=concern.tracking_code),
        ctx.t("Topic: {value}", value=category_name(ctx, concern.category_code)),
        ctx.t("State: {value}", value=ctx.t(STATUS_LABELS[concern.status])),
        ctx.t("Sent: {date}", date=ctx.t.date(concern.created_at)),
        ctx.t("Last change: {date}", date=ctx.t.date(concern.updated_at)),
    ]
    if concern.status == "rejected" and concern.reject_reason:
        lines.append(ctx.t("Reason: {reason}", reason=concern.reject_reason))
    if concern.status == "duplicate" and concern.merged_into_id:
        kept = ctx.session.get(Concern, concern.merged_into_id)
        if kept is not None:
            lines.append(ctx.t("Followed together with {code}.", code=kept.tracking_code))
    if for_author:
        lines.append(ctx.t("Content: {value}", value=concern.description or ctx.t("(voice note)")))
        files = attachments_of(concern, session=ctx.session)
        if files:
            lines.append(ctx.t("Files attached: {n}", n=len(files)))
    for assignment in assignments_of(concern, session=ctx.session):
        name = agency_name(ctx, assignment.agency_code)
        # Workers see an answer once the union has reviewed and relayed it.
        if assignment.status == "answered" and assignment.relayed_at is not None:
            lines.append(ctx.t("Answer from {agency} ({date}):\n{answer}", agency=name,
                               date=ctx.t.date(assignment.answered_at or concern.updated_at),
                               answer=assignment.answer_text or "–"))
        else:
            lines.append(ctx.t("{agency}: answer expected by {date}", agency=name,
                               date=ctx.t.date(assignment.deadline)))
    return "\n".join(lines), worker_actions(ctx, concern)


def worker_actions(ctx: Context, concern: Concern) -> list[Option]:
    """What whoever holds the code may do next with the concern."""
    code = concern.tracking_code
    options: list[Option] = []
    if concern.status in ("answered", "resolved", "closed"):
        options.append(Option(f"/rate {code}", ctx.t("Rate the answer")))
    if concern.status in ("answered", "resolved", "closed"):
        options.append(Option(f"/reopen {code}", ctx.t("Not resolved")))
    if concern.status in OPEN_STATES:
        options.append(Option(f"/withdraw {code}", ctx.t("Withdraw")))
    return options


def display_name(person: Person | None) -> str:
    """A person's name as staff see it."""
    if person is None:
        return "–"
    return person.display_name or f"{person.messenger}:{person.external_id}"
