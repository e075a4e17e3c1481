"""The Zalo OA's token pair: stored once from the settings, then renewed, one process at a time.

Zalo's refresh token works once: a process about to spend it first takes a short lease on the row
(a conditional update that only one process can win), and stores the new pair in one update.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage.models import ZaloOAToken, utcnow


def _seed_of(access_token: str, refresh_token: str) -> str:
    return hashlib.sha256(f"{access_token}\n{refresh_token}".encode()).hexdigest()


def seed_token(app_id: str, access_token: str, refresh_token: str, *, session: Session,
               now: datetime | None = None) -> ZaloOAToken:
    """The app's stored pair, first taken from the settings; a pair in the settings that differs from
    the one the row started from replaces it (an operator's new pair). Its age is unknown: it is due
    for renewal at once."""
    now = now or utcnow()
    seed = _seed_of(access_token, refresh_token)
    row = session.get(ZaloOAToken, app_id)
    if row is not None and row.seed == seed:
        return row
    try:
        if row is None:
            row = ZaloOAToken(app_id=app_id, access_token=access_token, refresh_token=refresh_token,
                              expires_at=now, seed=seed, updated_at=now)
        else:
            row.access_token, row.refresh_token, row.expires_at, row.seed = access_token, refresh_token, now, seed
            row.version += 1
            row.renewing_until = None
            row.updated_at = now
        session.add(row)
        session.commit()
    except IntegrityError:  # another process stored it at the same moment
        session.rollback()
        stored = session.get(ZaloOAToken, app_id, populate_existing=True)
        assert stored is not None
        return stored
    return row


def token_row(app_id: str, *, session: Session) -> ZaloOAToken | None:
    """The app's current pair, as stored (a fresh read, not a cached copy)."""
    return session.get(ZaloOAToken, app_id, populate_existing=True)


def claim_renewal(app_id: str, version: int, *, session: Session, until: datetime,
                  now: datetime | None = None) -> bool:
    """Take the lease to spend this pair's refresh token until `until`; False if the pair has changed
    or another process holds an unexpired lease. Committed at once."""
    now = now or utcnow()
    claimed = session.execute(update(ZaloOAToken).where(
        col(ZaloOAToken.app_id) == app_id, col(ZaloOAToken.version) == version,
        or_(col(ZaloOAToken.renewing_until).is_(None), col(ZaloOAToken.renewing_until) < now),
    ).values(renewing_until=until).returning(col(ZaloOAToken.app_id))).first()
    session.commit()
    return claimed is not None


def store_renewed(app_id: str, version: int, access_token: str, refresh_token: str, expires_at: datetime, *,
                  session: Session) -> bool:
    """Store the new pair in one update (a new version, the lease ended); False if the row had changed."""
    stored = session.execute(update(ZaloOAToken).where(
        col(ZaloOAToken.app_id) == app_id, col(ZaloOAToken.version) == version,
    ).values(access_token=access_token, refresh_token=refresh_token, expires_at=expires_at,
             version=version + 1, renewing_until=None, updated_at=utcnow())
     .returning(col(ZaloOAToken.app_id))).first()
    session.commit()
    return stored is not None


def end_renewal(app_id: str, version: int, *, session: Session) -> None:
    """Give the lease back without a new pair (the renewal failed): the old pair stays."""
    session.execute(update(ZaloOAToken).where(
        col(ZaloOAToken.app_id) == app_id, col(ZaloOAToken.version) == version,
    ).values(renewing_until=None))
    session.commit()
