"""One policy on a mixed log: ``Engine(lateness-deduction).evaluate(events)`` against
bench/floor.py's hand-written lateness pass over the same parsed events (they must agree), and
against an empty policy set (the engine's own per-event work), as CPU-time ratios.

    python bench/single_policy.py LOG.jsonl [--runs 5] [--profile]

CPU time (``time.process_time``), best of ``--runs`` alternating runs in one process."""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from floor import engine_counts, lateness

from policykit import Engine, PolicySet
from policykit.models.parsing import parse_event
from policykit.pack import standard_pack


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    lines = [ln for ln in args.log.read_text(encoding="utf-8").splitlines() if ln.strip()]
    events = sorted((parse_event(ln) for ln in lines), key=lambda e: (e.at, e.id))
    engine = Engine(standard_pack().select("lateness-deduction"))
    empty = Engine(PolicySet([]))
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        engine.evaluate(events)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    best = {"hand": float("inf"), "engine": float("inf"), "empty": float("inf")}
    mine = theirs = None
    for _ in range(args.runs):
        start = time.process_time()
        mine = lateness(events)
        best["hand"] = min(best["hand"], time.process_time() - start)
        start = time.process_time()
        decisions = engine.evaluate(events)
        best["engine"] = min(best["engine"], time.process_time() - start)
        theirs = engine_counts(decisions)
        start = time.process_time()
        empty.evaluate(events)
        best["empty"] = min(best["empty"], time.process_time() - start)
    n = len(events)
    per = {k: v / n * 1e6 for k, v in best.items()}
    print(f"{n} events; CPU µs per event (best of {args.runs}): hand-written "
          f"{per['hand']:.2f}, engine lateness-deduction {per['engine']:.2f}, engine with no "
          f"policy {per['empty']:.2f}")
    print(f"engine ÷ hand-written: {best['engine'] / best['hand']:.2f}×; agree: "
          f"{mine == theirs}")


if __name__ == "__main__":
    main()
