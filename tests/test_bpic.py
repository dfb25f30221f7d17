"""The BPIC 2013 reader: a synthetic log in the real format (always), the real log's first
rows (when it is on the machine), and malformed rows counted, not fatal."""

from __future__ import annotations

import importlib.util
import zipfile
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench.bpic import COLUMNS, DEFAULT_PATH, BpicStats, read_bpic

ROOT = Path(__file__).resolve().parents[1]

SAMPLE = ROOT / "tests" / "data" / "bpic-sample.csv"
TYPES = {
    "contact.received", "request.handed_over", "request.resolved", "incident.detected",
    "incident.notified", "incident.progress", "incident.resolved",
}


def _maker() -> Any:
    spec = importlib.util.spec_from_file_location(
        "make_bpic_sample", ROOT / "tests" / "data" / "make_bpic_sample.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _check_log(events: list[dict[str, Any]], stats: BpicStats, rows: int) -> None:
    """What holds of any well-formed log in this format, read from its start."""
    assert stats.rows == rows
    assert not stats.malformed
    assert stats.offsets == {"+01:00": rows}
    assert {e["type"] for e in events} <= TYPES
    assert {"contact.received", "request.handed_over", "request.resolved"} <= {
        e["type"] for e in events}
    assert len({e["id"] for e in events}) == len(events)
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert all(t.utcoffset() is not None for t in times)
    assert times == sorted(times)
    # Each request opens with its first contact; nothing about it comes before.
    first: dict[str, str] = {}
    for e in events:
        if "request_id" in e:
            first.setdefault(e["request_id"], e["type"])
    assert set(first.values()) == {"contact.received"}
    assert stats.events["contact.received"] == stats.service_requests == len(first)
    handover = next(e for e in events if e["type"] == "request.handed_over")
    assert handover["registered"] is True
    assert handover["to_role"].startswith("support_l")


def test_the_committed_sample_is_what_its_script_writes() -> None:
    assert SAMPLE.read_bytes() == _maker().text().encode("utf-8")


def test_the_synthetic_sample_reads_like_the_real_log(tmp_path: Path) -> None:
    stats = BpicStats()
    events = list(read_bpic(SAMPLE, stats=stats))
    _check_log(events, stats, 202)
    # The sample exercises every branch of the mapping, not just the common ones.
    assert set(stats.events) == TYPES
    assert stats.unmatched_rows and stats.reopened and stats.level_only_handovers
    roles = {e["to_role"] for e in events if e["type"] == "request.handed_over"}
    assert roles == {"support_l1", "support_l2", "support_l3", "support_l2_l3"}
    # The zip as published and its bare CSV read the same.
    archive = tmp_path / "log.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("VolvoIT-Challenge/VINST-new.csv", SAMPLE.read_bytes())
    assert list(read_bpic(archive, customer="request")) == list(
        read_bpic(SAMPLE, customer="request"))


REAL = DEFAULT_PATH  # $POLICYKIT_BPIC, else beside the checkout (see bench/bpic.py)


@pytest.mark.skipif(not REAL.exists(),
                    reason="the real BPIC 2013 log is not on this machine (optional: set "
                           "POLICYKIT_BPIC to its zip; tests/data/bpic-sample.csv stands in)")
def test_first_2000_rows_of_the_real_log() -> None:
    stats = BpicStats()
    events = list(read_bpic(REAL, limit=2000, stats=stats))
    _check_log(events, stats, 2000)


def _zip(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "log.zip"
    text = "\ufeff" + ",".join(COLUMNS) + "\r\n" + "".join(r + "\r\n" for r in rows)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("VolvoIT-Challenge/VINST-new.csv", text.encode("utf-8"))
        zf.writestr("__MACOSX/VolvoIT-Challenge/._VINST-new.csv", b"\x00\x05")
    return path


def _row(sr: str, at: str, status: str, sub: str, level: str, resource: str,
         impact: str = "Medium", team: str = "V30") -> str:
    return ",".join([sr, at, status, sub, f"{status}-{sub}", f"{status}-{sub}-{level}", "A2_4",
                     "Org line A2", team, team, level, impact, "PROD1", "fr", "France",
                     resource.split("-")[-1], resource])


def test_mapping_and_malformed_rows(tmp_path: Path) -> None:
    rows = [
        _row("1-1", "2010-04-01T09:00:00+01:00", "Accepted", "In Progress", "L1", "fr-Ann"),
        _row("1-1", "2010-04-01T09:10:00+01:00", "Queued", "Awaiting Assignment", "L2", "fr-Ann",
             team="V5 2nd"),
        _row("1-1", "2010-04-01T10:00:00+01:00", "Accepted", "In Progress", "L2", "fr-Bob",
             team="V5 2nd"),
        _row("1-1", "2010-04-01T11:00:00+01:00", "Completed", "Resolved", "L2", "fr-Bob",
             team="V5 2nd"),
        _row("1-1", "2010-04-09T00:00:00+01:00", "Completed", "Closed", "L2", "fr-Siebel",
             team="V5 2nd"),
        _row("1-2", "2010-04-01T08:30:00+02:00", "Accepted", "In Progress", "L1", "be-Cy",
             impact="Major"),
        _row("1-2", "2010-04-01T08:40:00+02:00", "Accepted", "In Progress", "L1", "be-Cy",
             impact="Major"),
        _row("1-2", "2010-04-01T09:00:00+02:00", "Completed", "Resolved", "L1", "be-Cy",
             impact="Major"),
        "1-3,not a time,Accepted,In Progress",  # too few columns
        _row("1-4", "yesterday", "Accepted", "In Progress", "L1", "fr-Ann"),
        _row("1-5", "2010-04-01T09:00:00", "Accepted", "In Progress", "L1", "fr-Ann"),
        _row("", "2010-04-01T09:00:00+01:00", "Accepted", "In Progress", "L1", "fr-Ann"),
        _row("1-6", "2010-04-01T09:00:00+01:00", "Lost", "In Progress", "L1", "fr-Ann"),
        _row("1-7", "2010-04-01T09:00:00+01:00", "Accepted", "In Progress", "L9", "fr-Ann"),
        _row("1-8", "2010-04-01T09:00:00+01:00", "Accepted", "In Progress", "L1", ""),
    ]
    stats = BpicStats()
    events = list(read_bpic(_zip(tmp_path, rows), stats=stats))
    assert stats.rows == len(rows)
    assert stats.malformed == {"column_count": 1, "time": 1, "time_without_offset": 1,
                               "sr_number": 1, "status": 1, "st_level": 1, "resource": 1}
    assert stats.service_requests == 2
    # Ordered by instant, the texts kept: 1-2's 09:00+02:00 (07:00 UTC) comes before 1-1's
    # 09:00+01:00 (08:00 UTC).
    assert [(e["type"], e["at"]) for e in events] == [
        ("contact.received", "2010-04-01T08:30:00+02:00"),
        ("incident.detected", "2010-04-01T08:30:00+02:00"),
        ("incident.progress", "2010-04-01T08:40:00+02:00"),
        ("request.resolved", "2010-04-01T09:00:00+02:00"),
        ("incident.resolved", "2010-04-01T09:00:00+02:00"),
        ("contact.received", "2010-04-01T09:00:00+01:00"),
        ("request.handed_over", "2010-04-01T09:10:00+01:00"),
        ("request.resolved", "2010-04-01T11:00:00+01:00"),
    ]
    contact = events[5]
    assert contact["request_id"] == "1-1" and contact["employee_id"] == "fr-Ann"
    assert contact["in_remit"] is True and contact["finish_at_once"] is False
    assert contact["customer_id"] == "fr-PROD1" and contact["topic"] == "PROD1"
    assert events[0]["major"] is True and events[1]["severity"] == "major"
    handover = events[6]
    assert (handover["from_employee"], handover["to_employee"], handover["to_role"]) == (
        "fr-Ann", "fr-Bob", "support_l2")
    assert handover["meta"]["accepted_row"] == 3
    assert events[7]["employee_id"] == "fr-Bob"  # the Closed row after it adds nothing


def test_limit_counts_rows_and_keeps_order(tmp_path: Path) -> None:
    rows = [_row(f"1-{i}", f"2010-04-0{9 - i}T09:00:00+01:00", "Accepted", "In Progress", "L1",
                 "fr-Ann") for i in range(5)]
    stats = BpicStats()
    events = list(read_bpic(_zip(tmp_path, rows), limit=3, stats=stats))
    assert stats.rows == 3
    assert [e["request_id"] for e in events] == ["1-2", "1-1", "1-0"]
