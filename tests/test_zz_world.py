from tests.chat import codes_in, options_of
from tests.flows import MENU, onboard, submit_concern


async def test_submit(world):
    lan = world.person(5, language="en")
    replies = await lan.send("/start")
    assert options_of(replies) == ["Tiếng Việt", "English"]
    await lan.choose("English")
    r = await lan.choose("I agree")
    assert options_of(r) == MENU
    code = await submit_concern(lan, photos=["p1"])
    assert codes_in([lan.inbox[-2]]) == [code]
    hoa = world.person(6, language="vi")
    await onboard(hoa, "en")
    await submit_concern(hoa, anonymous=True, place=None, enterprise=None)
    assert lan.dialog().flow is None
