"""Tests of the testing toolkit itself: strategies, streams, deliveries, the event factory,
scenario files with coverage, and the pytest plugin."""

from __future__ import annotations

import textwrap
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from importlib import metadata
from pathlib import Path
from typing import Literal

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ConfigDict, Field

from policykit import Engine, EventBase, PolicyFileError, event_types, standard_pack
from policykit.calendar import DEFAULT_CALENDAR
from policykit.errors import ParameterError
from policykit.models.events import EVENT_TYPES
from policykit.models.parsing import parse_event
from policykit.testing import (
    BERLIN,
    EventFactory,
    Stream,
    attendance_months,
    boundary_days,
    complaint_lives,
    event_streams,
    events,
    guard_rotas,
    in_offsets,
    incident_lives,
    instants,
    pack_streams,
    project_lives,
    reordered,
    request_lives,
    run_path,
    run_text,
    with_duplicates,
)
from policykit.testing import strategies as strategies_module
from policykit.testing._model import field_shapes

pytest_plugins = ["pytester"]

FAST = settings(max_examples=25, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SCENARIOS = Path(__file__).parent / "scenarios"


# --------------------------------------------------------------------------- single events


@pytest.mark.parametrize("type_", sorted(EVENT_TYPES))
@settings(max_examples=8, deadline=None, database=None)
@given(data=st.data())
def test_every_event_type_has_a_strategy_that_validates(type_: str, data: st.DataObject) -> None:
    event = data.draw(events(type_))
    assert isinstance(event, EVENT_TYPES[type_])
    assert event.type == type_
    assert event.at.utcoffset() is not None
    # The wire form validates back into the same event.
    assert parse_event(event.model_dump(mode="json", exclude_none=True)) == event


@pytest.mark.slow
def test_strategies_follow_a_newly_added_event_type(monkeypatch: pytest.MonkeyPatch) -> None:
    class Inspected(EventBase):
        type: Literal["lift.inspected"] = "lift.inspected"
        lift_id: str
        floors: list[Literal["B1", "G", "1", "2"]]
        passed: bool
        score: int
        due: date | None = None

    monkeypatch.setitem(EVENT_TYPES, "lift.inspected", Inspected)
    strategies_module._type_names.cache_clear()
    try:
        ev = find(events("lift.inspected"), lambda e: bool(e.floors) and e.due is not None)
    finally:
        strategies_module._type_names.cache_clear()
    assert isinstance(ev, Inspected)
    assert ev.lift_id in ("L1", "L2", "L3")  # an id pool named after the field


def test_a_field_type_nobody_knows_is_named() -> None:
    class Odd(EventBase):
        type: Literal["odd.thing"]  # no default: the name is still the event type's
        tags: complex

    with pytest.raises(TypeError, match=r"odd\.thing\.tags"):
        field_shapes(Odd)


def test_sets_tuples_and_list_defaults_of_a_registered_model_are_generated() -> None:
    class Tagged(EventBase):
        type: Literal["odd.tagged"]
        tags: frozenset[str]
        codes: list[int] = []  # noqa: RUF012 - a default that is not hashable
        pair: tuple[int, ...] = ()

    with event_types(Tagged):
        for strategy in (events("odd.tagged"), st.from_type(Tagged)):
            drawn = find(strategy, lambda e: len(e.tags) > 1)
            reparsed: EventBase = parse_event(drawn.model_dump_json())
            assert isinstance(drawn, Tagged) and reparsed == drawn


def test_an_unknown_event_type_names_the_nearest_one() -> None:
    with pytest.raises(ParameterError, match=r"did you mean 'contact\.received'"):
        find(events("contact.recieved"), lambda _: True)


@FAST
@given(st.lists(events(("request.resolved", "contact.received")), min_size=20, max_size=20))
def test_ids_come_from_small_pools_so_events_join(evs: list[EventBase]) -> None:
    requests = Counter(getattr(e, "request_id") for e in evs)  # noqa: B009
    assert set(requests) <= {"R1", "R2", "R3"}


# --------------------------------------------------------------------------- time


def test_boundary_days_hold_the_days_rules_break_on() -> None:
    days = set(boundary_days())
    for d in (date(2024, 1, 31), date(2024, 2, 29), date(2025, 2, 28), date(2026, 3, 31),
              date(2025, 12, 31), date(2026, 10, 1), date(2026, 2, 14), date(2026, 9, 30)):
        assert d in days, d
    berlin = set(boundary_days(BERLIN))
    assert {date(2026, 3, 29), date(2026, 10, 25), date(2024, 3, 31)} <= berlin


def test_instants_reach_the_start_of_working_hours_and_its_neighbours() -> None:
    for wall in (time(8, 30), time(8, 29, 59), time(8, 30, 1), time(23, 59, 59, 999999)):
        def at_wall(t: datetime, w: time = wall) -> bool:
            return t.timetz().replace(tzinfo=None) == w

        day = date(2026, 3, 2)
        assert find(instants(start=day, end=day), at_wall).tzinfo is not None


def test_instants_reach_both_sides_of_a_dst_change() -> None:
    # Europe/Berlin, 2026-10-25: 02:00-03:00 happens twice (+02:00, then +01:00).
    def on_fall_back(t: datetime, offset: int) -> bool:
        return t.date() == date(2026, 10, 25) and t.hour == 2 and \
            t.utcoffset() == timedelta(hours=offset)

    day = date(2026, 10, 25)
    assert find(instants(BERLIN, start=day, end=day), lambda t: on_fall_back(t, 2))
    assert find(instants(BERLIN, start=day, end=day), lambda t: on_fall_back(t, 1))


@FAST
@given(instants(start=date(2025, 1, 1), end=date(2025, 3, 31)))
def test_instants_stay_in_range_and_zone(t: datetime) -> None:
    local = DEFAULT_CALENDAR.local(t)
    assert date(2025, 1, 1) <= local.date() <= date(2025, 3, 31)
    assert t.utcoffset() == timedelta(hours=8)


# --------------------------------------------------------------------------- streams


def _well_formed(s: Stream) -> None:
    ids = [e.id for e in s.events]
    assert len(ids) == len(set(ids)), "ids repeat"
    assert list(s.events) == s.sorted(), "events out of time order"
    if s.events:
        assert s.until is not None and s.until >= s.events[-1].at


@FAST
@given(request_lives())
def test_request_lives_are_coherent(s: Stream) -> None:
    _well_formed(s)
    owner: dict[str, str] = {}
    for e in s.events:
        if e.type == "contact.received":
            owner.setdefault(e.request_id, e.employee_id)  # type: ignore[attr-defined]
            if e.repeat_of:  # type: ignore[attr-defined]
                assert e.repeat_of in owner  # type: ignore[attr-defined]
        elif e.type.startswith("request."):
            rid = e.request_id  # type: ignore[attr-defined]
            assert rid in owner, f"{e.type} before any contact about {rid}"
            if e.type == "request.handed_over":
                assert e.from_employee == owner[rid]  # type: ignore[attr-defined]
                owner[rid] = e.to_employee  # type: ignore[attr-defined]


@FAST
@given(guard_rotas(posts=2))
def test_guard_rotas_are_coherent(s: Stream) -> None:
    _well_formed(s)
    on_post: dict[str, set[str]] = {}
    for e in s.events:
        if e.type == "shift.started":
            on_post.setdefault(e.post_id, set()).add(e.guard_id)  # type: ignore[attr-defined]
    if len(on_post) == 2:
        assert not on_post["P1"] & on_post["P2"], "a guard on two posts at once"
    for e in s.events:
        post = getattr(e, "post_id", None)
        if e.type == "shift.handover_recorded":
            guards = on_post[post]  # type: ignore[index]
            assert e.from_guard in guards and e.to_guard in guards  # type: ignore[attr-defined]
            assert e.from_guard != e.to_guard  # type: ignore[attr-defined]
        elif e.type in ("shift.ended", "shift.turnout_checked", "shift.equipment_checked"):
            assert e.guard_id in on_post[post]  # type: ignore[attr-defined, index]


@FAST
@given(project_lives())
def test_project_lives_call_back_after_delivery(s: Stream) -> None:
    _well_formed(s)
    delivered: dict[str, datetime] = {}
    for e in s.events:
        if e.type == "project.delivered":
            delivered[e.project_id] = e.at  # type: ignore[attr-defined]
        elif e.type == "callback.made" and e.project_id:  # type: ignore[attr-defined]
            assert e.at >= delivered[e.project_id]  # type: ignore[attr-defined]


@FAST
@given(attendance_months())
def test_attendance_months_stay_in_one_month(s: Stream) -> None:
    _well_formed(s)
    months = {DEFAULT_CALENDAR.local_date(e.at).strftime("%Y-%m") for e in s.events
              if e.type.startswith("attendance.clock")}
    assert len(months) <= 1
    for e in s.events:
        if e.type == "attendance.clock_in":
            day = DEFAULT_CALENDAR.local_date(e.at)
            # Clock-ins happen on working days, and now and then on a day off.
            assert e.at <= s.until  # type: ignore[operator]
            assert DEFAULT_CALENDAR.is_working_day(day) or e.at.time() == time(9, 15)


@FAST
@given(incident_lives())
def test_incident_lives_follow_detection(s: Stream) -> None:
    _well_formed(s)
    seen: dict[str, datetime] = {}
    resolved: dict[str, datetime] = {}
    for e in s.events:
        iid = getattr(e, "incident_id", None)
        if e.type == "incident.detected":
            seen[iid] = e.at  # type: ignore[index]
        elif iid is not None:
            assert iid in seen and e.at >= seen[iid]
            if e.type == "incident.resolved":
                resolved[iid] = e.at
            if e.type == "incident.report_filed":
                assert iid in resolved


@FAST
@given(complaint_lives())
def test_complaint_lives_follow_reception(s: Stream) -> None:
    _well_formed(s)
    received = set()
    for e in s.events:
        if e.type == "complaint.received":
            received.add(e.complaint_id)  # type: ignore[attr-defined]
        elif e.type.startswith("complaint."):
            assert e.complaint_id in received  # type: ignore[attr-defined]


@pytest.mark.slow
@FAST
@given(pack_streams())
def test_pack_streams_are_well_formed_and_run(s: Stream) -> None:
    _well_formed(s)
    Engine(standard_pack()).evaluate(s.events, until=s.until)


@FAST
@given(event_streams(min_size=5, max_size=5))
def test_event_streams_have_unique_ids(s: Stream) -> None:
    _well_formed(s)
    assert len(s) == 5


# --------------------------------------------------------------------------- deliveries


@FAST
@given(st.data())
def test_duplicates_are_exact_copies_after_the_original(data: st.DataObject) -> None:
    s = data.draw(request_lives())
    doubled = data.draw(with_duplicates(s))
    assert {e.id for e in doubled} == {e.id for e in s}
    first: dict[str, int] = {}
    for i, e in enumerate(doubled.events):
        if e.id in first:
            assert e == doubled.events[first[e.id]]
        else:
            first[e.id] = i
    assert len(first) == len(s)


def test_with_duplicates_does_deliver_copies() -> None:
    f = EventFactory()
    s = Stream(tuple(f.make("attendance.clock_in") for _ in range(4)))
    found = find(with_duplicates(s), lambda d: len(d) >= len(s) + 2)
    assert {e.id for e in found.events} == set(s.ids)


@FAST
@given(st.data())
def test_reordered_keeps_the_same_events(data: st.DataObject) -> None:
    s = data.draw(guard_rotas())
    shuffled = data.draw(reordered(list(s.events)))
    assert sorted(e.id for e in shuffled) == sorted(s.ids)


@FAST
@given(st.data())
def test_in_offsets_rewrites_offsets_not_instants(data: st.DataObject) -> None:
    s = data.draw(event_streams(("reply.promised", "remote.authorized"), min_size=3))
    moved = data.draw(in_offsets(s))
    for a, b in zip(s.events, moved.events, strict=True):
        for name in ("at", "promised_by", "valid_from", "valid_until"):
            x, y = getattr(a, name, None), getattr(b, name, None)
            assert (x is None) == (y is None)
            if x is not None:
                assert x.astimezone(UTC) == y.astimezone(UTC)  # type: ignore[union-attr]
    assert s.until == moved.until


def test_in_offsets_uses_several_offsets() -> None:
    s = Stream(tuple(EventFactory().make("attendance.clock_in") for _ in range(6)))
    found = find(in_offsets(s), lambda m: len({e.at.utcoffset() for e in m.events}) >= 3)
    assert len(found.events) == 6


# --------------------------------------------------------------------------- factory


def test_factory_fills_every_required_field() -> None:
    f = EventFactory()
    for type_ in EVENT_TYPES:
        assert f.make(type_).type == type_
    assert len(f.log) == len(EVENT_TYPES)
    assert len({e.id for e in f.log}) == len(f.log)


def test_factory_fills_a_registered_model_s_nested_required_fields() -> None:
    class Where(BaseModel):
        model_config = ConfigDict(frozen=True, extra="forbid")
        building: str
        floor: int = Field(ge=1)
        note: str | None = None

    class Alarm(EventBase):
        type: Literal["bms.alarm"]
        alarm_id: str
        where: Where

    with event_types(Alarm):
        event = EventFactory().make("bms.alarm")
    assert isinstance(event, Alarm) and event.where.floor == 1 and event.where.note is None


def test_factory_moves_time_forward() -> None:
    f = EventFactory(start="2026-03-02 08:30", step=timedelta(minutes=5))
    a = f.clock_in("E1")
    b = f.clock_out("E1")
    c = f.make("attendance.clock_in", at="PT1H", employee_id="E2")
    d = f.make("attendance.clock_in", at="2026-03-03T08:30:00+00:00")
    assert a.at == datetime(2026, 3, 2, 8, 30, tzinfo=f.tz)
    assert b.at - a.at == timedelta(minutes=5)
    assert c.at - b.at == timedelta(hours=1)
    assert d.at.utcoffset() == timedelta(0)
    wire_at = datetime.fromisoformat(f.wire("attendance.clock_out")["at"])
    assert wire_at == datetime(2026, 3, 3, 8, 35, tzinfo=UTC)


def test_factory_defaults_are_sensible_and_overridable() -> None:
    f = EventFactory(defaults={"employee_id": "E7"})
    contact = f.make("contact.received")
    assert (contact.request_id, contact.employee_id, contact.in_remit) == ("R1", "E7", True)  # type: ignore[attr-defined]
    profile = f.profile("E2", salary="3333.33")
    assert profile.base_salary == Decimal("3333.33")  # type: ignore[attr-defined]
    leave = f.make("attendance.leave", at="2026-03-04 09:00")
    assert leave.start == leave.end == date(2026, 3, 4)  # type: ignore[attr-defined]


def test_factory_errors_name_the_nearest_type_and_field() -> None:
    f = EventFactory()
    with pytest.raises(ParameterError, match=r"did you mean 'attendance\.clock_in'"):
        f.make("attendance.clockin")
    with pytest.raises(ParameterError, match="did you mean 'employee_id'"):
        f.make("attendance.clock_in", employe_id="E1")


def test_factory_local_times_follow_dst() -> None:
    f = EventFactory(tz="Europe/Berlin")
    gap = f.time("2026-03-29 02:30")  # does not exist: moves forward like the calendar
    assert gap.hour == 3 and gap.utcoffset() == timedelta(hours=2)
    assert f.stream(until="2026-03-30 00:00").until == datetime(2026, 3, 30, tzinfo=f.tz)


# --------------------------------------------------------------------------- scenarios


def test_bundled_scenarios_pass_with_full_lateness_coverage() -> None:
    results = run_path(SCENARIOS)
    assert results.ok, results.render()
    lateness = [r for r in results.coverage.rules if r.policy == "lateness-deduction"]
    assert lateness and all(r.fired for r in lateness)
    assert "passed, 0 failed" in results.render()


WRONG = """\
policy: lateness-deduction
scenarios:
  - name: expects the wrong figure
    given:
      - {type: employee.profile, at: 2026-03-01 00:00, employee_id: E1,
         role: customer_service, base_salary: "6000.00"}
      - {type: attendance.clock_in, at: 2026-03-02 08:30:01, employee_id: E1}
    until: 2026-03-02 23:59:59
    expect:
      - {rule: R1, kind: violation, subject: employee/E1}
      - {rule: R2, kind: deduction, amount: "50.00"}
"""


def test_a_wrong_expectation_fails_with_a_readable_diff() -> None:
    results = run_text(WRONG, source="wrong.yaml")
    assert not results.ok
    text = results.render()
    assert "FAIL  expects the wrong figure  (wrong.yaml:3)" in text
    assert "expected, not decided:" in text
    assert "- R2 deduction amount 50.00   [line 11]" in text
    assert "amount: expected 50.00, got 60.00" in text
    assert "decided, not expected:" in text
    assert "+ lateness-deduction R2 deduction employee/E1 (running) amount 60.00 CNY" in text


def test_coverage_lists_the_rules_no_scenario_reached() -> None:
    results = run_text(WRONG.replace('"50.00"', '"60.00"'), source="one.yaml")
    assert results.ok, results.render()
    unreached = {r.rule for r in results.coverage.unreached}
    assert unreached == {"R3", "R4", "R5", "R6"}
    text = results.coverage.render()
    assert "rule coverage: 2 of 6 rules fired (33%)" in text
    assert "never reached:" in text and "✗ lateness-deduction  R4" in text


def test_allow_allow_other_and_forbidden_counts() -> None:
    base = WRONG.replace("    expect:\n      - {rule: R1, kind: violation, subject: employee/E1}\n"
                         "      - {rule: R2, kind: deduction, amount: \"50.00\"}\n", "")
    allowed = base + "    expect: [{rule: R1}]\n    allow: [{status: provisional}]\n"
    assert run_text(allowed).ok
    other = base + "    expect: [{rule: R1}]\n    allow_other: true\n"
    assert run_text(other).ok
    forbidden = base + "    expect: [{rule: R1}, {rule: R2, count: 0}]\n    allow_other: true\n"
    result = run_text(forbidden)
    assert not result.ok
    assert "forbidden (count: 0)" in result.render()
    counted = base + "    expect: [{rule: R1, count: 2}]\n    allow_other: true\n"
    assert "(expected 2, got 1)" in run_text(counted).render()


def test_matching_prefers_an_assignment_that_satisfies_every_expectation() -> None:
    # The broad matcher comes first; a greedy match would take the R1 decision from it.
    text = WRONG.replace('      - {rule: R1, kind: violation, subject: employee/E1}\n'
                         '      - {rule: R2, kind: deduction, amount: "50.00"}\n',
                         '      - {subject: employee/E1}\n      - {rule: R1}\n')
    assert run_text(text).ok


@pytest.mark.parametrize(("snippet", "message"), [
    ("    expect: [{rule: R9}]\n", r"one\.yaml:9: scenarios\[0\]\.expect\[0\]\.rule: got 'R9'"),
    ("    expct: []\n", r"did you mean 'expect'"),
    ("    expect: [{kind: violaton}]\n", r"did you mean 'violation'"),
    ("    expect: [{subject: [1, 2]}]\n", r"expect\[0\]\.subject"),
    ("    parameters: {tier_mod: all}\n    expect: []\n", r"did you mean 'tier_mode'"),
])
def test_errors_in_a_scenario_file_name_file_path_and_line(snippet: str, message: str) -> None:
    head = WRONG.split("    expect:")[0]
    with pytest.raises(PolicyFileError, match=message):
        run_text(head + snippet, source="one.yaml")


def test_an_event_error_points_at_the_event_field() -> None:
    text = WRONG.replace("employee_id: E1}\n    until", "employe_id: E1}\n    until")
    with pytest.raises(PolicyFileError,
                       match=r"given\[1\]\.employe_id.*did you mean 'employee_id'"):
        run_text(text, source="s.yaml")


def test_scenarios_may_name_a_policy_file_and_override_parameters(tmp_path: Path) -> None:
    (tmp_path / "company.yaml").write_text(textwrap.dedent("""\
        policies:
          - use: lateness-deduction
            parameters: {base_rate: "0.02"}
        """), encoding="utf-8")
    (tmp_path / "notes.yaml").write_text("just: data\n", encoding="utf-8")  # not a scenario
    scenario = WRONG.replace("policy: lateness-deduction", "policy: company.yaml")
    (tmp_path / "company-scenarios.yaml").write_text(
        scenario.replace('amount: "50.00"', 'amount: "120.00"'), encoding="utf-8")
    results = run_path(tmp_path)
    assert results.ok, results.render()
    assert results.files == [str(tmp_path / "company-scenarios.yaml")]
    # Parameters in the scenario file apply on top of the policy file's.
    tuned = scenario.replace("scenarios:", "parameters: {base_rate: \"0.03\"}\nscenarios:")
    (tmp_path / "company-scenarios.yaml").write_text(
        tuned.replace('amount: "50.00"', 'amount: "180.00"'), encoding="utf-8")
    assert run_path(tmp_path).ok


def test_run_path_policy_argument_is_the_default_policy_set() -> None:
    text = WRONG.replace("policy: lateness-deduction\n", "").replace('"50.00"', '"60.00"')
    results = run_text(text, policy="lateness-deduction")
    assert results.ok, results.render()
    assert {r.policy for r in results.coverage.rules} == {"lateness-deduction"}


def test_run_path_refuses_a_folder_without_scenarios(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="scenario files"):
        run_path(tmp_path)


# --------------------------------------------------------------------------- plugin


def _plugin_args() -> list[str]:
    installed = any(ep.value == "policykit.testing.plugin"
                    for ep in metadata.entry_points(group="pytest11"))
    return [] if installed else ["-p", "policykit.testing.plugin"]


def test_plugin_fixtures_work_in_a_users_test_suite(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=textwrap.dedent("""\
        from datetime import date
        from hypothesis import given, settings
        from policykit.testing import attendance_months

        def test_engine_for_a_pack_policy(policykit_engine, event_factory):
            engine = policykit_engine("lateness-deduction", tier_mode="marginal")
            event_factory.profile("E1", salary="6000.00", at="2026-03-01 00:00")
            event_factory.clock_in("E1", at="2026-03-02 08:31")
            decisions = engine.evaluate(event_factory.log,
                                        until=event_factory.time("2026-03-02 23:00"))
            assert sorted(d.rule for d in decisions) == ["R1", "R2"]

        def test_engine_for_a_policy_file(policykit_engine, event_factory):
            engine = policykit_engine("mine.yaml")
            assert engine.policies.ids == ["lateness-deduction"]

        def test_calendar(business_calendar):
            assert business_calendar.is_working_day(date(2026, 2, 28))  # make-up Saturday
            assert not business_calendar.is_working_day(date(2026, 10, 1))

        @settings(max_examples=5, deadline=None)
        @given(attendance_months(employees=1))
        def test_property_with_the_fixture(policykit_engine, stream):
            engine = policykit_engine("lateness-deduction")
            for d in engine.evaluate(stream.events, until=stream.until):
                assert d.amount is None or d.amount >= 0
        """))
    pytester.makefile(".yaml", mine="policies:\n  - use: lateness-deduction\n")
    result = pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=4)


DOCS_EXAMPLES = Path(__file__).parent.parent / "docs" / "examples"


def test_the_docs_property_example_runs(pytester: pytest.Pytester) -> None:
    for name in ("test_callback_sla.py", "callback-sla.yaml"):
        pytester.path.joinpath(name).write_text(
            (DOCS_EXAMPLES / name).read_text(encoding="utf-8"), encoding="utf-8")
    result = pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=1)


def test_the_docs_scenario_example_passes_with_full_coverage() -> None:
    # The file, not the folder: the folder also holds the elevator plugin's scenarios
    # (docs/examples/elevator/), which need that plugin installed.
    results = run_path(DOCS_EXAMPLES / "callback-sla-scenarios.yaml")
    assert results.ok, results.render()
    assert not results.coverage.unreached


def test_two_different_events_under_one_id_are_refused() -> None:
    text = WRONG.replace("{type: attendance.clock_in,", "{id: e1, type: attendance.clock_in,")
    with pytest.raises(PolicyFileError, match=r"given\[1\]\.id: got 'e1'"):
        run_text(text, source="s.yaml")


def test_override_replaces_a_policy_file_the_scenario_names(tmp_path: Path) -> None:
    pack = (Path(__file__).parent.parent / "policykit" / "pack"
            / "lateness-deduction.yaml").read_text(encoding="utf-8")
    (tmp_path / "old.yaml").write_text(pack.replace("  grace: PT0M\n", "  grace: PT5M\n"),
                                       encoding="utf-8")
    (tmp_path / "new.yaml").write_text(pack, encoding="utf-8")
    scenario = tmp_path / "late.yaml"
    scenario.write_text(WRONG.replace("policy: lateness-deduction", "policy: old.yaml")
                        .replace('"50.00"', '"60.00"'), encoding="utf-8")
    assert not run_path(scenario).ok  # the named file has a grace: no late day
    results = run_path(scenario, override=tmp_path / "new.yaml")
    assert results.ok, results.render()
    assert [p.id for p in results.results[0].policies] == ["lateness-deduction"]


def test_plugin_collects_scenario_files_one_item_per_scenario(pytester: pytest.Pytester) -> None:
    two = WRONG + WRONG.split("scenarios:\n")[1].replace("expects the wrong figure",
                                                          "expects the right figure").replace(
        '"50.00"', '"60.00"')
    pytester.makefile(".yaml", test_late=two)
    pytester.makefile(".yaml", other="policies: []\n")  # not a test_ file: not collected
    pytester.makefile(".yml", test_data="just: data\n")  # no scenarios: not collected
    result = pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "-W", "ignore::DeprecationWarning", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*test_late.yaml::expects the wrong figure FAILED*",
        "*test_late.yaml::expects the right figure PASSED*",
    ])
    out = result.stdout.str()
    assert "FAIL  expects the wrong figure  (test_late.yaml:3)" in out
    assert "amount: expected 50.00, got 60.00" in out
    assert "Traceback" not in out


def test_plugin_reports_a_malformed_scenario_file_with_its_line(
        pytester: pytest.Pytester) -> None:
    pytester.makefile(".yaml", test_bad=WRONG.replace("kind: violation", "kind: violatoin"))
    result = pytester.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider",
                                          "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_bad.yaml:10*violatoin*"])


@pytest.mark.slow
def test_hypothesis_builds_valid_events_from_the_models_through_its_plugin_hook() -> None:
    """The ``hypothesis`` entry point: in a fresh interpreter that imports only hypothesis
    and the models, ``st.from_type`` gives events the wire format accepts — in either
    import order (policykit first must not trip over its own half-built module)."""
    import subprocess
    import sys

    script = (
        "import hypothesis.strategies as st\n"
        "from policykit.models.events import EVENT_TYPES\n"
        "from policykit.models.parsing import parse_event\n"
        "for name in ('attendance.clock_in', 'staff.complaint', 'contact.received'):\n"
        "    ev = st.from_type(EVENT_TYPES[name]).example()\n"
        "    assert parse_event(ev.model_dump(mode='json')).type == name\n"
        "print('ok')\n")
    for first in ("", "import policykit.testing\n"):
        done = subprocess.run([sys.executable, "-c", first + script], capture_output=True,
                              text=True, check=False, timeout=120)
        assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
