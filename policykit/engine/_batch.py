"""The one batch pipeline behind :meth:`Engine.evaluate`, :func:`policykit.audit` (and so the
CLI) and every :func:`policykit.distributed.distributed_audit` shard.

read and validate each record (quarantined, or the first error raised) -> place it on the
policy calendars -> drop the events a correction replaces -> order by (time, id) -> one
session remembering every id, fed in chunks (``feed_many``: the durable backend's batch
path) -> advance to the horizon -> decisions ordered by (time, id).

Every route runs these steps, so the same log gives the same decisions, ids included,
whichever door it enters by. The ``policykit`` logger reports what happened: each
quarantined record at WARNING (the first :data:`LOGGED_PER_RUN`, then a count), one INFO
line of counts per run, and with DEBUG enabled each duplicate, late and corrected event.
"""

from __future__ import annotations

import gc
import logging
import re
import sys
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from functools import cache
from itertools import islice
from operator import attrgetter, itemgetter, le
from typing import TYPE_CHECKING, Any, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import AwareDatetime

from ..errors import EventError, ParameterError, PolicyKitError, nearest
from ..models.decisions import Decision
from ..models.events import EVENT_TYPES, EventBase
from ..models.parsing import MAX_YEAR, MIN_YEAR, parse_event, parse_texts
from ..models.registry import on_types_changed
from ._corrections import split_corrections

if TYPE_CHECKING:
    from ..policy import PolicySet
    from .engine import Engine

__all__ = ["Batch", "Prepared", "parse_instant", "prepare", "run_batch", "run_ordered", "zone"]

log = logging.getLogger("policykit")

#: Quarantined records logged one by one per run; the rest are counted in one line.
LOGGED_PER_RUN = 20
#: Events per ``feed_many`` call: small enough for a progress bar to move and to find the
#: one event a session refuses, large enough for the durable backend's batch matching.
_CHUNK = 4096
_TICK = timedelta(microseconds=1)  # datetime's resolution: "just before" an instant

Quarantine = Callable[[EventError, "int | None", Any], None]
"""Called with (error, line, raw record) for each record set aside."""
Parse = Callable[[Any, str, "int | None"], EventBase]


# ------------------------------------------------------------------------------ time zones


def zone(value: str | tzinfo | None, *, name: str = "assume_tz") -> tzinfo | None:
    """The time zone ``value`` names (an IANA name such as ``Asia/Shanghai``), or None.
    An unknown name raises :class:`ParameterError` with the nearest valid one."""
    if value is None or isinstance(value, tzinfo):
        return value
    if not isinstance(value, str) or not value.strip():
        raise ParameterError(name, value, "an IANA time zone name such as 'Asia/Shanghai'")
    try:
        return ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        # OSError: a name too long for a file name (ZoneInfo looks it up as a path).
        names = sorted(available_timezones())
        lowered = {n.lower(): n for n in names}
        short = len(value) <= _LONGEST_ZONE_NAME  # no fuzzy match of a very long text
        raise ParameterError(name, value, "an IANA time zone name such as 'Asia/Shanghai' "
                             "or 'Europe/Berlin'",
                             suggestion=(lowered.get(value.strip().lower())
                                         or nearest(value, names)) if short else None
                             ) from None


#: Longer than any IANA zone name (the longest are about 32 characters).
_LONGEST_ZONE_NAME = 64


# ISO without offset ("2026-03-02T08:31:00", "2026-03-02 08:31") and the spreadsheet forms
# ("2026/3/2 8:31", "2026/03/02 08:31:00"): year, month, day, hour, minute[, second[.frac]].
_LOCAL = re.compile(r"(\d{4})([-/])(\d{1,2})\2(\d{1,2})[ T](\d{1,2}):(\d{2})"
                    r"(?::(\d{2})(?:[.,](\d{1,6}))?)?")


def _naive(text: str) -> datetime | None:
    """The wall time of an offset-less date-time text, or None (has an offset, or is not
    a date-time in one of the accepted forms)."""
    m = _LOCAL.fullmatch(text.strip())
    if m is None:
        return None
    y, _sep, mo, d, h, mi, s, frac = m.groups()
    try:
        return datetime(int(y), int(mo), int(d), int(h), int(mi), int(s or 0),
                        int((frac or "0").ljust(6, "0")))
    except ValueError:
        return None


def localize(wall: datetime, tz: tzinfo) -> datetime:
    """``wall`` (naive) as an aware time in ``tz``; ValueError naming the problem when the
    wall time does not exist there (a DST gap) or exists twice (a DST overlap)."""
    first = wall.replace(tzinfo=tz, fold=0)
    second = wall.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        back = first.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
        if back != wall:
            raise ValueError(f"{wall.isoformat(sep=' ')} does not exist in {tz} (the clocks "
                             "skip it when daylight saving time starts)")
        raise ValueError(f"{wall.isoformat(sep=' ')} happens twice in {tz} (the clocks go "
                         "back when daylight saving time ends)")
    return first


_NAIVE_HINT = ("a date-time with a UTC offset, e.g. 2026-03-02T08:30:00+08:00; for local "
               "times without one, name their zone: assume_tz='Asia/Shanghai' "
               "(CLI: --assume-tz Asia/Shanghai)")


@cache
def _fields_holding(event_type: str, kinds: tuple[Any, ...]) -> frozenset[str]:
    """The fields of an event type whose annotation is (or wraps) one of ``kinds``."""
    model = EVENT_TYPES.get(event_type)
    if model is None:
        return frozenset()

    def holds(annotation: Any) -> bool:
        return any(annotation is k for k in kinds) or any(holds(a)
                                                          for a in get_args(annotation))

    return frozenset(n for n, f in model.model_fields.items() if holds(f.annotation))


def _time_fields(event_type: str) -> frozenset[str]:
    """The date-time fields of an event type (read as local times with ``assume_tz``); of
    a type no model has, ``at`` (the parser then says what is wrong)."""
    if event_type not in EVENT_TYPES:
        return frozenset({"at"})
    return _fields_holding(event_type, (datetime, AwareDatetime))


# A spreadsheet's date ("2026/3/12"), for the date fields (a leave's start and end) of
# records read with assume_tz: the same export writes them so.
_SHEET_DATE = re.compile(r"(\d{4})/(\d{1,2})/(\d{1,2})")


def _date_fields(event_type: str) -> frozenset[str]:
    """The calendar-date fields of an event type (``date``, not ``datetime``)."""
    return _fields_holding(event_type, (date,))


def _sheet_dates(raw: Mapping[str, Any], kind: Any) -> dict[str, str]:
    """The spreadsheet-form dates of ``raw``, in ISO form (left as they are when not a
    real date: the model then says what is wrong)."""
    found: dict[str, str] = {}
    if not isinstance(kind, str):
        return found
    for name in _date_fields(kind):
        value = raw.get(name)
        if isinstance(value, str) and (m := _SHEET_DATE.fullmatch(value.strip())):
            try:
                found[name] = date(*map(int, m.groups())).isoformat()
            except ValueError:
                continue
    return found


def _assume(raw: Any, tz: tzinfo, source: str, line: int | None) -> Any:
    """``raw`` with its offset-less date-times written with their offset in ``tz``, and its
    spreadsheet-form dates (``2026/3/12``) in ISO form."""
    if isinstance(raw, str | bytes | bytearray):
        import json

        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return raw  # the parser reports it
    if not isinstance(raw, Mapping):
        return raw
    kind = raw.get("type")
    names = _time_fields(kind) if isinstance(kind, str) else frozenset({"at"})
    out: dict[str, Any] | None = None
    for name in names:
        value = raw.get(name)
        if isinstance(value, datetime):  # a DataFrame's or Parquet file's timestamp
            if value.tzinfo is not None:
                continue
            wall = value
        elif not isinstance(value, str) or (found := _naive(value)) is None:
            continue
        else:
            wall = found
        try:
            aware = localize(wall, tz)
        except ValueError as exc:
            ident = raw.get("id")
            raise EventError(source, [(name, value, f"an unambiguous local time ({exc}); "
                                       "write this one with its UTC offset")],
                             event_id=ident if isinstance(ident, str) else None,
                             line=line) from None
        if out is None:
            out = dict(raw)
        out[name] = aware.isoformat()
    if dates := _sheet_dates(raw, kind):
        out = {**(raw if out is None else out), **dates}
    return raw if out is None else out


def _hinted(exc: EventError) -> EventError:
    """``exc`` with the way to read local times named where a date-time lacked an offset."""
    problems = [(f, v, _NAIVE_HINT) if isinstance(v, str) and f.split(".")[-1] in
                _time_fields_any() and _naive(v) is not None else (f, v, e)
                for f, v, e in exc.problems]
    if problems == exc.problems:
        return exc
    return EventError(exc.source, problems, event_id=exc.event_id, line=exc.line)


@cache
def _time_fields_any() -> frozenset[str]:
    out: set[str] = set()
    for t in EVENT_TYPES:
        out |= _time_fields(t)
    return frozenset(out)


# ------------------------------------------------------------------------------ the horizon

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_UNTIL_FORMS = ("an aware datetime, an ISO-8601 date-time with offset "
                "(2026-04-01T00:00:00+08:00), or a date (2026-04-01: the start of that day in "
                "the policy calendar's zone)")


def parse_instant(
    value: str | date | datetime,
    *,
    name: str = "until",
    policies: PolicySet | None = None,
    assume_tz: str | tzinfo | None = None,
) -> datetime:
    """An instant from an aware datetime, an ISO-8601 date-time with offset
    (``2026-04-01T00:00:00+08:00`` or ``...Z``), or a date (``2026-04-01`` or a
    ``datetime.date``: the start of that day in the zone of ``policies``' calendars).

    A time without offset is refused unless ``assume_tz`` names its zone: event time is
    absolute, and guessing a zone moves deadlines. The instant must lie in the years events
    may have (:data:`~policykit.models.parsing.MIN_YEAR` to ``MAX_YEAR``, read in its own
    offset as an event's are): nearer the ends of ``datetime``'s range, clock arithmetic (a
    day's end, the instant just before) would overflow. Every refusal is a ParameterError
    naming ``name``."""
    try:
        out: datetime | None = _read_instant(value, name, policies, assume_tz)
    except OverflowError:  # a date at the very end of datetime's range, moved to a zone
        out = None
    if out is None or not MIN_YEAR <= out.year <= MAX_YEAR:
        raise ParameterError(name, value.isoformat() if isinstance(value, date) else value,
                             f"an instant in the years {MIN_YEAR}-{MAX_YEAR} (the years "
                             "events may have)")
    return out


def _read_instant(value: str | date | datetime, name: str, policies: PolicySet | None,
                  assume_tz: str | tzinfo | None) -> datetime:
    tz = zone(assume_tz)
    day: date | None = None
    wall: datetime | None = None
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return value
        wall = value.replace(tzinfo=None)
    elif isinstance(value, date):
        day = value
    elif isinstance(value, str):
        text = value.strip()
        if _DATE_ONLY.fullmatch(text):
            try:
                day = date.fromisoformat(text)
            except ValueError:
                raise ParameterError(name, value, _UNTIL_FORMS) from None
        else:
            read: datetime | None
            try:
                read = datetime.fromisoformat(text)
            except ValueError:
                read = _naive(text) if tz is not None else None
            if read is None:
                raise ParameterError(name, value, _UNTIL_FORMS)
            out = read
            if out.tzinfo is not None and out.utcoffset() is not None:
                return out
            wall = out.replace(tzinfo=None)
    else:
        raise ParameterError(name, value, _UNTIL_FORMS)
    if day is not None:
        return _start_of_day(day, name, value, policies, tz)
    assert wall is not None
    if tz is None:
        raise ParameterError(name, value, "a date-time with a UTC offset (naive times are "
                             "ambiguous), e.g. 2026-04-01T00:00:00+08:00, or a date "
                             "(2026-04-01); or name the zone of local times with assume_tz="
                             "'Asia/Shanghai' (CLI: --assume-tz)")
    try:
        return localize(wall, tz)
    except ValueError as exc:
        raise ParameterError(name, value, f"an unambiguous local time ({exc}): give it "
                             "with its UTC offset") from None


def _start_of_day(day: date, name: str, value: object, policies: PolicySet | None,
                  tz: tzinfo | None) -> datetime:
    if policies is None:
        if tz is None:
            raise ParameterError(name, value, "a date-time with offset: a date alone needs "
                                 "the policies' calendar (or assume_tz) to say where its "
                                 "day starts")
        return localize(datetime.combine(day, datetime.min.time()), tz)
    starts: dict[datetime, str] = {}
    for p in policies:
        starts.setdefault(p.calendar.start_of_day(day), f"{p.id} ({p.calendar.timezone})")
    if len(starts) > 1:
        raise ParameterError(name, value, "a date-time with offset: the policies' calendars "
                             "disagree on when that day starts (" + ", ".join(
                                 starts.values()) + "), so a date alone is ambiguous")
    if not starts:
        raise ParameterError(name, value, "a date-time with offset (no policy calendar)")
    return next(iter(starts))


def check_horizon(horizon: datetime, policies: PolicySet, *, name: str = "until") -> None:
    """Refuse a horizon a policy calendar cannot place: the working-day rules would stop
    being judged where its holiday data ends, silently. What the horizon judges is the time
    before it, so its last day is that of the instant just before it: midnight starting
    2027 closes 2026 and needs only 2026's data."""
    from ..calendar import CalendarError

    for cal, pid in _calendars(policies):
        try:
            cal.is_working_day(cal.local_date(horizon - _TICK))
        except OverflowError:  # datetime.min: parse_instant refuses it, a caller may not
            raise ParameterError(name, horizon.isoformat(), f"an instant in the years "
                                 f"{MIN_YEAR}-{MAX_YEAR}") from None
        except CalendarError as exc:
            raise CalendarError(
                name, horizon.isoformat(),
                f"an instant the calendar of policy {pid!r} can place, so that every day up "
                f"to it is judged: {exc.expected}") from None


def _calendars(policies: PolicySet) -> list[tuple[Any, str]]:
    seen: dict[Any, str] = {}
    for p in policies:
        seen.setdefault(p.calendar, p.id)
    return list(seen.items())


class _Placement:
    """Refuses, before evaluation, events that a policy calendar cannot place (a date
    outside its holiday data), instead of a rule failing half-way through the log.

    Holiday data covers consecutive whole years, so when the earliest and the latest event
    can be placed every event between can: only then is each event checked."""

    def __init__(self, policies: PolicySet) -> None:
        self._calendars = _calendars(policies)

    def refused(self, events: Sequence[EventBase], first: EventBase, last: EventBase
                ) -> dict[int, PolicyKitError]:
        """Index -> error of each event that cannot be placed."""
        if all(self._fits(cal, e.at) is None for cal, _p in self._calendars
               for e in (first, last)):
            return {}
        out: dict[int, PolicyKitError] = {}
        ok: set[tuple[int, date]] = set()
        for i, e in enumerate(events):
            for j, (cal, _p) in enumerate(self._calendars):
                day = cal.local_date(e.at)
                if (j, day) in ok:
                    continue
                exc = self._fits(cal, e.at)
                if exc is not None:
                    out[i] = exc
                    break
                ok.add((j, day))
        return out

    @staticmethod
    def _fits(cal: Any, at: datetime) -> PolicyKitError | None:
        try:
            cal.is_working_day(cal.local_date(at))
        except PolicyKitError as exc:
            return exc
        return None


# ------------------------------------------------------------------------------ the pipeline


@dataclass
class Prepared:
    """The events a session applies, in the order it applies them, and what became of the
    rest of the records."""

    events: list[EventBase]
    lines: list[int | None]
    """Line (or position) of each event, or an empty list when not tracked."""
    read: int = 0
    quarantined: int = 0
    corrected: int = 0
    late: int = 0
    """Events that came after an event with a later time (applied in their place)."""
    after_until: int = 0


@dataclass
class Batch:
    """A run's decisions, the events applied (first copy of each id) and its counts."""

    decisions: list[Decision]
    events: list[EventBase]
    read: int = 0
    valid: int = 0
    quarantined: int = 0
    corrected: int = 0
    late: int = 0
    after_until: int = 0
    duplicates: int = 0
    evaluated: int = 0
    refused: list[EventBase] = field(default_factory=list)


def _parse(raw: Any, source: str, line: int | None) -> EventBase:
    event: EventBase = parse_event(raw, source=source, line=line)
    return event


def prepare(
    records: Iterable[tuple[int | None, Any]],
    policies: PolicySet,
    *,
    source: str = "<events>",
    horizon: datetime | None = None,
    assume_tz: tzinfo | None = None,
    quarantine: Quarantine | None = None,
    parse: Parse = _parse,
    hold_after_until: bool = False,
    track_lines: bool = False,
) -> Prepared:
    """Validate, place, drop corrected and order. Without ``quarantine`` the first bad
    record raises (its :class:`EventError`, or the calendar's ``CalendarError``);
    ``hold_after_until`` sets events later than ``horizon`` aside (counted) instead of
    refusing the horizon."""
    if horizon is not None:
        check_horizon(horizon, policies)
    tracker = _Quarantined(quarantine, source)
    prep, first, last = _read(records, tracker, source, assume_tz, parse, track_lines)
    if first is not None and last is not None:
        _refuse_unplaced(prep, policies, first, last, tracker, source, track_lines)
    _resolve_corrections(prep, tracker, source, track_lines)
    _order(prep, track_lines)
    if horizon is not None:
        _hold_after(prep, horizon, hold_after_until, track_lines)
    tracker.flush()
    prep.quarantined = tracker.count
    return prep


def read_valid(
    records: Iterable[tuple[int | None, Any]],
    policies: PolicySet,
    *,
    source: str,
    quarantine: Quarantine,
    assume_tz: tzinfo | None = None,
    parse: Parse = _parse,
) -> Prepared:
    """The first two steps of :func:`prepare` on one part of a log: validate and place,
    each bad record to ``quarantine`` (a distributed audit's worker, per file). Both steps
    judge one record at a time, so the parts give what the whole log gives."""
    tracker = _Quarantined(quarantine, source)
    prep, first, last = _read(records, tracker, source, assume_tz, parse, True)
    if first is not None and last is not None:
        _refuse_unplaced(prep, policies, first, last, tracker, source, True)
    tracker.flush()
    prep.quarantined = tracker.count
    return prep


def _read(records: Iterable[tuple[int | None, Any]], tracker: _Quarantined, source: str,
          assume_tz: tzinfo | None, parse: Parse, track_lines: bool
          ) -> tuple[Prepared, EventBase | None, EventBase | None]:
    """Parse each record (a bad one to ``tracker``), counting the late ones; with the
    events, the earliest and the (first) latest, for :class:`_Placement`."""
    events: list[EventBase] = []
    lines: list[int | None] = []
    read = late = 0
    newest: datetime | None = None
    first: EventBase | None = None
    last: EventBase | None = None
    for run, results, models in _parsed(records, source, assume_tz, parse):
        read += len(results)
        if models or all(issubclass(k, EventBase) for k in set(map(type, results))):
            # A run of events in time order, none before the latest so far (a log written
            # as it happened): what the loop below would find, found in C.
            ats = list(map(_AT, results))
            if (newest is None or ats[0] >= newest) and all(map(le, ats, islice(ats, 1, None))):
                if newest is None or ats[-1] > newest:
                    newest = ats[-1]
                    last = results[bisect_left(ats, newest)]  # the first of the latest time
                if first is None:
                    first = results[0]
                events += results
                if track_lines:
                    lines += map(_FIRST, run)
                continue
        for i, event in enumerate(results):
            if not isinstance(event, EventBase):
                if not isinstance(event, EventError):
                    raise event  # what parsing this record raised
                line, raw = run[i]
                tracker.add(_hinted(event) if assume_tz is None else event, line, raw)
                continue
            at = event.at
            if newest is None or at > newest:
                newest = at
                last = event  # the first event of the latest time
                if first is None:
                    first = event
            elif at < newest:
                late += 1
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s: event %r (%s) came after later events; applied at its time",
                              source, event.id, at.isoformat())
                if first is not None and at < first.at:
                    first = event
            events.append(event)
            if track_lines:
                lines.append(run[i][0])
    return Prepared(events, lines, read=read, late=late), first, last


#: JSON texts validated together (see policykit.models.parsing.parse_texts).
_TEXTS = 512
#: The parse functions that read a JSON text (str or bytes) exactly as parse_event does:
#: their texts are validated in bulk (parse_texts). The audit's adds itself.
TEXT_AS_EVENT: set[Callable[..., Any]] = set()


Results = list[Any]
"""For each (line, raw) pair of a run, its event or its EventError; the list ends early,
with the exception, where parsing raised anything else (raised there, in order)."""


def _parsed(records: Iterable[tuple[int | None, Any]], source: str,
            assume_tz: tzinfo | None, parse: Parse
            ) -> Iterator[tuple[list[tuple[int | None, Any]], Results, bool]]:
    """Runs of at most _TEXTS (line, raw) pairs with what each parses to, in the order of
    ``records``, and whether the run is of models (each its own result). A run of JSON
    texts of one type is validated in bulk (parse_texts) when ``parse`` reads them as
    parse_event does; a model is taken as it is (what parse_event does with one); anything
    else is parsed on its own."""
    plain = assume_tz is None and (parse is _parse or parse in TEXT_AS_EVENT)
    if not plain:
        # Each record parsed as soon as it is read, as a parse function may expect (the
        # diff's keeps what it parses beside the record last read).
        for item in records:
            run = [item]
            yield run, _results(run, object, source, assume_tz, parse), False
        return
    it = iter(records)
    while True:
        chunk: list[tuple[int | None, Any]] = []
        try:
            chunk.extend(islice(it, _TEXTS))  # what was read before a failure stays
        except Exception:
            # The reader failed: the records before it are parsed (and reported) first,
            # as when each was parsed as it came.
            yield from _runs(chunk, source, parse)
            raise
        if not chunk:
            return
        yield from _runs(chunk, source, parse)


_FIRST, _SECOND, _AT = itemgetter(0), itemgetter(1), attrgetter("at")


def _runs(chunk: list[tuple[int | None, Any]], source: str, parse: Parse
          ) -> Iterator[tuple[list[tuple[int | None, Any]], Results, bool]]:
    """``chunk`` in runs of one kind (texts of one type, models, anything else)."""
    if not chunk:
        return
    raws = list(map(_SECOND, chunk))  # in C: no Python per record
    kinds = set(map(type, raws))
    if len(kinds) == 1 and (str in kinds or bytes in kinds):
        yield chunk, parse_texts(raws, source=source, lines=list(map(_FIRST, chunk))), False
        return
    if all(issubclass(k, EventBase) for k in kinds):
        yield chunk, raws, True
        return
    run: list[tuple[int | None, Any]] = []
    kind: type | None = None
    for item in chunk:
        raw = item[1]
        got = type(raw)
        if got is not str and got is not bytes:
            got = EventBase if isinstance(raw, EventBase) else object
        if got is not kind and run:
            yield run, _results(run, kind, source, None, parse), kind is EventBase
            run = []
        kind = got
        run.append(item)
    yield run, _results(run, kind, source, None, parse), kind is EventBase


def _results(run: list[tuple[int | None, Any]], kind: type | None, source: str,
             assume_tz: tzinfo | None, parse: Parse) -> Results:
    if kind is EventBase:
        return [raw for _line, raw in run]
    if kind is str or kind is bytes:
        return parse_texts([raw for _line, raw in run], source=source,
                           lines=[line for line, _raw in run])
    out: Results = []
    for line, raw in run:
        try:
            rec = _assume(raw, assume_tz, source, line) if assume_tz is not None else raw
            out.append(parse(rec, source, line))
        except EventError as exc:
            out.append(exc)
        except Exception as exc:  # raised when its record is reached
            out.append(exc)
            break
    return out


def _refuse_unplaced(prep: Prepared, policies: PolicySet, first: EventBase, last: EventBase,
                     tracker: _Quarantined, source: str, track_lines: bool) -> None:
    """Set aside (or, without a quarantine, raise for the first of) the events a policy
    calendar cannot place."""
    events, lines = prep.events, prep.lines
    refused = _Placement(policies).refused(events, first, last)
    if not refused:
        return
    if not tracker.quarantining:
        i = min(refused)
        raise _placement_error(refused[i], events[i], source,
                               lines[i] if track_lines else None)
    kept: list[EventBase] = []
    kept_lines: list[int | None] = []
    for i, e in enumerate(events):
        problem = refused.get(i)
        line = lines[i] if track_lines else None
        if problem is None:
            kept.append(e)
            if track_lines:
                kept_lines.append(line)
            continue
        tracker.add(EventError(source, [("at", e.at.isoformat(), str(problem))],
                               event_id=e.id, line=line), line, e)
    prep.events, prep.lines = kept, kept_lines


def _resolve_corrections(prep: Prepared, tracker: _Quarantined, source: str,
                         track_lines: bool) -> None:
    """THE one place corrections and repeated ids are resolved, by the rules a session
    applies (split_corrections): a correction (meta.corrects) replaces the event it names,
    wherever it is in the log, and the corrected event counts as never delivered; a copy
    of an id with another payload, a correction that changes its original's type or
    subject, and every member of a cycle of corrections are refused — quarantined here, or
    raised without a quarantine."""
    events, lines = prep.events, prep.lines
    valid = len(events)
    kept_events, refusals = split_corrections(events)
    if refusals:
        index = {id(e): i for i, e in enumerate(events)}
        for e, refusal in refusals:
            line = lines[index[id(e)]] if track_lines else None
            tracker.add(refusal, line, e)
    corrected = valid - len(kept_events) - len(refusals)
    if corrected or refusals:
        if corrected and log.isEnabledFor(logging.DEBUG):
            _log_corrected(events, kept_events, refusals, source)
        if track_lines:
            keep = {id(e) for e in kept_events}
            prep.lines = [ln for e, ln in zip(events, lines, strict=True) if id(e) in keep]
    prep.events = kept_events
    prep.corrected = corrected


def _log_corrected(events: list[EventBase], kept: list[EventBase],
                   refusals: Sequence[tuple[EventBase, EventError]], source: str) -> None:
    gone = {id(e) for e in events} - {id(e) for e in kept} - {id(e) for e, _x in refusals}
    for e in events:
        if id(e) in gone:
            log.debug("%s: event %r is replaced by a correction", source, e.id)


def _order(prep: Prepared, track_lines: bool) -> None:
    """Applied in (time, id) order: arrival order never changes the result."""
    events = prep.events
    if track_lines:
        order = sorted(range(len(events)), key=lambda i: (events[i].at, events[i].id))
        prep.events = [events[i] for i in order]
        prep.lines = [prep.lines[i] for i in order]
    else:
        events.sort(key=lambda e: (e.at, e.id))


def _hold_after(prep: Prepared, horizon: datetime, hold_after_until: bool,
                track_lines: bool) -> None:
    """Refuse the horizon when events come after it, or set them aside (counted)."""
    events = prep.events
    if not events or events[-1].at <= horizon:
        return
    if not hold_after_until:
        raise ParameterError("until", horizon.isoformat(),
                             f"not before the last event ({events[-1].at.isoformat()})")
    cut = len(events)
    while cut and events[cut - 1].at > horizon:
        cut -= 1
    prep.after_until = len(events) - cut
    del events[cut:]
    if track_lines:
        del prep.lines[cut:]


def _placement_error(exc: PolicyKitError, event: EventBase, source: str,
                     line: int | None) -> PolicyKitError:
    from ..calendar import CalendarError

    if isinstance(exc, CalendarError):
        where = f"{source}" + (f", line {line}" if line is not None else "")
        return CalendarError(f"event {event.id!r} ({where}) at", event.at.isoformat(),
                             exc.expected)
    return exc


class _Quarantined:
    """Hands bad records to the caller's quarantine (or raises the first) and logs them."""

    def __init__(self, quarantine: Quarantine | None, source: str) -> None:
        self._q = quarantine
        self._source = source
        self.count = 0

    @property
    def quarantining(self) -> bool:
        """False when :meth:`add` raises (no quarantine)."""
        return self._q is not None

    def add(self, exc: EventError, line: int | None, raw: Any) -> None:
        if self._q is None:
            raise exc
        self.count += 1
        if self.count <= LOGGED_PER_RUN:
            log.warning("quarantined: %s", exc)
        self._q(exc, line, raw)

    def flush(self) -> None:
        if self.count > LOGGED_PER_RUN:
            log.warning("%s: %d records quarantined in all (the first %d logged above)",
                        self._source, self.count, LOGGED_PER_RUN)


def run_batch(
    engine: Engine,
    records: Iterable[tuple[int | None, Any]] | Prepared,
    *,
    source: str = "<events>",
    until: datetime | None = None,
    assume_tz: tzinfo | None = None,
    quarantine: Quarantine | None = None,
    parse: Parse = _parse,
    hold_after_until: bool = False,
    fire_before: datetime | None = None,
    progress: bool | float = False,
) -> Batch:
    """The whole pipeline (see the module docstring) on ``engine``.

    ``records``: (line, raw record) pairs, or events already :func:`prepare`d.
    ``until``: deadlines due at or before it fire. ``fire_before``: without ``until``,
    fire every deadline before this instant (a distributed shard: the whole log's last
    event). Without ``quarantine`` the first bad record, or an event the session refuses,
    raises; with it, each is handed over and the rest are evaluated."""
    with _collector_paused(engine):
        prep = records if isinstance(records, Prepared) else prepare(
            records, engine.policies, source=source, horizon=until, assume_tz=assume_tz,
            quarantine=quarantine, parse=parse, hold_after_until=hold_after_until,
            track_lines=quarantine is not None)
        out = _evaluate(engine, _chunks(prep), len(prep.events), source, until, fire_before,
                        quarantine, progress)
    decisions, refused, duplicates, evaluated = out
    valid = prep.read - prep.quarantined - len(refused)
    batch = Batch(decisions=decisions, events=_applied(prep.events, refused), read=prep.read,
                  valid=valid, quarantined=prep.quarantined + len(refused),
                  corrected=prep.corrected, late=prep.late, after_until=prep.after_until,
                  duplicates=duplicates, evaluated=evaluated, refused=refused)
    if log.isEnabledFor(logging.INFO):
        log.info("%s: %d records read, %d quarantined, %d duplicates, %d replaced by "
                 "corrections, %d out of time order, %d after the horizon; %d events "
                 "evaluated on %s, %d decisions", source, batch.read, batch.quarantined,
                 batch.duplicates, batch.corrected, batch.late, batch.after_until,
                 batch.evaluated, engine.backend, len(decisions))
    return batch


@contextmanager
def _collector_paused(engine: Engine) -> Iterator[None]:
    """The cyclic collector paused for a whole run, restored whatever happens.

    The parsed events live until the end and the rules' state lives as long as its cases,
    and neither makes cyclic garbage per event. The collector's full scans walk every live
    object, so their cost grows with the log: 14% of a 1M-event audit, nothing measurable
    at 100k."""
    collecting = gc.isenabled()
    gc.disable()
    promote = False
    try:
        yield
        # The durable backend's adapter leaves cycles of its own (about 900 objects a run):
        # its run's objects go through the young generation's pass as before.
        promote = engine.backend == "native"
    finally:
        if collecting:
            _resume_collector(promote=promote)


def _resume_collector(*, promote: bool) -> None:
    """Enable the cyclic collector again, without the pass it would otherwise start at once.

    Every object the run allocated and kept (events, decisions) is still in the youngest
    generation, whose count is far over its threshold: the first allocation after
    ``gc.enable()`` would walk them all (45 ms after a 22,544-event run with 4,726
    decisions, about 6 µs a decision; docs/performance.md). With ``promote`` (the run
    discarded its native session, so it left no cyclic garbage), ``freeze`` then
    ``unfreeze`` moves them to the oldest generation in constant time instead (with the
    caller's own young objects of before the run), where a full collection sees them if
    they are still alive by then. Not done when the application froze objects itself
    (``gc.freeze``), which ``unfreeze`` would undo."""
    if promote and not gc.get_freeze_count():
        gc.freeze()
        gc.unfreeze()
    gc.enable()


def _applied(events: list[EventBase], refused: list[EventBase]) -> list[EventBase]:
    if not refused:
        return events
    gone = {id(e) for e in refused}
    return [e for e in events if id(e) not in gone]


def _chunks(prep: Prepared) -> Iterator[tuple[list[EventBase], list[int | None]]]:
    events, lines = prep.events, prep.lines
    for start in range(0, len(events), _CHUNK):
        yield events[start:start + _CHUNK], lines[start:start + _CHUNK]


def _evaluate(engine: Engine, chunks: Iterable[tuple[list[EventBase], list[int | None]]],
              total: int | None, source: str, until: datetime | None,
              fire_before: datetime | None, quarantine: Quarantine | None,
              progress: bool | float
              ) -> tuple[list[Decision], list[EventBase], int, int]:
    refused: list[EventBase] = []
    decisions: list[Decision] = []
    debug = log.isEnabledFor(logging.DEBUG)
    seen: set[str] = set()
    bar = progress_bar(progress, total, "evaluating", "ev")
    try:
        # Every id is kept: a redelivery weeks later is still a redelivery, and a
        # correction whose target was dropped before must not look like one of a
        # forgotten event.
        with engine._batch_session() as session:
            stats = session.stats
            for chunk, lines in chunks:
                if debug:
                    for e in chunk:
                        if e.id in seen:
                            log.debug("%s: event %r repeats an id already applied; ignored",
                                      source, e.id)
                        seen.add(e.id)
                while chunk:
                    before = stats.events + stats.duplicates + stats.superseded + stats.rejected
                    try:
                        decisions += session._feed_models(chunk)
                    except EventError as exc:
                        # One event refused by the session (the session checks it before
                        # applying anything, so it goes on): quarantined, the rest evaluated.
                        decisions += getattr(exc, "decisions", [])
                        done = (stats.events + stats.duplicates + stats.superseded
                                + stats.rejected) - before
                        if quarantine is None or session._failed is not None or done < 1:
                            raise
                        bad = chunk[done - 1]
                        line = lines[done - 1] if lines else None
                        err = EventError(source, list(exc.problems), event_id=bad.id,
                                         line=line)
                        log.warning("quarantined: %s", err)
                        quarantine(err, line, bad)
                        refused.append(bad)
                        if bar is not None:
                            bar.update(done)
                        chunk, lines = chunk[done:], lines[done:]
                        continue
                    if bar is not None:
                        bar.update(len(chunk))
                    break
            if until is not None:
                decisions += session.advance_to(until)
            elif fire_before is not None and (session.clock is None
                                              or session.clock < fire_before):
                decisions += session.advance_to(fire_before - _TICK)
            duplicates, evaluated = stats.duplicates, stats.events
        # Closed and done with: its rules' state freed now, not left to the collector.
        session._ev.discard()
    finally:
        if bar is not None:
            bar.close()
    decisions.sort(key=lambda d: (d.at, d.id))
    return decisions, refused, duplicates, evaluated


def run_ordered(engine: Engine, chunks: Iterable[list[EventBase]], *,
                total: int | None = None, until: datetime | None = None,
                fire_before: datetime | None = None) -> list[Decision]:
    """The evaluation step of :func:`run_batch` alone, on events already validated,
    placed, resolved and in (time, id) order, that arrive a chunk at a time: only the chunk
    in hand need be alive, so the memory is the rules' state, not the log's (a
    distributed shard unpickles its events chunk by chunk). An event the session refuses
    raises."""
    if until is not None:
        check_horizon(until, engine.policies)
    with _collector_paused(engine):
        decisions, _r, _d, _n = _evaluate(
            engine, ((c, []) for c in chunks), total, "<events>", until, fire_before,
            None, False)
    return decisions


def numbered(items: Iterable[Any]) -> Iterator[tuple[int | None, Any]]:
    """(position, item) pairs, 1-based."""
    yield from enumerate(items, 1)


def progress_bar(progress: bool | float, total: int | None, desc: str, unit: str) -> Any:
    """A progress bar on stderr (a widget in notebooks: ``tqdm.auto``), or None.
    ``progress`` as a number: appear only after that many seconds, so short runs print
    nothing."""
    if progress is False:
        return None
    from tqdm.auto import tqdm  # type: ignore[import-untyped,unused-ignore]

    delay = 0.0 if progress is True else float(progress)
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                delay=delay, leave=False, dynamic_ncols=True)


# The caches per event type name follow the vocabulary.
on_types_changed(_fields_holding.cache_clear)
on_types_changed(_time_fields_any.cache_clear)
