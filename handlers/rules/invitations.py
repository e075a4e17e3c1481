"""Invitations: a single-use token that makes whoever opens it a union officer or agency liaison."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import Session

from storage.cases import add_invitation, find_invitation
from storage.models import Invitation, Person, Role
from storage.people import set_role


class Refusal(StrEnum):
    """Why an invitation was not used."""

    INVALID = "invalid"  # unknown, used already, or expired
    ALREADY_ADMIN = "already_admin"


def invite(role: Role, agency_code: str | None, *, admin: Person, days: int, now: datetime,
           session: Session) -> Invitation:
    """A single-use invitation to a role, valid for `days` days."""
    invitation = Invitation(token=secrets.token_urlsafe(12), role=role, agency_code=agency_code,
                            created_by=admin.id, expires_at=now + timedelta(days=days))
    add_invitation(invitation, session=session)
    return invitation


def accept(token: str, person: Person, *, now: datetime, session: Session) -> Invitation | Refusal:
    """Give the person the invitation's role, once; or say why not."""
    invitation = find_invitation(token, session=session)
    if invitation is None or invitation.used_at is not None or invitation.expires_at <= now:
        return Refusal.INVALID
    if person.role == Role.ADMIN:
        return Refusal.ALREADY_ADMIN
    set_role(person, Role(invitation.role), invitation.agency_code, session=session)
    invitation.used_by = person.id
    invitation.used_at = now
    session.add(invitation)
    return invitation
