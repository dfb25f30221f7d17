"""Invariants of the engine over the whole standard pack, on generated event streams.

Every property runs on the pack as shipped (Asia/Shanghai, PRC holidays and make-up days)
and on the pack with a Berlin site calendar (DST changes): each example draws one of the
two. The streams come from ``policykit.testing.pack_streams``: coherent lives of requests,
guard rotas, projects, attendance months, incidents and complaints, plus unrelated events of
every type, with times on the boundaries that break rules. Counterexamples found are kept as
explicit ``@example``s (see docs/testing.md, "Property suite").
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from hypothesis import example, given
from pk_props import (
    PROFILE,
    RANDOMS,
    Case,
    cases,
    chunking,
    diff,
    evaluate,
    in_other_offsets,
    shuffled,
    stream,
    with_copies,
)

from policykit import DEFAULT_DEDUPE_WINDOW, EventBase
from policykit.testing import EventFactory


def _promise_due_before_it_was_made() -> Case:
    # Found by test_evidence_exists_and_is_not_later_than_the_decision: a reply promised at
    # 10:00 for 09:00 the same day was judged missed at 09:00, citing the 10:00 event (the
    # deadline shape now lets such a deadline fall due at the event).
    f = EventFactory(start="2026-03-02 10:00")
    f.make("reply.promised", question_id="Q1", employee_id="E1",
           promised_by=f.time("2026-03-02 09:00"))
    return Case("shanghai", f.stream(until="2026-03-02 10:00"))


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_same_input_same_decisions_and_ids(case: Case, rnd: random.Random) -> None:
    """Invariant: evaluating the same events with the same ``until`` twice, on two engines,
    gives equal decisions, ids included."""
    s = case.stream
    first = evaluate(case.policies, s.events, s.until)
    second = evaluate(case.policies, s.events, s.until)
    assert first == second, diff(first, second)


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_arrival_order_does_not_change_decisions(case: Case, rnd: random.Random) -> None:
    """Invariant: any arrival order of the same events, evaluated in batch with the same
    ``until``, gives the same decisions."""
    s = case.stream
    expected = evaluate(case.policies, s.events, s.until)
    got = evaluate(case.policies, shuffled(s.events, rnd), s.until)
    assert got == expected, diff(expected, got)


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_duplicate_deliveries_change_nothing(case: Case, rnd: random.Random) -> None:
    """Invariant: delivering some events again (same id, same content, re-read from the
    wire form) changes no decision, in batch or in streaming (where a copy may arrive after
    the clock has passed its time). A session remembering every id ignores every copy; one
    with the default dedupe window ignores the copies within it and refuses, as too old,
    exactly the copies older than it."""
    s = case.stream
    expected = evaluate(case.policies, s.events, s.until)
    doubled = with_copies(s.sorted(), rnd)
    batch = evaluate(case.policies, doubled, s.until)
    assert batch == expected, diff(expected, batch)
    streamed = stream(case.policies, doubled, s.until, dedupe_window=None)
    assert streamed == expected, diff(expected, streamed)
    refused: list[EventBase] = []
    windowed = stream(case.policies, doubled, s.until, refused=refused)
    assert windowed == expected, diff(expected, windowed)
    clock = None
    too_old = []
    for ev in doubled:  # what a window of DEFAULT_DEDUPE_WINDOW must refuse
        if clock is not None and ev.at < clock - DEFAULT_DEDUPE_WINDOW:
            too_old.append(ev.id)
        else:
            clock = ev.at if clock is None else max(clock, ev.at)
    assert [e.id for e in refused] == too_old


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_batch_equals_streaming_in_any_chunking(case: Case, rnd: random.Random) -> None:
    """Invariant: feeding the events one by one into a session (in event-time order), with
    ``advance_to`` between chunks at instants before the next event, then advancing to
    ``until``, gives exactly the decisions of the batch evaluation; with or without an
    allowed-lateness window."""
    s = case.stream
    ordered = s.sorted()
    cuts, pauses = chunking(ordered, rnd)
    lateness = rnd.choice((None, timedelta(days=1)))
    expected = evaluate(case.policies, s.events, s.until)
    got = stream(case.policies, ordered, s.until, cuts=cuts, pauses=pauses,
                 allowed_lateness=lateness)
    assert got == expected, diff(expected, got)


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
@example(case=_promise_due_before_it_was_made(), rnd=random.Random(0))
def test_evidence_exists_and_is_not_later_than_the_decision(case: Case,
                                                             rnd: random.Random) -> None:
    """Invariant: every violation cites at least one event; every decision's evidence is
    ids of events in the input, none of them later than the decision."""
    s = case.stream
    by_id = {e.id: e for e in s.events}
    for d in evaluate(case.policies, s.events, s.until):
        if d.kind == "violation":
            assert d.evidence, f"violation without evidence: {d}"
        for ev_id in d.evidence:
            assert ev_id in by_id, f"{d.policy} {d.rule} cites {ev_id!r}, not an input event"
            assert by_id[ev_id].at <= d.at, (
                f"{d.policy} {d.rule} {d.kind} at {d.at.isoformat()} cites {ev_id!r} at "
                f"{by_id[ev_id].at.isoformat()}, after the decision")


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_decision_ids_are_unique(case: Case, rnd: random.Random) -> None:
    """Invariant: no two decisions of one evaluation share an id."""
    s = case.stream
    seen: dict[str, object] = {}
    for d in evaluate(case.policies, s.events, s.until):
        assert d.id not in seen, f"id {d.id} twice:\n{seen[d.id]}\n{d}"
        seen[d.id] = d


@pytest.mark.slow
@PROFILE
@given(case=cases(), rnd=RANDOMS)
def test_other_utc_offsets_give_the_same_decisions(case: Case, rnd: random.Random) -> None:
    """Invariant: the same instants written with other UTC offsets (every date-time field of
    every event, and ``until``) give the same decisions: ids, times, figures and messages."""
    s = case.stream
    shifted = in_other_offsets(s, rnd)
    expected = evaluate(case.policies, s.events, s.until)
    got = evaluate(case.policies, shifted.events, shifted.until)
    assert got == expected, diff(expected, got)
