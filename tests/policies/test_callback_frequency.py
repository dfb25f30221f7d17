"""callback-frequency (客戶回訪制度, 篇二 §五; 篇三 回訪): project callbacks monthly in the
first year and quarterly after, windows from the delivery with month-end clamping (R1);
director home visits (R2); property officer area visits (R3); the half-yearly residents'
forum (R4); promised replies (R5); the processing-rate and valid-complaint-rate KPIs (R6a,
R6b). Edges: a project delivered on Jan 31 (windows over February), a callback exactly at a
window's end, a promised reply exactly at promised_by."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from helpers import Evaluate, ev, profile, t

from policykit import Decision

POLICY = "callback-frequency"
US = ".999999"


def delivered(at: str, project: str = "J1") -> dict[str, Any]:
    return ev("project.delivered", at, id=f"del-{project}", project_id=project, customer_id="C1")


def callback(at: str | datetime, project: str = "J1", channel: str = "phone") -> dict[str, Any]:
    return ev("callback.made", at, project_id=project, employee_id="E1", channel=channel)


def of(out: list[Decision], rule: str, kind: str | None = None) -> list[Decision]:
    return [d for d in out if d.spec_rule == rule and (kind is None or d.kind == kind)]


# -- R1 project callbacks ---------------------------------------------------------------


def test_r1_delivered_jan_31_windows_clamp_to_month_ends(evaluate: Evaluate) -> None:
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2026-05-31 10:00"),
                   policy=POLICY)
    missed = of(out, "R1", "violation")
    # each window computed from the anchor: Feb 28, Mar 31, Apr 30, May 31 (not Mar 28 ...)
    assert [d.at for d in missed] == [t(f"2026-02-28 09:59:59{US}"), t(f"2026-03-31 09:59:59{US}"),
                                      t(f"2026-04-30 09:59:59{US}"), t(f"2026-05-31 09:59:59{US}")]
    d = missed[0]
    assert d.subject.kind == "project" and d.subject.id == "J1"
    assert d.evidence[0] == "del-J1"
    assert d.details["window_start"] == "2026-01-31T10:00:00+08:00"


def test_r1_one_callback_per_window_is_enough(evaluate: Evaluate) -> None:
    events = [delivered("2026-01-31 10:00"), callback("2026-02-10 10:00"),
              callback("2026-03-15 10:00"), callback("2026-04-01 10:00")]
    out = evaluate(events, until=t("2026-04-30 10:00"), policy=POLICY)
    assert of(out, "R1") == []


def test_r1_callback_exactly_at_a_windows_end(evaluate: Evaluate) -> None:
    # the window's last instant is in time
    events = [delivered("2026-01-31 10:00"), callback(f"2026-02-28 09:59:59{US}")]
    out = evaluate(events, until=t("2026-02-28 10:00"), policy=POLICY)
    assert of(out, "R1", "violation") == []
    # at delivery + 1 month the next window has begun: the callback counts there, not here
    events = [delivered("2026-01-31 10:00"), callback("2026-02-28 10:00")]
    out = evaluate(events, until=t("2026-03-31 10:00"), policy=POLICY)
    assert [d.at for d in of(out, "R1", "violation")] == [t(f"2026-02-28 09:59:59{US}")]


def test_r1_only_phone_callbacks_on_the_project_count(evaluate: Evaluate) -> None:
    events = [delivered("2026-01-31 10:00"), callback("2026-02-10 10:00", channel="email"),
              callback("2026-02-11 10:00", project="OTHER")]
    out = evaluate(events, until=t("2026-02-28 10:00"), policy=POLICY)
    assert len(of(out, "R1", "violation")) == 1


def test_r1_monthly_in_year_one_then_quarterly(evaluate: Evaluate) -> None:
    out = evaluate([delivered("2025-03-15 10:00")], until=t("2026-12-31 23:59"), policy=POLICY)
    ends = [d.at.date().isoformat() for d in of(out, "R1", "violation")]
    assert len(ends) == 12 + 3
    assert ends[:2] == ["2025-04-15", "2025-05-15"]
    assert ends[11:] == ["2026-03-15", "2026-06-15", "2026-09-15", "2026-12-15"]


def test_r1_warning_five_days_before_a_window_closes(evaluate: Evaluate) -> None:
    out = evaluate([delivered("2026-01-31 10:00")], until=t("2026-02-28 10:00"), policy=POLICY)
    warnings = of(out, "R1", "warning")
    assert [d.at for d in warnings] == [t(f"2026-02-23 09:59:59{US}")]
    done = evaluate([delivered("2026-01-31 10:00"), callback("2026-02-20 10:00")],
                    until=t("2026-02-28 10:00"), policy=POLICY)
    assert of(done, "R1") == []


def test_r1_calendar_alignment(evaluate: Evaluate) -> None:
    events = [delivered("2026-01-31 10:00"), callback("2026-02-27 10:00")]
    out = evaluate(events, until=t("2026-04-01 00:00"), policy=POLICY,
                   window_alignment="calendar")
    missed = {d.details["window"]: d.at for d in of(out, "R1", "violation")}
    assert "2026-02" not in missed
    assert missed["2026-03"] == t(f"2026-03-31 23:59:59{US}")


# -- R2-R4 visits and forums ------------------------------------------------------------


def test_r2_director_visits_homes_once_a_year(evaluate: Evaluate) -> None:
    director = profile("D1", role="director", at="2025-12-01 09:00")
    visit = ev("home_visit.made", "2026-06-01 10:00", household_id="H1", employee_id="D1")
    year_end = t(f"2026-12-31 23:59:59{US}")
    out = evaluate([director], until=year_end, policy=POLICY)
    r2 = [d for d in of(out, "R2") if d.details["window"] == "2026"]
    assert len(r2) == 1 and r2[0].subject.id == "D1" and r2[0].at == year_end
    out = evaluate([director, visit], until=year_end, policy=POLICY)
    assert [d for d in of(out, "R2") if d.details["window"] == "2026"] == []
    twice = evaluate([director, visit], until=year_end, policy=POLICY, min_per_year=2)
    assert [d.details["count"] for d in of(twice, "R2") if d.details["window"] == "2026"] == [1]


def test_r3_property_officer_visits_the_area_each_quarter(evaluate: Evaluate) -> None:
    officer = profile("O1", role="property_officer", at="2026-01-01 00:00", areas=["A1"])
    visit = ev("area_visit.made", "2026-02-01 10:00", area_id="A1", employee_id="O1")
    out = evaluate([officer, visit], until=t(f"2026-06-30 23:59:59{US}"), policy=POLICY)
    assert [(d.subject.id, d.details["window"], d.details["area"]) for d in of(out, "R3")] \
        == [("O1", "2026-Q2", "A1")]


Q1_END = t(f"2026-03-31 23:59:59{US}")


def _r3(out: list[Decision]) -> list[tuple[str, str | None]]:
    return sorted((d.subject.id, d.details.get("area")) for d in of(out, "R3"))


def test_r3_a_visit_counts_only_for_the_officers_own_area(evaluate: Evaluate) -> None:
    # Issue 16: the duty is per officer and per own area. O1 owns A1 and A2 and visits A1
    # and B1 (O2's area); O2 visits nothing. Before, any visit counted for any officer.
    log = [profile("O1", role="property_officer", areas=["A1", "A2"]),
           profile("O2", role="property_officer", areas=["B1"]),
           ev("area_visit.made", "2026-02-01 10:00", id="v-a1", area_id="A1", employee_id="O1"),
           ev("area_visit.made", "2026-02-02 10:00", id="v-b1", area_id="B1", employee_id="O1")]
    out = evaluate(log, until=Q1_END, policy=POLICY)
    # A2 was never visited; O1's visit to B1 counts neither for O1 nor for B1's officer O2.
    assert _r3(out) == [("O1", "A2"), ("O2", "B1")]
    d = next(x for x in of(out, "R3") if x.subject.id == "O1")
    assert d.kind == "violation" and d.details["count"] == 0 and d.evidence == ("p-O1",)
    assert "their area A2" in d.message and "A2" in d.message_zh
    # The earlier reading stays a company's choice: any visit counts, one duty per officer.
    anyarea = evaluate(log, until=Q1_END, policy=POLICY, area_visits_count_for="any_area")
    assert _r3(anyarea) == [("O2", None)]


def test_r3_an_officer_without_areas_owes_a_visit_to_any_area(evaluate: Evaluate) -> None:
    log = [profile("O1", role="property_officer"), profile("O2", role="property_officer",
                                                           areas=[]),
           ev("area_visit.made", "2026-02-01 10:00", area_id="Z9", employee_id="O1")]
    out = evaluate(log, until=Q1_END, policy=POLICY)
    assert _r3(out) == [("O2", None)]  # O1's visit anywhere meets O1's duty
    assert "area" not in of(out, "R3")[0].details
    none = evaluate(log, until=Q1_END, policy=POLICY, officer_without_areas="none")
    assert of(none, "R3") == []


def test_r3_a_new_profile_moves_the_duties_to_its_areas(evaluate: Evaluate) -> None:
    log = [profile("O1", role="property_officer", areas=["A1", "A2"]),
           ev("employee.profile", "2026-04-15 00:00", id="p-O1b", employee_id="O1",
              role="property_officer", base_salary="6000.00", areas=["A2", "A3"]),
           ev("area_visit.made", "2026-05-01 10:00", area_id="A1", employee_id="O1")]
    out = evaluate(log, until=t(f"2026-06-30 23:59:59{US}"), policy=POLICY)
    q2 = sorted((d.details["area"], d.evidence[0]) for d in of(out, "R3")
                if d.details["window"] == "2026-Q2")
    # A1 left the list: its visit counts for nothing; A2 kept its duty, A3 owes from April 15
    assert q2 == [("A2", "p-O1"), ("A3", "p-O1b")]
    assert len({d.id for d in of(out, "R3")}) == len(of(out, "R3"))


def test_r3_a_parameter_value_no_variant_accepts_is_refused() -> None:
    import pytest

    from policykit import PolicyFileError, standard_pack

    with pytest.raises(PolicyFileError, match=r"area_visits_count_for.*own_areas, any_area"
                       r".*did you mean 'own_areas'"):
        standard_pack().get(POLICY).with_parameters(area_visits_count_for="own_area")
    with pytest.raises(PolicyFileError, match="officer_without_areas"):
        standard_pack().get(POLICY).with_parameters(officer_without_areas="all")


def test_r4_residents_forum_every_half_year(evaluate: Evaluate) -> None:
    house = ev("household.registered", "2026-01-01 00:00", household_id="H1", area_id="A1")
    forum = ev("forum.held", "2026-05-01 19:00", site_id="S1", employee_id="D1")
    out = evaluate([house, forum], until=t(f"2026-12-31 23:59:59{US}"), policy=POLICY)
    assert [d.details["window"] for d in of(out, "R4")] == ["2026-H2"]
    assert evaluate([forum], until=t(f"2026-12-31 23:59:59{US}"), policy=POLICY) == []


# -- R5 promised replies ----------------------------------------------------------------


def promised(by: str) -> dict[str, Any]:
    return ev("reply.promised", "2026-03-02 10:00", id="prom", question_id="Q1",
              employee_id="E1", promised_by=t(by).isoformat(), household_id="H1")


def reply(at: str) -> dict[str, Any]:
    return ev("reply.given", at, question_id="Q1", employee_id="E1")


def test_r5_reply_exactly_at_promised_by_is_in_time(evaluate: Evaluate) -> None:
    events = [promised("2026-03-04 17:00"), reply("2026-03-04 17:00")]
    assert evaluate(events, until=t("2026-03-05 00:00"), policy=POLICY) == []


def test_r5_reply_a_second_late_or_never(evaluate: Evaluate) -> None:
    for events in ([promised("2026-03-04 17:00"), reply("2026-03-04 17:00:01")],
                   [promised("2026-03-04 17:00")]):
        out = evaluate(events, until=t("2026-03-05 00:00"), policy=POLICY)
        assert [(d.rule, d.kind, d.subject.id, d.at) for d in out] == [
            ("R5", "violation", "E1", t("2026-03-04 17:00"))]
        assert out[0].evidence == ("prom",)


# -- R6 KPIs ----------------------------------------------------------------------------


def feedback(item: str, processed: bool) -> list[dict[str, Any]]:
    out = [ev("feedback.recorded", "2026-04-01 10:00", item_id=item, employee_id="E1",
              household_id="H1")]
    if processed:
        out.append(ev("feedback.processed", "2026-04-03 10:00", item_id=item, employee_id="E1"))
    return out


def test_r6a_processing_rate(evaluate: Evaluate) -> None:
    year_end = t(f"2026-12-31 23:59:59{US}")
    full = evaluate([*feedback("f1", True), *feedback("f2", True)], until=year_end,
                    policy=POLICY)
    d = of(full, "R6a")[0]
    assert d.kind == "kpi" and d.details["rate"] == Decimal("100.00") and d.details["met"]
    assert d.at == year_end and d.details["target"] == 100
    short = evaluate([*feedback("f1", True), *feedback("f2", False)], until=year_end,
                     policy=POLICY)
    d = of(short, "R6a")[0]
    assert d.details["rate"] == Decimal("50.00") and d.details["met"] is False
    assert (d.details["numerator"], d.details["denominator"]) == (1, 2)
    assert d.details["outcome"] == "missed" and d.kind == "kpi"


def test_r6a_period_parameter(evaluate: Evaluate) -> None:
    out = evaluate([*feedback("f1", True)], until=t(f"2026-06-30 23:59:59{US}"), policy=POLICY,
                   kpi_period="quarter")
    assert [(d.details["period"], d.details["met"]) for d in of(out, "R6a")] == [
        ("2026-Q2", True)]


def test_r6b_valid_complaint_rate_against_registered_households(evaluate: Evaluate) -> None:
    homes = [ev("household.registered", "2026-01-02 10:00", household_id=f"H{i}", area_id="A")
             for i in range(150)]
    complaints = [ev("complaint.validated", "2026-03-01 10:00", complaint_id="K1", valid=True),
                  ev("complaint.validated", "2026-03-02 10:00", complaint_id="K2", valid=True),
                  ev("complaint.validated", "2026-03-03 10:00", complaint_id="K3", valid=False)]
    year_end = t(f"2026-12-31 23:59:59{US}")
    out = evaluate([*homes, *complaints], until=year_end, policy=POLICY)
    d = of(out, "R6b")[0]
    assert d.kind == "kpi" and d.at == year_end
    assert (d.details["numerator"], d.details["denominator"]) == (2, 150)
    assert d.details["rate"] == Decimal("1.33") and d.details["met"] is False
    assert d.details["comparison"] == "at_most"
    out = evaluate([*homes, *complaints[:1]], until=year_end, policy=POLICY)
    d = of(out, "R6b")[0]
    assert d.details["rate"] == Decimal("0.67") and d.details["met"] is True
    assert all(x.kind != "violation" for x in of(out, "R6b"))   # 力爭: a KPI, never a violation


def test_r2_per_household_reading_judges_each_household(evaluate: Any) -> None:
    """`per: household` (the stricter reading): every registered household is owed a home
    visit a year; the default counts the director's visits instead."""
    events = [profile("D1", "director"),
              ev("household.registered", "2026-01-05 09:00", household_id="H1", area_id="A1"),
              ev("household.registered", "2026-01-05 09:00", household_id="H2", area_id="A1"),
              ev("home_visit.made", "2026-03-05 10:00", household_id="H1", employee_id="D1")]
    until = t("2027-01-01 00:00")
    by_director = [d for d in evaluate(events, until=until, policy="callback-frequency")
                   if d.rule == "R2"]
    assert by_director == []
    by_household = [d for d in evaluate(events, until=until, policy="callback-frequency",
                                        per="household") if d.rule == "R2"]
    assert [(d.subject.kind, d.subject.id, d.kind) for d in by_household] == [
        ("household", "H2", "violation")]
