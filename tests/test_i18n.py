"""Every message the code can show is translated, with the same placeholders, in NFC."""

from __future__ import annotations

import string
import unicodedata
from functools import cache
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from locales import LOCALES, load_translations

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"t": None, "N_": None, "plural": (1, 2), "Plural": (1, 2)}


@cache
def extracted() -> dict[str, list[str]]:
    """Every msgid in bot/ and handlers/, with where it is used."""
    found: dict[str, list[str]] = {}
    for folder in ("bot", "handlers"):
        for filename, lineno, message, _comments, _context in extract_from_dir(
                ROOT / folder, method_map=[("**.py", "python")], keywords=KEYWORDS):
            msgid = message if isinstance(message, str) else message[0]
            found.setdefault(msgid, []).append(f"{folder}/{filename}:{lineno}")
    return found


@cache
def catalog(locale: str) -> Catalog:
    with (ROOT / "locales" / locale / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle, locale=locale)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def _report(problems: list[str]) -> str:
    return f"{len(problems)} message(s):\n" + "\n".join(problems[:40])


def test_extraction_finds_the_worker_messages() -> None:
    messages = extracted()
    assert "Step 1 of 6. What is your concern about?" in messages
    assert "Received, waiting for the union" in messages  # marked with N_
    assert len(messages) > 100


def test_every_message_has_a_vietnamese_translation() -> None:
    vi = catalog("vi")
    problems = []
    for msgid, where in sorted(extracted().items()):
        entry = vi.get(msgid)
        if entry is None:
            problems.append(f"missing: {msgid!r} ({where[0]})")
        elif not all(str(form).strip() for form in
                     (entry.string if isinstance(entry.string, tuple) else (entry.string,))):
            problems.append(f"untranslated: {msgid!r} ({where[0]})")
        elif entry.fuzzy:
            problems.append(f"fuzzy: {msgid!r} ({where[0]})")
    assert not problems, _report(problems)


def test_every_message_is_in_the_english_catalog() -> None:
    en = catalog("en")
    missing = [f"{msgid!r} ({where[0]})" for msgid, where in sorted(extracted().items()) if en.get(msgid) is None]
    assert not missing, _report(missing)


@pytest.mark.parametrize("locale", LOCALES)
def test_translations_keep_the_placeholders(locale: str) -> None:
    problems = []
    for msgid in extracted():
        entry = catalog(locale).get(msgid)
        if entry is None or not entry.string:
            continue
        forms = entry.string if isinstance(entry.string, tuple) else (entry.string,)
        if any(placeholders(str(form)) != placeholders(msgid) for form in forms):
            problems.append(f"{msgid!r} -> {entry.string!r}")
    assert not problems, _report(problems)


def test_vietnamese_translations_are_nfc() -> None:
    problems = [f"{m.id!r}" for m in catalog("vi") if m.id and m.string
                and any(unicodedata.normalize("NFC", str(form)) != str(form)
                        for form in (m.string if isinstance(m.string, tuple) else (m.string,)))]
    assert not problems, _report(problems)


@pytest.mark.parametrize("locale", LOCALES)
def test_catalog_compiles_and_formats_every_message(locale: str) -> None:
    translations = load_translations(locale)
    for msgid in extracted():
        values = {name: "x" for name in placeholders(msgid)}
        translations.gettext(msgid).format(**values)  # a broken brace in a translation would raise here
        for n in (1, 2, 5):  # every plural form, for messages that have them
            translations.ngettext(msgid, msgid, n).format(**values)
