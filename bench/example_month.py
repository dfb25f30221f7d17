"""Engine.evaluate of the bundled example month (policykit/examples/acme-2026-03.jsonl) with
the standard pack: best CPU time of N runs, for a quick before/after on one commit.

    python bench/example_month.py [--runs 5]

Run it in two checkouts to compare commits (PYTHONPATH=. python bench/example_month.py)."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

import policykit

LOG = Path(policykit.__file__).parent / "examples" / "acme-2026-03.jsonl"
UNTIL = datetime.fromisoformat("2026-04-01T00:00:00+08:00")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    text = LOG.read_text(encoding="utf-8")
    engine = policykit.Engine()
    best, count = float("inf"), 0
    for _ in range(max(1, args.runs)):
        start = time.process_time()
        count = len(engine.evaluate(text, until=UNTIL))
        best = min(best, time.process_time() - start)
    print(f"{policykit.__file__}: {count} decisions, best of {args.runs}: "
          f"{best * 1000:.0f} ms CPU")


if __name__ == "__main__":
    main()
