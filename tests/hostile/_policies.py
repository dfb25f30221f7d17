"""Small builders for hostile policy files: one rule, as JSON text or a file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from policykit import PolicySet, loads_policy
from policykit.cli import cli


def forbidden(**rule: Any) -> dict[str, Any]:
    """A forbidden rule on private calls over 180 s, with ``rule`` changed."""
    base: dict[str, Any] = {
        "shape": "forbidden", "id": "R1", "title": "long private call",
        "event": {"type": "staff.private_call", "where": {"duration_s": {"gt": 180}}},
        "subject": {"kind": "employee", "field": "employee_id"},
    }
    base.update(rule)
    return base


def policy(*rules: dict[str, Any], **params: Any) -> dict[str, Any]:
    return {"id": "hostile", "title": "hostile", "clause": "§1", "parameters": params,
            "rules": list(rules)}


def load(*rules: dict[str, Any], **params: Any) -> PolicySet:
    return loads_policy(json.dumps(policy(*rules, **params)), "json", source="hostile.json")


def check(tmp_path: Path, data: dict[str, Any] | str, name: str = "p.json") -> tuple[int, str]:
    """``policykit check`` on a file: its exit code and what it wrote."""
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    return result.exit_code, result.output
