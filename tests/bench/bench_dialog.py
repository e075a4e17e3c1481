"""Throughput of the whole worker dialog through the real python-telegram-bot Application.

A script, not a test (pytest collects only test_*.py): run it from the repository root with

    python tests/bench/bench_dialog.py [--workers 200] [--mode roundrobin|gather]

N simulated workers each go through the full submission dialog (11 updates: /start, language,
consent, /new, category, enterprise, place, description, skip files, visibility, send) as raw
update dicts fed to `Application.process_update`, on the offline FakeBotAPI and the default
durable SQLite store (a fresh file: WAL, synchronous=FULL, exactly as build_core sets it).
Every update is one dialog step and is one committed transaction.

Then, in the same process and on the same FakeBotAPI class, a bare python-telegram-bot echo
bot processes as many text updates, as the yardstick for the framework's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make `tests.fake_telegram` importable
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import func, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters  # noqa: E402

from bot.app import build_core, build_telegram_application  # noqa: E402
from bot.config import Settings  # noqa: E402
from storage.db import new_session  # noqa: E402
from storage.models import Concern  # noqa: E402
from tests.fake_telegram import BOT_USER, FakeBotAPI  # noqa: E402

TOKEN = "123456:BENCH"
FIRST_USER = 7_000_000
_ids = itertools.count(1)

# The dialog, as (kind, payload): "text" is a typed message, "press" a button's callback data.
DIALOG: list[tuple[str, str]] = [
    ("text", "/start"),
    ("press", "lang:vi"),
    ("press", "agree"),
    ("press", "/new"),
    ("press", "cat:wages"),
    ("text", "Công ty TNHH Minh Phát"),
    ("press", "place:kcn_dinh_tram"),
    ("text", "Công ty nợ lương tháng 6 và tháng 7 của công nhân."),
    ("press", "files:done"),
    ("press", "vis:union"),
    ("press", "send"),
]


class DialogBroken(AssertionError):
    """The bot did not answer a step the way the dialog expects."""


def _user(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "is_bot": False, "first_name": "Công nhân", "last_name": str(user_id),
            "language_code": "vi"}


def text_update(user_id: int, body: str) -> dict[str, Any]:
    """A raw Bot API update: a text message in a private chat."""
    return {"update_id": next(_ids), "message": {
        "message_id": next(_ids), "date": int(time.time()),
        "chat": {"id": user_id, "type": "private", "first_name": "Công nhân"},
        "from": _user(user_id), "text": body}}


def press_update(user_id: int, data: str) -> dict[str, Any]:
    """A raw Bot API update: an inline button pressed."""
    return {"update_id": next(_ids), "callback_query": {
        "id": str(next(_ids)), "from": _user(user_id), "chat_instance": "ci", "data": data,
        "message": {"message_id": 1, "date": int(time.time()),
                    "chat": {"id": user_id, "type": "private"}, "from": BOT_USER, "text": "…"}}}


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


class Worker:
    """One simulated worker; checks that each button pressed was offered to it just before."""

    def __init__(self, app: Application, api: FakeBotAPI, user_id: int) -> None:  # type: ignore[type-arg]
        self.app = app
        self.api = api
        self.user_id = user_id
        self.chat = str(user_id)
        self.offered: set[str] = set()
        self.last_text = ""
        self.last_texts: list[str] = []

    async def step(self, number: int, latencies: list[float]) -> None:
        kind, payload = DIALOG[number]
        if kind == "press" and payload not in self.offered:
            raise DialogBroken(f"worker {self.user_id} step {number}: button {payload!r} was not "
                               f"offered (last reply: {self.last_text[:120]!r})")
        raw = press_update(self.user_id, payload) if kind == "press" else text_update(self.user_id, payload)
        update = Update.de_json(raw, self.app.bot)
        before = len(self.api.calls)
        started = time.perf_counter()
        await self.app.process_update(update)
        latencies.append(time.perf_counter() - started)
        mine = [c for c in self.api.calls[before:] if c.method == "sendMessage" and c.chat_id == self.chat]
        if not mine:
            raise DialogBroken(f"worker {self.user_id} step {number}: no reply to {payload!r}")
        self.last_texts = [c.text for c in mine]
        self.last_text = self.last_texts[-1]
        buttons = [data for call in mine for _, data in call.buttons]
        if buttons:
            self.offered = set(buttons)


async def run_dialogs(app: Application, api: FakeBotAPI, workers: int, mode: str,  # type: ignore[type-arg]
                      ) -> tuple[float, float, list[float], list[Worker]]:
    """Every worker through the whole dialog: wall and CPU time, step latencies, the workers."""
    people = [Worker(app, api, FIRST_USER + i) for i in range(workers)]
    latencies: list[float] = []
    cpu_started = time.process_time()
    started = time.perf_counter()
    if mode == "roundrobin":
        for number in range(len(DIALOG)):
            for person in people:
                await person.step(number, latencies)
    else:
        async def whole_dialog(person: Worker) -> None:
            for number in range(len(DIALOG)):
                await person.step(number, latencies)
                await asyncio.sleep(0)  # let the other chats in between this chat's messages
        await asyncio.gather(*(whole_dialog(p) for p in people))
    wall = time.perf_counter() - started
    return wall, time.process_time() - cpu_started, latencies, people


async def run_echo(updates: int) -> tuple[float, list[float], int]:
    """A bare python-telegram-bot echo bot on the same FakeBotAPI class, as many text updates."""
    api = FakeBotAPI()
    app = ApplicationBuilder().token(TOKEN).request(api).get_updates_request(api).build()

    async def echo(update: Update, _context: Any) -> None:
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    await app.initialize()
    latencies: list[float] = []
    try:
        started = time.perf_counter()
        for i in range(updates):
            update = Update.de_json(text_update(FIRST_USER + i % 200, f"tin nhắn {i}"), app.bot)
            began = time.perf_counter()
            await app.process_update(update)
            latencies.append(time.perf_counter() - began)
        wall = time.perf_counter() - started
    finally:
        await app.shutdown()
    return wall, latencies, sum(1 for c in api.calls if c.method == "sendMessage")


def describe(latencies: list[float]) -> tuple[float, float, float]:
    ordered = sorted(latencies)
    return (percentile(ordered, 0.50) * 1e3, percentile(ordered, 0.99) * 1e3, ordered[-1] * 1e3)


async def main_async(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="kiennghi-bench-") as folder:
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None, database_url=f"sqlite:///{folder}/kiennghi.db",
            telegram_bot_token=SecretStr(TOKEN), default_locale="vi", timezone="Asia/Ho_Chi_Minh",
            sqlite_synchronous="FULL",  # the default, pinned: SQLITE_SYNCHRONOUS must not change it
        )
        core = build_core(settings)  # the default durable store: WAL, synchronous=FULL
        with core.engine.connect() as connection:
            journal = connection.execute(text("PRAGMA journal_mode")).scalar()
            level = connection.execute(text("PRAGMA synchronous")).scalar()
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(level or 0), "?")
        api = FakeBotAPI()
        app = build_telegram_application(settings, core, request=api, rate_limit=False)
        await app.initialize()
        try:
            wall, cpu, latencies, people = await run_dialogs(app, api, args.workers, args.mode)
        finally:
            await app.shutdown()
        with new_session(core.engine) as session:
            stored = session.exec(select(func.count()).select_from(Concern)).one()
            codes = set(session.exec(select(Concern.tracking_code)).all())
        core.engine.dispose()

    steps = len(latencies)
    rate = steps / wall
    p50, p99, worst = describe(latencies)
    echo_wall, echo_latencies, echoed = await run_echo(steps)
    echo_rate = steps / echo_wall
    e50, e99, eworst = describe(echo_latencies)

    print(f"kiennghi dialog bench ({args.mode}: "
          + ("step k of every worker, then step k+1" if args.mode == "roundrobin"
             else "asyncio.gather of one coroutine per worker") + ")")
    print(f"  store            SQLite file, journal_mode={journal}, synchronous={synchronous}; "
          "one commit per step")
    print("  rate limiter     off (AIORateLimiter would cap sends at Telegram's ~30 msg/s)")
    print(f"  workers          {args.workers}")
    print(f"  steps            {steps} ({len(DIALOG)} per worker)")
    print(f"  wall time        {wall:.3f} s (CPU time {cpu:.3f} s: {cpu / wall:.0%} of wall; "
          "the rest is fsync waits and other processes)")
    print(f"  steps per second {rate:,.0f}")
    slowest = max(range(steps), key=latencies.__getitem__)
    print(f"  step latency     p50 {p50:.2f} ms   p99 {p99:.2f} ms   max {worst:.2f} ms (update #{slowest}"
          + (": the first, on cold connection and statement caches)" if slowest == 0 else ")"))
    print(f"bare PTB echo bot ({steps} text updates, same FakeBotAPI class)")
    print(f"  wall time        {echo_wall:.3f} s")
    print(f"  updates/second   {echo_rate:,.0f}")
    print(f"  latency          p50 {e50:.2f} ms   p99 {e99:.2f} ms   max {eworst:.2f} ms")
    print(f"ratio kiennghi steps/s ÷ echo updates/s = {rate / echo_rate:.3f}")
    target = rate >= 1000 and p99 < 20
    print(f"target (≥1,000 steps/s, p99 < 20 ms): {'met' if target else 'NOT met'}")

    failures = []
    if stored != args.workers:
        failures.append(f"{stored} concerns in the store, expected {args.workers}")
    missing = [p.user_id for p in people
               if not any(code in said for said in p.last_texts for code in codes)]
    if missing:
        failures.append(f"{len(missing)} workers were not shown a stored tracking code, e.g. {missing[:5]}")
    if echoed != steps:
        failures.append(f"echo bot sent {echoed} messages for {steps} updates")
    if failures:
        sys.stdout.flush()
        for failure in failures:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"verified: {stored} concerns stored, each worker shown its tracking code")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=200, help="simulated workers (default 200)")
    parser.add_argument("--mode", choices=("roundrobin", "gather"), default="roundrobin",
                        help="interleaving: round-robin step by step (default), or one concurrent "
                             "coroutine per worker under asyncio.gather")
    args = parser.parse_args()
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
