"""policykit's benchmark: throughput, memory and latency against the floors it is held to.

One command (from the repository root) measures everything and writes the JSON results and
the table of docs/performance.md::

    python bench/run.py --sizes 100000,1000000 --repeat 3 \
        --out bench/results/latest.json --doc docs/performance.md

For each backend that can be built here (``native``; ``durable`` when
``Engine(backend="durable")`` constructs, otherwise it is skipped with the reason), on
generated logs of each size (``bench/generate.py``, cached under ``bench/results/data/``)
and on the real BPIC 2013 incident log (``bench/bpic.py``, one customer per request):

- ``audit``: the full standard pack from JSONL — ``Engine(...).evaluate(jsonl_text)``, so
  parse + validate + evaluate — events/s and the peak RSS of the process;
- ``stream``: ``Session.feed`` of each (already parsed) event, latency p50/p99/max, and the
  RSS after each tenth of the stream (flat = state of closed cases is freed);
- the floors: ``parse`` (``parse_event`` per line into the pydantic models: what every audit
  pays; and bare ``TypeAdapter(Event).validate_json`` for reference), and ``lateness`` (the
  hand-written plain-Python lateness policy of ``bench/floor.py`` vs the engine running the
  lateness-deduction policy alone, on the same parsed events; the two must agree).

Every measurement runs in a fresh subprocess (so peak RSS is its own), ``--repeat`` times;
the median is reported, with wall and CPU (process) time and the 1-minute load average
before and after it: the machine is shared, and under load CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = HERE / "results" / "data"
BEGIN = "<!-- bench:begin -->"
END = "<!-- bench:end -->"
MONTHS = 3                 # generated logs cover a quarter: month and quarter closes included
EVENTS_PER_EMPLOYEE_MONTH = 190  # measured on bench/generate.py's company, to size the logs
SEED = 20260301


# ---------------------------------------------------------------------------- machine


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) // 1024 // 1024} GiB"
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem,
            "python": platform.python_version(), "platform": platform.platform()}


def loadavg() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except OSError:
        return -1.0


# ---------------------------------------------------------------------------- data


def generated(size: int) -> Path:
    """A generated log of exactly ``size`` events (the first ``size`` of a company sized to
    produce a little more over MONTHS months), cached."""
    path = DATA / f"generated-{size}.jsonl"
    if path.exists():
        return path
    sys.path.insert(0, str(HERE))
    from generate import dumps, generate  # type: ignore[import-not-found,unused-ignore]

    DATA.mkdir(parents=True, exist_ok=True)
    employees = max(12, round(size * 1.05 / (MONTHS * EVENTS_PER_EMPLOYEE_MONTH)))
    tmp = path.with_suffix(".tmp")
    for _attempt in range(4):
        n = 0
        with tmp.open("w", encoding="utf-8", newline="\n") as fh:
            for ev in generate(employees, MONTHS, SEED):
                fh.write(dumps(ev) + "\n")
                n += 1
                if n == size:
                    break
        if n == size:
            break
        employees = round(employees * size / max(n, 1) * 1.05)  # a bigger company, again
    else:
        raise SystemExit(f"could not generate {size} events in {MONTHS} months")
    tmp.rename(path)
    (DATA / f"generated-{size}.meta.json").write_text(json.dumps(
        {"employees": employees, "months": MONTHS, "seed": SEED, "events": n}))
    return path


LONG_EMPLOYEES, LONG_MONTHS = 44, 132  # a growing company, 2016 on (docs/performance.md, Memory)


def long_stream(size: int) -> Path:
    """A long stream: the first ``size`` events of a 44-employee company from January 2016
    (1M events is about seven and a half years), cached. The ``stream`` task runs on it:
    memory over years of event time, where closed cases must be forgotten."""
    from datetime import date

    path = DATA / f"long-{size}.jsonl"
    if path.exists():
        return path
    sys.path.insert(0, str(HERE))
    from generate import dumps, generate  # type: ignore[import-not-found,unused-ignore]

    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    n = 0
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for ev in generate(LONG_EMPLOYEES, LONG_MONTHS, SEED, start=date(2016, 1, 1)):
            fh.write(dumps(ev) + "\n")
            n += 1
            if n == size:
                break
    if n < size:
        raise SystemExit(f"the long stream has only {n} events, not {size}")
    tmp.rename(path)
    (DATA / f"long-{size}.meta.json").write_text(json.dumps(
        {"employees": LONG_EMPLOYEES, "months": LONG_MONTHS, "start": "2016-01-01",
         "seed": SEED, "events": n}))
    return path


def bpic() -> Path | None:
    """The BPIC 2013 incident log as events (one customer per service request), cached;
    None when the log is not on this machine (it is not part of the repository)."""
    path = DATA / "bpic2013-request.jsonl"
    if path.exists():
        return path
    sys.path.insert(0, str(HERE))
    from bpic import DEFAULT_PATH, read_bpic  # type: ignore[import-not-found,unused-ignore]

    if not Path(DEFAULT_PATH).exists():
        return None

    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8", newline="\n") as fh:
        for ev in read_bpic(customer="request"):
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return path


# ---------------------------------------------------------------------------- measurements
# Each runs in its own process (``--child``) and returns a flat dict of figures.


def _lines(path: str) -> list[str]:
    return [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]


def _count(path: Path) -> int:
    with path.open(encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def _rss_mib() -> float:
    """Current resident set size (Linux), MiB."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError):
        return -1.0


def _peak_mib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def task_parse(path: str, backend: str) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from floor import parse_floor  # type: ignore[import-not-found,unused-ignore]

    lines = _lines(path)
    began = time.process_time()
    wall = parse_floor(lines)
    cpu = time.process_time() - began
    began = time.process_time()
    bare = parse_floor(lines, bare=True)
    bare_cpu = time.process_time() - began
    return {"events": len(lines), "wall_s": wall, "cpu_s": cpu, "bare_wall_s": bare,
            "bare_cpu_s": bare_cpu, "peak_rss_mib": _peak_mib()}


def task_audit(path: str, backend: str) -> dict[str, Any]:
    from policykit import Engine

    text = Path(path).read_text(encoding="utf-8")
    events = text.count("\n")
    engine = Engine(backend=backend)
    before = _rss_mib()
    decisions, wall, cpu = _timed(lambda: engine.evaluate(text))
    return {"events": events, "decisions": len(decisions), "wall_s": wall, "cpu_s": cpu,
            "rss_before_mib": before, "peak_rss_mib": _peak_mib()}


def task_stream(path: str, backend: str) -> dict[str, Any]:
    from policykit import Engine
    from policykit.models.parsing import parse_event

    total = _count(Path(path))
    marks = {max(1, total * k // 10): k for k in range(1, 11)}
    rss: list[float] = []
    lat: list[int] = []
    decisions = 0
    clock = time.perf_counter_ns
    cpu0 = time.process_time()
    with Engine(backend=backend).session() as session, open(path, encoding="utf-8") as fh:
        rss.append(_rss_mib())
        for n, line in enumerate(fh, 1):
            event = parse_event(line)  # parsing is not part of feed latency
            t = clock()
            decisions += len(session.feed(event))
            lat.append(clock() - t)
            if n in marks:
                rss.append(_rss_mib())
    cpu = time.process_time() - cpu0
    lat.sort()

    def pct(q: float) -> float:
        return round(lat[min(len(lat) - 1, int(q * len(lat)))] / 1000, 1)

    return {"events": len(lat), "decisions": decisions, "p50_us": pct(0.50),
            "p99_us": pct(0.99), "max_us": round(lat[-1] / 1000, 1),
            "mean_us": round(sum(lat) / len(lat) / 1000, 1), "cpu_s": cpu,
            "rss_by_tenth_mib": rss, "peak_rss_mib": _peak_mib()}


def task_lateness(path: str, backend: str) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from floor import engine_counts, lateness  # type: ignore[import-not-found,unused-ignore]

    from policykit import Engine
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    events = sorted((parse_event(ln) for ln in _lines(path)), key=lambda e: (e.at, e.id))
    (hand, money), hand_wall, hand_cpu = _timed(lambda: lateness(events))
    engine = Engine(standard_pack().select("lateness-deduction"), backend=backend)
    decisions, wall, cpu = _timed(lambda: engine.evaluate(events))
    theirs, their_money = engine_counts(decisions)
    return {"events": len(events), "hand_wall_s": hand_wall, "hand_cpu_s": hand_cpu,
            "wall_s": wall, "cpu_s": cpu, "agree": hand == theirs and money == their_money,
            "counts": dict(sorted(hand.items())), "deductions": str(money),
            "engine_counts": dict(sorted(theirs.items())), "engine_deductions": str(their_money)}


TASKS: dict[str, Callable[[str, str], dict[str, Any]]] = {
    "parse": task_parse, "audit": task_audit, "stream": task_stream, "lateness": task_lateness,
}


def child(spec: str) -> int:
    task = json.loads(spec)
    result = TASKS[task["task"]](task["path"], task["backend"])
    print(json.dumps(result))
    return 0


def measure(task: str, path: Path, backend: str, repeat: int, log: Callable[[str], None]
            ) -> dict[str, Any]:
    """``repeat`` fresh-process runs of ``task``; the median of every figure, and the runs."""
    runs: list[dict[str, Any]] = []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    for i in range(repeat):
        load0 = loadavg()
        spec = json.dumps({"task": task, "path": str(path), "backend": backend})
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", spec],
                              capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            raise RuntimeError(f"{task} on {path.name} ({backend}) failed:\n{proc.stderr}")
        run = json.loads(proc.stdout.strip().splitlines()[-1])
        run["load_before"], run["load_after"] = load0, loadavg()
        runs.append(run)
        log(f"  {task:8s} {path.name} [{backend}] run {i + 1}/{repeat}: "
            + ", ".join(f"{k}={v:.3g}" for k, v in run.items()
                        if isinstance(v, float) and k.endswith(("_s", "_us"))))
    median: dict[str, Any] = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            median[key] = value if all(r[key] == value for r in runs) else [r[key] for r in runs]
        else:
            median[key] = statistics.median(r[key] for r in runs)
    median["runs"] = runs
    return median


def backends(log: Callable[[str], None]) -> tuple[list[str], dict[str, str]]:
    """The backends that construct here, and why the others were skipped."""
    from policykit.engine import BACKENDS, Engine

    ok: list[str] = []
    skipped: dict[str, str] = {}
    for name in BACKENDS:
        try:
            Engine(backend=name)
        except Exception as exc:  # an optional backend: any failure means "not here"
            skipped[name] = f"{type(exc).__name__}: {exc}"
            log(f"backend {name} skipped: {skipped[name]}")
        else:
            ok.append(name)
    return ok, skipped


# ---------------------------------------------------------------------------- report


def derive(result: dict[str, Any]) -> None:
    """Throughputs, ratios and the targets, added to ``result`` in place."""
    for ds in result["datasets"].values():
        n = ds["events"]
        floor = ds.get("parse")
        if floor:
            floor["events_per_s"] = n / floor["wall_s"]
            floor["events_per_cpu_s"] = n / floor["cpu_s"]
            floor["bare_events_per_s"] = n / floor["bare_wall_s"]
        for b in ds["backends"].values():
            audit = b.get("audit")
            if audit:
                audit["events_per_s"] = n / audit["wall_s"]
                audit["events_per_cpu_s"] = n / audit["cpu_s"]
                if floor:
                    audit["x_parse_floor_cpu"] = audit["cpu_s"] / floor["cpu_s"]
                    audit["x_parse_floor_wall"] = audit["wall_s"] / floor["wall_s"]
                    audit["x_bare_pydantic_cpu"] = audit["cpu_s"] / floor["bare_cpu_s"]
            late = b.get("lateness")
            if late:
                late["x_hand_cpu"] = late["cpu_s"] / late["hand_cpu_s"]
                late["x_hand_wall"] = late["wall_s"] / late["hand_wall_s"]
    sizes = sorted((ds["events"], name) for name, ds in result["datasets"].items()
                   if name.startswith("generated"))
    targets: list[dict[str, Any]] = []
    for name, ds in result["datasets"].items():
        for backend, b in ds["backends"].items():
            if "audit" in b and "x_parse_floor_cpu" in b["audit"]:
                x = b["audit"]["x_parse_floor_cpu"]
                targets.append({"target": "audit within 2x parse+validate floor (CPU)",
                                "dataset": name, "backend": backend, "value": round(x, 2),
                                "met": x <= 2.0})
            if "lateness" in b:
                x = b["lateness"]["x_hand_cpu"]
                targets.append({"target": "lateness within 10x hand-written (CPU)",
                                "dataset": name, "backend": backend, "value": round(x, 2),
                                "met": x <= 10.0, "agree": b["lateness"]["agree"]})
            if backend == "durable" and "audit" in b:
                eps = b["audit"]["events_per_cpu_s"]
                targets.append({"target": "durable >= 40k events/s full pack (CPU)",
                                "dataset": name, "backend": backend, "value": round(eps),
                                "met": eps >= 40_000})
    if len(sizes) >= 2:
        (n0, small), (n1, big) = sizes[0], sizes[-1]
        for backend in result["datasets"][big]["backends"]:
            a0 = result["datasets"][small]["backends"].get(backend, {}).get("audit")
            a1 = result["datasets"][big]["backends"][backend].get("audit")
            if a0 and a1:
                x = a1["cpu_s"] / a0["cpu_s"]
                allowed = 1.2 * n1 / n0
                targets.append({"target": f"linear: {n1:,} within {allowed:g}x of {n0:,} (CPU)",
                                "dataset": big, "backend": backend, "value": round(x, 2),
                                "met": x <= allowed})
    result["targets"] = targets


def _k(x: float) -> str:
    return f"{x / 1000:,.1f}k"


def table(result: dict[str, Any]) -> str:
    """The markdown shown in docs/performance.md."""
    m = result["machine"]
    out = [
        f"Measured {result['started']} on {m['nproc']} × {m['cpu']} ({m['memory']}), "
        f"Python {m['python']}; median of {result['repeat']} runs, each in a fresh process.",
        "",
        "```",
        result["command"],
        "```",
        "",
    ]
    if result["skipped"]:
        out += ["Skipped backends: " + "; ".join(f"`{k}` ({v})" for k, v in
                                                  result["skipped"].items()), ""]
    out += ["| dataset | events | backend | audit events/s (wall) | audit events/s (CPU) | "
            "× parse floor (CPU) | peak RSS | feed p50 / p99 | load avg |",
            "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for name, ds in result["datasets"].items():
        for backend, b in ds["backends"].items():
            a, s = b.get("audit"), b.get("stream")
            if not a:
                continue
            loads = [r["load_before"] for r in a["runs"]] + [r["load_after"] for r in a["runs"]]
            feed = f"{s['p50_us']:.0f} / {s['p99_us']:.0f} µs" if s else "—"
            out.append(
                f"| {name} | {ds['events']:,} | {backend} | {_k(a['events_per_s'])} | "
                f"{_k(a['events_per_cpu_s'])} | {a.get('x_parse_floor_cpu', 0):.2f}× | "
                f"{a['peak_rss_mib']:,.0f} MiB | {feed} | {min(loads):.1f}–{max(loads):.1f} |")
    out += ["", "Floors (same files, same processes' kind):", "",
            "| dataset | parse+validate (`parse_event`) events/s wall / CPU | bare pydantic "
            "`validate_json` events/s | lateness: hand-written events/s (CPU) | lateness: "
            "engine events/s (CPU) | engine ÷ hand | agree |",
            "|---|---:|---:|---:|---:|---:|---|"]
    for name, ds in result["datasets"].items():
        p = ds.get("parse")
        for b in ds["backends"].values():
            late = b.get("lateness")
            if not p:
                continue
            n = ds["events"]
            lt = (f"{_k(n / late['hand_cpu_s'])} | {_k(n / late['cpu_s'])} | "
                  f"{late['x_hand_cpu']:.1f}× | {late['agree']}") if late else "— | — | — | —"
            out.append(f"| {name} | {_k(p['events_per_s'])} / {_k(p['events_per_cpu_s'])} | "
                       f"{_k(p['bare_events_per_s'])} | {lt} |")
    out += ["", "Streaming RSS after each tenth of the stream (MiB; the parsed events are not "
            "kept, so growth is the session's state):", ""]
    for name, ds in result["datasets"].items():
        for backend, b in ds["backends"].items():
            s = b.get("stream")
            if s:
                rss = s["rss_by_tenth_mib"]
                if isinstance(rss, list) and rss and isinstance(rss[0], list):
                    rss = rss[0]
                out.append(f"- {name} [{backend}]: " + ", ".join(f"{x:.0f}" for x in rss))
    out += ["", "| target | dataset | backend | measured | met |", "|---|---|---|---:|---|"]
    for t in result["targets"]:
        out.append(f"| {t['target']} | {t['dataset']} | {t['backend']} | {t['value']:,} | "
                   f"{'yes' if t['met'] else '**no**'} |")
    return "\n".join(out) + "\n"


def write_doc(path: Path, text: str) -> None:
    """Replace the text between the bench markers of ``path`` (append them if absent)."""
    body = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{text}{END}"
    if BEGIN in body and END in body:
        head, rest = body.split(BEGIN, 1)
        body = head + block + rest.split(END, 1)[1]
    else:
        body = body + ("\n" if body else "") + block + "\n"
    path.write_text(body, encoding="utf-8")


# ---------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--sizes", default="100000,1000000",
                    help="generated log sizes in events, comma-separated (default %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median; >= 3)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "latest.json")
    ap.add_argument("--doc", type=Path, help="also write the table into this markdown file")
    ap.add_argument("--no-bpic", action="store_true", help="skip the BPIC 2013 log")
    ap.add_argument("--long", type=int, default=1_000_000,
                    help="events of the long stream (years of event time; stream task only; "
                         "0 to skip; default %(default)s)")
    ap.add_argument("--tasks", default="parse,audit,stream,lateness",
                    help="what to measure (default %(default)s)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # run as a script from anywhere: import this checkout
    if args.child:
        return child(args.child)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    sizes = [int(s) for s in args.sizes.split(",") if s]
    tasks = [t for t in args.tasks.split(",") if t]
    started = datetime.now(UTC).isoformat(timespec="seconds")  # when measured: not engine time
    ok, skipped = backends(log)
    datasets: dict[str, Path] = {}
    for size in sizes:
        log(f"data: generated log of {size:,} events ...")
        datasets[f"generated-{size // 1000}k"] = generated(size)
    if not args.no_bpic:
        log("data: BPIC 2013 incidents ...")
        real = bpic()
        if real is None:
            log("  skipped: the BPIC 2013 log is not here (see bench/bpic.py for where it is read)")
        else:
            datasets["bpic2013"] = real
    if args.long and "stream" in tasks:
        log(f"data: long stream of {args.long:,} events ...")
        datasets[f"long-{args.long // 1000}k"] = long_stream(args.long)
    # Smallest first (the real log among them): results are written after each data set,
    # so a long run interrupted still leaves the quick ones.
    datasets = dict(sorted(datasets.items(), key=lambda kv: _count(kv[1])))
    result: dict[str, Any] = {
        "command": "python bench/run.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "started": started, "machine": machine(), "repeat": args.repeat,
        "backends": ok, "skipped": skipped, "datasets": {},
    }
    for name, path in datasets.items():
        events = _count(path)
        ds: dict[str, Any] = {"file": str(path.relative_to(ROOT)), "events": events,
                              "backends": {b: {} for b in ok}}
        meta = path.with_name(path.stem + ".meta.json")
        if meta.exists():
            ds["generator"] = json.loads(meta.read_text())
        long = name.startswith("long")
        if "parse" in tasks and not long:
            ds["parse"] = measure("parse", path, "native", args.repeat, log)
        for backend in ok:
            for task in ("audit", "stream", "lateness"):
                if task in tasks and (task == "stream" or not long):
                    ds["backends"][backend][task] = measure(task, path, backend, args.repeat,
                                                            log)
        result["datasets"][name] = ds
        derive(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    derive(result)
    args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")
    text = table(result)
    if args.doc:
        write_doc(args.doc, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
