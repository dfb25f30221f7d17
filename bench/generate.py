"""Realistic mixed event logs for the whole policy pack, in the wire format of docs/events.md.

The events are plain JSON-able dicts (no dependency on policykit's models), yielded in
event-time order one day at a time (plus follow-ups scheduled for later days), with ids
``ev-0000001``... that are unique and deterministic for a seed. Times are local Shanghai
time with the ``+08:00`` offset; money is decimal strings.

The company: customer service, technical service, guards (24-hour posts, 12-hour shifts,
four guards a post), property officers, managers, a director, a general manager and the
business department, with customers, households, projects and sites. Working days are
Mon-Fri less PRC holidays plus make-up days (policykit's business calendar); a holiday
break is the run of days off around a named holiday. Office staff clock in and out on
working days; guards' presence is their shift events.

A modest, known share of events breaks a rule of every policy. ``LogGenerator.planted()``
keeps the books: per planted decision its policy, rule id as the standard pack names it
(``R2b``, ``R7a``...), kind, subject, the instant it is due (when the engine decides it) and
its evidence ids, plus "boundary" events exactly at a limit (in time, so not violations).
Only what is due within the log is listed. RATES below sets the rates; each rule with
enough opportunities gets at least one plant, so even a one-month example breaks every
rule that can be judged within a month.

    python bench/generate.py --employees 200 --months 3 --seed 1 --out /tmp/log.jsonl \
        [--start 2026-03-01] [--planted /tmp/log.planted.json] [--session-ends] [--steady]

The default company grows: every month brings new customers (5% of all it has had), their
projects (which the rulebook never ends) and households, so its populations and its events
per month rise year after year. ``--steady`` runs a business that stays the same size
instead, for long streams that must show flat state: the first year's projects and no more,
no new households, and every month one customer leaves (``customer.deactivated``) and a new
one registers the same day, so the customers churn at a fixed count.
"""

from __future__ import annotations

import argparse
import calendar
import heapq
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, TextIO

from policykit.calendar import BusinessCalendar

Event = dict[str, Any]

DAY = 86_400
HOUR = 3_600
MIN = 60
NEVER = 1 << 62  # "not resolved within the log"

START = 8 * HOUR + 30 * MIN  # 08:30, working hours per 篇四 §七
END = 17 * HOUR + 30 * MIN  # 17:30
WORK_SECONDS = END - START

ROLES = (
    "customer_service",
    "tech_service",
    "guard",
    "property_officer",
    "manager",
    "director",
    "general_manager",
    "business",
)
DEPARTMENT = {
    "customer_service": "customer_service",
    "tech_service": "technical_service",
    "guard": "security",
    "property_officer": "property",
    "director": "office",
    "general_manager": "management",
    "business": "business",
}
MANAGER_DEPARTMENTS = ("customer_service", "technical_service", "property", "security")
# Monthly base salaries in CNY, lower and upper bound, in steps of 50.
SALARY = {
    "customer_service": (5000, 7500),
    "tech_service": (7000, 11000),
    "guard": (4200, 5500),
    "property_officer": (5500, 7500),
    "manager": (12000, 18000),
    "director": (15000, 22000),
    "general_manager": (30000, 45000),
    "business": (8000, 14000),
}
TECH_TOPICS = ("network", "email", "software", "hardware", "account", "printer")
PROPERTY_TOPICS = ("repair", "noise", "parking", "cleaning", "access_card", "billing")
CHANNELS = ("phone",) * 12 + ("visit",) * 3 + ("email",) * 4 + ("other",)
LEAVE_KINDS = ("annual", "annual", "sick", "personal")
SYMPTOMS = (
    "core switch down, whole site offline",
    "mail server rejects all logins",
    "ERP database unreachable",
    "access-control system locked all doors",
    "lift control cabinet failure",
    "water pump failure in the basement",
)
PLANS = (
    "on-site engineer dispatched, fail over to standby unit",
    "restore from last night's backup, vendor on the phone",
    "switch to manual operation, replacement part ordered",
)
DUTY_TARGETS = ("www.acme-service.cn", "crm.acme-service.cn", "status.acme-service.cn")
PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
PLATE_CHARS = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
SEVERITY_FINE = {"minor": "10.00", "moderate": "50.00", "serious": "200.00"}

# How often each planted violation happens: (probability per opportunity, force_at). A
# rule that has had `force_at` opportunities and no plant yet gets one, so that even a
# small example breaks every rule that had a chance to be broken (0: never forced).
RATES: dict[str, tuple[float, int]] = {
    "first-responder/R2": (0.03, 8),
    "first-responder/R3": (0.05, 4),
    "first-responder/R4": (0.2, 2),
    "first-responder/R5": (0.015, 10),
    "first-responder/R6": (0.5, 2),
    "callback-frequency/R1": (0.06, 5),
    "callback-frequency/R2": (0.25, 2),
    "callback-frequency/R3": (0.1, 2),
    "callback-frequency/R4": (0.2, 2),
    "callback-frequency/R5": (0.1, 3),
    "callback-frequency/R6": (0.1, 4),
    "lateness-deduction/R1": (0.05, 20),
    "lateness-deduction/R4": (0.006, 150),
    "lateness-deduction/R5": (0.02, 60),
    "lateness-deduction/leave": (0.005, 200),
    "staff-penalties/R1": (0.004, 120),
    "staff-penalties/R2": (0.25, 4),
    "staff-penalties/R3": (0.0008, 250),
    "shift-handover/R1": (0.01, 20),
    "shift-handover/R2": (0.012, 25),
    "shift-handover/R3": (0.012, 30),
    "shift-handover/R4": (0.004, 40),
    "shift-handover/R5": (0.006, 100),
    "shift-handover/R6": (0.012, 35),
    "shift-handover/R7a": (0.08, 6),
    "shift-handover/R7b": (0.2, 1),
    "shift-handover/R7c": (0.12, 2),
    "incident-escalation/R1-late": (0.1, 2),
    "incident-escalation/R1-incomplete": (0.1, 1),
    "incident-escalation/R2": (0.1, 3),
    "incident-escalation/R3": (0.1, 1),
    "incident-escalation/R4": (0.12, 2),
    "complaint-handling/R2": (0.05, 6),
    "complaint-handling/R2b": (0.04, 8),
    "complaint-handling/R3": (0.05, 10),
    "complaint-handling/R4": (0.08, 3),
    "complaint-handling/R5": (0.01, 12),
    "reporting-duties/R1": (0.04, 8),
    "reporting-duties/R2": (0.02, 40),
    "reporting-duties/R3": (0.1, 2),
    "annual-customer-care/R1": (0.06, 4),
    "annual-customer-care/R2": (0.05, 6),
    "annual-customer-care/R2b": (0.1, 1),
    "annual-customer-care/R3": (0.06, 5),
    "annual-customer-care/R4": (0.06, 5),
    "annual-customer-care/R4b": (0.1, 3),
    "holiday-coverage/R1": (0.15, 2),
    "holiday-coverage/R2": (0.2, 1),
    "site-access/R1": (0.015, 30),
    "site-access/R2": (0.02, 20),
    "service-delivery/R1": (0.05, 3),
    "service-delivery/R1b": (0.05, 3),
    "service-delivery/R2": (0.05, 6),
    "service-delivery/R3": (0.06, 3),
}

_CLOCK: list[str] = []


def _clock() -> list[str]:
    """``"THH:MM:SS+08:00"`` for every second of a day, built once (formatting is the hot path)."""
    if not _CLOCK:
        _CLOCK.extend(
            f"T{s // HOUR:02d}:{s % HOUR // MIN:02d}:{s % MIN:02d}+08:00" for s in range(DAY)
        )
    return _CLOCK


def add_months(d: date, months: int) -> date:
    """``d`` plus whole months, clamped to the month's end (Jan 31 + 1 month = Feb 28)."""
    y, m = divmod(d.month - 1 + months, 12)
    year, month = d.year + y, m + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


@dataclass(slots=True)
class Employee:
    """One person of the company, as its ``employee.profile`` says."""

    id: str
    role: str
    department: str
    salary: Decimal
    areas: tuple[str, ...] = ()
    profile_seq: int = -1
    late_rate: float = 0.03


@dataclass(slots=True)
class Post:
    """A 24-hour guard post with its patrol route and its rota of guards."""

    id: str
    route: str
    guards: list[str]
    on_duty: str | None = None
    uncovered_from: int | None = None
    uncovered: list[tuple[int, int]] = field(default_factory=list)
    left_by: tuple[str, int] | None = None  # who left it empty, and that shift end's seq
    next_patrol: int = 0
    last_round: int = -1
    last_round_seq: int = -1
    known_plates: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Plant:
    """A violation (or deduction, fine, warning, KPI miss) the generator put in on purpose."""

    policy: str
    rule: str
    kind: str
    due: int
    evidence: list[int]
    subject: tuple[str, str]
    note: str
    amount: str | None = None


class LogGenerator:
    """Generates one company's event log; iterate ``events()``, then read ``planted()``."""

    def __init__(self, employees: int, months: int, seed: int, start: date = date(2026, 3, 1),
                 *, session_ends: bool = False, steady: bool = False):
        if employees < 12:
            raise ValueError("employees must be at least 12 (one of every role, guards in 3s)")
        if months < 1:
            raise ValueError("months must be at least 1")
        self.employees, self.months, self.seed, self.start = employees, months, seed, start
        # remote.session_ended is optional in the wire format: off, the log is the one made
        # before the event existed (the bundled example), seed for seed.
        self.session_ends = session_ends
        self.steady = steady  # a business of a fixed size (the module docstring)
        self.end = add_months(start, months)
        self.ndays = (self.end - start).days
        self.end_t = self.ndays * DAY
        self._rng = random.Random(seed)
        self._random = self._rng.random
        self._heap: list[tuple[int, int, str, dict[str, Any]]] = []
        self._seq = 0
        self._floor = 0
        self._emitted = 0
        self._ids: dict[int, str] = {}
        self._wanted: set[int] = set()
        self._counts: dict[str, int] = {}
        self._plants: list[Plant] = []
        self._boundaries: list[Plant] = []
        self._opps: dict[str, int] = {}
        self._planted_keys: dict[str, int] = {}
        self._counter: dict[str, int] = {}
        self._done = False
        self._calendar()
        self._company()

    # --- calendar -------------------------------------------------------------------------

    def _calendar(self) -> None:
        """Working days (Mon-Fri less PRC holidays, plus make-up days) and holiday breaks."""
        span = self.ndays + 400  # deadlines and windows may look past the horizon
        self.dates = [self.start + timedelta(days=i) for i in range(span)]
        self._daystr = [d.isoformat() for d in self.dates]
        # policykit's own calendar, so generated logs and the engine agree on every day;
        # years the holiday data does not cover yet count as plain Mon-Fri weeks.
        cal = BusinessCalendar(missing_holiday_data="ignore")
        self.named_holiday = [cal.is_holiday(d) for d in self.dates]
        self.working = [cal.is_working_day(d) for d in self.dates]
        # A statutory break is a run of non-working days holding a named holiday: the
        # weekend days inside it count too (Oct 4, 2026), as docs/policies/holiday-coverage.md says.
        self.holiday_break = [False] * span
        i = 0
        while i < span:
            if self.working[i]:
                i += 1
                continue
            j = i
            while j < span and not self.working[j]:
                j += 1
            if any(self.named_holiday[i:j]):
                for k in range(i, j):
                    self.holiday_break[k] = True
            i = j

    def _day_index(self, d: date) -> int:
        return (d - self.start).days

    def _next_working(self, day: int) -> int:
        day += 1
        while not self.working[day]:
            day += 1
        return day

    def _work_deadline(self, t: int, seconds: int) -> int:
        """``t`` plus ``seconds`` of working time (08:30-17:30 on working days)."""
        day, s = divmod(t, DAY)
        if not self.working[day] or s >= END:
            day, s = self._next_working(day), START
        s = max(s, START)
        while seconds > END - s:
            seconds -= END - s
            day, s = self._next_working(day), START
        return day * DAY + s + seconds

    def _working_days(self, first: int, last: int) -> list[int]:
        """Working day indices in [first, last) within the horizon."""
        return [d for d in range(max(first, 0), min(last, self.ndays)) if self.working[d]]

    def _t(self, d: date) -> int:
        return self._day_index(d) * DAY

    # --- the company ----------------------------------------------------------------------

    def _company(self) -> None:
        n, rng = self.employees, self._rng
        sizes = {
            "general_manager": 1,
            "director": max(1, round(n * 0.03)),
            "manager": max(2, round(n * 0.07)),
            "property_officer": max(1, round(n * 0.06)),
            "business": max(1, round(n * 0.06)),
            "guard": max(3, round(n * 0.2)),
            "tech_service": max(1, round(n * 0.2)),
        }
        sizes["customer_service"] = n - sum(sizes.values())
        if sizes["customer_service"] < 1:
            raise ValueError("too few employees for every role")
        width = max(4, len(str(n)))
        self.staff: list[Employee] = []
        self.by_role: dict[str, list[Employee]] = {r: [] for r in ROLES}
        n_po = sizes["property_officer"]
        self.areas = [f"A{i + 1:02d}" for i in range(2 * n_po)]
        for role in ROLES:
            for k in range(sizes[role]):
                lo, hi = SALARY[role]
                salary = Decimal(rng.randrange(lo, hi + 1, 50))
                if role == "manager":
                    dept = MANAGER_DEPARTMENTS[k % len(MANAGER_DEPARTMENTS)]
                else:
                    dept = DEPARTMENT[role]
                areas = tuple(self.areas[2 * k : 2 * k + 2]) if role == "property_officer" else ()
                e = Employee(f"E{len(self.staff) + 1:0{width}d}", role, dept, salary, areas)
                if rng.random() < 0.15:  # a few habitual latecomers reach the monthly tier
                    e.late_rate = 0.18
                self.staff.append(e)
                self.by_role[role].append(e)
        self.emp = {e.id: e for e in self.staff}
        self.office = [e for e in self.staff if e.role != "guard"]
        managers = self.by_role["manager"]
        self.cs_manager = next(m for m in managers if m.department == "customer_service")
        self.tech_manager = next(m for m in managers if m.department == "technical_service")
        self.property_manager = next(
            (m for m in managers if m.department == "property"), self.cs_manager
        )
        self.gm = self.by_role["general_manager"][0]

        guards = [e.id for e in self.by_role["guard"]]
        n_posts = max(1, len(guards) // 4)  # 12-hour shifts: four guards keep a post
        self.posts = [
            Post(f"P{i + 1:02d}", f"RT-{i + 1:02d}", guards[i::n_posts]) for i in range(n_posts)
        ]
        for p in self.posts:
            p.known_plates = [self._plate() for _ in range(20)]

        self.customers = [f"C{i + 1:04d}" for i in range(max(6, n // 2))]
        self.active_customers = list(self.customers)
        self.households = [f"H{i + 1:05d}" for i in range(max(40, n * 4))]
        self.household_area = {h: rng.choice(self.areas) for h in self.households}
        self.sites = [f"S{i + 1:02d}" for i in range(max(1, len(self.areas) // 2))]
        self.project_customer: dict[str, str] = {}
        self._present: dict[str, tuple[int, int]] = {}
        self._leave: dict[str, set[int]] = {}
        self._late: dict[str, list[tuple[int, int]]] = {}
        self._open_pairs: dict[tuple[str, str], tuple[int, int]] = {}
        # Rare happenings drawn per month, so that every month has its share of them.
        self._scheduled: dict[tuple[str, int, str], int] = {}

    def _plate(self) -> str:
        rng = self._rng
        return "沪" + rng.choice(PLATE_LETTERS) + "".join(rng.choices(PLATE_CHARS, k=5))

    def _next_id(self, prefix: str, width: int = 5) -> str:
        n = self._counter[prefix] = self._counter.get(prefix, 0) + 1
        return f"{prefix}{n:0{width}d}"

    # --- emission and bookkeeping ---------------------------------------------------------

    def _push(self, t: int, etype: str, fields: dict[str, Any]) -> int:
        """Schedule an event; one at or past the horizon is not part of the log."""
        if t < self._floor:
            raise RuntimeError(f"bug: {etype} scheduled in the past ({t} < {self._floor})")
        self._seq += 1
        if t < self.end_t:
            heapq.heappush(self._heap, (t, self._seq, etype, fields))
        return self._seq

    def fmt(self, t: int) -> str:
        """ISO-8601 local time with the +08:00 offset for ``t`` seconds after the start."""
        return self._daystr[t // DAY] + _clock()[t % DAY]

    def _chance(self, key: str, rate: float | None = None) -> bool:
        """Whether to plant the violation ``key`` at this opportunity."""
        default, force_at = RATES[key]
        rate = default if rate is None else rate
        n = self._opps[key] = self._opps.get(key, 0) + 1
        hit = self._rng.random() < rate
        if force_at and n >= force_at and not self._planted_keys.get(key):
            hit = True
        if hit:
            self._planted_keys[key] = self._planted_keys.get(key, 0) + 1
        return hit

    def _plant(
        self,
        key: str,
        due: int,
        evidence: Sequence[int],
        subject: tuple[str, str],
        note: str,
        kind: str = "violation",
        amount: str | None = None,
    ) -> None:
        policy, rule = key.split("/")
        self._wanted.update(evidence)
        self._plants.append(
            Plant(policy, rule.split("-")[0], kind, due, list(evidence), subject, note, amount)
        )

    def _boundary(self, key: str, t: int, seq: int, subject: tuple[str, str], note: str) -> None:
        """An event exactly at a deadline or limit: in time, so *not* a violation."""
        policy, rule = key.split("/")
        self._wanted.add(seq)
        self._boundaries.append(Plant(policy, rule, "in_time", t, [seq], subject, note))

    def _judged(self, due: int) -> bool:
        """Whether a deadline falls within the log (later ones are not planted)."""
        return due <= self.end_t

    def _u(self, lo: int, hi: int) -> int:
        """A uniform integer in [lo, hi] (random() is several times faster than randint)."""
        return lo + int(self._random() * (hi - lo + 1))

    # --- the main loop --------------------------------------------------------------------

    def events(self) -> Iterator[Event]:
        """The log in event-time order; memory holds one day plus scheduled follow-ups."""
        if self._done or self._seq:
            raise RuntimeError("a LogGenerator yields its events once")
        heap, pop, wanted = self._heap, heapq.heappop, self._wanted
        ids, counts = self._ids, self._counts
        daystr, clock = self._daystr, _clock()
        self._setup()
        for day in range(self.ndays):
            self._floor = day * DAY
            self._gen_day(day)
            limit = (day + 1) * DAY
            n = self._emitted
            # The emission loop is the hot path: inlined rather than a method call per event.
            while heap and heap[0][0] < limit:
                t, seq, etype, fields = pop(heap)
                n += 1
                eid = f"ev-{n:07d}"
                if seq in wanted:
                    ids[seq] = eid
                counts[etype] = counts.get(etype, 0) + 1
                ev: Event = {"id": eid, "type": etype, "at": daystr[t // DAY] + clock[t % DAY]}
                ev.update(fields)
                self._emitted = n
                yield ev
        heap.clear()
        self._done = True

    def _setup(self) -> None:
        """Profiles first, then the customer and household registers, all at the start."""
        for e in self.staff:
            f: dict[str, Any] = {
                "employee_id": e.id,
                "role": e.role,
                "base_salary": f"{e.salary:.2f}",
                "currency": "CNY",
                "department": e.department,
            }
            if e.areas:
                f["areas"] = list(e.areas)
            e.profile_seq = self._push(0, "employee.profile", f)
            self._wanted.add(e.profile_seq)  # a missed obligation's evidence, any day later
        self._customer_seq = {
            c: self._push(0, "customer.registered", {"customer_id": c}) for c in self.customers
        }
        self._wanted.update(self._customer_seq.values())
        for h in self.households:
            self._push(0, "household.registered",
                       {"household_id": h, "area_id": self.household_area[h]})

    def _gen_day(self, day: int) -> None:
        d = self.dates[day]
        if day == 0 or d.day == 1:
            self._period_start(day)
        self._guards_day(day)
        if self.working[day]:
            self._attendance_day(day)
            self._contacts_day(day)
            self._incidents_day(day)
            self._reports_day(day)
            self._staff_day(day)
            self._projects_day(day)
            self._household_callbacks_day(day)
        else:
            self._present = {}
            self._duty_day(day)
        self._complaints_day(day)
        self._registers_day(day)
        if self.dates[day + 1].month != d.month:
            self._close_month(day)

    # --- attendance: lateness-deduction ---------------------------------------------------

    def _attendance_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        self._present = {}
        nxt = self._next_working(day)
        for e in self.office:
            subj = ("employee", e.id)
            leave = self._leave.get(e.id)
            if leave and day in leave:
                continue
            # Leave is applied for on the working day before it starts.
            if (not leave or nxt not in leave) and self._chance("lateness-deduction/leave"):
                days = [nxt]
                for _ in range(rng.choice((0, 0, 0, 1, 2))):
                    days.append(self._next_working(days[-1]))
                self._leave.setdefault(e.id, set()).update(days)
                self._push(base + self._u(15 * HOUR, 17 * HOUR), "attendance.leave", {
                    "employee_id": e.id,
                    "start": self._daystr[days[0]],
                    "end": self._daystr[days[-1]],
                    "kind": rng.choice(LEAVE_KINDS),
                })
            in_t: int | None
            if self._chance("lateness-deduction/R1", e.late_rate):
                r = rng.random()
                if r < 0.12:
                    late = 1  # 08:30:01, the first late second
                else:
                    late = self._u(2, 15 * MIN) if r < 0.75 else self._u(15 * MIN, 90 * MIN)
                in_t = base + START + late
                seq = self._push(in_t, "attendance.clock_in", {"employee_id": e.id})
                self._late.setdefault(e.id, []).append((in_t, seq))
                self._plant("lateness-deduction/R1", in_t, [seq], subj,
                            f"first clock-in at {self.fmt(in_t)[11:19]} "
                            f"({late // MIN} min {late % MIN} s late)")
            elif self._chance("lateness-deduction/R4"):
                in_t = None
                self._plant("lateness-deduction/R4", base + DAY, [e.profile_seq], subj,
                            f"no clock-in on working day {self._daystr[day]}, no leave")
            else:
                exact = rng.random() < 0.012
                in_t = base + START - (0 if exact else self._u(MIN, 45 * MIN))
                seq = self._push(in_t, "attendance.clock_in", {"employee_id": e.id})
                if exact:
                    self._boundary("lateness-deduction/R1", in_t, seq, subj,
                                   "clock-in at exactly 08:30:00 is on time")
            if self._chance("lateness-deduction/R5"):
                out_t = base + END - (1 if rng.random() < 0.15 else self._u(MIN, 2 * HOUR))
                seq = self._push(out_t, "attendance.clock_out", {"employee_id": e.id})
                self._plant("lateness-deduction/R5", base + DAY, [seq], subj,
                            f"last clock-out at {self.fmt(out_t)[11:19]}, before 17:30")
            else:
                exact = rng.random() < 0.012
                out_t = base + END + (0 if exact else self._u(1, 75 * MIN))
                seq = self._push(out_t, "attendance.clock_out", {"employee_id": e.id})
                if exact:
                    self._boundary("lateness-deduction/R5", out_t, seq, subj,
                                   "clock-out at exactly 17:30:00 is not early")
            # A lunch trip out and back: the afternoon clock-in is not the day's first.
            if in_t is not None and rng.random() < 0.03:
                self._push(base + 12 * HOUR + self._u(0, 10 * MIN), "attendance.clock_out",
                           {"employee_id": e.id})
                self._push(base + 12 * HOUR + self._u(45 * MIN, 80 * MIN), "attendance.clock_in",
                           {"employee_id": e.id})
            self._present[e.id] = (in_t if in_t is not None else base + START, out_t)

    def _close_month(self, day: int) -> None:
        """The month's lateness deductions under the defaults (threshold 3, tier_mode all)."""
        due = (day + 1) * DAY
        for emp_id, days in sorted(self._late.items()):
            n, seqs = len(days), [seq for _, seq in days]
            rate = Decimal("0.05") if n >= 3 else Decimal("0.01")
            amount = (self.emp[emp_id].salary * rate * n).quantize(Decimal("0.01"), ROUND_HALF_UP)
            subj = ("employee", emp_id)
            self._plant("lateness-deduction/R2", due, seqs, subj,
                        f"{n} late day(s) in {self._daystr[day][:7]} at {rate * 100:.0f}% of "
                        f"{self.emp[emp_id].salary:.2f}", kind="deduction", amount=f"{amount:.2f}")
            if n > 3:  # decided at the late day that exceeds the limit
                self._plant("lateness-deduction/R3", days[3][0], seqs, subj,
                            f"{n} late days in {self._daystr[day][:7]}, more than 3")
        self._late = {}

    # --- first-responder and service-delivery ---------------------------------------------

    def _pick_pair(self, t: int, tech: bool) -> tuple[str, str]:
        """A customer and topic with no open request: a repeat contact is only ever planted."""
        rng = self._rng
        for _ in range(50):
            if tech:
                pair = (rng.choice(self.active_customers), rng.choice(TECH_TOPICS))
            else:
                pair = (rng.choice(self.households), rng.choice(PROPERTY_TOPICS))
            seen = self._open_pairs.get(pair)
            if seen is None or t - seen[0] > 8 * DAY or seen[1] <= t:
                return pair
        return (self._next_id("W", 6), rng.choice(TECH_TOPICS))  # a walk-in, new customer

    def _contacts_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        present_cs = [e for e in self.by_role["customer_service"] if e.id in self._present]
        present_tech = [e for e in self.by_role["tech_service"] if e.id in self._present]
        takers = [(e, rng.choice((1, 2, 2, 3, 3, 3, 4))) for e in present_cs]
        takers += [(e, 1) for e in present_tech if rng.random() < 0.5]
        for e, n in takers:
            in_t, out_t = self._present[e.id]
            lo = max(in_t, base + START) + 5 * MIN
            hi = min(out_t - 40 * MIN, base + 16 * HOUR + 30 * MIN)
            if hi <= lo:
                continue
            for t in sorted(self._u(lo, hi) for _ in range(n)):
                r = rng.random()
                if e.role == "tech_service" or r < 0.6:
                    self._contact_quick(day, t, e, e.role == "tech_service")
                elif r < 0.73:
                    self._contact_multi(day, t, e)
                elif r < 0.985:
                    self._contact_handover(day, t, e, present_tech)
                else:
                    self._contact_major(day, t, e)

    def _received(self, t: int, owner: Employee, pair: tuple[str, str], in_remit: bool,
                  at_once: bool, major: bool = False, repeat_of: str | None = None
                  ) -> tuple[str, int]:
        req = self._next_id("R", 6)
        f: dict[str, Any] = {
            "request_id": req,
            "customer_id": pair[0],
            "employee_id": owner.id,
            "channel": self._rng.choice(CHANNELS),
            "topic": pair[1],
            "in_remit": in_remit,
            "finish_at_once": at_once,
            "major": major,
        }
        if repeat_of is not None:
            f["repeat_of"] = repeat_of
        return req, self._push(t, "contact.received", f)

    def _resolve(self, req: str, emp: str, t: int, form: bool, owner: str | None = None) -> None:
        """Resolution, then the owner's work contact form within a working day (篇二 §二.6)."""
        r_seq = self._push(t, "request.resolved", {"request_id": req, "employee_id": emp})
        if not form:
            return
        emp = owner or emp  # an unregistered handover left the request with its owner
        day = t // DAY
        due = self._work_deadline(t, WORK_SECONDS)  # P1D of working time
        if self._chance("first-responder/R5"):
            if self._rng.random() < 0.5:
                late = self._next_working(self._next_working(self._next_working(day)))
                self._push(late * DAY + 10 * HOUR + self._u(0, HOUR), "request.contact_form",
                           {"request_id": req, "employee_id": emp})
                note = "contact form three working days after resolution"
            else:
                note = "no contact form after resolution"
            self._plant("first-responder/R5", due, [r_seq], ("employee", emp), f"{req}: {note}")
            return
        when = t + self._u(10 * MIN, 2 * HOUR)
        if when % DAY > END or when // DAY != day or not self.working[day]:
            when = self._next_working(day) * DAY + 9 * HOUR + self._u(0, HOUR)
        self._push(when, "request.contact_form", {"request_id": req, "employee_id": emp})

    def _repeat(self, day: int, t: int, owner: Employee, pair: tuple[str, str], req: str,
                orig_seq: int, resolved_at: int, resolver: str, owner_now: str) -> None:
        """Maybe the customer calls again about the still-open request (R6): the violation
        is its owner's at that moment, ``owner_now`` after a registered handover."""
        rt = t + self._u(2 * HOUR, 5 * HOUR)
        if rt >= resolved_at or rt > day * DAY + 17 * HOUR:
            return
        if not self._chance("first-responder/R6"):
            return
        req2, seq = self._received(rt, owner, pair, True, False, repeat_of=req)
        self._open_pairs[pair] = (rt, resolved_at)
        self._plant("first-responder/R6", rt, [seq, orig_seq], ("employee", owner_now),
                    f"customer {pair[0]} called again about {req} ({pair[1]}) while it was open")
        # The second call is closed with the first; it owes no contact form of its own.
        self._resolve(req2, resolver, resolved_at + self._u(MIN, 10 * MIN), False)

    def _contact_quick(self, day: int, t: int, owner: Employee, tech: bool) -> None:
        pair = self._pick_pair(t, tech)
        req, seq = self._received(t, owner, pair, True, True)
        if self._chance("first-responder/R2"):
            nxt = self._next_working(day) * DAY
            if self._rng.random() < 0.5 and self._colleague(owner) is not None:
                other = self._colleague(owner)
                assert other is not None
                # Handing over what could be finished at once breaks R2 at that moment.
                due = t + self._u(20 * MIN, 50 * MIN)
                self._push(due, "request.handed_over", {
                    "request_id": req, "from_employee": owner.id, "to_employee": other.id,
                    "to_role": other.role, "registered": True,
                })
                done, who, note = nxt + 9 * HOUR + self._u(0, 2 * HOUR), other.id, "handed over"
            else:
                done, who, note = nxt + 9 * HOUR + self._u(0, 2 * HOUR), owner.id, "left open"
                due = (day + 1) * DAY
            self._plant("first-responder/R2", due, [seq], ("employee", owner.id),
                        f"{req} could be finished at once but was {note}, "
                        "resolved next working day")
            self._open_pairs[pair] = (t, done)
            self._resolve(req, who, done, True)
            self._repeat(day, t, owner, pair, req, seq, done, who, who)
            return
        done = t + self._u(3 * MIN, 90 * MIN)
        self._open_pairs[pair] = (t, done)
        self._resolve(req, owner.id, done, True)

    def _colleague(self, owner: Employee) -> Employee | None:
        others = [e for e in self.by_role[owner.role] if e.id != owner.id and e.id in self._present]
        return others[0] if others else None

    def _contact_multi(self, day: int, t: int, owner: Employee) -> None:
        pair = self._pick_pair(t, self._rng.random() < 0.4)
        req, _ = self._received(t, owner, pair, True, False)
        done = t + self._u(HOUR, 5 * HOUR)
        if done > day * DAY + 20 * HOUR:
            done = self._next_working(day) * DAY + 9 * HOUR + self._u(0, 2 * HOUR)
        self._open_pairs[pair] = (t, done)
        self._resolve(req, owner.id, done, True)

    def _contact_handover(self, day: int, t: int, owner: Employee, techs: list[Employee]) -> None:
        rng = self._rng
        tech = bool(techs) and rng.random() < 0.65
        pair = self._pick_pair(t, tech)
        req, seq = self._received(t, owner, pair, False, False)
        target = rng.choice(techs) if tech else self.property_manager
        if self._chance("first-responder/R3"):
            due = self._work_deadline(t, HOUR)
            nxt = self._next_working(day) * DAY
            if rng.random() < 0.5:
                when, registered = t + self._u(15 * MIN, 40 * MIN), False
                note = "handed over without registration"
            else:
                when, registered = nxt + 10 * HOUR + self._u(0, HOUR), True
                note = "registered handover only the next working day"
            h_seq = self._push(when, "request.handed_over", {
                "request_id": req, "from_employee": owner.id, "to_employee": target.id,
                "to_role": target.role, "registered": registered,
            })
            done = max(when, nxt + 11 * HOUR) + self._u(HOUR, 3 * HOUR)
            self._plant("first-responder/R3", due, [seq], ("employee", owner.id),
                        f"{req} outside remit: {note}")
            if not registered:  # ownership did not move (R1)
                self._plant("first-responder/R1", when, [h_seq], ("employee", owner.id),
                            f"{req}: unregistered handover to {target.id}")
            self._open_pairs[pair] = (t, done)
            self._resolve(req, target.id, done, True, owner.id if not registered else None)
            self._repeat(day, t, owner, pair, req, seq, done, target.id, owner.id)
            return
        when = t + self._u(5 * MIN, 45 * MIN)
        self._push(when, "request.handed_over", {
            "request_id": req, "from_employee": owner.id, "to_employee": target.id,
            "to_role": target.role, "registered": True,
        })
        if tech:
            done = self._service_ladder(day, req, pair[0], target, when)
        else:
            done = when + self._u(HOUR, 6 * HOUR)
            if done > day * DAY + 19 * HOUR:
                done = self._next_working(day) * DAY + 9 * HOUR + self._u(0, 3 * HOUR)
        self._open_pairs[pair] = (t, done)
        self._resolve(req, target.id, done, True)

    def _contact_major(self, day: int, t: int, owner: Employee) -> None:
        pair = self._pick_pair(t, self._rng.random() < 0.5)
        req, seq = self._received(t, owner, pair, False, False, major=True)
        subj = ("employee", owner.id)
        if self._chance("first-responder/R4"):
            if self._rng.random() < 0.6:
                self._push(t + self._u(45 * MIN, 2 * HOUR), "request.reported_to_gm",
                           {"request_id": req, "employee_id": owner.id})
                note = "major matter reported to the GM after more than 30 min"
            else:
                note = "major matter never reported to the GM"
            self._plant("first-responder/R4", t + 30 * MIN, [seq], subj, f"{req}: {note}")
        else:
            exact = self._rng.random() < 0.1
            gm = self._push(t + (30 * MIN if exact else self._u(3 * MIN, 25 * MIN)),
                            "request.reported_to_gm", {"request_id": req, "employee_id": owner.id})
            if exact:
                self._boundary("first-responder/R4", t + 30 * MIN, gm, subj,
                               "reported to the GM at exactly 30 min")
        when = t + self._u(5 * MIN, 40 * MIN)
        m = self.cs_manager
        self._push(when, "request.handed_over", {
            "request_id": req, "from_employee": owner.id, "to_employee": m.id,
            "to_role": m.role, "registered": True,
        })
        done = when + self._u(2 * HOUR, 6 * HOUR)
        self._open_pairs[pair] = (t, done)
        self._resolve(req, m.id, done, True)

    def _service_ladder(self, day: int, req: str, customer: str, tech: Employee, t0: int) -> int:
        """Hotline, then remote, then on site (篇二 §十.2); returns the resolution time."""
        rng, subj = self._rng, ("employee", tech.id)
        t = t0 + self._u(10 * MIN, 40 * MIN)
        skip = self._chance("service-delivery/R2")
        skipped = rng.choice(("hotline", "remote")) if skip else None
        if skipped != "hotline":
            solved = rng.random() < 0.5 and not skip
            self._push(t, "service.step", {"request_id": req, "step": "hotline",
                                           "outcome": "solved" if solved else "unsolved",
                                           "employee_id": tech.id})
            if solved:
                return t + self._u(MIN, 5 * MIN)
            t += self._u(10 * MIN, 30 * MIN)
        if skipped != "remote":
            valid_from = t + self._u(5 * MIN, 20 * MIN)
            valid_until = valid_from + 4 * HOUR
            session = valid_from + self._u(0, 30 * MIN)
            auth: dict[str, Any] = {
                "request_id": req, "customer_id": customer, "valid_from": self.fmt(valid_from),
                "valid_until": self.fmt(valid_until), "granted_by": f"{customer}-admin",
            }
            if self._chance("service-delivery/R1"):
                if rng.random() < 0.5:
                    auth = {}
                    note = "remote session with no customer authorization"
                else:
                    auth["valid_until"] = self.fmt(valid_from + 20 * MIN)
                    session = valid_from + self._u(40 * MIN, 70 * MIN)
                    note = "remote session after the authorization expired"
                s_seq = self._push(session, "remote.session_started", {
                    "request_id": req, "customer_id": customer, "employee_id": tech.id})
                self._plant("service-delivery/R1", session, [s_seq], subj, f"{req}: {note}")
            else:
                self._push(session, "remote.session_started", {
                    "request_id": req, "customer_id": customer, "employee_id": tech.id})
            if auth:
                self._push(t, "remote.authorized", auth)
            ended = None
            if self.session_ends and auth.get("valid_until") == self.fmt(valid_until):
                ended = session + self._u(20 * MIN, 60 * MIN)
                overrun = self._chance("service-delivery/R1b")
                if overrun:
                    ended = valid_until + self._u(5 * MIN, HOUR)
                e_seq = self._push(ended, "remote.session_ended", {
                    "request_id": req, "customer_id": customer, "employee_id": tech.id,
                    "started_at": self.fmt(session)})
                if overrun:
                    self._plant("service-delivery/R1b", ended, [e_seq], subj,
                                f"{req}: remote session ran on after its authorization expired")
            t = session + self._u(20 * MIN, 60 * MIN)
            solved = rng.random() < 0.6
            seq = self._push(t, "service.step", {"request_id": req, "step": "remote",
                                                 "outcome": "solved" if solved else "unsolved",
                                                 "employee_id": tech.id})
            if skipped == "hotline":
                self._plant("service-delivery/R2", t, [seq], subj,
                            f"{req}: remote step without a hotline step first", kind="warning")
            if solved:
                return t + self._u(MIN, 5 * MIN)
        site = f"{customer}-S1"
        dispatched = t + self._u(5 * MIN, 20 * MIN)
        d_seq = self._push(dispatched, "onsite.dispatched",
                           {"request_id": req, "site_id": site, "employee_id": tech.id})
        departed = dispatched + self._u(10 * MIN, 50 * MIN)
        arrived = departed + self._u(30 * MIN, 2 * HOUR)
        if self._chance("service-delivery/R3"):
            if rng.random() < 0.5:
                departed = dispatched + self._u(70 * MIN, 2 * HOUR)
                arrived = departed + self._u(30 * MIN, 90 * MIN)
                rule, due, note = "R3", dispatched + HOUR, "departed more than 1 h after dispatch"
            else:
                arrived = dispatched + self._u(5 * HOUR, 6 * HOUR)
                rule, due = "R3b", dispatched + 4 * HOUR
                note = "arrived more than 4 h after dispatch"
            self._plant(f"service-delivery/{rule}", due, [d_seq], subj, f"{req}: {note}")
        self._push(departed, "onsite.departed", {"request_id": req, "site_id": site,
                                                 "employee_id": tech.id})
        self._push(arrived, "onsite.arrived", {"request_id": req, "site_id": site,
                                               "employee_id": tech.id})
        t = arrived + self._u(30 * MIN, 2 * HOUR)
        seq = self._push(t, "service.step", {"request_id": req, "step": "onsite",
                                             "outcome": "solved", "employee_id": tech.id})
        if skipped == "remote":
            self._plant("service-delivery/R2b", t, [seq], subj,
                        f"{req}: on-site step without trying remote first", kind="warning")
        return t + self._u(MIN, 10 * MIN)

    # --- incident-escalation --------------------------------------------------------------

    def _incidents_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        rate = 0.15 + self.employees * 0.006
        n = sum(1 for _ in range(int(rate * 4) + 1) if rng.random() < rate / (int(rate * 4) + 1))
        first = [e for e in self.office if e.role in ("tech_service", "customer_service")
                 and e.id in self._present]
        if not first:
            return
        for _ in range(n):
            t = base + self._u(9 * HOUR, 17 * HOUR)
            det = rng.choice(first)
            if rng.random() < 0.35:
                self._minor_incident(t, det)
            else:
                self._major_incident(day, t, det)

    def _minor_incident(self, t: int, det: Employee) -> None:
        inc = self._next_id("INC-", 5)
        self._push(t, "incident.detected", {"incident_id": inc, "severity": "minor",
                                            "employee_id": det.id})
        self._push(t + self._u(20 * MIN, 3 * HOUR), "incident.resolved", {"incident_id": inc})

    def _major_incident(self, day: int, t: int, det: Employee) -> None:
        rng = self._rng
        inc = self._next_id("INC-", 5)
        customer = rng.choice(self.active_customers)
        d_seq = self._push(t, "incident.detected", {"incident_id": inc, "severity": "major",
                                                    "employee_id": det.id, "customer_id": customer})
        details = {"time": self.fmt(t), "place": f"{customer}-S1", "symptoms": rng.choice(SYMPTOMS),
                   "plan": rng.choice(PLANS)}
        mgr, subj = self.tech_manager, ("incident", inc)
        notify = t + self._u(2 * MIN, 14 * MIN)
        if self._chance("incident-escalation/R1-late"):
            notify = t + self._u(20 * MIN, 40 * MIN)
            self._plant("incident-escalation/R1-late", t + 15 * MIN, [d_seq], ("employee", det.id),
                        f"{inc}: first notification {(notify - t) // MIN} min after detection")
        incomplete = self._chance("incident-escalation/R1-incomplete")
        if incomplete:
            del details["plan"]
        n_seq = self._push(notify, "incident.notified", {
            "incident_id": inc, "employee_id": det.id,
            "recipients": ["sales_owner", "manager", "departments"], "details": dict(details)})
        if incomplete:
            self._plant("incident-escalation/R1-incomplete", notify, [n_seq], ("employee", det.id),
                        f"{inc}: notification without a response plan")
        relay = notify + self._u(5 * MIN, 25 * MIN)
        if self._chance("incident-escalation/R2"):
            if rng.random() < 0.5:
                relay = notify + self._u(45 * MIN, 90 * MIN)
                note = f"relay to senior leadership {(relay - notify) // MIN} min after the report"
            else:
                relay, note = -1, "never relayed to senior leadership"
            self._plant("incident-escalation/R2", notify + 30 * MIN, [n_seq], subj,
                        f"{inc}: {note}")
        if relay >= 0:
            self._push(relay, "incident.notified", {
                "incident_id": inc, "employee_id": mgr.id, "recipients": ["senior_leadership"],
                "details": {"time": details["time"], "place": details["place"],
                            "symptoms": details["symptoms"]}})
        resolved = t + self._u(2 * HOUR, 10 * HOUR)
        gap = resolved - t > 6 * HOUR and self._chance("incident-escalation/R3")
        p, last, last_seq = t + self._u(HOUR, 3 * HOUR), t, d_seq
        planted_gap = False
        while p < resolved:
            if gap and not planted_gap and p - last > 30 * MIN:
                p = last + self._u(4 * HOUR + 20 * MIN, 5 * HOUR)
                planted_gap = True
                self._plant("incident-escalation/R3", last + 4 * HOUR, [last_seq], subj,
                            f"{inc}: no progress update for more than 4 h")
                if p >= resolved:
                    break
            last, last_seq = p, self._push(p, "incident.progress",
                                           {"incident_id": inc, "employee_id": mgr.id})
            p += self._u(90 * MIN, 200 * MIN)
        r_seq = self._push(resolved, "incident.resolved", {"incident_id": inc})
        rday = resolved // DAY
        report = self._next_working(rday) * DAY + self._u(10 * HOUR, 16 * HOUR)
        sections = ["impact", "handling", "root_cause", "corrective_actions"]
        delivered = ["customer", "business_dept"]
        if self._chance("incident-escalation/R4"):
            due = self._work_deadline(resolved, 3 * WORK_SECONDS)
            kind = rng.choice(("late", "missing", "incomplete", "undelivered"))
            if kind == "late":
                later = rday
                for _ in range(5):
                    later = self._next_working(later)
                report = later * DAY + 11 * HOUR
                note = "failure report five working days after resolution"
            elif kind == "missing":
                report, note = -1, "no failure analysis report"
            elif kind == "incomplete":
                sections.remove("root_cause")
                due, note = report, "failure report without a root cause"
            else:
                delivered = ["business_dept"]
                due, note = report, "failure report not delivered to the customer"
            self._plant("incident-escalation/R4", due, [r_seq], subj, f"{inc}: {note}")
        if report >= 0:
            self._push(report, "incident.report_filed", {
                "incident_id": inc, "employee_id": mgr.id, "sections": sections,
                "delivered_to": delivered})

    # --- reporting-duties -----------------------------------------------------------------

    def _reports_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        for e in self.by_role["customer_service"]:
            if e.id not in self._present:  # on leave: no report owed (R2 exempts leave)
                continue
            if self._chance("reporting-duties/R2"):
                self._plant("reporting-duties/R2", base + END, [e.profile_seq], ("employee", e.id),
                            f"no daily report on {self._daystr[day]}")
                continue
            self._push(base + self._u(16 * HOUR + 30 * MIN, 17 * HOUR + 25 * MIN),
                       "report.submitted", {"report": "daily", "employee_id": e.id,
                                            "department": "customer_service"})
        # Weekly reports are due Friday 14:00, or on the last working day before it.
        d = self.dates[day]
        friday = day + (4 - d.weekday())
        due_day = friday
        while due_day > friday - 5 and not self.working[due_day]:
            due_day -= 1
        if due_day <= friday - 5 or due_day < day:
            return
        for e in self.by_role["tech_service"]:
            away = self._leave.get(e.id, set())
            if day in away:
                continue
            # Submit on the due day, or today if every day up to it is leave.
            rest = [x for x in range(day + 1, due_day + 1) if self.working[x]]
            if day != due_day and not all(x in away for x in rest):
                continue
            due = due_day * DAY + 14 * HOUR
            if self._chance("reporting-duties/R1"):
                if rng.random() < 0.5 and day == due_day:
                    seq = self._push(due + self._u(30 * MIN, 3 * HOUR), "report.submitted",
                                     {"report": "weekly", "employee_id": e.id,
                                      "department": "technical_service"})
                    note = f"weekly report after 14:00 on {self._daystr[due_day]}"
                else:
                    seq = e.profile_seq
                    note = f"no weekly report for the week of {self._daystr[due_day]}"
                self._plant("reporting-duties/R1", due, [seq], ("employee", e.id), note)
                continue
            self._push(base + self._u(9 * HOUR, 13 * HOUR + 50 * MIN), "report.submitted",
                       {"report": "weekly", "employee_id": e.id, "department": "technical_service"})

    # --- staff-penalties ------------------------------------------------------------------

    def _staff_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        for e in self.office:
            if e.id not in self._present or e.role in ("general_manager", "director"):
                continue
            in_t, out_t = self._present[e.id]
            subj = ("employee", e.id)
            if rng.random() < 0.03:
                t = self._u(in_t + 10 * MIN, out_t - 10 * MIN)
                if self._chance("staff-penalties/R2"):
                    dur = self._u(181, 900)
                    seq = self._push(t, "staff.private_call",
                                     {"employee_id": e.id, "duration_s": dur})
                    self._plant("staff-penalties/R2", t, [seq], subj,
                                f"private call of {dur} s", kind="fine", amount="10.00")
                else:
                    exact = rng.random() < 0.05
                    dur = 180 if exact else self._u(15, 170)
                    seq = self._push(t, "staff.private_call",
                                     {"employee_id": e.id, "duration_s": dur})
                    if exact:
                        self._boundary("staff-penalties/R2", t, seq, subj,
                                       "private call of exactly 180 s is allowed")
            front = e.role in ("customer_service", "tech_service")
            if front and self._chance("staff-penalties/R1"):
                t = base + self._u(10 * HOUR, 17 * HOUR)
                sev = rng.choice(("minor", "minor", "minor", "moderate", "moderate", "serious"))
                seq = self._push(t, "staff.complaint", {
                    "employee_id": e.id, "source": rng.choice(("customer", "customer", "sales")),
                    "severity": sev})
                self._plant("staff-penalties/R1", t, [seq], subj, f"{sev} complaint",
                            kind="fine", amount=SEVERITY_FINE[sev])
            if self._chance("staff-penalties/R3"):
                t = self._u(in_t + 30 * MIN, out_t - 30 * MIN)
                kind = rng.choice(("info_line", "unrelated_browsing", "gaming", "private_visitor"))
                seq = self._push(t, "staff.misconduct", {"employee_id": e.id, "kind": kind})
                self._plant("staff-penalties/R3", t, [seq], subj, f"misconduct: {kind}",
                            kind="fine", amount="200.00")

    # --- guards: shift-handover and site-access -------------------------------------------

    def _guard_of(self, post: Post, k: int) -> str:
        return post.guards[(k + 1) % len(post.guards)]

    def _guards_day(self, day: int) -> None:
        base = day * DAY
        for post in self.posts:
            post.uncovered = [(a, b) for a, b in post.uncovered if b > base]
            if day == 0:
                g = self._guard_of(post, -1)
                self._take_post(post, g, 0)  # the post is covered from the log's first second
            for s in (0, 1):
                k = day * 2 + s
                change = base + (8 if s == 0 else 20) * HOUR
                self._changeover(post, k, change)
            self._patrols(post, day)
            self._security(post, day)
            self._access(post, day)

    def _take_post(self, post: Post, g: str, t: int) -> int:
        """The incoming guard starts: turnout and equipment checks follow (R3, R6)."""
        rng, subj = self._rng, ("employee", g)
        started = self._push(t, "shift.started", {"post_id": post.id, "guard_id": g})
        if post.uncovered_from is not None:
            post.uncovered.append((post.uncovered_from, t))
            if post.left_by is not None:
                # R1 has no limit on how late the relief comes: the guard who left the post
                # empty is judged when it is taken again, with the whole uncovered time.
                out, seq = post.left_by
                self._plant("shift-handover/R1", t, [seq], ("employee", out),
                            f"{out} left post {post.id} with nobody there; {g} took it "
                            f"{(t - post.uncovered_from) // MIN} min later")
                post.left_by = None
            post.uncovered_from = None
        post.on_duty = g
        turnout = t + self._u(MIN, 5 * MIN)
        if self._chance("shift-handover/R6"):
            if rng.random() < 0.3:
                self._plant("shift-handover/R6", t + 30 * MIN, [started], subj,
                            f"no turnout check for {g}")
            else:
                uniform = rng.random() < 0.5
                seq = self._push(turnout, "shift.turnout_checked", {
                    "post_id": post.id, "guard_id": g, "uniform": uniform, "badge": not uniform})
                self._plant("shift-handover/R6", turnout, [seq], subj,
                            f"{g} on post without {'badge' if uniform else 'uniform'}")
        else:
            self._push(turnout, "shift.turnout_checked", {
                "post_id": post.id, "guard_id": g, "uniform": True, "badge": True})
        if self._chance("shift-handover/R3"):
            if rng.random() < 0.5:
                self._push(t + self._u(35 * MIN, HOUR), "shift.equipment_checked",
                           {"post_id": post.id, "guard_id": g})
                note = "equipment check more than 30 min after taking the post"
            else:
                note = "no equipment check"
            self._plant("shift-handover/R3", t + 30 * MIN, [started], subj, f"{g}: {note}")
        else:
            exact = rng.random() < 0.01
            when = t + (30 * MIN if exact else self._u(5 * MIN, 25 * MIN))
            seq = self._push(when, "shift.equipment_checked", {"post_id": post.id, "guard_id": g})
            if exact:
                self._boundary("shift-handover/R3", when, seq, subj,
                               "equipment check at exactly 30 min")
        return started

    def _changeover(self, post: Post, k: int, change: int) -> None:
        """Guard ``k`` relieves the guard on the post: record, then the outgoing one leaves."""
        rng = self._rng
        out = post.on_duty
        if out is not None and self._chance("shift-handover/R4"):
            # The relief never comes; the outgoing guard leaves at the end of the shift, with
            # nobody to hand over to: no change of guard, so no handover record is owed (R2).
            # R1 follows when the next guard takes the post (see _take_post).
            ended = change + self._u(0, 5 * MIN)
            seq = self._push(ended, "shift.ended", {"post_id": post.id, "guard_id": out})
            self._plant("shift-handover/R4", ended + HOUR, [seq], ("post", post.id),
                        f"relief {self._guard_of(post, k)} never came: post uncovered 12 h "
                        f"after {out} left")
            post.on_duty, post.uncovered_from, post.left_by = None, ended, (out, seq)
            return
        g = self._guard_of(post, k)
        start_in = change - self._u(0, 10 * MIN)
        if out is None:
            self._take_post(post, g, max(start_in, change))
            return
        if self._chance("shift-handover/R1"):
            ended = start_in - self._u(10 * MIN, 20 * MIN)
            self._push(ended - self._u(MIN, 3 * MIN), "shift.handover_recorded", {
                "post_id": post.id, "from_guard": out, "to_guard": g, "signed_by": [out]})
            seq = self._push(ended, "shift.ended", {"post_id": post.id, "guard_id": out})
            self._plant("shift-handover/R1", start_in, [seq], ("employee", out),
                        f"{out} left post {post.id} {(start_in - ended) // MIN} min before "
                        f"relief {g} arrived")
            post.on_duty, post.uncovered_from = None, ended
            self._take_post(post, g, start_in)
            return
        self._take_post(post, g, start_in)
        if self._chance("shift-handover/R2"):
            ended = start_in + self._u(3 * MIN, 8 * MIN)
            e_seq = self._push(ended, "shift.ended", {"post_id": post.id, "guard_id": out})
            if rng.random() < 0.5:
                self._push(ended + self._u(20 * MIN, 35 * MIN), "shift.handover_recorded", {
                    "post_id": post.id, "from_guard": out, "to_guard": g, "signed_by": [g]})
                note = "handover recorded more than 15 min after the outgoing guard left"
            else:
                note = "no handover record"
            self._plant("shift-handover/R2", ended + 15 * MIN, [e_seq], ("employee", out),
                        f"{out} → {g} at {post.id}: {note}")
            return
        rec = start_in + self._u(MIN, 10 * MIN)
        seq = self._push(rec, "shift.handover_recorded", {
            "post_id": post.id, "from_guard": out, "to_guard": g, "signed_by": [out, g]})
        if rng.random() < 0.01:
            ended = rec + 15 * MIN
            self._boundary("shift-handover/R2", ended, seq, ("employee", out),
                           "handover recorded exactly 15 min before the outgoing guard left")
        else:
            ended = rec + self._u(MIN, 4 * MIN)
        self._push(ended, "shift.ended", {"post_id": post.id, "guard_id": out})

    def _covered(self, post: Post, t: int) -> int | None:
        """None if the post is covered at ``t``, else when the uncovered stretch ends."""
        for a, b in post.uncovered:
            if a <= t < b:
                return b
        if post.uncovered_from is not None and t >= post.uncovered_from:
            return NEVER
        return None

    def _on_duty(self, post: Post, t: int) -> str:
        return self._guard_of(post, (t - 8 * HOUR) // (12 * HOUR))

    def _patrols(self, post: Post, day: int) -> None:
        """24-hour patrol rounds roughly every 1.5 h; gaps over 2 h are recorded as planted."""
        limit = (day + 1) * DAY
        t = post.next_patrol if day else self._u(10 * MIN, 40 * MIN)
        subj = ("route", post.route)
        while t < limit:
            gap_end = self._covered(post, t)
            if gap_end is not None:
                if gap_end >= NEVER:
                    break
                t = gap_end + self._u(30, 4 * MIN)
                continue
            if post.last_round >= 0 and self._chance("shift-handover/R5"):
                t += self._u(75 * MIN, 95 * MIN)  # a round skipped
                continue
            seq = self._push(t, "patrol.round", {"route_id": post.route,
                                                 "guard_id": self._on_duty(post, t)})
            gap = t - post.last_round
            if post.last_round >= 0 and gap > 2 * HOUR:
                self._wanted.add(post.last_round_seq)
                self._plant("shift-handover/R5", post.last_round + 2 * HOUR,
                            [post.last_round_seq, seq], subj,
                            f"{gap // MIN} min between patrol rounds on {post.route}")
            elif gap == 2 * HOUR:
                self._boundary("shift-handover/R5", t, seq, subj,
                               "patrol gap of exactly 2 h is allowed")
            post.last_round, post.last_round_seq = t, seq
            t += 2 * HOUR if self._rng.random() < 0.002 else self._u(75 * MIN, 95 * MIN)
        post.next_patrol = t
        if post.last_round_seq >= 0:  # tomorrow's first gap may name it as evidence
            self._wanted.add(post.last_round_seq)

    def _security(self, post: Post, day: int) -> None:
        rng, base = self._rng, day * DAY
        if rng.random() < 0.3:
            t = base + self._u(0, DAY - 1)
            if self._covered(post, t) is None:
                g = self._on_duty(post, t)
                recorded = not self._chance("shift-handover/R7a")
                seq = self._push(t, "security.suspicious_checked", {
                    "post_id": post.id, "employee_id": g,
                    "subject": rng.choice(("person", "vehicle")), "recorded": recorded})
                if not recorded:
                    self._plant("shift-handover/R7a", t, [seq], ("employee", g),
                                f"suspicious subject checked by {g} but not recorded")
        for _ in range(self._scheduled.pop(("case", day, post.id), 0)):
            t = base + self._u(0, DAY - 3 * HOUR)
            if self._covered(post, t) is None:
                g, case = self._on_duty(post, t), self._next_id("CASE-", 4)
                seq = self._push(t, "security.case_opened", {"case_id": case, "employee_id": g})
                if self._chance("shift-handover/R7b"):
                    # Handed over late: the police still get every case, in the end.
                    self._push(t + self._u(150 * MIN, 5 * HOUR), "security.case_to_police",
                               {"case_id": case, "employee_id": g})
                    self._plant("shift-handover/R7b", t + 2 * HOUR, [seq], ("employee", g),
                                f"{case} not handed to the police within 2 h")
                else:
                    self._push(t + self._u(20 * MIN, 90 * MIN), "security.case_to_police",
                               {"case_id": case, "employee_id": g})
        for _ in range(self._scheduled.pop(("unsafe", day, post.id), 0)):
            t = base + self._u(0, DAY - 4 * HOUR)
            if self._covered(post, t) is None:
                g, case = self._on_duty(post, t), self._next_id("UNSAFE-", 4)
                seq = self._push(t, "security.unsafe_found", {"case_id": case, "employee_id": g})
                reported = t + self._u(5 * MIN, 25 * MIN)
                closed = reported + self._u(HOUR, 150 * MIN)
                if self._chance("shift-handover/R7c"):
                    if rng.random() < 0.5:
                        reported = t + self._u(40 * MIN, 90 * MIN)
                        closed = reported + self._u(30 * MIN, HOUR)
                    else:
                        reported = -1
                    self._plant("shift-handover/R7c", t + 30 * MIN, [seq], ("employee", g),
                                f"{case} not reported to the leader within 30 min")
                if reported >= 0:
                    self._push(reported, "security.unsafe_reported",
                               {"case_id": case, "employee_id": g})
                    if closed - reported > 90 * MIN:  # an update while it stays open
                        self._push(reported + 75 * MIN, "security.unsafe_reported",
                                   {"case_id": case, "employee_id": g})
                self._push(closed, "security.unsafe_closed", {"case_id": case, "employee_id": g})

    def _access(self, post: Post, day: int) -> None:
        rng, base = self._rng, day * DAY
        for _ in range(rng.choice((1, 2, 2, 3, 3, 4))):
            t = base + self._u(7 * HOUR, 22 * HOUR)
            if self._covered(post, t) is not None:
                continue
            g = self._on_duty(post, t)
            f: dict[str, Any] = {"visit_id": self._next_id("V", 6), "post_id": post.id,
                                 "employee_id": g, "has_id_document": True, "registered": True,
                                 "admitted": True}
            if self._chance("site-access/R1"):
                if rng.random() < 0.5:
                    f["registered"] = False
                    note = "visitor admitted without registration"
                else:
                    f["has_id_document"] = False
                    note = "visitor without any identity document admitted"
                self._plant("site-access/R1", t, [self._push(t, "visitor.arrived", f)],
                            ("employee", g), note)
                continue
            if rng.random() < 0.05:  # no ID: turned away, which is right
                f.update(has_id_document=False, registered=False, admitted=False)
            self._push(t, "visitor.arrived", f)
        for _ in range(rng.choice((1, 2, 3, 3, 4))):
            t = base + self._u(6 * HOUR, 23 * HOUR)
            if self._covered(post, t) is not None:
                continue
            g = self._on_duty(post, t)
            known = rng.random() < 0.7
            plate = rng.choice(post.known_plates) if known else self._plate()
            f = {"plate": plate, "post_id": post.id, "employee_id": g, "known": known,
                 "registered": not known, "admitted": True}
            if not known and self._chance("site-access/R2"):
                f["registered"] = False
                self._plant("site-access/R2", t, [self._push(t, "vehicle.arrived", f)],
                            ("employee", g),
                            f"unknown vehicle {plate} admitted without registration")
                continue
            self._push(t, "vehicle.arrived", f)

    # --- holiday-coverage -----------------------------------------------------------------

    def _duty_day(self, day: int) -> None:
        """Website monitoring on every non-working day: every ≤ 4 h in 08:00-22:00."""
        rng, base = self._rng, day * DAY
        cs = self.by_role["customer_service"]
        e = cs[day % len(cs)]
        statutory = self.named_holiday[day]
        gap_at = -1
        if statutory and self._chance("holiday-coverage/R1"):
            gap_at = rng.randint(1, 2)  # the check after this many is dropped, and one more
        t = base + 8 * HOUR + self._u(0, 10 * MIN)
        n = 0
        while t <= base + 21 * HOUR + 59 * MIN:
            target = rng.choice(DUTY_TARGETS)
            seq = self._push(t, "duty.check", {"employee_id": e.id, "target": target})
            n += 1
            if gap_at == n:
                nxt = t + self._u(4 * HOUR + 30 * MIN, 5 * HOUR + 30 * MIN)
                self._plant("holiday-coverage/R1", t + 4 * HOUR, [seq],
                            ("department", "customer_service"),
                            f"{(nxt - t) // MIN} min without a monitoring check on "
                            f"{self._daystr[day]}")
                t = nxt
                continue
            if rng.random() < 0.12:
                self._duty_problem(t, e, target)
            t += self._u(150 * MIN, 220 * MIN)

    def _duty_problem(self, t: int, e: Employee, target: str) -> None:
        pid = self._next_id("DP-", 4)
        found = t + self._u(MIN, 5 * MIN)
        seq = self._push(found, "duty.problem_found",
                         {"problem_id": pid, "employee_id": e.id, "target": target})
        if self._chance("holiday-coverage/R2"):
            if self._rng.random() < 0.5:
                self._push(found + self._u(45 * MIN, 90 * MIN), "duty.problem_escalated",
                           {"problem_id": pid, "employee_id": e.id, "target": target})
                note = "escalated more than 30 min after it was found"
            else:
                note = "never escalated"
            self._plant("holiday-coverage/R2", found + 30 * MIN, [seq], ("employee", e.id),
                        f"{pid} on {target}: {note}")
            return
        self._push(found + self._u(5 * MIN, 25 * MIN), "duty.problem_escalated",
                   {"problem_id": pid, "employee_id": e.id, "target": target})

    # --- complaint-handling ---------------------------------------------------------------

    def _complaints_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        lam = max(0.3, len(self.households) * 0.008)
        n = sum(1 for _ in range(8) if rng.random() < lam / 8)
        receivers = self.by_role["property_officer"] + self.by_role["customer_service"]
        for _ in range(n):
            t = base + self._u(8 * HOUR + 30 * MIN, 19 * HOUR + 30 * MIN)
            e = rng.choice(receivers)
            hh = rng.choice(self.households)
            kind = rng.choice(("complaint",) * 11 + ("visit",) * 5 + ("suggestion",) * 4)
            cid = self._next_id("CP-", 5)
            seq = self._push(t, "complaint.received", {"complaint_id": cid, "household_id": hh,
                                                       "employee_id": e.id, "kind": kind})
            subj = ("employee", e.id)
            if kind == "suggestion":
                due = t + 2 * DAY
                rep = t + self._u(HOUR, 30 * HOUR)
                if self._chance("complaint-handling/R4"):
                    rep = t + self._u(3 * DAY, 4 * DAY) if rng.random() < 0.5 else -1
                    self._plant("complaint-handling/R4", due, [seq], subj,
                                f"suggestion {cid} not reported to the director within 2 days")
                if rep >= 0:
                    self._push(rep, "complaint.reported", {"complaint_id": cid, "employee_id": e.id,
                                                           "recipients": ["director"]})
                continue
            inv = t + self._u(30 * MIN, 4 * HOUR)
            inv = min(inv, base + 23 * HOUR + 50 * MIN)
            if self._chance("complaint-handling/R2"):
                inv = base + DAY + self._u(9 * HOUR, 12 * HOUR)
                self._plant("complaint-handling/R2", base + DAY, [seq], subj,
                            f"{cid} investigated only the next day")
            solved = rng.random() < 0.8
            self._push(inv, "complaint.investigated", {
                "complaint_id": cid, "employee_id": e.id,
                "outcome": "solved" if solved else "unsolved"})
            rep = inv + self._u(30 * MIN, 5 * HOUR)
            if self._chance("complaint-handling/R2b"):
                rep = inv + self._u(2 * DAY, 3 * DAY) if rng.random() < 0.5 else -1
                self._plant("complaint-handling/R2b", inv + DAY, [seq], subj,
                            f"{cid}: result not reported within a day")
            if rep >= 0:
                self._push(rep, "complaint.reported", {
                    "complaint_id": cid, "employee_id": e.id,
                    "recipients": ["responsible_dept", "director"]})
            reply = inv + self._u(2 * HOUR, 40 * HOUR)
            if self._chance("complaint-handling/R3"):
                reply = inv + self._u(4 * DAY, 6 * DAY) if rng.random() < 0.5 else -1
                self._plant("complaint-handling/R3", inv + 3 * DAY, [seq], subj,
                            f"{cid}: no reply to the resident within 3 days")
            if reply >= 0:
                self._push(reply, "complaint.replied", {"complaint_id": cid, "employee_id": e.id,
                                                        "recipients": ["resident", "director"]})
            if kind == "complaint":
                self._push(max(reply, rep, inv) + HOUR, "complaint.validated",
                           {"complaint_id": cid, "valid": rng.random() < 0.3})
            if self._chance("complaint-handling/R5"):
                b = inv + self._u(HOUR, 2 * DAY)
                bseq = self._push(b, "complaint.benefit_received",
                                  {"complaint_id": cid, "employee_id": e.id})
                self._plant("complaint-handling/R5", b, [bseq], subj,
                            f"{e.id} took a benefit from household {hh} ({cid})")

    # --- projects, callbacks, households: callback-frequency, annual-customer-care --------

    def _rand_work_time(self, first: int, last: int) -> int | None:
        """A working-hours time on a random working day in [first, last) of the horizon."""
        days = self._working_days(first, last)
        if not days:
            return None
        return self._rng.choice(days) * DAY + self._u(9 * HOUR, 17 * HOUR)

    def _windows(self, anchor: int, first_months: int, step: int) -> Iterator[tuple[int, int]]:
        """Windows [anchor + k months, anchor + (k+1) months) from the anchor, clamped."""
        d0, secs = self.dates[anchor // DAY], anchor % DAY
        k = 0
        while True:
            a = self._t(add_months(d0, first_months + k * step)) + secs
            b = self._t(add_months(d0, first_months + (k + 1) * step)) + secs
            if a >= self.end_t:
                return
            yield a, b
            k += 1

    def _projects_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        if self.steady and day >= 365:  # delivered projects never end: only the first year's
            return
        lam = len(self.active_customers) * (0.06 if day < 5 else 0.03)
        for _ in range(sum(1 for _ in range(4) if rng.random() < lam / 4)):
            customer = rng.choice(self.active_customers)
            pid = self._next_id("PRJ-", 4)
            t = base + self._u(10 * HOUR, 17 * HOUR)
            pm = rng.choice(self.by_role["tech_service"]).id
            d_seq = self._push(t, "project.delivered", {"project_id": pid, "customer_id": customer})
            self.project_customer[pid] = customer
            # Monthly windows in the project's first year, quarterly ones after it.
            windows = [w for k, w in enumerate(self._windows(t, 0, 1)) if k < 12]
            windows += list(self._windows(t, 12, 3))
            cs = self.by_role["customer_service"]
            for a, b in windows:
                if self._judged(b) and self._chance("callback-frequency/R1"):
                    self._plant("callback-frequency/R1", b, [d_seq], ("project", pid),
                                f"no callback in window {self.fmt(a)} - {self.fmt(b)}")
                    continue
                # Early in the window, before the obligation's warning (P5D before its end).
                when = self._rand_work_time(a // DAY + 1, b // DAY - 6)
                if when is None:
                    when = self._rand_work_time(a // DAY + 1, b // DAY)
                if when is not None and a < when < b:
                    self._callback(when, rng.choice(cs), project=pid)
            # A quality inspection every calendar quarter, the delivery's quarter included.
            d = self.dates[day]
            q = date(d.year, (d.month - 1) // 3 * 3 + 1, 1)
            while (qs := self._t(q)) < self.end_t:
                qe = self._t(add_months(q, 3))
                if self._judged(qe) and self._chance("annual-customer-care/R2"):
                    self._plant("annual-customer-care/R2", qe, [d_seq], ("project", pid),
                                f"no quality inspection in the quarter from {q}")
                else:
                    when = self._rand_work_time(max(qs // DAY, day + 1), qe // DAY)
                    if when is None and qs <= t:  # delivered on the quarter's last working day
                        when = t + self._u(HOUR, 3 * HOUR)
                    if when is not None:
                        self._inspection(when, pid, pm)
                q = add_months(q, 3)

    def _inspection(self, t: int, pid: str, pm: str) -> None:
        findings = self._rng.choice((0, 0, 0, 1, 2, 3))
        seq = self._push(t, "inspection.done", {"project_id": pid, "employee_id": pm,
                                                "findings": findings})
        if not findings:
            return
        fwd = t + self._u(30 * MIN, 20 * HOUR)
        if self._judged(t + DAY) and self._chance("annual-customer-care/R2b"):
            fwd = t + self._u(2 * DAY, 3 * DAY) if self._rng.random() < 0.5 else -1
            self._wanted.add(seq)
            self._plant("annual-customer-care/R2b", t + DAY, [seq], ("employee", pm),
                        f"{findings} inspection finding(s) not forwarded within 1 day")
        if fwd >= 0:
            self._push(fwd, "inspection.findings_forwarded", {"project_id": pid, "employee_id": pm})

    def _callback(self, t: int, e: Employee, project: str | None = None,
                  household: str | None = None) -> None:
        """A phone callback, sometimes with a feedback item or a question to answer later."""
        rng = self._rng
        key: dict[str, Any] = {"project_id": project} if project else {"household_id": household}
        self._push(t, "callback.made", {**key, "employee_id": e.id, "channel": "phone"})
        subj = ("employee", e.id)
        if rng.random() < 0.3:
            item = self._next_id("FB-", 5)
            seq = self._push(t + MIN, "feedback.recorded",
                             {"item_id": item, "employee_id": e.id, **key})
            # The KPI is measured per year by default: judged at the year's end.
            y_end = self._t(date(self.dates[t // DAY].year + 1, 1, 1))
            if self._judged(y_end) and self._chance("callback-frequency/R6"):
                self._plant("callback-frequency/R6a", y_end, [seq], ("department", "office"),
                            f"feedback {item} never processed (lowers the processing rate)",
                            kind="kpi")
            else:
                self._push(t + self._u(HOUR, 3 * DAY), "feedback.processed",
                           {"item_id": item, "employee_id": e.id})
        if rng.random() < 0.1:
            q = self._next_id("Q-", 5)
            by = self._work_deadline(t, self._rng.choice((1, 2, 3)) * WORK_SECONDS)
            who = {"customer_id": self.project_customer[project]} if project else {
                "household_id": household}
            seq = self._push(t + MIN, "reply.promised", {"question_id": q, "employee_id": e.id,
                                                         "promised_by": self.fmt(by), **who})
            if self._judged(by) and self._chance("callback-frequency/R5"):
                if rng.random() < 0.5:
                    self._push(by + self._u(HOUR, DAY), "reply.given",
                               {"question_id": q, "employee_id": e.id})
                self._plant("callback-frequency/R5", by, [seq], subj,
                            f"{q}: no reply by the promised {self.fmt(by)}")
            else:
                self._push(self._u(t + 2 * MIN, by), "reply.given",
                           {"question_id": q, "employee_id": e.id})

    def _household_callbacks_day(self, day: int) -> None:
        rng, base = self._rng, day * DAY
        callers = [e for e in self.by_role["property_officer"] + self.by_role["customer_service"]
                   if e.id in self._present]
        if not callers:
            return
        lam = len(self.households) * 0.02
        for _ in range(sum(1 for _ in range(6) if rng.random() < lam / 6)):
            self._callback(base + self._u(9 * HOUR, 17 * HOUR), rng.choice(callers),
                           household=rng.choice(self.households))

    def _period_start(self, day: int) -> None:
        """Schedules the month's, quarter's, half-year's and year's obligations on its first day."""
        rng, d = self._rng, self.dates[day]
        month_end = self._day_index(add_months(d.replace(day=1), 1))
        self._schedule_month(day, min(month_end, self.ndays))
        # reporting-duties R3: the supervision report on the month's last working day.
        if month_end <= self.ndays:
            biz = self.by_role["business"][0]
            due = month_end * DAY
            if self._chance("reporting-duties/R3"):
                self._plant("reporting-duties/R3", due, [biz.profile_seq],
                            ("department", "business"),
                            f"no supervision report for {d.isoformat()[:7]}")
            else:
                last = (self._working_days(day, month_end) or [month_end - 1])[-1]
                self._push(last * DAY + self._u(10 * HOUR, 17 * HOUR), "report.submitted", {
                    "report": "supervision", "employee_id": biz.id, "department": "business"})
        # callback-frequency R3: every property officer visits their areas each quarter.
        if day == 0 or d.month in (1, 4, 7, 10):
            q0 = d.replace(day=1, month=(d.month - 1) // 3 * 3 + 1)
            q_end = self._day_index(add_months(q0, 3))
            for e in self.by_role["property_officer"]:
                if self._judged(q_end * DAY) and self._chance("callback-frequency/R3"):
                    self._plant("callback-frequency/R3", q_end * DAY, [e.profile_seq],
                                ("employee", e.id), f"no area visit in the quarter from {q0}")
                    continue
                for area in e.areas:
                    when = self._rand_work_time(day, q_end)
                    if when is not None:
                        self._push(when, "area_visit.made", {"area_id": area, "employee_id": e.id})
        # callback-frequency R4: one residents' forum per site each half year.
        if day == 0 or d.month in (1, 7):
            h0 = d.replace(day=1, month=1 if d.month < 7 else 7)
            h_end = self._day_index(add_months(h0, 6))
            host = self.by_role["director"][0]
            for site in self.sites:
                if self._judged(h_end * DAY) and self._chance("callback-frequency/R4"):
                    self._plant("callback-frequency/R4", h_end * DAY, [host.profile_seq],
                                ("site", site), f"no residents' forum at {site} in the "
                                f"half year from {h0}")
                    continue
                days = [x for x in range(day, min(h_end, self.ndays)) if not self.working[x]]
                if days:
                    self._push(rng.choice(days) * DAY + self._u(14 * HOUR, 16 * HOUR),
                               "forum.held", {"site_id": site, "employee_id": host.id})
        if day == 0 or d.month == 1:
            self._year_start(day)
        if d.month == 12:
            self._december(day)

    def _schedule_month(self, first: int, last: int) -> None:
        """Security cases, unsafe situations, new and leaving customers of the month."""
        rng, posts = self._rng, [p.id for p in self.posts]
        days = list(range(first, last))
        work = self._working_days(first, last) or days

        def put(kind: str, day: int, where: str = "") -> None:
            key = (kind, day, where)
            self._scheduled[key] = self._scheduled.get(key, 0) + 1

        for _ in range(max(1, round(len(posts) * 0.5))):
            put("case", rng.choice(days), rng.choice(posts))
        for _ in range(max(1, round(len(posts) * 1.5))):
            put("unsafe", rng.choice(days), rng.choice(posts))
        if self.steady:  # every month one customer leaves and a new one takes its place
            put("swap", rng.choice(work))
            return
        for _ in range(max(1, round(len(self.customers) * 0.05))):
            put("onboard", rng.choice(work))
        if first == 0 or rng.random() < 0.5:
            put("leave", rng.choice(work))

    def _year_start(self, day: int) -> None:
        rng, d = self._rng, self.dates[day]
        y_end = self._day_index(date(d.year + 1, 1, 1))
        for e in self.by_role["director"]:  # callback-frequency R2: 1-2 home visits a year
            if self._judged(y_end * DAY) and self._chance("callback-frequency/R2"):
                self._plant("callback-frequency/R2", y_end * DAY, [e.profile_seq],
                            ("employee", e.id), f"no home visit by the director in {d.year}")
                continue
            for _ in range(rng.choice((1, 2))):
                when = self._rand_work_time(day, y_end)
                if when is not None:
                    self._push(when, "home_visit.made",
                               {"household_id": rng.choice(self.households), "employee_id": e.id})
        leaders = self.by_role["general_manager"] + self.by_role["director"]
        for c in self.active_customers if self.steady else self.customers:
            c_seq = self._customer_seq[c]
            cs = rng.choice(self.by_role["customer_service"])
            if self._judged(y_end * DAY) and self._chance("annual-customer-care/R3"):
                self._plant("annual-customer-care/R3", y_end * DAY, [c_seq], ("customer", c),
                            f"no satisfaction survey in {d.year}")
            else:
                when = self._rand_work_time(day, y_end)
                if when is not None:
                    self._push(when, "satisfaction_survey.done", {"customer_id": c,
                                                                  "employee_id": cs.id})
            if self._judged(y_end * DAY) and self._chance("annual-customer-care/R4"):
                self._plant("annual-customer-care/R4", y_end * DAY, [c_seq], ("customer", c),
                            f"no service research visit in {d.year}")
                continue
            when = self._rand_work_time(day, y_end)
            if when is None:
                continue
            lead = rng.choice(leaders)
            v_seq = self._push(when, "service_research.visited", {"customer_id": c,
                                                                  "employee_id": lead.id})
            plan = when + self._u(3 * DAY, 25 * DAY)
            if self._judged(when + 30 * DAY) and self._chance("annual-customer-care/R4b"):
                plan = when + self._u(35 * DAY, 50 * DAY) if rng.random() < 0.5 else -1
                self._wanted.add(v_seq)
                self._plant("annual-customer-care/R4b", when + 30 * DAY, [v_seq], ("customer", c),
                            "no solution plan within 30 days of the research visit")
            if plan >= 0:
                self._push(plan, "service_research.plan_made", {"customer_id": c,
                                                                "employee_id": lead.id})

    def _december(self, day: int) -> None:
        """annual-customer-care R1: a new-year gift and a demand survey for every customer."""
        rng = self._rng
        y_end = self._day_index(date(self.dates[day].year + 1, 1, 1))
        for c in self.active_customers:
            cs = rng.choice(self.by_role["customer_service"])
            if self._judged(y_end * DAY) and self._chance("annual-customer-care/R1"):
                self._plant("annual-customer-care/R1", y_end * DAY, [self._customer_seq[c]],
                            ("customer", c), f"no new-year gift for {c} in December")
            else:
                when = self._rand_work_time(day, y_end)
                if when is not None:
                    self._push(when, "gift.sent", {"customer_id": c, "employee_id": cs.id})
            when = self._rand_work_time(day, y_end)
            if when is not None:
                self._push(when, "demand_survey.done", {"customer_id": c, "employee_id": cs.id})

    def _registers_day(self, day: int) -> None:
        """New households and customers now and then; a customer leaves once in a while."""
        rng, base = self._rng, day * DAY
        if self.steady:
            self._swap_customers(day)
            return
        if rng.random() < 0.08:
            h = f"H{len(self.households) + 1:05d}"
            self.households.append(h)
            self.household_area[h] = rng.choice(self.areas)
            self._push(base + self._u(9 * HOUR, 18 * HOUR), "household.registered",
                       {"household_id": h, "area_id": self.household_area[h]})
        for _ in range(self._scheduled.pop(("onboard", day, ""), 0)):
            self._onboard(day)
        for _ in range(self._scheduled.pop(("leave", day, ""), 0)):
            if len(self.active_customers) > 6:
                self._deactivate(day, rng.choice(self.active_customers))

    def _swap_customers(self, day: int) -> None:
        """The steady business: a customer leaves and a new one registers the same day."""
        for _ in range(self._scheduled.pop(("swap", day, ""), 0)):
            self._deactivate(day, self._rng.choice(self.active_customers))
            self._onboard(day)

    def _deactivate(self, day: int, c: str) -> None:
        self.active_customers.remove(c)
        self._push(day * DAY + self._u(10 * HOUR, 17 * HOUR), "customer.deactivated",
                   {"customer_id": c})

    def _onboard(self, day: int) -> None:
        """A new customer, with what is owed to it in its first days and year."""
        rng, base = self._rng, day * DAY
        c = f"C{len(self.customers) + 1:04d}"
        self.customers.append(c)
        self.active_customers.append(c)
        t = base + self._u(10 * HOUR, 15 * HOUR)
        self._customer_seq[c] = self._push(t, "customer.registered", {"customer_id": c})
        self._wanted.add(self._customer_seq[c])
        # A new customer gets a welcome gift and a demand-plan survey (篇二 §三) within
        # days, before the year ends so that December's R1 holds for them too.
        y_end = self._day_index(date(self.dates[day].year + 1, 1, 1))
        cs = rng.choice(self.by_role["customer_service"]).id
        for etype in ("gift.sent", "demand_survey.done"):
            when = self._rand_work_time(day + 1, min(day + 8, y_end))
            self._push(when if when is not None else t + self._u(HOUR, 2 * HOUR), etype,
                       {"customer_id": c, "employee_id": cs})
        # The yearly satisfaction survey and service research are owed for it too.
        when = self._rand_work_time(day + 1, y_end)
        if when is not None:
            self._push(when, "satisfaction_survey.done", {"customer_id": c, "employee_id": cs})
            lead = rng.choice(self.by_role["general_manager"] + self.by_role["director"]).id
            self._push(when + HOUR, "service_research.visited",
                       {"customer_id": c, "employee_id": lead})
            self._push(when + self._u(3 * DAY, 25 * DAY), "service_research.plan_made",
                       {"customer_id": c, "employee_id": lead})

    # --- the books ------------------------------------------------------------------------

    def planted(self) -> dict[str, Any]:
        """What was planted and is judged within the log (due at or before its end)."""
        if not self._done:
            raise RuntimeError("exhaust events() first")

        def row(p: Plant) -> dict[str, Any] | None:
            if p.due > self.end_t or any(s not in self._ids for s in p.evidence):
                return None
            r: dict[str, Any] = {
                "policy": p.policy, "rule": p.rule, "kind": p.kind, "due": self.fmt(p.due),
                "subject": {"kind": p.subject[0], "id": p.subject[1]},
                "evidence": [self._ids[s] for s in p.evidence], "note": p.note,
            }
            if p.amount is not None:
                r["amount"], r["currency"] = p.amount, "CNY"
            return r

        planted = [r for r in map(row, self._plants) if r is not None]
        boundaries = [r for r in map(row, self._boundaries) if r is not None]
        counts: dict[str, dict[str, int]] = {}
        for r in planted:
            rules = counts.setdefault(r["policy"], {})
            rules[r["rule"]] = rules.get(r["rule"], 0) + 1
        return {
            "generator": {"employees": self.employees, "months": self.months, "seed": self.seed,
                          "start": self.start.isoformat(), "end": self.fmt(self.end_t),
                          **({"session_ends": True} if self.session_ends else {})},
            "events": self._emitted,
            "by_type": dict(sorted(self._counts.items())),
            "counts": {p: dict(sorted(r.items())) for p, r in sorted(counts.items())},
            "planted": planted,
            "boundaries": boundaries,
        }


def generate(employees: int, months: int, seed: int, start: date = date(2026, 3, 1),
             *, steady: bool = False) -> Iterator[dict[str, Any]]:
    """The events of a ``employees``-person company over ``months`` months, sorted by ``at``
    (``steady``: a business of a fixed size, see the module docstring)."""
    return LogGenerator(employees, months, seed, start, steady=steady).events()


def dumps(event: Event) -> str:
    """One JSONL line, exactly as the CLI (and the bundled example) writes it."""
    return json.dumps(event, ensure_ascii=False)


def write_jsonl(events: Iterable[Event], out: TextIO) -> int:
    """Write events as JSONL; returns how many."""
    n = 0
    for ev in events:
        out.write(dumps(ev))
        out.write("\n")
        n += 1
    return n


def late_clock_ins(events: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """``events`` with every clock-in moved to 08:45 of its (local) day."""
    for e in events:
        if e.get("type") == "attendance.clock_in":
            e = {**e, "at": e["at"][:11] + "08:45:00" + e["at"][19:]}
        yield e


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--employees", type=int, required=True)
    ap.add_argument("--months", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--start", type=date.fromisoformat, default=date(2026, 3, 1),
                    help="first day, YYYY-MM-DD (default 2026-03-01)")
    ap.add_argument("--out", type=Path, required=True, help="JSONL file to write ('-': stdout)")
    ap.add_argument("--planted", type=Path, help="also write the planted-violation books (JSON)")
    ap.add_argument("--session-ends", action="store_true",
                    help="also record the end of each remote session (remote.session_ended)")
    ap.add_argument("--steady", action="store_true",
                    help="a business of a fixed size: no growth, customers churn at a fixed count")
    args = ap.parse_args(argv)
    gen = LogGenerator(args.employees, args.months, args.seed, args.start,
                       session_ends=args.session_ends, steady=args.steady)
    began = time.perf_counter()  # only to report throughput, never part of the output
    if str(args.out) == "-":
        n = write_jsonl(gen.events(), sys.stdout)
    else:
        with args.out.open("w", encoding="utf-8", newline="\n") as fh:
            n = write_jsonl(gen.events(), fh)
    took = time.perf_counter() - began
    if args.planted:
        books = gen.planted()
        args.planted.write_text(json.dumps(books, ensure_ascii=False, indent=1) + "\n",
                                encoding="utf-8")
    print(f"{n} events in {took:.1f} s ({n / max(took, 1e-9):,.0f} events/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
