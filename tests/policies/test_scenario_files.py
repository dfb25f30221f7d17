"""The scenario files of tests/scenarios/ on each backend: the rulebook's readings written as
"given these events, expect these decisions" (``policykit test tests/scenarios`` runs the
same files on the native backend)."""

from __future__ import annotations

from pathlib import Path

import pytest

from policykit.testing.scenarios import run_path

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.mark.parametrize("file", sorted(SCENARIOS.glob("*.yaml")), ids=lambda p: p.stem)
def test_scenario_file(file: Path, backend: str) -> None:
    results = run_path(file, backend=backend)
    assert results.ok, results.render()
