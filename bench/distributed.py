"""The driver-less Dask audit (issue 17, "Beyond one machine"): N generated events as F
Parquet files, audited by ``distributed_audit`` on a ``LocalCluster`` of W one-thread
worker processes; throughput, the driver's peak RSS, and equality with single-process
audits of the same files.

    python bench/distributed.py [--events 10000000] [--files 20] [--workers 2]
                                [--dir /tmp/pk-dist] [--partitions P] [--memory-limit 11GiB]
                                [--until ISO] [--check-max 1000000]
                                [--check-policies a,b,c] [--keep] [--reuse]
                                [--check-only]

``--reuse --until ISO`` audits the files a ``--keep`` run (or an interrupted one) left in
``--dir`` instead of writing new ones (writing 10M events takes about five minutes);
``--check-only --until ISO`` runs the checks alone on the output a ``--keep`` run left
(with a larger ``--check-max`` and other ``--check-policies``, say).

The files are written by a child process (``--write-only``), streaming: one batch of rows
at a time, so neither the generator nor the driver holds the log; the child's peak RSS and
the latest event time are reported. Every audit here gets one explicit ``until`` (default:
the first instant of the month after the last event): with none, a run's horizon is "just
before the last event" of the log it is given, which a log filtered to a few types does not
share. The driver's peak RSS is ``resource.getrusage(RUSAGE_SELF)`` of this process (the
workers are other processes, reported by their own getrusage), taken before any check.

With at most ``--check-max`` events, the decisions read back from the output Parquet are
compared, as sorted JSON lines, with ``audit()`` of all the files in one process (exact
equality, ids and content). Above it, such an audit would not fit in memory, so each policy
of ``--check-policies`` is checked alone, exactly: its decisions depend only on the events
of the types its rules read (``RuleSpec.event_types``) and on the directory
(``employee.profile``), so the files are streamed a row group at a time, those rows kept in
order, and ``audit(policy=[that policy])`` of them is compared with the distributed output's
decisions of that policy. Corrections and repeated ids cannot make this differ here: the
generator writes no ``meta.corrects`` and no repeated id (measured on its output). A
correction keeps the type of the event it corrects, so a filter by type keeps both or
neither; only a correction changing the type (refused in one process, with the event it
names in the log) could be judged otherwise in a filtered log, where that event may be
missing: a log with such corrections needs its correction groups kept whole. A policy whose
kept events exceed ``--check-max`` is reported as not checked. Exit status 1 on any
inequality."""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

# This file's name is the dask package's: run as a script, its folder must not shadow it.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

#: Events per employee-month of bench/generate.py's company (measured: ~165).
PER_EMPLOYEE_MONTH = 165
BATCH = 50_000
#: Policies checked one by one above --check-max: a small share of the generated log each
#: (measured on bench/generate.py's company: incident-escalation reads 0.6% of the events,
#: holiday-coverage 0.7%, site-access 4.0%), and between them a keyed group, a group run
#: whole (holiday-coverage R1) and a directory lookup.
SAMPLE = ("incident-escalation", "holiday-coverage", "site-access")


def cell(v: Any) -> str | None:
    """A value as an export's Parquet holds it: nested fields as JSON text, every other
    value as text (audit()'s readers turn it back)."""
    if v is None:
        return None
    if isinstance(v, dict | list):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def write_files(events: int, files: int, out: Path, months: int = 3, seed: int = 1
                ) -> tuple[int, str]:
    """``events`` generated events as ``files`` Parquet files under ``out`` (every column
    text, nested fields JSON text: what audit() reads back), a batch at a time; how many,
    and the latest event time (ISO text)."""
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
    latest: datetime | None = None
    for i in range(files):
        rows = list(itertools.islice(stream, min(BATCH, per_file)))
        if not rows:
            break
        with pq.ParquetWriter(out / f"part-{i:03d}.parquet", schema) as writer:
            left = per_file
            while rows:
                writer.write_table(pa.table({c: [cell(r.get(c)) for r in rows]
                                             for c in columns}, schema=schema))
                top = max(datetime.fromisoformat(r["at"]) for r in rows)
                latest = top if latest is None else max(latest, top)
                written += len(rows)
                left -= len(rows)
                rows = list(itertools.islice(stream, min(BATCH, left))) if left else []
    return written, "" if latest is None else latest.isoformat()


def month_after(latest: str) -> str:
    """The first instant of the month after ``latest``, in its UTC offset (ISO text): one
    explicit ``until`` for the distributed run and every reference run. Without it each run's
    horizon would be "just before the last event" of the log it was given, and a log
    filtered to a few types ends earlier than the whole one."""
    at = datetime.fromisoformat(latest)
    first = (at.replace(day=1) + timedelta(days=32)).replace(day=1, hour=0, minute=0,
                                                             second=0, microsecond=0)
    return first.isoformat()


def _peak_rss() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def check(inputs: Path, decisions: str, until: str) -> tuple[bool, int, float]:
    """Decisions read back from Parquet == audit() of the same files, as sorted JSON; and
    the wall time of that single-process audit."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from policykit import audit
    from policykit.audit._readers import read_records

    raw = (r for p in sorted(inputs.glob("*.parquet")) for _n, r in read_records(p).records)
    wall = time.perf_counter()
    report = audit(raw, until=until)
    wall = time.perf_counter() - wall
    ref = sorted(d.model_dump_json() for d in report.trail)
    got = sorted(pd.read_parquet(decisions, columns=["decision"])["decision"])
    return got == ref, len(ref), wall


def read_types(policy_id: str) -> frozenset[str]:
    """The event types the policy's rules read (``RuleSpec.event_types``), plus
    ``employee.profile``: the directory a rule may look a salary or a role up in."""
    from policykit.distributed import PROFILE, _groups
    from policykit.pack import standard_pack

    policy = next((p for p in standard_pack() if p.id == policy_id), None)
    if policy is None:
        raise SystemExit(f"--check-policies: no policy {policy_id!r} in the standard pack "
                         f"({', '.join(p.id for p in standard_pack())})")
    types = {PROFILE}
    for group in _groups(policy):  # every version's rules
        for spec in group:
            types |= spec.event_types()
    return frozenset(types)


def check_sample(inputs: Path, decisions: str, policy_id: str, until: str, limit: int,
                 tmp: Path) -> tuple[int, int, bool | None, float]:
    """One policy's decisions in the distributed output == ``audit(policy=...)`` in one
    process of only the events it reads: the files streamed a row group at a time, the
    rows of its types kept (in file and row order) and written to one Parquet file, read
    back by audit()'s own reader. (events kept, decisions, equal or None when more than
    ``limit`` events were kept and the reference was not run, its wall time)."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    from policykit import audit
    from policykit.pack import standard_pack

    wanted = pa.array(sorted(read_types(policy_id)))
    kept = 0
    sample = tmp / f"{policy_id}.parquet"
    writer = None
    for path in sorted(inputs.glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH):
            rows = pa.Table.from_batches([batch]).filter(pc.is_in(batch["type"],
                                                                  value_set=wanted))
            if writer is None:
                writer = pq.ParquetWriter(sample, batch.schema)
            writer.write_table(rows)
            kept += rows.num_rows
    if writer is not None:
        writer.close()
    got = sorted(pd.read_parquet(decisions, columns=["decision"],
                                 filters=[("policy", "==", policy_id)])["decision"])
    if kept > limit:
        return kept, len(got), None, 0.0
    policy = next(p for p in standard_pack() if p.id == policy_id)
    wall = time.perf_counter()
    report = audit(str(sample), policy=[policy], until=until)
    wall = time.perf_counter() - wall
    ref = sorted(d.model_dump_json() for d in report.trail)
    return kept, len(got), got == ref, wall


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--events", type=int, default=10_000_000)
    ap.add_argument("--files", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/pk-dist"))
    ap.add_argument("--partitions", type=int, default=None,
                    help="distributed_audit(partitions=): shards per splittable group and "
                    "partitions of the first shuffle (default: its own, 2 per worker)")
    ap.add_argument("--memory-limit", default="11GiB",
                    help="LocalCluster memory_limit per worker; Dask spills held "
                    "partitions to --dir from 35%% of it, pauses a worker at 80%%")
    ap.add_argument("--until", default=None,
                    help="the audit's until, for the distributed run and every reference "
                    "run (default: the first day of the month after the last event)")
    ap.add_argument("--check-max", type=int, default=1_000_000,
                    help="up to this many events, check every decision against one "
                    "audit() of all files; above it, check --check-policies")
    ap.add_argument("--check-policies", default=",".join(SAMPLE),
                    help="policies checked one by one above --check-max (comma-separated)")
    ap.add_argument("--keep", action="store_true", help="keep the files and the output")
    ap.add_argument("--reuse", action="store_true",
                    help="audit the files an earlier --keep run (or an interrupted one) left "
                    "in --dir/in instead of writing new ones; needs --until")
    ap.add_argument("--check-only", action="store_true",
                    help="run the checks alone on the output an earlier --keep run left in "
                    "--dir/out; needs --until")
    ap.add_argument("--write-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    inputs, output = args.dir / "in", args.dir / "out"
    sample = [p for p in args.check_policies.split(",") if p]
    for pid in sample:
        read_types(pid)  # an unknown name fails now, not after the run
    if args.write_only:
        n, latest = write_files(args.events, args.files, inputs)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps({"written": n, "latest": latest,
                          "writer_peak_rss_mib": round(peak, 1)}))
        return 0
    if args.check_only:
        return check_only(args, inputs, output, sample)
    if args.reuse:
        if args.until is None or not any(inputs.glob("*.parquet")):
            ap.error(f"--reuse needs --until and Parquet files in {inputs}")
        for old in (output, args.dir / "spill"):
            shutil.rmtree(old, ignore_errors=True)
        until = args.until
        print(f"reusing {len(list(inputs.glob('*.parquet')))} Parquet files in {inputs}; "
              f"until {until}", flush=True)
    else:
        until = write(args)
    return audit_and_check(args, inputs, output, until, sample)


def write(args: argparse.Namespace) -> str:
    """The files, written by a child process; the audits' ``until``."""
    shutil.rmtree(args.dir, ignore_errors=True)
    t0 = time.perf_counter()
    child = subprocess.run([sys.executable, __file__, "--write-only", "--events",
                            str(args.events), "--files", str(args.files), "--dir",
                            str(args.dir)], check=True, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])})
    wrote = json.loads(child.stdout.strip().splitlines()[-1])
    until = args.until or month_after(wrote["latest"])
    print(f"wrote {wrote['written']:,} events as {args.files} Parquet files in "
          f"{time.perf_counter() - t0:.1f} s (writer peak RSS {wrote['writer_peak_rss_mib']} "
          f"MiB); last event {wrote['latest']}, until {until}", flush=True)
    return until


def audit_and_check(args: argparse.Namespace, inputs: Path, output: Path, until: str,
                    sample: list[str]) -> int:
    """The distributed audit of ``inputs`` on a LocalCluster, then the checks."""
    import dask

    # untyped: one Any for the cluster's constructors
    dist: Any = importlib.import_module("distributed")
    Client, LocalCluster = dist.Client, dist.LocalCluster

    from policykit.distributed import distributed_audit

    # Held partitions (the parsed files, the shuffles' outputs) go to disk early, so that a
    # task's own memory has room: the largest, the shard of first-responder R3 + R6 + R7
    # (run whole; 28% of the events), holds its partition's pickles and its rules' state
    # (docs/performance.md, "Audits on Dask").
    spill = {"distributed.worker.memory.target": 0.35, "distributed.worker.memory.spill": 0.45,
             "distributed.worker.memory.pause": 0.8,
             "distributed.worker.memory.terminate": 0.98}
    with dask.config.set(spill), \
            LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                         dashboard_address=None, memory_limit=args.memory_limit,
                         local_directory=str(args.dir / "spill")) as cluster, \
            Client(cluster) as client:
        load = os.getloadavg()
        wall, cpu = time.perf_counter(), time.process_time()
        summary = distributed_audit(inputs, until=until, output=output, client=client,
                                    partitions=args.partitions)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        workers = client.run(_peak_rss)
    print(f"distributed_audit: {summary.read:,} events, {summary.decisions:,} decisions, "
          f"{summary.quarantined} quarantined; {wall:.1f} s wall, "
          f"{summary.read / wall:,.0f} events/s on {args.workers} workers "
          f"(partitions {args.partitions or 'default'}, memory limit {args.memory_limit}); "
          f"driver CPU {cpu:.1f} s, driver peak RSS {peak:.0f} MiB (workers: "
          f"{', '.join(f'{v:.0f}' for v in workers.values())} MiB); load avg before "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    failed = run_checks(args, inputs, summary.decisions_path, summary.read, until, sample)
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
    return 1 if failed else 0


def run_checks(args: argparse.Namespace, inputs: Path, decisions: str, read: int,
               until: str, sample: list[str]) -> bool:
    """The checks of the output's ``decisions`` (see the module docstring); True if one
    found a difference."""
    failed = False
    if read <= args.check_max:
        same, n, single = check(inputs, decisions, until)
        print(f"equal to a single-process audit(): {same} ({n:,} decisions; that audit "
              f"took {single:.1f} s wall, {read / single:,.0f} events/s; load avg "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())})")
        return not same
    print(f"{read:,} events > --check-max {args.check_max:,}: checking the "
          f"decisions of {', '.join(sample)} against audit(policy=...) of the events "
          f"each reads", flush=True)
    for pid in sample:
        kept, n, ok, single = check_sample(inputs, decisions, pid, until, args.check_max,
                                           args.dir)
        if ok is None:
            print(f"  {pid}: {kept:,} events kept > --check-max {args.check_max:,}: "
                  f"too big for one process here, NOT checked ({n:,} decisions)")
            continue
        print(f"  {pid}: {kept:,} events kept, {n:,} decisions, equal: "
              f"{'yes' if ok else 'NO'} (reference {single:.1f} s wall, peak RSS "
              f"{_peak_rss():,.0f} MiB)", flush=True)
        failed = failed or not ok
    return failed


def check_only(args: argparse.Namespace, inputs: Path, output: Path,
               sample: list[str]) -> int:
    """The checks alone, of the output a ``--keep`` run left in ``--dir/out``."""
    import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

    decisions = output / "decisions"
    if args.until is None or not decisions.is_dir():
        raise SystemExit(f"--check-only needs --until and the output of a --keep run in "
                         f"{output}")
    read = sum(pq.ParquetFile(p).metadata.num_rows for p in sorted(inputs.glob("*.parquet")))
    print(f"checking the output in {output} of {read:,} events; until {args.until}",
          flush=True)
    return 1 if run_checks(args, inputs, str(decisions), read, args.until, sample) else 0


if __name__ == "__main__":
    sys.exit(main())
