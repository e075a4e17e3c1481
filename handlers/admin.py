"""The admin's side: invitations to staff roles, who holds which role, removing a role, broadcasts."""

from __future__ import annotations

import logging

from handlers.core import Answer, Choice, Context, Option, parse_number, text_answer
from handlers.routing import Router
from handlers.rules import invitations
from handlers.rules.broadcasts import BROADCAST_MESSAGE, queue_broadcast
from handlers.rules.reminders import sweep
from handlers.views import ROLE_LABELS, category_name, display_name, messenger_name, place_name, role_label
from locales import N_
from storage.broadcasts import ALL, CATEGORY, PLACE, count_audience, delivery_counts, unfinished_broadcasts
from storage.models import Role
from storage.outbox import PENDING, SENDING
from storage.people import list_staff, set_role
from storage.reference import ReferenceError, list_items, read_reference_file, sync_reference

log = logging.getLogger(__name__)
router = Router("admin", roles=(Role.ADMIN,))
BROADCAST = router.flow("broadcast", ["audience", "target", "text", "confirm"],
                        cancelled=N_("Cancelled. No announcement was sent."))
MAX_BROADCAST = 1000  # characters: a few short paragraphs, one message on every messenger


@router.command("invite")
def invite(ctx: Context) -> None:
    """Create a one-time invitation: `/invite officer` or `/invite agency <code>`."""
    role, _, agency_code = ctx.incoming.args.partition(" ")
    role = role.lower()
    agency_code = agency_code.strip()
    agencies = list_items("agency", session=ctx.session, on=ctx.today())  # not one that no longer exists
    if role == Role.AGENCY and not agency_code:
        ctx.say(ctx.t("Which agency is the invitation for?"),
                [Option(Choice.command("invite", f"agency {a.code}"), ctx.t.name(a)) for a in agencies])
        return
    if role not in (Role.OFFICER, Role.AGENCY) or (
            role == Role.AGENCY and agency_code not in {a.code for a in agencies}):
        ctx.say(ctx.t("Whom do you want to invite?"),
                [Option(Choice.command("invite", "officer"), ctx.t("A union officer")),
                 Option(Choice.command("invite", "agency"), ctx.t("An agency liaison"))])
        return
    invitation = invitations.invite(Role(role), agency_code or None, admin=ctx.person,
                                    days=ctx.policy.invitation_days, now=ctx.now, session=ctx.session)
    payload = f"inv_{invitation.token}"
    lines = [ctx.t("Invitation ({who}), valid once, until {date}.", who=role_label(ctx, Role(role), agency_code),
                   date=ctx.t.datetime(invitation.expires_at))]
    telegram_link = ctx.invitation_links.get("telegram")
    if telegram_link is not None:
        lines.append(ctx.t("Telegram link: {link}", link=telegram_link(payload)))
    lines.append(ctx.t("On other messengers, send the bot: /start {payload}", payload=payload))
    ctx.say("\n".join(lines))


@router.command("remind")
def remind(ctx: Context) -> None:
    """`/remind now`: run the reminder sweep at once and say what it queued."""
    if ctx.incoming.args.strip().lower() != "now":
        ctx.say(ctx.t("Send “/remind now” to send the reminders and digests that are due now."),
                [Option(Choice.command("remind", "now"), ctx.t("Send them now"))])
        return
    report = sweep(session=ctx.session, now=ctx.now, zone=ctx.policy.zone, policy=ctx.policy.reminders,
                   catalogs=ctx.catalogs, force=True)
    if not report.total:
        ctx.say(ctx.t("Nothing was due: no message was queued."))
        return
    ctx.say(ctx.t("Queued: {stages} reminders, {overdue} overdue notices ({agencies} agencies), "
                  "{escalations} escalations, {digests} digests, {arrivals} notices of new concerns.",
                  stages=report.stages, overdue=report.overdue, agencies=len(report.agencies),
                  escalations=report.escalations, digests=report.digests, arrivals=report.arrivals))


@router.command("reload")
def reload_reference(ctx: Context) -> None:
    """Read the reference data file again; an invalid one is refused with its reason, nothing changed."""
    try:
        data = read_reference_file(ctx.policy.reference_file)
    except ReferenceError as exc:
        ctx.say(ctx.t("The reference data file was not loaded: {reason}", reason=str(exc)[:300]))
        return
    sync_reference(data, session=ctx.session)
    counts = {kind: len(list_items(kind, session=ctx.session, on=ctx.today()))
              for kind in ("category", "industrial_park", "district", "agency")}
    ctx.say(ctx.t("Reference data loaded: {category} topics, {industrial_park} industrial parks, {district} areas, "
                  "{agency} agencies. Concerns that used removed entries keep their names.", **counts))


@router.command("staff")
def staff(ctx: Context) -> None:
    """Who holds which role."""
    lines = [ctx.t("Staff:")]
    for person in list_staff(session=ctx.session):
        lines.append(ctx.t("• {name} ({id}): {role}", name=display_name(person),
                           id=f"{messenger_name(person.messenger)} {person.external_id}",
                           role=role_label(ctx, person.role, person.agency_code)))
    ctx.say("\n".join(lines), [Option(Choice.command("revoke"), ctx.t("Remove a role"))])


@router.command("revoke")
def revoke(ctx: Context) -> None:
    """Remove someone's staff role: `/revoke` shows whom; `/revoke <number>` asks to confirm;
    `/revoke <number> yes` does it."""
    configured = ctx.policy.admin_ids
    removable = [p for p in list_staff(session=ctx.session)
                 if p.id != ctx.person.id and f"{p.messenger}:{p.external_id}" not in configured]
    typed, _, confirmed = ctx.incoming.args.partition(" ")
    number = parse_number(typed)
    target = next((p for p in removable if p.id == number), None)
    if target is None:
        if not removable:
            ctx.say(ctx.t("There is nobody whose role you can remove."))
            return
        ctx.say(ctx.t("Whose role do you want to remove?"),
                [Option(Choice.command("revoke", str(p.id)), f"{display_name(p)} – {ctx.t(ROLE_LABELS[p.role])}")
                 for p in removable])
        return
    old_role = Role(target.role)
    if confirmed.strip().lower() != "yes":  # a role is not taken away by one stray tap
        ctx.say(ctx.t("Remove the role of {name} ({who})? They will no longer receive or handle concerns.",
                      name=display_name(target), who=role_label(ctx, old_role, target.agency_code)),
                [Option(Choice.command("revoke", f"{target.id} yes"), ctx.t("Remove the role")),
                 Option(Choice.command("staff"), ctx.t("Keep the role"))])
        return
    set_role(target, Role.WORKER, None, session=ctx.session)
    ctx.update_menu(target)  # back to the workers' commands
    log.info("person %s removed role %s from person %s", ctx.person.id, old_role, target.id)
    ctx.notify(target, N_("Your role as {who} has been removed. You can still use the bot as a worker."),
               who=lambda t: t(ROLE_LABELS[old_role]))
    ctx.say(ctx.t("{name} no longer has the role: {who}.", name=display_name(target), who=ctx.t(ROLE_LABELS[old_role])))


# ---- broadcasts ---------------------------------------------------------------------------------

@router.command("broadcast")
def broadcast(ctx: Context) -> None:
    """An announcement to workers: whom, the text, a preview with the number of recipients, then send."""
    for running in unfinished_broadcasts(session=ctx.session):
        counts = delivery_counts(running, session=ctx.session)
        left = counts.get(PENDING, 0) + counts.get(SENDING, 0)
        if left:  # none left: sent, its final count on the way
            ctx.say(ctx.t("An announcement of {date} is still being sent: {left} of {total} messages left.",
                          date=ctx.t.datetime(running.created_at), left=ctx.t.number(left),
                          total=ctx.t.number(running.recipients)))
    ctx.start(BROADCAST)


@BROADCAST.step("audience")
def ask_audience(ctx: Context, answer: Answer | None) -> None:
    """All workers, those of a place, or those of a topic."""
    options = [Option(Choice("to", ALL), ctx.t("All workers")),
               Option(Choice("to", PLACE), ctx.t("Workers of one place")),
               Option(Choice("to", CATEGORY), ctx.t("Workers who raised one topic")),
               Option(Choice("cancel"), ctx.t("Cancel"))]
    picked = answer.picked("to") if answer is not None else None
    if picked not in (ALL, PLACE, CATEGORY):
        ctx.say(ctx.t("Whom is the announcement for?") if answer is None else
                ctx.t("Please choose one of the options."), options)
        return
    ctx.data["audience"] = picked
    ctx.data["code"] = None
    ctx.goto("target" if picked != ALL else "confirm" if ctx.data.get("text") else "text")


@BROADCAST.step("target")
def ask_target(ctx: Context, answer: Answer | None) -> None:
    """Which place or topic (workers who raised a concern there)."""
    kinds = ("industrial_park", "district") if ctx.data["audience"] == PLACE else ("category",)
    items = [item for kind in kinds for item in list_items(kind, session=ctx.session, on=ctx.today())]
    options = [Option(Choice("code", item.code), ctx.t.name(item)) for item in items]
    options.append(Option(Choice("cancel"), ctx.t("Cancel")))
    code = answer.picked("code") if answer is not None else None
    if code not in {item.code for item in items}:
        ctx.say(ctx.t("Which place? The announcement goes to workers who raised a concern there.")
                if ctx.data["audience"] == PLACE else
                ctx.t("Which topic? The announcement goes to workers who raised a concern on it."),
                options, columns=2)
        return
    ctx.data["code"] = code
    ctx.goto("confirm" if ctx.data.get("text") else "text")


@BROADCAST.step("text")
def ask_broadcast_text(ctx: Context, answer: Answer | None) -> None:
    """The words of the announcement."""
    text = text_answer(ctx, answer, ctx.t("Type the announcement (up to {max} characters). "
                                          "You will see it before it is sent.", max=ctx.t.number(MAX_BROADCAST)),
                       low=10, high=MAX_BROADCAST)
    if text is not None:
        ctx.data["text"] = text
        ctx.goto("confirm")


@BROADCAST.step("confirm")
def confirm_broadcast(ctx: Context, answer: Answer | None) -> None:
    """The preview, with how many workers will receive it; send, change the text, or cancel."""
    audience, code = str(ctx.data["audience"]), ctx.data.get("code")
    if answer is not None and answer.chose("edit"):
        ctx.goto("text")
        return
    reachable, refused = count_audience(audience, code, session=ctx.session)
    if answer is not None and answer.chose("send") and reachable:
        sent = queue_broadcast(ctx.person, str(ctx.data["text"]), audience, code, session=ctx.session,
                               catalogs=ctx.catalogs, federation=ctx.policy.federation)
        ctx.end()
        log.info("person %s queued broadcast %s for %d workers", ctx.person.id, sent.id, sent.recipients)
        ctx.say(ctx.t.plural("The announcement is queued for {count} worker. It goes out within the messengers' "
                             "limits; you will be told how it goes, and the final count.",
                             "The announcement is queued for {count} workers. It goes out within the messengers' "
                             "limits; you will be told how it goes, and the final count.",
                             sent.recipients, count=ctx.t.number(sent.recipients)))
        return
    whom = (ctx.t("all workers") if audience == ALL else
            ctx.t("workers of {place}", place=place_name(ctx, code)) if audience == PLACE else
            ctx.t("workers who raised “{topic}”", topic=category_name(ctx, code)))
    if not reachable:
        ctx.say(ctx.t("Nobody would receive it ({whom}): they cannot be reached, or they muted "
                      "announcements. Choose other recipients.", whom=whom))
        ctx.goto("audience")
        return
    preview = ctx.t(BROADCAST_MESSAGE, federation=ctx.policy.federation(ctx.t.locale), text=ctx.data["text"])
    lines = [ctx.t("Preview. It goes to {count} ({whom}), each in their language:", count=ctx.t.number(reachable),
                   whom=whom), "", preview]
    if refused:
        lines += ["", ctx.t("{count} more cannot be reached (they blocked the bot) and are left out.",
                            count=ctx.t.number(refused))]
    ctx.say("\n".join(lines), [Option(Choice("send"), ctx.t("Send")),
                               Option(Choice("edit"), ctx.t("Change the text")),
                               Option(Choice("cancel"), ctx.t("Cancel"))])
