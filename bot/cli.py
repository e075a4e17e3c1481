"""The `kiennghi` command: `run` (Telegram and/or Zalo) and `shell` (a terminal, no network)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import Settings, SettingsError, load_settings
from storage.reference import ReferenceError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; exit code 2 for a bad setting."""
    parser = argparse.ArgumentParser(prog="kiennghi", description="Workers' concerns to the Labour Federation.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot on every messenger with a token (Telegram, Zalo; long polling)")
    shell = commands.add_parser("shell", help="talk to the bot in this terminal, without a token")
    shell.add_argument("--as", dest="as_role", default="worker", metavar="ROLE",
                       help="worker (default), officer, agency:<agency code> or admin")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            return run_bot(settings)
        return run_shell(settings, args.as_role)
    except (SettingsError, ReferenceError) as exc:
        print(f"kiennghi: {exc}", file=sys.stderr)
        return 2


def run_bot(settings: Settings) -> int:
    """Run the bot on every messenger that has a token, with long polling, until interrupted."""
    if not settings.messengers:
        raise SettingsError("Missing setting TELEGRAM_BOT_TOKEN or ZALO_BOT_TOKEN: set one or both "
                            "(a Telegram bot from @BotFather, a Zalo bot from Zalo Bot Creator)")
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    # httpx logs every request at INFO, with its URL, and a Bot API's URL holds the token.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs every run of every job at INFO: a timer firing is not news.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    from bot.app import run_messengers

    asyncio.run(run_messengers(settings))
    return 0


def run_shell(settings: Settings, as_role: str) -> int:
    """Talk to the bot on standard input and output, as a worker or as staff."""
    from bot.app import build_core
    from bot.channels.terminal import run_terminal, take_role

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    core = build_core(settings)
    try:
        user_id = take_role(core, as_role)
    except ValueError as exc:
        raise SettingsError(f"Invalid --as {as_role!r}: {exc}") from None
    run_terminal(core, sys.stdin, sys.stdout, user_id=user_id, prompt=sys.stdin.isatty())
    return 0


if __name__ == "__main__":
    sys.exit(main())
