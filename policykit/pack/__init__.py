"""The standard pack: every policy of the rulebook with its defaults, shipped as YAML data
next to this module in ``policykit/pack/`` (the same format users write, so the pack proves
the format). Outside ``policykit.rules``: the shapes know nothing of policies."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import yaml

from ..errors import PolicyFileError
from ..policy import Policy, PolicySet

__all__ = ["PACK_ORDER", "standard_pack"]

#: Policy ids in catalogue order (the policy reference, docs/policies/).
PACK_ORDER = (
    "first-responder", "callback-frequency", "lateness-deduction", "staff-penalties",
    "shift-handover", "incident-escalation", "complaint-handling", "reporting-duties",
    "annual-customer-care", "holiday-coverage", "site-access", "service-delivery",
)


@lru_cache(maxsize=1)
def _load() -> PolicySet:
    pack = resources.files("policykit.pack")
    found: dict[str, Policy] = {}
    for entry in sorted(pack.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yaml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8"))
        try:
            policy = Policy.model_validate(data, context={"source": f"policykit/pack/{entry.name}"})
        except PolicyFileError as exc:
            raise PolicyFileError(f"policykit/pack/{entry.name}", exc.path, exc.value,
                                  exc.expected, suggestion=exc.suggestion) from None
        found[policy.id] = policy
    ordered = [found.pop(i) for i in PACK_ORDER if i in found]
    return PolicySet([*ordered, *found.values()])


def standard_pack() -> PolicySet:
    """All shipped policies with their default parameters, in catalogue order."""
    return _load()
