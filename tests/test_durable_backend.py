"""The durable-rules backend: every standard rule compiles to safe Rete rules, decisions
equal the native evaluator's (ids included) at the edges that would expose durable_rules'
known traps, sessions are isolated and leak nothing, and a missing durable_rules is a clear
error while policykit itself keeps working."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable
from typing import Any

import pytest
from helpers import ev, profile, t

from policykit import Decision, Engine, standard_pack
from policykit.engine import _durable_adapter as da
from policykit.errors import BackendUnavailableError

AVAILABLE, WHY = da.durable_available()
needs_durable = pytest.mark.skipif(not AVAILABLE, reason=f"durable_rules unavailable: {WHY}")
MARCH_END = t("2026-04-01 00:00")


def both(events: Iterable[dict[str, Any]], policy: str | None = None, until: Any = None,
         **params: Any) -> list[Decision]:
    """The decisions on both backends, asserted identical (ids, messages, everything)."""
    chosen: Any = standard_pack() if policy is None else standard_pack().get(policy)
    if params:
        chosen = chosen.with_parameters(**params)
    events = list(events)
    native = Engine(chosen).evaluate(events, until=until)
    durable = Engine(chosen, backend="durable").evaluate(events, until=until)
    assert [d.model_dump() for d in durable] == [d.model_dump() for d in native]
    return durable


def outcomes(out: list[Decision], rule: str) -> list[tuple[str, str]]:
    return [(d.subject.id, d.details["outcome"]) for d in out if d.rule == rule]


# ------------------------------------------------------------------------- compilation

@needs_durable
def test_every_rule_of_the_standard_pack_compiles_to_equality_only_rete_rules() -> None:
    from policykit.engine._durable import compile_pack

    pack = standard_pack()
    compiled = compile_pack(pack)
    assert compiled.spec is not None
    reached: dict[tuple[int, int], set[str]] = {}
    for rule in compiled.spec.rules:
        (cond,) = rule.conditions
        assert isinstance(cond, da.Match)  # one positive condition: no join, no none()
        for test in cond.tests:
            assert isinstance(test, da.FieldEq) and test.op == "=="
            assert test.value == 1 or test.field.startswith("v")
        for pair in compiled.targets[rule.name]:
            reached.setdefault(pair, set()).add(cond.kind)
    for pi, policy in enumerate(pack):
        for ri, spec in enumerate(policy.specs):
            # Every event type a rule reads reaches it through some Rete rule.
            assert reached.get((pi, ri), set()) == set(spec.event_types()), (policy.id, spec.id)
    # The comparisons of the pack are Python-decided flags; its equalities stay in Rete.
    fields = {test.field for r in compiled.spec.rules for c in r.conditions for test in c.tests}
    assert any(f.startswith("c") for f in fields) and any(f.startswith("v") for f in fields)
    # Population events (a profile that stops matching ends a membership) are never gated.
    lateness = [p.id for p in pack].index("lateness-deduction")
    r4 = [s.id for s in pack.get("lateness-deduction").specs].index("R4")
    assert (lateness, r4, "employee.profile") not in compiled.gated


@needs_durable
def test_a_live_ruleset_holds_nothing_between_events() -> None:
    engine = Engine(standard_pack(), backend="durable")
    with engine.session() as session:
        session.feed(ev("contact.received", "2026-03-02 09:00", id="c1", request_id="Q1",
                        customer_id="C1", employee_id="E1", channel="phone",
                        topic="leak", in_remit=True, finish_at_once=False, major=True))
        ruleset = session._ev._ruleset  # type: ignore[attr-defined]
        assert ruleset.pending_count() == 0
    assert ruleset.closed


# ------------------------------------------------- edges: false comparisons and absences

@needs_durable
@pytest.mark.parametrize(("at", "late"), [("08:30:00", False), ("08:30:01", True),
                                          ("08:45", True), ("08:00", False)])
def test_clock_in_at_and_after_the_start(at: str, late: bool) -> None:
    out = both([profile("E1", at="2026-03-01 00:00"),
                ev("attendance.clock_in", f"2026-03-02 {at}", employee_id="E1")],
               "lateness-deduction", until=MARCH_END)
    assert (("E1", "late") in outcomes(out, "R1")) is late


@needs_durable
@pytest.mark.parametrize(("seconds", "fined"), [(180, False), (181, True), (5, False)])
def test_a_false_comparison_is_a_flag_not_a_crash(seconds: int, fined: bool) -> None:
    # staff-penalties R2: private calls over 180 s (a 'gt' decided in Python, sent as 0/1).
    out = both([profile("E1", at="2026-03-01 00:00"),
                ev("staff.private_call", "2026-03-03 10:00", employee_id="E1",
                   duration_s=seconds)], "staff-penalties", until=MARCH_END)
    assert bool([d for d in out if d.rule == "R2"]) is fined


@needs_durable
@pytest.mark.parametrize("notified", [False, True])
def test_a_deadline_with_and_without_its_fulfilment(notified: bool) -> None:
    events = [ev("incident.detected", "2026-03-02 10:00", id="i1", incident_id="I1",
                 severity="major", employee_id="E1")]
    if notified:
        events.append(ev("incident.notified", "2026-03-02 10:05", id="n1", incident_id="I1",
                         employee_id="E1", recipients=["sales_owner", "manager", "departments"]))
    out = both(events, "incident-escalation", until=t("2026-03-03 00:00"))
    assert (("E1", "missed") in outcomes(out, "R1")) is not notified


@needs_durable
def test_minor_incidents_match_no_major_rule() -> None:
    # An equality test that fails inside Rete ('severity' is not 'major').
    out = both([ev("incident.detected", "2026-03-02 10:00", id="i1", incident_id="I1",
                   severity="minor", employee_id="E1")], "incident-escalation",
               until=t("2026-03-03 00:00"))
    assert not [d for d in out if d.rule in ("R1", "R2", "R3", "R4")]


@needs_durable
def test_the_durable_session_applies_events_with_the_native_apply() -> None:
    """The backends share one apply: the durable session only fills the routing hook, so a
    change to applying an event (directory, consumer queue) cannot reach one backend only.
    The hook narrows a type's rules to those Rete matched, in the native order."""
    from policykit.engine._durable import _DurableSession
    from policykit.engine._native import _NativeSession

    assert _DurableSession.apply is _NativeSession.apply
    pack = standard_pack().select("incident-escalation")
    session: Any = _DurableSession(pack)
    try:
        minor = session._reached(
            ev_model("incident.detected", severity="minor"),
            session._targets["incident.detected"])
        major = session._reached(
            ev_model("incident.detected", severity="major"),
            session._targets["incident.detected"])
        every = session._targets["incident.detected"]
        assert len(minor) < len(major) <= len(every)
        assert [every.index(x) for x in major] == sorted(every.index(x) for x in major)
    finally:
        session.close()


def ev_model(kind: str, **fields: Any) -> Any:
    from policykit.models.parsing import parse_event

    return parse_event(ev(kind, "2026-03-02 10:00", id="i1", incident_id="I1",
                          employee_id="E1", **fields))


@needs_durable
def test_a_profile_that_stops_matching_ends_the_membership() -> None:
    # lateness R4 counts non-guards: becoming a guard must reach the rule although the
    # profile fails its 'not_in' filter.
    events = [profile("E1", at="2026-03-01 00:00"),
              profile("E1", role="guard", at="2026-03-01 12:00") | {"id": "p-E1b"},
              ev("attendance.clock_in", "2026-03-03 08:45", employee_id="E1")]
    both(events, "lateness-deduction", until=MARCH_END)


@needs_durable
def test_the_bundled_example_gives_identical_decisions() -> None:
    from importlib.resources import files

    text = (files("policykit.examples") / "acme-2026-03.jsonl").read_text()
    native = Engine().evaluate(text)
    durable = Engine(backend="durable").evaluate(text)
    assert native and [d.model_dump() for d in durable] == [d.model_dump() for d in native]


@pytest.mark.slow
@needs_durable
def test_ten_thousand_employees_audit_correctly() -> None:
    events: list[dict[str, Any]] = []
    for i in range(10_000):
        who = f"E{i:05d}"
        events.append(profile(who, at="2026-03-01 00:00"))
        events.append(ev("attendance.clock_in", f"2026-03-02 08:{30 + i % 3}",
                         id=f"c{i}", employee_id=who))
    out = both(events, "lateness-deduction", until=t("2026-03-03 00:00"))
    late = {d.subject.id for d in out if d.rule == "R1" and d.details["outcome"] == "late"}
    assert len(late) == sum(1 for i in range(10_000) if i % 3)


@needs_durable
def test_streaming_and_snapshots_on_durable() -> None:
    pol = standard_pack().get("lateness-deduction")
    events = [profile("E1", at="2026-03-01 00:00")] + [
        ev("attendance.clock_in", f"2026-03-0{d} 08:45", employee_id="E1") for d in (2, 3, 4)]
    expected = Engine(pol).evaluate(events, until=MARCH_END)
    engine = Engine(pol, backend="durable")
    with engine.session() as first:
        out = first.feed_many(events[:2])
        blob = first.snapshot()
    with engine.restore(blob) as second:
        out += second.feed_many(events[2:]) + second.advance_to(MARCH_END)
    assert sorted(d.id for d in out) == sorted(d.id for d in expected)


# ---------------------------------------------------------------- isolation and leaks

@needs_durable
def test_two_engines_in_one_process_share_nothing() -> None:
    pol = standard_pack().get("lateness-deduction")
    a, b = Engine(pol, backend="durable").session(), Engine(pol, backend="durable").session()
    try:
        a.feed(profile("E1", at="2026-03-01 00:00"))
        b.feed(profile("E2", at="2026-03-01 00:00"))
        got_a = a.feed(ev("attendance.clock_in", "2026-03-02 08:45", employee_id="E1"))
        got_b = b.feed(ev("attendance.clock_in", "2026-03-02 08:45", employee_id="E1"))
        got_a += a.advance_to(MARCH_END)
        got_b += b.advance_to(MARCH_END)
    finally:
        a.close()
        b.close()
    # b never saw E1's profile: no salary, so no money; a did.
    money_a = [d for d in got_a if d.amount is not None]
    money_b = [d for d in got_b if d.amount is not None]
    assert money_a and not money_b


def _rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.slow
@needs_durable
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_thousand_sessions_leak_no_threads_and_memory_stays_flat() -> None:
    engine = Engine(standard_pack().get("lateness-deduction"), backend="durable")
    events = [profile("E1", at="2026-03-01 00:00"),
              ev("attendance.clock_in", "2026-03-02 08:45", employee_id="E1")]

    def cycle() -> None:
        with engine.session() as s:
            s.feed_many(events)

    for _ in range(100):  # warm up caches and allocator pools
        cycle()
    gc.collect()
    threads, rss = threading.active_count(), _rss_kib()
    for _ in range(1000):
        cycle()
    gc.collect()
    assert threading.active_count() == threads
    # Without teardown each ruleset keeps ~200-300 KiB in the C engine (>200 MiB here).
    assert _rss_kib() - rss < 20 * 1024


# ------------------------------------------------------------ durable_rules unavailable

def test_unavailable_durable_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(da, "_durable", None)
    monkeypatch.setattr(da, "_durable_error", da._unavailable_message(
        ImportError("undefined symbol: PyEval_CallObject")))
    with pytest.raises(BackendUnavailableError, match="backend='native'") as info:
        Engine(standard_pack().get("lateness-deduction"), backend="durable")
    assert "PyEval_CallObject" in str(info.value)
    # The native backend is untouched.
    assert Engine(standard_pack().get("lateness-deduction")).evaluate([]) == []


def test_policykit_imports_and_runs_where_durable_rules_cannot_load() -> None:
    code = textwrap.dedent("""
        import sys, importlib.abc
        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split('.')[0] in ('durable', 'durable_rules_engine'):
                    raise ImportError('undefined symbol: PyEval_CallObject')
        sys.meta_path.insert(0, Block())
        import policykit
        from policykit import Engine, standard_pack
        from policykit.errors import BackendUnavailableError
        assert Engine(standard_pack()).evaluate([]) == []
        try:
            Engine(standard_pack(), backend='durable')
        except BackendUnavailableError as exc:
            print('UNAVAILABLE', exc)
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "UNAVAILABLE durable_rules cannot be imported" in done.stdout
    assert "PyEval_CallObject" in done.stdout and "backend='native'" in done.stdout
