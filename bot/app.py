"""The one place that wires kiennghi together, in order, top to bottom."""

from __future__ import annotations

import asyncio
import logging
import signal
import unicodedata
import warnings
from collections.abc import AsyncIterator, Coroutine, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram import Update
from telegram.ext import AIORateLimiter, Application, ApplicationBuilder, TypeHandler
from telegram.request import BaseRequest
from telegram.warnings import PTBUserWarning

from bot.channels import Channel
from bot.channels.telegram import MESSENGER as TELEGRAM
from bot.channels.telegram import PerChatOrder, TelegramChannel, error_handler, on_update
from bot.channels.zalo import ZaloBotAPI, ZaloChannel
from bot.channels.zalo_oa import OATokens, Store, ZaloOAAPI, ZaloOAChannel
from bot.config import Settings, SettingsError, load_settings
from bot.host import Host
from bot.metrics import exposition
from bot.polling import ALLOWED_UPDATES, run_polling, stop_on_signals
from bot.scheduler import start_scheduler
from bot.sender import Limits, OutboxSender
from bot.webhooks import telegram_route, zalo_oa_route, zalo_route
from handlers import admin, agency, conferences, officer, reports, worker
from handlers.core import Policy
from handlers.dispatch import Core
from handlers.routing import Routes
from handlers.rules.calendar import Calendar, ReminderPolicy
from locales import Catalogs
from storage.cases import cancel_stale
from storage.db import create_db_engine, new_session
from storage.outbox import count_pending
from storage.reference import read_reference_file, sync_reference
from storage.zalo_oa import seed_token

log = logging.getLogger(__name__)
# Updates still queued when the webhook app stops are handled as tasks made after `running` turned false;
# python-telegram-bot warns that it will not await them, but `Application.stop()` waits for every queued
# update all the same (`update_queue.join()`).
warnings.filterwarnings("ignore", message=r"Tasks created via `Application\.create_task` while the application is "
                        "not running", category=PTBUserWarning)

# The routers, in the order their commands are looked up: staff roles first, then everyone's.
ROUTERS = (admin.router, officer.router, conferences.router, reports.router, agency.router, worker.router)
MAX_CONCURRENT_UPDATES = 256


def build_policy(settings: Settings) -> Policy:
    """What handlers may know of the settings (limits, deadlines, time zone), without secrets."""
    return Policy(
        zone=settings.zone, default_locale=settings.default_locale, admin_ids=frozenset(settings.admin_ids),
        flood_messages=settings.flood_messages, flood_window_seconds=settings.flood_window_seconds,
        daily_concern_limit=settings.daily_concern_limit, invitation_days=settings.invitation_days,
        default_deadline_days=settings.default_deadline_days, reopen_days=settings.reopen_days,
        retention_months=settings.retention_months, reference_file=settings.reference_file,
        federation_vi=unicodedata.normalize("NFC", settings.federation_name), federation_en=settings.federation_name_en,
        reminders=ReminderPolicy(
            calendar=Calendar(extra_days_off=settings.extra_days_off), hour=settings.reminder_time,
            stages=settings.reminder_stages, escalation_every_days=settings.escalation_every_days,
            arrivals_minutes=settings.new_concerns_every_minutes, working_hours=settings.working_hours,
            quiet_hours=settings.quiet_hours,
            federation=(unicodedata.normalize("NFC", settings.federation_name), settings.federation_name_en)),
        command_menus=frozenset({TELEGRAM}),
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
    updates_request: BaseRequest | None = None, rate_limit: bool = True, host: Host | None = None,
    others: Sequence[Channel] = (), webhook: bool = False,
) -> Application:
    """The python-telegram-bot application: chats handled concurrently, each in order; the services
    (outbox sender for Telegram and the `others` channels, scheduler) start and stop with it.
    `webhook`: without an updater; the web server puts updates on its update queue."""
    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    builder = (ApplicationBuilder().token(token).post_init(start_services).post_shutdown(stop_services)
               .concurrent_updates(PerChatOrder(MAX_CONCURRENT_UPDATES)))
    if webhook:
        builder = builder.updater(None)
    if settings.telegram_base_url:
        base = settings.telegram_base_url.rstrip("/")
        builder = builder.base_url(base)
        if base.endswith("/bot"):
            builder = builder.base_file_url(base[: -len("/bot")] + "/file/bot")
    if request is not None:
        builder = builder.request(request).get_updates_request(updates_request or request)
    application: Application[Any, Any, Any, Any, Any, Any] = (
        builder.rate_limiter(AIORateLimiter()).build() if rate_limit else builder.build())
    host = host or Host(core, threads=store_threads(settings))
    channel = TelegramChannel(application.bot, host, files_dir=settings.files_dir)
    services = Services(settings, core, host, [channel, *others])
    application.bot_data.update(core=core, host=host, channel=channel, catalogs=core.catalogs,
                                services=services, sender=services.sender)
    application.add_handler(TypeHandler(Update, on_update))
    application.add_error_handler(error_handler)
    return application


def build_zalo_channel(settings: Settings, host: Host, *,
                       transport: httpx.AsyncBaseTransport | None = None) -> ZaloChannel:
    """The Zalo Bot Platform channel; the files people send are kept in FILES_DIR."""
    token = settings.zalo_bot_token.get_secret_value().strip() if settings.zalo_bot_token else ""
    api = ZaloBotAPI(token, settings.zalo_base_url, transport=transport)
    return ZaloChannel(api, host, files_dir=settings.files_dir, max_file_bytes=settings.zalo_max_file_bytes,
                       text_limit=settings.zalo_text_limit)


def build_zalo_oa_channel(settings: Settings, host: Host, *,
                          transport: httpx.AsyncBaseTransport | None = None) -> ZaloOAChannel:
    """The Zalo Official Account channel; the first token pair comes from the settings (later ones
    from the store), and the files people send are kept in FILES_DIR."""
    if not settings.zalo_oa_configured or settings.zalo_oa_app_id is None or settings.zalo_oa_access_token is None:
        raise SettingsError("Missing setting ZALO_OA_APP_ID, ZALO_OA_SECRET_KEY or ZALO_OA_ACCESS_TOKEN")
    app_id = settings.zalo_oa_app_id.strip()
    app_secret = settings.zalo_oa_app_secret.get_secret_value().strip() if settings.zalo_oa_app_secret else ""
    refresh = settings.zalo_oa_refresh_token.get_secret_value().strip() if settings.zalo_oa_refresh_token else ""
    with new_session(host.core.engine) as session:
        seed_token(app_id, settings.zalo_oa_access_token.get_secret_value().strip(), refresh, session=session)
    api = ZaloOAAPI(settings.zalo_oa_base_url, settings.zalo_oa_oauth_url, app_id, app_secret, transport=transport)
    store = Store(host.core.engine, in_thread=store_threads(settings) > 0)
    tokens = OATokens(api, store, app_id, can_renew=bool(app_secret and refresh))
    return ZaloOAChannel(api, host, tokens, store, files_dir=settings.files_dir,
                         max_file_bytes=settings.zalo_max_file_bytes, text_limit=settings.zalo_text_limit,
                         window=timedelta(hours=settings.zalo_oa_window_hours))


def build_sender(settings: Settings, core: Core, channels: Sequence[Channel]) -> OutboxSender:
    """The outbox sender within each messenger's limits, its store work in its own thread(s)."""
    limits = {"telegram": Limits(settings.telegram_messages_per_second, settings.telegram_chat_messages_per_second),
              "zalo": Limits(settings.zalo_messages_per_second, settings.zalo_chat_messages_per_second),
              "zalo_oa": Limits(settings.zalo_oa_messages_per_second, settings.zalo_chat_messages_per_second)}
    threads = 1 if settings.database_url.startswith("sqlite") else 4  # SQLite: one writer at a time
    return OutboxSender(core.engine, {channel.messenger: channel.deliver for channel in channels},
                        limits={c.messenger: limits[c.messenger] for c in channels if c.messenger in limits},
                        threads=threads, typed_choices={c.messenger for c in channels if c.typed_choices})


class Services:
    """What runs beside the channels: the outbox sender (for every channel) and the scheduler."""

    def __init__(self, settings: Settings, core: Core, host: Host, channels: Sequence[Channel]) -> None:
        self.settings = settings
        self.core = core
        self.host = host
        self.channels = list(channels)
        self.sender = build_sender(settings, core, channels)
        self.scheduler: Any = None
        self.sender_task: asyncio.Task[None] | None = None

    def start(self, sender_run: Coroutine[Any, Any, None] | None = None) -> None:
        """Invitation links, the scheduler and the sender (`sender_run`, or `sender.run()`), on the running loop."""
        for channel in self.channels:
            self.core.invitation_links[channel.messenger] = channel.invitation_link
        settings = self.settings
        self.scheduler = start_scheduler(
            self.core.engine, self.sender, interval_seconds=settings.outbox_interval_seconds,
            keep_sent_days=settings.outbox_keep_days, core=self.core, sweep_seconds=settings.sweep_seconds,
            retention_months=self.core.policy.retention_months, files_dir=settings.files_dir)
        self.sender_task = asyncio.create_task(sender_run or self.sender.run())
        self.host.on_queued = self.sender.kick

    async def stop(self) -> None:
        """Stop the scheduler and the sender (sends under way finish), then the store's threads."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
            self.scheduler = None
        if self.sender_task is not None:
            self.sender_task.cancel()
        await self.sender.close()
        self.host.close()


async def run_sender(application: Application, sender: OutboxSender) -> None:
    """Run the sender while the application runs. It starts once the application is running
    (post_init comes before), as a task that `Application.stop()` waits for; it stops claiming
    messages as soon as the application stops, and finishes those under way before the shutdown."""
    while not application.running:
        await asyncio.sleep(0.05)
    await application.create_task(sender.run(until=lambda: not application.running))


async def start_services(application: Application) -> None:
    """Invitation links and command menus, the outbox sender and the scheduler (post_init)."""
    channel: TelegramChannel = application.bot_data["channel"]
    services: Services = application.bot_data["services"]
    channel.username = application.bot.username
    await channel.set_command_menus(services.core.catalogs, services.core.policy.default_locale)
    services.start(run_sender(application, services.sender))


async def stop_services(application: Application) -> None:
    """Stop the scheduler, the sender, the store's threads, and close the store (post_shutdown)."""
    await application.bot_data["services"].stop()
    application.bot_data["core"].engine.dispose()


async def run_messengers(settings: Settings) -> None:
    """`kiennghi run`: every messenger that has a token, in one process, until SIGINT or SIGTERM.

    With Telegram, python-telegram-bot's application carries the services and Zalo polls beside
    it; Zalo alone runs the same services itself."""
    core = build_core(settings)
    host = Host(core, threads=store_threads(settings))
    stop = stop_on_signals()
    zalo = build_zalo_channel(settings, host) if "zalo" in settings.messengers else None
    try:
        if zalo is not None:
            await zalo.prepare_polling()  # a refused token stops here, before any service starts
        if "telegram" in settings.messengers:
            application = build_telegram_application(settings, core, host=host, others=[zalo] if zalo else [])
            await run_polling(application, stop, beside=[zalo.poll] if zalo else [])
        elif zalo is not None:
            services = Services(settings, core, host, [zalo])
            services.start()
            try:
                await zalo.poll(stop)
            finally:
                await services.stop()
                core.engine.dispose()
    finally:
        if zalo is not None:
            await zalo.close()


def check_serve_settings(settings: Settings) -> None:
    """Refuse, in one line naming what to set, settings with which `kiennghi serve` would leave a
    configured messenger unserved or serve none."""
    if "telegram" in settings.messengers and not settings.telegram_webhook_configured:
        missing = [name for name, value in (("PUBLIC_URL", settings.public_url),
                                            ("TELEGRAM_WEBHOOK_SECRET", settings.telegram_webhook_secret)) if not value]
        raise SettingsError(f"Missing setting {' and '.join(missing)}: kiennghi serve has Telegram post its updates "
                            "to PUBLIC_URL/telegram with that secret (or use kiennghi run, which polls)")
    if "zalo" in settings.messengers and settings.zalo_webhook_secret is None:
        raise SettingsError("Missing setting ZALO_WEBHOOK_SECRET: kiennghi serve receives the Zalo bot's updates "
                            "at /zalo with that secret (or use kiennghi run, which polls)")
    if not settings.messengers and not settings.zalo_oa_configured:
        raise SettingsError("Missing settings for kiennghi serve: TELEGRAM_BOT_TOKEN with PUBLIC_URL and "
                            "TELEGRAM_WEBHOOK_SECRET, ZALO_BOT_TOKEN with ZALO_WEBHOOK_SECRET, or ZALO_OA_APP_ID, "
                            "ZALO_OA_SECRET_KEY and ZALO_OA_ACCESS_TOKEN")


def build_webhook_app(settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None,
                      request: BaseRequest | None = None) -> Starlette:
    """The ASGI app for a web server (`kiennghi serve`, or `uvicorn --factory`): the webhook endpoints
    that are configured, Telegram's at /telegram (TELEGRAM_BOT_TOKEN, PUBLIC_URL and
    TELEGRAM_WEBHOOK_SECRET; the webhook is set at start), the Zalo Bot Platform's at /zalo
    (ZALO_BOT_TOKEN and ZALO_WEBHOOK_SECRET) and the Official Account's at /zalo-oa (ZALO_OA_*), with
    /healthz and /metrics; the outbox sender for their messengers and the scheduler run from the app's
    start to its stop. `kiennghi run` may poll the other messengers beside it."""
    core = build_core(settings)
    host = Host(core, threads=store_threads(settings))
    channels: list[ZaloChannel | ZaloOAChannel] = []
    routes: list[Route] = []
    zalo: ZaloChannel | None = None
    if "zalo" in settings.messengers and settings.zalo_webhook_secret is not None:
        zalo = build_zalo_channel(settings, host, transport=transport)
        channels.append(zalo)
        routes.append(zalo_route(zalo, settings.zalo_webhook_secret.get_secret_value()))
    if settings.zalo_oa_configured and settings.zalo_oa_app_id and settings.zalo_oa_secret_key:
        oa = build_zalo_oa_channel(settings, host, transport=transport)
        channels.append(oa)
        routes.append(zalo_oa_route(oa, settings.zalo_oa_app_id.strip(),
                                    settings.zalo_oa_secret_key.get_secret_value().strip()))
    telegram: Application[Any, Any, Any, Any, Any, Any] | None = None
    if settings.telegram_webhook_configured and settings.telegram_webhook_secret is not None:
        # The Telegram application carries the services for every channel, as under `kiennghi run`.
        telegram = build_telegram_application(settings, core, host=host, others=channels, request=request,
                                              webhook=True)
        routes.append(telegram_route(telegram, settings.telegram_webhook_secret.get_secret_value()))
    if not routes:
        core.engine.dispose()
        raise SettingsError("Missing settings for the webhook endpoints: ZALO_OA_APP_ID, ZALO_OA_SECRET_KEY and "
                            "ZALO_OA_ACCESS_TOKEN, ZALO_BOT_TOKEN and ZALO_WEBHOOK_SECRET, or TELEGRAM_BOT_TOKEN, "
                            "PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET")
    routes += [Route("/healthz", healthz, methods=["GET"]), Route("/metrics", metrics, methods=["GET"])]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        services: Services = telegram.bot_data["services"] if telegram else Services(settings, core, host, channels)
        app.state.services = services  # what runs beside the endpoints, for /healthz and tests
        try:
            if telegram is not None:
                await start_telegram_webhook(telegram, settings)
            else:
                services.start()
            if zalo is not None:
                await register_zalo_webhook(zalo, settings)
            yield
        finally:
            if telegram is not None:
                await stop_telegram(telegram)  # the updates queued are handled first
            else:
                await services.stop()
                core.engine.dispose()
            for channel in channels:
                await channel.close()

    return Starlette(routes=routes, lifespan=lifespan)


async def start_telegram_webhook(application: Application[Any, Any, Any, Any, Any, Any], settings: Settings) -> None:
    """Start the application without an updater, its services (post_init) with it, and have Telegram post
    updates to PUBLIC_URL/telegram with the secret; those waiting at Telegram are kept, not dropped."""
    await application.initialize()
    await start_services(application)
    await application.start()
    secret = settings.telegram_webhook_secret.get_secret_value() if settings.telegram_webhook_secret else None
    await application.bot.set_webhook(f"{settings.public_url}/telegram", secret_token=secret,
                                      allowed_updates=ALLOWED_UPDATES, drop_pending_updates=False)
    log.info("Telegram posts its updates to %s/telegram", settings.public_url)


async def register_zalo_webhook(zalo: ZaloChannel, settings: Settings) -> None:
    """Have Zalo post the bot's updates to PUBLIC_URL/zalo with the secret; without PUBLIC_URL, or if Zalo
    refuses, say so in one line and serve all the same (the address can be set on Zalo's side)."""
    if not settings.public_url or settings.zalo_webhook_secret is None:
        log.info("PUBLIC_URL is not set: set the Zalo bot's webhook to this server's /zalo on Zalo's side")
        return
    try:
        await zalo.api.call("setWebhook", {"url": f"{settings.public_url}/zalo",
                                           "secret_token": settings.zalo_webhook_secret.get_secret_value()})
    except Exception as exc:  # Zalo's errors come in several shapes; serving goes on either way
        log.warning("Zalo did not take the webhook address (%s): set it on Zalo's side", type(exc).__name__)
        return
    log.info("Zalo posts its updates to %s/zalo", settings.public_url)


async def stop_telegram(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Handle the updates already queued, let the sends under way finish, then stop the services
    (post_shutdown); also after a start that failed part way. The webhook stays set: Telegram keeps
    what comes meanwhile until the next start."""
    if application.running:
        await application.stop()
    await application.shutdown()
    await stop_services(application)


async def healthz(request: Request) -> Response:
    """GET /healthz: whether the store answers, the scheduler runs, and the outbox's backlog (JSON);
    503 when the store or the scheduler is down."""
    services: Services = request.app.state.services
    pending: int | None = None
    try:
        pending = await asyncio.to_thread(outbox_backlog, services.core)
    except Exception as exc:
        log.warning("health check: the store did not answer (%s)", type(exc).__name__)
    scheduler = services.scheduler is not None and bool(services.scheduler.running)
    healthy = pending is not None and scheduler
    return JSONResponse({"status": "ok" if healthy else "unhealthy", "store": "ok" if pending is not None
                         else "unreachable", "scheduler": "running" if scheduler else "stopped",
                         "outbox_pending": pending}, status_code=200 if healthy else 503)


async def metrics(request: Request) -> Response:
    """GET /metrics: the counters in Prometheus text format, with the outbox's backlog read now."""
    services: Services = request.app.state.services
    try:
        pending = float(await asyncio.to_thread(outbox_backlog, services.core))
    except Exception:  # /healthz says why; the counters are still worth a scrape
        pending = float("nan")
    body, content_type = exposition(pending)
    return Response(body, media_type=content_type)


def outbox_backlog(core: Core) -> int:
    """Messages waiting in the outbox; the query doubles as the store's health check."""
    with new_session(core.engine) as session:
        return count_pending(session=session)


def serve(settings: Settings) -> int:
    """`kiennghi serve`: the webhook app under uvicorn on HOST:PORT until SIGINT or SIGTERM, then a clean
    stop (queued updates handled, sends under way finished); exit code 0, or 1 if it could not start."""
    check_serve_settings(settings)
    if settings.telegram_webhook_configured:
        # Asked before the server starts: a refused token or an unreachable Telegram is then one line, not
        # uvicorn's "Application startup failed" with a traceback.
        refusal = asyncio.run(_telegram_refusal(settings))
        if refusal is not None:
            raise SettingsError(refusal)
    app = build_webhook_app(settings)
    # Our logging (configure_logging) formats uvicorn's lines too; one line a request would only be noise.
    server = uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, lifespan="on",
                                           log_config=None, access_log=False, server_header=False))
    # uvicorn raises the signal it stopped on again once it is done, for the program around it: with these
    # handlers that ends here, with exit code 0, rather than killing the process or raising KeyboardInterrupt.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    server.run()
    return 0 if server.started else 1


async def _telegram_refusal(settings: Settings) -> str | None:
    """Why Telegram would not take this bot (a wrong token, no connection), or None."""
    from telegram import Bot
    from telegram.error import InvalidToken, TelegramError

    token = settings.telegram_bot_token.get_secret_value() if settings.telegram_bot_token else ""
    base = settings.telegram_base_url.rstrip("/") if settings.telegram_base_url else "https://api.telegram.org/bot"
    try:
        async with Bot(token, base_url=base) as bot:
            await bot.get_me()
    except InvalidToken:
        return "Telegram refused TELEGRAM_BOT_TOKEN: check the token BotFather gave"
    except TelegramError as exc:
        return f"Telegram could not be reached or refused the bot ({type(exc).__name__}: {exc})"
    return None


def webhook_app() -> Starlette:
    """`uvicorn --factory bot.app:webhook_app`: the webhook app, with the settings from the environment and `.env`
    (`kiennghi serve` is the same app, with its settings checked first and its logging set)."""
    return build_webhook_app(load_settings())
