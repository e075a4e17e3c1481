"""The Labour Federation's reports in chat: `/stats` (text and chart) and `/export` (the annex as XLSX)."""

from __future__ import annotations

import io
import logging
from datetime import date, datetime, timedelta

from handlers.core import Attachment, Choice, Context, Option, parse_date, parse_number
from handlers.routing import Router
from handlers.rules.reports import chart_png, names, report_summary, start_of_day, summary_text, write_report
from storage.models import DialogueSession, Role
from storage.reports import Scope
from storage.sessions import list_sessions

log = logging.getLogger(__name__)
router = Router("reports", roles=(Role.OFFICER, Role.ADMIN))



def scope_of(ctx: Context, args: str) -> tuple[Scope, str] | None:
    """The report's scope from `session N`, `DD/MM/YYYY DD/MM/YYYY`, `month`, `year` or nothing (all)."""
    words = args.split()
    if not words:
        return Scope(), ctx.t("All concerns")
    if words[0] == "session" and len(words) == 2:
        number = parse_number(words[1])
        dialogue = ctx.session.get(DialogueSession, number) if number is not None else None
        if dialogue is None:
            return None
        return Scope(session_id=dialogue.id), ctx.t("Dialogue session: {name}", name=dialogue.name)
    today = ctx.today()
    if words == ["month"]:
        first, last = today.replace(day=1), today
    elif words == ["year"]:
        first, last = today.replace(month=1, day=1), today
    elif len(words) == 2 and (first_typed := parse_date(words[0])) and (last_typed := parse_date(words[1])):
        first, last = first_typed, last_typed
    else:
        return None
    if last < first:
        return None
    return (Scope(since=_start_of(ctx, first), until=_start_of(ctx, last + timedelta(days=1))),
            ctx.t("From {first} to {last}", first=ctx.t.date(first), last=ctx.t.date(last)))


def _start_of(ctx: Context, day: date) -> datetime:
    return start_of_day(day, ctx.policy.zone)


def _scopes(ctx: Context, command: str) -> list[Option]:
    """The usual scopes, as choices: the latest sessions, this month, this year, everything."""
    options = [Option(Choice.command(command, f"session {s.id}"), s.name)
               for s in list_sessions(session=ctx.session)[:4]]
    return options + [Option(Choice.command(command, "month"), ctx.t("This month")),
                      Option(Choice.command(command, "year"), ctx.t("This year")),
                      Option(Choice.command(command), ctx.t("All concerns"))]


def _refuse(ctx: Context, command: str) -> None:
    ctx.say(ctx.t("Choose what the report covers, or type two dates, for example: /{command} {first} {last}",
                  command=command, first=ctx.t.typed_date(ctx.today().replace(day=1)),
                  last=ctx.t.typed_date(ctx.today())), _scopes(ctx, command))


@router.command("stats")
def stats(ctx: Context) -> None:
    """Counts by state, topic and agency, answers on time, time to answer and satisfaction, with a chart."""
    found = scope_of(ctx, ctx.incoming.args)
    if found is None:
        _refuse(ctx, "stats")
        return
    scope, title = found
    summary = report_summary(ctx.t, scope, today=ctx.today(), session=ctx.session)
    name_of = names(ctx.t, ctx.session)
    text = summary_text(ctx.t, summary, title, name_of)
    if not summary.total:
        ctx.say(text, _scopes(ctx, "stats"))
        return
    chart = chart_png(ctx.t, summary, title, name_of)
    ctx.say(text, _scopes(ctx, "stats"), attachment=Attachment("photo", data=chart, name="thong-ke.png"))


@router.command("export")
def export(ctx: Context) -> None:
    """The annex "Tổng hợp ý kiến, kiến nghị, đề xuất của công nhân lao động" as a workbook."""
    words = ctx.incoming.args.split()
    with_authors = bool(words) and words[-1].lower() == "names"  # `/export month names`: asked explicitly
    if with_authors and ctx.person.role != Role.ADMIN:
        ctx.say(ctx.t("Only an admin can export the names of those who raised concerns."), _scopes(ctx, "export"))
        return
    found = scope_of(ctx, " ".join(words[:-1] if with_authors else words))
    if found is None:
        _refuse(ctx, "export")
        return
    scope, subtitle = found
    title = ctx.t("Summary of workers' opinions, concerns and proposals") + " – " + subtitle
    buffer = io.BytesIO()
    count = write_report(buffer, ctx.t, scope, title, today=ctx.today(), session=ctx.session,
                         with_authors=with_authors)
    name = f"kien-nghi-{ctx.today():%Y-%m-%d}.xlsx"
    if with_authors:
        log.info("person %s exported %d concerns with the names of those who raised them", ctx.person.id, count)
        text = ctx.t.plural("{count} concern, with the name of the worker who raised it (none for an anonymous "
                            "concern). The file holds personal data: keep it safe and do not forward it.",
                            "{count} concerns, with the names of the workers who raised them (none for anonymous "
                            "concerns). The file holds personal data: keep it safe and do not forward it.",
                            count, count=count)
    else:
        text = ctx.t.plural("{count} concern, without the names of those who raised it.",
                            "{count} concerns, without the names of those who raised them.", count, count=count)
    ctx.say(text, attachment=Attachment("document", data=buffer.getvalue(), name=name))
