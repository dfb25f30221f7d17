"""Streaming latency (issue 17, target 5): ``Session.feed`` of one parsed event at a time,
on the native and the durable backend, over a generated stream of the full standard pack.

    python bench/streaming.py [--employees 30] [--months 2] [--runs 3] [--warmup 2000]
                              [--gc-off] [--cpu-clock] [--profile native|durable [--tail]]

Each run opens a fresh ``Engine(backend=...).session()`` per backend (backends alternate
within a run), feeds the first ``--warmup`` events unmeasured, then times every later
``feed`` with ``time.perf_counter_ns`` (``--cpu-clock``: ``time.thread_time_ns``). Latencies
of all runs are pooled per backend: p50/p90/p99/p99.9/max, the durable/native ratio of p50
and p99, and CPU time (``time.process_time``) per measured event, best of the runs. The
calls at or above each backend's p99 are broken down: how many returned decisions, how many
fired a deadline due before the event (a decision timed earlier than the event), how many
overlapped a run of the cyclic collector, how many were the first event of a local day or
hour (where the day's and shifts' windows close), and their event types. ``--gc-off``
disables the collector while feeding (to see what it adds to the tail); ``--profile`` runs
cProfile over one feed loop (with ``--tail``, over only the calls a first timed loop found
at or above p99)."""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import sys
import time
from collections import Counter
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from generate import generate

import policykit
from policykit import parse_event

BACKENDS = ("native", "durable")
Row = tuple[int, bool, bool, bool, bool, bool]
LOCAL = timezone(timedelta(hours=8))  # the generated company's zone (Asia/Shanghai)


class _GcWatch:
    """Counts the cyclic collector's runs (by generation) through ``gc.callbacks``."""

    def __init__(self) -> None:
        self.runs = 0
        self.full = 0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self.runs += 1
            if info.get("generation") == 2:
                self.full += 1


def feed_loop(backend: str, events: list[Any], warmup: int, gc_off: bool,
              watch: _GcWatch, cpu_clock: bool = False) -> dict[str, Any]:
    """One fresh session fed every event; per measured call its latency and what it did
    (with ``cpu_clock``, the CPU time of the thread: what the call cost, without the time
    the machine ran other processes meanwhile)."""
    clock = time.thread_time_ns if cpu_clock else time.perf_counter_ns
    lat: list[int] = []
    # (decisions, a decision timed before the event, collector ran, full collection,
    #  first event of its local day, first event of its local hour)
    info: list[Row] = []
    prev = events[warmup - 1].at.astimezone(LOCAL) if warmup else None
    session = policykit.Engine(backend=backend).session()
    try:
        for ev in events[:warmup]:
            session.feed(ev)
        if gc_off:
            gc.disable()
        cpu0 = time.process_time()
        for ev in events[warmup:]:
            runs, full = watch.runs, watch.full
            t = clock()
            out = session.feed(ev)
            lat.append(clock() - t)
            at = ev.at
            local = at.astimezone(LOCAL)
            info.append((len(out), any(d.at < at for d in out), watch.runs != runs,
                         watch.full != full, prev is None or local.date() != prev.date(),
                         prev is None or local.replace(minute=0, second=0, microsecond=0)
                         != prev.replace(minute=0, second=0, microsecond=0)))
            prev = local
        cpu = time.process_time() - cpu0
    finally:
        gc.enable()
        session.close()
    return {"lat": lat, "info": info, "cpu": cpu}


def pct(sorted_lat: list[int], q: float) -> float:
    """The ``q`` quantile in µs (nearest rank)."""
    return sorted_lat[min(len(sorted_lat) - 1, int(q * len(sorted_lat)))] / 1000


def _args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--employees", type=int, default=30)
    ap.add_argument("--months", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2000, help="events fed before timing")
    ap.add_argument("--gc-off", action="store_true", help="collector disabled while timing")
    ap.add_argument("--cpu-clock", action="store_true",
                    help="time each call in thread CPU time (time.thread_time_ns), not wall "
                         "time: a loaded machine's preemptions then stay out of the tail")
    ap.add_argument("--profile", choices=BACKENDS, help="cProfile one feed loop and stop")
    ap.add_argument("--tail", action="store_true",
                    help="with --profile: profile only the calls at or above p99")
    return ap.parse_args()


def _profile(args: argparse.Namespace, events: list[Any], warmup: int,
             watch: _GcWatch) -> None:
    # With --tail, one timed loop first picks the calls at or above p99; a second fresh
    # session (the stream is deterministic) profiles only those calls.
    slow: set[int] | None = None
    if args.tail:
        r = feed_loop(args.profile, events, warmup, False, watch)
        cut = sorted(r["lat"])[int(0.99 * len(r["lat"]))]
        slow = {i for i, t in enumerate(r["lat"]) if t >= cut}
        print(f"profiling the {len(slow)} calls at or above p99 ({cut / 1000:.1f} µs)")
    prof = cProfile.Profile()
    session = policykit.Engine(backend=args.profile).session()
    for ev in events[:warmup]:
        session.feed(ev)
    for i, ev in enumerate(events[warmup:]):
        if slow is None or i in slow:
            prof.enable()
            session.feed(ev)
            prof.disable()
        else:
            session.feed(ev)
    session.close()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(30)


def _tail_report(b: str, p99: float, lat: list[int], info: list[Row],
                 types: list[str]) -> None:
    """What the calls at or above p99 have in common, against the rest."""
    cut = p99 * 1000
    tail = [i for i, t in enumerate(lat) if t >= cut]
    body = [i for i, t in enumerate(lat) if t < cut]
    n = len(tail)

    def share(idx: list[int], k: int) -> str:
        return f"{sum(1 for i in idx if info[i][k]) / max(1, len(idx)) * 100:.0f}%"

    print(f"\n{b}: the {n} calls at or above p99 ({p99:.1f} µs) — with decisions "
          f"{share(tail, 0)} (rest of calls {share(body, 0)}), firing a deadline due "
          f"before the event {share(tail, 1)} ({share(body, 1)}), overlapping a "
          f"collector run {share(tail, 2)} ({share(body, 2)}), a full collection "
          f"{share(tail, 3)}; decisions per tail call "
          f"{sum(info[i][0] for i in tail) / max(1, n):.1f} "
          f"(rest {sum(info[i][0] for i in body) / max(1, len(body)):.2f})")
    tail_types = Counter(types[i] for i in tail)
    all_types = Counter(types)
    print("  tail event types: " + ", ".join(
        f"{t} {c} ({c / all_types[t] * 100:.1f}% of its calls)"
        for t, c in tail_types.most_common(8)))
    print(f"  first event of its local day {share(tail, 4)} ({share(body, 4)}), of its local "
          f"hour {share(tail, 5)} ({share(body, 5)})")
    rest = sorted(t for t, r in zip(lat, info, strict=True) if not r[0] and not r[4])
    print(f"  p99 of the calls that neither returned a decision nor were the first of a "
          f"local day: {pct(rest, 0.99):.1f} µs ({len(rest)} calls)")
    quiet = Counter(types[i] for i in tail if not info[i][0] and not info[i][2])
    print(f"  tail calls with no decision and no collector run: {sum(quiet.values())}: "
          + ", ".join(f"{t} {c}" for t, c in quiet.most_common(6)))


def main() -> None:
    args = _args()
    events = [parse_event(e) for e in generate(args.employees, args.months, args.seed)]
    warmup = min(args.warmup, len(events) // 10)
    measured = len(events) - warmup
    load = os.getloadavg()
    print(f"{len(events)} events ({args.employees} employees × {args.months} months, seed "
          f"{args.seed}); {warmup} warm-up, {measured} timed per run; load average "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")

    watch = _GcWatch()
    gc.callbacks.append(watch)
    if args.profile:
        _profile(args, events, warmup, watch)
        return

    lat: dict[str, list[int]] = {b: [] for b in BACKENDS}
    info: dict[str, list[Row]] = {b: [] for b in BACKENDS}
    types: dict[str, list[str]] = {b: [] for b in BACKENDS}
    cpu: dict[str, float] = {b: float("inf") for b in BACKENDS}
    gcs: dict[str, int] = dict.fromkeys(BACKENDS, 0)
    for _ in range(args.runs):
        for b in BACKENDS:
            runs0 = watch.runs
            r = feed_loop(b, events, warmup, args.gc_off, watch, args.cpu_clock)
            gcs[b] += watch.runs - runs0
            lat[b] += r["lat"]
            info[b] += r["info"]
            types[b] += [ev.type for ev in events[warmup:]]
            cpu[b] = min(cpu[b], r["cpu"])

    q = {}
    for b in BACKENDS:
        s = sorted(lat[b])
        q[b] = {name: pct(s, v) for name, v in
                (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("p99.9", 0.999))}
        q[b]["max"] = s[-1] / 1000
        print(f"{b:8s} p50 {q[b]['p50']:.1f}  p90 {q[b]['p90']:.1f}  p99 {q[b]['p99']:.1f}  "
              f"p99.9 {q[b]['p99.9']:.1f}  max {q[b]['max']:.0f} µs; CPU "
              f"{cpu[b] / measured * 1e6:.1f} µs per event (best of {args.runs}); "
              f"{gcs[b]} collector runs in {args.runs} loops"
              + (" (collector off while timing)" if args.gc_off else "")
              + (" (latencies in thread CPU time)" if args.cpu_clock else ""))
    print(f"durable / native: p50 {q['durable']['p50'] / q['native']['p50']:.2f}×, "
          f"p99 {q['durable']['p99'] / q['native']['p99']:.2f}×; CPU per event "
          f"{cpu['durable'] / cpu['native']:.2f}×")
    print(f"target 5: native p99 < 50 µs: {'met' if q['native']['p99'] < 50 else 'MISSED'}; "
          f"durable p99 within 2× native: "
          f"{'met' if q['durable']['p99'] <= 2 * q['native']['p99'] else 'MISSED'}")
    for b in BACKENDS:
        _tail_report(b, q[b]["p99"], lat[b], info[b], types[b])


if __name__ == "__main__":
    main()
