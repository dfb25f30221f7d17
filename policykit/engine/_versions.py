"""Policies with versions in force by date (docs/versions.md), as the evaluators run them.

A policy with versions runs as one policy: each of its rules is one :class:`_VersionedRuntime`
holding the runtime of that rule in every version that has it. All of them share one state
(the rule's items, counts, open cases and timers carry across a change), and each event,
decision and timer goes to the runtime of the version in force at its instant, which decides
with that version's figures and records that version's fingerprint. The other versions'
runtimes see nothing then, so no decision is made twice and none has to be thrown away.

A tariff prices each item by the version in force at the item's instant while counting the
whole period (see ``spec_at`` in rules/tariff.py): a month straddling a change counts all its
late days for the tiers, and charges each at its own version's rates."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..models.decisions import Decision
from ..models.events import EventBase
from ..policy import Policy, dated
from ..rules import PolicyInfo, RuleContext, RuleRuntime, RuleSpec

__all__ = ["engine_specs", "windows"]


def windows(policy: Policy) -> list[tuple[datetime | None, datetime | None, Policy]]:
    """Each version with the instants it is in force from (included; None: the beginning)
    and until (excluded; None: for ever): its own ``effective_until``, or else the next
    version's start."""
    versions = policy.versions
    out: list[tuple[datetime | None, datetime | None, Policy]] = []
    for i, v in enumerate(versions):
        until = v.in_force_until()
        if until is None and i + 1 < len(versions):
            until = versions[i + 1].in_force_from()
        out.append((v.in_force_from(), until, v))
    return out


@dataclass(frozen=True)
class _Member:
    start: datetime | None
    until: datetime | None
    info: PolicyInfo
    spec: RuleSpec | None  # None: this version has no such rule


class _VersionedRule:
    """What a session needs of a rule (its id, what it reads, its runtime) for a rule of a
    policy with versions: the union over the versions that have it."""

    def __init__(self, rule_id: str, members: Sequence[_Member]) -> None:
        self.id = rule_id
        self.members = tuple(members)
        self.spec = next(m.spec for m in reversed(self.members) if m.spec is not None)
        self.shape = self.spec.shape

    def event_types(self) -> frozenset[str]:
        return frozenset().union(*(m.spec.event_types() for m in self.members if m.spec))

    def consumes(self) -> frozenset[str]:
        return frozenset().union(*(m.spec.consumes() for m in self.members if m.spec))

    def reads_money(self) -> bool:
        return any(m.spec.reads_money() for m in self.members if m.spec)

    def state_types(self) -> frozenset[str]:
        return frozenset().union(*(m.spec.state_types() for m in self.members if m.spec))

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _VersionedRuntime(self, policy)


def engine_specs(policy: Policy) -> Sequence[Any]:
    """The rules a session runs for ``policy``: its specs, or for a policy with versions one
    :class:`_VersionedRule` per rule id of any version."""
    if not dated(policy):
        return policy.specs
    spans = windows(policy)
    out: list[_VersionedRule] = []
    for spec in policy.specs:
        members = []
        for start, until, v in spans:
            own = next((s for s in v.specs if s.id == spec.id), None)
            members.append(_Member(start, until, v.info, own))
        out.append(_VersionedRule(spec.id, members))
    return out


def _in(member: _Member, t: datetime) -> bool:
    return (member.start is None or member.start <= t) and (
        member.until is None or t < member.until)


class _VersionedRuntime(RuleRuntime):
    """One rule of a policy with versions: the version in force at each instant decides, on
    the state all versions share (see the module docstring)."""

    def __init__(self, rule: _VersionedRule, policy: PolicyInfo) -> None:
        # No super().__init__: ``state`` is the shared state of the inner runtimes.
        self.spec = rule.spec
        self.policy = policy
        self._members = rule.members
        self._inner: list[RuleRuntime | None] = [
            m.spec.runtime(m.info) if m.spec is not None else None for m in rule.members]
        first = next(r for r in self._inner if r is not None)
        self._first = first
        self.state = first.state
        for r in self._inner:
            if r is not None and hasattr(r, "spec_at"):
                r.spec_at = self._spec_at
        self._contexts: list[RuleContext | None] = [None] * len(self._members)
        self.nested_state = getattr(first, "nested_state", ())
        self.whole_state = getattr(first, "whole_state", ())

    @property
    def state(self) -> dict[str, Any]:
        return self._first.state

    @state.setter
    def state(self, value: dict[str, Any]) -> None:
        for r in self._inner:
            if r is not None:
                r.state = value

    def _spec_at(self, t: datetime) -> RuleSpec | None:
        for m in self._members:
            if _in(m, t):
                return m.spec
        return None

    def _at(self, ctx: RuleContext) -> tuple[RuleRuntime, RuleContext] | None:
        """The runtime of the version in force at ``ctx.now``, and its context."""
        now = ctx.now
        for i, m in enumerate(self._members):
            if _in(m, now):
                runtime = self._inner[i]
                if runtime is None:
                    return None  # the version in force has no such rule
                vctx = self._contexts[i]
                if vctx is None:
                    vctx = self._contexts[i] = ctx.for_policy(m.info)
                vctx.now = now
                return runtime, vctx
        return None  # between versions: none in force

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        found = self._at(ctx)
        if found is not None:
            found[0].on_event(event, found[1])

    def on_decision(self, decision: Decision, ctx: RuleContext) -> None:
        found = self._at(ctx)
        if found is not None:
            found[0].on_decision(decision, found[1])

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        found = self._at(ctx)
        if found is not None:
            found[0].on_timer(key, due, found[1])
