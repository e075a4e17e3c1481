"""Settings, read once from the environment and an optional `.env`, then passed explicitly."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

Locale = Literal["vi", "en"]


class SettingsError(Exception):
    """A setting is missing or invalid; the message names it in one line."""


class Settings(BaseSettings):
    """Every setting kiennghi reads; tests build one from keyword arguments."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    telegram_bot_token: SecretStr | None = None
    telegram_base_url: str | None = None
    # `kiennghi serve`: Telegram posts updates to PUBLIC_URL/telegram with this secret in a header.
    public_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    host: str = "127.0.0.1"  # where `kiennghi serve` listens (behind a reverse proxy that holds TLS)
    port: int = Field(8080, ge=1, le=65535)
    log_format: Literal["plain", "json"] = "plain"  # json: one JSON object a line, for log collectors
    # Zalo Bot Platform (a bot made with Zalo Bot Creator); hosts and limits are settings because
    # Zalo's reference could not be checked (see shared/context/zalo.md).
    zalo_bot_token: SecretStr | None = None
    zalo_base_url: str = "https://bot-api.zaloplatforms.com"
    zalo_webhook_secret: SecretStr | None = None  # Zalo's setWebhook takes 8 to 256 characters
    # Zalo's sending limits are not documented: conservative, kept by the outbox sender.
    zalo_messages_per_second: float = Field(5, gt=0)
    zalo_chat_messages_per_second: float = Field(1, gt=0)
    zalo_text_limit: int = Field(2000, ge=100, le=100_000)  # characters per message; longer texts are split
    zalo_max_file_bytes: int = Field(10 * 1024 * 1024, ge=1)  # photos and voice notes larger are not kept
    files_dir: Path = Path("data/files")  # where files people send through Zalo are kept
    # Zalo Official Account (OA API v3), a second Zalo mode served by the webhook app only. A person on
    # the OA is another account than on the Bot Platform (messenger "zalo_oa").
    zalo_oa_app_id: str | None = None
    zalo_oa_secret_key: SecretStr | None = None  # the OA secret key: signs each webhook post
    zalo_oa_app_secret: SecretStr | None = None  # the app's secret key: renews the access token
    # The first token pair; the pairs that follow are kept in the store (a refresh token works once).
    zalo_oa_access_token: SecretStr | None = None
    zalo_oa_refresh_token: SecretStr | None = None
    zalo_oa_base_url: str = "https://openapi.zalo.me"
    zalo_oa_oauth_url: str = "https://oauth.zaloapp.com/v4/oa/access_token"
    # The OA may write to a person only for a while after they last wrote (sources say 48 h or 7 days).
    zalo_oa_window_hours: float = Field(48, gt=0)
    zalo_oa_messages_per_second: float = Field(5, gt=0)  # said to be about 20/s, unsourced: kept lower
    database_url: str = "sqlite:///data/kiennghi.db"
    default_locale: Locale = "vi"
    timezone: str = "Asia/Ho_Chi_Minh"
    reference_file: Path | None = None
    # Messenger-qualified ids of the first admins, e.g. "telegram:12345,zalo:987".
    admin_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    flood_messages: int = Field(20, ge=1)
    flood_window_seconds: float = Field(10, gt=0)
    daily_concern_limit: int = Field(10, ge=1)
    invitation_days: int = Field(7, ge=1)
    default_deadline_days: int = Field(30, ge=1)
    reopen_days: int = Field(30, ge=1)
    # Who holds the data, named in the welcome and the privacy notice (Decree 13/2023/NĐ-CP).
    federation_name: str = Field("Liên đoàn Lao động thành phố Bắc Ninh", min_length=3, max_length=120)
    federation_name_en: str = Field("Bắc Ninh City Labour Federation", min_length=3, max_length=120)
    # Workers' names are removed from concerns finished this many months ago (the notice says so).
    retention_months: int = Field(24, ge=1, le=120)
    outbox_interval_seconds: float = Field(2.0, gt=0)
    outbox_keep_days: int = Field(30, ge=1)  # delivered messages are deleted after this
    # Telegram's limits, kept by the outbox sender: messages per second overall, and to any one chat.
    telegram_messages_per_second: float = Field(30, gt=0)
    telegram_chat_messages_per_second: float = Field(1, gt=0)
    # Reminders (see README): local times, working days before a deadline, days off besides holidays.
    reminder_time: time = time(8, 0)
    reminder_stages: Annotated[tuple[int, ...], NoDecode] = (7, 3, 1, 0)
    escalation_every_days: int = Field(7, ge=1)
    new_concerns_every_minutes: int = Field(30, ge=0)
    working_hours: Annotated[tuple[time, time], NoDecode] = (time(8, 0), time(17, 0))
    quiet_hours: Annotated[tuple[time, time], NoDecode] = (time(21, 0), time(7, 0))
    extra_days_off: Annotated[frozenset[date], NoDecode] = frozenset()
    sweep_seconds: float = Field(60, gt=0)
    # Threads that run the store's work off the event loop (default: 1 for SQLite, 8 for PostgreSQL).
    store_threads: int | None = Field(None, ge=0, le=64)
    # FULL makes every commit durable against power loss, not only against a killed process.
    sqlite_synchronous: Literal["FULL", "NORMAL"] = "FULL"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("admin_ids")
    @classmethod
    def _qualified_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if ":" not in item:
                raise ValueError(f"{item!r} must name its messenger, e.g. telegram:12345")
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql")):
            raise ValueError("must start with sqlite:/// or postgresql+psycopg://")
        return value

    @field_validator("reminder_stages", mode="before")
    @classmethod
    def _stages(cls, value: object) -> object:
        if isinstance(value, str):
            stages = tuple(sorted({int(part) for part in value.split(",") if part.strip()}, reverse=True))
            if not stages or min(stages) < 0:
                raise ValueError("give working days before the deadline, e.g. 7,3,1,0")
            return stages
        return value

    @field_validator("working_hours", "quiet_hours", mode="before")
    @classmethod
    def _hours(cls, value: object) -> object:
        if isinstance(value, str):
            start, sep, end = value.partition("-")
            if not sep:
                raise ValueError("give a range of local times, e.g. 21:00-07:00")
            return time.fromisoformat(start.strip()), time.fromisoformat(end.strip())
        return value

    @field_validator("extra_days_off", mode="before")
    @classmethod
    def _days_off(cls, value: object) -> object:
        if isinstance(value, str):
            days = set()
            for part in filter(None, (p.strip() for p in value.split(","))):
                try:
                    days.add(date.fromisoformat(part) if "-" in part else datetime.strptime(part, "%d/%m/%Y").date())
                except ValueError:
                    raise ValueError(f"{part!r} is not a date like 2026-01-02 or 02/01/2026") from None
            return frozenset(days)
        return value

    @field_validator("zalo_webhook_secret")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not 8 <= len(value.get_secret_value()) <= 256:
            raise ValueError("must be 8 to 256 characters")
        return value

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _telegram_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Telegram's rule for setWebhook's secret_token: 1 to 256 of A-Z, a-z, 0-9, _ and -.
        if value is not None and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://, e.g. https://bot.example.org")
        return value.rstrip("/") if value else value

    @field_validator("zalo_base_url", "zalo_oa_base_url", "zalo_oa_oauth_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")

    @property
    def messengers(self) -> list[str]:
        """The messengers with a token: what `kiennghi run` serves."""
        tokens = {"telegram": self.telegram_bot_token, "zalo": self.zalo_bot_token}
        return [name for name, token in tokens.items() if token is not None and token.get_secret_value().strip()]

    @property
    def telegram_webhook_configured(self) -> bool:
        """Whether the web server receives Telegram's updates: a token, PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET."""
        return "telegram" in self.messengers and bool(self.public_url) and self.telegram_webhook_secret is not None

    @property
    def zalo_oa_configured(self) -> bool:
        """Whether the Zalo OA mode has what it needs: the app id, the OA secret key and an access token."""
        secrets = (self.zalo_oa_secret_key, self.zalo_oa_access_token)
        return bool((self.zalo_oa_app_id or "").strip()) and all(
            secret is not None and secret.get_secret_value().strip() for secret in secrets)

    @property
    def zone(self) -> ZoneInfo:
        """The configured time zone."""
        return ZoneInfo(self.timezone)


def load_settings(**overrides: object) -> Settings:
    """Read settings, turning a validation error into one line that names the setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0]).upper() if error["loc"] else "?"
        raise SettingsError(f"Invalid setting {name}: {error['msg']}") from None
