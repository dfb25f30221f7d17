"""Batched Rete matching on the durable backend (issue 8).

``Session.feed_many`` parses events a chunk at a time and hands each chunk to the evaluator
ahead of applying it (``EvaluatorSession.prepare``); the durable session matches the chunk
in a few engine calls (``DurableRuleset.assert_facts``/``retract_facts``) and keeps each
event's hits for that very event object. These tests hold the batched path to the native
backend and to the one-event durable path (decisions equal, ids included), check that the
batched path is the one actually taken, and walk its edges: event types no rule reads,
events with equal messages, batch and chunk boundaries, a bad event in the middle of a
chunk, late events replayed by the lateness window. Durable tests are skipped where
durable_rules cannot load."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import ev, t

from bench.generate import generate
from policykit import Decision, Engine, EventError, PolicySet, standard_pack
from policykit.engine import _durable_adapter as da
from policykit.engine._durable import _DurableSession
from policykit.engine._durable_adapter import (
    DurableCapacityError,
    DurableRuleset,
    FieldEq,
    Match,
    MessageError,
    Rule,
    RulesetClosedError,
    RulesetSpec,
)
from policykit.engine.session import drop_corrected
from policykit.models.events import EventBase
from policykit.models.parsing import iter_events, parse_event

ROOT = Path(__file__).resolve().parents[1]

AVAILABLE, WHY = da.durable_available()
needs_durable = pytest.mark.skipif(not AVAILABLE, reason=f"durable_rules unavailable: {WHY}")
BACKENDS = ["native", pytest.param("durable", marks=needs_durable)]

EXAMPLE = ROOT / "policykit" / "examples" / "acme-2026-03.jsonl"
MARCH_END = t("2026-04-01 00:00")
BAD = {"id": "bad-1", "type": "attendance.clock_in", "at": "not a time", "employee_id": "E1"}


def dumped(decisions: Iterable[Decision]) -> list[dict[str, Any]]:
    return [d.model_dump() for d in decisions]


def example() -> list[dict[str, Any]]:
    """The bundled example: 4,166 events of March 2026."""
    return [json.loads(line) for line in EXAMPLE.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def generated() -> list[dict[str, Any]]:
    return list(generate(12, 2, 7))  # 3,863 events over March-April 2026


def one_by_one(policies: PolicySet, events: Iterable[Any],
               until: Any = None) -> list[Decision]:
    """What ``Engine.evaluate`` does, through ``Session.feed`` (the one-event path)."""
    parsed = sorted(drop_corrected(iter_events(list(events))), key=lambda e: (e.at, e.id))
    out: list[Decision] = []
    with Engine(policies, backend="durable").session() as session:
        for event in parsed:
            out += session.feed(event)
        if until is not None:
            out += session.advance_to(until)
    return sorted(out, key=lambda d: (d.at, d.id))


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the durable ruleset calls: one-event asserts, batches and the facts in them."""
    counts: Counter[str] = Counter()
    single = DurableRuleset.assert_fact
    batch = DurableRuleset.assert_facts

    def assert_fact(self: DurableRuleset, fact: Any) -> str:
        counts["assert_fact"] += 1
        return single(self, fact)

    def assert_facts(self: DurableRuleset, facts: Iterable[Any]) -> list[str]:
        facts = list(facts)
        counts["assert_facts"] += 1
        counts["facts"] += len(facts)
        return batch(self, facts)

    monkeypatch.setattr(DurableRuleset, "assert_fact", assert_fact)
    monkeypatch.setattr(DurableRuleset, "assert_facts", assert_facts)
    return counts


# --------------------------------------------------------------------------------------------
# The same decisions as native and as the one-event path


@needs_durable
@pytest.mark.parametrize("log", ["example", "generated"])
def test_batched_decisions_equal_native_and_one_by_one(log: str, calls: Counter[str]) -> None:
    events = example() if log == "example" else generated()
    until = MARCH_END if log == "example" else None
    pack = standard_pack()
    native = Engine(pack).evaluate(events, until=until)
    batched = Engine(pack, backend="durable").evaluate(events, until=until)
    # Every event went through a batch: not one took the one-event path.
    assert calls["assert_fact"] == 0 and calls["assert_facts"] > 0
    calls.clear()
    single = one_by_one(pack, events, until)
    assert calls["assert_facts"] == 0 and calls["assert_fact"] > 0
    assert len(native) > 50
    assert dumped(batched) == dumped(native)
    assert dumped(single) == dumped(native)


@needs_durable
def test_every_prepared_hit_equals_the_one_event_hit(calls: Counter[str]) -> None:
    events = list(iter_events(example()))
    session = _DurableSession(standard_pack())
    try:
        alone = [session.matched(e) for e in events]
        assert calls["assert_fact"] > 0
        calls.clear()
        for start in range(0, len(events), 1024):
            chunk = events[start:start + 1024]
            session.prepare(chunk)
            assert [session.matched(e) for e in chunk] == alone[start:start + 1024]
        assert calls["assert_fact"] == 0
        # Events with equal messages share one fact, and each of them still gets the hits.
        assert calls["facts"] < len(events) / 5
        messages = Counter(tuple(session._message(e).items()) for e in events)
        shared = [e for e, hits in zip(events, alone, strict=True)
                  if hits and messages[tuple(session._message(e).items())] > 1]
        assert len(shared) > 100
    finally:
        session.close()


# --------------------------------------------------------------------------------------------
# Edges of a batch


@needs_durable
def test_event_types_no_rule_reads_are_not_sent(calls: Counter[str]) -> None:
    pack = standard_pack().select("lateness-deduction")
    events = list(iter_events(example()))
    session = _DurableSession(pack)
    try:
        unread = [e for e in events if e.type not in session._kinds]
        read = [e for e in events if e.type in session._kinds]
        assert unread and read
        session.prepare(events)
        held = {id(e) for e, _hits in session._prepared.values()}
        assert held == {id(e) for e in read}
        assert all(session.matched(e) == frozenset() for e in unread)
        assert calls["assert_fact"] == 0
    finally:
        session.close()
    native = Engine(pack).evaluate(example(), until=MARCH_END)
    assert native
    assert dumped(Engine(pack, backend="durable").evaluate(example(), until=MARCH_END)) \
        == dumped(native)


@needs_durable
def test_equal_events_each_get_their_hits_in_one_batch_and_across_batches() -> None:
    pack = standard_pack()
    late = [parse_event(ev("attendance.clock_in", "2026-03-02 08:45", id=f"in-{i}",
                           employee_id="E1")) for i in range(3)]
    session = _DurableSession(pack)
    try:
        expected = session.matched(late[0])
        assert expected  # the lateness rules read clock-ins
        session.prepare(late)
        assert [session.matched(e) for e in late] == [expected] * 3
        for _ in range(2):  # again: the facts of the earlier batch are gone, not deduplicated
            session.prepare(late[:1])
            assert session.matched(late[0]) == expected
    finally:
        session.close()


@needs_durable
def test_an_event_not_prepared_goes_the_one_event_way(calls: Counter[str]) -> None:
    session = _DurableSession(standard_pack())
    try:
        a = parse_event(ev("attendance.clock_in", "2026-03-02 08:45", employee_id="E1"))
        twin = parse_event(dict(a.model_dump(mode="json")))  # equal, but another object
        session.prepare([a])
        assert calls["assert_fact"] == 0
        assert session.matched(twin) == session.matched(a)
        assert calls["assert_fact"] == 1  # the twin; a took its prepared hits
        assert session.matched(a) and calls["assert_fact"] == 2  # taken once only
    finally:
        session.close()


@needs_durable
@pytest.mark.parametrize("batch_size", [1, 2, 7])
def test_batch_size_edges(batch_size: int, monkeypatch: pytest.MonkeyPatch,
                          calls: Counter[str]) -> None:
    monkeypatch.setattr(_DurableSession, "batch_size", batch_size)
    pack = standard_pack()
    events = example()
    durable = Engine(pack, backend="durable").evaluate(events, until=MARCH_END)
    assert calls["assert_fact"] == 0
    # Each call carries at most batch_size facts, and there are more calls than chunks.
    assert calls["facts"] <= calls["assert_facts"] * batch_size
    assert calls["assert_facts"] > 5
    assert dumped(durable) == dumped(Engine(pack).evaluate(events, until=MARCH_END))


@needs_durable
@pytest.mark.parametrize("count", [1, 1023, 1024, 1025, 2049])
def test_chunk_edges_of_feed_many(count: int) -> None:
    events = generated()[:count]
    pack = standard_pack()
    expected = Engine(pack).evaluate(events)
    assert dumped(Engine(pack, backend="durable").evaluate(events)) == dumped(expected)
    assert dumped(one_by_one(pack, events)) == dumped(expected)


@pytest.mark.slow
@needs_durable
def test_duplicates_and_late_events_in_a_window_session() -> None:
    events = sorted(example(), key=lambda e: e["at"])[:3000]
    events[1200], events[1300] = events[1300], events[1200]  # one late event, in-window
    events.insert(2000, dict(events[1500]))  # a redelivery: same id, ignored
    results = []
    for backend in ("native", "durable"):
        with Engine(standard_pack(), backend=backend).session(
                allowed_lateness=timedelta(days=2)) as session:
            out = session.feed_many(events)
            out += session.advance_to(MARCH_END)
            results.append((dumped(out), dataclasses.asdict(session.stats)))
    assert results[0][1]["late"] >= 1 and results[0][1]["duplicates"] == 1
    assert results[1] == results[0]


# --------------------------------------------------------------------------------------------
# feed_many: a failure mid-chunk surfaces at its event, the events before it applied


def _fed_then(backend: str, events: Sequence[Any]) -> tuple[Any, ...]:
    """(error, stats, decisions after advancing) of feed_many over ``events``."""
    with Engine(standard_pack(), backend=backend).session() as session:
        error: BaseException | None = None
        try:
            session.feed_many(events)
        except EventError as exc:
            error = exc
        stats = dataclasses.asdict(session.stats)
        after = dumped(session.advance_to(MARCH_END))
    return (None if error is None else str(error)), stats, after


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("position", [0, 1, 1023, 1024, 1500])
def test_a_bad_event_mid_chunk(backend: str, position: int) -> None:
    good = sorted(example(), key=lambda e: e["at"])[:2100]
    events = [*good[:position], BAD, *good[position:]]
    error, stats, after = _fed_then(backend, events)
    assert error is not None and "bad-1" in error
    # As if the events before it were fed one at a time and the bad one was refused there.
    with Engine(standard_pack(), backend=backend).session() as session:
        for e in good[:position]:
            session.feed(e)
        with pytest.raises(EventError):
            session.feed(BAD)
        assert stats == dataclasses.asdict(session.stats)
        assert stats["events"] == position
        assert after == dumped(session.advance_to(MARCH_END))


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_source_mid_chunk(backend: str) -> None:
    good = sorted(example(), key=lambda e: e["at"])[:1500]

    class SourceBroke(RuntimeError):
        pass

    def source() -> Iterator[dict[str, Any]]:
        yield from good[:1100]
        raise SourceBroke("the log file went away")

    with Engine(standard_pack(), backend=backend).session() as session:
        with pytest.raises(SourceBroke):
            session.feed_many(source())
        stats = dataclasses.asdict(session.stats)
        tail = session.feed_many(good[1100:]) + session.advance_to(MARCH_END)
    with Engine(standard_pack(), backend=backend).session() as session:
        session.feed_many(good[:1100])
        assert stats == dataclasses.asdict(session.stats) and stats["events"] == 1100
        expected = session.feed_many(good[1100:]) + session.advance_to(MARCH_END)
    assert tail and dumped(tail) == dumped(expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_one_shot_iterator_keeps_what_follows_a_failure(backend: str) -> None:
    """Events are read ahead only from a sequence: from a generator, an event refused
    mid-way leaves every later event unread, so the caller can go on with them."""
    good = sorted(example(), key=lambda e: e["at"])[:1500]
    source = iter([*good[:700], BAD, *good[700:]])
    with Engine(standard_pack(), backend=backend).session() as session:
        with pytest.raises(EventError) as info:
            session.feed_many(source)
        assert session.stats.events == 700
        before: list[Decision] = info.value.decisions  # type: ignore[attr-defined]
        rest = list(source)
        assert rest == good[700:]
        after = session.feed_many(rest) + session.advance_to(MARCH_END)
    with Engine(standard_pack(), backend=backend).session() as session:
        expected = session.feed_many(good) + session.advance_to(MARCH_END)
    assert before  # the first 700 events decided something, and it was not lost
    assert dumped(before + after) == dumped(expected)


# --------------------------------------------------------------------------------------------
# The adapter's batch calls


BATCH_SPEC = RulesetSpec(
    rules=(
        Rule("big", (Match("e", "item", (FieldEq("size", 1),)),)),
        Rule("ok", (Match("e", "probe", (FieldEq("ok", 1),)),)),
        Rule("note", (Match("e", "note"),)),
    ),
    kinds=("item", "note", "probe"),
)


@pytest.fixture
def rs() -> Iterator[DurableRuleset]:
    if not AVAILABLE:
        pytest.skip(f"durable_rules unavailable: {WHY}")
    with DurableRuleset("batch", BATCH_SPEC) as ruleset:
        yield ruleset


def engine_fact_ids(ruleset: DurableRuleset) -> set[str]:
    """What the C engine holds, read from the engine itself (nothing on an unopened sid)."""
    core = ruleset._core
    if not core.opened:
        return set()
    return {str(f["id"]) for f in core.ruleset.get_facts("0")}


def rules_fired(ruleset: DurableRuleset) -> list[str]:
    return sorted(f["rule"] for f in ruleset.drain())


def test_assert_facts_is_assert_fact_in_turn(rs: DurableRuleset) -> None:
    live = rs.assert_fact({"kind": "item", "size": 1, "key": "A"})
    assert rules_fired(rs) == ["big"]
    ids = rs.assert_facts([
        {"kind": "item", "size": 1, "key": "A"},  # equal to a live fact: its id, no firing
        {"kind": "item", "size": 1, "key": "B"},
        {"kind": "item", "size": 1, "key": "B"},  # equal to the one before: same id
        {"kind": "note", "key": "B"},
    ])
    assert ids[0] == live and ids[1] == ids[2] and len(set(ids)) == 3
    assert rules_fired(rs) == ["big", "note"]
    assert set(rs._facts) == engine_fact_ids(rs) == set(ids)
    assert rs.pending_count() == 3
    assert rs.assert_facts([]) == []


def test_a_fact_matching_nothing_holds_back_no_firing(rs: DurableRuleset) -> None:
    # durable's own Host.assert_facts raises here and runs no action at all.
    ids = rs.assert_facts([{"kind": "probe", "ok": 0}, {"kind": "probe", "ok": 1},
                           {"kind": "probe", "ok": 2}])
    assert len(set(ids)) == 3
    assert rules_fired(rs) == ["ok"]
    assert rs.unhandled == 2
    assert set(rs._facts) == engine_fact_ids(rs) == {ids[1]}


def test_a_bad_fact_sends_none(rs: DurableRuleset) -> None:
    with pytest.raises(MessageError, match="float"):
        rs.assert_facts([{"kind": "item", "size": 1, "key": "A"},
                         {"kind": "item", "size": 0.5, "key": "B"}])
    with pytest.raises(MessageError, match="not declared"):
        rs.assert_facts([{"kind": "item", "size": 1}, {"kind": "nope"}])
    assert rs.drain() == [] and rs.pending_count() == 0 and engine_fact_ids(rs) == set()
    assert not rs._core.opened  # not even the session was opened


def test_retract_facts(rs: DurableRuleset) -> None:
    ids = rs.assert_facts([{"kind": "item", "size": 1, "key": k} for k in "ABC"])
    rs.drain()
    with pytest.raises(MessageError, match="fact ids"):
        rs.retract_facts([ids[0], 7])  # type: ignore[list-item]
    assert engine_fact_ids(rs) == set(ids)  # nothing retracted
    assert rs.retract_facts([ids[0], ids[0], "no-such-id", ids[2]]) == 2
    assert set(rs._facts) == engine_fact_ids(rs) == {ids[1]}
    # Retracted content is no longer "live": asserting it again fires again.
    again = rs.assert_facts([{"kind": "item", "size": 1, "key": "A"}])
    assert again[0] not in ids and rules_fired(rs) == ["big"]
    assert rs.retract_facts([]) == 0


def test_engine_memory_error_is_a_capacity_error(rs: DurableRuleset,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    rs.assert_fact({"kind": "item", "size": 1, "key": "A"})  # opens the sid
    rs.drain()
    real = rs._core.durable.native

    class OutOfMemory:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def assert_facts(self, *args: Any) -> Any:
            raise MemoryError

    monkeypatch.setattr(rs._core, "durable",
                        dataclasses.replace(rs._core.durable, native=OutOfMemory()))
    with pytest.raises(DurableCapacityError):
        rs.assert_facts([{"kind": "item", "size": 1, "key": "B"}])
    assert set(rs._facts) == engine_fact_ids(rs)  # the bookkeeping is still the engine's
    assert rs.drain() == []


def test_a_closed_ruleset_refuses_batches(rs: DurableRuleset) -> None:
    rs.close()
    with pytest.raises(RulesetClosedError):
        rs.assert_facts([{"kind": "item", "size": 1}])
    with pytest.raises(RulesetClosedError):
        rs.retract_facts(["1"])


@needs_durable
def test_prepare_survives_an_engine_failure(monkeypatch: pytest.MonkeyPatch,
                                            calls: Counter[str]) -> None:
    """A batch the engine fails on is left to the one-event path (which meets the failure
    at its own event, or succeeds), and leaves no fact behind."""
    session = _DurableSession(standard_pack())
    try:
        events: list[EventBase] = [parse_event(ev("attendance.clock_in", "2026-03-02 08:45",
                                                  employee_id=f"E{i}")) for i in range(3)]
        expected = session.matched(events[0])

        def broken(self: DurableRuleset, facts: Any) -> list[str]:
            raise da.DurableEngineError("engine hiccup")

        monkeypatch.setattr(DurableRuleset, "assert_facts", broken)
        calls.clear()
        session.prepare(events)
        assert session._prepared == {}
        assert [session.matched(e) for e in events] == [expected] * 3
        assert calls["assert_fact"] == 3
        assert session._ruleset is not None and session._ruleset.pending_count() == 0
    finally:
        session.close()
