"""Messages for other people, queued in the outbox in each recipient's own language."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from locales import Catalogs, Plural, Translator
from storage.models import Person, ReferenceItem
from storage.outbox import OutboxBatch, enqueue


class Verbatim(str):
    """A label shown as written (a tracking code, a name), not looked up in the catalogs."""

    __slots__ = ()


def localized(value: object, t: Translator) -> object:
    """A value for a message in someone's language: dates and reference items rendered for them."""
    if callable(value):
        return value(t)
    if isinstance(value, date):
        return t.date(value)
    if isinstance(value, ReferenceItem):
        return t.name(value)
    return value


def tell(recipient: Person, message: str | Plural, *, catalogs: Catalogs, session: Session,
         options: list[tuple[str, str]] | None = None, file: tuple[str, str] | None = None,
         into: OutboxBatch | None = None, **values: object) -> None:
    """Queue a message (a msgid) for someone; it is sent once the caller's transaction commits.

    Option labels are msgids too. Dates and reference items are rendered in the recipient's
    language; a value may also be a function of their translator. `into` collects messages that
    are written together later (a sweep queues hundreds)."""
    t = catalogs.pick(recipient.locale, recipient.messenger_locale)
    resolved = {key: localized(value, t) for key, value in values.items()}
    text = t(message, **resolved)
    labels = [(key, label if isinstance(label, Verbatim) else t(label)) for key, label in options or []]
    if into is not None and file is None:
        into.add(recipient, text, options=labels)
        return
    enqueue(recipient, text, session=session, options=labels,
            file_id=file[1] if file else None, file_kind=file[0] if file else None)
