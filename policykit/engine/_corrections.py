"""Corrections (``meta.corrects``) and repeated ids: the one set of rules a streaming
:class:`~policykit.Session` and the batch pipeline (:func:`split_corrections`) share.

The rules, for events taken one at a time (a session: in arrival order; a batch: in
(time, id) order, ties in input order):

* **Repeated id.** A copy of an accepted event with the same payload is a redelivery
  (ignored); with another payload it is a conflict: the copy is refused with
  :class:`~policykit.EventConflictError` naming the fields that differ.
* **Correction.** An event with ``meta.corrects: X`` replaces event ``X``: ``X`` counts as
  never delivered, whether it came before (it is withdrawn) or comes after (it is ignored).
  It must keep ``X``'s type and subject (:func:`subject_fields`); of the two, the one taken
  second is refused when they differ.
* **Chain.** ``C2`` correcting ``C1`` correcting ``O``: only ``C2`` stands, in any order.
* **Fork.** A second correction of an event already corrected is refused (correct the
  correcting event instead).
* **Cycle.** Events correcting each other in a ring are all refused, with an
  :class:`~policykit.EventError` naming the ring; any other event counts them as never
  delivered.
* **Forgotten original.** A session that forgot old ids (``dedupe_window``) refuses a
  correction of an id it may have forgotten (see :mod:`policykit.engine._dedupe`).
"""

from __future__ import annotations

import enum
import hashlib
import itertools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from ..calendar import format_duration
from ..errors import EventConflictError, EventError
from ..models.events import EVENT_TYPES, EventBase
from ..models.parsing import CORRECTS
from ._dedupe import SeenIds

__all__ = ["Ledger", "Outcome", "Plan", "corrected_id", "payload_digest", "split_corrections",
           "subject_fields"]

#: Identifying fields not named ``*_id``: the plate is the vehicle's identifier.
_ALSO_IDENTIFYING = frozenset({"plate"})

#: The type and subject of an event: (type, values of its identifying fields).
Signature = tuple[str, tuple[Any, ...]]


def corrected_id(event: EventBase) -> str | None:
    """The id of the event ``event`` corrects (``meta.corrects``), or None.

    A correction is a new event, with its own new id, that replaces an earlier one: the
    earlier event is treated as if it had never been delivered, and the correction is
    applied at its own time. Raises :class:`EventError` for a malformed ``meta.corrects``."""
    meta = event.meta
    if not meta or CORRECTS not in meta:
        return None
    target = meta[CORRECTS]
    if not isinstance(target, str) or not 1 <= len(target) <= 256 or target == event.id:
        raise EventError("<event>", [(f"meta.{CORRECTS}", target,
                                      "the id of another event (1 to 256 characters) that "
                                      "this event corrects")], event_id=event.id)
    return target


@cache
def subject_fields(event_type: str) -> tuple[str, ...]:
    """The fields that say what an event of ``event_type`` is about: every field named
    ``*_id`` (the employee, customer, request, case… it concerns), and ``plate``. A
    correction must keep their values."""
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return ()
    return tuple(f for f in model.model_fields
                 if f.endswith("_id") or f in _ALSO_IDENTIFYING)


def signature(event: EventBase) -> Signature:
    return event.type, tuple(getattr(event, f, None) for f in subject_fields(event.type))


def payload_digest(event: EventBase) -> int:
    """A 60-bit digest of the event's payload (every field, ``meta`` keys in any order): two
    copies of an id with equal digests are the same event delivered twice."""
    meta = event.meta
    if not meta:
        if meta is not None:  # {} says what no meta says
            event = event.model_copy(update={"meta": None})
        text = event.__pydantic_serializer__.to_json(event)
    else:
        try:
            text = json.dumps(event.model_dump(mode="json"), sort_keys=True,
                              ensure_ascii=False).encode("utf-8", "surrogatepass")
        except (ValueError, TypeError, RecursionError):
            # meta that is not JSON data (built in Python, never read from the wire):
            # digest the rest and the keys, so at worst such a conflict passes as a repeat.
            rest = event.model_copy(update={"meta": None})
            text = rest.__pydantic_serializer__.to_json(rest) + json.dumps(
                sorted(map(str, meta)), ensure_ascii=False).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") >> 4


def _flat(event: EventBase) -> dict[str, Any]:
    try:
        data = event.model_dump(mode="json")
    except (ValueError, TypeError, RecursionError):  # meta that is not JSON data
        data = {**event.model_copy(update={"meta": None}).model_dump(mode="json"),
                "meta": {str(k): repr(v)[:80] for k, v in (event.meta or {}).items()}}
    meta = data.pop("meta", None) or {}
    data.update({f"meta.{k}": v for k, v in sorted(meta.items())})
    return data


def differences(first: EventBase, this: EventBase) -> list[tuple[str, Any, Any]]:
    """(field, value in ``first``, value in ``this``) for each field that differs."""
    a, b = _flat(first), _flat(this)
    missing = object()
    out = []
    for key in [*a, *(k for k in b if k not in a)]:
        va, vb = a.get(key, missing), b.get(key, missing)
        if va != vb or type(va) is not type(vb):
            out.append((key, None if va is missing else va, None if vb is missing else vb))
    return out


class Outcome(enum.Enum):
    APPLY = "apply"
    """Apply the event (and withdraw ``Plan.remove`` if set: it corrects that one)."""
    DUPLICATE = "duplicate"
    """A redelivery of an accepted event: ignore it."""
    SUPERSEDED = "superseded"
    """An event a correction already replaced: do not apply it (but withdraw
    ``Plan.remove`` if set: a chain reaching an event applied earlier)."""
    CYCLE = "cycle"
    """The event closes a ring of corrections: withdraw ``Plan.remove`` if set, then
    raise ``Plan.error``."""


@dataclass(slots=True)
class Plan:
    """What to do with one event; nothing changes until :meth:`Ledger.commit`."""

    outcome: Outcome
    event: EventBase
    digest: int | None  # None: digests off (see Ledger.digests)
    new: bool = True
    """The id was not accepted before (so it is remembered on commit)."""
    target: str | None = None
    """The id this event corrects, when the correction is recorded on commit."""
    remove: str | None = None
    """An applied event this step withdraws (so it must be where the caller can undo it)."""
    cycle: tuple[str, ...] = ()
    error: EventError | None = None


def _cycle_text(cycle: tuple[str, ...]) -> str:
    ring = [*cycle, cycle[0]]
    return ", ".join(f"{a!r} corrects {b!r}" for a, b in itertools.pairwise(ring))


def cycle_error(event_id: str, cycle: tuple[str, ...]) -> EventError:
    """The refusal of ``event_id``, a member of the ring ``cycle`` (each corrects the next,
    the last the first)."""
    if event_id in cycle:  # told from this member on
        k = cycle.index(event_id)
        cycle = cycle[k:] + cycle[:k]
    return EventError("<event>", [(f"meta.{CORRECTS}", cycle[1 % len(cycle)], (
        f"no cycle of corrections: {_cycle_text(cycle)}; every event of the cycle is "
        f"refused"))], event_id=event_id)


def _mismatch(refused: EventBase, sig: Signature, other: str, other_corrects: bool
              ) -> EventError | None:
    """The error refusing ``refused`` when its type or subject differs from ``sig`` (the
    signature of event ``other``), or None when they agree."""
    mine = signature(refused)
    if mine == sig:
        return None
    relation = (f"{other!r}, which it corrects" if other_corrects else
                f"{other!r}, the correction of this event accepted before it")
    if mine[0] != sig[0]:
        problems = [("type", refused.type, f"{sig[0]!r}, the type of {relation}: a "
                     f"correction keeps the type and subject of the event it corrects")]
    else:
        problems = [(f, mv, f"{sv!r}, the {f} of {relation}: a correction keeps the type "
                     f"and subject of the event it corrects")
                    for f, mv, sv in zip(subject_fields(refused.type), mine[1], sig[1],
                                         strict=True) if mv != sv]
    return EventError("<event>", problems, event_id=refused.id)


class Ledger:
    """The accepted ids and corrections of a stream; :meth:`plan` decides what an event
    does, :meth:`commit` records it once the caller has done it."""

    __slots__ = ("by", "digests", "edges", "refused", "seen")

    def __init__(self, window: timedelta | None, *, digests: bool = True) -> None:
        self.seen = SeenIds(window)
        # Without digests a repeated id is always a plain duplicate: for a log whose repeats
        # and conflicts were resolved before it was fed (split_corrections), where digesting
        # every event again would cost about a fifth of the evaluation for nothing.
        self.digests = digests
        self.by: dict[str, tuple[str | None, Signature | None]] = {}
        """Each corrected id -> (the event correcting it, that event's type and subject);
        (None, None) from a snapshot of a version that kept only the ids."""
        self.edges: dict[str, str] = {}
        """Each accepted correction -> the id it corrects (walked to find cycles)."""
        self.refused: dict[str, tuple[str, ...]] = {}
        """Each member of a refused cycle -> the cycle."""

    @classmethod
    def for_session(cls, dedupe_window: timedelta | None, allowed_lateness: timedelta | None,
                    *, digests: bool = True) -> Ledger:
        """The ledger of a session: ids are remembered for ``dedupe_window``, and at least
        ``allowed_lateness`` (an event inside it is still applied, so its id must be known)."""
        if dedupe_window is not None and allowed_lateness is not None:
            dedupe_window = max(dedupe_window, allowed_lateness)
        return cls(dedupe_window, digests=digests)

    def _live(self, event_id: str) -> bool:
        return (event_id in self.seen.ids and event_id not in self.by
                and event_id not in self.refused)

    def plan(self, ev: EventBase, held: Callable[[str], EventBase | None]) -> Plan:
        """What ``ev`` does. ``held(id)`` is the accepted event of that id when the caller
        still holds it (to compare payloads, types and subjects), else None. Raises
        :class:`EventConflictError` or :class:`EventError` for an event refused."""
        x = ev.id
        target = corrected_id(ev)
        digest = payload_digest(ev) if self.digests else None
        if x in self.refused:
            raise cycle_error(x, self.refused[x])
        seen = self.seen
        if x in seen.ids:
            first = seen.ids[x]
            if first is not None and first != digest:
                original = held(x)
                diff = differences(original, ev) if original is not None else []
                raise EventConflictError(x, diff, first_known=bool(diff))
            return Plan(Outcome.SUPERSEDED if x in self.by else Outcome.DUPLICATE, ev,
                        digest, new=False)
        corrector = self.by.get(x)
        if corrector is not None:
            by, sig = corrector
            if sig is not None and by is not None and (
                    err := _mismatch(ev, sig, by, other_corrects=False)) is not None:
                raise err
            if target is None:
                return Plan(Outcome.SUPERSEDED, ev, digest)
            cycle = self._cycle(x, target)
            if cycle:
                return Plan(Outcome.CYCLE, ev, digest, cycle=cycle,
                            remove=target if self._live(target) else None,
                            error=cycle_error(x, cycle))
            self._check_target(ev, target, held)
            return Plan(Outcome.SUPERSEDED, ev, digest, target=target,
                        remove=target if self._live(target) else None)
        if target is None:
            return Plan(Outcome.APPLY, ev, digest)
        self._check_target(ev, target, held)
        return Plan(Outcome.APPLY, ev, digest, target=target,
                    remove=target if self._live(target) else None)

    def _cycle(self, x: str, target: str) -> tuple[str, ...]:
        path = [x]
        current: str | None = target
        edges = self.edges
        while current is not None and len(path) <= len(edges) + 1:
            path.append(current)
            current = edges.get(current)
            if current == x:
                return tuple(path)
        return ()

    def _check_target(self, ev: EventBase, target: str,
                      held: Callable[[str], EventBase | None]) -> None:
        corrector = self.by.get(target)
        if corrector is not None:
            by = f" by {corrector[0]!r}" if corrector[0] is not None else ""
            raise EventError("<event>", [(f"meta.{CORRECTS}", target,
                                          f"an event not corrected already (it was "
                                          f"corrected{by}: correct the correcting event "
                                          f"instead)")], event_id=ev.id)
        if target in self.refused:
            return  # a refused event counts as never delivered
        seen = self.seen
        if target in seen.ids:
            original = held(target)
            if original is not None and (err := _mismatch(
                    ev, signature(original), target, other_corrects=True)) is not None:
                raise err
            return
        if seen.maybe_forgotten(target):
            # The target may be an event applied long ago whose id was forgotten: applying
            # the correction as new would count that event twice.
            assert seen.forgotten_until is not None
            window = "unbounded" if seen.window is None else format_duration(seen.window)
            raise EventError("<event>", [(
                f"meta.{CORRECTS}", target,
                f"an event this session remembers: it forgets the ids of events more than "
                f"{window} (dedupe_window) behind its clock, so it cannot tell whether "
                f"{target!r} was applied before {seen.forgotten_until.isoformat()}. If it "
                f"never was, feed this event without meta.{CORRECTS}; otherwise open "
                f"sessions with a longer dedupe_window")], event_id=ev.id)

    def commit(self, plan: Plan) -> None:
        """Record what ``plan`` did (the caller has applied or withdrawn its events)."""
        ev = plan.event
        if plan.outcome is Outcome.CYCLE:
            members = set(plan.cycle)
            for m in plan.cycle:
                self.refused[m] = plan.cycle
                self.edges.pop(m, None)
                corrector = self.by.get(m)
                if corrector is not None and corrector[0] in members:
                    del self.by[m]
            return
        if plan.new:
            self.seen.add(ev.id, ev.at, plan.digest)
        if plan.target is not None:
            self.by[plan.target] = (ev.id, signature(ev))
            self.edges[ev.id] = plan.target

    # -- snapshots -----------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        return {
            "by": [[t, by, list(sig) if sig is not None else None]
                   for t, (by, sig) in self.by.items()],
            "edges": [[x, t] for x, t in self.edges.items()],
            "refused": [[m, list(c)] for m, c in self.refused.items()],
        }

    def load(self, data: Any) -> None:
        """From :meth:`export`'s form, or the list of corrected ids older versions kept;
        ValueError when it is neither."""
        if isinstance(data, list):
            if not all(isinstance(i, str) for i in data):
                raise ValueError("corrected is not a list of event ids")
            self.by = {i: (None, None) for i in data}
            self.edges, self.refused = {}, {}
            return
        if not isinstance(data, dict) or set(data) != {"by", "edges", "refused"}:
            raise ValueError("corrections: unexpected layout")
        by: dict[str, tuple[str | None, Signature | None]] = {}
        for item in _rows(data["by"], 3):
            t, who, sig = item
            if not isinstance(t, str) or not (who is None or isinstance(who, str)):
                raise ValueError("corrections: a corrected id is not [id, id, signature]")
            if sig is None:
                by[t] = (who, None)
            elif (isinstance(sig, list) and len(sig) == 2 and isinstance(sig[0], str)
                  and isinstance(sig[1], tuple)
                  and all(v is None or isinstance(v, str) for v in sig[1])):
                by[t] = (who, (sig[0], sig[1]))
            else:
                raise ValueError("corrections: a signature is not [type, (subject ids)]")
        edges = {}
        for x, t in _rows(data["edges"], 2):
            if not (isinstance(x, str) and isinstance(t, str)):
                raise ValueError("corrections: an edge is not [id, id]")
            edges[x] = t
        refused = {}
        for m, cycle in _rows(data["refused"], 2):
            if not (isinstance(m, str) and isinstance(cycle, list) and cycle
                    and all(isinstance(c, str) for c in cycle)):
                raise ValueError("corrections: a refused cycle is not [id, [ids]]")
            refused[m] = tuple(cycle)
        self.by, self.edges, self.refused = by, edges, refused


def _rows(data: Any, width: int) -> list[list[Any]]:
    if not isinstance(data, list) or not all(
            isinstance(row, list) and len(row) == width for row in data):
        raise ValueError(f"corrections: not a list of {width}-item rows")
    return data


def split_corrections(
    events: Iterable[EventBase],
) -> tuple[list[EventBase], list[tuple[EventBase, EventError]]]:
    """The batch semantics of ``meta.corrects`` and repeated ids: ``(kept, refused)``.

    The events are taken in (time, id) order, ties in input order, by the rules a session
    applies in arrival order (see :mod:`policykit.engine._corrections`), so a session fed
    them in that order, with an ``allowed_lateness`` covering every correction's distance
    from its original, applies exactly ``kept`` and raises for exactly ``refused``.

    * ``kept``: the events to evaluate, in input order — every event no correction
      replaced, with its identical redeliveries (a session ignores them and counts them in
      ``stats.duplicates``).
    * ``refused``: (event, error), in input order: a copy of an id with another payload
      (:class:`~policykit.EventConflictError`), a correction whose type or subject differs
      from its original's (or the original, when the correction comes first), a second
      correction of an event, and every member of a cycle of corrections
      (:class:`~policykit.EventError`). An audit quarantines them.
    * Every other input event (``len(events) - len(kept) - len(refused)``) was replaced by
      a correction: it counts as never delivered.
    """
    items = list(events)
    if len({e.id for e in items}) == len(items) and not any(
            e.meta and CORRECTS in e.meta for e in items):
        return items, []  # no repeated id and no correction: nothing to decide
    order = sorted(range(len(items)), key=lambda i: (items[i].at, items[i].id))
    ledger = Ledger(None)
    first: dict[str, int] = {}  # id -> index of its accepted first copy
    live: set[str] = set()
    refused: dict[int, EventError] = {}

    def held(event_id: str) -> EventBase | None:
        i = first.get(event_id)
        return items[i] if i is not None else None

    for i in order:
        ev = items[i]
        try:
            plan = ledger.plan(ev, held)
        except EventError as exc:
            refused[i] = exc
            continue
        ledger.commit(plan)
        if plan.remove is not None:
            live.discard(plan.remove)
        if plan.outcome is Outcome.CYCLE:
            assert plan.error is not None
            refused[i] = plan.error
            for member in plan.cycle[1:]:
                j = first.get(member)
                if j is not None:
                    refused[j] = cycle_error(member, plan.cycle)
            continue
        if plan.new:
            first[ev.id] = i
        if plan.outcome is Outcome.APPLY:
            live.add(ev.id)
    kept = [e for i, e in enumerate(items) if e.id in live and i not in refused]
    return kept, [(items[i], refused[i]) for i in sorted(refused)]
