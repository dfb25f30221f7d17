"""The ids a session remembers, to ignore a redelivered event: for a window of event time.

A stream that runs for years cannot keep one id per event it ever saw. Ids are kept while
their event lies within ``window`` of the clock, each with a digest of its event's payload
(so a copy with another payload is told from a redelivery); older ones are forgotten, and
the session records the newest time it forgot (``forgotten_until``). Nothing becomes
ambiguous:

* an event older than the window is older than the allowed lateness too (the window is at
  least that), so the session refuses it as too late whether or not it was seen;
* a forgotten id goes into a fixed-size Bloom filter (:class:`ForgottenIds`). A correction
  naming an id the session does not know is applied (its original has not arrived yet)
  only when the filter says the id was certainly never forgotten; when it may have been,
  the session refuses the correction rather than apply it twice (see
  :meth:`policykit.Session.feed`). A false positive of the filter only ever refuses such a
  correction, never applies anything twice.

With ``window=None`` every id is kept (a batch audit, which holds every event anyway).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
import zlib
from collections import deque
from datetime import datetime, timedelta


class ForgottenIds:
    """A Bloom filter of the ids a session forgot: :data:`BITS` bits (512 KiB), :data:`K`
    hashes. "Not in" is certain; "in" is wrong with probability
    ``(1 - exp(-K·n/BITS))**K`` after ``n`` ids: 0.0002% at 100,000, 0.015% at 200,000, 1%
    at 440,000, 23% at 1,000,000, 78% at 2,000,000, and it tends to 1 (every unknown-id
    correction refused, the behaviour without the filter) as ``n`` grows. Memory stays
    512 KiB however long the stream."""

    BITS = 1 << 22
    K = 7
    __slots__ = ("bits", "count")

    def __init__(self, bits: bytearray | None = None, count: int = 0) -> None:
        self.bits = bits if bits is not None else bytearray(self.BITS // 8)
        self.count = count
        """Ids added (for the false-positive rate)."""

    @classmethod
    def _positions(cls, event_id: str) -> list[int]:
        digest = hashlib.blake2b(event_id.encode("utf-8", "surrogatepass"),
                                 digest_size=16).digest()
        h1 = int.from_bytes(digest[:8], "big")
        h2 = int.from_bytes(digest[8:], "big") | 1  # double hashing (Kirsch-Mitzenmacher)
        return [(h1 + i * h2) % cls.BITS for i in range(cls.K)]

    def add(self, event_id: str) -> None:
        bits = self.bits
        for p in self._positions(event_id):
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def __contains__(self, event_id: object) -> bool:
        if not isinstance(event_id, str):
            return False
        bits = self.bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in self._positions(event_id))

    def false_positive_rate(self) -> float:
        """The chance that an id never forgotten tests as forgotten."""
        return float((1 - math.exp(-self.K * self.count / self.BITS)) ** self.K)

    def export(self) -> list[object]:
        return [self.count, base64.b64encode(zlib.compress(bytes(self.bits), 1)).decode()]

    @classmethod
    def load(cls, data: object) -> ForgottenIds:
        """From :meth:`export`'s form; ValueError when it is not one."""
        if not (isinstance(data, list) and len(data) == 2 and type(data[0]) is int
                and data[0] >= 0 and isinstance(data[1], str)
                and len(data[1]) <= 2 * cls.BITS):
            raise ValueError("forgotten ids are not [count, filter]")
        try:
            packed = base64.b64decode(data[1].encode("ascii"), validate=True)
            inflate = zlib.decompressobj()
            bits = inflate.decompress(packed, cls.BITS // 8 + 1)  # bounded: no zip bomb
        except (binascii.Error, UnicodeEncodeError, zlib.error) as exc:
            raise ValueError(f"forgotten ids: {exc}") from None
        if len(bits) != cls.BITS // 8 or inflate.unconsumed_tail:
            raise ValueError("forgotten ids: a filter of another size")
        return cls(bytearray(bits), data[0])


class SeenIds:
    """Event ids (with a digest of their payload) and the event time they were applied
    at, forgotten after ``window``."""

    __slots__ = ("_order", "forget_after", "forgotten", "forgotten_until", "ids", "window")

    def __init__(self, window: timedelta | None) -> None:
        self.window = window
        self.ids: dict[str, int | None] = {}
        """The remembered ids, each with its payload digest (None: unknown, from a snapshot
        of a version that kept none). Read it directly: a membership test per event."""
        self.forget_after: datetime | None = None
        """A clock past this instant has ids to forget (None: nothing to forget yet)."""
        # (event time, id) in the order applied: late events (inside the allowed lateness)
        # come behind newer ones and are forgotten a little later than they could be, never
        # earlier, which is all correctness needs.
        self._order: deque[tuple[datetime, str]] = deque()
        self.forgotten_until: datetime | None = None
        self.forgotten: ForgottenIds | None = None
        """The forgotten ids (None: none yet, or forgotten by a version without the filter
        when ``forgotten_until`` is set: then any id may have been)."""

    def __contains__(self, event_id: object) -> bool:
        return event_id in self.ids

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, event_id: str, at: datetime, digest: int | None = None) -> None:
        self.ids[event_id] = digest
        if self.window is not None:
            self._order.append((at, event_id))
            if self.forget_after is None:
                self.forget_after = at + self.window

    def keep(self, event_id: str, at: datetime) -> None:
        """:meth:`add` the id of an event applied in time at ``at`` (the new clock), and
        forget the ids that clock makes too old."""
        self.add(event_id, at)
        forget = self.forget_after
        if forget is not None and at > forget:
            self.forget_before(at)

    def maybe_forgotten(self, event_id: str) -> bool:
        """Whether ``event_id`` may be the id of an event seen and forgotten (False is
        certain; True may be a false positive, see :class:`ForgottenIds`)."""
        if self.forgotten_until is None:
            return False
        return self.forgotten is None or event_id in self.forgotten

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
        if order[0][0] >= horizon:
            self.forget_after = order[0][0] + self.window
            return
        # A session restored from a version without the filter (forgotten_until set, no
        # filter) cannot know what it forgot before: it keeps saying "maybe" (no filter).
        forgotten = self.forgotten
        if forgotten is None and newest is None:
            forgotten = self.forgotten = ForgottenIds()
        while order and order[0][0] < horizon:
            at, event_id = order.popleft()
            if event_id in ids:
                del ids[event_id]
                if forgotten is not None:
                    forgotten.add(event_id)
            if newest is None or at > newest:
                newest = at
        self.forgotten_until = newest
        self.forget_after = order[0][0] + self.window if order else None

    def export(self) -> dict[str, object]:
        if self.window is None:
            items: list[list[object]] = [[i, None, d] for i, d in sorted(self.ids.items())]
        else:
            ids = self.ids
            items = [[i, at, ids.get(i)] for at, i in self._order]
        return {"ids": items,
                "forgotten": self.forgotten.export() if self.forgotten is not None else None}

    def load(self, items: list[tuple[str, datetime | None, int | None]],
             forgotten_until: datetime | None, forgotten: ForgottenIds | None = None) -> None:
        self.ids = {i: d for i, _at, d in items}
        self._order = deque((at, i) for i, at, _d in items if at is not None)
        self.forgotten_until = forgotten_until
        self.forgotten = forgotten
        window = self.window
        self.forget_after = (min(at for at, _i in self._order) + window
                             if self._order and window is not None else None)
