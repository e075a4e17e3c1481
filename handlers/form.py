"""The concern form: the steps a worker answers in /new, and an officer in /enter for a worker.

Each dialog that uses them declares these step names in its own order; a step goes on to the one
its dialog declares next.
"""

from __future__ import annotations

from datetime import date

from handlers.core import Answer, Choice, Context, Option, parse_number
from handlers.routing import Flow
from storage.models import Enterprise
from storage.reference import list_items, match_enterprises, search_key

MIN_DESCRIPTION = 10
MAX_DESCRIPTION = 3000
MAX_ENTERPRISE = 200
MAX_ATTACHMENTS = 5


def advance(ctx: Context, next_step: str | None = None) -> None:
    """Go on to the next step (the declared one by default), or back to the summary after an edit."""
    ctx.goto("confirm" if ctx.data.pop("editing", False) else next_step or ctx.next_step())


def cancel_option(ctx: Context) -> Option:
    """The Cancel choice of every step."""
    return Option(Choice("cancel"), ctx.t("Cancel"))


def for_staff(ctx: Context) -> bool:
    """Whether an officer is filling the form for a worker (the steps then speak to the officer)."""
    flow = ctx.routes.flows.get(ctx.state.flow or "")
    return flow is not None and flow.for_staff


def valid_on(ctx: Context) -> date:
    """The day whose places and topics are offered: the session's, for a concern raised at an earlier
    session (a 2024 conference had districts that no longer exist), else today."""
    held = ctx.data.get("held_on")
    return date.fromisoformat(str(held)) if held else ctx.today()


def ask_category(ctx: Context, answer: Answer | None) -> None:
    """What the concern is about."""
    categories = list_items("category", session=ctx.session, on=valid_on(ctx))
    options = [Option(Choice("cat", c.code), ctx.t.name(c)) for c in categories]
    chosen = answer.picked("cat") if answer else None
    if not chosen:
        if answer is not None:
            ctx.say(ctx.t("Please choose a topic from the list (you can type its number)."))
        question = (ctx.t("What is the concern about?") if for_staff(ctx)
                    else ctx.t("Step 1 of 6. What is your concern about?"))
        ctx.say(question, [*options, cancel_option(ctx)])
        return
    ctx.data["category"] = chosen
    advance(ctx)


def ask_enterprise(ctx: Context, answer: Answer | None) -> None:
    """Which enterprise it concerns: free text, with known names offered."""
    options = [Option(Choice("ent", "none"), ctx.t("No specific company")), cancel_option(ctx)]
    if answer is None:
        ctx.say(ctx.t("Which enterprise (company) is it about? Type its name, or choose “{none}”.",
                      none=options[0].label) if for_staff(ctx) else
                ctx.t("Step 2 of 6. Which enterprise (company) is it about?\n"
                      "Type its name, for example: Công ty TNHH ABC."), options)
        return
    if answer.picked("ent") == "none":
        ctx.data["enterprise"] = ""
        advance(ctx, "place")
        return
    text = answer.text or ""
    if len(text) < 2 or len(text) > MAX_ENTERPRISE:
        ctx.say(ctx.t("Please type the enterprise's name (2 to {max} characters).", max=MAX_ENTERPRISE), options)
        return
    matches = match_enterprises(text, session=ctx.session)
    exact = next((m for m in matches if m.search_key == search_key(text)), None)
    if exact is not None or not matches:
        ctx.data["enterprise"] = exact.name if exact else text
        advance(ctx, "place")
        return
    ctx.data["enterprise_typed"] = text
    ctx.data["enterprise_matches"] = [m.id for m in matches]
    ctx.goto("enterprise_pick")


def pick_enterprise(ctx: Context, answer: Answer | None) -> None:
    """Choose a known enterprise that matches what was typed, or keep the typed name."""
    typed = str(ctx.data.get("enterprise_typed", ""))
    ids = list(ctx.data.get("enterprise_matches", []))
    known = [e for e in (ctx.session.get(Enterprise, i) for i in ids) if e is not None]
    options = [Option(Choice("ent", str(e.id)), e.name) for e in known]
    options += [Option(Choice("ent", "typed"), ctx.t("Keep the name as typed: “{name}”", name=typed)),
                cancel_option(ctx)]
    if answer is None:
        ctx.say(ctx.t("Is it one of these companies?") if for_staff(ctx)
                else ctx.t("Is the company you mean one of the names below?"), options)
        return
    picked = answer.picked("ent")
    number = parse_number(picked or "")
    if picked == "typed":
        ctx.data["enterprise"] = typed
    elif number is not None and number in ids:
        ctx.data["enterprise"] = next(e.name for e in known if e.id == number)
    elif answer.text:  # typed another name: treat it as a fresh answer to the question
        ctx.state.step = "enterprise"
        ask_enterprise(ctx, answer)
        return
    else:
        ctx.say(ctx.t("Please choose one of the options."), options)
        return
    for key in ("enterprise_typed", "enterprise_matches"):
        ctx.data.pop(key, None)
    advance(ctx, "place")


def ask_place(ctx: Context, answer: Answer | None) -> None:
    """Where: an industrial park or a district."""
    day = valid_on(ctx)
    places = list_items("industrial_park", session=ctx.session, on=day) + list_items("district", session=ctx.session,
                                                                                      on=day)
    options = [Option(Choice("place", p.code), ctx.t.name(p)) for p in places]
    options += [Option(Choice("place"), ctx.t("Skip")), cancel_option(ctx)]
    if answer is None or not answer.chose("place"):
        if answer is not None:
            ctx.say(ctx.t("Please choose a place from the list (you can type its number)."))
        skip = options[-2].label
        ctx.say(ctx.t("Where is it? Choose the industrial park or the area, or “{skip}”.", skip=skip)
                if for_staff(ctx) else
                ctx.t("Step 3 of 6. Where is it? Choose the industrial park or the area "
                      "(if you are not sure, choose “{skip}”).", skip=skip), options, columns=2)
        return
    ctx.data["place"] = answer.picked("place") or None
    advance(ctx)


def ask_description(ctx: Context, answer: Answer | None) -> None:
    """The concern in the worker's words, or a voice note."""
    if answer is None:
        ctx.say(ctx.t("Type the concern as the worker raised it (at least {min} characters), "
                      "or send a voice recording.", min=MIN_DESCRIPTION) if for_staff(ctx) else
                ctx.t("Step 4 of 6. Describe your concern: what happened, where and since when "
                      "(at least {min} characters).\nIf you prefer not to write, you can send a voice note.",
                      min=MIN_DESCRIPTION), [cancel_option(ctx)])
        return
    files = ctx.data.setdefault("attachments", [])
    media = answer.attachment
    if media is not None and media.kind in ("voice", "audio"):
        # A spoken description replaces an earlier one; it is not one of the 5 photos or documents.
        files[:] = [f for f in files if f["kind"] != "voice"]
        files.append({"kind": "voice", "file_id": media.file_id, "size": media.size})
        ctx.data["description"] = ctx.data.get("description") or ""
        ctx.say(ctx.t("Voice note received."))
        advance(ctx, "attachments")
        return
    if media is not None:
        if len(documents(files)) < MAX_ATTACHMENTS:
            files.append({"kind": media.kind, "file_id": media.file_id, "size": media.size})
        if not answer.text:  # a caption, if any, is the description
            ctx.say(ctx.t("File received. Please also describe the concern in words or in a voice note."))
            return
    text = answer.text or ""
    if len(text) < MIN_DESCRIPTION:
        ctx.say(ctx.t("That is too short. Please write at least {min} characters, "
                      "or send a voice note.", min=MIN_DESCRIPTION))
        return
    if len(text) > MAX_DESCRIPTION:
        ctx.say(ctx.t("That is too long ({length} characters). Please shorten it to at most {max}.",
                      length=ctx.t.number(len(text)), max=ctx.t.number(MAX_DESCRIPTION)))
        return
    ctx.data["description"] = text
    advance(ctx, "attachments")


def ask_attachments(ctx: Context, answer: Answer | None) -> None:
    """Up to five photos or documents, or none."""
    files = ctx.data.setdefault("attachments", [])
    done = [Option(Choice("files", "done"), ctx.t("Done") if files else ctx.t("Skip")), cancel_option(ctx)]
    if answer is None:
        ctx.say(ctx.t("Add up to {max} photos or documents, or choose “{done}”.", max=MAX_ATTACHMENTS,
                      done=done[0].label) if for_staff(ctx) else
                ctx.t("Step 5 of 6. You may add up to {max} photos or documents "
                      "(for example a payslip). Send them now, or choose “{done}”.",
                      max=MAX_ATTACHMENTS, done=done[0].label), done)
        return
    if answer.picked("files") == "done":
        advance(ctx, ctx.after("attachments"))
        return
    media = answer.attachment
    if media is None or media.kind in ("voice", "audio"):
        ctx.say(ctx.t("Please send a photo or a document, or choose “{done}”.", done=done[0].label), done)
        return
    if len(documents(files)) >= MAX_ATTACHMENTS:
        ctx.say(ctx.t("You have already added {max} files, the most allowed.", max=MAX_ATTACHMENTS))
        advance(ctx, ctx.after("attachments"))
        return
    files.append({"kind": media.kind, "file_id": media.file_id, "size": media.size})
    count = len(documents(files))
    if count >= MAX_ATTACHMENTS:
        ctx.say(ctx.t("File {n} of {max} received.", n=count, max=MAX_ATTACHMENTS))
        advance(ctx, ctx.after("attachments"))
        return
    ctx.say(ctx.t("File {n} of {max} received. Send another, or choose “Done”.",
                  n=count, max=MAX_ATTACHMENTS), [Option(Choice("files", "done"), ctx.t("Done")), cancel_option(ctx)])


def documents(files: list[dict[str, object]]) -> list[dict[str, object]]:
    """The photos and documents among the files (a voice note is the description, not one of them)."""
    return [f for f in files if f["kind"] != "voice"]


def attach_to(flow: Flow) -> None:
    """Give a dialog the form's steps (it declares them, in its order)."""
    for name, function in (("category", ask_category), ("enterprise", ask_enterprise),
                           ("enterprise_pick", pick_enterprise), ("place", ask_place),
                           ("description", ask_description), ("attachments", ask_attachments)):
        flow.step(name)(function)
