"""The admin's side: invitations to staff roles, who holds which role, removing a role."""

from __future__ import annotations

import logging

from handlers.core import Choice, Context, Option, parse_number
from handlers.routing import Router
from handlers.rules import invitations
from handlers.rules.reminders import sweep
from handlers.views import ROLE_LABELS, display_name, messenger_name, role_label
from locales import N_
from storage.models import Role
from storage.people import list_staff, set_role
from storage.reference import ReferenceError, list_items, read_reference_file, sync_reference

log = logging.getLogger(__name__)
router = Router("admin", roles=(Role.ADMIN,))


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
    """Remove someone's staff role: `/revoke` shows whom; `/revoke <number>` does it."""
    configured = ctx.policy.admin_ids
    removable = [p for p in list_staff(session=ctx.session)
                 if p.id != ctx.person.id and f"{p.messenger}:{p.external_id}" not in configured]
    number = parse_number(ctx.incoming.args)
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
    set_role(target, Role.WORKER, None, session=ctx.session)
    log.info("person %s removed role %s from person %s", ctx.person.id, old_role, target.id)
    ctx.notify(target, N_("Your role as {who} has been removed. You can still use the bot as a worker."),
               who=lambda t: t(ROLE_LABELS[old_role]))
    ctx.say(ctx.t("{name} no longer has the role: {who}.", name=display_name(target), who=ctx.t(ROLE_LABELS[old_role])))
