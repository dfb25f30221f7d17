"""The memory of one distributed shard's task: the largest shard run whole (first-responder
R3 + R6 + R7 on bench/generate.py's company) of a JSONL log, as ``distributed_audit``'s
shard stage runs it (``_run_shards`` on its pickled events), in a process of its own.

    python bench/shard_memory.py LOG.jsonl [--until ISO] [--partitions 16]

Prints the shard's events, its decisions, the task's CPU time, the process's RSS at the start
of the task (``/proc/self/statm``, Linux) and its peak (``getrusage``): the task's own
memory is the difference. The parent parses the log and writes the shard's rows (as the
second shuffle delivers them: shard, pickled event, time, id) to a temporary
file; a child loads it and runs the task, so the parse's memory is not counted."""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def write_shard(log: Path, partitions: int, out: Path) -> None:
    from policykit._dask_files import _ROUTED, _dumps, _frame, _router, actions, shards_of
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    table = actions(_router(standard_pack(), partitions))
    group = next(g for g in _router(standard_pack(), partitions)
                 if g.routes is None and g.policy.id == "first-responder")
    rows: dict[str, list[Any]] = {"shard": [], "ev": [], "at": [], "id": []}
    with log.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            ev = parse_event(line, source=str(log), line=n)
            if group.base in shards_of(ev, table):
                for name, value in (("shard", group.base), ("ev", _dumps(ev)), ("at", ev.at),
                                    ("id", ev.id)):
                    rows[name].append(value)
    with out.open("wb") as f:
        pickle.dump(_frame(rows, _ROUTED), f, protocol=pickle.HIGHEST_PROTOCOL)


def run_shard(path: Path, until: str | None, partitions: int) -> None:
    from policykit._dask_files import _router, _run_shards
    from policykit.engine import parse_instant
    from policykit.pack import standard_pack

    with path.open("rb") as f:
        frame = pickle.load(f)
    horizon = parse_instant(until) if until else None
    router = _router(standard_pack(), partitions)
    gc.collect()
    peak0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as f:  # resident pages now (Linux)
        now = int(f.read().split()[1]) * resource.getpagesize() / 2**20
    cpu = time.process_time()
    out = _run_shards(frame, router, horizon, None, "native")
    cpu = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    digest = hashlib.sha256("\n".join(out["decision"]).encode()).hexdigest()[:16]
    own = (f"the task's own {peak - now:,.0f} MiB" if peak > peak0 else
           f"the task stayed under the load's peak ({peak0:,.0f} MiB)")
    print(f"{len(frame):,} events, {len(out):,} decisions (sha256 {digest}); "
          f"{cpu:.1f} s CPU; RSS {now:,.0f} MiB at the start of the task, peak {peak:,.0f} "
          f"MiB: {own}")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--until", default=None)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run is not None:
        run_shard(args.run, args.until, args.partitions)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        shard = Path(tmp) / "shard.pickle"
        write_shard(args.log, args.partitions, shard)
        cmd = [sys.executable, __file__, str(args.log), "--run", str(shard),
               "--partitions", str(args.partitions)]
        if args.until:
            cmd += ["--until", args.until]
        return subprocess.call(cmd)


if __name__ == "__main__":
    sys.exit(main())
