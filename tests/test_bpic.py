"""The BPIC 2013 reader: the real log's first rows, and malformed rows counted, not fatal."""

from __future__ import annotations

import sys
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bpic import COLUMNS, BpicStats, read_bpic  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "bpic2013-volvo-incidents.zip"
TYPES = {
    "contact.received", "request.handed_over", "request.resolved", "incident.detected",
    "incident.notified", "incident.progress", "incident.resolved",
}


@pytest.mark.skipif(not DATA.exists(),
                    reason=f"the BPIC 2013 log is not at {DATA} (shared/data beside the repo)")
def test_first_2000_rows_of_the_real_log() -> None:
    stats = BpicStats()
    events = list(read_bpic(DATA, limit=2000, stats=stats))
    assert stats.rows == 2000
    assert not stats.malformed
    assert stats.offsets == {"+01:00": 2000}
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
