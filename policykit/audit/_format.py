"""Values as people read them (times, durations, shortened text, natural order) and as JSON
files hold them (Decimal as text, dates as ISO-8601)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import BaseModel


def fmt_at(at: datetime, tz: Any = None) -> str:
    """An instant to the second, in ``tz`` when given (else in its own offset)."""
    local = at.astimezone(tz) if tz is not None else at
    return local.isoformat(timespec="seconds")


def human(delta: timedelta) -> str:
    """``1 d 2 h 5 min`` (sign dropped; the sentence says before or after)."""
    seconds = int(abs(delta).total_seconds())
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m else "",
             f"{s} s" if s and not (d or h) else ""]
    return " ".join(p for p in parts if p) or "0 s"


def natural(text: str) -> tuple[Any, ...]:
    """Sort key putting E2 before E10 (and ``... R2`` before ``... R10``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int) -> str:
    """Text cut to ``limit`` characters, ending in an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def json_value(value: Any) -> Any:
    """A value JSON can hold: Decimal as its exact text, dates as ISO-8601, models dumped."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_value(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value
