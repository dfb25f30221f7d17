"""A streaming evaluation in event time: feed events, advance the clock, get decisions.

Beyond the in-order stream, a session can:

- be **snapshotted** to bytes (:meth:`Session.snapshot`) and restored by
  :meth:`policykit.Engine.restore` after a restart (see :mod:`policykit.checkpoint`);
- accept **late and corrected events** within ``allowed_lateness``: it keeps the events of that
  window and checkpoints of the evaluator's state, and on a late event it restores the state
  just before the event's time, replays the window with the event in its place, and returns
  the difference — revocations of decisions that no longer hold, revisions of decisions whose
  figures changed, and new decisions — each naming what it supersedes;
- be shared by threads: every call runs under one lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..calendar import format_duration
from ..errors import (
    EventConflictError,
    EventError,
    EventOrderError,
    ParameterError,
    PolicyKitError,
    SessionFailedError,
    SnapshotError,
)
from ..models.decisions import Decision
from ..models.events import EmployeeProfile, EventBase
from ..models.parsing import CORRECTS, parse_event
from ..policy import version_text as _version_text
from ..rules.internal import KEY_SEP as _KEY_SEP
from ..rules.internal import hashed_id, key_part, part_value
from ._backend import EvaluatorSession
from ._corrections import Ledger, Outcome, corrected_id, split_corrections
from ._dedupe import ForgottenIds
from ._snapshot import pack

if TYPE_CHECKING:
    from ..policy import PolicySet

__all__ = ["CORRECTS", "Session", "SessionFailedError", "SessionStats", "corrected_id",
           "drop_corrected", "split_corrections"]

_SNAPSHOT_KIND = "policykit.session"


def _unexpected(exc: BaseException) -> bool:
    """An error rule code raised by accident: not policykit's own (those are documented,
    e.g. CalendarError) and not one to pass through unchanged (KeyboardInterrupt,
    SystemExit and MemoryError are not Exceptions of the input's making)."""
    return isinstance(exc, Exception) and not isinstance(exc, (PolicyKitError, MemoryError))


def _order(decisions: list[Decision]) -> list[Decision]:
    if len(decisions) < 2:
        return list(decisions)  # nothing to sort (a copy, as sorted() gave)
    return sorted(decisions, key=_by_time_id)


def _by_time_id(d: Decision) -> tuple[datetime, str]:
    return d.at, d.id


_NO_LATENESS = timedelta(0)
_CHUNK = 1024  # events parsed ahead for an evaluator that prepares (see feed_many)


def _iso_duration(td: timedelta | None) -> str:
    return "unbounded" if td is None else format_duration(td)


def drop_corrected(events: Iterable[EventBase]) -> list[EventBase]:
    """The events of :func:`split_corrections`'s ``kept``: ``events`` without those a
    correction replaced (batch semantics of ``meta.corrects``). Raises the first refusal
    (:class:`EventError`, e.g. :class:`EventConflictError`) if there is one."""
    kept, refused = split_corrections(events)
    if refused:
        raise refused[0][1]
    return kept


@dataclass
class SessionStats:
    """Counts of what a session has seen. Every event fed is counted exactly once, as what
    it was when fed: applied (``events``), a redelivery (``duplicates``), a copy of an id
    with another payload (``conflicts``), an event a correction already replaced
    (``superseded``) or refused with an error (``rejected``)."""

    events: int = 0
    """Events applied (late and correcting ones included)."""
    duplicates: int = 0
    """Events ignored because their id was seen before."""
    decisions: int = 0
    """Decisions returned, revocations and revisions included."""
    late: int = 0
    """Events applied behind the clock, within ``allowed_lateness``."""
    rejected: int = 0
    """Events refused: older than the allowance (EventOrderError), or a correction that
    cannot be applied. Never silently dropped: the call raised."""
    corrections: int = 0
    """Events applied that correct another (``meta.corrects``)."""
    superseded: int = 0
    """Events ignored because a correction of them had already been applied."""
    revocations: int = 0
    """Decisions revoked by late or corrected events."""
    revisions: int = 0
    """Decisions re-issued with changed figures because of late or corrected events."""
    conflicts: int = 0
    """Events refused because their id was seen before with another payload
    (:class:`EventConflictError`: the call raised)."""


class _Op:
    """One step of the window's log: an event applied, or ``advance_to`` (event None)."""

    __slots__ = ("at", "event", "results")

    def __init__(self, at: datetime, event: EventBase | None,
                 results: list[Decision] | None = None) -> None:
        self.at = at
        self.event = event
        self.results: list[Decision] = results or []  # as the evaluator emitted them


class _Pub:
    """What the session has told the caller about one decision identity (the evaluator's
    id): the id it was last published under, whether it still holds, its content."""

    __slots__ = ("alive", "content", "id", "time")

    def __init__(self, id: str, alive: bool, content: Decision, time: datetime) -> None:
        self.id = id
        self.alive = alive
        self.content = content
        self.time = time  # time of the step that last produced it (for pruning)


def _derived_id(base: str, verb: str, cause: str) -> str:
    # ``cause`` is an event id encoded with key_part (never holding the separator) or
    # "advance" + separator + an instant, so the two kinds never meet.
    return hashed_id(base, verb, cause)


def _same(a: Decision, b: Decision) -> bool:
    return a == b or a.model_copy(update={"supersedes": b.supersedes}) == b


class _Window:
    """The late-event machinery: the log of the steps within ``allowed`` of the clock,
    checkpoints of the evaluator state at some of its positions, and what was published.

    A checkpoint is the evaluator's token (:meth:`EvaluatorSession.mark`): on the native
    and durable evaluators a copy-on-write journal of the keys touched since the checkpoint
    before, so taking one and going back to one cost what the steps in between touched,
    never the number of keys in the state (see policykit/engine/_journal.py)."""

    def __init__(self, allowed: timedelta, every: int, evaluator: EvaluatorSession) -> None:
        self.allowed = allowed
        self.every = every
        self.spacing = every
        self.since = 0
        self.ev = evaluator
        self.ops: list[_Op] = []
        self.checkpoints: list[tuple[int, Any]] = []  # (position in ops, evaluator token)
        self.pub: dict[str, _Pub] = {}

    def take(self) -> Any:
        """A checkpoint of the evaluator's state now (see the class docstring)."""
        return self.ev.mark()

    def spacing_for(self, token: Any) -> int:
        # A whole copy (an evaluator without a journal) costs the state's size: space those
        # checkpoints so they stay a small share of a step's cost (replays get longer).
        return max(self.every, len(token) // 2048) if isinstance(token, bytes) else self.every

    def checkpoint(self, position: int) -> None:
        token = self.take()
        self.checkpoints.append((position, token))
        self.since = 0
        self.spacing = self.spacing_for(token)

    def position(self, ev: EventBase) -> int:
        """Where ``ev`` belongs in the log: after every step before its time, after events
        at its time with a smaller id, before an ``advance_to`` its time (events at an
        instant are applied before the deadlines at it fire)."""
        ops = self.ops
        i = bisect_left(ops, ev.at, key=lambda o: o.at)
        while i < len(ops) and ops[i].at == ev.at:
            other = ops[i].event
            if other is None or other.id > ev.id:
                break
            i += 1
        return i

    def find(self, event_id: str, clock: datetime) -> int | None:
        """Position of a logged event still within the allowance, or None."""
        start = clock - self.allowed
        for i in range(len(self.ops) - 1, -1, -1):
            op = self.ops[i]
            if op.at < start:
                return None
            if op.event is not None and op.event.id == event_id:
                return i
        return None

    def prune(self, clock: datetime) -> None:
        """Forget the steps no admissible late event can come before (memory stays flat)."""
        ops = self.ops
        older = bisect_left(ops, clock - self.allowed, key=lambda o: o.at)
        cps = self.checkpoints
        keep = 0
        for j, (pos, _state) in enumerate(cps):
            if pos <= older:
                keep = j
            else:
                break
        if keep == 0:
            return
        del cps[:keep]
        self.ev.release(cps[0][1])
        offset = cps[0][0]
        if offset == 0:
            return
        del ops[:offset]
        self.checkpoints = [(pos - offset, state) for pos, state in cps]
        horizon = ops[0].at if ops else clock - self.allowed
        self.pub = {k: p for k, p in self.pub.items() if p.time >= horizon}

    # -- snapshots -----------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        return {
            "allowed": self.allowed,
            "every": self.every,
            "spacing": self.spacing,
            "since": self.since,
            "ops": [[op.at, op.event, op.results] for op in self.ops],
            # The oldest checkpoint only: restoring replays the steps after it (which gives
            # the others again), so a snapshot holds one copy of the state, not one per
            # checkpoint.
            "checkpoints": [[pos, self.ev.state_at(token)]
                            for pos, token in self.checkpoints[:1]],
            "pub": [[k, p.id, p.alive, p.content, p.time] for k, p in self.pub.items()],
        }

    @classmethod
    def load(cls, data: Any, evaluator: EvaluatorSession) -> _Window:
        def bad(what: str) -> SnapshotError:
            return SnapshotError(f"snapshot window: {what}")

        if not isinstance(data, dict) or set(data) != {
                "allowed", "every", "spacing", "since", "ops", "checkpoints", "pub"}:
            raise bad("unexpected layout")
        allowed = data["allowed"]
        if not isinstance(allowed, timedelta) or allowed <= timedelta(0):
            raise bad(f"allowed lateness {allowed!r}")
        ints = [data[k] for k in ("every", "spacing", "since")]
        if any(type(x) is not int or x < 0 for x in ints) or ints[0] < 1:
            raise bad("checkpoint counters")
        w = cls(allowed, ints[0], evaluator)
        w.spacing, w.since = ints[1], ints[2]
        if not isinstance(data["ops"], list):
            raise bad("ops")
        last: datetime | None = None
        for item in data["ops"]:
            if not (isinstance(item, list) and len(item) == 3 and _aware(item[0])
                    and (item[1] is None or isinstance(item[1], EventBase))
                    and isinstance(item[2], list)
                    and all(isinstance(d, Decision) for d in item[2])):
                raise bad("a step is not [time, event or null, decisions]")
            if last is not None and item[0] < last:
                raise bad("steps out of time order")
            if item[1] is not None and item[1].at != item[0]:
                raise bad("a step's time differs from its event's")
            last = item[0]
            w.ops.append(_Op(item[0], item[1], item[2]))
        cps = data["checkpoints"]
        if not isinstance(cps, list) or not cps:
            raise bad("no checkpoint")
        prev = -1
        for item in cps:
            if not (isinstance(item, list) and len(item) == 2 and type(item[0]) is int
                    and prev < item[0] <= len(w.ops)):
                raise bad("checkpoint positions")
            prev = item[0]
            evaluator.import_state(item[1])  # validates it
        # The first checkpoint's state is taken; the session replays the steps after it
        # (Session._load), taking the later checkpoints again.
        evaluator.import_state(cps[0][1])
        w.checkpoints.append((cps[0][0], w.take()))
        if not isinstance(data["pub"], list):
            raise bad("published decisions")
        for item in data["pub"]:
            if not (isinstance(item, list) and len(item) == 5 and isinstance(item[0], str)
                    and isinstance(item[1], str) and type(item[2]) is bool
                    and isinstance(item[3], Decision) and _aware(item[4])):
                raise bad("a published decision is not [id, id, alive, decision, time]")
            w.pub[item[0]] = _Pub(item[1], item[2], item[3], item[4])
        return w


def _brief(exc: BaseException) -> str:
    text = str(exc)  # a forged state's values may be long
    return text if len(text) <= 200 else text[:200] + "..."


def _aware(value: Any) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None \
        and value.utcoffset() is not None


class Session:
    """Feed events in event-time order; each call returns the decisions that became due.

    Deadlines fire only when event time passes them (an event, or :meth:`advance_to`), never
    by the wall clock. At equal times, events are applied before deadlines fire: an event
    exactly at a deadline is in time. A repeated event id is ignored and counted; ids are
    remembered for ``dedupe_window`` of event time (see :meth:`policykit.Engine.session`).

    With ``allowed_lateness`` (see :meth:`policykit.Engine.session`), an event up to that much
    older than the clock is applied where it belongs, and the decisions it changes are
    revoked or revised by new decisions naming what they supersede; an older one raises
    :class:`EventOrderError` and is counted in ``stats.rejected``. An event with
    ``meta: {"corrects": "<id>"}`` replaces the event with that id; a repeated id with
    another payload raises :class:`EventConflictError` (``stats.conflicts``).

    Calls are serialised by a lock, so a session may be shared between threads; each
    :meth:`feed` is atomic (:meth:`feed_many` is a sequence of them).
    """

    def __init__(
        self,
        evaluator: EvaluatorSession,
        *,
        backend: str,
        policies: PolicySet | None = None,
        fingerprint: str | None = None,
        allowed_lateness: timedelta | None = None,
        checkpoint_every: int = 256,
        dedupe_window: timedelta | None = None,
        payload_digests: bool = True,
    ) -> None:
        self._ev = evaluator
        self.backend = backend
        self._policies = policies
        self._fingerprint = fingerprint
        if dedupe_window is not None and allowed_lateness is not None:
            # An event inside the lateness window is still applied, so its id must be known.
            dedupe_window = max(dedupe_window, allowed_lateness)
        self._ledger = Ledger(dedupe_window, digests=payload_digests)
        self._seen = self._ledger.seen
        self._clock: datetime | None = None
        # After advance_to(t), deadlines at t have fired, so an event at t would be judged
        # after them: it is late. After feed(at=t), another event at t is still in time.
        self._closed = False
        self._lock = threading.RLock()
        self.stats = SessionStats()
        self._failed: str | None = None
        self._window: _Window | None = None
        if allowed_lateness:
            evaluator.journal()
            self._window = _Window(allowed_lateness, checkpoint_every, evaluator)
            self._window.checkpoint(0)

    @property
    def clock(self) -> datetime | None:
        """The event time reached so far (None before the first event)."""
        return self._clock

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the policy set this session evaluates (None if not opened by
        an Engine): snapshots record it."""
        return self._fingerprint

    @property
    def allowed_lateness(self) -> timedelta:
        """How far behind the clock an event may arrive and still be applied."""
        return self._window.allowed if self._window is not None else timedelta(0)

    # -- feeding -------------------------------------------------------------------------

    def feed(self, event: EventBase | Mapping[str, Any] | str | bytes) -> list[Decision]:
        """Apply one event (a model, dict or JSON); return the decisions now due (with
        ``allowed_lateness``, also the revocations and revisions a late event causes).

        Raises :class:`EventConflictError` for a copy of an id seen before with another
        payload, and :class:`EventError` for a correction refused (see
        :mod:`policykit.engine._corrections`); the error of a refused cycle of corrections
        carries, in ``decisions``, the revocations of the member it withdrew. A rule raising
        an error that is not policykit's is :class:`SessionFailedError` raised from it."""
        ev = parse_event(event)
        with self._lock:
            out = self._feed(ev)
            self.stats.decisions += len(out)
            return _order(out)

    def _feed(self, ev: EventBase) -> list[Decision]:
        stats = self.stats
        if self._failed is not None:
            self._check_usable()
        # Repeated ids and corrections: the rules batch shares (see _corrections).
        try:
            plan = self._ledger.plan(ev, self._held)
        except EventConflictError:
            stats.conflicts += 1
            raise
        except EventError:
            stats.rejected += 1
            raise
        outcome = plan.outcome
        if outcome is Outcome.DUPLICATE:
            stats.duplicates += 1
            return []
        if outcome is Outcome.SUPERSEDED and plan.remove is None:
            self._ledger.commit(plan)
            stats.superseded += 1
            return []
        applies = outcome is Outcome.APPLY
        w = self._window
        allowed = w.allowed if w is not None else _NO_LATENESS
        clock = self._clock
        late = clock is not None and (ev.at < clock or (ev.at == clock and self._closed))
        if applies and late and clock is not None and (w is None or ev.at < clock - allowed):
            stats.rejected += 1
            raise EventOrderError(ev.id, ev.at.isoformat(), clock.isoformat(), allowed,
                                  self._forgotten_note(ev.at))
        target_pos: int | None = None
        if plan.remove is not None:
            assert clock is not None  # something was applied
            if w is not None:
                target_pos = w.find(plan.remove, clock)
            if target_pos is None:
                stats.rejected += 1
                raise EventOrderError(
                    ev.id, f"{ev.at.isoformat()} (a correction of {plan.remove!r}, which was "
                    "applied before the allowed lateness window)", clock.isoformat(), allowed)
        if applies:
            try:
                self._ev.check(ev)  # before anything is applied: the session goes on
            except EventError:
                stats.rejected += 1
                raise
        try:
            if not applies:
                # A chain or cycle reaching an applied event withdraws it.
                out = self._repair(ev, target_pos, insert=False) \
                    if target_pos is not None else []
            elif w is None:
                out = self._ev.fire_due(ev.at, inclusive=False)
                out += self._ev.apply(ev)
            elif late or target_pos is not None:
                out = self._repair(ev, target_pos)
            else:
                out = self._step_and_publish(_Op(ev.at, ev), key_part(ev.id))
        except BaseException as exc:
            stats.rejected += 1
            failure = self._fail(exc, f"event {ev.id!r}")
            if failure is None:
                raise
            raise failure from exc
        self._ledger.commit(plan)
        if outcome is Outcome.CYCLE:
            stats.rejected += 1
            error = plan.error
            assert error is not None
            # The withdrawn member's revocations are not lost: the error carries them.
            stats.decisions += len(out)
            error.decisions = _order(out)  # type: ignore[attr-defined]
            raise error
        if not applies:
            stats.superseded += 1
            return out
        stats.events += 1
        if plan.target is not None:
            stats.corrections += 1
        seen = self._seen
        if late:
            stats.late += 1
        else:
            self._clock = ev.at
            self._closed = False
            forget = seen.forget_after
            if forget is not None and ev.at > forget:
                seen.forget_before(ev.at)
        if w is not None:
            w.prune(max(ev.at, clock) if clock is not None else ev.at)
        return out

    def _held(self, event_id: str) -> EventBase | None:
        """The applied event ``event_id`` while it is in the window, else None."""
        w = self._window
        if w is None or self._clock is None:
            return None
        pos = w.find(event_id, self._clock)
        return None if pos is None else w.ops[pos].event

    def _forgotten_note(self, at: datetime) -> str:
        until = self._seen.forgotten_until
        if until is None or at > until:
            return ""
        return (f"If it is a redelivery of an event already applied, it is also older than "
                f"the dedupe window ({_iso_duration(self._seen.window)}): this session no "
                f"longer remembers event ids that old")

    def _fail(self, exc: BaseException, where: str) -> SessionFailedError | None:
        """Note a step whose rules raised ``exc``; the error to raise instead of it (None:
        ``exc`` itself, a policykit error or one that passes through unchanged)."""
        # A window session rolled back (see _rebuild): still consistent, unless the rollback
        # failed too (it set _failed). A strict session cannot undo a half-applied step, so
        # it refuses further use instead of going on from a state no in-order run would have.
        if self._window is None:
            self._failed = f"{where}: {type(exc).__name__}: {_brief(exc)}"
        elif self._failed is not None:  # the rollback's own failure
            self._failed = f"{where} ({type(exc).__name__}: {_brief(exc)}), {self._failed}"
        if not _unexpected(exc):
            return None
        then = ("so this session refuses further use: restore an earlier checkpoint "
                "(Engine.restore) and replay the events after it" if self._failed is not None
                else "the step was rolled back and the session goes on as before it")
        return SessionFailedError(
            f"{where}: the rules raised {type(exc).__name__}: {_brief(exc)}. The rule state "
            f"is inconsistent (a forged or corrupt snapshot, or a bug in a rule); {then}")

    def _check_usable(self) -> None:
        if self._failed is not None:
            raise SessionFailedError(
                f"this session failed at {self._failed}; its rule state may be partial, so "
                "it refuses further use: restore the last checkpoint (Engine.restore) and "
                "replay the events after it, or open the session with allowed_lateness "
                "(which rolls a failing event back)")

    def feed_many(
        self, events: Iterable[EventBase | Mapping[str, Any] | str | bytes]
    ) -> list[Decision]:
        """Feed several events in order; the decisions of all of them.

        If an event is refused (or the iterable raises), the events before it stay applied
        and the exception carries their decisions in ``decisions``, so none is lost; from a
        one-shot iterator, the events after it are left unread."""
        # The feeds run under one hold of the lock (still a sequence of atomic feeds) and
        # the decisions are ordered once at the end: the same list as feeding one by one,
        # since the final sort on (at, id) is stable and each step's own order was too.
        out: list[Decision] = []
        with self._lock:
            try:
                self._feed_all(events, out)
            except BaseException as exc:
                # A refused cycle's error already carries the decisions of its own step.
                own = getattr(exc, "decisions", None)
                with contextlib.suppress(AttributeError, TypeError):
                    exc.decisions = _order(  # type: ignore[attr-defined]
                        out + own if isinstance(own, list) else out)
                raise
        return _order(out)

    def _feed_all(self, events: Iterable[EventBase | Mapping[str, Any] | str | bytes],
                  out: list[Decision]) -> None:
        stats = self.stats
        reads = self._skips()
        if not self._ev.prepares or not isinstance(events, Sequence):
            # Parsed and fed one at a time: an error leaves the rest of a one-shot iterator
            # unread, for the caller to go on with.
            if reads is not None:
                self._feed_run(map(parse_event, events), out, reads)
                return
            for e in events:
                got = self._feed(parse_event(e))
                if got:
                    stats.decisions += len(got)
                    out += got
            return
        # An evaluator that prepares (the durable backend matches a chunk in a few engine
        # calls) gets chunks parsed ahead; only from a sequence, which keeps the events
        # after a failure for the caller. A failure parsing an event is raised once the
        # events before it are fed, as when each was parsed and fed in turn.
        for start in range(0, len(events), _CHUNK):
            chunk: list[EventBase] = []
            failure: BaseException | None = None
            try:
                for e in events[start:start + _CHUNK]:
                    chunk.append(parse_event(e))
            except BaseException as exc:
                failure = exc
            if chunk:
                self._ev.prepare(chunk)
            if reads is not None:
                self._feed_run(chunk, out, reads)
            else:
                for ev in chunk:
                    got = self._feed(ev)
                    if got:
                        stats.decisions += len(got)
                        out += got
            if failure is not None:
                raise failure

    def _skips(self) -> frozenset[str] | None:
        """The event types the evaluator reads, when this session may leave the others
        unapplied (:meth:`_feed_run`); else None. Only a session whose ledger keeps no
        payload digests (the batch pipeline's, which resolved repeated ids and conflicts
        before feeding it) and has no lateness window: for any other an unread event still
        owes a digest or a place in the window's log."""
        if self._window is not None or self._ledger.digests:
            return None
        return self._ev.reads

    def _feed_run(self, events: Iterable[EventBase], out: list[Decision],
                  reads: frozenset[str]) -> None:
        """:meth:`_feed` each event, except that an event no rule reads (its type is not in
        ``reads``), new, in time and correcting nothing is only counted, its id kept and
        the clock moved: exactly what :meth:`_feed` would do with it, less the evaluator
        calls, which do nothing for it but fire what is due before it. That firing is put
        off to the next event applied (which fires all that is due before itself), or to
        the end of the run: the rules see the same calls in the same order."""
        stats = self.stats
        seen = self._seen
        ids = seen.ids
        plain = seen.window is None  # every id kept: nothing to forget
        ledger = self._ledger
        by, refused = ledger.by, ledger.refused
        pending: datetime | None = None  # an event skipped since the evaluator last fired
        # The clock and the count of skipped events live in locals between calls of _feed
        # (written back before each, and at the end whatever happens).
        clock, closed, skipped = self._clock, self._closed, 0
        if self._failed is not None:
            reads = frozenset()  # every event to _feed, which refuses it
        try:
            for ev in events:
                x = ev.id
                at = ev.at
                if (ev.type not in reads and x not in ids and x not in by
                        and x not in refused
                        and (clock is None or at > clock or (at == clock and not closed))
                        and not (ev.meta and CORRECTS in ev.meta)
                        and not isinstance(ev, EmployeeProfile)):
                    if plain:
                        ids[x] = None
                    else:
                        seen.add(x, at)
                        forget = seen.forget_after
                        if forget is not None and at > forget:
                            seen.forget_before(at)
                    skipped += 1
                    clock, closed, pending = at, False, at
                    continue
                self._clock, self._closed = clock, closed
                stats.events += skipped
                skipped = 0
                applied = stats.events
                got = self._feed(ev)
                clock, closed = self._clock, self._closed
                if stats.events != applied:
                    pending = None  # it fired all that is due before it, so before `pending`
                if got:
                    stats.decisions += len(got)
                    out += got
        except EventError:
            self._settle(clock, closed, skipped)
            # An event refused (the session goes on): what is due before the events skipped
            # until then fires now, as it would have when they were fed.
            if pending is not None and self._failed is None:
                self._fire_pending(pending, out)
            raise
        except BaseException:
            self._settle(clock, closed, skipped)
            raise
        self._settle(clock, closed, skipped)
        if pending is not None:
            self._fire_pending(pending, out)

    def _settle(self, clock: datetime | None, closed: bool, skipped: int) -> None:
        """Write back what :meth:`_feed_run` kept in locals since its last call of _feed."""
        if skipped:
            self._clock, self._closed = clock, closed
            self.stats.events += skipped

    def _fire_pending(self, before: datetime, out: list[Decision]) -> None:
        try:
            got = self._ev.fire_due(before, inclusive=False)
        except BaseException as exc:
            failure = self._fail(exc, f"the deadlines due before {before.isoformat()}")
            if failure is None:
                raise
            raise failure from exc
        if got:
            self.stats.decisions += len(got)
            out += got

    def advance_to(self, instant: datetime | date | str) -> list[Decision]:
        """Move event time to ``instant``: every deadline due at or before it fires.

        ``instant`` takes the forms ``until`` takes everywhere: an aware datetime, an ISO
        date-time with offset, or a date (the start of that day in the policies' calendar
        zone); a time without offset is refused, and so is one outside the years events may
        have (ParameterError)."""
        from ._batch import parse_instant  # the one reader of instants (lazy: no cycle)

        instant = parse_instant(instant, name="advance_to.instant", policies=self._policies)
        if self._policies is not None:
            from ._batch import check_horizon

            # Past a calendar's holiday data the working-day rules would go silent.
            check_horizon(instant, self._policies, name="advance_to.instant")
        with self._lock:
            self._check_usable()
            if self._clock is not None and instant < self._clock:
                raise ParameterError("advance_to.instant", instant.isoformat(),
                                     f"not before the session clock {self._clock.isoformat()}")
            w = self._window
            try:
                if w is None:
                    out = self._ev.fire_due(instant, inclusive=True)
                else:
                    out = self._step_and_publish(_Op(instant, None),
                                                 "advance" + _KEY_SEP + instant.isoformat())
            except BaseException as exc:
                failure = self._fail(exc, f"advance_to({instant.isoformat()})")
                if failure is None:
                    raise
                raise failure from exc
            self._clock = instant
            self._closed = True
            self._seen.forget_before(instant)
            if w is not None:
                w.prune(instant)
            self.stats.decisions += len(out)
            return _order(out)

    # -- the window: steps, replays and what they change ------------------------------------

    def _step(self, op: _Op) -> list[Decision]:
        if op.event is None:
            return self._ev.fire_due(op.at, inclusive=True)
        out = self._ev.fire_due(op.at, inclusive=False)
        out += self._ev.apply(op.event)
        return out

    def _step_and_publish(self, op: _Op, cause: str) -> list[Decision]:
        w = self._window
        assert w is not None
        if w.since >= w.spacing:
            w.checkpoint(len(w.ops))
        try:
            op.results = self._step(op)
        except BaseException:
            try:
                self._rebuild()
            except BaseException as again:
                self._failed = f"rolling it back: {type(again).__name__}: {_brief(again)}"
                if not isinstance(again, Exception):
                    raise  # KeyboardInterrupt and the like win
            raise
        w.ops.append(op)
        w.since += 1
        out: list[Decision] = []
        for d in op.results:
            out += self._publish(d, op.at, cause, ())
        return out

    def _rebuild(self) -> None:
        """After a rule raised mid-step: the window is as it was before the step, so put
        the rule state back to match it (the last checkpoint, and the steps since, which
        succeeded before and give the same state again)."""
        w = self._window
        assert w is not None
        start, token = w.checkpoints[-1]
        self._ev.rewind(token)
        for op in w.ops[start:]:
            self._step(op)

    def _replay(self, ops: list[_Op], k: int) -> tuple[list[tuple[int, Any]], int, int]:
        """Go back to checkpoint ``k`` and run ``ops`` from its position on, replacing each
        step's results, with checkpoints taken as in a first run. Returns the checkpoints,
        and the steps since the last one and the spacing (for the window)."""
        w = self._window
        assert w is not None
        start, token = w.checkpoints[k]
        checkpoints = w.checkpoints[:k + 1]
        since, spacing = 0, w.spacing
        self._ev.rewind(token)
        for j in range(start, len(ops)):
            if since >= spacing:
                token = w.take()
                checkpoints.append((j, token))
                since, spacing = 0, w.spacing_for(token)
            op = ops[j]
            ops[j] = _Op(op.at, op.event, self._step(op))
            since += 1
        return checkpoints, since, spacing

    def _repair(self, ev: EventBase, target_pos: int | None,
                insert: bool = True) -> list[Decision]:
        """Apply ``ev`` where it belongs in the window (replacing the event at
        ``target_pos`` for a correction; with ``insert`` False, only withdrawing that one,
        ``ev`` being the cause): go back to the last checkpoint before the change,
        replay the steps since, and publish the difference. Nothing of the window changes
        until the replay succeeded (a rule raising leaves the session as it was)."""
        w = self._window
        assert w is not None
        old_ops = w.ops
        i = w.position(ev) if insert else len(old_ops)
        new_ops = [*old_ops[:i], _Op(ev.at, ev), *old_ops[i:]] if insert else list(old_ops)
        first = i
        if target_pos is not None:
            del new_ops[target_pos + (1 if insert and target_pos >= i else 0)]
            first = min(i, target_pos)
        k = max(j for j, (pos, _s) in enumerate(w.checkpoints) if pos <= first)
        start = w.checkpoints[k][0]
        old_checkpoints = list(w.checkpoints)
        try:
            checkpoints, since, spacing = self._replay(new_ops, k)
        except BaseException:
            # Back to the window as it was: its steps again from the same checkpoint (the
            # later checkpoints are gone with the failed replay, and are taken again).
            w.checkpoints = old_checkpoints
            redo = [_Op(op.at, op.event, op.results) for op in old_ops]
            try:
                w.checkpoints, w.since, w.spacing = self._replay(redo, k)
            except BaseException as again:
                self._failed = f"rolling it back: {type(again).__name__}: {_brief(again)}"
                if not isinstance(again, Exception):
                    raise
            raise
        old = [(d, op.at) for op in old_ops[start:] for d in op.results]
        new = [(d, op.at) for op in new_ops[start:] for d in op.results]
        w.ops, w.checkpoints, w.since, w.spacing = new_ops, checkpoints, since, spacing
        return self._diff(old, new, ev, target_pos is not None)

    def _diff(self, old: list[tuple[Decision, datetime]], new: list[tuple[Decision, datetime]],
              cause: EventBase, correction: bool) -> list[Decision]:
        w = self._window
        assert w is not None
        pub = w.pub
        old_map = {d.id: d for d, _t in old}
        new_map: dict[str, tuple[Decision, datetime]] = {}
        for d, t in new:
            new_map.setdefault(d.id, (d, t))
        gone = [x for x in old_map if x not in new_map and x in pub and pub[x].alive]
        # A decision that disappears and a brand-new one of the same rule, subject and case
        # key (e.g. a late day moved by a corrected clock-in) are one decision replaced: the
        # new one supersedes the old instead of a separate revocation.
        pairs: dict[str, str] = {}
        gone_by: dict[tuple[Any, ...], list[str]] = {}
        fresh_by: dict[tuple[Any, ...], list[str]] = {}
        for x in gone:
            if (ident := _identity(pub[x].content)) is not None:
                gone_by.setdefault(ident, []).append(x)
        for x, (d, _t) in new_map.items():
            if x not in old_map and x not in pub and (ident := _identity(d)) is not None:
                fresh_by.setdefault(ident, []).append(x)
        for ident, xs in fresh_by.items():
            if len(xs) == 1 and len(gone_by.get(ident, ())) == 1:
                pairs[xs[0]] = gone_by[ident][0]
        reason = (f"event {cause.id!r} corrects {corrected_id(cause)!r}" if correction else
                  f"event {cause.id!r} ({cause.type} at {cause.at.isoformat()}) arrived late")
        out: list[Decision] = []
        for x, (d, t) in new_map.items():
            if x in old_map:
                if _same(old_map[x], d):
                    if x in pub:
                        pub[x].time = t
                    continue
                out.append(self._revise(d, t, key_part(cause.id)))
                continue
            replaced = pairs.get(x)
            if replaced is not None:
                old_id = pub[replaced].id
                pub[replaced].alive = False
                self.stats.revisions += 1
                out += self._publish(d, t, key_part(cause.id), (old_id,), {"replaces": old_id,
                                                                 "replaced_by": cause.id})
            else:
                out += self._publish(d, t, key_part(cause.id), ())
        paired = set(pairs.values())
        for x in gone:
            if x not in paired:
                out.append(self._revoke(x, key_part(cause.id), reason))
        return out

    @property
    def _pub(self) -> dict[str, _Pub]:
        assert self._window is not None  # only sessions with a window publish
        return self._window.pub

    def _translate(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        pub = self._pub
        return tuple(pub[s].id if s in pub else s for s in ids)

    def _publish(self, d: Decision, t: datetime, cause: str, extra: tuple[str, ...],
                 note: dict[str, str] | None = None) -> list[Decision]:
        pub = self._pub
        p = pub.get(d.id)
        if p is None:
            sup = self._translate(d.supersedes) + extra
            pub[d.id] = _Pub(d.id, True, d, t)
            if sup == d.supersedes and not note:
                return [d]
            update: dict[str, Any] = {"supersedes": sup}
            if note:
                update["details"] = {**d.details, **note}
            return [d.model_copy(update=update)]
        if p.alive and _same(p.content, d):
            p.time = t
            return []
        return [self._revise(d, t, cause)]

    def _revise(self, d: Decision, t: datetime, cause: str) -> Decision:
        p = self._pub[d.id]
        rid = _derived_id(d.id, "revised", cause)
        revised = d.model_copy(update={
            "id": rid,
            "supersedes": (*self._translate(d.supersedes), p.id),
            "details": {**d.details, "original_id": d.id, "revision_of": p.id,
                        "revised_by": part_value(cause)},
        })
        p.id, p.alive, p.content, p.time = rid, True, d, t
        self.stats.revisions += 1
        return revised

    def _revoke(self, base: str, cause: str, reason: str) -> Decision:
        p = self._pub[base]
        c = p.content
        vid = _derived_id(base, "revoked", cause)
        at = c.at if self._clock is None or self._clock <= c.at else \
            self._clock.astimezone(c.at.tzinfo)
        details: dict[str, Any] = {
            "outcome": "revoked",
            "revoked": p.id,
            "original_id": base,
            "original_outcome": c.details.get("outcome"),
            "revoked_by": part_value(cause),
            "reason": reason,
        }
        if c.amount is not None:
            details["original_amount"] = str(c.amount)
            details["original_currency"] = c.currency
        revocation = Decision(
            id=vid, policy=c.policy, rule=c.rule, part=c.part, kind=c.kind, subject=c.subject,
            at=at,
            evidence=tuple(dict.fromkeys((*c.evidence, part_value(cause)))), severity=c.severity,
            clause=c.clause,
            message=f"Revoked ({reason}): {c.message}",
            message_zh=f"撤銷（{reason}）：{c.message_zh}",
            details=details, status=c.status, supersedes=(p.id,),
            policy_fingerprint=c.policy_fingerprint,
        )
        p.id, p.alive = vid, False
        self.stats.revocations += 1
        return revocation

    # -- snapshots -----------------------------------------------------------------------

    def snapshot(self) -> bytes:
        """The session's whole state as bytes: clock, seen ids, stats, the evaluator's rule
        state and (with ``allowed_lateness``) the window. Restore with
        :meth:`policykit.Engine.restore` on an engine with the same policies and backend.
        The bytes are compressed tagged JSON: restoring them can never execute code."""
        with self._lock:
            self._check_usable()
            if self._fingerprint is None or self._policies is None:
                raise SnapshotError("this session was not opened by an Engine, so it cannot "
                                    "name its policy set; open it with Engine.session()")
            payload = {
                "kind": _SNAPSHOT_KIND,
                "backend": self.backend,
                "fingerprint": self._fingerprint,
                "policies": [[p.id, _version_text(p)] for p in self._policies],
                "clock": self._clock,
                "closed": self._closed,
                "seen": self._seen.export(),
                "forgotten_until": self._seen.forgotten_until,
                "dedupe_window": self._seen.window,
                "corrected": self._ledger.export(),
                "stats": dataclasses.asdict(self.stats),
                "evaluator": self._ev.export_state(),
                "window": self._window.export() if self._window is not None else None,
            }
            return pack(payload)

    def _load(self, payload: dict[str, Any]) -> None:
        """Take the state of a decoded, checked snapshot payload (see Engine.restore)."""
        def bad(what: str) -> SnapshotError:
            return SnapshotError(f"snapshot: {what}")

        clock = payload["clock"]
        if clock is not None and not _aware(clock):
            raise bad("the clock is not an aware datetime")
        if type(payload["closed"]) is not bool:
            raise bad("closed is not a boolean")
        ledger = Ledger(self._seen.window)
        try:
            ledger.load(payload["corrected"])
        except ValueError as exc:
            raise bad(str(exc)) from None
        seen: list[tuple[str, datetime | None, int | None]] = []
        items = payload["seen"]
        forgotten: ForgottenIds | None = None
        if isinstance(items, dict):  # ids with payload digests, and the forgotten ids
            if set(items) != {"ids", "forgotten"}:
                raise bad("seen: unexpected layout")
            if items["forgotten"] is not None:
                try:
                    forgotten = ForgottenIds.load(items["forgotten"])
                except ValueError as exc:
                    raise bad(str(exc)) from None
            items = items["ids"]
        if not isinstance(items, list):
            raise bad("seen is not a list of [event id, time]")
        for item in items:
            if isinstance(item, str):  # written before ids had times: forgotten from now on
                seen.append((item, clock, None))
            elif (isinstance(item, list) and len(item) in (2, 3) and isinstance(item[0], str)
                  and (item[1] is None or _aware(item[1]))
                  and (len(item) == 2 or item[2] is None
                       or (type(item[2]) is int and 0 <= item[2] < 1 << 60))):
                seen.append((item[0], item[1], item[2] if len(item) == 3 else None))
            else:
                raise bad("seen is not a list of [event id, time]")
        forgotten_until = payload.get("forgotten_until")
        if forgotten_until is not None and not _aware(forgotten_until):
            raise bad("forgotten_until is not an aware datetime")
        stats = payload["stats"]
        names = {f.name for f in dataclasses.fields(SessionStats)}
        if not isinstance(stats, dict) or not set(stats) <= names or not all(
                type(v) is int and v >= 0 for v in stats.values()):
            raise bad("stats are not counts")
        self._ev.import_state(payload["evaluator"])
        window = None
        if payload["window"] is not None:
            window = _Window.load(payload["window"], self._ev)
        self._window = window
        if window is not None:
            # The evaluator is at the window's first checkpoint: replaying the steps after
            # it gives the state the snapshot was taken in, and the later checkpoints.
            w = window
            w.checkpoints, w.since, w.spacing = self._replay(w.ops, 0)
        self._clock = clock
        self._closed = payload["closed"]
        ledger.seen.load(seen, forgotten_until, forgotten)
        self._ledger, self._seen = ledger, ledger.seen
        self.stats = SessionStats(**stats)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the evaluator's resources (the durable backend holds C-side state)."""
        with self._lock:
            self._ev.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _identity(d: Decision) -> tuple[Any, ...] | None:
    """What makes two decisions "the same decision, revised": rule, kind, status, subject
    and the case key the rule reports in its details (None without one: never paired)."""
    key = d.details.get("key")
    if not isinstance(key, str):
        return None
    return (d.policy, d.spec_rule, d.kind, d.status, d.subject.kind, d.subject.id, key,
            d.details.get("outcome"))
