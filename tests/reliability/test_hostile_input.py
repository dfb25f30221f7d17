"""Hostile input: whatever the records, policy files or snapshot bytes, only documented
policykit errors (subclasses of PolicyKitError) come out, the good records around a bad
one are kept, nothing executes, and the documented limits hold."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import pickle
import zlib
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from reliability_logs import SHANGHAI, month_log, policies

from policykit import (
    Engine,
    EventBase,
    EventError,
    PolicyFileError,
    PolicyKitError,
    SnapshotError,
    load_policy,
    loads_policy,
    parse_events,
    standard_pack,
)
from policykit.audit import audit
from policykit.engine._snapshot import FORMAT_VERSION, MAGIC, pack
from policykit.engine.session import SessionFailedError
from policykit.testing.strategies import events as any_event


def fuzz(examples: int) -> settings:
    return settings(max_examples=examples, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck))


GOOD = month_log(3, employees=3, days=6)  # 80-odd valid records of many types
ENGINE = Engine(policies())
PACK_FILES = sorted((Path(__file__).resolve().parents[2] / "policykit/pack").glob("*.yaml"))

# --- values -------------------------------------------------------------------------------

_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(),
                       st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20))
arbitrary_json = st.recursive(
    _json_leaf, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=20)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value}
    return value


#: Values meant to break a field: wrong types, huge and deep values, NaN and infinities,
#: naive and out-of-range date-times, offsets beyond ±24h, enormous amounts, huge strings.
HOSTILE_VALUES: list[Any] = [
    None, True, 0, -1, 10**30, -(10**30), 2**63, 1e400, -1e400, math.nan, "NaN", "Infinity",
    "-Infinity", "1e400", "1e-400", "1e12", "1000000000000.0001", "0.00001", "-0.01", 6000.5,
    "", " ", "x" * 257, "x" * 100_000, "\u202e\u0000\ufeff", "0" * 5000, [], {}, [[[[[]]]]],
    ["sales_owner"] * 1001, list(range(1001)), nested(40), nested(500), [[1]] * 40,
    "0000-01-01T00:00:00Z", "0001-01-01T00:00:00+08:00", "9999-12-31T23:59:59-14:00",
    "10000-01-01T00:00:00Z", "2026-03-02T09:00:00", "2026-03-02T09:00:00+24:00",
    "2026-03-02T09:00:00-25:30", "2026-02-30T09:00:00+08:00", "1899-12-31T23:59:59Z",
    "2200-01-01T00:00:00Z", "2026-03-02", "P1D", "nope.type", {"$ref": 0},
]
FIELDS = ["id", "type", "at", "actor", "meta", "employee_id", "request_id", "base_salary",
          "recipients", "details", "areas", "start", "end", "promised_by", "valid_from",
          "severity", "duration_s", "in_remit", "sections", "currency", "channel", "extra"]


@st.composite
def hostile_record(draw: st.DrawFn) -> Any:
    """A record that is probably invalid: arbitrary JSON, or a good record with one field
    replaced by a hostile value, or such a record as (possibly broken) JSON text."""
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(arbitrary_json)
    record = dict(draw(st.sampled_from(GOOD)))
    record[draw(st.sampled_from(FIELDS))] = draw(st.sampled_from(HOSTILE_VALUES)
                                                 | arbitrary_json)
    record["id"] = record.get("id") if kind != 3 else draw(st.sampled_from(HOSTILE_VALUES))
    if kind == 2:
        text = json.dumps(record, allow_nan=True, default=str)
        cut = draw(st.integers(0, len(text)))
        return text if draw(st.booleans()) else text[:cut]
    return record


def _parsed(record: Any) -> EventBase | None:
    try:
        return parse_events([record])[0]
    except EventError:
        return None


def _is_valid(record: Any) -> bool:
    return _parsed(record) is not None


# --- parse_events -------------------------------------------------------------------------


@fuzz(150)
@given(bad=st.lists(st.tuples(st.integers(0, len(GOOD)), hostile_record()), min_size=1,
                    max_size=6))
def test_parse_events_keeps_every_good_record_and_reports_each_bad_one(
        bad: list[tuple[int, Any]]) -> None:
    """Bad records, wherever they are, go to ``errors`` as EventError with their line;
    every good record around them is returned, in order; nothing else is raised."""
    records: list[Any] = list(GOOD)
    for pos, rec in sorted(bad, key=lambda x: -x[0]):
        records.insert(pos, rec)
    errors: list[EventError] = []
    good = parse_events(records, errors=errors)
    alone = [_parsed(r) for r in records]  # each record judged alone: the reference
    assert [e.id for e in good] == [e.id for e in alone if e is not None]
    assert [err.line for err in errors] == [n for n, e in enumerate(alone, 1) if e is None]
    assert all(isinstance(err, EventError) for err in errors)
    assert {r["id"] for r in GOOD} <= {e.id for e in good}
    # Without ``errors`` the first bad record raises EventError, and only that.
    if errors:
        with pytest.raises(EventError):
            parse_events(records)


@fuzz(100)
@given(bad=st.lists(hostile_record(), min_size=1, max_size=5), crlf=st.booleans())
def test_parse_events_from_jsonl_text_and_bytes(bad: list[Any], crlf: bool) -> None:
    lines = [json.dumps(r) for r in GOOD[:20]]
    for n, rec in enumerate(bad):
        text = rec if isinstance(rec, str) else json.dumps(rec, allow_nan=True, default=str)
        lines.insert(3 * n + 1, text.replace("\n", " "))
    text = ("\r\n" if crlf else "\n").join(lines)
    for data in (text, text.encode("utf-8", "surrogatepass")):
        errors: list[EventError] = []
        good = parse_events(data, errors=errors)
        assert {r["id"] for r in GOOD[:20]} <= {e.id for e in good}
        assert all(isinstance(e, EventError) and e.line for e in errors)


def test_undecodable_bytes_and_deep_json_text_are_invalid_records() -> None:
    lines = [json.dumps(GOOD[0]).encode(), b"\xff\xfe\x00garbage", b"[" * 100_000,
             b'{"a":' * 50_000, json.dumps(GOOD[1]).encode()]
    errors: list[EventError] = []
    good = parse_events(b"\n".join(lines), errors=errors)
    assert [e.id for e in good] == [GOOD[0]["id"], GOOD[1]["id"]] and len(errors) == 3


# --- evaluate -----------------------------------------------------------------------------


@st.composite
def extreme(draw: st.DrawFn, event: EventBase) -> dict[str, Any]:
    """A valid event pushed to the documented limits: 256-character ids, 4096-character
    text, meta nested 31 levels, 1000-item lists, money at 1e12 or 0.0001, offsets of
    ±23:59, times to the microsecond."""
    record = event.model_dump(mode="json", exclude_none=True)
    choice = draw(st.integers(0, 6))
    if choice == 0:
        record["id"] = (record["id"] + "-" + "é" * 256)[:256]
    elif choice == 1:
        record["meta"] = {"deep": nested(29), "big": list(range(1000)), "nan": "NaN"}
    elif choice == 2 and "base_salary" in record:
        record["base_salary"] = draw(st.sampled_from(["1000000000000", "0.0001", "0"]))
    elif choice == 3:
        offset = timezone(draw(st.sampled_from([timedelta(hours=23, minutes=59),
                                                -timedelta(hours=23, minutes=59)])))
        record["at"] = event.at.astimezone(offset).isoformat()
    elif choice == 4 and "areas" in record:
        record["areas"] = [f"A{i}" for i in range(1000)]
    elif choice == 5 and "topic" in record:
        record["topic"] = "話" * 4096
    elif choice == 6:
        record["at"] = (event.at + timedelta(microseconds=draw(st.integers(1, 999_999)))
                        ).isoformat()
    return record


@fuzz(60)
@given(data=st.data(), n=st.integers(1, 30))
def test_evaluate_valid_events_at_the_limits_raises_nothing_undocumented(
        data: st.DataObject, n: int) -> None:
    """Events of every type with values at the documented limits evaluate through the whole
    pack; decisions have unique ids and evidence that exists in the input."""
    drawn = data.draw(st.lists(any_event(start=date(2026, 2, 1), end=date(2026, 3, 31)),
                               min_size=n, max_size=n, unique_by=lambda e: e.id))
    records = [data.draw(extreme(e)) for e in drawn]
    until = datetime(2026, 5, 1, tzinfo=SHANGHAI)
    try:
        decisions = Engine(standard_pack()).evaluate(records, until=until)
    except PolicyKitError:
        return
    ids = {r["id"] for r in records}
    assert len({d.id for d in decisions}) == len(decisions)
    for d in decisions:
        if d.kind == "violation":
            assert d.evidence and set(d.evidence) <= ids


@fuzz(120)
@given(record=hostile_record())
def test_evaluate_raises_only_event_errors_for_bad_records(record: Any) -> None:
    with contextlib.suppress(PolicyKitError):
        ENGINE.evaluate([*GOOD[:30], record], until=datetime(
            2026, 3, 10, tzinfo=SHANGHAI))


def test_an_event_in_a_year_without_holiday_data() -> None:
    """The PRC calendar has holiday data for some years only, and a rule that needs a
    missing year raises CalendarError mid-step. A strict session then refuses further use
    (its rule state may be half-updated); a session with allowed_lateness rolls the event
    back and goes on as if it had never come."""
    engine = Engine(policies())
    stray = {"id": "stray", "type": "attendance.clock_in", "employee_id": "E1",
             "at": "2199-06-01T09:00:00+08:00"}
    strict = engine.session()
    strict.feed_many(GOOD[:20])
    with pytest.raises(PolicyKitError, match="holiday"):
        strict.feed(stray)
    with pytest.raises(SessionFailedError):
        strict.feed(GOOD[20])
    tolerant = engine.session(allowed_lateness=timedelta(hours=1))
    first = tolerant.feed_many(GOOD[:20])
    with pytest.raises(PolicyKitError, match="holiday"):
        tolerant.feed(stray)
    rest = tolerant.feed_many(GOOD[20:])
    expected = engine.session(allowed_lateness=timedelta(hours=1)).feed_many(GOOD)
    assert sorted(first + rest, key=lambda d: d.id) == sorted(expected, key=lambda d: d.id)
    assert tolerant.stats.rejected == 1 and expected


# --- audit --------------------------------------------------------------------------------

POLICIES = policies()
AUDIT_UNTIL = datetime(2026, 3, 10, tzinfo=SHANGHAI)
CLEAN_AUDIT = [d.id for d in audit(list(GOOD), policy=POLICIES, until=AUDIT_UNTIL).decisions]


@fuzz(60)
@given(bad=st.lists(hostile_record(), min_size=1, max_size=6), as_bytes=st.booleans())
def test_audit_quarantines_bad_records_and_keeps_the_good_ones(bad: list[Any],
                                                               as_bytes: bool) -> None:
    def form(records: list[Any]) -> Any:
        if not as_bytes:
            return records
        return "\n".join(r if isinstance(r, str) else json.dumps(r, allow_nan=True,
                                                                 default=str)
                         for r in records).encode()

    # A hostile value may happen to be valid (audits also read a None in a record as
    # "absent", as in an empty CSV cell): keep the examples where each is invalid alone.
    assume(all(audit(form([r]), policy=POLICIES).counts.quarantined == 1 for r in bad))
    records: list[Any] = list(GOOD)
    for n, rec in enumerate(bad):
        records.insert(7 * n + 3, rec)
    source = form(records)
    report = audit(source, policy=POLICIES, until=AUDIT_UNTIL)
    if not as_bytes:
        assert report.counts.read == len(records)
        assert report.counts.quarantined == len(bad)
    assert report.counts.valid == len(GOOD)
    assert [d.id for d in report.decisions] == CLEAN_AUDIT


def test_audit_applies_a_correction_instead_of_stopping() -> None:
    """A correction (meta.corrects) replaces its original in an audit, as in evaluate."""
    # A correction keeps the type and subject of its original (see test_corrections.py).
    fix = {**GOOD[4], "id": "fix", "meta": {"corrects": GOOD[4]["id"]}}
    report = audit([*GOOD, fix], policy=POLICIES)
    assert report.counts.valid == len(GOOD) + 1
    assert report.counts.corrected == 1
    assert report.counts.quarantined == 0


def test_audit_quarantines_an_event_its_calendar_cannot_place() -> None:
    """A date outside the holiday data is quarantined with its position; the good records
    around it are still audited."""
    far = {**GOOD[5], "id": "far", "at": "2150-01-05T09:00:00+08:00"}
    report = audit([*GOOD[:3], far, *GOOD[3:]], policy=POLICIES, until=AUDIT_UNTIL)
    assert report.counts.quarantined == 1
    entry = report.quarantine[0]
    assert entry.event_id == "far" and entry.line == 4
    assert entry.problems[0][0] == "at"
    assert report.counts.valid == len(GOOD)
    assert [d.id for d in report.decisions] == CLEAN_AUDIT


# --- policy files -------------------------------------------------------------------------

MARKER = "/tmp/policykit-reliability-pwned"


@pytest.mark.parametrize("text", [
    f"!!python/object/apply:os.system ['touch {MARKER}']\n",
    f"id: x\nrules: !!python/object/apply:os.system ['touch {MARKER}']\n",
    f"pack: standard\npolicies: [!!python/object/new:os.system ['touch {MARKER}']]\n",
    "id: !!python/name:os.system\n",
    f"id: !!python/object/apply:subprocess.check_call [['touch', '{MARKER}']]\n",
])
def test_yaml_tags_that_build_python_objects_are_refused_and_run_nothing(text: str) -> None:
    if os.path.exists(MARKER):
        os.remove(MARKER)
    with pytest.raises(PolicyFileError):
        loads_policy(text)
    assert not os.path.exists(MARKER)


def laughs(levels: int) -> str:
    out = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    out += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(out) + f"\npolicies: *a{levels - 1}\n"


@pytest.mark.parametrize(("text", "fmt", "expect"), [
    (laughs(9), "yaml", "aliases counted"),  # 9**9 nodes from 10 lines
    ("[" * 10_000 + "]" * 10_000, "yaml", "nested"),
    ("[" * 10_000 + "]" * 10_000, "json", "nested"),
    ("a:\n" + "".join(" " * i + "b:\n" for i in range(1, 200)), "yaml", "nested"),
    ("id: x\ntitle: " + "a" * (5 * 1024 * 1024 + 1) + "\n", "yaml", "bytes"),
    ('{"id": "abc", "parameters": {"x": ' + "9" * 5000 + "}}", "json", "JSON"),
    ("x = " + "9" * 5000, "toml", "TOML"),
    ('{"id": "abc", "parameters": {"x": NaN}}', "json", "JSON"),
    ("pack: standard\nexclude: [[1]]\n", "yaml", "standard policy id"),
    ("policies: [{use: lateness-deduction, parameters: {1: 2}}]\n", "yaml", "parameters"),
])
def test_hostile_policy_files_get_one_policy_file_error(text: str, fmt: str,
                                                        expect: str) -> None:
    with pytest.raises(PolicyFileError, match=expect):
        loads_policy(text, fmt)


def test_an_oversized_policy_file_is_refused_before_it_is_read(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text("id: x\n" + "#" * (5 * 1024 * 1024) + "\n")
    with pytest.raises(PolicyFileError, match="at most 1048576 bytes"):
        load_policy(path)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


PACK_DOCS = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in PACK_FILES]
RULE_VALUES = st.one_of(
    _json_leaf, arbitrary_json, st.sampled_from([
        "$nope", "P99999999Y", "PT-1H", "-P1D", "P0D", "end_of_never", "R99", "nope.type",
        {"eq": 1}, {"gt": "x"}, {"in": 5}, {"in": [[1]]}, {"not_in": [{}]},
        {"contains_all": 5}, {"contains_all": [[1]]}, {"lt": 1e400}, 10**100, "25:00",
        "Asia/Nowhere", [1, 2], {"a": 1}, "x" * 300]))


@pytest.mark.slow
@fuzz(100)
@given(doc=st.sampled_from(range(len(PACK_DOCS))), data=st.data(),
       fmt=st.sampled_from(["yaml", "json"]))
def test_mutated_pack_policies_load_or_fail_with_a_policy_file_error(
        doc: int, data: st.DataObject, fmt: str) -> None:
    """The shipped policies with up to three values replaced anywhere (rule fields,
    conditions, parameters, messages) either load or raise one PolicyFileError."""
    tree = json.loads(json.dumps(PACK_DOCS[doc]))
    for path in data.draw(st.lists(st.sampled_from(_paths(tree)), min_size=1, max_size=3)):
        node = tree
        try:
            for key in path[:-1]:
                node = node[key]
            # A copy: sampled_from hands out the same dict every time, and a later path
            # may write into it (across examples too, until it contains itself).
            node[path[-1]] = copy.deepcopy(data.draw(RULE_VALUES))
        except (KeyError, IndexError, TypeError):
            continue  # an earlier replacement removed this path
    text = yaml.safe_dump(tree, allow_unicode=True) if fmt == "yaml" else json.dumps(tree)
    with contextlib.suppress(PolicyFileError):
        loads_policy(text, fmt)


@fuzz(150)
@given(doc=st.recursive(_json_leaf | st.sampled_from(["standard", "lateness-deduction",
                                                      "deadline", "PT1H"]),
                        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                            st.sampled_from(["pack", "exclude", "calendar", "policies", "use",
                                             "parameters", "id", "title", "clause", "rules",
                                             "shape", "timezone", "weekend", "x"]),
                            inner, max_size=5), max_leaves=25),
       fmt=st.sampled_from(["yaml", "json", "toml"]))
def test_arbitrary_policy_documents_fail_with_a_policy_file_error(doc: Any, fmt: str) -> None:
    if fmt == "toml":
        text = "\n".join(f"{k} = {json.dumps(v)}" for k, v in doc.items()) \
            if isinstance(doc, dict) else json.dumps(doc)
    else:
        text = yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc)
    with contextlib.suppress(PolicyFileError):
        loads_policy(text, fmt)


# --- snapshots ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def snapshot() -> bytes:
    session = Engine(policies()).session(allowed_lateness=timedelta(hours=2))
    session.feed_many(GOOD)
    return session.snapshot()


@fuzz(200)
@given(data=st.data())
def test_damaged_snapshots_raise_snapshot_error(snapshot: bytes, data: st.DataObject) -> None:
    """Truncated, bit-flipped, spliced or random bytes: a SnapshotError, never a partial
    restore."""
    how = data.draw(st.integers(0, 3))
    if how == 0:
        damaged = snapshot[:data.draw(st.integers(0, len(snapshot) - 1))]
    elif how == 1:
        pos = data.draw(st.integers(0, len(snapshot) - 1))
        bit = 1 << data.draw(st.integers(0, 7))
        damaged = snapshot[:pos] + bytes([snapshot[pos] ^ bit]) + snapshot[pos + 1:]
    elif how == 2:
        damaged = data.draw(st.binary(max_size=200))
    else:
        damaged = MAGIC + data.draw(st.binary(max_size=200))
    with pytest.raises(SnapshotError):
        ENGINE.restore(damaged)


def forge(payload: Any, *, raw: bytes | None = None, version: int = FORMAT_VERSION) -> bytes:
    """Snapshot bytes with a valid digest around any JSON (or raw body) — what someone who
    can write the checkpoint store could hand us."""
    import hashlib

    body = zlib.compress(raw if raw is not None else json.dumps(payload).encode())
    return (MAGIC + version.to_bytes(2, "big") + hashlib.blake2b(body, digest_size=16).digest()
            + body)


@fuzz(150)
@given(payload=arbitrary_json | st.fixed_dictionaries(
    {"kind": st.just("policykit.session"), "backend": st.just("native")},
    optional={"fingerprint": st.text(max_size=5), "seen": arbitrary_json,
              "evaluator": arbitrary_json, "window": arbitrary_json,
              "clock": st.sampled_from([{"$dt": "x"}, {"$dt": "2026-01-01T00:00:00+08:00"},
                                        {"$ref": 9}, {"$ev": {}}, {"$decision": []}])}))
def test_forged_snapshots_with_a_valid_digest_raise_snapshot_error(payload: Any) -> None:
    with pytest.raises(SnapshotError):
        ENGINE.restore(forge(payload))


def test_a_forged_snapshot_with_the_right_fingerprint_and_bad_state_is_refused(
        snapshot: bytes) -> None:
    from policykit.engine._snapshot import unpack

    engine = Engine(policies())
    good = unpack(snapshot)
    for key, value in [("evaluator", {"directory": {}, "heap": [], "rules": []}),
                       ("evaluator", {"directory": {"E1": 5}, "heap": [], "rules": []}),
                       ("seen", [1, 2]), ("clock", "2026-01-01"), ("stats", {"events": -1}),
                       ("window", {"allowed": timedelta(-1)}), ("window", {"ops": 5})]:
        with pytest.raises(SnapshotError):
            engine.restore(pack({**good, key: value}))
    bad_heap = {**good["evaluator"], "heap": [(datetime(2026, 1, 1, tzinfo=SHANGHAI), 99, 0,
                                               "k")]}
    with pytest.raises(SnapshotError, match="timer"):
        engine.restore(pack({**good, "evaluator": bad_heap}))


def test_a_pickle_inside_a_snapshot_is_never_unpickled() -> None:
    class Boom:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, (f"touch {MARKER}",))

    if os.path.exists(MARKER):
        os.remove(MARKER)
    evil = pickle.dumps(Boom())
    for data in (evil, forge(None, raw=evil), MAGIC + b"\x00\x01" + evil,
                 forge({"$ev": {"__reduce__": evil.hex()}})):
        with pytest.raises(SnapshotError):
            ENGINE.restore(data)
    assert not os.path.exists(MARKER)


def test_a_decompression_bomb_is_refused() -> None:
    from policykit.engine._snapshot import unpack

    body = zlib.compress(b" " * (64 * 1024 * 1024), 9)  # 64 KiB that inflate to 64 MiB
    with pytest.raises(SnapshotError, match="larger than"):
        unpack(forge(None, raw=b" " * (64 * 1024 * 1024)), limit=16 * 1024 * 1024)
    assert len(body) < 100_000


def test_another_format_version_is_refused_by_name() -> None:
    with pytest.raises(SnapshotError, match="format version 2"):
        ENGINE.restore(forge({}, version=2))


# --- the documented limits ----------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "ok"), [
    ("id", "x" * 256, True), ("id", "x" * 257, False),
    ("areas", ["A"] * 1000, True), ("areas", ["A"] * 1001, False),
    ("meta", nested(31), True), ("meta", nested(32), False),
    ("base_salary", "1000000000000", True), ("base_salary", "1000000000000.01", False),
    ("base_salary", "0.0001", True), ("base_salary", "0.00001", False),
    ("at", "1900-01-01T00:00:00Z", True), ("at", "1899-12-31T23:59:59Z", False),
    ("at", "2199-12-31T23:59:59Z", True), ("at", "2200-01-01T00:00:00Z", False),
    ("at", "2026-03-02T09:00:00+23:59", True), ("at", "2026-03-02T09:00:00+24:00", False),
])
def test_documented_limits(field: str, value: Any, ok: bool) -> None:
    record = {"id": "p1", "type": "employee.profile", "at": "2026-03-01T09:00:00+08:00",
              "employee_id": "E1", "role": "guard", "base_salary": "6000.00", field: value}
    assert _is_valid(record) is ok
