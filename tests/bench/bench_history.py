"""Does one event get slower as the store grows? 10,000 against 1,000,000 stored concerns.

A script, not a test (pytest collects only test_*.py): run it from the repository root with

    python tests/bench/bench_history.py [--sizes 10000 1000000] [--repeats 20] [--rebuild] [--explain]

For each size N it builds (once; cached as /tmp/kn-bench-N.db with a sidecar kn-bench-N.json, reused
until --rebuild, a new BUILD_VERSION or a change of the project's schema) a SQLite store with the
project's own schema (`build_core`), filled by bulk inserts (SQLAlchemy Core `insert(table)` with lists
of dicts, one transaction per chunk, journal and syncing off while building) with a deployment's history:

- N concerns. The same 3,000 open ones in every store (new 600, accepted 400, assigned 1,200,
  answered 500, reopened 300, made from a fixed seed), 3,000 recently closed ones (also fixed), and
  N - 6,000 older ones closed over the past 18 months: closed 48 %, resolved 22 %, rejected 15 %,
  duplicate 10 %, withdrawn 5 % (a third of those after assignment: their assignments stay pending,
  as `/withdraw` leaves them). 12 % are fully anonymous.
- Their history as the lifecycle allows (1 to 6 state changes, about 4.5 on average; actors are the
  author, officers and agency liaisons), 1 or 2 assignments for every concern that reached "assigned"
  (11 agencies of the reference data, `sldtbxh` a quarter of them; open ones due around today), case
  notes for 15 %, a rating for half the closed ones, a photo for 20 %.
- Persons: N/3 workers (at least 3,400), 20 officers, 2 liaisons per agency, 2 admins, each with a
  dialog row. Enterprises: 300 + N/50 known names (every typed name is remembered, variants included).
- Per concern 2 to 6 processed updates and 1 to 5 outbox messages (97 % sent, 3 % failed), stamped
  with its own steps: old concerns' rows are months old, the fixed recent ones' rows are the last
  60 days and the same in every store.

Then, on a fresh copy of each store (the stores take turns, run by run, so that the load of a shared
machine hits both alike), it times `Core.handle(Incoming(...))` on the terminal messenger,
as a real event (one transaction, committed, synchronous=FULL as `build_core` sets it): a worker's
`/status` (5 concerns), `/status CODE`, an officer's `/queue`, an `sldtbxh` liaison's `/mine`,
`/forget` then "1" (Delete my data; a different worker each time), one whole submission (the 8 steps
of /new typed as on the terminal; a different worker each time), and the prune job
(`prune_processed_updates` older than 7 days, then `purge_sent` older than 30): its first run on the
store as built (the months of backlog: once, informative, grows with N by nature) and then its
steady state (runs 6 hours apart, each deleting the same 6 hours of rows in every store). Each is the
median of --repeats runs after warm-up runs. The table compares the largest size with the smallest.

--explain records every statement of one more run of each operation and prints, for the slowest
ones, the time to run it again (all rows fetched) and SQLite's EXPLAIN QUERY PLAN.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import logging
import random
import re
import shutil
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make `bot`, `handlers`... importable
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Connection, event, insert  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from bot.app import build_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from handlers.core import Incoming  # noqa: E402
from handlers.dispatch import Outcome  # noqa: E402
from handlers.rules.reminders import sweep  # noqa: E402
from storage.concerns import CROCKFORD  # noqa: E402
from storage.db import new_session  # noqa: E402
from storage.dialogs import prune_processed_updates  # noqa: E402
from storage.models import (  # noqa: E402
    Assignment,
    Attachment,
    CaseNote,
    Concern,
    DialogState,
    Enterprise,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    Rating,
    StatusChange,
)
from storage.outbox import purge_sent  # noqa: E402
from storage.reference import read_reference_file, search_key  # noqa: E402
from tests.conftest import make_settings  # noqa: E402

BUILD_VERSION = 2  # change when the generated data changes: cached stores are then rebuilt
CACHE_DIR = Path("/tmp")
MESSENGER = "terminal"
FIXED_SEED = 20240601  # the open and recently closed concerns: identical in every store
OPEN_COUNTS = {"new": 600, "accepted": 400, "assigned": 1200, "answered": 500, "reopened": 300}
RECENT_CLOSED = 3000
CLOSED_SHARES = {"closed": 0.48, "resolved": 0.22, "rejected": 0.15, "duplicate": 0.10, "withdrawn": 0.05}
# Days ago a concern in each open state was raised (from, to).
OPEN_AGE_DAYS = {"new": (0.05, 14), "accepted": (1, 30), "assigned": (2, 45), "answered": (5, 50),
                 "reopened": (5, 60)}
MIN_WORKERS = 3400  # the fixed concerns' authors are workers 1..MIN_WORKERS, present in every store
OFFICERS = 20
LIAISONS_PER_AGENCY = 2
ADMINS = 2
BASE_ENTERPRISES = 300
ANONYMOUS_SHARE = 0.12
CHUNK = 20_000  # concerns per transaction while building
PICKS = 26  # workers set aside for /forget and for a submission: warm-up, timed runs, --explain
KEEP_UPDATES = timedelta(days=7)  # what the scheduler's prune job passes
KEEP_SENT = timedelta(days=30)  # OUTBOX_KEEP_DAYS by default
PRUNE_EVERY = timedelta(hours=6)
TYPED_ENTERPRISE = "Công ty TNHH Minh Phát"
DESCRIPTION = "Công ty nợ lương tháng 6 và tháng 7 của công nhân, chưa trả tiền làm thêm giờ."
TRACKING_CODE = re.compile(r"KN-[0-9A-Z]{4}-[0-9A-Z]{4}")
APOLOGY_LOGGER = "handlers.dispatch"

CATEGORY_WEIGHTS = {"wages": 30, "insurance": 20, "hours": 12, "safety": 6, "housing": 5, "childcare": 4,
                    "meals": 5, "transport": 3, "contract": 7, "union": 2, "health": 2, "admin_procedures": 2,
                    "other": 2}
NOTE_TEXTS = {"question": "Anh/chị cho biết thêm tên tổ sản xuất và thời gian bị nợ lương?",
              "reply": "Tổ may 3, nợ từ tháng 6 đến nay.",
              "comment": "Đã liên hệ công đoàn cơ sở để xác minh."}
REJECT_REASON = "Not enough information to act on"
ANSWER_TEXT = ("Sở đã làm việc với doanh nghiệp; doanh nghiệp cam kết chi trả đầy đủ tiền lương còn nợ "
               "trước ngày 15 tháng sau và báo cáo kết quả về Sở.")
MESSAGE_TEXT = "{code}: trạng thái của kiến nghị đã thay đổi. Gửi /status {code} để xem chi tiết."
DELIVERY_ERROR = "Forbidden: bot was blocked by the user"
NAME_FORMS = ["Công ty TNHH", "Công ty Cổ phần", "Công ty TNHH MTV", "Công ty"]
NAME_WORDS = ["Minh", "Phát", "Hòa", "Bình", "Thành", "Công", "Việt", "Hàn", "Quang", "Châu", "Đông", "Nam",
              "Hưng", "Thịnh", "An", "Phú", "Tân", "Long", "Kim", "Sơn", "Đức", "Trí", "Hải", "Vân", "Luxshare",
              "Foxconn", "Fuhong", "Hosiden", "Crystal", "Martin", "Youngone", "Shinsung", "Vina", "Global"]


# ---- the generated deployment -------------------------------------------------------------------

Rows = dict[Any, list[dict[str, Any]]]  # a model -> the rows to insert into its table


@dataclass
class Picks:
    """The people and codes the measurements use, chosen while building."""

    status_worker: int = 0
    status_code: str = ""
    officer: int = 0
    liaison: int = 0
    forget_workers: list[int] = field(default_factory=list)
    submit_workers: list[int] = field(default_factory=list)


@dataclass
class Meta:
    """What the sidecar JSON keeps of a built store."""

    version: int
    schema: str  # schema_fingerprint() when built: a changed schema means a rebuild
    n: int
    built_at: str  # the build's "now": every generated time is relative to it
    build_seconds: float
    rows: dict[str, int]
    picks: Picks


def worker_external_id(person_id: int) -> str:
    """A worker's terminal account (external id and chat id)."""
    return f"w{person_id}"


def tracking_code(concern_id: int) -> str:
    """A unique code per id (an odd multiplier is a bijection modulo 2**40), in the project's format."""
    bits = (concern_id * 0x9E3779B97F + 0x5DEECE66D) % (1 << 40)
    symbols = "".join(CROCKFORD[(bits >> shift) & 31] for shift in range(35, -1, -5))
    return f"KN-{symbols[:4]}-{symbols[4:]}"


def enterprise_names(count: int) -> list[str]:
    """Distinct enterprise names (distinct search keys), the bench's typed name first."""
    rng = random.Random(7)
    names, keys = [TYPED_ENTERPRISE], {search_key(TYPED_ENTERPRISE)}
    while len(names) < count:
        name = f"{rng.choice(NAME_FORMS)} {rng.choice(NAME_WORDS)} {rng.choice(NAME_WORDS)}"
        if len(names) >= BASE_ENTERPRISES:  # the variants and typos workers add over time
            name += f" {rng.choice(['Việt Nam', 'Bắc Giang', 'VN', 'chi nhánh', 'KCN'])} {len(names)}"
        if search_key(name) not in keys:
            keys.add(search_key(name))
            names.append(name)
    return names


def lifecycle_path(final: str, rng: random.Random) -> list[str]:
    """The states a concern went through to reach `final`, as the lifecycle allows."""
    through_answer = ["new", "accepted", "assigned", "answered"]
    if final in ("new", "accepted", "assigned", "answered"):
        return through_answer[: through_answer.index(final) + 1]
    if final == "reopened":
        return [*through_answer, rng.choice(["resolved", "closed"]), "reopened"]
    if final == "resolved":
        return [*through_answer, "resolved"]
    if final == "closed":  # rated by the worker after "resolved", or closed by an officer
        return [*through_answer, "resolved", "closed"] if rng.random() < 0.5 else [*through_answer, "closed"]
    if final == "rejected":
        return ["new", "rejected"] if rng.random() < 0.6 else ["new", "accepted", "rejected"]
    if final == "duplicate":  # merging is offered for new, reopened and accepted concerns
        return ["new", "duplicate"] if rng.random() < 0.7 else ["new", "accepted", "duplicate"]
    if final == "withdrawn":
        roll = rng.random()
        return ["new", "withdrawn"] if roll < 0.4 else (
            ["new", "accepted", "withdrawn"] if roll < 0.65 else ["new", "accepted", "assigned", "withdrawn"])
    raise ValueError(final)


def step_times(created: datetime, steps: int, latest: datetime, rng: random.Random) -> list[datetime]:
    """When each step happened: a few days apart, squeezed to end by `latest`."""
    gaps = [rng.uniform(0.3, 5.0) for _ in range(steps - 1)]
    room = (latest - created).total_seconds() / 86400
    scale = max(0.0, min(1.0, room / sum(gaps))) if gaps else 1.0
    times, at = [created], created
    for gap in gaps:
        at += timedelta(days=gap * scale)
        times.append(at)
    return times


class Deployment:
    """Generates a store's rows, chunk by chunk, and remembers what the measurements need."""

    def __init__(self, n: int, now: datetime) -> None:
        self.n = n
        self.now = now
        reference = read_reference_file(None)
        self.agencies = [item["code"] for item in reference["agency"]]
        self.places = [item["code"] for item in reference["industrial_park"] + reference["district"]]
        self.categories = list(CATEGORY_WEIGHTS)
        self.category_weights = list(itertools.accumulate(CATEGORY_WEIGHTS.values()))
        # sldtbxh holds a quarter of all assignments; the others share the rest.
        self.agency_weights = list(itertools.accumulate(
            len(self.agencies) - 1 if code == "sldtbxh" else 3 for code in self.agencies))
        self.workers = max(n // 3, MIN_WORKERS)
        first_staff = self.workers + 1
        self.officers = list(range(first_staff, first_staff + OFFICERS))
        self.liaisons = {code: [first_staff + OFFICERS + i * LIAISONS_PER_AGENCY + k
                                for k in range(LIAISONS_PER_AGENCY)] for i, code in enumerate(self.agencies)}
        self.admins = [first_staff + OFFICERS + len(self.agencies) * LIAISONS_PER_AGENCY + k for k in range(ADMINS)]
        self.staff_accounts = {pid: f"officer-{k}" for k, pid in enumerate(self.officers, 1)}
        self.staff_accounts.update({pid: f"agency-{code}-{k}" for code, pids in self.liaisons.items()
                                    for k, pid in enumerate(pids, 1)})
        self.staff_accounts.update({pid: f"admin-{k}" for k, pid in enumerate(self.admins, 1)})
        self.enterprises = enterprise_names(BASE_ENTERPRISES + n // 50)
        self.fixed = random.Random(FIXED_SEED)
        self.rng = random.Random(n)
        self.update_keys = 0
        self.authored: dict[int, int] = {}  # worker -> concerns under their name
        self.fixed_authored: dict[int, list[tuple[int, str, bool]]] = {}  # worker -> (id, code, assigned)

    def timeline(self) -> list[tuple[datetime, str, bool]]:
        """Every concern as (raised at, final state, fixed), oldest first: ids follow time."""
        fixed = random.Random(FIXED_SEED + 1)
        rows: list[tuple[datetime, str, bool]] = []
        for state, count in OPEN_COUNTS.items():
            low, high = OPEN_AGE_DAYS[state]
            rows += [(self.now - timedelta(days=fixed.uniform(low, high)), state, True) for _ in range(count)]
        states, weights = list(CLOSED_SHARES), list(itertools.accumulate(CLOSED_SHARES.values()))
        rows += [(self.now - timedelta(days=fixed.uniform(2, 60)), fixed.choices(states, cum_weights=weights)[0],
                  True) for _ in range(RECENT_CLOSED)]
        older = max(0, self.n - len(rows))
        rows += [(self.now - timedelta(days=self.rng.uniform(95, 545)),
                  self.rng.choices(states, cum_weights=weights)[0], False) for _ in range(older)]
        rows.sort(key=lambda row: row[0])
        return rows

    def people(self) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
        """Persons and their dialog rows, in batches: workers, officers, liaisons, admins."""
        rng = random.Random(self.n + 1)
        staff = [(pid, self.staff_accounts[pid], "officer", None) for pid in self.officers]
        staff += [(pid, self.staff_accounts[pid], "agency", code) for code, pids in self.liaisons.items()
                  for pid in pids]
        staff += [(pid, self.staff_accounts[pid], "admin", None) for pid in self.admins]
        batch: list[tuple[int, str, str, str | None]] = []
        for pid in range(1, self.workers + len(staff) + 1):
            batch.append((pid, worker_external_id(pid), "worker", None) if pid <= self.workers
                         else staff[pid - self.workers - 1])
            if len(batch) == 50_000 or pid == self.workers + len(staff):
                persons, dialogs = [], []
                for person_id, external, role, agency in batch:
                    created = self.now - timedelta(days=rng.uniform(1, 560))
                    persons.append({
                        "id": person_id, "messenger": MESSENGER, "external_id": external, "chat_id": external,
                        "display_name": f"Công nhân {person_id}" if role == "worker" else external,
                        "locale": "en" if role == "worker" and rng.random() < 0.15 else "vi", "role": role,
                        "agency_code": agency, "consent_at": created + timedelta(minutes=1), "created_at": created})
                    dialogs.append({"messenger": MESSENGER, "chat_id": external, "flow": None, "step": None,
                                    "data": "{}", "options": "[]",
                                    "updated_at": self.now - timedelta(days=rng.uniform(0, 60))})
                yield Person, persons
                yield DialogState, dialogs
                batch = []

    def enterprise_rows(self) -> list[dict[str, Any]]:
        """The known enterprises."""
        return [{"name": name, "search_key": search_key(name)} for name in self.enterprises]

    def concern_rows(self, first_id: int, stories: list[tuple[datetime, str, bool]]) -> Rows:
        """The rows of consecutive concerns (ids from first_id) and of everything that hangs on them."""
        out: Rows = {model: [] for model in (
            Concern, StatusChange, Assignment, CaseNote, Rating, Attachment, ProcessedUpdate, OutboxMessage)}
        for offset, (created, final, fixed) in enumerate(stories):
            self._concern(first_id + offset, created, final, fixed, out)
        return out

    def _concern(self, cid: int, created: datetime, final: str, fixed: bool, out: Rows) -> None:
        """One concern's rows: the concern, its history, assignments, notes, rating, files, updates, messages."""
        rng = self.fixed if fixed else self.rng
        code = tracking_code(cid)
        anonymous = rng.random() < ANONYMOUS_SHARE
        author = None if anonymous else rng.randint(1, MIN_WORKERS if fixed else self.workers)
        path = lifecycle_path(final, rng)
        latest = self.now - timedelta(minutes=rng.uniform(30, 600)) if fixed else min(
            created + timedelta(days=30), self.now - timedelta(days=65))
        times = step_times(created, len(path), latest, rng)
        officer = rng.choice(self.officers)
        agencies: list[str] = []
        if "assigned" in path:
            agencies.append(rng.choices(self.agencies, cum_weights=self.agency_weights)[0])
            if rng.random() < 0.25:
                other = rng.choices(self.agencies, cum_weights=self.agency_weights)[0]
                if other != agencies[0]:
                    agencies.append(other)
        enterprise = "" if rng.random() < 0.15 else self.enterprises[
            min(int(rng.paretovariate(1.2)) - 1, (BASE_ENTERPRISES if fixed else len(self.enterprises)) - 1)]
        merged = max(1, cid - rng.randint(1, 400)) if final == "duplicate" else None
        out[Concern].append({
            "id": cid, "tracking_code": code, "author_id": author, "visibility": "anonymous" if anonymous else "union",
            "category_code": rng.choices(self.categories, cum_weights=self.category_weights)[0],
            "enterprise": enterprise,
            "place_code": None if rng.random() < 0.2 else rng.choice(self.places),
            "description": DESCRIPTION, "search_text": search_key(f"{DESCRIPTION} {enterprise}"),
            "status": final, "me_too": 1 if rng.random() < 0.97 else rng.randint(2, 5),
            "merged_into_id": merged if merged != cid else None,
            "reject_reason": REJECT_REASON if final == "rejected" else None,
            "created_at": created, "updated_at": times[-1]})
        rated = final == "closed" and path[-2] == "resolved"
        previous = None
        for state, at in zip(path, times, strict=True):
            if state in ("new", "withdrawn", "reopened") or (state == "closed" and rated):
                actor, role = author, "worker"
            elif state == "answered":
                actor, role = rng.choice(self.liaisons[agencies[-1]]), "agency"
            else:
                actor, role = officer, "officer"
            note = {"assigned": ", ".join(agencies), "answered": agencies[-1] if agencies else None,
                    "rejected": REJECT_REASON, "duplicate": tracking_code(merged or cid),
                    "closed": f"{rng.randint(3, 5)}/5" if rated else None}.get(state)
            out[StatusChange].append({"concern_id": cid, "actor_id": actor, "actor_role": role, "from_status": previous,
                                      "to_status": state, "note": note, "at": at})
            previous = state
        when = dict(zip(path, times, strict=True))
        for agency in agencies:
            answered = "answered" in when
            assigned_at = when["assigned"]
            out[Assignment].append({
                "concern_id": cid, "agency_code": agency, "deadline": (assigned_at + timedelta(days=30)).date(),
                "status": "answered" if answered else "pending", "answer_text": ANSWER_TEXT if answered else None,
                "answer_messenger": MESSENGER if answered else None,
                "answered_by": rng.choice(self.liaisons[agency]) if answered else None,
                "answered_at": when["answered"] if answered else None,
                "relayed_at": when["answered"] + timedelta(hours=5) if answered and (
                    final != "answered" or rng.random() < 0.5) else None,
                "assigned_by": officer, "assigned_at": assigned_at})
        if len(path) > 1 and rng.random() < 0.15:
            for k in range(rng.randint(1, 3)):
                kind = ("question", "reply", "comment")[k]
                out[CaseNote].append({"concern_id": cid, "kind": kind, "text": NOTE_TEXTS[kind],
                                      "actor_id": author if kind == "reply" else officer,
                                      "at": times[1] + timedelta(hours=k + 1)})
        if final == "reopened":
            out[CaseNote].append({"concern_id": cid, "kind": "reopen", "text": "Công ty vẫn chưa trả lương.",
                                  "actor_id": author, "at": times[-1]})
        if rated:
            out[Rating].append({"concern_id": cid, "person_id": author, "score": rng.randint(3, 5), "at": times[-1]})
        if rng.random() < 0.2:
            for k in range(1 if rng.random() < 0.7 else 2):
                out[Attachment].append({"concern_id": cid, "messenger": MESSENGER, "file_id": f"photo-{cid}-{k}",
                                        "kind": "photo", "size": 54321})
        for _ in range(rng.randint(2, 6)):
            self.update_keys += 1
            at = rng.choice(times) + timedelta(seconds=rng.uniform(0, 600))
            out[ProcessedUpdate].append({"messenger": "telegram", "update_key": str(self.update_keys), "at": at})
        for _ in range(rng.randint(1, 5)):
            at = rng.choice(times) + timedelta(seconds=1)
            recipient = author if author is not None and rng.random() < 0.6 else rng.choice(
                [officer, *self.liaisons[agencies[0]]] if agencies else [officer])
            external = worker_external_id(recipient) if recipient <= self.workers else self.staff_accounts[recipient]
            failed = rng.random() < 0.03
            out[OutboxMessage].append({
                "messenger": MESSENGER, "chat_id": external,
                "text": MESSAGE_TEXT.format(code=code), "options": json.dumps([[f"/status {code}", "Xem"]]),
                "status": "failed" if failed else "sent", "attempts": 10 if failed else 1,
                "last_error": DELIVERY_ERROR if failed else None, "next_attempt_at": at, "created_at": at,
                "sent_at": None if failed else at + timedelta(seconds=2)})
        if author is not None:
            self.authored[author] = self.authored.get(author, 0) + 1
            if fixed:
                self.fixed_authored.setdefault(author, []).append((cid, code, bool(agencies)))

    def picks(self) -> Picks:
        """Who the measurements act as: a worker with 5 concerns, staff, and workers with history."""
        rng = random.Random(3)
        status_worker = next(w for w in sorted(self.fixed_authored) if self.authored.get(w) == 5
                             and any(assigned for _, _, assigned in self.fixed_authored[w]))
        code = next(c for _, c, assigned in sorted(self.fixed_authored[status_worker], reverse=True) if assigned)
        with_history = [w for w in sorted(self.authored) if 3 <= self.authored[w] <= 6 and w != status_worker]
        chosen = rng.sample(with_history, 2 * PICKS)
        return Picks(status_worker=status_worker, status_code=code, officer=self.officers[0],
                     liaison=self.liaisons["sldtbxh"][0], forget_workers=chosen[:PICKS], submit_workers=chosen[PICKS:])


# ---- building and caching -----------------------------------------------------------------------

def schema_fingerprint() -> str:
    """A short hash of the project's tables, columns and indexes."""
    shape = [(table.name, [(c.name, str(c.type), c.nullable) for c in table.columns], sorted(
        str(index.name) for index in table.indexes)) for table in SQLModel.metadata.sorted_tables]
    return hashlib.sha1(repr(shape).encode()).hexdigest()[:12]


def store_paths(n: int) -> tuple[Path, Path]:
    """The cached store and its sidecar."""
    return CACHE_DIR / f"kn-bench-{n}.db", CACHE_DIR / f"kn-bench-{n}.json"


def remove_db(path: Path) -> None:
    """Delete a SQLite file with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def bench_settings(path: Path) -> Settings:
    """The project's settings for a store file, with a flood limit no measurement reaches."""
    return make_settings(path.parent, database_url=f"sqlite:///{path}", flood_messages=1_000_000)


def load(connection: Connection, model: Any, rows: list[dict[str, Any]], counts: dict[str, int]) -> None:
    """Bulk insert: one executemany of the model's table."""
    if rows:
        connection.execute(insert(model.__table__), rows)
        counts[model.__tablename__] = counts.get(model.__tablename__, 0) + len(rows)


def pragma(connection: Connection, statement: str) -> None:
    """Run a PRAGMA on the driver's connection, outside any transaction (the engine begins its own)."""
    connection.connection.driver_connection.execute(f"PRAGMA {statement}")  # type: ignore[union-attr]


def build_store(n: int) -> Meta:
    """Build the store of size n with the project's schema and bulk inserts; write its sidecar."""
    path, sidecar = store_paths(n)
    building = path.with_suffix(".building.db")
    remove_db(building)
    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    core = build_core(bench_settings(building))  # the schema, its indexes and the reference data
    deployment = Deployment(n, now)
    counts: dict[str, int] = {}
    with core.engine.connect() as connection:
        for statement in ("foreign_keys=OFF", "journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            pragma(connection, statement)
        for model, rows in deployment.people():
            load(connection, model, rows, counts)
        load(connection, Enterprise, deployment.enterprise_rows(), counts)
        connection.commit()
        stories = deployment.timeline()
        for first in range(0, len(stories), CHUNK):
            for model, rows in deployment.concern_rows(first + 1, stories[first:first + CHUNK]).items():
                load(connection, model, rows, counts)
            connection.commit()
            print(f"\r  building {n:,}: {min(first + CHUNK, n):,} concerns, {time.perf_counter() - started:.0f} s",
                  end="", flush=True)
        pragma(connection, "journal_mode=WAL")
    core.engine.dispose()
    remove_db(path)
    building.rename(path)
    meta = Meta(BUILD_VERSION, schema_fingerprint(), n, now.isoformat(), round(time.perf_counter() - started, 1),
                counts, deployment.picks())
    sidecar.write_text(json.dumps(meta, default=lambda o: o.__dict__, indent=1))
    print(f"\r  built {n:,} in {meta.build_seconds:.0f} s: {sum(counts.values()):,} rows, "
          f"{path.stat().st_size / 2**20:,.0f} MiB")
    return meta


def cached_store(n: int, rebuild: bool) -> Meta:
    """The cached store's sidecar, building the store first if it is missing, stale or --rebuild."""
    path, sidecar = store_paths(n)
    if not rebuild and path.exists() and sidecar.exists():
        data = json.loads(sidecar.read_text())
        if data.get("version") == BUILD_VERSION and data.get("schema") == schema_fingerprint():
            data["picks"] = Picks(**data["picks"])
            return Meta(**data)
    return build_store(n)


# ---- one event, timed ---------------------------------------------------------------------------

class Apologies(logging.Handler):
    """Counts the dispatcher's logged failures: a measurement that failed must not pass as fast."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        """One more failure."""
        self.count += 1


@dataclass
class Someone:
    """A person at the terminal, as stored."""

    external_id: str
    name: str


class Recorder:
    """Every statement the engine runs while recording: its text, parameters and milliseconds."""

    def __init__(self, engine: Engine) -> None:
        self.statements: list[tuple[str, Any, float]] = []
        self.on = False
        self._started = 0.0
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        """Start the statement's clock."""
        self._started = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        """Keep the statement (the first row of an executemany) and how long the database took."""
        if self.on:
            elapsed = (time.perf_counter() - self._started) * 1000
            self.statements.append((statement, parameters[0] if many and parameters else parameters, elapsed))


class Store:
    """A fresh copy of a cached store, the core on it, and how to send it one event as someone."""

    def __init__(self, meta: Meta, with_plans: bool) -> None:
        self.meta = meta
        self.built_now = datetime.fromisoformat(meta.built_at)
        self.work = CACHE_DIR / f"kn-bench-{meta.n}.work.db"
        remove_db(self.work)
        started = time.perf_counter()
        shutil.copyfile(store_paths(meta.n)[0], self.work)
        self.notes = [f"copy of the store {time.perf_counter() - started:.1f} s"]
        self.core = build_core(bench_settings(self.work))
        self.apologies = Apologies()
        logging.getLogger(APOLOGY_LOGGER).addHandler(self.apologies)
        self.recorder = Recorder(self.core.engine) if with_plans else None
        self.swept = ""  # what the reminder sweep found due

    def close(self) -> None:
        """Stop counting failures, close the store and delete the copy."""
        logging.getLogger(APOLOGY_LOGGER).removeHandler(self.apologies)
        self.core.engine.dispose()
        remove_db(self.work)

    def who(self, person_id: int) -> Someone:
        """The terminal account of a stored person."""
        with new_session(self.core.engine) as session:
            person = session.get(Person, person_id)
            assert person is not None, person_id
            return Someone(person.external_id, person.display_name)

    def send(self, someone: Someone, typed: str) -> tuple[float, Outcome]:
        """One typed line through `Core.handle`; the milliseconds it took and what it returned."""
        incoming = Incoming(messenger=MESSENGER, chat_id=someone.external_id, user_id=someone.external_id,
                            display_name=someone.name, language_code="vi", text=typed)
        failures = self.apologies.count
        started = time.perf_counter()
        outcome = self.core.handle(incoming)
        elapsed = (time.perf_counter() - started) * 1000
        if self.apologies.count != failures:
            raise RuntimeError(f"{typed!r} from {someone.external_id} failed (see the log above)")
        self.core.shown(outcome)
        return elapsed, outcome

    def recorded(self, run: Callable[[], object]) -> list[tuple[str, Any, float]]:
        """The statements one run executes."""
        assert self.recorder is not None
        self.recorder.on, self.recorder.statements = True, []
        try:
            run()
        finally:
            self.recorder.on = False
        return self.recorder.statements


def text_of(outcome: Outcome) -> str:
    """Every reply's text."""
    return "\n".join(reply.text for reply in outcome.replies)


def labels_of(outcome: Outcome) -> list[str]:
    """The labels of the last reply with choices."""
    return next(([o.label for o in r.options] for r in reversed(outcome.replies) if r.options), [])


# ---- the operations -----------------------------------------------------------------------------

SUBMISSION = [("/new", "/new"), ("1", "category 1"), (TYPED_ENTERPRISE, "enterprise"), ("1", "place 1"),
              (DESCRIPTION, "description"), ("1", "files: skip"), ("1", "visibility: union"), ("1", "send")]


@dataclass
class Operation:
    """A measured operation: its label, its events, one run (ms per event), warm-up runs."""

    label: str
    steps: list[str]
    run: Callable[[int], list[float]]  # the run's number: operations that change a person take a fresh one
    warmup: int = 3


def operations(store: Store) -> list[Operation]:
    """Every measured operation, bound to this store's people."""
    picks = store.meta.picks
    worker, officer, liaison = store.who(picks.status_worker), store.who(picks.officer), store.who(picks.liaison)
    forgetters = [store.who(pid) for pid in picks.forget_workers]
    submitters = [store.who(pid) for pid in picks.submit_workers]

    def status(_: int) -> list[float]:
        """The worker's list of concerns."""
        elapsed, outcome = store.send(worker, "/status")
        assert picks.status_code in text_of(outcome), text_of(outcome)
        return [elapsed]

    def status_code(_: int) -> list[float]:
        """One of the worker's concerns, with its assignments."""
        elapsed, outcome = store.send(worker, f"/status {picks.status_code}")
        assert text_of(outcome).count("\n") >= 5 and picks.status_code in text_of(outcome), text_of(outcome)
        return [elapsed]

    def queue(_: int) -> list[float]:
        """The officer's first page of the queue."""
        elapsed, outcome = store.send(officer, "/queue")
        assert len(TRACKING_CODE.findall(text_of(outcome))) == 8, text_of(outcome)
        return [elapsed]

    def mine(_: int) -> list[float]:
        """The liaison's unanswered assignments."""
        elapsed, outcome = store.send(liaison, "/mine")
        assert len(TRACKING_CODE.findall(text_of(outcome))) == 20, text_of(outcome)
        return [elapsed]

    def forget(number: int) -> list[float]:
        """A worker with history asks to forget them and confirms (the first choice)."""
        someone = forgetters[number]
        asked, outcome = store.send(someone, "/forget")
        assert labels_of(outcome)[:1] in (["Delete my data"], ["Xóa dữ liệu của tôi"]), labels_of(outcome)
        done, outcome = store.send(someone, "1")
        assert store.who(picks.forget_workers[number]).name == "", text_of(outcome)
        return [asked, done]

    def submission(number: int) -> list[float]:
        """A worker raises a concern, every step typed as on the terminal."""
        someone, times, transcript = submitters[number], [], []
        for typed, _ in SUBMISSION:
            elapsed, outcome = store.send(someone, typed)
            times.append(elapsed)
            transcript.append(f"> {typed}\n{text_of(outcome)}")
        assert TRACKING_CODE.search(text_of(outcome)), "\n".join(transcript)
        return times

    def reminder_sweep(_: int) -> list[float]:
        """One reminder sweep, forced (any day, any hour) and rolled back, so every run has the same work."""
        core = store.core
        with new_session(core.engine) as session:
            started = time.perf_counter()
            report = sweep(session=session, now=store.built_now, zone=core.policy.zone,
                           policy=core.policy.reminders, catalogs=core.catalogs, force=True)
            elapsed = (time.perf_counter() - started) * 1000
            session.rollback()
        assert report.total > 0, report
        store.swept = f"{report.stages} reminders, {report.overdue} overdue notices, {report.escalations} escalations"
        return [elapsed]

    return [Operation("/status (worker, 5 concerns)", ["/status"], status),
            Operation("/status CODE (own, assigned)", ["/status CODE"], status_code),
            Operation("/queue (officer)", ["/queue"], queue),
            Operation("/mine (sldtbxh liaison)", ["/mine"], mine),
            Operation("/forget + '1' (2 events)", ["/forget", "1"], forget, warmup=2),
            Operation("whole submission (8 events)", [label for _, label in SUBMISSION], submission, warmup=2),
            Operation("reminder sweep (forced, rolled back)", ["sweep"], reminder_sweep)]


def prune_job(engine: Engine, now: datetime) -> tuple[float, int, float]:
    """The scheduler's prune job at `now`: milliseconds, rows deleted, milliseconds of its first part
    (each part, processed updates then sent messages, is one transaction)."""
    started = time.perf_counter()
    with new_session(engine) as session:
        deleted = prune_processed_updates(session=session, older_than=KEEP_UPDATES, now=now)
        first_part = (time.perf_counter() - started) * 1000
        deleted += purge_sent(session=session, older_than=KEEP_SENT, now=now)
    return (time.perf_counter() - started) * 1000, deleted, first_part


def explain(path: Path, statements: list[tuple[str, Any, float]], top: int = 4) -> None:
    """Print the slowest distinct statements: time in the event, a SELECT's time again with every row
    fetched (the event's time stops at the first row), and SQLite's EXPLAIN QUERY PLAN."""
    db = sqlite3.connect(path)
    slowest: dict[str, tuple[float, float | None, Any]] = {}
    for statement, parameters, ms in statements:
        if statement.lstrip().upper().startswith(("PRAGMA", "SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT")):
            continue
        again = None
        if statement.lstrip().upper().startswith("SELECT") and statement not in slowest:
            again = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                db.execute(statement, parameters or ()).fetchall()
                again = min(again, (time.perf_counter() - started) * 1000)
        before = slowest.get(statement)
        if before is None or ms > before[0]:
            slowest[statement] = (ms, again if before is None else before[1], parameters)
    ranked = sorted(slowest.items(), key=lambda item: -max(item[1][0], item[1][1] or 0))
    for statement, (ms, again, parameters) in ranked[:top]:
        plan = db.execute(f"EXPLAIN QUERY PLAN {statement}", parameters or ()).fetchall()
        fetched = f", {again:.2f} ms with every row" if again is not None else ""
        print(f"    {ms:8.2f} ms in the event{fetched}: {' '.join(statement.split())[:260]}")
        print(f"        params {str(parameters)[:110]}")
        for row in plan:
            print(f"        plan: {row[-1]}")
    db.close()


# ---- the stores, measured side by side -----------------------------------------------------------

@dataclass
class Result:
    """One store's medians (ms) per operation and per step, and what is worth printing about it."""

    n: int
    medians: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[tuple[str, float]]] = field(default_factory=dict)  # operation -> (event, median)
    notes: list[str] = field(default_factory=list)


def measure(metas: list[Meta], repeats: int, with_plans: bool) -> list[Result]:
    """Time every operation on a fresh copy of each store, the stores taking turns (load drift hits all)."""
    stores: list[Store] = []
    try:
        for meta in metas:
            stores.append(Store(meta, with_plans))
        results = [Result(store.meta.n, notes=list(store.notes)) for store in stores]
        bound = [operations(store) for store in stores]
        for index, template in enumerate(bound[0]):
            print(f"  {template.label}", flush=True)
            for ops in bound:
                for number in range(template.warmup):
                    ops[index].run(number)
            runs: list[list[list[float]]] = [[] for _ in stores]
            for k in range(repeats):
                for position, ops in enumerate(bound):
                    runs[position].append(ops[index].run(template.warmup + k))
            for result, store_runs in zip(results, runs, strict=True):
                result.medians[template.label] = statistics.median(sum(run) for run in store_runs)
                result.steps[template.label] = [(name, statistics.median(step)) for name, step in zip(
                    template.steps, zip(*store_runs, strict=True), strict=True)]
            if with_plans:
                for store, ops in zip(stores, bound, strict=True):
                    print(f"  {store.meta.n:,} · {template.label}, slowest statements:")
                    explain(store.work, store.recorded(lambda op=ops[index], k=template.warmup + repeats: op.run(k)))
        for store, result in zip(stores, results, strict=True):
            if store.swept:
                result.notes.append(f"sweep found due: {store.swept}")
        measure_prune(stores, results, repeats)
    finally:
        for store in stores:
            store.close()
    return results


def measure_prune(stores: list[Store], results: list[Result], repeats: int) -> None:
    """The prune job: its first run on each store as built (the backlog), then runs 6 hours apart."""
    print("  prune job", flush=True)
    label = "prune job, first run (backlog)"
    for store, result in zip(stores, results, strict=True):
        if store.recorder is not None:
            statements = store.recorded(lambda s=store, r=result: first_prune(s, r, label))
            print(f"  {store.meta.n:,} · {label}, slowest statements:")
            explain(store.work, statements)
        else:
            first_prune(store, result, label)
        with closing(sqlite3.connect(store.work, isolation_level=None)) as db:  # before the steady runs
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    steady: list[list[float]] = [[] for _ in stores]
    deleted: list[list[int]] = [[] for _ in stores]
    for k in range(1, repeats + 3):  # two runs of warm-up
        for position, store in enumerate(stores):
            ms, rows, _ = prune_job(store.core.engine, store.built_now + k * PRUNE_EVERY)
            if k > 2:
                steady[position].append(ms)
                deleted[position].append(rows)
    for result, times, rows in zip(results, steady, deleted, strict=True):
        result.medians["prune job, steady (every 6 h)"] = statistics.median(times)
        result.notes.append(f"prune job, steady: {statistics.median(rows):.0f} rows deleted per run")


def first_prune(store: Store, result: Result, label: str) -> None:
    """The prune job's first run on the store as built: months of processed updates and sent messages."""
    ms, deleted, updates_ms = prune_job(store.core.engine, store.built_now)
    result.medians[label] = ms
    result.notes.append(f"prune job, first run: {deleted:,} rows deleted, in a transaction of "
                        f"{updates_ms / 1000:.1f} s (processed updates) and one of {(ms - updates_ms) / 1000:.1f} s "
                        "(sent messages)")


# ---- the table ----------------------------------------------------------------------------------

def size_label(n: int) -> str:
    """10k, 1M..."""
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def print_table(results: list[Result], metas: list[Meta], limit: float) -> None:
    """Operation, milliseconds per size, the ratio of the largest size to the smallest; steps; the stores."""
    small, large = results[0], results[-1]
    print(f"\n{'operation':36}" + "".join(f"{'ms at ' + size_label(r.n):>13}" for r in results) + f"{'ratio':>8}")
    for label, first in small.medians.items():
        ratio = large.medians[label] / first if first else float("inf")
        flag = f"  > {limit}" if ratio > limit and "backlog" not in label else ""
        print(f"{label:36}" + "".join(f"{r.medians[label]:13.2f}" for r in results) + f"{ratio:8.2f}{flag}")
    print(f"\nms per event ({' / '.join(size_label(r.n) for r in results)}):")
    for label, steps in small.steps.items():
        if len(steps) > 1:
            cells = [f"{name} " + " / ".join(f"{r.steps[label][i][1]:.2f}" for r in results)
                     for i, (name, _) in enumerate(steps)]
            print(f"  {label}: " + ", ".join(cells))
    print()
    for meta, result in zip(metas, results, strict=True):
        rows = ", ".join(f"{table} {count:,}" for table, count in sorted(meta.rows.items()))
        print(f"{size_label(meta.n)}: built {meta.built_at} in {meta.build_seconds:.0f} s; {rows}")
        print("     " + "; ".join(result.notes))


def main() -> None:
    """Build or reuse the stores, measure them side by side, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true", help="build the stores again even if cached")
    parser.add_argument("--explain", action="store_true", help="print the slowest statements and their plans")
    parser.add_argument("--limit", type=float, default=1.5, help="flag ratios above this")
    args = parser.parse_args()
    if min(args.sizes) < sum(OPEN_COUNTS.values()) + RECENT_CLOSED:
        parser.error(f"sizes must be at least {sum(OPEN_COUNTS.values()) + RECENT_CLOSED}")
    if args.repeats + 3 > PICKS:
        parser.error(f"--repeats is at most {PICKS - 3} (workers set aside per store)")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    metas = [cached_store(n, args.rebuild) for n in sorted(set(args.sizes))]
    print(f"measuring {', '.join(f'{m.n:,}' for m in metas)} side by side ...", flush=True)
    results = measure(metas, args.repeats, args.explain)
    print_table(results, metas, args.limit)


if __name__ == "__main__":
    main()
