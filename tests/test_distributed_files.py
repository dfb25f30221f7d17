"""The driver-less Dask audit of files equals the single-process audit: decisions (ids and
content) and quarantine, with duplicates, conflicting copies, corrections (chained, and of
an event in another file), bad records and unknown types spread over JSONL and Parquet."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ConfigDict

from bench.distributed import cell
from bench.generate import generate
from policykit import EventBase, audit
from policykit.audit._readers import read_records
from policykit.errors import AuditSourceError, ParameterError

dask = pytest.importorskip("dask")
pd = pytest.importorskip("pandas")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

from policykit import distributed  # noqa: E402
from policykit.distributed import distributed_audit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "policykit" / "examples" / "acme-2026-03.jsonl"


@pytest.fixture(autouse=True)
def synchronous() -> Iterator[None]:
    with dask.config.set(scheduler="synchronous"):
        yield


def write_parquet(path: Path, records: list[dict[str, Any]]) -> None:
    """Records as a Parquet file the way an export holds them: nested fields as JSON text,
    every other value as text (the readers turn it back, as audit() does)."""
    columns = sorted({k for r in records for k in r})
    table = pa.table({c: pa.array([cell(r.get(c)) for r in records], type=pa.string())
                      for c in columns})
    pq.write_table(table, path)


def planted_log() -> list[Any]:
    """A generated month with every kind of record the pipeline must sort out."""
    events: list[Any] = list(generate(12, 1, 3))
    clock_ins = [e for e in events if e["type"] == "attendance.clock_in"]
    a, b, c = clock_ins[5], clock_ins[40], clock_ins[80]
    events += [
        dict(a),  # a redelivery: ignored
        {**b, "note": "a conflicting copy"} if "note" in b else {**b, "at": c["at"]},
        # A correction of c, then a correction of the correction (a chain).
        {**c, "id": "fix-1", "at": c["at"].replace("T0", "T1", 1), "meta": {"corrects": c["id"]}},
        {**c, "id": "fix-2", "meta": {"corrects": "fix-1"}},
        # A correction changing the subject: refused.
        {**clock_ins[100], "id": "fix-3", "employee_id": "E9999",
         "meta": {"corrects": clock_ins[100]["id"]}},
        {**clock_ins[120], "id": "fix-4", "meta": {"corrects": 42}},  # not an id: refused
        {"id": "odd-1", "type": "no.such_type", "at": a["at"]},
        {"id": "odd-2", "type": "attendance.clock_in", "at": "yesterday", "employee_id": "E1"},
    ]
    return events


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("log")
    events = planted_log()
    n = len(events)
    cuts = [0, n // 4, n // 2, 3 * n // 4, n]
    # The planted records (at the end) land in the last two files, their originals earlier.
    for i, (lo, hi) in enumerate(itertools.pairwise(cuts)):
        part = events[lo:hi]
        if i % 2 == 0:
            lines = [json.dumps(e, ensure_ascii=False) for e in part]
            if i == 2:
                lines.insert(3, "{not json")
            (root / f"part-{i}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            write_parquet(root / f"part-{i}.parquet", part)
    return root


def reference(paths: list[Path], until: str | None) -> Any:
    """audit() of the same records, in the same order, in one process."""
    raw = [r for p in paths for _line, r in read_records(p).records]
    return audit(raw, until=until)


def decisions_of(path: str) -> list[str]:
    return sorted(pd.read_parquet(path)["decision"])


def quarantine_of(path: str) -> list[tuple[Any, ...]]:
    q = pd.read_parquet(path)
    return sorted(zip(q["event_id"].fillna(""), q["error"], q["record"], strict=True))


@pytest.mark.slow(seconds=3)
def test_a_directory_of_jsonl_and_parquet_equals_audit(
        files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("the driver parsed the log")

    # The in-memory call's driver-side parse: never reached from a file source.
    monkeypatch.setattr(distributed, "_prepare", refuse)
    monkeypatch.setattr(distributed, "raw_records", refuse)
    summary = distributed_audit(files, until="2026-04-01", output=tmp_path / "out",
                                partitions=3)
    ref = reference(sorted(files.iterdir()), "2026-04-01")
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert len(ref.trail) > 50
    assert quarantine_of(summary.quarantine_path) == sorted(
        (q.event_id or "", q.error, q.record) for q in ref.quarantine)
    kinds = {q.error.split(":")[0] for q in ref.quarantine}
    assert len(ref.quarantine) >= 5, kinds  # bad JSON, unknown type, bad time, conflict, fix-3
    counts = ref.counts
    assert (summary.read, summary.quarantined, summary.corrected, summary.duplicates,
            summary.evaluated, summary.decisions) == (
        counts.read, counts.quarantined, counts.corrected, counts.duplicates,
        counts.evaluated, counts.decisions)
    assert summary.corrected == 2 and summary.duplicates == 1
    # Bad records are named by their own file and line.
    q = pd.read_parquet(summary.quarantine_path)
    bad = q[q["record"] == "{not json"]
    assert list(bad["source"]) == [str(files / "part-2.jsonl")] and list(bad["line"]) == [4]


def test_a_glob_without_until_equals_audit(files: Path, tmp_path: Path) -> None:
    summary = distributed_audit(str(files / "*.parquet"), output=str(tmp_path / "out"),
                                partitions=2)
    ref = reference(sorted(files.glob("*.parquet")), None)
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert summary.sources == tuple(str(p) for p in sorted(files.glob("*.parquet")))


def test_the_example_month_equals_audit(tmp_path: Path) -> None:
    summary = distributed_audit(str(EXAMPLE), until="2026-04-01", output=tmp_path,
                                partitions=3)
    ref = audit(EXAMPLE, until="2026-04-01")
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert summary.decisions == len(ref.trail) == sum(summary.by_outcome.values())
    # The money that stands, per policy and currency, as the report's decisions give it
    # (it summed every revision of a running total: 40,978.00 CNY, not 9,932.00); no entry
    # for decisions without an amount (there was one, keyed by NaN, worth Decimal('NaN')).
    expected: dict[tuple[str, str], Any] = {}
    assert len(ref.decisions) < len(ref.trail)
    for d in ref.decisions:
        if d.currency is not None and d.amount is not None:
            key = (d.policy, d.currency)
            expected[key] = expected.get(key, 0) + d.amount
    assert summary.money == expected
    q = pd.read_parquet(summary.decisions_path)
    assert q["amount"].isna().sum() == sum(d.amount is None for d in ref.trail)


def test_in_memory_records_with_an_output_equal_audit(tmp_path: Path) -> None:
    log = planted_log()[-400:]
    summary = distributed_audit(log, output=tmp_path, partitions=2)
    ref = audit(log)
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert quarantine_of(summary.quarantine_path) == sorted(
        (q.event_id or "", q.error, q.record) for q in ref.quarantine)


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "log.jsonl"
    with pytest.raises(AuditSourceError, match="nowhere"):
        distributed_audit(str(missing), output=tmp_path / "out")
    with pytest.raises(AuditSourceError, match="no file matches"):
        distributed_audit(str(tmp_path / "*.jsonl"), output=tmp_path / "out")


def test_a_path_is_read_as_a_path_and_needs_an_output(tmp_path: Path) -> None:
    with pytest.raises(ParameterError, match="output"):
        distributed_audit(str(EXAMPLE))


def test_an_fsspec_url_is_read_by_the_workers_and_written_there(tmp_path: Path) -> None:
    fsspec = pytest.importorskip("fsspec")
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()[:600]
    local = tmp_path / "head.jsonl.gz"
    import gzip

    local.write_bytes(gzip.compress(("\n".join([*lines, "{oops"]) + "\n").encode()))
    fs = fsspec.filesystem("memory")
    fs.pipe("/h17/in/head.jsonl.gz", local.read_bytes())
    summary = distributed_audit("memory://h17/in/*.gz", until="2026-04-01",
                                output="memory://h17/out", partitions=2)
    ref = audit(local, until="2026-04-01")
    assert summary.decisions_path == "memory://h17/out/decisions"
    got = sorted(pd.read_parquet(summary.decisions_path)["decision"])
    assert got == sorted(d.model_dump_json() for d in ref.trail) and got
    q = pd.read_parquet(summary.quarantine_path)
    assert list(q["source"]) == [fs.unstrip_protocol("/h17/in/head.jsonl.gz")]
    assert list(q["line"]) == [601]
    fs.rm("/h17", recursive=True)


@pytest.mark.slow(seconds=3)
def test_on_a_cluster_equals_audit(files: Path, tmp_path: Path) -> None:
    distributed_ = pytest.importorskip("distributed")
    # A real scheduler (futures, the peer-to-peer shuffle), its worker in this process.
    with distributed_.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                   dashboard_address=None) as cluster, \
            distributed_.Client(cluster) as client:
        summary = distributed_audit(files, until="2026-04-01", output=tmp_path,
                                    client=client)
    ref = reference(sorted(files.iterdir()), "2026-04-01")
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert quarantine_of(summary.quarantine_path) == sorted(
        (q.event_id or "", q.error, q.record) for q in ref.quarantine)


def test_a_guessed_encoding_is_noted_as_audit_notes_it(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """A CSV that is not UTF-8 is read as GB18030 on its worker; the summary says so, as
    AuditReport.notes does, and the driver logs it (the worker's reader does not)."""
    root = tmp_path / "in"
    root.mkdir()
    header = "id,type,at,employee_id,actor\n"
    row = "c1,attendance.clock_in,2026-03-02T08:31:00+08:00,E1,王五\n"
    (root / "a.csv").write_bytes((header + row).encode("gb18030"))
    (root / "b.csv").write_text(header + row.replace("c1", "c2"), encoding="utf-8")
    ref = audit(root / "a.csv")
    assert ref.notes
    caplog.clear()
    with caplog.at_level("WARNING", logger="policykit"):
        summary = distributed_audit(root, output=tmp_path / "out", partitions=2)
    assert summary.read == 2 and summary.quarantined == 0
    assert summary.notes == tuple(ref.notes)
    assert [r.getMessage() for r in caplog.records if "GB18030" in r.getMessage()] == \
        list(ref.notes)


def test_audits_keywords_and_progress_are_taken(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """The call reads like audit()'s: source=, policy= (a Policy, an id or a file) and
    progress=; the bar goes to stderr and names the stages."""
    ref = audit(EXAMPLE, policy="lateness-deduction", until="2026-04-01")
    summary = distributed_audit(source=str(EXAMPLE), policy="lateness-deduction",
                                until="2026-04-01", output=tmp_path, partitions=2,
                                progress=True)
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert "distributed audit" in capsys.readouterr().err
    from policykit import standard_pack

    in_memory = distributed_audit(source=[r for _n, r in read_records(EXAMPLE).records],
                                  policy=standard_pack().get("lateness-deduction"),
                                  until="2026-04-01", progress=True)
    assert sorted(d.model_dump_json() for d in in_memory) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert "shard" in capsys.readouterr().err


def test_the_old_keyword_names_still_work_with_a_warning(tmp_path: Path) -> None:
    records = [r for _n, r in read_records(EXAMPLE).records]
    new = distributed_audit(records, "lateness-deduction", "2026-04-01")
    with pytest.warns(DeprecationWarning, match=r"events=.*source="):
        old = distributed_audit(events=records, until="2026-04-01",
                                policy="lateness-deduction")
    with pytest.warns(DeprecationWarning, match=r"policies=.*policy="):
        old2 = distributed_audit(records, policies="lateness-deduction", until="2026-04-01")
    assert old == new == old2
    with pytest.raises(ParameterError, match=r"'events'.*not both"):
        distributed_audit(records, events=records)
    with pytest.raises(ParameterError, match="source: got None, expected the events to audit"):
        distributed_audit(until="2026-04-01")


def test_a_glob_reads_matched_directories_and_skips_writers_markers(tmp_path: Path) -> None:
    """``out/*`` over a Spark-style export: the matched sub-directory is read as a
    directory is, and ``_SUCCESS``/``.crc`` markers are not taken for event files; an
    unknown file the pattern names is still refused, naming it."""
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    root = tmp_path / "export"
    (root / "day=2").mkdir(parents=True)
    (root / "a.jsonl").write_text("".join(lines[:300]), encoding="utf-8")
    (root / "day=2" / "b.jsonl").write_text("".join(lines[300:]), encoding="utf-8")
    (root / "_SUCCESS").write_text("")
    (root / ".a.jsonl.crc").write_bytes(b"\x00crc")
    summary = distributed_audit(str(root / "*"), until="2026-04-01", output=tmp_path / "o",
                                partitions=2)
    ref = audit(EXAMPLE, until="2026-04-01")
    assert summary.read == len(lines)
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    (root / "notes.txt").write_text("not events")
    with pytest.raises(AuditSourceError, match=r"notes\.txt"):
        distributed_audit(str(root / "*"), until="2026-04-01", output=tmp_path / "p")


@pytest.mark.slow(seconds=3)
def test_a_shard_holds_its_rules_state_not_its_events(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard run whole (first-responder R3 + R6 + R7, 28% of a log) unpacks its
    events a chunk at a time as its session takes them: the run's peak memory is a small
    part of its events as models (it held them all before: 9.4 GiB of them at 10M), and
    its decisions are the single-process batch pipeline's."""
    import gc
    import tracemalloc

    from bench.shard_memory import routed
    from policykit import Engine, PolicySet
    from policykit._dask_files import _pack, _router, _run_shards, _unpack, actions
    from policykit._dask_files import shards_of as shards
    from policykit.engine import numbered, run_batch
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    router = _router(standard_pack(), 4)
    table = actions(router)
    group = next(g for g in router if g.routes is None and g.policy.id == "first-responder")
    events = [e for e in (parse_event(r) for r in generate(200, 1, 3))
              if group.base in shards(e, table)]
    blobs = [_pack(e) for e in events]
    # As the second shuffle delivers them (_route's rows), arrival order not time order:
    # the shard orders them itself.
    rows = routed(events[::-1], router)
    frame = rows[rows["shard"] == group.base]
    assert len(frame) == len(blobs)
    expected = run_batch(Engine(PolicySet([group.policy])), numbered(events)).decisions
    assert len(events) > 10_000 and expected
    del events
    monkeypatch.setattr("policykit._dask_files._FEED", 256)
    gc.collect()
    tracemalloc.start()
    try:
        models = [_unpack(b) for b in blobs]
        size = tracemalloc.get_traced_memory()[0]
        del models
        gc.collect()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        out = _run_shards(frame, router, None, None, "native")
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert peak < size / 3, (peak, size)
    assert list(out["decision"]) == [d.model_dump_json() for d in expected]


@given(st.data())
@settings(max_examples=150, deadline=None)
def test_an_event_packed_between_stages_comes_back_exactly(data: st.DataObject) -> None:
    """Every stage boundary carries events packed (values without names): the event that
    comes back is the one that left, field for field, with the same fields set and the
    same time zone objects, so the rules read what a single-process audit reads."""
    from policykit._dask_files import _pack, _unpack
    from policykit.testing import events

    e = data.draw(events())
    if data.draw(st.booleans()):  # as parsed: only some fields given
        e = type(e).model_validate(e.model_dump(exclude_defaults=True))
    back = _unpack(_pack(e))
    assert type(back) is type(e)
    assert back == e
    assert back.model_fields_set == e.model_fields_set
    assert back.model_dump_json() == e.model_dump_json()
    assert back.__pydantic_extra__ == e.__pydantic_extra__
    assert back.at.tzinfo == e.at.tzinfo and back.at.utcoffset() == e.at.utcoffset()


@given(st.lists(st.tuples(st.datetimes(timezones=st.sampled_from(
    [timezone(timedelta(hours=h, minutes=m)) for h, m in ((-12, 0), (0, 0), (5, 45),
                                                          (8, 0), (14, 0))])),
    st.text(min_size=1, max_size=4, alphabet=st.one_of(st.characters(), st.characters(
        categories=["Cs"])))), max_size=40))  # lone surrogates too
def test_a_shards_order_by_micros_and_utf8_ids_is_the_order_of_times_and_ids(
        rows: list[tuple[datetime, str]]) -> None:
    """The shard orders its events by (microseconds, id as UTF-8 bytes, lone surrogates
    kept) in Arrow: the (time, id) order of the single-process pipeline, across offsets
    and whatever the ids' characters."""
    from policykit._dask_files import _micros

    rows = list(dict(((i, (at, i)) for at, i in rows)).values())  # ids unique, as resolved
    table = pa.table({"at": [_micros(at) for at, _i in rows],
                      "id": pa.array([i.encode("utf-8", "surrogatepass") for _at, i in rows],
                                     type=pa.binary())})
    order = pa.compute.sort_indices(table, sort_keys=[("at", "ascending"),
                                                      ("id", "ascending")]).to_pylist()
    assert [rows[k] for k in order] == sorted(rows)


def test_times_in_a_named_zone_are_ordered_as_audit_orders_them(tmp_path: Path) -> None:
    """An in-memory log's times may share a ZoneInfo: Python compares those by their wall
    clocks, so across a DST gap (02:35 EST is after 03:20 EDT) their instants order them
    otherwise. audit() sorts and compares the times; the shards and the horizon do too (the
    microseconds' order made the shard's session refuse 02:35 after 03:20, and counted it
    after a 03:00 horizon that audit() keeps it before)."""
    from zoneinfo import ZoneInfo

    ny = ZoneInfo("America/New_York")
    log: list[dict[str, Any]] = [
        {**e, "at": datetime.fromisoformat(e["at"]).replace(tzinfo=ny)}  # same wall clock
        for e in generate(12, 1, 3)
        if e["type"] == "employee.profile" or "2026-03-06" < e["at"] < "2026-03-08T03"]
    gap = next(e for e in log if e["at"] == datetime(2026, 3, 8, 2, 34, 57, tzinfo=ny))
    log.append({**gap, "id": "later", "at": datetime(2026, 3, 8, 3, 20, tzinfo=ny)})
    n = len(log)
    for until in (None, datetime(2026, 3, 8, 3, tzinfo=ny)):
        summary = distributed_audit(log, until=until, output=tmp_path / str(until is None),
                                    partitions=2)
        ref = audit(log, until=until)
        assert decisions_of(summary.decisions_path) == sorted(
            d.model_dump_json() for d in ref.trail)
        assert len(ref.trail) > 10
        assert (summary.after_until, summary.evaluated) == (
            ref.counts.after_until, ref.counts.evaluated) == ((0, n) if until is None
                                                               else (1, n - 1))


def test_a_parquet_file_timed_in_a_named_zone_across_the_clocks_going_back(
        tmp_path: Path) -> None:
    """A Parquet timestamp column with a zone (an export's America/New_York) reads as
    ZoneInfo times: 01:10 EST (the second 01:10) compares before 01:50 EDT, as audit()
    orders them; the shard's session refused it when the shard ordered by instants."""
    at = pa.array([datetime(2026, 11, 1, h, m, tzinfo=UTC)
                   for h, m in ((5, 0), (5, 50), (6, 10), (7, 30))],
                  type=pa.timestamp("us", tz="America/New_York"))
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "type": ["patrol.round"] * 4,
                             "route_id": ["RT-01"] * 4, "guard_id": ["E0004"] * 4,
                             "at": at}), tmp_path / "log.parquet")
    summary = distributed_audit(tmp_path / "log.parquet", output=tmp_path / "out",
                                partitions=2)
    ref = audit(tmp_path / "log.parquet")
    assert summary.evaluated == ref.counts.evaluated == 4
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)


def test_a_record_with_a_lone_surrogate_is_quarantined_as_audit_quarantines_it(
        tmp_path: Path) -> None:
    """An in-memory record can carry text Parquet cannot hold (a lone surrogate, which
    validation refuses): it is quarantined as audit() quarantines it, its text written with
    the surrogate escaped, and the records around it are audited (this crashed building
    the quarantine's frame)."""
    log = planted_log()[-300:]
    bad = {**log[10], "id": "a\ud800"}
    summary = distributed_audit([*log, bad], output=tmp_path, partitions=2)
    ref = audit([*log, bad])
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert (summary.read, summary.quarantined) == (ref.counts.read, ref.counts.quarantined)
    q = pd.read_parquet(summary.quarantine_path)
    row = q[q["event_id"] == "a\\ud800"]
    mine = next(x for x in ref.quarantine if x.event_id == "a\ud800")
    assert list(row["error"]) == [mine.error.replace("\ud800", "\\ud800")]
    assert list(row["record"]) == [mine.record.replace("\ud800", "\\ud800")]


class _Loose(EventBase):
    """An event model allowing extra fields (pickled by name: defined at module level)."""

    model_config = ConfigDict(extra="allow")
    type: str = "loose.thing"


def test_an_event_with_extra_fields_set_is_packed_whole() -> None:
    """Fields set beyond the declared ones (a model allowing extras) are not in the packed
    mask: such an event travels as its whole pickle, and comes back the same."""
    from policykit._dask_files import _pack, _unpack

    e = _Loose.model_validate({"id": "x1", "type": "loose.thing",
                              "at": "2026-03-01T08:00:00+08:00", "note": "kept"})
    back = _unpack(_pack(e))
    assert back == e and back.__pydantic_extra__ == {"note": "kept"}
    assert back.model_fields_set == e.model_fields_set == {"id", "type", "at", "note"}


def test_the_money_that_stands_is_exact_when_a_revision_is_in_another_partition() -> None:
    """A running total's revisions supersede each other within one shard; were one in
    another partition, the partition says so (``foreign``) and the tally, given every
    superseded id, still adds up only what stands."""
    from policykit._dask_files import _decision_frame, _superseded, _tally

    ref = audit(EXAMPLE, until="2026-04-01")
    trail = ref.trail
    new = next(d for d in trail if d.supersedes)
    old = {d.id: d for d in trail}[new.supersedes[0]]
    # The revision and what it replaces, in two partitions.
    parts = [_decision_frame([d for d in trail if d is not old]), _decision_frame([old])]
    local = [_tally(p) for p in parts]
    assert local[0]["foreign"].max() >= 1 and local[1]["foreign"].max() == 0
    gone = frozenset(s for p in parts for s in _superseded(p))
    tallies = pd.concat([_tally(p, gone) for p in parts])
    money: dict[tuple[str, str], Any] = {}
    for row in tallies.itertuples(index=False):
        if row.currency is not None and row.standing:
            key = (row.policy, row.currency)
            money[key] = money.get(key, 0) + Decimal(row.amount)
    expected: dict[tuple[str, str], Any] = {}
    for d in ref.decisions:
        if d.currency is not None and d.amount is not None:
            key = (d.policy, d.currency)
            expected[key] = expected.get(key, 0) + d.amount
    assert money == expected
    assert sum(tallies["n"]) == len(trail)


def test_a_list_of_policy_ids_names_the_set_as_in_audit(tmp_path: Path) -> None:
    """``policy`` is audit()'s: a list of standard policy ids (or a policy-file mapping)
    names the set; it raised AttributeError ('str' object has no attribute 'id')."""
    chosen = ["staff-penalties", "lateness-deduction"]
    summary = distributed_audit(str(EXAMPLE), chosen, until="2026-04-01", output=tmp_path,
                                partitions=2)
    ref = audit(EXAMPLE, chosen, until="2026-04-01")
    assert {p for p, _k in summary.by_outcome} == set(chosen)
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    mapping = {"pack": "standard", "exclude": ["first-responder"]}
    log = list(generate(12, 1, 5))[:600]
    assert distributed_audit(log, mapping, partitions=2) == audit(log, mapping).trail
    with pytest.raises(ParameterError, match="staff-penalties"):
        distributed_audit(str(EXAMPLE), ["staff-penalty"], output=tmp_path)


def test_a_correction_naming_an_id_with_a_lone_surrogate_is_resolved_as_in_audit(
        tmp_path: Path) -> None:
    """``meta.corrects`` is not validated as an event id is: an in-memory record's can hold
    a lone surrogate, and the group it names was keyed by it (the shuffle's key column
    could not hold it: UnicodeEncodeError, the whole audit lost)."""
    log = planted_log()[-300:]
    first = next(e for e in log if e["type"] == "attendance.clock_in")
    fix = {**first, "id": "fix-s", "meta": {"corrects": "a\ud800"}}
    summary = distributed_audit([*log, fix], output=tmp_path, partitions=2)
    ref = audit([*log, fix])
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert quarantine_of(summary.quarantine_path) == sorted(
        (q.event_id or "", q.error, q.record) for q in ref.quarantine)
    assert (summary.read, summary.quarantined, summary.corrected, summary.evaluated) == (
        ref.counts.read, ref.counts.quarantined, ref.counts.corrected, ref.counts.evaluated)


def test_the_driver_recounts_with_every_superseded_id_when_a_partition_says_foreign(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver's second tally (a partition naming a superseded decision it does not
    hold) runs to the end and gives the money that stands: collecting the partitions'
    superseded ids raised TypeError ("No dispatch for <class 'list'>")."""
    from policykit import _dask_files

    tally = _dask_files._tally
    given: list[bool] = []

    def claims_foreign(part: Any, gone: frozenset[str] | None = None) -> Any:
        out = tally(part, gone)
        given.append(gone is not None)
        if gone is None:
            out["foreign"] = 1
        return out

    monkeypatch.setattr(_dask_files, "_tally", claims_foreign)
    summary = distributed_audit(str(EXAMPLE), until="2026-04-01", output=tmp_path,
                                partitions=3)
    ref = audit(EXAMPLE, until="2026-04-01")
    assert any(given) and not all(given)  # both tallies ran
    expected: dict[tuple[str, str], Any] = {}
    for d in ref.decisions:
        if d.currency is not None and d.amount is not None:
            key = (d.policy, d.currency)
            expected[key] = expected.get(key, 0) + d.amount
    assert summary.money == expected and len(expected) == 2
    assert summary.decisions == len(ref.trail)


def test_a_file_read_a_slice_at_a_time_gives_what_the_whole_file_gives(
        files: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A reading task validates and places its file a slice of records at a time (it
    holds one slice's models, not the file's): with slices of 7 records, cut through the
    planted redeliveries, corrections and bad records, the output is audit()'s."""
    monkeypatch.setattr("policykit._dask_files._PARSE", 7)
    summary = distributed_audit(files, until="2026-04-01", output=tmp_path / "out",
                                partitions=3)
    ref = reference(sorted(files.iterdir()), "2026-04-01")
    assert decisions_of(summary.decisions_path) == sorted(
        d.model_dump_json() for d in ref.trail)
    assert quarantine_of(summary.quarantine_path) == sorted(
        (q.event_id or "", q.error, q.record) for q in ref.quarantine)
    assert (summary.read, summary.quarantined, summary.corrected, summary.duplicates,
            summary.evaluated) == (ref.counts.read, ref.counts.quarantined,
                                   ref.counts.corrected, ref.counts.duplicates,
                                   ref.counts.evaluated)
    q = pd.read_parquet(summary.quarantine_path)
    assert list(q[q["record"] == "{not json"]["line"]) == [4]


@pytest.mark.slow(seconds=3)
def test_a_reading_task_holds_a_slice_of_models_not_its_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task reading a file holds its packed events and one slice's models: its peak
    (tracemalloc) stays under half of the file's events as models (a whole file's models
    made a 500,000-event file's task peak at 1.5 GiB)."""
    import gc
    import tracemalloc

    from policykit._dask_files import _read_file
    from policykit.models.parsing import parse_event
    from policykit.pack import standard_pack

    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in generate(100, 1, 3)),
                   encoding="utf-8")
    pset = standard_pack()
    monkeypatch.setattr("policykit._dask_files._PARSE", 1024, raising=False)
    _read_file(0, str(log), True, pset, None, None, None)  # imports and caches, once
    gc.collect()
    tracemalloc.start()
    try:
        models = [parse_event(line) for line in log.read_text(encoding="utf-8").splitlines()]
        size = tracemalloc.get_traced_memory()[0]
        del models
        gc.collect()
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        out = _read_file(0, str(log), True, pset, None, None, None)
        peak = tracemalloc.get_traced_memory()[1] - start
    finally:
        tracemalloc.stop()
    assert len(out["events"]) > 10_000
    assert peak < size / 2, (peak, size)
