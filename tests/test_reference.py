"""Reference data: the bundled current file, the 2024 set it keeps, and entries valid only for a time."""

from __future__ import annotations

import unicodedata
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text

import storage.reference as reference
from bot.app import build_core
from storage.db import new_session
from storage.reference import KINDS, ReferenceError, get_item, list_items, read_reference_file
from tests.chat import text_of
from tests.conftest import make_settings, open_world
from tests.flows import onboard, submit_concern

CONFERENCE_2024 = date(2024, 5, 25)
MERGED = date(2025, 7, 1)  # Bắc Giang part of Bắc Ninh, no more districts
HALF_ROW = 18  # a longer button label is cut off on a small phone when it shares its row
CATEGORIES = ["wages", "insurance", "hours", "safety", "housing", "childcare", "meals", "transport", "contract",
              "union", "health", "admin_procedures", "other"]
RETIRED = {"agency": {"sldtbxh", "sgtvt", "ubnd_huyen"},
           "district": {"tp_bac_giang", "tx_viet_yen", "hiep_hoa", "lang_giang", "luc_nam", "luc_ngan", "son_dong",
                        "tan_yen", "yen_dung", "yen_the", "tx_chu"}}


def bundled_path(name: str) -> Path:
    return Path(str(resources.files("storage").joinpath(f"reference/{name}")))


def file_2024() -> dict[str, list[dict[str, Any]]]:
    return read_reference_file(bundled_path("bac_giang_2024.toml"))


def codes(items: list[Any]) -> list[str]:
    return [item.code for item in items]


@pytest.mark.parametrize("name", ["bac_ninh.toml", "bac_giang_2024.toml"])
def test_bundled_files_parse_with_unique_codes_and_nfc_names(name: str) -> None:
    data = read_reference_file(bundled_path(name))
    assert [entry["code"] for entry in data["category"]] == CATEGORIES
    for kind in KINDS:
        entries = data[kind]
        assert entries
        assert len({entry["code"] for entry in entries}) == len(entries), kind
        for entry in entries:
            for language in ("vi", "en"):
                assert unicodedata.is_normalized("NFC", entry[language]), (kind, entry["code"], language)


def test_the_default_is_the_current_file_and_it_keeps_every_2024_entry_under_its_code() -> None:
    current = read_reference_file(None)
    assert current == read_reference_file(bundled_path("bac_ninh.toml"))
    for kind in KINDS:
        now = {entry["code"]: entry for entry in current[kind]}
        for old in file_2024()[kind]:
            assert old["code"] in now, (kind, old["code"])
            kept = now[old["code"]]
            assert kept.get("since") is None  # valid in 2024
            if old["code"] in RETIRED.get(kind, set()):
                assert kept["until"] < date(2025, 7, 1) and (kept["vi"], kept["en"]) == (old["vi"], old["en"])
            else:
                assert "until" not in kept, (kind, old["code"])
        retired_now = {code for code, entry in now.items() if "until" in entry}
        assert retired_now == RETIRED.get(kind, set()), kind


def test_places_added_since_2024_fit_two_to_a_row() -> None:
    for kind in ("industrial_park", "district"):
        for entry in read_reference_file(None)[kind]:
            if entry.get("since") == MERGED:
                assert len(entry["vi"]) <= HALF_ROW, entry["vi"]


def test_today_only_current_items_are_offered_and_the_2024_set_on_a_2024_date(core) -> None:
    with new_session(core.engine) as session:
        today = {kind: codes(list_items(kind, session=session)) for kind in KINDS}
        in_2024 = {kind: codes(list_items(kind, session=session, on=CONFERENCE_2024)) for kind in KINDS}
        labour = get_item("agency", "sldtbxh", session=session)
        district = get_item("district", "yen_dung", session=session)
    old = {kind: [entry["code"] for entry in file_2024()[kind]] for kind in KINDS}
    assert today["category"] == in_2024["category"] == CATEGORIES
    for kind, retired in RETIRED.items():
        assert not retired & set(today[kind]), kind
    assert "snv" in today["agency"] and "ubnd_xa" in today["agency"] and "ldld" in today["agency"]
    assert all(code.startswith("kv_") for code in today["district"]) and len(today["district"]) == 17
    assert len(today["industrial_park"]) == 13 and today["industrial_park"][:8] == old["industrial_park"]
    # On the day of the 2024 conference: exactly the 2024 entries, the districts in their 2024 order.
    assert in_2024["district"] == old["district"] and in_2024["industrial_park"] == old["industrial_park"]
    assert sorted(in_2024["agency"]) == sorted(old["agency"])
    # Retired items are still found by code, with their names: old concerns show them.
    assert labour is not None and labour.name_vi == "Sở Lao động – Thương binh và Xã hội"
    assert district is not None and (district.name_vi, district.name_en) == ("Huyện Yên Dũng", "Yên Dũng District")


def test_until_and_since_include_their_day(core) -> None:
    def places(day: date) -> list[str]:
        with new_session(core.engine) as session:
            return codes(list_items("district", session=session, on=day))

    assert "hiep_hoa" in places(date(2025, 6, 30)) and "kv_hiep_hoa" not in places(date(2025, 6, 30))
    assert "hiep_hoa" not in places(MERGED) and "kv_hiep_hoa" in places(MERGED)
    assert "yen_dung" in places(date(2024, 11, 30)) and "tx_chu" not in places(date(2024, 11, 30))
    assert "yen_dung" not in places(date(2024, 12, 1)) and "tx_chu" in places(date(2024, 12, 1))
    with new_session(core.engine) as session:
        assert "sldtbxh" in codes(list_items("agency", session=session, on=date(2025, 2, 28)))
        assert "snv" not in codes(list_items("agency", session=session, on=date(2025, 2, 28)))
        assert "snv" in codes(list_items("agency", session=session, on=date(2025, 3, 1)))


def test_without_a_date_the_day_is_that_of_vietnam(core, monkeypatch: pytest.MonkeyPatch) -> None:
    class Frozen(datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:  # 30/06/2025 23:30 in UTC: already 01/07/2025 in Vietnam
            return datetime(2025, 6, 30, 23, 30, tzinfo=UTC).astimezone(tz)

    monkeypatch.setattr(reference, "datetime", Frozen)
    with new_session(core.engine) as session:
        assert codes(list_items("district", session=session)) == codes(list_items("district", session=session,
                                                                                   on=MERGED))


async def test_a_store_made_with_the_2024_file_keeps_its_concerns_readable_with_the_current_one(
        tmp_path: Path, make_core) -> None:
    old_file = bundled_path("bac_giang_2024.toml")
    async with open_world(tmp_path, "terminal", reference_file=old_file) as world:
        lan = world.person(901, language="en")
        await onboard(lan, "en")
        code = await submit_concern(lan, place="Yên Dũng District")

    core = make_core()  # the bundled current file
    with new_session(core.engine) as session:
        assert "yen_dung" not in codes(list_items("district", session=session))
        assert "yen_dung" in codes(list_items("district", session=session, on=CONFERENCE_2024))
        for kind in KINDS:
            for entry in file_2024()[kind]:
                assert get_item(kind, entry["code"], session=session) is not None, (kind, entry["code"])
    core.engine.dispose()
    async with open_world(tmp_path, "terminal") as world:
        admin = world.person(1, "Hà Admin", "en")
        assert "Place: Yên Dũng District" in text_of(await admin.send(f"/case {code}"))

    # Going back to the 2024 file makes its entries valid again, whatever dates the store held.
    core = make_core(reference_file=old_file)
    with new_session(core.engine) as session:
        assert "yen_dung" in codes(list_items("district", session=session))
        assert "kv_hiep_hoa" not in codes(list_items("district", session=session))
    core.engine.dispose()


def test_a_store_made_before_entries_had_dates_gets_the_columns(database_url: str, tmp_path: Path) -> None:
    engine = create_engine(database_url)
    with engine.begin() as connection:  # the table as kiennghi made it before `since` and `until`
        connection.execute(text(
            "CREATE TABLE referenceitem (kind VARCHAR(16) NOT NULL, code VARCHAR(32) NOT NULL, "
            "name_vi VARCHAR(200) NOT NULL, name_en VARCHAR(200) NOT NULL, position INTEGER NOT NULL, "
            "active BOOLEAN NOT NULL, PRIMARY KEY (kind, code))"))
        connection.execute(text("INSERT INTO referenceitem VALUES "
                                "('agency', 'sldtbxh', 'Sở cũ', 'Old department', 0, true)"))
    engine.dispose()

    core = build_core(make_settings(tmp_path, database_url=database_url))
    columns = {column["name"] for column in inspect(core.engine).get_columns("referenceitem")}
    assert {"valid_from", "valid_until"} <= columns
    with new_session(core.engine) as session:
        labour = get_item("agency", "sldtbxh", session=session)
        assert labour is not None and labour.valid_until == date(2025, 2, 28)
        assert labour.name_vi == "Sở Lao động – Thương binh và Xã hội"
        assert "sldtbxh" not in codes(list_items("agency", session=session))
    core.engine.dispose()
    build_core(make_settings(tmp_path, database_url=database_url)).engine.dispose()  # a second start: nothing to add


@pytest.mark.parametrize("line, problem", [
    ('until = "2025-06-30"', "until must be a date"),
    ("until = 2025-06-30T00:00:00", "until must be a date"),
    ("since = 2025-07-01\nuntil = 2025-06-30", "since is after until"),
    ('[[district]]\ncode = "a"\nvi = "A2"\nen = "A2"', "two \\[\\[district\\]\\] have the code 'a'"),
])
def test_malformed_dates_and_repeated_codes_are_refused_naming_reference_file(
        tmp_path: Path, line: str, problem: str) -> None:
    path = tmp_path / "reference.toml"
    path.write_text(f'[[district]]\ncode = "a"\nvi = "A"\nen = "A"\n{line}\n', encoding="utf-8")
    with pytest.raises(ReferenceError, match=f"REFERENCE_FILE {path}: .*{problem}"):
        read_reference_file(path)
    with pytest.raises(ReferenceError, match="REFERENCE_FILE"):
        build_core(make_settings(tmp_path, reference_file=path))
