"""Running an audit: resolve the policies and the horizon, read and validate every record
(quarantining the bad ones), evaluate the good ones in (time, id) order, and hand back an
:class:`AuditReport`."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime, tzinfo
from typing import Any

from ..engine import TEXT_AS_EVENT, Engine, Parse, parse_instant, progress_bar, run_batch, zone
from ..errors import EventError
from ..models.events import EventBase
from ..policyfile import PolicyLike, resolve_policies
from ._data import AuditCounts
from ._quarantine import QuarantinedRecord, quarantined, validate
from ._readers import Reader, read_records
from ._report import AuditReport

PolicyArg = PolicyLike
TEXT_AS_EVENT.add(validate)  # a JSON text: parse_event's event or error (validated in bulk)

__all__ = ["audit", "parse_instant"]


def audit(
    source: Any,
    policy: PolicyArg = None,
    until: datetime | date | str | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    format: str | None = None,
    assume_tz: str | tzinfo | None = None,
    encoding: str | None = None,
) -> AuditReport:
    """Audit an event log against policies.

    ``source``: a path (``.jsonl``, ``.json`` array, ``.csv``, ``.parquet``, optionally
    ``.gz``), a pandas or polars DataFrame, or an iterable of event dicts, JSON strings or
    models. In CSV and text columns, list/object fields (``recipients``, ``details``,
    ``meta``) are JSON text and empty cells are absent.
    ``policy``: None for the standard pack, a :class:`Policy` or :class:`PolicySet`, a policy
    file path, or the id of one standard policy.
    ``until``: the horizon: an aware datetime, an ISO-8601 date-time with offset, or a date
    (``2026-04-01``: the start of that day in the policy calendar's zone). Deadlines due at
    or before it fire; records later than it are counted in ``counts.after_until`` and not
    evaluated. A horizon the calendar has no holiday data for raises ``CalendarError``.
    ``assume_tz``: the zone (e.g. ``"Asia/Shanghai"``) of offset-less times in the records
    and in ``until``; spreadsheet forms such as ``2026/3/2 8:31`` are read too. Without it
    such records are quarantined.
    ``encoding``: a CSV file's text encoding (``"cp1252"``, ``"gbk"``), when not a byte-order
    mark or UTF-8; without it a CSV that is not UTF-8 is read as GB18030 and
    :attr:`AuditReport.notes` (and the ``policykit`` logger) say so.
    ``progress``: progress bars on stderr (``tqdm.auto``: a widget in notebooks; a number:
    only once the run takes that many seconds).

    The records run through the pipeline of :meth:`Engine.evaluate` (the same decisions,
    ids included), quarantining each bad record instead of raising.
    """
    policies = resolve_policies(policy)
    tz = zone(assume_tz)
    horizon = parse_instant(until, policies=policies, assume_tz=tz) \
        if until is not None else None
    engine = Engine(policies, backend=backend)
    reader = read_records(source, format=format, encoding=encoding)
    return run_audit(engine, reader, _reading(reader, progress), horizon, tz,
                     progress=progress)


def run_audit(engine: Engine, reader: Reader, records: Iterable[tuple[int | None, Any]],
              horizon: datetime | None, tz: tzinfo | None, *, progress: bool | float = False,
              parse: Parse = validate, log_notes: bool = True) -> AuditReport:
    """The run of :func:`audit` on ``records`` (the reader's, or already read: a diff runs
    one log under two policy sets). ``parse`` validates one record."""
    quarantine: list[QuarantinedRecord] = []

    def keep(exc: EventError, line: int | None, raw: Any) -> None:
        quarantine.append(quarantined(exc, reader, line, raw))

    batch = run_batch(engine, records, source=reader.label, until=horizon,
                      assume_tz=tz, quarantine=keep, parse=parse, hold_after_until=True,
                      progress=progress)
    # Placement and session refusals are found after reading: list them in file order.
    quarantine.sort(key=lambda q: q.line if q.line is not None else 0)
    events: dict[str, EventBase] = {}
    for event in batch.events:
        events.setdefault(event.id, event)
    counts = AuditCounts(read=batch.read, valid=batch.valid, duplicates=batch.duplicates,
                         quarantined=batch.quarantined, after_until=batch.after_until,
                         corrected=batch.corrected, evaluated=batch.evaluated,
                         decisions=len(batch.decisions))
    if log_notes:
        for note in reader.notes:  # set when the reader started (a CSV's guessed encoding)
            logging.getLogger("policykit").warning("%s", note)
    report = AuditReport(decisions=batch.decisions, events=events, policies=engine.policies,
                       quarantine=quarantine, counts=counts, until=horizon,
                       backend=engine.backend,
                       source=reader.label)
    report.notes = list(reader.notes)
    return report


def _reading(reader: Reader, progress: bool | float) -> Iterator[tuple[int | None, Any]]:
    """The reader's records, moving the reading bar."""
    bar = progress_bar(progress, reader.total, "reading", reader.progress_unit)
    try:
        for line, raw in reader.records:
            if bar is not None:
                bar.update(reader.advance(raw))
            yield line, raw
    finally:
        if bar is not None:
            bar.close()
