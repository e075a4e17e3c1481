"""Reports in the reader's language: a short text, a chart (PNG), the annex (XLSX) and a CSV.

The annex follows the shape of "Tổng hợp ý kiến, kiến nghị, đề xuất của công nhân lao động": one
row a concern, with the agencies, deadlines and answers; a second sheet sums up each agency. No
export names who raised a concern unless an admin asks for it (`with_authors`), and none ever names
the author of an anonymous concern.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from handlers.rules.lifecycle import STATUS_LABELS
from locales import N_, Translator
from storage.models import Status
from storage.reference import get_item
from storage.reports import ExportRow, Scope, Summary, export_rows, summarise

NameOf = Callable[[str, str | None], str]  # (kind, code) -> the name in the reader's language
COLUMNS = [  # header, width in characters
    (N_("No."), 5), (N_("Code"), 14), (N_("Topic"), 22), (N_("Content"), 50), (N_("Enterprise"), 24),
    (N_("Place"), 18), (N_("Date received"), 12), (N_("Agency"), 26), (N_("Deadline"), 12),
    (N_("Date answered"), 12), (N_("Answer"), 50), (N_("Status"), 20), (N_("Rating"), 8),
    (N_("Workers concerned"), 10),
]
AUTHOR_COLUMN = (N_("Raised by"), 24)  # only when an admin asked for names
DATE_FORMAT = "DD/MM/YYYY"
STYLED = (3, 6, 8, 9, 10)  # content, date received, deadline, date answered, answer
DATES = (6, 8, 9)  # of those, the dates
TOP = 8  # bars in a chart: more do not read on a phone


def names(t: Translator, session: Session) -> NameOf:
    """Reference names in the reader's language (a code that left the reference data shows as itself)."""
    def name_of(kind: str, code: str | None) -> str:
        if not code:
            return "–"
        if kind == "place":
            item = get_item("industrial_park", code, session=session) or get_item("district", code, session=session)
        else:
            item = get_item(kind, code, session=session)
        return t.name(item) if item else code
    return name_of


def start_of_day(day: date, zone: ZoneInfo) -> datetime:
    """The first moment of a local day, as a UTC moment (report scopes and deadlines are local days)."""
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def due_end(zone: ZoneInfo) -> Callable[[date], datetime]:
    """When a deadline falls due: the end of its day, locally (as a UTC moment)."""
    return lambda deadline: start_of_day(deadline + timedelta(days=1), zone)


def report_summary(t: Translator, scope: Scope, *, today: date, session: Session) -> Summary:
    """The figures of a scope, deadlines counted in the reader's time zone."""
    return summarise(scope, today=today, due_end=due_end(t.zone), session=session)


def write_report(out: Any, t: Translator, scope: Scope, title: str, *, today: date, session: Session,
                 as_csv: bool = False, with_authors: bool = False) -> int:
    """The annex of a scope, as XLSX (binary `out`) or CSV (text `out`); how many concerns it lists.

    `with_authors` adds who raised each concern (an admin's explicit request; never for anonymous ones)."""
    rows = export_rows(scope, session=session, with_authors=with_authors)
    if as_csv:
        return write_csv(out, t, rows, names(t, session), with_authors=with_authors)
    return write_xlsx(out, t, rows, report_summary(t, scope, today=today, session=session), title,
                      names(t, session), with_authors=with_authors)


def summary_text(t: Translator, summary: Summary, title: str, name_of: NameOf) -> str:
    """The figures as a few short lines."""
    on_time = summary.on_time_share
    lines = [title, t("Concerns: {total}", total=t.number(summary.total))]
    lines += [f"• {t(STATUS_LABELS[Status(status)])}: {t.number(n)}" for status, n in
              sorted(summary.by_status.items(), key=lambda item: -item[1])]
    lines.append(t("Answers: {answered}, on time: {share}", answered=t.number(summary.answered),
                   share=f"{round(100 * on_time)}%" if on_time is not None else "–"))
    days = round(summary.median_days) if summary.median_days is not None else None
    lines.append(t("Median time to answer: {days}", days="–" if days is None else
                   t.plural("{count} day", "{count} days", days, count=days)))
    lines.append(t("Satisfaction: {average}/5 ({rated} ratings)", rated=t.number(summary.rated),
                   average=f"{summary.rating_average:.1f}".replace(".", "," if t.locale == "vi" else ".")
                   if summary.rating_average is not None else "–"))
    if summary.by_category:
        lines.append(t("Most raised topics:"))
        lines += [f"• {name_of('category', code)}: {t.number(n)}" for code, n in _top(summary.by_category, 3)]
    late = sorted(((code, line.overdue) for code, line in summary.agencies.items() if line.overdue),
                  key=lambda item: -item[1])
    if late:
        lines.append(t("Overdue answers by agency:"))
        lines += [f"• {name_of('agency', code)}: {t.number(n)}" for code, n in late[:5]]
    return "\n".join(lines)


def _top(counts: dict[str, int], limit: int) -> list[tuple[str, int]]:
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:limit]


def chart_png(t: Translator, summary: Summary, title: str, name_of: NameOf) -> bytes:
    """Two bar charts, by status and by topic, sized and lettered for a phone screen."""
    import matplotlib  # imported here: it takes a moment, and only reports need it

    matplotlib.use("Agg")
    from matplotlib import pyplot

    panels = [
        (t("By status"), [(t(STATUS_LABELS[Status(s)]), n) for s, n in _top(summary.by_status, TOP)]),
        (t("By topic"), [(name_of("category", c), n) for c, n in _top(summary.by_category, TOP)]),
    ]
    # DejaVu Sans, shipped with matplotlib, has every Vietnamese letter.
    with pyplot.rc_context({"font.family": "DejaVu Sans", "font.size": 15}):
        figure, axes = pyplot.subplots(2, 1, figsize=(7.2, 12.8), dpi=100)
        for axis, (heading, bars) in zip(axes, panels, strict=True):
            labels = [_short(label) for label, _ in reversed(bars)]
            values = [n for _, n in reversed(bars)]
            axis.barh(labels, values, color="#1f6f8b")
            axis.set_title(heading, loc="left", fontweight="bold")
            for y, value in enumerate(values):
                axis.text(value, y, f" {value}", va="center")
            axis.spines[["top", "right"]].set_visible(False)
            axis.set_xticks([])
        figure.suptitle(title, x=0.02, ha="left", fontsize=17, fontweight="bold")
        figure.tight_layout(rect=(0, 0, 1, 0.97))
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        pyplot.close(figure)
    return buffer.getvalue()


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[:width - 1] + "…"


def _columns(with_authors: bool) -> list[tuple[str, int]]:
    return [*COLUMNS, AUTHOR_COLUMN] if with_authors else COLUMNS


def _cells(t: Translator, row: ExportRow, number: int, name_of: NameOf, with_authors: bool = False) -> list[Any]:
    # Nothing to show is None, not "": an XLSX writer then skips the cell instead of writing an empty one.
    concern = row.concern
    answered = [a for a in row.assignments if a.answered_at is not None]
    return [
        number, concern.tracking_code, name_of("category", concern.category_code), concern.description or
        t("(voice note)"), concern.enterprise or None, name_of("place", concern.place_code) if concern.place_code
        else None, _local(t, concern.created_at),
        "; ".join([name_of("agency", a.agency_code) for a in row.assignments]) or None,
        min((a.deadline for a in row.assignments), default=None),
        max((_local(t, a.answered_at) for a in answered), default=None),
        "\n".join([f"{name_of('agency', a.agency_code)}: {a.answer_text or ''}" for a in answered]) or None,
        t(STATUS_LABELS[Status(concern.status)]),
        round(row.rating, 1) if row.rating is not None else None, concern.me_too,
    ] + ([row.author] if with_authors else [])


def _local(t: Translator, moment: datetime) -> date:
    return moment.astimezone(t.zone).date()


def write_xlsx(out: Any, t: Translator, rows: Iterable[ExportRow], summary: Summary, title: str,
               name_of: NameOf, *, with_authors: bool = False) -> int:
    """The annex as a workbook (openpyxl's write-only mode: memory stays flat); how many rows."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(t("Concerns"))
    for index, (_, width) in enumerate(_columns(with_authors), 1):
        sheet.column_dimensions[get_column_letter(index)].width = width
    sheet.freeze_panes = "C3"  # the title and header rows, the number and the code stay in view
    bold, wrap = Font(bold=True), Alignment(wrap_text=True, vertical="top")
    heading = WriteOnlyCell(sheet, title)
    heading.font = Font(bold=True, size=13)
    sheet.append([heading])
    header = []
    for label, _ in _columns(with_authors):
        cell = WriteOnlyCell(sheet, t(label))
        cell.font, cell.alignment = bold, wrap
        header.append(cell)
    sheet.append(header)
    # Only dates and long texts need a cell object (plain values are cheaper), and one a column will do,
    # styled once: styling a new cell each row cost more than writing it. A write-only sheet writes a row
    # out before append() returns, so the cell is free again for the next row.
    styled = {index: WriteOnlyCell(sheet) for index in STYLED}
    for index, cell in styled.items():
        if index in DATES:
            cell.number_format = DATE_FORMAT
        else:
            cell.alignment = wrap
    name_of = cache(name_of)  # a few dozen names, asked for several times a row
    count = 0
    for count, row in enumerate(rows, 1):
        cells = _cells(t, row, count, name_of, with_authors)
        for index, cell in styled.items():
            if cells[index] is not None:
                cell.value = cells[index]
                cells[index] = cell
        sheet.append(cells)
    agencies = book.create_sheet(t("By agency"))
    for index, width in enumerate((36, 12, 14, 12, 12), 1):
        agencies.column_dimensions[get_column_letter(index)].width = width
    agencies.append([t("Agency"), t("Assigned"), t("Answered on time"), t("Late"), t("Overdue")])
    for code, line in sorted(summary.agencies.items(), key=lambda item: name_of("agency", item[0])):
        agencies.append([name_of("agency", code), line.assigned, line.on_time, line.late, line.overdue])
    book.save(out)
    return count


def write_csv(out: io.TextIOBase | Any, t: Translator, rows: Iterable[ExportRow], name_of: NameOf, *,
              with_authors: bool = False) -> int:
    """The annex as CSV; the caller opens `out` as UTF-8 with BOM so spreadsheets read Vietnamese."""
    writer = csv.writer(out)
    writer.writerow([t(label) for label, _ in _columns(with_authors)])
    name_of = cache(name_of)
    count = 0
    for count, row in enumerate(rows, 1):
        writer.writerow([f"{value:%d/%m/%Y}" if isinstance(value, date) else "" if value is None else value
                         for value in _cells(t, row, count, name_of, with_authors)])
    return count
