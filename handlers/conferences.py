"""Dialogue sessions, concerns entered for workers who spoke at one, and deadlines by agency."""

from __future__ import annotations

from datetime import date

from handlers import form
from handlers.core import Answer, Choice, Context, Option, parse_date, parse_number, text_answer
from handlers.routing import Router
from handlers.rules.cases import raise_concern
from handlers.views import agency_name, category_name, place_name
from locales import N_
from storage.models import DialogueSession, Role, Visibility
from storage.notices import agency_deadlines
from storage.sessions import add_session, close_session, list_sessions, record_origin, session_counts

router = Router("conferences", roles=(Role.OFFICER, Role.ADMIN))
NEW_SESSION = router.flow("session", ["name", "held_on", "deadline"],
                          cancelled=N_("Cancelled. No session was created."))
ENTER = router.flow("enter", ["session", "category", "enterprise", "enterprise_pick", "place", "description",
                              "attachments", "speaker", "confirm"], for_staff=True,
                    cancelled=N_("Cancelled. The concern was not entered."))
form.attach_to(ENTER)
MAX_NAME = 200
MAX_SPEAKER = 128


# ---- sessions ----------------------------------------------------------------------------------

@router.command("sessions")
def sessions(ctx: Context) -> None:
    """Dialogue sessions, the most recent first, with what they raised and how it stands."""
    found = list_sessions(session=ctx.session)
    if not found:
        ctx.say(ctx.t("No dialogue session yet."), [Option(Choice.command("session", "new"), ctx.t("New session"))])
        return
    lines = [ctx.t("Dialogue sessions:")]
    for dialogue in found:
        counts = session_counts(dialogue, today=ctx.today(), session=ctx.session)
        lines.append(ctx.t("{name} ({date}), answers due {deadline}{closed}\n"
                           "  raised {raised} · answered {answered} · overdue {overdue}",
                           name=dialogue.name, date=ctx.t.date(dialogue.held_on),
                           deadline=ctx.t.date(dialogue.deadline),
                           closed=ctx.t(" · closed") if dialogue.closed_at else "", **counts))
    ctx.say("\n".join(lines), [Option(Choice.command("session", "new"), ctx.t("New session")),
                               Option(Choice.command("session", "close"), ctx.t("Close a session"))], columns=2)


@router.command("session")
def session_command(ctx: Context) -> None:
    """`/session new` starts the short dialog; `/session close` closes one."""
    word, _, rest = ctx.incoming.args.partition(" ")
    if word.lower() == "new":
        ctx.start(NEW_SESSION)
    elif word.lower() == "close":
        close(ctx, rest)
    else:
        ctx.say(ctx.t("What would you like to do?"),
                [Option(Choice.command("session", "new"), ctx.t("New session")),
                 Option(Choice.command("session", "close"), ctx.t("Close a session")),
                 Option(Choice.command("sessions"), ctx.t("Dialogue sessions"))])


def close(ctx: Context, typed: str) -> None:
    """Close the session with this number, or ask which."""
    number = parse_number(typed)
    target = ctx.session.get(DialogueSession, number) if number is not None else None
    if target is None or target.closed_at is not None:
        open_ones = list_sessions(session=ctx.session, open_only=True)
        if not open_ones:
            ctx.say(ctx.t("There is no open session."))
            return
        ctx.say(ctx.t("Which session do you want to close?"),
                [Option(Choice.command("session", f"close {s.id}"), s.name) for s in open_ones])
        return
    close_session(target, at=ctx.now, session=ctx.session)
    ctx.say(ctx.t("Session “{name}” is closed. Its concerns keep their deadlines.", name=target.name))


@NEW_SESSION.step("name")
def ask_session_name(ctx: Context, answer: Answer | None) -> None:
    """The session's name."""
    name = text_answer(ctx, answer, ctx.t("Name of the dialogue session (for example: Đối thoại công nhân KCN "
                                          "Đình Trám 2026)?"), low=3, high=MAX_NAME)
    if name is not None:
        ctx.data["name"] = name
        ctx.goto("held_on")


@NEW_SESSION.step("held_on")
def ask_held_on(ctx: Context, answer: Answer | None) -> None:
    """When it was held."""
    options = [Option(Choice("day", "today"), ctx.t("Today")), Option(Choice("cancel"), ctx.t("Cancel"))]
    if answer is None:
        ctx.say(ctx.t("When was it held? Type the date (day/month/year), or choose “Today”."), options)
        return
    held = ctx.today() if answer.picked("day") == "today" else parse_date(answer.text or "")
    if held is None:
        ctx.say(ctx.t("Please type a date as day/month/year, for example {example}.",
                      example=ctx.t.typed_date(ctx.today())), options)
        return
    ctx.data["held_on"] = held.isoformat()
    ctx.goto("deadline")


@NEW_SESSION.step("deadline")
def ask_session_deadline(ctx: Context, answer: Answer | None) -> None:
    """By when agencies must answer its concerns."""
    options = [Option(Choice("cancel"), ctx.t("Cancel"))]
    if answer is None:
        ctx.say(ctx.t("By which date must agencies answer its concerns? Type the date (day/month/year)."),
                options)
        return
    deadline = parse_date(answer.text or "")
    if deadline is None or deadline <= ctx.today():
        ctx.say(ctx.t("Please type a date after today, as day/month/year."), options)
        return
    dialogue = add_session(str(ctx.data["name"]), date.fromisoformat(str(ctx.data["held_on"])), deadline,
                           creator=ctx.person, session=ctx.session)
    ctx.end()
    ctx.say(ctx.t("Session “{name}” created. Its concerns are to be answered by {date}.",
                  name=dialogue.name, date=ctx.t.date(deadline)),
            [Option(Choice.command("enter"), ctx.t("Enter a concern")),
             Option(Choice.command("sessions"), ctx.t("Dialogue sessions"))])


# ---- a concern entered for a worker -------------------------------------------------------------

@router.command("enter")
def enter(ctx: Context) -> None:
    """Enter a concern raised orally (at a session) on a worker's behalf."""
    ctx.start(ENTER)


@ENTER.step("session")
def ask_session(ctx: Context, answer: Answer | None) -> None:
    """Which session it was raised at, if any."""
    open_ones = list_sessions(session=ctx.session, open_only=True)
    options = [Option(Choice("in", str(s.id)), s.name) for s in open_ones]
    options += [Option(Choice("in", "none"), ctx.t("Not at a session")), form.cancel_option(ctx)]
    if answer is None:
        if not open_ones:
            ctx.data["session"] = None
            ctx.goto("category")
            return
        ctx.say(ctx.t("At which dialogue session was this concern raised?"), options)
        return
    picked = answer.picked("in")
    number = parse_number(picked or "")
    if picked != "none" and not any(s.id == number for s in open_ones):
        ctx.say(ctx.t("Please choose one of the options."), options)
        return
    ctx.data["session"] = number
    chosen = next((s for s in open_ones if s.id == number), None)
    if chosen is not None:  # the places and topics of the day it was held are offered
        ctx.data["held_on"] = chosen.held_on.isoformat()
    ctx.goto("category")


@ENTER.step("speaker")
def ask_speaker(ctx: Context, answer: Answer | None) -> None:
    """Who raised it: optional, for the union only."""
    options = [Option(Choice("speaker", "none"), ctx.t("Skip")), form.cancel_option(ctx)]
    if answer is None:
        ctx.say(ctx.t("Who raised it? Type the speaker's name, or choose “Skip”.\n"
                      "Agencies never see it."), options)
        return
    if answer.picked("speaker") == "none":
        ctx.data["speaker"] = None
    elif answer.text and len(answer.text) <= MAX_SPEAKER:
        ctx.data["speaker"] = answer.text
    else:
        ctx.say(ctx.t("Please type a name of at most {max} characters, or choose “Skip”.", max=MAX_SPEAKER),
                options)
        return
    ctx.goto("confirm")


@ENTER.step("confirm")
def confirm_entry(ctx: Context, answer: Answer | None) -> None:
    """The summary, then Save or Cancel."""
    options = [Option(Choice("save"), ctx.t("Save")), form.cancel_option(ctx)]
    if answer is None or not answer.chose("save"):
        ctx.say(entry_summary(ctx), options, columns=2)
        return
    data = ctx.data
    dialogue = ctx.session.get(DialogueSession, data["session"]) if data.get("session") else None
    concern = raise_concern(
        author=None, visibility=Visibility.UNION, category_code=str(data.get("category")),
        enterprise=str(data.get("enterprise") or ""), place_code=data.get("place"),
        description=str(data.get("description") or ""), attachments=list(data.get("attachments", [])),
        messenger=ctx.person.messenger, actor=ctx.person, actor_role=Role.OFFICER, session=ctx.session)
    record_origin(concern, dialogue=dialogue, entered_by=ctx.person, speaker_name=data.get("speaker"),
                  session=ctx.session)
    ctx.end()
    code = concern.tracking_code
    ctx.say(ctx.t("Entered as {code}.\nGive this code to the worker: by sending it here, they can follow "
                  "the concern and its answer.", code=code),
            [Option(Choice.command("case", code), ctx.t("Open")), Option(Choice.command("enter"),
                                                                          ctx.t("Enter another"))], columns=2)


def entry_summary(ctx: Context) -> str:
    """A concern being entered, as it will be saved."""
    data = ctx.data
    dialogue = ctx.session.get(DialogueSession, data["session"]) if data.get("session") else None
    files = data.get("attachments", [])
    return "\n".join([
        ctx.t("Please check the concern:"),
        ctx.t("Session: {value}", value=dialogue.name if dialogue else "–"),
        ctx.t("Speaker: {value}", value=data.get("speaker") or "–"),
        ctx.t("Topic: {value}", value=category_name(ctx, data.get("category"))),
        ctx.t("Enterprise: {value}", value=data.get("enterprise") or "–"),
        ctx.t("Place: {value}", value=place_name(ctx, data.get("place"))),
        ctx.t("Content: {value}", value=data.get("description") or ctx.t("(voice note)")),
        ctx.t("Files attached: {n}", n=len(files)),
    ])


# ---- deadlines by agency ---------------------------------------------------------------------------

@router.command("deadlines")
def deadlines(ctx: Context) -> None:
    """Per agency: upcoming and overdue answers, and the share answered on time."""
    offset = ctx.now.astimezone(ctx.policy.zone).utcoffset()
    rows = agency_deadlines(today=ctx.today(), utc_offset_hours=offset.total_seconds() / 3600 if offset else 0,
                            session=ctx.session)
    if not rows:
        ctx.say(ctx.t("No concern has been assigned to an agency yet."))
        return
    lines = [ctx.t("Deadlines by agency:")]
    for row in rows:
        answered = row["on_time"] + row["late"]
        rate = ctx.t("{percent}% on time", percent=round(100 * row["on_time"] / answered)) if answered else "–"
        lines.append(ctx.t("• {agency}: {upcoming} due, {overdue} overdue; answered {answered} ({rate})",
                           agency=agency_name(ctx, row["agency"]), upcoming=row["upcoming"],
                           overdue=row["overdue"], answered=answered, rate=rate))
    ctx.say("\n".join(lines))
