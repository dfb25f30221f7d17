"""No function in the repository above cyclomatic complexity 30 (radon's grades E and F).

A function past that many paths is one a maintainer can no longer hold in their head or
test branch by branch; split it into named steps instead.
"""

from __future__ import annotations

from pathlib import Path

from radon.complexity import cc_visit  # type: ignore[import-untyped]
from radon.visitors import Function  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 30


def _too_complex() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for top in ("policykit", "bench", "docs", "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            for block in cc_visit(path.read_text(encoding="utf-8")):
                if isinstance(block, Function) and block.complexity > LIMIT:
                    found[(path.relative_to(ROOT).as_posix(), block.fullname)] = (
                        block.complexity)
    return found


def test_no_function_above_complexity_30() -> None:
    assert _too_complex() == {}
