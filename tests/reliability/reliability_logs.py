"""Deterministic event logs for the reliability tests: a month of a small company's
attendance, customer requests, incidents, projects and staff matters, generated from a seed
(no hypothesis: the kill test regenerates the same log in several processes)."""

from __future__ import annotations

import random
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from policykit import Decision, Engine, EventBase, parse_events, standard_pack
from policykit.policy import PolicySet

__all__ = ["POLICIES", "SHANGHAI", "baseline", "by_id", "comparable", "effective", "horizon",
           "models", "month_log", "policies"]

SHANGHAI = ZoneInfo("Asia/Shanghai")

#: The policies the reliability tests stream through: attendance money, request ownership
#: (with its discipline ladder), incident deadlines, staff fines and callbacks.
POLICIES = ("lateness-deduction", "first-responder", "incident-escalation", "staff-penalties",
            "callback-frequency")


def policies() -> PolicySet:
    pack = standard_pack()
    return pack.select(*[p for p in POLICIES if p in pack])


def _at(day: date, hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm, ss), SHANGHAI)


def month_log(seed: int = 7, *, employees: int = 8, days: int = 31,
              start: date = date(2026, 3, 1)) -> list[dict[str, Any]]:
    """Events of ``days`` days from ``start`` in time order (no two at the same instant).

    Every employee has a profile; each weekday they clock in around 08:30 (some late) and
    out around 17:30; customers call, and requests are resolved, handed over (registered or
    not) or left open; incidents are detected, notified, resolved and reported (some late or
    incomplete); projects are delivered and called back; staff get complaints now and then.
    """
    rng = random.Random(seed)
    staff = [f"E{i}" for i in range(1, employees + 1)]
    out: list[tuple[datetime, dict[str, Any]]] = []
    taken: set[datetime] = set()
    n = 0

    def add(at: datetime, type_: str, **fields: Any) -> None:
        nonlocal n
        while at in taken:  # distinct instants: arrival order never has to break a tie
            at += timedelta(seconds=1)
        taken.add(at)
        n += 1
        out.append((at, {"id": f"s{seed}-{n}", "type": type_, "at": at.isoformat(), **fields}))

    first = _at(start, 0, 5)
    for i, e in enumerate(staff):
        add(first + timedelta(minutes=i), "employee.profile", employee_id=e,
            role="customer_service" if i % 2 else "tech_service",
            base_salary=f"{rng.randrange(5000, 9000)}.00")
    add(first + timedelta(minutes=30), "employee.profile", employee_id="M1", role="manager",
        base_salary="12000.00")
    request = incident = project = 0
    for offset in range(days):
        day = start + timedelta(days=offset)
        weekday = day.weekday() < 5
        for e in staff:
            if not weekday or rng.random() < 0.05:
                continue
            late = rng.random() < 0.18
            minute = rng.randrange(31, 60) if late else rng.randrange(0, 30)
            add(_at(day, 8, minute, rng.randrange(60)), "attendance.clock_in", employee_id=e)
            add(_at(day, 17, rng.randrange(20, 59), rng.randrange(60)),
                "attendance.clock_out", employee_id=e)
        for _ in range(rng.randrange(2, 6) if weekday else rng.randrange(0, 2)):
            request += 1
            rid = f"R{request}"
            owner = rng.choice(staff)
            at = _at(day, rng.randrange(9, 16), rng.randrange(60), rng.randrange(60))
            in_remit = rng.random() < 0.6
            major = rng.random() < 0.08
            add(at, "contact.received", request_id=rid, customer_id=f"C{rng.randrange(1, 9)}",
                employee_id=owner, channel=rng.choice(["phone", "visit", "email"]),
                topic=rng.choice(["printer", "network", "billing", "access"]),
                in_remit=in_remit, finish_at_once=in_remit and rng.random() < 0.7, major=major)
            if major and rng.random() < 0.7:
                add(at + timedelta(minutes=rng.randrange(5, 50)), "request.reported_to_gm",
                    request_id=rid, employee_id=owner)
            fate = rng.random()
            if not in_remit and fate < 0.75:
                add(at + timedelta(minutes=rng.randrange(10, 100)), "request.handed_over",
                    request_id=rid, from_employee=owner, to_employee="M1", to_role="manager",
                    registered=rng.random() < 0.8)
            elif fate < 0.85:
                done = at + timedelta(minutes=rng.randrange(5, 600))
                add(done, "request.resolved", request_id=rid, employee_id=owner)
                if rng.random() < 0.7:
                    add(done + timedelta(minutes=rng.randrange(5, 900)), "request.contact_form",
                        request_id=rid, employee_id=owner)
            if rng.random() < 0.1:
                add(at + timedelta(hours=rng.randrange(1, 30)), "contact.received",
                    request_id=f"{rid}-again", customer_id="C1", employee_id=rng.choice(staff),
                    channel="phone", topic="printer", in_remit=True, finish_at_once=False,
                    repeat_of=rid)
        if rng.random() < 0.2:
            incident += 1
            iid = f"I{incident}"
            at = _at(day, rng.randrange(8, 20), rng.randrange(60))
            who = rng.choice(staff)
            add(at, "incident.detected", incident_id=iid, severity=rng.choice(["major", "minor"]),
                employee_id=who, customer_id="C2")
            notified = at + timedelta(minutes=rng.randrange(3, 40))
            plan = {"plan": "restart"} if rng.random() < 0.8 else {}
            add(notified, "incident.notified", incident_id=iid, employee_id=who,
                recipients=["sales_owner", "manager"],
                details={"time": "now", "place": "site", "symptoms": "down", **plan})
            if rng.random() < 0.6:
                add(notified + timedelta(minutes=rng.randrange(5, 60)), "incident.notified",
                    incident_id=iid, employee_id="M1", recipients=["senior_leadership"])
            end = notified + timedelta(hours=rng.randrange(1, 20))
            add(end - timedelta(minutes=30), "incident.progress", incident_id=iid,
                employee_id=who)
            add(end, "incident.resolved", incident_id=iid)
            if rng.random() < 0.7:
                add(end + timedelta(days=rng.randrange(1, 5)), "incident.report_filed",
                    incident_id=iid, employee_id=who,
                    sections=["impact", "handling", "root_cause", "corrective_actions"][
                        :rng.randrange(2, 5)],
                    delivered_to=["customer", "business_dept"])
        if weekday and rng.random() < 0.15:
            project += 1
            pid = f"P{project}"
            add(_at(day, 10, rng.randrange(60)), "project.delivered", project_id=pid,
                customer_id=f"C{rng.randrange(1, 9)}")
            if rng.random() < 0.5:
                add(_at(day, 10, 0) + timedelta(days=rng.randrange(3, 20)), "callback.made",
                    project_id=pid, employee_id=rng.choice(staff), channel="phone")
        if rng.random() < 0.12:
            add(_at(day, rng.randrange(9, 17), rng.randrange(60)), "staff.complaint",
                employee_id=rng.choice(staff), source=rng.choice(["customer", "sales"]),
                severity=rng.choice(["minor", "moderate", "serious"]))
    out.sort(key=lambda pair: pair[0])
    end = _at(start + timedelta(days=days), 0, 0)
    return [e for at, e in out if at < end]


def horizon(start: date = date(2026, 3, 1), days: int = 31) -> datetime:
    """The first instant after a :func:`month_log` (its ``until``)."""
    return _at(start + timedelta(days=days), 0, 0)


def models(log: list[dict[str, Any]]) -> list[EventBase]:
    return list(parse_events(log))


def by_id(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.id: d for d in decisions}


_BOOKKEEPING = ("original_id", "revision_of", "revised_by", "replaces", "replaced_by")


def effective(decisions: list[Decision]) -> dict[str, Decision]:
    """What a consumer of a late-event session ends up holding: every decision except
    those a revocation, a revision or a replacement (``details.replaces``) took back, keyed
    by the evaluator's own id (``details.original_id`` for a revision), with that
    bookkeeping and ``supersedes`` cleared so it compares equal to an in-order run's
    decision (see :func:`comparable`). Rule-level supersedes (a month's final deduction
    replacing its provisional figures) are kept on both sides."""
    dead: set[str] = set()
    for d in decisions:
        if d.details.get("outcome") == "revoked":
            dead.add(str(d.details["revoked"]))
        if "revision_of" in d.details:
            dead.add(str(d.details["revision_of"]))
        if "replaces" in d.details:
            dead.add(str(d.details["replaces"]))
    out: dict[str, Decision] = {}
    for d in decisions:
        if d.id in dead or d.details.get("outcome") == "revoked":
            continue
        base = str(d.details.get("original_id", d.id))
        details = {k: v for k, v in d.details.items() if k not in _BOOKKEEPING}
        out[base] = d.model_copy(update={"id": base, "details": details, "supersedes": ()})
    return out


def comparable(decisions: dict[str, Decision]) -> dict[str, Decision]:
    """Decisions keyed by id with ``supersedes`` cleared (an in-order run's own supersedes
    point at ids that a late-event run may have re-issued under new ones)."""
    return {k: d.model_copy(update={"supersedes": ()}) for k, d in decisions.items()}


def baseline(engine: Engine, log: list[dict[str, Any]], until: datetime) -> list[Decision]:
    """The uninterrupted, in-order result."""
    return engine.evaluate(log, until=until)
