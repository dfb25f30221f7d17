"""The native evaluator: plain Python, keyed rule state and an event-time deadline heap.
It is the reference semantics the other backends are held to."""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from datetime import datetime
from typing import Any

from .._timezones import shared_offset
from ..errors import SnapshotError
from ..models.decisions import Decision
from ..models.events import EmployeeProfile, EventBase
from ..policy import PolicySet
from ..rules._base import RuleContext, RuleRuntime
from ._backend import Backend, EvaluatorSession

# A timer: (due, policy index, rule index, key). Ties break on indexes and key, never on
# arrival order, so the same events fire the same timers in the same order however chunked.
Timer = tuple[datetime, int, int, str]
# On the heap a timer leads with its due instant in a shared offset (cheap to compare with
# event times and other timers: see policykit._timezones); the rule gets ``due`` as given.
_Entry = tuple[datetime, int, int, str, datetime]


class _NativeSession(EvaluatorSession):
    def __init__(self, policies: PolicySet) -> None:
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
        for pi, policy in enumerate(policies):
            runtimes: list[RuleRuntime] = []
            contexts: list[RuleContext] = []
            for ri, spec in enumerate(policy.specs):
                runtimes.append(spec.runtime(policy.info))
                contexts.append(RuleContext(policy.info, self._directory,
                                            self._emitter(pi), self._scheduler(pi, ri)))
                for t in sorted(spec.event_types()):
                    self._routes[t].append((pi, ri))
                for dep in sorted(spec.consumes()):
                    self._consumers[(pi, dep)].append(ri)
            self._runtimes.append(runtimes)
            self._contexts.append(contexts)
        # The routes resolved to (runtime, context) pairs: the per-event loop then does no
        # index lookups (runtimes and contexts live as long as the session).
        self._targets: dict[str, list[tuple[RuleRuntime, RuleContext]]] = {
            t: [(self._runtimes[pi][ri], self._contexts[pi][ri]) for pi, ri in pairs]
            for t, pairs in self._routes.items()}
        # What a fresh rule's state looks like: import_state checks a snapshot against it.
        self._shapes = [[{k: type(v) for k, v in rt.state.items() if v is not None}
                         for rt in runtimes]
                        for runtimes in self._runtimes]

    def _emitter(self, pi: int) -> Any:
        def emit(decision: Decision) -> None:
            self._out.append(decision)
            if (pi, decision.rule) in self._consumers:
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
            for ri in self._consumers[(pi, decision.rule)]:
                ctx = self._contexts[pi][ri]
                ctx.now = now
                self._runtimes[pi][ri].on_decision(decision, ctx)

    def _take(self) -> list[Decision]:
        out = self._out
        if not out:
            return []  # a fresh list: callers extend what they get
        self._out = []
        return out

    def apply(self, event: EventBase) -> list[Decision]:
        if isinstance(event, EmployeeProfile):
            self._directory[event.employee_id] = event
        targets = self._targets.get(event.type)
        if targets:
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
        return {
            "directory": dict(self._directory),
            "heap": [(due, pi, ri, key) for _at, pi, ri, key, due in self._heap],
            "rules": [[rt.state for rt in runtimes] for runtimes in self._runtimes],
        }

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

    def _checked(
        self, state: Any
    ) -> tuple[dict[str, EmployeeProfile], list[Timer], list[list[dict[str, Any]]]]:
        def bad(what: str) -> SnapshotError:
            return SnapshotError(f"evaluator state does not fit this policy set: {what}")

        if not isinstance(state, dict) or set(state) != {"directory", "heap", "rules"}:
            raise bad("expected the keys directory, heap and rules")
        directory = state["directory"]
        if not isinstance(directory, dict) or not all(
                isinstance(p, EmployeeProfile) and p.employee_id == k
                for k, p in directory.items()):
            raise bad("the directory must map employee ids to their employee.profile events")
        heap: list[Timer] = []
        if not isinstance(state["heap"], list):
            raise bad("the timer heap must be a list")
        for t in state["heap"]:
            if not (isinstance(t, tuple | list) and len(t) == 4 and isinstance(t[0], datetime)
                    and t[0].tzinfo is not None and type(t[1]) is int and type(t[2]) is int
                    and isinstance(t[3], str) and 0 <= t[1] < len(self._runtimes)
                    and 0 <= t[2] < len(self._runtimes[t[1]])):
                raise bad(f"timer {t!r:.80} is not (aware due, policy, rule, key)")
            heap.append((t[0], t[1], t[2], t[3]))
        rules = state["rules"]
        if not isinstance(rules, list) or [len(r) if isinstance(r, list) else -1
                                            for r in rules] != [len(r) for r in self._shapes]:
            raise bad("the number of policies or rules differs")
        for pi, states in enumerate(rules):
            for ri, st in enumerate(states):
                shape = self._shapes[pi][ri]
                if not isinstance(st, dict) or any(
                        not isinstance(st.get(k), typ) for k, typ in shape.items()):
                    spec = self._runtimes[pi][ri].spec
                    raise bad(f"policy #{pi} rule {spec.id}: state lacks or mistypes "
                              f"{sorted(shape)}")
        return directory, heap, rules


class NativeBackend(Backend):
    name = "native"

    def open(self, policies: PolicySet) -> EvaluatorSession:
        return _NativeSession(policies)
