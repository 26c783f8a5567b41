"""Calendar months placed from a chain's own clock, never from a fixed date: a history built today
and one built under a far-future fake clock (CI runs both) fall in months after the chain's head."""

from __future__ import annotations

import calendar
import datetime
from dataclasses import dataclass


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def after(cls, timestamp: int, months: int) -> Month:
        """The month `months` after the one holding `timestamp` (UTC)."""
        when = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
        return cls(when.year, when.month).shift(months)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def at(self, day: int, hour: int = 8) -> int:
        """Unix seconds of `day` of this month at `hour`:00 UTC."""
        return calendar.timegm((self.year, self.month, day, hour, 0, 0))

    @property
    def name(self) -> str:
        """The period as the API takes it: YYYY-MM."""
        return f"{self.year:04d}-{self.month:02d}"

    def day(self, day: int) -> str:
        """The day as a period: YYYY-MM-DD."""
        return f"{self.name}-{day:02d}"

    def week_of(self, day: int) -> str:
        """The ISO week holding `day`, as a period: YYYY-Www."""
        year, week, _ = datetime.date(self.year, self.month, day).isocalendar()
        return f"{year:04d}-W{week:02d}"

    def week_days(self, day: int) -> tuple[str, str]:
        """The first and last day (YYYY-MM-DD) of the ISO week holding `day`."""
        moment = datetime.date(self.year, self.month, day)
        monday = moment - datetime.timedelta(days=moment.weekday())
        return monday.isoformat(), (monday + datetime.timedelta(days=6)).isoformat()
