"""Throughput of the whole worker dialog through the real python-telegram-bot Application.

A script, not a test (pytest collects only test_*.py): run it from the repository root with

    python tests/bench/bench_dialog.py [--workers 200] [--rtt-ms 0] [--store-threads N]
                                       [--mode concurrent|roundrobin] [--pipeline] [--profile FILE]

N simulated workers each go through the full submission dialog (11 updates: /start, language,
consent, /new, category, enterprise, place, description, skip files, visibility, send) with the
default durable SQLite store (a fresh file: WAL, synchronous=FULL, exactly as build_core sets it;
every update is one committed transaction). Updates reach the bot the way a production webhook
hands them over: the application is initialized and started (no updater, post_init run as
run_polling would) and each update is parsed from JSON and put on `app.update_queue`, so it goes
through the application's update processor (PerChatOrder: chats concurrently, each in order).

A worker sends its next step only once it has received every reply of the previous one (a closed
loop); how many replies a step brings is learnt beforehand from one calibration worker on a
throwaway store. The offline fake Bot API (`BenchBotAPI`, a `telegram.request.BaseRequest`)
answers at once, or with `--rtt-ms` after a simulated round trip: half of it before Telegram has
the call (when a message reaches the person), half before the bot gets the answer. Afterwards
every chat's messages are compared, in order, with the calibration worker's.

With every worker at once (the default) the bot is saturated, so a step's latency is mostly
queueing behind the other 199 chats (Little's law: workers ÷ steps per second); `--mode
roundrobin` has one update in flight at a time and shows the service time of a step instead.
`--pipeline` lets each worker send all its steps without waiting: only the per-chat ordering then
keeps a dialog correct. `--profile FILE` writes cProfile stats of kiennghi's run (see
profile_summary.py).

Then, in the same process, on the same fake API class, with the same workers and round trip, a
bare python-telegram-bot echo bot (PTB's own concurrent processing, 256 at once) answers as many
text updates, as the yardstick for the framework's own cost.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import itertools
import json
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make `bot`, `handlers`... importable
    sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import text  # noqa: E402
from sqlmodel import func, select  # noqa: E402
from telegram import Update  # noqa: E402
from telegram.ext import Application, ApplicationBuilder, MessageHandler, filters  # noqa: E402
from telegram.request import BaseRequest, RequestData  # noqa: E402

from bot.app import MAX_CONCURRENT_UPDATES, build_core, build_telegram_application, store_threads  # noqa: E402
from bot.config import Settings  # noqa: E402
from storage.db import new_session  # noqa: E402
from storage.models import Concern  # noqa: E402

TOKEN = "123456:BENCH"
FIRST_USER = 7_000_000
STEP_TIMEOUT = 60.0  # seconds a worker waits for a step's replies before it gives up
BOT_USER = {"id": 999000, "is_bot": True, "first_name": "Kiến nghị", "username": "kiennghi_bot",
            "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}
SENDS = {"sendMessage", "sendPhoto", "sendDocument", "sendVoice", "sendAudio", "sendVideo"}
TRACKING_CODE = re.compile(r"KN-[0-9A-Z]{4}-[0-9A-Z]{4}")
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
# The echo bot's script: as many plain text messages.
ECHO: list[tuple[str, str]] = [("text", f"tin nhắn {number}") for number in range(len(DIALOG))]

Message = tuple[str, str | None]  # (text, reply_markup as the JSON python-telegram-bot sent)
Signature = tuple[str, tuple[str, ...]]  # (text with codes and digits masked, buttons' callback data)


# ---- raw updates -------------------------------------------------------------------------------
def _user(user_id: int) -> dict[str, Any]:
    """The `from` of a worker's update."""
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


def raw_update(user_id: int, kind: str, payload: str) -> dict[str, Any]:
    """The raw update for one step of a script."""
    return press_update(user_id, payload) if kind == "press" else text_update(user_id, payload)


async def receive(app: Application, body: bytes) -> None:  # type: ignore[type-arg]
    """The custom-webhook pattern: parse the request body and put the update on the application's queue."""
    await app.update_queue.put(Update.de_json(json.loads(body), app.bot))


# ---- the fake Bot API --------------------------------------------------------------------------
class Chat:
    """One worker's private chat as the fake API sees it: the messages sent to it, and the worker's wait."""

    def __init__(self) -> None:
        """An empty chat, nobody waiting."""
        self.messages: list[Message] = []
        self._until = 0  # the wait ends when this many messages have arrived
        self._waiter: asyncio.Future[float] | None = None

    def expect(self, count: int) -> asyncio.Future[float]:
        """A future set, to the arrival time, when `count` more messages have arrived."""
        self._until = len(self.messages) + count
        self._waiter = asyncio.get_running_loop().create_future()
        return self._waiter

    def arrive(self, message: Message) -> None:
        """A message reaches the person; maybe the one the worker was waiting for."""
        self.messages.append(message)
        if self._waiter is not None and len(self.messages) >= self._until and not self._waiter.done():
            self._waiter.set_result(time.perf_counter())


class BenchBotAPI(BaseRequest):
    """Answers Bot API calls offline, after `rtt` seconds when set, and hands messages to the chats."""

    def __init__(self, rtt: float = 0.0) -> None:
        """A fake whose every call takes `rtt` seconds."""
        self.rtt = rtt
        self.chats: dict[str, Chat] = {}
        self.stray: list[tuple[str, Message]] = []  # messages to chats no worker owns
        self.methods: Counter[str] = Counter()
        self._ids = itertools.count(1)

    async def initialize(self) -> None:
        """Nothing to open."""

    async def shutdown(self) -> None:
        """Nothing to close."""

    @property
    def read_timeout(self) -> float:
        """Required by BaseRequest; nothing here blocks on a socket."""
        return 1.0

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         **_: Any) -> tuple[int, bytes]:
        """One Bot API call: half the round trip, Telegram acts, the other half, the answer."""
        name = url.rsplit("/", 1)[-1]
        params = request_data.json_parameters if request_data else {}
        if self.rtt:
            await asyncio.sleep(self.rtt / 2)
        self.methods[name] += 1
        body = self._answer(name, params)
        if self.rtt:
            await asyncio.sleep(self.rtt / 2)
        return 200, body

    def _answer(self, name: str, params: dict[str, str]) -> bytes:
        """Telegram's side: deliver a sent message to its chat; the JSON answer."""
        if name not in SENDS:
            return b'{"ok": true, "result": ' + (json.dumps(BOT_USER).encode() if name == "getMe" else b"true") + b"}"
        chat_id = params.get("chat_id", "")
        text_sent = params.get("text") or params.get("caption") or ""
        markup = params.get("reply_markup")
        chat = self.chats.get(chat_id)
        if chat is None:
            self.stray.append((chat_id, (text_sent, markup)))
        else:
            chat.arrive((text_sent, markup))
        sent = {"message_id": next(self._ids), "date": int(time.time()),
                "chat": {"id": int(chat_id), "type": "private"}, "from": BOT_USER, "text": text_sent}
        answer = json.dumps({"ok": True, "result": sent})
        if markup:  # Telegram echoes the keyboard; spliced in as sent rather than decoded and encoded again
            answer = answer[:-2] + ', "reply_markup": ' + markup + "}}"
        return answer.encode()


def signature(message: Message) -> Signature:
    """What must match between workers: the text with tracking codes and digits masked, the buttons."""
    masked = re.sub(r"\d", "0", TRACKING_CODE.sub("KN-CODE", message[0]))
    markup = json.loads(message[1]) if message[1] else {"inline_keyboard": []}
    return masked, tuple(b.get("callback_data", "") for row in markup["inline_keyboard"] for b in row)


# ---- workers -----------------------------------------------------------------------------------
@dataclass
class Worker:
    """One simulated person: sends a script's steps and waits for each step's replies."""

    user_id: int
    chat: Chat
    latencies: list[float] = field(default_factory=list)
    overlaps: int = 0  # steps sent while the chat's previous update was still being handled
    failure: str | None = None

    async def run(self, app: Application, script: list[tuple[str, str]],  # type: ignore[type-arg]
                  counts: list[int], pipeline: bool, busy: Callable[[int], bool]) -> None:
        """The whole script: each step after the previous one's replies, or all at once (`pipeline`)."""
        if pipeline:
            waiter = self.chat.expect(sum(counts))
            started = time.perf_counter()
            for kind, payload in script:
                await receive(app, json.dumps(raw_update(self.user_id, kind, payload)).encode())
            await self._wait(waiter, started, len(script))
            return
        for number, (kind, payload) in enumerate(script):
            if not await self.step(app, kind, payload, counts[number], busy):
                return

    async def step(self, app: Application, kind: str, payload: str, count: int,  # type: ignore[type-arg]
                   busy: Callable[[int], bool]) -> bool:
        """Send one step and wait for its `count` replies; False if they did not all come."""
        waiter = self.chat.expect(count)
        self.overlaps += busy(self.user_id)
        started = time.perf_counter()
        await receive(app, json.dumps(raw_update(self.user_id, kind, payload)).encode())
        return await self._wait(waiter, started, 1)

    async def _wait(self, waiter: asyncio.Future[float], started: float, steps: int) -> bool:
        """Wait for the replies; record the latency (per step when several were sent at once)."""
        try:
            arrived = await asyncio.wait_for(waiter, STEP_TIMEOUT)
        except TimeoutError:
            self.failure = f"no complete reply within {STEP_TIMEOUT:.0f} s after {len(self.chat.messages)} messages"
            return False
        self.latencies.extend([(arrived - started) / steps] * steps)
        return True


@dataclass
class Run:
    """What one bot's run measured."""

    wall: float
    cpu: float
    workers: list[Worker]
    unordered: int  # messages that differ, position by position, from the calibration worker's
    stray: int
    calls: Counter[str]  # Bot API calls by method, during the run

    @property
    def latencies(self) -> list[float]:
        """Every step's latency, all workers together."""
        return [latency for worker in self.workers for latency in worker.latencies]

    @property
    def steps(self) -> int:
        """Steps answered completely."""
        return len(self.latencies)


async def drive(app: Application, api: BenchBotAPI, script: list[tuple[str, str]],  # type: ignore[type-arg]
                expected: list[list[Signature]], args: argparse.Namespace,
                busy: Callable[[int], bool] = lambda _user: False, profiler: cProfile.Profile | None = None) -> Run:
    """All workers through the script on a started application; then every chat checked against `expected`."""
    people = [Worker(FIRST_USER + i, Chat()) for i in range(args.workers)]
    for person in people:
        api.chats[str(person.user_id)] = person.chat
    api.methods.clear()
    counts = [len(replies) for replies in expected]
    if profiler is not None:
        profiler.enable()
    cpu_started = time.process_time()
    started = time.perf_counter()
    if args.mode == "roundrobin":  # step k of every worker, one at a time, then step k+1
        for number, (kind, payload) in enumerate(script):
            for person in people:
                if person.failure is None:
                    await person.step(app, kind, payload, counts[number], busy)
    else:
        await asyncio.gather(*(person.run(app, script, counts, args.pipeline, busy) for person in people))
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if profiler is not None:
        profiler.disable()
    await asyncio.wait_for(app.update_queue.join(), STEP_TIMEOUT)  # nothing left half done
    reference = [sig for replies in expected for sig in replies]
    unordered = 0
    for person in people:
        received = [signature(message) for message in person.chat.messages]
        unordered += sum(a != b for a, b in zip(received, reference, strict=False))
        unordered += abs(len(received) - len(reference))
    return Run(wall, cpu, people, unordered, len(api.stray), Counter(api.methods))


# ---- the two bots ------------------------------------------------------------------------------
def bench_settings(folder: str, threads: int | None) -> Settings:
    """Settings for a fresh SQLite file in `folder`, as in production (synchronous=FULL pinned)."""
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=f"sqlite:///{folder}/kiennghi.db",
        telegram_bot_token=SecretStr(TOKEN), default_locale="vi", timezone="Asia/Ho_Chi_Minh",
        sqlite_synchronous="FULL",  # the default, pinned: SQLITE_SYNCHRONOUS must not change it
        store_threads=threads,
    )


async def calibrate(threads: int | None) -> list[list[Signature]]:
    """The replies of each step, from one worker alone on a throwaway store; checks the buttons it presses."""
    with tempfile.TemporaryDirectory(prefix="kiennghi-calibrate-") as folder:
        settings = bench_settings(folder, threads)
        core = build_core(settings)
        api = BenchBotAPI()
        chat = api.chats[str(FIRST_USER - 1)] = Chat()
        app = build_telegram_application(settings, core, request=api, rate_limit=False)
        expected: list[list[Signature]] = []
        offered: tuple[str, ...] = ()
        async with app:
            for kind, payload in DIALOG:
                if kind == "press" and payload not in offered:
                    raise SystemExit(f"calibration: button {payload!r} was not offered "
                                     f"(last reply: {chat.messages[-1][0][:120] if chat.messages else ''!r})")
                before = len(chat.messages)
                await app.process_update(Update.de_json(raw_update(FIRST_USER - 1, kind, payload), app.bot))
                replies = [signature(message) for message in chat.messages[before:]]
                if not replies:
                    raise SystemExit(f"calibration: no reply to {payload!r}")
                expected.append(replies)
                offered = next((buttons for _, buttons in reversed(replies) if buttons), offered)
        app.bot_data["host"].close()
        core.engine.dispose()
    return expected


@dataclass
class KiennghiRun:
    """The dialog run and what the store held afterwards."""

    run: Run
    journal: str
    synchronous: str
    threads: int
    stored: int
    codes: set[str]


async def run_kiennghi(args: argparse.Namespace) -> KiennghiRun:
    """The dialog through kiennghi's application, started as in production, updates on its queue."""
    expected = await calibrate(args.store_threads)
    with tempfile.TemporaryDirectory(prefix="kiennghi-bench-") as folder:
        settings = bench_settings(folder, args.store_threads)
        core = build_core(settings)  # the default durable store: WAL, synchronous=FULL
        with core.engine.connect() as connection:
            journal = str(connection.execute(text("PRAGMA journal_mode")).scalar())
            level = connection.execute(text("PRAGMA synchronous")).scalar()
            synchronous = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}.get(int(level or 0), "?")
        api = BenchBotAPI(args.rtt_ms / 1000)
        app = build_telegram_application(settings, core, request=api, rate_limit=False)
        chains = getattr(app.update_processor, "_chains", {})  # PerChatOrder's chats with an update in hand

        await app.initialize()
        if app.post_init:  # as run_polling does: command menus, the outbox scheduler
            await app.post_init(app)
        await app.start()
        profiler = cProfile.Profile() if args.profile else None
        try:
            run = await drive(app, api, DIALOG, expected, args, busy=chains.__contains__, profiler=profiler)
            if profiler is not None:
                profiler.dump_stats(args.profile)
            with new_session(core.engine) as session:
                stored = session.exec(select(func.count()).select_from(Concern)).one()
                codes = set(session.exec(select(Concern.tracking_code)).all())
        finally:
            await app.stop()
            await app.shutdown()
            if app.post_shutdown:
                await app.post_shutdown(app)
            core.engine.dispose()
    return KiennghiRun(run, journal, synchronous, store_threads(settings), stored, codes)


async def run_echo(args: argparse.Namespace) -> Run:
    """A bare python-telegram-bot echo bot, same fake API class, workers, feeding and round trip."""
    api = BenchBotAPI(args.rtt_ms / 1000)
    app = (ApplicationBuilder().token(TOKEN).request(api).get_updates_request(api)
           .concurrent_updates(MAX_CONCURRENT_UPDATES).build())

    async def echo(update: Update, _context: Any) -> None:
        """Send the text back."""
        assert update.message is not None and update.message.text is not None
        await update.message.reply_text(update.message.text)

    app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, echo))
    expected = [[signature((payload, None))] for _, payload in ECHO]
    await app.initialize()
    await app.start()
    try:
        return await drive(app, api, ECHO, expected, args)
    finally:
        await app.stop()
        await app.shutdown()


# ---- report ------------------------------------------------------------------------------------
def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    index = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


def describe(latencies: list[float]) -> str:
    """p50, p99 and max of latencies in seconds, as milliseconds."""
    ordered = sorted(latencies) or [0.0]
    return (f"p50 {percentile(ordered, 0.50) * 1e3:.2f} ms   p99 {percentile(ordered, 0.99) * 1e3:.2f} ms   "
            f"max {ordered[-1] * 1e3:.2f} ms")


def report(args: argparse.Namespace, kiennghi: KiennghiRun, echo: Run) -> int:
    """Print the figures and the checks; 1 if a check failed."""
    run = kiennghi.run
    total = len(DIALOG) * args.workers
    rate = run.steps / run.wall
    echo_rate = echo.steps / echo.wall
    feeding = {"concurrent": "every worker at once", "roundrobin": "step k of every worker, one at a time"}
    print(f"kiennghi dialog bench ({args.mode}: {feeding[args.mode]}; "
          + ("each worker sends all its steps at once" if args.pipeline
             else "a worker's next step after the previous one's replies")
          + "; updates on app.update_queue)")
    print(f"  store            SQLite file, journal_mode={kiennghi.journal}, synchronous={kiennghi.synchronous}; "
          f"one commit per step; store threads {kiennghi.threads}"
          + (" (inline on the event loop)" if kiennghi.threads == 0 else ""))
    print(f"  Bot API          offline fake, round trip {args.rtt_ms:g} ms per call; rate limiter off")
    print(f"  workers          {args.workers}")
    print(f"  steps            {run.steps} of {total} ({len(DIALOG)} per worker)")
    print(f"  wall time        {run.wall:.3f} s (CPU time {run.cpu:.3f} s: {run.cpu / run.wall:.0%} of wall)")
    print(f"  steps per second {rate:,.0f}")
    print(f"  step latency     {describe(run.latencies)}")
    calls = ", ".join(f"{name} {count / run.steps:.2f}" for name, count in run.calls.most_common())
    print(f"  Bot API calls    {calls} per step")
    overlaps = sum(person.overlaps for person in run.workers)
    print(f"  in order         {run.unordered} replies out of order or unexpected; {overlaps} steps sent while "
          "the chat's previous update was still in hand (PerChatOrder made them wait)")
    print(f"bare PTB echo bot ({echo.steps} text updates, concurrent_updates({MAX_CONCURRENT_UPDATES}), "
          "same fake API, workers and round trip)")
    print(f"  wall time        {echo.wall:.3f} s (CPU time {echo.cpu:.3f} s)")
    print(f"  updates/second   {echo_rate:,.0f}")
    print(f"  latency          {describe(echo.latencies)}")
    print(f"  in order         {echo.unordered} replies out of order or unexpected")
    print(f"ratio kiennghi steps/s ÷ echo updates/s = {rate / echo_rate:.3f}")
    if args.rtt_ms:
        met = rate >= 200 and run.unordered == 0
        print(f"target (≥ 200 steps/s at this round trip, 0 out of order): {'met' if met else 'NOT met'}")
    else:
        met = rate / echo_rate >= 0.25 and run.unordered == 0
        print(f"target (≥ 0.25 of the echo bot's rate, 0 out of order): {'met' if met else 'NOT met'}")

    failures = [f"worker {p.user_id}: {p.failure}" for p in run.workers + echo.workers if p.failure]
    if kiennghi.stored != args.workers:
        failures.append(f"{kiennghi.stored} concerns in the store, expected {args.workers}")
    shown = {person.user_id: set(TRACKING_CODE.findall(" ".join(t for t, _ in person.chat.messages)))
             for person in run.workers}
    missing = [user for user, seen in shown.items() if len(seen & kiennghi.codes) != 1]
    if missing:
        failures.append(f"{len(missing)} workers were not shown exactly one stored tracking code, e.g. {missing[:5]}")
    if len(set().union(*shown.values())) != args.workers:
        failures.append("workers were shown the same tracking code")
    if run.unordered or echo.unordered:
        failures.append(f"replies out of order or unexpected: kiennghi {run.unordered}, echo {echo.unordered}")
    if run.stray or echo.stray:
        failures.append(f"messages to unknown chats: kiennghi {run.stray}, echo {echo.stray}")
    if echo.steps != total:
        failures.append(f"echo bot answered {echo.steps} of {total} updates")
    if failures:
        sys.stdout.flush()
        for failure in failures[:20]:
            print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    print(f"verified: {kiennghi.stored} concerns stored, each worker shown its own tracking code, "
          "every chat's replies in the calibrated order")
    return 0


async def main_async(args: argparse.Namespace) -> int:
    """Both runs, then the report."""
    kiennghi = await run_kiennghi(args)
    echo = await run_echo(args)
    return report(args, kiennghi, echo)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--workers", type=int, default=200, help="simulated workers (default 200)")
    parser.add_argument("--rtt-ms", type=float, default=0.0,
                        help="simulated Bot API round trip per call, in milliseconds (default 0)")
    parser.add_argument("--store-threads", type=int, default=None,
                        help="the store_threads setting: 0 = the store inline on the event loop "
                             "(default: the setting's default, 1 for SQLite)")
    parser.add_argument("--mode", choices=("concurrent", "roundrobin"), default="concurrent",
                        help="every worker at once (default), or step k of every worker one at a time")
    parser.add_argument("--pipeline", action="store_true",
                        help="concurrent mode only: each worker sends all its steps without waiting "
                             "(tests the per-chat order under load; latency is then per step, averaged)")
    parser.add_argument("--profile", metavar="FILE",
                        help="run kiennghi's dialogs under cProfile and write the stats to FILE (the figures "
                             "printed are then slowed by the profiler; summarise with profile_summary.py)")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if args.rtt_ms < 0:
        parser.error("--rtt-ms must not be negative")
    if args.store_threads is not None and args.store_threads < 0:
        parser.error("--store-threads must not be negative")
    if args.pipeline and args.mode != "concurrent":
        parser.error("--pipeline needs --mode concurrent")
    return args


def main() -> int:
    """Run the bench from the command line."""
    return asyncio.run(main_async(parse_args()))


if __name__ == "__main__":
    sys.exit(main())
