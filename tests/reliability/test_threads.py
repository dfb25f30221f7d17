"""A Session shared by threads gives the decisions of one thread: every feed is atomic under
the session's lock, duplicates racing each other are counted once, snapshots taken while
other threads feed are consistent."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from reliability_logs import comparable, effective, horizon, models, month_log, policies

from policykit import Decision, Engine, EventBase
from policykit.checkpoint import CheckpointStore

THREADS = 8


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    # Make the interpreter switch threads every few microseconds, so feeds really interleave.
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def in_threads(work: Callable[[int], list[Decision]]) -> list[list[Decision]]:
    results: list[list[Decision]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def body(n: int) -> None:
        try:
            start.wait()
            results[n] = work(n)
        except BaseException as exc:  # surfaced below: a lost exception would hide a bug
            errors.append(exc)

    threads = [threading.Thread(target=body, args=(n,)) for n in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def log() -> list[EventBase]:
    return models(month_log(21, employees=10, days=20))


def test_eight_threads_feeding_the_whole_stream_apply_each_event_once(
        log: list[EventBase]) -> None:
    """Every thread feeds every event, in order: each is applied by whichever thread comes
    first and is a counted duplicate for the seven others; each decision is returned once,
    to one thread; together they are exactly the single-thread decisions."""
    engine = Engine(policies())
    single = engine.session()
    expected = single.feed_many(log) + single.advance_to(horizon(days=20))
    session = engine.session()
    per_thread = in_threads(lambda n: [d for e in log for d in session.feed(e)])
    got = [d for batch in per_thread for d in batch] + session.advance_to(horizon(days=20))
    assert Counter(d.id for d in got) == Counter(d.id for d in expected)
    assert {d.id: d for d in got} == {d.id: d for d in expected}
    assert session.stats.events == len(log)
    assert session.stats.duplicates == (THREADS - 1) * len(log)
    assert session.stats.decisions == len(expected)


def test_eight_threads_sharing_one_iterator_with_allowed_lateness(
        log: list[EventBase]) -> None:
    """Threads take the next event from a shared iterator and feed it without further
    coordination, so events reach the session slightly out of order. With
    allowed_lateness the session repairs the order exactly: what a consumer holds after
    revocations and revisions equals the single-thread, in-order result."""
    engine = Engine(policies())
    until = horizon(days=20)
    expected = {d.id: d for d in engine.evaluate(log, until=until)}
    session = engine.session(allowed_lateness=timedelta(days=40), checkpoint_every=8)
    source = iter(log)
    take = threading.Lock()

    def work(_n: int) -> list[Decision]:
        out: list[Decision] = []
        while True:
            with take:
                event = next(source, None)
            if event is None:
                return out
            out += session.feed(event)

    got = [d for batch in in_threads(work) for d in batch] + session.advance_to(until)
    assert effective(got) == comparable(expected)
    assert session.stats.events == len(log) and session.stats.rejected == 0
    assert len({d.id for d in got}) == len(got)
    assert session.stats.late > 0  # the threads did deliver out of order


def test_snapshots_taken_while_threads_feed_are_consistent(log: list[EventBase]) -> None:
    engine = Engine(policies())
    session = engine.session()
    snapshots: list[bytes] = []
    half = len(log) // THREADS

    def work(n: int) -> list[Decision]:
        if n == 0:
            while len(snapshots) < 20:
                snapshots.append(session.snapshot())
            return []
        return [d for e in log[:half * n] for d in session.feed(e)]

    in_threads(work)
    for snap in snapshots:
        restored = engine.restore(snap)
        # A snapshot is a state between two feeds: the counts agree with the ids it holds,
        # and the stream continues from it to the same end.
        assert restored.stats.events == len(restored._seen)
        rest = [e for e in log if e.id not in restored._seen]
        restored.feed_many(rest)
        assert restored.stats.events == len(log)


def test_one_checkpoint_store_shared_by_eight_threads(tmp_path: Path,
                                                      log: list[EventBase]) -> None:
    engine = Engine(policies())
    store = CheckpointStore(tmp_path / "cp.db", engine)
    chunk = log[:80]

    def work(n: int) -> list[Decision]:
        session = engine.session()
        out: list[Decision] = []
        for k, e in enumerate(chunk):
            out += session.feed(e)
            if k % 10 == 9:
                store.save(f"s{n}", session, e.id)
        return out

    results = in_threads(work)
    assert store.streams() == sorted(f"s{n}" for n in range(THREADS))
    for n in range(THREADS):
        found = store.load(f"s{n}")
        assert found is not None
        restored, last = found
        assert last == chunk[-1].id and restored.stats.events == len(chunk)
        assert store.saves(f"s{n}") == len(chunk) // 10
    assert all(r == results[0] for r in results)
