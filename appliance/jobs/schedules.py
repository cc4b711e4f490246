"""When a job is due: every N seconds, or daily at HH:MM in the site's time zone.

The same objects answer "which slot is the latest one at `now`" (used by `JobScheduler.tick`, the catch-up at
start and `jobs list`) and give APScheduler its trigger, so the test clock and the real one agree on times.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class Every:
    seconds: float

    def describe(self) -> str:
        if self.seconds % 60 == 0:
            minutes = int(self.seconds // 60)
            return f"every {minutes} min"
        return f"every {self.seconds:g} s"

    def next_due(self, last_started: datetime | None, now: datetime) -> datetime:
        """The next run after one that started at `last_started` (none yet: due now)."""
        if last_started is None:
            return now
        return last_started + timedelta(seconds=self.seconds)

    def trigger(self, zone: ZoneInfo):
        from apscheduler.triggers.interval import IntervalTrigger
        return IntervalTrigger(seconds=self.seconds, timezone=zone)


@dataclass(frozen=True)
class Daily:
    at: str            # HH:MM, checked by the config schema
    timezone: str      # IANA name, the site's

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def describe(self) -> str:
        return f"daily at {self.at} {self.timezone}"

    def _on(self, day) -> datetime:
        hour, minute = (int(part) for part in self.at.split(":"))
        # In UTC: a local time in a spring-forward gap compares unequal to every other instant (PEP 495).
        # It resolves to the instant APScheduler's trigger uses too (the offset before the change).
        return datetime.combine(day, time(hour, minute), tzinfo=self.zone).astimezone(timezone.utc)

    def last_due(self, now: datetime) -> datetime:
        """The latest slot at or before `now`."""
        local = now.astimezone(self.zone)
        slot = self._on(local.date())
        if slot > now:
            slot = self._on(local.date() - timedelta(days=1))
        return slot

    def next_due(self, now: datetime) -> datetime:
        """The first slot after `now`."""
        local = now.astimezone(self.zone)
        slot = self._on(local.date())
        if slot <= now:
            slot = self._on(local.date() + timedelta(days=1))
        return slot

    def trigger(self, zone: ZoneInfo):
        from apscheduler.triggers.cron import CronTrigger
        hour, minute = (int(part) for part in self.at.split(":"))
        return CronTrigger(hour=hour, minute=minute, timezone=self.zone)
