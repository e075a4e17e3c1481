"""Working days: Monday to Friday, without Vietnam's public holidays and the configured days off."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from functools import lru_cache

import holidays

WEEKDAYS = frozenset(range(5))  # Monday (0) to Friday (4)


@lru_cache(maxsize=16)
def _public_holidays(year: int) -> frozenset[date]:
    # Vietnam's calendar, the lunar new year (Tết) and substituted days included.
    return frozenset(holidays.country_holidays("VN", years=year))


@dataclass(frozen=True)
class Calendar:
    """Which days are working days."""

    extra_days_off: frozenset[date] = frozenset()
    workdays: frozenset[int] = WEEKDAYS

    def is_working_day(self, day: date) -> bool:
        """Whether offices work on this day."""
        return (day.weekday() in self.workdays and day not in self.extra_days_off
                and day not in _public_holidays(day.year))

    def on_or_before(self, day: date) -> date:
        """The day itself if it is a working day, else the working day before it."""
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def after(self, day: date) -> date:
        """The first working day after this day."""
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def working_days_before(self, day: date, count: int) -> date:
        """The working day `count` working days before `day` (0: the day, or the working day before)."""
        result = self.on_or_before(day)
        for _ in range(count):
            result = self.on_or_before(result - timedelta(days=1))
        return result

    def working_days_after(self, day: date, count: int) -> date:
        """The working day `count` working days after `day`."""
        for _ in range(count):
            day = self.after(day)
        return day


@dataclass(frozen=True)
class ReminderPolicy:
    """When reminders, escalations and digests go out; every value is a setting."""

    calendar: Calendar = field(default_factory=Calendar)
    hour: time = time(8, 0)  # reminders, overdue notices, escalations and the digest
    stages: tuple[int, ...] = (7, 3, 1, 0)  # working days before the deadline
    escalation_every_days: int = 7
    arrivals_minutes: int = 30  # new concerns told to officers at most this often (0: never)
    working_hours: tuple[time, time] = (time(8, 0), time(17, 0))
    quiet_hours: tuple[time, time] = (time(21, 0), time(7, 0))
    federation: tuple[str, str] = ("Liên đoàn Lao động", "Labour Federation")  # who reminds: (vi, en)

    def federation_in(self, locale: str) -> str:
        """The Labour Federation's name, as reminders sign it, in a language."""
        return self.federation[0] if locale == "vi" else self.federation[1]

    def is_quiet(self, moment: time) -> bool:
        """Whether reminders and digests are held at this local time."""
        start, end = self.quiet_hours
        if start == end:
            return False
        return start <= moment or moment < end if start > end else start <= moment < end

    def in_working_hours(self, moment: time) -> bool:
        """Whether this local time is within working hours."""
        start, end = self.working_hours
        return start <= moment < end
