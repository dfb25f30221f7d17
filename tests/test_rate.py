"""The *rate* shape's boundaries: a rate exactly at its target is met (both comparisons),
rounding half-up to the places asked for while judging on the exact ratio, the KPI decided
at the period's last instant (an event at that instant counts), join (items processed after
their period closed), distinct keys, a population denominator, no data, validation."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision, Policy
from policykit.errors import PolicyFileError

YEAR_END = t("2026-12-31 23:59:59.999999")


def policy(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "shape": "rate", "id": "R6", "title": "processing rate",
        "numerator": {"type": "feedback.processed", "key": "item_id"},
        "denominator": {"type": "feedback.recorded", "key": "item_id"},
        "join": True,
        "target": 100,
        "subject": {"kind": "department", "id": "office"},
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    return Policy.model_validate({"id": "rate-test", "title": "rate test", "clause": "篇三",
                                  "rules": [base]})


def recorded(item: str, at: str = "2026-05-01 10:00") -> dict[str, Any]:
    return ev("feedback.recorded", at, id=f"rec-{item}", item_id=item, employee_id="E1")


def processed(item: str, at: str = "2026-05-02 10:00") -> dict[str, Any]:
    return ev("feedback.processed", at, id=f"pro-{item}", item_id=item, employee_id="E1")


def kpi(out: list[Decision]) -> Decision:
    assert len(out) == 1 and out[0].kind == "kpi"
    return out[0]


def test_all_processed_is_met_at_the_period_end(evaluate: Evaluate) -> None:
    events = [recorded("a"), recorded("b"), processed("a"), processed("b")]
    d = kpi(evaluate(events, until=YEAR_END, policy=policy()))
    assert d.at == YEAR_END and d.subject.id == "office"
    assert d.details["outcome"] == "met" and d.details["met"] is True
    assert d.details["rate"] == Decimal("100.00") and d.details["target"] == Decimal(100)
    assert (d.details["numerator"], d.details["denominator"]) == (2, 2)
    assert d.details["period"] == "2026" and d.severity == "info"
    assert set(d.evidence) == {"rec-a", "rec-b", "pro-a", "pro-b"}


def test_not_judged_before_the_period_closes(evaluate: Evaluate) -> None:
    out = evaluate([recorded("a")], until=t("2026-12-31 23:59:59"), policy=policy())
    assert out == []


def test_one_unprocessed_misses_and_rounds_half_up(evaluate: Evaluate) -> None:
    events = [recorded("a"), recorded("b"), recorded("c"), processed("a"), processed("b")]
    d = kpi(evaluate(events, until=YEAR_END, policy=policy()))
    assert d.details["outcome"] == "missed" and d.details["rate"] == Decimal("66.67")
    assert d.severity == "medium"
    one_place = kpi(evaluate(events, until=YEAR_END, policy=policy(places=1)))
    assert one_place.details["rate"] == Decimal("66.7")


def test_processed_at_the_last_instant_counts_after_it_not(evaluate: Evaluate) -> None:
    at_end = [recorded("a"), processed("a", "2026-12-31 23:59:59.999999")]
    assert kpi(evaluate(at_end, until=YEAR_END, policy=policy())).details["met"] is True
    # A year earlier: the calendar has no holiday data for 2027 and refuses its events.
    after = [recorded("a", "2025-05-01 10:00"), processed("a", "2026-01-01 00:00")]
    d = kpi(evaluate(after, until=t("2026-01-02 00:00"), policy=policy()))
    assert d.details["met"] is False and d.details["numerator"] == 0


def test_join_ignores_items_recorded_in_another_period(evaluate: Evaluate) -> None:
    events = [recorded("a", "2026-01-10 10:00"), processed("a", "2026-02-01 10:00"),
              processed("ghost", "2026-01-15 10:00")]     # recorded before the log
    out = evaluate(events, until=t("2026-02-28 23:59:59.999999"), policy=policy(period="month"))
    d = kpi(out)
    assert d.details["period"] == "2026-01" and d.details["met"] is False
    assert (d.details["numerator"], d.details["denominator"]) == (0, 1)
    assert d.at == t("2026-01-31 23:59:59.999999")


def test_period_quarter(evaluate: Evaluate) -> None:
    events = [recorded("a", "2026-03-31 23:00"), recorded("b", "2026-04-01 01:00")]
    out = evaluate(events, until=t("2026-06-30 23:59:59.999999"), policy=policy(period="quarter"))
    assert [(d.details["period"], d.details["denominator"]) for d in out] == [
        ("2026-Q1", 1), ("2026-Q2", 1)]


def complaint_policy(**kw: Any) -> Policy:
    rule: dict[str, Any] = {
        "numerator": {"type": "complaint.validated", "where": {"valid": True},
                      "key": "complaint_id"},
        "denominator": None, "join": False,
        "population": {"start": {"type": "household.registered"},
                       "field": "household_id"},
        "target": 1, "comparison": "at_most", "severity": "low",
    }
    rule.update(kw)
    return policy(**rule)


def households(n: int) -> list[dict[str, Any]]:
    return [ev("household.registered", "2026-01-05 10:00", household_id=f"H{i}", area_id="A")
            for i in range(n)]


def valid(cid: str, at: str = "2026-06-01 10:00", ok: bool = True) -> dict[str, Any]:
    return ev("complaint.validated", at, complaint_id=cid, valid=ok)


def test_population_denominator_exactly_at_target_is_met(evaluate: Evaluate) -> None:
    events = [*households(200), valid("c1"), valid("c2"), valid("c2", "2026-06-02 10:00"),
              valid("c3", ok=False)]
    d = kpi(evaluate(events, until=YEAR_END, policy=complaint_policy()))
    assert (d.details["numerator"], d.details["denominator"]) == (2, 200)
    assert d.details["rate"] == Decimal("1.00") and d.details["met"] is True


def test_exact_ratio_is_judged_not_the_rounded_one(evaluate: Evaluate) -> None:
    # 3 of 299 = 1.0033...% rounds to 1.00% but is above the 1% target
    events = [*households(299), valid("c1"), valid("c2"), valid("c3")]
    d = kpi(evaluate(events, until=YEAR_END, policy=complaint_policy()))
    assert d.details["rate"] == Decimal("1.00") and d.details["met"] is False
    assert d.details["outcome"] == "missed" and d.severity == "low"


def test_population_periods_continue_without_events(evaluate: Evaluate) -> None:
    # A horizon in 2027, which the holiday data does not cover yet: this rate reads no
    # working days, so its calendar says the missing year may be ignored.
    data = complaint_policy().model_dump()
    data["calendar"] = {**data["calendar"], "missing_holiday_data": "ignore"}
    out = evaluate(households(10), until=t("2027-12-31 23:59:59.999999"),
                   policy=Policy.model_validate(data))
    assert [(d.details["period"], d.details["rate"], d.details["met"]) for d in out] == [
        ("2026", Decimal("0.00"), True), ("2027", Decimal("0.00"), True)]


def test_no_denominator_is_no_data(evaluate: Evaluate) -> None:
    d = kpi(evaluate([valid("c1")], until=YEAR_END, policy=complaint_policy()))
    assert d.details["outcome"] == "no_data" and d.details["rate"] is None
    assert d.details["met"] is None and d.severity == "info"


def test_plain_counts_without_key(evaluate: Evaluate) -> None:
    pol = policy(numerator={"type": "feedback.processed"},
                 denominator={"type": "feedback.recorded"}, join=False, target=50)
    # without a key each event counts: the same item processed twice counts twice
    events = [recorded("a"), recorded("b"), recorded("c"), recorded("d"), processed("a"),
              ev("feedback.processed", "2026-05-03 10:00", item_id="a", employee_id="E1")]
    d = kpi(evaluate(events, until=YEAR_END, policy=pol))
    assert (d.details["numerator"], d.details["denominator"]) == (2, 4)
    assert d.details["met"] is True


def test_evidence_is_bounded(evaluate: Evaluate) -> None:
    events = [recorded(f"i{i}") for i in range(30)]
    d = kpi(evaluate(events, until=YEAR_END, policy=policy(evidence_limit=10)))
    assert len(d.evidence) == 10 and d.details["evidence_truncated"] is True


@pytest.mark.parametrize("rule, message", [
    ({"population": {"start": {"type": "household.registered"}, "field": "household_id"}},
     "exactly one of denominator, population"),
    ({"numerator": {"type": "feedback.processed"}}, "join needs key"),
    ({"period": "week"}, "period"),
    ({"scale": 0}, "scale"),
    ({"subject": {"kind": "department", "field": "x"}}, "subject"),
])
def test_validation(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        policy(**rule)
