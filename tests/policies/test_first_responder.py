"""first-responder (篇二 §二): scenarios written from the rulebook, one or more per rule, with
the edges — an unregistered handover, a second call about an unresolved request, a deadline
met exactly and missed by a second, working time over a weekend."""

from __future__ import annotations

from typing import Any

from helpers import Evaluate, ev, t

from policykit import Decision

POLICY = "first-responder"
UNTIL = t("2026-04-01 00:00")


def contact(rid: str, at: str, employee: str = "E1", customer: str = "C1",
            topic: str = "printer", **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"channel": "phone", "in_remit": True, "finish_at_once": False,
                              "major": False}
    fields.update(kw)
    return ev("contact.received", at, request_id=rid, customer_id=customer,
              employee_id=employee, topic=topic, **fields)


def handover(rid: str, at: str, frm: str = "E1", to: str = "M1",
             registered: bool = True) -> dict[str, Any]:
    return ev("request.handed_over", at, request_id=rid, from_employee=frm, to_employee=to,
              to_role="manager", registered=registered)


def resolved(rid: str, at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("request.resolved", at, request_id=rid, employee_id=employee)


def form(rid: str, at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("request.contact_form", at, request_id=rid, employee_id=employee)


def of(out: list[Decision], rule: str, kind: str | None = None) -> list[Decision]:
    return [d for d in out if d.rule == rule and (kind is None or d.kind == kind)]


# -- R1 ownership ----------------------------------------------------------------------------


def test_r1_unregistered_handover_is_a_violation_and_ownership_stays(
        evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00")
    h = handover("Q1", "2026-03-02 09:20", registered=False, to="E2")
    again = contact("Q2", "2026-03-02 11:00", employee="E3", repeat_of="Q1")
    out = evaluate([c, h, again], until=UNTIL, policy=POLICY)
    (r1,) = of(out, "R1")
    assert (r1.kind, r1.subject.id, r1.at) == ("violation", "E1", t("2026-03-02 09:20"))
    assert r1.evidence == (c["id"], h["id"])
    assert r1.details["owner"] == "E1"
    # The second call is charged to E1: the unregistered handover did not move ownership.
    (r6,) = of(out, "R6")
    assert r6.subject.id == "E1"


def test_r1_registered_handover_moves_ownership(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 09:20",
                                                                to="E2"),
                    contact("Q2", "2026-03-02 11:00", employee="E3", repeat_of="Q1")],
                   until=UNTIL, policy=POLICY)
    assert of(out, "R1") == []
    assert [d.subject.id for d in of(out, "R6")] == ["E2"]


def test_r1_every_unregistered_handover_counts(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"),
                    handover("Q1", "2026-03-02 09:20", registered=False),
                    handover("Q1", "2026-03-02 09:40", registered=False),
                    resolved("Q1", "2026-03-02 10:00"),
                    handover("Q1", "2026-03-02 10:20", registered=False)],
                   until=UNTIL, policy=POLICY)
    assert [d.at for d in of(out, "R1")] == [t("2026-03-02 09:20"), t("2026-03-02 09:40")]


# -- R2 finish in one go ---------------------------------------------------------------------


def test_r2_at_once_request_resolved_the_same_day_by_its_owner(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 16:00", finish_at_once=True)
    ok = evaluate([c, resolved("Q1", "2026-03-02 23:59:59"), form("Q1", "2026-03-02 23:59:59")],
                  until=UNTIL, policy=POLICY)
    assert of(ok, "R2") == []
    late = evaluate([c, resolved("Q1", "2026-03-03 00:00:00"), form("Q1", "2026-03-03 00:00")],
                    until=UNTIL, policy=POLICY)
    (d,) = of(late, "R2")
    assert (d.details["outcome"], d.at, d.subject.id) == (
        "missed", t("2026-03-02 23:59:59.999999"), "E1")


def test_r2_handover_of_an_at_once_request_breaches(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 10:00", finish_at_once=True)
    h = handover("Q1", "2026-03-02 10:30", to="E2")  # registered, still not "in one go"
    out = evaluate([c, h, resolved("Q1", "2026-03-02 11:00", "E2")], until=UNTIL,
                   policy=POLICY)
    (d,) = of(out, "R2")
    assert (d.details["outcome"], d.at, d.evidence) == (
        "breached", t("2026-03-02 10:30"), (c["id"], h["id"]))


def test_r2_resolution_by_someone_else_breaches(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 10:00", finish_at_once=True),
                    resolved("Q1", "2026-03-02 10:30", employee="E7")],
                   until=UNTIL, policy=POLICY)
    assert [d.details["outcome"] for d in of(out, "R2")] == ["breached"]


def test_r2_not_applicable_outside_remit_or_when_not_finishable(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 10:00", finish_at_once=False),
                    contact("Q2", "2026-03-02 10:00", in_remit=False, finish_at_once=True,
                            topic="other")],
                   until=UNTIL, policy=POLICY)
    assert of(out, "R2") == []


def test_r2_end_of_working_day_alternative(evaluate: Evaluate) -> None:
    events = [contact("Q1", "2026-03-02 10:00", finish_at_once=True),
              resolved("Q1", "2026-03-02 18:00"), form("Q1", "2026-03-02 18:00")]
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R2") == []
    out = evaluate(events, until=UNTIL, policy=POLICY,
                   resolve_at_once_within="end_of_working_day")
    assert [d.at for d in of(out, "R2")] == [t("2026-03-02 17:30")]


# -- R3 no pushing away ----------------------------------------------------------------------


def test_r3_registered_handover_exactly_at_the_deadline_is_in_time(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00", in_remit=False),
                    handover("Q1", "2026-03-02 10:00")], until=UNTIL, policy=POLICY)
    assert of(out, "R3") == []


def test_r3_one_second_late_is_buck_passing(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00", in_remit=False)
    out = evaluate([c, handover("Q1", "2026-03-02 10:00:01")], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R3")
    assert (d.kind, d.subject.id, d.at, d.evidence) == (
        "violation", "E1", t("2026-03-02 10:00"), (c["id"],))
    assert "buck-passing" in d.message and "推諉" in d.message_zh


def test_r3_unregistered_handover_does_not_count(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00", in_remit=False),
                    handover("Q1", "2026-03-02 09:10", registered=False)],
                   until=UNTIL, policy=POLICY)
    assert [d.at for d in of(out, "R3")] == [t("2026-03-02 10:00")]
    assert len(of(out, "R1")) == 1


def test_r3_counts_working_time_over_the_weekend(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-06 17:00", in_remit=False)  # Friday, 30 minutes before close
    assert of(evaluate([c, handover("Q1", "2026-03-09 09:00")], until=UNTIL, policy=POLICY),
              "R3") == []
    out = evaluate([c, handover("Q1", "2026-03-09 09:00:01")], until=UNTIL, policy=POLICY)
    assert [d.at for d in of(out, "R3")] == [t("2026-03-09 09:00")]
    wall = evaluate([c], until=UNTIL, policy=POLICY, handover_basis="wall")
    assert [d.at for d in of(wall, "R3")] == [t("2026-03-06 18:00")]


def test_r3_resolution_also_settles_it(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00", in_remit=False),
                    resolved("Q1", "2026-03-02 09:30")], until=UNTIL, policy=POLICY)
    assert of(out, "R3") == []


# -- R4 major matters ------------------------------------------------------------------------


def test_r4_major_matter_escalates_at_once_and_is_met_in_time(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00", major=True)
    gm = ev("request.reported_to_gm", "2026-03-02 09:30", request_id="Q1", employee_id="E1")
    out = evaluate([c, gm], until=UNTIL, policy=POLICY)
    (now,) = of(out, "R4")
    assert (now.kind, now.at, now.subject.id) == ("escalation", t("2026-03-02 09:00"), "E1")
    assert now.details["due"] == "2026-03-02T09:30:00+08:00"
    assert now.details["to"] == "general_manager"
    assert now.evidence == (c["id"],)


def test_r4_missed_report_is_a_violation_and_a_second_escalation(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00", major=True)
    gm = ev("request.reported_to_gm", "2026-03-02 09:30:01", request_id="Q1", employee_id="E1")
    out = of(evaluate([c, gm], until=UNTIL, policy=POLICY), "R4")
    assert sorted((d.kind, d.at) for d in out) == [
        ("escalation", t("2026-03-02 09:00")), ("escalation", t("2026-03-02 09:30")),
        ("violation", t("2026-03-02 09:30"))]
    assert all(d.severity == "high" for d in out)


def test_r4_a_repeat_contact_flagged_major_owes_the_report(evaluate: Evaluate) -> None:
    # The first call was ordinary; on the second call the matter is major: the employee
    # who took that call reports it to the general manager like after a first contact.
    first = contact("Q1", "2026-03-02 09:00")
    again = contact("Q2", "2026-03-03 10:00", employee="E3", repeat_of="Q1", major=True)
    out = of(evaluate([first, again], until=UNTIL, policy=POLICY), "R4")
    assert sorted((d.kind, d.details["outcome"], d.at, d.subject.id) for d in out) == [
        ("escalation", "escalation", t("2026-03-03 10:30"), "E3"),
        ("escalation", "obligation", t("2026-03-03 10:00"), "E3"),
        ("violation", "missed", t("2026-03-03 10:30"), "E3")]
    assert all(d.details["key"] == "Q2" and d.evidence == (again["id"],) for d in out)
    gm = ev("request.reported_to_gm", "2026-03-03 10:20", request_id="Q2", employee_id="E3")
    met = of(evaluate([first, again, gm], until=UNTIL, policy=POLICY), "R4")
    assert [d.details["outcome"] for d in met] == ["obligation"]
    # gm_report_repeats: false is the pack's earlier reading: first contacts only.
    assert of(evaluate([first, again], until=UNTIL, policy=POLICY, gm_report_repeats=False),
              "R4") == []
    major_first = contact("Q3", "2026-03-04 09:00", major=True)
    assert len(of(evaluate([major_first], until=UNTIL, policy=POLICY,
                           gm_report_repeats=False), "R4")) == 3


def test_r4_the_same_request_id_again_is_not_judged_twice(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00", major=True)
    gm = ev("request.reported_to_gm", "2026-03-02 09:10", request_id="Q1", employee_id="E1")
    again = contact("Q1", "2026-03-02 11:00", employee="E3", major=True)
    out = of(evaluate([c, gm, again], until=UNTIL, policy=POLICY), "R4")
    assert [(d.details["outcome"], d.subject.id) for d in out] == [("obligation", "E1")]


def test_r4_a_repeat_of_a_major_request_already_reported_owes_no_second_report(
        evaluate: Evaluate) -> None:
    # The report is owed per request: a major repeat (own request id, repeat_of the first)
    # of a matter already reported to the general manager is not a new duty for its taker.
    c = contact("Q1", "2026-03-02 09:00", major=True)
    gm = ev("request.reported_to_gm", "2026-03-02 09:10", request_id="Q1", employee_id="E1")
    again = contact("Q2", "2026-03-02 11:00", employee="E3", repeat_of="Q1", major=True)
    out = of(evaluate([c, gm, again], until=UNTIL, policy=POLICY), "R4")
    assert [(d.details["outcome"], d.subject.id) for d in out] == [("obligation", "E1")]
    # A repeat while the first one's report is still due joins it: E1 owes it, E3 nothing.
    early = contact("Q2", "2026-03-02 09:05", employee="E3", repeat_of="Q1", major=True)
    out = of(evaluate([c, early], until=UNTIL, policy=POLICY), "R4")
    assert {d.subject.id for d in out} == {"E1"} and len(out) == 3


def test_r4_a_report_naming_the_request_a_repeat_continues_fulfils_it(
        evaluate: Evaluate) -> None:
    first = contact("Q1", "2026-03-02 09:00")  # ordinary: no report owed yet
    again = contact("Q2", "2026-03-03 10:00", employee="E3", repeat_of="Q1", major=True)
    gm = ev("request.reported_to_gm", "2026-03-03 10:30", request_id="Q1", employee_id="E3")
    out = of(evaluate([first, again, gm], until=UNTIL, policy=POLICY), "R4")
    assert [(d.details["outcome"], d.subject.id) for d in out] == [("obligation", "E3")]


def test_r4_not_for_ordinary_requests(evaluate: Evaluate) -> None:
    assert of(evaluate([contact("Q1", "2026-03-02 09:00")], until=UNTIL, policy=POLICY),
              "R4") == []


# -- R5 paperwork after ----------------------------------------------------------------------


def test_r5_contact_form_within_a_working_day_of_resolution(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-06 09:00")
    res = resolved("Q1", "2026-03-06 15:00")  # Friday 15:00: due Monday 15:00
    assert of(evaluate([c, res, form("Q1", "2026-03-09 15:00")], until=UNTIL, policy=POLICY),
              "R5") == []
    out = evaluate([c, res, form("Q1", "2026-03-09 15:00:01")], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R5")
    assert (d.at, d.subject.id, d.evidence) == (t("2026-03-09 15:00"), "E1",
                                                (c["id"], res["id"]))


def test_r5_form_before_resolution_satisfies_it(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"), form("Q1", "2026-03-02 10:00"),
                    resolved("Q1", "2026-03-05 10:00")], until=UNTIL, policy=POLICY)
    assert of(out, "R5") == []


def test_r5_names_the_owner_after_a_registered_handover(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 09:30",
                                                                to="E2"),
                    resolved("Q1", "2026-03-02 11:00", "E2")], until=UNTIL, policy=POLICY)
    assert [d.subject.id for d in of(out, "R5")] == ["E2"]


# -- R6 no second call -----------------------------------------------------------------------


def test_r6_second_call_about_an_unresolved_request(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00")
    again = contact("Q2", "2026-03-03 09:00", employee="E3", repeat_of="Q1", topic="anything")
    out = evaluate([c, again], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R6")
    assert (d.kind, d.subject.id, d.at, d.evidence) == (
        "violation", "E1", t("2026-03-03 09:00"), (c["id"], again["id"]))


def test_r6_owner_at_that_moment_after_a_registered_handover(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00")
    h = handover("Q1", "2026-03-02 09:30", to="E2")
    again = contact("Q2", "2026-03-03 09:00", employee="E3", repeat_of="Q1")
    (d,) = of(evaluate([c, h, again], until=UNTIL, policy=POLICY), "R6")
    assert d.subject.id == "E2"
    assert d.evidence == (c["id"], h["id"], again["id"])
    assert d.details["owners"] == ["E1", "E2"]


def test_r6_no_violation_once_resolved(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"), resolved("Q1", "2026-03-02 10:00"),
                    contact("Q2", "2026-03-03 09:00", repeat_of="Q1")],
                   until=UNTIL, policy=POLICY)
    assert of(out, "R6") == []


def test_r6_same_customer_and_topic_within_the_repeat_window(evaluate: Evaluate) -> None:
    first = contact("Q1", "2026-03-02 09:00")
    within = contact("Q2", "2026-03-09 09:00", employee="E2")  # exactly P7D later
    assert [d.subject.id for d in of(evaluate([first, within], until=UNTIL, policy=POLICY),
                                     "R6")] == ["E1"]
    after = contact("Q2", "2026-03-09 09:00:01", employee="E2")
    assert of(evaluate([first, after], until=UNTIL, policy=POLICY), "R6") == []
    other_topic = contact("Q2", "2026-03-03 09:00", topic="invoice")
    other_customer = contact("Q3", "2026-03-03 09:00", customer="C2")
    assert of(evaluate([first, other_topic, other_customer], until=UNTIL, policy=POLICY),
              "R6") == []
    wider = evaluate([first, after], until=UNTIL, policy=POLICY, repeat_window="P14D")
    assert len(of(wider, "R6")) == 1


def test_r6_a_third_call_counts_again(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"),
                    contact("Q2", "2026-03-03 09:00", repeat_of="Q1"),
                    contact("Q3", "2026-03-04 09:00", repeat_of="Q2")],  # names the repeat
                   until=UNTIL, policy=POLICY)
    assert [d.at for d in of(out, "R6")] == [t("2026-03-03 09:00"), t("2026-03-04 09:00")]


# -- R7 discipline ladder --------------------------------------------------------------------


def buck_passing(n: int, employee: str = "E1", start_day: int = 2) -> list[dict[str, Any]]:
    """``n`` out-of-remit requests nobody hands over: n R3 violations, one per day."""
    return [contact(f"B{employee}{i}", f"2026-03-{start_day + i:02d} 09:00", employee=employee,
                    in_remit=False, topic=f"{employee}-t{i}") for i in range(n)]


def test_r7_ladder_steps_up_to_transfer(evaluate: Evaluate) -> None:
    out = evaluate(buck_passing(6), until=UNTIL, policy=POLICY)
    ladder = of(out, "R7")
    assert [d.details["step"] for d in ladder] == [
        "criticism", "education", "sanction", "sanction", "transfer", "transfer"]
    assert [d.details["count"] for d in ladder] == [1, 2, 3, 4, 5, 6]
    assert all(d.kind == "sanction" and d.subject.id == "E1" for d in ladder)
    third = ladder[2]
    r3 = of(out, "R3")
    assert third.evidence == tuple(e for d in r3[:3] for e in d.evidence)
    assert [v["decision"] for v in third.details["violations"]] == [d.id for d in r3[:3]]
    assert ladder[4].severity == "critical" and "調離原工作崗位" in ladder[4].message_zh


def test_r7_counts_second_calls_per_owner(evaluate: Evaluate) -> None:
    out = evaluate([*buck_passing(1, "E1"),
                    contact("Q1", "2026-03-10 09:00", employee="E1"),
                    contact("Q2", "2026-03-11 09:00", employee="E5", repeat_of="Q1"),
                    *buck_passing(1, "E2", start_day=5)], until=UNTIL, policy=POLICY)
    assert [(d.subject.id, d.details["step"]) for d in of(out, "R7")] == [
        ("E1", "criticism"), ("E2", "criticism"), ("E1", "education")]


def test_r7_ladder_rules_and_steps_are_parameters(evaluate: Evaluate) -> None:
    events = [contact("Q1", "2026-03-02 09:00"),
              handover("Q1", "2026-03-02 09:20", registered=False)]
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R7") == []
    out = evaluate(events, until=UNTIL, policy=POLICY, ladder_rules=["R1", "R3", "R6"],
                   ladder_steps=["warning", "sanction"], transfer_at=2)
    assert [d.details["step"] for d in of(out, "R7")] == ["warning"]


def test_r7_violations_leave_the_window(evaluate: Evaluate) -> None:
    # Wall-clock handover deadlines, so each violation falls exactly one hour after its contact.
    old = contact("B0", "2025-03-02 09:00", in_remit=False, topic="old")  # missed 10:00
    new = contact("B1", "2026-03-02 09:00", in_remit=False, topic="new")  # missed 10:00
    out = evaluate([old, new], until=UNTIL, policy=POLICY, handover_basis="wall")
    # Exactly twelve months apart: the old one no longer counts.
    assert [d.details["count"] for d in of(out, "R7")] == [1, 1]
    # One second less than twelve months apart: it still does.
    sooner = contact("B1", "2026-03-02 08:59:59", in_remit=False, topic="new")
    out2 = evaluate([old, sooner], until=UNTIL, policy=POLICY, handover_basis="wall")
    assert [d.details["count"] for d in of(out2, "R7")] == [1, 2]
    assert [v["rule"] for v in of(out2, "R7")[1].details["violations"]] == ["R3", "R3"]
