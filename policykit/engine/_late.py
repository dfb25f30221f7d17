"""The late-event window of a session with ``allowed_lateness``, and its repair.

The window keeps the log of the steps within the allowance of the clock (events applied
and ``advance_to`` calls, each with the decisions it gave), checkpoints of the evaluator's
state at some of its positions, and what the session has published about each decision.
A late or corrected event is put in its place: the evaluator goes back to the last
checkpoint before it, the steps since are replayed, and the difference between the old
and the new decisions is published as revocations, revisions and new decisions, each
naming what it supersedes (:meth:`Window.repair`).

The session (engine/session.py) decides *whether* an event is late, a correction or in
time; this module decides what that does to the decisions already published.
"""

from __future__ import annotations

from bisect import bisect_left
from datetime import datetime, timedelta
from typing import Any

from ..models.decisions import Decision
from ..models.events import EventBase
from ..rules.internal import KEY_SEP, hashed_id, key_part, part_value
from ._backend import EvaluatorSession
from ._corrections import corrected_id
from ._payload import WindowPayload
from ._stats import SessionStats

__all__ = ["KEY_SEP", "Step", "Window", "brief"]



def brief(exc: BaseException) -> str:
    """An error's text, cut short (a forged state's values may be long)."""
    text = str(exc)
    return text if len(text) <= 200 else text[:200] + "..."


class Step:
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


def _identity(d: Decision) -> tuple[Any, ...] | None:
    """What makes two decisions "the same decision, revised": rule, kind, status, subject
    and the case key the rule reports in its details (None without one: never paired)."""
    key = d.details.get("key")
    if not isinstance(key, str):
        return None
    return (d.policy, d.spec_rule, d.kind, d.status, d.subject.kind, d.subject.id, key,
            d.details.get("outcome"))


_Timed = list[tuple[Decision, datetime]]


class Window:
    """The late-event machinery: the log of the steps within ``allowed`` of the clock,
    checkpoints of the evaluator state at some of its positions, and what was published.

    A checkpoint is the evaluator's token (:meth:`EvaluatorSession.mark`): on the native
    and durable evaluators a copy-on-write journal of the keys touched since the checkpoint
    before, so taking one and going back to one cost what the steps in between touched,
    never the number of keys in the state (see policykit/engine/_journal.py).

    Revisions and revocations are counted in ``stats`` (the session's). When a step fails
    and so does rolling it back, ``failed`` says how, for the session to refuse further use.
    """

    def __init__(self, allowed: timedelta, every: int, evaluator: EvaluatorSession,
                 stats: SessionStats) -> None:
        self.allowed = allowed
        self.every = every
        self.spacing = every
        self.since = 0
        self.ev = evaluator
        self.stats = stats
        self.failed: str | None = None
        self.ops: list[Step] = []
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

    def held(self, event_id: str, clock: datetime) -> EventBase | None:
        """The applied event ``event_id`` while it is in the window, else None."""
        pos = self.find(event_id, clock)
        return None if pos is None else self.ops[pos].event

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

    def export(self) -> WindowPayload:
        return WindowPayload(
            allowed=self.allowed, every=self.every, spacing=self.spacing, since=self.since,
            ops=[[op.at, op.event, op.results] for op in self.ops],
            # The oldest checkpoint only: restoring replays the steps after it (which gives
            # the others again), so a snapshot holds one copy of the state, not one per
            # checkpoint.
            checkpoints=[[pos, self.ev.state_at(token)] for pos, token in self.checkpoints[:1]],
            pub=[[k, p.id, p.alive, p.content, p.time] for k, p in self.pub.items()],
        )

    @classmethod
    def restore(cls, data: WindowPayload, evaluator: EvaluatorSession,
                stats: SessionStats) -> Window:
        """The window a snapshot saved (``data`` checked by policykit/engine/_payload.py),
        with the evaluator in the state it was in when the snapshot was taken."""
        w = cls(data.allowed, data.every, evaluator, stats)
        w.spacing, w.since = data.spacing, data.since
        w.ops = [Step(at, event, results) for at, event, results in data.ops]
        for _pos, state in data.checkpoints:
            evaluator.import_state(state)  # the evaluator validates its own state
        evaluator.import_state(data.checkpoints[0][1])
        w.checkpoints.append((data.checkpoints[0][0], w.take()))
        w.pub = {k: _Pub(i, alive, d, t) for k, i, alive, d, t in data.pub}
        # The evaluator is at the window's first checkpoint: replaying the steps after it
        # gives the state the snapshot was taken in, and the later checkpoints.
        w.checkpoints, w.since, w.spacing = w._replay(w.ops, 0)
        return w

    # -- steps, replays and what they change ---------------------------------------------

    def _step(self, op: Step) -> list[Decision]:
        if op.event is None:
            return self.ev.fire_due(op.at, inclusive=True)
        out = self.ev.fire_due(op.at, inclusive=False)
        out += self.ev.apply(op.event)
        return out

    def _rolled_back(self, again: BaseException) -> None:
        """Rolling a failed step back failed too: note it (the session then refuses further
        use), and let anything that is not an Exception (KeyboardInterrupt) win."""
        self.failed = f"rolling it back: {type(again).__name__}: {brief(again)}"
        if not isinstance(again, Exception):
            raise again

    def step_and_publish(self, op: Step, cause: str) -> list[Decision]:
        """Append ``op`` at the end of the log (an event in time, or ``advance_to``) and
        publish its decisions. A rule raising leaves the window as it was."""
        if self.since >= self.spacing:
            self.checkpoint(len(self.ops))
        try:
            op.results = self._step(op)
        except BaseException:
            try:
                self._rebuild()
            except BaseException as again:
                self._rolled_back(again)
            raise
        self.ops.append(op)
        self.since += 1
        out: list[Decision] = []
        for d in op.results:
            out += self._publish(d, op.at, cause, ())
        return out

    def _rebuild(self) -> None:
        """After a rule raised mid-step: the window is as it was before the step, so put
        the rule state back to match it (the last checkpoint, and the steps since, which
        succeeded before and give the same state again)."""
        start, token = self.checkpoints[-1]
        self.ev.rewind(token)
        for op in self.ops[start:]:
            self._step(op)

    def _replay(self, ops: list[Step], k: int) -> tuple[list[tuple[int, Any]], int, int]:
        """Go back to checkpoint ``k`` and run ``ops`` from its position on, replacing each
        step's results, with checkpoints taken as in a first run. Returns the checkpoints,
        and the steps since the last one and the spacing (for the window)."""
        start, token = self.checkpoints[k]
        checkpoints = self.checkpoints[:k + 1]
        since, spacing = 0, self.spacing
        self.ev.rewind(token)
        for j in range(start, len(ops)):
            if since >= spacing:
                token = self.take()
                checkpoints.append((j, token))
                since, spacing = 0, self.spacing_for(token)
            op = ops[j]
            ops[j] = Step(op.at, op.event, self._step(op))
            since += 1
        return checkpoints, since, spacing

    def repair(self, ev: EventBase, target_pos: int | None, clock: datetime | None,
               insert: bool = True) -> list[Decision]:
        """Apply ``ev`` where it belongs in the window (replacing the event at
        ``target_pos`` for a correction; with ``insert`` False, only withdrawing that one,
        ``ev`` being the cause): go back to the last checkpoint before the change,
        replay the steps since, and publish the difference (revocations dated ``clock``).
        Nothing of the window changes until the replay succeeded (a rule raising leaves
        the session as it was)."""
        old_ops = self.ops
        i = self.position(ev) if insert else len(old_ops)
        new_ops = [*old_ops[:i], Step(ev.at, ev), *old_ops[i:]] if insert else list(old_ops)
        first = i
        if target_pos is not None:
            del new_ops[target_pos + (1 if insert and target_pos >= i else 0)]
            first = min(i, target_pos)
        k = max(j for j, (pos, _s) in enumerate(self.checkpoints) if pos <= first)
        start = self.checkpoints[k][0]
        old_checkpoints = list(self.checkpoints)
        try:
            checkpoints, since, spacing = self._replay(new_ops, k)
        except BaseException:
            # Back to the window as it was: its steps again from the same checkpoint (the
            # later checkpoints are gone with the failed replay, and are taken again).
            self.checkpoints = old_checkpoints
            redo = [Step(op.at, op.event, op.results) for op in old_ops]
            try:
                self.checkpoints, self.since, self.spacing = self._replay(redo, k)
            except BaseException as again:
                self._rolled_back(again)
            raise
        old = [(d, op.at) for op in old_ops[start:] for d in op.results]
        new = [(d, op.at) for op in new_ops[start:] for d in op.results]
        self.ops, self.checkpoints, self.since, self.spacing = new_ops, checkpoints, since, spacing
        return self._diff(old, new, ev, target_pos is not None, clock)

    # -- publishing the difference ---------------------------------------------------------

    def _pairs(self, gone: list[str], new_map: dict[str, tuple[Decision, datetime]],
               old_map: dict[str, Decision]) -> dict[str, str]:
        """A decision that disappears and a brand-new one of the same rule, subject and
        case key (e.g. a late day moved by a corrected clock-in) are one decision replaced:
        new id -> the gone id it supersedes instead of a separate revocation."""
        pub = self.pub
        gone_by: dict[tuple[Any, ...], list[str]] = {}
        fresh_by: dict[tuple[Any, ...], list[str]] = {}
        for x in gone:
            if (ident := _identity(pub[x].content)) is not None:
                gone_by.setdefault(ident, []).append(x)
        for x, (d, _t) in new_map.items():
            if x not in old_map and x not in pub and (ident := _identity(d)) is not None:
                fresh_by.setdefault(ident, []).append(x)
        return {xs[0]: gone_by[ident][0] for ident, xs in fresh_by.items()
                if len(xs) == 1 and len(gone_by.get(ident, ())) == 1}

    def _diff(self, old: _Timed, new: _Timed, cause: EventBase, correction: bool,
              clock: datetime | None) -> list[Decision]:
        pub = self.pub
        old_map = {d.id: d for d, _t in old}
        new_map: dict[str, tuple[Decision, datetime]] = {}
        for d, t in new:
            new_map.setdefault(d.id, (d, t))
        gone = [x for x in old_map if x not in new_map and x in pub and pub[x].alive]
        pairs = self._pairs(gone, new_map, old_map)
        why = key_part(cause.id)
        out: list[Decision] = []
        for x, (d, t) in new_map.items():
            if x in old_map:
                if not _same(old_map[x], d):
                    out.append(self._revise(d, t, why))
                elif x in pub:
                    pub[x].time = t
                continue
            replaced = pairs.get(x)
            if replaced is not None:
                old_id = pub[replaced].id
                pub[replaced].alive = False
                self.stats.revisions += 1
                out += self._publish(d, t, why, (old_id,), {"replaces": old_id,
                                                            "replaced_by": cause.id})
            else:
                out += self._publish(d, t, why, ())
        reason = (f"event {cause.id!r} corrects {corrected_id(cause)!r}" if correction else
                  f"event {cause.id!r} ({cause.type} at {cause.at.isoformat()}) arrived late")
        paired = set(pairs.values())
        for x in gone:
            if x not in paired:
                out.append(self._revoke(x, why, reason, clock))
        return out

    def _translate(self, ids: tuple[str, ...]) -> tuple[str, ...]:
        pub = self.pub
        return tuple(pub[s].id if s in pub else s for s in ids)

    def _publish(self, d: Decision, t: datetime, cause: str, extra: tuple[str, ...],
                 note: dict[str, str] | None = None) -> list[Decision]:
        pub = self.pub
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
        p = self.pub[d.id]
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

    def _revoke(self, base: str, cause: str, reason: str, clock: datetime | None) -> Decision:
        p = self.pub[base]
        c = p.content
        vid = _derived_id(base, "revoked", cause)
        at = c.at if clock is None or clock <= c.at else clock.astimezone(c.at.tzinfo)
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
