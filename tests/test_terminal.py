"""The terminal channel: the same dialog, choices as numbered lines, typed by number or text."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

from sqlmodel import select

from bot.channels.terminal import render, run_terminal
from handlers.core import Attachment, Choice, Option, Reply
from storage.db import create_db_engine, new_session
from storage.models import Concern, Person
from tests.chat import CODE
from tests.flows import person_row, rows

NUMBERED = re.compile(r"^  (\d+)\. (.+)$", re.MULTILINE)


def _run(core, lines: list[str], **kwargs) -> str:
    out = io.StringIO()
    run_terminal(core, io.StringIO("".join(line + "\n" for line in lines)), out, **kwargs)
    return out.getvalue()


def test_start_then_1_then_1_chooses_vietnamese_and_agrees(core) -> None:
    output = _run(core, ["/start", "1", "1"], prompt=False)
    choices = NUMBERED.findall(output)
    assert ("1", "Tiếng Việt") in choices and ("2", "English") in choices
    assert "13/2023/NĐ-CP" in output
    person = person_row(core.engine, "terminal", "local")
    assert person.locale == "vi" and person.consent_at is not None
    # The main menu comes last, numbered 1 to 3.
    assert [number for number, _ in NUMBERED.findall(output.rsplit("13/2023", 1)[1])][-3:] == ["1", "2", "3"]


def test_a_whole_concern_typed_in_the_terminal(core) -> None:
    output = _run(core, [
        "/start", "2", "I agree", "1",      # English, agree, New concern
        "9",                                 # Labour contracts
        "Công ty CP Giày Bắc Giang",
        "17",                                # Lạng Giang (former)
        "Công ty không ký hợp đồng lao động với công nhân mới.",
        "skip", "1", "send",
    ], prompt=False)
    codes = CODE.findall(output)
    assert len(set(codes)) == 1
    concern = rows(core.engine, Concern)[0]
    assert concern.tracking_code == codes[0]
    assert (concern.category_code, concern.place_code) == ("contract", "kv_lang_giang")
    assert concern.author_id == person_row(core.engine, "terminal", "local").id
    assert "  1. Labour contracts" not in output  # numbering counts from the top of each list
    assert "  9. Labour contracts" in output


def test_prompt_and_banner_only_when_interactive(core) -> None:
    interactive = _run(core, ["/help"], prompt=True, user_id="an")
    assert interactive.startswith("kiennghi shell:") and "> " in interactive
    quiet = _run(core, ["/help"], prompt=False, user_id="binh")
    assert not quiet.startswith("kiennghi shell:") and "> " not in quiet
    assert "How it works:" in quiet or "Cách gửi kiến nghị:" in quiet


def test_end_of_input_ends_the_shell_and_keeps_the_dialog(core) -> None:
    _run(core, ["/start", "2", "1", "/new"], prompt=False, user_id="chi")
    output = _run(core, ["5"], prompt=False, user_id="chi")  # a second session, same person
    assert "Step 2 of 6" in output


def test_render_numbers_choices_and_names_files() -> None:
    text = render(Reply("Chọn:", [Option(Choice("a"), "Một"), Option(Choice("b"), "Hai")], Attachment("photo", "f-1")))
    assert text == "Chọn:\n[photo: f-1]\n  1. Một\n  2. Hai"


def test_kiennghi_shell_reads_piped_input(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path}/shell.db"}
    result = subprocess.run([sys.executable, "-m", "bot.cli", "shell"], input="/start\n1\n1\n",
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "  1. Tiếng Việt" in result.stdout and "13/2023/NĐ-CP" in result.stdout
    assert "> " not in result.stdout  # no prompt when the input is not a terminal
    assert result.stderr == ""
    engine = create_db_engine(f"sqlite:///{tmp_path}/shell.db")
    with new_session(engine) as session:
        person = session.exec(select(Person).where(Person.messenger == "terminal")).one()
    assert person.locale == "vi" and person.consent_at is not None
    engine.dispose()
