"""The application's own event types: an elevator-maintenance company registers its events
and audits them with its own policy, on both backends, as it would the built-in ones."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import Field

import policykit
from policykit import (
    EVENT_TYPES,
    Engine,
    EventBase,
    EventError,
    PolicyFileError,
    RegistrationError,
    audit,
    event_types,
    loads_policy,
    parse_event,
    parse_events,
    register_event_types,
    registered_event_types,
    unregister_event_types,
)
from policykit.engine._durable_adapter import durable_available
from policykit.models import parsing
from policykit.testing import events as event_strategy

BACKENDS = ["native", "durable"] if durable_available()[0] else ["native"]


class ElevatorFault(EventBase):
    type: Literal["elevator.fault"]
    elevator_id: Annotated[str, Field(min_length=1, max_length=64)]
    fault_id: Annotated[str, Field(min_length=1, max_length=64)]
    severity: Literal["minor", "major", "entrapment"] = "minor"


class TechnicianArrived(EventBase):
    type: Literal["elevator.technician_arrived"]
    elevator_id: Annotated[str, Field(min_length=1, max_length=64)]
    fault_id: Annotated[str, Field(min_length=1, max_length=64)]
    technician_id: Annotated[str, Field(min_length=1, max_length=64)]


class ElevatorRepaired(EventBase):
    type: Literal["elevator.repaired"]
    elevator_id: Annotated[str, Field(min_length=1, max_length=64)]
    fault_id: Annotated[str, Field(min_length=1, max_length=64)]
    cost: Annotated[Decimal, Field(ge=0, decimal_places=2)] | None = None


ELEVATOR = (ElevatorFault, TechnicianArrived, ElevatorRepaired)

POLICY = """
id: elevator-response
title: A technician arrives within two hours of a fault
clause: maintenance contract §3
parameters:
  within: PT2H
rules:
  - shape: deadline
    id: R1
    title: technician on site
    trigger: {type: elevator.fault, where: {severity: {in: [major, entrapment]}}}
    key: fault_id
    within: $within
    fulfil:
      - {type: elevator.technician_arrived}
      - {type: elevator.repaired}
    subject: {kind: item, field: elevator_id}
"""

UNTIL = "2026-03-03T00:00:00+08:00"


def _log() -> list[dict[str, object]]:
    def ev(i: str, t: str, at: str, **fields: object) -> dict[str, object]:
        return {"id": i, "type": f"elevator.{t}", "at": f"2026-03-02T{at}:00+08:00", **fields}

    return [
        # F1: on time (1h30)
        ev("f1", "fault", "08:00", elevator_id="E1", fault_id="F1", severity="major"),
        ev("t1", "technician_arrived", "09:30", elevator_id="E1", fault_id="F1",
           technician_id="T9"),
        # F2: 2h30 late
        ev("f2", "fault", "08:00", elevator_id="E2", fault_id="F2", severity="entrapment"),
        ev("t2", "technician_arrived", "10:30", elevator_id="E2", fault_id="F2",
           technician_id="T9"),
        ev("r2", "repaired", "11:00", elevator_id="E2", fault_id="F2", cost="120.50"),
        # F3: exactly at the deadline (not late)
        ev("f3", "fault", "12:00", elevator_id="E3", fault_id="F3", severity="major"),
        ev("t3", "technician_arrived", "14:00", elevator_id="E3", fault_id="F3",
           technician_id="T4"),
        # F4: never answered
        ev("f4", "fault", "15:00", elevator_id="E1", fault_id="F4", severity="major"),
        # F5: minor: out of the rule's scope
        ev("f5", "fault", "16:00", elevator_id="E4", fault_id="F5"),
    ]


@pytest.fixture
def elevator() -> Iterator[None]:
    with event_types(*ELEVATOR):
        yield


def _signature(decisions: list[policykit.Decision]) -> list[tuple[object, ...]]:
    return [(d.kind, d.policy, d.rule, d.subject.kind, d.subject.id, d.at, d.evidence)
            for d in decisions]


# ------------------------------------------------------------------------ the worked example


@pytest.mark.usefixtures("elevator")
def test_the_elevator_policy_decides_the_same_on_both_backends() -> None:
    policy = loads_policy(POLICY)
    results = {b: Engine(policy, backend=b).evaluate(_log(), until=UNTIL) for b in BACKENDS}
    native = results["native"]
    assert [(d.kind, d.subject.id, d.evidence) for d in native] == [
        ("violation", "E2", ("f2",)), ("violation", "E1", ("f4",))]
    assert native[0].at.isoformat() == "2026-03-02T10:00:00+08:00"
    for decisions in results.values():
        assert _signature(decisions) == _signature(native)
        assert [d.to_json_dict() for d in decisions] == [d.to_json_dict() for d in native]


@pytest.mark.usefixtures("elevator")
def test_audit_of_registered_events_on_both_backends() -> None:
    policy = loads_policy(POLICY)
    reports = {b: audit(_log(), policy, UNTIL, backend=b) for b in BACKENDS}
    for report in reports.values():
        assert report.counts.quarantined == 0
        assert report.counts.valid == len(_log())
        assert _signature(report.decisions) == _signature(
            Engine(policy).evaluate(_log(), until=UNTIL))
        assert isinstance(report.events["r2"], ElevatorRepaired)
        assert report.events["r2"].cost == Decimal("120.50")


@pytest.mark.usefixtures("elevator")
def test_registered_events_parse_from_json_text_and_dicts() -> None:
    text = ('{"id":"f1","type":"elevator.fault","at":"2026-03-02T08:00:00+08:00",'
            '"elevator_id":"E1","fault_id":"F1","severity":"major"}')
    fault: EventBase = parse_event(text)
    assert type(fault) is ElevatorFault and fault.severity == "major"
    assert parse_events([text, _log()[1]])[1].technician_id == "T9"  # type: ignore[union-attr]
    # The fields are validated like a built-in type's, named without the union branch.
    with pytest.raises(EventError) as err:
        parse_event({**_log()[0], "severity": "catastrophic"})
    assert err.value.problems[0][0] == "severity"
    with pytest.raises(EventError, match="did you mean 'fault_id'"):
        parse_event({**_log()[0], "fault_ids": "F1"})
    # Built-in types still parse alongside.
    assert parse_event({"id": "c", "type": "attendance.clock_in",
                        "at": "2026-03-02T08:00:00+08:00", "employee_id": "e1"}).type == \
        "attendance.clock_in"


@pytest.mark.usefixtures("elevator")
def test_an_unknown_type_is_quarantined_with_the_nearest_registered_name() -> None:
    records = [*_log(), {"id": "x", "type": "elevator.repiared",
                         "at": "2026-03-02T09:00:00+08:00", "elevator_id": "E1",
                         "fault_id": "F1"}]
    report = audit(records, loads_policy(POLICY), UNTIL)
    assert report.counts.quarantined == 1
    assert report.counts.valid == len(_log())  # the good records around it are kept
    (bad,) = report.quarantine
    assert bad.event_id == "x"
    assert "did you mean 'elevator.repaired'" in bad.error


def test_without_registration_the_types_are_unknown() -> None:
    with pytest.raises(EventError, match="a known event type"):
        parse_event(_log()[0])
    with pytest.raises(PolicyFileError, match=r"unknown event type 'elevator\.fault'"):
        loads_policy(POLICY)


# ------------------------------------------------------------------- validation at load time


@pytest.mark.usefixtures("elevator")
@pytest.mark.parametrize(("wrong", "right", "typo", "field"), [
    ("key: fault_id", "key: faultid", "faultid", "fault_id"),
    ("{severity: {in", "{severty: {in", "severty", "severity"),
    ("field: elevator_id}", "field: elevatorid}", "elevatorid", "elevator_id"),
])
def test_a_typo_in_the_policy_is_refused_at_load_naming_the_field(
        wrong: str, right: str, typo: str, field: str) -> None:
    assert wrong in POLICY
    with pytest.raises(PolicyFileError) as err:
        loads_policy(POLICY.replace(wrong, right))
    assert f"has no field {typo!r} (did you mean {field!r}?)" in str(err.value)


# ------------------------------------------------------------------------ registration rules


def test_registration_is_idempotent_and_reverts() -> None:
    before = dict(EVENT_TYPES)
    with event_types(*ELEVATOR):
        register_event_types(ElevatorFault)  # the identical class again: nothing changes
        elevator: dict[str, type[EventBase]] = {
            "elevator.fault": ElevatorFault, "elevator.technician_arrived": TechnicianArrived,
            "elevator.repaired": ElevatorRepaired}
        assert registered_event_types() == elevator
        assert EVENT_TYPES["elevator.fault"] is ElevatorFault
        assert parsing._ADAPTER is not parsing._BUILTIN_ADAPTER
    assert before == EVENT_TYPES
    assert list(EVENT_TYPES) == list(before)
    assert registered_event_types() == {}
    assert parsing._ADAPTER is parsing._BUILTIN_ADAPTER  # built-in parsing as before


def test_unregister_by_name_or_model() -> None:
    register_event_types(*ELEVATOR)
    try:
        unregister_event_types("elevator.fault", TechnicianArrived)
        assert list(registered_event_types()) == ["elevator.repaired"]
        with pytest.raises(RegistrationError, match="not a registered event type") as err:
            unregister_event_types("elevator.repaird")
        assert err.value.suggestion == "elevator.repaired"
        assert str(err.value).startswith("unregister_event_types: elevator.repaird: ")
        with pytest.raises(RegistrationError, match="built-in"):
            unregister_event_types("attendance.clock_in")
    finally:
        unregister_event_types()
    assert registered_event_types() == {}


def test_a_model_with_the_same_fields_replaces_a_registered_one() -> None:
    class ElevatorFaultReloaded(EventBase):  # the same module imported again
        type: Literal["elevator.fault"]
        elevator_id: Annotated[str, Field(min_length=1, max_length=64)]
        fault_id: Annotated[str, Field(min_length=1, max_length=64)]
        severity: Literal["minor", "major", "entrapment"] = "minor"

    with event_types(ElevatorFault):
        register_event_types(ElevatorFaultReloaded)
        assert EVENT_TYPES["elevator.fault"] is ElevatorFaultReloaded


class _NotEvent:
    type = "elevator.fault"


def _model(name: str, **fields: object) -> type[EventBase]:
    from pydantic import create_model
    return create_model(name, __base__=EventBase, **fields)  # type: ignore[call-overload,no-any-return]


@pytest.mark.parametrize(("bad", "message"), [
    (_NotEvent, "expected a subclass of policykit.EventBase"),
    (ElevatorFault(id="f", type="elevator.fault", at="2026-03-02T08:00:00+08:00",
                   elevator_id="E", fault_id="F"), "expected a subclass"),
    (EventBase, "the envelope itself"),
    (_model("Loose", elevator_id=(str, ...)), "Literal of one string"),
    (_model("Two", type=(Literal["a.b", "a.c"], ...)), "Literal of one string"),
    (_model("Number", type=(Literal[5], ...)), "Literal of one string"),
    (_model("Spaced", type=(Literal["elevator fault"], ...)), "without spaces"),
    (_model("Clock", type=(Literal["attendance.clock_in"], ...)), "is a built-in type"),
    (_model("Shadow", type=(Literal["elevator.shadow"], ...), at=(str, ...)),
     "field 'at' redefines"),
])
def test_bad_registrations_are_refused_clearly(bad: object, message: str) -> None:
    before = dict(EVENT_TYPES)
    with pytest.raises(RegistrationError, match=message) as err:
        register_event_types(ElevatorRepaired, bad)  # type: ignore[arg-type]
    assert before == EVENT_TYPES  # a refused batch adds none of its classes
    assert str(err.value).startswith("register_event_types: ")
    assert pickle.loads(pickle.dumps(err.value)).args == err.value.args


def test_a_clash_with_another_registered_type_is_refused() -> None:
    class OtherFault(EventBase):
        type: Literal["elevator.fault"]
        lift: str

    with event_types(*ELEVATOR):
        with pytest.raises(RegistrationError, match=r"already registered by .*ElevatorFault"):
            register_event_types(OtherFault)
        assert EVENT_TYPES["elevator.fault"] is ElevatorFault
    with pytest.raises(RegistrationError, match="given twice"):
        register_event_types(ElevatorFault, OtherFault)
    assert registered_event_types() == {}


def test_a_model_with_undefined_annotations_is_refused() -> None:
    class Dangling(EventBase):
        type: Literal["elevator.dangling"]
        part: Part  # type: ignore[name-defined]  # noqa: F821 - never defined

    with pytest.raises(RegistrationError, match="not fully defined"):
        register_event_types(Dangling)


def test_a_model_that_loosens_the_envelope_config_is_refused() -> None:
    from pydantic import ConfigDict

    class Loose(EventBase):
        model_config = ConfigDict(extra="allow")
        type: Literal["elevator.loose"]

    with pytest.raises(RegistrationError, match="extra='forbid'"):
        register_event_types(Loose)


# ------------------------------------------------------------------------------- snapshots


@pytest.mark.usefixtures("elevator")
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_that_saw_registered_events_round_trips(backend: str) -> None:
    engine = Engine(loads_policy(POLICY), backend=backend)
    log = sorted(_log(), key=lambda e: str(e["at"]))  # a session takes them in time order
    whole = engine.session()
    expected = [d for ev in log for d in whole.feed(ev)] + whole.advance_to(UNTIL)

    first = engine.session()
    got = [d for ev in log[:3] for d in first.feed(ev)]
    restored = engine.restore(first.snapshot())
    got += [d for ev in log[3:] for d in restored.feed(ev)] + restored.advance_to(UNTIL)
    assert _signature(got) == _signature(expected)
    assert [d.kind for d in got].count("violation") == 2


def test_a_snapshot_with_an_unregistered_type_is_refused() -> None:
    with event_types(*ELEVATOR):
        engine = Engine(loads_policy(POLICY))
        session = engine.session()
        session.feed(_log()[0])
        blob = session.snapshot()
    with pytest.raises(policykit.SnapshotError):
        Engine(policykit.standard_pack()).restore(blob)


# ------------------------------------------------------------------------- testing toolkit


@pytest.mark.usefixtures("elevator")
def test_strategies_generate_registered_events() -> None:
    seen: list[EventBase] = []

    @settings(max_examples=30, deadline=None, database=None)
    @given(fault=event_strategy("elevator.fault"), repaired=st.from_type(ElevatorRepaired))
    def check(fault: EventBase, repaired: EventBase) -> None:
        assert isinstance(fault, ElevatorFault)
        assert isinstance(repaired, ElevatorRepaired)
        reparsed: EventBase = parse_event(fault.model_dump_json())
        assert reparsed == fault  # generated events are valid
        seen.append(fault)

    check()
    assert {e.severity for e in seen} > {"minor"}  # type: ignore[attr-defined]


def test_the_strategy_refuses_a_type_no_longer_registered() -> None:
    @settings(max_examples=1, deadline=None, database=None)
    @given(event=event_strategy("elevator.fault"))
    def draw(event: EventBase) -> None:
        assert isinstance(event, ElevatorFault)

    with event_types(*ELEVATOR):
        draw()
    with pytest.raises(ValueError, match=r"got 'elevator\.fault', expected a built-in or "
                       "registered event type"):
        draw()


# ------------------------------------------------------------------------------------ docs


def test_the_documented_example_runs() -> None:
    """docs/custom-events.md: the worked example, run as written (it unregisters its types)."""
    text = (Path(__file__).parent.parent / "docs" / "custom-events.md").read_text("utf-8")
    code = text.split("```python\n")[1].split("```")[0]
    try:
        exec(compile(code, "docs/custom-events.md", "exec", dont_inherit=True),
             {"__name__": "custom_events"})
    finally:
        unregister_event_types()
    assert registered_event_types() == {}


def test_a_csv_of_registered_events_reads_their_booleans_integers_and_lists(
        tmp_path: Path) -> None:
    from pydantic import Strict

    class DoorChecked(EventBase):
        type: Literal["elevator.door_checked"]
        elevator_id: str
        ok: Annotated[bool, Strict()]
        cycles: Annotated[int, Strict()]
        parts: list[str] | None = None

    csv = tmp_path / "doors.csv"
    csv.write_text("id,type,at,elevator_id,ok,cycles,parts\n"
                   'd1,elevator.door_checked,2026-03-02T08:00:00+08:00,E1,true,12,"[""a""]"\n'
                   "d2,elevator.door_checked,2026-03-02T09:00:00+08:00,E1,false,13,\n",
                   encoding="utf-8")
    with event_types(DoorChecked):
        report = audit(csv, policykit.PolicySet([]), "2026-03-03T00:00:00+08:00")
    assert report.counts.quarantined == 0, report.quarantine
    d1 = report.events["d1"]
    assert isinstance(d1, DoorChecked)
    assert (d1.ok, d1.cycles, d1.parts) == (True, 12, ["a"])
    assert report.events["d2"].ok is False  # type: ignore[attr-defined]


class _EntryPoint:
    """What importlib.metadata gives for one entry point, as far as the loader reads it."""

    def __init__(self, name: str, value: object) -> None:
        self.name, self.value, self._value = name, f"plugin:{name}", value

    def load(self) -> object:
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


def test_installed_packages_register_event_types_through_entry_points(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``policykit.events`` group: a model, a list, or a function returning them; a
    broken plugin is skipped with a warning naming it, never stopping the others."""
    from policykit.models import registry

    found = {
        "policykit.events": [
            _EntryPoint("one", ElevatorFault),
            _EntryPoint("many", lambda: [TechnicianArrived]),
            _EntryPoint("broken", ImportError("no module named 'elevator_plugin'")),
            _EntryPoint("not-models", lambda: ["elevator.repaired"]),
        ]}
    monkeypatch.setattr(registry, "_entry_points", lambda group: found.get(group, []))
    with pytest.warns(RuntimeWarning) as caught:
        added = registry.load_event_plugins()
    assert added == ["elevator.fault", "elevator.technician_arrived"]
    assert {"elevator.fault", "elevator.technician_arrived"} <= set(registered_event_types())
    said = [str(w.message) for w in caught]
    assert len(said) == 2 and "'broken'" in said[0] and "'not-models'" in said[1]
    unregister_event_types()
