"""A first walk through the worker's dialog on Telegram."""

from __future__ import annotations

from sqlmodel import select

from storage.db import new_session
from storage.models import Concern


async def test_worker_submits_concern_through_buttons(telegram) -> None:
    lan = telegram.person(501)
    replies = await lan.send("/start")
    assert "kiennghi" in replies[0].text
    await lan.press("lang:vi")
    await lan.press("agree")
    await lan.press("/new")
    await lan.press("cat:wages")
    await lan.send("Công ty TNHH Minh Phát")
    await lan.press("place:kcn_dinh_tram")
    await lan.send("Công ty nợ lương tháng 6 và tháng 7 của công nhân.")
    await lan.press("files:done")
    await lan.press("vis:union")
    replies = await lan.press("send")
    with new_session(telegram.core.engine) as session:
        concern = session.exec(select(Concern)).one()
    assert concern.tracking_code in replies[0].text
    assert concern.enterprise == "Công ty TNHH Minh Phát"
