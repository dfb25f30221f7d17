"""Properties of the elevator pack, over streams drawn by the plugin's own strategies."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st
from policykit_elevator import ElevatorFault, ElevatorRepaired, elevator_pack
from policykit_elevator.strategies import ELEVATORS, fault_lives

import policykit
from policykit import Engine
from policykit.testing import events

DUE = {"entrapment": timedelta(hours=1), "major": timedelta(hours=4),
       "minor": timedelta(hours=4)}
FAST = settings(max_examples=25, deadline=None)


@FAST
@given(fault=st.from_type(ElevatorFault), repaired=st.from_type(ElevatorRepaired))
def test_from_type_draws_valid_events_of_the_company(fault, repaired):
    assert fault.type == "elevator.fault" and repaired.type == "elevator.repaired"
    assert fault.elevator_id in ELEVATORS  # the plugin's id pools, through its hook
    assert policykit.parse_event(fault.model_dump_json()) == fault
    assert policykit.parse_event(repaired.model_dump_json()) == repaired


@FAST
@given(event=events(["elevator.fault", "elevator.technician_arrived", "elevator.repaired"]))
def test_the_toolkit_draws_every_elevator_type(event):
    assert type(event) is policykit.EVENT_TYPES[event.type]
    assert event.elevator_id in ELEVATORS


@FAST
@given(stream=fault_lives())
def test_every_decision_is_about_an_elevator_of_the_log(stream):
    elevators = {e.elevator_id for e in stream}
    ids = {e.id for e in stream}
    for d in Engine(elevator_pack()).evaluate(stream.events, until=stream.until):
        assert d.subject.kind == "item"
        assert d.subject.id in elevators
        assert set(d.evidence) <= ids


@FAST
@given(stream=fault_lives())
def test_a_technician_by_the_deadline_is_never_a_violation(stream):
    arrived = {e.fault_id: e.at for e in stream if e.type == "elevator.technician_arrived"}
    faults = {e.id: e for e in stream if e.type == "elevator.fault"}
    late = {d.details["key"]: d for d in Engine(elevator_pack()).evaluate(
        stream.events, until=stream.until)
        if d.policy == "elevator-response" and d.rule == "R1"}
    for fault in faults.values():
        due = fault.at + DUE[fault.severity]
        in_time = fault.fault_id in arrived and arrived[fault.fault_id] <= due
        assert (fault.fault_id in late) is (not in_time and due <= stream.until)
        if fault.fault_id in late:
            assert late[fault.fault_id].at == due  # not a second early or late


@FAST
@given(stream=fault_lives(max_faults=4))
def test_every_fine_follows_a_late_arrival_of_the_same_elevator(stream):
    decisions = Engine(elevator_pack()).evaluate(stream.events, until=stream.until)
    late = {d.id: d for d in decisions if d.policy == "elevator-response" and d.rule == "R1"}
    fines = [d for d in decisions if d.kind == "fine"]
    assert len(fines) == len(late)
    for fine in fines:
        missed = late[fine.details["item"]]
        assert (fine.subject, fine.at) == (missed.subject, missed.at)
        assert str(fine.amount) in ("500.00", "1000.00")
