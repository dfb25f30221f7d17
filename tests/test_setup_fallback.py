"""setup.py's choice between a compiled and a pure install (issue 17, target 4): pure
unless POLICYKIT_COMPILE=1, and pure again, saying why, when mypyc or the C compiler is
missing or mypyc fails; an interrupt is not taken for a failed compile."""

from __future__ import annotations

import runpy
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest.mock import patch

import pytest

ROOT = Path(__file__).resolve().parent.parent


def ext_modules(monkeypatch: pytest.MonkeyPatch, mypycify: Callable[..., Any] | None
                ) -> list[Any]:
    """setup.py's extension modules, with setuptools.setup not run and mypyc's mypycify
    replaced (None: mypyc not importable)."""
    build = types.ModuleType("mypyc.build")
    if mypycify is not None:
        build.mypycify = mypycify  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mypyc.build", build)
    with patch("setuptools.setup"):
        found = runpy.run_path(str(ROOT / "setup.py"))
    return list(found["_ext_modules"]())


def test_pure_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("POLICYKIT_COMPILE", raising=False)
    assert ext_modules(monkeypatch, lambda *a, **k: pytest.fail("compiled")) == []


def test_compiled_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYKIT_COMPILE", "1")
    monkeypatch.setenv("CC", sys.executable)  # a program that exists
    got = ext_modules(monkeypatch, lambda paths, **k: [f"ext:{p}" for p in paths])
    assert got and all(p.startswith("ext:policykit") for p in got)


@pytest.mark.parametrize("case", ["no mypyc", "no compiler", "mypyc refuses"])
def test_pure_again_saying_why(case: str, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("POLICYKIT_COMPILE", "1")
    monkeypatch.setenv("CC", str(ROOT / "no-such-cc") if case == "no compiler"
                       else sys.executable)

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise SystemExit(2)  # how mypyc reports type errors

    assert ext_modules(monkeypatch, None if case == "no mypyc" else refuse) == []
    assert "installing pure Python" in capsys.readouterr().err


def test_an_interrupt_is_not_a_failed_compile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICYKIT_COMPILE", "1")
    monkeypatch.setenv("CC", sys.executable)

    def interrupted(*_a: Any, **_k: Any) -> Any:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ext_modules(monkeypatch, interrupted)
