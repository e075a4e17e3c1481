"""The people of the case loop, on any channel: an admin, an officer, two agency liaisons and a worker.

Staff speak Vietnamese (as in the province), the worker English. Choices are made by the label a
person reads (see tests/chat.py); labels come from locales/*/LC_MESSAGES/messages.po and
storage/reference/bac_ninh.toml.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import select

from storage.db import new_session
from storage.models import Concern
from tests.chat import CODE, Chat, Screen, text_of
from tests.flows import onboard, submit_concern

ADMIN, OFFICER, LABOUR, INSURANCE, WORKER, OTHER = 1, 2, 3, 4, 5, 6

# Agencies as the (Vietnamese-speaking) officer reads them.
LABOUR_AGENCY = "Sở Nội vụ"  # labour matters since 2025 (storage/reference/bac_ninh.toml)
INSURANCE_AGENCY = "Cơ quan Bảo hiểm xã hội"
DESCRIPTION = "Công ty chưa trả lương làm thêm giờ tháng 6."
PAYSLIP = "payslip-photo"
INVITATION = re.compile(r"/start (inv_[\w-]+)")


@dataclass
class Cast:
    admin: Chat
    officer: Chat
    labour: Chat
    insurance: Chat
    worker: Chat


async def invite(admin: Chat, args: str) -> str:
    """`/invite ...`; the payload to send as `/start <payload>` (printed for every messenger)."""
    replies = await admin.send(f"/invite {args}")
    match = INVITATION.search(text_of(replies))
    assert match, text_of(replies)
    return match.group(1)


async def staff_up(world: Any) -> Cast:
    """Person 1 (a configured admin) invites an officer and a liaison of two agencies."""
    cast = Cast(
        admin=world.person(ADMIN, "Hà Admin"), officer=world.person(OFFICER, "Minh Cán bộ"),
        labour=world.person(LABOUR, "Sở LĐTBXH"), insurance=world.person(INSURANCE, "BHXH Tỉnh"),
        worker=world.person(WORKER, "Lan Nguyễn", language="en"),
    )
    await onboard(cast.admin, "vi")
    for chat, args in ((cast.officer, "officer"), (cast.labour, "agency snv"),
                       (cast.insurance, "agency bhxh")):
        await onboard(chat, "vi")
        token = await invite(cast.admin, args)
        welcome = await chat.send(f"/start {token}")
        expected = "Kính chào Quý cơ quan" if args.startswith("agency") else "Chào mừng bạn! Vai trò của bạn"
        assert expected in text_of(welcome), text_of(welcome)
    return cast


async def submit(worker: Chat, *, anonymous: bool = False) -> str:
    """The worker onboards in English and raises a wages concern with a payslip photo; its code."""
    await onboard(worker, "en")
    return await submit_concern(worker, description=DESCRIPTION, photos=[PAYSLIP], anonymous=anonymous)


def concern(world: Any, code: str) -> Concern:
    """A concern as stored."""
    with new_session(world.engine) as session:
        return session.exec(select(Concern).where(Concern.tracking_code == code)).one()


async def delivered(world: Any) -> dict[int, list[Screen]]:
    """Deliver the outbox; what each person received from it (every person of the world has a key)."""
    before = {int(key): len(chat.inbox) for key, chat in world.chats.items()}
    await world.deliver_outbox()
    return {int(key): chat.inbox[before[int(key)]:] for key, chat in world.chats.items()}


def texts(screens: list[Screen]) -> list[str]:
    """The texts of these screens (a file sent without a caption reads as an empty text)."""
    return [s.text for s in screens]


def cases(screen: Screen) -> list[str]:
    """The choices of a screen that open a concern (labelled by its tracking code)."""
    return [label for label in screen.options if CODE.fullmatch(label)]


def default_deadline(chat: Chat) -> str:
    """The label of the default-deadline choice, e.g. “20/08/2099 (15 ngày)” / “20 Aug 2099 (15 days)”."""
    label = next((o for o in chat.last_options() if re.search(r"\(\d+ (ngày|days)\)$", o)), None)
    assert label, chat.last_options()
    return label


async def assign_to_labour(officer: Chat, code: str) -> list[Screen]:
    """The (Vietnamese) officer assigns a concern to the labour department with the default deadline."""
    await officer.send(f"/assign {code}")
    await officer.choose(LABOUR_AGENCY)
    await officer.choose("Tiếp tục (đã chọn 1)")
    return await officer.choose(default_deadline(officer))


