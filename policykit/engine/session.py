"""A streaming evaluation in event time: feed events, advance the clock, get decisions.

A :class:`Session` owns the clock, the feeding (one event, or many with the batch
pipeline's shortcut for events no rule reads) and deduplication (the ledger of ids and
corrections, policykit/engine/_corrections.py). Beyond the in-order stream, a session can:

- be **snapshotted** to bytes (:meth:`Session.snapshot`) and restored by
  :meth:`policykit.Engine.restore` after a restart (see :mod:`policykit.checkpoint`); the
  payload's layout is policykit/engine/_payload.py's;
- accept **late and corrected events** within ``allowed_lateness``: its late-event window
  (policykit/engine/_late.py) keeps the events of that window and checkpoints of the
  evaluator's state, and on a late event restores the state just before the event's time,
  replays the window with the event in its place, and returns the difference — revocations
  of decisions that no longer hold, revisions of decisions whose figures changed, and new
  decisions — each naming what it supersedes;
- be shared by threads: every call runs under one lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Mapping, Sequence
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
from ..models.events import EVENT_TYPES, EmployeeProfile, EventBase
from ..models.parsing import CORRECTS, parse_event
from ..policy import version_text as _version_text
from ..rules.internal import key_part
from ._backend import EvaluatorSession
from ._corrections import Ledger, Outcome, Plan, corrected_id, split_corrections
from ._late import KEY_SEP, Step, Window, brief
from ._payload import SessionPayload, pack_session
from ._stats import SessionStats

if TYPE_CHECKING:
    from ..policy import PolicySet

__all__ = ["CORRECTS", "Session", "SessionFailedError", "SessionStats", "corrected_id",
           "drop_corrected", "restore_state", "split_corrections"]


def _as_is(event: Any) -> EventBase:
    return event  # type: ignore[no-any-return]


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
        self._ledger = Ledger.for_session(dedupe_window, allowed_lateness,
                                          digests=payload_digests)
        self._seen = self._ledger.seen
        self._clock: datetime | None = None
        # After advance_to(t), deadlines at t have fired, so an event at t would be judged
        # after them: it is late. After feed(at=t), another event at t is still in time.
        self._closed = False
        self._lock = threading.RLock()
        self.stats = SessionStats()
        self._failed: str | None = None
        self._window: Window | None = None
        if allowed_lateness:
            evaluator.journal()
            self._window = Window(allowed_lateness, checkpoint_every, evaluator, self.stats)
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

    # -- feeding ---------------------------------------------------------------------------

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
        if self._failed is not None:
            self._check_usable()
        plan = self._plan(ev)
        outcome = plan.outcome
        if outcome is Outcome.DUPLICATE:
            self.stats.duplicates += 1
            return []
        if outcome is Outcome.SUPERSEDED and plan.remove is None:
            self._ledger.commit(plan)
            self.stats.superseded += 1
            return []
        applies = outcome is Outcome.APPLY
        clock = self._clock
        late = clock is not None and (ev.at < clock or (ev.at == clock and self._closed))
        target_pos = self._admit(ev, plan, applies, late)
        out = self._run(ev, applies, late, target_pos)
        self._ledger.commit(plan)
        return self._account(ev, plan, out, late, clock)

    def _plan(self, ev: EventBase) -> Plan:
        """What ``ev`` does, as to repeated ids and corrections: the rules batch shares
        (see _corrections). Counts a refusal."""
        try:
            return self._ledger.plan(ev, self._held)
        except EventConflictError:
            self.stats.conflicts += 1
            raise
        except EventError:
            self.stats.rejected += 1
            raise

    def _admit(self, ev: EventBase, plan: Plan, applies: bool, late: bool) -> int | None:
        """Refuse ``ev`` (counted) when it is older than the allowance, corrects an event
        applied before the window, or the rules refuse it, before anything is applied (the
        session goes on). The position in the window of the event a correction replaces."""
        stats = self.stats
        w = self._window
        allowed = w.allowed if w is not None else _NO_LATENESS
        clock = self._clock
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
                self._ev.check(ev)
            except EventError:
                stats.rejected += 1
                raise
        return target_pos

    def _run(self, ev: EventBase, applies: bool, late: bool,
             target_pos: int | None) -> list[Decision]:
        """Apply an admitted ``ev``: in place, or through the window (a late event, a
        correction, or a chain or cycle of corrections withdrawing an applied event)."""
        w = self._window
        try:
            if w is None:
                if not applies:
                    return []
                out = self._ev.fire_due(ev.at, inclusive=False)
                out += self._ev.apply(ev)
                return out
            if not applies:
                return [] if target_pos is None else \
                    w.repair(ev, target_pos, self._clock, insert=False)
            if late or target_pos is not None:
                return w.repair(ev, target_pos, self._clock)
            return w.step_and_publish(Step(ev.at, ev), key_part(ev.id))
        except BaseException as exc:
            self.stats.rejected += 1
            failure = self._fail(exc, f"event {ev.id!r}")
            if failure is None:
                raise
            raise failure from exc

    def _account(self, ev: EventBase, plan: Plan, out: list[Decision], late: bool,
                 clock: datetime | None) -> list[Decision]:
        """Count what ``ev`` was, once applied, and move the clock (``clock``: before it)."""
        stats = self.stats
        if plan.outcome is Outcome.CYCLE:
            stats.rejected += 1
            error = plan.error
            assert error is not None
            # The withdrawn member's revocations are not lost: the error carries them.
            stats.decisions += len(out)
            error.decisions = _order(out)  # type: ignore[attr-defined]
            raise error
        if plan.outcome is not Outcome.APPLY:
            stats.superseded += 1
            return out
        stats.events += 1
        if plan.target is not None:
            stats.corrections += 1
        if late:
            stats.late += 1
        else:
            self._clock = ev.at
            self._closed = False
            seen = self._seen
            forget = seen.forget_after
            if forget is not None and ev.at > forget:
                seen.forget_before(ev.at)
        if self._window is not None:
            self._window.prune(max(ev.at, clock) if clock is not None else ev.at)
        return out

    def _held(self, event_id: str) -> EventBase | None:
        """The applied event ``event_id`` while it is in the window, else None."""
        w = self._window
        if w is None or self._clock is None:
            return None
        return w.held(event_id, self._clock)

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
        # A window session rolled back (see Window._rebuild): still consistent, unless the
        # rollback failed too (the window says how). A strict session cannot undo a
        # half-applied step, so it refuses further use instead of going on from a state no
        # in-order run would have.
        w = self._window
        if w is not None and w.failed is not None:
            self._failed, w.failed = w.failed, None
        if w is None:
            self._failed = f"{where}: {type(exc).__name__}: {brief(exc)}"
        elif self._failed is not None:  # the rollback's own failure
            self._failed = f"{where} ({type(exc).__name__}: {brief(exc)}), {self._failed}"
        if not _unexpected(exc):
            return None
        then = ("so this session refuses further use: restore an earlier checkpoint "
                "(Engine.restore) and replay the events after it" if self._failed is not None
                else "the step was rolled back and the session goes on as before it")
        return SessionFailedError(
            f"{where}: the rules raised {type(exc).__name__}: {brief(exc)}. The rule state "
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
        return self._feed_many(events, parsed=False)

    def _feed_models(self, events: Sequence[EventBase]) -> list[Decision]:
        """:meth:`feed_many` of events already parsed (the batch pipeline's): no call of
        parse_event per event, which would return each as it is."""
        return self._feed_many(events, parsed=True)

    def _feed_many(self, events: Iterable[EventBase | Mapping[str, Any] | str | bytes],
                   *, parsed: bool) -> list[Decision]:
        # The feeds run under one hold of the lock (still a sequence of atomic feeds) and
        # the decisions are ordered once at the end: the same list as feeding one by one,
        # since the final sort on (at, id) is stable and each step's own order was too.
        out: list[Decision] = []
        with self._lock:
            try:
                self._feed_all(events, out, parsed)
            except BaseException as exc:
                # A refused cycle's error already carries the decisions of its own step.
                own = getattr(exc, "decisions", None)
                with contextlib.suppress(AttributeError, TypeError):
                    exc.decisions = _order(  # type: ignore[attr-defined]
                        out + own if isinstance(own, list) else out)
                raise
        return _order(out)

    def _feed_all(self, events: Iterable[EventBase | Mapping[str, Any] | str | bytes],
                  out: list[Decision], parsed: bool = False) -> None:
        stats = self.stats
        reads = self._skips()
        parse: Any = _as_is if parsed else parse_event
        if not self._ev.prepares or not isinstance(events, Sequence):
            # Parsed and fed one at a time: an error leaves the rest of a one-shot iterator
            # unread, for the caller to go on with.
            if reads is not None:
                self._feed_run(events if parsed else map(parse_event, events),  # type: ignore[arg-type]
                               out, reads)
                return
            for e in events:
                got = self._feed(parse(e))
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
                    chunk.append(parse(e))
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
        reads = self._ev.reads
        if reads is None:
            return None
        # A profile always goes through _feed (the rules' directory of employees).
        return reads | {t for t, m in EVENT_TYPES.items() if issubclass(m, EmployeeProfile)}

    def _feed_run(self, events: Iterable[EventBase], out: list[Decision],
                  reads: frozenset[str]) -> None:
        """:meth:`_feed` each event, except that an event no rule reads (its type is not in
        ``reads``), new, in time and correcting nothing is only counted, its id kept and
        the clock moved: exactly what :meth:`_feed` would do with it, less the evaluator
        calls, which do nothing for it but fire what is due before it. That firing is put
        off to the next event applied (which fires all that is due before itself), or to
        the end of the run: the rules see the same calls in the same order."""
        if self._failed is not None:
            reads = frozenset()  # every event to _feed, which refuses it
        pending: list[datetime | None] = [None]
        try:
            self._skim(events, out, reads, pending)
        except EventError:
            # An event refused (the session goes on): what is due before the events skipped
            # until then fires now, as it would have when they were fed.
            if pending[0] is not None and self._failed is None:
                self._fire_pending(pending[0], out)
            raise
        if pending[0] is not None:
            self._fire_pending(pending[0], out)

    def _skim(self, events: Iterable[EventBase], out: list[Decision], reads: frozenset[str],
              pending: list[datetime | None]) -> None:
        """The loop of :meth:`_feed_run`; ``pending[0]``: the time of an event skipped since
        the evaluator last fired (whatever happens)."""
        stats = self.stats
        seen = self._seen
        ids = seen.ids
        plain = seen.window is None  # every id kept: nothing to forget
        ledger = self._ledger
        by, refused = ledger.by, ledger.refused
        # The clock and the count of skipped events live in locals between calls of _feed
        # (written back before each, and at the end whatever happens).
        clock, closed, skipped = self._clock, self._closed, 0
        skip: datetime | None = None
        try:
            for ev in events:
                x = ev.id
                at = ev.at
                if (ev.type not in reads and x not in ids and x not in by
                        and x not in refused
                        and (clock is None or at > clock or (at == clock and not closed))
                        and not (ev.meta and CORRECTS in ev.meta)):
                    if plain:
                        ids[x] = None
                    else:
                        seen.keep(x, at)
                    skipped += 1
                    clock, closed, skip = at, False, at
                    continue
                self._clock, self._closed = clock, closed
                stats.events += skipped
                skipped = 0
                applied = stats.events
                got = self._feed(ev)
                clock, closed = self._clock, self._closed
                if stats.events != applied:
                    skip = None  # it fired all that is due before it, so before `skip`
                if got:
                    stats.decisions += len(got)
                    out += got
        finally:
            self._settle(clock, closed, skipped)
            pending[0] = skip

    def _settle(self, clock: datetime | None, closed: bool, skipped: int) -> None:
        """Write back what :meth:`_skim` kept in locals since its last call of _feed."""
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
                    out = w.step_and_publish(Step(instant, None),
                                             "advance" + KEY_SEP + instant.isoformat())
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
            return pack_session(SessionPayload(
                backend=self.backend, fingerprint=self._fingerprint,
                policies=[[p.id, _version_text(p)] for p in self._policies],
                clock=self._clock, closed=self._closed, ledger=self._ledger, stats=self.stats,
                evaluator=self._ev.export_state(),
                window=self._window.export() if self._window is not None else None))

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the evaluator's resources (the durable backend holds C-side state)."""
        with self._lock:
            self._ev.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()



def restore_state(session: Session, payload: SessionPayload) -> None:
    """Put ``session`` (fresh, opened with the payload's lateness allowance and dedupe
    window) in the state of a checked snapshot payload (see Engine.restore). The evaluator
    judges its own state (SnapshotError when it does not fit the policy set)."""
    session._ev.import_state(payload.evaluator)
    window = None
    if payload.window is not None:
        window = Window.restore(payload.window, session._ev, payload.stats)
    session._window = window
    session._clock = payload.clock
    session._closed = payload.closed
    session._ledger, session._seen = payload.ledger, payload.ledger.seen
    session.stats = payload.stats
