"""incident-escalation (篇二 §七): notify with the four details, relay, track, report — and
an escalation naming who must act next at every missed step. Edges: a notification missing
``plan``, deadlines met exactly and missed by a second, a report due over a weekend."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision

POLICY = "incident-escalation"
UNTIL = t("2026-04-01 00:00")
FULL = {"time": "08:58", "place": "DC-1 rack 4", "symptoms": "core switch down",
        "plan": "fail over to DC-2"}
SECTIONS = ["impact", "handling", "root_cause", "corrective_actions"]
ALL = ["sales_owner", "manager", "departments"]  # whom a major fault's notification names


def detected(at: str = "2026-03-02 09:00", severity: str = "major",
             incident: str = "I1") -> dict[str, Any]:
    return ev("incident.detected", at, incident_id=incident, severity=severity,
              employee_id="E1", customer_id="C1")


def notified(at: str, recipients: list[str], details: dict[str, str] | None = None,
             employee: str = "E1") -> dict[str, Any]:
    return ev("incident.notified", at, incident_id="I1", employee_id=employee,
              recipients=recipients, details=FULL if details is None else details)


def progress(at: str) -> dict[str, Any]:
    return ev("incident.progress", at, incident_id="I1", employee_id="M1")


def resolved(at: str) -> dict[str, Any]:
    return ev("incident.resolved", at, incident_id="I1")


def report(at: str, sections: list[str] | None = None,
           delivered_to: list[str] | None = None) -> dict[str, Any]:
    return ev("incident.report_filed", at, incident_id="I1", employee_id="S1",
              sections=SECTIONS if sections is None else sections,
              delivered_to=["customer", "business_dept"] if delivered_to is None
              else delivered_to)


def of(out: list[Decision], rule: str, kind: str | None = None) -> list[Decision]:
    """Decisions of one rule or part: ``R1`` is R1's own, ``R1b`` its departments part."""
    return [d for d in out if (d.part or d.rule) == rule and (kind is None or d.kind == kind)]


def happy(**overrides: Any) -> list[dict[str, Any]]:
    """A major fault handled by the book: every step in time."""
    steps = {
        "detected": detected(),
        "notified": notified("2026-03-02 09:10", ALL),
        "relayed": notified("2026-03-02 09:30", ["senior_leadership"], employee="M1"),
        "progress": progress("2026-03-02 13:00"),
        "resolved": resolved("2026-03-02 15:00"),
        "report": report("2026-03-04 10:00"),
    }
    steps.update(overrides)
    return [e for e in steps.values() if e is not None]


def test_by_the_book_gives_no_decisions(evaluate: Evaluate) -> None:
    assert evaluate(happy(), until=UNTIL, policy=POLICY) == []


def test_minor_faults_are_out_of_scope(evaluate: Evaluate) -> None:
    assert evaluate([detected(severity="minor")], until=UNTIL, policy=POLICY) == []


# -- R1 notify -------------------------------------------------------------------------------


def test_r1_notification_exactly_at_15_minutes_is_in_time(evaluate: Evaluate) -> None:
    out = evaluate(happy(notified=notified("2026-03-02 09:15", ALL)),
                   until=UNTIL, policy=POLICY)
    assert of(out, "R1") == []


def test_r1_one_second_late_violation_and_escalation_to_the_manager(evaluate: Evaluate) -> None:
    det = detected()
    out = evaluate(happy(detected=det,
                         notified=notified("2026-03-02 09:15:01", ALL)),
                   until=UNTIL, policy=POLICY)
    r1 = of(out, "R1")
    assert sorted((d.kind, d.at) for d in r1) == [("escalation", t("2026-03-02 09:15")),
                                                 ("violation", t("2026-03-02 09:15"))]
    esc = of(out, "R1", "escalation")[0]
    assert esc.details["to"] == "manager"
    assert esc.subject.id == "E1"
    assert esc.evidence == (det["id"],)
    # The departments were told in that late notification too: late for R1b as well.
    (dep,) = of(out, "R1b")
    assert (dep.rule, dep.part, dep.kind, dep.at) == ("R1", "R1b", "violation",
                                                      t("2026-03-02 09:15"))


def test_r1_notification_missing_plan_is_incomplete(evaluate: Evaluate) -> None:
    no_plan = {k: v for k, v in FULL.items() if k != "plan"}
    n = notified("2026-03-02 09:05", ALL, details=no_plan)
    out = evaluate(happy(notified=n), until=UNTIL, policy=POLICY)
    (d,) = of(out, "R1")
    assert (d.kind, d.details["outcome"], d.details["missing"]) == (
        "violation", "incomplete", "details.plan")
    assert d.at == t("2026-03-02 09:05")
    assert d.evidence[-1] == n["id"]
    assert "plan" in d.message


def test_r1_judged_on_the_first_notification_naming_both(evaluate: Evaluate) -> None:
    events = happy(notified=notified("2026-03-02 09:05", ["manager"], details={}))
    events.append(notified("2026-03-02 09:12", ALL))
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R1") == []
    # The first one naming both lacks details; a complete one afterwards does not undo it.
    events2 = happy(notified=notified("2026-03-02 09:05", ALL,
                                      details={"time": "x", "place": "y"}))
    events2.append(notified("2026-03-02 09:12", ALL))
    (d,) = of(evaluate(events2, until=UNTIL, policy=POLICY), "R1")
    assert d.details["missing"] == "details.symptoms, details.plan"


def test_r1_telling_only_other_departments_is_not_enough(evaluate: Evaluate) -> None:
    out = evaluate(happy(notified=notified("2026-03-02 09:05", ["departments", "manager"])),
                   until=UNTIL, policy=POLICY)
    assert [d.details["outcome"] for d in of(out, "R1", "violation")] == ["missed"]


def test_r1b_the_departments_may_be_told_in_a_separate_notification(
        evaluate: Evaluate) -> None:
    # 及時通知相關部門和人員: the departments are part of the duty; they need only be told,
    # in the notification to the salesperson and the manager or in another one.
    n = notified("2026-03-02 09:05", ["sales_owner", "manager"])
    events = [*happy(notified=n), notified("2026-03-02 09:08", ["departments"], details={})]
    assert [d for d in evaluate(events, until=UNTIL, policy=POLICY) if d.rule == "R1"] == []
    # Told exactly at the deadline: in time; a second later: R1b's violation, at the deadline.
    at_due = [*happy(notified=n), notified("2026-03-02 09:15", ["departments"], details={})]
    assert [d for d in evaluate(at_due, until=UNTIL, policy=POLICY) if d.rule == "R1"] == []
    late = [*happy(notified=n), notified("2026-03-02 09:15:01", ["departments"], details={})]
    (d,) = [d for d in evaluate(late, until=UNTIL, policy=POLICY) if d.rule == "R1"]
    assert (d.part, d.kind, d.details["outcome"], d.at) == (
        "R1b", "violation", "missed", t("2026-03-02 09:15"))
    assert d.subject.id == "E1" and "departments" in d.message


def test_r1b_departments_never_told_is_a_violation_of_r1(evaluate: Evaluate) -> None:
    n = notified("2026-03-02 09:05", ["sales_owner", "manager"])
    out = evaluate(happy(notified=n), until=UNTIL, policy=POLICY)
    (d,) = [d for d in out if d.rule == "R1"]
    assert (d.rule, d.part, d.kind, d.details["outcome"]) == ("R1", "R1b", "violation", "missed")
    assert of(out, "R1") == []  # the salesperson and the manager were told in full
    # notify_also: [] asks no one else: the notification to the two is enough.
    assert [d for d in evaluate(happy(notified=n), until=UNTIL, policy=POLICY, notify_also=[])
            if d.rule == "R1"] == []


def test_r1_decisions_carry_the_manager_named_on_the_incident(evaluate: Evaluate) -> None:
    det = ev("incident.detected", "2026-03-02 09:00", incident_id="I1", severity="major",
             employee_id="E1", manager_id="M7")
    out = evaluate([det, resolved("2026-03-02 09:20")], until=t("2026-03-02 12:00"),
                   policy=POLICY)
    r1 = of(out, "R1")
    assert sorted(d.kind for d in r1) == ["escalation", "violation"]
    assert all(d.details["manager_id"] == "M7" for d in r1)
    esc = of(out, "R1", "escalation")[0]
    assert (esc.details["to"], esc.details["manager_id"]) == ("manager", "M7")
    # Without manager_id (it is optional) the manager is named by role only.
    plain = of(evaluate([detected(), resolved("2026-03-02 09:20")],
                        until=t("2026-03-02 12:00"), policy=POLICY), "R1")
    assert plain and all("manager_id" not in d.details for d in plain)


# -- R2 relay --------------------------------------------------------------------------------


def test_r2_relay_within_30_minutes_of_the_manager_being_told(evaluate: Evaluate) -> None:
    on_time = happy(relayed=notified("2026-03-02 09:40", ["senior_leadership"], employee="M1"))
    assert of(evaluate(on_time, until=UNTIL, policy=POLICY), "R2") == []
    late = happy(relayed=notified("2026-03-02 09:40:01", ["senior_leadership"], employee="M1"))
    out = of(evaluate(late, until=UNTIL, policy=POLICY), "R2")
    assert sorted((d.kind, d.at) for d in out) == [("escalation", t("2026-03-02 09:40")),
                                                  ("violation", t("2026-03-02 09:40"))]
    esc = next(d for d in out if d.kind == "escalation")
    assert (esc.subject.kind, esc.subject.id, esc.details["to"]) == (
        "incident", "I1", "senior_leadership")


def test_r2_leadership_told_in_the_first_notification_needs_no_relay(evaluate: Evaluate) -> None:
    events = happy(notified=notified("2026-03-02 09:10",
                                     [*ALL, "senior_leadership"]),
                   relayed=None)
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R2") == []


def test_r2_clock_starts_only_when_the_manager_is_told(evaluate: Evaluate) -> None:
    events = happy(notified=notified("2026-03-02 10:00", ALL),
                   relayed=notified("2026-03-02 10:30", ["senior_leadership"], employee="M1"))
    out = evaluate(events, until=UNTIL, policy=POLICY)
    assert of(out, "R2") == []
    assert len(of(out, "R1", "violation")) == 1  # the notification itself was late


# -- R3 track --------------------------------------------------------------------------------


def test_r3_progress_every_four_hours_until_resolved(evaluate: Evaluate) -> None:
    events = happy(progress=progress("2026-03-02 13:00"),
                   resolved=resolved("2026-03-02 20:00"))
    events.append(progress("2026-03-02 17:00"))
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R3") == []


def test_r3_each_missed_period_is_a_violation_and_an_escalation(evaluate: Evaluate) -> None:
    events = happy(progress=progress("2026-03-02 13:00:01"),
                   resolved=resolved("2026-03-02 22:00"))
    out = of(evaluate(events, until=UNTIL, policy=POLICY), "R3")
    # Due 13:00 (missed by a second); the late update restarts the clock: due 17:00:01 —
    # missed too, then re-armed to 21:00:01 — missed; resolution at 22:00 stops it.
    assert [d.at for d in out if d.kind == "violation"] == [
        t("2026-03-02 13:00"), t("2026-03-02 17:00:01"), t("2026-03-02 21:00:01")]
    assert [d.details["to"] for d in out if d.kind == "escalation"] == ["senior_leadership"] * 3


def test_r3_resolution_stops_the_clock(evaluate: Evaluate) -> None:
    events = happy(progress=None, resolved=resolved("2026-03-02 13:00"))
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R3") == []


# -- R4 failure analysis ---------------------------------------------------------------------


def test_r4_report_due_three_working_days_after_resolution(evaluate: Evaluate) -> None:
    # Resolved Friday 15:00: 3 working days later is Wednesday 15:00.
    base = happy(resolved=resolved("2026-03-06 15:00"), report=None)
    assert of(evaluate([*base, report("2026-03-11 15:00")], until=UNTIL, policy=POLICY),
              "R4") == []
    out = of(evaluate([*base, report("2026-03-11 15:00:01")], until=UNTIL, policy=POLICY),
             "R4")
    assert sorted((d.kind, d.at) for d in out) == [("escalation", t("2026-03-11 15:00")),
                                                  ("violation", t("2026-03-11 15:00"))]
    esc = next(d for d in out if d.kind == "escalation")
    assert esc.details["to"] == "technical_service_supervisor"
    assert esc.details["started_at"] == "2026-03-06T15:00:00+08:00"


@pytest.mark.parametrize(("sections", "delivered", "missing"), [
    (["impact", "handling", "root_cause"], None, "sections: corrective_actions"),
    (None, ["customer"], "delivered_to: business_dept"),
])
def test_r4_incomplete_report(evaluate: Evaluate, sections: list[str] | None,
                              delivered: list[str] | None, missing: str) -> None:
    out = evaluate(happy(report=report("2026-03-03 10:00", sections, delivered)),
                   until=UNTIL, policy=POLICY)
    (d,) = of(out, "R4")
    assert (d.details["outcome"], d.details["missing"]) == ("incomplete", missing)


def test_r4_no_report_before_resolution_is_due(evaluate: Evaluate) -> None:
    events = happy(resolved=None, report=None, progress=None)
    out = evaluate(events, until=t("2026-03-02 12:00"), policy=POLICY)
    assert out == []


def test_every_missed_step_escalates_naming_who_acts_next(evaluate: Evaluate) -> None:
    events = [detected(), resolved("2026-03-02 09:20")]
    events.append(notified("2026-03-02 09:30", ["manager"]))  # starts R2; R1 already missed
    out = evaluate(events, until=UNTIL, policy=POLICY)
    esc = {d.rule: d.details["to"] for d in out if d.kind == "escalation"}
    assert esc == {"R1": "manager", "R2": "senior_leadership",
                   "R4": "technical_service_supervisor"}
    for d in out:
        if d.kind == "escalation":
            twin = [v for v in of(out, d.rule, "violation") if v.at == d.at]
            assert twin, f"{d.rule} escalation without its violation"
