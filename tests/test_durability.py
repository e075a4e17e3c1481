"""Kill the real `kiennghi shell` with SIGKILL: the dialog and every shown code survive."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import create_engine
from sqlmodel import select as sql_select

from storage.db import new_session
from storage.models import Concern, DialogState, Person
from tests.chat import CODE

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")


class Shell:
    """`python -m bot.cli shell` on a test database, fed line by line through a pipe."""

    def __init__(self, tmp_path: Path, database_url: str) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONUNBUFFERED": "1",
               "DATABASE_URL": database_url}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "shell"], cwd=tmp_path, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        self.output = ""
        self._read = 0  # how much of the output earlier markers consumed

    def say(self, line: str, until: str | re.Pattern[str]) -> str:
        """Type a line, then read the output until `until` appears in what follows it."""
        assert self.process.stdin is not None
        self.process.stdin.write((line + "\n").encode())
        self.process.stdin.flush()
        return self.read_until(until)

    def read_until(self, marker: str | re.Pattern[str], timeout: float = 20) -> str:
        assert self.process.stdout is not None
        pattern = re.compile(re.escape(marker)) if isinstance(marker, str) else marker
        fd = self.process.stdout.fileno()
        deadline = time.monotonic() + timeout
        while True:
            found = pattern.search(self.output, self._read)
            if found:
                self._read = found.end()
                return found.group(0)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{marker!r} not printed; output so far:\n{self.output}\n"
                                     f"stderr: {self._stderr()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise AssertionError(f"shell ended before {marker!r}:\n{self.output}\n"
                                         f"stderr: {self._stderr()}")
                self.output += chunk.decode("utf-8", "replace")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no flush, like a power cut of the process."""
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def finish(self) -> int:
        """Close the input (Ctrl-D) and wait for the shell to end."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        return self.process.wait(timeout=20)

    def _stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return "(still running)"
        return self.process.stderr.read().decode("utf-8", "replace")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/kiennghi.db"


@pytest.fixture
def shells(tmp_path: Path, database_url: str):
    started: list[Shell] = []

    def start() -> Shell:
        shell = Shell(tmp_path, database_url)
        started.append(shell)
        return shell

    yield start
    for shell in started:
        shell.close()


def _store(database_url: str):
    return create_engine(database_url)


def _begin_concern(shell: Shell) -> None:
    """From a fresh store: English, consent, /new, topic, enterprise, place; stops at step 4."""
    shell.say("/start", "Choose your language")
    shell.say("2", "Do you agree?")
    shell.say("1", "New concern")
    shell.say("1", "Step 1 of 6")
    shell.say("1", "Step 2 of 6")            # Wages and bonuses
    shell.say("Công ty TNHH Minh Phát", "Step 3 of 6")
    shell.say("1", "Step 4 of 6")            # Đình Trám Industrial Park


def test_killed_mid_dialog_a_new_process_continues_at_the_same_step(shells, database_url: str) -> None:
    first = shells()
    _begin_concern(first)
    first.kill()

    engine = _store(database_url)
    with new_session(engine) as session:
        state = session.get(DialogState, ("terminal", "worker"))
        assert state is not None and (state.flow, state.step) == ("new", "description")

    second = shells()
    # The very next line is taken as the description: the dialog went on where it stopped.
    second.say("Công ty nợ lương tháng 6 và tháng 7.", "Step 5 of 6")
    second.say("1", "Step 6 of 6")           # Skip files
    second.say("1", "Please check your concern")  # The union may know me
    code = second.say("1", CODE)             # Send
    assert second.finish() == 0

    with new_session(engine) as session:
        concern = session.exec(sql_select(Concern).where(Concern.tracking_code == code)).one()
        author = session.exec(sql_select(Person).where(Person.messenger == "terminal")).one()
    assert (concern.category_code, concern.place_code) == ("wages", "kcn_dinh_tram")
    assert concern.enterprise == "Công ty TNHH Minh Phát"
    assert concern.description == "Công ty nợ lương tháng 6 và tháng 7."
    assert concern.author_id == author.id
    engine.dispose()


def test_killed_right_after_printing_the_code_the_concern_is_stored(shells, database_url: str) -> None:
    shell = shells()
    _begin_concern(shell)
    shell.say("Công ty bắt làm thêm giờ quá 300 giờ một năm.", "Step 5 of 6")
    shell.say("1", "Step 6 of 6")
    shell.say("2", "Please check your concern")  # fully anonymous
    code = shell.say("1", CODE)
    shell.kill()

    engine = _store(database_url)
    with new_session(engine) as session:
        concern = session.exec(sql_select(Concern).where(Concern.tracking_code == code)).one()
    assert concern.description == "Công ty bắt làm thêm giờ quá 300 giờ một năm."
    assert concern.author_id is None
    engine.dispose()
