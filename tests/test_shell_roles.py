"""`kiennghi shell --as ROLE`: each role can be tried in the terminal."""

from __future__ import annotations

import io

import pytest

from bot.channels.terminal import run_terminal, take_role
from handlers.dispatch import Core


def shell(core: Core, role: str, lines: str) -> str:
    out = io.StringIO()
    run_terminal(core, io.StringIO(lines), out, user_id=take_role(core, role), prompt=False)
    return out.getvalue()


def test_worker_then_officer_then_agency_in_the_terminal(core: Core) -> None:
    worker = shell(core, "worker", "/start\n2\n1\n/new\n1\n1\n1\nCông ty nợ lương tháng 6 chưa trả.\n1\n1\n1\n")
    code = worker.split("Tracking code: ")[1].split()[0]
    queue = shell(core, "officer", "/queue\n")
    assert code in queue and "1. " + code in queue
    # 1 = Sở Nội vụ, 11 = Continue, 1 = the default deadline
    assigned = shell(core, "officer", f"/assign {code}\n1\n/cancel\n/assign {code}\n1\n11\n1\n")
    assert "Cancelled" in assigned or "Đã hủy" in assigned
    mine = shell(core, "agency:snv", "/mine\n")
    assert code in mine
    answered = shell(core, "agency:snv", f"/answer {code}\nSở đã làm việc với doanh nghiệp.\n1\n1\n")
    assert code in answered
    # The worker, back in the shell, hears nothing until the union relays; then the answer.
    relayed = shell(core, "officer", f"/relay {code}\n")
    # In a shell every terminal person is "here": messages for others print with their address.
    assert "[→ worker]" in relayed and "Sở đã làm việc với doanh nghiệp." in relayed
    news = shell(core, "worker", f"/status {code}\n")
    assert "Sở đã làm việc với doanh nghiệp." in news


def test_unknown_role_or_agency_is_refused(core: Core) -> None:
    with pytest.raises(ValueError):
        take_role(core, "mayor")
    with pytest.raises(ValueError):
        take_role(core, "agency:nowhere")


def test_a_failure_inside_a_handler_gets_an_apology_and_keeps_nothing(core: Core, monkeypatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from handlers.routing import EVERYONE, Command
    from handlers.worker import NEW

    def broken(ctx):  # type: ignore[no-untyped-def]
        ctx.start(NEW)
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(core.routes.commands, "new", [Command("new", broken, EVERYONE)])
    out = shell(core, "worker", "/start\n2\n1\n/new\n/status\n")
    assert "Sorry, something went wrong on our side" in out
    assert "Traceback" not in out and "disk on fire" not in out
    assert "No concern is linked to your account yet" in out  # the shell went on; the dialog was not entered
