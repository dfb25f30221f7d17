"""The driver-less Dask audit (issue 17, "Beyond one machine"): N generated events as F
Parquet files, audited by ``distributed_audit`` on a ``LocalCluster`` of W one-thread
worker processes; throughput, the driver's peak RSS, and equality with a single-process
``audit()`` of the same files.

    python bench/distributed.py [--events 10000000] [--files 20] [--workers 2]
                                [--dir /tmp/pk-dist] [--check-max 1000000] [--keep]

The files are written by a child process (``--write-only``), streaming: one batch of rows
at a time, so neither the generator nor the driver holds the log; the child's peak RSS is
reported too. The driver's peak RSS is ``resource.getrusage(RUSAGE_SELF)`` of this process
(the workers are other processes), taken before the equality check. With at most
``--check-max`` events, the decisions read back from the output Parquet are compared, as
sorted JSON lines, with ``audit()`` of the same files in one process (the whole log: exact
equality, ids and content); above it the check is skipped and the report says so."""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

# This file's name is the dask package's: run as a script, its folder must not shadow it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

#: Events per employee-month of bench/generate.py's company (measured: ~165).
PER_EMPLOYEE_MONTH = 165
BATCH = 50_000


def _cell(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_files(events: int, files: int, out: Path, months: int = 3, seed: int = 1) -> int:
    """``events`` generated events as ``files`` Parquet files under ``out`` (every column
    text, nested fields JSON text: what audit() reads back), a batch at a time."""
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from bench.generate import generate
    from policykit.models.events import EVENT_TYPES

    columns = sorted({f for m in EVENT_TYPES.values() for f in m.model_fields} | {"meta"})
    schema = pa.schema([(c, pa.string()) for c in columns])
    employees = max(12, -(-events // (PER_EMPLOYEE_MONTH * months)))
    stream = itertools.islice(generate(employees, months, seed), events)
    per_file = -(-events // files)
    out.mkdir(parents=True, exist_ok=True)
    written = 0
    for i in range(files):
        rows = list(itertools.islice(stream, min(BATCH, per_file)))
        if not rows:
            break
        with pq.ParquetWriter(out / f"part-{i:03d}.parquet", schema) as writer:
            left = per_file
            while rows:
                writer.write_table(pa.table({c: [_cell(r.get(c)) for r in rows]
                                             for c in columns}, schema=schema))
                written += len(rows)
                left -= len(rows)
                rows = list(itertools.islice(stream, min(BATCH, left))) if left else []
    return written


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(inputs: Path, decisions: str) -> tuple[bool, int, float]:
    """Decisions read back from Parquet == audit() of the same files, as sorted JSON; and
    the wall time of that single-process audit."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from policykit import audit
    from policykit.audit._readers import read_records

    raw = (r for p in sorted(inputs.glob("*.parquet")) for _n, r in read_records(p).records)
    wall = time.perf_counter()
    report = audit(raw)
    wall = time.perf_counter() - wall
    ref = sorted(d.model_dump_json() for d in report.trail)
    got = sorted(pd.read_parquet(decisions, columns=["decision"])["decision"])
    return got == ref, len(ref), wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pk-dist"))
    ap.add_argument("--check-max", type=int, default=1_000_000)
    ap.add_argument("--keep", action="store_true", help="keep the files and the output")
    ap.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    inputs, output = args.dir / "in", args.dir / "out"
    if args.write_only:
        n = write_files(args.events, args.files, inputs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"written": n, "writer_peak_rss_mib": round(peak, 1)}))
        return 0
    shutil.rmtree(args.dir, ignore_errors=True)
    t0 = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--write-only", "--events",
                            str(args.events), "--files", str(args.files), "--dir",
                            str(args.dir)], check=True, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    wrote = json.loads(child.stdout.strip().splitlines()[-1])
    print(f"wrote {wrote['written']:,} events as {args.files} Parquet files in "
          f"{time.perf_counter() - t0:.1f} s (writer peak RSS {wrote['writer_peak_rss_mib']} "
          f"MiB)", flush=True)

    from distributed import Client, LocalCluster

    from policykit.distributed import distributed_audit

    with LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        load = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        summary = distributed_audit(inputs, output=output, client=client)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = client.run(_peak_rss)
    print(f"distributed_audit: {summary.read:,} events, {summary.decisions:,} decisions, "
          f"{summary.quarantined} quarantined; {wall:.1f} s wall, "
          f"{summary.read / wall:,.0f} events/s on {args.workers} workers; driver CPU "
          f"{cpu:.1f} s, driver peak RSS {peak:.0f} MiB (workers: "
          f"{', '.join(f'{v:.0f}' for v in workers.values())} MiB); load avg before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    if summary.read <= args.check_max:
        same, n, single = check(inputs, summary.decisions_path)
        print(f"equal to a single-process audit(): {same} ({n:,} decisions; that audit "
              f"took {single:.1f} s wall, {summary.read / single:,.0f} events/s; load avg "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        if not same:
            return 1
    else:
        print(f"equality check skipped ({summary.read:,} events > --check-max "
              f"{args.check_max:,})")
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
