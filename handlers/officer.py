"""The union officer's side: the queue, a case, and what can be done with it."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

from handlers.core import Answer, Attachment, Choice, Context, Option, parse_date, parse_number, text_answer
from handlers.routing import Flow, Router
from handlers.rules import cases, deadlines
from handlers.rules.cases import assign, followers, liaisons, may_rate, unrelayed_answers
from handlers.rules.deadlines import deadline_for, pending_extension, time_left
from handlers.rules.lifecycle import TransitionRefused, change_status
from handlers.views import (
    REJECT_REASONS,
    agency_name,
    category_name,
    concern_from_args,
    delivery_error,
    dialog_concern,
    display_name,
    messenger_name,
    not_found,
    place_name,
    reason_text,
    refused,
    status_label,
)
from locales import N_
from storage.cases import add_note, assignments_of, notes_of, queue, queue_counts
from storage.concerns import attachments_of, find_concerns, get_concern_by_code, history_of, parse_tracking_code
from storage.models import (
    OPEN_STATES,
    QUEUE_STATES,
    Assignment,
    AssignmentStatus,
    CaseNote,
    Concern,
    DialogueSession,
    OutboxMessage,
    Person,
    Role,
    Status,
)
from storage.outbox import UNCERTAIN, WAITING, undelivered_messages
from storage.reference import get_item, list_items, search_key
from storage.sessions import origin_of

router = Router("officer", roles=(Role.OFFICER, Role.ADMIN))
TOPIC = router.flow("topic", ["category"], cancelled=N_("Cancelled. The topic stays as it was."))
REJECT = router.flow("reject", ["reason"], cancelled=N_("Cancelled. The concern was not rejected."))
MERGE = router.flow("merge", ["target"], cancelled=N_("Cancelled. Nothing was merged."))
ASK = router.flow("ask", ["question"], cancelled=N_("Cancelled. No question was sent."))
ASSIGN = router.flow("assign", ["agencies", "deadline"], cancelled=N_("Cancelled. The concern was not assigned."))

PAGE = 8
MAX_NOTE = 1000
NOTE_LABELS = {"question": N_("Question to the worker"), "reply": N_("Worker's reply"),
               "reopen": N_("Worker says not resolved")}
QUEUE_FILTERS = {Status.NEW: N_("New"), Status.REOPENED: N_("Reopened"), Status.ACCEPTED: N_("To assign"),
                 Status.ANSWERED: N_("To review")}


def _case(code: str) -> Choice:
    return Choice.command("case", code)


def next_actions(ctx: Context, code: str | None = None) -> list[Option]:
    """Where to go after an action: back to the concern, and back to the queue."""
    options = [Option(_case(code), ctx.t("Open {code}", code=code))] if code else []
    return [*options, Option(Choice.command("queue"), ctx.t("Back to the queue"))]


def tell_followers(ctx: Context, concern: Concern, message: str, *,
                   options: list[Option] | None = None, **values: Any) -> None:
    """Tell the author and everyone whose concern was merged into this one, each in their language."""
    for person in followers(concern, session=ctx.session):
        ctx.notify(person, message, options=options, code=concern.tracking_code, **values)


def change(ctx: Context, concern: Concern, to_status: Status, note: str | None = None) -> bool:
    """Apply a state change by this officer; refused changes get a clear reply."""
    try:
        change_status(concern, to_status, actor=ctx.person, actor_role=ctx.person.role,
                      session=ctx.session, note=note)
    except TransitionRefused as exc:
        refused(ctx, exc)
        return False
    return True


# ---- the queue and a case -----------------------------------------------------------------------

@router.command("queue")
def show_queue(ctx: Context) -> None:
    """Concerns waiting for the union, oldest first, a page at a time: `/queue [state] [page]`."""
    words = ctx.incoming.args.split()
    state = next((Status(w) for w in words if w in QUEUE_STATES), None)
    page = next((n for n in map(parse_number, words) if n), 1)
    counts = queue_counts(session=ctx.session)
    states = (state,) if state else QUEUE_STATES
    total = sum(counts[s] for s in states)
    header = ctx.t("Queue: {new} new, {reopened} reopened, {accepted} to assign, {answered} to review.",
                   **{str(s): n for s, n in counts.items()})
    filters = [Option(Choice.command("queue", s), f"{ctx.t(QUEUE_FILTERS[s])} ({counts[s]})")
               for s in QUEUE_STATES if counts[s] and s != state]
    concerns = queue(session=ctx.session, states=states, offset=(page - 1) * PAGE, limit=PAGE)
    if not concerns:
        ctx.say(ctx.t("The queue is empty. Well done!") if sum(counts.values()) == 0 else header, filters)
        return
    pages = (total + PAGE - 1) // PAGE
    lines = [header, ctx.t("Page {page} of {pages}, oldest first:", page=page, pages=pages)]
    for concern in concerns:
        lines.append(ctx.t.plural("{code} · {status} · {topic} · {date} · {count} worker",
                                  "{code} · {status} · {topic} · {date} · {count} workers", concern.me_too,
                                  code=concern.tracking_code, status=status_label(ctx, concern.status),
                                  topic=category_name(ctx, concern.category_code),
                                  date=ctx.t.date(concern.created_at), count=concern.me_too))
    options = [Option(_case(c.tracking_code), c.tracking_code) for c in concerns]
    prefix = f"{state} " if state else ""
    if page > 1:
        options.append(Option(Choice.command("queue", f"{prefix}{page - 1}"), ctx.t("« Previous")))
    if page < pages:
        options.append(Option(Choice.command("queue", f"{prefix}{page + 1}"), ctx.t("Next »")))
    ctx.say("\n".join(lines), options + filters, columns=2)


@router.command("case")
def open_case(ctx: Context) -> None:
    """Open a concern: everything the union knows of it."""
    concern = concern_from_args(ctx)
    if concern is not None:
        show_case(ctx, concern)


def show_case(ctx: Context, concern: Concern) -> None:
    """Everything the union knows of a concern, the author only if allowed, and the actions."""
    lines = [
        ctx.t("Concern {code} · {status}", code=concern.tracking_code,
              status=status_label(ctx, concern.status)),
        ctx.t("Topic: {value}", value=category_name(ctx, concern.category_code)),
        ctx.t("Enterprise: {value}", value=concern.enterprise or "–"),
        ctx.t("Place: {value}", value=place_name(ctx, concern.place_code)),
        ctx.t("Sent: {date} · Workers concerned: {count}", date=ctx.t.date(concern.created_at), count=concern.me_too),
    ]
    origin = origin_of(concern, session=ctx.session)
    if origin is not None:
        dialogue = ctx.session.get(DialogueSession, origin.session_id) if origin.session_id else None
        lines.append(ctx.t("Raised by: {name} (entered by {officer})", name=origin.speaker_name or "–",
                           officer=display_name(ctx.session.get(Person, origin.entered_by))))
        if dialogue is not None:
            lines.append(ctx.t("Session: {value}", value=dialogue.name))
    elif concern.author_id is None:
        lines.append(ctx.t("Raised by: anonymous"))
    else:
        lines.append(ctx.t("Raised by: {name}", name=display_name(ctx.session.get(Person, concern.author_id))))
    lines.append(ctx.t("Content: {value}", value=concern.description or ctx.t("(voice note)")))
    lines.extend(note_line(ctx, note) for note in notes_of(concern, session=ctx.session)[-4:])
    for assignment in assignments_of(concern, session=ctx.session):
        lines.append(assignment_line(ctx, assignment))
        if assignment.status == AssignmentStatus.ANSWERED:
            lines.append(ctx.t("Answer: {text}", text=assignment.answer_text or "–"))
    change_lines = [ctx.t("{date}: {from_status} → {to_status}", date=ctx.t.date(h.at),
                          from_status=status_label(ctx, h.from_status) if h.from_status else "–",
                          to_status=status_label(ctx, h.to_status))
                    for h in history_of(concern, session=ctx.session)[-3:]]
    lines.append(ctx.t("History:") + "\n" + "\n".join(change_lines))
    options = case_actions(ctx, concern)
    if concern.status in (Status.NEW, Status.REOPENED, Status.ACCEPTED):
        # The same problem raised again (40 workers, one unpaid overtime): one tap merges it.
        for other, score in cases.similar_concerns(concern, session=ctx.session):
            lines.append(ctx.t("Looks like {code} ({score}% similar): {text}", code=other.tracking_code, score=score,
                               text=other.description[:80] or ctx.t("(voice note)")))
            options.append(Option(Choice.command("merge", f"{concern.tracking_code} {other.tracking_code}"),
                                  ctx.t("Merge into {code}", code=other.tracking_code)))
    ctx.say("\n".join(lines), options, columns=2)
    files = attachments_of(concern, session=ctx.session)
    for number, item in enumerate(files, 1):
        caption = ctx.t("File {n} of {total} of {code}", n=number, total=len(files), code=concern.tracking_code)
        if item.messenger == ctx.person.messenger:
            ctx.say(caption, attachment=Attachment(item.kind, item.file_id, item.size))
        else:
            ctx.say(caption, attachment=Attachment(
                item.kind, item.file_id, item.size, origin=item.messenger,
                fallback=ctx.t("(sent on {messenger}: it cannot be shown here)",
                               messenger=messenger_name(item.messenger))))
    for assignment in assignments_of(concern, session=ctx.session):
        if assignment.answer_file_id and assignment.answer_messenger == ctx.person.messenger:
            ctx.say(ctx.t("Written answer of {agency}", agency=agency_name(ctx, assignment.agency_code)),
                    attachment=Attachment(assignment.answer_file_kind or "document", assignment.answer_file_id))


def note_line(ctx: Context, note: CaseNote) -> str:
    """A case note as a whole phrase, in the reader's language (topics and deadlines are stored as data)."""
    day = ctx.t.date(note.at)
    if note.kind == "topic":
        return ctx.t("{date}: topic changed to “{topic}”", date=day, topic=category_name(ctx, note.text))
    if note.kind == "deadline":
        try:
            moved = json.loads(note.text)
            text = ctx.t("{date}: deadline of {agency} moved from {old} to {new}.", date=day,
                         agency=agency_name(ctx, moved["agency"]), old=ctx.t.date(date.fromisoformat(moved["from"])),
                         new=ctx.t.date(date.fromisoformat(moved["to"])))
            if not moved["reason"]:
                return text
            return text + " " + ctx.t("Reason: {reason}", reason=moved["reason"])
        except (ValueError, KeyError, TypeError):  # a note written before notes were stored as data
            return ctx.t("{date}: deadline changed: {text}", date=day, text=note.text)
    label = ctx.t(NOTE_LABELS.get(note.kind, N_("Note")))
    return ctx.t("{date} · {label}: {text}", date=day, label=label, text=note.text)


def assignment_line(ctx: Context, assignment: Assignment) -> str:
    """One agency's part: deadline, days left or answered."""
    name = agency_name(ctx, assignment.agency_code)
    if assignment.status == AssignmentStatus.ANSWERED:
        return ctx.t("• {agency}: answered on {date}", agency=name, date=ctx.t.date(assignment.answered_at or ctx.now))
    return ctx.t("• {agency}: deadline {date} ({left})", agency=name, date=ctx.t.date(assignment.deadline),
                 left=time_left(ctx.t, assignment.deadline, ctx.today()))


def case_actions(ctx: Context, concern: Concern) -> list[Option]:
    """The actions that make sense in the concern's state."""
    code = concern.tracking_code
    status = concern.status
    options: list[Option] = []
    def act(command: str, label: str) -> Option:
        return Option(Choice.command(command, code), ctx.t(label))

    if status in (Status.NEW, Status.REOPENED):
        options.append(act("accept", N_("Accept")))
    if status in (Status.NEW, Status.REOPENED, Status.ACCEPTED):
        options += [act("assign", N_("Assign")), act("topic", N_("Change topic")), act("reject", N_("Reject")),
                    act("merge", N_("Merge"))]
    if status == Status.ASSIGNED:
        options.append(act("assign", N_("Add an agency")))
    if status == Status.ANSWERED:
        # The worker must have the answers before the union can call the concern resolved.
        if unrelayed_answers(concern, session=ctx.session):
            options.append(act("relay", N_("Relay answers")))
        else:
            options.append(act("resolve", N_("Mark resolved")))
        options.append(act("assign", N_("Assign again")))
    if status in OPEN_STATES and concern.author_id is not None:
        options.append(act("ask", N_("Ask the worker")))
    return options


# ---- simple actions -------------------------------------------------------------------------------

@router.command("accept")
def accept(ctx: Context) -> None:
    """Accept a concern for handling."""
    concern = concern_from_args(ctx)
    if concern is None or not change(ctx, concern, Status.ACCEPTED):
        return
    tell_followers(ctx, concern, N_("Your concern {code} has been accepted by the union.\n"
                                    "It will now be sent to the responsible agency."))
    ctx.say(ctx.t("{code} accepted.", code=concern.tracking_code), case_actions(ctx, concern), columns=2)


@router.command("resolve")
def resolve(ctx: Context) -> None:
    """Mark a concern resolved; its followers are asked, once, to rate the answer they received."""
    concern = concern_from_args(ctx)
    if concern is None:
        return
    if concern.status == Status.ANSWERED:
        pass_on_answers(ctx, concern)  # nobody is told "resolved" before they have the answers
    if not change(ctx, concern, Status.RESOLVED):
        return
    code = concern.tracking_code
    reopen = Option(Choice.command("reopen", code), N_("Not resolved"))
    if may_rate(concern, session=ctx.session):
        tell_followers(ctx, concern, N_("Your concern {code} has been marked resolved.\n"
                                        "How satisfied are you with the answer?"),
                       options=[Option(Choice.command("rate", code), N_("Rate the answer")), reopen])
    else:
        tell_followers(ctx, concern, N_("The union has marked your concern {code} resolved.\n"
                                        "If it is not, tell us."), options=[reopen])
    if not followers(concern, session=ctx.session):
        ctx.say(ctx.t("{code} marked resolved. Its author is anonymous and will see this with the code.",
                      code=code), next_actions(ctx))
    elif may_rate(concern, session=ctx.session):
        ctx.say(ctx.t("{code} marked resolved. The worker has been asked to rate the answer.", code=code),
                next_actions(ctx))
    else:
        ctx.say(ctx.t("{code} marked resolved. The worker has been told.", code=code), next_actions(ctx))


@router.command("relay")
def relay(ctx: Context) -> None:
    """Send the agencies' answers to the worker (and to everyone merged into the concern)."""
    concern = concern_from_args(ctx)
    if concern is None:
        return
    if not pass_on_answers(ctx, concern):
        ctx.say(ctx.t("There is no new answer to relay for {code}.", code=concern.tracking_code))
        return
    code = concern.tracking_code
    told = followers(concern, session=ctx.session)
    # The worker is asked to rate once, when the concern is marked resolved, not here as well.
    message = (ctx.t("Answers sent to the worker for {code}.", code=code) if told else
               ctx.t("Answers released for {code}: its author is anonymous and will see them with the code.",
                     code=code))
    ctx.say(message + "\n" + ctx.t("Mark it resolved, or keep it open."),
            [Option(Choice.command("resolve", code), ctx.t("Mark resolved")), Option(_case(code), ctx.t("Keep open"))])


def pass_on_answers(ctx: Context, concern: Concern) -> list[Assignment]:
    """Send the answers not yet relayed to the worker and everyone merged into the concern; which they were."""
    fresh = cases.relay(concern, session=ctx.session, now=ctx.now)
    for person in followers(concern, session=ctx.session):
        for assignment in fresh:
            item = get_item("agency", assignment.agency_code, session=ctx.session)
            file = None
            if assignment.answer_file_id and assignment.answer_messenger == person.messenger:
                file = Attachment(assignment.answer_file_kind or "document", assignment.answer_file_id)
            ctx.notify(person, N_("{agency} has answered your concern {code}:\n{answer}"), attachment=file,
                       code=concern.tracking_code, agency=item or assignment.agency_code,
                       answer=assignment.answer_text or "–")
    return fresh


# ---- actions that need more input -------------------------------------------------------------

def _start_on(ctx: Context, flow: Flow) -> None:
    concern = concern_from_args(ctx)
    if concern is not None:
        ctx.start(flow, {"concern": concern.id})


@router.command("topic")
def change_topic(ctx: Context) -> None:
    """Change a concern's category."""
    _start_on(ctx, TOPIC)


@TOPIC.step("category")
def ask_topic(ctx: Context, answer: Answer | None) -> None:
    """Choose the new category."""
    options = [Option(Choice("cat", c.code), ctx.t.name(c))
               for c in list_items("category", session=ctx.session, on=ctx.today())]
    topic = answer.picked("cat") if answer else None
    if not topic:
        ctx.say(ctx.t("Choose the new topic for {code}:", code=dialog_concern(ctx).tracking_code),
                [*options, Option(Choice("cancel"), ctx.t("Cancel"))])
        return
    concern = dialog_concern(ctx)
    concern.category_code = topic
    ctx.session.add(concern)
    add_note(concern, "topic", concern.category_code, actor=ctx.person, session=ctx.session)
    ctx.end()
    show_case(ctx, concern)


@router.command("reject")
def reject(ctx: Context) -> None:
    """Reject a concern, with a reason the worker will read."""
    _start_on(ctx, REJECT)


@REJECT.step("reason")
def ask_reject_reason(ctx: Context, answer: Answer | None) -> None:
    """Choose or type the reason."""
    options = [Option(Choice("why", str(i)), ctx.t(reason)) for i, reason in enumerate(REJECT_REASONS)]
    options.append(Option(Choice("cancel"), ctx.t("Cancel")))
    if answer is None:
        ctx.say(ctx.t("Why is {code} rejected? Choose a reason or type your own; the worker will read it.",
                      code=dialog_concern(ctx).tracking_code), options)
        return
    number = parse_number(answer.picked("why") or "")
    if number is not None and number < len(REJECT_REASONS):
        reason = REJECT_REASONS[number]  # stored as the msgid: each reader sees it in their language
    elif answer.text and 3 <= len(answer.text) <= 500:
        reason = answer.text
    else:
        ctx.say(ctx.t("Please choose a reason or type one (3 to 500 characters)."), options)
        return
    concern = dialog_concern(ctx)
    if not change(ctx, concern, Status.REJECTED, note=reason):
        ctx.end()
        return
    concern.reject_reason = reason
    ctx.end()
    tell_followers(ctx, concern, N_("Your concern {code} was not accepted.\nReason: {reason}\n"
                                    "If needed, you can send a new concern or contact your grassroots union."),
                   reason=lambda t: reason_text(t, reason))
    if followers(concern, session=ctx.session):
        ctx.say(ctx.t("{code} rejected. The worker has been told the reason.", code=concern.tracking_code),
                next_actions(ctx))
    else:
        ctx.say(ctx.t("{code} rejected. Its author is anonymous and will see the reason with the code.",
                      code=concern.tracking_code), next_actions(ctx))


@router.command("merge")
def merge(ctx: Context) -> None:
    """Merge a concern into another that says the same."""
    parts = ctx.incoming.args.split()
    if len(parts) >= 2:
        concern = concern_from_args(ctx)
        if concern is not None:  # "/merge A B" in one go
            ctx.enter(MERGE, "target", {"concern": concern.id})
            ask_merge_target(ctx, Answer(text=parts[1]))
        return
    _start_on(ctx, MERGE)


@MERGE.step("target")
def ask_merge_target(ctx: Context, answer: Answer | None) -> None:
    """The code of the concern to keep."""
    duplicate = dialog_concern(ctx)
    if answer is None:
        ctx.say(ctx.t("Type the code of the concern to keep; {code} will be merged into it.",
                      code=duplicate.tracking_code), [Option(Choice("cancel"), ctx.t("Cancel"))])
        return
    code = parse_tracking_code(answer.text or "")
    kept = get_concern_by_code(code, session=ctx.session) if code else None
    if kept is None:
        not_found(ctx, answer.text or "")
        return
    if kept.id == duplicate.id or kept.status not in OPEN_STATES:
        ctx.say(ctx.t("A concern can only be merged into another open concern."))
        return
    told = followers(duplicate, session=ctx.session)  # they follow the kept concern from now on
    same_worker = cases.same_author(duplicate, kept, session=ctx.session)
    ctx.end()
    try:
        cases.merge(duplicate, kept, officer=ctx.person, session=ctx.session)
    except TransitionRefused as exc:
        refused(ctx, exc)
        return
    message = (N_("Your concerns {code} and {kept} say the same: they are now followed together as {kept}.")
               if same_worker else
               N_("Your concern {code} says the same as {kept}, raised by other workers too.\n"
                  "They will be handled together: you will hear about {kept} from now on."))
    for person in told:
        ctx.notify(person, message, code=duplicate.tracking_code, kept=kept.tracking_code)
    ctx.say(ctx.t.plural("{code} merged into {kept}, which now counts {count} worker.",
                         "{code} merged into {kept}, which now counts {count} workers.", kept.me_too,
                         code=duplicate.tracking_code, kept=kept.tracking_code, count=kept.me_too),
            next_actions(ctx, kept.tracking_code))


@router.command("ask")
def ask_worker(ctx: Context) -> None:
    """Ask the worker a question; their reply comes back to the case. Identities stay hidden."""
    concern = concern_from_args(ctx)
    if concern is None:
        return
    if concern.author_id is None:
        ctx.say(ctx.t("{code} is anonymous: nobody can reach its author.", code=concern.tracking_code))
        return
    ctx.start(ASK, {"concern": concern.id})


@ASK.step("question")
def ask_question(ctx: Context, answer: Answer | None) -> None:
    """The question, relayed to the worker as coming from the union."""
    concern = dialog_concern(ctx)
    text = text_answer(ctx, answer, ctx.t("Type your question for the author of {code}. "
                                          "They will see it as coming from the union.", code=concern.tracking_code),
                       low=3, high=MAX_NOTE)
    if text is None:
        return
    add_note(concern, "question", text, actor=ctx.person, session=ctx.session)
    author = ctx.session.get(Person, concern.author_id)
    if author is not None:
        code = concern.tracking_code
        ctx.notify(author, N_("The union has a question about your concern {code}:\n{question}"),
                   options=[Option(Choice.command("reply", code), N_("Reply"))], code=code, question=text)
    ctx.end()
    ctx.say(ctx.t("Question sent. The reply will come back to you here."), next_actions(ctx))


# ---- assignment to agencies ------------------------------------------------------------------

@router.command("assign")
def start_assign(ctx: Context) -> None:
    """Assign a concern to one or more agencies, each with a deadline."""
    concern = concern_from_args(ctx)
    if concern is None:
        return
    if concern.status not in OPEN_STATES:
        ctx.say(ctx.t("A concern that is “{current}” cannot be assigned.",
                      current=status_label(ctx, concern.status)))
        return
    ctx.start(ASSIGN, {"concern": concern.id, "agencies": []})


@ASSIGN.step("agencies")
def ask_agencies(ctx: Context, answer: Answer | None) -> None:
    """Tick the agencies, then continue."""
    chosen: list[str] = ctx.data.setdefault("agencies", [])
    concern = dialog_concern(ctx)
    already = {a.agency_code for a in assignments_of(concern, session=ctx.session)}
    if answer is not None:
        code = answer.picked("ag")
        if answer.chose("done") and chosen:
            ctx.goto("deadline")
            return
        if code:
            chosen.remove(code) if code in chosen else chosen.append(code)
        else:
            ctx.say(ctx.t("Please choose at least one agency, then “Continue”."))
    agencies = [a for a in list_items("agency", session=ctx.session, on=ctx.today()) if a.code not in already]
    options = [Option(Choice("ag", a.code), ("✓ " if a.code in chosen else "") + ctx.t.name(a)) for a in agencies]
    if chosen:
        options.append(Option(Choice("done"), ctx.t("Continue ({n} chosen)", n=len(chosen))))
    options.append(Option(Choice("cancel"), ctx.t("Cancel")))
    ctx.say(ctx.t("Which agencies must answer {code}? Tap to choose, then “Continue”.",
                  code=concern.tracking_code), options)


@ASSIGN.step("deadline")
def ask_deadline(ctx: Context, answer: Answer | None) -> None:
    """The deadline: the default, or a date typed as 20/08/2024."""
    days = ctx.policy.default_deadline_days
    default, dialogue = deadline_for(dialog_concern(ctx), ctx.today(), days, session=ctx.session)
    label = (ctx.t("{date} (deadline of {session})", date=ctx.t.date(default), session=dialogue.name)
             if dialogue else ctx.t.plural("{date} ({days} day)", "{date} ({days} days)", days,
                                           date=ctx.t.date(default), days=days))
    options = [Option(Choice("deadline", "default"), label), Option(Choice("cancel"), ctx.t("Cancel"))]
    if answer is None:
        ctx.say(ctx.t("By which date must they answer? Choose the default or type a date (day/month/year) "
                      "like {example}.", example=ctx.t.typed_date(default)), options)
        return
    deadline = default if answer.picked("deadline") == "default" else parse_date(answer.text or "")
    if deadline is None:
        ctx.say(ctx.t("That is not a valid date. Please type it as day/month/year, for example {example}.",
                      example=ctx.t.typed_date(default)), options)
        return
    if deadline <= ctx.today():
        ctx.say(ctx.t("Please type a future date like {example}, or choose the default.",
                      example=ctx.t.typed_date(default)), options)
        return
    concern = dialog_concern(ctx)
    codes = list(ctx.data.get("agencies", []))
    ctx.end()
    try:
        created = assign(concern, codes, deadline, officer=ctx.person, session=ctx.session)
    except TransitionRefused as exc:
        refused(ctx, exc)
        return
    notify_assignment(ctx, concern, created)
    names = ", ".join(agency_name(ctx, a.agency_code) for a in created)
    ctx.say(ctx.t("{code} assigned to {agencies}, to answer by {date}.", code=concern.tracking_code,
                  agencies=names, date=ctx.t.date(deadline)), next_actions(ctx, concern.tracking_code))
    for assignment in created:
        if not liaisons(assignment.agency_code, session=ctx.session):
            ctx.say(ctx.t("{agency} has no liaison in the bot yet. Ask an admin to invite one (/invite agency).",
                          agency=agency_name(ctx, assignment.agency_code)))


def notify_assignment(ctx: Context, concern: Concern, created: list[Assignment]) -> None:
    """Tell each agency's liaisons (formally) and the worker who will answer by when."""
    code = concern.tracking_code
    for assignment in created:
        item = get_item("agency", assignment.agency_code, session=ctx.session)
        for liaison in liaisons(assignment.agency_code, session=ctx.session):
            ctx.notify(liaison, N_("To: {agency}\nThe {federation} forwards concern {code} to your agency.\n"
                                   "Topic: {topic}\nPlease answer in writing by {date}."),
                       options=[Option(_case(code), N_("Open")), Option(Choice.command("answer", code), N_("Answer"))],
                       code=code, date=assignment.deadline, agency=item or assignment.agency_code,
                       federation=lambda t: ctx.policy.federation(t.locale),
                       topic=get_item("category", concern.category_code, session=ctx.session) or "–")
        tell_followers(ctx, concern, N_("Your concern {code} has been sent to {agency}.\n"
                                        "An answer is expected by {date}."),
                       agency=item or assignment.agency_code, date=assignment.deadline)


# ---- extension requests from agencies -------------------------------------------------------------

@router.command("grant")
def grant_extension(ctx: Context) -> None:
    """Approve an agency's request for a later deadline."""
    decide(ctx, approve=True)


@router.command("refuse")
def refuse_extension(ctx: Context) -> None:
    """Refuse an agency's request for a later deadline."""
    decide(ctx, approve=False)


def decide(ctx: Context, *, approve: bool) -> None:
    """Decide on an extension request; the agency and the worker are told."""
    number = parse_number(ctx.incoming.args)
    assignment = ctx.session.get(Assignment, number) if number is not None else None
    if assignment is None or not pending_extension(assignment):
        ctx.say(ctx.t("This request for more time has already been decided, or no longer exists."))
        return
    concern = ctx.session.get(Concern, assignment.concern_id)
    assert concern is not None
    code = concern.tracking_code
    told = liaisons(assignment.agency_code, session=ctx.session)
    old = assignment.deadline
    deadlines.decide_extension(assignment, concern, approve=approve, officer=ctx.person, session=ctx.session)
    if approve:
        for liaison in told:
            ctx.notify(liaison, N_("Your request for more time on {code} was approved.\nNew deadline: {date}."),
                       code=code, date=assignment.deadline)
        tell_followers(ctx, concern, N_("The answer to your concern {code} is now expected by {date}."),
                       date=assignment.deadline)
        ctx.say(ctx.t("Approved. New deadline for {code}: {date}.", code=code, date=ctx.t.date(assignment.deadline)),
                next_actions(ctx, code))
    else:
        for liaison in told:
            ctx.notify(liaison, N_("Your request for more time on {code} was refused.\n"
                                   "The deadline stays {date}."), code=code, date=old)
        ctx.say(ctx.t("Refused. The deadline for {code} stays {date}.", code=code, date=ctx.t.date(old)),
                next_actions(ctx, code))


@router.command("extend")
def extend_deadline(ctx: Context) -> None:
    """Move a concern's deadline: `/extend KN-XXXX-XXXX 20/08/2026 reason`; the agencies are told."""
    code, _, rest = ctx.incoming.args.partition(" ")
    typed_date, _, reason = rest.strip().partition(" ")
    until = parse_date(typed_date)
    if not code or until is None or len(reason.strip()) < 3:
        ctx.say(ctx.t("Please write the code, the new date and the reason, for example:\n"
                      "/extend KN-XXXX-XXXX {example} waiting for the inspection report",
                      example=ctx.t.typed_date(ctx.today() + timedelta(days=14))))
        return
    concern = concern_from_args(ctx, code)
    if concern is None:
        return
    if until <= ctx.today():
        ctx.say(ctx.t("Please type a date after today, as day/month/year."))
        return
    moved = deadlines.move_deadline(concern, until, reason.strip()[:300], officer=ctx.person, session=ctx.session)
    if not moved:
        ctx.say(ctx.t("{code} has no unanswered assignment to move.", code=concern.tracking_code))
        return
    for assignment in moved:
        for liaison in liaisons(assignment.agency_code, session=ctx.session):
            ctx.notify(liaison, N_("To: {agency}\nThe deadline for concern {code} is now {date}.\n"
                                   "Reason: {reason}"),
                       options=[Option(_case(concern.tracking_code), N_("Open"))], code=concern.tracking_code,
                       date=until, reason=reason.strip()[:300],
                       agency=get_item("agency", assignment.agency_code, session=ctx.session) or assignment.agency_code)
    tell_followers(ctx, concern, N_("The answer to your concern {code} is now expected by {date}."), date=until)
    ctx.say(ctx.t("New deadline for {code}: {date}. The agencies have been told.", code=concern.tracking_code,
                  date=ctx.t.date(until)), next_actions(ctx, concern.tracking_code))


@router.command("find")
def find(ctx: Context) -> None:
    """Concerns by code, or by words of their content, enterprise or place: `/find lương Minh Phát`."""
    typed = ctx.incoming.args.strip()
    if not typed:
        ctx.say(ctx.t("Type what to look for after /find: a code, words of the content, an enterprise or a place."))
        return
    code = parse_tracking_code(typed)
    if code is not None:
        concern = get_concern_by_code(code, session=ctx.session)
        if concern is None:
            not_found(ctx, typed)
        else:
            show_case(ctx, concern)
        return
    key = search_key(typed)
    places = [item.code for kind in ("industrial_park", "district")
              for item in list_items(kind, session=ctx.session, on=ctx.today())
              if key and (key in search_key(item.name_vi) or key in search_key(item.name_en))]
    found = find_concerns(typed.split()[:5], place_codes=places, session=ctx.session)
    if not found:
        ctx.say(ctx.t("No concern matches “{words}”.", words=typed[:60]), next_actions(ctx))
        return
    lines = [ctx.t("Concerns matching “{words}”, newest first:", words=typed[:60])]
    lines += [ctx.t("{code} · {status} · {topic} · {date}", code=c.tracking_code, status=status_label(ctx, c.status),
                    topic=category_name(ctx, c.category_code), date=ctx.t.date(c.created_at)) for c in found]
    ctx.say("\n".join(lines), [Option(_case(c.tracking_code), c.tracking_code) for c in found], columns=2)


REFERENCE_KINDS = {"agencies": ("agency",), "categories": ("category",), "places": ("industrial_park", "district")}


def reference_list(ctx: Context) -> None:
    """The agencies, topics or places offered today, with the codes staff type (`/invite agency snv`)."""
    kinds = REFERENCE_KINDS[str(ctx.incoming.command)]
    items = [item for kind in kinds for item in list_items(kind, session=ctx.session, on=ctx.today())]
    ctx.say("\n".join(f"• {ctx.t.name(item)} ({item.code})" for item in items) or "–")


for _name in REFERENCE_KINDS:
    router.command(_name)(reference_list)


@router.command("undelivered")
def undelivered(ctx: Context) -> None:
    """Messages the bot gave up delivering, with the reason, then those possibly sent (the bot
    stopped while sending them; never sent again on its own), newest first."""
    messages = undelivered_messages(session=ctx.session, limit=20)
    if not messages:
        ctx.say(ctx.t("Every message has been delivered."))
        return

    def line(message: OutboxMessage, error: str) -> str:
        return ctx.t("{date} · {messenger} {chat} · {error}\n“{text}”", date=ctx.t.datetime(message.created_at),
                     messenger=messenger_name(message.messenger), chat=message.chat_id, error=error,
                     text=message.text[:80] + ("…" if len(message.text) > 80 else ""))

    failed = [m for m in messages if m.status not in (UNCERTAIN, WAITING)]
    uncertain = [m for m in messages if m.status == UNCERTAIN]
    waiting = [m for m in messages if m.status == WAITING]
    lines = []
    if failed:
        lines.append(ctx.t("Messages that could not be delivered (newest first):"))
        lines.extend(line(m, delivery_error(ctx.t, m.last_error or "–")) for m in failed)
    if uncertain:
        lines.extend([""] if lines else [])
        lines.append(ctx.t("Possibly sent: the bot stopped while sending these, so they were not sent again. "
                           "Ask the person whether they got them (newest first):"))
        lines.extend(line(m, ctx.t("possibly sent")) for m in uncertain)
    if waiting:
        lines.extend([""] if lines else [])
        lines.append(ctx.t("Waiting until the person writes to the bot again (Zalo lets an official account "
                           "write only then); they go out at once then (newest first):"))
        lines.extend(line(m, ctx.t("waiting")) for m in waiting)
    ctx.say("\n".join(lines))
