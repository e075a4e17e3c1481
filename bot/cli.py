"""The `kiennghi` command: `run` (Telegram and/or Zalo), `shell` (a terminal, no network) and `export`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from bot.config import Settings, SettingsError, load_settings
from bot.logs import configure_logging
from storage.reference import ReferenceError


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; exit code 2 for a bad setting."""
    parser = argparse.ArgumentParser(prog="kiennghi", description="Workers' concerns to the Labour Federation.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the bot on every messenger with a token (Telegram, Zalo; long polling)")
    commands.add_parser("serve", help="run the bot behind a web server: webhooks, /healthz and /metrics on HOST:PORT")
    shell = commands.add_parser("shell", help="talk to the bot in this terminal, without a token")
    shell.add_argument("--as", dest="as_role", default="worker", metavar="ROLE",
                       help="worker (default), officer, agency:<agency code> or admin")
    export = commands.add_parser("export", help="write the annex of the concerns (no names) to an XLSX or CSV file")
    export.add_argument("file", help="where to write it: a name ending in .xlsx or .csv")
    export.add_argument("--session", type=int, metavar="N", help="only the concerns of dialogue session N")
    export.add_argument("--from", dest="first", metavar="DD/MM/YYYY", help="only concerns raised on or after")
    export.add_argument("--to", dest="last", metavar="DD/MM/YYYY", help="only concerns raised on or before")
    export.add_argument("--language", choices=["vi", "en"], help="of the headers and names (default: DEFAULT_LOCALE)")
    export.add_argument("--with-names", action="store_true",
                        help="add who raised each concern (personal data; never for anonymous concerns)")
    purge = commands.add_parser("purge", help="remove who raised concerns finished long ago (personal data rules)")
    purge.add_argument("--older-than", dest="months", type=int, required=True, metavar="MONTHS",
                       help="concerns finished (closed, rejected, withdrawn) more than this many months ago")
    purge.add_argument("--dry-run", action="store_true", help="only say how many concerns would change")
    imports = commands.add_parser("import", help="enter the concerns raised at a dialogue session from a spreadsheet")
    imports.add_argument("file", help="an .xlsx or .csv file with the export's columns that apply")
    imports.add_argument("--session", required=True, metavar="NAME", help="the dialogue session (its name or number)")
    imports.add_argument("--skip-invalid", action="store_true", help="import the valid rows even if some are not")
    reference = commands.add_parser("reference", help="the reference data (topics, places, agencies)")
    reference.add_argument("action", choices=["reload"], help="reload: check REFERENCE_FILE and load it into the store")
    backup = commands.add_parser("backup", help="a consistent copy of the SQLite store, while the bot runs")
    backup.add_argument("path", help="the file to write the copy to")
    database = commands.add_parser("db", help="the store's schema (migrations)")
    database.add_argument("action", choices=["upgrade", "current"],
                          help="upgrade: apply the pending migrations to DATABASE_URL; current: show its revision")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
        if args.command == "run":
            return run_bot(settings)
        if args.command == "serve":
            return run_server(settings)
        if args.command == "export":
            return run_export(settings, args)
        if args.command == "purge":
            return run_purge(settings, args.months, dry_run=args.dry_run)
        if args.command == "import":
            return run_import(settings, args.file, args.session, skip_invalid=args.skip_invalid)
        if args.command == "reference":
            return run_reference_reload(settings)
        if args.command == "backup":
            return run_backup(settings, args.path)
        if args.command == "db":
            return run_db(settings, args.action)
        return run_shell(settings, args.as_role)
    except (SettingsError, ReferenceError) as exc:
        print(f"kiennghi: {exc}", file=sys.stderr)
        return 2


def run_bot(settings: Settings) -> int:
    """Run the bot on every messenger that has a token, with long polling, until interrupted."""
    if not settings.messengers:
        raise SettingsError("Missing setting TELEGRAM_BOT_TOKEN or ZALO_BOT_TOKEN: set one or both "
                            "(a Telegram bot from @BotFather, a Zalo bot from Zalo Bot Creator)")
    configure_logging(settings.log_format)
    from bot.app import run_messengers

    asyncio.run(run_messengers(settings))
    return 0


def run_server(settings: Settings) -> int:
    """Serve the webhooks, /healthz and /metrics on HOST:PORT until SIGINT or SIGTERM."""
    from bot.app import serve

    configure_logging(settings.log_format)
    return serve(settings)  # a missing setting is refused before anything is opened


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


def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the annex of a session or a date range, as `/export` sends it in chat."""
    from datetime import date, datetime, timedelta

    from bot.app import build_core
    from handlers.core import parse_date
    from handlers.rules.reports import start_of_day, write_report
    from storage.db import new_session
    from storage.models import DialogueSession
    from storage.reports import Scope

    if not args.file.endswith((".xlsx", ".csv")):
        raise SettingsError(f"Invalid file name {args.file!r}: it must end in .xlsx or .csv")
    days: dict[str, date | None] = {}
    for name, typed in (("--from", args.first), ("--to", args.last)):
        if typed is not None and (days.setdefault(name, parse_date(typed)) is None):
            raise SettingsError(f"Invalid {name} {typed!r}: write the date as DD/MM/YYYY")
    core = build_core(settings)
    t = core.catalogs.get(args.language or settings.default_locale)

    def start_of(day: date | None) -> datetime | None:
        return start_of_day(day, settings.zone) if day else None

    last = days.get("--to")
    scope = Scope(session_id=args.session, since=start_of(days.get("--from")),
                  until=start_of(last + timedelta(days=1)) if last else None)
    with new_session(core.engine) as session:
        title = t("Summary of workers' opinions, concerns and proposals")
        if args.session is not None:
            dialogue = session.get(DialogueSession, args.session)
            if dialogue is None:
                raise SettingsError(f"Invalid --session {args.session}: there is no such dialogue session")
            title += " – " + t("Dialogue session: {name}", name=dialogue.name)
        today = datetime.now(settings.zone).date()
        if args.file.endswith(".csv"):  # UTF-8 with BOM: spreadsheet programs then read Vietnamese right
            with open(args.file, "w", encoding="utf-8-sig", newline="") as out:
                count = write_report(out, t, scope, title, today=today, session=session, as_csv=True,
                                     with_authors=args.with_names)
        else:
            with open(args.file, "wb") as binary:
                count = write_report(binary, t, scope, title, today=today, session=session,
                                     with_authors=args.with_names)
    if args.with_names:
        print(f"kiennghi: {count} concerns written to {args.file}, with the names of those who raised them "
              "(none for anonymous concerns): personal data, keep the file safe")
    else:
        print(f"kiennghi: {count} concerns written to {args.file} (no names of those who raised them)")
    return 0


def run_purge(settings: Settings, months: int, *, dry_run: bool) -> int:
    """Anonymise concerns finished more than `months` ago: the content stays, who raised them goes."""
    from bot.app import build_core
    from bot.scheduler import anonymise_old_concerns, months_before
    from storage.concerns import anonymise_finished
    from storage.db import new_session
    from storage.models import utcnow

    if months < 1:
        raise SettingsError(f"Invalid --older-than {months}: give a number of months, 1 or more")
    core = build_core(settings)
    if dry_run:
        with new_session(core.engine) as session:  # counted in one transaction, then rolled back
            changed = anonymise_finished(months_before(utcnow(), months), session=session, limit=10**9)
            session.rollback()
        print(f"kiennghi: {changed} concerns would lose who raised them (dry run: nothing changed)")
        return 0
    changed = anonymise_old_concerns(core.engine, retention_months=months)
    print(f"kiennghi: {changed} concerns no longer name who raised them")
    return 0


def run_import(settings: Settings, file: str, session_name: str, *, skip_invalid: bool) -> int:
    """Check every row of the file, then store the valid ones as concerns of the session (none twice)."""
    import unicodedata
    from pathlib import Path

    from sqlmodel import select

    from bot.app import build_core
    from handlers.rules.imports import check_rows, read_table, store_rows
    from storage.db import new_session
    from storage.models import DialogueSession

    path = Path(file)
    if path.suffix.lower() not in (".xlsx", ".csv") or not path.is_file():
        raise SettingsError(f"Invalid file {file!r}: give an existing .xlsx or .csv file")
    core = build_core(settings)
    with new_session(core.engine) as session:
        name = unicodedata.normalize("NFC", session_name.strip())
        dialogue = session.exec(select(DialogueSession).where(DialogueSession.name == name)).first()
        if dialogue is None and name.isdigit():
            dialogue = session.get(DialogueSession, int(name))
        if dialogue is None:
            raise SettingsError(f"Invalid --session {session_name!r}: no dialogue session has this name or number "
                                "(create it in chat with /session new)")
        try:
            rows, problems = check_rows(read_table(path), session=session)
        except Exception as exc:  # an unreadable file: say what, not a traceback
            raise SettingsError(f"Invalid file {file!r}: {exc}") from None
        for problem in problems[:100]:
            print(f"row {problem.row}, column {problem.column}: {problem.reason}", file=sys.stderr)
        if problems and not skip_invalid:
            print(f"kiennghi: {len(problems)} problems; nothing was imported (fix them, or use --skip-invalid)",
                  file=sys.stderr)
            return 1

        def progress(done: int) -> None:
            if done % 100 == 0 or done == len(rows):
                print(f"\rkiennghi: {done}/{len(rows)} rows", end="", file=sys.stderr, flush=True)

        stored = store_rows(rows, dialogue, session=session, progress=progress)
        session.commit()
    print(file=sys.stderr)  # ends the progress line
    print(f"kiennghi: {stored} concerns imported into “{dialogue.name}”, "
          f"{len(rows) - stored} already there, {len(problems)} rows skipped")
    return 0


def run_reference_reload(settings: Settings) -> int:
    """Check the reference file and make the store match it (a running bot then takes it with /reload)."""
    from bot.app import build_core  # it loads the file into the store, or refuses it with the reason
    from storage.db import new_session
    from storage.reference import list_items

    core = build_core(settings)
    with new_session(core.engine) as session:
        counts = {kind: len(list_items(kind, session=session)) for kind in ("category", "industrial_park",
                                                                            "district", "agency")}
    print("kiennghi: reference data loaded: " + ", ".join(f"{n} {kind}" for kind, n in counts.items()))
    return 0


def run_backup(settings: Settings, path: str) -> int:
    """Copy the SQLite store with SQLite's online backup API (consistent while the bot writes)."""
    import sqlite3
    from contextlib import closing

    from sqlalchemy.engine import make_url

    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database:
        raise SettingsError("Invalid DATABASE_URL for kiennghi backup: it copies SQLite stores; "
                            "for PostgreSQL use pg_dump (see README)")
    with closing(sqlite3.connect(url.database)) as source, closing(sqlite3.connect(path)) as target:
        source.backup(target)
    print(f"kiennghi: the store was copied to {path}")
    return 0


def run_db(settings: Settings, action: str) -> int:
    """Apply the pending migrations (as every start does) and say which, or show the store's revision."""
    from storage.db import create_db_engine, upgrade_store
    from storage.migrations import current_revision, head_revision

    engine = create_db_engine(settings.database_url, synchronous=settings.sqlite_synchronous, upgrade=False)
    try:
        if action == "upgrade":
            for line in upgrade_store(engine):
                print(f"kiennghi: {line}")
        with engine.connect() as connection:
            current = current_revision(connection)
    finally:
        engine.dispose()
    head = head_revision()
    state = "up to date" if current == head else f"the newest revision is {head}: run kiennghi db upgrade"
    print(f"kiennghi: the store is at revision {current or 'none'} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
