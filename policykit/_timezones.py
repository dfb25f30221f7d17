"""One shared ``timezone`` object per UTC offset, for the date-times policykit compares.

Comparing two aware date-times whose tzinfo objects differ calls ``utcoffset()`` on both
(about 0.3 µs); when they are the same object it is a field comparison (0.04 µs). pydantic
gives every parsed date-time a tzinfo of its own, and calendar arithmetic returns date-times
in the calendar's zone, while the engine compares event times with clocks, timers and
windows many times per event. Re-labelling a date-time with the shared object of its own
offset keeps the instant, the offset and the ISO text, and makes those comparisons cheap.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

_ZONES: dict[timedelta | None, timezone] = {timedelta(0): UTC}


def shared_offset(value: datetime) -> datetime:
    """``value`` with the shared fixed-offset tzinfo of its own UTC offset (same instant).

    Only for instants: wall-clock arithmetic across a DST change needs the named zone, so
    keep the original where a calendar computes with it."""
    offset = value.utcoffset()
    zone = _ZONES.get(offset)
    if zone is None:
        if offset is None:
            return value
        zone = _ZONES.setdefault(offset, timezone(offset))
    if value.tzinfo is zone:
        return value
    return value.replace(tzinfo=zone)
