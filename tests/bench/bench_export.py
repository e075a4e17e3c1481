"""How long the annex export takes, and how much memory, for 100,000 concerns.

A script, not a test: run it from the repository root with

    python tests/bench/bench_export.py [--concerns 100000] [--rebuild]

It builds (once; cached as /tmp/kn-export-N.db) a SQLite store with the project's schema holding N
concerns, each with one or two assignments (answered for two thirds of them) and a rating for a
third, by bulk inserts; then, in a fresh process state, it exports the whole store to an XLSX file as
`/export` and `kiennghi export` do (openpyxl's write-only mode) and prints the seconds, the rows and
the peak resident memory of the process, and the CPU seconds, which other work on a shared machine
does not inflate. Target: under 10 s and under 200 MB on a 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from bot.app import build_core  # noqa: E402
from bot.config import Settings  # noqa: E402
from handlers.rules.reports import write_report  # noqa: E402
from storage.models import Assignment, Concern, Rating  # noqa: E402
from storage.reports import Scope  # noqa: E402

AGENCIES = ["snv", "bhxh", "bqlkcn", "sxd", "syt", "cat", "ubnd_xa"]
TOPICS = ["wages", "insurance", "hours", "safety", "housing", "meals", "contract"]
PLACES = ["kcn_dinh_tram", "kcn_quang_chau", "kv_hiep_hoa", "kv_viet_yen", None]


def settings(path: Path) -> Settings:
    return Settings(_env_file=None, telegram_bot_token=None, database_url=f"sqlite:///{path}",  # type: ignore[call-arg]
                    sqlite_synchronous="NORMAL")


def build(path: Path, n: int) -> None:
    """N concerns with their assignments and ratings, by bulk inserts."""
    core = build_core(settings(path))
    rng = random.Random(7)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with core.engine.begin() as connection:
        for first in range(0, n, 10_000):
            concerns, assignments, ratings = [], [], []
            for i in range(first, min(n, first + 10_000)):
                raised = start + timedelta(minutes=7 * i)
                concerns.append({
                    "id": i + 1, "tracking_code": f"KN-{i:04X}-{i % 9973:04X}"[:12], "author_id": None,
                    "visibility": "union", "category_code": rng.choice(TOPICS),
                    "enterprise": f"Công ty TNHH Số {i % 900}", "place_code": rng.choice(PLACES),
                    "description": "Công nhân phản ánh chưa được trả lương làm thêm giờ tháng trước. " * 2,
                    "status": rng.choice(["assigned", "answered", "closed", "resolved"]), "me_too": 1 + i % 5,
                    "created_at": raised, "updated_at": raised})
                for agency in rng.sample(AGENCIES, 1 + (i % 3 == 0)):
                    answered = rng.random() < 0.66
                    assignments.append({
                        "concern_id": i + 1, "agency_code": agency, "deadline": (raised + timedelta(days=30)).date(),
                        "status": "answered" if answered else "pending",
                        "answer_text": "Sở đã làm việc với doanh nghiệp; doanh nghiệp cam kết trả đủ." if answered
                        else None, "answered_at": raised + timedelta(days=rng.randint(3, 45)) if answered else None,
                        "assigned_at": raised})
                if i % 3 == 0:
                    ratings.append({"concern_id": i + 1, "score": 1 + i % 5, "at": raised})
            connection.execute(insert(Concern.__table__), concerns)  # type: ignore[attr-defined]
            connection.execute(insert(Assignment.__table__), assignments)  # type: ignore[attr-defined]
            connection.execute(insert(Rating.__table__), ratings)  # type: ignore[attr-defined]
    core.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concerns", type=int, default=100_000)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    path = Path(tempfile.gettempdir()) / f"kn-export-{args.concerns}.db"
    if args.rebuild or not path.exists():
        path.unlink(missing_ok=True)
        began = time.perf_counter()
        build(path, args.concerns)
        print(f"built {path} in {time.perf_counter() - began:.1f} s")
    core = build_core(settings(path))
    t = core.catalogs.get("vi")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    began, cpu = time.perf_counter(), time.process_time()
    with core.engine.connect() as connection, Session(bind=connection) as session:
        out = Path(tempfile.gettempdir()) / "kn-export.xlsx"
        with out.open("wb") as handle:  # as /export and `kiennghi export` do
            rows = write_report(handle, t, Scope(), "Tổng hợp", today=datetime.now(UTC).date(), session=session)
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"exported {rows:,} concerns to {out} ({out.stat().st_size / 1e6:.1f} MB) in {seconds:.1f} s "
          f"(CPU {cpu:.1f} s); peak memory {peak:.0f} MB (was {before:.0f} MB before the export)")


if __name__ == "__main__":
    main()
