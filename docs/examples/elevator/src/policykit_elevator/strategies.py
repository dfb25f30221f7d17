"""Hypothesis strategies for the elevator company's events.

``st.from_type(ElevatorFault)`` and ``policykit.testing.events("elevator.fault")`` work as
soon as the event types are registered (policykit derives a strategy from every registered
model). This module adds what the derivation cannot know:

- the company's id pools (elevators ``EL-101``..., sites, technicians), so generated events
  of one elevator join up and read like the sample log; :func:`register_pools` registers them when
  hypothesis is imported (the package's ``hypothesis`` entry point imports this module);
- :func:`fault_lives`: coherent streams, a fault followed by a technician's arrival and a
  repair just before, exactly at or just after their deadlines, late, or never.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from hypothesis import strategies as st

if TYPE_CHECKING:
    from policykit import EventBase
    from policykit.testing import Stream

__all__ = ["DEADLINES", "ELEVATORS", "SITES", "TECHNICIANS", "fault_lives", "register_pools"]

#: Elevator id -> the site it stands in.
ELEVATORS = {"EL-101": "S-NORTH", "EL-102": "S-NORTH", "EL-201": "S-HARBOUR"}
SITES = tuple(sorted(set(ELEVATORS.values())))
TECHNICIANS = ("T-07", "T-12")
#: The pack's default deadlines, the instants where its rules break.
DEADLINES = ("PT1H", "PT4H", "PT24H")
_TYPES = ("elevator.fault", "elevator.technician_arrived", "elevator.repaired")


def register_pools() -> None:
    """Draw the company's ids (elevators, sites, faults, technicians) for its event types.
    Importing this module does it (the package's hypothesis hook imports it)."""
    from policykit.testing.strategies import register_field

    for type_ in _TYPES:
        register_field("elevator_id", st.sampled_from(tuple(ELEVATORS)), event_type=type_)
        register_field("fault_id", st.sampled_from(("F-1", "F-2", "F-3")), event_type=type_)
    register_field("site_id", st.sampled_from(SITES), event_type="elevator.fault")
    for type_ in _TYPES[1:]:
        register_field("technician_id", st.sampled_from(TECHNICIANS), event_type=type_)


@st.composite
def fault_lives(draw: st.DrawFn, *, max_faults: int = 3, start: date = date(2026, 1, 1),
                end: date = date(2026, 11, 30)) -> Stream:
    """Faults of the pool's elevators, one after another, each maybe followed by a
    technician's arrival and a repair on or around the pack's deadlines. A
    :class:`policykit.testing.Stream` whose ``until`` is a day after the last event."""
    from policykit.testing import Stream, delays, instants

    from .events import ElevatorFault, ElevatorRepaired, TechnicianArrived

    out: list[EventBase] = []

    def add(model: type[EventBase], **fields: Any) -> None:
        out.append(model.model_validate({"id": f"fl{len(out) + 1:03d}", **fields}))

    t = draw(instants(start=start, end=end))
    for i in range(draw(st.integers(1, max_faults))):
        if i:
            t = t + draw(delays("PT1H", "P1D", at_most=timedelta(days=10)))
        elevator = draw(st.sampled_from(sorted(ELEVATORS)))
        fault_id = f"F-{i + 1}"
        add(ElevatorFault, type="elevator.fault", at=t, elevator_id=elevator,
            site_id=ELEVATORS[elevator], fault_id=fault_id,
            severity=draw(st.sampled_from(("minor", "major", "entrapment"))),
            reported_by=draw(st.sampled_from(("sensor", "resident", "building_manager",
                                              "technician"))))
        technician = draw(st.sampled_from(TECHNICIANS))
        arrived = None
        if draw(st.integers(0, 9)) >= 2:  # most faults get a technician
            arrived = t + draw(delays(*DEADLINES, at_most=timedelta(hours=30)))
            add(TechnicianArrived, type="elevator.technician_arrived", at=arrived,
                elevator_id=elevator, fault_id=fault_id, technician_id=technician)
        if arrived is not None and draw(st.booleans()):
            repaired = arrived + draw(delays("PT1H", at_most=timedelta(hours=30)))
            add(ElevatorRepaired, type="elevator.repaired", at=repaired,
                elevator_id=elevator, fault_id=fault_id, technician_id=technician)
    events = sorted(out, key=lambda e: (e.at, e.id))
    return Stream(tuple(events), until=events[-1].at + timedelta(days=1))


register_pools()

