"""The admin's side: invitations to staff roles, who holds which role, removing a role."""

from __future__ import annotations

import logging

from locales import N_
from handlers.core import Context, Option, command
from handlers.views import agency_name, display_name
from storage.cases import create_invitation, find_invitation
from storage.models import Person
from storage.people import list_staff, set_role
from storage.reference import get_item, list_items

log = logging.getLogger(__name__)
ADMINS = ("admin",)
ROLE_LABELS = {"officer": N_("union officer"), "agency": N_("agency liaison"), "admin": N_("admin")}


@command("invite", roles=ADMINS)
def invite(ctx: Context) -> None:
    """Create a one-time invitation: `/invite officer` or `/invite agency <code>`."""
    role, _, agency_code = ctx.incoming.args.partition(" ")
    role = role.lower()
    if role == "agency" and not agency_code:
        agencies = list_items("agency", session=ctx.session)
        ctx.say(ctx.t("Which agency is the invitation for?"),
                [Option(f"/invite agency {a.code}", ctx.t.name(a)) for a in agencies])
        return
    if role not in ("officer", "agency") or (role == "agency" and get_item("agency", agency_code.strip(),
                                                                          session=ctx.session) is None):
        ctx.say(ctx.t("Whom do you want to invite?"),
                [Option("/invite officer", ctx.t("A union officer")),
                 Option("/invite agency", ctx.t("An agency liaison"))])
        return
    invitation = create_invitation(role, agency_code.strip() or None, admin=ctx.person,
                                   days=ctx.settings.invitation_days, session=ctx.session, now=ctx.now)
    payload = f"inv_{invitation.token}"
    who = ctx.t(ROLE_LABELS[role])
    if role == "agency":
        who = f"{who} – {agency_name(ctx, agency_code.strip())}"
    lines = [ctx.t("Invitation ({who}), valid once, until {date}.", who=who,
                   date=ctx.t.datetime(invitation.expires_at))]
    if ctx.deep_link_base:
        lines.append(ctx.t("Telegram link: {link}", link=ctx.deep_link_base + payload))
    lines.append(ctx.t("On other messengers, send the bot: /start {payload}", payload=payload))
    ctx.say("\n".join(lines))


def accept_invitation(ctx: Context, token: str) -> None:
    """Bind whoever opens an unused, unexpired invitation to its role."""
    invitation = find_invitation(token, session=ctx.session)
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= ctx.now:
        log.warning("invalid or used invitation opened by person %s", ctx.person.id)
        ctx.say(ctx.t("This invitation is not valid: it was used already or has expired.\n"
                      "Please ask an admin for a new one."))
        return
    if ctx.person.role == "admin":
        ctx.say(ctx.t("You are an admin already; the invitation was not used."))
        return
    set_role(ctx.person, invitation.role, invitation.agency_code, session=ctx.session)
    invitation.used_by = ctx.person.id
    invitation.used_at = ctx.now
    ctx.session.add(invitation)
    ctx.end()
    who = ctx.t(ROLE_LABELS[invitation.role])
    if invitation.agency_code:
        who = f"{who} – {agency_name(ctx, invitation.agency_code)}"
    ctx.say(ctx.t("Welcome! Your role: {who}.\nSend /help to see your commands.", who=who))
    creator = ctx.session.get(Person, invitation.created_by) if invitation.created_by else None
    if creator is not None:
        ctx.notify(creator, N_("{name} accepted the invitation. Role: {who}."),
                   name=display_name(ctx.person), who=lambda t: t(ROLE_LABELS[invitation.role]))


@command("staff", roles=ADMINS)
def staff(ctx: Context) -> None:
    """Who holds which role."""
    people = list_staff(session=ctx.session)
    lines = [ctx.t("Staff:")]
    for person in people:
        role = ctx.t(ROLE_LABELS[person.role])
        if person.role == "agency":
            role = f"{role} – {agency_name(ctx, person.agency_code)}"
        lines.append(ctx.t("• {name} ({id}): {role}", name=display_name(person),
                           id=f"{person.messenger}:{person.external_id}", role=role))
    ctx.say("\n".join(lines), [Option("/revoke", ctx.t("Remove a role"))])


@command("revoke", roles=ADMINS)
def revoke(ctx: Context) -> None:
    """Remove someone's staff role: `/revoke` shows whom; `/revoke <number>` does it."""
    configured = set(ctx.settings.admin_ids)
    removable = [p for p in list_staff(session=ctx.session)
                 if p.id != ctx.person.id and f"{p.messenger}:{p.external_id}" not in configured]
    args = ctx.incoming.args
    target = next((p for p in removable if args.isdigit() and p.id == int(args)), None)
    if target is None:
        if not removable:
            ctx.say(ctx.t("There is nobody whose role you can remove."))
            return
        ctx.say(ctx.t("Whose role do you want to remove?"),
                [Option(f"/revoke {p.id}", f"{display_name(p)} – {ctx.t(ROLE_LABELS[p.role])}") for p in removable])
        return
    old_role = target.role
    set_role(target, "worker", None, session=ctx.session)
    log.info("person %s removed role %s from person %s", ctx.person.id, old_role, target.id)
    ctx.notify(target, N_("Your role as {who} has been removed. You can still use the bot as a worker."),
               who=lambda t: t(ROLE_LABELS[old_role]))
    ctx.say(ctx.t("{name} no longer has the role: {who}.", name=display_name(target), who=ctx.t(ROLE_LABELS[old_role])))
