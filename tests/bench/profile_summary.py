"""Where a dialog step's time goes, from the cProfile stats that `bench_dialog.py --profile FILE` wrote.

    python tests/bench/bench_dialog.py --store-threads 0 --profile /tmp/kiennghi.prof
    python tests/bench/profile_summary.py /tmp/kiennghi.prof [--steps 2200] [--top 15]

cProfile sees only the thread it runs in: profile with `--store-threads 0` (the store inline on the
event loop) so that the store's work is in the stats too. Each function's own time (tottime) goes
to a category by the file it is in; the C functions and standard-library helpers that have no
category of their own (isinstance, re, datetime, dataclasses...) are charged to their callers'
categories, in proportion to the time spent under each caller. The SQLite C calls are their own
categories: `commit` (with its fsync) and the other statements. cProfile inflates Python-heavy code
(every call costs it about a microsecond), so C-heavy categories look smaller than they are.
"""

from __future__ import annotations

import argparse
import pstats
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tuple(str(ROOT / name) + "/" for name in ("bot", "handlers", "storage", "locales"))
HARNESS = (str(ROOT / "tests") + "/",)
Func = tuple[str, int, str]  # (file, line, name), as pstats keys functions

ORDER = [
    "SQLAlchemy/SQLModel", "SQLite commit (fsync)", "SQLite statements (C)", "python-telegram-bot", "json",
    "project (bot/, handlers/, storage/, locales/)", "asyncio", "bench harness (fake Bot API, workers)",
    "pydantic", "other",
]


def own_category(func: Func) -> str | None:
    """The category of a function by its file, or None when its callers decide (builtins, stdlib helpers)."""
    path, _, name = func
    if path == "~":  # a C function: only a few have a category of their own
        if "sqlite3.Connection" in name and "commit" in name:
            return "SQLite commit (fsync)"
        if "sqlite3." in name:
            return "SQLite statements (C)"
        if "_json" in name or "json" in name.lower():
            return "json"
        if "epoll" in name or "select" in name:
            return "asyncio"
        return None
    if "/sqlalchemy/" in path or "/sqlmodel/" in path:
        return "SQLAlchemy/SQLModel"
    if "/telegram/" in path:
        return "python-telegram-bot"
    if "/json/" in path:
        return "json"
    if "/asyncio/" in path or path.endswith(("selectors.py", "concurrent/futures/_base.py")):
        return "asyncio"
    if path.startswith(PROJECT):
        return "project (bot/, handlers/, storage/, locales/)"
    if path.startswith(HARNESS):
        return "bench harness (fake Bot API, workers)"
    if "/pydantic" in path:
        return "pydantic"
    if "site-packages" in path:
        return "other"
    return None  # the standard library's helpers: charged to the callers


def shares(stats: dict[Func, tuple], func: Func, memo: dict[Func, dict[str, float]],
           seen: frozenset[Func] = frozenset()) -> dict[str, float]:
    """Fractions of a function's time per category: its own, or else its callers' (weighted by time)."""
    if func in memo:
        return memo[func]
    own = own_category(func)
    if own is not None:
        memo[func] = {own: 1.0}
        return memo[func]
    callers = stats[func][4] if func in stats else {}
    weights: dict[str, float] = defaultdict(float)
    total = 0.0
    for caller, (_cc, _nc, tottime, cumtime) in callers.items():
        weight = cumtime or tottime
        if caller in seen or weight <= 0:
            continue
        for category, fraction in shares(stats, caller, memo, seen | {func}).items():
            weights[category] += weight * fraction
        total += weight
    memo[func] = {category: weight / total for category, weight in weights.items()} if total else {"other": 1.0}
    return memo[func]


def summarize(path: str, steps: int, top: int) -> None:
    """Print the categories' share of the profiled time, json by caller, and the costliest project functions."""
    profile = pstats.Stats(path)
    stats: dict[Func, tuple] = profile.stats  # type: ignore[attr-defined]
    memo: dict[Func, dict[str, float]] = {}
    totals: dict[str, float] = defaultdict(float)
    json_by_caller: dict[str, float] = defaultdict(float)
    for func, (_cc, _nc, tottime, _ct, callers) in stats.items():
        for category, fraction in shares(stats, func, memo).items():
            totals[category] += tottime * fraction
        if own_category(func) == "json":
            for caller, (_c, _n, caller_tottime, caller_cumtime) in callers.items():
                if own_category(caller) == "json":
                    continue
                for category, fraction in shares(stats, caller, memo).items():
                    json_by_caller[category] += (caller_cumtime or caller_tottime) * fraction
    whole = sum(totals.values())
    print(f"profiled time {whole:.3f} s for {steps} steps: {whole / steps * 1e6:,.0f} µs per step (under cProfile)")
    for category in sorted(totals, key=lambda c: (ORDER.index(c) if c in ORDER else 99)):
        share = totals[category] / whole
        print(f"  {category:<46} {share:6.1%}  {totals[category] / steps * 1e6:8,.0f} µs/step")
    if json_by_caller:
        print("  json, by who called it (cumulative, may overlap): " + ", ".join(
            f"{c} {t / steps * 1e6:,.0f} µs/step" for c, t in sorted(json_by_caller.items(), key=lambda x: -x[1])))
    print(f"costliest project functions (cumulative time per step; nested ones counted in their callers too), "
          f"top {top}:")
    mine = [(func, row) for func, row in stats.items() if func[0].startswith(PROJECT)]
    mine.sort(key=lambda item: -item[1][3])
    for (file, line, name), (_cc, calls, tottime, cumtime, _callers) in mine[:top]:
        where = f"{Path(file).relative_to(ROOT)}:{line} {name}"
        print(f"  {where:<60} {cumtime / steps * 1e6:7,.0f} µs cumulative  {tottime / steps * 1e6:5,.0f} µs own  "
              f"{calls / steps:5.1f} calls/step")


def main() -> int:
    """Summarise the stats file named on the command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("stats", help="the file bench_dialog.py --profile wrote")
    parser.add_argument("--steps", type=int, default=2200, help="steps in the profiled run (default 2200)")
    parser.add_argument("--top", type=int, default=15, help="project functions to list (default 15)")
    args = parser.parse_args()
    summarize(args.stats, args.steps, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
