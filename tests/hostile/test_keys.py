"""Ids holding the internal key separator (``\\x1f``), its escape (``\\x1b``) or other
control characters never make two cases, timers or decisions collide: keys are joined from
escaped parts (policykit/rules/_base.py ``key_part``), so a hostile id is judged exactly as
the same id with those characters renamed would be."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

import pytest
from helpers import Evaluate, ev, t
from hypothesis import example, given, settings
from hypothesis import strategies as st

from policykit import Decision, Engine, EventBase, EventError, loads_policy, parse_events
from policykit.audit import audit
from policykit.models.decisions import Subject
from policykit.rules._base import (
    KEY_ESC,
    KEY_SEP,
    decision_id,
    join_key,
    key_part,
    part_value,
    split_key,
    value_part,
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


# -- key values of other types than str (review 14: str(v) joined 1 and "1" into one case) --

TICKET_POLICY = """
id: tt
version: "1"
title: T
clause: c
rules:
  - shape: deadline
    id: R1
    title: ticket answered
    trigger: {type: contact.received}
    key: [meta.ticket]
    within: PT1H
    fulfil:
      - {type: request.resolved}
    subject: {kind: employee, field: employee_id}
"""

TYPED_PAIRS = [(["a", "b"], "['a', 'b']"), (1, "1"), (True, "True"), (1.0, "1.0"),
               ({"k": 1}, "{'k': 1}"), (1, 1.0), (True, 1), ([1], ["1"])]


def ticket_contact(i: int, ticket: Any, emp: str) -> dict[str, Any]:
    return {**contact(f"R{i}", f"2026-03-02 08:0{i}", id=f"c{i}", meta={"ticket": ticket}),
            "employee_id": emp}


def resolved(i: int, ticket: Any) -> dict[str, Any]:
    return ev("request.resolved", f"2026-03-02 08:1{i}", id=f"r{i}", request_id=f"R{i}",
              employee_id="E9", meta={"ticket": ticket})


@pytest.mark.parametrize(("a", "b"), TYPED_PAIRS)
def test_key_values_of_other_types_never_share_a_case(backend: str, a: Any, b: Any) -> None:
    pol = loads_policy(TICKET_POLICY)
    until = t("2026-03-03 00:00")
    both = Engine(pol, backend=backend).evaluate(
        [ticket_contact(1, a, "E1"), ticket_contact(2, b, "E2")], until=until)
    assert sorted((d.subject.id, d.details["outcome"]) for d in both) == [
        ("E1", "missed"), ("E2", "missed")]
    crossed = Engine(pol, backend=backend).evaluate(
        [ticket_contact(1, a, "E1"), resolved(1, b)], until=until)
    assert [(d.subject.id, d.details["outcome"]) for d in crossed] == [("E1", "missed")]
    same = Engine(pol, backend=backend).evaluate(
        [ticket_contact(1, a, "E1"), resolved(1, a)], until=until)
    assert [d.details["outcome"] for d in same] == []


@given(st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                 st.lists(st.text(max_size=3), max_size=3)), st.text(max_size=12))
@settings(max_examples=200, deadline=None)
def test_a_typed_part_is_no_string_part(value: Any, text: str) -> None:
    assert value_part(value) != value_part(text)
    assert value_part(text) == key_part(text)  # string ids keep their keys
    assert split_key(join_key(["x"]) + SEP + value_part(value)) == ["x", str(value)]


# -- subject ids from free-form paths (review 14: "", "a\nb", lists reached decisions) ------

WHO_POLICY = """
id: tt
version: "1"
title: T
clause: c
rules:
  - shape: forbidden
    id: R1
    title: x
    event: {type: complaint.benefit_received}
    subject: {kind: employee, field: meta.who}
  - shape: tariff
    id: R2
    title: y
    events: {type: complaint.benefit_received}
    subject: {kind: employee, field: meta.who}
    tiers: [{from: 1, amount: "10"}]
"""

BAD_WHO = ["", "a\x1fb", "a\nb", "\x7f", 5, 1.5, True, ["E1"], {"a": 1}]


def benefit(i: int, who: Any) -> dict[str, Any]:
    return ev("complaint.benefit_received", f"2026-03-02 08:0{i}", id=f"b{i}",
              complaint_id="C1", employee_id="E1", meta={"who": who})


@pytest.mark.parametrize("who", BAD_WHO)
def test_a_subject_that_is_no_id_is_refused(backend: str, who: Any) -> None:
    pol = loads_policy(WHO_POLICY)
    with pytest.raises(EventError) as info:
        Engine(pol, backend=backend).evaluate([benefit(1, who)], until=UNTIL)
    assert info.value.problems[0][:2] == ("meta.who", who)
    assert info.value.event_id == "b1"
    session = Engine(pol, backend=backend).session()
    with pytest.raises(EventError):
        session.feed(benefit(1, who))
    assert session.stats.rejected == 1
    # Refused before anything was applied: the session goes on.
    assert {d.subject.id for d in session.feed(benefit(2, "W2"))} == {"W2"}


def test_an_audit_quarantines_them_and_keeps_the_rest(backend: str) -> None:
    events = [benefit(1, "W1"), *(benefit(i + 2, w) for i, w in enumerate(BAD_WHO[:6])),
              benefit(9, "W9")]
    report = audit(events, loads_policy(WHO_POLICY), until=UNTIL, backend=backend)
    assert [q.event_id for q in report.quarantine] == [f"b{i + 2}" for i in range(6)]
    assert {d.subject.id for d in report.trail} == {"W1", "W9"}
