"""Quarantine: a record that does not validate never stops an audit and is never silently
dropped; it is kept with where it was, its id and what was wrong with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..errors import EventError
from ..models.events import EventBase
from ..models.parsing import parse_event
from ._format import clip, short
from ._readers import Reader, Unit


@dataclass(frozen=True)
class QuarantinedRecord:
    """A record that did not validate, and where it was."""

    source: str
    line: int | None
    """Line of the file (JSONL, JSON, CSV: the header is line 1) or 1-based row/item."""
    unit: Unit
    event_id: str | None
    problems: tuple[tuple[str, Any, str], ...]
    """(field path, bad value, what was expected) for each failure."""
    record: str
    """The record as read, shortened, to find and fix it."""

    @property
    def error(self) -> str:
        return "; ".join(f"{f or '<record>'}: got {short(v)}, expected {e}"
                         for f, v, e in self.problems)

    def __str__(self) -> str:
        where = self.source + (f" {self.unit} {self.line}" if self.line is not None else "")
        ident = f" (event {self.event_id!r})" if self.event_id else ""
        return f"{where}{ident}: {self.error}"


def validate(raw: Any, label: str, line: int | None) -> EventBase:
    """The event of a raw record; raises :class:`EventError` naming what is wrong (including
    the readers' marks for undecodable bytes and surplus CSV cells)."""
    if isinstance(raw, dict):
        problem: tuple[str, Any, str] | None = None
        if raw.get("__invalid_utf8__"):
            problem = ("", "<undecodable bytes>", "UTF-8 text")
        elif (unreadable := raw.get("__unreadable__")) is not None:
            problem = ("", unreadable[0], unreadable[1])  # a reader could not read it
        elif extra := raw.pop("__extra_cells__", None):
            problem = ("", extra, "no more cells than the header has columns")
        if problem is not None:
            ident = raw.get("id")
            raise EventError(label, [problem], event_id=ident if isinstance(ident, str) else None,
                             line=line)
    event: EventBase = parse_event(raw, source=label, line=line)
    return event


def quarantined(exc: EventError, reader: Reader, line: int | None, raw: Any
                ) -> QuarantinedRecord:
    """The quarantine entry of a record that failed with ``exc``."""
    if isinstance(raw, bytes):
        shown = raw.decode("utf-8", errors="replace")
    elif isinstance(raw, EventBase):
        shown = raw.model_dump_json()
    elif isinstance(raw, str):
        shown = raw
    else:
        try:
            shown = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            shown = repr(raw)
    return QuarantinedRecord(source=reader.label, line=line, unit=reader.unit,
                             event_id=exc.event_id, problems=tuple(exc.problems),
                             record=clip(shown, 300))
