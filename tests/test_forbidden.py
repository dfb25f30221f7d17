"""The *forbidden* shape: every matching event is a decision about the subject it names."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Policy
from policykit.errors import PolicyFileError


def policy(**rule: Any) -> Policy:
    base: dict[str, Any] = {"shape": "forbidden", "id": "R5", "title": "benefit taken",
                            "event": {"type": "complaint.benefit_received"},
                            "subject": {"kind": "employee", "field": "employee_id"},
                            "severity": "high", "show": ["complaint_id"]}
    base.update(rule)
    return Policy.model_validate({"id": "forbidden-test", "title": "forbidden",
                                  "clause": "篇三 5", "rules": [base]})


def gift(at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("complaint.benefit_received", at, complaint_id="K1", employee_id=employee)


def test_every_occurrence_is_a_decision(evaluate: Evaluate) -> None:
    a, b = gift("2026-03-02 10:00"), gift("2026-03-02 10:00", "E2")
    out = evaluate([a, b], policy=policy())
    assert sorted((d.subject.id, d.at, d.evidence, d.severity, d.kind) for d in out) == [
        ("E1", t("2026-03-02 10:00"), (a["id"],), "high", "violation"),
        ("E2", t("2026-03-02 10:00"), (b["id"],), "high", "violation")]
    assert all(d.details["complaint_id"] == "K1" for d in out)
    assert len({d.id for d in out}) == 2


def test_where_conditions_filter(evaluate: Evaluate) -> None:
    p = policy(event={"type": "staff.private_call", "where": {"duration_s": {"gt": 180}}},
               show=["duration_s"], kind="warning")
    calls = [ev("staff.private_call", "2026-03-02 10:00", employee_id="E1", duration_s=180),
             ev("staff.private_call", "2026-03-02 11:00", employee_id="E1", duration_s=181)]
    (d,) = evaluate(calls, policy=p)
    assert (d.kind, d.details["duration_s"]) == ("warning", 181)


def test_unknown_subject_field_is_rejected() -> None:
    with pytest.raises(PolicyFileError, match="employe"):
        policy(subject={"kind": "employee", "field": "employe"})
