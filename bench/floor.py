"""The floors policykit's audit is measured against.

1. :func:`parse_floor` — parse and validate JSONL into the pydantic event models and nothing
   else: ``policykit.models.parsing.parse_event`` per line, ``parse_texts`` per chunk of
   lines (``bulk``: what the batch pipeline, so every audit, runs since issue 17: one
   pydantic call per chunk, the collector paused as the pipeline pauses it), and the
   bare pydantic path (``TypeAdapter(Event).validate_json`` per line) for reference.
2. :func:`lateness` — the lateness-deduction policy
   (docs/policies/lateness-deduction.md, default parameters:
   R1 late day after 08:30:00, R2 1% / 5% from the 3rd late day with ``tier_mode: all``,
   provisional running totals and the month's final, R3 more than 3 late days, R4 no sign-in
   on a working day without leave, R5 last clock-out before 17:30; guards, whose presence is
   their shifts, exempt from R1, R4 and R5 by role) written by hand in plain
   Python: no rule shapes, no decision models, just dicts and counters. The engine running the
   same policy alone is compared with it (``bench/run.py``), and the two must agree on every
   count and on the money (:func:`engine_counts` gives the engine's side).

Both take events already in (time, id) order, as the engine applies them, and like
``Engine.evaluate(events)`` without ``until`` they fire nothing due after the last event.

    python bench/floor.py LOG.jsonl      # parse floor, hand-written lateness, engine, agreement
    python bench/floor.py LOG.jsonl --ratios [RUNS]   # CPU: floors and the full pack's audit
    python bench/floor.py LOG.jsonl --profile  # where the bulk floor's time goes, by file
"""

from __future__ import annotations

import json
import sys
import time as _time
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from policykit.calendar import DEFAULT_CALENDAR, BusinessCalendar

__all__ = ["engine_counts", "lateness", "parse_floor"]

_CENT = Decimal("0.01")
_BASE_RATE = Decimal("0.01")
_TIER_RATE = Decimal("0.05")
_TIER_FROM = 3
_LIMIT = 3
_WORK_START = time(8, 30)
_WORK_END = time(17, 30)
_EXEMPT_ROLES = frozenset({"guard"})


def parse_floor(lines: Sequence[str], *, bare: bool = False, bulk: bool = False) -> float:
    """Seconds to parse and validate ``lines`` (JSONL rows) into event models (per line, each
    event dropped at once, as bench/run.py has always measured it; ``bulk``: see
    :func:`_floor`)."""
    if bulk:
        return _floor(lines, bulk=True)[0]
    if bare:
        from policykit.models.parsing import _ADAPTER

        validate = _ADAPTER.validate_json
        began = _time.perf_counter()
        for line in lines:
            validate(line)
        return _time.perf_counter() - began
    from policykit.models.parsing import parse_event

    began = _time.perf_counter()
    for line in lines:
        parse_event(line)
    return _time.perf_counter() - began


def _floor(lines: Sequence[str], *, bare: bool = False, bulk: bool = False
           ) -> tuple[float, float]:
    """(wall, CPU) seconds of one floor. Each keeps the events it makes and pauses the
    cyclic collector, as the batch pipeline does (the events live to the end of the run);
    freeing them is not timed (discarding each event at once would let the allocator reuse
    its memory, which the pipeline never does)."""
    import gc

    from policykit.models.parsing import _ADAPTER, parse_event

    kept: list[Any] = []
    collecting = gc.isenabled()
    gc.disable()
    try:
        wall, cpu = _time.perf_counter(), _time.process_time()
        if bulk:
            from policykit.engine._batch import _TEXTS
            from policykit.models.parsing import parse_texts

            for i in range(0, len(lines), _TEXTS):
                kept += parse_texts(lines[i:i + _TEXTS])
        elif bare:
            validate = _ADAPTER.validate_json
            kept = [validate(line) for line in lines]
        else:
            kept = [parse_event(line) for line in lines]
        wall, cpu = _time.perf_counter() - wall, _time.process_time() - cpu
        assert len(kept) == len(lines) and not any(isinstance(e, Exception) for e in kept)
        del kept
    finally:
        if collecting:
            gc.enable()
    return wall, cpu


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def lateness(events: Iterable[Any], calendar: BusinessCalendar = DEFAULT_CALENDAR
             ) -> tuple[Counter[str], Decimal]:
    """The lateness-deduction policy by hand: counts per ``rule:outcome`` and the sum of the
    months' final deductions. ``events`` are models (or anything with ``type``, ``at`` and
    the fields) in (time, id) order."""
    tz = calendar.tz()
    working: dict[date, bool] = {}
    out: Counter[str] = Counter()
    total_final = Decimal(0)
    salary: dict[str, Decimal] = {}
    exempt: set[str] = set()                  # employees whose latest profile is exempt
    anchor: dict[str, datetime] = {}          # R4 population: first profile time
    leave: dict[str, list[tuple[date, date]]] = {}
    first_in: dict[str, datetime] = {}        # R1: first clock-in of the open day
    signed: set[str] = set()                  # R4: clocked in at/after their anchor today
    last_out: dict[str, datetime] = {}        # R5: last clock-out of the open day
    late_days: dict[str, int] = {}            # R2/R3: late days of the open month
    day: date | None = None
    month: tuple[int, int] | None = None

    def is_working(d: date) -> bool:
        w = working.get(d)
        if w is None:
            w = working[d] = calendar.is_working_day(d)
        return w

    def new_day() -> None:
        first_in.clear()
        signed.clear()
        last_out.clear()

    def close_day(d: date) -> None:
        if not is_working(d):
            new_day()
            return
        end = datetime.combine(d, _WORK_END, tz)
        out["R5:early"] += sum(1 for t in last_out.values() if t < end)
        day_end = datetime.combine(d + timedelta(days=1), time(), tz)
        for emp, since in anchor.items():
            if emp in signed or since >= day_end:
                continue
            if any(a <= d <= b for a, b in leave.get(emp, ())):
                continue
            out["R4:no_sign_in"] += 1
        new_day()

    def close_month() -> None:
        nonlocal total_final
        for emp, n in late_days.items():
            pay = salary.get(emp)
            if pay is None:
                out["R2:salary_unknown"] += 1
                continue
            amount = n * _cents(pay * (_TIER_RATE if n >= _TIER_FROM else _BASE_RATE))
            out["R2:total"] += 1
            total_final += amount
        late_days.clear()

    for ev in events:
        local = ev.at.astimezone(tz)
        d = local.date()
        if d != day:
            if day is not None:
                while day < d:
                    close_day(day)
                    nxt = day + timedelta(days=1)
                    if (nxt.year, nxt.month) != month:
                        close_month()
                        month = (nxt.year, nxt.month)
                    day = nxt
            else:
                month = (d.year, d.month)
            day = d
        kind = ev.type
        if kind == "attendance.clock_in":
            emp = ev.employee_id
            since = anchor.get(emp)
            if since is not None and ev.at >= since:
                signed.add(emp)
            if emp in first_in or emp in exempt or not is_working(d):
                continue
            first_in[emp] = ev.at
            if local.time() > _WORK_START:
                out["R1:late"] += 1
                n = late_days[emp] = late_days.get(emp, 0) + 1
                if n == _LIMIT + 1:
                    out["R3:over_limit"] += 1
                out["R2:running" if emp in salary else "R2:salary_unknown"] += 1
        elif kind == "attendance.clock_out":
            if is_working(d) and ev.employee_id not in exempt:
                last_out[ev.employee_id] = ev.at
        elif kind == "employee.profile":
            emp = ev.employee_id
            salary[emp] = Decimal(ev.base_salary)
            if ev.role in _EXEMPT_ROLES:
                exempt.add(emp)
                anchor.pop(emp, None)
            else:
                exempt.discard(emp)
                anchor.setdefault(emp, ev.at)
        elif kind == "attendance.leave":
            leave.setdefault(ev.employee_id, []).append((ev.start, ev.end))
    return out, total_final


def engine_counts(decisions: Iterable[Any]) -> tuple[Counter[str], Decimal]:
    """The same figures from the engine's lateness-deduction decisions."""
    out: Counter[str] = Counter()
    total = Decimal(0)
    for d in decisions:
        if d.policy != "lateness-deduction":
            continue
        outcome = d.details.get("outcome")
        out[f"{d.rule}:{outcome}"] += 1
        if d.rule == "R2" and outcome == "total" and d.amount is not None:
            total += d.amount
    return out, total


def ratios(path: str, runs: int = 3) -> dict[str, Any]:
    """CPU seconds (best of ``runs``, alternating) of the floors (see :func:`_floor`) and of
    the full pack's ``Engine().evaluate`` over the log's text (what bench/run.py's audit
    task times: it parses in bulk and evaluates), and the audit's ratio to each floor."""
    import os

    from policykit import Engine

    text = Path(path).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip()]
    engine = Engine()
    best: dict[str, float] = {}

    def keep(name: str, took: float) -> None:
        best[name] = min(best.get(name, took), took)

    import policykit.models.parsing as parsing

    bulk = hasattr(parsing, "parse_texts")  # not before issue 17's third pass: compare
    for _ in range(runs):
        keep("validate_json_per_line", _floor(lines, bare=True)[1])
        keep("parse_event_per_line", _floor(lines)[1])
        if bulk:
            keep("parse_texts_bulk", _floor(lines, bulk=True)[1])
        began = _time.process_time()
        engine.evaluate(text)
        keep("full_pack_evaluate", _time.process_time() - began)
    n = len(lines)
    out: dict[str, Any] = {"events": n, "runs": runs}
    out.update({f"{k}_us": round(v / n * 1e6, 2) for k, v in best.items()})
    out["audit_x_parse_event_floor"] = round(best["full_pack_evaluate"]
                                             / best["parse_event_per_line"], 2)
    out["load_average"] = [round(x, 2) for x in os.getloadavg()]
    if not bulk:
        return out
    out["floor_speedup_vs_validate_json"] = round(best["validate_json_per_line"]
                                                  / best["parse_texts_bulk"], 2)
    out["floor_speedup_vs_parse_event"] = round(best["parse_event_per_line"]
                                                / best["parse_texts_bulk"], 2)
    out["audit_x_bulk_floor"] = round(best["full_pack_evaluate"] / best["parse_texts_bulk"], 2)
    return out


def profile_floor(path: str) -> None:
    """cProfile of the bulk floor over ``path``: own time by function and by file."""
    import cProfile
    import gc
    import pstats

    from policykit.engine._batch import _TEXTS
    from policykit.models.parsing import parse_texts

    lines = [ln for ln in Path(path).read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept: list[Any] = []
    prof = cProfile.Profile()
    gc.disable()  # as the pipeline (and the timed floor) runs it
    prof.enable()
    for i in range(0, len(lines), _TEXTS):
        kept += parse_texts(lines[i:i + _TEXTS])
    prof.disable()
    gc.enable()
    stats: Any = pstats.Stats(prof)
    total = sum(row[2] for row in stats.stats.values())
    by_file: Counter[str] = Counter()
    for (file, _line, name), row in stats.stats.items():
        by_file[Path(file).name if file != "~" else f"built-in ({name})"] += row[2]
    print(f"{len(lines)} lines, {total:.2f} s of own time under cProfile; by file:")
    for file, tt in by_file.most_common(12):
        print(f"  {tt / total:6.1%}  {file}")
    print("by function:")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:15]
    for (file, line, name), row in rows:
        print(f"  {row[2] / total:6.1%}  {name} ({Path(file).name}:{line})")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    if len(args) == 2 and args[1] == "--profile":
        profile_floor(args[0])
        return 0
    if len(args) in (2, 3) and args[1] == "--ratios":
        print(json.dumps(ratios(args[0], int(args[2]) if len(args) == 3 else 3)))
        return 0
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    from policykit import Engine
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    lines = [ln for ln in Path(args[0]).read_text(encoding="utf-8").splitlines() if ln.strip()]
    took = parse_floor(lines)
    bare = parse_floor(lines, bare=True)
    bulk = parse_floor(lines, bulk=True)
    events = sorted((parse_event(ln) for ln in lines), key=lambda e: (e.at, e.id))
    began = _time.perf_counter()
    mine, money = lateness(events)
    hand = _time.perf_counter() - began
    engine = Engine(standard_pack().select("lateness-deduction"))
    began = _time.perf_counter()
    decisions = engine.evaluate(events)
    eng = _time.perf_counter() - began
    theirs, their_money = engine_counts(decisions)
    n = len(lines)
    print(json.dumps({
        "events": n,
        "parse_validate_events_per_s": round(n / took),
        "bulk_parse_validate_events_per_s": round(n / bulk),
        "bare_pydantic_events_per_s": round(n / bare),
        "hand_written_lateness_events_per_s": round(n / hand),
        "engine_lateness_events_per_s": round(n / eng),
        "ratio": round(eng / hand, 1),
        "agree": mine == theirs and money == their_money,
        "hand": dict(sorted(mine.items())), "engine": dict(sorted(theirs.items())),
        "money": [str(money), str(their_money)],
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
