"""Ids holding the internal key separator (``\\x1f``), its escape (``\\x1b``) or other
control characters never make two cases, timers or decisions collide: keys are joined from
escaped parts (policykit/rules/_base.py ``key_part``), so a hostile id is judged exactly as
the same id with those characters renamed would be."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from conftest import Evaluate
from helpers import ev, t
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policykit import Decision, EventBase, parse_events
from policykit.models.decisions import Subject
from policykit.rules._base import (
    KEY_ESC,
    KEY_SEP,
    decision_id,
    join_key,
    key_part,
    part_value,
    split_key,
)

UNTIL = t("2026-04-01 00:00")
SEP = KEY_SEP


def build(record: dict[str, Any], **hostile: str) -> EventBase:
    """A valid event, then fields set past validation: whatever the event models refuse at
    parse time, the rules must stay collision-free for the ids they are given."""
    (event,) = parse_events([record])
    return event.model_copy(update=hostile)


def shape(out: list[Decision], rename: dict[str, str] | None = None) -> Counter[tuple[str, ...]]:
    """What was decided, with hostile ids renamed: rule, outcome, subject and evidence."""
    def r(x: str) -> str:
        for a, b in (rename or {}).items():
            x = x.replace(a, b)
        return x
    return Counter((d.rule, str(d.details.get("outcome")), r(d.subject.id),
                    *sorted(r(e) for e in d.evidence)) for d in out)


def contact(rid: str, at: str, **kw: Any) -> dict[str, Any]:
    return ev("contact.received", at, request_id=rid, customer_id="C1", employee_id="E1",
              topic="printer", channel="phone", in_remit=True, finish_at_once=False,
              major=False, **kw)


def test_request_id_shaped_like_a_warning_timer_keeps_its_missed_deadline(
        evaluate: Evaluate) -> None:
    hostile = [build(contact("x", "2026-03-02 09:00", id="c1"), request_id="w" + SEP + "REQ-1"),
               build(contact("REQ-1", "2026-03-02 09:05", id="c2"))]
    plain = [build(contact("w~REQ-1", "2026-03-02 09:00", id="c1")),
             build(contact("REQ-1", "2026-03-02 09:05", id="c2"))]
    got = evaluate(hostile, until=UNTIL, policy="first-responder")
    want = evaluate(plain, until=UNTIL, policy="first-responder")
    assert want  # the plain log has missed deadlines to lose
    assert shape(got) == shape(want)
    assert "w" + SEP + "REQ-1" in {d.details.get("key") for d in got}


def test_a_two_field_key_starting_with_w_is_not_read_as_a_warning(evaluate: Evaluate) -> None:
    # An ordinary id: post "w" made the R3 deadline key "w<sep>G1", the old warning tag.
    out = evaluate([ev("shift.started", "2026-03-02 08:00", post_id="w", guard_id="G1")],
                   until=t("2026-03-02 12:00"), policy="shift-handover")
    r3 = [d for d in out if d.rule == "R3"]
    assert [d.details["outcome"] for d in r3] == ["missed"]
    assert r3[0].details["key"] == "w/G1" and r3[0].details["post_id"] == "w"


def shift_end(event_id: str) -> list[EventBase]:
    return [build(ev("shift.started", "2026-03-02 08:00", id="s1", post_id="P1",
                     guard_id="A")),
            build(ev("shift.started", "2026-03-02 19:55", id="s2", post_id="P1",
                     guard_id="B")),
            build(ev("shift.ended", "2026-03-02 20:00", id="x", post_id="P1", guard_id="A"),
                  id=event_id)]


def test_shift_end_id_with_separator_keeps_handover_r2(evaluate: Evaluate) -> None:
    until = t("2026-03-03 00:00")
    got = evaluate(shift_end("end" + SEP + "1"), until=until, policy="shift-handover")
    want = evaluate(shift_end("end~1"), until=until, policy="shift-handover")
    assert [d.rule for d in want if d.rule == "R2"] == ["R2"]
    assert shape(got, {SEP: "~"}) == shape(want)
    (r2,) = [d for d in got if d.rule == "R2"]
    assert r2.details["event"] == "end" + SEP + "1" and r2.evidence[0] == "end" + SEP + "1"


def test_guard_and_post_ids_cannot_borrow_another_case(evaluate: Evaluate) -> None:
    def log(sep: str) -> list[EventBase]:
        return [build(ev("shift.started", "2026-03-02 08:00", id="s1", post_id="P",
                         guard_id="G"), guard_id="X" + sep + "G1"),
                build(ev("shift.equipment_checked", "2026-03-02 08:10", id="k1", post_id="P",
                         guard_id="G1"), post_id="P" + sep + "X")]
    until = t("2026-03-02 12:00")
    got = evaluate(log(SEP), until=until, policy="shift-handover")
    want = evaluate(log("~"), until=until, policy="shift-handover")
    assert ("R3", "missed") in {(d.rule, d.details["outcome"]) for d in want}
    assert shape(got, {SEP: "~"}) == shape(want)
    (r3,) = [d for d in got if d.rule == "R3"]
    assert r3.subject.id == "X" + SEP + "G1" and r3.details["guard_id"] == "X" + SEP + "G1"


def test_two_site_access_violations_get_two_decision_ids(evaluate: Evaluate) -> None:
    def visitor(event_id: str, guard: str) -> EventBase:
        return build(ev("visitor.arrived", "2026-03-02 10:00", id="v", visit_id="V1",
                        post_id="GATE", employee_id="G", has_id_document=False,
                        registered=True, admitted=True), id=event_id, employee_id=guard)
    out = evaluate([visitor("x", "G" + SEP + "A"), visitor("A" + SEP + "x", "G")],
                   policy="site-access")
    assert len(out) == 2
    assert len({d.id for d in out}) == 2


# --- the encoding itself -----------------------------------------------------------------

ids = st.text(alphabet=st.sampled_from(["a", "b", "w", "/", "\\", SEP, KEY_ESC, "e", "s",
                                        "\x00", "\n", "\x1e"]), max_size=6)


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(ids, min_size=1, max_size=4), st.lists(ids, min_size=1, max_size=4))
def test_distinct_key_tuples_give_distinct_keys(a: list[str], b: list[str]) -> None:
    assert split_key(join_key(a)) == a
    if len(a) == len(b) and a != b:
        assert join_key(a) != join_key(b)
    for part in a:
        assert SEP not in key_part(part)
        assert part_value(key_part(part)) == part


@settings(max_examples=300, deadline=None, database=None)
@given(ids, st.lists(ids, min_size=1, max_size=3), ids, st.lists(ids, min_size=1, max_size=3))
def test_distinct_subjects_and_keys_give_distinct_decision_ids(
        s1: str, k1: list[str], s2: str, k2: list[str]) -> None:
    at = datetime(2026, 3, 2, tzinfo=UTC)

    def did(s: str, k: list[str]) -> str:
        return decision_id("p", "1", "R1", "occurred", Subject(kind="employee", id=s or "?"),
                           join_key(k), at, "final")
    if ((s1 or "?"), k1) != ((s2 or "?"), k2) and len(k1) == len(k2):
        assert did(s1, k1) != did(s2, k2)


@given(st.text(alphabet=st.characters(blacklist_characters=[SEP, KEY_ESC])))
def test_ordinary_ids_keep_their_plain_keys(value: str) -> None:
    assert key_part(value) == value
    assert join_key([value, value]) == value + SEP + value


# --- end to end: a hostile id is judged as the same id renamed --------------------------

_hostile_ids = st.sampled_from(["P", "G1", "X", "w", "P" + SEP + "X", "X" + SEP + "G1",
                                "w" + SEP + "G1", KEY_ESC + "s", SEP, KEY_ESC]) | st.text(
    alphabet=st.sampled_from(["P", "G", "w", "1", SEP, KEY_ESC, "e", "s"]), min_size=1,
    max_size=4)
RENAME = {SEP: "~S~", KEY_ESC: "~E~"}


def _rename(value: str) -> str:
    for a, b in RENAME.items():
        value = value.replace(a, b)
    return value


@settings(max_examples=60, deadline=None, database=None)
@given(st.lists(st.tuples(_hostile_ids, _hostile_ids, st.booleans()), min_size=1, max_size=4))
@example([("P", "X" + SEP + "G1", False), ("P" + SEP + "X", "G1", True)])
@example([("w", "G1", False), ("G1", "w" + SEP + "G1", False)])
def test_hostile_ids_are_judged_like_the_same_ids_renamed(
        shifts: list[tuple[str, str, bool]]) -> None:
    from policykit import Engine, standard_pack

    engine = Engine(standard_pack().get("shift-handover"))

    def log(name: Any) -> list[EventBase]:
        out: list[EventBase] = []
        for i, (post, guard, checked) in enumerate(shifts):
            at = f"2026-03-02 0{i}:00"
            out.append(build(ev("shift.started", at, id=f"s{i}", post_id="p", guard_id="g"),
                             post_id=name(post), guard_id=name(guard)))
            if checked:
                out.append(build(ev("shift.equipment_checked", at, id=f"k{i}", post_id="p",
                                    guard_id="g"), post_id=name(post), guard_id=name(guard)))
        return out

    got = engine.evaluate(log(lambda x: x), until=t("2026-03-02 12:00"))
    want = engine.evaluate(log(_rename), until=t("2026-03-02 12:00"))
    assert Counter((d.rule, d.details["outcome"], _rename(d.subject.id), d.evidence)
                   for d in got) == \
        Counter((d.rule, d.details["outcome"], d.subject.id, d.evidence) for d in want)
    assert len({d.id for d in got}) == len(got)
