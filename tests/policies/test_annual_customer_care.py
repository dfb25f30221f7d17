"""annual-customer-care (篇二 §三, §十): 客服部每年12月負責向新老客戶寄送新年禮物，并了解客戶次年的
需求計劃; 項目經理定期開展質量巡檢…及時遞交給客服部; 客戶滿意度調查; 高層領導帶隊定期到現場進行服務
調研…制定解決方案并及時實施. Edges: December gifts (both parts, one missing, a customer
registered in December, one deactivated before it), quarter ends, a plan exactly at its
deadline."""

from __future__ import annotations

from typing import Any

from helpers import Evaluate, ev, t

from policykit import Decision, Policy, standard_pack

POLICY = "annual-customer-care"
# The installed PRC holiday data ends with 2026, so sessions stop at its last instant.
NEW_YEAR = t("2026-12-31 23:59:59.999999")


def customer(cid: str = "K1", at: str = "2026-01-05 09:00") -> dict[str, Any]:
    return ev("customer.registered", at, id=f"reg-{cid}", customer_id=cid)


def done(type_: str, at: str, cid: str = "K1", employee: str = "E1") -> dict[str, Any]:
    return ev(type_, at, customer_id=cid, employee_id=employee)


def of(out: list[Decision], rule: str) -> list[Decision]:
    return [d for d in out if d.spec_rule == rule]


# -- R1 December gift and demand survey -----------------------------------------------------


def test_r1_gift_and_survey_in_december_are_enough(evaluate: Evaluate) -> None:
    out = evaluate([customer(), done("gift.sent", "2026-12-01 00:00"),
                    done("demand_survey.done", "2026-12-31 23:59:59")],
                   until=NEW_YEAR, policy=POLICY)
    assert of(out, "R1") == []


def test_r1_a_missing_survey_is_named(evaluate: Evaluate) -> None:
    out = evaluate([customer(), done("gift.sent", "2026-12-10 10:00")], until=NEW_YEAR,
                   policy=POLICY)
    missed = of(out, "R1")
    assert len(missed) == 1
    d = missed[0]
    assert d.details["missing"] == ["demand_survey.done"]
    assert d.at == t("2026-12-31 23:59:59.999999")
    assert d.subject.id == "K1" and d.subject.kind == "customer"
    assert "reg-K1" in d.evidence


def test_r1_a_gift_sent_in_november_does_not_count(evaluate: Evaluate) -> None:
    out = evaluate([customer(), done("gift.sent", "2026-11-30 23:59:59"),
                    done("demand_survey.done", "2026-12-02 10:00")],
                   until=NEW_YEAR, policy=POLICY)
    assert [d.details["missing"] for d in of(out, "R1")] == [["gift.sent"]]


def test_r1_only_december_is_judged(evaluate: Evaluate) -> None:
    out = evaluate([customer()], until=t("2026-12-31 23:59"), policy=POLICY)
    assert of(out, "R1") == []
    out = evaluate([customer()], until=NEW_YEAR, policy=POLICY)
    assert [d.details["window"] for d in of(out, "R1")] == ["2026-12"]


def test_r1_new_customer_in_december_owes_it_deactivated_does_not(evaluate: Evaluate) -> None:
    events = [customer("NEW", "2026-12-20 10:00"), customer("OLD"),
              ev("customer.deactivated", "2026-12-15 10:00", customer_id="OLD")]
    out = evaluate(events, until=NEW_YEAR, policy=POLICY)
    assert [d.subject.id for d in of(out, "R1")] == ["NEW"]


def test_r1_every_december(evaluate: Evaluate) -> None:
    # Beyond the published holiday data, with a calendar that treats later years as plain.
    data = standard_pack().get(POLICY).model_dump()
    data["calendar"] = {"missing_holiday_data": "ignore"}
    out = evaluate([customer()], until=t("2028-01-01 00:00"), policy=Policy.model_validate(data))
    assert [d.details["window"] for d in of(out, "R1")] == ["2026-12", "2027-12"]


# -- R2 quality inspection and findings ------------------------------------------------------


def delivered(pid: str = "P1", at: str = "2026-02-10 10:00") -> dict[str, Any]:
    return ev("project.delivered", at, id=f"del-{pid}", project_id=pid, customer_id="K1")


def inspection(at: str, findings: int = 0, pid: str = "P1") -> dict[str, Any]:
    return ev("inspection.done", at, project_id=pid, employee_id="PM1", findings=findings)


def test_r2_one_inspection_per_quarter(evaluate: Evaluate) -> None:
    out = evaluate([delivered(), inspection("2026-03-31 23:59:59"),
                    inspection("2026-07-01 00:00:00")],
                   until=t("2026-10-01 00:00"), policy=POLICY)
    missed = of(out, "R2")
    assert [(d.details["window"], d.at) for d in missed] == [
        ("2026-Q2", t("2026-06-30 23:59:59.999999"))]
    assert missed[0].evidence == ("del-P1",)
    assert missed[0].subject.kind == "project"


def test_r2_inspection_period_is_a_parameter(evaluate: Evaluate) -> None:
    out = evaluate([delivered(), inspection("2026-02-20 10:00")],
                   until=t("2026-04-01 00:00"), policy=POLICY, inspection_every="month")
    assert [d.details["window"] for d in of(out, "R2")] == ["2026-03"]


def test_r2b_findings_go_to_customer_service_within_a_day(evaluate: Evaluate) -> None:
    forwarded = ev("inspection.findings_forwarded", "2026-03-03 10:00", project_id="P1",
                   employee_id="PM1")
    on_time = evaluate([delivered(), inspection("2026-03-02 10:00", findings=2), forwarded],
                       until=t("2026-03-10 00:00"), policy=POLICY)
    assert of(on_time, "R2b") == []
    late = evaluate([delivered(), inspection("2026-03-02 10:00", findings=2),
                     {**forwarded, "at": t("2026-03-03 10:00:01").isoformat()}],
                    until=t("2026-03-10 00:00"), policy=POLICY)
    missed = of(late, "R2b")
    assert [(d.subject.id, d.at) for d in missed] == [("PM1", t("2026-03-03 10:00"))]


def test_r2b_an_inspection_without_findings_owes_nothing(evaluate: Evaluate) -> None:
    out = evaluate([delivered(), inspection("2026-03-02 10:00", findings=0)],
                   until=t("2026-03-10 00:00"), policy=POLICY)
    assert of(out, "R2b") == []


# -- R3 satisfaction survey ------------------------------------------------------------------


def test_r3_satisfaction_survey_once_a_year(evaluate: Evaluate) -> None:
    out = evaluate([customer(), customer("K2"),
                    done("satisfaction_survey.done", "2026-06-01 10:00", "K1")],
                   until=NEW_YEAR, policy=POLICY)
    missed = of(out, "R3")
    assert [(d.subject.id, d.details["window"]) for d in missed] == [("K2", "2026")]


# -- R4 service research and plan -----------------------------------------------------------


def test_r4_service_research_once_a_year(evaluate: Evaluate) -> None:
    out = evaluate([customer(), customer("K2"),
                    done("service_research.visited", "2026-05-01 10:00", "K2"),
                    done("service_research.plan_made", "2026-05-20 10:00", "K2")],
                   until=NEW_YEAR, policy=POLICY)
    assert [d.subject.id for d in of(out, "R4")] == ["K1"]
    assert of(out, "R4b") == []


def test_r4b_plan_within_30_days_exactly_is_in_time(evaluate: Evaluate) -> None:
    visit = done("service_research.visited", "2026-05-01 10:00")
    in_time = evaluate([customer(), visit, done("service_research.plan_made",
                                                "2026-05-31 10:00")],
                       until=t("2026-07-01 00:00"), policy=POLICY)
    assert of(in_time, "R4b") == []
    late = evaluate([customer(), visit, done("service_research.plan_made",
                                             "2026-05-31 10:00:01")],
                    until=t("2026-07-01 00:00"), policy=POLICY)
    assert [d.at for d in of(late, "R4b")] == [t("2026-05-31 10:00")]
