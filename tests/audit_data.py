"""A small, fully known audit: two policies of our own (so the tests do not move when the
standard pack is tuned) and a March 2026 log whose decisions are worked out by hand."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from helpers import ev, profile

from policykit import Policy, PolicySet

#: Deadline: a major request is reported to the GM within 30 minutes.
GM_POLICY: dict[str, Any] = {
    "id": "test-gm", "title": "Major matters to the GM", "clause": "篇二 §二.5",
    "parameters": {"gm_report_within": "PT30M"},
    "parameter_docs": {"gm_report_within": "how soon a major matter reaches the GM"},
    "rules": [{
        "shape": "deadline", "id": "R4", "title": "report major matters",
        "description": "A major request is reported to the general manager at once.",
        "trigger": {"type": "contact.received", "where": {"major": True}},
        "key": "request_id", "within": "$gm_report_within",
        "subject": {"kind": "employee", "field": "employee_id"},
        "fulfil": [{"type": "request.reported_to_gm"}],
    }],
}

#: Money: complaint fines by severity (final at once) and 1% of base salary per private
#: call, settled per month (provisional running totals, a final one at month end).
PAY_POLICY: dict[str, Any] = {
    "id": "test-pay", "title": "Fines and deductions", "clause": "篇四 §六",
    "parameters": {"call_rate": "0.01", "fines": {"minor": "10", "moderate": "50",
                                                   "serious": "200"}},
    "rules": [
        {"shape": "tariff", "id": "R1", "title": "complaint fine",
         "events": {"type": "staff.complaint"}, "settle": "item", "kind": "fine",
         "amount_by": {"field": "severity", "values": "$fines"}, "minimum": "10"},
        {"shape": "tariff", "id": "R2", "title": "private call deduction",
         "events": {"type": "staff.private_call"}, "period": "month", "settle": "period",
         "basis": "salary", "tiers": [{"from": 1, "rate": "$call_rate"}],
         "kind": "deduction"},
    ],
}

UNTIL = "2026-04-01T00:00:00+08:00"


def policies() -> PolicySet:
    return PolicySet([Policy.model_validate(GM_POLICY), Policy.model_validate(PAY_POLICY)])


def contact(at: str, id: str, request: str, employee: str = "E1", major: bool = True,
            **extra: Any) -> dict[str, Any]:
    return ev("contact.received", at, id=id, request_id=request, customer_id="C1",
              employee_id=employee, channel="phone", topic="leak", in_remit=True,
              finish_at_once=False, major=major, **extra)


def events() -> list[dict[str, Any]]:
    """March 2026. E1: one major request reported 12 minutes early (c1), one never (c2:
    missed at 10:30), two private calls (2 x 1% of 6000 = 120.00), complaints minor and
    serious (10 + 200 fines). E2: a profile and nothing else (full salary 8000.00)."""
    return [
        profile("E1", salary="6000.00", at="2026-03-01 00:00"),
        profile("E2", role="tech_service", salary="8000.00", at="2026-03-01 00:00"),
        contact("2026-03-02 09:00", "c1", "R1"),
        ev("request.reported_to_gm", "2026-03-02 09:18", id="g1", request_id="R1",
           employee_id="E1"),
        contact("2026-03-03 10:00", "c2", "R2"),
        contact("2026-03-03 11:00", "c3", "R3", major=False),
        ev("staff.private_call", "2026-03-04 10:00", id="pc1", employee_id="E1", duration_s=400),
        ev("staff.private_call", "2026-03-05 10:00", id="pc2", employee_id="E1", duration_s=500),
        ev("staff.complaint", "2026-03-06 10:00", id="sc1", employee_id="E1", source="customer",
           severity="minor"),
        ev("staff.complaint", "2026-03-09 15:00", id="sc2", employee_id="E1", source="sales",
           severity="serious"),
    ]


def write_jsonl(path: Path, records: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
                            + "\n" for r in records), encoding="utf-8")
    return path


def write_policy_file(path: Path) -> Path:
    path.write_text(yaml.safe_dump({"policies": [GM_POLICY, PAY_POLICY]}, allow_unicode=True),
                    encoding="utf-8")
    return path


EXPECTED_PAYROLL = {
    "E1": {"base_salary": Decimal("6000.00"), "test-pay R1": Decimal("210.00"),
           "test-pay R2": Decimal("120.00"), "total": Decimal("330.00"),
           "net": Decimal("5670.00")},
    "E2": {"base_salary": Decimal("8000.00"), "test-pay R1": Decimal("0.00"),
           "test-pay R2": Decimal("0.00"), "total": Decimal("0.00"), "net": Decimal("8000.00")},
}


def busy_month() -> list[dict[str, Any]]:
    """A fuller March for reports people look at: eight employees, daily major requests
    (every third one reported late or never), private calls and complaints by severity."""
    out: list[dict[str, Any]] = []
    staff = [f"E{i}" for i in range(1, 9)]
    for i, emp in enumerate(staff):
        out.append(profile(emp, role="customer_service" if i % 2 else "tech_service",
                           salary=f"{5000 + 500 * i}.00", at="2026-03-01 00:00"))
    severities = ("minor", "moderate", "serious")
    n = 0
    for day in range(2, 32):
        if day % 7 in (0, 1):  # roughly the weekends: quieter
            continue
        for i, emp in enumerate(staff):
            n += 1
            stamp = f"2026-03-{day:02d}"
            if (day + i) % 3 == 0:
                start = (i * 7) % 20
                out.append(contact(f"{stamp} 09:{start:02d}", f"c{n}", f"R{n}", emp))
                if n % 5:
                    minutes = start + 5 + (n * 7) % 30  # a few after the 30 minutes
                    out.append(ev("request.reported_to_gm", f"{stamp} 09:{minutes:02d}",
                                  id=f"g{n}", request_id=f"R{n}", employee_id=emp))
            if (day * (i + 1)) % 11 == 0:
                out.append(ev("staff.private_call", f"{stamp} 14:{i:02d}", id=f"pc{n}",
                              employee_id=emp, duration_s=200 + n))
            if (day + 3 * i) % 13 == 0:
                out.append(ev("staff.complaint", f"{stamp} 16:{i:02d}", id=f"sc{n}",
                              employee_id=emp, source="customer",
                              severity=severities[n % 3]))
    return out
