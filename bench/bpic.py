"""Map the BPI Challenge 2013 incident log (Volvo IT Belgium) to policykit events.

The log is the BPI Challenge 2013 data set (Ward Steeman, 2013, 4TU.ResearchData,
doi:10.4121/uuid:3537c19d-6c64-4b1d-815d-915ab0e479da), as the zip prepared in the
IBM/processmining repository. It is not part of this repository and is never copied into it:
it is read in place from ``--data PATH``, else from ``$POLICYKIT_BPIC``, else from
``shared/data/bpic2013-volvo-incidents.zip`` in the directory that holds the checkout; the
benchmark skips it when it is absent. The reader takes the zip or the bare CSV. Its tests run
on ``tests/data/bpic-sample.csv``, a made-up log in the same format
(``tests/data/make_bpic_sample.py``). Inside the zip is one CSV, ``VINST-new.csv`` (UTF-8 with
a byte-order mark, CRLF lines, 17 columns): one row per status change of a service request
(SR), grouped by SR and in time order within each SR.

Time stamps are ISO-8601 with an offset (``2010-03-31T15:59:42+01:00``). Every row of this
copy carries ``+01:00``, summer months included, so the exporter wrote a fixed UTC+1 rather
than Belgian wall-clock time; the instants are what the text says either way. An event's
``at`` is the row's text unchanged (it is already a valid offset date-time), and ordering
is by instant. A row whose time has no offset, or does not parse, is malformed.

Mapping, per SR (its rows in time order):

- first row → ``contact.received``: ``request_id`` = SR Number, ``customer_id`` =
  ``<country>-<product>`` (the data names no customer; ``unknown`` for country ``0``). That
  groups many users as one "customer", so first-responder R6 (same customer and topic
  while a request is open) reads thousands of concurrent SRs as second calls;
  ``customer="request"`` makes each SR its own customer instead,
  ``employee_id`` = Resource, ``channel`` ``other``, ``topic`` = Product, ``in_remit`` =
  ST Level is L1, ``finish_at_once`` false, ``major`` = impact is Major.
- a change of owner or support level → ``request.handed_over`` (``registered`` true: the
  ticket system records every transfer; ``to_role`` = ``support_l1`` / ``support_l2`` /
  ``support_l3`` / ``support_l2_l3`` from ST Level). A *Queued* row is the registration of
  a transfer to a team queue: the handover is dated at the first queued row and names the
  person who accepts it next (the queue itself has no owner). An *Accepted* row by someone
  else, without a queue between, is a direct reassignment, dated at that row.
- the first *Completed* row (Resolved, Closed, In Call, Cancelled) after an open stretch →
  ``request.resolved`` (a Closed after a Resolved adds nothing; a reopened SR that completes
  again is resolved again).
- Major-impact SRs also → ``incident.detected`` (severity major, by the first Resource) at
  the first row, ``incident.notified`` to ``departments`` at each transfer to another
  support team (with time, place = country and symptoms; the data has no response plan and
  no notification of sales or a manager), ``incident.progress`` at each later *Accepted*
  row, and ``incident.resolved`` at the first completion.

*Unmatched* rows (the status the source could not match) carry no event. Malformed rows are
counted by reason in ``BpicStats.malformed`` and skipped; the reader never raises on data.

    python bench/bpic.py --out /tmp/bpic.jsonl [--limit 2000] [--data PATH]
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PATH = Path(os.environ.get("POLICYKIT_BPIC")
                    or ROOT.parent / "shared" / "data" / "bpic2013-volvo-incidents.zip")

COLUMNS = (
    "SR Number", "Change Date+Time", "Status", "Sub Status", "Activity", "Activity Level",
    "Involved ST Function Div", "Involved Org line 3", "Involved ST", "Involved ST 2",
    "ST Level", "SR Latest Impact", "Product", "Country", "Owner Country",
    "Owner First Name", "Resource",
)
STATUSES = ("Accepted", "Queued", "Completed", "Unmatched")
LEVELS = {"L1": "support_l1", "L2": "support_l2", "L3": "support_l3", "L2/L3": "support_l2_l3"}
# Within one row, events keep this order (a first row that is already completed is
# received before it is resolved).
ORDER = {
    "contact.received": 0,
    "incident.detected": 1,
    "request.handed_over": 2,
    "incident.notified": 3,
    "incident.progress": 4,
    "request.resolved": 5,
    "incident.resolved": 6,
}
SUFFIX = {
    "contact.received": "c",
    "incident.detected": "i",
    "request.handed_over": "h",
    "incident.notified": "n",
    "incident.progress": "p",
    "request.resolved": "r",
    "incident.resolved": "ir",
}


@dataclass(slots=True)
class Row:
    """One well-formed status change."""

    no: int  # 1-based data row number (the header is row 0)
    sr: str
    at: str
    instant: datetime
    status: str
    sub_status: str
    team: str
    level: str
    impact: str
    product: str
    country: str
    resource: str


@dataclass
class BpicStats:
    """What a read saw: rows, service requests, malformed rows by reason, events by type."""

    rows: int = 0
    service_requests: int = 0
    unmatched_rows: int = 0
    reopened: int = 0
    level_only_handovers: int = 0
    malformed: Counter[str] = field(default_factory=Counter)
    events: Counter[str] = field(default_factory=Counter)
    first: str | None = None
    last: str | None = None
    offsets: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {
            "rows": self.rows,
            "service_requests": self.service_requests,
            "unmatched_rows": self.unmatched_rows,
            "reopened": self.reopened,
            "level_only_handovers": self.level_only_handovers,
            "malformed": dict(sorted(self.malformed.items())),
            "events": sum(self.events.values()),
            "by_type": dict(sorted(self.events.items())),
            "first": self.first,
            "last": self.last,
            "offsets": dict(sorted(self.offsets.items())),
        }


def _csv_member(zf: zipfile.ZipFile) -> str:
    """The CSV inside the archive (not macOS resource-fork shadows)."""
    names = [n for n in zf.namelist()
             if n.lower().endswith(".csv") and not n.startswith("__MACOSX/")]
    if not names:
        raise ValueError(f"no CSV file in {zf.filename}")
    return names[0]


def _parse(no: int, cells: list[str], stats: BpicStats) -> Row | None:
    """A data row, or None (counted by reason) if it is malformed."""
    if len(cells) != len(COLUMNS):
        stats.malformed["column_count"] += 1
        return None
    sr, at, status, sub = cells[0].strip(), cells[1].strip(), cells[2].strip(), cells[3].strip()
    if not sr:
        stats.malformed["sr_number"] += 1
        return None
    try:
        instant = datetime.fromisoformat(at)
    except ValueError:
        stats.malformed["time"] += 1
        return None
    if instant.tzinfo is None or instant.utcoffset() is None:
        stats.malformed["time_without_offset"] += 1
        return None
    if status not in STATUSES:
        stats.malformed["status"] += 1
        return None
    level = cells[10].strip()
    if level not in LEVELS:
        stats.malformed["st_level"] += 1
        return None
    resource = cells[16].strip()
    if not resource:
        stats.malformed["resource"] += 1
        return None
    stats.offsets[at[19:] if len(at) > 19 else "?"] += 1
    return Row(no, sr, at, instant, status, sub, cells[8].strip(), level, cells[11].strip(),
               cells[12].strip() or "unknown", cells[13].strip().lower(), resource)


def _rows(path: Path, limit: int | None, stats: BpicStats) -> Iterator[Row]:
    """The well-formed rows of the zip as published, or of the CSV itself."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf, zf.open(_csv_member(zf)) as raw:
            yield from _csv_rows(raw, path, limit, stats)
    else:
        with path.open("rb") as raw:
            yield from _csv_rows(raw, path, limit, stats)


def _csv_rows(raw: IO[bytes], path: Path, limit: int | None,
              stats: BpicStats) -> Iterator[Row]:
    # utf-8-sig drops the byte-order mark; undecodable bytes become U+FFFD rather
    # than stopping the read (the row is then judged on its cells).
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
    reader = csv.reader(text)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ValueError(f"unexpected header in {path}: {header!r}")
    no = 0
    while limit is None or no < limit:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error:
            no += 1
            stats.rows += 1
            stats.malformed["csv"] += 1
            continue
        no += 1
        stats.rows += 1
        row = _parse(no, cells, stats)
        if row is not None:
            yield row


Keyed = tuple[datetime, int, int, dict[str, Any]]


def _event(row: Row, etype: str, fields: dict[str, Any], to: Row | None = None) -> Keyed:
    """An event dated at ``row``; ``meta`` traces it to its row (and, for a transfer, to the
    row where the new owner accepted it)."""
    ev: dict[str, Any] = {"id": f"bpic-{row.no:05d}-{SUFFIX[etype]}", "type": etype, "at": row.at}
    ev.update(fields)
    meta: dict[str, Any] = {"source": "bpic2013", "row": row.no,
                            "activity": f"{row.status}-{row.sub_status}",
                            "level": row.level, "team": row.team}
    if to is not None:
        meta.update(accepted_row=to.no, to_level=to.level, to_team=to.team)
    ev["meta"] = meta
    return row.instant, row.no, ORDER[etype], ev


def _map_sr(rows: list[Row], stats: BpicStats, by_request: bool) -> list[Keyed]:
    """The events of one service request (rows already in time order)."""
    out: list[Keyed] = []
    first = rows[0]
    sr, major = first.sr, first.impact == "Major"
    country = first.country if first.country not in ("", "0") else "unknown"
    customer = f"customer-{sr}" if by_request else f"{country}-{first.product}"
    out.append(_event(first, "contact.received", {
        "request_id": sr, "customer_id": customer, "employee_id": first.resource,
        "channel": "other", "topic": first.product, "in_remit": first.level == "L1",
        "finish_at_once": False, "major": major,
    }))
    if major:
        out.append(_event(first, "incident.detected", {
            "incident_id": sr, "severity": "major", "employee_id": first.resource,
            "customer_id": customer}))
    details = {"time": first.at, "place": country,
               "symptoms": f"major-impact service request on {first.product}"}
    owner, level, team = first.resource, first.level, first.team
    completed = first.status == "Completed"
    if completed:
        out.append(_event(first, "request.resolved", {"request_id": sr,
                                                      "employee_id": first.resource}))
        if major:
            out.append(_event(first, "incident.resolved", {"incident_id": sr}))
    incident_open = major and not completed
    queued_at: Row | None = None  # the first queued row of the current transfer
    for row in rows[1:]:
        if row.status == "Unmatched":
            continue
        if row.status == "Completed":
            if not completed:
                completed = True
                out.append(_event(row, "request.resolved", {"request_id": sr,
                                                            "employee_id": row.resource}))
                if incident_open:
                    out.append(_event(row, "incident.resolved", {"incident_id": sr}))
                    incident_open = False
            queued_at = None
            continue
        if completed:
            stats.reopened += 1
            completed = False
        if row.status == "Queued":
            queued_at = queued_at or row
            continue
        # Accepted: the row's Resource owns the request from now on.
        if row.resource != owner or row.level != level:
            when = queued_at or row
            if row.resource == owner:
                stats.level_only_handovers += 1
            out.append(_event(when, "request.handed_over", {
                "request_id": sr, "from_employee": owner, "to_employee": row.resource,
                "to_role": LEVELS[row.level], "registered": True}, row))
            if incident_open and row.team != team:
                out.append(_event(when, "incident.notified", {
                    "incident_id": sr, "employee_id": owner, "recipients": ["departments"],
                    "details": details}, row))
        elif incident_open:
            out.append(_event(row, "incident.progress", {"incident_id": sr,
                                                         "employee_id": row.resource}))
        owner, level, team, queued_at = row.resource, row.level, row.team, None
    return out


def read_bpic(path: Path | str = DEFAULT_PATH, limit: int | None = None,
              stats: BpicStats | None = None,
              customer: Literal["country-product", "request"] = "country-product",
              ) -> Iterator[dict[str, Any]]:
    """The log's events in time order (ties: file order). ``limit`` caps the data rows read;
    pass ``stats`` to learn what was read, skipped and produced; ``customer`` picks how a
    customer id is made up (see the module's docstring)."""
    stats = stats if stats is not None else BpicStats()
    by_sr: dict[str, list[Row]] = {}
    for row in _rows(Path(path), limit, stats):
        if row.status == "Unmatched":
            stats.unmatched_rows += 1
        by_sr.setdefault(row.sr, []).append(row)
    events: list[Keyed] = []
    for rows in by_sr.values():
        rows.sort(key=lambda r: (r.instant, r.no))
        if rows[0].status == "Unmatched":
            rows = [r for r in rows if r.status != "Unmatched"]
            if not rows:
                continue
        events.extend(_map_sr(rows, stats, customer == "request"))
    stats.service_requests = len(by_sr)
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    if events:
        stats.first, stats.last = events[0][3]["at"], events[-1][3]["at"]
    for _, _, _, ev in events:
        stats.events[ev["type"]] += 1
        yield ev


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="BPIC 2013 incidents → policykit events (JSONL)")
    ap.add_argument("--data", type=Path, default=DEFAULT_PATH,
                    help="the zip or its CSV (default: %(default)s)")
    ap.add_argument("--limit", type=int, default=None, help="read at most this many data rows")
    ap.add_argument("--customer", choices=("country-product", "request"),
                    default="country-product", help="how customer ids are made up")
    ap.add_argument("--out", type=Path, required=True, help="JSONL file to write ('-': stdout)")
    args = ap.parse_args(argv)
    stats = BpicStats()
    events = read_bpic(args.data, args.limit, stats, args.customer)
    if str(args.out) == "-":
        for ev in events:
            sys.stdout.write(json.dumps(ev, ensure_ascii=False) + "\n")
    else:
        with args.out.open("w", encoding="utf-8", newline="\n") as fh:
            for ev in events:
                fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    print(json.dumps(stats.as_dict(), indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
