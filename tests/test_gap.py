"""The *gap* shape's boundaries: a beat exactly ``max_gap`` after the last is in time and one
second later the violation has already fired (at the moment the gap was reached); stop
events; repeat; occupancy (a post left empty); active periods (holiday days, hours, past
midnight); populations; validation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from helpers import Evaluate, ev, profile, t

from policykit import Decision, Engine, Policy
from policykit.calendar import format_duration
from policykit.errors import PolicyFileError
from policykit.rules._scope import Active


def policy(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "shape": "gap", "id": "R1", "title": "patrol round",
        "event": {"type": "patrol.round"},
        "key": "route_id",
        "max_gap": "PT2H",
        "subject": {"kind": "route", "field": "route_id"},
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    return Policy.model_validate({"id": "gap-test", "title": "gap test", "clause": "篇一",
                                  "rules": [base]})


def round_(at: str, route: str = "N", **kw: Any) -> dict[str, Any]:
    return ev("patrol.round", at, route_id=route, guard_id="G1", **kw)


def gaps(out: list[Decision]) -> list[tuple[str, str]]:
    return [(d.subject.id, d.at.isoformat()) for d in out if d.details["outcome"] == "gap"]


# -- exact boundaries -------------------------------------------------------------------


def test_beat_exactly_at_max_gap_is_in_time(evaluate: Evaluate) -> None:
    out = evaluate([round_("2026-03-02 00:00"), round_("2026-03-02 02:00")],
                   until=t("2026-03-02 03:00"), policy=policy())
    assert out == []


def test_one_second_late_fires_at_the_moment_the_gap_is_reached(evaluate: Evaluate) -> None:
    first = round_("2026-03-02 00:00", id="r1")
    out = evaluate([first, round_("2026-03-02 02:00:01")], until=t("2026-03-02 03:00"),
                   policy=policy())
    assert len(out) == 1
    d = out[0]
    assert d.at == t("2026-03-02 02:00")  # not at the late round
    assert d.kind == "violation" and d.subject.id == "N" and d.subject.kind == "route"
    assert d.evidence == ("r1",)
    assert d.details["last_event"] == "r1"
    assert d.details["gap"] == "PT2H" and d.details["gap_seconds"] == 7200
    assert d.details["route_id"] == "N"


def test_gap_not_judged_before_until_reaches_it(evaluate: Evaluate) -> None:
    out = evaluate([round_("2026-03-02 00:00")], until=t("2026-03-02 01:59:59"), policy=policy())
    assert out == []


def test_keys_are_independent(evaluate: Evaluate) -> None:
    events = [round_("2026-03-02 00:00", "N"), round_("2026-03-02 00:30", "S"),
              round_("2026-03-02 01:50", "N")]
    out = evaluate(events, until=t("2026-03-02 03:00"), policy=policy())
    assert gaps(out) == [("S", "2026-03-02T02:30:00+08:00")]


def test_once_per_gap_unless_repeat(evaluate: Evaluate) -> None:
    events = [round_("2026-03-02 00:00")]
    once = evaluate(events, until=t("2026-03-02 07:00"), policy=policy())
    assert [d.at for d in once] == [t("2026-03-02 02:00")]
    again = evaluate(events, until=t("2026-03-02 07:00"), policy=policy(repeat=True))
    assert [d.at for d in again] == [t("2026-03-02 02:00"), t("2026-03-02 04:00"),
                                     t("2026-03-02 06:00")]
    assert len({d.id for d in again}) == 3


def test_next_beat_after_a_gap_starts_a_new_one(evaluate: Evaluate) -> None:
    events = [round_("2026-03-02 00:00"), round_("2026-03-02 03:00")]
    out = evaluate(events, until=t("2026-03-02 06:00"), policy=policy())
    assert [d.at for d in out] == [t("2026-03-02 02:00"), t("2026-03-02 05:00")]


def test_stop_closes_the_key(evaluate: Evaluate) -> None:
    pol = policy(event={"type": "security.unsafe_reported"}, key="case_id",
                 stop=[{"type": "security.unsafe_closed"}],
                 subject={"kind": "case", "field": "case_id"})
    events = [ev("security.unsafe_reported", "2026-03-02 10:00", case_id="K", employee_id="G"),
              ev("security.unsafe_closed", "2026-03-02 11:00", case_id="K", employee_id="G")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=pol) == []
    out = evaluate(events[:1], until=t("2026-03-03 00:00"), policy=pol)
    assert [d.at for d in out] == [t("2026-03-02 12:00")]


def test_where_filters_beats(evaluate: Evaluate) -> None:
    pol = policy(event={"type": "patrol.round", "where": {"guard_id": "G1"}})
    events = [round_("2026-03-02 00:00"),
              ev("patrol.round", "2026-03-02 01:00", route_id="N", guard_id="X")]
    assert [d.at for d in evaluate(events, until=t("2026-03-02 03:00"), policy=pol)] == [
        t("2026-03-02 02:00")]


# -- occupancy --------------------------------------------------------------------------


def occupancy_policy(**kw: Any) -> Policy:
    return policy(event=None, key="post_id", max_gap="PT30M",
                  occupancy={"enter": {"type": "shift.started"},
                             "leave": {"type": "shift.ended"}, "occupant": "guard_id"},
                  subject={"kind": "post", "field": "post_id"}, **kw)


def shift(kind: str, at: str, guard: str, post: str = "P1", **kw: Any) -> dict[str, Any]:
    return ev(f"shift.{kind}", at, post_id=post, guard_id=guard, **kw)


def test_occupancy_gap_starts_when_the_post_becomes_empty(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"),
              shift("started", "2026-03-02 19:50", "B"),
              shift("ended", "2026-03-02 20:00", "A"),      # B still there: no gap
              shift("ended", "2026-03-03 08:00", "B", id="end-b")]
    out = evaluate(events, until=t("2026-03-03 12:00"), policy=occupancy_policy())
    assert len(out) == 1
    d = out[0]
    assert d.at == t("2026-03-03 08:30") and d.subject.id == "P1"
    assert d.evidence == ("end-b",) and d.details["last_by"] == "B"


def test_occupancy_relief_within_the_gap_is_no_violation(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"),
              shift("ended", "2026-03-02 20:00", "A"),
              shift("started", "2026-03-02 20:30", "B")]     # exactly max_gap: in time
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=occupancy_policy()) == []
    late = [*events[:2], shift("started", "2026-03-02 20:30:01", "B")]
    assert len(evaluate(late, until=t("2026-03-03 00:00"), policy=occupancy_policy())) == 1


# -- active periods ---------------------------------------------------------------------


def holiday_policy(**kw: Any) -> Policy:
    rule: dict[str, Any] = {
        "event": {"type": "duty.check"}, "key": [], "max_gap": "PT4H",
        "active": {"days": "holidays", "hours": ["08:00", "22:00"]},
        "population": {"start": {"type": "employee.profile",
                                 "where": {"role": "customer_service"}},
                       "field": "employee_id"},
        "subject": {"kind": "department", "id": "customer_service"},
    }
    rule.update(kw)
    return policy(**rule)


def check(at: str, **kw: Any) -> dict[str, Any]:
    return ev("duty.check", at, employee_id="C1", target="www", **kw)


def test_active_period_starts_a_fresh_gap_each_day(evaluate: Evaluate) -> None:
    # 2026-10-03 is a National Day holiday; a check at 07:59 is before the hours.
    events = [profile("C1", at="2026-10-03 00:00"), check("2026-10-03 07:59")]
    out = evaluate(events, until=t("2026-10-03 23:00"), policy=holiday_policy())
    assert [d.at for d in out] == [t("2026-10-03 12:00")]
    d = out[0]
    assert d.subject.kind == "department" and d.subject.id == "customer_service"
    assert d.details["window_start"] == "2026-10-03T08:00:00+08:00"
    assert d.details["window_end"] == "2026-10-03T22:00:00+08:00"
    assert d.details["since"] == "2026-10-03T08:00:00+08:00"
    assert d.evidence[-1] == "p-C1"   # the profile that made customer service staffed


def test_gap_reaching_the_end_of_the_hours_is_none(evaluate: Evaluate) -> None:
    ok = [check(f"2026-10-03 {h:02d}:00") for h in (8, 12, 16, 18)]
    events = [profile("C1", at="2026-10-03 00:00"), *ok]
    out = evaluate(events, until=t("2026-10-03 23:59"), policy=holiday_policy())
    assert out == []                      # 18:00 + 4h = 22:00, the end of the hours
    short = [profile("C1", at="2026-10-03 00:00"), *ok[:3], check("2026-10-03 17:59:59")]
    out = evaluate(short, until=t("2026-10-03 23:59"), policy=holiday_policy())
    assert [d.at for d in out] == [t("2026-10-03 21:59:59")]


def test_no_staff_no_duty(evaluate: Evaluate) -> None:
    out = evaluate([profile("T1", role="tech_service", at="2026-09-01 09:00")],
                   until=t("2026-10-08 00:00"), policy=holiday_policy())
    assert out == []


def test_population_leaving_ends_the_duty(evaluate: Evaluate) -> None:
    events = [profile("C1", at="2026-09-28 09:00"),
              ev("employee.profile", "2026-10-02 23:00", employee_id="C1", role="manager",
                 base_salary="8000.00")]
    out = evaluate(events, until=t("2026-10-08 00:00"), policy=holiday_policy())
    assert [d.at.date().isoformat() for d in out] == ["2026-10-01", "2026-10-02"]


def test_staff_joining_mid_day_arms_from_then(evaluate: Evaluate) -> None:
    events = [profile("C1", at="2026-10-01 10:30")]
    out = evaluate(events, until=t("2026-10-01 23:00"), policy=holiday_policy())
    assert [d.at for d in out] == [t("2026-10-01 14:30")]


def test_keyed_chain_without_population_starts_at_first_beat(evaluate: Evaluate) -> None:
    pol = policy(event={"type": "duty.check"}, key="target", max_gap="PT4H",
                 active={"days": "all", "hours": ["08:00", "22:00"]},
                 subject={"kind": "site", "field": "target"})
    events = [check("2026-03-02 09:00")]
    out = evaluate(events, until=t("2026-03-03 23:00"), policy=pol)
    # 13:00 on day one; day two starts afresh at 08:00 and fires at 12:00
    assert [d.at for d in out] == [t("2026-03-02 13:00"), t("2026-03-03 12:00")]


def test_overnight_hours() -> None:
    cal = Policy.model_validate({"id": "x-y", "title": "x", "clause": "x", "rules": []}).calendar
    night = Active(days="all", hours=("22:00", "06:00"))
    assert night.next_interval(cal, t("2026-03-02 23:00")) == (t("2026-03-02 22:00"),
                                                               t("2026-03-03 06:00"))
    assert night.next_interval(cal, t("2026-03-03 07:00")) == (t("2026-03-03 22:00"),
                                                               t("2026-03-04 06:00"))
    holidays = Active(days="holidays", hours=("08:00", "22:00"))
    # the next holiday day after the Spring Festival week is Qingming
    assert holidays.next_interval(cal, t("2026-02-23 22:00")) == (t("2026-04-04 08:00"),
                                                                  t("2026-04-04 22:00"))
    # the calendar has no 2027 data: the search ends instead of guessing
    assert holidays.next_interval(cal, t("2026-10-08 00:00")) is None


def test_whole_day_windows_merge_across_midnight() -> None:
    cal = Policy.model_validate({"id": "x-y", "title": "x", "clause": "x", "rules": []}).calendar
    whole = Active(days="holidays")
    assert whole.next_interval(cal, t("2026-10-02 12:00")) == (t("2026-10-01 00:00"),
                                                               t("2026-10-08 00:00"))


# -- streaming, validation, helpers -----------------------------------------------------


def test_streaming_equals_batch() -> None:
    events = [profile("C1", at="2026-09-28 09:00"), check("2026-10-01 09:00"),
              check("2026-10-01 15:00"), check("2026-10-02 11:00")]
    engine = Engine(holiday_policy())
    batch = engine.evaluate(events, until=t("2026-10-03 00:00"))
    with engine.session() as s:
        streamed = [d for e in events for d in s.feed(e)] + s.advance_to(t("2026-10-03 00:00"))
    assert [d.id for d in batch] == [d.id for d in sorted(streamed, key=lambda d: (d.at, d.id))]
    assert len(batch) == 3


@pytest.mark.parametrize("rule, message", [
    ({"occupancy": {"enter": {"type": "shift.started"}, "leave": {"type": "shift.ended"},
                    "occupant": "guard_id"}}, "exactly one of event, occupancy"),
    ({"max_gap": "PT0S"}, "longer than zero"),
    ({"max_gap": "P1M"}, "years or months"),
    ({"key": "routeid"}, "route_id"),
    ({"key": [], "population": {"start": {"type": "employee.profile"},
                                "field": "employee_id"}},
     "fixed subject"),
    ({"active": {"hours": ["08:00", "25:00"]}}, "HH:MM"),
])
def test_validation(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        policy(**rule)


def test_format_duration() -> None:
    assert format_duration(timedelta(minutes=1)) == "PT1M"
    assert format_duration(timedelta(hours=2, seconds=1)) == "PT2H1S"
    assert format_duration(timedelta(days=1, hours=2)) == "P1DT2H"
    assert format_duration(timedelta(0)) == "PT0S"
