"""Gettext catalogs (vi, en), read from their .po files at start-up, and dates per person.

Every layer above storage shows text, so translation lives here, beside the catalogs."""

from __future__ import annotations

import gettext
import io
import logging
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

log = logging.getLogger(__name__)
LOCALES = ("vi", "en")
STRICT = False  # tests set it: a message missing from a catalog raises instead of falling back
# Vietnamese style is fixed by the issue (20/08/2024); English spells the month to avoid 08/20.
DATE_PATTERNS = {"vi": "dd/MM/yyyy", "en": "d MMM yyyy"}
# "03:05 ngày 03/12/2026" is how Vietnamese writes a time on a date.
DATETIME_PATTERNS = {"vi": "HH:mm 'ngày' dd/MM/yyyy", "en": "d MMM yyyy, HH:mm"}


Day = date  # inside Translator, `date` names its method


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated later, where it is shown."""
    return message


@dataclass(frozen=True)
class Plural:
    """A message whose words depend on a number ("1 day left", "2 days left"), translated later."""

    singular: str
    plural: str
    n: int


class Translator:
    """One person's language: `t("msgid", name=...)` translates, then formats."""

    def __init__(self, locale: str, translations: gettext.NullTranslations, zone: ZoneInfo) -> None:
        self.locale = locale
        self._translations = translations
        self.zone = zone
        self.missing: set[str] = set()

    def __call__(self, message: str | Plural, **values: object) -> str:
        if isinstance(message, Plural):
            return self.plural(message.singular, message.plural, message.n, **values)
        self._check(message, message)
        text = self._translations.gettext(message)
        return text.format(**values) if values else text

    def plural(self, singular: str, plural: str, n: int, **values: object) -> str:
        """The form of a message that fits the number `n` ("1 day left", "2 days left")."""
        self._check((singular, 0), singular)
        return self._translations.ngettext(singular, plural, n).format(**values)

    def _check(self, key: object, message: str) -> None:
        catalog = getattr(self._translations, "_catalog", {})
        if key not in catalog and message not in self.missing:
            # A message the extractor could not see (say, a call inside an f-string) is shown
            # in English: log it once; the tests make it fail.
            self.missing.add(message)
            log.warning("no %s translation for %r", self.locale, message)
            if STRICT:
                raise LookupError(f"no {self.locale} translation for {message!r}")

    def date(self, value: date | datetime) -> str:
        """A date in the person's style, in the configured time zone."""
        if isinstance(value, datetime):
            value = value.astimezone(self.zone).date()
        return _formatted_date(value, self.locale)

    def typed_date(self, value: Day) -> str:
        """A date as a person types it (20/08/2024), in every language: the example of what is accepted."""
        return f"{value:%d/%m/%Y}"

    def datetime(self, value: datetime) -> str:
        """A time and date in the person's style, in the configured time zone."""
        return format_datetime(value, DATETIME_PATTERNS[self.locale], tzinfo=self.zone, locale=self.locale)

    def number(self, value: int) -> str:
        """A whole number with the locale's grouping (3.000 in Vietnamese, 3,000 in English)."""
        return format_decimal(value, locale=self.locale)

    def name(self, item: object) -> str:
        """The name of a reference item (category, place, agency) in the person's language."""
        return str(getattr(item, "name_vi" if self.locale == "vi" else "name_en"))


@lru_cache(maxsize=4096)
def _formatted_date(value: date, locale: str) -> str:
    # Babel takes tens of microseconds a date; a digest or reminder shows the same few dates often.
    return format_date(value, DATE_PATTERNS[locale], locale=locale)


def load_translations(locale: str) -> gettext.NullTranslations:
    """Read `locales/<locale>/LC_MESSAGES/messages.po` and compile it in memory."""
    po = resources.files("locales").joinpath(f"{locale}/LC_MESSAGES/messages.po")
    with po.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


class Catalogs:
    """All translators, built once at start-up."""

    def __init__(self, default_locale: str, zone: ZoneInfo) -> None:
        self.default_locale = default_locale
        self._translators = {loc: Translator(loc, load_translations(loc), zone) for loc in LOCALES}

    def get(self, locale: str | None) -> Translator:
        """The translator for a locale (the default one when unknown)."""
        return self._translators.get(locale or "", self._translators[self.default_locale])

    def pick(self, stored: str | None, language_code: str | None) -> Translator:
        """The person's choice, else the messenger's language code, else the default."""
        if stored in self._translators:
            return self._translators[stored]
        code = (language_code or "").split("-")[0].lower()
        if code in self._translators:
            return self._translators[code]
        return self._translators[self.default_locale]
