"""How a concern and the menus read, shared by every role."""

from __future__ import annotations

from collections.abc import Callable

from handlers.core import Choice, Context, Option
from handlers.rules.cases import may_rate, may_reopen
from handlers.rules.lifecycle import STATUS_LABELS, TransitionRefused
from locales import N_, Translator
from storage.cases import assignments_of, has_rated
from storage.concerns import attachments_of, get_concern_by_code, parse_tracking_code
from storage.models import OPEN_STATES, AssignmentStatus, Concern, Person, Role, Status
from storage.reference import get_item

# Stored as these msgids, so each reader sees the reason in their own language.
REJECT_REASONS = [
    N_("Not a labour matter"),
    N_("Not enough information to act on"),
    N_("Already resolved"),
    N_("Outside local jurisdiction"),
]


def reason_text(t: Translator, stored: str) -> str:
    """A rejection reason in the reader's language (a reason an officer typed is shown as typed)."""
    return t(stored) if stored in REJECT_REASONS else stored


def status_label(ctx: Context, status: Status) -> str:
    """A state as the reader calls it."""
    return ctx.t(STATUS_LABELS[status])


def main_menu(ctx: Context) -> list[Option]:
    """The person's main choices: a worker's, or their staff role's."""
    role = ctx.person.role
    if role in (Role.OFFICER, Role.ADMIN):
        first = [Option(Choice.command("queue"), ctx.t("Queue"))]
        if role == Role.ADMIN:
            first.append(Option(Choice.command("staff"), ctx.t("Staff")))
        return [*first, Option(Choice.command("help"), ctx.t("Help"))]
    if role == Role.AGENCY:
        return [Option(Choice.command("mine"), ctx.t("Assigned to us")), Option(Choice.command("help"), ctx.t("Help"))]
    return [
        Option(Choice.command("new"), ctx.t("New concern")),
        Option(Choice.command("status"), ctx.t("My concerns")),
        Option(Choice.command("help"), ctx.t("Help")),
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


def not_found(ctx: Context, typed: str) -> None:
    """The one reply for a code that is unknown, or not the reader's to see, in the reader's register."""
    code = typed[:20]
    if ctx.person.role == Role.AGENCY:
        ctx.say(ctx.t("Concern {code} is not among those assigned to your agency.", code=code),
                main_menu(ctx))
    elif ctx.person.role == Role.WORKER:
        ctx.say(ctx.t("No concern has the code {code}. Please check it and try again.", code=code), main_menu(ctx))
    else:
        ctx.say(ctx.t("No concern has the code {code}.", code=code))


def outside_hint(ctx: Context) -> str:
    """What this person can do from here, naming only buttons they have."""
    if ctx.person.role == Role.AGENCY:
        return ctx.t("Please choose “Assigned to us”, or send a concern's code (KN-…) to open it.")
    if ctx.person.role in (Role.OFFICER, Role.ADMIN):
        return ctx.t("Choose “Queue”, or send a concern's code (KN-…) to open it.")
    return ctx.t("To send a concern, choose “New concern”.\nTo follow one, send its tracking code.")


def concern_from_args(ctx: Context, args: str | None = None, *,
                      may_see: Callable[[Concern], bool] | None = None) -> Concern | None:
    """The concern named by the command's first argument, or a reply saying it was not found.

    A concern the reader may not see (`may_see` says no) reads as not found, so nothing is revealed."""
    text = (ctx.incoming.args if args is None else args).split(" ", 1)[0]
    code = parse_tracking_code(text) if text else None
    concern = get_concern_by_code(code, session=ctx.session) if code else None
    if concern is not None and (may_see is None or may_see(concern)):
        return concern
    if text:
        not_found(ctx, text)
    else:
        ctx.say(ctx.t("Please add the tracking code, for example: /{command} KN-XXXX-XXXX",
                      command=ctx.incoming.command or "status"))
    return None


def dialog_concern(ctx: Context) -> Concern:
    """The concern the open dialog is about (concerns are never deleted)."""
    concern = ctx.session.get(Concern, ctx.data["concern"])
    assert concern is not None
    return concern


def refused(ctx: Context, exc: TransitionRefused) -> None:
    """Say clearly that a change is not in the lifecycle."""
    ctx.say(ctx.t("A concern that is “{current}” cannot become “{target}”.",
                  current=status_label(ctx, exc.from_status), target=status_label(ctx, exc.to_status)))


def concern_view(ctx: Context, concern: Concern, *, for_author: bool) -> tuple[str, list[Option]]:
    """A concern as a worker sees it: state, dates, agencies and answers; never who raised it."""
    lines = [
        ctx.t("Concern {code}", code=concern.tracking_code),
        ctx.t("Topic: {value}", value=category_name(ctx, concern.category_code)),
        ctx.t("Status: {value}", value=status_label(ctx, concern.status)),
        ctx.t("Sent: {date}", date=ctx.t.date(concern.created_at)),
        ctx.t("Last updated: {date}", date=ctx.t.date(concern.updated_at)),
    ]
    if concern.status == Status.REJECTED and concern.reject_reason:
        lines.append(ctx.t("Reason: {reason}", reason=reason_text(ctx.t, concern.reject_reason)))
        lines.append(ctx.t("You can send a new concern, with more detail."))
    if concern.status == Status.DUPLICATE and concern.merged_into_id:
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
        if assignment.status == AssignmentStatus.ANSWERED and assignment.relayed_at is not None:
            lines.append(ctx.t("Answer from {agency} ({date}):\n{answer}", agency=name,
                               date=ctx.t.date(assignment.answered_at or concern.updated_at),
                               answer=assignment.answer_text or "–"))
        elif assignment.status == AssignmentStatus.ANSWERED:
            lines.append(ctx.t("{agency} has answered; the union is reviewing the answer.", agency=name))
        elif assignment.status == AssignmentStatus.PENDING:
            lines.append(ctx.t("{agency}: answer expected by {date}", agency=name,
                               date=ctx.t.date(assignment.deadline)))
    return "\n".join(lines), worker_actions(ctx, concern)


def worker_actions(ctx: Context, concern: Concern) -> list[Option]:
    """What whoever holds the code may do next with the concern: only what will work."""
    code = concern.tracking_code
    options: list[Option] = []
    rater = ctx.person if concern.author_id is not None else None  # an anonymous concern's holder is nobody
    if may_rate(concern, session=ctx.session) and not has_rated(concern, rater, session=ctx.session):
        options.append(Option(Choice.command("rate", code), ctx.t("Rate the answer")))
    if may_reopen(concern, now=ctx.now, days=ctx.policy.reopen_days):
        options.append(Option(Choice.command("reopen", code), ctx.t("Not resolved")))
    if concern.status in OPEN_STATES:
        options.append(Option(Choice.command("withdraw", code), ctx.t("Withdraw")))
    return options


MESSENGER_NAMES = {"telegram": "Telegram", "zalo": "Zalo", "zalo_oa": "Zalo OA", "terminal": "Terminal"}
# Common delivery errors, in words an officer understands; checked in order, by a fragment of the error.
DELIVERY_ERRORS = [
    ("blocked by the user", N_("the person has blocked the bot")),
    ("user is deactivated", N_("the account no longer exists")),
    ("chat not found", N_("the chat does not exist or never started the bot")),
    ("Forbidden", N_("the bot may not write to this person")),
    ("file", N_("the file could not be sent")),
    ("TimedOut", N_("the messenger could not be reached")),
    ("NetworkError", N_("the messenger could not be reached")),
]


def messenger_name(code: str) -> str:
    """A messenger as people write it: Telegram, Zalo."""
    return MESSENGER_NAMES.get(code, code.capitalize())


def delivery_error(t: Translator, error: str) -> str:
    """Why a message was not delivered, in plain words (the raw error when it is not a common one)."""
    return next((t(words) for fragment, words in DELIVERY_ERRORS if fragment.lower() in error.lower()), error)


def display_name(person: Person | None) -> str:
    """A person's name as staff see it."""
    if person is None:
        return "–"
    return person.display_name or f"{messenger_name(person.messenger)} {person.external_id}"


ROLE_LABELS = {Role.OFFICER: N_("union officer"), Role.AGENCY: N_("agency liaison"), Role.ADMIN: N_("admin")}


def role_label(ctx: Context, role: Role, agency_code: str | None = None) -> str:
    """A staff role as the reader calls it, with the agency for a liaison."""
    who = ctx.t(ROLE_LABELS[role])
    return f"{who} – {agency_name(ctx, agency_code)}" if agency_code else who
