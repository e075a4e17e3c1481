"""Announcements from an admin to workers: audience, preview, mute, delivery and the admin's final count;
and the command menu each staff role sees on Telegram."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlmodel import select

from handlers.rules.broadcasts import report_progress
from storage.db import new_session
from storage.models import Broadcast, OutboxMessage, utcnow
from tests.cast import ADMIN, LABOUR, LABOUR_AGENCY, OFFICER, OTHER, WORKER, delivered, staff_up, submit, texts
from tests.chat import options_of, text_of
from tests.conftest import open_world
from tests.flows import onboard, submit_concern

QUIET = 7  # a worker who mutes announcements
NOTICE = "Công đoàn tổ chức khám sức khỏe miễn phí ngày 05/12 tại nhà văn hóa KCN."


async def report(world: Any) -> None:
    """The scheduler's broadcast job, once, a minute later than now (progress is due by then)."""
    with new_session(world.engine) as session:
        report_progress(session=session, catalogs=world.core.catalogs, now=utcnow() + timedelta(minutes=2))
        session.commit()


async def test_broadcast_reaches_the_chosen_workers_except_those_who_muted(world: Any) -> None:
    cast = await staff_up(world)
    await submit(cast.worker)  # Đình Trám
    other = world.person(OTHER, "Hoa Trần")
    await onboard(other, "en")
    await submit_concern(other, place="Quang Châu Industrial Park")
    quiet = world.person(QUIET, "Bình Lê")
    await onboard(quiet, "vi")
    muted = await quiet.send("tắt thông báo")
    assert "Bạn sẽ không nhận thông báo chung" in text_of(muted)
    assert "Tin về kiến nghị của bạn vẫn được gửi như thường" in text_of(muted)

    # Workers of one place: only the one who raised a concern at Quang Châu.
    await cast.admin.send("/broadcast")
    await cast.admin.choose("Người lao động ở một địa bàn")
    await cast.admin.choose("KCN Quang Châu")
    preview = await cast.admin.send(NOTICE)
    assert "Thông báo sẽ gửi đến 1 người (người lao động ở KCN Quang Châu)" in text_of(preview)
    assert NOTICE in text_of(preview) and "Gửi" in options_of(preview)
    queued = await cast.admin.choose("Gửi")
    assert "Thông báo đã vào hàng gửi cho 1 người lao động" in text_of(queued)
    fresh = await delivered(world)
    assert [t for t in texts(fresh[OTHER]) if NOTICE in t] and "type “mute”" in texts(fresh[OTHER])[0]
    assert not fresh[WORKER] and not fresh[QUIET] and not fresh[LABOUR]
    await report(world)
    final = "\n".join(texts((await delivered(world))[ADMIN]))
    assert "Đã gửi xong thông báo: 1/1 người lao động đã nhận." in final

    # All workers: both who raised concerns; not the one who muted, not the staff.
    await cast.admin.send("/broadcast")
    await cast.admin.choose("Tất cả người lao động")
    await cast.admin.send("Ngắn")  # too short: asked again
    preview = await cast.admin.send(NOTICE)
    assert "Thông báo sẽ gửi đến 2 người (tất cả người lao động)" in text_of(preview)
    await cast.admin.choose("Gửi")
    fresh = await delivered(world)
    assert any(NOTICE in t for t in texts(fresh[WORKER])) and any(NOTICE in t for t in texts(fresh[OTHER]))
    assert not fresh[QUIET] and not fresh[OFFICER] and not fresh[LABOUR]
    assert "Announcement from the Bắc Ninh City Labour Federation:" in texts(fresh[WORKER])[0]

    # Unmuted, the quiet worker is counted again.
    assert "Bạn sẽ nhận lại thông báo chung" in text_of(await quiet.send("bật thông báo"))
    await cast.admin.send("/broadcast")
    await cast.admin.choose("Tất cả người lao động")
    assert "Thông báo sẽ gửi đến 3 người" in text_of(await cast.admin.send(NOTICE))
    assert "Đã hủy. Chưa gửi thông báo nào." in text_of(await cast.admin.choose("Hủy"))


async def test_a_muted_worker_still_hears_about_their_own_concern(world: Any) -> None:
    cast = await staff_up(world)
    code = await submit(cast.worker)
    await cast.worker.send("/mute")
    await cast.officer.send(f"/case {code}")
    await cast.officer.choose("Giao xử lý")
    await cast.officer.choose(LABOUR_AGENCY)
    await cast.officer.choose("Tiếp tục (đã chọn 1)")
    await cast.officer.send("20/08/2099")
    news = "\n".join(texts((await delivered(world))[WORKER]))
    assert code in news and "20 Aug 2099" in news
    assert "Announcements: muted since" in text_of(await cast.worker.send("/mydata"))


async def test_only_admins_broadcast_and_only_workers_mute(world: Any) -> None:
    cast = await staff_up(world)
    await onboard(cast.worker, "en")
    assert "The command /broadcast is not available" in text_of(await cast.worker.send("/broadcast"))
    refused = text_of(await cast.officer.send("/broadcast"))
    assert "/broadcast" in refused and "Xem trước" not in refused
    assert "/mute" in text_of(await cast.officer.send("/mute"))
    with new_session(world.engine) as session:
        assert not session.exec(select(Broadcast)).all()


async def test_a_broadcast_nobody_can_receive_is_not_sent(world: Any) -> None:
    cast = await staff_up(world)
    await cast.admin.send("/broadcast")
    await cast.admin.choose("Tất cả người lao động")
    nobody = await cast.admin.send(NOTICE)
    assert "Không ai nhận được thông báo này" in text_of(nobody)
    assert "Tất cả người lao động" in options_of(nobody)  # asked again whom to send it to
    with new_session(world.engine) as session:
        assert not session.exec(select(OutboxMessage).where(OutboxMessage.broadcast_id.is_not(None))).all()  # type: ignore[union-attr]


async def test_a_blocked_worker_is_counted_as_not_reached(tmp_path: Path) -> None:
    async with open_world(tmp_path, "telegram") as world:
        cast = await staff_up(world)
        await submit(cast.worker)
        other = world.person(OTHER, "Hoa Trần")
        await onboard(other, "en")
        world.api.blocked.add(str(other.chat_id))
        await cast.admin.send("/broadcast")
        await cast.admin.choose("Tất cả người lao động")
        await cast.admin.send(NOTICE)
        await cast.admin.choose("Gửi")
        await world.deliver_outbox()
        await report(world)
        final = "\n".join(texts((await delivered(world))[ADMIN]))
        assert "Đã gửi xong thông báo: 1/2 người lao động đã nhận." in final
        assert "Không gửi được: 1 (đã chặn bot" in final
        # The next broadcast leaves the blocked worker out from the start, and says so.
        await cast.admin.send("/broadcast")
        await cast.admin.choose("Tất cả người lao động")
        preview = text_of(await cast.admin.send(NOTICE))
        assert "gửi đến 1 người" in preview and "1 người khác không liên lạc được" in preview


def chat_menus(world: Any) -> dict[int, dict[str, Any]]:
    """The last command menu the bot set for each chat (setMyCommands with a chat scope)."""
    found = {}
    for call in world.api.calls:
        scope = json.loads(call.params.get("scope") or "{}") if call.method == "setMyCommands" else {}
        if scope.get("type") == "chat":
            found[int(scope["chat_id"])] = call.params
    return found


async def test_staff_get_their_own_command_menu_in_their_language(tmp_path: Path) -> None:
    async with open_world(tmp_path, "telegram") as world:
        cast = await staff_up(world)
        await world.deliver_outbox()
        menus = chat_menus(world)

        def commands(chat: Any) -> dict[str, str]:
            return {c["command"]: c["description"] for c in json.loads(menus[int(chat.chat_id)]["commands"])}

        officer = commands(cast.officer)
        assert officer["queue"] == "Kiến nghị mới cần phân loại" and "broadcast" not in officer
        assert commands(cast.admin)["broadcast"] == "Gửi thông báo đến người lao động"
        assert list(commands(cast.labour)) == ["mine", "help", "cancel", "language"]
        assert int(cast.worker.chat_id) not in menus  # workers keep the general menu

        # Switching to English gives the officer the English menu; losing the role, the workers' one.
        await cast.officer.send("/language")
        await cast.officer.choose("English")
        await cast.admin.send("/revoke")
        await cast.admin.choose("Sở LĐTBXH – đầu mối cơ quan")
        await cast.admin.choose("Thu hồi vai trò")
        world.api.clear()
        await world.deliver_outbox()
        menus = chat_menus(world)
        assert commands(cast.officer)["queue"] == "New concerns to sort"
        assert list(commands(cast.labour)) == ["new", "status", "help", "cancel", "language"]
