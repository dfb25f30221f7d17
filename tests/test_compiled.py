"""The mypyc-compiled hot path decides exactly as pure Python (issue 17, target 4).

Compiles ``policykit._compiled.MODULES`` in a copy of the package (bench/compiled.py), runs
tests/compiled_run.py on the pure package and on the copy in subprocesses, and compares the
decision JSONL byte for byte. Skipped, saying so, only on a machine without a C compiler."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

import policykit
from bench.compiled import build, c_compiler
from policykit._compiled import MODULES, backend, compiled_modules
from policykit.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def _run(pythonpath: Path, out: Path) -> tuple[str, list[str]]:
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(map(str, (pythonpath, ROOT)))}  # bench/ from ROOT
    modules = out.with_suffix(".modules")
    subprocess.run([sys.executable, str(ROOT / "tests" / "compiled_run.py"), str(out),
                    str(modules)], env=env, check=True, cwd=out.parent, timeout=600)
    return out.read_text(encoding="utf-8"), modules.read_text(encoding="utf-8").split()


def test_this_suite_runs_pure_python() -> None:
    # The suite's own monkeypatches (Session._feed, Window._replay) need the pure modules.
    assert Path(policykit.__file__).parent == ROOT / "policykit"
    assert compiled_modules() == []
    assert backend() == "pure Python"
    shown = CliRunner().invoke(cli, ["--version"])
    assert shown.exit_code == 0
    assert shown.output == f"policykit {policykit.__version__} (pure Python)\n"


def test_the_compiler_looked_for_is_the_one_the_build_uses(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """$CC, as setup.py and setuptools read it: the differential test skips only when that
    compiler is missing, and runs with it when Python's own is not on PATH."""
    monkeypatch.setenv("CC", str(ROOT / "no-such-compiler"))
    assert c_compiler() is None
    monkeypatch.setenv("CC", f"{sys.executable} -q")
    assert c_compiler() == sys.executable
    monkeypatch.delenv("CC")
    assert c_compiler() == shutil.which(
        (sysconfig.get_config_var("CC") or "cc").split()[0])


@pytest.mark.slow(seconds=150)
def test_compiled_decides_byte_for_byte_as_pure(tmp_path: Path) -> None:
    if c_compiler() is None:
        pytest.skip("no C compiler on this machine: the compiled-vs-pure differential test "
                    "needs one (the pure install is what the rest of the suite tests)")
    # -O0: the C mypyc generates is the same at every level; -O0 compiles it fastest.
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds = build(tmp_path / "compiled", opt="0")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"compiled {len(MODULES)} modules in {seconds:.0f} s wall, "
          f"{after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime:.0f} s CPU")
    pure, pure_mods = _run(ROOT, tmp_path / "pure.jsonl")
    compiled, compiled_mods = _run(tmp_path / "compiled", tmp_path / "compiled.jsonl")
    assert pure_mods == []
    assert compiled_mods == list(MODULES)  # the copy really ran compiled
    assert pure.count("\n") > 1000  # every run decided something
    assert {"# example native", "# generated native", "# stream"} <= set(pure.splitlines())
    assert compiled == pure
