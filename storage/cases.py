"""Assignments to agencies, case notes and invitations."""

from __future__ import annotations

from sqlmodel import Session, col, select

from storage.models import Assignment, Concern


def assignments_of(concern: Concern, *, session: Session) -> list[Assignment]:
    """A concern's assignments, in the order they were made."""
    query = select(Assignment).where(Assignment.concern_id == concern.id)
    return list(session.exec(query.order_by(col(Assignment.id))))
