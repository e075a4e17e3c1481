"""The single entry point: one normalized event in, committed, replies out."""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from handlers.core import (
    ACCEPTED_MEDIA,
    Answer,
    Choice,
    Context,
    Incoming,
    InvitationLinks,
    Policy,
    Reply,
    clean_text,
    parse_command,
    parse_number,
)
from handlers.routing import Routes
from locales import Catalogs
from storage.db import batch_transaction, new_session
from storage.dialogs import claim_update, load_dialog, lock_chat, save_dialog
from storage.models import OutboxMessage, Role, row_id, utcnow
from storage.outbox import add_receipt, drop_receipts
from storage.people import find_person, get_or_create_person, set_role
from storage.reference import search_key

log = logging.getLogger(__name__)
# Words a person may type instead of a command (compared without case, accents or punctuation), so
# that nobody needs English slash commands, and so that messengers without buttons work too.
COMMAND_WORDS = {
    "huy": "cancel", "huy bo": "cancel", "cancel": "cancel",
    "tro giup": "help", "huong dan": "help", "help": "help",
    "tra cuu": "status", "trang thai": "status", "kien nghi cua toi": "status", "my concerns": "status",
    "xoa du lieu": "forget", "xoa du lieu cua toi": "forget", "delete my data": "forget",
    "kien nghi moi": "new", "new concern": "new",
    "ngon ngu": "language", "language": "language",
    "tat thong bao": "mute", "mute": "mute", "bat thong bao": "unmute", "unmute": "unmute",
}


class FloodGuard:
    """Per-person message rate, in memory: a flood slows one person, not the others."""

    def __init__(self, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._warned: dict[str, float] = {}
        self._lock = threading.Lock()  # chats are handled concurrently, in threads

    def check(self, who: str, now: float | None = None) -> str:
        """'ok', 'warn' (first message over the limit) or 'drop' (later ones, no reply)."""
        now = time.monotonic() if now is None else now
        with self._lock:
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
        self._lock = threading.Lock()

    def _key(self, who: str, now: datetime) -> tuple[str, date]:
        return who, now.astimezone(self.zone).date()

    def exhausted(self, who: str, now: datetime) -> bool:
        """Whether the person has already sent today's allowance."""
        with self._lock:
            return self._counts.get(self._key(who, now), 0) >= self.limit

    def use(self, who: str, now: datetime) -> None:
        """Count one more concern for today."""
        key = self._key(who, now)
        with self._lock:
            if len(self._counts) > 100_000:  # drop past days, keep memory bounded
                today = key[1]
                self._counts = {k: v for k, v in self._counts.items() if k[1] == today}
            self._counts[key] = self._counts.get(key, 0) + 1


@dataclass
class Outcome:
    """What handling one event produced: replies for the person, and whether others have mail."""

    replies: list[Reply] = field(default_factory=list)
    queued: bool = False  # outbox messages were committed: the sender may start now
    receipts: list[int] = field(default_factory=list)  # to drop once the replies are shown


class Core:
    """Handles incoming events for every channel: the store, the routes, the policy and the languages."""

    def __init__(self, engine: Engine, routes: Routes, policy: Policy, catalogs: Catalogs) -> None:
        self.engine = engine
        self.routes = routes
        self.policy = policy
        self.catalogs = catalogs
        self.flood = FloodGuard(policy.flood_messages, policy.flood_window_seconds)
        self.quota = DailyQuota(policy.daily_concern_limit, policy.zone)
        # messenger -> function(payload) -> link; filled by the channels at start-up, before any update.
        self.invitation_links: InvitationLinks = {}

    def handle(self, incoming: Incoming, now: datetime | None = None) -> Outcome:
        """Handle one event; everything it changed is committed before the replies return.

        A failure rolls everything back and gets a short apology, never a traceback."""
        try:
            with new_session(self.engine) as session:
                return self._handle(session, incoming, now)
        except Exception:
            log.exception("error while handling update %s", incoming.update_key)
            return self._apology(incoming)

    def handle_batch(self, events: list[Incoming], now: datetime | None = None) -> list[Outcome]:
        """Handle events of different chats in one transaction: each in its own savepoint, one commit.

        One commit (and one fsync) for many events; no reply is returned before it. A failing
        event is rolled back to its savepoint and gets an apology; a failed commit keeps nothing."""
        if len(events) == 1:
            return [self.handle(events[0], now)]
        outcomes: list[Outcome] = []
        try:
            with self.engine.connect() as connection, batch_transaction(connection):
                for incoming in events:
                    outcomes.append(self._handle_in_savepoint(connection, incoming, now))
        except Exception:
            log.exception("error while committing %d updates", len(events))
            return [self._apology(incoming) for incoming in events]
        return outcomes

    def _handle_in_savepoint(self, connection: Connection, incoming: Incoming, now: datetime | None) -> Outcome:
        session = Session(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)
        try:
            return self._handle(session, incoming, now)
        except Exception:
            log.exception("error while handling update %s", incoming.update_key)
            session.rollback()
            return self._apology(incoming)
        finally:
            session.close()

    def _apology(self, incoming: Incoming) -> Outcome:
        t = self.catalogs.pick(self._stored_locale(incoming), incoming.language_code)
        return Outcome([Reply(t("Sorry, something went wrong on our side. Please try again in a moment."))])

    def _stored_locale(self, incoming: Incoming) -> str | None:
        try:
            with new_session(self.engine) as session:
                person = find_person(incoming.messenger, incoming.user_id, session=session)
                return person.locale if person else None
        except Exception:  # the store itself may be what failed
            return None

    def _handle(self, session: Session, incoming: Incoming, now: datetime | None) -> Outcome:
        if incoming.update_key and not claim_update(incoming.messenger, incoming.update_key, session=session):
            return Outcome()
        # Before the person is read: a first contact reaching two processes at once creates them once.
        lock_chat(incoming.messenger, incoming.chat_id, session=session)
        person = get_or_create_person(
            incoming.messenger, incoming.user_id, chat_id=incoming.chat_id,
            display_name=incoming.display_name, language_code=incoming.language_code, session=session,
        )
        who = f"{incoming.messenger}:{incoming.user_id}"
        made_admin = who in self.policy.admin_ids and person.role != Role.ADMIN
        if made_admin:
            set_role(person, Role.ADMIN, None, session=session)
        state = load_dialog(incoming.messenger, incoming.chat_id, session=session)
        position = (state.flow, state.step)
        ctx = Context(
            session=session, policy=self.policy, catalogs=self.catalogs, routes=self.routes,
            incoming=incoming, person=person, t=self.catalogs.pick(person.locale, incoming.language_code),
            state=state, data=dict(state.data), now=now or utcnow(), quota=self.quota,
            invitation_links=self.invitation_links,
        )
        if made_admin:
            ctx.update_menu(person)
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
        # After an anonymous concern the chat keeps its menu, but no time that could tie the two together.
        save_dialog(state, flow=ctx.state.flow, step=ctx.state.step, data=ctx.data, options=shown,
                    session=session, dated=not ctx.forget_dialog)
        queued = any(isinstance(obj, OutboxMessage) for obj in session.new) or bool(
            session.info.pop("outbox_written", False))
        receipts = []
        if ctx.must_show and ctx.replies:
            replies = [(r.text, [(o.key, o.label) for o in r.options]) for r in ctx.replies]
            receipts.append(row_id(add_receipt(incoming.messenger, incoming.chat_id, replies, session=session)))
        try:
            session.commit()
        except IntegrityError:
            # Another process handled the same update first: it was handled once.
            session.rollback()
            log.info("update %s already handled elsewhere", incoming.update_key)
            return Outcome()
        return Outcome(ctx.replies, queued, receipts)

    def shown(self, outcome: Outcome) -> None:
        """The channel showed an outcome's replies: forget its receipts."""
        if outcome.receipts:
            with new_session(self.engine) as session:
                drop_receipts(outcome.receipts, session=session)

    def _route(self, ctx: Context) -> None:
        incoming = ctx.incoming
        if incoming.text is not None:
            text = clean_text(incoming.text)
            if not text and incoming.attachment is None:
                ctx.say(ctx.t("The message was empty. Please write a few words, or type “help”."))
                return
            incoming = replace(incoming, text=text)
            parsed = parse_command(text) if incoming.command is None else None
            if parsed:
                incoming = replace(incoming, command=parsed[0], args=clean_text(parsed[1]), text=None)
            elif incoming.command is None:
                key = _typed_choice(text, ctx.state.options)
                word = COMMAND_WORDS.get(search_key(text)) if key is None and len(text) < 30 else None
                if key is not None:
                    incoming = replace(incoming, choice=key, text=None)
                elif word is not None:
                    incoming = replace(incoming, command=word, args="", text=None)
        choice = Choice.parse(incoming.choice) if incoming.choice is not None else None
        if choice is not None and choice.action.startswith("/"):
            incoming = replace(incoming, command=choice.action[1:], args=choice.value, choice=None)
            choice = None
        ctx.incoming = incoming
        if incoming.command is not None:
            self._run_command(ctx)
            return
        if incoming.attachment is not None and incoming.attachment.kind not in ACCEPTED_MEDIA:
            ctx.say(ctx.t("We can read text, voice notes, photos, videos and documents only. "
                          "Please send one of those."))
            return
        step_fn = self.routes.step(ctx.state.flow, ctx.state.step)
        if step_fn is not None:
            if choice is not None and choice.action == "cancel":
                self._run_command(ctx, "cancel")
                return
            if incoming.choice is not None and not _offered(incoming.choice, ctx.state.options):
                ctx.say(ctx.t("That button belongs to an earlier message. Here is where we are:"))
                step_fn(ctx, None)
                return
            step_fn(ctx, Answer(incoming.text, choice, incoming.attachment))
            return
        if ctx.state.flow:  # a dialog that no longer exists (changed since it was stored)
            ctx.end()
        self.routes.fallback(ctx)

    def _run_command(self, ctx: Context, name: str | None = None) -> None:
        name = name or str(ctx.incoming.command)
        cmd = self.routes.command_for(name, Role(ctx.person.role))
        if cmd is None:
            if name in self.routes.commands:
                log.warning("denied /%s to %s (role %s)", name, ctx.person.id, ctx.person.role)
            ctx.say(ctx.t("The command /{name} is not available. Type “help” to see what you can do.",
                          name=name[:32]))
            return
        cmd.run(ctx)


def _typed_choice(text: str, options: list[list[str]]) -> str | None:
    """The option a person meant by typing its number or its label."""
    number = parse_number(text)
    if number is not None:
        return options[number - 1][0] if 1 <= number <= len(options) else None
    folded = text.casefold()
    return next((key for key, label in options if label.casefold() == folded), None)


def _offered(choice: str, options: list[list[str]]) -> bool:
    return any(key == choice for key, _ in options)
