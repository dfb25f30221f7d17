"""Run by tests/test_compiled.py in a subprocess, once on the pure package and once on a
mypyc-compiled copy (PYTHONPATH picks which): writes every decision of a few fixed runs, as
JSON lines, to the file named by argv[1], and the modules that were compiled on argv[2]."""

from __future__ import annotations

import io
import json
import sys
from datetime import timedelta
from pathlib import Path

import policykit
from bench.generate import dumps, generate
from policykit import Engine
from policykit._compiled import compiled_modules
from policykit.models.parsing import parse_event

EXAMPLE = Path(policykit.__file__).parent / "examples" / "acme-2026-03.jsonl"


def _backends() -> list[str]:
    try:
        import durable  # type: ignore[import-not-found, unused-ignore]  # noqa: F401
    except ImportError:
        return ["native"]
    return ["native", "durable"]


def _audits(out: io.StringIO) -> None:
    example = EXAMPLE.read_text(encoding="utf-8").splitlines()
    small = [dumps(e) for e in generate(15, 2, 3)]  # a few thousand events
    for name, lines, until in (("example", example, "2026-04-01"),
                               ("generated", small, None)):
        for backend in _backends():
            out.write(f"# {name} {backend}\n")
            report = policykit.audit(lines, None, until=until, backend=backend)
            report.write_jsonl(out, trail=True)


def _stream(out: io.StringIO) -> None:
    """Events two by two out of order (late events, revisions) and a snapshot half way."""
    events = [parse_event(dumps(e)) for e in generate(12, 1, 4)]
    events.sort(key=lambda e: (e.at, e.id))
    for i in range(0, len(events) - 1, 2):
        events[i], events[i + 1] = events[i + 1], events[i]
    engine = Engine()
    session = engine.session(allowed_lateness=timedelta(hours=6))
    half = len(events) // 2
    out.write("# stream\n")
    for i, ev in enumerate(events):
        if i == half:
            session = engine.restore(session.snapshot())
        for d in session.feed(ev):
            out.write(json.dumps(d.to_json_dict(), ensure_ascii=False, sort_keys=True) + "\n")
    out.write(repr(session.stats) + "\n")  # late events, revisions, revocations counted


def main() -> None:
    out = io.StringIO()
    _audits(out)
    _stream(out)
    Path(sys.argv[1]).write_text(out.getvalue(), encoding="utf-8")
    Path(sys.argv[2]).write_text("\n".join(compiled_modules()), encoding="utf-8")


if __name__ == "__main__":
    main()
