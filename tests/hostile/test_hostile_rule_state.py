"""Forged rule state that passes restore, rules that raise by accident, and horizons at the
ends of the datetime range: only documented policykit errors come out (SnapshotError,
SessionFailedError raised from the rule's own error, ParameterError), never a raw
KeyError, OverflowError or TypeError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

import policykit
from policykit import (
    Engine,
    EventBase,
    ParameterError,
    PolicyKitError,
    SessionFailedError,
    SnapshotError,
    parse_events,
)
from policykit.cli import main
from policykit.engine._batch import check_horizon
from policykit.engine._snapshot import pack, unpack
from policykit.examples import __file__ as _examples_init

EXAMPLE = _examples_init.rsplit("/", 1)[0] + "/acme-2026-03.jsonl"
with open(EXAMPLE, encoding="utf-8") as _fh:
    LOG = sorted(parse_events(_fh.read()), key=lambda e: (e.at, e.id))
HALF = len(LOG) // 2
#: An event the rules see (a clock-in), after a few others.
BAD = next(i for i, e in enumerate(LOG) if i >= 50 and e.type == "attendance.clock_in")
ENGINES = {backend: Engine(backend=backend) for backend in ("native", "durable")}
BACKENDS = pytest.mark.parametrize("backend", sorted(ENGINES))


def _snapshot(backend: str, late: bool) -> bytes:
    # A short window: its replay at restore does not reach the forged case of the tests.
    session = ENGINES[backend].session(
        allowed_lateness=timedelta(minutes=1) if late else None, checkpoint_every=1)
    session.feed_many(LOG[:HALF])
    return session.snapshot()


SNAPSHOTS = {(b, late): _snapshot(b, late) for b in ENGINES for late in (False, True)}


def _rule_states(payload: dict[str, Any]) -> list[list[list[dict[str, Any]]]]:
    """The rule states of a snapshot: the evaluator's, and the window checkpoint's (which a
    session with allowed_lateness restores from)."""
    out = [payload["evaluator"]["rules"]]
    if payload["window"] is not None:
        out += [state["rules"] for _pos, state in payload["window"]["checkpoints"]]
    return out


def _forge_case_key(payload: dict[str, Any]) -> None:
    """The first open deadline case (a real one, as filed) no longer named by its key."""
    for rules in _rule_states(payload):
        case = next(c for states in rules for state in states
                    for c in (state.get("open") or {}).values())
        case["key"] = "forged"


def _instants(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, datetime):
        yield path
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _instants(v, (*path, k))
    elif isinstance(value, list | tuple):
        for i, v in enumerate(value):
            yield from _instants(v, (*path, i))


def _run_rest(session: Any) -> list[BaseException]:
    """Feed the second half of the log and advance; the errors raised, in order."""
    errors: list[BaseException] = []
    for event in LOG[HALF:]:
        try:
            session.feed(event)
        except PolicyKitError as exc:
            errors.append(exc)
    try:
        session.advance_to(datetime(2026, 4, 1, tzinfo=UTC))
    except PolicyKitError as exc:
        errors.append(exc)
    return errors


# --- forged rule state ----------------------------------------------------------------------


@BACKENDS
@pytest.mark.parametrize("when", [datetime.max, datetime.min], ids=["max", "min"])
def test_datetime_min_or_max_in_rule_state_is_refused_at_restore(backend: str,
                                                                 when: datetime) -> None:
    """No rule keeps datetime.min or max in its state: forged there (a recurrence window's
    start, a deadline's due), they overflowed in the calendar on the next event."""
    payload = unpack(SNAPSHOTS[backend, False])
    rules = payload["evaluator"]["rules"]
    paths = list(_instants(rules))
    assert paths
    for path in (paths[0], paths[len(paths) // 2], paths[-1]):
        forged = unpack(SNAPSHOTS[backend, False])
        node = forged["evaluator"]["rules"]
        for step in path[:-1]:
            node = node[step]
        if isinstance(node, tuple):
            continue  # heap entries are tuples: the dict and list ones cover the rules
        node[path[-1]] = when.replace(tzinfo=UTC)
        with pytest.raises(SnapshotError, match="outside the years 1900-2199"):
            ENGINES[backend].restore(pack(forged))


@BACKENDS
def test_a_forged_case_key_surfaces_as_session_failed_error(backend: str) -> None:
    """A deadline case whose ``key`` no longer names it restores (the digest is valid and the
    shape right), then raised KeyError inside the rule. Now: SessionFailedError raised from
    the KeyError, and the strict session refuses further use."""
    payload = unpack(SNAPSHOTS[backend, False])
    _forge_case_key(payload)
    session = ENGINES[backend].restore(pack(payload))
    errors = _run_rest(session)
    assert errors, "the forged case was never touched"
    first = errors[0]
    assert isinstance(first, SessionFailedError), repr(first)
    assert isinstance(first.__cause__, KeyError)
    assert "inconsistent" in str(first) and "refuses further use" in str(first)
    assert all(isinstance(e, SessionFailedError) for e in errors[1:])
    with pytest.raises(SessionFailedError):
        session.snapshot()


@BACKENDS
def test_forged_state_in_a_late_event_session_rolls_each_failing_step_back(
        backend: str) -> None:
    """With allowed_lateness the failing step is rolled back as for any rule error, and
    refused with SessionFailedError; the session goes on (and still snapshots)."""
    payload = unpack(SNAPSHOTS[backend, True])
    _forge_case_key(payload)
    try:
        session = ENGINES[backend].restore(pack(payload))
    except SnapshotError:
        pytest.skip("the window's replay met the forged case at restore")
    errors = _run_rest(session)
    assert errors and all(isinstance(e, SessionFailedError) for e in errors)
    assert all("rolled back" in str(e) for e in errors)
    assert session.stats.rejected >= 1
    ENGINES[backend].restore(session.snapshot()).close()


@BACKENDS
@pytest.mark.parametrize("late", [False, True], ids=["strict", "late"])
def test_per_key_values_of_the_wrong_shape_raise_only_policykit_errors(backend: str,
                                                                       late: bool) -> None:
    """Every open case of every rule given fields of the wrong shape: whatever the rules
    make of it, the caller sees a policykit error (SnapshotError or SessionFailedError)."""
    payload = unpack(SNAPSHOTS[backend, late])
    for rules in _rule_states(payload):
        for states in rules:
            for state in states:
                for value in state.values():
                    if isinstance(value, dict):
                        for k in list(value)[:2]:
                            value[k] = {"key": 7} if isinstance(value[k], dict) else [None]
    try:
        session = ENGINES[backend].restore(pack(payload))
    except SnapshotError:
        return
    errors = _run_rest(session)  # raises anything not a PolicyKitError
    assert errors and all(isinstance(e, SessionFailedError) for e in errors)


# --- a rule raising by accident -------------------------------------------------------------


def _explode_on(session: Any, event_id: str, exc: BaseException,
                every_time: bool = False) -> list[int]:
    """Make the rules raise ``exc`` on ``event_id`` (on its first sight only, unless
    ``every_time``: then also when the session replays the window to roll back)."""
    seen = [0]
    for runtimes in session._ev._runtimes:
        for runtime in runtimes:
            def on_event(event: EventBase, ctx: Any, _original: Any = runtime.on_event) -> None:
                if event.id == event_id or (every_time and seen[0]):
                    seen[0] += 1
                    raise exc
                _original(event, ctx)

            runtime.on_event = on_event
    return seen


def test_a_raw_rule_error_becomes_session_failed_error_from_it() -> None:
    engine = ENGINES["native"]
    session = engine.session()
    session.feed_many(LOG[:BAD])
    _explode_on(session, LOG[BAD].id, ZeroDivisionError("boom"))
    with pytest.raises(SessionFailedError, match="ZeroDivisionError: boom") as info:
        session.feed(LOG[BAD])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
    assert session.stats.rejected == 1
    with pytest.raises(SessionFailedError, match=LOG[BAD].id):
        session.feed(LOG[BAD + 1])


def test_in_a_late_event_session_the_step_is_rolled_back_and_the_session_goes_on() -> None:
    engine = ENGINES["native"]
    expected = engine.session(allowed_lateness=timedelta(hours=1)).feed_many(
        LOG[:BAD] + LOG[BAD + 1:BAD + 30])
    session = engine.session(allowed_lateness=timedelta(hours=1), checkpoint_every=7)
    got = session.feed_many(LOG[:BAD])
    _explode_on(session, LOG[BAD].id, TypeError("bad shape"))
    with pytest.raises(SessionFailedError, match="rolled back") as info:
        session.feed(LOG[BAD])
    assert isinstance(info.value.__cause__, TypeError)
    got += session.feed_many(LOG[BAD + 1:BAD + 30])
    assert sorted(d.id for d in got) == sorted(d.id for d in expected)


def test_a_rollback_that_fails_too_leaves_the_session_refusing_further_use() -> None:
    engine = ENGINES["native"]
    session = engine.session(allowed_lateness=timedelta(hours=1), checkpoint_every=7)
    session.feed_many(LOG[:BAD])
    _explode_on(session, LOG[BAD].id, KeyError("k"), every_time=True)
    with pytest.raises(SessionFailedError, match="refuses further use"):
        session.feed(LOG[BAD])
    with pytest.raises(SessionFailedError, match="rolling it back"):
        session.feed(LOG[BAD + 1])


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), MemoryError()], ids=type)
def test_interrupts_and_memory_errors_pass_through_unchanged(exc: BaseException) -> None:
    session = ENGINES["native"].session()
    session.feed_many(LOG[:BAD])
    _explode_on(session, LOG[BAD].id, exc)
    with pytest.raises(type(exc)):
        session.feed(LOG[BAD])
    with pytest.raises(SessionFailedError):  # still a half-applied strict session
        session.feed(LOG[BAD + 1])


# --- horizons at the ends of the datetime range -----------------------------------------------

FAR = ["9999-12-31T23:59:59+00:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00",
       "9999-12-31", "0001-01-01", datetime.max.replace(tzinfo=UTC),
       datetime.min.replace(tzinfo=UTC), date.max, "2200-01-01T00:00:00+08:00",
       "1899-12-31T23:00:00+00:00"]


@pytest.mark.parametrize("until", FAR, ids=str)
def test_a_horizon_outside_the_event_years_is_a_parameter_error(until: Any) -> None:
    records = [json.loads(e.model_dump_json()) for e in LOG[:20]]
    with pytest.raises(ParameterError, match=r"^until: .*years 1900-2199"):
        Engine().evaluate(records, until=until)
    with pytest.raises(ParameterError, match=r"^until: .*years 1900-2199"):
        policykit.audit(records, until=until)
    with pytest.raises(ParameterError, match=r"^advance_to\.instant: .*years 1900-2199"):
        Engine().session().advance_to(until)


def test_horizons_at_the_edges_of_the_event_years_are_read() -> None:
    """The last instant of 2199 in its own offset, as an event may be (its UTC is 2200)."""
    session = Engine(policies=[]).session()
    assert session.advance_to("2199-12-31T23:59:59-14:00") == []
    assert Engine(policies=[]).session().advance_to("1900-01-01T00:00:00+14:00") == []


def test_check_horizon_at_datetime_min_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError, match="until"):
        check_horizon(datetime.min.replace(tzinfo=UTC), Engine().policies)


def test_cli_audit_with_a_far_until_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["audit", EXAMPLE, "--until", "9999-12-31T23:59:59+00:00"])
    assert code == 2
    assert "years 1900-2199" in capsys.readouterr().err


def test_any_raw_error_replaying_the_window_at_restore_is_a_snapshot_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Not only the errors a forged value usually gives (KeyError, TypeError...): whatever a
    rule raises while the window's steps are replayed on the restored state."""
    from policykit.engine._late import Window

    def replay(self: Any, ops: Any, k: int) -> Any:
        raise ZeroDivisionError("forged")

    monkeypatch.setattr(Window, "_replay", replay)
    with pytest.raises(SnapshotError, match="ZeroDivisionError: forged") as info:
        ENGINES["native"].restore(SNAPSHOTS["native", True])
    assert isinstance(info.value.__cause__, ZeroDivisionError)
