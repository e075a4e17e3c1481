"""People talking to kiennghi through a channel, as they would: texts, choices by label, files.

A scenario is written once against `Chat` and runs over every channel (the `world` fixture):
Telegram (the real python-telegram-bot Application on the fake Bot API: choices are inline
buttons, pressed by label), the terminal and Zalo (the real ZaloChannel on the fake Zalo Bot API,
tests/fake_zalo.py). On the last two, choices are numbered lines: the person types the number.
What a test reads is a `Screen`: the text and the choice labels a person would see.
"""

from __future__ import annotations

import io
import itertools
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlmodel import select

from storage.db import new_session
from storage.models import DialogState, Person

# KN- then 2 x 4 Crockford base32 symbols (no I, L, O, U).
CODE = re.compile(r"KN-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}")
NUMBERED = re.compile(r"^  (\d+)\. (.*)$")
FILE_LINE = re.compile(r"^\[(\w+): (.*)\]$")
# Update ids are unique across worlds, as Telegram's are: a second world on the same store is a restart.
UPDATE_IDS = itertools.count(int(time.time() * 1000) % 10**9)


@dataclass
class Screen:
    """One message a person received: its text, its choices (labels) and any file."""

    text: str
    options: list[str] = field(default_factory=list)
    file: tuple[str, str] | None = None  # (kind, file id)
    delivered: bool = False  # sent from the outbox (a message from someone else), not a reply
    upload: tuple[str, bytes] | None = None  # a file the bot made and sent: (file name, content)


def text_of(screens: Sequence[Screen]) -> str:
    """Everything in these screens, one message a paragraph."""
    return "\n\n".join(s.text for s in screens)


def options_of(screens: Sequence[Screen]) -> list[str]:
    """The choice labels of these screens, in order."""
    return [label for s in screens for label in s.options]


def codes_in(screens: Sequence[Screen]) -> list[str]:
    """Tracking codes shown in these screens."""
    return CODE.findall(text_of(screens))


class Chat:
    """One person in a private chat with the bot, on some channel."""

    kind = ""

    def __init__(self, world: World, user_id: int, name: str, language: str | None) -> None:
        self.world = world
        self.user_id = user_id
        self.name = name
        self.language = language
        self.inbox: list[Screen] = []  # everything received, replies and messages from others

    @property
    def chat_id(self) -> str:
        return str(self.user_id)

    # ---- what a person does ----------------------------------------------------------------
    async def send(self, text: str) -> list[Screen]:
        """Type and send a text message; the replies."""
        raise NotImplementedError

    async def choose(self, label: str) -> list[Screen]:
        """Pick a choice of the latest screen with choices, by its label (button or number)."""
        raise NotImplementedError

    async def choose_delivered(self, label: str) -> list[Screen]:
        """Pick a choice of the latest message from the outbox that offered it."""
        raise NotImplementedError

    async def send_file(self, kind: str, file_id: str, *, caption: str | None = None,
                        size: int | None = None) -> list[Screen]:
        """Send a photo, voice note, document, video, sticker, location or contact."""
        raise NotImplementedError

    async def send_photo(self, file_id: str = "photo-1", caption: str | None = None) -> list[Screen]:
        return await self.send_file("photo", file_id, caption=caption, size=54321)

    async def send_voice(self, file_id: str = "voice-1") -> list[Screen]:
        return await self.send_file("voice", file_id, size=20480)

    async def send_document(self, file_id: str = "doc-1") -> list[Screen]:
        return await self.send_file("document", file_id, size=100000)

    # ---- what a test reads ----------------------------------------------------------------
    def last_options(self) -> list[str]:
        """The labels of the latest screen that had choices."""
        return next((s.options for s in reversed(self.inbox) if s.options), [])

    def _current(self, label: str) -> Screen:
        """The latest screen with choices, which must offer `label` (an older one would be a stale choice)."""
        screen = next((s for s in reversed(self.inbox) if s.options), None)
        if screen is None or label not in screen.options:
            raise AssertionError(f"{label!r} is not among the choices shown last to {self.name}: {self.last_options()}")
        return screen

    def _delivered_with(self, label: str) -> Screen:
        for screen in reversed(self.inbox):
            if screen.delivered and label in screen.options:
                return screen
        raise AssertionError(f"no delivered message offered {label!r} to {self.name}")

    def person_row(self) -> Person:
        """This person as stored."""
        with new_session(self.world.engine) as session:
            return session.exec(select(Person).where(
                Person.messenger == self.kind, Person.external_id == self.chat_id)).one()

    def dialog(self) -> DialogState | None:
        """This chat's stored dialog state."""
        with new_session(self.world.engine) as session:
            return session.get(DialogState, (self.kind, self.chat_id))


class World:
    """The bot on one channel, and the people who talk to it there."""

    kind = ""
    # What the messenger offers that some scenarios rely on (`@pytest.mark.needs(...)` skips the others):
    # "language_code" (it tells a person's language), "documents" (people can send documents).
    offers: frozenset[str] = frozenset({"language_code", "documents"})

    def __init__(self, core: Any) -> None:
        self.core = core
        self.engine = core.engine
        self.chats: dict[str, Chat] = {}

    def person(self, user_id: int, name: str = "Lan Nguyễn", language: str | None = "vi") -> Chat:
        """Someone who writes to the bot (`language`: their messenger's language, if any)."""
        raise NotImplementedError

    async def deliver_outbox(self) -> int:
        """Send what the outbox holds, as the running bot would; how many were sent."""
        raise NotImplementedError

    def received(self, user_id: int) -> list[Screen]:
        """Everything one chat has received so far."""
        return self.chats[str(user_id)].inbox

    def file_ref(self, file_id: str) -> str:
        """What the store and the screens hold for a file a test sent as `file_id` (Zalo: its URL)."""
        return file_id

    async def close(self) -> None:
        """Stop the channel."""


# ---- Telegram -----------------------------------------------------------------------------------

class TelegramChat(Chat):
    """A private Telegram chat: updates through the real Application, buttons pressed by label."""

    kind = "telegram"

    def __init__(self, world: TelegramWorld, user_id: int, name: str, language: str | None) -> None:
        super().__init__(world, user_id, name, language)
        self.telegram = world
        first, _, last = name.partition(" ")
        self.user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first}
        if last:
            self.user["last_name"] = last
        if language:
            self.user["language_code"] = language
        self.last_update: dict[str, Any] = {}
        self.buttons: dict[int, list[tuple[str, str]]] = {}  # id(screen) -> (label, callback data)

    def _message(self, **content: Any) -> dict[str, Any]:
        ids = self.telegram.ids
        return {"update_id": next(ids), "message": {
            "message_id": next(ids), "date": int(time.time()),
            "chat": {"id": self.user_id, "type": "private", "first_name": self.user["first_name"]},
            "from": self.user, **content}}

    async def deliver(self, update: dict[str, Any]) -> list[Screen]:
        """Feed one raw update (new or delivered again); the screens sent to this chat meanwhile."""
        from telegram import Update

        self.last_update = update
        app = self.telegram.app
        await app.process_update(Update.de_json(update, app.bot))
        return self.telegram.collect()[self.chat_id]

    async def send(self, text: str) -> list[Screen]:
        return await self.deliver(self._message(text=text))

    async def choose(self, label: str) -> list[Screen]:
        return await self._press(self._current(label), label)

    async def choose_delivered(self, label: str) -> list[Screen]:
        return await self._press(self._delivered_with(label), label)

    async def press_old(self, label: str) -> list[Screen]:
        """Press a button of an older message, still on screen in Telegram (the latest that has it)."""
        screen = next((s for s in reversed(self.inbox) if label in s.options), None)
        assert screen is not None, f"no button {label!r} was ever shown to {self.name}"
        return await self._press(screen, label)

    async def _press(self, screen: Screen, label: str) -> list[Screen]:
        return await self.press_data(dict(self.buttons[id(screen)])[label])

    async def press_data(self, data: str) -> list[Screen]:
        """A callback query with this data, as from any button, old or made up."""
        ids = self.telegram.ids
        update = {"update_id": next(ids), "callback_query": {
            "id": str(next(ids)), "from": self.user, "chat_instance": "ci", "data": data,
            "message": {"message_id": 1, "date": int(time.time()),
                        "chat": {"id": self.user_id, "type": "private"},
                        "from": self.telegram.bot_user, "text": "…"}}}
        return await self.deliver(update)

    async def resend(self) -> list[Screen]:
        """Deliver the last update again, as Telegram does after a lost confirmation."""
        return await self.deliver(self.last_update)

    async def send_file(self, kind: str, file_id: str, *, caption: str | None = None,
                        size: int | None = None) -> list[Screen]:
        content: dict[str, Any]
        unique = file_id + "u"
        if kind == "photo":
            content = {"photo": [
                {"file_id": file_id + "-small", "file_unique_id": file_id + "s", "width": 90, "height": 90},
                {"file_id": file_id, "file_unique_id": unique, "width": 800, "height": 800, "file_size": size}]}
        elif kind == "voice":
            content = {"voice": {"file_id": file_id, "file_unique_id": unique, "duration": 12, "file_size": size}}
        elif kind == "document":
            content = {"document": {"file_id": file_id, "file_unique_id": unique, "file_name": "answer.pdf",
                                    "mime_type": "application/pdf", "file_size": size}}
        elif kind == "video":
            content = {"video": {"file_id": file_id, "file_unique_id": unique, "width": 640, "height": 360,
                                 "duration": 5, "file_size": size}}
        elif kind == "sticker":
            content = {"sticker": {"file_id": file_id, "file_unique_id": unique, "type": "regular",
                                   "width": 512, "height": 512, "is_animated": False, "is_video": False}}
        elif kind == "location":
            content = {"location": {"latitude": 21.2731, "longitude": 106.1946}}
        elif kind == "contact":
            content = {"contact": {"phone_number": file_id, "first_name": "Lan", "user_id": self.user_id}}
        else:
            raise ValueError(kind)
        if caption:
            content["caption"] = caption
        return await self.deliver(self._message(**content))

    async def send_raw(self, **content: Any) -> list[Screen]:
        """A message with any Telegram content."""
        return await self.deliver(self._message(**content))


class MessengerWorld(World):
    """A world whose messenger is a fake API: screens are collected from what was sent to it, and
    the outbox is delivered by the world's sender, as the running bot would."""

    draining = False  # collecting messages sent from the outbox (not replies)
    sender: Any

    def collect(self) -> dict[str, list[Screen]]:
        """Sort new sends into the chats' inboxes; the new screens per chat."""
        raise NotImplementedError

    async def deliver_outbox(self) -> int:
        self.collect()
        self.draining = True
        try:
            sent = await self.sender.drain()
            self.collect()
        finally:
            self.draining = False
        return int(sent)


class TelegramWorld(MessengerWorld):
    """The real Application on the fake Bot API (tests/fake_telegram.py)."""

    kind = "telegram"

    def __init__(self, core: Any, app: Any, api: Any) -> None:
        super().__init__(core)
        self.app = app
        self.api = api
        self.ids = UPDATE_IDS
        self.seen = 0  # api.calls already sorted into inboxes
        from tests.fake_telegram import BOT_USER

        self.bot_user = BOT_USER

    @property
    def sender(self) -> Any:
        """The application's outbox sender."""
        return self.app.bot_data["sender"]

    def person(self, user_id: int, name: str = "Lan Nguyễn", language: str | None = "vi") -> TelegramChat:
        chat = TelegramChat(self, user_id, name, language)
        self.chats[chat.chat_id] = chat
        return chat

    def collect(self) -> dict[str, list[Screen]]:
        """Sort new Bot API sends into the chats' inboxes; the new screens per chat."""
        from tests.fake_telegram import SENDS

        fresh: dict[str, list[Screen]] = {key: [] for key in self.chats}
        for call in self.api.calls[self.seen:]:
            if call.method not in SENDS:
                continue
            screen = Screen(call.text, [label for label, _ in call.buttons], delivered=self.draining)
            kind = call.method[len("send"):].lower()
            if kind != "message":
                screen.file = (kind, str(call.params.get(kind)))
                screen.upload = call.params.get("_upload")
            chat = self.chats.get(call.chat_id)
            if chat is None:
                continue
            assert isinstance(chat, TelegramChat)
            chat.buttons[id(screen)] = call.buttons
            chat.inbox.append(screen)
            fresh[call.chat_id].append(screen)
        self.seen = len(self.api.calls)
        return fresh

    async def close(self) -> None:
        await self.app.shutdown()


# ---- the terminal -------------------------------------------------------------------------------

class TypingChat(Chat):
    """A person on a messenger without buttons: choices are numbered lines, and the person types a number."""

    async def choose(self, label: str) -> list[Screen]:
        screen = self._current(label)
        assert not screen.delivered, "a delivered message's number is typed with choose_delivered"
        return await self.send(str(screen.options.index(label) + 1))

    async def choose_delivered(self, label: str) -> list[Screen]:
        """Type the number of a delivered message's choice. The numbers of the latest list shown mean
        its choices when the chat was in no dialog as it arrived (see storage.dialogs.offer_choices)."""
        screen = self._delivered_with(label)
        latest = next(s for s in reversed(self.inbox) if s.options)
        assert latest is screen, f"{label!r} is not in the latest list shown to {self.name}: {latest.options}"
        return await self.send(str(screen.options.index(label) + 1))


class TerminalChat(TypingChat):
    """A person at a terminal: every reply is rendered as text, choices as numbered lines."""

    kind = "terminal"

    def __init__(self, world: TerminalWorld, user_id: int, name: str, language: str | None) -> None:
        super().__init__(world, user_id, name, language)
        self.terminal = world

    async def send(self, text: str) -> list[Screen]:
        return await self.terminal.type_line(self, text)

    async def send_file(self, kind: str, file_id: str, *, caption: str | None = None,
                        size: int | None = None) -> list[Screen]:
        return await self.terminal.type_line(self, caption, (kind, file_id, size))


def parse_rendered(rendered: str) -> Screen:
    """Read a terminal rendering back: text, then an optional [kind: file] line, then numbered choices."""
    lines = rendered.split("\n")
    options: list[str] = []
    while lines and (match := NUMBERED.match(lines[-1])):
        options.insert(0, match.group(2))
        lines.pop()
    file = None
    if lines and (found := FILE_LINE.match(lines[-1])):
        file = (found.group(1), found.group(2))
        lines.pop()
    return Screen("\n".join(lines), options, file)


class TerminalWorld(World):
    """The core driven through the terminal channel, one person per chat id, all in this process."""

    kind = "terminal"

    def __init__(self, core: Any) -> None:
        super().__init__(core)
        from bot.sender import OutboxSender

        # As the shell's sender: no limits, no threads, and delivered choices can be typed.
        self.sender = OutboxSender(core.engine, {"terminal": self._deliver}, threads=0, typed_choices={"terminal"})

    def person(self, user_id: int, name: str = "Lan Nguyễn", language: str | None = "vi") -> TerminalChat:
        chat = TerminalChat(self, user_id, name, language)
        self.chats[chat.chat_id] = chat
        return chat

    async def type_line(self, chat: TerminalChat, text: str | None,
                        file: tuple[str, str, int | None] | None = None) -> list[Screen]:
        from bot.channels.terminal import TerminalChannel
        from handlers.core import Attachment, Incoming

        attachment = Attachment(file[0], file[1], file[2]) if file else None
        incoming = Incoming(messenger="terminal", chat_id=chat.chat_id, user_id=chat.chat_id,
                            display_name=chat.name, language_code=chat.language, text=text,
                            attachment=attachment)
        outcome = self.core.handle(incoming)
        screens = []
        for reply in outcome.replies:  # one at a time: a reply's own text may hold blank lines
            out = io.StringIO()
            await TerminalChannel(out, user_id=chat.chat_id).send_replies(incoming, [reply])
            screen = parse_rendered(out.getvalue().rstrip("\n"))
            if reply.attachment is not None and reply.attachment.data is not None and screen.file:
                saved = Path(screen.file[1])  # the shell saved the file and printed its path
                screen.upload = (saved.name, saved.read_bytes())
            screens.append(screen)
        self.core.shown(outcome)
        chat.inbox.extend(screens)
        return screens

    async def _deliver(self, message: Any, pace: Any = None) -> Any:
        """The terminal channel's own delivery, printed to the recipient's screen."""
        from bot.channels.terminal import TerminalChannel

        out = io.StringIO()
        delivery = await TerminalChannel(out, user_id=message.chat_id).deliver(message, pace)
        screen = parse_rendered(out.getvalue().rstrip("\n"))
        screen.delivered = True
        chat = self.chats.get(message.chat_id)
        if chat is not None:
            chat.inbox.append(screen)
        return delivery

    async def deliver_outbox(self) -> int:
        return await self.sender.drain()

    async def close(self) -> None:
        await self.sender.close()


# ---- Zalo ---------------------------------------------------------------------------------------

class ZaloChat(TypingChat):
    """A private Zalo chat: events through the real ZaloChannel; replies are numbered text."""

    kind = "zalo"

    def __init__(self, world: ZaloWorld, user_id: int, name: str, language: str | None) -> None:
        # Zalo tells no language: the person reads the default until they choose one.
        super().__init__(world, user_id, name, language)
        self.zalo = world

    def event(self, name: str, **content: Any) -> dict[str, Any]:
        """An update from this person, as Zalo sends it."""
        from tests.fake_zalo import event

        return event(name, self.user_id, display_name=self.name, **content)

    async def send(self, text: str) -> list[Screen]:
        return await self.zalo.receive(self, self.event("message.text.received", text=text))

    async def send_file(self, kind: str, file_id: str, *, caption: str | None = None,
                        size: int | None = None) -> list[Screen]:
        """Photos and voice notes come as URLs (the fake serves `size` bytes there); stickers as
        stickers; anything else Zalo withholds (message.unsupported.received)."""
        content: dict[str, Any] = {"caption": caption} if caption else {}
        if kind in ("photo", "voice"):
            url = self.zalo.fake.add_file(file_id, b"\x89" * (size or 1000))
            name = "message.image.received" if kind == "photo" else "message.voice.received"
            content[f"{kind}_url"] = url
            return await self.zalo.receive(self, self.event(name, **content))
        if kind == "sticker":
            return await self.zalo.receive(self, self.event("message.sticker.received", sticker=file_id))
        return await self.zalo.receive(self, self.event("message.unsupported.received"))


class ZaloWorld(MessengerWorld):
    """The real ZaloChannel and OutboxSender on the fake Zalo Bot API, in this process."""

    kind = "zalo"
    offers: frozenset[str] = frozenset()  # Zalo tells no language, and withholds documents from bots

    def __init__(self, core: Any, channel: Any, fake: Any, sender: Any) -> None:
        super().__init__(core)
        self.channel = channel
        self.fake = fake
        self.sender = sender
        self.seen = 0  # fake.calls already sorted into inboxes

    def person(self, user_id: int, name: str = "Lan Nguyễn", language: str | None = "vi") -> ZaloChat:
        chat = ZaloChat(self, user_id, name, language)
        self.chats[chat.chat_id] = chat
        return chat

    def file_ref(self, file_id: str) -> str:
        return str(self.fake.file_url(file_id))

    async def receive(self, chat: ZaloChat, update: dict[str, Any]) -> list[Screen]:
        """Hand one update to the channel (as the poll or the webhook does); the screens the chat got."""
        await self.channel.receive(update)
        return self.collect()[chat.chat_id]

    def collect(self) -> dict[str, list[Screen]]:
        """Sort new sends into the chats' inboxes; the new screens per chat."""
        from tests.fake_zalo import SENDS

        fresh: dict[str, list[Screen]] = {key: [] for key in self.chats}
        with self.fake.lock:
            calls = self.fake.calls[self.seen:]
            self.seen = len(self.fake.calls)
        for call in calls:
            if call.method not in SENDS:
                continue
            if call.method == "sendPhoto":
                screen = Screen("", file=("photo", str(call.params.get("photo"))))
            else:
                screen = parse_rendered(call.text)
            screen.delivered = self.draining
            chat = self.chats.get(call.chat_id)
            if chat is not None:
                chat.inbox.append(screen)
                fresh[call.chat_id].append(screen)
        return fresh

    async def close(self) -> None:
        await self.sender.close()
        await self.channel.close()
        self.channel.host.close()
