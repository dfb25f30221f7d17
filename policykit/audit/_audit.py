"""Running an audit: resolve the policies and the horizon, read and validate every record
(quarantining the bad ones), evaluate the good ones in (time, id) order, and hand back an
:class:`AuditReport`."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from ..engine import Engine
from ..engine.session import drop_corrected
from ..errors import EventError, ParameterError, PolicyKitError
from ..models.decisions import Decision
from ..models.events import EventBase
from ..policy import PolicySet
from ..policyfile import PolicyLike, resolve_policies
from ._quarantine import QuarantinedRecord, quarantined, validate
from ._readers import read_records
from ._report import AuditCounts, AuditReport

PolicyArg = PolicyLike


def audit(
    source: Any,
    policy: PolicyArg = None,
    until: datetime | str | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    format: str | None = None,
) -> AuditReport:
    """Audit an event log against policies.

    ``source``: a path (``.jsonl``, ``.json`` array, ``.csv``, ``.parquet``, optionally
    ``.gz``), a pandas or polars DataFrame, or an iterable of event dicts, JSON strings or
    models. In CSV and text columns, list/object fields (``recipients``, ``details``,
    ``meta``) are JSON text and empty cells are absent.
    ``policy``: None for the standard pack, a :class:`Policy` or :class:`PolicySet`, a policy
    file path, or the id of one standard policy.
    ``until``: event time to advance to (with offset): deadlines due at or before it fire;
    records later than it are counted in ``counts.after_until`` and not evaluated.
    ``progress``: a tqdm bar on stderr (a number: only once the run takes that many seconds).
    """
    policies = resolve_policies(policy)
    horizon = parse_instant(until) if until is not None else None
    engine = Engine(policies, backend=backend)
    reader = read_records(source, format=format)

    counts = AuditCounts()
    quarantine: list[QuarantinedRecord] = []
    good: list[EventBase] = []
    placed = _Placement(policies)
    bar = _bar(progress, reader.total, "reading", reader.progress_unit)
    try:
        for line, raw in reader.records:
            counts.read += 1
            if bar is not None:
                bar.update(reader.advance(raw))
            try:
                event = validate(raw, reader.label, line)
                placed.check(event, reader.label, line)
            except EventError as exc:
                quarantine.append(quarantined(exc, reader, line, raw))
                continue
            good.append(event)
    finally:
        if bar is not None:
            bar.close()
    counts.quarantined = len(quarantine)
    counts.valid = len(good)

    # A correction (meta.corrects) replaces its original, as in Engine.evaluate.
    kept_events = drop_corrected(good)
    counts.corrected = len(good) - len(kept_events)
    good = kept_events
    # Applied in (time, id) order, as Engine.evaluate does: arrival order never matters.
    good.sort(key=lambda e: (e.at, e.id))
    if horizon is not None:
        kept = [e for e in good if e.at <= horizon]
        counts.after_until = len(good) - len(kept)
        good = kept
    decisions: list[Decision] = []
    events: dict[str, EventBase] = {}
    bar = _bar(progress, len(good), "evaluating", "ev")
    try:
        with engine.session() as session:
            for event in good:
                decisions += session.feed(event)
                events.setdefault(event.id, event)
                if bar is not None:
                    bar.update(1)
            if horizon is not None:
                decisions += session.advance_to(horizon)
            counts.duplicates = session.stats.duplicates
            counts.evaluated = session.stats.events
    finally:
        if bar is not None:
            bar.close()
    decisions.sort(key=lambda d: (d.at, d.id))
    counts.decisions = len(decisions)
    return AuditReport(decisions=decisions, events=events, policies=policies,
                       quarantine=quarantine, counts=counts, until=horizon, backend=backend,
                       source=reader.label)


def parse_instant(value: str | datetime, *, name: str = "until") -> datetime:
    """An ISO-8601 date-time **with offset** (``2026-04-01T00:00:00+08:00`` or ``...Z``).

    A naive time is refused: event time is absolute, and guessing a zone moves deadlines."""
    if isinstance(value, datetime):
        out = value
    else:
        text = str(value).strip()
        try:
            out = datetime.fromisoformat(text)
        except ValueError:
            raise ParameterError(name, value, "an ISO-8601 date-time with offset, e.g. "
                                 "2026-04-01T00:00:00+08:00") from None
    if out.tzinfo is None or out.utcoffset() is None:
        raise ParameterError(name, value, "a date-time with a UTC offset (naive times are "
                             "ambiguous), e.g. 2026-04-01T00:00:00+08:00")
    return out


def _bar(progress: bool | float, total: int | None, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr, or None. ``progress`` as a number: appear only after that many
    seconds, so short inputs print nothing."""
    if progress is False:
        return None
    from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

    delay = 0.0 if progress is True else float(progress)
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                delay=delay, leave=False, dynamic_ncols=True)


class _Placement:
    """Refuses, before evaluation, an event that a policy's calendar cannot place (a date
    outside its holiday data): quarantined with its line like any invalid record, instead
    of stopping the audit half-way."""

    def __init__(self, policies: PolicySet) -> None:
        self._calendars = list({p.calendar for p in policies})
        self._ok: set[tuple[int, object]] = set()

    def check(self, event: EventBase, label: str, line: int) -> None:
        for i, cal in enumerate(self._calendars):
            day = cal.local_date(event.at)
            if (i, day) in self._ok:
                continue
            try:
                cal.is_working_day(day)
            except PolicyKitError as exc:
                raise EventError(label, [("at", event.at.isoformat(), str(exc))],
                                 event_id=event.id, line=line) from None
            self._ok.add((i, day))
