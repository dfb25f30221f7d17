"""Engine semantics, independent of any one policy: event time, ordering, duplicates,
determinism, batch versus streaming."""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

import pytest
from helpers import ev, t

from policykit import (
    Engine,
    EventError,
    EventOrderError,
    ParameterError,
    Policy,
)

POLICY = Policy.model_validate({
    "id": "handover-test",
    "title": "Hand over within an hour",
    "clause": "篇二 §二.4",
    "parameters": {"within": "PT1H"},
    "rules": [{
        "shape": "deadline", "id": "R3", "title": "registered handover",
        "trigger": {"type": "contact.received", "where": {"in_remit": False}},
        "key": "request_id", "within": "$within",
        "subject": {"kind": "employee", "field": "employee_id"},
        "fulfil": [{"type": "request.handed_over", "where": {"registered": True}}],
        "cancel": [{"type": "request.resolved"}],
        "escalate_to": "manager",
    }],
})


def contact(rid: str, at: str, **kw: Any) -> dict[str, Any]:
    return ev("contact.received", at, id=f"c-{rid}", request_id=rid, customer_id="C1",
              employee_id=kw.pop("employee_id", "E1"), channel="phone", topic="printer",
              in_remit=False, finish_at_once=False, **kw)


def handover(rid: str, at: str, registered: bool = True) -> dict[str, Any]:
    return ev("request.handed_over", at, id=f"h-{rid}", request_id=rid, from_employee="E1",
              to_employee="E9", to_role="manager", registered=registered)


def test_event_exactly_at_the_deadline_is_in_time() -> None:
    events = [contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 10:00")]
    assert Engine(POLICY).evaluate(events, until=t("2026-03-03 00:00")) == []


def test_one_second_after_the_deadline_is_missed_at_the_deadline() -> None:
    events = [contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 10:00:01")]
    out = Engine(POLICY).evaluate(events, until=t("2026-03-03 00:00"))
    assert sorted((d.kind, d.at) for d in out) == [("escalation", t("2026-03-02 10:00")),
                                                  ("violation", t("2026-03-02 10:00"))]
    violation = next(d for d in out if d.kind == "violation")
    assert violation.evidence == ("c-Q1",)
    assert violation.subject.id == "E1"
    assert violation.clause == "篇二 §二.4"
    assert violation.message and violation.message_zh


def test_deadlines_do_not_fire_before_until_reaches_them() -> None:
    events = [contact("Q1", "2026-03-02 09:00")]
    engine = Engine(POLICY)
    assert engine.evaluate(events, until=t("2026-03-02 09:59:59")) == []
    assert engine.evaluate(events) == []  # no horizon: nothing is judged yet
    assert len(engine.evaluate(events, until=t("2026-03-02 10:00"))) == 2


def test_decisions_are_ordered_by_time_then_id_and_deterministic() -> None:
    events = [contact(f"Q{i}", f"2026-03-02 09:{i:02d}") for i in range(10)]
    a = Engine(POLICY).evaluate(events, until=t("2026-03-03 00:00"))
    b = Engine(POLICY).evaluate(list(reversed(events)), until=t("2026-03-03 00:00"))
    assert a == b
    assert [(d.at, d.id) for d in a] == sorted((d.at, d.id) for d in a)
    assert len({d.id for d in a}) == len(a) == 20


def test_batch_equals_streaming_in_any_chunking() -> None:
    events = [contact(f"Q{i}", f"2026-03-02 {9 + i // 4:02d}:{(i * 7) % 60:02d}")
              for i in range(12)]
    events.sort(key=lambda e: e["at"])
    events.insert(5, handover("Q1", "2026-03-02 09:50"))
    events.sort(key=lambda e: (e["at"], e["id"]))
    until = t("2026-03-03 00:00")
    batch = Engine(POLICY).evaluate(events, until=until)
    for size in (1, 2, 5, len(events)):
        session = Engine(POLICY).session()
        streamed = []
        for i in range(0, len(events), size):
            streamed += session.feed_many(events[i:i + size])
        streamed += session.advance_to(until)
        assert sorted(streamed, key=lambda d: (d.at, d.id)) == batch


def test_streaming_fires_deadlines_as_event_time_passes() -> None:
    session = Engine(POLICY).session()
    assert session.feed(contact("Q1", "2026-03-02 09:00")) == []
    # Another event after the deadline brings the missed deadline with it.
    out = session.feed(contact("Q2", "2026-03-02 10:00:01"))
    assert {d.kind for d in out} == {"violation", "escalation"}
    assert session.advance_to(t("2026-03-02 11:00")) == []
    assert {d.kind for d in session.advance_to(t("2026-03-02 11:00:01"))} == {
        "violation", "escalation"}


def test_repeated_event_id_is_ignored_and_counted() -> None:
    session = Engine(POLICY).session()
    c = contact("Q1", "2026-03-02 09:00")
    session.feed(c)
    assert session.feed(c) == []
    assert session.stats.duplicates == 1 and session.stats.events == 1
    batch = Engine(POLICY).evaluate([c, c, c], until=t("2026-03-03"))
    assert len(batch) == 2


def test_event_older_than_the_clock_names_both_times() -> None:
    session = Engine(POLICY).session()
    session.feed(contact("Q1", "2026-03-02 09:00"))
    with pytest.raises(EventOrderError) as err:
        session.feed(contact("Q0", "2026-03-02 08:59"))
    assert "08:59" in str(err.value) and "09:00" in str(err.value)
    assert "c-Q0" in str(err.value)


def test_event_at_an_instant_already_advanced_to_is_late() -> None:
    session = Engine(POLICY).session()
    session.advance_to(t("2026-03-02 09:00"))
    with pytest.raises(EventOrderError):
        session.feed(contact("Q1", "2026-03-02 09:00"))
    session.feed(contact("Q2", "2026-03-02 09:00:01"))
    with pytest.raises(ParameterError):
        session.advance_to(t("2026-03-02 08:00"))


def test_same_instants_in_other_offsets_give_the_same_decisions() -> None:
    events = [contact("Q1", "2026-03-02 09:00"), contact("Q2", "2026-03-02 23:30")]
    shifted = []
    for e in events:
        moved = dict(e)
        moved["at"] = t(e["at"][:16].replace("T", " ")).astimezone(
            timezone(timedelta(hours=-5))).isoformat()
        shifted.append(moved)
    assert shifted[0]["at"].endswith("-05:00")
    until = t("2026-03-04 00:00")
    assert Engine(POLICY).evaluate(events, until=until) == \
        Engine(POLICY).evaluate(shifted, until=until)


def test_unknown_backend_is_an_error_with_a_suggestion() -> None:
    with pytest.raises(ParameterError, match="did you mean 'native'"):
        Engine(POLICY, backend="natve")


def test_advance_to_needs_an_aware_instant() -> None:
    with pytest.raises(ParameterError, match="UTC offset"):
        Engine(POLICY).session().advance_to(t("2026-03-02 09:00").replace(tzinfo=None))


@pytest.mark.parametrize("enabled", [True, False])
def test_evaluate_pauses_the_collector_and_restores_it_as_it_was(enabled: bool) -> None:
    import gc

    seen: list[bool] = []
    engine = Engine(POLICY)
    was = gc.isenabled()
    try:
        if not enabled:
            gc.disable()

        def events() -> Any:
            yield contact("R1", "2026-03-02 09:00")
            seen.append(gc.isenabled())  # read while evaluate is parsing
            yield handover("R1", "2026-03-02 11:30")  # the hour ran out at 10:00

        decisions = engine.evaluate(events())
        assert [d.details["outcome"] for d in decisions][:1] == ["missed"]
        assert seen == [False]
        assert gc.isenabled() is enabled
        with pytest.raises(EventError):
            engine.evaluate([{"id": "x", "type": "no.such"}])
        assert gc.isenabled() is enabled  # restored after a failure too
    finally:
        if was:
            gc.enable()
