"""shift-handover (交接班制度, 篇一): scenarios written from the rulebook, one or more per rule,
each failing when its rule is broken. Edges: a guard leaving one minute before the relief
arrives; a handover across midnight; a handover with no record; patrol rounds exactly 2 h
and 2 h + 1 s apart."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from helpers import Evaluate, ev, t

from policykit import Decision

POLICY = "shift-handover"


def start(at: str, guard: str, post: str = "P1", checks: bool = True,
          **kw: Any) -> list[dict[str, Any]]:
    """A guard taking the post, with the turnout and equipment checks done (checks=True)."""
    out = [ev("shift.started", at, post_id=post, guard_id=guard, **kw)]
    if checks:
        later = t(at).replace(second=30)
        out.append(ev("shift.turnout_checked", later, post_id=post, guard_id=guard,
                      uniform=True, badge=True))
        out.append(ev("shift.equipment_checked", later, post_id=post, guard_id=guard))
    return out


def end(at: str, guard: str, post: str = "P1", **kw: Any) -> dict[str, Any]:
    return ev("shift.ended", at, post_id=post, guard_id=guard, **kw)


def record(at: str, frm: str, to: str, post: str = "P1", **kw: Any) -> dict[str, Any]:
    return ev("shift.handover_recorded", at, post_id=post, from_guard=frm, to_guard=to, **kw)


def handover(at_relief: str, at_leave: str, frm: str, to: str, post: str = "P1",
             record_at: str | None = None) -> list[dict[str, Any]]:
    """A proper change of guard: relief arrives, record, the outgoing guard leaves."""
    return [*start(at_relief, to, post), record(record_at or at_relief, frm, to, post),
            end(at_leave, frm, post)]


def rules(out: list[Decision]) -> list[str]:
    return sorted(d.spec_rule for d in out)


def only(out: list[Decision], rule: str) -> list[Decision]:
    return [d for d in out if d.rule == rule]


def day_and_night(day: str = "2026-03-02") -> list[dict[str, Any]]:
    """A clean 24 hours at post P1: A 08:00-20:00, B 20:00-08:00, C from 08:00."""
    nxt = f"{day[:-2]}{int(day[-2:]) + 1:02d}"
    return [*start(f"{day} 08:00", "A"),
            *handover(f"{day} 19:55", f"{day} 20:00", "A", "B"),
            *handover(f"{nxt} 07:55", f"{nxt} 08:00", "B", "C")]


def test_a_clean_day_and_night_has_no_decisions(evaluate: Evaluate) -> None:
    assert evaluate(day_and_night(), until=t("2026-03-03 12:00"), policy=POLICY) == []


# -- R1 no leaving before relief --------------------------------------------------------


def test_r1_leaving_one_minute_before_the_relief_arrives(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 19:59", "A", id="a-off"),
              *start("2026-03-02 20:00", "B"), record("2026-03-02 20:01", "A", "B")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    assert rules(out) == ["R1"]
    d = out[0]
    assert d.kind == "violation" and d.severity == "high"
    assert d.subject.kind == "employee" and d.subject.id == "A"
    assert d.details["waited_seconds"] == 60 and d.details["waited"] == "PT1M"
    assert d.at == t("2026-03-02 20:00") and "a-off" in d.evidence
    assert "uncovered for PT1M" in d.message and "崗位空缺 PT1M" in d.message_zh


def test_r1_relief_exactly_at_departure_is_fine(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A", id="0-end"),
              *start("2026-03-02 20:00", "B"), record("2026-03-02 20:00", "A", "B")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY) == []


def test_r1_across_midnight(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 16:00", "A"), end("2026-03-02 23:50", "A"),
              *start("2026-03-03 00:10", "B"), record("2026-03-03 00:05", "A", "B")]
    out = evaluate(events, until=t("2026-03-03 06:00"), policy=POLICY)
    assert rules(out) == ["R1"] and out[0].details["waited"] == "PT20M"


def test_r1_however_late_the_relief_comes(evaluate: Evaluate) -> None:
    # 接班人員未上崗，不準下崗: leaving before the relief arrives is R1 with the uncovered
    # time even when the relief comes twelve hours later (the pack used to stop blaming the
    # guard after an hour and leave the stretch to R4 alone).
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A", id="a-off"),
              *start("2026-03-03 08:00", "B", id="b-on")]
    out = evaluate(events, until=t("2026-03-03 12:00"), policy=POLICY)
    (r1,) = only(out, "R1")
    assert r1.subject.id == "A" and r1.at == t("2026-03-03 08:00")
    assert r1.details["waited"] == "PT12H" and r1.evidence == ("a-off", "b-on")
    assert [d.at for d in only(out, "R4")] == [t("2026-03-02 21:00")]


def test_r1_the_guard_coming_back_ends_the_uncovered_time(evaluate: Evaluate) -> None:
    # A leaves at 20:00 with nobody there and is back at 21:30; B relieves A properly the
    # next morning. The post stood empty 90 minutes, not until B came.
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
              *start("2026-03-02 21:30", "A"),
              *handover("2026-03-03 07:55", "2026-03-03 08:00", "A", "B")]
    out = evaluate(events, until=t("2026-03-03 12:00"), policy=POLICY)
    (r1,) = only(out, "R1")
    assert r1.at == t("2026-03-02 21:30") and r1.details["waited"] == "PT1H30M"


# -- R2 handover record -----------------------------------------------------------------


def test_r2_handover_across_midnight_is_fine(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 16:00", "A"),
              *handover("2026-03-02 23:55", "2026-03-03 00:05", "A", "B",
                        record_at="2026-03-03 00:02")]
    assert evaluate(events, until=t("2026-03-03 06:00"), policy=POLICY) == []


def test_r2_handover_with_no_record(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), *start("2026-03-02 19:55", "B"),
              end("2026-03-02 20:00", "A", id="a-end")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    assert rules(out) == ["R2"]
    d = out[0]
    assert d.subject.id == "A" and d.at == t("2026-03-02 20:15")
    assert d.evidence[0] == "a-end" and d.details["reason"] == "missing"


def test_r2_no_record_owed_when_no_relief_comes(evaluate: Evaluate) -> None:
    # A change of guard needs a relief taking the post. A leaves, nobody comes: there was
    # nobody to hand over to, so no R2 (the pack asked a record of every shift end); the
    # empty post is R4's.
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    assert rules(out) == ["R4"]
    old = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY,
                   record_only_with_relief=False)
    assert rules(old) == ["R2", "R4"] and only(old, "R2")[0].at == t("2026-03-02 20:15")


def test_r2_a_relief_within_record_within_is_a_change_of_guard(evaluate: Evaluate) -> None:
    # B takes the post five minutes after A left: a change of guard (late: R1), and the
    # handover record is owed as usual.
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A", id="a-end"),
              *start("2026-03-02 20:05", "B")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    assert rules(out) == ["R1", "R2"]
    r2 = only(out, "R2")[0]
    assert r2.at == t("2026-03-02 20:15") and r2.evidence[0] == "a-end"
    with_record = [*events, record("2026-03-02 20:06", "A", "B")]
    assert rules(evaluate(with_record, until=t("2026-03-03 00:00"), policy=POLICY)) == ["R1"]
    # B only after the record window: nobody was there to hand over to; R1 alone.
    later = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
             *start("2026-03-02 20:30", "B")]
    assert rules(evaluate(later, until=t("2026-03-03 00:00"), policy=POLICY)) == ["R1"]


def test_r2_record_limits(evaluate: Evaluate) -> None:
    base = [*start("2026-03-02 08:00", "A"), *start("2026-03-02 19:40", "B"),
            end("2026-03-02 20:00", "A")]
    for when, ok in (("2026-03-02 19:45", True), ("2026-03-02 20:15", True),
                     ("2026-03-02 19:44:59", False), ("2026-03-02 20:15:01", False)):
        out = evaluate([*base, record(when, "A", "B")], until=t("2026-03-03 00:00"),
                       policy=POLICY)
        assert rules(out) == ([] if ok else ["R2"]), when


def test_r2_record_must_name_both_guards(evaluate: Evaluate) -> None:
    base = [*start("2026-03-02 08:00", "A"), *start("2026-03-02 19:55", "B"),
            end("2026-03-02 20:00", "A")]
    for wrong in (record("2026-03-02 20:01", "X", "B"), record("2026-03-02 20:01", "A", "A"),
                  record("2026-03-02 20:01", "A", "B", post="P2")):
        assert rules(evaluate([*base, wrong], until=t("2026-03-03 00:00"),
                              policy=POLICY)) == ["R2"]


def test_r2_require_signatures(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), *start("2026-03-02 19:55", "B"),
              record("2026-03-02 19:58", "A", "B", signed_by=["A"]), end("2026-03-02 20:00", "A")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY) == []
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY, require_signatures=True)
    assert rules(out) == ["R2"] and out[0].details["reason"] == "unsigned"


# -- R3 equipment check -----------------------------------------------------------------


def test_r3_equipment_check(evaluate: Evaluate) -> None:
    def shift_with_check(at: str | None) -> list[dict[str, Any]]:
        out = [ev("shift.started", "2026-03-02 08:00", post_id="P1", guard_id="A"),
               ev("shift.turnout_checked", "2026-03-02 08:01", post_id="P1", guard_id="A",
                  uniform=True, badge=True)]
        if at:
            out.append(ev("shift.equipment_checked", at, post_id="P1", guard_id="A"))
        return out

    assert evaluate(shift_with_check("2026-03-02 08:30"), until=t("2026-03-02 12:00"),
                    policy=POLICY) == []
    late = evaluate(shift_with_check("2026-03-02 08:30:01"), until=t("2026-03-02 12:00"),
                    policy=POLICY)
    assert rules(late) == ["R3"] and late[0].at == t("2026-03-02 08:30")
    none = evaluate(shift_with_check(None), until=t("2026-03-02 12:00"), policy=POLICY)
    assert rules(none) == ["R3"] and none[0].subject.id == "A"


def test_r3_every_shift_is_checked_not_only_the_first(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
              *start("2026-03-02 20:00", "B"), record("2026-03-02 20:00", "A", "B"),
              end("2026-03-03 08:00", "B"),
              ev("shift.started", "2026-03-03 08:00", post_id="P1", guard_id="A"),
              ev("shift.turnout_checked", "2026-03-03 08:01", post_id="P1", guard_id="A",
                 uniform=True, badge=True),
              record("2026-03-03 08:00", "B", "A")]
    out = evaluate(events, until=t("2026-03-03 12:00"), policy=POLICY)
    assert rules(out) == ["R3"] and out[0].at == t("2026-03-03 08:30")


# -- R4 coverage ------------------------------------------------------------------------


def test_r4_post_nobody_takes(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A", id="a-left")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    r4 = only(out, "R4")
    assert len(r4) == 1
    d = r4[0]
    assert d.subject.kind == "post" and d.subject.id == "P1" and d.at == t("2026-03-02 21:00")
    assert d.evidence == ("a-left",) and d.details["last_by"] == "A"
    assert not only(out, "R1")        # not explained by R1: nobody came


def test_r4_and_r1_a_gap_longer_than_the_wait_is_both(evaluate: Evaluate) -> None:
    # relief 59 minutes late: R1 with the uncovered time, no R4
    soon = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
            *start("2026-03-02 20:59", "B"), record("2026-03-02 20:10", "A", "B")]
    assert rules(evaluate(soon, until=t("2026-03-03 00:00"), policy=POLICY)) == ["R1"]
    # relief two hours late: the post's R4 at 21:00 and the guard's R1 at 22:00 (the
    # catalogue sets no limit on R1; before issue 16 this was R4 alone)
    late = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
            *start("2026-03-02 22:00", "B"), record("2026-03-02 20:10", "A", "B")]
    out = evaluate(late, until=t("2026-03-03 00:00"), policy=POLICY)
    assert [(d.rule, d.at) for d in out] == [("R4", t("2026-03-02 21:00")),
                                             ("R1", t("2026-03-02 22:00"))]
    assert only(out, "R1")[0].details["waited"] == "PT2H"
    # late_relief_cap equal to max_uncovered: each stretch once, as R1 or as R4
    capped = evaluate(late, until=t("2026-03-03 00:00"), policy=POLICY,
                      late_relief_cap="PT1H")
    assert rules(capped) == ["R4"]
    assert rules(evaluate(soon, until=t("2026-03-03 00:00"), policy=POLICY,
                          late_relief_cap="PT1H")) == ["R1"]


def test_r4_exempt_posts(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A", post="GATE"),
              end("2026-03-02 20:00", "A", post="GATE")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY, exempt_posts=["GATE"])
    assert out == []
    # Nobody relieves A: the post is R4's; no handover record is owed (nobody to hand over to)
    assert rules(evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)) == ["R4"]


def test_r4_max_uncovered_parameter(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 20:00", "A"),
              *start("2026-03-02 20:20", "B"), record("2026-03-02 20:10", "A", "B")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY, max_uncovered="PT15M")
    assert [(d.rule, d.at) for d in out] == [("R4", t("2026-03-02 20:15")),
                                             ("R1", t("2026-03-02 20:20"))]


# -- R5 patrols -------------------------------------------------------------------------


def patrol(at: str, route: str = "NORTH") -> dict[str, Any]:
    return ev("patrol.round", at, route_id=route, guard_id="A")


def test_r5_patrol_gap_exactly_two_hours_is_fine(evaluate: Evaluate) -> None:
    events = [patrol("2026-03-02 22:00"), patrol("2026-03-03 00:00"), patrol("2026-03-03 02:00")]
    assert evaluate(events, until=t("2026-03-03 03:59:59"), policy=POLICY) == []


def test_r5_patrol_gap_two_hours_and_one_second(evaluate: Evaluate) -> None:
    events = [patrol("2026-03-02 22:00"), patrol("2026-03-03 00:00:01")]
    out = evaluate(events, until=t("2026-03-03 02:00"), policy=POLICY)
    assert rules(out) == ["R5"]
    d = out[0]
    assert d.subject.kind == "route" and d.subject.id == "NORTH"
    assert d.at == t("2026-03-03 00:00") and d.details["gap_seconds"] == 7200


def test_r5_night_rounds_count_like_day_rounds(evaluate: Evaluate) -> None:
    events = [patrol("2026-03-02 23:00"), patrol("2026-03-03 03:00"), patrol("2026-03-03 03:30",
                                                                               route="SOUTH")]
    out = evaluate(events, until=t("2026-03-03 04:00"), policy=POLICY)
    assert [(d.subject.id, d.at) for d in out] == [("NORTH", t("2026-03-03 01:00"))]


# -- R6 turnout -------------------------------------------------------------------------


def test_r6_turnout_failed_or_missing(evaluate: Evaluate) -> None:
    def shift(uniform: bool | None, badge: bool = True) -> list[dict[str, Any]]:
        out = [ev("shift.started", "2026-03-02 08:00", post_id="P1", guard_id="A"),
               ev("shift.equipment_checked", "2026-03-02 08:05", post_id="P1", guard_id="A")]
        if uniform is not None:
            out.append(ev("shift.turnout_checked", "2026-03-02 08:02", post_id="P1",
                          guard_id="A", uniform=uniform, badge=badge))
        return out

    assert evaluate(shift(True), until=t("2026-03-02 12:00"), policy=POLICY) == []
    failed = evaluate(shift(True, badge=False), until=t("2026-03-02 12:00"), policy=POLICY)
    assert rules(failed) == ["R6"] and failed[0].at == t("2026-03-02 08:02")
    assert failed[0].details["outcome"] == "incomplete" and "badge" in failed[0].details["missing"]
    missing = evaluate(shift(None), until=t("2026-03-02 12:00"), policy=POLICY)
    assert rules(missing) == ["R6"] and missing[0].at == t("2026-03-02 08:30")
    assert missing[0].details["outcome"] == "missed"


# -- R7 suspicious persons, cases, unsafe situations ------------------------------------


def test_r7a_suspicious_person_recorded(evaluate: Evaluate) -> None:
    def checked(recorded: bool) -> dict[str, Any]:
        return ev("security.suspicious_checked", "2026-03-02 10:00", post_id="P1",
                  employee_id="A", subject="person", recorded=recorded)

    assert evaluate([checked(True)], policy=POLICY) == []
    out = evaluate([checked(False)], policy=POLICY)
    assert rules(out) == ["R7a"] and out[0].subject.id == "A"


def test_r7b_criminal_case_to_police_within_two_hours(evaluate: Evaluate) -> None:
    opened = ev("security.case_opened", "2026-03-02 10:00", case_id="K1", employee_id="A")

    def police(at: str) -> dict[str, Any]:
        return ev("security.case_to_police", at, case_id="K1", employee_id="A")

    assert evaluate([opened, police("2026-03-02 12:00")], until=t("2026-03-02 18:00"),
                    policy=POLICY) == []
    out = evaluate([opened, police("2026-03-02 12:00:01")], until=t("2026-03-02 18:00"),
                   policy=POLICY)
    assert rules(out) == ["R7b"] and out[0].at == t("2026-03-02 12:00")
    assert out[0].severity == "high"


def unsafe(kind: str, at: str, case: str = "U1") -> dict[str, Any]:
    return ev(f"security.unsafe_{kind}", at, case_id=case, employee_id="A")


def test_r7c_unsafe_situation_reported_within_30_minutes(evaluate: Evaluate) -> None:
    found = unsafe("found", "2026-03-02 10:00")
    ok = [found, unsafe("reported", "2026-03-02 10:30"), unsafe("closed", "2026-03-02 11:00")]
    assert evaluate(ok, until=t("2026-03-02 18:00"), policy=POLICY) == []
    late = [found, unsafe("reported", "2026-03-02 10:30:01"),
            unsafe("closed", "2026-03-02 11:00")]
    out = evaluate(late, until=t("2026-03-02 18:00"), policy=POLICY)
    assert rules(out) == ["R7c"] and out[0].at == t("2026-03-02 10:30")


def test_r7d_updates_until_closed(evaluate: Evaluate) -> None:
    events = [unsafe("found", "2026-03-02 10:00"), unsafe("reported", "2026-03-02 10:10"),
              unsafe("reported", "2026-03-02 12:10")]
    out = evaluate(events, until=t("2026-03-02 18:00"), policy=POLICY)
    assert rules(out) == ["R7d"] and out[0].at == t("2026-03-02 14:10")
    assert out[0].subject.kind == "case" and out[0].subject.id == "U1"
    closed = [*events, unsafe("closed", "2026-03-02 14:00")]
    assert evaluate(closed, until=t("2026-03-02 18:00"), policy=POLICY) == []


def test_decisions_are_final_and_cite_the_clause(evaluate: Evaluate) -> None:
    events = [*start("2026-03-02 08:00", "A"), end("2026-03-02 19:59", "A"),
              *start("2026-03-02 20:00", "B")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=POLICY)
    assert out and all(d.clause == "篇一" and d.status == "final" for d in out)
    assert all(isinstance(d.at, datetime) for d in out)
