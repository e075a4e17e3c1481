"""The Zalo channel on the fake Zalo Bot API (tests/fake_zalo.py): what a worker, a liaison or an
officer sees on Zalo, what the store holds, and what Zalo was asked to do. The channel-neutral
scenarios (tests/test_*.py with the `world` fixture) run over Zalo too; these are Zalo's own."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlmodel import select

from bot.app import build_sender, build_telegram_application, build_zalo_channel
from bot.channels.zalo import (
    ZaloBotAPI,
    ZaloError,
    failed_delivery,
    local_copy_name,
    unwrap,
    updates_in,
    with_choices,
)
from bot.config import SettingsError, load_settings
from bot.host import Host
from bot.scheduler import remove_unlinked_files
from bot.webhooks import SECRET_HEADER, zalo_webhook_app
from storage.db import new_session
from storage.models import (
    Attachment,
    Concern,
    DialogState,
    Person,
    ProcessedUpdate,
    Role,
    Unreachable,
)
from storage.outbox import enqueue
from storage.people import set_role
from tests.cast import LABOUR, LABOUR_AGENCY, OFFICER, WORKER, assign_to_labour, delivered, staff_up, submit, texts
from tests.chat import CODE, TelegramWorld, ZaloWorld, codes_in, options_of, text_of
from tests.conftest import make_settings, open_world
from tests.fake_telegram import FakeBotAPI
from tests.fake_zalo import TEXT_LIMIT, TOKEN, FakeZalo, event, text_event
from tests.flows import DESCRIPTION, onboard, outbox_row, person_row, reach_summary, rows, submit_concern

SECRET = "s3cret-webhook-token"


@pytest.fixture
async def zalo(tmp_path: Path) -> Any:
    async with open_world(tmp_path, "zalo") as world:
        yield world


def sends(world: ZaloWorld, chat: int | str | None = None) -> list[Any]:
    """What the bot asked Zalo to send (to one chat, or to all)."""
    return world.fake.sent(chat)


# ---- a worker on Zalo ------------------------------------------------------------------------------

async def test_whole_worker_dialog_over_zalo_by_typing_numbers(zalo: ZaloWorld) -> None:
    lan = zalo.person(901, "Lan Nguyễn")
    welcome = await lan.send("/start")
    # Zalo tells no language: the welcome is Vietnamese, its choices numbered under the text.
    assert "Liên đoàn Lao động thành phố Bắc Ninh" in text_of(welcome)
    shown = zalo.fake.texts(901)[-1]
    assert "\n  1. Tiếng Việt\n  2. English" in shown
    await lan.send("2")  # English
    await lan.send("1")  # I agree
    code = await submit_concern(lan)  # every choice typed as its number (tests/chat.py, ZaloChat)
    with new_session(zalo.engine) as session:
        concern = session.exec(select(Concern).where(Concern.tracking_code == code)).one()
        author = session.get(Person, concern.author_id)
    assert author is not None and (author.messenger, author.external_id, author.display_name) == (
        "zalo", "901", "Lan Nguyễn")
    assert concern.description == DESCRIPTION
    # Every message went out as plain text within Zalo's limit; nothing asked Zalo to read markup.
    for call in sends(zalo):
        assert "parse_mode" not in call.params and "text_styles" not in call.params
        assert len(call.params.get("text", "")) <= TEXT_LIMIT


async def test_status_by_code_over_zalo(zalo: ZaloWorld) -> None:
    lan = zalo.person(902)
    await onboard(lan, "en")
    code = await submit_concern(lan)
    replies = await lan.send(code.lower())
    assert f"Concern {code}" in text_of(replies) and "Status: Received, waiting for the union" in text_of(replies)
    mine = await lan.send("tra cứu")
    assert code in text_of(mine)


async def test_an_agency_answer_is_relayed_to_the_worker_on_zalo(zalo: ZaloWorld) -> None:
    cast = await staff_up(zalo)
    code = await submit(cast.worker)
    await assign_to_labour(cast.officer, code)
    notice = (await delivered(zalo))[LABOUR]
    assert notice and code in notice[0].text and notice[0].options == ["Xem", "Trả lời"]
    await cast.labour.choose_delivered("Trả lời")  # typed "2" under the notice
    await cast.labour.send("Sở đã làm việc với doanh nghiệp; lương sẽ được trả trước 30/6.")
    await cast.labour.choose("Không có văn bản")
    await cast.labour.choose("Gửi văn bản trả lời")
    assert any(code in t for t in texts((await delivered(zalo))[OFFICER]))
    await cast.officer.send(f"/relay {code}")
    received = (await delivered(zalo))[WORKER]
    assert "lương sẽ được trả trước 30/6" in text_of(received)
    assert all(len(c.params["text"]) <= TEXT_LIMIT for c in sends(zalo, WORKER) if c.method == "sendMessage")


async def test_a_reminder_reaches_the_agency_on_zalo(zalo: ZaloWorld) -> None:
    from bot.scheduler import run_sweep
    from tests.test_reminders import local

    cast = await staff_up(zalo)
    await onboard(cast.worker, "en")
    code = await submit_concern(cast.worker)
    await cast.officer.send(f"/assign {code}")
    await cast.officer.choose(LABOUR_AGENCY)
    await cast.officer.choose("Tiếp tục (đã chọn 1)")
    await cast.officer.send("15/03/2027")
    await zalo.deliver_outbox()
    assert run_sweep(zalo.core, now=local("2027-03-04", 8, 0)).stages == 1
    reminder = (await delivered(zalo))[LABOUR]
    assert len(reminder) == 1 and code in reminder[0].text and "15/03/2027" in reminder[0].text
    assert CODE.fullmatch(reminder[0].options[0])
    opened = await cast.labour.choose_delivered(code)  # its number, typed
    assert f"Kiến nghị {code}" in text_of(opened) or code in text_of(opened)


async def test_a_long_reply_is_split_under_2000_characters_at_line_breaks(zalo: ZaloWorld) -> None:
    lan = zalo.person(903)
    await onboard(lan, "en")
    lines = [f"Dòng {n}: công ty chưa trả lương làm thêm giờ cho tổ {n}." for n in range(1, 51)]
    description = "\n".join(lines)  # about 2,800 characters, 50 lines
    assert 2000 < len(description) <= 3000
    before = len(zalo.fake.texts(903))
    summary = await reach_summary(lan, description=description)
    pieces = zalo.fake.texts(903)[before:]
    summary_pieces = [p for p in pieces if "Dòng" in p]
    assert len(summary_pieces) >= 2
    assert all(len(p) <= TEXT_LIMIT for p in pieces)
    # Cut at line breaks: every line arrives whole, and the numbered choices come with the last piece.
    assert all(any(line in piece for piece in summary_pieces) for line in lines)
    assert all(piece.endswith(".") or "  1. " in piece for piece in summary_pieces)
    assert "  1. " in summary_pieces[-1] and "  1. " not in summary_pieces[0]
    assert options_of(summary) == options_of(summary[-1:])
    code = codes_in(await lan.choose("Send"))[0]
    assert rows(zalo.engine, Concern)[0].description == description and code


def test_choices_go_with_the_last_piece_or_after_it() -> None:
    assert with_choices(["a" * 10], ["  1. Xem"], 20) == ["a" * 10 + "\n  1. Xem"]
    assert with_choices(["a" * 15], ["  1. Xem"], 20) == ["a" * 15, "  1. Xem"]
    assert with_choices([""], ["  1. Xem"], 20) == ["  1. Xem"]
    assert with_choices(["abc"], [], 20) == ["abc"]


# ---- what Zalo sends that is not text ------------------------------------------------------------

async def test_a_photo_is_kept_and_goes_when_its_attachment_goes(zalo: ZaloWorld, tmp_path: Path) -> None:
    lan = zalo.person(904)
    await onboard(lan, "en")
    await reach_summary(lan, photos=["payslip.jpg"])
    await lan.choose("Send")
    content = b"\x89" * 54321  # what ZaloChat.send_photo serves
    url = zalo.fake.file_url("payslip.jpg")
    kept = tmp_path / "files" / local_copy_name(url)
    assert kept.read_bytes() == content
    assert [p.name for p in (tmp_path / "files").iterdir()] == [kept.name]  # no partial file left
    assert [(a.file_id, a.kind, a.size, a.messenger) for a in rows(zalo.engine, Attachment)] == [
        (url, "photo", 54321, "zalo")]
    # While its attachment is kept, so is the copy; once the attachment is gone (retention), the copy goes.
    assert remove_unlinked_files(zalo.engine, tmp_path / "files") == 0
    os.utime(kept, (0, 0))  # older than the week's grace for dialogs in progress
    assert remove_unlinked_files(zalo.engine, tmp_path / "files") == 0 and kept.exists()
    with new_session(zalo.engine) as session:
        for attachment in session.exec(select(Attachment)):
            session.delete(attachment)
        session.commit()
    assert remove_unlinked_files(zalo.engine, tmp_path / "files") == 1 and not kept.exists()


async def test_an_officer_on_telegram_sees_the_photo_a_worker_sent_on_zalo(zalo: ZaloWorld, tmp_path: Path) -> None:
    """The union works on Telegram, the worker on Zalo: the kept copy of her photo is uploaded to the officer."""
    lan = zalo.person(905)
    await onboard(lan, "en")
    code = await submit_concern(lan, photos=["payslip.jpg"])
    settings = make_settings(tmp_path, files_dir=tmp_path / "files", admin_ids="telegram:1",
                             telegram_messages_per_second=10_000, telegram_chat_messages_per_second=10_000)
    api = FakeBotAPI()
    app = build_telegram_application(settings, zalo.core, request=api, rate_limit=False)
    await app.initialize()
    telegram = TelegramWorld(zalo.core, app, api)
    try:
        officer = telegram.person(OFFICER, "Minh Cán bộ")
        await onboard(officer, "vi")
        with new_session(zalo.engine) as session:
            set_role(person_row(zalo.engine, "telegram", OFFICER), Role.OFFICER, None, session=session)
            session.commit()
        case = await officer.send(f"/case {code}")
        photo = next(s for s in case if s.upload)
        assert photo.upload == (local_copy_name(zalo.fake.file_url("payslip.jpg")), b"\x89" * 54321)
        assert "Tệp 1/1 của kiến nghị " + code in text_of(case)
        # Without the kept copy (gone with retention), the officer reads why there is no photo.
        (tmp_path / "files" / local_copy_name(zalo.fake.file_url("payslip.jpg"))).unlink()
        again = await officer.send(f"/case {code}")
        assert not any(s.upload for s in again) and "gửi qua Zalo: không hiển thị được tại đây" in text_of(again)
    finally:
        await telegram.close()


async def test_a_photo_too_large_or_gone_still_counts_with_its_url(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async with open_world(tmp_path, "zalo", zalo_max_file_bytes=1000) as zalo:
        lan = zalo.person(905)
        await onboard(lan, "en")
        await lan.send("/new")
        await lan.choose("Wages and bonuses")
        await lan.choose("No specific company")
        await lan.choose("Skip")
        await lan.send(DESCRIPTION)
        with caplog.at_level(logging.WARNING, logger="bot.channels.zalo"):
            big = await lan.send_file("photo", "big.jpg", size=5000)
            gone = await lan.zalo.receive(lan, lan.event("message.image.received",
                                                         photo_url=zalo.fake.file_url("missing.jpg")))
        assert "File 1 of 5 received" in text_of(big) and "File 2 of 5 received" in text_of(gone)
        assert "larger than ZALO_MAX_FILE_BYTES" in caplog.text and "HTTP 404" in caplog.text
        assert "files.zalo.test" not in caplog.text  # a person's file is not named in the log
        await lan.choose("Done")
        await lan.choose("The union may know me (recommended)")
        await lan.choose("Send")
        assert sorted((a.file_id, a.size) for a in rows(zalo.engine, Attachment)) == [
            (zalo.fake.file_url("big.jpg"), None), (zalo.fake.file_url("missing.jpg"), None)]
        assert not list((tmp_path / "files").glob("*"))


async def test_a_voice_note_is_the_description(zalo: ZaloWorld) -> None:
    lan = zalo.person(906)
    await onboard(lan, "en")
    await lan.send("/new")
    await lan.choose("Wages and bonuses")
    await lan.choose("No specific company")
    await lan.choose("Skip")
    replies = await lan.send_voice("note.aac")
    assert "Voice note received" in text_of(replies)
    assert [(a.kind, a.file_id) for a in rows(zalo.engine, Attachment)] == []  # stored when sent
    await lan.choose("Done")
    await lan.choose("The union may know me (recommended)")
    await lan.choose("Send")
    assert [(a.kind, a.file_id, a.size) for a in rows(zalo.engine, Attachment)] == [
        ("voice", zalo.fake.file_url("note.aac"), 20480)]


async def test_stickers_and_withheld_content_get_the_short_refusal(zalo: ZaloWorld) -> None:
    lan = zalo.person(907)
    for name in ("message.sticker.received", "message.unsupported.received", "message.video.received"):
        replies = await zalo.receive(lan, lan.event(name))
        assert len(replies) == 1 and replies[0].text.startswith("Hệ thống chỉ nhận tin nhắn chữ"), name


async def test_a_group_chat_is_answered_once_politely_and_nothing_is_stored(zalo: ZaloWorld) -> None:
    group = "g-4242"
    for text in ("/start", "kiến nghị mới", "Công ty nợ lương"):
        await zalo.channel.receive(text_event(908, text, chat_id=group, chat_type="GROUP"))
    told = zalo.fake.texts(group)
    assert len(told) == 1 and "tin nhắn riêng" in told[0] and "Xin cảm ơn" in told[0]
    assert rows(zalo.engine, Person) == [] and rows(zalo.engine, ProcessedUpdate) == []


async def test_the_same_event_twice_is_handled_once(zalo: ZaloWorld) -> None:
    lan = zalo.person(909)
    await onboard(lan, "en")
    update = lan.event("message.text.received", text="/new")
    first = await zalo.receive(lan, update)
    again = await zalo.receive(lan, json.loads(json.dumps(update)))
    assert "Step 1 of 6" in text_of(first) and again == []


async def test_a_bot_or_an_event_without_sender_is_ignored(zalo: ZaloWorld) -> None:
    robot = event("message.text.received", 910, text="/start")
    robot["message"]["from"]["is_bot"] = True
    await zalo.channel.receive(robot)
    nobody = {"event_name": "message.text.received", "message": {"message_id": "x1", "text": "/start"}}
    await zalo.channel.receive(nobody)
    assert sends(zalo) == [] and rows(zalo.engine, Person) == []


# ---- choices of delivered messages (numbers typed on a messenger without buttons) -------------------

@pytest.mark.parametrize("kind", ["zalo", "terminal"])
async def test_typing_the_number_of_a_notification_picks_its_choice(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind) as world:
        cast = await staff_up(world)
        code = await submit(cast.worker)
        await assign_to_labour(cast.officer, code)
        notice = (await delivered(world))[LABOUR][0]
        assert notice.options == ["Xem", "Trả lời"]
        state = cast.labour.dialog()
        assert state is not None and state.flow is None
        assert [label for _, label in json.loads(state.options)] == ["Xem", "Trả lời"]
        opened = await cast.labour.send("1")  # Xem
        assert code in text_of(opened) and "Công ty chưa trả lương" in text_of(opened)


@pytest.mark.parametrize("kind", ["zalo", "terminal"])
async def test_a_notification_in_the_middle_of_a_dialog_leaves_the_steps_choices(tmp_path: Path, kind: str) -> None:
    async with open_world(tmp_path, kind) as world:
        cast = await staff_up(world)
        code = await submit(cast.worker)
        await cast.worker.send("/new")  # at step 1: the topics
        await cast.officer.send(f"/ask {code}")
        await cast.officer.send("Bạn làm ở phân xưởng nào?")
        question = (await delivered(world))[WORKER][-1]
        assert question.options == ["Reply"]
        state = cast.worker.dialog()
        assert state is not None and (state.flow, state.step) == ("new", "category")
        assert "Reply" not in [label for _, label in json.loads(state.options)]
        replies = await cast.worker.send("1")  # the first topic, as the step had offered
        assert "Step 2 of 6" in text_of(replies)
        with new_session(world.engine) as session:
            row = session.get(DialogState, (kind, str(WORKER)))
            assert row is not None and json.loads(row.data)["category"] == "wages"


# ---- delivering the outbox on Zalo ------------------------------------------------------------------

async def queue_for(world: ZaloWorld, user_id: int, text: str, **fields: Any) -> int:
    """An outbox message for a Zalo person who wrote once; its id."""
    chat = world.person(user_id)
    await chat.send("/start")
    person = person_row(world.engine, "zalo", user_id)
    with new_session(world.engine) as session:
        message = enqueue(person, text, session=session, **fields)
        session.commit()
        return int(message.id or 0)


async def test_a_blocked_person_is_marked_unreachable_and_the_message_failed(zalo: ZaloWorld) -> None:
    message_id = await queue_for(zalo, 920, "Kiến nghị của bạn đã được tiếp nhận.")
    zalo.fake.blocked.add("920")
    await zalo.deliver_outbox()
    failed = outbox_row(zalo.engine, message_id)
    assert failed.status == "failed" and "blocked" in (failed.last_error or "")
    with new_session(zalo.engine) as session:
        assert session.get(Unreachable, ("zalo", "920")) is not None


@pytest.mark.parametrize("failure", ["429", "quota"])
async def test_a_limit_error_waits_and_the_message_goes_later(zalo: ZaloWorld, failure: str) -> None:
    message_id = await queue_for(zalo, 921, "Hạn trả lời đã được điều chỉnh.")
    zalo.fake.failures["921"] = [failure]
    await zalo.deliver_outbox()
    received = zalo.fake.texts(921).count("Hạn trả lời đã được điều chỉnh.")
    if failure == "429":  # a wait Zalo names, short enough to be waited out at once
        assert outbox_row(zalo.engine, message_id).status == "sent" and received == 1
    else:  # a limit named only in words: tried again a minute later, not counted as a failed attempt
        waiting = outbox_row(zalo.engine, message_id)
        assert (waiting.status, waiting.attempts) == ("pending", 0) and "quota" in (waiting.last_error or "")
        assert received == 0


async def test_a_server_error_is_retried_later(zalo: ZaloWorld) -> None:
    message_id = await queue_for(zalo, 922, "Câu trả lời của cơ quan.")
    zalo.fake.failures["922"] = ["500"]
    await zalo.deliver_outbox()
    retried = outbox_row(zalo.engine, message_id)
    assert (retried.status, retried.attempts) == ("pending", 1) and "500" in (retried.last_error or "")


async def test_a_long_outbox_message_goes_in_pieces_with_a_photo_first(zalo: ZaloWorld) -> None:
    text = "\n".join(f"Dòng {n} của câu trả lời, viết đủ dài để chiếm chỗ." for n in range(80))
    photo = zalo.fake.add_file("answer.jpg", b"x")
    await queue_for(zalo, 923, text, options=[("/case KN-0000-0000", "Xem")], file_id=photo, file_kind="photo")
    zalo.fake.calls.clear()
    zalo.seen = 0
    await zalo.deliver_outbox()
    calls = sends(zalo, 923)
    assert calls[0].method == "sendPhoto" and calls[0].params["photo"] == photo
    pieces = [c.params["text"] for c in calls[1:]]
    assert len(pieces) >= 2 and all(len(p) <= TEXT_LIMIT for p in pieces)
    assert "\n".join(pieces) == text + "\n  1. Xem"


async def test_a_failure_after_the_first_piece_keeps_only_the_rest(zalo: ZaloWorld) -> None:
    text = "\n".join(f"Dòng {n} của câu trả lời, viết đủ dài để chiếm chỗ." for n in range(80))
    message_id = await queue_for(zalo, 924, text, options=[("/case KN-0000-0000", "Xem")])
    zalo.fake.failures["924"] = ["ok", "500"]
    await zalo.deliver_outbox()
    left = outbox_row(zalo.engine, message_id)
    first = zalo.fake.texts(924)[-1]
    assert left.status == "pending" and first in text and left.text == text[len(first):].lstrip("\n")
    assert json.loads(left.options) == [["/case KN-0000-0000", "Xem"]]


def test_what_a_zalo_error_means_for_an_outbox_message() -> None:
    assert failed_delivery(ZaloError(429, "Too many requests", 3)).retry_after == 3
    assert failed_delivery(ZaloError(-201, "Daily quota of messages reached")).retry_after == 60
    blocked = failed_delivery(ZaloError(403, "Forbidden"))
    assert blocked.permanent and blocked.unreachable
    gone = failed_delivery(ZaloError(-214, "User not found"))
    assert gone.permanent and gone.unreachable
    refused = failed_delivery(ZaloError(400, "text must be 1 to 2000 characters"))
    assert refused.permanent and not refused.unreachable and refused.retry_after is None
    for passing in (ZaloError(500, "Internal Server Error"), ZaloError(401, "Unauthorized"),
                    httpx.ConnectError("refused")):
        later = failed_delivery(passing)
        assert not later.permanent and later.retry_after is None


async def test_errors_with_http_200_and_with_an_error_status_are_both_refusals() -> None:
    fake = FakeZalo()
    api = ZaloBotAPI(TOKEN, "https://bot-api.zalo.test", transport=fake.transport())
    try:
        with pytest.raises(ZaloError) as long_text:
            await api.call("sendMessage", {"chat_id": "1", "text": "x" * (TEXT_LIMIT + 1)})
        assert long_text.value.code == 400
        fake.failures["1"] = ["500"]
        with pytest.raises(ZaloError) as not_json:
            await api.call("sendMessage", {"chat_id": "1", "text": "ok"})
        assert not_json.value.code == 500
        wrong = ZaloBotAPI("1:wrong", "https://bot-api.zalo.test", transport=fake.transport())
        with pytest.raises(ZaloError) as refused:
            await wrong.call("getMe")
        assert refused.value.code == 401 and "wrong" not in str(refused.value)
        await wrong.close()
        assert (await api.call("getMe"))["account_name"] == "bot.kiennghi"
    finally:
        await api.close()


# ---- long polling -------------------------------------------------------------------------------------

async def polled(zalo: ZaloWorld, until: Any, *, seconds: float = 10) -> None:
    """Run the channel's poll until `until()` holds, then stop it; the poll must end cleanly."""
    stop = asyncio.Event()
    task = asyncio.create_task(zalo.channel.poll(stop))
    deadline = asyncio.get_running_loop().time() + seconds
    while not until():
        assert not task.done(), task.exception()
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(task, 5)


async def test_polling_takes_one_update_at_a_time_and_keeps_each_chats_order(zalo: ZaloWorld) -> None:
    script = ["/start", "2", "1", "/new", "1"]  # English, I agree, New concern, Wages
    for step in script:
        for user in (930, 931):
            zalo.fake.queue(text_event(user, step))
    zalo.fake.as_list = True  # some accounts show a list: accepted too

    def handled() -> int:
        return len(rows(zalo.engine, ProcessedUpdate))

    await polled(zalo, lambda: handled() == 10)
    polls = [c for c in zalo.fake.requests if c.method == "getUpdates"]
    assert len(polls) >= 10 and all(c.params == {"timeout": "30"} for c in polls)
    for user in ("930", "931"):
        with new_session(zalo.engine) as session:
            state = session.get(DialogState, ("zalo", user))
            assert state is not None and (state.flow, state.step) == ("new", "enterprise")
            assert json.loads(state.data) == {"category": "wages"}


@pytest.mark.parametrize("idle_status", [200, 408])
async def test_an_idle_poll_is_asked_again_at_once(zalo: ZaloWorld, idle_status: int) -> None:
    zalo.fake.idle_status = idle_status  # error_code 408 with HTTP 200, or HTTP 408 itself

    def polls() -> int:
        return sum(c.method == "getUpdates" for c in zalo.fake.requests)

    await polled(zalo, lambda: polls() >= 5)  # each idle poll waits 0.05 s at the fake, none at the bot
    zalo.fake.queue(text_event(932, "/start"))
    await polled(zalo, lambda: bool(zalo.fake.texts(932)))
    assert "Bắc Ninh" in zalo.fake.texts(932)[0]


async def test_failed_polls_back_off_doubling(zalo: ZaloWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.channels.zalo as module

    pauses: list[float] = []

    async def no_sleep(stop: asyncio.Event, seconds: float) -> None:
        pauses.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(module, "_sleep", no_sleep)
    answer = zalo.fake.answer
    failing = iter(range(7))

    def flaky(path: str, params: dict[str, Any]) -> Any:
        if path.endswith("/getUpdates") and next(failing, None) is not None:
            return 502, "Bad Gateway"
        return answer(path, params)

    monkeypatch.setattr(zalo.fake, "answer", flaky)
    zalo.fake.queue(text_event(933, "/start"))
    await polled(zalo, lambda: bool(zalo.fake.texts(933)))
    assert pauses == [1, 2, 4, 8, 16, 30, 30]


async def test_polling_stops_at_once_during_a_long_poll(zalo: ZaloWorld) -> None:
    zalo.fake.idle_seconds = 30  # Zalo holds the poll open
    stop = asyncio.Event()
    task = asyncio.create_task(zalo.channel.poll(stop))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_a_refused_token_stops_polling_with_one_line(tmp_path: Path) -> None:
    async with open_world(tmp_path, "zalo") as zalo:
        zalo.fake.token = "other:token"
        with pytest.raises(SettingsError, match="ZALO_BOT_TOKEN"):
            await zalo.channel.poll(asyncio.Event())


def test_updates_are_read_flat_wrapped_or_in_a_list() -> None:
    update = text_event(1, "hi")
    assert unwrap(update) == update and unwrap({"ok": True, "result": update}) == update
    assert updates_in(update) == [update] and updates_in([update, {"ok": True, "result": update}]) == [update, update]
    assert unwrap({"event_name": "message.text.received"}) is None and updates_in(None) == []


# ---- the webhook ------------------------------------------------------------------------------------

def webhook(zalo: ZaloWorld) -> httpx.AsyncClient:
    app = zalo_webhook_app(zalo.channel, SECRET, path="/zalo")
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://bot.example")


async def test_webhook_with_a_wrong_or_missing_secret_is_refused_and_nothing_stored(zalo: ZaloWorld) -> None:
    update = text_event(940, "/start")
    async with webhook(zalo) as client:
        for headers in ({}, {SECRET_HEADER: "wrong-secret"}, {SECRET_HEADER: SECRET + "x"}):
            response = await client.post("/zalo", json=update, headers=headers)
            assert response.status_code == 403
    assert rows(zalo.engine, Person) == [] and rows(zalo.engine, ProcessedUpdate) == [] and sends(zalo) == []


async def test_webhook_takes_flat_and_wrapped_bodies_and_a_repeat_once(zalo: ZaloWorld) -> None:
    flat = text_event(941, "/start")
    wrapped = {"ok": True, "result": text_event(942, "/start")}
    async with webhook(zalo) as client:
        for body in (flat, wrapped, flat):
            response = await client.post("/zalo", json=body, headers={SECRET_HEADER: SECRET})
            assert response.status_code == 200
    assert len(zalo.fake.texts(941)) == 1 and len(zalo.fake.texts(942)) == 1  # the repeat: handled once
    assert "Bắc Ninh" in zalo.fake.texts(941)[0]
    assert sorted(p.external_id for p in rows(zalo.engine, Person)) == ["941", "942"]


async def test_webhook_refuses_a_malformed_or_oversized_body(zalo: ZaloWorld) -> None:
    headers = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}
    huge = json.dumps(text_event(943, "x" * 1_100_000))
    async with webhook(zalo) as client:
        for body in ("{not json", "[]", json.dumps({"ok": True, "result": "x"}), json.dumps({"event_name": 3}),
                     huge):
            response = await client.post("/zalo", content=body, headers=headers)
            assert response.status_code == 400, body[:40]
        assert (await client.get("/zalo")).status_code == 405
    assert rows(zalo.engine, Person) == [] and rows(zalo.engine, ProcessedUpdate) == []


def test_webhook_needs_a_secret_of_8_to_256_characters(zalo: ZaloWorld) -> None:
    with pytest.raises(ValueError, match="ZALO_WEBHOOK_SECRET"):
        zalo_webhook_app(zalo.channel, "short")
    with pytest.raises(SettingsError, match="ZALO_WEBHOOK_SECRET"):
        load_settings(_env_file=None, zalo_webhook_secret="x" * 257)


# ---- Telegram and Zalo in one store ---------------------------------------------------------------------

async def test_someone_on_telegram_and_zalo_has_two_accounts_each_told_on_its_own(tmp_path: Path) -> None:
    """The same person (the same number on both, say 5) writes from Telegram and from Zalo: two
    accounts, and each concern's news goes to the messenger it was raised on."""
    async with open_world(tmp_path, "telegram") as telegram, open_world(tmp_path, "zalo") as zalo:
        officer = telegram.person(1, "Hà Admin")  # an admin of the Telegram world
        await onboard(officer, "vi")
        on_telegram = telegram.person(5, "Lan Nguyễn", language="en")
        on_zalo = zalo.person(5, "Lan Nguyễn")
        await onboard(on_telegram, "en")
        await onboard(on_zalo, "en")
        via_telegram = await submit_concern(on_telegram, description="Công ty nợ lương tháng 6 của tổ 1.")
        via_zalo = await submit_concern(on_zalo, description="Công ty không đóng bảo hiểm cho tổ 2.")
        for code in (via_telegram, via_zalo):
            assert code in text_of(await officer.send(f"/accept {code}"))
        telegram_news = text_of((await delivered(telegram))[5])
        zalo_news = text_of((await delivered(zalo))[5])
        assert via_telegram in telegram_news and via_zalo not in telegram_news
        assert via_zalo in zalo_news and via_telegram not in zalo_news
        accounts = sorted((p.messenger, p.external_id) for p in rows(zalo.engine, Person) if p.external_id == "5")
        assert accounts == [("telegram", "5"), ("zalo", "5")]


# ---- settings ---------------------------------------------------------------------------------------------

def test_messengers_are_those_with_a_token() -> None:
    assert load_settings(_env_file=None).messengers == []
    assert load_settings(_env_file=None, zalo_bot_token="1:abc").messengers == ["zalo"]
    assert load_settings(_env_file=None, zalo_bot_token="  ", telegram_bot_token="1:x").messengers == ["telegram"]
    assert load_settings(_env_file=None, zalo_bot_token="1:a", telegram_bot_token="1:x").messengers == [
        "telegram", "zalo"]
    assert load_settings(_env_file=None, zalo_base_url="https://bot-api.zapps.me/").zalo_base_url == (
        "https://bot-api.zapps.me")


async def test_zalo_has_its_own_limits_from_the_settings(zalo: ZaloWorld) -> None:
    settings = load_settings(_env_file=None, zalo_bot_token="1:a", zalo_messages_per_second=5,
                             zalo_chat_messages_per_second=0.5, zalo_text_limit=500)
    sender = build_sender(settings, zalo.core, [zalo.channel])
    pacer = sender.pacers["zalo"]
    assert round(pacer.window, 3) == 1.02 and round(pacer.chat_interval, 2) == 2.04  # 5/s overall, 1 per 2 s a chat
    assert sender.typed_choices == {"zalo"}
    await sender.close()
    channel = build_zalo_channel(settings, Host(zalo.core, threads=0))
    assert channel.text_limit == 500
    await channel.close()
