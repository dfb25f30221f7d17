"""The durable_rules adapter: safe constructs only, isolation, teardown, threads, import
failure. Tests that need the C engine are skipped (with the reason) where it cannot load."""

from __future__ import annotations

import gc
import importlib.abc
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policykit
from policykit.engine import _durable_adapter as da
from policykit.engine._durable_adapter import (
    MAX_FIELDS,
    DurableActionError,
    DurableCapacityError,
    DurableRuleset,
    DurableUnavailable,
    FieldEq,
    FieldJoin,
    Match,
    MessageError,
    NoMatch,
    Rule,
    RulesetClosedError,
    RulesetSpec,
    RulesetSpecError,
    normalise,
    normalise_message,
)
from policykit.errors import BackendUnavailableError

AVAILABLE, WHY = da.durable_available()
needs_durable = pytest.mark.skipif(not AVAILABLE, reason=f"durable_rules unavailable: {WHY}")

KEY = (FieldJoin("key", "a"),)


def sla_spec(**overrides: Any) -> RulesetSpec:
    """trigger → (fulfil before deadline, or 'late'); the deadline is posted by Python."""
    args: dict[str, Any] = {
        "kinds": {"trigger": "held", "fulfil": "held", "deadline": "transient"},
        "partition_keys": ("key",),
        "rules": (
            Rule("late", (Match("a", "trigger"), Match("d", "deadline", KEY),
                          NoMatch("fulfil", KEY))),
            Rule("on_time", (Match("a", "trigger"), Match("d", "deadline", KEY),
                             Match("f", "fulfil", KEY)), priority=1, emit=False),
        ),
    }
    args.update(overrides)
    return RulesetSpec(**args)


def fired_keys(firings: Sequence[da.Firing], rule: str = "late") -> list[Any]:
    return [f["matched"]["a"]["key"] for f in firings if f["rule"] == rule]


@pytest.fixture
def sla() -> Iterator[DurableRuleset]:
    if not AVAILABLE:
        pytest.skip(f"durable_rules unavailable: {WHY}")
    with DurableRuleset("sla", sla_spec()) as rs:
        yield rs


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------------------------
# Semantics of the safe constructs


@needs_durable
def test_equality_join_fires_on_equal_keys_in_any_arrival_order() -> None:
    spec = RulesetSpec(
        kinds={"request": "held", "ack": "held"},
        partition_keys=("key",),
        rules=(Rule("acked", (Match("r", "request"),
                              Match("k", "ack", (FieldJoin("key", "r"),)))),),
    )
    with DurableRuleset("join", spec) as rs:
        rs.post({"kind": "request", "key": "A", "note": "first"})
        rs.post({"kind": "ack", "key": "B"})  # no request B yet: waits
        assert rs.drain() == []
        rs.post({"kind": "ack", "key": "A"})
        rs.post({"kind": "request", "key": "B"})  # the ack came first: still joins
        assert rs.drain() == [
            {"rule": "acked", "matched": {"r": {"kind": "request", "key": "A", "note": "first"},
                                          "k": {"kind": "ack", "key": "A"}}},
            {"rule": "acked", "matched": {"r": {"kind": "request", "key": "B"},
                                          "k": {"kind": "ack", "key": "B"}}},
        ]
        assert rs.pending_count() == 0  # the join consumed all four


@needs_durable
def test_join_on_differently_named_fields_and_literal_tests() -> None:
    spec = RulesetSpec(
        kinds={"order": "held", "payment": "transient"},
        partition_keys=(),
        rules=(Rule("paid", (
            Match("o", "order", (FieldEq("status", "open"),)),
            Match("p", "payment", (FieldJoin("order_ref", "o", "order_id"), FieldEq("ok", True))),
        )),),
    )
    with DurableRuleset("join2", spec) as rs:
        rs.post({"kind": "order", "order_id": 7, "status": "open"})
        rs.post({"kind": "payment", "order_ref": 7, "ok": False})  # ok=0: sunk, no firing
        assert rs.drain() == []
        rs.post({"kind": "payment", "order_ref": 7, "ok": True})
        assert [f["matched"]["p"] for f in rs.drain()] == [
            {"kind": "payment", "order_ref": 7, "ok": 1}
        ]
        # An order that is not open can never match: durable drops it, nothing is stored.
        rs.post({"kind": "order", "order_id": 8, "status": "closed"})
        assert rs.unhandled == 1
        assert rs.pending_count() == 0


@needs_durable
def test_none_as_last_condition_detects_absence(sla: DurableRuleset) -> None:
    sla.post_many([
        {"kind": "trigger", "key": "T1"},
        {"kind": "trigger", "key": "T2"},
        {"kind": "fulfil", "key": "T2"},
    ])
    sla.post({"kind": "deadline", "key": "T1"})  # no fulfilment: late
    sla.post({"kind": "deadline", "key": "T2"})  # fulfilled: consumed silently by on_time
    sla.post({"kind": "deadline", "key": "T3"})  # nothing waits: the sink discards it
    firings = sla.drain()
    assert firings == [{"rule": "late", "matched": {"a": {"kind": "trigger", "key": "T1"},
                                                    "d": {"kind": "deadline", "key": "T1"}}}]
    assert sla.pending_count() == 0


@needs_durable
def test_none_over_facts_and_retraction() -> None:
    spec = RulesetSpec(
        kinds={"access": "transient", "authorised": "fact"},
        partition_keys=("user",),
        rules=(Rule("unauthorised", (
            Match("a", "access"), NoMatch("authorised", (FieldJoin("user", "a"),)))),),
    )
    with DurableRuleset("facts", spec) as rs:
        fact_id = rs.assert_fact({"kind": "authorised", "user": "u1"})
        assert rs.assert_fact({"kind": "authorised", "user": "u1"}) == fact_id  # a set
        rs.post({"kind": "access", "user": "u1"})
        rs.post({"kind": "access", "user": "u2"})
        assert [f["matched"]["a"]["user"] for f in rs.drain()] == ["u2"]
        assert rs.retract_fact({"kind": "authorised", "user": "u1"}) is True
        assert rs.retract_fact(fact_id) is False
        rs.post({"kind": "access", "user": "u1"})
        assert [f["matched"]["a"]["user"] for f in rs.drain()] == ["u1"]
        assert rs.pending_count() == 0
        with pytest.raises(MessageError, match="fact kind; use assert_fact"):
            rs.post({"kind": "authorised", "user": "u3"})
        with pytest.raises(MessageError, match="transient kind; use post"):
            rs.assert_fact({"kind": "access", "user": "u3"})


@st.composite
def _sla_scenario(draw: st.DrawFn) -> tuple[list[dict[str, Any]], set[str], int]:
    """Messages for a few keys in a random interleaving, with the expected 'late' keys and
    the expected number of messages left waiting."""
    per_key: list[list[dict[str, Any]]] = []
    for index in range(draw(st.integers(1, 6))):
        key = f"k{index}"
        kinds = ["trigger", "deadline"] + (["fulfil"] if draw(st.booleans()) else [])
        per_key.append([{"kind": kind, "key": key} for kind in kinds])
    # Interleave: pick which key's next message comes next, keys' own order shuffled too.
    queues = [draw(st.permutations(msgs)) for msgs in per_key]
    out: list[dict[str, Any]] = []
    while any(queues):
        choice = draw(st.sampled_from([i for i, q in enumerate(queues) if q]))
        out.append(queues[choice][0])
        queues[choice] = queues[choice][1:]
    late: set[str] = set()
    waiting = 0
    for msgs in per_key:
        key = msgs[0]["key"]
        at = {m["kind"]: out.index(m) for m in msgs}
        fulfilled = "fulfil" in at and at["fulfil"] < at["deadline"]
        if at["trigger"] < at["deadline"]:
            late |= set() if fulfilled else {key}
            waiting += 1 if "fulfil" in at and not fulfilled else 0
        else:  # the deadline found nothing and was discarded: the rest waits
            waiting += 2 if "fulfil" in at else 1
    return out, late, waiting


@needs_durable
@settings(max_examples=150, deadline=None)
@given(scenario=_sla_scenario())
def test_deadline_shape_matches_a_reference_model(
    scenario: tuple[list[dict[str, Any]], set[str], int],
) -> None:
    messages, late, waiting = scenario
    with DurableRuleset("model", sla_spec()) as rs:
        rs.post_many(messages)
        found = fired_keys(rs.drain())
        assert sorted(found) == sorted(late)
        assert rs.pending_count() == waiting
        for key in {m["key"] for m in messages}:
            rs.purge({"key": key})
        assert rs.pending_count() == 0


@needs_durable
def test_event_goes_to_the_lowest_priority_value_only() -> None:
    spec = RulesetSpec(
        kinds={"x": "transient"},
        rules=(Rule("second", (Match("m", "x"),), priority=5),
               Rule("first", (Match("m", "x"),), priority=1),
               Rule("third", (Match("m", "x"),), priority=9)),
    )
    with DurableRuleset("pri", spec) as rs:
        rs.post({"kind": "x"})
        rs.post({"kind": "x"})  # identical content twice: ids keep them distinct
        assert [f["rule"] for f in rs.drain()] == ["first", "first"]


@needs_durable
def test_purge_removes_waiting_held_events_and_facts(sla: DurableRuleset) -> None:
    sla.post_many([{"kind": "trigger", "key": "K"}, {"kind": "fulfil", "key": "K"},
                   {"kind": "fulfil", "key": "K"}, {"kind": "trigger", "key": "other"}])
    assert sla.pending_count() == 4
    assert sla.purge({"key": "K"}) == 3
    assert sla.pending_count() == 1
    assert sla.purge({"key": "K"}) == 0
    with pytest.raises(MessageError, match="partition keys"):
        sla.purge()
    with pytest.raises(MessageError, match="not a held or fact kind"):
        sla.purge({"key": "K"}, kinds=["deadline"])
    with pytest.raises(MessageError, match="is str in this ruleset"):
        sla.purge({"key": 7})  # durable itself would purge key '7' here


@needs_durable
def test_post_many_validates_everything_before_posting(sla: DurableRuleset) -> None:
    with pytest.raises(MessageError, match="not declared"):
        sla.post_many([{"kind": "trigger", "key": "A"}, {"kind": "trigers", "key": "B"}])
    assert sla.pending_count() == 0
    with pytest.raises(MessageError, match="lacks partition keys"):
        sla.post({"kind": "trigger"})
    with pytest.raises(MessageError, match="did you mean 'trigger'"):
        sla.post({"kind": "triger", "key": "A"})


# --------------------------------------------------------------------------------------------
# Unsafe constructs cannot be written down


def test_comparison_join_that_would_segfault_is_rejected() -> None:
    with pytest.raises(RulesetSpecError, match="SIGSEGV"):
        FieldJoin("now", "i", "due", op=">")
    with pytest.raises(RulesetSpecError, match="only equality"):
        FieldEq("amount", 100, op=">")
    with pytest.raises(RulesetSpecError, match="only equality"):
        FieldEq("amount", 100, op="!=")


def test_none_anywhere_but_last_is_rejected() -> None:
    with pytest.raises(RulesetSpecError, match="LAST condition"):
        Rule("r", (Match("a", "t"), NoMatch("f", KEY), Match("d", "deadline", KEY)))
    with pytest.raises(RulesetSpecError, match="LAST condition"):
        Rule("r", (Match("a", "t"), NoMatch("f", KEY), NoMatch("g", KEY)))
    with pytest.raises(RulesetSpecError, match="at least one Match"):
        Rule("r", (NoMatch("f"),))


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Rule("r", (Match("a", "t"), Match("b", "u", (FieldJoin("key", "zz"),)))),
         "no earlier Match binds"),
        (lambda: Rule("r", (Match("a", "t"), Match("a", "u"))), "bound twice"),
        (lambda: Rule("r", (Match("a", "t"),), priority=-1), "misorders negative"),
        (lambda: Rule("$r", (Match("a", "t"),)), "not starting with '\\$'"),
        (lambda: Rule("r", (Match("a", "t", (FieldEq("x", 1), FieldEq("x", 2))),)),
         "tested twice"),
        (lambda: Match("a.b", "t"), "identifier"),
        (lambda: FieldEq("id", 1), "reserved"),
        (lambda: FieldEq("x", None), "None"),
        (lambda: sla_spec(kinds={"trigger": "held", "fulfil": "transient",
                                 "deadline": "transient"}), "always true"),
        (lambda: sla_spec(kinds={"trigger": "held", "fulfil": "held", "deadline": "transient",
                                 "orphan": "held"}), "accumulate forever"),
        (lambda: sla_spec(kinds={"trigger": "held", "fulfil": "held", "deadlin": "transient"}),
         "did you mean 'deadlin'"),
        (lambda: sla_spec(kinds={"trigger": "held", "fulfil": "held", "deadline": "forever"}),
         "transient/held/fact"),
        (lambda: RulesetSpec(kinds={"x": "transient", "y": "transient"}, rules=(
            Rule("r", (Match("a", "x"), Match("b", "y", (FieldJoin("k", "a"),)))),)),
         "two transient"),
        (lambda: RulesetSpec(kinds={"x": "transient"}, rules=(
            Rule("r", (Match("a", "x", (FieldEq("v", 1),)),)),
            Rule("s", (Match("a", "x", (FieldEq("v", "1"),)),)))), "one JSON type"),
        (lambda: RulesetSpec(kinds={"x": "held", "y": "transient"}, rules=(
            Rule("r", (Match("a", "x", (FieldEq("v", 1),)),
                       Match("b", "y", (FieldEq("w", "one"), FieldJoin("u", "a", "v"))))),
            Rule("s", (Match("a", "y", (FieldEq("u", "1"),)),)))), "one JSON type"),
        (lambda: RulesetSpec(kinds={"x": "transient"}, rules=(
            Rule("r", (Match("a", "x", (FieldEq("v", 0.5),)),)),)), "float"),
    ],
)
def test_spec_validation_names_the_problem(build: Any, message: str) -> None:
    with pytest.raises(RulesetSpecError, match=message):
        build()


_OPS = st.sampled_from(["==", "==", "==", ">", "<", ">=", "!=", "in"])
_FIELDS = st.sampled_from(["key", "x", "y", "kind", "id", "$and", "a.b"])
_KINDS = st.sampled_from(["t", "u", "v", "w"])
_VALUES = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "$gt"]), st.booleans(),
                    st.floats(allow_nan=True), st.none())


@st.composite
def _any_rule(draw: st.DrawFn, index: int) -> Rule:
    conditions: list[Match | NoMatch] = []
    aliases = ["a", "b", "c", "zz"]
    for position in range(draw(st.integers(1, 4))):
        tests: list[FieldEq | FieldJoin] = []
        for _ in range(draw(st.integers(0, 2))):
            field = draw(_FIELDS)
            if draw(st.booleans()):
                tests.append(FieldEq(field, draw(_VALUES), op=draw(_OPS)))
            else:
                tests.append(FieldJoin(field, draw(st.sampled_from(aliases)), op=draw(_OPS)))
        kind = draw(_KINDS)
        if draw(st.integers(0, 3)) == 0:
            conditions.append(NoMatch(kind, tuple(tests)))
        else:
            conditions.append(Match(aliases[position], kind, tuple(tests)))
    return Rule(f"r{index}", tuple(conditions), priority=draw(st.integers(-2, 3)))


def _assert_only_safe_constructs(definition: dict[str, Any]) -> None:
    for rule in definition.values():
        assert set(rule) <= {"all", "pri"}
        assert rule.get("pri", 0) >= 0
        conditions = rule["all"]
        for position, condition in enumerate(conditions):
            ((label, expression),) = condition.items()
            if label.endswith("$not"):
                assert position == len(conditions) - 1 and position > 0
            else:
                assert "$" not in label
            terms = expression.get("$and", [expression])
            for term in terms:
                ((name, value),) = term.items()
                assert not name.startswith("$"), term  # no $gt/$lt/$neq/$or/$nex/...
                if isinstance(value, dict):  # an equality join: {alias: field}
                    ((alias, other),) = value.items()
                    assert "$" not in alias and isinstance(other, str)
                else:
                    assert type(value) in (int, str), term


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_spec_that_validates_compiles_to_equality_and_trailing_none_only(
    data: st.DataObject,
) -> None:
    try:
        rules = tuple(data.draw(_any_rule(i)) for i in range(data.draw(st.integers(1, 3))))
        lifetimes: list[da.Lifetime] = ["transient", "held", "fact"]
        kinds = data.draw(st.dictionaries(_KINDS, st.sampled_from(lifetimes), min_size=1))
        spec = RulesetSpec(rules=rules, kinds=kinds, partition_keys=("key",))
    except RulesetSpecError:
        return  # rejected with an explanation: fine
    _assert_only_safe_constructs(spec.definition())


# --------------------------------------------------------------------------------------------
# Values


class Colour(str, Enum):  # noqa: UP042 - the mixin form, whose str() is 'Colour.RED'
    RED = "red"


class Level(IntEnum):
    HIGH = 3


def test_normalise_values() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert normalise(True) == 1 and normalise(False) == 0
    assert normalise(Level.HIGH) == 3 and type(normalise(Level.HIGH)) is int
    assert normalise(Colour.RED) == "red" and type(normalise(Colour.RED)) is str
    assert normalise(None) is None
    assert normalise(3.0) == 3 and type(normalise(3.0)) is int
    assert normalise(Decimal("50.00")) == 5000
    assert normalise(Decimal("-0.5")) == -50
    assert normalise(Decimal("1.234"), decimal_scale=3) == 1234
    assert normalise(datetime(1970, 1, 1, 8, 0, 0, 1, tzinfo=shanghai)) == 1
    assert normalise(datetime(2026, 3, 2, tzinfo=UTC)) == 1_772_409_600_000_000
    assert normalise(date(2026, 3, 2)) == "2026-03-02"
    for bad, why in [(Decimal("0.001"), "minor units"), (1e-07, "float"), (0.1, "float"),
                     (float("nan"), "float"), (1e16, "float"), (2**63, "64-bit"),
                     (datetime(2026, 1, 1), "naive"), ([1], "unsupported"),
                     ({"a": 1}, "unsupported"), (Decimal("Infinity"), "finite")]:
        with pytest.raises(MessageError, match=why):
            normalise(bad)


def test_pendulum_datetime_normalises_like_datetime() -> None:
    pendulum = pytest.importorskip("pendulum")
    value = pendulum.datetime(2026, 3, 2, 8, 30, tz="Asia/Shanghai")
    plain = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)
    assert normalise(value) == normalise(plain)


def test_normalise_message_drops_none_and_limits_fields() -> None:
    assert normalise_message({"kind": "x", "gone": None, "n": True}) == {"kind": "x", "n": 1}
    with pytest.raises(MessageError, match="reserved"):
        normalise_message({"kind": "x", "sid": "1"})
    with pytest.raises(MessageError, match="identifier"):
        normalise_message({"a.b": 1})
    with pytest.raises(MessageError, match=f"at most {MAX_FIELDS}"):
        normalise_message({f"f{i}": i for i in range(MAX_FIELDS + 1)})


@needs_durable
def test_widest_allowed_message_is_accepted_by_the_engine() -> None:
    spec = RulesetSpec(kinds={"x": "transient"}, rules=(Rule("r", (Match("m", "x"),)),))
    message: dict[str, Any] = {"kind": "x"} | {f"f{i}": i for i in range(MAX_FIELDS - 1)}
    with DurableRuleset("wide", spec) as rs:
        rs.post(message)
        assert rs.drain()[0]["matched"]["m"] == message


@needs_durable
def test_text_and_number_never_meet(sla: DurableRuleset) -> None:
    # durable_rules itself joins '7' with 7 without a word; the adapter keeps one type per field.
    sla.post({"kind": "trigger", "key": "7"})
    with pytest.raises(MessageError, match="one type"):
        sla.post({"kind": "deadline", "key": 7})
    spec = RulesetSpec(
        kinds={"a": "held", "b": "transient"},
        rules=(Rule("r", (Match("x", "a"), Match("y", "b", (FieldJoin("ref", "x", "key"),)))),),
    )
    with DurableRuleset("types", spec) as rs:
        rs.post({"kind": "a", "key": 7})
        with pytest.raises(MessageError, match="one type"):  # 'ref' is joined with 'key'
            rs.post({"kind": "b", "ref": "7"})
        rs.post({"kind": "b", "ref": Decimal("0.07")})  # 7 minor units
        assert len(rs.drain()) == 1
    declared = sla_spec(field_types={"key": "int"})
    with DurableRuleset("types", declared) as rs, pytest.raises(MessageError, match="one type"):
        rs.post({"kind": "trigger", "key": "7"})


# --------------------------------------------------------------------------------------------
# Isolation, teardown, threads


@needs_durable
def test_rulesets_with_the_same_logical_name_are_isolated() -> None:
    with DurableRuleset("same", sla_spec()) as one, DurableRuleset("same", sla_spec()) as two:
        assert one.name != two.name
        one.post({"kind": "trigger", "key": "K"})
        two.post({"kind": "deadline", "key": "K"})  # nothing waits in *this* ruleset
        assert two.drain() == [] and one.drain() == []
        one.post({"kind": "deadline", "key": "K"})
        assert fired_keys(one.drain()) == ["K"]
        assert two.drain() == []
    lang = sys.modules.get("durable.lang")
    assert lang is None or not any(name.startswith("same-") for name in lang._rulesets)


@needs_durable
def test_close_is_idempotent_and_final() -> None:
    rs = DurableRuleset("close", sla_spec())
    rs.post({"kind": "trigger", "key": "K"})
    rs.close()
    rs.close()
    assert rs.closed
    for call in (lambda: rs.post({"kind": "trigger", "key": "K"}), rs.pending_count,
                 lambda: rs.assert_fact({"kind": "x"}), rs.get_state):
        with pytest.raises((RulesetClosedError, MessageError)):
            call()
    with pytest.raises(RulesetClosedError):
        rs.post({"kind": "trigger", "key": "K"})


@needs_durable
def test_closing_a_session_where_no_rule_ever_fired_does_not_crash() -> None:
    # durable's delete_state SIGSEGVs on a sid where no action ever ran (a held message that
    # only waits, an unhandled one): the adapter opens each sid with an action first. A
    # subprocess, so a regression fails this test instead of killing the run.
    root = Path(policykit.__file__).resolve().parent.parent
    script = textwrap.dedent(
        """
        import sys
        sys.path.insert(0, "tests")
        from test_durable_adapter import sla_spec, DurableRuleset
        spec = sla_spec()
        for scenario in range(4):
            for _ in range(3):
                rs = DurableRuleset("quiet", spec, shards=1 + scenario % 2)
                if scenario == 1:
                    rs.post({"kind": "trigger", "key": "waits"})
                elif scenario == 2:
                    rs.post({"kind": "fulfil", "key": "waits"})
                    rs.post({"kind": "trigger", "key": "too"})
                elif scenario == 3:
                    rs.pending_count()
                rs.close()
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "ok"


@needs_durable
def test_create_post_close_1000_times_no_threads_no_memory_growth() -> None:
    spec = sla_spec()

    def cycle(i: int) -> None:
        with DurableRuleset("cycle", spec) as rs:
            rs.post({"kind": "trigger", "key": f"k{i}"})
            rs.post({"kind": "trigger", "key": f"j{i}"})
            rs.post({"kind": "deadline", "key": f"k{i}"})
            assert len(rs.drain()) == 1

    threads = threading.active_count()
    for i in range(100):  # warm-up: allocator pools, caches
        cycle(i)
    gc.collect()
    before = rss_kib()
    for i in range(1000):
        cycle(i)
    gc.collect()
    grown = rss_kib() - before
    assert threading.active_count() == threads
    assert grown < 30 * 1024, f"RSS grew {grown} KiB over 1,000 create/post/close cycles"


@needs_durable
def test_abandoned_ruleset_is_reaped() -> None:
    da.reap_abandoned()
    rs = DurableRuleset("lost", sla_spec())
    rs.post({"kind": "trigger", "key": "K"})
    core = rs._core
    del rs
    gc.collect()
    assert da.reap_abandoned() == 1
    assert core.closed and core.shards == []


@needs_durable
def test_eight_threads_posting_concurrently_lose_no_firing() -> None:
    per_thread, workers = 300, 8
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []
    drained: list[da.Firing] = []
    posting = threading.Event()
    posting.set()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible

    with DurableRuleset("threads", sla_spec()) as rs:

        def work(worker: int) -> None:
            try:
                barrier.wait()
                for i in range(per_thread):
                    key = f"w{worker}-{i}"
                    rs.post({"kind": "trigger", "key": key})
                    if i % 3 == 0:
                        rs.post({"kind": "fulfil", "key": key})
                    rs.post({"kind": "deadline", "key": key})
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        def drainer() -> None:  # drains while the others post
            barrier.wait()
            while posting.is_set():
                drained.extend(rs.drain())

        pool = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        reader = threading.Thread(target=drainer)
        try:
            for thread in [*pool, reader]:
                thread.start()
            for thread in pool:
                thread.join()
        finally:
            posting.clear()
            reader.join()
            sys.setswitchinterval(interval)
        assert errors == []
        late = fired_keys(drained + rs.drain())
        expected = {f"w{w}-{i}" for w in range(workers) for i in range(per_thread) if i % 3}
        assert len(late) == len(expected) and set(late) == expected
        assert rs.pending_count() == 0


@needs_durable
def test_sharding_by_key_hash_gives_the_same_firings() -> None:
    messages: list[dict[str, Any]] = []
    for i in range(200):
        messages.append({"kind": "trigger", "key": i})
        if i % 4 == 0:
            messages.append({"kind": "fulfil", "key": i})
    messages += [{"kind": "deadline", "key": i} for i in range(200)]
    results = []
    for shards in (1, 4):
        with DurableRuleset("shard", sla_spec(), shards=shards) as rs:
            assert rs.shards == shards
            rs.post_many(messages)
            results.append(fired_keys(rs.drain()))
            if shards > 1:
                assert all(shard.sids for shard in rs._core.shards)  # every shard got work
    assert results[0] == results[1] == [i for i in range(200) if i % 4]
    with pytest.raises(ValueError, match="partition_keys"):
        DurableRuleset("shard", sla_spec(partition_keys=()), shards=2)


@needs_durable
def test_state_snapshot_round_trip_continues_identically() -> None:
    facts_spec = RulesetSpec(
        kinds={"trigger": "held", "fulfil": "fact", "deadline": "transient", "note": "fact"},
        partition_keys=("key",),
        rules=(
            Rule("late", (Match("a", "trigger"), Match("d", "deadline", KEY),
                          NoMatch("fulfil", KEY))),
            Rule("noted", (Match("n", "note"),)),
            Rule("done", (Match("a", "trigger"), Match("d", "deadline", KEY)), priority=1,
                 emit=False),
        ),
    )
    first = [{"kind": "trigger", "key": k} for k in "ABCD"]
    second = [{"kind": "deadline", "key": k} for k in "ABCDE"]
    with DurableRuleset("snap", facts_spec) as whole:
        whole.post_many(first)
        whole.assert_fact({"kind": "fulfil", "key": "B"})
        whole.assert_fact({"kind": "note", "key": "A"})
        before = whole.drain()
        state = json.loads(json.dumps(whole.get_state()))  # plain JSON
        whole.post_many(second)
        expected = whole.drain()
    assert [f["rule"] for f in before] == ["noted"]
    assert fired_keys(expected) == ["A", "C", "D"]
    assert len(state["events"]) == 4 and len(state["facts"]) == 2
    with DurableRuleset("snap", facts_spec) as restored:
        restored.load_state(state)
        assert restored.drain() == []  # re-fed firings were delivered before the snapshot
        restored.post_many(second)
        assert restored.drain() == expected
        assert restored.retract_fact({"kind": "fulfil", "key": "B"})
        with pytest.raises(MessageError, match="fresh"):
            restored.load_state(state)


# --------------------------------------------------------------------------------------------
# Failures become clear errors


def test_actions_never_raise() -> None:
    sink = da._Sink()
    action = da._make_action(sink, "r", "emit", ("a",))

    class Broken:
        @property
        def _m(self) -> Any:
            raise KeyError("boom")

    action(Broken())  # must not raise into durable_rules
    assert sink.firings == [] and "KeyError" in sink.errors[0]


@needs_durable
def test_action_failure_surfaces_on_drain(sla: DurableRuleset) -> None:
    sla.post({"kind": "trigger", "key": "K"})
    sla.post({"kind": "deadline", "key": "K"})
    sla._core.sink.errors.append("rule 'late': KeyError: 'a'")
    with pytest.raises(DurableActionError, match="KeyError") as caught:
        sla.drain()
    assert fired_keys(caught.value.firings) == ["K"]
    assert sla.drain() == []


@needs_durable
def test_memory_error_is_translated(sla: DurableRuleset, monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_sessions(*args: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(sla._core.shards[0].host, "post", out_of_sessions)
    with pytest.raises(DurableCapacityError, match="1,024 live session ids"):
        sla.post({"kind": "trigger", "key": "K"})


class _BrokenDurable(importlib.abc.MetaPathFinder):
    """Makes ``import durable...`` fail the way it does on Python 3.13."""

    def find_spec(self, name: str, path: Any, target: ModuleType | None = None) -> None:
        if name == "durable" or name.startswith(("durable.", "durable_rules_engine")):
            raise ImportError(
                "durable_rules_engine.cpython-313-x86_64-linux-gnu.so: "
                "undefined symbol: PyEval_CallObject"
            )
        return None


def test_failed_import_gives_durable_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [n for n in sys.modules if n == "durable" or n.startswith("durable")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [_BrokenDurable(), *sys.meta_path])
    monkeypatch.setattr(da, "_durable", None)
    monkeypatch.setattr(da, "_durable_error", None)

    ok, why = da.durable_available()
    assert not ok and why is not None
    assert "undefined symbol: PyEval_CallObject" in why
    assert "backend='native'" in why and "3.11/3.12" in why
    with pytest.raises(DurableUnavailable, match="PyEval_CallObject") as caught:
        DurableRuleset("x", sla_spec())
    assert isinstance(caught.value, BackendUnavailableError)
    assert da.durable_available() == (False, why)  # attempted once, remembered


def test_policykit_imports_without_durable() -> None:
    root = Path(policykit.__file__).resolve().parent.parent
    script = textwrap.dedent(
        """
        import importlib.abc, sys

        class Broken(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "durable" or name.startswith(("durable.", "durable_rules_engine")):
                    raise ImportError("undefined symbol: PyEval_CallObject")

        sys.meta_path.insert(0, Broken())
        import policykit
        from policykit.engine import _durable_adapter as da
        assert "durable.engine" not in sys.modules  # nothing imported it eagerly
        ok, why = da.durable_available()
        assert not ok and "PyEval_CallObject" in why, why
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
