"""UTC timestamps as fixed-width ISO-8601 text: they sort as text, which the ledger's indexes rely on."""

from __future__ import annotations

from datetime import date, datetime, timezone

TS_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("naive datetime: the ledger stores UTC, give a timezone")
    # isoformat is several times faster than strftime, and this runs once per ledger post.
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")[:26] + "Z"


def now_ts() -> str:
    return to_ts(utcnow())


def parse_ts(text: str, default_tz=timezone.utc) -> datetime:
    """Accept `2026-11-23`, `2026-11-23T10:00`, `...Z` or `...+01:00`; naive values are in `default_tz`.

    A bare date means the end of that day: "stock as of 2026-10-31" is the stock at closing time.
    """
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            moment = datetime(day.year, day.month, day.day, 23, 59, 59, 999999)
        else:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T", 1))
    except ValueError as exc:
        raise ValueError(f"not a date or timestamp: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS][+01:00])") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=default_tz)
    return moment.astimezone(timezone.utc)


def from_epoch(seconds: float) -> datetime:
    """A `time.time()` value as an aware UTC datetime (device readers stamp events that way)."""
    return datetime.fromtimestamp(seconds, timezone.utc)
