"""The store: durable SQLite, reference data from the bundled or an edited file."""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import select

from bot.app import build_core
from storage.db import create_db_engine, new_session
from storage.models import Concern, ReferenceItem
from storage.reference import (
    ReferenceError,
    list_items,
    match_enterprises,
    read_reference_file,
    remember_enterprise,
    search_key,
)
from tests.chat import options_of, text_of
from tests.conftest import make_settings, open_world
from tests.flows import onboard, submit_concern


def test_sqlite_file_is_in_wal_mode_with_full_synchronous_commits(core) -> None:
    with core.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_normal_synchronous_when_configured(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/n.db", synchronous="NORMAL")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1
    engine.dispose()


def test_database_folder_is_created(tmp_path: Path) -> None:
    engine = create_db_engine(f"sqlite:///{tmp_path}/deep/er/kiennghi.db")
    assert (tmp_path / "deep" / "er" / "kiennghi.db").exists()
    engine.dispose()


def test_bundled_reference_data_is_loaded(core) -> None:
    with new_session(core.engine) as session:
        counts = {kind: len(list_items(kind, session=session))
                  for kind in ("category", "industrial_park", "district", "agency")}
        wages = session.get(ReferenceItem, ("category", "wages"))
    # Offered today: the current places and agencies (those of 2024 are kept for old concerns only).
    assert counts == {"category": 13, "industrial_park": 13, "district": 17, "agency": 10}
    assert (wages.name_vi, wages.name_en) == ("Tiền lương, thưởng", "Wages and bonuses")


def test_building_the_core_twice_does_not_duplicate_reference_data(tmp_path: Path, make_core) -> None:
    make_core().engine.dispose()
    core = make_core()
    with new_session(core.engine) as session:
        stored = len(list(session.exec(select(ReferenceItem))))
    bundled = tomllib.loads(resources.files("storage").joinpath("reference/bac_ninh.toml").read_text("utf-8"))
    assert stored == sum(len(bundled[kind]) for kind in ("category", "industrial_park", "district", "agency"))


def _edited_reference(tmp_path: Path, *, drop: set[str], rename: dict[str, str] | None = None) -> Path:
    """A copy of the bundled file without some codes and with some English names changed."""
    bundled = tomllib.loads(resources.files("storage").joinpath("reference/bac_giang_2024.toml").read_text("utf-8"))
    lines = []
    for kind in ("category", "industrial_park", "district", "agency"):
        for entry in bundled[kind]:
            if entry["code"] in drop:
                continue
            english = (rename or {}).get(entry["code"], entry["en"])
            lines += [f"[[{kind}]]", f'code = "{entry["code"]}"', f'vi = "{entry["vi"]}"',
                      f'en = "{english}"', ""]
    lines += ["[[enterprise]]", 'name = "Công ty TNHH Fuhong Precision"', ""]
    path = tmp_path / "reference.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@pytest.mark.parametrize("kind", ["telegram", "terminal"])
async def test_reference_file_override_hides_removed_items_but_old_concerns_keep_their_names(
        tmp_path: Path, make_core, kind: str) -> None:
    async with open_world(tmp_path, kind) as world:
        lan = world.person(901, language="en")
        await onboard(lan, "en")
        code = await submit_concern(lan, category="Kindergartens and schools for workers' children",
                                    place="Vân Trung Industrial Park")

    path = _edited_reference(tmp_path, drop={"childcare", "kcn_van_trung"}, rename={"wages": "Pay"})
    core = make_core(flood_messages=1000, reference_file=path)
    with new_session(core.engine) as session:
        categories = list_items("category", session=session)
        parks = list_items("industrial_park", session=session)
        removed = session.get(ReferenceItem, ("category", "childcare"))
    assert len(categories) == 12 and "childcare" not in [c.code for c in categories]
    assert len(parks) == 7
    assert removed is not None and removed.active is False
    core.engine.dispose()

    async with open_world(tmp_path, kind, reference_file=path) as world:
        lan = world.person(901, language="en")
        replies = await lan.send("/new")
        assert "Kindergartens and schools for workers' children" not in options_of(replies)
        assert "Pay" in options_of(replies)
        await lan.choose("Pay")
        replies = await lan.send("Fuhong")  # enterprises listed in the file are offered
        assert "Công ty TNHH Fuhong Precision" in options_of(replies)
        await lan.choose("Keep the name as typed: “Fuhong”")
        await lan.send("/cancel")
        seen = text_of(await lan.send(code))
        assert "Topic: Kindergartens and schools for workers' children" in seen

    # Putting the item back in the file makes it active again.
    core = make_core(flood_messages=1000)
    with new_session(core.engine) as session:
        assert session.get(ReferenceItem, ("category", "childcare")).active is True
    core.engine.dispose()


def test_malformed_reference_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[category]\n", encoding="utf-8")
    with pytest.raises(ReferenceError, match="REFERENCE_FILE"):
        read_reference_file(path)
    with pytest.raises(ReferenceError, match="REFERENCE_FILE"):
        build_core(make_settings(tmp_path, reference_file=tmp_path / "nowhere.toml"))


def test_enterprise_search_ignores_case_diacritics_and_punctuation(core) -> None:
    assert search_key("Công ty TNHH Đức Thành!") == "cong ty tnhh duc thanh"
    with new_session(core.engine) as session:
        remember_enterprise("Công ty TNHH Đức Thành", session=session)
        remember_enterprise("CÔNG TY TNHH ĐỨC THÀNH", session=session)  # the same one
        session.commit()
        assert [e.name for e in match_enterprises("duc thanh", session=session)] == ["Công ty TNHH Đức Thành"]
        assert [e.name for e in match_enterprises("ĐỨC", session=session)] == ["Công ty TNHH Đức Thành"]
        assert match_enterprises("Hồng Hải", session=session) == []
        assert match_enterprises("!!!", session=session) == []


def test_a_long_file_address_fits_even_in_a_store_made_with_narrower_columns(database_url: str,
                                                                             tmp_path: Path) -> None:
    from sqlalchemy import create_engine, text

    from storage.migrations import baseline_schema
    from storage.models import Attachment
    engine = create_engine(database_url)
    baseline_schema().create_all(engine)  # as stores made before migrations...
    if engine.dialect.name == "postgresql":  # ...and before file ids could be web addresses
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE attachment ALTER COLUMN file_id TYPE VARCHAR(256)"))
    engine.dispose()
    core = build_core(make_settings(tmp_path, database_url=database_url))  # widens what is too narrow
    address = "https://f.zalo.example/photo?" + "sig=abc123&" * 60  # a long signed address, ~700 characters
    with new_session(core.engine) as session:
        concern = Concern(tracking_code="KN-TEST-0001", category_code="wages", description="Nội dung thử.")
        session.add(concern)
        session.flush()
        session.add(Attachment(concern_id=concern.id, messenger="zalo", file_id=address, kind="photo"))
        session.commit()
        assert session.exec(select(Attachment)).one().file_id == address
    core.engine.dispose()
