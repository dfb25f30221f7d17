"""The *recurrence* shape's boundaries: anniversary windows from Jan 31 (month-end clamped,
each from the anchor), an occurrence at a window's last instant and at the next window's
first, a schedule that changes with age (monthly in year one, quarterly after) in both
alignments, warnings, restricted windows, due days moved off holidays, populations that end,
a fixed subject, late and early occurrences, validation errors, and batch = streaming."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from helpers import Evaluate, ev, profile, t

from policykit import Decision, Engine, Policy
from policykit.errors import PolicyFileError


def policy(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "shape": "recurrence", "id": "R1", "title": "callback",
        "subject": {"kind": "project", "field": "project_id"},
        "population": {"start": {"type": "project.delivered"}},
        "occurrence": {"type": "callback.made"},
        "window": {"months": 1},
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    # Years after the published PRC holiday data (2026) count as having no holidays here.
    return Policy.model_validate({"id": "recurrence-test", "title": "recurrence test",
                                  "clause": "篇二 §五", "rules": [base],
                                  "calendar": {"missing_holiday_data": "ignore"}})


def delivered(at: str, pid: str = "P1") -> dict[str, Any]:
    return ev("project.delivered", at, id=f"del-{pid}", project_id=pid, customer_id="K1")


def callback(at: str | datetime, pid: str = "P1") -> dict[str, Any]:
    return ev("callback.made", at, project_id=pid, employee_id="E1")


def missed(out: list[Decision]) -> list[tuple[str, str]]:
    return [(d.details["window_start"], d.details["window_end"]) for d in out
            if d.details["outcome"] == "missed"]


# -- anchored windows ---------------------------------------------------------------------


def test_windows_from_jan_31_clamp_to_month_ends_each_from_the_anchor(
        evaluate: Evaluate) -> None:
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2026-05-31 10:00"),
                   policy=policy())
    assert missed(out) == [
        ("2026-01-31T10:00:00+08:00", "2026-02-28T09:59:59+08:00"),
        ("2026-02-28T10:00:00+08:00", "2026-03-31T09:59:59+08:00"),  # not Mar 28
        ("2026-03-31T10:00:00+08:00", "2026-04-30T09:59:59+08:00"),
        ("2026-04-30T10:00:00+08:00", "2026-05-31T09:59:59+08:00"),
    ]
    assert all(d.evidence == ("del-P1",) for d in out)


def test_a_callback_at_the_window_s_last_instant_counts_for_it(evaluate: Evaluate) -> None:
    last = callback(t("2026-02-28 09:59:59.999999"))
    out = evaluate([delivered("2026-01-31 10:00"), last], until=t("2026-03-31 10:00"),
                   policy=policy())
    # window 0 is met; window 1 (Feb 28 10:00 .. Mar 31) is not
    assert [s for s, _ in missed(out)] == ["2026-02-28T10:00:00+08:00"]


def test_a_callback_at_the_next_window_s_start_counts_for_the_next(evaluate: Evaluate) -> None:
    out = evaluate([delivered("2026-01-31 10:00"), callback("2026-02-28 10:00")],
                   until=t("2026-03-31 10:00"), policy=policy())
    assert [s for s, _ in missed(out)] == ["2026-01-31T10:00:00+08:00"]


def test_schedule_monthly_in_year_one_then_quarterly(evaluate: Evaluate) -> None:
    rule = policy(window={"schedule": [{"months": 1, "until": 12}, {"months": 3}]})
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2028-01-31 10:00"), policy=rule)
    got = missed(out)
    assert len(got) == 12 + 4
    assert got[11] == ("2026-12-31T10:00:00+08:00", "2027-01-31T09:59:59+08:00")
    assert got[12] == ("2027-01-31T10:00:00+08:00", "2027-04-30T09:59:59+08:00")
    assert got[15] == ("2027-10-31T10:00:00+08:00", "2028-01-31T09:59:59+08:00")


def test_calendar_alignment_with_a_schedule_clips_to_the_phases(evaluate: Evaluate) -> None:
    rule = policy(window={"schedule": [{"months": 1, "until": 12}, {"months": 3}],
                          "alignment": "calendar"})
    out = evaluate([delivered("2026-05-15 10:00")], until=t("2027-07-01 00:00"), policy=rule)
    got = [d.details["window"] for d in out]
    assert got[0] == "2026-05"  # the delivery month, from the delivery on
    assert got[:13] == ["2026-05", "2026-06", "2026-07", "2026-08", "2026-09", "2026-10",
                        "2026-11", "2026-12", "2027-01", "2027-02", "2027-03", "2027-04",
                        "2027-05"]
    assert got[13:] == ["2027-Q2"]
    first, may, q2 = out[0], out[12], out[13]
    assert first.details["window_start"] == "2026-05-15T10:00:00+08:00"
    assert may.details["window_end"] == "2027-05-15T09:59:59+08:00"
    assert q2.details["window_start"] == "2027-05-15T10:00:00+08:00"
    assert q2.details["window_end"] == "2027-06-30T23:59:59+08:00"


def test_warning_before_the_window_closes_only_when_still_short(evaluate: Evaluate) -> None:
    rule = policy(warn_before="P5D")
    out = evaluate([delivered("2026-03-01 00:00"), delivered("2026-03-01 00:00", "P2"),
                    callback("2026-03-10 10:00", "P2")],
                   until=t("2026-04-01 00:00"), policy=rule)
    warnings = [d for d in out if d.kind == "warning"]
    assert [(d.subject.id, d.at) for d in warnings] == [
        ("P1", t("2026-03-26 23:59:59.999999"))]
    assert [d.subject.id for d in out if d.details["outcome"] == "missed"] == ["P1"]


# -- calendar windows, due days, restrictions ----------------------------------------------


def staff_rule(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "subject": {"kind": "employee", "field": "employee_id"},
        "population": {"start": {"type": "employee.profile",
                                 "where": {"role": "tech_service"}}},
        "occurrence": {"type": "report.submitted"},
        "window": {"unit": "week"},
    }
    base.update(rule)
    return policy(**base)


def report(at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("report.submitted", at, employee_id=employee, report="weekly")


def test_due_weekday_moves_to_previous_working_day(evaluate: Evaluate) -> None:
    rule = staff_rule(due={"day": "fri", "time": "14:00", "non_working": "previous"})
    out = evaluate([profile("E1", "tech_service", at="2026-09-27 00:00")],
                   until=t("2026-10-12 00:00"), policy=rule)
    # Fri Oct 2 is a holiday -> Wed Sep 30; Fri Oct 9 is a working day.
    assert [d.at for d in out] == [t("2026-09-30 14:00"), t("2026-10-09 14:00")]


def test_due_skip_on_a_non_working_day(evaluate: Evaluate) -> None:
    rule = staff_rule(due={"day": "fri", "time": "14:00", "non_working": "skip"})
    out = evaluate([profile("E1", "tech_service", at="2026-09-27 00:00")],
                   until=t("2026-10-12 00:00"), policy=rule)
    assert [d.at for d in out] == [t("2026-10-09 14:00")]


def test_only_months_restricts_the_judged_windows(evaluate: Evaluate) -> None:
    rule = staff_rule(window={"unit": "month"}, only={"months": [3, 6]})
    out = evaluate([profile("E1", "tech_service", at="2026-01-01 00:00"),
                    report("2026-06-30 12:00")], until=t("2027-01-01 00:00"), policy=rule)
    assert [d.details["window"] for d in out] == ["2026-03"]


def test_report_between_judged_windows_counts_for_none(evaluate: Evaluate) -> None:
    rule = staff_rule(window={"unit": "month"}, only={"months": [12]})
    out = evaluate([profile("E1", "tech_service", at="2026-01-01 00:00"),
                    report("2026-11-30 12:00")], until=t("2027-01-01 00:00"), policy=rule)
    assert [d.details["window"] for d in out] == ["2026-12"]


def test_min_count_two(evaluate: Evaluate) -> None:
    rule = staff_rule(min_count=2)
    out = evaluate([profile("E1", "tech_service", at="2026-03-02 00:00"),
                    report("2026-03-02 10:00"), report("2026-03-09 10:00"),
                    report("2026-03-10 10:00")], until=t("2026-03-16 00:00"), policy=rule)
    assert [(d.details["window"], d.details["count"]) for d in out] == [("2026-W10", 1)]


# -- populations ---------------------------------------------------------------------------


def test_population_end_event_ends_the_duty(evaluate: Evaluate) -> None:
    rule = policy(subject={"kind": "customer", "field": "customer_id"},
                  population={"start": {"type": "customer.registered"},
                              "end": {"type": "customer.deactivated"}},
                  occurrence={"type": "gift.sent"}, window={"unit": "month"})
    out = evaluate([ev("customer.registered", "2026-01-10 10:00", customer_id="K1"),
                    ev("customer.deactivated", "2026-03-10 10:00", customer_id="K1")],
                   until=t("2026-06-01 00:00"), policy=rule)
    assert [d.details["window"] for d in out] == ["2026-01", "2026-02"]


def test_a_member_re_registered_starts_afresh(evaluate: Evaluate) -> None:
    rule = policy(subject={"kind": "customer", "field": "customer_id"},
                  population={"start": {"type": "customer.registered"},
                              "end": {"type": "customer.deactivated"}},
                  occurrence={"type": "gift.sent"}, window={"unit": "month"})
    out = evaluate([ev("customer.registered", "2026-01-10 10:00", customer_id="K1"),
                    ev("customer.deactivated", "2026-01-20 10:00", customer_id="K1"),
                    ev("customer.registered", "2026-03-10 10:00", customer_id="K1")],
                   until=t("2026-04-01 00:00"), policy=rule)
    assert [d.details["window"] for d in out] == ["2026-03"]


def test_fixed_subject_exists_while_any_member_does(evaluate: Evaluate) -> None:
    rule = policy(subject={"kind": "department", "field": "department"},
                  population={"start": {"type": "employee.profile", "where": {"role": "business"}},
                              "field": "employee_id", "value": "business"},
                  occurrence={"type": "report.submitted"}, window={"unit": "month"})
    events = [profile("B1", "business", at="2026-01-01 00:00"),
              profile("B2", "business", at="2026-01-01 00:00"),
              ev("employee.profile", "2026-02-10 00:00", employee_id="B1", role="guard",
                 base_salary="1"),
              ev("employee.profile", "2026-03-10 00:00", employee_id="B2", role="guard",
                 base_salary="1")]
    out = evaluate(events, until=t("2026-05-01 00:00"), policy=rule)
    assert [(d.subject.id, d.details["window"]) for d in out] == [
        ("business", "2026-01"), ("business", "2026-02")]


# -- late and early ---------------------------------------------------------------------------


def attendance(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "subject": {"kind": "employee", "field": "employee_id"},
        "population": None,
        "occurrence": {"type": "attendance.clock_in"},
        "window": {"unit": "working_day"},
        "due": {"time": "work_start"},
        "outcomes": {"late": "violation"},
    }
    base.update(rule)
    return policy(**base)


def test_late_without_population_judges_anyone(evaluate: Evaluate) -> None:
    out = evaluate([ev("attendance.clock_in", "2026-03-02 08:30:00", employee_id="A"),
                    ev("attendance.clock_in", "2026-03-02 08:30:01", employee_id="B")],
                   policy=attendance())
    assert [(d.subject.id, d.details["outcome"]) for d in out] == [("B", "late")]


def test_late_and_missed_together_judge_missed_at_the_window_end(evaluate: Evaluate) -> None:
    rule = attendance(population={"start": {"type": "employee.profile"}},
                      outcomes={"late": "violation", "missed": "violation"})
    out = evaluate([profile("E1", at="2026-03-01 00:00"),
                    ev("attendance.clock_in", "2026-03-02 11:00", employee_id="E1")],
                   until=t("2026-03-04 00:00"), policy=rule)
    assert [(d.details["outcome"], d.details["window"]) for d in out] == [
        ("late", "2026-03-02"), ("missed", "2026-03-03")]


def test_joined_after_the_due_time_is_not_judged_that_window(evaluate: Evaluate) -> None:
    rule = attendance(population={"start": {"type": "employee.profile"}},
                      outcomes={"late": "violation", "missed": "violation"})
    out = evaluate([profile("E1", at="2026-03-02 09:00"),
                    ev("attendance.clock_in", "2026-03-02 09:05", employee_id="E1")],
                   until=t("2026-03-03 00:00"), policy=rule)
    assert out == []


def test_early_is_judged_on_the_last_occurrence(evaluate: Evaluate) -> None:
    rule = attendance(occurrence={"type": "attendance.clock_out"}, due=None,
                      not_before={"time": "17:00"}, outcomes={"early": "violation"})
    out = evaluate([ev("attendance.clock_out", "2026-03-02 16:00", employee_id="E1"),
                    ev("attendance.clock_out", "2026-03-02 16:59", employee_id="E1"),
                    ev("attendance.clock_out", "2026-03-03 16:00", employee_id="E1"),
                    ev("attendance.clock_out", "2026-03-03 17:00", employee_id="E1")],
                   until=t("2026-03-04 00:00"), policy=rule)
    assert [(d.details["window"], d.details["early_seconds"]) for d in out] == [
        ("2026-03-02", 60)]


def test_rename_changes_the_outcome_name(evaluate: Evaluate) -> None:
    rule = policy(rename={"missed": "no_callback"})
    out = evaluate([delivered("2026-03-01 00:00")], until=t("2026-04-01 00:00"), policy=rule)
    assert [d.details["outcome"] for d in out] == ["no_callback"]
    assert "missed" in out[0].message


# -- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "needle"), [
    ({"population": None}, "population"),
    ({"outcomes": {"late": "violation"}}, "due"),
    ({"outcomes": {"early": "violation"}}, "not_before"),
    ({"window": {"months": 2, "alignment": "calendar"}}, "1, 3, 6 or 12"),
    ({"window": {"unit": "week", "months": 1}}, "exactly one"),
    ({"window": {"schedule": [{"months": 1}, {"months": 3}]}}, "until"),
    ({"due": {"time": "25:00"}}, "HH:MM"),
    ({"occurrence": {"type": "callback.mad"}}, "callback.made"),
    ({"occurrence": {"type": "callback.made", "where": {"chanel": "phone"}}}, "channel"),
    ({"warn_before": "P5D", "outcomes": {"late": "violation"}, "due": {"time": "12:00"}},
     "missed"),
    ({"rename": {"gone": "x"}}, "unknown outcome"),
    ({"profile_where": {"role": "guard"}}, "employee subjects"),
])
def test_bad_rules_are_refused_with_a_hint(rule: dict[str, Any], needle: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        policy(**rule)
    assert needle in str(err.value)


# -- determinism ---------------------------------------------------------------------------------


def test_batch_equals_streaming_in_any_chunking(backend: str) -> None:
    rule = policy(window={"schedule": [{"months": 1, "until": 2}, {"months": 3}]},
                  warn_before="P5D")
    events = [delivered("2026-01-31 10:00"), delivered("2026-02-15 00:00", "P2"),
              callback("2026-02-20 10:00"), callback("2026-04-01 00:00", "P2"),
              callback("2026-06-30 10:00")]
    until = t("2026-12-31 00:00")
    engine = Engine(rule, backend=backend)
    batch = engine.evaluate(events, until=until)
    with engine.session() as session:
        streamed: list[Decision] = []
        for e in events:
            streamed += session.feed(e)
            streamed += session.advance_to(t(e["at"][:19].replace("T", " ")))
        streamed += session.advance_to(until)
    assert sorted(d.id for d in batch) == sorted(d.id for d in streamed)
    assert len({d.id for d in batch}) == len(batch)


def test_snapshot_mid_month_restores_to_the_same_decisions(backend: str) -> None:
    """Recurrence and tariff state (windows, agenda, exemptions, running totals) is plain
    data: a restored session continues exactly like an uninterrupted one."""
    from policykit import standard_pack

    pack = standard_pack().select("lateness-deduction", "reporting-duties",
                                  "annual-customer-care", "staff-penalties")
    events = [profile("E1", at="2026-03-01 00:00"),
              profile("T1", "tech_service", at="2026-03-01 00:00"),
              ev("customer.registered", "2026-03-01 00:00", customer_id="K1"),
              ev("attendance.leave", "2026-03-01 01:00", employee_id="E1", start="2026-03-10",
                 end="2026-03-11", kind="annual"),
              *[ev("attendance.clock_in", f"2026-03-0{d} 08:4{d}", employee_id="E1")
                for d in (2, 3, 4, 5)],
              ev("report.submitted", "2026-03-06 13:00", employee_id="T1", report="weekly"),
              ev("attendance.clock_in", "2026-03-12 08:10", employee_id="E1"),
              ev("staff.complaint", "2026-03-13 10:00", employee_id="E1", source="sales",
                 severity="moderate")]
    until = t("2026-04-01 00:00")
    engine = Engine(pack, backend=backend)
    whole = engine.evaluate(events, until=until)
    with engine.session() as first:
        got = first.feed_many(events[:6])
        got += first.advance_to(t("2026-03-03 12:00"))
        saved = first.snapshot()
    with engine.restore(saved) as second:
        got += second.feed_many(events[6:])
        got += second.advance_to(until)
    assert sorted(d.id for d in got) == sorted(d.id for d in whole)
    assert any(d.rule == "R2" and d.status == "final" for d in whole)


def test_the_docstring_example_for_callback_frequency_is_a_valid_policy(
        evaluate: Evaluate) -> None:
    """The module docstring shows callback-frequency R1-R4 in this shape; they must load and
    run (a project delivered Jan 31 with no callbacks misses Feb 28's window)."""
    import yaml

    from policykit.rules import recurrence

    doc = recurrence.__doc__ or ""
    block = doc.split("in a policy file::\n", 1)[1].split("\nA population", 1)[0]
    rules = yaml.safe_load(block)
    assert [r["id"] for r in rules] == ["R1", "R2", "R3", "R4"]
    pol = Policy.model_validate({
        "id": "callback-example", "title": "example", "clause": "篇二 §五", "rules": rules,
        "parameters": {"window_alignment": "anniversary", "warn_before": "P5D",
                       "min_per_year": 1}})
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2026-02-28 10:00"), policy=pol)
    assert [(d.rule, d.kind) for d in out] == [("R1", "warning"), ("R1", "violation")]
    assert out[1].at == t("2026-02-28 09:59:59.999999")


def test_due_time_follows_the_site_s_time_zone_across_dst(evaluate: Evaluate) -> None:
    rule = attendance().model_dump()
    rule["calendar"] = {"timezone": "Europe/Berlin", "holiday_source": "none"}
    berlin = Policy.model_validate(rule)
    # Berlin moves to summer time on Sunday 2026-03-29: 08:30 is +01:00 before, +02:00 after.
    out = evaluate([ev("attendance.clock_in", datetime.fromisoformat(at), employee_id="A")
                    for at in ("2026-03-27T08:30:00+01:00", "2026-03-30T08:30:00+02:00",
                               "2026-03-31T08:30:01+02:00")], policy=berlin)
    assert [(d.details["window"], d.details["late_seconds"]) for d in out] == [
        ("2026-03-31", 1)]


def test_a_due_time_past_the_window_s_end_is_its_end(evaluate: Evaluate) -> None:
    # The anniversary window ends Feb 28 09:59:59.999999; "end of its last day" would be
    # after it, so the window's own end is the due time.
    rule = policy(due={"day": "last", "time": "end_of_day"})
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2026-02-28 12:00"), policy=rule)
    assert [(d.at, d.details["due"]) for d in out] == [
        (t("2026-02-28 09:59:59.999999"), "2026-02-28T09:59:59+08:00")]


# -- per_item: one duty per item of a list on the start event (callback-frequency R3) --------

OFFICERS = {"start": {"type": "employee.profile", "where": {"role": "property_officer"}}}


def officer_rule(**per: Any) -> Policy:
    return Policy.model_validate({
        "id": "visits", "version": "1", "title": "visits", "clause": "x",
        "rules": [{"shape": "recurrence", "id": "R1", "population": OFFICERS,
                   "subject": {"kind": "employee", "field": "employee_id"},
                   "occurrence": {"type": "area_visit.made"}, "window": {"unit": "quarter"},
                   "per_item": {"start_field": "areas", "occurrence_field": "area_id",
                                **per}}]})


@pytest.mark.parametrize(("per", "needle"), [
    ({"start_field": "area"}, "areas"),                  # the nearest field is suggested
    ({"occurrence_field": "areas"}, "area_id"),
    ({"name": "Area Id"}, "name"),
    ({"without_items": "all"}, "without_items"),
])
def test_bad_per_item_is_refused_naming_the_field(per: dict[str, Any], needle: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        officer_rule(**per)
    assert needle in str(err.value)


def test_per_item_needs_a_population_of_the_subjects_themselves() -> None:
    with pytest.raises(PolicyFileError, match="per_item needs a population"):
        Policy.model_validate({
            "id": "visits", "version": "1", "title": "visits", "clause": "x",
            "rules": [{"shape": "recurrence", "id": "R1",
                       "population": {**OFFICERS, "value": "site"},
                       "subject": {"kind": "site", "field": "employee_id"},
                       "occurrence": {"type": "area_visit.made"},
                       "window": {"unit": "quarter"},
                       "per_item": {"start_field": "areas", "occurrence_field": "area_id"}}]})


def test_per_item_repeated_items_are_one_duty_with_the_default_message(evaluate: Evaluate) -> None:
    log = [profile("O1", role="property_officer", areas=["A1", "A1", "A2"]),
           ev("area_visit.made", "2026-02-01 10:00", area_id="A2", employee_id="O1")]
    out = evaluate(log, until=t("2026-03-31 23:59:59.999999"), policy=officer_rule())
    # A repeated item is one duty; without a *_per_item message the shape's own is used.
    assert [(d.subject.id, d.details["item"]) for d in out] == [("O1", "A1")]
    assert out[0].message.startswith("R1 missed: O1 had 0 of 1")
