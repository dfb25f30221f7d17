"""The native evaluator: plain Python, keyed rule state and an event-time deadline heap.
It is the reference semantics the other backends are held to."""

from __future__ import annotations

import heapq
import pickle
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from mypy_extensions import mypyc_attr

from .._timezones import shared_offset
from ..errors import SnapshotError
from ..models.decisions import Decision
from ..models.events import EVENT_TYPES, EmployeeProfile, EventBase
from ..policy import PolicySet
from ..rules import RuleContext, RuleRuntime
from ..rules.internal import check_subjects, subject_paths
from ._backend import Backend, EvaluatorSession
from ._journal import Journal, Tracked, first_notes, plain
from ._versions import engine_specs

# A timer: (due, policy index, rule index, key). Ties break on indexes and key, never on
# arrival order, so the same events fire the same timers in the same order however chunked.
Timer = tuple[datetime, int, int, str]
# On the heap a timer leads with its due instant in a shared offset (cheap to compare with
# event times and other timers: see policykit._timezones); the rule gets ``due`` as given.
_Entry = tuple[datetime, int, int, str, datetime]


# A rule an event type reaches, and the routing hook (see _NativeSession._route).
_Target = tuple[RuleRuntime, RuleContext]
_Route = Callable[[EventBase, list[_Target]], Sequence[_Target]]


# Keyed maps rule states gained after snapshots were first written (deadline ``expiry``,
# issue 14): a snapshot without one restores with it empty.
_ADDED = ("expiry",)


class _Mark:
    """A checkpoint: what is copied whole (the directory, the timers, each rule's state
    outside its keyed maps: all small or shallow) and the journal of the keyed maps since."""

    __slots__ = ("directory", "heap", "log", "rest")

    def __init__(self, rest: bytes, heap: list[_Entry],
                 directory: dict[str, EmployeeProfile]) -> None:
        self.rest = rest
        self.heap = heap
        self.directory = directory
        self.log: dict[tuple[Any, ...], Any] = {}


@mypyc_attr(allow_interpreted_subclasses=True)  # _durable.py's session (policykit/_compiled.py)
class _NativeSession(EvaluatorSession):
    def __init__(self, policies: PolicySet) -> None:
        self._journal: Journal | None = None
        self._marks: list[_Mark] = []
        self._directory: dict[str, EmployeeProfile] = {}
        self._out: list[Decision] = []
        self._heap: list[_Entry] = []
        self._pending: set[Timer] = set()
        self._runtimes: list[list[RuleRuntime]] = []
        self._contexts: list[list[RuleContext]] = []
        self._routes: dict[str, list[tuple[int, int]]] = defaultdict(list)
        # (policy index, rule id) -> indexes of rules consuming that rule's decisions
        self._consumers: dict[tuple[int, str], list[int]] = defaultdict(list)
        self._queue: deque[tuple[int, Decision]] = deque()
        # rules reading every policy's money (a cap on a month's deductions and fines)
        self._money_readers: list[tuple[int, int]] = []
        for pi, policy in enumerate(policies):
            runtimes: list[RuleRuntime] = []
            contexts: list[RuleContext] = []
            for ri, spec in enumerate(engine_specs(policy)):
                runtimes.append(spec.runtime(policy.info))
                contexts.append(RuleContext(policy.info, self._directory,
                                            self._emitter(pi), self._scheduler(pi, ri)))
                for t in sorted(spec.event_types()):
                    self._routes[t].append((pi, ri))
                for dep in sorted(spec.consumes()):
                    self._consumers[(pi, dep)].append(ri)
                if spec.reads_money():
                    self._money_readers.append((pi, ri))
            self._runtimes.append(runtimes)
            self._contexts.append(contexts)
        # The routes resolved to (runtime, context) pairs: the per-event loop then does no
        # index lookups (runtimes and contexts live as long as the session).
        self._targets: dict[str, list[_Target]] = {
            t: [(self._runtimes[pi][ri], self._contexts[pi][ri]) for pi, ri in pairs]
            for t, pairs in self._routes.items()}
        self._route: _Route | None = None
        """The routing hook: given an event and the rules reading its type (in
        ``_routes`` order), the ones it reaches. None natively (all of them); the durable
        session fills it with the rules Rete matches, so the rest of apply is shared."""
        self._subject_paths = subject_paths(s for p in policies for v in p.versions
                                            for s in v.specs)
        # apply() reads profiles whatever the rules read (the employee directory).
        self.reads = frozenset({*self._targets, *self._subject_paths,
                                *(t for t, m in EVENT_TYPES.items()
                                  if issubclass(m, EmployeeProfile))})
        # What a fresh rule's state looks like: import_state checks a snapshot against it.
        self._shapes = [[{k: type(v) for k, v in rt.state.items() if v is not None}
                         for rt in runtimes]
                        for runtimes in self._runtimes]

    def _emitter(self, pi: int) -> Any:
        def emit(decision: Decision) -> None:
            self._out.append(decision)
            if (pi, decision.spec_rule) in self._consumers or (
                    self._money_readers and decision.amount is not None):
                self._queue.append((pi, decision))
        return emit

    def _scheduler(self, pi: int, ri: int) -> Any:
        def schedule(due: datetime, key: str) -> None:
            timer = (due, pi, ri, key)
            if timer not in self._pending:
                self._pending.add(timer)
                heapq.heappush(self._heap, (shared_offset(due), pi, ri, key, due))
        return schedule

    def _drain_queue(self, now: datetime) -> None:
        # Rules reading other rules' decisions (a ladder over violations, a tariff over late
        # days) see them in emission order, within the same step.
        while self._queue:
            pi, decision = self._queue.popleft()
            for ri in self._consumers.get((pi, decision.spec_rule), ()):
                ctx = self._contexts[pi][ri]
                ctx.now = now
                self._runtimes[pi][ri].on_decision(decision, ctx)
            if decision.amount is not None:
                for pj, rj in self._money_readers:
                    runtime = self._runtimes[pj][rj]
                    if pj == pi and runtime.spec.id == decision.rule:
                        continue  # not its own decisions
                    ctx = self._contexts[pj][rj]
                    ctx.now = now
                    runtime.on_decision(decision, ctx)

    def _take(self) -> list[Decision]:
        out = self._out
        if not out:
            return []  # a fresh list: callers extend what they get
        self._out = []
        return out

    def check(self, event: EventBase) -> None:
        if self._subject_paths:
            check_subjects(event, self._subject_paths)

    def apply(self, event: EventBase) -> list[Decision]:
        if isinstance(event, EmployeeProfile):
            self._directory[event.employee_id] = event
        found = self._targets.get(event.type)
        if found:
            route = self._route
            targets = found if route is None else route(event, found)
            at = event.at
            queue = self._queue
            for runtime, ctx in targets:
                ctx.now = at
                runtime.on_event(event, ctx)
                if queue:  # only rules with consumers queue their decisions
                    self._drain_queue(at)
        return self._take()

    def fire_due(self, until: datetime, *, inclusive: bool) -> list[Decision]:
        heap = self._heap
        if not heap or (heap[0][0] > until if inclusive else heap[0][0] >= until):
            return self._take()  # the common case: nothing due before this event
        while heap and (heap[0][0] <= until if inclusive else heap[0][0] < until):
            _at, pi, ri, key, due = heapq.heappop(heap)
            self._pending.discard((due, pi, ri, key))
            ctx = self._contexts[pi][ri]
            ctx.now = due
            self._runtimes[pi][ri].on_timer(key, due, ctx)
            if self._queue:
                self._drain_queue(due)
        return self._take()

    def export_state(self) -> Any:
        rules: list[list[dict[str, Any]]]
        if self._journal is None:
            rules = [[rt.state for rt in runtimes] for runtimes in self._runtimes]
        else:
            rules = [[{k: plain(v) for k, v in rt.state.items()} for rt in runtimes]
                     for runtimes in self._runtimes]
        return {
            "directory": dict(self._directory),
            "heap": [(due, pi, ri, key) for _at, pi, ri, key, due in self._heap],
            "rules": rules,
        }

    # -- copy-on-write checkpoints (see _journal) ------------------------------------------

    journals = True

    def journal(self) -> None:
        self._journal = Journal()
        self._marks = []
        self._track()

    def _track(self) -> None:
        j = self._journal
        assert j is not None
        j.log = None
        for runtimes in self._runtimes:
            for rt in runtimes:
                nested = getattr(rt, "nested_state", ())
                whole = getattr(rt, "whole_state", ())
                rt.state = {k: Tracked(v, j, nested=k in nested)
                            if isinstance(v, dict) and k not in whole else v
                            for k, v in rt.state.items()}

    def mark(self) -> Any:
        j = self._journal
        if j is None:
            return super().mark()
        rest = pickle.dumps([[{k: v for k, v in rt.state.items() if type(v) is not Tracked}
                              for rt in runtimes] for runtimes in self._runtimes],
                            pickle.HIGHEST_PROTOCOL)
        m = _Mark(rest, list(self._heap), dict(self._directory))
        self._marks.append(m)
        j.log = m.log
        return m

    def _index(self, m: _Mark) -> int:
        for i, x in enumerate(self._marks):
            if x is m:
                return i
        raise ValueError("not a live checkpoint of this evaluator")

    def rewind(self, token: Any) -> None:
        j = self._journal
        if j is None:
            super().rewind(token)
            return
        i = self._index(token)
        j.log = None  # what follows restores: nothing to note
        top, nested = first_notes([x.log for x in self._marks[i:]])
        loads = pickle.loads
        for c, _name, k, old, _seq in top:
            if old is None:
                dict.pop(c, k, None)
            else:
                dict.__setitem__(c, k, c._wrap(k, loads(old)))
        for p, name, k, old, _seq in nested:
            inner = dict.get(p, name)
            if inner is None:
                continue
            if old is None:
                dict.pop(inner, k, None)
            else:
                dict.__setitem__(inner, k, loads(old))
        for runtimes, states in zip(self._runtimes, loads(token.rest), strict=True):
            for rt, st in zip(runtimes, states, strict=True):
                rt.state.update(st)
        self._heap = list(token.heap)
        self._pending = {(due, pi, ri, key) for _at, pi, ri, key, due in self._heap}
        self._directory.clear()
        self._directory.update(token.directory)
        del self._marks[i + 1:]
        token.log = {}
        j.log = token.log

    def release(self, token: Any) -> None:
        if self._journal is not None:
            del self._marks[:self._index(token)]

    def state_at(self, token: Any) -> Any:
        if self._journal is None:
            return super().state_at(token)
        i = self._index(token)
        top, nested = first_notes([x.log for x in self._marks[i:]])
        copies: dict[int, dict[Any, Any]] = {}
        rules: list[list[dict[str, Any]]] = []
        for runtimes, rest in zip(self._runtimes, pickle.loads(token.rest), strict=True):
            states = []
            for rt, st in zip(runtimes, rest, strict=True):
                out = dict(st)
                for k, v in rt.state.items():
                    if type(v) is Tracked:
                        out[k] = copies[id(v)] = plain(v)
                states.append(out)
            rules.append(states)
        loads = pickle.loads
        for c, _name, k, old, _seq in top:
            target = copies.get(id(c))
            if target is None:
                continue
            if old is None:
                target.pop(k, None)
            else:
                target[k] = loads(old)
        for p, name, k, old, _seq in nested:
            outer = copies.get(id(p))
            inner = outer.get(name) if outer is not None else None
            if inner is None:
                continue
            if old is None:
                inner.pop(k, None)
            else:
                inner[k] = loads(old)
        return {
            "directory": dict(token.directory),
            "heap": [(due, pi, ri, key) for _at, pi, ri, key, due in token.heap],
            "rules": rules,
        }

    def discard(self) -> None:
        """Drop the rules' runtimes and all this session holds, once it is closed and done
        with (the batch pipeline's session, used for one run). The rule contexts' emit and
        schedule closures lead back to the session, and runtimes keep bound methods of
        themselves: without this, the rules' whole state waits as cyclic garbage for a
        collection instead of being freed by reference counting now."""
        for runtimes in self._runtimes:
            for rt in runtimes:
                vars(rt).clear()
        vars(self).clear()

    def import_state(self, state: Any) -> None:
        """Replace all state; :class:`SnapshotError` (and nothing changed) when ``state`` is
        not the shape :meth:`export_state` gives for this policy set."""
        directory, heap, rules = self._checked(state)
        self._directory.clear()
        self._directory.update(directory)
        self._heap = [(shared_offset(due), pi, ri, key, due) for due, pi, ri, key in heap]
        heapq.heapify(self._heap)
        self._pending = set(heap)
        for runtimes, states in zip(self._runtimes, rules, strict=True):
            for rt, st in zip(runtimes, states, strict=True):
                rt.state = st
        if self._journal is not None:
            self._marks = []  # a new state: earlier checkpoints no longer lead to it
            self._track()

    def _checked(
        self, state: Any
    ) -> tuple[dict[str, EmployeeProfile], list[Timer], list[list[dict[str, Any]]]]:
        if not isinstance(state, dict) or set(state) != {"directory", "heap", "rules"}:
            raise _misfit("expected the keys directory, heap and rules")
        return (_checked_directory(state["directory"]), self._checked_heap(state["heap"]),
                self._checked_rules(state["rules"]))

    def _checked_heap(self, heap: Any) -> list[Timer]:
        """The snapshot's timers, each naming a rule of this policy set."""
        if not isinstance(heap, list):
            raise _misfit("the timer heap must be a list")
        runtimes = self._runtimes
        out: list[Timer] = []
        for t in heap:
            if not (isinstance(t, tuple | list) and len(t) == 4 and isinstance(t[0], datetime)
                    and t[0].tzinfo is not None and type(t[1]) is int and type(t[2]) is int
                    and isinstance(t[3], str) and 0 <= t[1] < len(runtimes)
                    and 0 <= t[2] < len(runtimes[t[1]])):
                raise _misfit(f"timer {t!r:.80} is not (aware due, policy, rule, key)")
            out.append((t[0], t[1], t[2], t[3]))
        return out

    def _checked_rules(self, rules: Any) -> list[list[dict[str, Any]]]:
        """A copy of the snapshot's rule states (never the caller's lists), each the shape
        of a fresh state of its rule; a keyed map added since the snapshot starts empty."""
        if not isinstance(rules, list) or [len(r) if isinstance(r, list) else -1
                                            for r in rules] != [len(r) for r in self._shapes]:
            raise _misfit("the number of policies or rules differs")
        return [[self._checked_state(pi, ri, st) for ri, st in enumerate(states)]
                for pi, states in enumerate(rules)]

    def _checked_state(self, pi: int, ri: int, st: Any) -> dict[str, Any]:
        """One rule's state, checked against the shape of a fresh one."""
        shape = self._shapes[pi][ri]
        if isinstance(st, dict) and any(k not in st for k in _ADDED):
            # A snapshot from before a rule gained a keyed map: it starts empty.
            st = {**{k: {} for k in _ADDED if shape.get(k) is dict}, **st}
        if not isinstance(st, dict) or any(
                not isinstance(st.get(k), typ) for k, typ in shape.items()):
            spec = self._runtimes[pi][ri].spec
            raise _misfit(f"policy #{pi} rule {spec.id}: state lacks or mistypes "
                          f"{sorted(shape)}")
        return st


def _misfit(what: str) -> SnapshotError:
    return SnapshotError(f"evaluator state does not fit this policy set: {what}")


def _checked_directory(directory: Any) -> dict[str, EmployeeProfile]:
    """The snapshot's employee directory: employee id -> their employee.profile event."""
    if not isinstance(directory, dict) or not all(
            isinstance(p, EmployeeProfile) and p.employee_id == k
            for k, p in directory.items()):
        raise _misfit("the directory must map employee ids to their employee.profile events")
    return directory


class NativeBackend(Backend):
    name = "native"

    def open(self, policies: PolicySet) -> EvaluatorSession:
        return _NativeSession(policies)
