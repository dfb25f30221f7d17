"""staff-penalties (篇四 §六.1, §二.6): 如有客戶與銷售人員投訴視情節嚴重性而定，最低罰款10元/次;
不得接打私人電話(如有不得超過3分鐘); 不得拔打信息臺、瀏覽與工作無關的網站打游戲、私自會客
(抓到一率嚴懲，決不姑息). Edges: the 10 CNY floor, a call of exactly 180 and of 181 seconds,
the severity of forbidden activities, and what payroll (R4) reads."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import Evaluate, ev

from policykit import Decision, standard_pack

POLICY = "staff-penalties"


def complaint(at: str, severity: str = "minor", source: str = "customer",
              employee: str = "E1", id: str | None = None) -> dict[str, Any]:
    return ev("staff.complaint", at, id=id, employee_id=employee, source=source,
              severity=severity)


def call(at: str, seconds: int, employee: str = "E1") -> dict[str, Any]:
    return ev("staff.private_call", at, employee_id=employee, duration_s=seconds)


def misconduct(at: str, kind: str, employee: str = "E1", id: str | None = None
               ) -> dict[str, Any]:
    return ev("staff.misconduct", at, id=id, employee_id=employee, kind=kind)


def of(out: list[Decision], rule: str, kind: str | None = None) -> list[Decision]:
    return [d for d in out if d.rule == rule and (kind is None or d.kind == kind)]


# -- R1 complaint fine ------------------------------------------------------------------


def test_r1_two_records_of_one_complaint_are_one_fine(evaluate: Evaluate) -> None:
    # The desk records the customer's complaint; sales relays the same one (complaint_id).
    desk = {**complaint("2026-03-02 10:00", "moderate", id="c-desk"), "complaint_id": "K1"}
    sales = {**complaint("2026-03-02 11:00", "serious", "sales", id="c-sales"),
             "complaint_id": "K1"}
    other = {**complaint("2026-03-03 10:00", id="c-other"), "complaint_id": "K2"}
    out = of(evaluate([desk, sales, other], policy="staff-penalties"), "R1")
    assert [(d.evidence, d.amount) for d in out] == [
        (("c-desk",), Decimal("50.00")), (("c-other",), Decimal("10.00"))]
    # Another employee named in a record of the same complaint is fined on their own.
    peer = {**complaint("2026-03-02 11:00", employee="E2", id="c-peer"), "complaint_id": "K1"}
    assert len(of(evaluate([desk, peer], policy="staff-penalties"), "R1")) == 2


def test_r1_records_without_a_complaint_id_are_each_a_complaint(evaluate: Evaluate) -> None:
    events = [complaint("2026-03-02 10:00", id="a"), complaint("2026-03-02 10:00", id="b")]
    assert len(of(evaluate(events, policy="staff-penalties"), "R1")) == 2


def test_r1_a_complaint_id_is_forgotten_after_366_days(evaluate: Evaluate) -> None:
    first = {**complaint("2025-01-02 10:00", id="a"), "complaint_id": "K1"}
    within = {**complaint("2026-01-03 10:00", id="b"), "complaint_id": "K1"}
    again = {**complaint("2026-01-03 10:00:01", id="c"), "complaint_id": "K1"}
    assert len(of(evaluate([first, within], policy="staff-penalties"), "R1")) == 1
    assert len(of(evaluate([first, again], policy="staff-penalties"), "R1")) == 2



@pytest.mark.parametrize(("severity", "amount"),
                         [("minor", "10.00"), ("moderate", "50.00"), ("serious", "200.00")])
def test_r1_complaint_fine_by_severity(evaluate: Evaluate, severity: str, amount: str) -> None:
    out = evaluate([complaint("2026-03-02 10:00", severity, id="cmp1")], policy=POLICY)
    fines = of(out, "R1")
    assert len(fines) == 1
    f = fines[0]
    assert (f.kind, f.amount, f.currency, f.status) == ("fine", Decimal(amount), "CNY", "final")
    assert f.evidence == ("cmp1",)
    assert f.details["severity"] == severity


def test_r1_complaints_from_customers_and_from_sales_both_cost(evaluate: Evaluate) -> None:
    out = evaluate([complaint("2026-03-02 10:00", source="customer"),
                    complaint("2026-03-02 11:00", source="sales")], policy=POLICY)
    assert [d.amount for d in of(out, "R1")] == [Decimal("10.00"), Decimal("10.00")]
    only_customers = evaluate([complaint("2026-03-02 11:00", source="sales")], policy=POLICY,
                              complaint_sources=["customer"])
    assert of(only_customers, "R1") == []


@pytest.mark.parametrize("listed", ["0", "5", "9.99"])
def test_r1_fine_is_never_below_10(evaluate: Evaluate, listed: str) -> None:
    out = evaluate([complaint("2026-03-02 10:00", "minor")], policy=POLICY,
                   severity_fines={"minor": listed, "moderate": "50", "serious": "200"})
    assert [d.amount for d in of(out, "R1")] == [Decimal("10.00")]


def test_r1_each_complaint_is_fined(evaluate: Evaluate) -> None:
    out = evaluate([complaint(f"2026-03-0{d} 10:00", "moderate") for d in (2, 3, 4)],
                   policy=POLICY)
    assert sum(d.amount or 0 for d in of(out, "R1")) == Decimal("150.00")


# -- R2 private calls ------------------------------------------------------------------------


def test_r2_a_call_of_exactly_3_minutes_is_allowed_181_seconds_is_not(
        evaluate: Evaluate) -> None:
    out = evaluate([call("2026-03-02 10:00", 180), call("2026-03-02 11:00", 181)],
                   policy=POLICY)
    violations = of(out, "R2", "violation")
    assert [d.at.hour for d in violations] == [11]
    assert violations[0].details["duration_s"] == 181
    fines = of(out, "R2", "fine")
    assert [(d.amount, d.at.hour) for d in fines] == [(Decimal("10.00"), 11)]


def test_r2_fine_zero_leaves_the_violation(evaluate: Evaluate) -> None:
    out = evaluate([call("2026-03-02 10:00", 600)], policy=POLICY, private_call_fine="0")
    assert [d.kind for d in of(out, "R2")] == ["violation"]


# -- R3 forbidden activities ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["info_line", "unrelated_browsing", "gaming",
                                  "private_visitor"])
def test_r3_forbidden_activity_is_high_violation_fine_and_sanction(evaluate: Evaluate,
                                                                   kind: str) -> None:
    out = evaluate([misconduct("2026-03-02 15:00", kind, id="m1")], policy=POLICY)
    got = sorted((d.kind, d.severity, d.amount) for d in of(out, "R3"))
    assert got == [("fine", "high", Decimal("200.00")), ("sanction", "high", None),
                   ("violation", "high", None)]
    for d in of(out, "R3"):
        assert d.evidence == ("m1",)
        assert d.details["kind"] == kind
        assert d.subject.id == "E1"


def test_r3_fine_is_a_parameter(evaluate: Evaluate) -> None:
    out = evaluate([misconduct("2026-03-02 15:00", "gaming")], policy=POLICY,
                   misconduct_fine="500")
    assert [d.amount for d in of(out, "R3", "fine")] == [Decimal("500.00")]


# -- R4 payroll view -------------------------------------------------------------------------


def test_r4_is_the_payroll_table_not_a_decision(evaluate: Evaluate) -> None:
    """R4 is served by the audit's payroll table: each fine above is final and carries its
    amount and currency, so the month's sum per employee is exact; the policy emits no
    summary decision that a total over decisions would count twice."""
    policy = standard_pack().get(POLICY)
    assert [s.id for s in policy.specs] == ["R1", "R2", "R3"]
    assert "payroll" in policy.summary
    out = evaluate([complaint("2026-03-02 10:00", "serious"), call("2026-03-03 10:00", 300),
                    misconduct("2026-03-04 10:00", "gaming"),
                    complaint("2026-03-05 10:00", "minor", employee="E2")], policy=POLICY)
    totals: dict[str, Decimal] = {}
    for d in out:
        if d.amount is not None and d.status == "final":
            totals[d.subject.id] = totals.get(d.subject.id, Decimal(0)) + d.amount
    assert totals == {"E1": Decimal("410.00"), "E2": Decimal("10.00")}
