"""The durable_rules adapter: only safe constructs can be written, every measured trap stays
behind it (delete_state's SIGSEGV, the field cap, negative priorities, text against numbers;
the non-atomic batch call is covered in tests/test_durable_batch.py), isolation, teardown,
threads, import failure. Tests that need the C engine are skipped (with the reason) where it
cannot load."""

from __future__ import annotations

import gc
import importlib.abc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum, IntEnum
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
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
    Match,
    MessageError,
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


def clock_spec() -> RulesetSpec:
    """The backend's shape: one Match per rule, literal equality, a 0/1 flag decided in Python."""
    return RulesetSpec(
        kinds=("clock_in", "call"),
        rules=(
            Rule("late", (Match("e", "clock_in", (FieldEq("c0", 1),)),)),
            Rule("any_clock_in", (Match("e", "clock_in"),)),
            Rule("phone", (Match("e", "call", (FieldEq("v0", "phone"),)),)),
        ),
    )


def fired(ruleset: DurableRuleset) -> list[str]:
    return sorted(f["rule"] for f in ruleset.drain())


@pytest.fixture
def rs() -> Iterator[DurableRuleset]:
    if not AVAILABLE:
        pytest.skip(f"durable_rules unavailable: {WHY}")
    with DurableRuleset("clock", clock_spec()) as ruleset:
        yield ruleset


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


# --------------------------------------------------------------------------------------------
# What a fact does


@needs_durable
def test_a_fact_fires_every_rule_it_completes_once(rs: DurableRuleset) -> None:
    fact = rs.assert_fact({"kind": "clock_in", "c0": 1, "employee": "E1"})
    matched = {"e": {"kind": "clock_in", "c0": 1, "employee": "E1"}}  # no id, no sid
    assert sorted(rs.drain(), key=lambda f: f["rule"]) == [
        {"rule": "any_clock_in", "matched": matched}, {"rule": "late", "matched": matched}]
    assert rs.retract_fact(fact) and not rs.retract_fact(fact)
    assert rs.drain() == [] and rs.pending_count() == 0
    rs.assert_fact({"kind": "clock_in", "c0": 0})
    assert fired(rs) == ["any_clock_in"]


@needs_durable
def test_a_fact_matching_nothing_is_not_stored(rs: DurableRuleset) -> None:
    rs.assert_fact({"kind": "call", "v0": "email"})
    assert rs.drain() == [] and rs.unhandled == 1 and rs.pending_count() == 0
    with pytest.raises(MessageError, match="did you mean 'call'"):
        rs.assert_fact({"kind": "cal"})


# --------------------------------------------------------------------------------------------
# Unsafe constructs cannot be written down


def test_only_equality_can_be_written() -> None:
    for op in (">", "!=", "in"):
        with pytest.raises(RulesetSpecError, match="only equality"):
            FieldEq("amount", 100, op=op)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        # A join: a comparison inside one crashes the process when false.
        (lambda: Rule("r", (Match("a", "t"), Match("b", "u"))), "SIGSEGV"),
        (lambda: Rule("r", ()), "exactly one Match"),
        (lambda: Rule("r", (Match("a", "t"),), priority=-1), "misorders negative"),
        (lambda: Rule("r", (Match("a", "t"),), priority=True), "misorders negative"),
        (lambda: Rule("$r", (Match("a", "t"),)), "not starting with '\\$'"),
        (lambda: Match("a", "t", (FieldEq("x", 1), FieldEq("x", 2))), "tested twice"),
        (lambda: Match("a.b", "t"), "identifier"),
        (lambda: FieldEq("id", 1), "reserved"),
        (lambda: FieldEq("kind", "t"), "set by Match"),
        (lambda: FieldEq("x", None), "None"),
        (lambda: RulesetSpec(kinds=("clock",), rules=(Rule("r", (Match("a", "clok"),)),)),
         "did you mean 'clock'"),
        (lambda: RulesetSpec(kinds=("$x",), rules=(Rule("r", (Match("a", "$x"),)),)),
         "not starting '\\$'"),
        (lambda: RulesetSpec(kinds=("x",), rules=(
            Rule("r", (Match("a", "x", (FieldEq("v", 1),)),)),
            Rule("s", (Match("a", "x", (FieldEq("v", "1"),)),)))), "one JSON type"),
        (lambda: RulesetSpec(kinds=("x",), rules=(
            Rule("r", (Match("a", "x"),)), Rule("r", (Match("a", "x"),)))), "two rules"),
        (lambda: RulesetSpec(kinds=("x",), rules=(
            Rule("r", (Match("a", "x", (FieldEq("v", 0.5),)),)),)), "float"),
        (lambda: RulesetSpec(kinds=("x",), rules=()), "non-empty"),
    ],
)
def test_spec_validation_names_the_problem(build: Any, message: str) -> None:
    with pytest.raises(RulesetSpecError, match=message):
        build()


_VALUES = st.one_of(st.integers(-5, 5), st.sampled_from(["a", "b", "$gt"]), st.booleans(),
                    st.floats(allow_nan=True), st.none())


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_any_spec_that_validates_compiles_to_literal_equality_only(data: st.DataObject) -> None:
    try:
        rules = tuple(
            Rule(f"r{i}", (Match("e", data.draw(st.sampled_from("tuv")), tuple(
                FieldEq(data.draw(st.sampled_from(["x", "y", "kind", "id", "$and", "a.b"])),
                        data.draw(_VALUES), op=data.draw(st.sampled_from(["==", "==", ">"])))
                for _ in range(data.draw(st.integers(0, 2))))),),
                 priority=data.draw(st.integers(-2, 3)))
            for i in range(data.draw(st.integers(1, 3))))
        spec = RulesetSpec(rules=rules, kinds=("t", "u", "v"))
    except RulesetSpecError:
        return  # rejected with an explanation: fine
    for rule in spec.definition().values():
        assert set(rule) <= {"all", "pri"} and rule.get("pri", 0) >= 0
        ((label, expression),) = rule["all"][0].items()
        assert len(rule["all"]) == 1 and "$" not in label  # no join, no none()
        for term in expression.get("$and", [expression]):
            ((name, value),) = term.items()
            assert not name.startswith("$") and type(value) in (int, str), term


# --------------------------------------------------------------------------------------------
# Values


class Colour(str, Enum):  # noqa: UP042 - the mixin form, whose str() is 'Colour.RED'
    RED = "red"


class Level(IntEnum):
    HIGH = 3


def test_normalise_values() -> None:
    assert normalise(True) == 1 and normalise(False) == 0
    assert normalise(Level.HIGH) == 3 and type(normalise(Level.HIGH)) is int
    assert normalise(Colour.RED) == "red" and type(normalise(Colour.RED)) is str
    assert normalise(None) is None
    assert normalise(2**63 - 1) == 2**63 - 1
    # durable JSON-encodes values (datetime, Decimal fail), chokes on 1e-07-style floats and
    # orders text above numbers: only int and str pass.
    for bad, why in [(1e-07, "float"), (3.0, "float"), (2**63, "64-bit"), (-(2**63) - 1, "64"),
                     (Decimal("50.00"), "Decimal"), (datetime(2026, 1, 1, tzinfo=UTC), "datetime"),
                     (date(2026, 3, 2), "date"), ([1], "list"), ({"a": 1}, "dict")]:
        with pytest.raises(MessageError, match=why):
            normalise(bad)


def test_normalise_message_drops_none_and_limits_fields() -> None:
    assert normalise_message({"kind": "x", "gone": None, "n": True}) == {"kind": "x", "n": 1}
    with pytest.raises(MessageError, match="reserved"):
        normalise_message({"kind": "x", "sid": "1"})
    with pytest.raises(MessageError, match="identifier"):
        normalise_message({"a.b": 1})
    with pytest.raises(MessageError, match=r"field 'n'.*float"):
        normalise_message({"n": 0.5})
    with pytest.raises(MessageError, match=f"at most {MAX_FIELDS}"):
        normalise_message({f"f{i}": i for i in range(MAX_FIELDS + 1)})


@needs_durable
def test_widest_allowed_message_is_accepted_by_the_engine() -> None:
    # durable accepts 254 properties and fails at 255 (error 302); the adapter adds id and sid.
    spec = RulesetSpec(kinds=("x",), rules=(Rule("r", (Match("m", "x"),)),))
    message: dict[str, Any] = {"kind": "x"} | {f"f{i}": i for i in range(MAX_FIELDS - 1)}
    with DurableRuleset("wide", spec) as ruleset:
        ruleset.assert_fact(message)
        assert ruleset.drain()[0]["matched"]["m"] == message


@needs_durable
def test_text_and_number_never_meet(rs: DurableRuleset) -> None:
    # durable_rules compares '7' with 7 without a word; the adapter keeps one type per field.
    rs.assert_fact({"kind": "clock_in", "employee": "7"})
    with pytest.raises(MessageError, match="one type"):
        rs.assert_fact({"kind": "clock_in", "employee": 7})
    with pytest.raises(MessageError, match="one type"):  # c0 is int by the rule's literal
        rs.assert_facts([{"kind": "clock_in", "c0": 2}, {"kind": "clock_in", "c0": "1"}])
    assert rs.pending_count() == 1  # the batch sent nothing


# --------------------------------------------------------------------------------------------
# Isolation, teardown, threads


@needs_durable
def test_rulesets_with_the_same_logical_name_are_isolated() -> None:
    with DurableRuleset("same", clock_spec()) as one, DurableRuleset("same", clock_spec()) as two:
        assert one.name != two.name
        one.assert_fact({"kind": "call", "v0": "phone"})
        assert fired(two) == [] and fired(one) == ["phone"]
        assert two.pending_count() == 0 and one.pending_count() == 1
    lang = sys.modules.get("durable.lang")
    assert lang is None or not any(name.startswith("same-") for name in lang._rulesets)


@needs_durable
def test_close_is_idempotent_and_final(rs: DurableRuleset) -> None:
    fact = rs.assert_fact({"kind": "clock_in"})
    rs.close()
    rs.close()
    assert rs.closed
    for call in (lambda: rs.assert_fact({"kind": "clock_in"}), rs.pending_count,
                 lambda: rs.retract_fact(fact), lambda: rs.assert_facts([]),
                 lambda: rs.retract_facts([fact])):
        with pytest.raises(RulesetClosedError):
            call()


_QUIET_SCRIPT = """
from policykit.engine._durable_adapter import DurableRuleset, Match, Rule, RulesetSpec
spec = RulesetSpec(kinds=("x", "y"), rules=(Rule("r", (Match("m", "x"),)),))
for scenario in range(4):
    for _ in range(3):
        rs = DurableRuleset("quiet", spec)
        if scenario == 1:
            rs.assert_fact({"kind": "y"})  # the first message on the sid matches nothing
        elif scenario == 2:
            rs.assert_facts([{"kind": "y", "n": 1}, {"kind": "y", "n": 2}])
        elif scenario == 3:
            rs.pending_count()
        rs.close()
print("ok")
"""


def _run_quiet(prelude: str = "") -> subprocess.CompletedProcess[str]:
    root = Path(policykit.__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-c", prelude + _QUIET_SCRIPT], cwd=root,
                          capture_output=True, text=True, timeout=60)


@needs_durable
def test_closing_a_session_where_no_rule_ever_fired_does_not_crash() -> None:
    # durable's delete_state SIGSEGVs on a sid where no action ever ran (a first fact that
    # matches nothing): the adapter opens its sid with an action first. A subprocess, so a
    # regression fails this test instead of killing the run.
    done = _run_quiet()
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert done.stdout.strip() == "ok"


@needs_durable
def test_without_the_opening_action_delete_state_does_crash() -> None:
    # The trap is real: skip the adapter's opening message and the same script dies.
    prelude = textwrap.dedent("""
        from policykit.engine import _durable_adapter as da
        def _open(self):
            self._core.opened = True
        da.DurableRuleset._open = _open
    """)
    # A use-after-free: it crashed in every run here but once, in a loaded parallel run, so
    # a crash in any of three runs shows the trap (three clean runs fail the test).
    runs = []
    for _ in range(3):
        done = _run_quiet(prelude)
        runs.append(done.returncode)
        if done.returncode != 0 and done.stdout.strip() != "ok":
            return
    raise AssertionError(f"three runs without the opening action all ended cleanly: {runs}")


@needs_durable
def test_create_assert_close_1000_times_no_threads_no_memory_growth() -> None:
    spec = clock_spec()

    def cycle(i: int) -> None:
        with DurableRuleset("cycle", spec) as ruleset:
            ruleset.assert_fact({"kind": "clock_in", "c0": 1, "employee": f"k{i}"})
            ruleset.assert_fact({"kind": "call", "v0": "email"})
            assert len(ruleset.drain()) == 2

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
    assert grown < 30 * 1024, f"RSS grew {grown} KiB over 1,000 create/assert/close cycles"


@needs_durable
def test_abandoned_ruleset_is_reaped() -> None:
    da.reap_abandoned()
    ruleset = DurableRuleset("lost", clock_spec())
    ruleset.assert_fact({"kind": "clock_in"})
    core = ruleset._core
    del ruleset
    gc.collect()
    assert da.reap_abandoned() == 1
    assert core.closed and not core.opened


@needs_durable
def test_eight_threads_asserting_concurrently_lose_no_firing(rs: DurableRuleset) -> None:
    per_thread, workers = 300, 8
    barrier = threading.Barrier(workers + 1)
    errors: list[BaseException] = []
    drained: list[da.Firing] = []
    asserting = threading.Event()
    asserting.set()
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads as often as possible

    def work(worker: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                fact = rs.assert_fact({"kind": "clock_in", "c0": i % 3, "employee": f"w{worker}"})
                rs.retract_fact(fact)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def drainer() -> None:  # drains while the others assert
        barrier.wait()
        while asserting.is_set():
            drained.extend(rs.drain())

    pool = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
    reader = threading.Thread(target=drainer)
    try:
        for thread in [*pool, reader]:
            thread.start()
        for thread in pool:
            thread.join()
    finally:
        asserting.clear()
        reader.join()
        sys.setswitchinterval(interval)
    assert errors == []
    firings = drained + rs.drain()
    late = [f["matched"]["e"]["employee"] for f in firings if f["rule"] == "late"]
    assert len(late) == workers * (per_thread // 3)
    assert sum(f["rule"] == "any_clock_in" for f in firings) == workers * per_thread
    assert rs.pending_count() == 0


# --------------------------------------------------------------------------------------------
# Failures become clear errors


def test_actions_never_raise() -> None:
    sink = da._Sink()
    action = da._make_action(sink, "r", "a")

    class Broken:
        @property
        def _m(self) -> Any:
            raise KeyError("boom")

    action(Broken())  # must not raise into durable_rules
    assert sink.firings == [] and "KeyError" in sink.errors[0]


@needs_durable
def test_action_failure_surfaces_on_drain(rs: DurableRuleset) -> None:
    rs.assert_fact({"kind": "call", "v0": "phone"})
    rs._core.sink.errors.append("rule 'phone': KeyError: 'e'")
    with pytest.raises(DurableActionError, match="KeyError") as caught:
        rs.drain()
    assert [f["rule"] for f in caught.value.firings] == ["phone"]
    assert rs.drain() == []


@needs_durable
def test_memory_error_is_translated(rs: DurableRuleset, monkeypatch: pytest.MonkeyPatch) -> None:
    def out_of_sessions(*args: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(rs._core.host, "post", out_of_sessions)  # opening the sid
    with pytest.raises(DurableCapacityError, match="1,024 live session ids"):
        rs.assert_fact({"kind": "clock_in"})


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
        DurableRuleset("x", clock_spec())
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
