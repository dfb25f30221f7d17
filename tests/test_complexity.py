"""No function in the repository above cyclomatic complexity 30 (radon's grades E and F).

A function past that many paths is one a maintainer can no longer hold in their head or
test branch by branch; split it into named steps instead. Functions nested in functions
count on their own (radon scores them apart from the function holding them).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from radon.complexity import cc_visit  # type: ignore[import-untyped]
from radon.visitors import Function  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 30


def _functions(blocks: Iterable[Any]) -> Iterator[Any]:
    """Every function radon scored, methods and nested functions (closures) included."""
    for block in blocks:
        if isinstance(block, Function):
            yield block
        yield from _functions(getattr(block, "closures", ()))


def _too_complex_in(source: str, name: str) -> dict[tuple[str, str], int]:
    return {(name, f.fullname): f.complexity for f in _functions(cc_visit(source))
            if f.complexity > LIMIT}


def _too_complex() -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for top in ("policykit", "bench", "docs", "tests"):
        for path in sorted((ROOT / top).rglob("*.py")):
            found |= _too_complex_in(path.read_text(encoding="utf-8"),
                                     path.relative_to(ROOT).as_posix())
    return found


def test_no_function_above_complexity_30() -> None:
    assert _too_complex() == {}


def test_the_check_sees_methods_and_nested_functions() -> None:
    branches = "".join(f"        if x == {i}:\n            return {i}\n" for i in range(LIMIT))
    nested = f"def outer(x):\n    def inner(x):\n{branches}    return inner\n"
    method = "class C:\n    def m(self, x):\n" + branches.replace("        ", "        ", 1)
    assert set(_too_complex_in(nested, "n")) == {("n", "inner")}
    assert set(_too_complex_in(method, "m")) == {("m", "C.m")}
