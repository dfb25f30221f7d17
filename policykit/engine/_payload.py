"""The payload of a session snapshot: the one owner of its layout, written by
:meth:`Session.snapshot` (:func:`pack_session`) and read and checked by
:meth:`Engine.restore` (:func:`unpack_session`). The bytes under it are
policykit/engine/_snapshot.py's codec.

Layout (a JSON object; ``?`` marks keys older snapshots lack)::

    kind             "policykit.session"
    backend          the backend that wrote it ("native", "durable")
    fingerprint      the policy set's fingerprint; policies: [[id, version], ...]
    clock            the session clock (aware datetime) or null; closed: bool (advance_to
                     reached it, so an event at the clock is late)
    seen             {"ids": [[id, time or null, payload digest or null], ...],
                      "forgotten": ForgottenIds or null}  (older: a list of ids, or of
                     [id, time] pairs)
    forgotten_until? the newest time of a forgotten id; dedupe_window?: timedelta or null
    corrected        Ledger.export() (older: a list of corrected ids)
    stats            SessionStats as a dict of counts
    evaluator        the evaluator's export_state() (checked by the evaluator itself)
    window           null, or the late-event window:
                     {"allowed", "every", "spacing", "since",
                      "ops": [[time, event or null, [decision, ...]], ...],
                      "checkpoints": [[position, evaluator state]]  (the oldest only),
                      "pub": [[decision id, id published, alive, decision, time], ...]}

Everything here is structure; what only the evaluator can judge (its state against the
policy set) it judges when the session takes the state.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..errors import SnapshotError
from ..models.decisions import Decision
from ..models.events import EventBase
from ._corrections import Ledger
from ._dedupe import ForgottenIds
from ._snapshot import MAX_DURATION, pack, unpack
from ._stats import SessionStats

__all__ = ["KIND", "SessionPayload", "WindowPayload", "pack_session", "unpack_session"]

KIND = "policykit.session"
_KEYS = frozenset({"kind", "backend", "fingerprint", "policies", "clock", "closed", "seen",
                   "corrected", "stats", "evaluator", "window"})
_OPTIONAL = frozenset({"forgotten_until", "dedupe_window"})  # absent from older snapshots
_WINDOW_KEYS = frozenset({"allowed", "every", "spacing", "since", "ops", "checkpoints", "pub"})
_STATS = frozenset(f.name for f in dataclasses.fields(SessionStats))


@dataclass
class WindowPayload:
    """The late-event window as a snapshot holds it (rows are lists, as written)."""

    allowed: timedelta
    every: int
    spacing: int
    since: int
    ops: list[list[Any]]
    """[time, event or None, decisions], in time order."""
    checkpoints: list[list[Any]]
    """[position in ops, evaluator state]: one, at least."""
    pub: list[list[Any]]
    """[decision id, id published under, alive, decision, time]."""


@dataclass
class SessionPayload:
    """A session's whole state, as a snapshot holds it."""

    backend: str
    fingerprint: str
    policies: list[list[str]]
    clock: datetime | None
    closed: bool
    ledger: Ledger
    """The ids seen and the corrections (``ledger.seen.window`` is the dedupe window)."""
    stats: SessionStats
    evaluator: Any
    window: WindowPayload | None


def pack_session(p: SessionPayload) -> bytes:
    """The snapshot bytes of ``p``."""
    seen = p.ledger.seen
    w = p.window
    return pack({
        "kind": KIND,
        "backend": p.backend,
        "fingerprint": p.fingerprint,
        "policies": p.policies,
        "clock": p.clock,
        "closed": p.closed,
        "seen": seen.export(),
        "forgotten_until": seen.forgotten_until,
        "dedupe_window": seen.window,
        "corrected": p.ledger.export(),
        "stats": dataclasses.asdict(p.stats),
        "evaluator": p.evaluator,
        "window": None if w is None else {
            "allowed": w.allowed, "every": w.every, "spacing": w.spacing, "since": w.since,
            "ops": w.ops, "checkpoints": w.checkpoints, "pub": w.pub},
    })


def unpack_session(data: bytes, *, backend: str, fingerprint: str,
                   policies: list[list[str]]) -> SessionPayload:
    """The payload of snapshot bytes taken on ``backend`` with the policy set of
    ``fingerprint`` (``policies``: its [id, version] pairs, for the message when it is
    another); :class:`SnapshotError` for anything else."""
    payload = unpack(data, ranged=True)
    if not isinstance(payload, dict) or not _KEYS <= set(payload) <= _KEYS | _OPTIONAL \
            or payload["kind"] != KIND:
        raise SnapshotError("not a policykit session snapshot (unexpected layout)")
    _check_origin(payload, backend, fingerprint, policies)
    window = _window(payload["window"])
    dedupe = payload.get("dedupe_window")
    if dedupe is not None and not _duration(dedupe):
        raise SnapshotError("snapshot: dedupe_window is not a positive duration of at "
                            f"most {MAX_DURATION.days} days")
    clock = payload["clock"]
    if clock is not None and not (_aware(clock) and 1900 <= clock.year <= 2199):
        raise SnapshotError(f"snapshot: clock {str(clock)[:40]!r} is not an aware "
                            "date-time in the years 1900-2199")
    if type(payload["closed"]) is not bool:
        raise _bad("closed is not a boolean")
    # Older snapshots remembered every id: so does their restored session.
    ledger = _ledger(payload, Ledger.for_session(
        dedupe, window.allowed if window is not None else None), clock)
    stats = payload["stats"]
    if not isinstance(stats, dict) or not set(stats) <= _STATS or not all(
            type(v) is int and v >= 0 for v in stats.values()):
        raise _bad("stats are not counts")
    return SessionPayload(backend=backend, fingerprint=fingerprint,
                          policies=payload["policies"], clock=clock, closed=payload["closed"],
                          ledger=ledger, stats=SessionStats(**stats),
                          evaluator=payload["evaluator"], window=window)


def _bad(what: str) -> SnapshotError:
    return SnapshotError(f"snapshot: {what}")


def _aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None \
        and value.utcoffset() is not None


def _duration(value: Any) -> bool:
    """A positive timedelta a restored session can hold (beyond, clock arithmetic
    overflows)."""
    return isinstance(value, timedelta) and timedelta(0) < value <= MAX_DURATION


def _check_origin(payload: dict[str, Any], backend: str, fingerprint: str,
                  policies: list[list[str]]) -> None:
    """A snapshot is only restored into the policy set and backend that wrote it."""
    if payload["fingerprint"] != fingerprint:
        raise SnapshotError(
            f"snapshot was taken with another policy set (fingerprint "
            f"{payload['fingerprint']!r}, policies {_listed(payload['policies'])}); this engine "
            f"runs fingerprint {fingerprint!r} ({_listed(policies)}). A snapshot is only "
            "restored into the exact policies, versions and parameters that wrote it: "
            "restore it with those, or start a new session and replay the events")
    if payload["backend"] != backend:
        raise SnapshotError(
            f"snapshot was taken on backend {payload['backend']!r}; this engine runs "
            f"{backend!r}: restore it with Engine(..., backend={payload['backend']!r})")


def _listed(policies: Any) -> str:
    if not isinstance(policies, list):
        return "?"
    return ", ".join(f"{p[0]}@{p[1]}" if isinstance(p, list) and len(p) == 2 else "?"
                     for p in policies[:20]) + (" ..." if len(policies) > 20 else "")


def _ledger(payload: dict[str, Any], ledger: Ledger, clock: datetime | None) -> Ledger:
    """``ledger`` holding the snapshot's corrections and ids seen."""
    try:
        ledger.load(payload["corrected"])
    except ValueError as exc:
        raise _bad(str(exc)) from None
    seen, forgotten = _seen(payload["seen"], clock)
    forgotten_until = payload.get("forgotten_until")
    if forgotten_until is not None and not _aware(forgotten_until):
        raise _bad("forgotten_until is not an aware datetime")
    ledger.seen.load(seen, forgotten_until, forgotten)
    return ledger


def _seen(items: Any, clock: datetime | None
          ) -> tuple[list[tuple[str, datetime | None, int | None]], ForgottenIds | None]:
    """The ids seen, with their times and payload digests, and the forgotten ids."""
    forgotten: ForgottenIds | None = None
    if isinstance(items, dict):  # ids with payload digests, and the forgotten ids
        if set(items) != {"ids", "forgotten"}:
            raise _bad("seen: unexpected layout")
        if items["forgotten"] is not None:
            try:
                forgotten = ForgottenIds.load(items["forgotten"])
            except ValueError as exc:
                raise _bad(str(exc)) from None
        items = items["ids"]
    if not isinstance(items, list):
        raise _bad("seen is not a list of [event id, time]")
    return [_seen_id(item, clock) for item in items], forgotten


def _seen_id(item: Any, clock: datetime | None) -> tuple[str, datetime | None, int | None]:
    if isinstance(item, str):  # written before ids had times: forgotten from now on
        return item, clock, None
    if (isinstance(item, list) and len(item) in (2, 3) and isinstance(item[0], str)
            and (item[1] is None or _aware(item[1]))
            and (len(item) == 2 or item[2] is None
                 or (type(item[2]) is int and 0 <= item[2] < 1 << 60))):
        return item[0], item[1], item[2] if len(item) == 3 else None
    raise _bad("seen is not a list of [event id, time]")


# -- the late-event window ---------------------------------------------------------------


def _window_bad(what: str) -> SnapshotError:
    return SnapshotError(f"snapshot window: {what}")


def _window(data: Any) -> WindowPayload | None:
    if data is None:
        return None
    allowed = data.get("allowed") if isinstance(data, dict) else None
    if not isinstance(allowed, timedelta) or not _duration(allowed):
        raise SnapshotError("snapshot: window without an allowed lateness of at most "
                            f"{MAX_DURATION.days} days")
    if set(data) != _WINDOW_KEYS:
        raise _window_bad("unexpected layout")
    ints = [data[k] for k in ("every", "spacing", "since")]
    if any(type(x) is not int or x < 0 for x in ints) or ints[0] < 1:
        raise _window_bad("checkpoint counters")
    ops = _ops(data["ops"])
    return WindowPayload(allowed=allowed, every=ints[0], spacing=ints[1], since=ints[2],
                         ops=ops, checkpoints=_checkpoints(data["checkpoints"], len(ops)),
                         pub=_published(data["pub"]))


def _ops(ops: Any) -> list[list[Any]]:
    if not isinstance(ops, list):
        raise _window_bad("ops")
    last: datetime | None = None
    for item in ops:
        if not (isinstance(item, list) and len(item) == 3 and _aware(item[0])
                and (item[1] is None or isinstance(item[1], EventBase))
                and isinstance(item[2], list)
                and all(isinstance(d, Decision) for d in item[2])):
            raise _window_bad("a step is not [time, event or null, decisions]")
        if last is not None and item[0] < last:
            raise _window_bad("steps out of time order")
        if item[1] is not None and item[1].at != item[0]:
            raise _window_bad("a step's time differs from its event's")
        last = item[0]
    return ops


def _checkpoints(cps: Any, steps: int) -> list[list[Any]]:
    if not isinstance(cps, list) or not cps:
        raise _window_bad("no checkpoint")
    prev = -1
    for item in cps:
        if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                and prev < item[0] <= steps):
            raise _window_bad("checkpoint positions")
        prev = item[0]
    return cps


def _published(pub: Any) -> list[list[Any]]:
    if not isinstance(pub, list) or not all(
            isinstance(item, list) and len(item) == 5 and isinstance(item[0], str)
            and isinstance(item[1], str) and type(item[2]) is bool
            and isinstance(item[3], Decision) and _aware(item[4]) for item in pub):
        raise _window_bad("a published decision is not [id, id, alive, decision, time]")
    return pub
