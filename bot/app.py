"""The one place that wires kiennghi together, in order, top to bottom."""

from __future__ import annotations

from functools import partial

from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, TypeHandler
from telegram.request import BaseRequest

from bot.channels import telegram as telegram_channel
from bot.config import Settings
from locales import Catalogs
from bot.scheduler import OutboxSender, start_scheduler
from handlers.dispatch import Core
from storage.db import create_db_engine, new_session
from storage.reference import read_reference_file, sync_reference


def build_core(settings: Settings) -> Core:
    """Open the store, load the reference data and the catalogs; the core every channel uses."""
    engine = create_db_engine(settings.database_url, synchronous=settings.sqlite_synchronous)
    reference = read_reference_file(settings.reference_file)
    with new_session(engine) as session:
        sync_reference(reference, session=session)
    catalogs = Catalogs(settings.default_locale, settings.zone)
    return Core(engine, settings, catalogs)


def build_telegram_application(
    settings: Settings, core: Core, *, request: BaseRequest | None = None,
    updates_request: BaseRequest | None = None, rate_limit: bool = True,
) -> Application:  # type: ignore[type-arg]
    """The python-telegram-bot application: one handler for every update, services on start."""
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    builder = ApplicationBuilder().token(token).post_init(start_services).post_shutdown(stop_services)
    if settings.telegram_base_url:
        base = settings.telegram_base_url.rstrip("/")
        builder = builder.base_url(base)
        if base.endswith("/bot"):
            builder = builder.base_file_url(base[: -len("/bot")] + "/file/bot")
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    if rate_limit:
        builder = builder.rate_limiter(AIORateLimiter())
    application = builder.build()
    application.bot_data["core"] = core
    application.bot_data["sender"] = OutboxSender(
        core.engine, {telegram_channel.MESSENGER: partial(telegram_channel.deliver, application.bot)})
    application.add_handler(TypeHandler(Update, telegram_channel.on_update))
    application.add_error_handler(telegram_channel.error_handler)
    return application


async def start_services(application: Application) -> None:  # type: ignore[type-arg]
    """Command menus, then the scheduler that drains the outbox (post_init)."""
    core: Core = application.bot_data["core"]
    sender: OutboxSender = application.bot_data["sender"]
    await telegram_channel.set_command_menus(application, core)
    application.bot_data["scheduler"] = start_scheduler(
        core.engine, sender, interval_seconds=core.settings.outbox_interval_seconds)
    application.bot_data["kick_outbox"] = lambda: application.create_task(sender.drain())


async def stop_services(application: Application) -> None:  # type: ignore[type-arg]
    """Stop the scheduler and close the store (post_shutdown)."""
    scheduler = application.bot_data.pop("scheduler", None)
    if scheduler is not None:
        scheduler.shutdown(wait=False)
    application.bot_data["core"].engine.dispose()
