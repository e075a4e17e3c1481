"""Dialog state per chat, and the record of updates already handled."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, inspect
from sqlmodel import Session, col

from storage.models import DialogState, ProcessedUpdate, utcnow


def load_dialog(messenger: str, chat_id: str, *, session: Session) -> DialogState:
    """The chat's dialog state (a fresh, unsaved one if it has none)."""
    state = session.get(DialogState, (messenger, chat_id))
    return state or DialogState(messenger=messenger, chat_id=chat_id)


def dialog_data(state: DialogState) -> dict[str, Any]:
    """The answers collected so far in the chat's dialog."""
    return json.loads(state.data or "{}")


def save_dialog(
    state: DialogState, *, flow: str | None, step: str | None, data: dict[str, Any],
    options: list[list[str]], session: Session,
) -> None:
    """Store where the chat is and the choices last shown to it."""
    state.flow = flow
    state.step = step
    state.data = json.dumps(data, ensure_ascii=False)
    state.options = json.dumps(options, ensure_ascii=False)
    state.updated_at = utcnow()
    session.add(state)


def drop_dialog(state: DialogState, *, session: Session) -> None:
    """Delete the chat's dialog row (leaving no trace of when it last changed)."""
    if state in session and inspect(state).persistent:
        session.delete(state)


def claim_update(messenger: str, update_key: str, *, session: Session) -> bool:
    """Record an update as handled; False when it was handled before (a redelivery)."""
    if session.get(ProcessedUpdate, (messenger, update_key)) is not None:
        return False
    session.add(ProcessedUpdate(messenger=messenger, update_key=update_key))
    return True


def prune_processed_updates(*, session: Session, older_than: timedelta, now: datetime | None = None) -> int:
    """Forget handled updates older than any messenger would redeliver."""
    cutoff = (now or utcnow()) - older_than
    result = session.exec(delete(ProcessedUpdate).where(col(ProcessedUpdate.at) < cutoff))  # type: ignore[call-overload]
    session.commit()
    return int(result.rowcount or 0)
