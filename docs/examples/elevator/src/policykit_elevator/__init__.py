"""policykit-elevator: an elevator-maintenance company's events, policies and test
strategies, as a policykit plugin (a worked example: docs/examples/elevator.md).

Installed, it registers through entry points (pyproject.toml):

- ``policykit.events``: the event types ``elevator.fault``, ``elevator.technician_arrived``
  and ``elevator.repaired`` (:mod:`policykit_elevator.events`);
- ``policykit.packs``: the pack ``elevator`` (``pack: elevator`` in a policy file);
- ``hypothesis``: id pools and a fault-life strategy (:mod:`policykit_elevator.strategies`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from policykit import Policy, PolicySet, loads_policy, register_event_types

from .events import EVENT_TYPES, ElevatorFault, ElevatorRepaired, TechnicianArrived

__all__ = ["EVENT_TYPES", "ElevatorFault", "ElevatorRepaired", "TechnicianArrived",
           "elevator_pack"]

#: Policy ids in the order the pack lists them.
PACK_ORDER = ("elevator-response", "elevator-repair", "elevator-repeat-faults")


@lru_cache(maxsize=1)
def elevator_pack() -> PolicySet:
    """The pack ``elevator``: every policy of ``pack/*.yaml`` with its defaults."""
    # The policies are checked against the event types' fields when loaded: make sure they
    # are registered even where the entry points are not installed (a source checkout).
    register_event_types(*EVENT_TYPES)
    found: dict[str, Policy] = {}
    for entry in (resources.files(__package__) / "pack").iterdir():
        if entry.name.endswith(".yaml"):
            # loads_policy: a bad file is an error naming it, the path inside it and the line.
            source = f"policykit_elevator/pack/{entry.name}"
            for policy in loads_policy(entry.read_text(encoding="utf-8"), source=source):
                found[policy.id] = policy
    return PolicySet([found.pop(i) for i in PACK_ORDER if i in found] + list(found.values()))
