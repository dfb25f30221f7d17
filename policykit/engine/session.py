"""A streaming evaluation in event time: feed events, advance the clock, get decisions."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import EventOrderError, ParameterError
from ..models.decisions import Decision
from ..models.events import EventBase
from ..models.parsing import parse_event
from ._backend import EvaluatorSession

__all__ = ["Session", "SessionStats"]


def _order(decisions: list[Decision]) -> list[Decision]:
    return sorted(decisions, key=lambda d: (d.at, d.id))


@dataclass
class SessionStats:
    """Counts of what a session has seen."""

    events: int = 0
    duplicates: int = 0
    decisions: int = 0


class Session:
    """Feed events in event-time order; each call returns the decisions that became due.

    Deadlines fire only when event time passes them (an event, or :meth:`advance_to`), never
    by the wall clock. At equal times, events are applied before deadlines fire: an event
    exactly at a deadline is in time. A repeated event id is ignored and counted.
    Calls are serialised by a lock, so a session may be shared between threads.
    """

    def __init__(self, evaluator: EvaluatorSession, *, backend: str) -> None:
        self._ev = evaluator
        self.backend = backend
        self._seen: set[str] = set()
        self._clock: datetime | None = None
        # After advance_to(t), deadlines at t have fired, so an event at t would be judged
        # after them: it is late. After feed(at=t), another event at t is still in time.
        self._closed = False
        self._lock = threading.RLock()
        self.stats = SessionStats()

    @property
    def clock(self) -> datetime | None:
        """The event time reached so far (None before the first event)."""
        return self._clock

    def feed(self, event: EventBase | Mapping[str, Any] | str | bytes) -> list[Decision]:
        """Apply one event (a model, dict or JSON); return the decisions now due."""
        ev = parse_event(event)
        with self._lock:
            if ev.id in self._seen:
                self.stats.duplicates += 1
                return []
            at = ev.at
            clock = self._clock
            if clock is not None and (at < clock or (at == clock and self._closed)):
                raise EventOrderError(ev.id, at.isoformat(), clock.isoformat(), timedelta(0))
            self._seen.add(ev.id)
            self.stats.events += 1
            out = self._ev.fire_due(at, inclusive=False)
            out += self._ev.apply(ev)
            self._clock = at
            self._closed = False
            self.stats.decisions += len(out)
            return _order(out)

    def feed_many(
        self, events: Iterable[EventBase | Mapping[str, Any] | str | bytes]
    ) -> list[Decision]:
        """Feed several events in order; the decisions of all of them."""
        out: list[Decision] = []
        for e in events:
            out += self.feed(e)
        return _order(out)

    def advance_to(self, instant: datetime) -> list[Decision]:
        """Move event time to ``instant``: every deadline due at or before it fires."""
        if not isinstance(instant, datetime) or instant.tzinfo is None:
            raise ParameterError("advance_to.instant", instant,
                                 "a timezone-aware datetime, e.g. 2026-04-01T00:00:00+08:00")
        with self._lock:
            if self._clock is not None and instant < self._clock:
                raise ParameterError("advance_to.instant", instant.isoformat(),
                                     f"not before the session clock {self._clock.isoformat()}")
            out = self._ev.fire_due(instant, inclusive=True)
            self._clock = instant
            self._closed = True
            self.stats.decisions += len(out)
            return _order(out)

    def close(self) -> None:
        """Release the evaluator's resources (the durable backend holds C-side state)."""
        with self._lock:
            self._ev.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
