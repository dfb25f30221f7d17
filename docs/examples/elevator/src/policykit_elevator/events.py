"""The elevator company's events: a fault is reported, a technician arrives, it is repaired.

Each model subclasses ``policykit.EventBase`` (the envelope every event shares: ``id``,
``at``, ``actor``, ``meta``) and names its type in a ``type: Literal[...]`` field. The
package's entry point ``policykit.events`` (pyproject.toml) registers :data:`EVENT_TYPES`
when ``policykit`` is imported.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from policykit import EventBase

__all__ = ["EVENT_TYPES", "ElevatorFault", "ElevatorRepaired", "Severity",
           "TechnicianArrived"]


def _printable(value: str) -> str:
    # An id is a key the engine joins events on: no control characters, no padding.
    if not value.isprintable() or value != value.strip():
        raise ValueError("an id of printable characters without surrounding spaces")
    return value


def _no_float(value: Any) -> Any:
    # Money arrives as a decimal string (or an integer): a float has already lost cents.
    if isinstance(value, float | bool):
        raise ValueError("money must be a decimal string such as '180.00', not a "
                         + type(value).__name__)
    return value


Id = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_printable)]
Money = Annotated[Decimal, BeforeValidator(_no_float), Field(ge=0, decimal_places=2)]
Severity = Literal["minor", "major", "entrapment"]


class ElevatorFault(EventBase):
    """A fault reported on an elevator: by its own sensors, a resident, the building
    manager or a technician. ``entrapment`` means someone is stuck in the car."""

    type: Literal["elevator.fault"]
    elevator_id: Id
    site_id: Id
    fault_id: Id
    severity: Severity = "minor"
    reported_by: Literal["sensor", "resident", "building_manager", "technician"] = "sensor"
    description: Annotated[str, Field(max_length=500)] | None = None


class TechnicianArrived(EventBase):
    """A technician arrived at the elevator to deal with a fault."""

    type: Literal["elevator.technician_arrived"]
    elevator_id: Id
    fault_id: Id
    technician_id: Id


class ElevatorRepaired(EventBase):
    """The fault is repaired and the elevator back in service."""

    type: Literal["elevator.repaired"]
    elevator_id: Id
    fault_id: Id
    technician_id: Id
    parts_cost: Money | None = None


#: What the ``policykit.events`` entry point registers.
EVENT_TYPES = (ElevatorFault, TechnicianArrived, ElevatorRepaired)
