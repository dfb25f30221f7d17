"""The memory of one distributed shard's task: the largest shard run whole (first-responder
R3 + R6 + R7 on bench/generate.py's company) of a JSONL log, as ``distributed_audit``'s
shard stage runs it (``_run_shards`` on its packed events), in a process of its own.

    python bench/shard_memory.py LOG.jsonl [--until ISO] [--partitions 16]
    python bench/shard_memory.py FILE --read    # the task reading one file, instead

Prints the size of an event packed and pickled, and of a routed row; the shard's events,
its decisions, the task's CPU time, the process's RSS at the start
of the task and its peak since then (``VmRSS``, and ``VmHWM`` reset through
``/proc/self/clear_refs``: Linux): the task's own memory is the difference. The parent
parses the log and writes the shard's rows (as the second shuffle delivers them: shard,
packed event, time, id) to a temporary file; a child loads it and runs the task, so the
parse's memory is not counted."""

from __future__ import annotations

import argparse
import gc
import hashlib
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def routed(events: list[Any], router: list[Any]) -> Any:
    """``events`` (already resolved) as the second shuffle delivers them: ``_route``'s rows,
    one per shard that reads each, in the order given."""
    from policykit._dask_files import _RESOLVED, _frame, _micros, _pack, _route

    n = len(events)
    return _route(_frame({"kind": ["e"] * n, "pos": list(range(n)),
                          "ev": [_pack(e) for e in events],
                          "at": [_micros(e.at) for e in events], "row": [None] * n},
                         _RESOLVED), router)


def write_shard(log: Path, partitions: int, out: Path) -> None:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from policykit._dask_files import _router, _unpack
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    router = _router(standard_pack(), partitions)
    base = next(g for g in router if g.routes is None and g.policy.id == "first-responder").base
    parts = []

    def route(events: list[Any]) -> None:
        rows = routed(events, router)  # as the shard stage gets them
        parts.append(rows[rows["shard"] == base])
        events.clear()

    events: list[Any] = []
    with log.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                events.append(parse_event(line, source=str(log), line=n))
            if len(events) == 50_000:
                route(events)
    route(events)
    frame = pd.concat(parts, ignore_index=True)
    with out.open("wb") as sink:
        pickle.dump(frame, sink, protocol=pickle.HIGHEST_PROTOCOL)
    # The same rows as they travelled before 4c685fd: each event a pickle of the model, its
    # time a datetime and its id a str, in object columns.
    sample = [_unpack(b) for b in frame["ev"].head(20_000).tolist()]
    old = pd.DataFrame({"shard": frame["shard"].head(len(sample)).to_numpy(),
                        "ev": pd.Series([pickle.dumps(e, 5) for e in sample], dtype=object),
                        "at": pd.Series([e.at for e in sample], dtype=object),
                        "id": pd.Series([e.id for e in sample], dtype=object)})
    packed = sum(map(len, frame["ev"].head(len(sample)).tolist())) / len(sample)
    pickled = old["ev"].map(len).sum() / len(sample)
    per_row = frame.memory_usage(deep=True, index=False).sum() / len(frame)
    per_old = old.memory_usage(deep=True, index=False).sum() / len(old)
    print(f"an event packed {packed:.0f} bytes, pickled {pickled:.0f}; a routed row "
          f"{per_row:.0f} bytes (pandas' deep memory), {per_old:.0f} as object columns of a "
          f"pickle, a datetime and a str")


def run_shard(path: Path, until: str | None, partitions: int) -> None:
    from policykit._dask_files import _router, _run_shards
    from policykit.engine import parse_instant
    from policykit.pack import standard_pack

    with path.open("rb") as f:
        frame = pickle.load(f)
    horizon = parse_instant(until) if until else None
    router = _router(standard_pack(), partitions)
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:  # the peak (VmHWM) starts again here
        f.write("5")
    now = _status("VmRSS")
    cpu = time.process_time()
    out = _run_shards(frame, router, horizon, None, "native")
    cpu = time.process_time() - cpu
    peak = _status("VmHWM")
    digest = hashlib.sha256("\n".join(out["decision"]).encode()).hexdigest()[:16]
    print(f"{len(frame):,} events, {len(out):,} decisions (sha256 {digest}); "
          f"{cpu:.1f} s CPU; RSS {now:,.0f} MiB at the start of the task, peak {peak:,.0f} "
          f"MiB: the task's own {peak - now:,.0f} MiB")


def read_file(path: Path) -> None:
    """The memory of the task reading one file (``_read_file``: validate, place, pack)."""
    import pandas  # noqa: F401  (what a worker has imported before its first task)
    import pyarrow  # noqa: F401

    from policykit._dask_files import _read_file
    from policykit.pack import standard_pack

    pset = standard_pack()
    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    now = _status("VmRSS")
    cpu = time.process_time()
    out = _read_file(0, str(path), True, pset, None, None, None)
    cpu = time.process_time() - cpu
    peak = _status("VmHWM")
    held = out["events"].memory_usage(deep=True, index=False).sum() / 2**20
    print(f"read {path.name}: {len(out['events']):,} events ({held:,.0f} MiB packed, as the "
          f"task returns them); {cpu:.1f} s CPU; RSS {now:,.0f} MiB at the start of the "
          f"task, peak {peak:,.0f} MiB: the task's own {peak - now:,.0f} MiB")


def _status(field: str) -> float:
    """A memory figure of this process in MiB, from /proc/self/status (Linux)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--until", default=None)
    ap.add_argument("--partitions", type=int, default=16)
    ap.add_argument("--read", action="store_true",
                    help="measure the task reading LOG (any format audit() reads) instead")
    ap.add_argument("--run", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.read:
        read_file(args.log)
        return 0
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
