"""Officers' and admins' tools: /find, the reference lists, /mydata, `kiennghi purge` and `kiennghi backup`."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlmodel import SQLModel, select

from bot.scheduler import months_before
from storage.db import new_session
from storage.models import Concern, Person, Role
from storage.people import set_role
from tests.cast import concern, staff_up, submit
from tests.chat import options_of, text_of
from tests.conftest import open_world
from tests.flows import onboard, submit_concern
from tests.test_config_cli import kiennghi


async def test_find_by_words_enterprise_place_or_code(world: Any) -> None:
    cast = await staff_up(world)
    wages = await submit(cast.worker)  # "Công ty chưa trả lương làm thêm giờ tháng 6." at Đình Trám
    housing = await submit_concern(cast.worker, category="Housing and rented rooms", place="Quang Châu Industrial Park",
                                   description="Phòng trọ gần khu công nghiệp bị tăng giá quá cao.")
    found = await cast.officer.send("/find làm thêm")
    assert wages in options_of(found) and housing not in options_of(found)
    # Without accents, in capitals, as typed on a phone without Vietnamese keys: the same concern.
    assert wages in options_of(await cast.officer.send("/find LUONG lam them"))
    assert housing in options_of(await cast.officer.send("/find Quang Châu"))  # a place by its name
    assert f"Kiến nghị {wages} ·" in text_of(await cast.officer.send(f"/find {wages}"))
    assert "Không có kiến nghị nào khớp" in text_of(await cast.officer.send("/find xyz không có"))
    assert "The command /find is not available" in text_of(await cast.worker.send("/find lương"))


async def test_reference_lists_show_todays_entries_with_their_codes(world: Any) -> None:
    cast = await staff_up(world)
    agencies = text_of(await cast.admin.send("/agencies"))
    assert "• Sở Nội vụ (snv)" in agencies and "sldtbxh" not in agencies  # retired in 2025
    assert "• Tiền lương, thưởng (wages)" in text_of(await cast.officer.send("/categories"))
    places = text_of(await cast.officer.send("/places"))
    assert "Hiệp Hòa (cũ) (kv_hiep_hoa)" in places and "Huyện Hiệp Hòa" not in places


async def test_mydata_shows_what_is_kept_and_offers_deletion(world: Any) -> None:
    cast = await staff_up(world)
    named = await submit(cast.worker)
    hidden = await submit_concern(cast.worker, anonymous=True)
    mine = await cast.worker.send("/mydata")
    text = text_of(mine)
    assert "What we keep about you:" in text and "name: Lan Nguyễn" in text and named in text
    assert hidden not in text and "Anonymous concerns are not linked to you" in text
    assert "Delete my data" in options_of(mine)
    staff = text_of(await cast.labour.send("/mydata"))
    assert "Vai trò: đầu mối cơ quan – Sở Nội vụ" in staff


async def test_purge_and_backup_from_the_command_line(tmp_path: Path) -> None:
    async with open_world(tmp_path, "terminal") as world:
        lan = world.person(900, language="en")
        await submit(lan)
        code = await submit_concern(lan)
        await lan.send(f"/withdraw {code}")
        await lan.choose("Yes, withdraw")
        with new_session(world.engine) as session:
            row = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
            row.updated_at = months_before(datetime.now(UTC), 30)
            session.add(row)
            session.commit()
    store = f"sqlite:///{tmp_path}/kiennghi.db"
    dry = kiennghi(tmp_path, "purge", "--older-than", "24", "--dry-run", DATABASE_URL=store)
    assert dry.returncode == 0 and "1 concerns would lose who raised them" in dry.stdout, dry.stderr
    with sqlite3.connect(tmp_path / "kiennghi.db") as db:
        assert db.execute("SELECT count(*) FROM concern WHERE author_id IS NULL").fetchone()[0] == 0
    done = kiennghi(tmp_path, "purge", "--older-than", "24", DATABASE_URL=store)
    assert done.returncode == 0 and "1 concerns no longer name who raised them" in done.stdout
    copy = tmp_path / "copy.db"
    backup = kiennghi(tmp_path, "backup", str(copy), DATABASE_URL=store)
    assert backup.returncode == 0, backup.stderr
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM concern").fetchone()[0] == 2
        assert db.execute("SELECT tracking_code FROM concern WHERE author_id IS NULL").fetchall() == [(code,)]
    refused = kiennghi(tmp_path, "backup", str(copy), DATABASE_URL="postgresql+psycopg://u:p@localhost/kn")
    assert refused.returncode == 2 and "pg_dump" in refused.stderr


async def test_a_case_offers_the_open_concerns_that_look_the_same_with_a_one_tap_merge(world: Any) -> None:
    cast = await staff_up(world)
    first = await submit(cast.worker)  # wages, Công ty TNHH Minh Phát, Đình Trám
    second = world.person(30, "Hùng Vũ", language="en")
    await onboard(second, "en")
    same = await submit_concern(second, description="Cong ty chua tra luong lam them gio thang 6 cho cong nhan.")
    other = await submit_concern(second, description="Nhà ăn ca không đảm bảo vệ sinh an toàn thực phẩm.")
    case = await cast.officer.send(f"/case {same}")
    assert f"Giống kiến nghị {first}" in text_of(case) and f"Gộp vào {first}" in options_of(case)
    assert other not in text_of(case)
    await cast.officer.choose(f"Gộp vào {first}")
    assert concern(world, same).status == "duplicate" and concern(world, first).me_too == 2


async def test_reload_takes_a_valid_file_and_refuses_a_broken_one_with_its_reason(tmp_path: Path) -> None:
    bundled = Path(__file__).resolve().parent.parent / "storage" / "reference" / "bac_ninh.toml"
    edited = tmp_path / "reference.toml"
    edited.write_text(bundled.read_text("utf-8"), "utf-8")
    async with open_world(tmp_path, "telegram", reference_file=edited) as world:
        admin = world.person(1, "Hà Admin")
        await admin.send("/start")
        await admin.choose("Tiếng Việt")
        edited.write_text(bundled.read_text("utf-8").replace('vi = "Sở Nội vụ"', 'vi = "Sở Nội vụ thành phố"'), "utf-8")
        loaded = text_of(await admin.send("/reload"))
        assert "Đã nạp dữ liệu danh mục: 13 lĩnh vực, 13 khu công nghiệp, 17 khu vực, 10 cơ quan" in loaded
        assert "Sở Nội vụ thành phố (snv)" in text_of(await admin.send("/agencies"))
        edited.write_text("[[agency]]\ncode = 'x'\n", "utf-8")
        refused = text_of(await admin.send("/reload"))
        assert "Chưa nạp dữ liệu danh mục" in refused and "REFERENCE_FILE" in refused
        assert "Sở Nội vụ thành phố (snv)" in text_of(await admin.send("/agencies"))  # nothing changed


def test_kiennghi_reference_reload_loads_a_file_or_names_what_is_wrong(tmp_path: Path) -> None:
    loaded = kiennghi(tmp_path, "reference", "reload")
    assert loaded.returncode == 0 and "13 category" in loaded.stdout and "10 agency" in loaded.stdout
    broken = tmp_path / "broken.toml"
    broken.write_text("[[agency]]\ncode = 'x'\n", "utf-8")
    refused = kiennghi(tmp_path, "reference", "reload", REFERENCE_FILE=str(broken))
    assert refused.returncode == 2 and "REFERENCE_FILE" in refused.stderr and "Traceback" not in refused.stderr


async def test_kiennghi_import_checks_every_row_first_and_never_imports_twice(tmp_path: Path) -> None:
    from openpyxl import Workbook

    async with open_world(tmp_path, "terminal") as world:
        officer = world.person(2, "Minh")
        await officer.send("/start")
        await officer.choose("Tiếng Việt")
        with new_session(world.engine) as session:  # the officer is made one directly: invitations are tested elsewhere
            person = session.exec(select(Person).where(Person.external_id == "2")).one()
            set_role(person, Role.OFFICER, None, session=session)
            session.commit()
        await officer.send("/session new")
        await officer.send("Đối thoại công nhân 2026")
        await officer.send("15/05/2026")
        await officer.send("20/08/2099")
    book = Workbook()
    sheet = book.active
    sheet.append(["Tổng hợp ý kiến, kiến nghị, đề xuất của công nhân lao động"])
    sheet.append(["STT", "Lĩnh vực", "Nội dung", "Doanh nghiệp", "Địa bàn", "Người nêu"])
    sheet.append([1, "Tien luong, thuong", "Công ty chậm trả lương tháng 4 cho công nhân.", "Công ty A",
                  "KCN Đình Trám", "Nguyễn Văn B"])
    sheet.append([2, "Nhà ở, nhà trọ", "Ngắn", "", "Nơi không có", None])
    sheet.append([3, "housing", "Thiếu nhà trọ giá rẻ gần khu công nghiệp.", "", "", None])
    path = tmp_path / "hoi-nghi.xlsx"
    book.save(path)
    store = f"sqlite:///{tmp_path}/kiennghi.db"
    refused = kiennghi(tmp_path, "import", str(path), "--session", "Đối thoại công nhân 2026", DATABASE_URL=store)
    assert refused.returncode == 1 and "nothing was imported" in refused.stderr
    assert "row 4, column Nội dung" in refused.stderr and "row 4, column Địa bàn" in refused.stderr
    with sqlite3.connect(tmp_path / "kiennghi.db") as db:
        assert db.execute("SELECT count(*) FROM concern").fetchone()[0] == 0
    args = ("import", str(path), "--session", "Đối thoại công nhân 2026", "--skip-invalid")
    first = kiennghi(tmp_path, *args, DATABASE_URL=store)
    assert first.returncode == 0 and "2 concerns imported" in first.stdout, first.stderr
    again = kiennghi(tmp_path, *args, DATABASE_URL=store)
    assert "0 concerns imported" in again.stdout and "2 already there" in again.stdout
    with sqlite3.connect(tmp_path / "kiennghi.db") as db:
        rows = db.execute("SELECT category_code, place_code, author_id FROM concern ORDER BY id").fetchall()
        assert rows == [("wages", "kcn_dinh_tram", None), ("housing", None, None)]
        assert db.execute("SELECT speaker_name FROM concernorigin WHERE session_id IS NOT NULL "
                          "ORDER BY concern_id").fetchall() == [("Nguyễn Văn B",), (None,)]
    unknown = kiennghi(tmp_path, "import", str(path), "--session", "Không có", DATABASE_URL=store)
    assert unknown.returncode == 2 and "--session" in unknown.stderr


async def test_forget_leaves_no_identity_in_any_table(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.officer.send(f"/ask {code}")
    await cast.officer.send("Công ty nào vậy?")
    await world.deliver_outbox()
    await cast.worker.send(f"/reply {code}")
    await cast.worker.send("Công ty TNHH Minh Phát ạ.")
    person_id = cast.worker.person_row().id
    await cast.worker.send("/forget")
    await cast.worker.choose("Delete my data")
    with new_session(world.engine) as session:
        connection = session.connection()
        for table in SQLModel.metadata.tables:  # every table, the outbox and dialogs included
            for row in connection.exec_driver_sql(f'SELECT * FROM "{table}"').mappings():
                for column, value in row.items():
                    assert "Lan Nguyễn" not in str(value), (table, column, value)
                    if column in ("author_id", "actor_id", "person_id", "entered_by"):
                        assert value != person_id, (table, column)
        person = session.get(Person, person_id)
        assert person is not None and person.display_name == "" and person.locale is None
    assert concern(world, code).description  # the concern stays, anonymous
