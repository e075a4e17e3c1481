"""The Labour Federation's reports: /stats (text and chart) and /export (the annex workbook)."""

from __future__ import annotations

import io
import struct
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from tests.cast import LABOUR_AGENCY, assign_to_labour, staff_up, submit
from tests.chat import Screen, options_of, text_of
from tests.conftest import open_world
from tests.flows import submit_concern
from tests.test_config_cli import kiennghi


def _file(screens: list[Screen]) -> tuple[str, bytes]:
    found = [s.upload for s in screens if s.upload]
    assert found, screens
    return found[-1]


async def _two_concerns(world: Any) -> tuple[Any, str, str]:
    cast = await staff_up(world)
    answered = await submit(cast.worker)
    await assign_to_labour(cast.officer, answered)
    await cast.labour.send(f"/answer {answered}")
    await cast.labour.send("Sở đã làm việc với doanh nghiệp về tiền lương.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    waiting = await submit_concern(cast.worker, category="Housing and rented rooms", anonymous=True)
    return cast, answered, waiting


@pytest.mark.needs("documents")
async def test_stats_give_counts_on_time_answers_and_a_phone_sized_chart(world: Any) -> None:
    cast, _, _ = await _two_concerns(world)
    replies = await cast.officer.send("/stats")
    text = text_of(replies)
    assert "Toàn bộ kiến nghị" in text and "Số kiến nghị: 2" in text
    assert "Số câu trả lời: 1, đúng hạn: 100%" in text and "Tiền lương, thưởng: 1" in text
    assert {"Tháng này", "Năm nay", "Toàn bộ kiến nghị"} <= set(options_of(replies))
    name, png = _file(replies)
    assert name.endswith(".png") and png.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (720, 1280)  # a phone's portrait screen
    assert "The command /stats is not available" in text_of(await cast.worker.send("/stats"))


@pytest.mark.needs("documents")
async def test_export_is_the_annex_with_real_dates_a_summary_sheet_and_no_identity(world: Any) -> None:
    cast, answered, waiting = await _two_concerns(world)
    replies = await cast.officer.send("/export")
    assert "2 kiến nghị, không kèm tên người gửi." in text_of(replies)
    name, data = _file(replies)
    assert name.endswith(".xlsx")
    book = load_workbook(io.BytesIO(data))
    sheet, agencies = book.worksheets
    assert sheet["A1"].value.startswith("Tổng hợp ý kiến, kiến nghị, đề xuất của công nhân lao động")
    assert [c.value for c in sheet[2]][:4] == ["STT", "Mã", "Lĩnh vực", "Nội dung"]
    assert sheet.freeze_panes == "C3"
    rows = {row[1]: row for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert set(rows) == {answered, waiting}
    first = rows[answered]
    assert first[0] in (1, 2) and first[2] == "Tiền lương, thưởng" and first[7] == LABOUR_AGENCY
    assert isinstance(first[6], date) and isinstance(first[8], date) and isinstance(first[9], date)
    assert sheet.cell(row=3, column=7).number_format == "DD/MM/YYYY"
    assert "làm việc với doanh nghiệp" in first[10] and first[13] == 1
    assert rows[waiting][9] is None and not rows[waiting][7]  # not answered, not yet assigned
    assert [c.value for c in agencies[1]] == ["Cơ quan", "Được giao", "Trả lời đúng hạn", "Trả lời trễ hạn",
                                             "Quá hạn chưa trả lời"]
    assert [c.value for c in agencies[2]] == [LABOUR_AGENCY, 1, 1, 0, 0]
    values = [str(c.value) for ws in book.worksheets for row in ws.iter_rows() for c in row]
    assert not any("Lan Nguyễn" in value for value in values)  # the author's name, nowhere
    assert cast.worker.chat_id not in values  # nor the author's account


@pytest.mark.needs("documents")
async def test_names_are_exported_only_when_an_admin_asks_and_never_for_anonymous_concerns(world: Any) -> None:
    cast, answered, waiting = await _two_concerns(world)  # the second is anonymous
    refused = text_of(await cast.officer.send("/export names"))
    assert "Chỉ quản trị viên mới xuất được tên" in refused
    replies = await cast.admin.send("/export month names")
    assert "2 kiến nghị, kèm tên người lao động đã gửi" in text_of(replies)
    assert "dữ liệu cá nhân" in text_of(replies)
    sheet = load_workbook(io.BytesIO(_file(replies)[1])).worksheets[0]
    assert [c.value for c in sheet[2]][-1] == "Người nêu"
    rows = {row[1]: row for row in sheet.iter_rows(min_row=3, values_only=True)}
    assert rows[answered][-1] == "Lan Nguyễn" and rows[waiting][-1] is None


async def test_a_report_for_a_session_or_a_range_and_bad_scopes_are_explained(world: Any) -> None:
    cast, _, _ = await _two_concerns(world)
    empty = text_of(await cast.officer.send("/stats 01/01/2020 31/12/2020"))
    assert "Từ 01/01/2020 đến 31/12/2020" in empty and "Số kiến nghị: 0" in empty
    refused = await cast.officer.send("/export yesterday")
    assert "Chọn phạm vi báo cáo" in text_of(refused) and "Tháng này" in options_of(refused)


async def test_kiennghi_export_writes_the_annex_and_a_csv_spreadsheets_read(tmp_path: Path) -> None:
    async with open_world(tmp_path, "terminal") as world:
        _, answered, waiting = await _two_concerns(world)
    workbook, table = tmp_path / "annex.xlsx", tmp_path / "annex.csv"
    written = kiennghi(tmp_path, "export", str(workbook), "--from", "01/01/2020", "--to", "31/12/2099",
                       DATABASE_URL=f"sqlite:///{tmp_path}/kiennghi.db")
    assert written.returncode == 0 and "2 concerns written" in written.stdout, written.stderr
    sheet = load_workbook(workbook).worksheets[0]
    assert {row[1] for row in sheet.iter_rows(min_row=3, values_only=True)} == {answered, waiting}
    assert kiennghi(tmp_path, "export", str(table), DATABASE_URL=f"sqlite:///{tmp_path}/kiennghi.db").returncode == 0
    raw = table.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM: spreadsheet programs then read UTF-8
    lines = raw.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("STT,Mã,Lĩnh vực,Nội dung") and len(lines) == 3
    named = kiennghi(tmp_path, "export", str(table), "--with-names", DATABASE_URL=f"sqlite:///{tmp_path}/kiennghi.db")
    assert named.returncode == 0 and "with the names" in named.stdout, named.stderr
    lines = table.read_bytes().decode("utf-8-sig").splitlines()
    assert lines[0].endswith(",Người nêu")
    by_code = {line.split(",")[1]: line for line in lines[1:]}
    assert by_code[answered].endswith(",Lan Nguyễn") and by_code[waiting].endswith(",")
    refused = kiennghi(tmp_path, "export", str(table), "--from", "31/02/2026")
    assert refused.returncode == 2 and "--from" in refused.stderr and "Traceback" not in refused.stderr
