"""Hostile files through the readers: decompression bombs, huge lines and cells, one bad
item in a JSON array, odd CSV dialects and encodings. Only documented policykit errors
escape, memory stays bounded, and the good records around a bad one are still audited
(the same decisions as the clean log)."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from audit_data import UNTIL, events, policies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit import PolicyKitError
from policykit.audit import AuditReport, AuditSourceError, _readers, audit, read_records


def ids(report: AuditReport) -> list[str]:
    return [d.id for d in report.decisions]


@pytest.fixture(scope="module")
def reference() -> AuditReport:
    return audit(events(), policies(), UNTIL)


def lines(records: list[Any]) -> list[bytes]:
    return [r if isinstance(r, bytes) else json.dumps(r, ensure_ascii=False).encode()
            for r in records]


def peak_mib(action: Any) -> tuple[Any, float]:
    tracemalloc.start()
    try:
        result = action()
        return result, tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


# --- JSON Lines ------------------------------------------------------------------------------


def test_a_gzip_bomb_fails_the_source_instead_of_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readers, "GZIP_ALLOWANCE", 1 << 20)
    path = tmp_path / "bomb.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(b"\n".join(lines(events()[:3])) + b"\n")
        for _ in range(40):
            fh.write(b" " * (1 << 19) + b"\n")  # 20 MiB of blank lines
    assert path.stat().st_size < 64 * 1024
    with pytest.raises(AuditSourceError, match="decompression bomb") as caught:
        peak_mib(lambda: audit(path, policies(), UNTIL))
    assert str(path) in str(caught.value) and "100 times" in str(caught.value)


def test_a_huge_gzipped_line_is_quarantined_without_holding_it(
        tmp_path: Path, reference: AuditReport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readers, "MAX_GZIP_RATIO", 10**6)  # only the line bound is tested
    good = lines(events())
    path = tmp_path / "log.jsonl.gz"
    with gzip.open(path, "wb", compresslevel=6) as fh:
        fh.write(b"\n".join(good[:5]) + b"\n")
        fh.write(b'{"id": "huge", "topic": "' + b"x" * (1 << 20) * 24)  # one 24 MiB line
        fh.write(b'"}\n' + b"\n".join(good[5:]) + b"\n")
    report, peak = peak_mib(lambda: audit(path, policies(), UNTIL))
    assert peak < 12, f"{peak:.0f} MiB"
    (bad,) = report.quarantine
    assert bad.line == 6 and f"at most {_readers.MAX_RECORD_BYTES} bytes" in bad.error
    assert ids(report) == ids(reference)


def test_line_separators_inside_strings_do_not_split_a_jsonl_record(
        tmp_path: Path, reference: AuditReport) -> None:
    records = events()
    records[5] = {**records[5], "topic": "a\u2028b\u2029c\x85d\x0ce"}
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\r\n".join(lines(records)) + b"\r\n")
    report = audit(path, policies(), UNTIL)
    assert not report.quarantine
    assert report.events[records[5]["id"]].topic == "a\u2028b\u2029c\x85d\x0ce"  # type: ignore[attr-defined]
    assert ids(report) == ids(reference)


def test_progress_total_is_the_stored_size_and_is_reached(tmp_path: Path) -> None:
    for name, opener in (("log.jsonl", open), ("log.jsonl.gz", gzip.open)):
        path = tmp_path / name
        with opener(path, "wb") as fh:
            fh.write(b"\n".join(lines(events())) + b"\n")
        reader = read_records(path)
        assert reader.total == path.stat().st_size
        done = sum(reader.advance(raw) for _line, raw in reader.records)
        assert done == reader.total


# --- JSON arrays ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [
    "[" * 100_000 + "]" * 100_000,
    '{"id": "big", "n": ' + "9" * 5000 + "}",
    '{"id": "deep", "meta": ' + '{"a":' * 100_000 + "1" + "}" * 100_000 + "}",
    '{"id": "str", "topic": "' + "\\\"[{" * 300_000 + '"}',
    "tru",
], ids=["deep-array", "5000-digits", "deep-meta", "odd-string", "bad-literal"])
def test_one_bad_json_array_item_is_quarantined_and_the_rest_kept(
        tmp_path: Path, reference: AuditReport, bad: str) -> None:
    good = [json.dumps(r, indent=1) for r in events()]
    path = tmp_path / "log.json"
    path.write_text("[\n" + ",\n".join([*good[:4], bad, *good[4:]]) + "\n]\n",
                    encoding="utf-8")
    report = audit(path, policies(), UNTIL)
    (q,) = report.quarantine
    assert q.line is not None
    assert path.read_text(encoding="utf-8").splitlines()[q.line - 1].startswith(bad[:20])
    assert ids(report) == ids(reference)


def test_json_array_items_across_chunk_boundaries(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_readers, "_CHUNK", 7)  # every item, string and number is cut
    records = [*events(), {**events()[6], "id": "n1", "duration_s": 123456789}]
    path = tmp_path / "log.json"
    path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    report = audit(path, policies(), UNTIL)
    assert not report.quarantine and report.events["n1"].duration_s == 123456789  # type: ignore[attr-defined]
    text = path.read_text(encoding="utf-8").splitlines()
    for line, raw in read_records(path).records:
        assert text[line - 1].strip() == "{" and raw["id"] in text[line]
    assert ids(report) == ids(audit(records, policies(), UNTIL))


# --- CSV ------------------------------------------------------------------------------------


def csv_text(records: list[dict[str, Any]], delimiter: str = ",") -> str:
    columns = sorted({k for r in records for k in r})
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, delimiter=delimiter, lineterminator="\r\n")
    writer.writeheader()
    for r in records:
        writer.writerow({k: json.dumps(v) if isinstance(v, list | dict) else
                         str(v).lower() if isinstance(v, bool) else v for k, v in r.items()})
    return out.getvalue()


def test_a_csv_cell_over_the_field_limit_quarantines_only_its_row(
        tmp_path: Path, reference: AuditReport) -> None:
    records = events()
    records.insert(4, {**records[5], "id": "huge", "topic": "x" * 200_000})
    path = tmp_path / "log.csv"
    path.write_text(csv_text(records), encoding="utf-8")
    report = audit(path, policies(), UNTIL)
    (q,) = report.quarantine
    assert q.line == 6 and "131072 characters" in q.error
    assert ids(report) == ids(reference)


@pytest.mark.parametrize(("delimiter", "encoding"), [
    (";", "utf-8"), ("\t", "utf-8"), ("|", "utf-8"), (",", "utf-8-sig"), (";", "utf-16"),
    ("\t", "utf-16-be-bom"), (",", "gb18030"), (";", "gbk"), (",", "utf-32"),
])
def test_csv_dialects_and_encodings_are_detected(
        tmp_path: Path, reference: AuditReport, delimiter: str, encoding: str) -> None:
    records = events()
    for r in records:
        if "topic" in r:
            r["topic"] = "漏水，楼上；请尽快处理"  # Chinese text with full-width punctuation
    text = csv_text(records, delimiter)
    if encoding == "utf-16-be-bom":
        data = codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    else:
        data = text.encode(encoding)
    path = tmp_path / "log.csv"
    path.write_bytes(data)
    report = audit(path, policies(), UNTIL)
    assert not report.quarantine
    assert ids(report) == ids(reference)
    assert report.events["c1"].topic == "漏水，楼上；请尽快处理"  # type: ignore[attr-defined]


def test_csv_that_cannot_be_decoded_names_the_file_and_what_was_tried(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_bytes(csv_text(events()).encode("utf-16-le"))  # no byte-order mark
    with pytest.raises(AuditSourceError, match=r"tried .*UTF-8.*GB18030") as caught:
        audit(path, policies(), UNTIL)
    assert str(path) in str(caught.value)
    path.write_bytes(b"id,type,at\n" + bytes(range(0x80, 0x100)) * 4)
    with pytest.raises(AuditSourceError, match="GB18030"):
        audit(path, policies(), UNTIL)
    path.write_bytes(b"alpha beta\ngamma delta\n")
    with pytest.raises(AuditSourceError, match="delimiter"):
        audit(path, policies(), UNTIL)


def test_a_few_bad_bytes_in_utf8_csv_quarantine_their_row(
        tmp_path: Path, reference: AuditReport) -> None:
    text = csv_text(events()).encode("utf-8").split(b"\r\n")
    text.insert(3, text[3].replace(b"c1", b"c1\xff"))
    path = tmp_path / "log.csv"
    path.write_bytes(b"\r\n".join(text))
    report = audit(path, policies(), UNTIL)
    (q,) = report.quarantine
    assert q.line == 4 and "UTF-8" in q.error
    assert ids(report) == ids(reference)


def test_a_csv_line_over_the_record_limit_quarantines_only_its_row(
        tmp_path: Path, reference: AuditReport) -> None:
    records = events()
    # Many cells each under the cell limit: only the line length can catch it.
    huge = {**records[5], "id": "huge", **{f"x{i}": "y" * 100_000 for i in range(12)}}
    records.insert(4, huge)
    path = tmp_path / "log.csv"
    path.write_text(csv_text(records), encoding="utf-8")
    report, peak = peak_mib(lambda: audit(path, policies(), UNTIL))
    assert peak < 16, f"{peak:.0f} MiB"
    (q,) = report.quarantine
    assert q.line == 6 and f"at most {_readers.MAX_RECORD_BYTES} characters" in q.error
    assert ids(report) == ids(reference)


@pytest.mark.parametrize("fmt", ["json", "csv", "jsonl"])
def test_gzipped_files_of_each_format_stream_like_the_plain_ones(
        tmp_path: Path, reference: AuditReport, fmt: str) -> None:
    if fmt == "json":
        data = json.dumps(events(), indent=1).encode()
    elif fmt == "csv":
        data = csv_text(events(), ";").encode("gb18030")
    else:
        data = b"\n".join(lines(events()))
    path = tmp_path / f"log.{fmt}.gz"
    path.write_bytes(gzip.compress(data))
    report = audit(path, policies(), UNTIL)
    assert not report.quarantine and ids(report) == ids(reference)
    path.write_bytes(gzip.compress(data)[:-30])  # truncated
    with pytest.raises(AuditSourceError, match=r"gzip|not closed|array"):
        audit(path, policies(), UNTIL)


# --- fuzz -----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(garbage=st.lists(st.binary(max_size=40), min_size=1, max_size=4),
       fmt=st.sampled_from(["jsonl", "json", "csv"]), where=st.integers(0, 10))
def test_garbage_between_good_records_only_quarantines_itself(
        tmp_path_factory: pytest.TempPathFactory, reference: AuditReport,
        garbage: list[bytes], fmt: str, where: int) -> None:
    """Random bytes placed among good records: a documented policykit error, or the same
    decisions for the good records."""
    good = events()
    path = tmp_path_factory.mktemp("fuzz") / f"log.{fmt}"
    junk = b"".join(garbage).replace(b"\n", b" ").replace(b"\r", b" ")
    if fmt == "jsonl":
        rows = lines(good)
        rows.insert(where, junk)
        data = b"\n".join(rows)
    elif fmt == "json":
        items = [json.dumps(r).encode() for r in good]
        items.insert(where, junk.replace(b",", b" ").replace(b"]", b" ").replace(b"[", b" ")
                     .replace(b"{", b" ").replace(b"}", b" ").replace(b'"', b" ") or b"x")
        data = b"[" + b",\n".join(items) + b"]"
    else:
        rows = csv_text(good).encode().split(b"\r\n")
        rows.insert(min(where, len(rows) - 1) + 1, junk.replace(b'"', b" "))
        data = b"\r\n".join(rows)
    path.write_bytes(data)
    try:
        report = audit(path, policies(), UNTIL)
    except PolicyKitError:
        return
    assert ids(report) == ids(reference)


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["jsonl", "json", "csv"]))
def test_random_bytes_raise_only_policykit_errors(data: bytes, fmt: str) -> None:
    try:
        reader = read_records(data, format=fmt)
        for _line, _raw in reader.records:
            pass
    except PolicyKitError:
        pass


# --- a stray quote in a CSV row ---------------------------------------------------------------


def profile_rows(n: int) -> list[str]:
    return ["id,type,at,employee_id,role,base_salary"] + [
        f"p{i},employee.profile,2026-03-01T00:00:00+08:00,E{i},customer_service,5000.00"
        for i in range(n)]


STRAY = 'p-x,employee.profile,"2026-03-01T00:00:00+08:00,EX,customer_service,5000.00'


@pytest.mark.parametrize("where", [11, 2999, 3000])
def test_a_stray_quote_in_a_csv_row_quarantines_only_its_line(
        tmp_path: Path, where: int) -> None:
    """A '"' that opens a quoted cell never closed properly: its line is quarantined and the
    lines it would have swallowed are read as rows of their own (near the end of the file
    too, where the file ends inside the quote)."""
    rows = profile_rows(3000)
    rows.insert(where + 1, STRAY)
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = audit(path, [], "2026-04-01T00:00:00+08:00")
    (q,) = report.quarantine
    assert q.line == where + 2 and "unterminated quoted cell" in q.error
    assert len(report.events) == 3000
    reader = read_records(path)
    numbered = list(reader.records)
    assert [n for n, _ in numbered] == list(range(2, 3003))
    assert reader.total == path.stat().st_size


def test_a_stray_quote_closed_by_a_later_one_does_not_merge_the_rows_between(
        tmp_path: Path) -> None:
    rows = profile_rows(30)
    rows[5] = STRAY
    rows[9] = rows[9].replace("E8,", 'E8",')
    path = tmp_path / "log.csv"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    report = audit(path, [], "2026-04-01T00:00:00+08:00")
    assert [q.line for q in report.quarantine] == [6]  # line 10's '"' is inside a cell
    assert len(report.events) == 29 and report.events["p8"].employee_id == 'E8"'  # type: ignore[attr-defined]


def test_a_quoted_csv_cell_may_span_lines(tmp_path: Path) -> None:
    text = ("id,type,at,employee_id,role,base_salary,meta\n"
            'p1,employee.profile,2026-03-01T00:00:00+08:00,E1,customer_service,5000.00,"{\n'
            ' ""note"": ""two lines""\n}"\n'
            "p2,employee.profile,2026-03-01T00:00:00+08:00,E2,customer_service,5000.00,\n")
    path = tmp_path / "log.csv"
    path.write_text(text, encoding="utf-8")
    numbered = list(read_records(path).records)
    assert [n for n, _ in numbered] == [2, 5]
    assert numbered[0][1]["meta"] == {"note": "two lines"}
    report = audit(path, [], "2026-04-01T00:00:00+08:00")
    assert not report.quarantine and len(report.events) == 2


def test_a_csv_file_ending_inside_a_quote_on_its_last_line(tmp_path: Path) -> None:
    path = tmp_path / "log.csv"
    path.write_text("\n".join(profile_rows(3)) + "\n" + STRAY, encoding="utf-8")
    report = audit(path, [], "2026-04-01T00:00:00+08:00")
    (q,) = report.quarantine
    assert q.line == 5 and "unterminated quoted cell" in q.error
    assert len(report.events) == 3


def test_a_guessed_encoding_is_reported_and_a_named_one_is_used(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A Western export is not UTF-8 and decodes as GB18030 too: the guess is never silent,
    and naming the encoding reads the names right."""
    import logging

    import policykit

    src = tmp_path / "hr.csv"
    src.write_bytes("id,type,at,employee_id,role,base_salary\n"
                    "p1,employee.profile,2026-03-01T00:00:00+08:00,Müller,customer_service,"
                    "6000.00\n".encode("cp1252"))
    with caplog.at_level(logging.WARNING, logger="policykit"):
        guessed = policykit.audit(src, policy="lateness-deduction")
    assert guessed.notes and "GB18030" in guessed.notes[0] and "encoding=" in guessed.notes[0]
    assert any("GB18030" in r.getMessage() for r in caplog.records)
    named = policykit.audit(src, policy="lateness-deduction", encoding="cp1252")
    assert named.notes == [] and named.events["p1"].employee_id == "Müller"  # type: ignore[attr-defined]
    with pytest.raises(policykit.ParameterError, match="encoding"):
        policykit.audit(src, encoding="no-such-codec")
    utf8 = tmp_path / "ok.csv"
    utf8.write_text(src.read_bytes().decode("cp1252"), encoding="utf-8")
    assert policykit.audit(utf8, policy="lateness-deduction").notes == []


def test_a_csv_header_naming_a_column_twice_is_refused(tmp_path: Path) -> None:
    """Two 'id' columns: which one is the event's id is not for the reader to guess."""
    import policykit
    from policykit.audit import AuditSourceError

    src = tmp_path / "twice.csv"
    src.write_text("id,type,at,employee_id,id\n"
                   "c1,attendance.clock_in,2026-03-02T08:31:00+08:00,E7,c2\n", encoding="utf-8")
    with pytest.raises(AuditSourceError, match="'id'"):
        policykit.audit(src)


def test_two_stray_quotes_never_swallow_the_rows_between_them(tmp_path: Path) -> None:
    """A quote opened in one row and another closed rows later make one row that parses
    and has the header's cells: the lines inside it that are event rows of their own give
    it away, so only the first line is quarantined and the rest are read."""
    import policykit

    head = ("id,type,at,request_id,customer_id,employee_id,channel,in_remit,"
            "finish_at_once,topic\n")
    rows = [f"c{i},contact.received,2026-03-02T0{i}:00:00+08:00,R{i},K{i},E{i},phone,true,"
            f"false,t{i}\n" for i in range(1, 9)]
    rows[2] = rows[2].replace(",t3\n", ',"Urgent: screen broken\n')
    rows[5] = rows[5].replace(",t6\n", ',12 inch"\n')
    src = tmp_path / "stray2.csv"
    src.write_text(head + "".join(rows), encoding="utf-8")
    report = policykit.audit(src, policy="first-responder")
    assert (report.counts.read, report.counts.valid, report.counts.quarantined) == (8, 7, 1)
    assert [q.line for q in report.quarantine] == [4]
    assert sorted(report.events) == ["c1", "c2", "c4", "c5", "c6", "c7", "c8"]
    # A quoted cell that really holds line breaks is still one record.
    note = head + ('n1,contact.received,2026-03-02T01:00:00+08:00,R1,K1,E1,phone,true,false,'
                   '"line one\nline two, with a comma\nc9,contact.received is only text"\n')
    (tmp_path / "note.csv").write_text(note, encoding="utf-8")
    kept = policykit.audit(tmp_path / "note.csv", policy="first-responder")
    assert kept.counts.quarantined == 0 and "line two" in str(kept.events["n1"].topic)  # type: ignore[attr-defined]
