"""Snapshots and the checkpoint store: a restored session continues exactly where the
snapshot was taken; the bytes are a safe, versioned, deterministic encoding; a snapshot from
another policy set or backend is refused; a session whose rules fail is never snapshotted
half-applied."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from reliability_logs import SHANGHAI, horizon, models, month_log, policies

from policykit import (
    Decision,
    Engine,
    EventBase,
    EventOrderError,
    ParameterError,
    SnapshotError,
    standard_pack,
)
from policykit.checkpoint import CheckpointError, CheckpointStore
from policykit.engine._durable_adapter import durable_available
from policykit.engine._snapshot import decode, encode, pack, unpack
from policykit.engine.session import SessionFailedError

BACKENDS = ["native", "durable"] if durable_available()[0] else ["native"]
LOG = models(month_log(9, employees=6, days=20))
UNTIL = horizon(days=20)


def stream(session: Any, events: list[EventBase]) -> list[Decision]:
    return [d for e in events for d in session.feed(e)]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("cut", [0, 1, 97, 250, len(LOG)])
def test_restore_continues_exactly_where_the_snapshot_was_taken(backend: str, cut: int) -> None:
    engine = Engine(policies(), backend=backend)
    whole = engine.session()
    expected = stream(whole, LOG) + whole.advance_to(UNTIL)
    first = engine.session()
    before = stream(first, LOG[:cut])
    restored = Engine(policies(), backend=backend).restore(first.snapshot())
    assert restored.clock == first.clock and restored.stats == first.stats
    after = stream(restored, LOG[cut:]) + restored.advance_to(UNTIL)
    assert before + after == expected
    # Redelivered events are still known to be duplicates after the restore.
    assert stream(restored, LOG[:cut]) == [] and restored.stats.duplicates == cut


@pytest.mark.parametrize("lateness", [None, timedelta(hours=3)])
def test_the_payload_is_read_as_it_was_written(lateness: timedelta | None) -> None:
    """One module owns the payload: what unpack_session reads from a snapshot, written
    again by pack_session, is the very same bytes (reader and writer cannot drift)."""
    from policykit.engine._payload import pack_session, unpack_session

    engine = Engine(policies())
    session = engine.session(allowed_lateness=lateness, dedupe_window=timedelta(days=2))
    stream(session, LOG[:300])
    session.feed(LOG[299])  # a redelivery, counted
    snap = session.snapshot()
    payload = unpack_session(snap, backend="native", fingerprint=engine.fingerprint,
                             policies=[])
    assert payload.clock == session.clock and payload.stats == session.stats
    assert payload.stats.duplicates == 1
    assert payload.ledger.seen.ids == session._seen.ids
    assert (payload.window is None) == (lateness is None)
    assert pack_session(payload) == snap
    with pytest.raises(SnapshotError, match="on backend 'native'"):
        unpack_session(snap, backend="durable", fingerprint=engine.fingerprint, policies=[])


def test_snapshot_bytes_are_deterministic_across_processes(tmp_path: Path) -> None:
    """The same events give the same bytes, whatever the process's hash seed (sets are
    written sorted, dicts in insertion order)."""
    engine = Engine(policies())
    session = engine.session(allowed_lateness=timedelta(hours=3))
    stream(session, LOG[:300])
    mine = session.snapshot()
    code = (
        "import sys\n"
        "from datetime import timedelta\n"
        "from reliability_logs import models, month_log, policies\n"
        "from policykit import Engine\n"
        "s = Engine(policies()).session(allowed_lateness=timedelta(hours=3))\n"
        "for e in models(month_log(9, employees=6, days=20))[:300]: s.feed(e)\n"
        "sys.stdout.buffer.write(s.snapshot())\n"
    )
    # The child finds policykit and the reliability helpers the way pytest's pythonpath does.
    here = Path(__file__).resolve()
    env = {**os.environ, "PYTHONHASHSEED": "12345",
           "PYTHONPATH": os.pathsep.join([str(here.parents[2]), str(here.parent)])}
    other = subprocess.run([sys.executable, "-c", code],
                           env=env, capture_output=True, timeout=120, check=True).stdout
    assert other == mine


def test_a_snapshot_of_another_policy_version_or_parameters_is_refused() -> None:
    pack_ = standard_pack()
    engine = Engine(pack_.select("lateness-deduction", "first-responder"))
    snap = engine.session().snapshot()
    lateness = pack_.get("lateness-deduction")
    v2 = lateness.model_copy(update={"version": "2"})
    retuned = lateness.with_parameters(tier_mode="marginal")
    for changed in (v2, retuned):
        other = Engine([changed, pack_.get("first-responder")])
        with pytest.raises(SnapshotError, match="another policy set") as err:
            other.restore(snap)
        assert "lateness-deduction@1" in str(err.value)
        assert engine.fingerprint in str(err.value) and other.fingerprint in str(err.value)
    with pytest.raises(SnapshotError, match="another policy set"):
        Engine(pack_.select("lateness-deduction")).restore(snap)


@pytest.mark.skipif(len(BACKENDS) < 2, reason="durable_rules cannot be imported here")
def test_a_snapshot_of_another_backend_is_refused() -> None:
    snap = Engine(policies()).session().snapshot()
    with pytest.raises(SnapshotError, match="backend 'native'"):
        Engine(policies(), backend="durable").restore(snap)


def test_a_late_event_session_restores_with_its_window() -> None:
    engine = Engine(policies())
    late = LOG[120]
    order = [*LOG[:120], *LOG[121:140], late, *LOG[140:]]
    whole = engine.session(allowed_lateness=timedelta(days=2))
    expected = stream(whole, order)
    first = engine.session(allowed_lateness=timedelta(days=2))
    before = stream(first, order[:130])
    restored = engine.restore(first.snapshot())
    assert restored.allowed_lateness == timedelta(days=2)
    assert before + stream(restored, order[130:]) == expected
    assert restored.stats.late == 1


# --- the codec ------------------------------------------------------------------------------

_zones = st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Berlin"), UTC,
                          timezone(timedelta(hours=-5, minutes=-30))])
_leaves = st.one_of(
    st.none(), st.booleans(), st.integers(), st.text(max_size=8),
    st.floats(allow_nan=False), st.decimals(allow_nan=False, allow_infinity=False),
    st.datetimes(timezones=_zones), st.datetimes(), st.dates(),
    st.timedeltas(), st.times())
_keys = st.one_of(st.text(max_size=6), st.integers(), st.tuples(st.text(max_size=3),
                                                                  st.integers()))
plain = st.recursive(
    _leaves, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(_keys, inner, max_size=4)
    | st.lists(inner, max_size=3).map(tuple)
    | st.sets(st.one_of(st.text(max_size=4), st.integers()), max_size=4)
    | st.frozensets(st.integers(), max_size=3), max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(value=plain)
@example(value=datetime(1, 1, 1, tzinfo=ZoneInfo("Asia/Shanghai")))  # found by hypothesis
@example(value=datetime(2026, 10, 25, 2, 30, fold=1, tzinfo=ZoneInfo("Europe/Berlin")))
@example(value=datetime.max.replace(tzinfo=ZoneInfo("Pacific/Kiritimati")))
def test_the_codec_round_trips_plain_data(value: Any) -> None:
    """decode(encode(x)) == x for rule-state data, named zones kept."""
    back = decode(encode(value))
    assert back == value
    if isinstance(value, datetime) and isinstance(value.tzinfo, ZoneInfo):
        assert back.tzinfo == value.tzinfo
        assert (back.replace(tzinfo=None), back.utcoffset()) == (
            value.replace(tzinfo=None), value.utcoffset())


def test_the_codec_keeps_shared_and_cyclic_references() -> None:
    shared = {"n": [1, 2]}
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    tags = {"$dt": "x"}  # a dict whose keys look like tags still comes back as itself
    value = {"a": shared, "b": shared, "c": cyclic, "d": tags, "e": {1: shared["n"]}}
    back = unpack(pack(value))
    assert back["a"] is back["b"] and back["e"][1] is back["a"]["n"]
    assert back["c"][1] is back["c"] and back["d"] == tags
    moment = pendulum.datetime(2026, 3, 2, 8, 30, tz="Asia/Shanghai")
    again = unpack(pack({"t": moment, "d": date(2026, 3, 2), "h": time(8, 30),
                         "m": Decimal("12.50")}))
    assert again["t"] == moment and isinstance(again["t"], pendulum.DateTime)
    assert again["m"] == Decimal("12.50") and str(again["m"]) == "12.50"


def test_state_that_is_not_plain_data_is_refused_when_snapshotting() -> None:
    with pytest.raises(SnapshotError, match="plain data"):
        pack({"x": object()})
    session = Engine(policies()).session()
    runtime = session._ev._runtimes[0][0]  # type: ignore[attr-defined]
    runtime.state["oops"] = lambda: None
    with pytest.raises(SnapshotError, match="function"):
        session.snapshot()


# --- a rule that raises ---------------------------------------------------------------------


def _explode_on(session: Any, event_id: str) -> None:
    """Make the first rule of the first policy raise on ``event_id`` (a bug, or a calendar
    without data for a deadline's year)."""
    evaluator = session._ev
    for runtimes in evaluator._runtimes:
        for runtime in runtimes:
            original = runtime.on_event

            def on_event(event: EventBase, ctx: Any, _orig: Any = original) -> None:
                if event.id == event_id:
                    raise RuntimeError("rule failed")
                _orig(event, ctx)

            runtime.on_event = on_event


def test_a_strict_session_whose_rule_raised_refuses_further_use() -> None:
    engine = Engine(policies())
    session = engine.session()
    bad = next(e for e in LOG[50:] if e.type == "attendance.clock_in")
    _explode_on(session, bad.id)
    stream(session, LOG[:LOG.index(bad)])
    with pytest.raises(RuntimeError, match="rule failed"):
        session.feed(bad)
    assert session.stats.rejected == 1
    with pytest.raises(SessionFailedError, match=bad.id):
        session.feed(LOG[-1])
    with pytest.raises(SessionFailedError):
        session.snapshot()  # a half-applied state is never checkpointed
    with pytest.raises(SessionFailedError):
        session.advance_to(UNTIL)


def test_a_late_event_session_rolls_a_failing_event_back() -> None:
    """With allowed_lateness the window's checkpoint restores the state before the failing
    step: the event is refused, and the session continues as if it had never come."""
    engine = Engine(policies())
    bad = next(e for e in LOG[60:] if e.type == "attendance.clock_in")
    rest = [e for e in LOG if e.id != bad.id]
    expected = stream(engine.session(allowed_lateness=timedelta(hours=1)), rest)
    session = engine.session(allowed_lateness=timedelta(hours=1), checkpoint_every=7)
    _explode_on(session, bad.id)
    got = stream(session, LOG[:LOG.index(bad)])
    with pytest.raises(RuntimeError):
        session.feed(bad)
    got += stream(session, LOG[LOG.index(bad) + 1:])
    assert got == expected
    assert session.stats.rejected == 1 and session.stats.events == len(rest)
    engine.restore(session.snapshot())  # and its state snapshots fine


# --- the store ------------------------------------------------------------------------------


def test_the_checkpoint_store_saves_loads_and_refuses_strangers(tmp_path: Path) -> None:
    engine = Engine(policies())
    db = tmp_path / "cp.db"
    store = CheckpointStore(db, engine)
    assert store.load("s") is None and store.saves("s") == 0
    session = engine.session()
    stream(session, LOG[:40])
    store.save("s", session, LOG[39].id)
    stream(session, LOG[40:80])
    store.save("s", session, LOG[79].id)
    restored, last = store.load("s")  # type: ignore[misc]
    assert last == LOG[79].id and restored.stats == session.stats
    assert store.saves("s") == 2 and store.streams() == ["s"]
    with sqlite3.connect(db) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = Engine(standard_pack().select("lateness-deduction"))
    with pytest.raises(SnapshotError, match="another policy set"):
        store.load("s", other)
    with pytest.raises(ParameterError, match="engine"):
        CheckpointStore(db).load("s")
    with pytest.raises(ParameterError, match="stream_id"):
        store.save("", session, None)
    store.delete("s")
    assert store.load("s") is None
    store.close()
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointError):
        CheckpointStore(junk, engine)


def test_a_session_clock_survives_a_restore_to_the_instant() -> None:
    engine = Engine(policies())
    session = engine.session()
    session.advance_to(datetime(2026, 3, 2, 9, 0, tzinfo=SHANGHAI))
    restored = engine.restore(session.snapshot())
    assert restored.clock == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    # After advance_to(t), an event at t is late, before and after the restore.
    with pytest.raises(EventOrderError, match="older than the session clock"):
        restored.feed({**month_log(9)[40], "at": "2026-03-02T09:00:00+08:00"})
