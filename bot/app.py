"""The one place that wires kiennghi together, in order, top to bottom."""

from __future__ import annotations

import asyncio
import unicodedata
from typing import Any

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, TypeHandler
from telegram.request import BaseRequest

from bot.channels.telegram import PerChatOrder, TelegramChannel, error_handler, on_update
from bot.config import Settings
from bot.host import Host
from bot.scheduler import start_scheduler
from bot.sender import Limits, OutboxSender
from handlers import admin, agency, conferences, officer, worker
from handlers.core import Policy
from handlers.dispatch import Core
from handlers.routing import Routes
from handlers.rules.calendar import Calendar, ReminderPolicy
from locales import Catalogs
from storage.cases import cancel_stale
from storage.db import create_db_engine, new_session
from storage.reference import read_reference_file, sync_reference

# The routers, in the order their commands are looked up: staff roles first, then everyone's.
ROUTERS = (admin.router, officer.router, conferences.router, agency.router, worker.router)
MAX_CONCURRENT_UPDATES = 256


def build_policy(settings: Settings) -> Policy:
    """What handlers may know of the settings (limits, deadlines, time zone), without secrets."""
    return Policy(
        zone=settings.zone, default_locale=settings.default_locale, admin_ids=frozenset(settings.admin_ids),
        flood_messages=settings.flood_messages, flood_window_seconds=settings.flood_window_seconds,
        daily_concern_limit=settings.daily_concern_limit, invitation_days=settings.invitation_days,
        default_deadline_days=settings.default_deadline_days, reopen_days=settings.reopen_days,
        retention_months=settings.retention_months,
        federation_vi=unicodedata.normalize("NFC", settings.federation_name), federation_en=settings.federation_name_en,
        reminders=ReminderPolicy(
            calendar=Calendar(extra_days_off=settings.extra_days_off), hour=settings.reminder_time,
            stages=settings.reminder_stages, escalation_every_days=settings.escalation_every_days,
            arrivals_minutes=settings.new_concerns_every_minutes, working_hours=settings.working_hours,
            quiet_hours=settings.quiet_hours),
    )


def build_core(settings: Settings) -> Core:
    """Open the store, load the reference data, the catalogs and the routes; the core every channel uses."""
    engine = create_db_engine(settings.database_url, synchronous=settings.sqlite_synchronous)
    reference = read_reference_file(settings.reference_file)
    with new_session(engine) as session:
        sync_reference(reference, session=session)
        cancel_stale(session=session)  # older stores kept withdrawn concerns' assignments pending
        session.commit()
    catalogs = Catalogs(settings.default_locale, settings.zone)
    return Core(engine, Routes(ROUTERS), build_policy(settings), catalogs)


def store_threads(settings: Settings) -> int:
    """Threads for the store's work: none for SQLite, several for PostgreSQL.

    SQLite answers in microseconds from a local file and has one writer at a time: on the event loop
    it handles about 22 % more steps per second than in a thread (GIL hand-offs; see README,
    Benchmark). PostgreSQL answers over the network: its round trips must not stall the loop."""
    if settings.store_threads is not None:
        return settings.store_threads
    return 0 if settings.database_url.startswith("sqlite") else 8


def build_telegram_application(
    settings: Settings, core: Core, *, request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None, rate_limit: bool = True,
) -> Application:
    """The python-telegram-bot application: chats handled concurrently, each in order; services on start."""
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    builder = (ApplicationBuilder().token(token).post_init(start_services).post_shutdown(stop_services)
               .concurrent_updates(PerChatOrder(MAX_CONCURRENT_UPDATES)))
    if settings.telegram_base_url:
        base = settings.telegram_base_url.rstrip("/")
        builder = builder.base_url(base)
        if base.endswith("/bot"):
            builder = builder.base_file_url(base[: -len("/bot")] + "/file/bot")
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    application: Application[Any, Any, Any, Any, Any, Any] = (
        builder.rate_limiter(AIORateLimiter()).build() if rate_limit else builder.build())
    host = Host(core, threads=store_threads(settings))
    channel = TelegramChannel(application.bot, host)
    application.bot_data.update(
        core=core, host=host, channel=channel, catalogs=core.catalogs,
        sender=build_sender(settings, core, channel),
        outbox_interval=settings.outbox_interval_seconds, outbox_keep_days=settings.outbox_keep_days,
        sweep_seconds=settings.sweep_seconds,
    )
    application.add_handler(TypeHandler(Update, on_update))
    application.add_error_handler(error_handler)
    return application


def build_sender(settings: Settings, core: Core, channel: TelegramChannel) -> OutboxSender:
    """The outbox sender within Telegram's limits, its store work in its own thread(s)."""
    limits = Limits(settings.telegram_messages_per_second, settings.telegram_chat_messages_per_second)
    threads = 1 if settings.database_url.startswith("sqlite") else 4  # SQLite: one writer at a time
    return OutboxSender(core.engine, {channel.messenger: channel.deliver}, limits={channel.messenger: limits},
                        threads=threads)


async def run_sender(application: Application, sender: OutboxSender) -> None:
    """Run the sender while the application runs. It starts once the application is running
    (post_init comes before), as a task that `Application.stop()` waits for; it stops claiming
    messages as soon as the application stops, and finishes those under way before the shutdown."""
    while not application.running:
        await asyncio.sleep(0.05)
    await application.create_task(sender.run(until=lambda: not application.running))


async def start_services(application: Application) -> None:
    """Invitation links and command menus, the outbox sender and the scheduler (post_init)."""
    core: Core = application.bot_data["core"]
    channel: TelegramChannel = application.bot_data["channel"]
    sender: OutboxSender = application.bot_data["sender"]
    host: Host = application.bot_data["host"]
    channel.username = application.bot.username
    core.invitation_links[channel.messenger] = channel.invitation_link
    await channel.set_command_menus(core.catalogs, core.policy.default_locale)
    application.bot_data["scheduler"] = start_scheduler(
        core.engine, sender, interval_seconds=application.bot_data["outbox_interval"],
        keep_sent_days=application.bot_data["outbox_keep_days"], core=core,
        sweep_seconds=application.bot_data["sweep_seconds"], retention_months=core.policy.retention_months)
    application.bot_data["sender_task"] = asyncio.create_task(run_sender(application, sender))
    host.on_queued = sender.kick


async def stop_services(application: Application) -> None:
    """Stop the scheduler, the sender, the store's threads, and close the store (post_shutdown)."""
    scheduler = application.bot_data.pop("scheduler", None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)
    sender_task = application.bot_data.pop("sender_task", None)
    if sender_task is not None:
        sender_task.cancel()
    await application.bot_data["sender"].close()
    application.bot_data["host"].close()
    application.bot_data["core"].engine.dispose()
