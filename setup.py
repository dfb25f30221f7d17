"""Builds policykit pure Python, or with its hot path compiled by mypyc when asked.

``pip install -e .`` (the README) installs pure Python and needs no C compiler. With
``POLICYKIT_COMPILE=1`` the modules listed in policykit/_compiled.py are compiled by mypyc;
if mypyc or the C compiler fails, the install goes on pure Python and says why on stderr
(docs/contributing.md, "A compiled build"). Everything else is in pyproject.toml.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import sysconfig
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

_HERE = Path(__file__).resolve().parent


def _say(message: str) -> None:
    print(f"policykit: {message}", file=sys.stderr, flush=True)


def _modules() -> list[str]:
    # Read, not imported: importing policykit at build time would need its dependencies.
    text = (_HERE / "policykit" / "_compiled.py").read_text(encoding="utf-8")
    block = re.search(r"MODULES: tuple\[str, \.\.\.\] = \((.*?)\n\)", text, re.S)
    assert block, "policykit/_compiled.py has no MODULES tuple"
    return re.findall(r'"([\w.]+)"', block.group(1))


class _OptionalBuildExt(build_ext):
    """A failed C build falls back to pure Python: nothing compiled is left behind."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # the compiler's failures come in several classes
            for path in self.get_outputs():
                Path(path).unlink(missing_ok=True)
            _say(f"compiling failed ({exc}); installing pure Python")


def _ext_modules() -> list[Any]:
    if os.environ.get("POLICYKIT_COMPILE") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _say("POLICYKIT_COMPILE=1 but mypyc (mypy) is not importable here; installing pure "
             "Python (install mypy first and pass --no-build-isolation)")
        return []
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(cc) is None:
        _say(f"POLICYKIT_COMPILE=1 but there is no C compiler ({cc}); installing pure Python")
        return []
    paths = [str(Path(*name.split("."))) + ".py" for name in _modules()]
    try:
        return list(mypycify(paths, opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3")))
    except (Exception, SystemExit) as exc:  # mypyc reports type errors with SystemExit
        _say(f"mypyc could not compile the hot path ({exc!r}); installing pure Python")
        return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": _OptionalBuildExt})
