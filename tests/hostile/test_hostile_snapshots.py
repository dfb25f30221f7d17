"""Hostile snapshots with a VALID digest (what whoever can write the checkpoint store could
hand us): bombs are refused before they are built, in bounded time and memory, and forged
durations or date-times are a SnapshotError, never an OverflowError."""

from __future__ import annotations

import contextlib
import hashlib
import json
import random
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit import Engine, ParameterError, SnapshotError, parse_events
from policykit.engine._snapshot import (
    FORMAT_VERSION,
    MAGIC,
    MAX_NODES,
    MAX_RATIO,
    NODES_PER_BYTE,
    pack,
    unpack,
)
from policykit.examples import __file__ as _examples_init

EXAMPLE = _examples_init.rsplit("/", 1)[0] + "/acme-2026-03.jsonl"
ENGINE = Engine()
CST = timezone(timedelta(hours=8))


def forge_body(body: bytes) -> bytes:
    """Snapshot bytes around an already compressed body, with a valid digest."""
    digest = hashlib.blake2b(body, digest_size=16).digest()
    return MAGIC + FORMAT_VERSION.to_bytes(2, "big") + digest + body


def forge(raw: bytes, level: int = 9) -> bytes:
    return forge_body(zlib.compress(raw, level))


def streamed(pieces: Iterator[bytes]) -> bytes:
    """Compress without holding the inflated text (the bombs are large once inflated)."""
    comp = zlib.compressobj(9)
    out = [comp.compress(p) for p in pieces]
    out.append(comp.flush())
    return forge_body(b"".join(out))


def bounded(action: Callable[[], Any], *, seconds: float = 2.0, mib: int = 64) -> None:
    """``action`` raises SnapshotError within ``seconds`` and a ``mib`` MiB peak."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(SnapshotError):
            action()
        _size, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < seconds
    assert peak < mib * 1024 * 1024, f"peak {peak / 2**20:.0f} MiB"


@pytest.fixture(scope="module")
def snapshot() -> bytes:
    with open(EXAMPLE, encoding="utf-8") as fh:
        events = sorted(parse_events(fh.read()), key=lambda e: (e.at, e.id))[:300]
    session = ENGINE.session(allowed_lateness=timedelta(hours=2))
    session.feed_many(events)
    return session.snapshot()


# --- bombs ----------------------------------------------------------------------------------


def test_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    """30 KiB that inflate to 30 MiB of ``0,0,0,...``: refused by the ratio bound."""
    data = streamed(b"[" + b"0," * (1 << 19) for _ in range(30))
    assert len(data) < 64 * 1024
    bounded(lambda: ENGINE.restore(data), mib=16)
    with pytest.raises(SnapshotError, match=f"{MAX_RATIO} times its compressed size"):
        unpack(data)


def test_a_list_bomb_within_the_ratio_is_refused_before_it_is_parsed() -> None:
    """Millions of empty lists compressing at less than MAX_RATIO (random numbers spoil
    the compression): refused by the value count, before json builds a single list."""
    rng = random.Random(7)
    raw = b"[" + b"".join(b"[]," * 300 + b"%d," % rng.randrange(10**12)
                         for _ in range(12_000)) + b"0]"
    body = zlib.compress(raw, 9)
    assert len(raw) / len(body) < MAX_RATIO
    assert raw.count(b"[") > MAX_NODES + NODES_PER_BYTE * len(body)
    data = forge_body(body)
    bounded(lambda: ENGINE.restore(data), mib=48)
    with pytest.raises(SnapshotError, match="list bomb"):
        unpack(data)


def test_the_value_count_ignores_commas_inside_strings() -> None:
    text = json.dumps({"kind": "x", "t": "," * 4000}).encode()
    assert unpack(forge(text), max_nodes=10) == {"kind": "x", "t": "," * 4000}
    with pytest.raises(SnapshotError, match="list bomb"):
        unpack(forge(json.dumps([[]] * 20).encode()), max_nodes=10)


def test_deep_nesting_is_refused() -> None:
    data = forge(b"[" * 100_000 + b"]" * 100_000)
    bounded(lambda: ENGINE.restore(data))
    deep_tags = b'{"$t":[' * 300 + b"0" + b"]}" * 300
    with pytest.raises(SnapshotError, match=r"deeper|deeply"):
        unpack(forge(deep_tags))


def test_a_real_snapshot_is_far_inside_the_limits(snapshot: bytes) -> None:
    body = snapshot[24:]
    raw = zlib.decompress(body)
    assert len(raw) / len(body) < MAX_RATIO / 4
    assert raw.count(b",") < NODES_PER_BYTE * len(body) / 4
    ENGINE.restore(snapshot).close()


# --- forged durations and date-times ----------------------------------------------------------


@pytest.mark.parametrize(("where", "value"), [
    ("dedupe_window", timedelta(days=999_999_999)),
    ("dedupe_window", timedelta(days=36_526)),
    ("dedupe_window", timedelta(0)),
    ("window.allowed", timedelta(days=999_999_999)),
    ("window.allowed", timedelta(days=36_526)),
    ("clock", datetime(9999, 12, 31, 23, 59, tzinfo=CST)),
    ("clock", datetime(1, 1, 1, tzinfo=CST)),
    ("clock", datetime(2026, 3, 2, 8, 0)),
    ("seen.at", datetime(9999, 12, 31, 23, 59, tzinfo=CST)),
    ("seen.at", datetime(1, 1, 1, 0, 1, tzinfo=UTC)),
])
def test_forged_durations_and_date_times_raise_snapshot_error(
        snapshot: bytes, where: str, value: Any) -> None:
    payload = unpack(snapshot)
    if where == "window.allowed":
        payload["window"]["allowed"] = value
    elif where == "seen.at":
        entry = payload["seen"]["ids"][0]  # [event id, time applied, payload digest]
        entry[1] = value
    else:
        payload[where] = value
    with pytest.raises(SnapshotError) as caught:
        session = ENGINE.restore(pack(payload))
        # A forged value that the restore let through must not fail the next step either.
        later = datetime(2026, 3, 31, 12, tzinfo=CST).isoformat()
        session.feed_many(parse_events([{"id": "late-x", "type": "attendance.clock_in",
                                         "at": later, "employee_id": "E1"}]))
        session.close()
        raise SnapshotError("accepted")  # only reached when the value is harmless
    if str(caught.value) == "accepted":
        pytest.fail(f"a forged {where} of {value!r} was restored")


def _every_instant(value: Any, when: datetime) -> Any:
    if isinstance(value, datetime):
        return when
    if isinstance(value, list):
        return [_every_instant(v, when) for v in value]
    if isinstance(value, tuple):
        return tuple(_every_instant(v, when) for v in value)
    if isinstance(value, dict):
        return {k: _every_instant(v, when) for k, v in value.items()}
    return value


@pytest.mark.parametrize("part", ["evaluator", "window", "seen"])
@pytest.mark.parametrize("when", [datetime(9999, 12, 31, 23, tzinfo=UTC),
                                  datetime(1, 1, 1, 1, tzinfo=UTC),
                                  datetime(2200, 1, 1, tzinfo=UTC)], ids=str)
def test_instants_no_session_can_hold_are_refused_anywhere_in_the_state(
        snapshot: bytes, part: str, when: datetime) -> None:
    """Rule state at the ends of the datetime range would overflow in the rules' own
    arithmetic after the restore: refused when restoring instead."""
    payload = unpack(snapshot)
    payload[part] = _every_instant(payload[part], when)
    with pytest.raises(SnapshotError, match="outside the years 1900-2199"):
        ENGINE.restore(pack(payload))
    assert unpack(pack(payload)) == payload  # the codec itself stays general


def test_a_duration_no_session_can_hold_is_refused_in_the_state(snapshot: bytes) -> None:
    payload = unpack(snapshot)
    payload["evaluator"] = {**payload["evaluator"], "extra": timedelta(days=10**8)}
    with pytest.raises(SnapshotError, match="longer than 36525 days"):
        ENGINE.restore(pack(payload))


# --- fuzz -----------------------------------------------------------------------------------

_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                  st.sampled_from([{"$td": [10**9, 0, 0]}, {"$td": [-(10**9), 0, 0]},
                                   {"$dt": "9999-12-31T23:59:59+14:00"},
                                   {"$dt": "0001-01-01T00:00:00-14:00"},
                                   {"$dec": "1e999999"}, {"$ref": 10**9}, {"$m": [[1]]}]))
_json = st.recursive(_leaf, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=12)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_a_snapshot_with_one_forged_value_restores_or_raises_snapshot_error(
        snapshot: bytes, data: st.DataObject) -> None:
    """One value anywhere in a real snapshot replaced (valid digest): SnapshotError or a
    session; never another exception."""
    tree = json.loads(zlib.decompress(snapshot[24:]))
    paths: list[list[Any]] = []

    def walk(node: Any, path: list[Any]) -> None:
        paths.append(path)
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, [*path, k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, [*path, i])

    walk(tree, [])
    path = data.draw(st.sampled_from(paths[1:]))
    node = tree
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = data.draw(_json)
    with contextlib.suppress(SnapshotError):
        ENGINE.restore(forge(json.dumps(tree).encode())).close()


@pytest.mark.parametrize("option", ["allowed_lateness", "dedupe_window"])
def test_a_session_option_beyond_a_century_is_a_parameter_error(option: str) -> None:
    """What a snapshot may not carry, a session may not be opened with either: a window that
    large overflows date arithmetic on the first event."""
    with pytest.raises(ParameterError, match=option):
        ENGINE.session(**_option(option, timedelta(days=36526)))
    ENGINE.session(**_option(option, timedelta(days=36525))).close()


def _option(name: str, value: timedelta) -> dict[str, Any]:
    return {name: value}
