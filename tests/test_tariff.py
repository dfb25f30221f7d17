"""The *tariff* shape's boundaries: the item at a tier's threshold, ``all`` against
``marginal``, half-up rounding per item, provisional figures superseded by the period's
final one at its last instant, salaries from the directory (and unknown ones), cap and
floor, the limit, per-item settling with a table and a floor, items from another rule's
decisions filtered by outcome, and validation errors."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from helpers import Evaluate, ev, profile, t

from policykit import Decision, Engine, Policy
from policykit.errors import PolicyFileError
from policykit.rules.tariff import TariffSpec, _TariffRuntime, cents

MONTH_END = t("2026-04-01 00:00")


def policy(*extra: dict[str, Any], **rule: Any) -> Policy:
    base: dict[str, Any] = {
        "shape": "tariff", "id": "T1", "title": "private calls",
        "events": {"type": "staff.private_call"},
        "period": "month",
        "basis": "salary",
        "tiers": [{"from": 1, "rate": "0.01"}, {"from": 3, "rate": "0.05"}],
        "tier_mode": "marginal",
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    return Policy.model_validate({"id": "tariff-test", "title": "tariff test",
                                  "clause": "篇四 §七", "rules": [*extra, base]})


def call(day: int, employee: str = "E1", seconds: int = 200, hour: int = 10
         ) -> dict[str, Any]:
    return ev("staff.private_call", f"2026-03-{day:02d} {hour:02d}:00", employee_id=employee,
              duration_s=seconds)


def staff(employee: str = "E1", salary: str = "6000.00") -> dict[str, Any]:
    return profile(employee, salary=salary, at="2026-03-01 00:00")


def finals(out: list[Decision]) -> list[Decision]:
    return [d for d in out if d.status == "final" and d.rule == "T1"]


def test_cents_rounds_half_up() -> None:
    assert cents(Decimal("166.6665")) == Decimal("166.67")
    assert cents(Decimal("33.3333")) == Decimal("33.33")
    assert cents(Decimal("0.005")) == Decimal("0.01")
    assert cents(Decimal("2.345")) == Decimal("2.35")  # not banker's rounding


@pytest.mark.parametrize(("mode", "n", "total"), [
    ("marginal", 2, "120.00"), ("marginal", 3, "420.00"), ("all", 2, "120.00"),
    ("all", 3, "900.00"),
])
def test_tier_threshold_item_and_mode(evaluate: Evaluate, mode: str, n: int,
                                      total: str) -> None:
    out = evaluate([staff(), *[call(d) for d in range(2, 2 + n)]], until=MONTH_END,
                   policy=policy(tier_mode=mode))
    assert [d.amount for d in finals(out)] == [Decimal(total)]


def test_provisional_figures_and_final_at_the_period_s_last_instant(
        evaluate: Evaluate) -> None:
    out = evaluate([staff(), call(2), call(3), call(4)], until=MONTH_END,
                   policy=policy(tier_mode="all"))
    prov = [d for d in out if d.status == "provisional"]
    assert [d.amount for d in prov] == [Decimal("60.00"), Decimal("120.00"), Decimal("900.00")]
    (final,) = finals(out)
    assert final.at == t("2026-03-31 23:59:59.999999")
    assert final.supersedes == tuple(d.id for d in prov)
    assert final.details["share"] == "0.15"
    assert len({d.id for d in out}) == len(out)


def test_no_final_figure_until_the_period_closes(evaluate: Evaluate) -> None:
    out = evaluate([staff(), call(2)], until=t("2026-03-31 23:59:59.999"), policy=policy())
    assert finals(out) == []
    out = evaluate([staff(), call(2)], until=t("2026-03-31 23:59:59.999999"), policy=policy())
    assert len(finals(out)) == 1


def test_salary_unknown_gives_the_share_not_an_amount(evaluate: Evaluate) -> None:
    out = evaluate([call(2, "X"), call(3, "X"), call(4, "X")], until=MONTH_END,
                   policy=policy())
    (final,) = finals(out)
    assert final.details["outcome"] == "salary_unknown"
    assert final.amount is None
    assert final.details["share_percent"] == "7"


def test_salary_and_currency_come_from_the_latest_profile(evaluate: Evaluate) -> None:
    raise_ = ev("employee.profile", "2026-03-20 00:00", employee_id="E1", role="manager",
                base_salary="7000.00", currency="USD")
    out = evaluate([staff(), call(2), raise_], until=MONTH_END, policy=policy())
    prov = [d for d in out if d.status == "provisional"]
    assert [(d.amount, d.currency) for d in prov] == [(Decimal("60.00"), "CNY")]
    (final,) = finals(out)
    assert (final.amount, final.currency) == (Decimal("70.00"), "USD")


def test_cap_and_floor(evaluate: Evaluate) -> None:
    events = [staff(salary="1000.00"), *[call(d) for d in range(2, 9)]]  # 1+1+5*5 = 27%
    assert finals(evaluate(events, until=MONTH_END, policy=policy()))[0].amount == \
        Decimal("270.00")
    capped = finals(evaluate(events, until=MONTH_END, policy=policy(cap_rate="0.2")))[0]
    assert capped.amount == Decimal("200.00")
    assert capped.details["capped"] is True
    floored = finals(evaluate(events, until=MONTH_END, policy=policy(wage_floor="900")))[0]
    assert floored.amount == Decimal("100.00")
    roomy = finals(evaluate(events, until=MONTH_END, policy=policy(cap_rate="0.5")))[0]
    assert roomy.amount == Decimal("270.00") and roomy.details["capped"] is False


def test_limit_is_decided_once_at_the_item_past_it(evaluate: Evaluate) -> None:
    rule = policy(tiers=None, basis="fixed", limit=2)
    out = evaluate([call(d) for d in (2, 3, 4, 5)], until=MONTH_END, policy=rule)
    assert [(d.details["outcome"], d.at) for d in out] == [("over_limit", t("2026-03-04 10:00"))]
    april = evaluate([call(2), call(3), ev("staff.private_call", "2026-04-01 10:00",
                                           employee_id="E1", duration_s=200)],
                     until=t("2026-05-01 00:00"), policy=rule)
    assert april == []  # the count starts again each period


def test_item_settling_with_a_table_and_a_floor(evaluate: Evaluate) -> None:
    rule = policy(events={"type": "staff.complaint"}, period=None, settle="item",
                  basis="fixed", tiers=None, tier_mode=None,
                  amount_by={"field": "severity", "values": {"minor": "5", "serious": "200"}},
                  minimum="10", kind="fine")
    out = evaluate([ev("staff.complaint", f"2026-03-02 1{i}:00", employee_id="E1",
                       source="customer", severity=s)
                    for i, s in enumerate(("minor", "serious", "moderate"))], policy=rule)
    # minor is lifted to the floor; moderate is not in the table and gets the floor
    assert [d.amount for d in out] == [Decimal("10.00"), Decimal("200.00"), Decimal("10.00")]
    assert all(d.status == "final" and d.kind == "fine" for d in out)


def test_each_item_adds_decisions_of_other_kinds(evaluate: Evaluate) -> None:
    rule = policy(events={"type": "staff.misconduct"}, period=None, settle="item",
                  basis="fixed", tiers=[{"from": 1, "amount": "0"}], tier_mode=None,
                  each_item=["violation", "sanction"], show=["kind"])
    out = evaluate([ev("staff.misconduct", "2026-03-02 10:00", employee_id="E1",
                       kind="gaming")], policy=rule)
    assert sorted(d.kind for d in out) == ["sanction", "violation"]  # a 0 fine is no fine
    assert all(d.details["kind"] == "gaming" for d in out)


def test_items_from_another_rule_s_decisions_by_outcome(evaluate: Evaluate) -> None:
    late = {"shape": "recurrence", "id": "L", "subject": {"kind": "employee",
                                                         "field": "employee_id"},
            "occurrence": {"type": "attendance.clock_in"}, "window": {"unit": "working_day"},
            "due": {"time": "work_start"}, "outcomes": {"late": "violation"}}
    rule = policy(late, events=None, decisions_of=["L"], outcomes=["late"])
    out = evaluate([staff(), ev("attendance.clock_in", "2026-03-02 08:31", employee_id="E1"),
                    ev("attendance.clock_in", "2026-03-03 08:00", employee_id="E1")],
                   until=MONTH_END, policy=rule)
    (final,) = finals(out)
    assert final.amount == Decimal("60.00")
    assert final.details["count"] == 1
    none = policy(late, events=None, decisions_of=["L"], outcomes=["early"])
    assert finals(evaluate([staff(), ev("attendance.clock_in", "2026-03-02 08:31",
                                        employee_id="E1")], until=MONTH_END, policy=none)) == []


def test_tier_for() -> None:
    spec = TariffSpec.model_validate({
        "id": "T", "events": {"type": "staff.private_call"}, "basis": "fixed",
        "tiers": [{"from": 3, "amount": "5"}, {"from": 1, "amount": "1"}]})
    assert [t.start for t in spec.tiers] == [1, 3]
    tier2, tier3 = spec.tier_for(2), spec.tier_for(3)
    assert tier2 is not None and tier2.amount == Decimal("1")
    assert tier3 is not None and tier3.amount == Decimal("5")


@pytest.mark.parametrize(("rule", "needle"), [
    ({"decisions_of": ["X"]}, "exactly one"),
    ({"events": None}, "exactly one"),
    ({"basis": "fixed"}, "amount"),
    ({"tiers": [{"from": 1, "rate": "0.01", "amount": "1"}]}, "exactly one"),
    ({"settle": "item", "tier_mode": "all"}, "settle: period"),
    ({"basis": "fixed", "tiers": None, "amount_by": None}, "nothing to do"),
    ({"basis": "fixed", "tiers": [{"from": 1, "amount": "1"}], "cap_rate": "0.2"},
     "basis: salary"),
    ({"events": {"type": "staff.private_cal"}}, "staff.private_call"),
    ({"tiers": [{"from": 1, "rate": "2"}]}, "less than or equal"),
])
def test_bad_tariffs_are_refused(rule: dict[str, Any], needle: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        policy(**rule)
    assert needle in str(err.value)


def _whole_period_pricing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every running total price its whole period afresh (the cache emptied first)."""
    incremental = _TariffRuntime._priced_rows

    def afresh(self: _TariffRuntime, label: str, *args: Any) -> Any:
        self._priced.pop(label, None)
        return incremental(self, label, *args)

    monkeypatch.setattr(_TariffRuntime, "_priced_rows", afresh)


def _dump(decisions: list[Decision]) -> list[str]:
    return [d.model_dump_json() for d in decisions]


@pytest.mark.parametrize("mode", ["all", "marginal"])
def test_running_totals_price_only_new_items_yet_equal_whole_period_pricing(
        backend: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Two employees over two months; E1's salary changes mid-March (every item re-priced at
    # the new salary), E1 reaches the 5% tier on the 3rd item (under all, the first two are
    # re-priced), a fixed minimum; and a stream with late events (state rewound) whose
    # items must be priced from the restored state, not the cache.
    events = [staff("E1"), staff("E2", salary="7777.77"),
              *[call(d, "E1") for d in (2, 3)], call(3, "E2"),
              {**profile("E1", salary="6500.00", at="2026-03-05 00:00"), "id": "p-E1-raise"},
              *[call(d, "E1") for d in (6, 9, 10)], *[call(d, "E2") for d in (11, 12, 13)],
              ev("staff.private_call", "2026-04-02 10:00", employee_id="E1", duration_s=200)]
    late = [call(4, "E1", hour=9), call(12, "E2", hour=9)]  # after the 10th/13th's items
    until = t("2026-05-01 00:00")
    rule = policy(tier_mode=mode, minimum="70")

    def run() -> tuple[list[str], list[str]]:
        batch = Engine(rule, backend=backend).evaluate([*events, *late], until=until)
        session = Engine(rule, backend=backend).session(allowed_lateness=timedelta(days=7))
        streamed = [d for e in [*events[:9], late[0], *events[9:12], late[1], events[12]]
                    for d in session.feed(e)]
        return _dump(batch), _dump(streamed + session.advance_to(until))

    incremental = run()
    _whole_period_pricing(monkeypatch)
    assert run() == incremental
    batch = incremental[0]
    assert sum('"status":"provisional"' in d for d in batch) == 12
    assert any('"rate":"0.05"' in d for d in batch)


def test_a_period_restored_with_an_item_inserted_is_priced_afresh() -> None:
    # A rewind (a late item) gives the period back as copies, an item in the middle: the
    # rows priced before must not be taken for the new list's first rows.
    pol = policy(tier_mode="marginal")
    (spec,) = pol.specs
    cached, fresh = spec.runtime(pol.info), spec.runtime(pol.info)
    assert isinstance(cached, _TariffRuntime) and isinstance(fresh, _TariffRuntime)
    salary = Decimal("6000.00")

    def item(name: str, day: int) -> list[Any]:
        return [name, f"2026-03-{day:02d}T10:00:00+08:00", None, [name]]

    before = [item("a", 2), item("b", 4)]
    cached._priced_rows("2026-03", "employee:E1", before, salary)
    after = [item("a", 2), item("late", 3), item("b", 4)]
    got = cached._priced_rows("2026-03", "employee:E1", after, salary)
    want = fresh._priced_rows("2026-03", "employee:E1", after, salary)
    assert [r["item"] for r in got.rows] == ["a", "late", "b"]
    assert (got.rows, got.evidence, got.total) == (want.rows, want.evidence, want.total)
