"""lateness-deduction (篇四 §七): 上班時間:早8:30——17:30; 遲到人次/日扣除標準為基本工資總額的
1%，最多每月不得超過三次，超過三次(含)以上者，扣除人次/日標準為基本工資總額的5%; 按時出勤上下班，
做好簽到. Edges: 08:30:00 on time and 08:30:01 late, exactly 3 and 4 late days under every
reading of the tier, make-up working days and holidays, unknown salary, half-up rounding,
streaming provisional figures and the final one at month end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import Evaluate, ev, profile, t

from policykit import Decision, Engine, standard_pack

POLICY = "lateness-deduction"
MARCH_END = t("2026-04-01 00:00")
# Working days of early March 2026 (Mon 2 .. Fri 6, Mon 9 ..).
MARCH_DAYS = ["2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", "2026-03-06",
              "2026-03-09"]


def clock_in(at: str, employee: str = "E1", id: str | None = None) -> dict[str, Any]:
    return ev("attendance.clock_in", at, id=id, employee_id=employee)


def clock_out(at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("attendance.clock_out", at, employee_id=employee)


def staff(employee: str = "E1", salary: str = "6000.00") -> dict[str, Any]:
    # Profile on Sunday March 1st: no working day before it to owe a sign-in for.
    return profile(employee, salary=salary, at="2026-03-01 00:00")


def late_days(n: int, employee: str = "E1", time: str = "08:45") -> list[dict[str, Any]]:
    return [clock_in(f"{d} {time}", employee) for d in MARCH_DAYS[:n]]


def of(out: list[Decision], rule: str, outcome: str | None = None,
       status: str | None = None) -> list[Decision]:
    return [d for d in out if d.rule == rule
            and (outcome is None or d.details["outcome"] == outcome)
            and (status is None or d.status == status)]


def final_deduction(out: list[Decision], employee: str = "E1") -> Decision:
    found = [d for d in of(out, "R2", status="final") if d.subject.id == employee]
    assert len(found) == 1, found
    return found[0]


# -- R1 late day -----------------------------------------------------------------------------


def test_r1_clock_in_at_0830_00_is_on_time_and_0830_01_is_late(evaluate: Evaluate) -> None:
    out = evaluate([staff(), clock_in("2026-03-02 08:30:00"),
                    clock_in("2026-03-03 08:30:01", id="in-late")], policy=POLICY)
    late = of(out, "R1", "late")
    assert [d.at for d in late] == [t("2026-03-03 08:30:01")]
    assert late[0].kind == "violation"
    assert late[0].details["late_seconds"] == 1
    assert late[0].details["late_minutes"] == 1
    assert late[0].subject.id == "E1"
    assert late[0].evidence == ("in-late",)


def test_r1_only_the_first_clock_in_of_the_day_counts(evaluate: Evaluate) -> None:
    out = evaluate([staff(),
                    clock_in("2026-03-02 08:20"), clock_in("2026-03-02 13:05"),  # on time
                    clock_in("2026-03-03 08:40"), clock_in("2026-03-03 08:50")],  # one late
                   policy=POLICY)
    late = of(out, "R1", "late")
    assert [d.at for d in late] == [t("2026-03-03 08:40")]
    assert late[0].details["late_minutes"] == 10


def test_r1_grace_parameter_moves_the_boundary(evaluate: Evaluate) -> None:
    events = [staff(), clock_in("2026-03-02 08:35:00"), clock_in("2026-03-03 08:35:01")]
    out = evaluate(events, policy=POLICY, grace="PT5M")
    assert [d.at for d in of(out, "R1", "late")] == [t("2026-03-03 08:35:01")]
    # without grace both are late
    assert len(of(evaluate(events, policy=POLICY), "R1", "late")) == 2


@pytest.mark.parametrize("day", ["2026-02-14", "2026-02-28"])
def test_r1_late_on_a_make_up_working_day_counts(evaluate: Evaluate, day: str) -> None:
    # Saturdays that are working days (調休) for the Spring Festival 2026.
    out = evaluate([profile("E1"), clock_in(f"{day} 08:45")], policy=POLICY,
                   until=t("2026-03-01 00:00"))
    assert [d.at for d in of(out, "R1", "late")] == [t(f"{day} 08:45")]
    assert final_deduction(out).amount == Decimal("60.00")


@pytest.mark.parametrize("day", ["2026-10-05", "2026-03-07"])
def test_r1_clock_in_on_a_holiday_or_weekend_is_not_late(evaluate: Evaluate, day: str) -> None:
    # 2026-10-05 is in the National Day break; 2026-03-07 an ordinary Saturday.
    out = evaluate([profile("E1"), clock_in(f"{day} 10:00")], policy=POLICY)
    assert of(out, "R1") == []
    assert of(out, "R2") == []


# -- R2 deduction ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "threshold", "days", "expected"),
    [
        # salary 6000: 1% = 60.00, 5% = 300.00 per late day
        ("all", 3, 3, "900.00"),        # 3 x 5%
        ("all", 3, 4, "1200.00"),       # 4 x 5%
        ("marginal", 3, 3, "420.00"),   # 1% + 1% + 5%
        ("marginal", 3, 4, "720.00"),   # 1% + 1% + 5% + 5%
        ("all", 4, 3, "180.00"),        # 3 x 1%
        ("all", 4, 4, "1200.00"),       # 4 x 5%
        ("marginal", 4, 3, "180.00"),   # 3 x 1%
        ("marginal", 4, 4, "480.00"),   # 3 x 1% + 5%
        ("all", 3, 2, "120.00"),
    ],
)
def test_r2_month_total_under_every_reading(evaluate: Evaluate, mode: str, threshold: int,
                                            days: int, expected: str) -> None:
    out = evaluate([staff(), *late_days(days)], until=MARCH_END, policy=POLICY,
                   tier_mode=mode, tier_threshold=threshold)
    final = final_deduction(out)
    assert final.kind == "deduction"
    assert final.amount == Decimal(expected)
    assert final.currency == "CNY"
    assert final.details["count"] == days


def test_r2_defaults_are_threshold_3_and_tier_mode_all(evaluate: Evaluate) -> None:
    out = evaluate([staff(), *late_days(3)], until=MARCH_END, policy=POLICY)
    assert final_deduction(out).amount == Decimal("900.00")
    pack = standard_pack().get(POLICY)
    assert pack.parameters["tier_threshold"] == 3
    assert pack.parameters["tier_mode"] == "all"


def test_r2_provisional_running_figures_then_final_superseding_them(
        evaluate: Evaluate) -> None:
    out = evaluate([staff(), *late_days(4)], until=MARCH_END, policy=POLICY)
    running = of(out, "R2", status="provisional")
    assert [d.amount for d in running] == [Decimal("60.00"), Decimal("120.00"),
                                           Decimal("900.00"), Decimal("1200.00")]
    assert [d.at for d in running] == [t(f"{d} 08:45") for d in MARCH_DAYS[:4]]
    final = final_deduction(out)
    assert final.status == "final"
    assert final.at == t("2026-03-31 23:59:59.999999")
    assert set(final.supersedes) == {d.id for d in running}
    # evidence: the four clock-ins and the profile the salary comes from
    assert "p-E1" in final.evidence
    assert len(final.evidence) == 5


def test_r2_no_final_figure_before_the_month_closes(evaluate: Evaluate) -> None:
    out = evaluate([staff(), *late_days(2)], until=t("2026-03-31 23:59:59"), policy=POLICY)
    assert of(out, "R2", status="final") == []
    assert len(of(out, "R2", status="provisional")) == 2


def test_r2_streaming_gives_the_running_figure_after_each_late_day(backend: str) -> None:
    engine = Engine(standard_pack().get(POLICY), backend=backend)
    with engine.session() as session:
        session.feed(staff())
        first = session.feed(clock_in("2026-03-02 08:31"))
        assert [(d.rule, d.status, d.amount) for d in first if d.rule == "R2"] == [
            ("R2", "provisional", Decimal("60.00"))]
        second = session.feed(clock_in("2026-03-03 08:31"))
        assert [d.amount for d in second if d.rule == "R2"] == [Decimal("120.00")]
        closing = session.advance_to(MARCH_END)
        finals = [d for d in closing if d.rule == "R2"]
        assert [(d.status, d.amount) for d in finals] == [("final", Decimal("120.00"))]


def test_r2_months_are_separate(evaluate: Evaluate) -> None:
    events = [staff(), *late_days(2), clock_in("2026-04-01 08:45"),
              clock_in("2026-04-02 08:45")]
    out = evaluate(events, until=t("2026-05-01 00:00"), policy=POLICY)
    finals = of(out, "R2", status="final")
    assert [(d.details["period"], d.amount) for d in finals] == [
        ("2026-03", Decimal("120.00")), ("2026-04", Decimal("120.00"))]


def test_r2_rounding_is_half_up_to_the_cent_per_late_day(evaluate: Evaluate) -> None:
    # 3333.33 x 1% = 33.3333 -> 33.33; x 5% = 166.6665 -> 166.67
    one = evaluate([staff(salary="3333.33"), *late_days(1)], until=MARCH_END, policy=POLICY)
    assert final_deduction(one).amount == Decimal("33.33")
    three = evaluate([staff(salary="3333.33"), *late_days(3)], until=MARCH_END, policy=POLICY)
    final = final_deduction(three)
    assert [row["amount"] for row in final.details["items"]] == ["166.67"] * 3
    assert final.amount == Decimal("500.01")


def test_r2_salary_unknown_is_said_not_guessed(evaluate: Evaluate) -> None:
    out = evaluate(late_days(3, employee="E404"), until=MARCH_END, policy=POLICY)
    assert len(of(out, "R1", "late")) == 3
    final = final_deduction(out, "E404")
    assert final.details["outcome"] == "salary_unknown"
    assert final.amount is None and final.currency is None
    assert final.details["share_percent"] == "15"  # 3 x 5% of an unknown base salary
    assert "unknown" in final.message
    for d in of(out, "R2"):
        assert d.amount is None


def test_r2_salary_comes_from_the_employee_s_profile(evaluate: Evaluate) -> None:
    out = evaluate([staff("E1", "5000.00"), staff("E2", "8000.00"),
                    *late_days(1, "E1"), *late_days(1, "E2")], until=MARCH_END, policy=POLICY)
    assert final_deduction(out, "E1").amount == Decimal("50.00")
    assert final_deduction(out, "E2").amount == Decimal("80.00")


# -- R3 monthly limit ------------------------------------------------------------------------


def test_r3_three_late_days_are_within_the_limit(evaluate: Evaluate) -> None:
    out = evaluate([staff(), *late_days(3)], until=MARCH_END, policy=POLICY)
    assert of(out, "R3") == []


def test_r3_the_fourth_late_day_is_a_limit_violation_once(evaluate: Evaluate) -> None:
    events = [staff(), *late_days(5)]
    out = evaluate(events, until=MARCH_END, policy=POLICY)
    limit = of(out, "R3")
    assert len(limit) == 1
    v = limit[0]
    assert (v.kind, v.details["outcome"]) == ("violation", "over_limit")
    assert v.at == t("2026-03-05 08:45")
    assert v.amount is None
    assert v.details["count"] == 4 and v.details["limit"] == 3
    assert set(v.evidence) == {e["id"] for e in events[1:5]}


def test_r3_limit_fine_and_limit_are_parameters(evaluate: Evaluate) -> None:
    out = evaluate([staff(), *late_days(3)], until=MARCH_END, policy=POLICY,
                   monthly_limit=2, limit_fine="50")
    assert [d.details["outcome"] for d in of(out, "R3")] == ["over_limit", "limit_fine"]
    fine = [d for d in of(out, "R3") if d.kind == "fine"]
    assert fine[0].amount == Decimal("50.00")


# -- R4 sign-in ------------------------------------------------------------------------------


def test_r4_a_working_day_without_clock_in_is_no_sign_in(evaluate: Evaluate) -> None:
    out = evaluate([staff(), clock_in("2026-03-02 08:00")], until=t("2026-03-04 00:00"),
                   policy=POLICY)
    missing = of(out, "R4")
    assert [(d.details["outcome"], d.details["window"]) for d in missing] == [
        ("no_sign_in", "2026-03-03")]
    assert missing[0].at == t("2026-03-03 23:59:59.999999")
    assert missing[0].evidence == ("p-E1",)


def test_r4_a_late_clock_in_is_a_sign_in(evaluate: Evaluate) -> None:
    out = evaluate([staff(), clock_in("2026-03-02 11:00")], until=t("2026-03-03 00:00"),
                   policy=POLICY)
    assert of(out, "R4") == []
    assert len(of(out, "R1")) == 1


def test_r4_approved_leave_excuses_the_day(evaluate: Evaluate) -> None:
    leave = ev("attendance.leave", "2026-03-01 12:00", employee_id="E1",
               start="2026-03-02", end="2026-03-03", kind="annual")
    out = evaluate([staff(), leave, clock_in("2026-03-04 08:00")],
                   until=t("2026-03-05 00:00"), policy=POLICY)
    assert of(out, "R4") == []


def test_r4_days_off_owe_nothing_but_make_up_days_do(evaluate: Evaluate) -> None:
    # Feb 15-23 2026 is the Spring Festival break; Sat Feb 28 is a make-up working day.
    out = evaluate([profile("E1", at="2026-02-15 09:00")], until=t("2026-03-01 00:00"),
                   policy=POLICY)
    assert [d.details["window"] for d in of(out, "R4")] == [
        "2026-02-24", "2026-02-25", "2026-02-26", "2026-02-27", "2026-02-28"]


def test_r4_only_employees_with_a_profile_owe_a_sign_in(evaluate: Evaluate) -> None:
    out = evaluate([clock_in("2026-03-02 08:00", "E9")], until=t("2026-03-04 00:00"),
                   policy=POLICY)
    assert of(out, "R4") == []


# -- R5 early departure ----------------------------------------------------------------------


def test_r5_last_clock_out_before_1730_is_early(evaluate: Evaluate) -> None:
    out = evaluate([staff(), clock_in("2026-03-02 08:00"), clock_out("2026-03-02 17:29:59"),
                    clock_in("2026-03-03 08:00"), clock_out("2026-03-03 17:30:00")],
                   until=t("2026-03-04 00:00"), policy=POLICY)
    early = of(out, "R5")
    assert [(d.details["outcome"], d.details["window"]) for d in early] == [
        ("early", "2026-03-02")]
    assert early[0].details["early_seconds"] == 1
    assert early[0].at == t("2026-03-02 23:59:59.999999")
    assert early[0].amount is None


def test_r5_a_later_clock_out_the_same_day_clears_it(evaluate: Evaluate) -> None:
    out = evaluate([staff(), clock_out("2026-03-02 12:00"), clock_out("2026-03-02 18:00")],
                   until=t("2026-03-03 00:00"), policy=POLICY)
    assert of(out, "R5") == []


def test_r5_clock_out_on_a_holiday_is_not_early(evaluate: Evaluate) -> None:
    out = evaluate([profile("E1"), clock_out("2026-10-05 12:00")],
                   until=t("2026-10-06 00:00"), policy=POLICY)
    assert of(out, "R5") == []


# -- R6 cap and floor (off by default) -------------------------------------------------------
# Issue 16: the cap is on all of a month's deductions and fines together (the PRC limit is on
# everything taken from one month's wage), not on the lateness deduction alone: R6 reads the
# money of every policy and books the excess as one negative deduction.


def _standing(out: list[Decision], employee: str = "E1") -> Decimal:
    """What the month takes from the wage: the final money not superseded."""
    gone = {i for d in out for i in d.supersedes}
    return sum((d.amount for d in out if d.amount is not None and d.status == "final"
                and d.id not in gone and d.subject.id == employee), Decimal(0))


def test_r6_is_off_by_default_and_cap_limits_the_month(evaluate: Evaluate) -> None:
    events = [staff(), *late_days(5)]  # 5 x 300 = 1500 under the defaults
    out = evaluate(events, until=MARCH_END, policy=POLICY)
    assert of(out, "R6") == [] and _standing(out) == Decimal("1500.00")
    capped = evaluate(events, until=MARCH_END, policy=POLICY, monthly_cap_rate="0.2")
    assert final_deduction(capped).amount == Decimal("1500.00")  # R2 states what was owed
    (cap,) = of(capped, "R6")
    assert (cap.kind, cap.amount, cap.currency, cap.status) == \
        ("deduction", Decimal("-300.00"), "CNY", "final")
    assert cap.at == t("2026-03-31 23:59:59.999999")
    assert cap.details["cap"] == cap.details["limit"] == cap.details["total"] == "1200.00"
    assert (cap.details["total_before"], cap.details["reduction"]) == ("1500.00", "300.00")
    assert _standing(capped) == Decimal("1200.00")


def test_r6_wage_floor_keeps_pay_above_it(evaluate: Evaluate) -> None:
    events = [staff(salary="2000.00"), *late_days(6)]  # 6 x 100 = 600
    out = evaluate(events, until=MARCH_END, policy=POLICY, wage_floor="1800.00")
    assert [d.amount for d in of(out, "R6")] == [Decimal("-400.00")]
    assert _standing(out) == Decimal("200.00")
    # Both set: the lower limit holds (cap 20% = 400, room above the floor 200).
    both = evaluate(events, until=MARCH_END, policy=POLICY, wage_floor="1800.00",
                    monthly_cap_rate="0.2")
    assert _standing(both) == Decimal("200.00") and of(both, "R6")[0].details["cap"] == "400.00"


def _month_with_fines() -> list[dict[str, Any]]:
    # 4 late days at 5% of 6000 = 1200.00, a serious complaint 200.00 and a moderate one
    # 50.00: 1450.00 in March against a cap of 20% = 1200.00.
    return [staff(), *late_days(4),
            ev("staff.complaint", "2026-03-10 10:00", id="k-serious", employee_id="E1",
               source="customer", severity="serious"),
            ev("staff.complaint", "2026-03-20 10:00", id="k-moderate", employee_id="E1",
               source="customer", severity="moderate")]


def _money_pack(**parameters: Any) -> Any:
    return standard_pack().with_parameters(POLICY, **parameters).select(
        POLICY, "staff-penalties")


def test_r6_caps_deductions_and_fines_together_across_policies(evaluate: Evaluate) -> None:
    out = evaluate(_month_with_fines(), until=MARCH_END,
                   policy=_money_pack(monthly_cap_rate="0.2"))
    fines = [d for d in out if d.policy == "staff-penalties" and d.kind == "fine"]
    amounts = sorted(d.amount for d in fines if d.amount is not None)
    assert len(amounts) == len(fines) and amounts == [Decimal("50.00"), Decimal("200.00")]
    assert final_deduction(out).amount == Decimal("1200.00")  # under the cap on its own
    (cap,) = [d for d in out if d.policy == POLICY and d.rule == "R6"]
    assert cap.amount == Decimal("-250.00") and _standing(out) == Decimal("1200.00")
    assert (cap.details["total_before"], cap.details["count"]) == ("1450.00", 3)
    # Latest first: the month's lateness total, decided at the month's close, is cut.
    r2 = final_deduction(out)
    assert cap.details["reduced"] == [
        {"decision": r2.id, "policy": POLICY, "rule": "R2", "amount": "1200.00",
         "reduced_by": "250.00", "charged": "950.00"}]
    assert {"k-serious", "k-moderate", "p-E1"} <= set(cap.evidence)
    assert "reduced by 250.00 CNY to the limit of 1200.00" in cap.message
    # The earlier reading: the cap on lateness deductions alone leaves the fines whole.
    old = evaluate(_month_with_fines(), until=MARCH_END,
                   policy=_money_pack(monthly_cap_rate="0.2", cap_scope="lateness"))
    assert [d for d in old if d.rule == "R6" and d.policy == POLICY] == []
    assert _standing(old) == Decimal("1450.00")


def test_r6_takes_the_excess_from_the_latest_money_first(evaluate: Evaluate) -> None:
    # 1 late day (60.00) and three serious complaints (3 x 200) against a cap of 10% = 600:
    # 660 in all; the excess 60 comes off the month-end lateness total, then nothing else.
    log = [staff(), *late_days(1)] + [
        ev("staff.complaint", f"2026-03-{d} 10:00", id=f"k{d}", employee_id="E1",
           source="customer", severity="serious") for d in (10, 11, 12)]
    out = evaluate(log, until=MARCH_END, policy=_money_pack(monthly_cap_rate="0.1"))
    (cap,) = [d for d in out if d.rule == "R6" and d.policy == POLICY]
    assert [(r["rule"], r["reduced_by"], r["charged"]) for r in cap.details["reduced"]] == \
        [("R2", "60.00", "0.00")]
    # A cap of 5% = 300: 360 over; R2's 60 goes, then 300 of the latest fine (k12) entirely.
    out = evaluate(log, until=MARCH_END, policy=_money_pack(monthly_cap_rate="0.05"))
    (cap,) = [d for d in out if d.rule == "R6" and d.policy == POLICY]
    assert [(r["policy"], r["reduced_by"], r["charged"]) for r in cap.details["reduced"]] == \
        [(POLICY, "60.00", "0.00"), ("staff-penalties", "200.00", "0.00"),
         ("staff-penalties", "100.00", "100.00")]
    assert _standing(out) == Decimal("300.00")


def test_r6_under_the_cap_and_without_a_profile_decides_nothing(evaluate: Evaluate) -> None:
    log = _month_with_fines()
    assert [d for d in evaluate(log, until=MARCH_END, policy=_money_pack(
        monthly_cap_rate="0.25")) if d.rule == "R6" and d.policy == POLICY] == []
    nobody = [e for e in log if e["type"] != "employee.profile"]
    out = evaluate(nobody, until=MARCH_END, policy=_money_pack(monthly_cap_rate="0.01"))
    assert [d for d in out if d.rule == "R6" and d.policy == POLICY] == []


def test_r6_every_door_and_export_agrees_on_the_capped_month(tmp_path: Any) -> None:
    import json

    from policykit import audit
    from policykit.cli import main

    pack = _money_pack(monthly_cap_rate="0.2")
    log = _month_with_fines()
    report = audit(log, pack, until="2026-04-01T00:00:00+08:00")
    payroll = report.payroll("2026-03")
    row = payroll[payroll["employee_id"] == "E1"].iloc[0] if hasattr(payroll, "iloc") \
        else next(r for r in payroll if r["employee_id"] == "E1")
    assert Decimal(str(row["total"])) == Decimal("1200.00")
    assert Decimal(str(row[f"{POLICY} R6"])) == Decimal("-250.00")
    assert Decimal(str(row["net"])) == Decimal("4800.00")
    frame = report.to_pandas()
    assert sum((Decimal(str(a)) for a in frame["amount"] if a == a and a is not None),
               Decimal(0)) == Decimal("1200.00")
    ids = {d.id for d in report.decisions}
    for backend in ("native", "durable"):
        streamed = Engine(pack, backend=backend).evaluate(
            log, until=t("2026-04-01 00:00"))
        assert {d.id for d in streamed if d.status == "final"} >= ids
        assert _standing(streamed) == Decimal("1200.00")
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(json.dumps(e, default=str) for e in log), encoding="utf-8")
    files = []
    for p in pack:
        files += ["--policy", str(tmp_path / f"{p.id}.json")]
        (tmp_path / f"{p.id}.json").write_text(p.model_dump_json(), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["audit", str(path), "--until", "2026-04-01T00:00:00+08:00", *files,
                 "--format", "jsonl", "-o", str(out), "--quiet"]) == 1  # decisions found
    cli = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert {x["id"] for x in cli} == ids


def test_r6_an_active_cap_is_refused_by_the_distributed_audit() -> None:
    from policykit import ParameterError
    from policykit.distributed import plan

    with pytest.raises(ParameterError, match="lateness-deduction R6"):
        plan(_money_pack(monthly_cap_rate="0.2"))
    assert plan(_money_pack())  # off: nothing to refuse


def test_year_end_at_the_edge_of_the_holiday_data_closes_cleanly(evaluate: Evaluate) -> None:
    """The installed PRC holiday data ends with 2026: December still closes (sign-ins and
    the month's final deduction) though the next year cannot be laid out yet."""
    out = evaluate([profile("E1", at="2026-12-30 00:00"), clock_in("2026-12-30 08:45")],
                   until=t("2026-12-31 23:59:59.999999"), policy=POLICY)
    assert [d.details["window"] for d in of(out, "R4")] == ["2026-12-31"]
    assert final_deduction(out).amount == Decimal("60.00")


def test_guards_on_shifts_are_exempt_by_default(evaluate: Evaluate) -> None:
    events = [profile("G1", role="guard", at="2026-03-01 00:00"),
              clock_in("2026-03-02 09:00", "G1"), clock_out("2026-03-02 12:00", "G1")]
    out = evaluate(events, until=t("2026-03-04 00:00"), policy=POLICY)
    assert out == []
    everyone = evaluate(events, until=t("2026-03-04 00:00"), policy=POLICY, exempt_roles=[])
    assert sorted({d.rule for d in everyone}) == ["R1", "R2", "R4", "R5"]
