"""The worker's side: welcome, privacy, raising a concern, following it."""

from __future__ import annotations

import logging
from dataclasses import replace

from handlers import form
from handlers.core import Answer, Choice, Context, Option, parse_number, text_answer
from handlers.routing import Router
from handlers.rules import invitations
from handlers.rules.cases import is_follower, may_rate, raise_concern, union_staff
from handlers.rules.lifecycle import ANSWERED_STATES, TransitionRefused, change_status
from handlers.views import ROLE_LABELS as ROLE_NAMES
from handlers.views import (
    agency_name,
    concern_from_args,
    concern_view,
    dialog_concern,
    display_name,
    main_menu,
    messenger_name,
    not_found,
    outside_hint,
    role_label,
    status_label,
)
from locales import N_
from storage.broadcasts import set_muted
from storage.cases import add_note, add_rating, has_rated, last_asker
from storage.concerns import (
    concerns_by_author,
    get_concern_by_code,
    looks_like_tracking_code,
    parse_tracking_code,
)
from storage.models import OPEN_STATES, Concern, Person, Role, Status, Visibility
from storage.people import data_of, forget_person, record_consent, set_locale
from storage.reference import get_item

log = logging.getLogger(__name__)
router = Router("worker")
# What only a worker does; staff have their own screens (and their data is tied to their role).
WORKERS = (Role.WORKER,)
ONBOARD = router.flow("onboard", ["language", "consent"])
FORGET = router.flow("forget", ["confirm"], cancelled=N_("Your data is kept as it is."))
NEW = router.flow("new", ["category", "enterprise", "enterprise_pick", "place", "description", "attachments",
                          "visibility", "confirm", "edit"], cancelled=N_("Cancelled. Your concern has not been sent."))
WITHDRAW = router.flow("withdraw", ["confirm"])
RATE = router.flow("rate", ["score"], cancelled=N_("Cancelled. You can rate the answer later."))
REOPEN = router.flow("reopen", ["comment"], cancelled=N_("Cancelled. The concern stays as it was."))
REPLY = router.flow("reply", ["text"], cancelled=N_("Cancelled. Nothing was sent to the union."))

LANGUAGE_PROMPT = "Chọn ngôn ngữ / Choose your language:"
LANGUAGE_OPTIONS = [Option(Choice("lang", "vi"), "Tiếng Việt"), Option(Choice("lang", "en"), "English")]
EDITABLE = ("category", "enterprise", "place", "description", "attachments", "visibility")
form.attach_to(NEW)


# ---- commands -------------------------------------------------------------------------------

@router.command("start")
def start(ctx: Context) -> None:
    """Welcome; a deep link may carry a tracking code or an invitation."""
    args = ctx.incoming.args
    if args.startswith("inv_"):
        accept_invitation(ctx, args[4:])
        return
    if args and parse_tracking_code(args):
        show_status(ctx, args)
        return
    ctx.end()
    welcome = welcome_text(ctx)
    # One message, not two: fewer messages read better on a small screen.
    if ctx.person.locale is None:
        ctx.enter(ONBOARD, "language")
        ctx.say(f"{welcome}\n\n{LANGUAGE_PROMPT}", LANGUAGE_OPTIONS, columns=2)
    elif ctx.person.consent_at is None and ctx.person.role == Role.WORKER:
        ctx.say(welcome)
        ctx.start(ONBOARD, at="consent")
    else:
        question = ctx.t("What would you like to do?")
        ctx.say(f"{welcome}\n\n{question}", main_menu(ctx))


def welcome_text(ctx: Context) -> str:
    """The greeting, for the role that reads it."""
    federation = ctx.policy.federation(ctx.t.locale)
    if ctx.person.role == Role.AGENCY:
        return ctx.t("Welcome. This channel carries workers' concerns that the {federation} forwards to "
                     "{agency} for a written answer.", federation=federation,
                     agency=agency_name(ctx, ctx.person.agency_code))
    if ctx.person.role in (Role.OFFICER, Role.ADMIN):
        return ctx.t("Welcome. Your role: {who}.", who=role_label(ctx, Role(ctx.person.role)))
    return ctx.t("Welcome to the union's channel for concerns!\n"
                 "Here you can send concerns and proposals to the {federation}.\n"
                 "Union officers read every concern and pass it to the responsible agency, "
                 "which answers in writing.", federation=federation)


@router.command("new", WORKERS)
def new_concern(ctx: Context) -> None:
    """Start raising a concern (after the privacy notice, if not yet accepted)."""
    if ctx.person.consent_at is None:
        ctx.start(ONBOARD, {"then": "new"}, at="consent")
        return
    if ctx.quota.exhausted(ctx.who, ctx.now):
        ctx.end()
        quota_reached(ctx)
        return
    ctx.start(NEW)


def quota_reached(ctx: Context) -> None:
    """Say that today's allowance of concerns is used up."""
    limit = ctx.quota.limit
    ctx.say(ctx.t.plural("You have sent {limit} concern today, the most for one day. Please continue tomorrow.",
                         "You have sent {limit} concerns today, the most for one day. Please continue tomorrow.",
                         limit, limit=limit))


@router.command("status", WORKERS)
def status(ctx: Context) -> None:
    """My concerns, or one concern by its code."""
    if ctx.incoming.args:
        show_status(ctx, ctx.incoming.args)
        return
    concerns = concerns_by_author(ctx.person, session=ctx.session, limit=10)
    if not concerns:
        ctx.say(ctx.t("No concern is linked to your account yet.\n"
                      "An anonymous concern can only be followed with its code: send the code (KN-…) here."),
                main_menu(ctx))
        return
    lines = [ctx.t("Your concerns, newest first:")]
    for concern in concerns:
        lines.append(ctx.t("{code} · {status} · {date}", code=concern.tracking_code,
                           status=status_label(ctx, concern.status), date=ctx.t.date(concern.created_at)))
    lines.append(ctx.t("Choose one to see the details."))
    options = [Option(Choice.command("status", c.tracking_code), c.tracking_code) for c in concerns]
    ctx.say("\n".join(lines), options, columns=2)


def show_status(ctx: Context, typed: str) -> None:
    """Show one concern to whoever holds its code; only its author sees the attachments."""
    code = parse_tracking_code(typed)
    concern = get_concern_by_code(code, session=ctx.session) if code else None
    if concern is None:
        not_found(ctx, code or typed)
        return
    is_author = concern.author_id is not None and is_follower(concern, ctx.person, session=ctx.session)
    text, options = concern_view(ctx, concern, for_author=is_author)
    if not is_author and concern.author_id is not None:
        options = []  # only its author may withdraw, rate or reopen a named concern
    ctx.say(text, options or main_menu(ctx))  # always somewhere to go next


@router.command("help")
def help_command(ctx: Context) -> None:
    """A short guide for this person's role, with buttons for what they can do."""
    role = ctx.person.role
    if role == Role.AGENCY:
        ctx.say(ctx.t(
            "How to use this channel:\n"
            "1. Choose “Assigned to us” to see the concerns forwarded to your agency.\n"
            "2. Open a concern, choose “Answer”, type the answer and attach the signed, stamped document.\n"
            "3. If more time is needed, choose “Ask for more time”.\n"
            "Commands: /mine – concerns assigned to your agency, /cancel – stop the current step, "
            "/language – change the language."), main_menu(ctx))
        return
    if role in (Role.OFFICER, Role.ADMIN):
        lines = [ctx.t("For union officers:\n/queue – new concerns to sort\n"
                       "/case KN-XXXX-XXXX – open a concern (or just send its code)\n"
                       "/undelivered – messages the bot could not deliver\n/cancel – stop the current step\n"
                       "/language – change the language"),
                 ctx.t("Sessions and deadlines:\n/sessions – dialogue sessions\n/session new – create one\n"
                       "/session close – close one\n"
                       "/enter – enter a concern raised by a worker\n/deadlines – deadlines by agency\n"
                       "/extend KN-XXXX-XXXX date reason – move a deadline"),
                 ctx.t("Reports and search:\n/find words – search concerns\n/stats – figures and a chart\n"
                       "/export – the summary table as a spreadsheet\n"
                       "/agencies, /categories, /places – the reference lists")]
        if role == Role.ADMIN:
            lines.append(ctx.t("For admins:\n/invite officer – invite a union officer\n"
                               "/invite agency – invite an agency liaison\n"
                               "/staff – who holds which role\n/revoke – remove a role\n"
                               "/remind now – send the reminders that are due now\n"
                               "/broadcast – an announcement to workers\n"
                               "/reload – read the reference data file again"))
        ctx.say("\n\n".join(lines), main_menu(ctx))
        return
    ctx.say(ctx.t(
        "How it works:\n"
        "1. Choose “New concern” and answer 6 short questions.\n"
        "2. You get a tracking code (KN-…). Send the code here at any time to see the status and the answer.\n"
        "3. When the agency answers, we write to you here (for an anonymous concern, follow it with its code).\n"
        "You can also type: “cancel” to stop what you are doing, “help” to see this guide."),
        [*main_menu(ctx)[:2], Option(Choice.command("privacy"), ctx.t("Personal data")),
         Option(Choice.command("language"), ctx.t("Language"))], columns=2)


@router.command("cancel")
def cancel(ctx: Context) -> None:
    """Leave any dialog; nothing half-done is kept, and the reply says what stays as it was."""
    flow = ctx.routes.flows.get(ctx.state.flow or "")
    data = ctx.data
    ctx.end()
    if flow is None:
        ctx.say(ctx.t("There is nothing to cancel."), main_menu(ctx))
    elif flow is WITHDRAW and (kept := ctx.session.get(Concern, data.get("concern"))) is not None:
        ctx.say(ctx.t("{code} is kept as it is.", code=kept.tracking_code), main_menu(ctx))
    else:
        ctx.say(ctx.t(flow.cancelled or N_("Cancelled. Nothing was changed.")), main_menu(ctx))


@router.command("language")
def language(ctx: Context) -> None:
    """Choose the language."""
    ctx.start(ONBOARD, {"then": "menu"})


@router.command("forget", WORKERS)
def forget(ctx: Context) -> None:
    """Ask to delete the person's personal data (Decree 13/2023/NĐ-CP)."""
    ctx.start(FORGET)


# ---- outside any dialog -------------------------------------------------------------------

@router.otherwise
def outside_dialog(ctx: Context) -> None:
    """Text, a file or an old button when no dialog is open: a code shows status, else a hint."""
    incoming = ctx.incoming
    if incoming.text and looks_like_tracking_code(incoming.text):
        # Staff open the case itself; anyone else sees what the code's holder may see.
        case = ctx.routes.command_for("case", Role(ctx.person.role))
        if case is not None:
            ctx.incoming = replace(incoming, command="case", args=incoming.text, text=None)
            case.run(ctx)
        else:
            show_status(ctx, incoming.text)
        return
    if incoming.choice is not None:
        ctx.say(ctx.t("That button belongs to an earlier message."), main_menu(ctx))
        return
    ctx.say(outside_hint(ctx), main_menu(ctx))


# ---- onboarding: language and privacy notice ----------------------------------------------

@ONBOARD.step("language")
def ask_language(ctx: Context, answer: Answer | None) -> None:
    """Choose Tiếng Việt or English."""
    if answer is None:
        ctx.say(LANGUAGE_PROMPT, LANGUAGE_OPTIONS, columns=2)
        return
    locale = answer.picked("lang")
    if locale not in ("vi", "en"):
        ctx.say("Vui lòng chọn “Tiếng Việt” hoặc “English”. / Please choose “Tiếng Việt” or “English”.",
                LANGUAGE_OPTIONS, columns=2)
        return
    set_locale(ctx.person, locale, session=ctx.session)
    ctx.t = ctx.catalogs.get(locale)
    if ctx.person.role != Role.WORKER:  # workers keep the general menu, shown in their messenger's language
        ctx.update_menu(ctx.person)
    # A worker's first use goes on to the privacy notice; a later change of language (/language) does not.
    if ctx.person.consent_at is None and ctx.data.get("then") != "menu" and ctx.person.role == Role.WORKER:
        ctx.goto("consent")
        return
    ctx.end()
    ctx.say(ctx.t("Language saved."), main_menu(ctx))


@ONBOARD.step("consent")
def ask_consent(ctx: Context, answer: Answer | None) -> None:
    """The privacy notice, and consent before anything personal is kept."""
    options = [Option(Choice("agree"), ctx.t("I agree")), Option(Choice("decline"), ctx.t("Not now"))]
    if answer is None:
        ctx.say(privacy_notice(ctx) + "\n" + ctx.t("Do you agree?"), options)
        return
    if answer.chose("decline"):
        ctx.end()
        ctx.say(ctx.t("All right. Without your agreement we cannot take a concern.\n"
                      "You can still check a concern by sending its code. "
                      "When you are ready, choose “New concern” to read the notice again."), main_menu(ctx))
        return
    if not answer.chose("agree"):
        ctx.say(ctx.t("Please choose “I agree” or “Not now”."), options)
        return
    record_consent(ctx.person, session=ctx.session, at=ctx.now)
    then = ctx.data.get("then")
    ctx.end()
    if then == "new":
        ctx.say(ctx.t("Thank you."))
        new_concern(ctx)
        return
    ctx.say(ctx.t("Thank you. What would you like to do?"), main_menu(ctx))


def privacy_notice(ctx: Context) -> str:
    """The privacy notice required by Decree 13/2023/NĐ-CP: who, what, why, how long, who sees what."""
    return ctx.t(
        "Personal data (Decree 13/2023/NĐ-CP)\n"
        "• The {federation} keeps your {messenger} name and account ID, your language and your concerns, "
        "to receive your concerns, pass them on and send you the answers.\n"
        "• Photos and voice notes you send are kept with the concern (a copy, on Zalo), "
        "for union officers to see and pass on.\n"
        "• Union officers see your name only if you allow it for that concern.\n"
        "• Agencies never see your name, but they read what you write: "
        "do not write your name or phone number in it if you want to stay unknown.\n"
        "• You may send a concern fully anonymously: then nobody knows it is yours.\n"
        "• Your name is removed from a concern {months} months after it is finished.\n"
        "• To see your concerns, type “my concerns”. To delete your data, type “delete my data”.",
        federation=ctx.policy.federation(ctx.t.locale), messenger=messenger_name(ctx.person.messenger),
        months=ctx.policy.retention_months)


@router.command("mydata")
def my_data(ctx: Context) -> None:
    """Everything the store keeps about the person who asks (Decree 13/2023/NĐ-CP: the right to see it)."""
    person = ctx.person
    counts = data_of(person, session=ctx.session)
    concerns = concerns_by_author(person, session=ctx.session, limit=50)
    lines = [
        ctx.t("What we keep about you:"),
        ctx.t("• Account: {messenger} {account}; name: {name}", messenger=messenger_name(person.messenger),
              account=person.external_id, name=person.display_name or "–"),
        ctx.t("• Language: {language}; notice accepted on: {date}", language=person.locale or "–",
              date=ctx.t.date(person.consent_at) if person.consent_at else "–"),
        ctx.t("• Concerns linked to you: {codes}", codes=", ".join(
            f"{c.tracking_code} ({status_label(ctx, c.status)})" for c in concerns) or "–"),
        ctx.t("• Ratings you gave: {ratings}; replies and comments you wrote: {notes}", **counts),
        ctx.t("Anonymous concerns are not linked to you, so they are not listed."),
    ]
    if person.role == Role.WORKER:
        lines.insert(-1, ctx.t("• Announcements: muted since {date}", date=ctx.t.date(person.broadcasts_muted_at))
                     if person.broadcasts_muted_at else ctx.t("• Announcements: you receive them"))
    if person.role != Role.WORKER:
        lines.insert(2, ctx.t("• Role: {who}", who=role_label(ctx, Role(person.role), person.agency_code)))
    options = [Option(Choice.command("forget"), ctx.t("Delete my data"))] if person.role == Role.WORKER else []
    ctx.say("\n".join(lines), options + main_menu(ctx)[:2])


@router.command("privacy", WORKERS)
def privacy(ctx: Context) -> None:
    """The privacy notice again, with the way to delete one's data."""
    ctx.say(privacy_notice(ctx), [Option(Choice.command("forget"), ctx.t("Delete my data")),
                                  *main_menu(ctx)[:2]])


@router.command("mute", WORKERS)
def mute(ctx: Context) -> None:
    """No more announcements to everyone; news of the worker's own concerns keeps coming."""
    set_muted(ctx.person, True, session=ctx.session, at=ctx.now)
    ctx.say(ctx.t("You will no longer receive the union's announcements.\n"
                  "News of your own concerns still reaches you.\n"
                  "To receive announcements again, type “unmute”."),
            [Option(Choice.command("unmute"), ctx.t("Receive announcements")), *main_menu(ctx)[:2]])


@router.command("unmute", WORKERS)
def unmute(ctx: Context) -> None:
    """Announcements again."""
    set_muted(ctx.person, False, session=ctx.session)
    ctx.say(ctx.t("You will receive the union's announcements again."), main_menu(ctx))


# ---- deletion of personal data ------------------------------------------------------------

@FORGET.step("confirm")
def confirm_forget(ctx: Context, answer: Answer | None) -> None:
    """Confirm, then erase the person's name and unlink their concerns."""
    options = [Option(Choice("forget", "yes"), ctx.t("Delete my data")), Option(Choice("cancel"), ctx.t("Keep it"))]
    if answer is None:
        codes = [c.tracking_code for c in concerns_by_author(ctx.person, session=ctx.session, limit=20)]
        text = ctx.t("This deletes your name and language, and unlinks your concerns from you.\n"
                     "The concerns stay, without your name, so agencies can still answer them.\n"
                     "You will no longer get messages about them: keep their codes.")
        if codes:
            text += "\n" + ctx.t("Your codes: {codes}", codes=", ".join(codes))
        ctx.say(text, options)
        return
    if answer.picked("forget") != "yes":
        ctx.say(ctx.t("Please choose one of the options."), options)
        return
    forget_person(ctx.person, session=ctx.session)
    ctx.end()
    ctx.say(ctx.t("Your personal data has been deleted."), main_menu(ctx))


# ---- raising a concern ----------------------------------------------------------------------

@NEW.step("visibility")
def ask_visibility(ctx: Context, answer: Answer | None) -> None:
    """Who may know the author: the union only (default), or nobody."""
    options = [
        Option(Choice("vis", Visibility.UNION), ctx.t("The union may know me (recommended)")),
        Option(Choice("vis", Visibility.ANONYMOUS), ctx.t("Fully anonymous")),
    ]
    visibility = answer.picked("vis") if answer else None
    if visibility not in (Visibility.UNION, Visibility.ANONYMOUS):
        ctx.say(ctx.t(
            "Step 6 of 6. Who may know that you sent this?\n"
            "• “{union}”: only union officers see your name, to contact you if needed. "
            "Agencies do not see it.\n"
            "• “{anonymous}”: nobody knows, not even the union. "
            "We cannot write to you: you follow the concern with its code.",
            union=options[0].label, anonymous=options[1].label), [*options, form.cancel_option(ctx)])
        return
    ctx.data["visibility"] = visibility
    ctx.data.pop("editing", None)
    ctx.goto("confirm")


@NEW.step("confirm")
def confirm(ctx: Context, answer: Answer | None) -> None:
    """The summary, then Send, Edit or Cancel."""
    options = [Option(Choice("send"), ctx.t("Send")), Option(Choice("edit"), ctx.t("Edit")), form.cancel_option(ctx)]
    if answer is None:
        ctx.say(summary(ctx), options, columns=3)
        return
    if answer.chose("edit"):
        ctx.goto("edit")
        return
    if not answer.chose("send"):
        ctx.say(ctx.t("Please choose “Send”, “Edit” or “Cancel”."), options, columns=3)
        return
    submit(ctx)


def summary(ctx: Context) -> str:
    """The concern as it will be sent."""
    data = ctx.data
    category = get_item("category", data.get("category"), session=ctx.session)
    place = get_item("industrial_park", data.get("place"), session=ctx.session) or get_item(
        "district", data.get("place"), session=ctx.session)
    files = data.get("attachments", [])
    voice = sum(1 for f in files if f["kind"] == "voice")
    lines = [
        ctx.t("Please check your concern:"),
        ctx.t("Topic: {value}", value=ctx.t.name(category) if category else "–"),
        ctx.t("Enterprise: {value}", value=data.get("enterprise") or "–"),
        ctx.t("Place: {value}", value=ctx.t.name(place) if place else "–"),
        ctx.t("Content: {value}", value=data.get("description") or ctx.t("(voice note)")),
        *([ctx.t("Voice notes: {voice}. Photos and documents: {files}.", voice=voice, files=len(files) - voice)]
          if files else []),
        ctx.t("The union may see your name; agencies never will.") if data.get("visibility") == "union"
        else ctx.t("Fully anonymous: nobody will know it is you."),
    ]
    return "\n".join(lines)


@NEW.step("edit")
def choose_edit(ctx: Context, answer: Answer | None) -> None:
    """Which part to change before sending."""
    options = [
        Option(Choice("edit", "category"), ctx.t("Topic")), Option(Choice("edit", "enterprise"), ctx.t("Enterprise")),
        Option(Choice("edit", "place"), ctx.t("Place")), Option(Choice("edit", "description"), ctx.t("Content")),
        Option(Choice("edit", "attachments"), ctx.t("Files")),
        Option(Choice("edit", "visibility"), ctx.t("Who may know me")),
        Option(Choice("edit", "back"), ctx.t("Back")),
    ]
    if answer is None:
        ctx.say(ctx.t("What would you like to change?"), options, columns=2)
        return
    target = answer.picked("edit") or ""
    if target == "back":
        ctx.goto("confirm")
        return
    if target not in EDITABLE:
        ctx.say(ctx.t("Please choose one of the options."), options, columns=2)
        return
    if target == "attachments":
        ctx.data["attachments"] = [f for f in ctx.data.get("attachments", []) if f["kind"] == "voice"]
    ctx.data["editing"] = True
    ctx.goto(target)


def submit(ctx: Context) -> None:
    """Store the concern; the code is shown only after the dispatcher has committed it."""
    if ctx.quota.exhausted(ctx.who, ctx.now):
        quota_reached(ctx)
        return
    data = ctx.data
    if not data.get("description") and not data.get("attachments"):
        ctx.goto("description")
        return
    anonymous = data.get("visibility") == Visibility.ANONYMOUS
    concern = raise_concern(
        author=ctx.person, visibility=Visibility.ANONYMOUS if anonymous else Visibility.UNION,
        category_code=str(data.get("category")), enterprise=str(data.get("enterprise") or ""),
        place_code=data.get("place"), description=str(data.get("description") or ""),
        attachments=list(data.get("attachments", [])), messenger=ctx.person.messenger,
        actor=ctx.person, actor_role=Role.WORKER, session=ctx.session,
    )
    ctx.quota.use(ctx.who, ctx.now)
    ctx.end()
    # The chat's dialog row would otherwise be stamped in the same instant as an anonymous
    # concern, tying the two together for anyone reading the database.
    ctx.forget_dialog = anonymous
    # An anonymous author can learn the code nowhere else: it must reach them even if the process
    # dies between this commit and the reply.
    ctx.must_show = anonymous
    code = concern.tracking_code
    ctx.say(ctx.t("Your concern has been sent.\nTracking code: {code}", code=code))
    if anonymous:
        ctx.say(ctx.t("Keep this code: it is the only way to follow your anonymous concern.\n"
                      "To see its status and the answer, just send the code {code} here.", code=code),
                main_menu(ctx))
    else:
        ctx.say(ctx.t("What happens next:\n"
                      "1. Union officers read it and pass it to the responsible agency.\n"
                      "2. The agency answers in writing before a deadline.\n"
                      "3. We will write to you here whenever its status changes."), main_menu(ctx))


# ---- following up: withdraw, rate, not resolved, reply to the union ------------------------------

def concern_for_follower(ctx: Context, typed: str) -> Concern | None:
    """A concern this person may act on: their own, one merged from theirs, or an anonymous one
    whose code they hold. Anything else reads as not found, so nothing is revealed."""
    return concern_from_args(ctx, typed, may_see=lambda concern: concern.author_id is None or is_follower(
        concern, ctx.person, session=ctx.session))


def _actor(ctx: Context, concern: Concern) -> Person | None:
    # The author of an anonymous concern acts without a name, even in the history.
    return ctx.person if concern.author_id is not None else None


@router.command("withdraw", WORKERS)
def withdraw(ctx: Context) -> None:
    """Withdraw an open concern (asks to confirm)."""
    if not ctx.incoming.args:
        mine = [c for c in concerns_by_author(ctx.person, session=ctx.session, limit=20) if c.status in OPEN_STATES]
        if not mine:
            ctx.say(ctx.t("You have no open concern to withdraw."))
            return
        ctx.say(ctx.t("Which concern do you want to withdraw?"),
                [Option(Choice.command("withdraw", c.tracking_code), c.tracking_code) for c in mine], columns=2)
        return
    concern = concern_for_follower(ctx, ctx.incoming.args)
    if concern is None:
        return
    if concern.status not in OPEN_STATES:
        ctx.say(ctx.t("{code} is no longer open, so it cannot be withdrawn.", code=concern.tracking_code))
        return
    ctx.start(WITHDRAW, {"concern": concern.id})


@WITHDRAW.step("confirm")
def confirm_withdraw(ctx: Context, answer: Answer | None) -> None:
    """Yes or no."""
    concern = dialog_concern(ctx)
    options = [Option(Choice("withdraw", "yes"), ctx.t("Yes, withdraw")),
               Option(Choice("cancel"), ctx.t("No, keep it"))]
    if answer is None or answer.picked("withdraw") != "yes":
        ctx.say(ctx.t("Withdraw {code}? The union will stop handling it.", code=concern.tracking_code), options)
        return
    ctx.end()
    try:
        change_status(concern, Status.WITHDRAWN, actor=_actor(ctx, concern), actor_role=Role.WORKER,
                      session=ctx.session)
    except TransitionRefused:
        ctx.say(ctx.t("{code} is no longer open, so it cannot be withdrawn.", code=concern.tracking_code))
        return
    ctx.say(ctx.t("{code} has been withdrawn.", code=concern.tracking_code), main_menu(ctx))


@router.command("rate", WORKERS)
def rate(ctx: Context) -> None:
    """Rate the answer from 1 (very unsatisfied) to 5 (very satisfied)."""
    concern = concern_for_follower(ctx, ctx.incoming.args)
    if concern is None:
        return
    if not may_rate(concern, session=ctx.session):
        ctx.say(ctx.t("{code} has no answer to rate yet. You will be able to rate it once you have received "
                      "the answer.", code=concern.tracking_code))
        return
    if has_rated(concern, _actor(ctx, concern), session=ctx.session):
        ctx.say(ctx.t("You have already rated {code}. Thank you.", code=concern.tracking_code))
        return
    ctx.start(RATE, {"concern": concern.id})


@RATE.step("score")
def ask_score(ctx: Context, answer: Answer | None) -> None:
    """1 to 5."""
    concern = dialog_concern(ctx)
    options = [Option(Choice("rate", str(n)), str(n)) for n in range(1, 6)]
    score = parse_number(answer.picked("rate") or "") if answer else None
    if score is None or not 1 <= score <= 5:
        if answer is not None:
            ctx.say(ctx.t("Please choose a number from 1 to 5."))
        ctx.say(ctx.t("How satisfied are you with the answer to {code}?\n"
                      "1 = not at all, 5 = completely.", code=concern.tracking_code), options, columns=5)
        return
    add_rating(concern, score, _actor(ctx, concern), session=ctx.session)
    if concern.status == Status.RESOLVED:
        change_status(concern, Status.CLOSED, actor=_actor(ctx, concern), actor_role=Role.WORKER,
                      session=ctx.session, note=f"{score}/5")
    ctx.end()
    if score <= 2:
        ctx.say(ctx.t("Thank you for your rating. If the problem is not solved, tell us."),
                [Option(Choice.command("reopen", concern.tracking_code), ctx.t("Not resolved"))])
    else:
        ctx.say(ctx.t("Thank you for your rating."), main_menu(ctx))


@router.command("reopen", WORKERS)
def reopen(ctx: Context) -> None:
    """Say the concern is not actually resolved: it goes back to the union's queue."""
    concern = concern_for_follower(ctx, ctx.incoming.args)
    if concern is None:
        return
    limit = ctx.policy.reopen_days
    if concern.status not in ANSWERED_STATES:
        ctx.say(ctx.t("{code} is still being handled; there is nothing to reopen.", code=concern.tracking_code))
        return
    if (ctx.now - concern.updated_at).days > limit:
        ctx.say(ctx.t.plural("{code} was closed more than {days} day ago. Please send a new concern.",
                             "{code} was closed more than {days} days ago. Please send a new concern.", limit,
                             code=concern.tracking_code, days=limit), main_menu(ctx))
        return
    ctx.start(REOPEN, {"concern": concern.id})


@REOPEN.step("comment")
def ask_reopen_comment(ctx: Context, answer: Answer | None) -> None:
    """What is still wrong."""
    concern = dialog_concern(ctx)
    prompt = ctx.t("What is still not resolved about {code}? Please write a few words (at least {min} characters).",
                   code=concern.tracking_code, min=form.MIN_DESCRIPTION)
    text = text_answer(ctx, answer, prompt, low=form.MIN_DESCRIPTION, high=form.MAX_DESCRIPTION)
    if text is None:
        return
    ctx.end()
    try:
        change_status(concern, Status.REOPENED, actor=_actor(ctx, concern), actor_role=Role.WORKER,
                      session=ctx.session, note=text[:1000])
    except TransitionRefused:
        ctx.say(ctx.t("{code} is still being handled; there is nothing to reopen.", code=concern.tracking_code))
        return
    add_note(concern, "reopen", text, actor=_actor(ctx, concern), session=ctx.session)
    for officer in union_staff(session=ctx.session):
        ctx.notify(officer, N_("A worker says {code} is not resolved:\n{text}"),
                   options=[Option(Choice.command("case", concern.tracking_code), N_("Open"))],
                   code=concern.tracking_code, text=text)
    ctx.say(ctx.t("{code} has been reopened. The union will look at it again.", code=concern.tracking_code),
            main_menu(ctx))


@router.command("reply", WORKERS)
def reply(ctx: Context) -> None:
    """Answer the union's question about one of my concerns."""
    concern = concern_for_follower(ctx, ctx.incoming.args)
    if concern is None:
        return
    if last_asker(concern, session=ctx.session) is None:
        ctx.say(ctx.t("The union has not asked anything about {code}.", code=concern.tracking_code))
        return
    ctx.start(REPLY, {"concern": concern.id})


@REPLY.step("text")
def ask_reply_text(ctx: Context, answer: Answer | None) -> None:
    """The reply, relayed to the officer who asked, without the worker's name."""
    concern = dialog_concern(ctx)
    text = text_answer(ctx, answer, ctx.t("Type your reply to the union about {code}.", code=concern.tracking_code),
                       low=1, high=form.MAX_DESCRIPTION)
    if text is None:
        return
    add_note(concern, "reply", text, actor=_actor(ctx, concern), session=ctx.session)
    asker = last_asker(concern, session=ctx.session)
    if asker is not None:
        ctx.notify(asker, N_("The worker replied about {code}:\n{text}"),
                   options=[Option(Choice.command("case", concern.tracking_code), N_("Open"))],
                   code=concern.tracking_code, text=text)
    ctx.end()
    ctx.say(ctx.t("Your reply was sent to the union."), main_menu(ctx))


# ---- joining the staff ----------------------------------------------------------------------

def accept_invitation(ctx: Context, token: str) -> None:
    """Bind whoever opens an unused, unexpired invitation to its role."""
    result = invitations.accept(token, ctx.person, now=ctx.now, session=ctx.session)
    if result == invitations.Refusal.INVALID:
        log.warning("invalid or used invitation opened by person %s", ctx.person.id)
        ctx.say(ctx.t("This invitation is not valid: it was used already or has expired.\n"
                      "Please ask an admin for a new one."))
        return
    if result == invitations.Refusal.ALREADY_ADMIN:
        ctx.say(ctx.t("You are an admin already; the invitation was not used."))
        return
    assert not isinstance(result, invitations.Refusal)
    ctx.end()
    ctx.update_menu(ctx.person)
    role = Role(result.role)
    if role == Role.AGENCY:
        ctx.say(ctx.t("Welcome. This account is now the liaison of {agency}.\n"
                      "Please choose “Assigned to us” to see the concerns to answer.",
                      agency=agency_name(ctx, result.agency_code)), main_menu(ctx))
    else:
        ctx.say(ctx.t("Welcome! Your role: {who}.\nChoose “Queue” to see the concerns to sort.",
                      who=role_label(ctx, role, result.agency_code)), main_menu(ctx))
    creator = ctx.session.get(Person, result.created_by) if result.created_by else None
    if creator is not None:
        agency = get_item("agency", result.agency_code, session=ctx.session)
        ctx.notify(creator, N_("{name} accepted the invitation. Role: {who}."), name=display_name(ctx.person),
                   who=lambda t: t(ROLE_NAMES[role]) + (f" – {t.name(agency)}" if agency else ""))
    if ctx.person.locale is None:  # staff choose their language too
        ctx.enter(ONBOARD, "language", {"then": "menu"})
        ctx.say(LANGUAGE_PROMPT, LANGUAGE_OPTIONS, columns=2)
