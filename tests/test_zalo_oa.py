"""The Zalo Official Account mode on the fake OA API (tests/fake_zalo_oa.py): signed webhook events in,
replies through the message API, the token pair renewed once, and messages held outside Zalo's
messaging window until the person writes again."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import event, update
from sqlmodel import col, select

from bot.app import build_core, build_sender, build_webhook_app, build_zalo_oa_channel, webhook_app
from bot.channels.zalo import local_copy_name
from bot.channels.zalo_oa import (
    WAITING_ERROR,
    OATokens,
    Store,
    ZaloOAAPI,
    ZaloOAChannel,
    ZaloOAError,
    failed_delivery,
)
from bot.config import Settings, SettingsError
from bot.host import Host
from bot.webhooks import signature_matches, zalo_oa_webhook_app
from storage.db import create_db_engine, new_session
from storage.models import (
    Attachment,
    Concern,
    LastWrote,
    OutboxMessage,
    Person,
    ProcessedUpdate,
    Unreachable,
    ZaloOAToken,
    utcnow,
)
from storage.outbox import enqueue
from tests.chat import MessengerWorld, Screen, TypingChat, parse_rendered, text_of
from tests.conftest import make_settings, open_world
from tests.fake_zalo_oa import (
    APP_ID,
    APP_SECRET,
    BASE,
    FIRST_ACCESS,
    FIRST_REFRESH,
    OAUTH,
    SECRET_KEY,
    TEXT_LIMIT,
    FakeZaloOA,
    signature,
    signed,
)
from tests.flows import DESCRIPTION, onboard, outbox_row, person_row, reach_summary, rows, submit_concern

MESSENGER = "zalo_oa"
ADMIN, WORKER = 1, 5


def oa_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with the OA mode configured against the fake; person 1 on the OA is an admin."""
    values: dict[str, Any] = {
        "admin_ids": f"{MESSENGER}:{ADMIN}", "flood_messages": 1000, "files_dir": tmp_path / "files",
        "zalo_oa_app_id": APP_ID, "zalo_oa_secret_key": SECRET_KEY, "zalo_oa_app_secret": APP_SECRET,
        "zalo_oa_access_token": FIRST_ACCESS, "zalo_oa_refresh_token": FIRST_REFRESH,
        "zalo_oa_base_url": BASE, "zalo_oa_oauth_url": OAUTH,
        "zalo_oa_messages_per_second": 10_000, "zalo_chat_messages_per_second": 10_000}
    values.update(overrides)
    return make_settings(tmp_path, **values)


# ---- people on the OA, through the signed webhook --------------------------------------------------

class OAChat(TypingChat):
    """A person writing to the OA: each message is a signed webhook post; replies are numbered text."""

    kind = MESSENGER

    def __init__(self, world: OAWorld, user_id: int, name: str, language: str | None) -> None:
        super().__init__(world, user_id, name, language)
        self.oa = world

    async def send(self, text: str) -> list[Screen]:
        return await self.oa.post(self, self.oa.fake.text_event(self.user_id, text))

    async def send_file(self, kind: str, file_id: str, *, caption: str | None = None,
                        size: int | None = None) -> list[Screen]:
        """Photos come as image events with the file's URL (the fake serves `size` bytes there);
        anything else as another user_send_ event."""
        if kind == "photo":
            url = self.oa.fake.add_file(file_id, b"\x89" * (size or 1000))
            return await self.oa.post(self, self.oa.fake.image_event(self.user_id, [url], caption))
        name = "user_send_sticker" if kind == "sticker" else "user_send_file"
        return await self.oa.post(self, self.oa.fake.event(name, self.user_id))


class OAWorld(MessengerWorld):
    """The real ZaloOAChannel behind its webhook endpoint, and the outbox sender, on the fake OA API."""

    kind = MESSENGER
    offers: frozenset[str] = frozenset()

    def __init__(self, core: Any, channel: ZaloOAChannel, fake: FakeZaloOA, sender: Any) -> None:
        super().__init__(core)
        self.channel = channel
        self.fake = fake
        self.sender = sender
        app = zalo_oa_webhook_app(channel, APP_ID, SECRET_KEY)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://bot.example")
        self.seen = 0

    def person(self, user_id: int, name: str = "Lan Nguyễn", language: str | None = None) -> OAChat:
        chat = OAChat(self, user_id, name, language)
        self.chats[chat.chat_id] = chat
        return chat

    async def post(self, chat: OAChat, event: dict[str, Any]) -> list[Screen]:
        """Post one signed event to the webhook (handled before the test client gets the answer)."""
        body, headers = signed(event)
        response = await self.client.post("/zalo-oa", content=body, headers=headers)
        assert response.status_code == 200, response.text
        return self.collect()[chat.chat_id]

    def collect(self) -> dict[str, list[Screen]]:
        """Sort new sends into the chats' inboxes; the new screens per chat."""
        fresh: dict[str, list[Screen]] = {key: [] for key in self.chats}
        with self.fake.lock:
            sent = self.fake.sent[self.seen:]
            self.seen = len(self.fake.sent)
        for message in sent:
            screen = parse_rendered(message.text)
            screen.delivered = self.draining
            chat = self.chats.get(message.user_id)
            if chat is not None:
                chat.inbox.append(screen)
                fresh[message.user_id].append(screen)
        return fresh

    async def close(self) -> None:
        await self.client.aclose()
        await self.sender.close()
        await self.channel.close()
        self.channel.host.close()


@asynccontextmanager
async def oa_world(tmp_path: Path, **overrides: Any) -> AsyncIterator[OAWorld]:
    """The OA mode wired as bot.app does, the sender drained by the test (no background sender)."""
    settings = oa_settings(tmp_path, **overrides)
    core = build_core(settings)
    fake = FakeZaloOA()
    channel = build_zalo_oa_channel(settings, Host(core, threads=0), transport=fake.transport())
    world = OAWorld(core, channel, fake, build_sender(settings, core, [channel]))
    try:
        yield world
    finally:
        await world.close()
        core.engine.dispose()


@pytest.fixture
async def oa(tmp_path: Path) -> AsyncIterator[OAWorld]:
    async with oa_world(tmp_path) as world:
        yield world


def message_to(world: OAWorld, chat_id: int | str) -> OutboxMessage:
    with new_session(world.engine) as session:
        return session.exec(select(OutboxMessage).where(OutboxMessage.messenger == MESSENGER,
                                                        OutboxMessage.chat_id == str(chat_id))).one()


def token(world: OAWorld | Any) -> ZaloOAToken:
    with new_session(world.engine) as session:
        row = session.get(ZaloOAToken, APP_ID)
        assert row is not None
        return row


def age(world: OAWorld, user_id: int, hours: float, *, store: bool = True) -> None:
    """The person last wrote `hours` ago: in the store (what the bot knows) and at the fake (what Zalo knows)."""
    then = utcnow() - timedelta(hours=hours)
    world.fake.wrote[str(user_id)] = then
    if store:
        with new_session(world.engine) as session:
            session.execute(update(LastWrote).where(col(LastWrote.messenger) == MESSENGER,
                                                    col(LastWrote.chat_id) == str(user_id)).values(at=then))
            session.commit()


# ---- a worker's dialog ---------------------------------------------------------------------------------

async def test_whole_worker_dialog_over_the_oa_webhook(oa: OAWorld) -> None:
    lan = oa.person(WORKER)
    welcome = await lan.send("/start")
    # The OA tells no language: the welcome is Vietnamese, its choices numbered under the text.
    assert "Liên đoàn Lao động thành phố Bắc Ninh" in text_of(welcome)
    assert "\n  1. Tiếng Việt\n  2. English" in oa.fake.texts(WORKER)[-1]
    await lan.choose("English")
    await lan.choose("I agree")
    code = await submit_concern(lan)  # every choice typed as its number
    with new_session(oa.engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        author = session.get(Person, concern.author_id)
    assert author is not None and (author.messenger, author.external_id, author.chat_id) == (
        MESSENGER, str(WORKER), str(WORKER))
    assert concern.description == DESCRIPTION
    # Every reply went to the message API as plain text within the limit, with the current token.
    requests = oa.fake.requests
    assert requests and all(r["recipient"] == {"user_id": str(WORKER)} for r in requests)
    assert all(set(r["message"]) == {"text"} and len(r["message"]["text"]) <= TEXT_LIMIT for r in requests)
    # The pair from the settings was renewed at the first send (its age is unknown), once.
    assert oa.fake.renewals == [FIRST_REFRESH] and {r["access_token"] for r in requests} == {"access-1"}


async def test_a_status_check_over_the_oa(oa: OAWorld) -> None:
    lan = oa.person(WORKER)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    shown = await lan.send(code.lower())
    assert f"Concern {code}" in text_of(shown) and "Status: Received, waiting for the union" in text_of(shown)
    assert code in text_of(await lan.send("tra cứu"))


async def test_a_long_reply_is_split_under_2000_characters_with_the_choices_last(oa: OAWorld) -> None:
    lan = oa.person(WORKER)
    await onboard(lan, "en")
    lines = [f"Dòng {n}: công ty chưa trả lương làm thêm giờ cho tổ {n}." for n in range(1, 51)]
    before = len(oa.fake.texts(WORKER))
    await reach_summary(lan, description="\n".join(lines))
    pieces = [p for p in oa.fake.texts(WORKER)[before:] if "Dòng" in p]
    assert len(pieces) >= 2 and all(len(p) <= TEXT_LIMIT for p in pieces)
    assert all(any(line in piece for piece in pieces) for line in lines)
    assert "  1. " in pieces[-1] and "  1. " not in pieces[0]


async def test_a_photo_is_fetched_within_the_size_limit_and_stored_with_its_url(tmp_path: Path) -> None:
    async with oa_world(tmp_path, zalo_max_file_bytes=10_000) as oa:
        lan = oa.person(WORKER)
        await onboard(lan, "en")
        await lan.send("/new")
        await lan.choose("Wages and bonuses")
        await lan.choose("No specific company")
        await lan.choose("Skip")
        await lan.send(DESCRIPTION)
        small = await lan.send_file("photo", "payslip.jpg", size=5000)
        big = await lan.send_file("photo", "big.jpg", size=50_000)
        assert "File 1 of 5 received" in text_of(small) and "File 2 of 5 received" in text_of(big)
        await lan.choose("Done")
        await lan.choose("The union may know me (recommended)")
        await lan.choose("Send")
        assert sorted((a.file_id, a.kind, a.size, a.messenger) for a in rows(oa.engine, Attachment)) == [
            (oa.fake.file_url("big.jpg"), "photo", None, MESSENGER),
            (oa.fake.file_url("payslip.jpg"), "photo", 5000, MESSENGER)]
        kept = tmp_path / "files" / local_copy_name(oa.fake.file_url("payslip.jpg"))
        assert [p.name for p in (tmp_path / "files").iterdir()] == [kept.name]  # the large one is not kept


async def test_stickers_and_files_get_the_short_refusal_and_other_events_are_ignored(oa: OAWorld) -> None:
    lan = oa.person(WORKER)
    for kind in ("sticker", "document"):
        replies = await lan.send_file(kind, "x")
        assert len(replies) == 1 and replies[0].text.startswith("Hệ thống chỉ nhận tin nhắn chữ"), kind
    sent = len(oa.fake.sent)
    for name in ("follow", "user_seen_message", "oa_send_text", "user_send_group_text"):
        assert await lan.oa.post(lan, oa.fake.event(name, 77)) == []
    assert len(oa.fake.sent) == sent and [p.external_id for p in rows(oa.engine, Person)] == [str(WORKER)]


# ---- the webhook: the signature, bad bodies, repeats ----------------------------------------------------

async def test_a_missing_or_wrong_signature_gets_401_and_nothing_is_stored(oa: OAWorld) -> None:
    event = oa.fake.text_event(940, "/start")
    body, headers = signed(event)
    other_body, _ = signed(oa.fake.text_event(941, "/start"))
    wrong = [
        {},  # no signature
        {"X-ZEvent-Signature": ""},
        {"X-ZEvent-Signature": "mac=" + "0" * 64},
        {"X-ZEvent-Signature": signature(other_body, event["timestamp"])},  # another body's signature
        {"X-ZEvent-Signature": signature(body, event["timestamp"], secret_key="not-the-secret")},
        {"X-ZEvent-Signature": signature(body, event["timestamp"], app_id="1234567890")},
        {"X-ZEvent-Signature": signature(body, str(int(event["timestamp"]) + 1))},
    ]
    for extra in wrong:
        response = await oa.client.post("/zalo-oa", content=body, headers={"Content-Type": "application/json", **extra})
        assert response.status_code == 401, extra
    tampered = body.replace(b"/start", b"/forget")
    response = await oa.client.post("/zalo-oa", content=tampered, headers=headers)
    assert response.status_code == 401
    for table in (Person, ProcessedUpdate, Concern, LastWrote, OutboxMessage):
        assert rows(oa.engine, table) == [], table
    assert oa.fake.sent == [] and oa.fake.requests == []


async def test_a_malformed_or_oversized_body_gets_400_and_nothing_is_stored(oa: OAWorld) -> None:
    huge = oa.fake.text_event(942, "x" * 1_100_000)
    for body in (b"{not json", b"[]", json.dumps({"timestamp": "1"}).encode(), json.dumps(huge).encode()):
        headers = {"X-ZEvent-Signature": signature(body, "1"), "Content-Type": "application/json"}
        response = await oa.client.post("/zalo-oa", content=body, headers=headers)
        assert response.status_code == 400, body[:40]
    assert (await oa.client.get("/zalo-oa")).status_code == 405
    assert rows(oa.engine, Person) == [] and rows(oa.engine, ProcessedUpdate) == [] and oa.fake.sent == []


async def test_the_same_event_twice_is_handled_once(oa: OAWorld) -> None:
    lan = oa.person(WORKER)
    await onboard(lan, "en")
    event = oa.fake.text_event(WORKER, "/new")
    first = await oa.post(lan, event)
    again = await oa.post(lan, json.loads(json.dumps(event)))
    assert "Step 1 of 6" in text_of(first) and again == []
    assert len([r for r in rows(oa.engine, ProcessedUpdate) if r.update_key.endswith(event["message"]["msg_id"])]) == 1


def test_the_signature_is_sha256_of_app_id_body_timestamp_and_secret() -> None:
    body = b'{"event_name":"user_send_text"}'
    mac = hashlib.sha256(APP_ID.encode() + body + b"1700000000000" + SECRET_KEY.encode()).hexdigest()
    assert signature_matches(f"mac={mac}", body, APP_ID, SECRET_KEY, ["1700000000000"])
    assert signature_matches(mac.upper(), body, APP_ID, SECRET_KEY, ["1", "1700000000000"])  # e.g. the header's
    assert not signature_matches(f"mac={mac}", body + b" ", APP_ID, SECRET_KEY, ["1700000000000"])
    assert not signature_matches(f"mac={mac}", body, APP_ID, SECRET_KEY, [])


# ---- sending: Zalo's errors ----------------------------------------------------------------------------

async def queue_for(world: OAWorld, user_id: int, text: str) -> int:
    """An outbox message for an OA person who wrote once; its id."""
    await world.person(user_id).send("/start")
    with new_session(world.engine) as session:
        message = enqueue(person_row(world.engine, MESSENGER, user_id), text, session=session)
        session.commit()
        return int(message.id or 0)


def test_what_an_oa_error_means_for_an_outbox_message() -> None:
    window = failed_delivery(ZaloOAError(-230, "User has not interacted with the OA in the past 7 days"))
    assert window.until_person_writes and not window.permanent and (window.error or "").startswith(WAITING_ERROR)
    assert failed_delivery(ZaloOAError(-999, "The user has not interacted with OA within 48 hours")).until_person_writes
    assert failed_delivery(ZaloOAError(-32, "Exceeded the limit of requests")).retry_after == 60
    for gone in (ZaloOAError(-213, "User has not followed the OA"), ZaloOAError(-1, "User has blocked the OA")):
        delivery = failed_delivery(gone)
        assert delivery.permanent and delivery.unreachable
    refused = failed_delivery(ZaloOAError(-201, "Parameters are invalid"))
    assert refused.permanent and not refused.unreachable
    for later in (ZaloOAError(-216, "Access token is invalid"), ZaloOAError(-201, "Invalid access token"),
                  ZaloOAError(500, "Internal Server Error"), httpx.ConnectError("refused")):
        delivery = failed_delivery(later)
        assert not delivery.permanent and delivery.retry_after is None and not delivery.until_person_writes


async def test_errors_with_http_200_are_refusals_and_success_needs_error_0() -> None:
    fake = FakeZaloOA()
    api = ZaloOAAPI(BASE, OAUTH, APP_ID, APP_SECRET, transport=fake.transport())
    try:
        fake.wrote["1"] = utcnow()
        assert (await api.send_text(FIRST_ACCESS, "1", "Xin chào"))["error"] == 0
        with pytest.raises(ZaloOAError) as expired:
            await api.send_text("unknown-token", "1", "Xin chào")
        assert expired.value.code == -216
        with pytest.raises(ZaloOAError) as too_long:
            await api.send_text(FIRST_ACCESS, "1", "x" * (TEXT_LIMIT + 1))
        assert too_long.value.code == -201
        fake.failures["1"] = ["500"]
        with pytest.raises(ZaloOAError) as not_json:
            await api.send_text(FIRST_ACCESS, "1", "Xin chào")
        assert not_json.value.code == 500
        assert await api.renew(FIRST_REFRESH) == ("access-1", "refresh-1", 90000.0)
        with pytest.raises(ZaloOAError) as spent:
            await api.renew(FIRST_REFRESH)
        assert spent.value.code == -14014
    finally:
        await api.close()


async def test_a_person_who_does_not_follow_the_oa_is_unreachable_and_the_message_failed(oa: OAWorld) -> None:
    message_id = await queue_for(oa, 920, "Kiến nghị của bạn đã được tiếp nhận.")
    oa.fake.not_following.add("920")
    await oa.deliver_outbox()
    failed = outbox_row(oa.engine, message_id)
    assert failed.status == "failed" and "-213" in (failed.last_error or "")
    with new_session(oa.engine) as session:
        assert session.get(Unreachable, (MESSENGER, "920")) is not None


async def test_a_limit_waits_and_a_server_error_is_retried_later(oa: OAWorld) -> None:
    limited = await queue_for(oa, 921, "Hạn trả lời đã được điều chỉnh.")
    broken = await queue_for(oa, 922, "Câu trả lời của cơ quan.")
    oa.fake.failures.update({"921": ["limit"], "922": ["500"]})
    await oa.deliver_outbox()
    waiting, retried = outbox_row(oa.engine, limited), outbox_row(oa.engine, broken)
    assert (waiting.status, waiting.attempts) == ("pending", 0) and "-32" in (waiting.last_error or "")
    assert (retried.status, retried.attempts) == ("pending", 1) and "500" in (retried.last_error or "")


# ---- the messaging window -------------------------------------------------------------------------------

async def test_a_message_outside_the_window_waits_shows_in_undelivered_and_goes_when_the_worker_writes(
        oa: OAWorld) -> None:
    admin, lan = oa.person(ADMIN, "Hà Admin"), oa.person(WORKER)
    await onboard(admin, "vi")
    await onboard(lan, "en")
    code = await submit_concern(lan)
    age(oa, WORKER, hours=72)  # Lan wrote three days ago; the window is 48 hours
    requests = len(oa.fake.requests)
    assert code in text_of(await admin.send(f"/accept {code}"))
    await oa.deliver_outbox()
    held = message_to(oa, WORKER)
    assert (held.status, held.attempts, held.last_error) == ("waiting", 0, WAITING_ERROR)
    assert [r for r in oa.fake.requests[requests:] if r["recipient"]["user_id"] == str(WORKER)] == []  # not tried
    # The officer sees it waiting, with the reason.
    shown = text_of(await admin.send("/undelivered"))
    assert "Đang chờ người nhận nhắn lại cho hệ thống" in shown and code in shown
    assert f"Zalo OA {WORKER} · đang chờ" in shown and "không gửi được" not in shown
    # Lan writes again: the held message goes out, after the reply to what she wrote.
    before = len(oa.fake.texts(WORKER))
    await lan.send("tra cứu")
    assert message_to(oa, WORKER).status == "pending"
    await oa.deliver_outbox()
    assert message_to(oa, WORKER).status == "sent"
    received = oa.fake.texts(WORKER)[before:]
    assert code in received[-1] and len([t for t in received if code in t]) == 2  # the status reply, the news
    assert "Tất cả tin nhắn đã được gửi" in text_of(await admin.send("/undelivered"))


async def test_zalos_window_error_holds_the_message_too(oa: OAWorld) -> None:
    """The store thinks the window is open, Zalo says it is not (-230): the message waits all the same."""
    message_id = await queue_for(oa, 923, "Câu trả lời của cơ quan.")
    age(oa, 923, hours=24 * 8, store=False)
    await oa.deliver_outbox()
    held = outbox_row(oa.engine, message_id)
    assert held.status == "waiting" and held.attempts == 0 and "-230" in (held.last_error or "")
    await oa.person(923).send("tra cứu")
    await oa.deliver_outbox()
    assert outbox_row(oa.engine, message_id).status == "sent" and "Câu trả lời của cơ quan." in oa.fake.texts(923)


async def test_a_person_on_the_oa_and_on_the_bot_platform_has_two_accounts(tmp_path: Path) -> None:
    async with oa_world(tmp_path) as oa, open_world(tmp_path, "zalo") as zalo:
        await onboard(oa.person(WORKER), "en")
        await onboard(zalo.person(WORKER), "en")
        accounts = sorted((p.messenger, p.external_id) for p in rows(oa.engine, Person))
        assert accounts == [("zalo", str(WORKER)), (MESSENGER, str(WORKER))]


# ---- tokens ----------------------------------------------------------------------------------------------

def count_token_writes(engine: Any) -> Callable[[], list[str]]:
    """Record the statements that write the token row; the recorder."""
    writes: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(("UPDATE ZALOOATOKEN", "INSERT INTO ZALOOATOKEN")):
            writes.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    return lambda: writes


async def test_the_token_is_renewed_before_it_expires_and_the_new_pair_stored_in_one_write(
        tmp_path: Path, database_url: str) -> None:
    async with oa_world(tmp_path, database_url=database_url) as oa:
        await queue_for(oa, 930, "first")  # the settings' pair is renewed at the first send
        assert token(oa).access_token == "access-1" and oa.fake.renewals == [FIRST_REFRESH]
        # Two hours left: no renewal.
        set_expiry(oa, hours=2)
        await oa.person(930).send("tra cứu")
        assert oa.fake.renewals == [FIRST_REFRESH]
        # Half an hour left: renewed before the next send, the pair written in one statement.
        set_expiry(oa, hours=0.5)
        writes = count_token_writes(oa.engine)
        await oa.person(930).send("tra cứu")
        assert oa.fake.renewals == [FIRST_REFRESH, "refresh-1"]
        stored = token(oa)
        assert (stored.access_token, stored.refresh_token, stored.version, stored.renewing_until) == (
            "access-2", "refresh-2", 3, None)
        assert timedelta(hours=24.9) < stored.expires_at - utcnow() <= timedelta(seconds=90000)
        pair_writes = [w for w in writes() if "access_token" in w]
        assert len(pair_writes) == 1 and "refresh_token" in pair_writes[0] and "expires_at" in pair_writes[0]
        assert oa.fake.requests[-1]["access_token"] == "access-2"


def set_expiry(world: OAWorld, *, hours: float) -> None:
    with new_session(world.engine) as session:
        row = session.get(ZaloOAToken, APP_ID)
        assert row is not None
        row.expires_at = utcnow() + timedelta(hours=hours)
        session.add(row)
        session.commit()
    world.channel.tokens._pair = None  # as another process would: it reads the store


async def test_an_expired_token_is_renewed_and_the_send_tried_once_more(oa: OAWorld) -> None:
    message_id = await queue_for(oa, 931, "Kiến nghị đã được chuyển.")  # renews the settings' pair: access-1
    oa.fake.expire("access-1")  # Zalo ends it early: -216
    await oa.deliver_outbox()
    assert outbox_row(oa.engine, message_id).status == "sent"
    tokens = [r["access_token"] for r in oa.fake.requests[-2:]]
    assert tokens == ["access-1", "access-2"] and token(oa).access_token == "access-2"


async def test_a_failed_renewal_keeps_the_old_pair_and_says_so(
        oa: OAWorld, caplog: pytest.LogCaptureFixture) -> None:
    await queue_for(oa, 932, "x")
    message_id = await queue_for(oa, 933, "Kiến nghị đã được chuyển.")
    oa.fake.expire("access-1")
    oa.fake.refresh_tokens.clear()  # the refresh token was spent elsewhere
    with caplog.at_level(logging.WARNING, logger="bot.channels.zalo_oa"):
        await oa.deliver_outbox()
    retried = outbox_row(oa.engine, message_id)
    assert (retried.status, retried.attempts) == ("pending", 1) and "-216" in (retried.last_error or "")
    stored = token(oa)
    assert (stored.access_token, stored.refresh_token, stored.renewing_until) == ("access-1", "refresh-1", None)
    assert "was not renewed" in caplog.text and "ZALO_OA_REFRESH_TOKEN" in caplog.text
    assert "refresh-1" not in caplog.text and "access-1" not in caplog.text  # no secret in the log


async def test_two_processes_renewing_at_once_spend_the_refresh_token_once(
        tmp_path: Path, database_url: str) -> None:
    """Two processes (two engines, two token keepers) and several sends in each find the token due at
    the same moment: one renews, the others wait for its new pair."""
    settings = oa_settings(tmp_path, database_url=database_url)
    core = build_core(settings)
    fake = FakeZaloOA()
    fake.renew_delay = 0.3
    channel = build_zalo_oa_channel(settings, Host(core, threads=0), transport=fake.transport())
    other_engine = create_db_engine(settings.database_url)
    other_api = ZaloOAAPI(BASE, OAUTH, APP_ID, APP_SECRET, transport=fake.transport())
    other = OATokens(other_api, Store(other_engine, in_thread=True), APP_ID, can_renew=True)
    try:
        got = await asyncio.gather(*(keeper.access_token() for keeper in (channel.tokens, other) * 3))
        assert fake.renewals == [FIRST_REFRESH] and set(got) == {"access-1"}
        with new_session(core.engine) as session:
            row = session.get(ZaloOAToken, APP_ID)
            assert row is not None
            assert (row.access_token, row.refresh_token, row.version) == ("access-1", "refresh-1", 2)
    finally:
        await channel.close()
        await other_api.close()
        other_engine.dispose()
        core.engine.dispose()


async def test_a_new_pair_in_the_settings_replaces_the_stored_one(tmp_path: Path) -> None:
    async with oa_world(tmp_path) as oa:
        await queue_for(oa, 934, "x")
        assert token(oa).access_token == "access-1"
    async with oa_world(tmp_path) as oa:  # restarted with the same settings: the stored pair stays
        assert token(oa).access_token == "access-1"
    async with oa_world(tmp_path, zalo_oa_access_token="new-access", zalo_oa_refresh_token="new-refresh") as oa:
        stored = token(oa)
        assert (stored.access_token, stored.refresh_token) == ("new-access", "new-refresh")


# ---- the ASGI app, served by uvicorn ---------------------------------------------------------------------

@asynccontextmanager
async def served(app: Any) -> AsyncIterator[str]:
    """The app under uvicorn on a free loopback port, lifespan included; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, lifespan="on", log_level="warning"))
    task = asyncio.create_task(server.serve())
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert not task.done() and time.monotonic() < deadline, "uvicorn did not start"
            await asyncio.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def until(condition: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_the_webhook_app_answers_at_once_and_a_held_message_goes_right_after_the_worker_writes(
        tmp_path: Path) -> None:
    fake = FakeZaloOA()
    settings = oa_settings(tmp_path, zalo_oa_window_hours=48, outbox_interval_seconds=3600)
    app = build_webhook_app(settings, transport=fake.transport())

    async def post(client: httpx.AsyncClient, event: dict[str, Any]) -> float:
        body, headers = signed(event)
        started = time.monotonic()
        response = await client.post("/zalo-oa", content=body, headers=headers)
        assert response.status_code == 200
        return time.monotonic() - started

    async with served(app) as url, httpx.AsyncClient(base_url=url) as client:
        engine = app.state.services.core.engine
        fake.send_delay = 1.5  # Zalo is slow to take the reply: the webhook must not wait for it
        assert await post(client, fake.text_event(WORKER, "/start")) < 1.0
        await until(lambda: bool(fake.texts(WORKER)))
        fake.send_delay = 0
        assert "Bắc Ninh" in fake.texts(WORKER)[0]
        # A message for Lan while she is outside the window: held, not tried.
        with new_session(engine) as session:
            session.execute(update(LastWrote).values(at=utcnow() - timedelta(hours=49)))
            lan = session.exec(select(Person).where(Person.external_id == str(WORKER))).one()
            enqueue(lan, "Câu trả lời của cơ quan đã được chuyển đến bạn.", session=session)
            session.commit()
        app.state.services.sender.kick()

        def status() -> str:
            with new_session(engine) as session:
                return session.exec(select(OutboxMessage.status)).one()

        await until(lambda: status() == "waiting")
        # She writes: the sender is woken by that event alone (its own interval is an hour here).
        await post(client, fake.text_event(WORKER, "tra cứu"))
        await until(lambda: "Câu trả lời của cơ quan đã được chuyển đến bạn." in fake.texts(WORKER), seconds=5)
        await until(lambda: status() == "sent")  # recorded just after the messenger took it


def test_the_webhook_app_needs_oa_or_bot_platform_settings(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ZALO_OA_APP_ID"):
        build_webhook_app(make_settings(tmp_path))
    assert not make_settings(tmp_path, zalo_oa_app_id=APP_ID, zalo_oa_secret_key=SECRET_KEY).zalo_oa_configured
    assert oa_settings(tmp_path).zalo_oa_configured
    assert make_settings(tmp_path).messengers == ["telegram"]  # `kiennghi run` knows nothing of the OA


def test_uvicorn_can_build_the_webhook_app_from_the_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("ZALO_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("PUBLIC_URL", raising=False)  # Telegram's webhook is not served here
    for name, value in {"DATABASE_URL": f"sqlite:///{tmp_path}/kiennghi.db", "ZALO_OA_APP_ID": APP_ID,
                        "ZALO_OA_SECRET_KEY": SECRET_KEY, "ZALO_OA_ACCESS_TOKEN": FIRST_ACCESS}.items():
        monkeypatch.setenv(name, value)
    app = webhook_app()
    assert [route.path for route in app.routes] == ["/zalo-oa", "/healthz", "/metrics"]  # type: ignore[attr-defined]
    engine = create_db_engine(f"sqlite:///{tmp_path}/kiennghi.db")
    with new_session(engine) as session:
        stored = session.get(ZaloOAToken, APP_ID)
        assert stored is not None and stored.access_token == FIRST_ACCESS  # the first pair, stored at start
    engine.dispose()
