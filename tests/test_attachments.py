"""Voice notes and files in the dialog: a spoken description is not one of the five files."""

from __future__ import annotations

from storage.models import Attachment
from tests.chat import Chat, options_of, text_of
from tests.flows import UNION, onboard, rows


async def _at_description(chat: Chat) -> None:
    """Onboarded in English, at step 4 of a safety concern with no company and no place."""
    await onboard(chat)
    await chat.send("/new")
    await chat.choose("Occupational safety and health")
    await chat.choose("No specific company")
    await chat.choose("Skip")


async def test_voice_description_leaves_room_for_five_photos(world) -> None:
    worker = world.person(801, language="en")
    await _at_description(worker)
    await worker.send_voice("voice-77")
    first = await worker.send_photo("p1")
    assert "File 1 of 5" in text_of(first)
    for n in range(2, 6):
        last = await worker.send_photo(f"p{n}")
    assert "File 5 of 5" in text_of(last)
    await worker.choose(UNION)
    await worker.choose("Send")
    kinds = sorted(a.kind for a in rows(world.engine, Attachment))
    assert kinds == ["photo"] * 5 + ["voice"]


async def test_voice_note_at_the_files_step_is_refused_politely(world) -> None:
    worker = world.person(802, language="en")
    await _at_description(worker)
    await worker.send("Nhà xưởng quá nóng, không có quạt thông gió.")
    reply = await worker.send_voice("voice-late")
    assert "photo or a document" in text_of(reply)
    assert "Skip" in reply[-1].options
    assert options_of(reply) == ["Skip", "Cancel"]
