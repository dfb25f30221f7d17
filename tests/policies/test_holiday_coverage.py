"""holiday-coverage (節假日服務保障制度, 篇二 §八): while customer service has staff, every
statutory holiday day of the calendar is watched — a website monitoring check at least every
4 hours between 08:00 and 22:00 (R1) — including the weekend days inside a break and the
whole Spring Festival and National Day weeks, never a make-up working day; a problem found
is passed on within 30 minutes (R2)."""

from __future__ import annotations

from datetime import date
from typing import Any

from helpers import Evaluate, ev, profile, t

from policykit import Decision
from policykit.calendar import DEFAULT_CALENDAR as CAL

POLICY = "holiday-coverage"
STAFF = profile("CS1", at="2025-12-20 09:00")
MAKEUP_2026 = [date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10)]


def check(at: str, **kw: Any) -> dict[str, Any]:
    return ev("duty.check", at, employee_id="CS1", target="www.example.cn", **kw)


def r1_days(out: list[Decision]) -> list[date]:
    return sorted({CAL.local_date(d.at) for d in out if d.rule == "R1"})


def test_every_holiday_day_of_2026_is_checked_and_no_makeup_day(evaluate: Evaluate) -> None:
    out = evaluate([STAFF], until=t("2026-12-31 23:59"), policy=POLICY)
    days = r1_days(out)
    assert days == CAL.holidays_in(2026)
    assert len(days) == 33
    spring = [date(2026, 2, d) for d in range(15, 24)]          # Feb 15-23, the whole week
    national = [date(2026, 10, d) for d in range(1, 8)]          # Oct 1-7
    assert set(spring) <= set(days) and set(national) <= set(days)
    assert date(2026, 10, 4) in days                             # a Sunday inside the break
    assert not set(MAKEUP_2026) & set(days)
    # one violation per unwatched day, at noon: 08:00 + 4 h
    assert all(CAL.local(d.at).hour == 12 for d in out)
    d = out[0]
    assert d.kind == "violation" and d.subject.kind == "department"
    assert d.subject.id == "customer_service" and d.evidence == ("p-CS1",)


def test_a_day_checked_every_four_hours_is_fine(evaluate: Evaluate) -> None:
    checks = [check(f"2026-10-04 {h}") for h in ("08:00", "12:00", "16:00", "19:30")]
    out = evaluate([STAFF, *checks], until=t("2026-10-04 23:59"), policy=POLICY)
    assert date(2026, 10, 4) not in r1_days(out)


def test_four_hours_and_a_second_without_a_check(evaluate: Evaluate) -> None:
    checks = [check("2026-10-04 08:00"), check("2026-10-04 12:00:01"),
              check("2026-10-04 16:00"), check("2026-10-04 20:00")]
    out = [d for d in evaluate([STAFF, *checks], until=t("2026-10-04 23:59"), policy=POLICY)
           if CAL.local_date(d.at) == date(2026, 10, 4)]
    assert [d.at for d in out] == [t("2026-10-04 12:00")]
    assert out[0].details["last_at"] == "2026-10-04T08:00:00+08:00"


def test_checks_on_working_days_are_not_required(evaluate: Evaluate) -> None:
    out = evaluate([STAFF], until=t("2026-02-14 23:59"), policy=POLICY)   # a make-up Saturday
    assert all(CAL.local_date(d.at) != date(2026, 2, 14) for d in out)
    weekday = evaluate([profile("CS1", at="2026-03-01 09:00")], until=t("2026-03-31 23:59"),
                       policy=POLICY)
    assert weekday == []


def test_no_customer_service_staff_no_duty(evaluate: Evaluate) -> None:
    tech = profile("T1", role="tech_service", at="2025-12-20 09:00")
    assert evaluate([tech], until=t("2026-12-31 23:59"), policy=POLICY) == []


def test_hours_and_interval_are_parameters(evaluate: Evaluate) -> None:
    staff = profile("CS1", at="2026-10-04 00:00")
    out = evaluate([staff], until=t("2026-10-04 23:59"), policy=POLICY,
                   hours=["00:00", "24:00"], check_every="PT6H")
    assert [d.at for d in out] == [t("2026-10-04 06:00")]


def test_r2_problem_escalated_within_30_minutes(evaluate: Evaluate) -> None:
    found = ev("duty.problem_found", "2026-10-04 10:00", problem_id="X1", employee_id="CS1",
               target="www.example.cn")

    def escalated(at: str) -> dict[str, Any]:
        return ev("duty.problem_escalated", at, problem_id="X1", employee_id="CS1",
                  target="www.example.cn")

    assert evaluate([found, escalated("2026-10-04 10:30")], until=t("2026-10-04 12:00"),
                    policy=POLICY) == []
    out = evaluate([found, escalated("2026-10-04 10:30:01")], until=t("2026-10-04 12:00"),
                   policy=POLICY)
    assert [(d.rule, d.kind, d.subject.id, d.at) for d in out] == [
        ("R2", "violation", "CS1", t("2026-10-04 10:30"))]
