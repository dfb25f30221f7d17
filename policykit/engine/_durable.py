"""The durable-rules evaluator: the Rete engine decides which rules an event reaches.

How a policy set becomes a durable_rules ruleset (see docs/architecture.md, "durable-rules"):

* Every rule's event matchers (the :class:`~policykit.rules._base.Match` objects in its spec:
  deadline triggers and steps, recurrence occurrences and exemptions, precondition actions,
  priors and revocations, tariff items, gap beats, rate numerators...) are collected from the
  spec's fields. Each (matcher, event type) becomes one Rete rule: the event type as the
  message kind, and one test per ``where`` condition.
* A plain equality condition (``severity: major``, ``registered: true``) stays an equality
  test inside Rete on the event's normalised value. Every other condition (``gt``, ``in``,
  ``contains``, ``exists``...) is decided in Python before the event reaches the engine and
  travels as a 0/1 attribute the rule tests for equality with 1 — so only equality reaches
  durable_rules, never a comparison, never text against numbers.
* Event types a rule reads as *state* rather than through a filter (a population's start
  and leave events: an employee profile that stops matching ``where`` ends a membership)
  get a rule testing the type alone, so the rule always sees them (each shape names them:
  ``RuleSpec.state_types``).
* Each event is asserted as a fact and retracted at once: every rule it completes fires
  once (a posted event would be consumed by the first rule only). The actions record which
  (policy, rule) pairs matched, and only those rules' runtimes get ``on_event``, in the
  same (policy, rule) order as the native evaluator. Rules then do their stateful work in
  Python — the same runtimes and the same ``RuleContext.emit`` — so decisions and their ids
  are the native ones by construction, and the Rete network holds no state between events
  (snapshots are the runtimes' plain state, exactly as on native).
* Batched: ``Session.feed_many`` hands the evaluator each chunk of events before applying
  them (:meth:`_DurableSession.prepare`), and the chunk is matched in a few engine calls
  (assert the facts of up to :attr:`_DurableSession.batch_size` events, drain, retract them
  all) instead of two calls per event. Matching an event is a pure function of its
  message, so hits taken early are the hits the event would get when applied, and events
  with equal messages share one fact (a log has few distinct messages: 84 in the 100k
  benchmark log, ~50 per chunk of 1,024). Each fact carries a ``seq`` number, unique in
  the session, so it never equals another fact and its firings map back to it. An event
  that was not prepared (a single ``feed``, a replay of the lateness window) goes the
  one-event way.
* Deadlines run in event time on the native evaluator's heap of (due, policy, rule, key);
  no durable_rules timer is ever started.

The skipped ``on_event`` calls are sound because a rule's runtime does nothing with an event
that passes none of its filter matchers; tests/properties/test_differential.py checks it by
comparing decisions *and* the full rule state of both backends on generated streams.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..models.events import EventBase
from ..policy import PolicySet
from ..rules import Match as EventMatch
from ..rules import RuleContext, RuleRuntime
from ..rules.internal import compile_condition as _compile_condition
from ..rules.internal import field_getter
from ._backend import Backend, EvaluatorSession
from ._durable_adapter import (
    DurableAdapterError,
    DurableRuleset,
    DurableUnavailable,
    FieldEq,
    Match,
    Rule,
    RulesetSpec,
    durable_available,
)
from ._native import _NativeSession
from ._versions import engine_specs

__all__ = ["CompiledPack", "DurableBackend", "compile_pack"]

_INT64 = (-(2**63), 2**63 - 1)  # the engine's integers; larger ones equal no tested value
_STR_SENTINEL = "\x00"  # what a non-text value sends where a rule tests text equality
_SEQ = "seq"  # the batch message field naming its event (compiled fields are kind, vN, cN)
_Key = tuple[tuple[str, object], ...]  # a message's content, as a dict key


@dataclass(frozen=True)
class _Attribute:
    """One field of the posted message and how to compute it from an event."""

    name: str
    compute: Callable[[EventBase], str | int | None]


@dataclass(frozen=True)
class CompiledPack:
    """A policy set compiled for the Rete engine.

    ``spec`` is the durable ruleset; ``targets`` maps each durable rule name to the
    (policy index, rule index) pairs it routes to (rules with the same event type and the
    same tests share one Rete rule, so an event fires once per distinct matcher);
    ``attributes`` lists, per event type, the fields its message carries; ``gated`` lists
    the (policy, rule, event type) reached only through filter matchers (the rest go
    through type-only rules)."""

    spec: RulesetSpec | None
    targets: dict[str, tuple[tuple[int, int], ...]]
    attributes: dict[str, tuple[_Attribute, ...]]
    gated: frozenset[tuple[int, int, str]]


def _walk(value: object, filters: list[EventMatch]) -> None:
    """Collect the event matchers among a spec's fields."""
    if isinstance(value, EventMatch):
        filters.append(value)
    if isinstance(value, BaseModel):
        for name in type(value).model_fields:
            _walk(getattr(value, name), filters)
    elif isinstance(value, tuple | list):
        for item in value:
            _walk(item, filters)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, filters)


def _is_equality(cond: object) -> tuple[bool, object]:
    """(True, value) when ``cond`` is a scalar equality Rete can test; else (False, None)."""
    if isinstance(cond, dict) and len(cond) == 1 and "eq" in cond:
        cond = cond["eq"]
    if isinstance(cond, str | int) and not isinstance(cond, dict):  # bool is an int
        return True, cond
    return False, None


def _text_value(get: Callable[[Any], Any]) -> Callable[[EventBase], str | None]:
    def compute(ev: EventBase) -> str | None:
        v = get(ev)
        if v is None:
            return None
        if isinstance(v, str):
            return str.__str__(v)
        return _STR_SENTINEL  # Python: a non-str never equals a str

    return compute


def _int_value(get: Callable[[Any], Any], sentinel: int) -> Callable[[EventBase], int | None]:
    def compute(ev: EventBase) -> int | None:
        v = get(ev)
        if v is None:
            return None
        if isinstance(v, int):  # bool too: True == 1 in Python, and normalises to 1
            return int(v) if _INT64[0] <= v <= _INT64[1] else sentinel
        try:
            # Decimal(2) == 2 and 2.0 == 2 in Python: an integral number equals its int.
            if v == int(v) and _INT64[0] <= int(v) <= _INT64[1]:
                return int(v)
        except (TypeError, ValueError, OverflowError, ArithmeticError):
            pass
        return sentinel  # equals none of the values any rule tests

    return compute


def _flag(test: Callable[[EventBase], bool]) -> Callable[[EventBase], int]:
    return lambda ev: 1 if test(ev) else 0


def _add(matchers: dict[Any, list[tuple[int, int]]], key: Any, pair: tuple[int, int]) -> None:
    pairs = matchers.setdefault(key, [])
    if pair not in pairs:
        pairs.append(pair)


def compile_pack(policies: PolicySet) -> CompiledPack:
    """Compile every rule of ``policies`` to Rete rules (see the module docstring)."""
    # (event type, tests) -> the (policy, rule) pairs behind that matcher, in first-seen order
    matchers: dict[tuple[str, tuple[tuple[str, object], ...]], list[tuple[int, int]]] = {}
    gated: set[tuple[int, int, str]] = set()
    # (path, 'str'|'int') -> field name; (path, repr(cond)) -> flag name
    eq_fields: dict[tuple[str, str], str] = {}
    eq_values: dict[str, set[int]] = {}
    flag_fields: dict[tuple[str, str], str] = {}
    flag_tests: dict[str, Callable[[EventBase], bool]] = {}
    field_paths: dict[str, str] = {}
    uses: dict[str, set[str]] = {}  # event type -> field names its messages carry
    kinds: set[str] = set()  # the event types some Rete rule reads

    for pi, policy in enumerate(policies):
        # A rule of a policy with versions is no spec: no filters, every event of its
        # types reaches it, and each version's runtime tests its own (as natively).
        for ri, spec in enumerate(engine_specs(policy)):
            rule_types = spec.event_types()
            # Types the rule reads as state (a population's: a profile that fails
            # ``where`` ends a membership) are never filtered away; the matchers reading
            # only those types are no filters.
            state_types = spec.state_types()
            filters: list[EventMatch] = []
            _walk(spec, filters)
            filters = [m for m in filters if not set(m.type) <= state_types]
            filtered = {t for m in filters for t in m.type}
            # Types read but by no filter (and population types) reach the rule always.
            always = (rule_types - filtered) | (state_types & rule_types)
            for t in sorted(always):
                _add(matchers, (t, ()), (pi, ri))
                kinds.add(t)
            for m in filters:
                tests: list[FieldEq] = []
                for path, cond in m.where.items():
                    eq, value = _is_equality(cond)
                    if eq:
                        cls = "str" if isinstance(value, str) else "int"
                        fname = eq_fields.setdefault((path, cls), f"v{len(eq_fields)}")
                        field_paths[fname] = path
                        if cls == "int":
                            eq_values.setdefault(fname, set()).add(int(value))  # type: ignore[call-overload]
                        tests.append(FieldEq(fname, value))
                    else:
                        fkey = (path, repr(cond))
                        fname = flag_fields.get(fkey, "")
                        if not fname:
                            fname = flag_fields[fkey] = f"c{len(flag_fields)}"
                            flag_tests[fname] = _compile_condition(path, cond)
                        tests.append(FieldEq(fname, 1))
                for t in m.type:
                    if t in always or t not in rule_types:
                        continue
                    signature = tuple(sorted((x.field, x.value) for x in tests))
                    _add(matchers, (t, signature), (pi, ri))
                    gated.add((pi, ri, t))
                    kinds.add(t)
                    uses.setdefault(t, set()).update(x.field for x in tests)

    attributes: dict[str, tuple[_Attribute, ...]] = {}
    for t, names in uses.items():
        attrs: list[_Attribute] = []
        for fname in sorted(names, key=lambda n: (n[0], int(n[1:]))):
            if fname.startswith("c"):
                attrs.append(_Attribute(fname, _flag(flag_tests[fname])))
            else:
                get = field_getter(field_paths[fname])
                values = eq_values.get(fname)
                attrs.append(_Attribute(fname, _text_value(get) if values is None
                                        else _int_value(get, max(values) + 1)))
        attributes[t] = tuple(attrs)
    rules: list[Rule] = []
    targets: dict[str, tuple[tuple[int, int], ...]] = {}
    for index, ((t, signature), pairs) in enumerate(matchers.items()):
        name = f"m{index}:{t}"
        rules.append(Rule(name, (Match("e", t, tuple(FieldEq(f, v) for f, v in signature)),)))
        targets[name] = tuple(pairs)
    ruleset = RulesetSpec(rules=tuple(rules), kinds=tuple(sorted(kinds))) if rules else None
    return CompiledPack(ruleset, targets, attributes, frozenset(gated))


class _DurableSession(_NativeSession):
    """The native session, with the Rete engine choosing which rules an event reaches.

    Timers, rule runtimes, decision consumers, snapshots and ``apply`` itself are the native
    session's; this class only fills the native routing hook (``_route``) with the rules
    Rete matched, so the two backends cannot drift apart in anything but the matching."""

    prepares = True
    batch_size = 128
    """The most distinct messages :meth:`prepare` sends in one engine call. Matching cost per
    event of the 100k benchmark log (CPU, chunks of 1,024 events; issue 8): 2.2 µs at 128
    or 1,024 (~50 distinct messages a chunk), 3.1 µs at 32. With every event its own fact,
    larger batches cost more per fact: ~20-23 µs at 32-256, 34 µs at 1,024 (one call per
    event: 40 µs), so the cap stays where a log with many distinct messages is fastest."""

    def __init__(self, policies: PolicySet) -> None:
        super().__init__(policies)
        self._compiled = compile_pack(policies)
        spec = self._compiled.spec
        self._kinds = frozenset(spec.kinds) if spec is not None else frozenset()
        self._ruleset = DurableRuleset("policykit", spec) if spec is not None else None
        self._route = self._reached  # the native apply, with Rete choosing the rules
        self._seq = itertools.count()
        # id(event) -> (event, its hits), for prepared events not applied yet. The event is
        # kept with its hits, so its id cannot be reused by another object meanwhile.
        self._prepared: dict[int, tuple[EventBase, frozenset[tuple[int, int]]]] = {}

    def _message(self, event: EventBase) -> dict[str, object]:
        message: dict[str, object] = {"kind": event.type}
        for attr in self._compiled.attributes.get(event.type, ()):
            message[attr.name] = attr.compute(event)
        return message

    def prepare(self, events: Sequence[EventBase]) -> None:
        """Match ``events`` through Rete ahead of :meth:`apply`, in a few engine calls;
        each event's hits wait for :meth:`matched` on that very object.

        Events with equal messages get equal hits (Rete sees nothing else of an event), so
        each distinct message of the chunk is asserted once, with a ``seq`` number that
        keeps it apart from every other fact and maps its firings back. Never raises for an
        event: one whose message cannot be built, or a batch the engine fails on, is left
        to the one-event path, which raises at that event's turn."""
        self._prepared = {}
        if self._ruleset is None:
            return
        kinds = self._kinds
        # message content -> (the message as sent, the events carrying it), in first-seen order
        batch: dict[_Key, tuple[dict[str, object], list[EventBase]]] = {}
        for event in events:
            if event.type not in kinds:
                continue
            try:
                message = self._message(event)
            except Exception:  # matched() raises it again, at the event's turn
                continue
            key = tuple(message.items())
            group = batch.get(key)
            if group is not None:
                group[1].append(event)
                continue
            if len(batch) >= self.batch_size:
                self._match_batch(batch)
                batch = {}
            message[_SEQ] = next(self._seq)
            batch[key] = (message, [event])
        if batch:
            self._match_batch(batch)

    def _match_batch(self, batch: dict[_Key, tuple[dict[str, object], list[EventBase]]]) -> None:
        ruleset = self._ruleset
        assert ruleset is not None
        groups = list(batch.values())
        first = groups[0][0][_SEQ]
        assert isinstance(first, int)  # seq numbers are consecutive within a batch
        try:
            ids = ruleset.assert_facts([message for message, _events in groups])
            try:
                firings = ruleset.drain()
            finally:
                ruleset.retract_facts(ids)
            ruleset.drain()  # retracting completes no rule here; keep the sink empty anyway
        except DurableAdapterError:
            # Leave no fact behind (the network holds none between events), and let the
            # one-event path meet the failure at its event.
            with contextlib.suppress(DurableAdapterError):
                ruleset.retract_all()
                ruleset.drain()
            return
        targets = self._compiled.targets
        hits: list[set[tuple[int, int]]] = [set() for _ in groups]
        for firing in firings:
            index = int(firing["matched"]["e"][_SEQ]) - first
            if not 0 <= index < len(groups):
                return  # not this batch's firing: trust none of it, match one by one
            hits[index].update(targets[firing["rule"]])
        prepared = self._prepared
        for (_message, events), found in zip(groups, hits, strict=True):
            frozen = frozenset(found)
            for event in events:
                prepared[id(event)] = (event, frozen)

    def matched(self, event: EventBase) -> frozenset[tuple[int, int]]:
        """The (policy, rule) pairs whose matchers this event passes, decided by Rete
        (ahead of time by :meth:`prepare`, or now, for this event alone)."""
        ruleset = self._ruleset
        if ruleset is None or event.type not in self._kinds:
            return frozenset()
        entry = self._prepared.pop(id(event), None)
        if entry is not None and entry[0] is event:
            return entry[1]
        fact = ruleset.assert_fact(self._message(event))
        ruleset.retract_fact(fact)
        targets = self._compiled.targets
        hits: set[tuple[int, int]] = set()
        for firing in ruleset.drain():
            hits.update(targets[firing["rule"]])
        return frozenset(hits)

    def _reached(self, event: EventBase, targets: list[tuple[RuleRuntime, RuleContext]]
                 ) -> Sequence[tuple[RuleRuntime, RuleContext]]:
        """The routing hook of the native apply: of the rules reading ``event``'s type
        (``targets``, in the native order: by policy, then rule), those Rete matched."""
        hits = self.matched(event)
        if not hits:
            return ()
        return [target for pair, target in zip(self._routes[event.type], targets, strict=True)
                if pair in hits]

    def close(self) -> None:
        self._prepared = {}
        if self._ruleset is not None:
            self._ruleset.close()


class DurableBackend(Backend):
    """Policy sets evaluated with durable_rules as the matching layer.

    Raises :class:`~policykit.BackendUnavailableError` (the adapter's ``DurableUnavailable``)
    when durable_rules cannot be imported in this interpreter, saying why and what to do."""

    name = "durable"

    def __init__(self) -> None:
        ok, why = durable_available()
        if not ok:
            raise DurableUnavailable(why or "durable_rules cannot be imported")

    def open(self, policies: PolicySet) -> EvaluatorSession:
        return _DurableSession(policies)
