"""What a decision costs beyond its event: the same generated log twice, once with every
clock-in at 08:15 local (on time) and once at 08:45 (one lateness decision per clock-in, plus
the tariffs' running totals), audited with the full pack; the extra CPU time divided by the
extra decisions.

    python bench/decision_cost.py [--employees 60] [--months 2] [--runs 5] [--profile]

CPU time (``time.process_time``), best of ``--runs`` alternating runs in one process; also
the median of the per-run differences (late minus on time, each pair run back to back), which
a loaded machine disturbs less than the difference of two bests. The load average is
printed with the figures."""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import dumps, generate

import policykit


def clock_ins_at(events: Iterator[dict[str, Any]], hhmm: str) -> Iterator[dict[str, Any]]:
    """``events`` with every clock-in moved to ``hhmm`` of its (local) day."""
    for e in events:
        if e.get("type") == "attendance.clock_in":
            e = {**e, "at": e["at"][:11] + hhmm + ":00" + e["at"][19:]}
        yield e


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--employees", type=int, default=60)
    ap.add_argument("--months", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="cProfile one run of the late log")
    args = ap.parse_args()
    texts = {hm: "\n".join(dumps(e) for e in clock_ins_at(
        generate(args.employees, args.months, 1), hm)) for hm in ("08:15", "08:45")}
    last = max(datetime.fromisoformat(t.rsplit("\n", 1)[-1].split('"at": "')[1][:25])
               for t in texts.values())
    until = last + timedelta(days=1)
    engine = policykit.Engine()
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        engine.evaluate(texts["08:45"], until=until)
        prof.disable()
        stats = pstats.Stats(prof)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        return
    best = {hm: float("inf") for hm in texts}
    count = {}
    diffs = []
    for _ in range(args.runs):
        took = {}
        for hm, text in texts.items():
            start = time.process_time()
            count[hm] = len(engine.evaluate(text, until=until))
            took[hm] = time.process_time() - start
            best[hm] = min(best[hm], took[hm])
        diffs.append(took["08:45"] - took["08:15"])
    events = texts["08:15"].count("\n") + 1
    extra = count["08:45"] - count["08:15"]
    per = (best["08:45"] - best["08:15"]) / extra * 1e6
    print(f"{events} events; on time: {count['08:15']} decisions, {best['08:15']:.3f} s; "
          f"late: {count['08:45']} decisions, {best['08:45']:.3f} s (CPU, best of "
          f"{args.runs})")
    print(f"{extra} extra decisions: {per:.1f} µs CPU each (median of the per-run "
          f"differences: {statistics.median(diffs) / extra * 1e6:.1f} µs); an event costs "
          f"{best['08:15'] / events * 1e6:.1f} µs")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
