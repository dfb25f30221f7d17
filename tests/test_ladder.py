"""The *ladder* shape: the n-th counted violation per subject within a rolling calendar
window earns the n-th step; the last step repeats; ``transfer_at`` ends in transfer."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision, Policy
from policykit.errors import PolicyFileError
from policykit.rules.ladder import LadderSpec, window_start

SOURCE: dict[str, Any] = {
    # Every unregistered handover of an open request is a violation of its owner.
    "shape": "deadline", "id": "R1", "trigger": {"type": "contact.received"},
    "key": "request_id", "subject": {"kind": "employee", "field": "employee_id"},
    "open_ended": True, "breach_closes": False,
    "breach": [{"type": "request.handed_over", "where": {"registered": False}}],
    "expire_after": None,  # the requests stay open across the years these tests span
}
OTHER: dict[str, Any] = {**SOURCE, "id": "R2",
                         "breach": [{"type": "request.handed_over",
                                     "where": {"to_role": "nobody"}}]}


def policy(**ladder: Any) -> Policy:
    rule: dict[str, Any] = {"shape": "ladder", "id": "L", "counts": ["R1"]}
    rule.update(ladder)
    return Policy.model_validate({"id": "ladder-test", "title": "ladder", "clause": "篇二 §二.7",
                                  "rules": [SOURCE, OTHER, rule]})


def contact(rid: str, employee: str = "E1", at: str = "2025-01-01 09:00") -> dict[str, Any]:
    return ev("contact.received", at, request_id=rid, customer_id="C1", employee_id=employee,
              channel="phone", topic=rid, in_remit=True, finish_at_once=False)


def bad_handover(rid: str, at: str, role: str = "manager") -> dict[str, Any]:
    return ev("request.handed_over", at, request_id=rid, from_employee="x", to_employee="y",
              to_role=role, registered=False)


def ladder(out: list[Decision]) -> list[Decision]:
    return [d for d in out if d.rule == "L"]


def test_steps_in_order_last_repeats_then_transfer(evaluate: Evaluate) -> None:
    events = [contact("Q1"), *(bad_handover("Q1", f"2026-03-0{i} 10:00") for i in range(2, 9))]
    out = ladder(evaluate(events, policy=policy()))
    assert [d.details["step"] for d in out] == ["criticism", "education", "sanction",
                                                "sanction", "transfer", "transfer", "transfer"]
    assert [d.severity for d in out[:5]] == ["low", "medium", "high", "high", "critical"]
    assert all(d.kind == "sanction" for d in out)
    assert out[1].details["step_zh"] == "教育"


def test_evidence_and_details_list_the_counted_violations(evaluate: Evaluate) -> None:
    c = contact("Q1")
    h1, h2 = bad_handover("Q1", "2026-03-02 10:00"), bad_handover("Q1", "2026-03-03 10:00")
    out = evaluate([c, h1, h2], policy=policy())
    violations = [d for d in out if d.rule == "R1"]
    second = ladder(out)[1]
    assert second.evidence == (c["id"], h1["id"], h2["id"])
    assert [v["decision"] for v in second.details["violations"]] == [d.id for d in violations]
    assert second.at == violations[1].at
    assert second.details["count"] == 2 and second.details["window"] == "P12M"


def test_counted_per_subject(evaluate: Evaluate) -> None:
    events = [contact("Q1", "E1"), contact("Q2", "E2"), bad_handover("Q1", "2026-03-02 10:00"),
              bad_handover("Q2", "2026-03-03 10:00"), bad_handover("Q1", "2026-03-04 10:00")]
    out = ladder(evaluate(events, policy=policy()))
    assert [(d.subject.id, d.details["count"]) for d in out] == [("E1", 1), ("E2", 1), ("E1", 2)]


def test_only_the_counted_rules(evaluate: Evaluate) -> None:
    events = [contact("Q1"), bad_handover("Q1", "2026-03-02 10:00", role="nobody")]
    # R1 and R2 both fire; only R1 is counted unless R2 is listed.
    assert [d.details["count"] for d in ladder(evaluate(events, policy=policy()))] == [1]
    both = ladder(evaluate(events, policy=policy(counts=["R1", "R2"])))
    # Both violations fall at the same instant: the second one counted sees two.
    assert sorted(d.details["count"] for d in both) == [1, 2]
    assert {v["rule"] for d in both for v in d.details["violations"]} == {"R1", "R2"}


@pytest.mark.parametrize(("second", "count"), [
    ("2026-03-02 10:00:00", 1),  # exactly twelve months later: the first has left the window
    ("2026-03-02 09:59:59", 2),  # a second sooner: still inside
])
def test_rolling_window_boundary(evaluate: Evaluate, second: str, count: int) -> None:
    events = [contact("Q1"), bad_handover("Q1", "2025-03-02 10:00"), bad_handover("Q1", second)]
    assert ladder(evaluate(events, policy=policy()))[-1].details["count"] == count


def test_window_is_in_the_calendar_month_ends_clamped() -> None:
    from policykit.calendar import DEFAULT_CALENDAR as cal

    assert window_start(cal, t("2026-03-31 12:00"), "P1M") == t("2026-02-28 12:00")
    assert window_start(cal, t("2024-02-29 12:00"), "P12M") == t("2023-02-28 12:00")
    assert window_start(cal, t("2026-03-02 12:00"), "P7D") == t("2026-02-23 12:00")
    assert window_start(cal, t("2026-03-02 12:00"), "PT36H") == t("2026-03-01 00:00")


def test_shorter_window_parameter(evaluate: Evaluate) -> None:
    events = [contact("Q1"), bad_handover("Q1", "2026-03-02 10:00"),
              bad_handover("Q1", "2026-03-10 10:00")]
    out = ladder(evaluate(events, policy=policy(window="P7D")))
    assert [d.details["count"] for d in out] == [1, 1]


def test_transfer_can_be_disabled_and_steps_configured(evaluate: Evaluate) -> None:
    events = [contact("Q1"), *(bad_handover("Q1", f"2026-03-0{i} 10:00") for i in range(2, 9))]
    out = ladder(evaluate(events, policy=policy(transfer_at=None, steps=["warning", "fine"])))
    assert [d.details["step"] for d in out] == ["warning"] + ["fine"] * 6


def test_step_for() -> None:
    spec = LadderSpec(id="L", counts=("R1",), steps=("a", "b"), transfer_at=4)
    assert [spec.step_for(n) for n in range(1, 6)] == ["a", "b", "b", "transfer", "transfer"]


@pytest.mark.parametrize(("fields", "expected"), [
    ({"counts": []}, "at least one rule"),
    ({"counts": ["L"]}, "own decisions"),
    ({"counts": ["R9"]}, "R9"),
    ({"steps": []}, "at least one step"),
    ({"transfer_at": 0}, "greater than or equal to 1"),
    ({"window": "P0D"}, "positive duration"),
    ({"window": "12 months"}, "ISO-8601"),
])
def test_invalid_ladders_are_rejected(fields: dict[str, Any], expected: str) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        policy(**fields)
