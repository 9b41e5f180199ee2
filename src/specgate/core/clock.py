"""Time as the stores keep it: fixed-width ISO-8601 UTC strings, which sort like the instants they name."""

from __future__ import annotations

from datetime import datetime, timezone


def now_iso() -> str:
    return to_iso(datetime.now(timezone.utc))


def to_iso(moment: datetime) -> str:
    """``2026-11-23T17:32:07.123456+00:00``; naive datetimes are taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")
