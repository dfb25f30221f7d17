"""Byte-identity check for performance work: the decisions of fixed logs, exported every way
the library exports them, reduced to one digest per log.

    python bench/identical.py --save /tmp/before.json   # on the commit before a change
    python bench/identical.py --check /tmp/before.json  # after it: exits 1 on any difference
    ... [--log LOG.jsonl]...                            # bench logs too (full pack, native)

Logs: the bundled example month (full pack, native and durable), a generated quarter
(bench/generate.py, 60 people), the same quarter with every clock-in moved to 08:45 local
(one lateness decision per clock-in), and lateness-deduction alone over the quarter. Each
digest covers every decision's ``to_json_dict`` JSON, ``repr``, ``model_dump`` and the
audit report's JSONL and CSV (trail included)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import dumps, generate, late_clock_ins

import policykit

EXAMPLE = Path(policykit.__file__).parent / "examples" / "acme-2026-03.jsonl"


def logs() -> dict[str, tuple[str, Any, str]]:
    """name -> (JSONL text, policy argument, backend)."""
    example = EXAMPLE.read_text(encoding="utf-8")
    quarter = "\n".join(dumps(e) for e in generate(60, 3, 1)) + "\n"
    late = "\n".join(dumps(e) for e in late_clock_ins(generate(20, 2, 2))) + "\n"
    return {
        "example-native": (example, None, "native"),
        "example-durable": (example, None, "durable"),
        "quarter-native": (quarter, None, "native"),
        "late-native": (late, None, "native"),
        "quarter-lateness": (quarter, "lateness-deduction", "native"),
        "late-lateness": (late, "lateness-deduction", "native"),
    }


def digest(text: str, policy: Any, backend: str) -> dict[str, Any]:
    lines = text.splitlines()
    last = max(datetime.fromisoformat(json.loads(ln)["at"]) for ln in lines if ln.strip())
    until = last.replace(hour=0, minute=0, second=0) + (datetime(2000, 1, 2)
                                                        - datetime(2000, 1, 1))
    report = policykit.audit(lines, policy, until=until, backend=backend)
    h = hashlib.sha256()
    decisions = report.trail
    for d in decisions:
        h.update(json.dumps(d.to_json_dict(), ensure_ascii=False).encode())
        h.update(repr(d).encode())
        h.update(repr(d.model_dump()).encode())
        h.update(d.model_dump_json().encode())
    out = io.StringIO()
    report.write_jsonl(out, trail=True)
    h.update(out.getvalue().encode())
    out = io.StringIO()
    report.write_csv(out, trail=True)
    h.update(out.getvalue().encode())
    return {"decisions": len(decisions), "sha256": h.hexdigest()}


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--save", type=Path)
    ap.add_argument("--check", type=Path)
    ap.add_argument("--log", type=Path, action="append", default=[],
                    help="also a JSONL file (full pack, native; e.g. a bench/generate.py log)")
    args = ap.parse_args()
    specs = logs()
    for path in args.log:
        specs[path.name] = (path.read_text(encoding="utf-8"), None, "native")
    result = {name: digest(*spec) for name, spec in specs.items()}
    for name, r in result.items():
        print(f"{name}: {r['decisions']} decisions {r['sha256'][:16]}")
    if args.save:
        args.save.write_text(json.dumps(result, indent=1))
    if args.check:
        before = json.loads(args.check.read_text())
        bad = [n for n in result if before.get(n) != result[n]]
        print("IDENTICAL" if not bad else f"DIFFERENT: {', '.join(bad)}")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
