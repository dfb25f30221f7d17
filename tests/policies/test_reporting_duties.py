"""reporting-duties (篇二 §一, §四; 篇四 §二.3, §七.2): 每周五下午部門例會，技術服務人員必須提交本周
客戶服務情況; 每天遞交完整、真實、標準的工作報告; 業務部月底編制《服務監督報告》并上報公司總經理.
Edges: a report exactly at its due time and one second after, a weekly report whose Friday is a
holiday, a week without a working day, no daily report on a day off but one on a make-up
working day, the monthly report due on the month's last calendar day whatever weekday."""

from __future__ import annotations

from typing import Any

from helpers import Evaluate, ev, profile, t

from policykit import Decision

POLICY = "reporting-duties"


def report(at: str, kind: str, employee: str = "E1") -> dict[str, Any]:
    return ev("report.submitted", at, employee_id=employee, report=kind)


def of(out: list[Decision], rule: str) -> list[Decision]:
    return [d for d in out if d.rule == rule]


def windows(out: list[Decision], rule: str) -> list[str]:
    return [d.details["window"] for d in of(out, rule)]


# -- R1 weekly report -----------------------------------------------------------------------


def tech(at: str = "2026-03-01 00:00") -> dict[str, Any]:
    return profile("E1", role="tech_service", at=at)


def test_r1_weekly_report_by_friday_1400_exactly_is_in_time(evaluate: Evaluate) -> None:
    out = evaluate([tech(), report("2026-03-06 14:00:00", "weekly"),
                    report("2026-03-13 14:00:01", "weekly")],
                   until=t("2026-03-16 00:00"), policy=POLICY)
    missed = of(out, "R1")
    assert [(d.details["window"], d.at) for d in missed] == [("2026-W11", t("2026-03-13 14:00"))]
    assert missed[0].kind == "violation"
    assert missed[0].evidence == ("p-E1",)


def test_r1_any_day_of_the_week_before_the_meeting_counts(evaluate: Evaluate) -> None:
    out = evaluate([tech(), report("2026-03-02 09:00", "weekly")],
                   until=t("2026-03-09 00:00"), policy=POLICY)
    assert of(out, "R1") == []


def test_r1_friday_holiday_moves_the_due_to_the_last_working_day_before(
        evaluate: Evaluate) -> None:
    # Fri 2026-10-02 is National Day; the last working day before it is Wed 09-30.
    out = evaluate([tech("2026-09-27 00:00")], until=t("2026-10-05 00:00"), policy=POLICY)
    missed = of(out, "R1")
    assert [d.at for d in missed] == [t("2026-09-30 14:00")]
    on_time = evaluate([tech("2026-09-27 00:00"), report("2026-09-30 13:59", "weekly")],
                       until=t("2026-10-05 00:00"), policy=POLICY)
    assert of(on_time, "R1") == []


def test_r1_a_week_without_a_working_day_before_friday_owes_nothing(
        evaluate: Evaluate) -> None:
    # Mon 2026-02-16 .. Sun 02-22: all Spring Festival holidays.
    out = evaluate([tech("2026-02-15 00:00")], until=t("2026-02-23 00:00"), policy=POLICY)
    assert of(out, "R1") == []


def test_r1_only_technical_service_staff_owe_it(evaluate: Evaluate) -> None:
    out = evaluate([profile("E2", role="guard", at="2026-03-01 00:00")],
                   until=t("2026-03-09 00:00"), policy=POLICY)
    assert of(out, "R1") == []


def test_r1_a_role_change_ends_the_duty(evaluate: Evaluate) -> None:
    events = [tech(), ev("employee.profile", "2026-03-07 00:00", employee_id="E1",
                         role="manager", base_salary="9000.00")]
    out = evaluate(events, until=t("2026-03-23 00:00"), policy=POLICY)
    assert windows(out, "R1") == ["2026-W10"]


# -- R2 daily report --------------------------------------------------------------------------


def cs(at: str = "2026-03-01 00:00") -> dict[str, Any]:
    return profile("E1", role="customer_service", at=at)


def test_r2_daily_report_by_end_of_working_hours(evaluate: Evaluate) -> None:
    out = evaluate([cs(), report("2026-03-02 17:30:00", "daily"),
                    report("2026-03-03 17:30:01", "daily")],
                   until=t("2026-03-04 00:00"), policy=POLICY)
    missed = of(out, "R2")
    assert [(d.details["window"], d.at) for d in missed] == [("2026-03-03",
                                                            t("2026-03-03 17:30"))]


def test_r2_end_of_day_reading_is_a_parameter(evaluate: Evaluate) -> None:
    out = evaluate([cs(), report("2026-03-02 23:00", "daily")],
                   until=t("2026-03-03 00:00"), policy=POLICY, daily_due_time="end_of_day")
    assert of(out, "R2") == []


def test_r2_no_daily_report_on_a_holiday_but_on_a_make_up_day(evaluate: Evaluate) -> None:
    # Oct 1-7 2026: National Day break; Sat Oct 10: make-up working day.
    reports = [report(f"2026-10-{d:02d} 17:00", "daily") for d in (8, 9, 12)]
    out = evaluate([cs("2026-09-30 18:00"), *reports], until=t("2026-10-13 00:00"),
                   policy=POLICY)
    assert windows(out, "R2") == ["2026-10-10"]


def test_r2_leave_excuses_the_daily_report(evaluate: Evaluate) -> None:
    leave = ev("attendance.leave", "2026-03-01 10:00", employee_id="E1", start="2026-03-02",
               end="2026-03-02", kind="sick")
    out = evaluate([cs(), leave], until=t("2026-03-04 00:00"), policy=POLICY)
    assert windows(out, "R2") == ["2026-03-03"]


def test_r2_another_kind_of_report_does_not_count(evaluate: Evaluate) -> None:
    out = evaluate([cs(), report("2026-03-02 10:00", "weekly")],
                   until=t("2026-03-03 00:00"), policy=POLICY)
    assert windows(out, "R2") == ["2026-03-02"]


# -- R3 monthly supervision report -------------------------------------------------------------


def business(at: str = "2026-10-01 00:00", employee: str = "B1") -> dict[str, Any]:
    return profile(employee, role="business", at=at)


def test_r3_due_at_2400_of_the_last_calendar_day_even_on_a_saturday(
        evaluate: Evaluate) -> None:
    # 2026-10-31 is a Saturday: the report is still due that day at 24:00.
    in_time = evaluate([business(), report("2026-10-31 23:59:59", "supervision", "B1")],
                       until=t("2026-11-01 00:00"), policy=POLICY)
    assert of(in_time, "R3") == []
    late = evaluate([business(), report("2026-11-01 00:00:00", "supervision", "B1")],
                    until=t("2026-11-01 00:00"), policy=POLICY)
    missed = of(late, "R3")
    assert [(d.subject.kind, d.subject.id, d.at) for d in missed] == [
        ("department", "business", t("2026-10-31 23:59:59.999999"))]


def test_r3_previous_working_day_reading_is_a_parameter(evaluate: Evaluate) -> None:
    out = evaluate([business()], until=t("2026-11-01 00:00"), policy=POLICY,
                   monthly_non_working="previous")
    assert [d.at for d in of(out, "R3")] == [t("2026-10-30 23:59:59.999999")]


def test_r3_one_report_for_the_department_whoever_submits(evaluate: Evaluate) -> None:
    out = evaluate([business(), business(employee="B2"),
                    report("2026-10-20 10:00", "supervision", "B2")],
                   until=t("2026-12-01 00:00"), policy=POLICY)
    assert windows(out, "R3") == ["2026-11"]


def test_r3_no_business_department_no_report(evaluate: Evaluate) -> None:
    out = evaluate([profile("E1", role="customer_service", at="2026-10-01 00:00")],
                   until=t("2026-11-01 00:00"), policy=POLICY)
    assert of(out, "R3") == []


# -- the period a report covers (report.submitted period) and leave approval ----------------


def covering(at: str, kind: str, period: str, employee: str = "E1") -> dict[str, Any]:
    return ev("report.submitted", at, employee_id=employee, report=kind, period=period)


def test_a_late_weekly_report_for_last_week_does_not_stand_for_this_week(
        evaluate: Evaluate) -> None:
    # W10's report handed in on Monday of W11, naming W10: W10 missed, and W11 too.
    events = [tech(), covering("2026-03-09 09:00", "weekly", "2026-03-02")]
    out = evaluate(events, until=t("2026-03-16 00:00"), policy=POLICY)
    assert windows(out, "R1") == ["2026-W10", "2026-W11"]
    # Without the period the same report counts for the week it arrives in, as before.
    old = evaluate([tech(), report("2026-03-09 09:00", "weekly")],
                   until=t("2026-03-16 00:00"), policy=POLICY)
    assert windows(old, "R1") == ["2026-W10"]


def test_a_report_naming_its_own_period_counts(evaluate: Evaluate) -> None:
    daily = evaluate([cs(), covering("2026-03-02 17:00", "daily", "2026-03-02")],
                     until=t("2026-03-03 00:00"), policy=POLICY)
    weekly = evaluate([tech(), covering("2026-03-04 09:00", "weekly", "2026-03-06")],
                      until=t("2026-03-09 00:00"), policy=POLICY)
    assert daily == [] and weekly == []


def test_a_daily_report_for_yesterday_does_not_count_today(evaluate: Evaluate) -> None:
    out = evaluate([cs(), covering("2026-03-03 09:00", "daily", "2026-03-02")],
                   until=t("2026-03-04 00:00"), policy=POLICY)
    assert windows(out, "R2") == ["2026-03-02", "2026-03-03"]


def test_a_supervision_report_for_last_month_does_not_count_for_this_one(
        evaluate: Evaluate) -> None:
    out = evaluate([business(), covering("2026-11-02 10:00", "supervision", "2026-10-31")],
                   until=t("2026-12-01 00:00"), policy=POLICY)
    assert windows(out, "R3") == ["2026-10", "2026-11"]


def test_leave_not_approved_excuses_no_report(evaluate: Evaluate) -> None:
    def leave(**flag: Any) -> dict[str, Any]:
        return ev("attendance.leave", "2026-03-01 10:00", employee_id="E1",
                  start="2026-03-02", end="2026-03-02", **flag)

    until = t("2026-03-03 00:00")
    assert windows(evaluate([cs(), leave(approved=False)], until=until, policy=POLICY),
                   "R2") == ["2026-03-02"]
    assert windows(evaluate([cs(), leave(approved=True)], until=until, policy=POLICY),
                   "R2") == []
    assert windows(evaluate([cs(), leave()], until=until, policy=POLICY), "R2") == []
