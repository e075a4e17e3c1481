"""The people of the case loop: an admin, an officer, two agency liaisons and a worker."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.conftest import TelegramHarness
from tests.fake_telegram import TelegramPerson

ADMIN, OFFICER, LABOUR, INSURANCE, WORKER, OTHER = 1, 2, 3, 4, 5, 6


@dataclass
class Cast:
    admin: TelegramPerson
    officer: TelegramPerson
    labour: TelegramPerson
    insurance: TelegramPerson
    worker: TelegramPerson


async def onboard(person: TelegramPerson, lang: str = "vi") -> None:
    await person.send("/start")
    await person.press(f"lang:{lang}")
    await person.press("agree")


async def invite(admin: TelegramPerson, args: str) -> str:
    replies = await admin.send(f"/invite {args}")
    match = re.search(r"start=(inv_[\w-]+)", replies[-1].text)
    assert match, replies[-1].text
    return match.group(1)


async def staff_up(loop: TelegramHarness) -> Cast:
    cast = Cast(
        admin=loop.person(ADMIN, "Hà", "Admin"), officer=loop.person(OFFICER, "Minh", "Cán bộ"),
        labour=loop.person(LABOUR, "Sở", "LĐTBXH"), insurance=loop.person(INSURANCE, "BHXH", "Tỉnh"),
        worker=loop.person(WORKER, "Lan", "Nguyễn", language_code="en"),
    )
    await onboard(cast.admin)
    for person, args in ((cast.officer, "officer"), (cast.labour, "agency sldtbxh"),
                         (cast.insurance, "agency bhxh")):
        await onboard(person)
        token = await invite(cast.admin, args)
        await person.send(f"/start {token}")
    return cast


async def submit(worker: TelegramPerson, *, visibility: str = "vis:union", lang: str = "en") -> str:
    await onboard(worker, lang)
    await worker.press("/new")
    await worker.press("cat:wages")
    await worker.send("Công ty TNHH Minh Phát")
    await worker.press("place:kcn_dinh_tram")
    await worker.send("Công ty chưa trả lương làm thêm giờ tháng 6.")
    await worker.send_photo("payslip-photo")
    await worker.press("files:done")
    await worker.press(visibility)
    replies = await worker.press("send")
    match = re.search(r"KN-[0-9A-Z]{4}-[0-9A-Z]{4}", replies[0].text)
    assert match
    return match.group(0)


