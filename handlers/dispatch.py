"""The single entry point: one normalized event in, committed, replies out."""

from __future__ import annotations

import logging
import time
from collections import defaultdict, deque
from dataclasses import replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from locales import Catalogs
from handlers import admin, agency, officer, worker  # noqa: F401  (register commands and steps)
from handlers.core import (
    ACCEPTED_MEDIA,
    COMMANDS,
    FLOWS,
    Context,
    Incoming,
    Reply,
    clean_text,
    may_use,
    parse_command,
)
from storage.db import new_session
from storage.dialogs import claim_update, drop_dialog, load_dialog, save_dialog
from storage.models import OutboxMessage, utcnow
from storage.people import find_person, get_or_create_person, set_role

log = logging.getLogger(__name__)


class FloodGuard:
    """Per-person message rate, in memory: a flood slows one person, not the others."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._warned: dict[str, float] = {}

    def check(self, who: str, now: float | None = None) -> str:
        """'ok', 'warn' (first message over the limit) or 'drop' (later ones, no reply)."""
        now = time.monotonic() if now is None else now
        seen = self._seen[who]
        while seen and now - seen[0] > self.window:
            seen.popleft()
        seen.append(now)
        if len(seen) <= self.limit:
            return "ok"
        if now - self._warned.get(who, -self.window - 1) > self.window:
            self._warned[who] = now
            return "warn"
        return "drop"


class DailyQuota:
    """Concerns sent per person per local day, in memory only.

    Kept out of the store on purpose: a stored count per person per day would let anyone with
    the database match a quiet day's single anonymous concern to its author.
    """

    def __init__(self, limit: int, zone: ZoneInfo) -> None:
        self.limit = limit
        self.zone = zone
        self._counts: dict[tuple[str, date], int] = {}

    def _key(self, who: str, now: datetime) -> tuple[str, date]:
        return who, now.astimezone(self.zone).date()

    def exhausted(self, who: str, now: datetime) -> bool:
        """Whether the person has already sent today's allowance."""
        return self._counts.get(self._key(who, now), 0) >= self.limit

    def use(self, who: str, now: datetime) -> None:
        """Count one more concern for today."""
        key = self._key(who, now)
        if len(self._counts) > 100_000:  # drop past days, keep memory bounded
            today = key[1]
            self._counts = {k: v for k, v in self._counts.items() if k[1] == today}
        self._counts[key] = self._counts.get(key, 0) + 1


class Core:
    """Handles incoming events for every channel: the store, the settings and the languages."""

    def __init__(self, engine: Engine, settings: Settings, catalogs: Catalogs) -> None:
        self.engine = engine
        self.settings = settings
        self.catalogs = catalogs
        self.flood = FloodGuard(settings.flood_messages, settings.flood_window_seconds)
        self.admin_ids = set(settings.admin_ids)
        self.quota = DailyQuota(settings.daily_concern_limit, settings.zone)
        self.outbox_waiting = False
        self.deep_link_base: str | None = None  # set by the Telegram channel once it knows its name

    def handle(self, incoming: Incoming, now: datetime | None = None) -> list[Reply]:
        """Handle one event; everything it changed is committed before the replies return.

        A failure rolls everything back and gets a short apology, never a traceback."""
        try:
            return self._handle(incoming, now)
        except Exception:
            log.exception("error while handling update %s", incoming.update_key)
            t = self.catalogs.pick(self._stored_locale(incoming), incoming.language_code)
            return [Reply(t("Sorry, something went wrong on our side. Please try again in a moment."))]

    def _stored_locale(self, incoming: Incoming) -> str | None:
        try:
            with new_session(self.engine) as session:
                person = find_person(incoming.messenger, incoming.user_id, session=session)
                return person.locale if person else None
        except Exception:  # the store itself may be what failed
            return None

    def _handle(self, incoming: Incoming, now: datetime | None) -> list[Reply]:
        with new_session(self.engine) as session:
            if incoming.update_key and not claim_update(incoming.messenger, incoming.update_key, session=session):
                return []
            person = get_or_create_person(
                incoming.messenger, incoming.user_id, chat_id=incoming.chat_id,
                display_name=incoming.display_name, session=session,
            )
            who = f"{incoming.messenger}:{incoming.user_id}"
            if who in self.admin_ids and person.role != "admin":
                set_role(person, "admin", None, session=session)
            state = load_dialog(incoming.messenger, incoming.chat_id, session=session)
            position = (state.flow, state.step)
            ctx = Context(
                session=session, settings=self.settings, catalogs=self.catalogs, incoming=incoming,
                person=person, t=self.catalogs.pick(person.locale, incoming.language_code),
                state=state, data=dict(state.data), now=now or utcnow(), quota=self.quota,
                deep_link_base=self.deep_link_base,
            )
            flood = self.flood.check(who)
            if flood == "ok":
                self._route(ctx)
            elif flood == "warn":
                ctx.say(ctx.t("You are sending messages very fast. Please wait a few seconds, then continue."))
            options = next((r.options for r in reversed(ctx.replies) if r.options), [])
            shown = [[o.key, o.label] for o in options]
            if not shown and (ctx.state.flow, ctx.state.step) == position:
                # A reply without choices (a refusal, a flood warning) leaves the step's choices valid.
                shown = state.options
            if ctx.forget_dialog:
                drop_dialog(state, session=session)
            else:
                save_dialog(
                    state, flow=ctx.state.flow, step=ctx.state.step, data=ctx.data,
                    options=shown, session=session,
                )
            if any(isinstance(obj, OutboxMessage) for obj in session.new):
                self.outbox_waiting = True
            try:
                session.commit()
            except IntegrityError:
                # Another process handled the same update first: it was handled once.
                session.rollback()
                log.info("update %s already handled elsewhere", incoming.update_key)
                return []
            return ctx.replies

    def _route(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.text is not None:
            text = clean_text(incoming.text)
            if not text and incoming.attachment is None:
                ctx.say(ctx.t("Your message was empty. Please write a few words, or send /help."))
                return
            incoming = replace(incoming, text=text)
            parsed = parse_command(text) if incoming.command is None else None
            if parsed:
                incoming = replace(incoming, command=parsed[0], args=clean_text(parsed[1]), text=None)
            elif incoming.command is None:
                choice = _typed_choice(text, ctx.state.options)
                if choice is not None:
                    incoming = replace(incoming, choice=choice, text=None)
        if incoming.choice and incoming.choice.startswith("/"):
            name, _, args = incoming.choice[1:].partition(" ")
            incoming = replace(incoming, command=name, args=args, choice=None)
        ctx.incoming = incoming
        if incoming.command is not None:
            self._run_command(ctx)
            return
        if incoming.attachment is not None and incoming.attachment.kind not in ACCEPTED_MEDIA:
            ctx.say(ctx.t("I can read text, voice notes, photos and documents only. Please send one of those."))
            return
        if ctx.state.flow and ctx.state.step:
            step_fn = FLOWS.get(ctx.state.flow, {}).get(ctx.state.step)
            if step_fn is not None:
                if incoming.choice == "cancel":
                    worker.cancel(ctx)
                    return
                if incoming.choice is not None and not _offered(incoming.choice, ctx.state.options):
                    ctx.say(ctx.t("That button belongs to an earlier message. Here is where we are:"))
                    step_fn(ctx, None)
                    return
                step_fn(ctx, incoming)
                return
            ctx.end()
        worker.outside_dialog(ctx)

    def _run_command(self, ctx: Context) -> None:
        name = str(ctx.incoming.command)
        cmd = COMMANDS.get(name)
        if cmd is None or not may_use(ctx.person, cmd):
            if cmd is not None:
                log.warning("denied /%s to %s (role %s)", name, ctx.person.id, ctx.person.role)
            ctx.say(ctx.t("I do not know the command /{name}. Send /help to see what I can do.",
                          name=name[:32]))
            return
        cmd.run(ctx)


def _typed_choice(text: str, options: list[list[str]]) -> str | None:
    """The option a person meant by typing its number or its label."""
    if text.isdigit():
        index = int(text) - 1
        return options[index][0] if 0 <= index < len(options) else None
    folded = text.casefold()
    return next((key for key, label in options if label.casefold() == folded), None)


def _offered(choice: str, options: list[list[str]]) -> bool:
    return any(key == choice for key, _ in options)
