"""complaint-handling (篇三 1–6): record, same-day investigation (a complaint at 23:50 is due
before midnight, weekends included), report, reply, suggestions, no favours."""

from __future__ import annotations

from typing import Any

from helpers import Evaluate, ev, t

from policykit import Decision

POLICY = "complaint-handling"
UNTIL = t("2026-04-01 00:00")


def received(at: str, kind: str = "complaint", cid: str = "K1",
             employee: str = "E1") -> dict[str, Any]:
    return ev("complaint.received", at, complaint_id=cid, household_id="H1",
              employee_id=employee, kind=kind)


def investigated(at: str, cid: str = "K1", employee: str = "E2",
                 outcome: str = "solved") -> dict[str, Any]:
    return ev("complaint.investigated", at, complaint_id=cid, employee_id=employee,
              outcome=outcome)


def reported(at: str, recipients: list[str] | None = None, cid: str = "K1") -> dict[str, Any]:
    return ev("complaint.reported", at, complaint_id=cid, employee_id="E2",
              recipients=["responsible_dept", "director"] if recipients is None else recipients)


def replied(at: str, recipients: list[str] | None = None, cid: str = "K1") -> dict[str, Any]:
    return ev("complaint.replied", at, complaint_id=cid, employee_id="E2",
              recipients=["resident", "director"] if recipients is None else recipients)


def of(out: list[Decision], rule: str) -> list[Decision]:
    return [d for d in out if d.spec_rule == rule]


def handled(received_at: str = "2026-03-02 10:00", **over: Any) -> list[dict[str, Any]]:
    """A complaint handled by the book."""
    steps = {"received": received(received_at),
             "investigated": investigated("2026-03-02 15:00"),
             "reported": reported("2026-03-02 16:00"),
             "replied": replied("2026-03-03 10:00")}
    steps.update(over)
    return [e for e in steps.values() if e is not None]


def test_by_the_book_gives_no_decisions(evaluate: Evaluate) -> None:
    assert evaluate(handled(), until=UNTIL, policy=POLICY) == []


# -- R1 record -------------------------------------------------------------------------------


def test_r1_handling_a_complaint_never_recorded(evaluate: Evaluate) -> None:
    inv = investigated("2026-03-02 15:00", cid="K9")
    out = evaluate([inv, reported("2026-03-02 16:00", cid="K9")], until=UNTIL, policy=POLICY)
    r1 = of(out, "R1")
    assert [(d.kind, d.subject.id, d.at) for d in r1] == [
        ("violation", "E2", t("2026-03-02 15:00")), ("violation", "E2", t("2026-03-02 16:00"))]
    assert r1[0].evidence == (inv["id"],)


def test_r1_recorded_afterwards_does_not_count(evaluate: Evaluate) -> None:
    out = evaluate([investigated("2026-03-02 15:00"), received("2026-03-02 15:30")],
                   until=t("2026-03-02 16:00"), policy=POLICY)
    assert len(of(out, "R1")) == 1


# -- R2 same-day investigation ---------------------------------------------------------------


def test_r2_complaint_at_23_50_investigated_by_23_59_59(evaluate: Evaluate) -> None:
    events = [received("2026-03-02 23:50"), investigated("2026-03-02 23:59:59")]
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R2") == []


def test_r2_complaint_at_23_50_investigated_at_midnight_is_missed(evaluate: Evaluate) -> None:
    rec = received("2026-03-02 23:50")
    out = evaluate([rec, investigated("2026-03-03 00:00")], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R2")
    assert (d.kind, d.subject.id, d.at, d.evidence) == (
        "violation", "E1", t("2026-03-02 23:59:59.999999"), (rec["id"],))
    assert d.details["due"] == "2026-03-02T23:59:59+08:00"


def test_r2_weekends_included(evaluate: Evaluate) -> None:
    out = evaluate([received("2026-03-07 10:00", kind="visit"),  # a Saturday
                    investigated("2026-03-09 09:00")], until=UNTIL, policy=POLICY)
    assert [d.at for d in of(out, "R2")] == [t("2026-03-07 23:59:59.999999")]


def test_r2_end_of_working_day_alternative(evaluate: Evaluate) -> None:
    events = [received("2026-03-07 10:00"), investigated("2026-03-09 17:00")]
    out = evaluate(events, until=UNTIL, policy=POLICY, investigate_within="end_of_working_day")
    assert of(out, "R2") == []


def test_r2b_result_reported_to_department_and_director(evaluate: Evaluate) -> None:
    late = handled(reported=reported("2026-03-03 15:00:01"))
    (d,) = of(evaluate(late, until=UNTIL, policy=POLICY), "R2b")
    assert (d.details["outcome"], d.at, d.subject.id) == (
        "missed", t("2026-03-03 15:00"), "E2")  # the investigator
    partial = handled(reported=reported("2026-03-02 16:00", ["director"]))
    (p,) = of(evaluate(partial, until=UNTIL, policy=POLICY), "R2b")
    assert (p.details["outcome"], p.details["missing"]) == (
        "incomplete", "recipients: responsible_dept")


def test_r2b_unsolved_goes_to_the_departments_and_the_director_too(evaluate: Evaluate) -> None:
    events = handled(investigated=investigated("2026-03-02 15:00", outcome="unsolved"))
    assert evaluate(events, until=UNTIL, policy=POLICY) == []


# -- R3 every case answered ------------------------------------------------------------------


def test_r3_reply_within_three_days_of_handling(evaluate: Evaluate) -> None:
    assert of(evaluate(handled(replied=replied("2026-03-05 15:00")), until=UNTIL,
                       policy=POLICY), "R3") == []
    out = evaluate(handled(replied=replied("2026-03-05 15:00:01")), until=UNTIL, policy=POLICY)
    (d,) = of(out, "R3")
    assert (d.at, d.subject.id) == (t("2026-03-05 15:00"), "E2")
    never = evaluate(handled(replied=None), until=UNTIL, policy=POLICY)
    assert [d.details["outcome"] for d in of(never, "R3")] == ["missed"]


def test_r3_reply_must_reach_resident_and_director(evaluate: Evaluate) -> None:
    out = evaluate(handled(replied=replied("2026-03-03 10:00", ["resident"])), until=UNTIL,
                   policy=POLICY)
    (d,) = of(out, "R3")
    assert d.details["missing"] == "recipients: director"


# -- R4 suggestions --------------------------------------------------------------------------


def test_r4_suggestion_reported_to_the_director_within_two_days(evaluate: Evaluate) -> None:
    sug = received("2026-03-02 10:00", kind="suggestion", cid="S1")
    ok = evaluate([sug, reported("2026-03-04 10:00", ["director"], cid="S1")], until=UNTIL,
                  policy=POLICY)
    assert ok == []
    out = evaluate([sug, reported("2026-03-04 10:00:01", ["director"], cid="S1")],
                   until=UNTIL, policy=POLICY)
    (d,) = of(out, "R4")
    assert (d.at, d.subject.id) == (t("2026-03-04 10:00"), "E1")
    # A report that does not reach the director does not count.
    dept = evaluate([sug, reported("2026-03-02 11:00", ["responsible_dept"], cid="S1")],
                    until=UNTIL, policy=POLICY)
    assert [d.at for d in of(dept, "R4")] == [t("2026-03-04 10:00")]
    # Suggestions need no same-day investigation.
    assert of(out, "R2") == []


# -- R5 no favours ---------------------------------------------------------------------------


def test_r5_benefit_received_is_a_high_severity_violation(evaluate: Evaluate) -> None:
    gift = ev("complaint.benefit_received", "2026-03-02 17:00", complaint_id="K1",
              employee_id="E2")
    out = evaluate([*handled(), gift], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R5")
    assert (d.kind, d.severity, d.subject.id, d.at, d.evidence) == (
        "violation", "high", "E2", t("2026-03-02 17:00"), (gift["id"],))
    assert "K1" in d.message and d.message_zh
