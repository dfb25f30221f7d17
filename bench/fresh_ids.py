"""A stream where every event names new ids: what the session keeps per key, and for how long.

Each event is one of the event types the standard pack reads (a template per type, taken
from ``bench/generate.py``'s company), with every id in it (employee, request, customer,
post, guard, case, route...) replaced by a fresh one, one minute of event time after the
previous event. No case is ever followed up, so every open case stays open, every subject
is seen once: the worst case for per-key state. ``Engine().session()`` is fed the stream
one event at a time, and every ``--every`` events the benchmark reports the process RSS,
the live Python memory (``tracemalloc``, with ``--tracemalloc``: slower) and the number of
keys the rules hold.

    python bench/fresh_ids.py --events 1000000 --every 100000
    python bench/fresh_ids.py --events 160000 --every 160000 --lateness 60

The second times 12 late events with 160,000 events of fresh ids in state (and, as the
first, a snapshot and its restore at the end).

Left out: ``incident.detected``. A major incident is owed a progress update every
``track_every`` (incident-escalation R3) until it is resolved or expires, so a stream of
fresh incidents never resolved is a stream of decisions (a missed update and an escalation
per period per incident, for a year each: see ``expire_after``), not of state. The types
that start a population (``employee.profile``, ``customer.registered``,
``household.registered``, ``project.delivered``) are left out too: a recurrence keeps one
entry per member for as long as the member exists (the business, not the stream, sets that
size; see docs/reliability.md, "State growth").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
STEP = timedelta(minutes=1)
# 1M events a minute apart end in November 2026: within the calendar's holiday data.
START = datetime.fromisoformat("2025-01-01T00:00:00+08:00")

# One event of each type the pack reads, ids to be replaced (population starters excluded).
TEMPLATES: list[dict[str, Any]] = [
    {"type": "attendance.clock_in", "employee_id": "E"},
    {"type": "attendance.clock_out", "employee_id": "E"},
    {"type": "contact.received", "request_id": "R", "customer_id": "C", "employee_id": "E",
     "channel": "phone", "topic": "network", "in_remit": False, "finish_at_once": False,
     "major": True},
    {"type": "contact.received", "request_id": "R", "customer_id": "C", "employee_id": "E",
     "channel": "phone", "topic": "network", "in_remit": True, "finish_at_once": True,
     "major": False},
    {"type": "request.handed_over", "request_id": "R", "from_employee": "E",
     "to_employee": "E", "to_role": "manager", "registered": True},
    {"type": "request.resolved", "request_id": "R", "employee_id": "E"},
    {"type": "shift.started", "post_id": "P", "guard_id": "E"},
    {"type": "shift.ended", "post_id": "P", "guard_id": "E"},
    {"type": "shift.handover_recorded", "post_id": "P", "from_guard": "E", "to_guard": "E",
     "signed_by": ["E", "E"]},
    {"type": "patrol.round", "route_id": "RT", "guard_id": "E"},
    {"type": "visitor.arrived", "visit_id": "V", "post_id": "P", "employee_id": "E",
     "has_id_document": True, "registered": True, "admitted": True},
    {"type": "vehicle.arrived", "plate": "X", "post_id": "P", "employee_id": "E",
     "known": False, "registered": True, "admitted": True},
    {"type": "security.suspicious_checked", "post_id": "P", "employee_id": "E",
     "subject": "person", "recorded": True},
    {"type": "security.case_opened", "case_id": "CASE", "employee_id": "E"},
    {"type": "security.unsafe_found", "case_id": "UNSAFE", "employee_id": "E"},
    {"type": "security.unsafe_reported", "case_id": "UNSAFE", "employee_id": "E"},
    {"type": "complaint.received", "complaint_id": "CP", "household_id": "H",
     "employee_id": "E", "kind": "complaint"},
    {"type": "reply.promised", "question_id": "Q", "employee_id": "E",
     "promised_by": "+P2D", "household_id": "H"},
    {"type": "remote.session_started", "request_id": "R", "customer_id": "C",
     "employee_id": "E"},
    {"type": "onsite.dispatched", "request_id": "R", "site_id": "S", "employee_id": "E"},
    {"type": "duty.check", "employee_id": "E", "target": "T"},
    {"type": "duty.problem_found", "problem_id": "DP", "employee_id": "E", "target": "T"},
    {"type": "staff.private_call", "employee_id": "E", "duration_s": 66},
    {"type": "staff.complaint", "employee_id": "E", "source": "customer",
     "severity": "serious"},
    {"type": "staff.misconduct", "employee_id": "E", "kind": "unrelated_browsing"},
    {"type": "report.submitted", "report": "daily", "employee_id": "E",
     "department": "customer_service"},
    {"type": "feedback.recorded", "item_id": "FB", "employee_id": "E", "household_id": "H"},
    {"type": "inspection.done", "project_id": "PRJ", "employee_id": "E", "findings": 0},
    {"type": "forum.held", "site_id": "S", "employee_id": "E"},
    {"type": "attendance.leave", "employee_id": "E", "start": "+P1D", "end": "+P1D",
     "kind": "sick"},
]
_PLAIN = {"type", "channel", "topic", "in_remit", "finish_at_once", "major", "to_role",
          "registered", "has_id_document", "admitted", "known", "subject", "recorded", "kind",
          "severity", "source", "report", "department", "findings", "duration_s"}


def fresh_events(n: int, start: datetime = START, step: timedelta = STEP
                 ) -> Iterator[dict[str, Any]]:
    """``n`` events, each with ids never used before, ``step`` apart from ``start``."""
    for i in range(n):
        tpl = TEMPLATES[i % len(TEMPLATES)]
        at = start + step * i
        ev: dict[str, Any] = {"id": f"fx-{i:08d}", "at": at.isoformat()}
        for k, v in tpl.items():
            if k in _PLAIN:
                ev[k] = v
            elif isinstance(v, list):
                ev[k] = [f"{x}-{i}" for x in v]
            elif isinstance(v, str) and v.startswith("+P"):
                days = int(v[2:-1])
                ev[k] = ((at + timedelta(days=days)).date().isoformat() if k in ("start", "end")
                         else (at + timedelta(days=days)).isoformat())
            else:
                ev[k] = f"{v}-{i}"
        yield ev


def rule_keys(session: Any) -> dict[str, int]:
    """Entries each rule's state holds (the sizes of its top-level containers, summed
    one level down for nested per-key maps), by ``policy/rule``."""
    state = session._ev.export_state()
    out: dict[str, int] = {}
    for policy, states in zip(session._policies, state["rules"], strict=True):
        for spec, st in zip(policy.specs, states, strict=True):
            n = 0
            for v in st.values():
                if isinstance(v, dict | list | set):
                    n += len(v)
            out[f"{policy.id}/{spec.id}"] = n
    out["(timers)"] = len(state["heap"])
    out["(seen ids)"] = len(session._seen)
    return out


def _rss_mib() -> float:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    except (OSError, ValueError):
        return -1.0


def late_events(session: Any, last: datetime, allowed: timedelta, n: int = 12
                ) -> list[float]:
    """Feed ``n`` late events (a clock-in, a major contact: both open new keys) spread over
    the allowance behind ``last``; the milliseconds each took."""
    took: list[float] = []
    for i in range(n):
        at = last - allowed * (n - i) / (n + 1)
        if i % 2 == 0:
            ev: dict[str, Any] = {"type": "attendance.clock_in", "employee_id": f"EL{i}"}
        else:
            ev = {"type": "contact.received", "request_id": f"RL{i}", "customer_id": f"CL{i}",
                  "employee_id": f"EL{i}", "channel": "phone", "topic": "x",
                  "in_remit": False, "finish_at_once": False, "major": True}
        ev.update(id=f"late-{i}", at=at.isoformat())
        t = time.perf_counter()
        session.feed(ev)
        took.append(round((time.perf_counter() - t) * 1000, 1))
    return took


def run(events: int, every: int, backend: str, trace: bool, top: int,
        lateness: timedelta | None = None) -> dict[str, Any]:
    import statistics
    import tracemalloc

    from policykit import Engine

    if trace:
        tracemalloc.start()
    samples: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    decisions = 0
    result: dict[str, Any] = {}
    engine = Engine(backend=backend)
    with engine.session(allowed_lateness=lateness) as session:
        ev: dict[str, Any] = {}
        for n, ev in enumerate(fresh_events(events), 1):
            decisions += len(session.feed(ev))
            if n % every == 0 or n == events:
                keys = rule_keys(session)
                sample: dict[str, Any] = {
                    "events": n, "event_time": ev["at"], "rss_mib": _rss_mib(),
                    "peak_rss_mib": round(
                        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "rule_keys": sum(v for k, v in keys.items() if not k.startswith("(")),
                    "timers": keys["(timers)"], "seen_ids": keys["(seen ids)"],
                    "largest": sorted(((v, k) for k, v in keys.items()
                                       if not k.startswith("(")), reverse=True)[:top],
                }
                if trace:
                    cur, peak = tracemalloc.get_traced_memory()
                    sample["live_mib"] = round(cur / 2**20, 1)
                    sample["live_peak_mib"] = round(peak / 2**20, 1)
                samples.append(sample)
                print(json.dumps(sample), file=sys.stderr, flush=True)
        if lateness is not None and ev:
            took = late_events(session, datetime.fromisoformat(ev["at"]), lateness)
            result["late_event_ms"] = took
            result["late_event_median_ms"] = statistics.median(took)
        t = time.perf_counter()
        snap = session.snapshot()
        result["snapshot_s"] = round(time.perf_counter() - t, 2)
        result["snapshot_bytes"] = len(snap)
        t = time.perf_counter()
        engine.restore(snap).close()
        result["restore_s"] = round(time.perf_counter() - t, 2)
        print(json.dumps(result), file=sys.stderr, flush=True)
    return {"events": events, "backend": backend, "decisions": decisions,
            "lateness": None if lateness is None else str(lateness), **result,
            "samples": samples}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--every", type=int, default=100_000)
    ap.add_argument("--backend", default="native")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="also report live Python memory (slower)")
    ap.add_argument("--top", type=int, default=5, help="largest rule states to list")
    ap.add_argument("--lateness", type=int, metavar="MINUTES",
                    help="open the session with allowed_lateness of this many minutes and, "
                         "at the end, time 12 late events spread over it")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    lateness = timedelta(minutes=args.lateness) if args.lateness else None
    result = run(args.events, args.every, args.backend, args.tracemalloc, args.top, lateness)
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
