"""Which of policykit's hot-path modules run compiled by mypyc in this install.

``pip install -e .`` installs pure Python; ``POLICYKIT_COMPILE=1`` at install time compiles
:data:`MODULES` with mypyc (setup.py; docs/performance.md, "Compiled hot path"). Both give
byte-identical decisions (tests/test_compiled.py).
"""

from __future__ import annotations

import importlib

__all__ = ["MODULES", "backend", "compiled_modules"]

# The modules a compiled build compiles (setup.py reads this list): the session's per-event
# work (duplicates, corrections, late events, routing, batching). The rule shapes are not in
# it: their modules hold pydantic models with `x: dict[...] = Field(...)` defaults, which
# mypyc's compiled class bodies refuse (a FieldInfo is no dict).
MODULES: tuple[str, ...] = (
    "policykit.engine.session",
    "policykit.engine._native",
    "policykit.engine._late",
    "policykit.engine._corrections",
    "policykit.engine._batch",
)


def compiled_modules() -> list[str]:
    """The modules of :data:`MODULES` that were imported from a compiled extension."""
    found = []
    for name in MODULES:
        path = getattr(importlib.import_module(name), "__file__", None) or ""
        if not path.endswith(".py"):
            found.append(name)
    return found


def backend() -> str:
    """``"compiled (mypyc)"`` when the hot path is compiled, else ``"pure Python"``."""
    return "compiled (mypyc)" if compiled_modules() else "pure Python"
