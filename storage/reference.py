"""Reference data (categories, places, agencies, enterprises): loaded from an editable file."""

from __future__ import annotations

import tomllib
import unicodedata
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Table, text
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from storage.models import Enterprise, ReferenceItem

KINDS = ("category", "industrial_park", "district", "agency")
BUNDLED = "reference/bac_ninh.toml"  # the current data; reference/bac_giang_2024.toml is the 2024 set
# Reference items are offered by the date of this zone (that of the province) when no date is given.
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

ReferenceData = dict[str, list[dict[str, Any]]]


class ReferenceError(Exception):
    """The reference data file is missing, unreadable or malformed."""


def read_reference_file(path: Path | None) -> ReferenceData:
    """Parse and check the reference file (the bundled current one when `path` is None)."""
    source = f"REFERENCE_FILE {path}" if path is not None else f"REFERENCE_FILE (bundled {BUNDLED})"
    try:
        if path is None:
            text = resources.files("storage").joinpath(BUNDLED).read_text("utf-8")
        else:
            text = Path(path).read_text("utf-8")
        data = tomllib.loads(text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReferenceError(f"{source}: {exc}") from None
    for kind in KINDS:
        codes: set[str] = set()
        for entry in data.get(kind, []):
            if not {"code", "vi", "en"} <= entry.keys():
                raise ReferenceError(f"{source}: a [[{kind}]] needs code, vi and en")
            code = entry["code"]
            if code in codes:
                raise ReferenceError(f"{source}: two [[{kind}]] have the code {code!r}")
            codes.add(code)
            for field in ("since", "until"):
                value = entry.get(field)
                # TOML dates are written bare (until = 2025-06-30); a date-time or a quoted string is refused.
                if value is not None and type(value) is not date:
                    raise ReferenceError(f"{source}: [[{kind}]] {code}: {field} must be a date written "
                                         f"without quotes, like {field} = 2025-06-30 (found {value!r})")
            if entry.get("since") and entry.get("until") and entry["since"] > entry["until"]:
                raise ReferenceError(f"{source}: [[{kind}]] {code}: since is after until")
    return data


# Two processes starting at once on a new PostgreSQL store would both insert the items: one waits for the other.
_LOCK_SYNC = text("SELECT pg_advisory_xact_lock(hashtextextended('kiennghi:reference', 0))")


def sync_reference(data: ReferenceData, *, session: Session) -> None:
    """Make the stored reference items match the file; items no longer listed become inactive."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(_LOCK_SYNC)
    existing = {(i.kind, i.code): i for i in session.exec(select(ReferenceItem))}
    seen = set()
    for kind in KINDS:
        for position, entry in enumerate(data.get(kind, [])):
            key = (kind, entry["code"])
            seen.add(key)
            item = existing.get(key) or ReferenceItem(kind=kind, code=entry["code"], name_vi="", name_en="")
            item.name_vi = unicodedata.normalize("NFC", entry["vi"])
            item.name_en = entry["en"]
            item.position = position
            item.active = True
            item.valid_from = entry.get("since")
            item.valid_until = entry.get("until")
            session.add(item)
    for key, item in existing.items():
        if key not in seen:
            item.active = False
            session.add(item)
    for entry in data.get("enterprise", []):
        remember_enterprise(entry["name"], session=session)
    session.commit()
    _CACHE.pop(str(session.get_bind().engine.url), None)


# Reference data changes only through sync_reference (at start-up) and the dialog reads it on
# most steps, so each database's items are kept in memory, as detached read-only copies.
_CACHE: dict[str, dict[tuple[str, str], ReferenceItem]] = {}


def _all_items(session: Session) -> dict[tuple[str, str], ReferenceItem]:
    key = str(session.get_bind().engine.url)
    items = _CACHE.get(key)
    if items is None:
        rows = session.exec(select(ReferenceItem).order_by(col(ReferenceItem.position))).all()
        items = {(r.kind, r.code): ReferenceItem(**r.model_dump()) for r in rows}
        _CACHE[key] = items
    return items


def list_items(kind: str, *, session: Session, on: date | None = None) -> list[ReferenceItem]:
    """Active items of one kind valid on a day (today in Vietnam when not given), in file order.

    An item is valid from its `since` to its `until`, both included; e.g. a district abolished on
    01/07/2025 (`until = 2025-06-30`) is offered for a concern of May 2024 but not for one of today."""
    day = on if on is not None else datetime.now(ZONE).date()
    return [item for (k, _), item in _all_items(session).items()
            if k == kind and item.active and _valid(item, day)]


def _valid(item: ReferenceItem, day: date) -> bool:
    return ((item.valid_from is None or item.valid_from <= day)
            and (item.valid_until is None or day <= item.valid_until))


def get_item(kind: str, code: str | None, *, session: Session) -> ReferenceItem | None:
    """One item by kind and code, even retired or dropped from the file (old concerns keep their names)."""
    if not code:
        return None
    return _all_items(session).get((kind, code))


def search_key(text: str) -> str:
    """A comparison key: lower case, no diacritics, no punctuation, single spaces."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = "".join(ch if ch.isalnum() else " " for ch in plain.lower()).split()
    return " ".join(words)


_ENTERPRISE: Table = Enterprise.__table__  # type: ignore[attr-defined]
# One statement, so two workers naming the same new enterprise at once cannot collide on its key.
_REMEMBER = {
    "sqlite": sqlite_insert(_ENTERPRISE).on_conflict_do_nothing(index_elements=["search_key"]),
    "postgresql": postgresql_insert(_ENTERPRISE).on_conflict_do_nothing(index_elements=["search_key"]),
}


def remember_enterprise(name: str, *, session: Session) -> None:
    """Store an enterprise name so later workers are offered it (a name already known is kept)."""
    key = search_key(name)
    if not key:
        return
    upsert = _REMEMBER.get(session.get_bind().dialect.name)
    if upsert is not None:
        session.execute(upsert, {"name": name, "search_key": key})
    elif session.exec(select(Enterprise).where(Enterprise.search_key == key)).first() is None:
        session.add(Enterprise(name=name, search_key=key))


def match_enterprises(text: str, *, session: Session, limit: int = 5) -> list[Enterprise]:
    """Known enterprises whose name contains what was typed, ignoring case and diacritics."""
    key = search_key(text)
    if not key:
        return []
    query = select(Enterprise).where(col(Enterprise.search_key).contains(key))
    return list(session.exec(query.order_by(col(Enterprise.name)).limit(limit)))
