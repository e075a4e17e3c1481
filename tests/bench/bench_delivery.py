"""Outbox delivery under Telegram's limits: how close the sender gets to 30 messages a second.

A script, not a test (pytest collects only test_*.py): run it from the repository root with

    python tests/bench/bench_delivery.py [--messages 3000] [--chats 1000] [--rtt-ms 100]
                                         [--layout both|interleaved|in-a-row] [--database-url URL]
                                         [--no-rate-limiter]

The outbox holds `--messages` messages for `--chats` chats (three each by default), queued
either interleaved (every chat's first message, then every chat's second...) or three in a row
per chat. The bot is kiennghi's real python-telegram-bot application, wired as in production
(`build_telegram_application`: its `OutboxSender` with TELEGRAM_MESSAGES_PER_SECOND=30 and
TELEGRAM_CHAT_MESSAGES_PER_SECOND=1, python-telegram-bot's AIORateLimiter in front of the Bot API
unless `--no-rate-limiter`), on a durable store (a fresh SQLite file, WAL, synchronous=FULL, or
`--database-url`). The fake Bot API (tests/fake_telegram.py) enforces Telegram's flood limits as
calls arrive: more than 30 sends in any second, or two to one chat within a second, are answered
429 with a retry_after; each call takes `--rtt-ms` before its answer. `OutboxSender.drain()`
sends everything, in real time (3,000 messages at 30/s take about 100 s a layout).

Printed per layout: messages per second as a fraction of 30/s (target >= 0.95), 429s provoked
(target 0), messages out of order within a chat (target 0), and checks: every message delivered
exactly once and marked sent, the busiest second, the closest two sends to one chat.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make `bot`, `storage`, `tests` importable
    sys.path.insert(0, str(ROOT))

from sqlmodel import func, select  # noqa: E402

from bot.app import build_core, build_telegram_application  # noqa: E402
from bot.config import Settings  # noqa: E402
from bot.sender import OutboxSender  # noqa: E402
from storage.db import new_session  # noqa: E402
from storage.models import OutboxMessage  # noqa: E402
from tests.fake_telegram import FakeBotAPI  # noqa: E402

LIMIT = 30  # Telegram: messages per second overall
FIRST_CHAT = 5_000_000


def queue_messages(core: Any, layout: str, messages: int, chats: int) -> None:
    """Fill the outbox: "chat <c> message <n>" for n = 1.. per chat, in the layout's order."""
    per_chat = -(-messages // chats)
    if layout == "interleaved":
        order = [(chat, n) for n in range(1, per_chat + 1) for chat in range(chats)]
    else:
        order = [(chat, n) for chat in range(chats) for n in range(1, per_chat + 1)]
    with new_session(core.engine) as session:
        session.add_all(OutboxMessage(messenger="telegram", chat_id=str(FIRST_CHAT + chat),
                                      text=f"chat {chat} message {n}") for chat, n in order[:messages])
        session.commit()


async def run_layout(args: argparse.Namespace, layout: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kiennghi-bench-") as folder:
        settings = Settings(_env_file=None, telegram_bot_token="123456:BENCH",  # type: ignore[call-arg]
                            database_url=args.database_url or f"sqlite:///{folder}/kiennghi.db")
        core = build_core(settings)
        with new_session(core.engine) as session:
            if session.exec(select(func.count()).select_from(OutboxMessage)).one():
                raise SystemExit("the outbox of --database-url is not empty: give the bench an empty database")
        api = FakeBotAPI(round_trip=args.rtt_ms / 1000, limits=(LIMIT, 1))
        app = build_telegram_application(settings, core, request=api, rate_limit=not args.no_rate_limiter)
        await app.initialize()
        sender: OutboxSender = app.bot_data["sender"]
        try:
            queue_messages(core, layout, args.messages, args.chats)
            started = time.monotonic()
            sent = await sender.drain()
            wall = time.monotonic() - started
            with new_session(core.engine) as session:
                statuses = dict(Counter(session.exec(select(OutboxMessage.status)).all()))
                stored = session.exec(select(func.count()).select_from(OutboxMessage)).one()
        finally:
            await sender.close()
            await app.shutdown()
            core.engine.dispose()
    delivered = api.delivered()
    per_chat: dict[str, list[int]] = defaultdict(list)
    times: dict[str, list[float]] = defaultdict(list)
    for attempt in delivered:
        per_chat[attempt.chat_id].append(int(attempt.text.rsplit(" ", 1)[1]))
        times[attempt.chat_id].append(attempt.at)
    out_of_order = 0
    for numbers in per_chat.values():
        highest = 0
        for number in numbers:
            out_of_order += number < highest
            highest = max(highest, number)
    copies = Counter((chat, n) for chat, numbers in per_chat.items() for n in numbers)
    closest = min((b - a for ts in times.values() for a, b in zip(ts, ts[1:], strict=False)), default=float("inf"))
    spread = delivered[-1].at - delivered[0].at if len(delivered) > 1 else 0.0
    return {
        "layout": layout, "wall": wall, "sent": sent, "delivered": len(delivered), "stored": stored,
        "statuses": statuses, "rate": len(delivered) / wall, "steady": (len(delivered) - 1) / spread if spread else 0.0,
        "429": sum(1 for a in api.attempts if a.outcome == "429"), "out_of_order": out_of_order,
        "duplicates": sum(count - 1 for count in copies.values()), "busiest": api.busiest_second(),
        "closest": closest,
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> bool:
    fraction = result["rate"] / LIMIT
    met = (fraction >= 0.95 and result["429"] == 0 and result["out_of_order"] == 0 and result["duplicates"] == 0
           and result["delivered"] == args.messages and result["statuses"] == {"sent": args.messages})
    layout = "interleaved (every chat's 1st, then 2nd...)" if result["layout"] == "interleaved" else \
        "three in a row per chat"
    limiter = "off" if args.no_rate_limiter else "on"
    store = args.database_url or "SQLite file, WAL, synchronous=FULL"
    print(f"""\
outbox delivery bench: {args.messages:,} messages to {args.chats:,} chats, {layout}
  bot API (fake)      {args.rtt_ms:.0f} ms round trip; enforces {LIMIT}/s overall and 1/s per chat (429 beyond)
  sender              OutboxSender as wired by build_telegram_application (30/s, 1/s per chat);
                      AIORateLimiter {limiter}; store {store}
  wall time           {result["wall"]:.1f} s (drain() until everything was sent)
  messages/second     {result["rate"]:.2f} = {fraction:.3f} of {LIMIT}/s (first to last send: {result["steady"]:.2f}/s)
  429s provoked       {result["429"]}
  out of order        {result["out_of_order"]} (messages that arrived after a later one to their chat)
  delivered           {result["delivered"]:,} ({result["duplicates"]} twice); stored statuses {result["statuses"]}
  busiest second      {result["busiest"]} sends; closest two sends to one chat {result["closest"]:.3f} s
  target (>= 0.95 of 30/s, 0 × 429, 0 out of order): {"met" if met else "NOT met"}
""")
    return met


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--chats", type=int, default=1000)
    parser.add_argument("--rtt-ms", type=float, default=100.0)
    parser.add_argument("--layout", choices=["both", "interleaved", "in-a-row"], default="both")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--no-rate-limiter", action="store_true", help="without python-telegram-bot's AIORateLimiter")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    layouts = ["interleaved", "in-a-row"] if args.layout == "both" else [args.layout]
    results = [await run_layout(args, layout) for layout in layouts]
    return 0 if all([report(args, result) for result in results]) else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
