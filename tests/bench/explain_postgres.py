"""Which queries of a large deployment need an index? Every operation's statements, EXPLAINed on PostgreSQL.

A script, not a test (pytest collects only test_*.py): run it from the repository root with

    python tests/bench/explain_postgres.py [--server-url URL | --database-url URL] [--n 1000000]
        [--rebuild] [--repeats 3] [--save FILE.json] [--compare BEFORE.json] [--plans FILE.txt]

The store. With `--server-url` (default: the local server as the role kiennghi) it uses the database
`kn_bench_<size>` (kn_bench_1m), creating it; with `--database-url` it uses that database, which must be
empty the first time. It is built once with the project's own schema (`build_core` on its URL creates the
tables, indexes and reference data) and the deployment history of tests/bench/bench_history.py (its
`Deployment` generates the rows: the same concerns, history, assignments, notes, ratings, files,
processed updates and outbox), loaded with COPY through psycopg's raw connection (each value through
its column's own bind processing, so enums and UTC times are stored as the models store them). Added
here, since bench_history does not need them: 18 dialogue sessions (one a month) with one concern in 40
entered at them, and the accounts of 2 % of the workers recorded as unreachable. The build time is
printed and kept; later runs reuse the store (its description is in the table `kn_bench_meta`) unless
`--rebuild`. Each run first brings the store's schema to the models' the project's own way
(`build_core`), then VACUUM ANALYZE when the schema changed or the store is new.

The measurement. Each run works on a fresh copy of the store (CREATE DATABASE ... TEMPLATE, dropped at
the end), so that operations which write (the reminder sweep, a broadcast, the prune and retention
jobs) change nothing for the next run. Each operation is run once to warm up, then timed (median of
--repeats; the jobs that consume their work are timed once), then run once more with every SQL
statement recorded (SQLAlchemy's `before_cursor_execute`): the first time a distinct statement is seen,
`EXPLAIN (ANALYZE, BUFFERS)` runs it with its parameters (as literals) just before it runs for real,
inside a savepoint that is rolled back, so the plan is the one for the store as the statement finds it.
Flagged: a Seq Scan on a table of more than 10,000 rows, a sort of more than 10,000 rows, and a node
that reads and discards more than 10,000 rows (a filter after an index that does not fit).

Times are milliseconds on this machine's PostgreSQL as configured (its settings are printed).
`--save` keeps the figures as JSON; `--compare` prints them beside an earlier run's (before/after an
index). `--plans` writes every statement with its plan (default /tmp/kn-explain-plans.txt).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make `bot`, `handlers`, `tests`... importable
    sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from sqlalchemy import Table, create_engine, event, text  # noqa: E402
from sqlalchemy.engine import Connection, Engine, make_url  # noqa: E402
from sqlalchemy.exc import OperationalError  # noqa: E402
from sqlmodel import SQLModel, col, select  # noqa: E402

from bot.app import build_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.scheduler import anonymise_old_concerns, months_before, run_sweep  # noqa: E402
from handlers.core import Incoming  # noqa: E402
from handlers.dispatch import Core, Outcome  # noqa: E402
from handlers.rules.broadcasts import queue_broadcast, report_progress  # noqa: E402
from storage.broadcasts import ALL, CATEGORY, PLACE, count_audience  # noqa: E402
from storage.concerns import anonymise_finished  # noqa: E402
from storage.db import new_session  # noqa: E402
from storage.models import Concern, DialogueSession, OutboxMessage, Person, Role, SentNotice, Status  # noqa: E402
from storage.outbox import claim_for_sending, due_heads, waiting_for_chat  # noqa: E402
from tests.bench.bench_history import (  # noqa: E402
    APOLOGY_LOGGER,
    CHUNK,
    MESSENGER,
    OPEN_COUNTS,
    PRUNE_EVERY,
    RECENT_CLOSED,
    TRACKING_CODE,
    Apologies,
    Deployment,
    Meta,  # what the `kn_bench_meta` table keeps of a built store, as bench_history's sidecar JSON does
    Picks,
    Someone,
    prune_job,
    schema_fingerprint,
    text_of,
)
from tests.conftest import make_settings  # noqa: E402

BUILD_VERSION = 1  # change when what is generated here changes: stores are then rebuilt
DEFAULT_SERVER = "postgresql+psycopg://kiennghi:kiennghi@127.0.0.1:5432/postgres"
META_TABLE = "kn_bench_meta"
LARGE = 10_000  # rows: a seq scan of a bigger table, or a sort or a discard of more, is flagged
SESSION_EVERY = 40  # one concern in 40 was entered at a dialogue session
UNREACHABLE_SHARE = 0.02
DEFAULT_PLANS = Path("/tmp/kn-explain-plans.txt")
EXPLAINED = ("SELECT", "INSERT", "UPDATE", "DELETE", "WITH")


# ---- the store ----------------------------------------------------------------------------------

def size_name(n: int) -> str:
    """1m, 10k..."""
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def with_database(url: str, database: str) -> str:
    """The same server's URL for another database."""
    return make_url(url).set(database=database).render_as_string(hide_password=False)


def server_engine(url: str) -> Engine:
    """An autocommit engine on the server's maintenance database, to create and drop databases."""
    return create_engine(with_database(url, "postgres"), isolation_level="AUTOCOMMIT")


def database_exists(url: str) -> bool:
    """Whether the database of this URL exists on its server."""
    admin = server_engine(url)
    try:
        with admin.connect() as connection:
            return connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                      {"d": make_url(url).database}).first() is not None
    finally:
        admin.dispose()


def create_database(url: str, *, template: str | None = None) -> None:
    """CREATE DATABASE for this URL (a file copy of `template` when given)."""
    admin = server_engine(url)
    name = make_url(url).database
    copy = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"{copy}')
    finally:
        admin.dispose()


def drop_database(url: str) -> None:
    """DROP DATABASE IF EXISTS for this URL (the server stops an autovacuum worker in it; tried again a few
    times while it does)."""
    admin = server_engine(url)
    try:
        for attempt in range(10):
            try:
                with admin.connect() as connection:
                    connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{make_url(url).database}"')
                return
            except OperationalError:
                if attempt == 9:
                    raise
                time.sleep(2)
    finally:
        admin.dispose()


def bench_settings(url: str) -> Settings:
    """The project's settings for the store, with a flood limit no measurement reaches."""
    return make_settings(Path("/tmp"), database_url=url, flood_messages=1_000_000)


def read_meta(url: str) -> Meta | None:
    """The store's description, if it was built (and finished)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT to_regclass(:t)"), {"t": META_TABLE}).scalar()
            if found is None:
                return None
            value = connection.execute(text(f"SELECT value FROM {META_TABLE} WHERE key = 'meta'")).scalar()
    finally:
        engine.dispose()
    if value is None:
        return None
    data = json.loads(value)
    data["picks"] = Picks(**data["picks"])
    return Meta(**data)


def write_meta(connection: Connection, meta: Meta) -> None:
    """Keep the store's description in the store."""
    connection.exec_driver_sql(f"CREATE TABLE IF NOT EXISTS {META_TABLE} (key text PRIMARY KEY, value text)")
    connection.execute(text(f"DELETE FROM {META_TABLE} WHERE key = 'meta'"))
    connection.execute(text(f"INSERT INTO {META_TABLE} VALUES ('meta', :v)"),
                       {"v": json.dumps(asdict(meta))})
    connection.commit()


def user_tables(connection: Connection) -> list[str]:
    """The tables in the database's public schema."""
    return list(connection.execute(text(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")).scalars())


class Copier:
    """Loads generated rows with COPY on one psycopg connection; counts them per table."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.raw: Any = connection.connection.driver_connection
        self.dialect = connection.dialect
        self.counts: dict[str, int] = {}

    def load(self, model: Any, rows: list[dict[str, Any]]) -> None:
        """COPY the rows (dicts of one model, all with the same keys) into its table."""
        if not rows:
            return
        table: Table = model.__table__
        names = list(rows[0])
        missing = [c.name for c in table.columns if c.name not in names and not c.nullable
                   and not (c.primary_key and c.autoincrement in (True, "auto") and c.name == "id")]
        if missing:
            raise ValueError(f"{table.name}: no value for {missing}")
        processors = [table.c[name].type.bind_processor(self.dialect) for name in names]
        columns = ", ".join(f'"{name}"' for name in names)
        with self.raw.cursor() as cursor, cursor.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in rows:
                copy.write_row([value if process is None else process(value)
                                for process, value in zip(processors, (row[name] for name in names), strict=True)])
        self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)


def session_rows(deployment: Deployment, stories: list[tuple[datetime, str, bool]]) -> list[dict[str, Any]]:
    """One dialogue session a month over the stored history (the 15th of each month)."""
    first, last = stories[0][0], stories[-1][0]
    rows: list[dict[str, Any]] = []
    month = date(first.year, first.month, 1)
    while month <= last.date():
        held = month.replace(day=15)
        rows.append({"id": len(rows) + 1, "name": f"Hội nghị đối thoại tháng {month:%m/%Y}", "held_on": held,
                     "deadline": held + timedelta(days=30), "created_by": deployment.officers[0],
                     "created_at": datetime.combine(held, datetime.min.time(), UTC), "closed_at": None})
        month = (month + timedelta(days=32)).replace(day=1)
    return rows


def origin_rows(first_id: int, stories: list[tuple[datetime, str, bool]], first_month: date,
                officer: int) -> list[dict[str, Any]]:
    """Every 40th concern was entered at its month's session, by an officer, with the speaker's name."""
    rows = []
    for offset, (created, _, _) in enumerate(stories):
        concern_id = first_id + offset
        if concern_id % SESSION_EVERY == 0:
            months = (created.year - first_month.year) * 12 + created.month - first_month.month
            rows.append({"concern_id": concern_id, "session_id": months + 1, "entered_by": officer,
                         "speaker_name": f"Người nêu {concern_id}"})
    return rows


def build_store(url: str, n: int) -> Meta:
    """Build the store with the project's schema and bench_history's deployment, loaded with COPY."""
    from storage.models import ConcernOrigin, Enterprise, Unreachable

    started = time.perf_counter()
    now = datetime.now(UTC).replace(microsecond=0)
    core = build_core(bench_settings(url))  # the schema, its indexes and the reference data
    engine = core.engine
    deployment = Deployment(n, now)
    with engine.connect() as connection:
        connection.exec_driver_sql("SET synchronous_commit = off")
        copier = Copier(connection)
        for model, rows in deployment.people():
            copier.load(model, rows)
        copier.load(Enterprise, deployment.enterprise_rows())
        connection.commit()
        stories = deployment.timeline()
        sessions = session_rows(deployment, stories)
        copier.load(DialogueSession, sessions)
        first_month = sessions[0]["held_on"].replace(day=1)
        for first in range(0, len(stories), CHUNK):
            chunk = stories[first:first + CHUNK]
            for model, rows in deployment.concern_rows(first + 1, chunk).items():
                copier.load(model, rows)
            copier.load(ConcernOrigin, origin_rows(first + 1, chunk, first_month, deployment.officers[0]))
            connection.commit()
            print(f"\r  building {n:,}: {min(first + CHUNK, n):,} concerns, {time.perf_counter() - started:.0f} s",
                  end="", flush=True)
        # The accounts that blocked the bot (the generator's failed messages say so).
        blocked = sorted(deployment.rng.sample(range(1, deployment.workers + 1),
                                               int(deployment.workers * UNREACHABLE_SHARE)))
        copier.load(Unreachable, [{"messenger": MESSENGER, "chat_id": f"w{pid}", "reason": "Forbidden: bot was "
                                   "blocked by the user", "since": now - timedelta(days=30)} for pid in blocked])
        for table in SQLModel.metadata.sorted_tables:  # ids given explicitly: the sequences follow
            if "id" in table.c:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('\"{table.name}\"', 'id'), "
                    f"coalesce((SELECT max(id) FROM \"{table.name}\"), 0) + 1, false) "
                    f"WHERE pg_get_serial_sequence('\"{table.name}\"', 'id') IS NOT NULL")
        connection.commit()
        loaded = time.perf_counter() - started
        print(f"\r  loaded {sum(copier.counts.values()):,} rows in {loaded:.0f} s; VACUUM ANALYZE ...", flush=True)
        vacuum_analyze(connection)
        meta = Meta(BUILD_VERSION, schema_fingerprint(), n, now.isoformat(), round(time.perf_counter() - started, 1),
                    copier.counts, deployment.picks())
        write_meta(connection, meta)
        size = connection.execute(text("SELECT pg_database_size(current_database())")).scalar() or 0
    engine.dispose()
    print(f"  built {n:,} concerns in {meta.build_seconds:.0f} s (rows generated and loaded in {loaded:.0f} s): "
          f"{sum(meta.rows.values()):,} rows, {size / 2**30:.1f} GiB")
    return meta


def vacuum_analyze(connection: Connection) -> None:
    """VACUUM ANALYZE (outside a transaction): statistics, and the visibility map a running store has."""
    raw: Any = connection.connection.driver_connection
    connection.commit()
    raw.autocommit = True
    try:
        raw.execute("VACUUM ANALYZE")
    finally:
        raw.autocommit = False


def prepared_store(url: str, n: int, rebuild: bool) -> Meta:
    """The built store, its schema brought to the models' (build_core), analysed when that changed anything."""
    meta = None if rebuild or not database_exists(url) else read_meta(url)
    if meta is not None and (meta.version != BUILD_VERSION or meta.n != n):
        print(f"  the store holds another build ({meta.n:,} concerns, version {meta.version}): rebuilding")
        meta = None
    if meta is None:
        if database_exists(url):
            engine = create_engine(url)
            with engine.connect() as connection:
                tables = user_tables(connection)
            engine.dispose()
            if tables and not rebuild:
                raise SystemExit(f"{make_url(url).database} has tables but no finished bench store: "
                                 "give an empty database, or --rebuild to drop it and build again")
            drop_database(url)
        create_database(url)
        return build_store(url, n)
    fingerprint = schema_fingerprint()
    if meta.schema != fingerprint:
        print("  the models' schema changed since the store was built: build_core brings it up to date",
              flush=True)
        started = time.perf_counter()
        core = build_core(bench_settings(url))
        with core.engine.connect() as connection:
            print(f"  schema updated in {time.perf_counter() - started:.0f} s; VACUUM ANALYZE ...", flush=True)
            vacuum_analyze(connection)
            meta.schema = fingerprint
            write_meta(connection, meta)
        core.engine.dispose()
    return meta


# ---- the recorder: every statement, EXPLAINed where it runs ---------------------------------------

@dataclass
class Statement:
    """A distinct statement of an operation: how often and how long it ran, and its plan."""

    sql: str
    count: int = 0
    event_ms: float = 0.0  # the slowest run while recorded (the EXPLAIN ran just before: warm cache)
    total_ms: float = 0.0  # all its runs while recorded
    explain_ms: float | None = None  # EXPLAIN ANALYZE's execution time (+ planning)
    hit: int = 0
    read: int = 0
    flags: list[str] = field(default_factory=list)
    plan: str = ""
    literal: str = ""


class Explainer:
    """Records the statements of one operation; runs EXPLAIN (ANALYZE, BUFFERS) on each new one first."""

    def __init__(self, sizes: dict[str, int]) -> None:
        self.sizes = sizes
        self.on = False
        self.statements: dict[str, Statement] = {}
        self._started = 0.0
        # Every engine: the start-up's is a new one.
        event.listen(Engine, "before_cursor_execute", self._before)
        event.listen(Engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.on and statement not in self.statements:
            found = self.statements[statement] = Statement(statement)
            if statement.lstrip().upper().startswith(EXPLAINED):
                first = parameters[0] if many and isinstance(parameters, list | tuple) and parameters else parameters
                self._explain(found, cursor.connection, first)
        self._started = time.perf_counter()

    def _after(self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        if self.on:
            found = self.statements[statement]
            elapsed = (time.perf_counter() - self._started) * 1000
            found.count += 1
            found.event_ms = max(found.event_ms, elapsed)
            found.total_ms += elapsed

    def _explain(self, found: Statement, raw: psycopg.Connection[Any], parameters: Any) -> None:
        """EXPLAIN the statement with its parameters as literals, in a savepoint rolled back afterwards."""
        found.literal = psycopg.ClientCursor(raw).mogrify(found.sql, parameters or None)
        raw.execute("SAVEPOINT kn_explain")
        try:
            row = raw.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {found.literal}").fetchone()
        finally:
            raw.execute("ROLLBACK TO SAVEPOINT kn_explain")
            raw.execute("RELEASE SAVEPOINT kn_explain")
        assert row is not None
        plan = row[0][0]
        top = plan["Plan"]
        found.explain_ms = plan.get("Execution Time", 0.0) + plan.get("Planning Time", 0.0)
        found.hit, found.read = top.get("Shared Hit Blocks", 0), top.get("Shared Read Blocks", 0)
        lines: list[str] = []
        self._walk(top, 0, found.flags, lines)
        found.plan = "\n".join(lines)

    def _walk(self, node: dict[str, Any], depth: int, flags: list[str], lines: list[str]) -> None:
        kind, loops = node["Node Type"], node.get("Actual Loops", 1)
        relation = node.get("Relation Name")
        on = f" on {relation}" if relation else ""
        index = f" using {node['Index Name']}" if node.get("Index Name") else ""
        parallel = "Parallel " if node.get("Parallel Aware") else ""
        rows = node.get("Actual Rows", 0) * loops
        lines.append(f"{'  ' * depth}-> {parallel}{kind}{index}{on} (rows={rows:,.0f} loops={loops} "
                     f"time={node.get('Actual Total Time', 0):.2f} ms)")
        for key in ("Index Cond", "Recheck Cond", "Hash Cond", "Filter", "Join Filter", "Sort Key", "Sort Method"):
            if key in node:
                lines.append(f"{'  ' * depth}     {key}: {node[key]}")
        removed = (node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0)) * loops
        if removed:
            lines.append(f"{'  ' * depth}     Rows Removed: {removed:,.0f}")
        if kind == "Seq Scan" and relation and self.sizes.get(relation, 0) > LARGE:
            flags.append(f"Seq Scan on {relation} ({self.sizes[relation]:,} rows)")
        elif removed > LARGE:
            flags.append(f"{kind}{on} discards {removed:,.0f} rows")
        if kind in ("Sort", "Incremental Sort"):
            sorted_rows = sum(child.get("Actual Rows", 0) * child.get("Actual Loops", 1)
                              for child in node.get("Plans", []))
            if sorted_rows > LARGE:
                flags.append(f"Sort of {sorted_rows:,.0f} rows ({node.get('Sort Method', '?')})")
        for child in node.get("Plans", []):
            self._walk(child, depth + 1, flags, lines)

    def record(self, run: Callable[[], object]) -> list[Statement]:
        """The statements of one run, slowest first."""
        self.on, self.statements = True, {}
        try:
            run()
        finally:
            self.on = False
        return sorted(self.statements.values(), key=lambda s: -max(s.explain_ms or 0.0, s.event_ms))


# ---- the operations -----------------------------------------------------------------------------

@dataclass
class Operation:
    """A measured operation: its label and one run; `repeats` False: run once (it consumes its work), recorded.
    `reset` runs after each run, neither timed nor recorded: it puts back what the run changed."""

    label: str
    run: Callable[[], object]
    repeats: bool = True
    reset: Callable[[], object] | None = None


class Bench:
    """The core on the working copy, the people and codes the operations use."""

    def __init__(self, url: str, meta: Meta) -> None:
        self.meta = meta
        self.now = datetime.fromisoformat(meta.built_at)
        self.core: Core = build_core(bench_settings(url))
        self.engine = self.core.engine
        self.apologies = Apologies()
        logging.getLogger(APOLOGY_LOGGER).addHandler(self.apologies)
        picks = meta.picks
        self.worker, self.officer = self.who(picks.status_worker), self.who(picks.officer)
        self.liaison = self.who(picks.liaison)
        with new_session(self.engine) as session:
            admin = session.exec(select(Person).where(Person.role == Role.ADMIN).order_by(col(Person.id))).first()
            assert admin is not None
            self.admin = admin
            # An open concern as an officer opens it: "new", at the most named enterprise (the most candidates).
            fresh = session.exec(select(Concern).where(Concern.status == Status.NEW, Concern.enterprise != "",
                                                       col(Concern.place_code).is_not(None))
                                 .order_by(col(Concern.created_at).desc())).first()
            assert fresh is not None
            self.new_code = fresh.tracking_code
            self.place: str = fresh.place_code or ""
            self.category: str = fresh.category_code
            self.sessions = session.exec(select(DialogueSession).order_by(col(DialogueSession.id))).all()
        # A full month of the old history: about 1/18 of the store.
        month = (self.now - timedelta(days=150)).date().replace(day=1)
        self.month = (month, (month + timedelta(days=32)).replace(day=1) - timedelta(days=1))
        self.session_id = self.sessions[len(self.sessions) // 2].id
        self.mark: int | None = None  # the last outbox id before the sweep
        self.claimed: int | None = None
        self.swept = ""
        self.prunes = 0

    def who(self, person_id: int) -> Someone:
        """The terminal account of a stored person."""
        with new_session(self.engine) as session:
            person = session.get(Person, person_id)
            assert person is not None, person_id
            return Someone(person.external_id, person.display_name)

    def send(self, someone: Someone, typed: str) -> Outcome:
        """One typed line through `Core.handle`, as the terminal channel sends it."""
        failures = self.apologies.count
        outcome = self.core.handle(Incoming(messenger=MESSENGER, chat_id=someone.external_id,
                                            user_id=someone.external_id, display_name=someone.name,
                                            language_code="vi", text=typed))
        if self.apologies.count != failures:
            raise RuntimeError(f"{typed!r} from {someone.external_id} failed (see the log above)")
        self.core.shown(outcome)
        return outcome

    def command(self, someone: Someone, typed: str, check: Callable[[str], bool]) -> Callable[[], object]:
        """An operation that sends one line and checks the reply."""
        def run() -> None:
            reply = text_of(self.send(someone, typed))
            assert check(reply), f"{typed}: {reply[:400]}"
        return run

    def operations(self) -> list[Operation]:
        """Everything a deployment runs, in an order where each finds the store as a deployment has it."""
        codes = TRACKING_CODE.findall
        first, last = (f"{day:%d/%m/%Y}" for day in self.month)
        picks = self.meta.picks
        ops = [
            Operation("start-up (build_core)", lambda: build_core(bench_settings(str(
                self.engine.url.render_as_string(hide_password=False)))).engine.dispose()),
            Operation("worker /status", self.command(self.worker, "/status", lambda r: picks.status_code in r)),
            Operation("worker /status CODE", self.command(self.worker, f"/status {picks.status_code}",
                                                          lambda r: r.count("\n") >= 5)),
            Operation("officer /queue", self.command(self.officer, "/queue", lambda r: len(codes(r)) == 8)),
            Operation("officer /queue accepted 3", self.command(self.officer, "/queue accepted 3",
                                                                lambda r: len(codes(r)) == 8)),
            Operation("officer /find (common words)", self.command(self.officer, "/find lương Minh Phát",
                                                                   lambda r: len(codes(r)) == 10)),
            Operation("officer /find (no match)", self.command(self.officer, "/find Samsung",
                                                               lambda r: "Samsung" in r and not codes(r))),
            Operation("officer opens a case (similar)", self.command(self.officer, f"/case {self.new_code}",
                                                                     lambda r: self.new_code in r)),
            Operation("liaison /mine", self.command(self.liaison, "/mine", lambda r: len(codes(r)) == 20)),
            Operation("officer /deadlines", self.command(self.officer, "/deadlines", lambda r: "sldtbxh" in r
                                                         or r.count("\n") >= 5)),
            Operation("officer /stats (month)", self.command(self.officer, f"/stats {first} {last}",
                                                             lambda r: r.count("\n") >= 5)),
            Operation(f"officer /stats session {self.session_id}", self.command(
                self.officer, f"/stats session {self.session_id}", lambda r: r.count("\n") >= 5)),
            Operation("officer /export (month)", self.command(self.officer, f"/export {first} {last}",
                                                              lambda r: r[:1].isdigit() or "concern" in r)),
            Operation(f"officer /export session {self.session_id}", self.command(
                self.officer, f"/export session {self.session_id}", lambda r: r[:1].isdigit() or "concern" in r)),
            Operation("reminder sweep (run_sweep, forced)", self.sweep, reset=self.unsweep),
            Operation("broadcast audience: all", lambda: self.audience(ALL, None)),
            Operation("broadcast audience: place", lambda: self.audience(PLACE, self.place)),
            Operation("broadcast audience: category", lambda: self.audience(CATEGORY, self.category)),
            Operation("sender: due_heads + claim (quiet outbox)", self.sender_step, reset=self.unclaim),
            Operation("broadcast to a place queued", lambda: self.queue_broadcast(PLACE, self.place), repeats=False),
            # Once: with statistics that still say "nothing waits", a bad plan can take minutes.
            Operation("sender: due_heads + claim (broadcast queued)", self.sender_step, reset=self.unclaim,
                      repeats=False),
            Operation("sender: due_heads + claim (broadcast queued, again)", self.sender_step, reset=self.unclaim),
            Operation("officer /undelivered", self.command(self.officer, "/undelivered", lambda r: "KN-" in r)),
            Operation("broadcast progress report", self.progress),
            Operation("prune job, first run (backlog)", lambda: prune_job(self.engine, self.now), repeats=False),
            Operation("prune job, steady (6 h later)", self.steady_prune),
            Operation("retention job, first batch (12 months)", self.anonymise_batch),
            Operation("retention job, daily (24 months)", lambda: anonymise_old_concerns(
                self.engine, retention_months=24, now=self.now)),
        ]
        return ops

    def sweep(self) -> None:
        """The scheduler's sweep at the build's moment, forced (any day, any hour)."""
        if self.mark is None:
            with new_session(self.engine) as session:
                self.mark = session.exec(select(OutboxMessage.id).order_by(col(OutboxMessage.id).desc())).first()
        report = run_sweep(self.core, now=self.now, force=True)
        assert report.total > 0, report
        self.swept = (f"{report.stages} reminders, {report.overdue} overdue notices, {report.escalations} "
                      f"escalations, {report.digests} digests, {report.arrivals} arrival notices")

    def unsweep(self) -> None:
        """Remove the sweep's notices and messages, so that the next run finds the same work."""
        with new_session(self.engine) as session:
            session.execute(SentNotice.__table__.delete())  # type: ignore[attr-defined]
            session.execute(OutboxMessage.__table__.delete().where(  # type: ignore[attr-defined]
                OutboxMessage.__table__.c.id > (self.mark or 0)))  # type: ignore[attr-defined]
            session.commit()

    def audience(self, audience: str, code: str | None) -> None:
        """The preview's count of a broadcast's recipients."""
        with new_session(self.engine) as session:
            reached, refused = count_audience(audience, code, session=session)
        assert reached > 0 and refused >= 0

    def queue_broadcast(self, audience: str, code: str | None) -> None:
        """An admin's broadcast: one outbox message per worker of the audience (committed)."""
        with new_session(self.engine) as session:
            admin = session.get(Person, self.admin.id)
            assert admin is not None
            broadcast = queue_broadcast(admin, "Thông báo: lịch đối thoại quý tới.", audience, code, session=session,
                                        catalogs=self.core.catalogs, federation=lambda _: "LĐLĐ")
            session.commit()
            print(f"    ({broadcast.recipients:,} messages queued)", flush=True)

    def sender_step(self) -> None:
        """One pass of the outbox sender's feed: the heads of other messages, then of broadcasts; a lane's
        read of its chat; the claim of its first message (then put back, so every run finds the same)."""
        with new_session(self.engine) as session:
            others = due_heads([MESSENGER], session=session, limit=200, broadcasts=False)
            heads = others or due_heads([MESSENGER], session=session, limit=50, broadcasts=True)
            session.commit()
        for message_id, messenger, chat_id in heads[:1]:
            with new_session(self.engine) as session:
                waiting_for_chat(messenger, chat_id, session=session, limit=20)
                session.commit()
            with new_session(self.engine) as session:
                assert claim_for_sending(message_id, session=session)
            self.claimed = message_id

    def unclaim(self) -> None:
        """Put the claimed message back to pending."""
        if self.claimed is not None:
            with new_session(self.engine) as session:
                session.execute(OutboxMessage.__table__.update().where(  # type: ignore[attr-defined]
                    OutboxMessage.__table__.c.id == self.claimed).values(status="pending"))  # type: ignore[attr-defined]
                session.commit()
            self.claimed = None

    def progress(self) -> None:
        """The scheduler's broadcast progress job (rolled back: the notice would be sent once)."""
        with new_session(self.engine) as session:
            report_progress(session=session, catalogs=self.core.catalogs, now=self.now + timedelta(minutes=2))
            session.rollback()

    def steady_prune(self) -> None:
        """The prune job 6 hours after the last: it deletes 6 hours' worth of rows."""
        self.prunes += 1
        prune_job(self.engine, self.now + self.prunes * PRUNE_EVERY)

    def anonymise_batch(self) -> None:
        """`kiennghi purge --older-than 12`'s first batch of 500 finished concerns (a large first run)."""
        with new_session(self.engine) as session:
            changed = anonymise_finished(months_before(self.now, 12), session=session)
            session.commit()
        assert changed > 0

    def close(self) -> None:
        """Stop counting failures and close the engine."""
        logging.getLogger(APOLOGY_LOGGER).removeHandler(self.apologies)
        self.engine.dispose()


def table_sizes(engine: Engine) -> dict[str, int]:
    """Rows per table, as ANALYZE estimated them."""
    with engine.connect() as connection:
        return {name: int(rows) for name, rows in connection.execute(text(
            "SELECT relname, reltuples FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace"))}


def server_facts(engine: Engine) -> str:
    """The server's version and the settings that shape plans."""
    with engine.connect() as connection:
        version = connection.execute(text("SHOW server_version")).scalar()
        settings = connection.execute(text(
            "SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem', "
            "'effective_cache_size', 'random_page_cost', 'max_parallel_workers_per_gather', 'jit') ORDER BY name"))
        return f"PostgreSQL {version}, {os.cpu_count()} cores; " + ", ".join(
            f"{name}={value}{'×' + unit if unit else ''}" for name, value, unit in settings)


def measure(bench: Bench, repeats: int, plans: Path, only: list[str],
            save: Path | None) -> dict[str, dict[str, Any]]:
    """Time each operation, then record and EXPLAIN its statements; print as it goes."""
    sizes = table_sizes(bench.engine)
    explainer = Explainer(sizes)
    results: dict[str, dict[str, Any]] = {}
    with plans.open("w") as out:
        out.write(f"{server_facts(bench.engine)}\n")
        for op in bench.operations():
            if only and not any(word in op.label for word in only):
                continue
            times = []
            reset = op.reset or (lambda: None)
            if op.repeats:
                op.run()  # warm-up
                reset()
                for _ in range(repeats):
                    started = time.perf_counter()
                    op.run()
                    times.append((time.perf_counter() - started) * 1000)
                    reset()
                statements = explainer.record(op.run)
            else:
                started = time.perf_counter()
                statements = explainer.record(op.run)  # once: its work is consumed
                times.append((time.perf_counter() - started) * 1000)
            reset()
            ms = statistics.median(times)
            flagged = [s for s in statements if s.flags]
            print(f"\n{op.label}: {ms:,.1f} ms{' (with EXPLAINs)' if not op.repeats else ''}, "
                  f"{sum(s.count for s in statements)} statements ({len(statements)} distinct) taking "
                  f"{sum(s.total_ms for s in statements):,.1f} ms when recorded, {len(flagged)} flagged", flush=True)
            out.write(f"\n===== {op.label}: {ms:,.1f} ms\n")
            for s in statements:
                explain = f"{s.explain_ms:9.2f}" if s.explain_ms is not None else "        –"
                line = f"{explain} ms  ×{s.count:<4} hit {s.hit:>7,} read {s.read:>7,}  {' '.join(s.sql.split())}"
                out.write(f"\n{line}\n    {' '.join(s.literal.split())[:2000]}\n{s.plan}\n")
                if s.flags:
                    out.write("    FLAGS: " + "; ".join(s.flags) + "\n")
            for s in statements[:4]:
                if (s.explain_ms or 0) < 1 and not s.flags and s is not statements[0]:
                    continue
                explain = f"{s.explain_ms:8.2f}" if s.explain_ms is not None else "       –"
                print(f"  {explain} ms ×{s.count:<4} {' '.join(s.sql.split())[:150]}")
                for flag in dict.fromkeys(s.flags):
                    print(f"      ! {flag}")
            for s in flagged:
                if s not in statements[:4]:
                    print(f"  {s.explain_ms or 0:8.2f} ms ×{s.count:<4} {' '.join(s.sql.split())[:150]}")
                    for flag in dict.fromkeys(s.flags):
                        print(f"      ! {flag}")
            results[op.label] = {"ms": ms, "statements": [
                {"sql": s.sql, "count": s.count, "explain_ms": s.explain_ms, "event_ms": s.event_ms,
                 "total_ms": s.total_ms, "flags": list(dict.fromkeys(s.flags))} for s in statements]}
            if save is not None:  # as it goes: an interrupted run keeps what it measured
                save.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return results


def compare(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> None:
    """Per operation: its time and its slowest statement's EXPLAIN ANALYZE time, before and after."""
    def slowest(result: dict[str, Any]) -> tuple[float, int]:
        times = [s["explain_ms"] or 0.0 for s in result["statements"]]
        return max(times, default=0.0), sum(1 for s in result["statements"] if s["flags"])

    print(f"\n{'operation':46}{'op ms before':>13}{'after':>10}{'slowest stmt before':>21}{'after':>10}"
          f"{'flagged':>10}")
    for label, result in after.items():
        old = before.get(label)
        if old is None:
            continue
        (was, flagged_was), (now, flagged_now) = slowest(old), slowest(result)
        print(f"{label:46}{old['ms']:13,.1f}{result['ms']:10,.1f}{was:21,.2f}{now:10,.2f}"
              f"{f'{flagged_was} → {flagged_now}':>10}")


def main() -> None:
    """Prepare the store, measure a working copy of it, print and keep the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--server-url", default=DEFAULT_SERVER,
                       help="a PostgreSQL server URL: the store is the database kn_bench_<size> on it")
    where.add_argument("--database-url", help="the store's database (empty the first time)")
    parser.add_argument("--n", type=int, default=1_000_000, help="concerns in the store")
    parser.add_argument("--rebuild", action="store_true", help="build the store again even if it exists")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs of each operation (the median)")
    parser.add_argument("--only", nargs="*", default=[], help="only the operations whose label holds a word")
    parser.add_argument("--plans", type=Path, default=DEFAULT_PLANS, help="where every plan is written")
    parser.add_argument("--save", type=Path, help="keep the figures as JSON")
    parser.add_argument("--compare", type=Path, nargs="+", help="print the figures beside earlier --save files")
    parser.add_argument("--keep-copy", action="store_true", help="do not drop the working copy at the end")
    args = parser.parse_args()
    if args.n < sum(OPEN_COUNTS.values()) + RECENT_CLOSED:
        parser.error(f"--n must be at least {sum(OPEN_COUNTS.values()) + RECENT_CLOSED}")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    url = args.database_url or with_database(args.server_url, f"kn_bench_{size_name(args.n)}")
    print(f"store: {make_url(url).render_as_string(hide_password=True)}", flush=True)
    meta = prepared_store(url, args.n, args.rebuild)
    print(f"  {meta.n:,} concerns built {meta.built_at} in {meta.build_seconds:.0f} s: "
          + ", ".join(f"{table} {count:,}" for table, count in sorted(meta.rows.items())), flush=True)
    work = with_database(url, f"{make_url(url).database}_work")
    drop_database(work)
    started = time.perf_counter()
    create_database(work, template=make_url(url).database)
    print(f"working copy {make_url(work).database} made in {time.perf_counter() - started:.0f} s", flush=True)
    bench = None
    try:
        bench = Bench(work, meta)
        print(server_facts(bench.engine), flush=True)
        results = measure(bench, args.repeats, args.plans, args.only, args.save)
    finally:
        if bench is not None:
            bench.close()
        if not args.keep_copy:
            drop_database(work)
    print(f"\nevery statement and its plan: {args.plans}")
    if args.compare:
        before: dict[str, dict[str, Any]] = {}
        for path in args.compare:
            before.update(json.loads(path.read_text()))
        compare(before, results)


if __name__ == "__main__":
    main()
