"""Monotonicity of the lateness deduction (lateness-deduction, 篇四 §七): being late once
more can never make a month cheaper, whatever the tier reading, cap or floor."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, event, given
from hypothesis import strategies as st
from pk_props import PROFILE, RANDOMS, evaluate

from policykit import Decision, PolicySet, standard_pack
from policykit.calendar import DEFAULT_CALENDAR
from policykit.models.events import EVENT_TYPES
from policykit.testing import Stream, attendance_months

POLICY = "lateness-deduction"

#: The readings of R2 (and R6) the property must hold under.
VARIANTS: tuple[dict[str, Any], ...] = (
    {},
    {"tier_threshold": 4, "tier_mode": "marginal"},
    {"tier_mode": "marginal"},
    {"monthly_cap_rate": "0.20"},
    {"wage_floor": "5000.00"},
)


def _policies(variant: dict[str, Any]) -> PolicySet:
    return PolicySet([standard_pack().get(POLICY).with_parameters(**variant)])


def month_deduction(decisions: list[Decision], employee: str) -> Decimal:
    """The month's deduction as the decisions state it: the final figures not superseded by
    a later decision; before the month closes, the latest provisional figure."""
    mine = [d for d in decisions if d.policy == POLICY and d.kind == "deduction"
            and d.subject.id == employee and d.amount is not None]
    superseded = {i for d in decisions for i in d.supersedes}
    final = [d for d in mine if d.status == "final" and d.id not in superseded]
    if final:
        return sum((d.amount for d in final if d.amount is not None), Decimal(0))
    provisional = sorted((d for d in mine if d.status == "provisional"),
                         key=lambda d: (d.at, d.id))
    amount = provisional[-1].amount if provisional else None
    return amount if amount is not None else Decimal(0)


@pytest.mark.skipif(POLICY not in standard_pack(), reason="lateness-deduction not in the pack")
@PROFILE
@given(s=attendance_months(employees=1), rnd=RANDOMS,
       variant=st.sampled_from(VARIANTS))
def test_one_more_late_day_never_lowers_the_months_deduction(
        s: Stream, rnd: random.Random, variant: dict[str, Any]) -> None:
    """Invariant: adding one late clock-in on a working day of the month that had no
    clock-in never lowers the month's lateness deduction for that employee (final figure
    once the month closes, the running provisional figure before)."""
    cal = DEFAULT_CALENDAR
    assert s.until is not None
    clocked = {cal.local_date(e.at) for e in s.events if e.type == "attendance.clock_in"}
    first = cal.local_date(s.until - timedelta(days=1)).replace(day=1)
    days = [d for d in cal.working_days(first, cal.local_date(s.until)) if d not in clocked]
    assume(days)
    day = rnd.choice(days)
    late = cal.at(day, cal.work_start) + rnd.choice(
        (timedelta(microseconds=1), timedelta(seconds=1), timedelta(minutes=1),
         timedelta(minutes=29), timedelta(hours=2)))
    assume(late <= s.until)
    extra = EVENT_TYPES["attendance.clock_in"].model_validate(
        {"id": "one-more-late", "type": "attendance.clock_in", "at": late,
         "employee_id": "E1"})
    policies = _policies(variant)
    before = month_deduction(evaluate(policies, s.events, s.until), "E1")
    after = month_deduction(evaluate(policies, [*s.events, extra], s.until), "E1")
    event("raised the deduction" if after > before else "left it unchanged")
    assert after >= before, (
        f"one more late day ({late.isoformat()}) lowered the deduction from {before} to "
        f"{after} under {variant or 'the defaults'}")
