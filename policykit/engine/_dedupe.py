"""The ids a session remembers, to ignore a redelivered event: for a window of event time.

A stream that runs for years cannot keep one id per event it ever saw. Ids are kept while
their event lies within ``window`` of the clock; older ones are forgotten, and the session
records the newest time it forgot (``forgotten_until``). Nothing becomes ambiguous:

* an event older than the window is older than the allowed lateness too (the window is at
  least that), so the session refuses it as too late whether or not it was seen;
* a correction naming an id the session does not know, once something was forgotten, might
  name a forgotten event: the session refuses it rather than apply it twice
  (see :meth:`policykit.Session.feed`).

With ``window=None`` every id is kept (a batch audit, which holds every event anyway).
"""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta


class SeenIds:
    """Event ids with the event time they were applied at, forgotten after ``window``."""

    __slots__ = ("_order", "forget_after", "forgotten_until", "ids", "window")

    def __init__(self, window: timedelta | None) -> None:
        self.window = window
        self.ids: set[str] = set()
        """The remembered ids (read it directly: a membership test per event)."""
        self.forget_after: datetime | None = None
        """A clock past this instant has ids to forget (None: nothing to forget yet)."""
        # (event time, id) in the order applied: late events (inside the allowed lateness)
        # come behind newer ones and are forgotten a little later than they could be, never
        # earlier, which is all correctness needs.
        self._order: deque[tuple[datetime, str]] = deque()
        self.forgotten_until: datetime | None = None

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, event_id: str, at: datetime) -> None:
        self.ids.add(event_id)
        if self.window is not None:
            self._order.append((at, event_id))
            if self.forget_after is None:
                self.forget_after = at + self.window

    def forget_before(self, clock: datetime) -> None:
        """Forget the ids of events more than ``window`` older than ``clock``."""
        if self.window is None:
            return
        order = self._order
        if not order:
            return
        horizon = clock - self.window
        ids = self.ids
        newest = self.forgotten_until
        while order and order[0][0] < horizon:
            at, event_id = order.popleft()
            ids.discard(event_id)
            if newest is None or at > newest:
                newest = at
        self.forgotten_until = newest
        self.forget_after = order[0][0] + self.window if order else None

    def export(self) -> list[list[object]]:
        if self.window is None:
            return [[i, None] for i in sorted(self.ids)]
        return [[i, at] for at, i in self._order]

    def load(self, items: list[tuple[str, datetime | None]],
             forgotten_until: datetime | None) -> None:
        self.ids = {i for i, _at in items}
        self._order = deque((at, i) for i, at in items if at is not None)
        self.forgotten_until = forgotten_until
        window = self.window
        self.forget_after = (min(at for at, _i in self._order) + window
                             if self._order and window is not None else None)
