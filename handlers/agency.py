"""The agency liaison's side: concerns assigned to my agency, answers, requests for more time."""

from __future__ import annotations

from datetime import date, timedelta

from handlers.core import Answer, Choice, Context, Option, parse_date, text_answer
from handlers.routing import Flow, Router
from handlers.rules.cases import record_answer, union_staff
from handlers.rules.deadlines import pending_extension, request_extension
from handlers.rules.deadlines import time_left as deadline_time_left
from handlers.views import agency_name, category_name, concern_from_args, not_found, place_name
from locales import N_
from storage.cases import agency_assignments, assignment_for
from storage.models import Assignment, AssignmentStatus, Concern, Role
from storage.reference import get_item

router = Router("agency", roles=(Role.AGENCY,))
ANSWER = router.flow("answer", ["text", "document", "confirm"],
                     cancelled=N_("Cancelled. Your agency's answer has not been sent."))
EXTEND = router.flow("extend", ["date", "reason"], cancelled=N_("Cancelled. No request for more time was sent."))
MIN_ANSWER = 10
MAX_ANSWER = 3000


def time_left(ctx: Context, assignment: Assignment) -> str:
    """'5 days left', 'due today' or '2 days overdue'."""
    return deadline_time_left(ctx.t, assignment.deadline, ctx.today())


@router.command("mine")
def mine(ctx: Context) -> None:
    """Concerns assigned to my agency and not yet answered, nearest deadline first."""
    rows = agency_assignments(str(ctx.person.agency_code), session=ctx.session)
    if not rows:
        ctx.say(ctx.t("No concern is waiting for an answer from {agency}.",
                      agency=agency_name(ctx, ctx.person.agency_code)))
        return
    lines = [ctx.t("Waiting for an answer from {agency}:", agency=agency_name(ctx, ctx.person.agency_code))]
    for assignment, concern in rows:
        lines.append(ctx.t("{code} · {topic} · by {date} ({left})", code=concern.tracking_code,
                           topic=category_name(ctx, concern.category_code),
                           date=ctx.t.date(assignment.deadline), left=time_left(ctx, assignment)))
    ctx.say("\n".join(lines), [Option(Choice.command("case", c.tracking_code), c.tracking_code) for _, c in rows],
            columns=2)


def my_assignment(ctx: Context, concern: Concern) -> Assignment | None:
    """My agency's assignment for this concern; others' concerns are as if they did not exist."""
    assignment = assignment_for(concern, ctx.person.agency_code, session=ctx.session)
    if assignment is None:
        not_found(ctx, concern.tracking_code)
    return assignment


@router.command("case")
def open_case(ctx: Context) -> None:
    """What an agency may see of its concern: content, topic, enterprise, place, deadline. Never the worker."""
    concern = concern_from_args(ctx)
    assignment = my_assignment(ctx, concern) if concern is not None else None
    if concern is None or assignment is None:
        return
    code = concern.tracking_code
    lines = [
        ctx.t("Concern {code}", code=code),
        ctx.t("Topic: {value}", value=category_name(ctx, concern.category_code)),
        ctx.t("Enterprise: {value}", value=concern.enterprise or "–"),
        ctx.t("Place: {value}", value=place_name(ctx, concern.place_code)),
        ctx.t("Workers concerned: {count}", count=concern.me_too),
        ctx.t("Content: {value}", value=concern.description or ctx.t("(voice note, ask the union)")),
        ctx.t("Answer by: {date} ({left})", date=ctx.t.date(assignment.deadline), left=time_left(ctx, assignment)),
    ]
    options: list[Option] = []
    if assignment.status == AssignmentStatus.ANSWERED:
        lines.append(ctx.t("Your answer ({date}): {text}", date=ctx.t.date(assignment.answered_at or ctx.now),
                           text=assignment.answer_text or "–"))
    elif assignment.status == AssignmentStatus.CANCELLED:
        lines.append(ctx.t("{code} was withdrawn or merged with another concern: there is nothing to answer.",
                           code=code))
    else:
        options = [Option(Choice.command("answer", code), ctx.t("Answer")),
                   Option(Choice.command("extend", code), ctx.t("Ask for more time"))]
    if pending_extension(assignment):
        lines.append(ctx.t("More time requested until {date}; waiting for the union.",
                           date=ctx.t.date(assignment.extension_requested or assignment.deadline)))
    ctx.say("\n".join(lines), options, columns=2)


def _start_on_assignment(ctx: Context, flow: Flow) -> None:
    concern = concern_from_args(ctx)
    if concern is None:
        return
    assignment = my_assignment(ctx, concern)
    if assignment is None:
        return
    if assignment.status == AssignmentStatus.CANCELLED:
        ctx.say(ctx.t("{code} was withdrawn or merged with another concern: there is nothing to answer.",
                      code=concern.tracking_code))
        return
    if assignment.status == AssignmentStatus.ANSWERED:
        ctx.say(ctx.t("Your agency already answered {code} on {date}.", code=concern.tracking_code,
                      date=ctx.t.date(assignment.answered_at or ctx.now)))
        return
    ctx.start(flow, {"assignment": assignment.id})


def _flow_assignment(ctx: Context) -> tuple[Assignment, Concern]:
    assignment = ctx.session.get(Assignment, ctx.data["assignment"])
    assert assignment is not None
    concern = ctx.session.get(Concern, assignment.concern_id)
    assert concern is not None
    return assignment, concern


@router.command("answer")
def answer(ctx: Context) -> None:
    """Answer a concern in writing, optionally with the signed document."""
    _start_on_assignment(ctx, ANSWER)


@ANSWER.step("text")
def ask_answer_text(ctx: Context, answer: Answer | None) -> None:
    """The written answer."""
    _, concern = _flow_assignment(ctx)
    prompt = ctx.t("Type your agency's answer to {code} ({min} to {max} characters).",
                   code=concern.tracking_code, min=MIN_ANSWER, max=ctx.t.number(MAX_ANSWER))
    text = text_answer(ctx, answer, prompt, low=MIN_ANSWER, high=MAX_ANSWER)
    if text is None:
        return
    ctx.data["text"] = text
    ctx.goto("document")


@ANSWER.step("document")
def ask_answer_document(ctx: Context, answer: Answer | None) -> None:
    """The official document (PDF or image), or none."""
    options = [Option(Choice("doc", "none"), ctx.t("No document"))]
    if answer is None:
        ctx.say(ctx.t("Please attach the signed, stamped written answer of your agency (PDF or photo), "
                      "or choose “No document”."), options)
        return
    media = answer.attachment
    if answer.picked("doc") != "none" and (media is None or media.kind not in ("document", "photo")):
        ctx.say(ctx.t("Please send a PDF or a photo, or choose “No document”."), options)
        return
    ctx.data["file"] = [media.kind, media.file_id] if media else None
    ctx.goto("confirm")


@ANSWER.step("confirm")
def confirm_answer(ctx: Context, answer: Answer | None) -> None:
    """The answer as the union will read it; sent only when the liaison confirms (an official answer)."""
    assignment, concern = _flow_assignment(ctx)
    if answer is not None and answer.chose("edit"):
        ctx.goto("text")
        return
    if answer is None or not answer.chose("send"):
        file = ctx.data.get("file")
        ctx.say(ctx.t("Please check your agency's answer to {code} before sending it:\n\n{text}\n\n"
                      "Written answer attached: {document}.", code=concern.tracking_code, text=ctx.data["text"],
                      document=ctx.t("yes") if file else ctx.t("no")),
                [Option(Choice("send"), ctx.t("Send the answer")), Option(Choice("edit"), ctx.t("Change it")),
                 Option(Choice("cancel"), ctx.t("Cancel"))])
        return
    file = ctx.data.get("file")
    everyone = record_answer(
        assignment, concern, text=str(ctx.data["text"]), file_id=file[1] if file else None,
        file_kind=file[0] if file else None, messenger=ctx.person.messenger, liaison=ctx.person,
        session=ctx.session,
    )
    ctx.end()
    code = concern.tracking_code
    item_code = assignment.agency_code
    open_it = [Option(Choice.command("case", code), N_("Open"))]
    for officer in union_staff(session=ctx.session):
        if everyone:
            ctx.notify(officer, N_("All agencies have answered {code}. Please review and relay the answers."),
                       options=open_it, code=code)
        else:
            ctx.notify(officer, N_("{agency} answered {code}."), options=open_it,
                       code=code, agency=get_item("agency", item_code, session=ctx.session) or item_code)
    following = [c for _, c in agency_assignments(str(ctx.person.agency_code), session=ctx.session)
                 if c.id != concern.id]
    options = [Option(Choice.command("case", c.tracking_code), ctx.t("Next: {code}", code=c.tracking_code))
               for c in following[:1]]
    ctx.say(ctx.t("Thank you. The answer to {code} is recorded.\n"
                  "The Labour Federation will pass it on to the worker.", code=code),
            [*options, Option(Choice.command("mine"), ctx.t("Assigned to us"))])


@router.command("extend")
def extend(ctx: Context) -> None:
    """Ask the union for a later deadline, with a reason."""
    _start_on_assignment(ctx, EXTEND)


@EXTEND.step("date")
def ask_extension_date(ctx: Context, answer: Answer | None) -> None:
    """Until when."""
    assignment, concern = _flow_assignment(ctx)
    if answer is None:
        ctx.say(ctx.t("The deadline for {code} is {date}. Until which date do you need? "
                      "(day/month/year, e.g. {example})",
                      example=ctx.t.typed_date(assignment.deadline + timedelta(days=15)),
                      code=concern.tracking_code, date=ctx.t.date(assignment.deadline)),
                [Option(Choice("cancel"), ctx.t("Cancel"))])
        return
    wanted = parse_date(answer.text or "")
    if wanted is None:
        ctx.say(ctx.t("That is not a valid date. Please type it as day/month/year, for example {example}.",
                      example=ctx.t.typed_date(assignment.deadline + timedelta(days=15))))
        return
    if wanted <= assignment.deadline:
        ctx.say(ctx.t("Please type a date after {date}, like {example}.", date=ctx.t.date(assignment.deadline),
                      example=ctx.t.typed_date(assignment.deadline + timedelta(days=15))))
        return
    ctx.data["until"] = wanted.isoformat()
    ctx.goto("reason")


@EXTEND.step("reason")
def ask_extension_reason(ctx: Context, answer: Answer | None) -> None:
    """Why more time is needed; then the union decides."""
    assignment, concern = _flow_assignment(ctx)
    reason = text_answer(ctx, answer, ctx.t("Please state why your agency needs more time. "
                                            "The {federation} will consider it and reply.",
                                            federation=ctx.policy.federation(ctx.t.locale)), low=5, high=500)
    if reason is None:
        return
    request_extension(assignment, date.fromisoformat(str(ctx.data["until"])), reason, session=ctx.session)
    ctx.end()
    code = concern.tracking_code
    for officer in union_staff(session=ctx.session):
        ctx.notify(officer, N_("{agency} asks for more time on {code}: until {date} instead of {old}.\n"
                               "Reason: {reason}"),
                   options=[Option(Choice.command("grant", str(assignment.id)), N_("Approve")),
                            Option(Choice.command("refuse", str(assignment.id)), N_("Refuse"))],
                   code=code, reason=reason, date=assignment.extension_requested, old=assignment.deadline,
                   agency=get_item("agency", assignment.agency_code, session=ctx.session) or assignment.agency_code)
    ctx.say(ctx.t("Your agency's request was sent to the union. You will be informed of the decision."),
            [Option(Choice.command("mine"), ctx.t("Assigned to us"))])
