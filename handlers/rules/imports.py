"""Concerns raised at a conference, entered from a spreadsheet: every row checked first, none twice.

The columns are those of the export that apply ("Lĩnh vực", "Nội dung", "Doanh nghiệp", "Địa bàn",
and "Người nêu" for the speaker), headed in Vietnamese or English; topics and places are written as
their names (with or without accents) or their codes.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlmodel import Session, col, select

from handlers.rules.cases import raise_concern
from storage.models import Concern, ConcernOrigin, DialogueSession, Role, Visibility
from storage.reference import list_items, search_key
from storage.sessions import record_origin

MIN_CONTENT, MAX_CONTENT, MAX_ENTERPRISE, MAX_SPEAKER = 10, 3000, 200, 128
# Header words (compared without case or accents) and the field each column fills.
HEADERS = {"linh vuc": "topic", "topic": "topic", "noi dung": "content", "content": "content",
           "doanh nghiep": "enterprise", "enterprise": "enterprise", "company": "enterprise",
           "dia ban": "place", "place": "place", "nguoi neu": "speaker", "speaker": "speaker"}


@dataclass
class Problem:
    """What is wrong with one cell: its row number in the file, the column, and why."""

    row: int
    column: str
    reason: str


@dataclass
class Row:
    """One valid row, ready to be stored."""

    number: int
    topic: str
    content: str
    enterprise: str
    place: str | None
    speaker: str | None


def read_table(path: Path) -> Iterator[tuple[int, list[Any]]]:
    """(row number, cells) of the first sheet of an XLSX file, or of a CSV file (UTF-8, with or without BOM)."""
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield from enumerate(csv.reader(handle), 1)
        return
    from openpyxl import load_workbook

    book = load_workbook(path, read_only=True, data_only=True)
    try:
        yield from enumerate((list(row) for row in book.worksheets[0].iter_rows(values_only=True)), 1)
    finally:
        book.close()


def check_rows(table: Iterator[tuple[int, list[Any]]], *, session: Session) -> tuple[list[Row], list[Problem]]:
    """Every row checked: the valid ones, and each problem with its row number and column."""
    topics = _lookup(list_items("category", session=session))
    places = _lookup(list_items("industrial_park", session=session) + list_items("district", session=session))
    columns: dict[int, str] | None = None
    rows: list[Row] = []
    problems: list[Problem] = []
    for number, cells in table:
        texts = ["" if cell is None else str(cell).strip() for cell in cells]
        if columns is None:  # the header: the first row naming the content (the export has a title above)
            found = {i: HEADERS[search_key(text)] for i, text in enumerate(texts) if search_key(text) in HEADERS}
            if "content" in found.values():
                columns = found
            elif number >= 5:
                return [], [Problem(number, "–", "no header row naming the content (Nội dung / Content)")]
            continue
        values = {field: texts[i] if i < len(texts) else "" for i, field in columns.items()}
        if not any(values.values()):
            continue  # an empty line
        before = len(problems)
        content, enterprise, speaker = values.get("content", ""), values.get("enterprise", ""), values.get("speaker")
        if not MIN_CONTENT <= len(content) <= MAX_CONTENT:
            problems.append(Problem(number, "Nội dung", f"must be {MIN_CONTENT} to {MAX_CONTENT} characters"))
        topic = topics.get(search_key(values.get("topic", "")))
        if topic is None:
            problems.append(Problem(number, "Lĩnh vực", f"unknown topic {values.get('topic', '')!r}"))
        place = places.get(search_key(values.get("place", ""))) if values.get("place") else None
        if values.get("place") and place is None:
            problems.append(Problem(number, "Địa bàn", f"unknown place {values['place']!r}"))
        if len(enterprise) > MAX_ENTERPRISE:
            problems.append(Problem(number, "Doanh nghiệp", f"longer than {MAX_ENTERPRISE} characters"))
        if speaker and len(speaker) > MAX_SPEAKER:
            problems.append(Problem(number, "Người nêu", f"longer than {MAX_SPEAKER} characters"))
        if len(problems) == before and topic is not None:
            rows.append(Row(number, topic, content, enterprise, place, speaker or None))
    if columns is None:
        problems.append(Problem(1, "–", "no header row naming the content (Nội dung / Content)"))
    return rows, problems


def _lookup(items: list[Any]) -> dict[str, str]:
    """Codes by every way of writing an entry: its code, its Vietnamese and its English name."""
    found: dict[str, str] = {}
    for item in items:
        for written in (item.code, item.name_vi, item.name_en):
            found[search_key(written)] = item.code
    return found


def store_rows(rows: list[Row], dialogue: DialogueSession, *, session: Session,
               progress: Callable[[int], None] | None = None) -> int:
    """Store the rows as concerns raised at the session; a row already there (same topic, content and
    enterprise at this session) is not stored again. How many were stored."""
    known = {(c.category_code, c.description, c.enterprise) for c in session.exec(
        select(Concern).join(ConcernOrigin, col(ConcernOrigin.concern_id) == Concern.id)
        .where(ConcernOrigin.session_id == dialogue.id))}
    stored = 0
    for done, row in enumerate(rows, 1):
        key = (row.topic, row.content, row.enterprise)
        if key not in known:
            concern = raise_concern(author=None, visibility=Visibility.UNION, category_code=row.topic,
                                    enterprise=row.enterprise, place_code=row.place, description=row.content,
                                    attachments=[], messenger="import", actor=None, actor_role=Role.OFFICER,
                                    session=session)
            record_origin(concern, dialogue=dialogue, entered_by=None, speaker_name=row.speaker, session=session)
            known.add(key)
            stored += 1
        if progress is not None:
            progress(done)
    return stored
