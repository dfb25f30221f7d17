"""The figures of docs/reliability.md, measured:
``PYTHONPATH=.:tests python tests/reliability/measure.py`` (its own directory is on the
path as the script's; ``tests`` holds the shared helpers).

Not a test (pytest does not collect it): it runs the same logs and scenarios as the tests,
with counters, and prints what they tried and compared.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reliability_logs import comparable, effective, horizon, models, month_log, policies
from stream_child import events_for, session_options
from test_late_events import deliveries

from policykit import Engine, standard_pack
from policykit.checkpoint import CheckpointStore

ROOT = Path(__file__).resolve().parents[2]


def best_of(n: int, fn: Any) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def kill_figures() -> None:
    cfg = {"seed": 11, "employees": 12, "every": 50}
    session = Engine(policies()).session()
    per_event = [session.feed(e) for e in events_for(cfg)]
    final = session.advance_to(horizon())
    total = sum(map(len, per_event)) + len(final)
    print(f"kill test log: {len(per_event)} events, {total} decisions "
          f"({len({d.policy for b in per_event for d in b})} policies), checkpoint every 50")
    late = {**cfg, "late_minutes": 240}
    s = Engine(policies()).session(**session_options(late))
    out = [d for e in events_for(late) for d in s.feed(e)] + s.advance_to(horizon())
    print(f"kill test, late-event session: {len(out)} decisions, {s.stats}")
    with tempfile.TemporaryDirectory() as tmp:
        snap_session = Engine(policies()).session()
        for e in events_for(cfg):
            snap_session.feed(e)
        snap = snap_session.snapshot()
        store = CheckpointStore(Path(tmp) / "cp.db", Engine(policies()))
        save = best_of(5, lambda: store.save("s", snap_session, "x"))
        restore = best_of(5, lambda: Engine(policies()).restore(snap))
        take = best_of(5, snap_session.snapshot)
        print(f"snapshot after {len(per_event)} events: {len(snap)} bytes; snapshot "
              f"{take * 1000:.1f} ms, save (SQLite, synchronous=FULL) {save * 1000:.1f} ms, "
              f"restore {restore * 1000:.1f} ms")
        child = ROOT / "tests/reliability/stream_child.py"
        env = {"PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        subprocess.run([sys.executable, str(child), json.dumps(
            {**cfg, "db": f"{tmp}/x.db", "out": f"{tmp}/x.jsonl"})], env=env, check=True,
            capture_output=True)
        print(f"one uninterrupted child run: {time.perf_counter() - t0:.2f} s wall")


def late_figures() -> None:
    tried = late = revoked = revised = fixes = decisions = 0
    for seed in range(12):
        rng = random.Random(seed)
        log = month_log(seed, employees=4, days=12)
        delay = timedelta(minutes=[10, 45, 120][seed % 3])
        arrival, corrections = deliveries(log, rng, delay, 8)
        until = datetime.fromisoformat(log[-1]["at"]) + timedelta(days=20)
        engine = Engine(policies())
        session = engine.session(allowed_lateness=4 * delay, checkpoint_every=8)
        out = [d for e in arrival for d in session.feed(e)] + session.advance_to(until)
        batch = engine.evaluate([*log, *corrections], until=until)
        assert effective(out) == comparable({d.id: d for d in batch})
        tried += len(arrival)
        late += session.stats.late
        revoked += session.stats.revocations
        revised += session.stats.revisions
        fixes += session.stats.corrections
        decisions += len(batch)
    print(f"late events, 12 seeded runs like the property test: {tried} events delivered, "
          f"{late} late, {fixes} corrections, {revoked} revocations, {revised} revisions; "
          f"{decisions} decisions compared, all equal")
    parsed = models(month_log(5, employees=40))
    engine = Engine(standard_pack())
    for name, kw in [("strict", {}), ("allowed_lateness=1h", {
            "allowed_lateness": timedelta(hours=1)})]:
        def run(kw: dict[str, Any] = kw) -> None:
            s = engine.session(**kw)
            for e in parsed:
                s.feed(e)
        took = best_of(5, run)
        print(f"in-order feed, whole pack, {len(parsed)} events, {name}: "
              f"{len(parsed) / took:,.0f} events/s (best of 5)")


def thread_figures() -> None:
    log = models(month_log(21, employees=10, days=20))
    engine = Engine(policies())
    sys.setswitchinterval(1e-6)
    lates = []
    for _ in range(5):
        session = engine.session(allowed_lateness=timedelta(days=40), checkpoint_every=8)
        source = iter(log)
        take = threading.Lock()

        def work(session: Any = session, source: Any = source, take: Any = take) -> None:
            while True:
                with take:
                    event = next(source, None)
                if event is None:
                    return
                session.feed(event)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        lates.append(session.stats.late)
    print(f"threads: {len(log)} events through 8 threads, late (out of order) per run: "
          f"{lates}")


if __name__ == "__main__":
    kill_figures()
    late_figures()
    thread_figures()
