"""Voice notes and files in the dialog: a spoken description is not one of the five files."""

from __future__ import annotations

from sqlmodel import select

from storage.db import new_session
from storage.models import Attachment
from tests.worker_flow import onboard, text_of


async def test_voice_description_leaves_room_for_five_photos(telegram) -> None:  # type: ignore[no-untyped-def]
    worker = telegram.person(801, language_code="en")
    await onboard(worker)
    await worker.send("/new")
    await worker.press("cat:safety")
    await worker.press("ent:none")
    await worker.press("place:")
    await worker.send_voice("voice-77")
    first = await worker.send_photo("p1")
    assert "File 1 of 5" in text_of(first)
    for n in range(2, 6):
        last = await worker.send_photo(f"p{n}")
    assert "File 5 of 5" in text_of(last)
    await worker.press("vis:union")
    await worker.press("send")
    with new_session(telegram.core.engine) as session:
        kinds = sorted(a.kind for a in session.exec(select(Attachment)))
    assert kinds == ["photo"] * 5 + ["voice"]


async def test_voice_note_at_the_files_step_is_refused_politely(telegram) -> None:  # type: ignore[no-untyped-def]
    worker = telegram.person(802, language_code="en")
    await onboard(worker)
    await worker.send("/new")
    await worker.press("cat:safety")
    await worker.press("ent:none")
    await worker.press("place:")
    await worker.send("Nhà xưởng quá nóng, không có quạt thông gió.")
    reply = await worker.send_voice("voice-late")
    assert "photo or a document" in text_of(reply)
    assert ("Skip", "files:done") in reply[-1].buttons
