"""Changing the parameters of the policy set a test names (the naming itself is
:func:`policykit.policyfile.resolve_policies`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ParameterError, nearest
from ..policy import PolicySet

# Resolving what names a policy set lives with the policy files; re-exported for the toolkit.
from ..policyfile import PolicyLike, resolve_policies

__all__ = ["PolicyLike", "apply_parameters", "resolve_policies"]


def apply_parameters(policies: PolicySet, parameters: Mapping[str, Any] | None) -> PolicySet:
    """``policies`` with parameters changed. With one policy the mapping may be flat
    (``{tier_mode: marginal}``); otherwise, or to be explicit, by policy id
    (``{lateness-deduction: {tier_mode: marginal}}``)."""
    if not parameters:
        return policies
    nested = all(k in policies and isinstance(v, Mapping) for k, v in parameters.items())
    if not nested:
        if len(policies) != 1:
            bad = next(k for k in parameters if k not in policies)
            raise ParameterError(f"parameters.{bad}", parameters[bad],
                                 "parameters by policy id when several policies run: "
                                 + ", ".join(policies.ids),
                                 suggestion=nearest(bad, policies.ids))
        return policies.with_parameters(policies.ids[0], **parameters)
    for pid, values in parameters.items():
        policies = policies.with_parameters(pid, **values)
    return policies
