"""Build a mypyc-compiled copy of policykit in a directory of its own, beside the pure one.

    python bench/compiled.py DIR [--opt 3]    # then: PYTHONPATH=DIR python ...
    python bench/compiled.py DIR --compare LOG.jsonl [--rounds 3]   # pure against DIR

Copies ``policykit/`` into DIR and compiles the modules of ``policykit._compiled.MODULES`` there
in place (``mypycify`` + ``build_ext --inplace``), so a bench or a test can run the same code
pure and compiled side by side without installing anything. Needs mypy and a C compiler.
tests/test_compiled.py uses it for the differential test; docs/performance.md, "Compiled hot
path", for the figures."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The type checker's settings the compile needs (pyproject.toml's [tool.mypy], without the
# paths of the tests and docs, which the copy does not have).
_MYPY_INI = """\
[mypy]
strict = True
plugins = pydantic.mypy
[mypy-durable.*,chinese_calendar.*,jsonschema.*,pyarrow.*,tqdm.*]
ignore_missing_imports = True
"""

_SETUP = """\
import sys
from mypyc.build import mypycify
from setuptools import setup
setup(name="policykit-compiled-copy", ext_modules=mypycify(sys.argv[2:], opt_level=sys.argv[1]),
      script_args=["build_ext", "--inplace"])
"""


def c_compiler() -> str | None:
    """The C compiler Python's extensions are built with, if it is on PATH: ``$CC`` when set
    (setuptools builds with it, and setup.py looks for it), else the one Python was built
    with."""
    cc = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def build(target: Path, *, opt: str = "3") -> float:
    """Copy policykit into ``target`` and compile its hot path there; seconds it took.

    Raises ``subprocess.CalledProcessError`` (with mypyc's and the compiler's output) when the
    compile fails."""
    from policykit._compiled import MODULES

    began = time.perf_counter()
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "policykit", target / "policykit", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.so", "*.pyd"))
    (target / "mypy.ini").write_text(_MYPY_INI, encoding="utf-8")
    paths = [str(Path(*name.split("."))) + ".py" for name in MODULES]
    subprocess.run([sys.executable, "-c", _SETUP, opt, *paths], cwd=target, check=True,
                   capture_output=True, text=True)
    return time.perf_counter() - began


# One measurement, run in a fresh process on the pure package or the compiled copy: CPU
# seconds of the parse floor, the full pack, lateness-deduction alone and no policy at all.
_MEASURE = """\
import json, sys, time
from policykit import Engine, PolicySet
from policykit._compiled import backend
from policykit.models.parsing import parse_event
from policykit.pack import standard_pack
text = open(sys.argv[1], encoding="utf-8").read()
lines = [ln for ln in text.splitlines() if ln.strip()]
def cpu(f):
    t = time.process_time(); f(); return time.process_time() - t
out = {"backend": backend(), "floor": cpu(lambda: [parse_event(ln) for ln in lines]),
       "full_pack": cpu(lambda: Engine().evaluate(text))}
events = sorted((parse_event(ln) for ln in lines), key=lambda e: (e.at, e.id))
late = Engine(standard_pack().select("lateness-deduction"))
out["lateness"] = cpu(lambda: late.evaluate(events))
out["no_policy"] = cpu(lambda: Engine(PolicySet([])).evaluate(events))
print(json.dumps(out))
"""


def compare(target: Path, log: Path, rounds: int) -> None:
    """Pure and compiled alternately, ``rounds`` times each; medians and their ratios."""
    import json
    import os
    import statistics

    runs: dict[str, list[dict[str, float]]] = {"pure": [], "compiled": []}
    for _ in range(rounds):
        for name, path in (("pure", ROOT), ("compiled", target)):
            env = {**os.environ, "PYTHONPATH": str(path)}
            done = subprocess.run([sys.executable, "-c", _MEASURE, str(log)], env=env, cwd=path,
                                  check=True, capture_output=True, text=True)
            result = json.loads(done.stdout)
            print(name, result["backend"], {k: round(v, 3) for k, v in result.items()
                                            if k != "backend"}, "load", os.getloadavg())
            runs[name].append(result)
    med = {name: {k: statistics.median(r[k] for r in rs) for k in ("floor", "full_pack",
                                                                   "lateness", "no_policy")}
           for name, rs in runs.items()}
    for k in med["pure"]:
        print(f"{k:10} pure {med['pure'][k]:.3f} s  compiled {med['compiled'][k]:.3f} s  "
              f"compiled/pure {med['compiled'][k] / med['pure'][k]:.2f}")
    for name in med:
        print(f"{name}: full pack / floor {med[name]['full_pack'] / med[name]['floor']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("target", type=Path)
    ap.add_argument("--opt", default="3", help="the C compiler's -O level (mypyc's opt_level)")
    ap.add_argument("--compare", type=Path, metavar="LOG",
                    help="measure pure against an already compiled TARGET on this log")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    if args.compare:
        compare(args.target, args.compare, args.rounds)
        return
    if c_compiler() is None:
        sys.exit("no C compiler on PATH: nothing to compile with")
    try:
        seconds = build(args.target, opt=args.opt)
    except subprocess.CalledProcessError as exc:
        sys.exit(f"compiling failed:\n{exc.stdout}\n{exc.stderr}")
    print(f"compiled {args.target} in {seconds:.1f} s (wall)")


if __name__ == "__main__":
    main()
