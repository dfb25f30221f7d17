"""The native evaluator: plain Python, keyed rule state and an event-time deadline heap.
It is the reference semantics the other backends are held to."""

from __future__ import annotations

import heapq
from collections import defaultdict, deque
from datetime import datetime
from typing import Any

from ..models.decisions import Decision
from ..models.events import EmployeeProfile, EventBase
from ..policy import PolicySet
from ..rules._base import RuleContext, RuleRuntime
from ._backend import Backend, EvaluatorSession

# A timer: (due, policy index, rule index, key). Ties break on indexes and key, never on
# arrival order, so the same events fire the same timers in the same order however chunked.
Timer = tuple[datetime, int, int, str]


class _NativeSession(EvaluatorSession):
    def __init__(self, policies: PolicySet) -> None:
        self._directory: dict[str, EmployeeProfile] = {}
        self._out: list[Decision] = []
        self._heap: list[Timer] = []
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
                heapq.heappush(self._heap, timer)
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
        out, self._out = self._out, []
        return out

    def apply(self, event: EventBase) -> list[Decision]:
        if isinstance(event, EmployeeProfile):
            self._directory[event.employee_id] = event
        for pi, ri in self._routes.get(event.type, ()):
            ctx = self._contexts[pi][ri]
            ctx.now = event.at
            self._runtimes[pi][ri].on_event(event, ctx)
            self._drain_queue(event.at)
        return self._take()

    def fire_due(self, until: datetime, *, inclusive: bool) -> list[Decision]:
        heap = self._heap
        while heap and (heap[0][0] <= until if inclusive else heap[0][0] < until):
            timer = heapq.heappop(heap)
            self._pending.discard(timer)
            due, pi, ri, key = timer
            ctx = self._contexts[pi][ri]
            ctx.now = due
            self._runtimes[pi][ri].on_timer(key, due, ctx)
            self._drain_queue(due)
        return self._take()

    def export_state(self) -> Any:
        return {
            "directory": dict(self._directory),
            "heap": list(self._heap),
            "rules": [[rt.state for rt in runtimes] for runtimes in self._runtimes],
        }

    def import_state(self, state: Any) -> None:
        self._directory.clear()
        self._directory.update(state["directory"])
        self._heap = [(t[0], t[1], t[2], t[3]) for t in state["heap"]]
        heapq.heapify(self._heap)
        self._pending = set(self._heap)
        for runtimes, states in zip(self._runtimes, state["rules"], strict=True):
            for rt, st in zip(runtimes, states, strict=True):
                rt.state = st


class NativeBackend(Backend):
    name = "native"

    def open(self, policies: PolicySet) -> EvaluatorSession:
        return _NativeSession(policies)
