"""What a decision costs beyond its event: the same generated log twice, once with every
clock-in at 08:15 local (on time) and once at 08:45 (one lateness decision per clock-in, plus
the tariffs' running totals), audited with the full pack; the extra CPU time divided by the
extra decisions.

    python bench/decision_cost.py [--employees 60] [--months 2] [--runs 5] [--profile]
                                  [--split]

``--profile``: both logs under cProfile; the functions whose own time grows most from the
on-time log to the late one, per extra decision.

``--split``: where the extra time goes. The functions a decision passes through (``emit``,
``build_decision``, ``render``, the tariff's ``on_decision``, the recurrence's
``_count_occurrence``) are wrapped with CPU-time counters; each row is a function's own
time (its callees among them taken out), late log minus on-time log, per extra decision,
best of ``--runs``. Each wrapped call costs about a microsecond and a half of its own,
spread over the rows: the sum is above the unwrapped figure.

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
from collections.abc import Callable, Iterator
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


class Split:
    """Own CPU time per wrapped function (callees that are wrapped too taken out)."""

    def __init__(self) -> None:
        self.own: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self._stack: list[float] = []

    def wrap(self, owner: Any, name: str, label: str) -> None:
        fn: Callable[..., Any] = getattr(owner, name)
        stack, own, calls, clock = self._stack, self.own, self.calls, time.process_time
        own[label] = 0.0
        calls[label] = 0

        def timed(*args: Any, **kwargs: Any) -> Any:
            calls[label] += 1
            start = clock()
            stack.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                took = clock() - start
                inner = stack.pop()
                own[label] += took - inner
                if stack:
                    stack[-1] += took

        setattr(owner, name, timed)

    def reset(self) -> None:
        for label in self.own:
            self.own[label] = 0.0
            self.calls[label] = 0


def wrapper_cost() -> float:
    """CPU seconds a wrapped call adds to a bare one (best of 5 loops of 100,000)."""

    class Bare:
        def f(self) -> None:
            pass

    class Wrapped(Bare):
        pass

    Split().wrap(Wrapped, "f", "f")
    best: list[float] = []
    for obj in (Bare(), Wrapped()):
        took = float("inf")
        for _ in range(5):
            start = time.process_time()
            for _ in range(100_000):
                obj.f()
            took = min(took, time.process_time() - start)
        best.append(took)
    return (best[1] - best[0]) / 100_000


def split(texts: dict[str, str], until: datetime, runs: int) -> None:
    """Print where the extra decisions' time goes (see the module docstring)."""
    from policykit.rules import _base, recurrence, tariff

    timer = Split()
    timer.wrap(_base.RuleContext, "emit", "RuleContext.emit, own")
    timer.wrap(_base, "build_decision", "build_decision")
    timer.wrap(_base, "render", "render (both messages)")
    timer.wrap(tariff._TariffRuntime, "on_decision", "tariff on_decision, outside emit")
    timer.wrap(recurrence._RecurrenceRuntime, "_count_occurrence",
               "recurrence _count_occurrence, outside emit")
    engine = policykit.Engine()
    best: dict[str, tuple[float, dict[str, float], dict[str, int], int]] = {}
    for _ in range(runs):
        for hm, text in texts.items():
            timer.reset()
            start = time.process_time()
            n = len(engine.evaluate(text, until=until))
            took = time.process_time() - start
            if hm not in best or took < best[hm][0]:
                best[hm] = (took, dict(timer.own), dict(timer.calls), n)
    (t0, own0, calls0, n0), (t1, own1, calls1, n1) = best["08:15"], best["08:45"]
    extra = n1 - n0
    cost = wrapper_cost()
    print(f"{extra} extra decisions; per extra decision, CPU µs (best of {runs}); a wrapped "
          f"call costs {cost * 1e6:.2f} µs more than a bare one (calibrated): each row is "
          f"its own time less that cost per call")
    rest, calls = t1 - t0, 0
    for label in own0:
        n = calls1[label] - calls0[label]
        d = own1[label] - own0[label] - n * cost
        rest -= d
        calls += n
        print(f"  {label:45} {d / extra * 1e6:6.1f}   ({n / extra:.1f} calls)")
    rest -= calls * cost
    print(f"  {'the rest (routing, the session, the sort)':45} {rest / extra * 1e6:6.1f}")
    print(f"  {'the wrappers themselves':45} {calls * cost / extra * 1e6:6.1f}")
    print(f"  {'all, under the wrappers':45} {(t1 - t0) / extra * 1e6:6.1f}")
    print("load average: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))


def profile_difference(engine: Any, texts: dict[str, str], until: datetime) -> None:
    """cProfile of each log; the functions whose own time grows most from the on-time log
    to the late one, per extra decision (cProfile's own overhead included)."""
    own: dict[str, dict[Any, tuple[int, float]]] = {}
    count: dict[str, int] = {}
    for hm, text in texts.items():
        prof = cProfile.Profile()
        prof.enable()
        count[hm] = len(engine.evaluate(text, until=until))
        prof.disable()
        stats: Any = pstats.Stats(prof)
        own[hm] = {fn: (row[1], row[2]) for fn, row in stats.stats.items()}
    extra = count["08:45"] - count["08:15"]
    late, ontime = own["08:45"], own["08:15"]
    rows = []
    for fn, (calls, tt) in late.items():
        calls0, tt0 = ontime.get(fn, (0, 0.0))
        rows.append(((tt - tt0) / extra * 1e6, (calls - calls0) / extra, fn))
    total = sum(r[0] for r in rows)
    print(f"{extra} extra decisions: {total:.1f} µs of own time each under cProfile; the "
          f"functions adding most (µs per extra decision, calls per extra decision):")
    for us, per, (file, line, name) in sorted(rows, reverse=True)[:30]:
        where = f"{Path(file).name}:{line}" if line else file
        print(f"  {us:6.2f} µs {per:6.2f}  {name} ({where})")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--employees", type=int, default=60)
    ap.add_argument("--months", type=int, default=2)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true",
                    help="cProfile both logs: the functions whose own time grows most")
    ap.add_argument("--split", action="store_true",
                    help="CPU time per function a decision passes through")
    args = ap.parse_args()
    texts = {hm: "\n".join(dumps(e) for e in clock_ins_at(
        generate(args.employees, args.months, 1), hm)) for hm in ("08:15", "08:45")}
    last = max(datetime.fromisoformat(t.rsplit("\n", 1)[-1].split('"at": "')[1][:25])
               for t in texts.values())
    until = last + timedelta(days=1)
    if args.split:
        split(texts, until, args.runs)
        return
    engine = policykit.Engine()
    if args.profile:
        profile_difference(engine, texts, until)
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
