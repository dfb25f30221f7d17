"""Turning what a test names (a pack policy id, a policy file, a policy object, nothing) into
the policy set it runs, with parameters changed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import ParameterError, nearest
from ..policy import Policy, PolicySet

__all__ = ["PolicyLike", "apply_parameters", "resolve_policies"]

PolicyLike = str | Path | Policy | PolicySet | Sequence[str] | Mapping[str, Any] | None
"""What names a policy set: None (the standard pack), a standard policy id, a list of ids,
a path to a policy file, a policy-file mapping, a Policy or a PolicySet."""

_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def _pack() -> PolicySet:
    from ..rules.standard import standard_pack

    return standard_pack()


def _load(path: Path) -> PolicySet:
    from ..policyfile import load_policy

    return load_policy(path)


def _by_id(pid: str, context: PolicySet | None) -> Policy | None:
    for ps in (context, _pack()):
        if ps is not None and pid in ps:
            return ps.get(pid)
    return None


def resolve_policies(spec: PolicyLike = None, *, base_dir: Path | None = None,
                     context: PolicySet | None = None, source: str = "<policy>") -> PolicySet:
    """The policy set ``spec`` names. Policy ids are looked up in ``context`` first (a set
    the caller was given, e.g. ``policykit test --policy``), then in the standard pack; a
    relative path is tried from ``base_dir`` (the scenario file's folder), then as given."""
    if spec is None:
        return context if context is not None else _pack()
    if isinstance(spec, PolicySet):
        return spec
    if isinstance(spec, Policy):
        return PolicySet([spec])
    if isinstance(spec, Mapping):
        from ..policyfile import loads_policy

        return loads_policy(yaml.safe_dump(dict(spec), allow_unicode=True), "yaml",
                            source=source)
    if isinstance(spec, Path) or (isinstance(spec, str) and
                                  (spec.lower().endswith(_SUFFIXES) or "/" in spec)):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
            path = base_dir / path
        if not path.exists():
            where = f" (looked in {base_dir} and the working folder)" if base_dir else ""
            raise ParameterError("policy", str(spec), "an existing policy file" + where)
        return _load(path)
    ids = [spec] if isinstance(spec, str) else list(spec)
    chosen: list[Policy] = []
    for pid in ids:
        policy = _by_id(pid, context) if isinstance(pid, str) else None
        if policy is None:
            known = sorted({*(context.ids if context else ()), *_pack().ids})
            raise ParameterError("policy", pid, "a standard policy id or a policy file path",
                                 suggestion=nearest(pid, known))
        chosen.append(policy)
    return PolicySet(chosen)


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
