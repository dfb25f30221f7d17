"""Hypothesis strategies for policykit events, derived from the event models.

Three layers:

- **values and single events**, read off the models (:func:`events`): literals become
  ``sampled_from``, ids come from small pools so events join up, money is a decimal string,
  times lean on the instants where rules break (:func:`instants`);
- **coherent streams** per policy family (:func:`request_lives`, :func:`guard_rotas`,
  :func:`project_lives`, :func:`attendance_months`, :func:`incident_lives`,
  :func:`complaint_lives`) and one for the whole pack (:func:`pack_streams`), each a
  :class:`Stream` of events with the ``until`` horizon to judge them at;
- **deliveries** of a drawn stream: :func:`with_duplicates`, :func:`reordered`,
  :func:`in_offsets` (the same instants written with other UTC offsets).

Nothing here reads the wall clock; every instant is drawn.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Any, TypeVar, get_args, overload

from hypothesis import strategies as st

from ..calendar import (
    DEFAULT_CALENDAR,
    Basis,
    BusinessCalendar,
    CalendarError,
    parse_duration,
)
from ..models.events import EVENT_TYPES, EventBase
from ..models.parsing import parse_event
from ..models.registry import on_types_changed
from ._model import POOLS, FieldShape, field_shapes, pool_for

__all__ = [
    "BERLIN",
    "DEFAULT_END",
    "DEFAULT_START",
    "MONEY",
    "OFFSETS",
    "Stream",
    "attendance_months",
    "boundary_days",
    "boundary_times",
    "complaint_lives",
    "delays",
    "event_streams",
    "events",
    "guard_rotas",
    "in_offsets",
    "incident_lives",
    "instants",
    "merge",
    "pack_streams",
    "profiles",
    "project_lives",
    "register_field",
    "reordered",
    "request_lives",
    "with_duplicates",
]

#: First and last day drawn by default. The PRC holiday data of the bundled calendar ends
#: with 2026, and a deadline reaching into a year without data raises, so the default range
#: stops a month short of it.
DEFAULT_START = date(2024, 1, 1)
DEFAULT_END = date(2026, 11, 30)

#: A site calendar outside China, with daylight saving time (last Sundays of March and
#: October), for the DST edges.
BERLIN = BusinessCalendar(timezone="Europe/Berlin", holiday_source="none")

#: Base salaries: round ones, and ones whose 1% and 5% sit on a half cent (half-up rounding
#: differs from banker's rounding there).
MONEY: tuple[str, ...] = ("6000.00", "6500.00", "3333.33", "4999.90", "0.50", "6000.50",
                          "12345.67", "0.00")

#: UTC offsets used to rewrite instants (whole, half and quarter hours, both extremes).
OFFSETS: tuple[timezone, ...] = tuple(
    timezone(timedelta(minutes=m)) for m in (0, 480, -300, 345, 840, -720, 60, 120, -210)
)

_S = timedelta(seconds=1)
_US = timedelta(microseconds=1)
_CHANNELS = ("phone", "visit", "email", "other")

E = TypeVar("E", bound=EventBase)


# --------------------------------------------------------------------------- streams


@dataclass(frozen=True)
class Stream:
    """Events drawn together (in time order), with the horizon to judge them at.

    ``engine.evaluate(stream.events, until=stream.until)``. ``a + b`` merges two streams
    (ids kept unique, the later horizon)."""

    events: tuple[EventBase, ...]
    until: datetime | None = None

    def __iter__(self) -> Iterator[EventBase]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def __add__(self, other: Stream) -> Stream:
        return merge(self, other)

    @property
    def ids(self) -> list[str]:
        return [e.id for e in self.events]

    def sorted(self) -> list[EventBase]:
        """The events in the engine's order: by time, then id."""
        return sorted(self.events, key=lambda e: (e.at, e.id))

    def replace(self, events: Iterable[EventBase] | None = None,
                until: datetime | None = None) -> Stream:
        """A copy with other events and/or horizon."""
        return Stream(tuple(self.events if events is None else events),
                      self.until if until is None else until)


def merge(*streams: Stream) -> Stream:
    """One stream of several: events in time order, a colliding id renamed ``id~n`` (two
    independently drawn lives may reuse an id; a repeated id would read as a duplicate)."""
    seen: set[str] = set()
    out: list[EventBase] = []
    for s in streams:
        for ev in s.events:
            new_id = ev.id
            n = 1
            while new_id in seen:
                n += 1
                new_id = f"{ev.id}~{n}"
            seen.add(new_id)
            out.append(ev if new_id == ev.id else ev.model_copy(update={"id": new_id}))
    out.sort(key=lambda e: (e.at, e.id))
    untils = [s.until for s in streams if s.until is not None]
    if untils and out:
        untils.append(out[-1].at)  # a horizon before an event is not a horizon
    return Stream(tuple(out), max(untils) if untils else None)


class _Log:
    """Builds one stream: validated events with ids ``<prefix><n>``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.events: list[EventBase] = []

    def add(self, type_: str, at: datetime, **fields: Any) -> EventBase:
        # Zero-padded: at equal instants the engine orders by id, and creation order is
        # cause before effect (a delivery before its callback).
        record = {"id": f"{self.prefix}{len(self.events) + 1:03d}", "type": type_, "at": at,
                  **{k: v for k, v in fields.items() if v is not None}}
        ev = EVENT_TYPES[type_].model_validate(record)
        self.events.append(ev)
        return ev

    @property
    def last(self) -> datetime | None:
        return max((e.at for e in self.events), default=None)

    def stream(self, until: datetime | None) -> Stream:
        return Stream(tuple(sorted(self.events, key=lambda e: (e.at, e.id))), until)


# --------------------------------------------------------------------------- time


def _months(start: date, end: date) -> Iterator[tuple[int, int]]:
    y, m = start.year, start.month
    while (y, m) <= (end.year, end.month):
        yield y, m
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)


def _month_end(y: int, m: int) -> date:
    return (date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)) - timedelta(days=1)


def _dst_days(calendar: BusinessCalendar, start: date, end: date) -> list[date]:
    tz = calendar.tz()
    out = []
    day = start
    prev = datetime.combine(day, time(12), tz).utcoffset()
    while day <= end:
        day += timedelta(days=1)
        off = datetime.combine(day, time(12), tz).utcoffset()
        if off != prev:
            out.append(day)
        prev = off
    return out


@lru_cache(maxsize=32)
def boundary_days(calendar: BusinessCalendar = DEFAULT_CALENDAR,
                  start: date = DEFAULT_START, end: date = DEFAULT_END) -> tuple[date, ...]:
    """Days where rules tend to break, in ``[start, end]``: first and last days of months
    (so quarter and year ends, Jan 31, Feb 28 and Feb 29), the calendar's holidays and
    make-up working days with the days either side of each break, and DST change days."""
    days: set[date] = set()
    for y, m in _months(start, end):
        days.update((date(y, m, 1), _month_end(y, m)))
        if m == 2:
            days.add(date(y, 2, 28))
    for year in range(start.year, end.year + 1):
        try:
            holidays = calendar.holidays_in(year)
            makeup = calendar.makeup_workdays_in(year)
        except CalendarError:  # a year without holiday data: only its plain boundaries
            continue
        days.update(makeup)
        hol = set(holidays)
        for d in holidays:
            days.add(d)
            for near in (d - timedelta(days=1), d + timedelta(days=1)):
                if near not in hol:
                    days.add(near)
    days.update(_dst_days(calendar, start, end))
    return tuple(sorted(d for d in days if start <= d <= end))


@lru_cache(maxsize=32)
def boundary_times(calendar: BusinessCalendar = DEFAULT_CALENDAR) -> tuple[time, ...]:
    """Wall times where rules tend to break: the start and end of working hours and one
    second (and one microsecond) either side, midnight, the last instant of a day, and the
    hours around a DST change (02:00-03:00 local)."""
    def shift(t: time, delta: timedelta) -> time:
        return (datetime.combine(date(2000, 1, 3), t) + delta).time()

    out = {time(0), time(0, 0, 1), time(23, 59, 59), time(23, 59, 59, 999999), time(12),
           time(1, 59, 59), time(2), time(2, 30), time(3), time(3, 30)}
    for t in (calendar.work_start, calendar.work_end):
        out.update({t, shift(t, -_S), shift(t, _S), shift(t, _US)})
    return tuple(sorted(out))


@lru_cache(maxsize=256)
def instants(calendar: BusinessCalendar = DEFAULT_CALENDAR, *, start: date = DEFAULT_START,
             end: date = DEFAULT_END) -> st.SearchStrategy[datetime]:
    """Aware instants in the calendar's zone, half of them on boundary days and times
    (08:30:00 +- 1 s, midnight, month and quarter ends, Jan 31, Feb 29, holidays and make-up
    days, DST changes), the rest anywhere in ``[start, end]``. Wall times in a DST gap
    move forward; ambiguous ones take either occurrence."""
    special = boundary_days(calendar, start, end)
    day = st.one_of(st.sampled_from(special), st.dates(start, end)) if special \
        else st.dates(start, end)
    wall = st.one_of(st.sampled_from(boundary_times(calendar)),
                     st.times().map(lambda t: t.replace(microsecond=0)))
    return st.builds(lambda d, t, fold: calendar.at(d, t.replace(fold=int(fold))),
                     day, wall, st.booleans())


def _td(mark: timedelta | str) -> timedelta:
    return parse_duration(mark) if isinstance(mark, str) else mark


@lru_cache(maxsize=256)
def delays(*marks: timedelta | str,
           at_most: timedelta = timedelta(days=2)) -> st.SearchStrategy[timedelta]:
    """Non-negative delays leaning on ``marks`` (``"PT15M"`` or timedeltas) minus one
    second, exactly, and plus one second; otherwise whole seconds up to ``at_most``."""
    near = sorted({m + j for m in map(_td, marks) for j in (-_S, timedelta(0), _S)
                   if m + j >= timedelta(0)})
    anywhere = st.integers(0, int(at_most.total_seconds())).map(lambda s: timedelta(seconds=s))
    return st.one_of(st.sampled_from(near), anywhere) if near else anywhere


def _after(draw: st.DrawFn, calendar: BusinessCalendar, t: datetime, *,
           wall: Sequence[str] = (), working: Sequence[str] = (),
           boundaries: Sequence[str] = (), at_most: timedelta = timedelta(days=2)) -> datetime:
    """An instant not before ``t``: on a deadline ``t`` sets (wall or working time, or a
    calendar boundary) give or take a second, or anywhere up to ``at_most`` later."""
    # (spec, basis, jitter): a working-time deadline give or take a second; a boundary
    # (its last instant) exactly, a second before, or the first instant after it.
    options: list[tuple[str, Basis, tuple[timedelta, ...]]] = [("", "wall", ())]
    options += [(spec, "working", (-_S, timedelta(0), _S)) for spec in working]
    options += [(spec, "wall", (-_S, timedelta(0), _US)) for spec in boundaries]
    spec, basis, jitter = options[draw(st.integers(0, len(options) - 1))]
    if not spec:
        chosen = t + draw(delays(*wall, at_most=at_most))
    else:
        chosen = calendar.deadline(t, spec, basis) + draw(st.sampled_from(jitter))
    return max(t, chosen).astimezone(calendar.tz())


def _horizon(draw: st.DrawFn, calendar: BusinessCalendar, last: datetime | None,
             *extra: datetime) -> datetime | None:
    """An ``until`` at or after the last event: right at it, a deadline or two later, or
    the end of its month (so monthly periods close)."""
    if last is None:
        return None
    choices = [last, last + timedelta(hours=1), last + timedelta(days=3),
               calendar.end_of_month(last), *extra]
    return max(last, draw(st.sampled_from(choices)))


def _often(draw: st.DrawFn) -> bool:
    # About four times in five; shrinks towards False, so minimal examples drop the event.
    return draw(st.integers(0, 9)) >= 2


def _sometimes(draw: st.DrawFn) -> bool:
    return draw(st.integers(0, 9)) >= 7


# --------------------------------------------------------------------------- single events

_OVERRIDES: dict[tuple[str | None, str], st.SearchStrategy[Any]] = {}


def register_field(name: str, strategy: st.SearchStrategy[Any], *,
                   event_type: str | None = None) -> None:
    """Use ``strategy`` for field ``name`` (of ``event_type``, or of every type) instead of
    the one derived from the model: for a field type the derivation does not know, or to
    steer generated values towards your own policy's figures."""
    _OVERRIDES[(event_type, name)] = strategy
    _value.cache_clear()
    _fields.cache_clear()


_INTS = (0, 1, 59, 60, 61, 179, 180, 181, 299, 300, 301, 3600)


def _int_strategy(shape: FieldShape) -> st.SearchStrategy[int]:
    lo = int(shape.ge) if shape.ge is not None else -(10**6)
    hi = int(shape.le) if shape.le is not None else 10**6
    near = [i for i in _INTS if lo <= i <= hi]
    anywhere = st.integers(lo, min(hi, lo + 10_000))
    return st.one_of(st.sampled_from(near), anywhere) if near else anywhere


@dataclass(frozen=True)
class _Rel:
    """A date or date-time field drawn relative to the event's own ``at``."""

    days: int | None = None
    delta: timedelta | None = None

    def at(self, when: datetime) -> date | datetime:
        if self.days is not None:
            return when.date() + timedelta(days=self.days)
        assert self.delta is not None
        return when + self.delta


_REL_DATE = st.integers(-3, 10).map(lambda n: _Rel(days=n))
_REL_TIME = st.one_of(delays("PT1H", "P1D"),
                      st.sampled_from((-timedelta(hours=1), timedelta(0)))).map(
    lambda d: _Rel(delta=d))
# Fields whose value the model's type alone does not pin down: a session's end names its
# start, which lies before it (up to two days, leaning on an hour and four).
_BUILTIN: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("remote.session_ended", "started_at"): delays("PT1H", "PT4H").map(
        lambda d: _Rel(delta=-d)),
}


@lru_cache(maxsize=1024)
def _value(shape: FieldShape, event_type: str) -> st.SearchStrategy[Any]:
    """Values for one field (date and date-time fields as :class:`_Rel`). Cached: building
    and validating strategies anew for every draw costs more than drawing from them."""
    # Not `a or b`: bool() of a strategy warns (HypothesisWarning).
    override = _OVERRIDES.get((event_type, shape.name), _OVERRIDES.get((None, shape.name)))
    builtin = _BUILTIN.get((event_type, shape.name))
    if override is not None:
        strat: st.SearchStrategy[Any] = override
    elif builtin is not None:
        strat = builtin
    elif shape.kind == "literal":
        strat = st.sampled_from(shape.choices)
    elif shape.kind == "bool":
        strat = st.booleans()
    elif shape.kind == "int":
        strat = _int_strategy(shape)
    elif shape.kind == "decimal":
        strat = st.sampled_from(MONEY)
    elif shape.kind == "str":
        if shape.pattern is not None:
            fallback = st.from_regex(shape.pattern, fullmatch=True)
            strat = st.one_of(st.just(shape.default), fallback) if shape.default else fallback
        else:
            strat = st.sampled_from(pool_for(shape.name, event_type))
    elif shape.kind == "date":
        strat = _REL_DATE
    elif shape.kind == "datetime":
        strat = _REL_TIME
    elif shape.kind == "list":
        assert shape.item is not None
        if shape.item.kind == "literal":
            cap = len(shape.item.choices)
            strat = st.lists(st.sampled_from(shape.item.choices), max_size=cap, unique=True)
        else:
            strat = st.lists(_value(shape.item, event_type), max_size=3, unique=True)
    elif shape.kind == "model":
        assert shape.model is not None
        strat = st.fixed_dictionaries({s.name: _value(s, event_type)
                                       for s in field_shapes(shape.model)})
    else:  # dict: only ``meta``, the application's own data
        strat = st.just({})
    if shape.optional and override is None:
        strat = st.one_of(st.none(), strat)
    return strat


_ENVELOPE = frozenset({"id", "type", "at", "actor", "meta"})


@lru_cache(maxsize=256)
def _fields(event_type: str) -> st.SearchStrategy[dict[str, Any]]:
    shapes = [s for s in field_shapes(EVENT_TYPES[event_type]) if s.name not in _ENVELOPE]
    return st.fixed_dictionaries({s.name: _value(s, event_type) for s in shapes})


def _at(value: Any, when: datetime) -> Any:
    if isinstance(value, _Rel):
        return value.at(when)
    if isinstance(value, dict):
        return {k: _at(v, when) for k, v in value.items()}
    if isinstance(value, list):
        return [_at(v, when) for v in value]
    return value


def _ordered(fields: dict[str, Any]) -> dict[str, Any]:
    # Intervals come out the right way round: a leave that ends before it starts, or an
    # authorization valid until before it is valid from, is not what these streams test.
    for lo, hi in (("start", "end"), ("valid_from", "valid_until")):
        a, b = fields.get(lo), fields.get(hi)
        if a is not None and b is not None and b < a:
            fields[lo], fields[hi] = b, a
    return fields


_IDS = st.integers(1, 10**6).map(lambda n: f"ev{n}")
_ACTORS = st.one_of(st.none(), st.sampled_from(POOLS["employee"]))


@lru_cache(maxsize=256)
def _type_names(types: str | tuple[str, ...] | None) -> st.SearchStrategy[str]:
    names = sorted(EVENT_TYPES) if types is None else [types] if isinstance(types, str) \
        else list(types)
    unknown = [n for n in names if n not in EVENT_TYPES]
    if unknown:
        from ..errors import ParameterError, nearest

        raise ParameterError("type", unknown[0], "a built-in or registered event type",
                             suggestion=nearest(unknown[0], EVENT_TYPES))
    return st.sampled_from(names)


@st.composite
def events(draw: st.DrawFn, type: str | Sequence[str] | None = None, *,
           calendar: BusinessCalendar = DEFAULT_CALENDAR, at: datetime | None = None,
           start: date = DEFAULT_START, end: date = DEFAULT_END,
           ids: st.SearchStrategy[str] | None = None) -> EventBase:
    """One valid event of ``type`` (a name, several, or any type of ``EVENT_TYPES``), its
    fields derived from the model, at ``at`` or an instant drawn from :func:`instants`."""
    name = draw(_type_names(type if type is None or isinstance(type, str) else tuple(type)))
    model = EVENT_TYPES[name]
    when = at if at is not None else draw(instants(calendar, start=start, end=end))
    ident = draw(ids if ids is not None else _IDS)
    fields = _ordered(_at(draw(_fields(name)), when))
    actor = draw(_ACTORS)
    record = {"id": ident, "type": name, "at": when, **fields}
    if actor is not None:
        record["actor"] = actor
    return model.model_validate(record)


def _type_of(model: type[EventBase]) -> str | None:
    args = get_args(model.model_fields["type"].annotation)
    return args[0] if len(args) == 1 and isinstance(args[0], str) else None


def _from_type(model: type[EventBase]) -> Any:
    """``st.from_type(model)``: :func:`events` of the model's type while it is in the
    vocabulary (a model unregistered since falls back to hypothesis's own derivation)."""
    name = _type_of(model)
    if name is None or EVENT_TYPES.get(name) is not model:
        return NotImplemented
    return events(name)


_FROM_TYPE: set[type[EventBase]] = set()


def _register_from_type() -> None:
    for model in list(EVENT_TYPES.values()):
        if model not in _FROM_TYPE:
            st.register_type_strategy(model, _from_type)
            _FROM_TYPE.add(model)


def _types_changed() -> None:
    """The vocabulary changed (see :mod:`policykit.models.registry`): forget what was
    derived per type name, and let ``st.from_type`` build the registered models."""
    _type_names.cache_clear()
    _fields.cache_clear()
    _value.cache_clear()
    _register_from_type()


_register_from_type()
on_types_changed(_types_changed)


@st.composite
def event_streams(draw: st.DrawFn, types: str | Sequence[str] | None = None, *,
                  calendar: BusinessCalendar = DEFAULT_CALENDAR, min_size: int = 0,
                  max_size: int = 20, start: date = DEFAULT_START,
                  end: date = DEFAULT_END) -> Stream:
    """Unrelated events of ``types`` (default: all) with unique ids: not coherent, but every
    field combination the models allow. ``until`` is drawn after the last event."""
    n = draw(st.integers(min_size, max_size))
    log = _Log("ev")
    for _ in range(n):
        ev = draw(events(types, calendar=calendar, start=start, end=end,
                         ids=st.just(f"ev{len(log.events) + 1:03d}")))
        log.events.append(ev)
    return log.stream(_horizon(draw, calendar, log.last))


# --------------------------------------------------------------------------- people

_ROLE_OF: dict[str, str] = {"E1": "customer_service", "E2": "customer_service",
                            "E3": "tech_service", "M1": "manager", "G1": "guard", "G2": "guard",
                            "G3": "guard", "D1": "director", "O1": "property_officer",
                            "GM": "general_manager", "B1": "business"}


def _add_profiles(draw: st.DrawFn, log: _Log, people: Sequence[str], at: datetime) -> None:
    for person in people:
        if not _often(draw):  # now and then nobody told us: "salary unknown" paths
            continue
        when = draw(st.sampled_from((at - timedelta(days=30), at - _S, at)))
        role = _ROLE_OF.get(person, "customer_service")
        log.add("employee.profile", when, employee_id=person, role=role,
                base_salary=draw(st.sampled_from(MONEY)),
                department=None if role == "guard" else role,
                areas=["A1", "A2"] if role == "property_officer" else None)


@st.composite
def profiles(draw: st.DrawFn, people: Sequence[str] | None = None, *,
             calendar: BusinessCalendar = DEFAULT_CALENDAR, at: datetime | None = None) -> Stream:
    """``employee.profile`` events for ``people`` (default: the office staff, a manager,
    guards, a director, a property officer), each now and then left out."""
    when = at if at is not None else draw(instants(calendar))
    log = _Log("pf")
    _add_profiles(draw, log, people or ("E1", "E2", "E3", "M1", "G1", "G2", "G3", "D1", "O1"),
                  when)
    return log.stream(None)


# --------------------------------------------------------------------------- lives


@st.composite
def request_lives(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                  max_requests: int = 3, start: date = DEFAULT_START,
                  end: date = DEFAULT_END) -> Stream:
    """Customer requests from first contact to resolution, handover or nothing: owners,
    handovers (registered or not) within or past an hour of working time, resolutions by the
    owner or someone else around the end of the day, contact forms, major matters reported
    to the general manager around 30 minutes, and second contacts about the same request."""
    log = _Log("rq")
    staff = ("E1", "E2", "E3")
    t0 = draw(instants(calendar, start=start, end=end))
    _add_profiles(draw, log, (*staff, "M1"), t0)
    prior: list[tuple[str, str, str]] = []
    for i in range(draw(st.integers(1, max_requests))):
        rid = f"R{i + 1}"
        if i:
            t0 = _after(draw, calendar, t0, wall=("PT1H", "P1D", "P7D"), at_most=timedelta(days=8))
        owner = draw(st.sampled_from(staff))
        customer = draw(st.sampled_from(POOLS["customer"]))
        topic = draw(st.sampled_from(POOLS["topic"]))
        repeat_of = None
        if prior and _sometimes(draw):
            repeat_of, customer, topic = draw(st.sampled_from(prior))
        major = _sometimes(draw)
        log.add("contact.received", t0, request_id=rid, customer_id=customer,
                employee_id=owner, channel=draw(st.sampled_from(_CHANNELS)), topic=topic,
                in_remit=draw(st.booleans()), finish_at_once=draw(st.booleans()), major=major,
                repeat_of=repeat_of)
        prior.append((rid, customer, topic))
        path = draw(st.sampled_from(("resolve", "handover", "handover_resolve", "open")))
        t, holder = t0, owner
        if path.startswith("handover"):
            t = _after(draw, calendar, t0, wall=("PT30M", "PT1H"), working=("PT1H",))
            to = draw(st.sampled_from([s for s in (*staff, "M1") if s != owner]))
            log.add("request.handed_over", t, request_id=rid, from_employee=owner,
                    to_employee=to, to_role=draw(st.sampled_from(("manager", "tech_service"))),
                    registered=_often(draw))
            holder = to
        if path in ("resolve", "handover_resolve"):
            t = _after(draw, calendar, t, wall=("PT1H",), boundaries=("end_of_day",))
            resolver = holder if _often(draw) else draw(st.sampled_from(staff))
            log.add("request.resolved", t, request_id=rid, employee_id=resolver)
            if _sometimes(draw):
                log.add("request.contact_form",
                        _after(draw, calendar, t, working=("P1D",), at_most=timedelta(days=3)),
                        request_id=rid, employee_id=resolver)
        if major and _often(draw):
            log.add("request.reported_to_gm", _after(draw, calendar, t0, wall=("PT30M",)),
                    request_id=rid, employee_id=owner)
    return log.stream(_horizon(draw, calendar, log.last))


@st.composite
def guard_rotas(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                max_shifts: int = 4, posts: int = 1, start: date = DEFAULT_START,
                end: date = DEFAULT_END) -> Stream:
    """Guard shifts on posts, back to back: turnout and equipment checks around 30 minutes
    after taking the post, patrol rounds about every two hours (give or take a second),
    handover records around 15 minutes, and the outgoing guard leaving a minute before, at,
    or after the relief arrives (or the relief arriving late to an empty post); now and then
    a suspicious person checked, a case for the police or an unsafe situation."""
    log = _Log("gr")
    first = draw(instants(calendar, start=start, end=end))
    _add_profiles(draw, log, (*POOLS["guard"], "M1"), first)
    for p in range(posts):
        post, route = POOLS["post"][p % len(POOLS["post"])], POOLS["route"][p % 2]
        # A guard stands one post at a time: with several posts, each has its own pair.
        guards = POOLS["guard"][:3] if posts == 1 else \
            (f"G{2 * p + 1}", f"G{2 * p + 2}")
        t = first if p == 0 else first + draw(delays("PT1H"))
        guard = draw(st.sampled_from(guards))
        length = draw(st.sampled_from((timedelta(hours=8), timedelta(hours=12))))
        n = draw(st.integers(1, max_shifts))
        for k in range(n):
            log.add("shift.started", t, post_id=post, guard_id=guard)
            if _often(draw):
                u = t + draw(delays("PT5M", at_most=timedelta(minutes=40)))
                log.add("shift.turnout_checked", u, post_id=post, guard_id=guard,
                        uniform=_often(draw), badge=_often(draw))
            if _often(draw):
                log.add("shift.equipment_checked",
                        t + draw(delays("PT30M", at_most=timedelta(hours=1))),
                        post_id=post, guard_id=guard)
            rnd = t
            while _often(draw):
                rnd = rnd + draw(delays("PT2H", at_most=timedelta(hours=3)))
                if rnd > t + length:
                    break
                log.add("patrol.round", rnd, route_id=route, guard_id=guard)
            if _sometimes(draw):
                _security(draw, log, calendar, t + draw(delays("PT1H")), post, guard, k)
            relief = t + length + draw(st.sampled_from(
                (timedelta(0), timedelta(minutes=1), timedelta(minutes=-1), timedelta(hours=1))))
            if k == n - 1:
                log.add("shift.ended", relief, post_id=post, guard_id=guard)
                break
            nxt = draw(st.sampled_from([g for g in guards if g != guard]))
            leave = relief + draw(st.sampled_from(
                (timedelta(minutes=-1), -_S, timedelta(0), _S, timedelta(minutes=5))))
            log.add("shift.ended", leave, post_id=post, guard_id=guard)
            if _often(draw):
                signed = draw(st.sampled_from((None, [guard, nxt], [guard])))
                u = relief + draw(delays("PT15M", at_most=timedelta(hours=1)))
                log.add("shift.handover_recorded", u, post_id=post, from_guard=guard,
                        to_guard=nxt, signed_by=signed)
            t, guard = relief, nxt
    return log.stream(_horizon(draw, calendar, log.last))


def _security(draw: st.DrawFn, log: _Log, calendar: BusinessCalendar, t: datetime, post: str,
              guard: str, k: int) -> None:
    what = draw(st.sampled_from(("suspicious", "case", "unsafe")))
    case = f"K{k + 1}"
    if what == "suspicious":
        log.add("security.suspicious_checked", t, post_id=post, employee_id=guard,
                subject=draw(st.sampled_from(("person", "vehicle"))), recorded=_often(draw))
    elif what == "case":
        log.add("security.case_opened", t, case_id=case, employee_id=guard)
        if _often(draw):
            log.add("security.case_to_police", _after(draw, calendar, t, wall=("PT2H",)),
                    case_id=case, employee_id=guard)
    else:
        log.add("security.unsafe_found", t, case_id=case, employee_id=guard)
        u = t
        if _often(draw):
            u = _after(draw, calendar, t, wall=("PT30M",))
            log.add("security.unsafe_reported", u, case_id=case, employee_id=guard)
        if _often(draw):
            log.add("security.unsafe_closed", _after(draw, calendar, u, wall=("PT4H",)),
                    case_id=case, employee_id=guard)


@st.composite
def project_lives(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                  max_projects: int = 2, max_months: int = 15, start: date = DEFAULT_START,
                  end: date = DEFAULT_END) -> Stream:
    """Delivered projects (often on a month end such as Jan 31) and their callbacks over up
    to ``max_months`` months: in some windows none, in others one just before, exactly at,
    or just after the anchored window's end; with household callbacks, feedback items and
    processing, promised replies (given before, at or after the promised time), home and
    area visits and residents' forums."""
    log = _Log("pj")
    latest = max(start, (calendar.add_months(calendar.at(end, time(12)), -max_months)).date())
    anchor0 = draw(instants(calendar, start=start, end=latest))
    _add_profiles(draw, log, ("E1", "E2", "D1", "O1"), anchor0)
    last_end = anchor0
    for i in range(draw(st.integers(1, max_projects))):
        pid, customer = f"PJ{i + 1}", draw(st.sampled_from(POOLS["customer"]))
        anchor = anchor0 if i == 0 else anchor0 + draw(delays("P1D", at_most=timedelta(days=40)))
        log.add("project.delivered", anchor, project_id=pid, customer_id=customer)
        months = draw(st.integers(1, max_months))
        for k in range(months):
            lo, hi = calendar.anchored_window(anchor, 1, k)
            where = draw(st.sampled_from(("none", "start", "before_end", "at_end", "middle")))
            if where == "none":
                continue
            when = {"start": lo, "before_end": hi - _S, "at_end": hi,
                    "middle": lo + (hi - lo) / 2}[where]
            log.add("callback.made", when, project_id=pid,
                    employee_id=draw(st.sampled_from(("E1", "E2"))),
                    channel=draw(st.sampled_from(("phone", "phone", "visit"))))
            last_end = max(last_end, hi)
        last_end = max(last_end, calendar.add_months(anchor, months))
    _household_life(draw, log, calendar, anchor0)
    return log.stream(_horizon(draw, calendar, log.last, last_end))


def _household_life(draw: st.DrawFn, log: _Log, calendar: BusinessCalendar,
                    t: datetime) -> None:
    for h, area in (("H1", "A1"), ("H2", "A2")):
        if _often(draw):
            log.add("household.registered", t, household_id=h, area_id=area)
    if _often(draw):
        u = t + draw(delays("P1D", at_most=timedelta(days=20)))
        log.add("callback.made", u, household_id="H1", employee_id="E1")
        if _often(draw):
            log.add("feedback.recorded", u, item_id="F1", employee_id="E1", household_id="H1")
            if _often(draw):
                log.add("feedback.processed", _after(draw, calendar, u, wall=("P1D",)),
                        item_id="F1", employee_id="E2")
        if _sometimes(draw):
            promised = _after(draw, calendar, u, wall=("P1D",), boundaries=("end_of_day",))
            log.add("reply.promised", u, question_id="Q1", employee_id="E1",
                    promised_by=promised, household_id="H1")
            if _often(draw):
                given = promised + draw(st.sampled_from((-timedelta(hours=1), timedelta(0), _S)))
                log.add("reply.given", max(u, given), question_id="Q1", employee_id="E1")
    if _sometimes(draw):
        log.add("home_visit.made", t + draw(delays("P7D", at_most=timedelta(days=60))),
                household_id="H2", employee_id="D1")
    if _sometimes(draw):
        log.add("area_visit.made", t + draw(delays("P7D", at_most=timedelta(days=60))),
                area_id="A1", employee_id="O1")
    if _sometimes(draw):
        log.add("forum.held", t + draw(delays("P7D", at_most=timedelta(days=60))),
                site_id="S1", employee_id="D1")


#: Months that stress attendance rules: a leap February, holiday and make-up months.
ATTENDANCE_MONTHS: tuple[tuple[int, int], ...] = (
    (2024, 2), (2024, 10), (2025, 1), (2025, 2), (2025, 10), (2026, 1), (2026, 2), (2026, 5),
    (2026, 9), (2026, 10),
)


@st.composite
def attendance_months(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                      employees: int = 2, month: tuple[int, int] | None = None,
                      start: date = DEFAULT_START, end: date = DEFAULT_END) -> Stream:
    """A month of clock-ins and clock-outs for up to ``employees`` office staff: on working
    days (make-up days included) a clock-in at the start of working hours give or take a
    second or a microsecond, a minute, or hours, sometimes none or two; clock-outs around
    the end of working hours; now and then a clock-in on a holiday or weekend, and a leave.
    ``until`` is the month's last instant, or just after, or mid-month (a provisional view)."""
    log = _Log("at")
    if month is None:
        inside = [m for m in ATTENDANCE_MONTHS if start <= date(*m, 1) <= end]
        month = draw(st.one_of(st.sampled_from(inside), st.dates(start, end).map(
            lambda d: (d.year, d.month)))) if inside else \
            draw(st.dates(start, end).map(lambda d: (d.year, d.month)))
    first, last = date(*month, 1), _month_end(*month)
    staff = ("E1", "E2", "E3")[: draw(st.integers(1, max(1, employees)))]
    _add_profiles(draw, log, staff, calendar.start_of_day(first))
    ws, we = calendar.work_start, calendar.work_end
    ins = (timedelta(minutes=-15), -_S, timedelta(0), _US, _S, timedelta(minutes=1),
                  timedelta(minutes=29), timedelta(hours=2))
    out_offsets = (timedelta(hours=-1), -_S, timedelta(0), _S, timedelta(minutes=30))
    for person in staff:
        if _sometimes(draw):
            a = first + timedelta(days=draw(st.integers(0, (last - first).days)))
            b = min(last, a + timedelta(days=draw(st.integers(0, 4))))
            # Mostly without the flag (approved, as older logs have it), now and then
            # asked for and refused, or approved explicitly.
            flag = draw(st.sampled_from((None, None, False, True)))
            log.add("attendance.leave", calendar.start_of_day(a) - timedelta(days=1),
                    employee_id=person, start=a, end=b,
                    **({} if flag is None else {"approved": flag}))
        day = first
        while day <= last:
            if calendar.is_working_day(day):
                if _often(draw):
                    log.add("attendance.clock_in",
                            calendar.at(day, ws) + draw(st.sampled_from(ins)),
                            employee_id=person)
                    if _sometimes(draw):  # a second clock-in: only the first counts
                        log.add("attendance.clock_in",
                                calendar.at(day, ws) + draw(st.sampled_from(ins)),
                                employee_id=person)
                if _often(draw):
                    log.add("attendance.clock_out",
                            calendar.at(day, we) + draw(st.sampled_from(out_offsets)),
                            employee_id=person)
            elif draw(st.integers(0, 19)) == 19:
                log.add("attendance.clock_in", calendar.at(day, time(9, 15)), employee_id=person)
            day += timedelta(days=1)
    month_end = calendar.end_of_month(calendar.at(first, time(12)))
    until = draw(st.sampled_from((month_end, month_end + _US, month_end + timedelta(days=1),
                                  calendar.at(first + timedelta(days=14), time(12)))))
    # Mid-month: the month so far (provisional figures), so only what happened by then.
    log.events = [e for e in log.events if e.at <= until]
    return log.stream(until)


@st.composite
def incident_lives(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                   max_incidents: int = 2, start: date = DEFAULT_START,
                   end: date = DEFAULT_END) -> Stream:
    """Faults from detection to the failure report: the first notification around 15
    minutes (to the salesperson and manager, with or without time, place, symptoms and plan),
    the manager's relay to senior leadership around 30 minutes, progress updates about every
    4 hours, resolution, and the report around 3 working days later with some sections."""
    log = _Log("in")
    t0 = draw(instants(calendar, start=start, end=end))
    _add_profiles(draw, log, ("E1", "E3", "M1"), t0)
    for i in range(draw(st.integers(1, max_incidents))):
        iid = f"I{i + 1}"
        if i:
            t0 = t0 + draw(delays("PT1H", "P1D"))
        first = draw(st.sampled_from(("E1", "E3")))
        log.add("incident.detected", t0, incident_id=iid,
                severity=draw(st.sampled_from(("major", "major", "minor"))), employee_id=first,
                customer_id=draw(st.one_of(st.none(), st.sampled_from(POOLS["customer"]))))
        t = t0
        if _often(draw):
            t = _after(draw, calendar, t0, wall=("PT15M",))
            recipients = draw(st.sampled_from((
                ["sales_owner", "manager", "departments"], ["sales_owner", "manager"],
                ["manager"], ["departments"])))
            details = {k: draw(st.sampled_from((None, POOLS["text"][j])))
                       if _sometimes(draw) else POOLS["text"][j]
                       for j, k in enumerate(("time", "place", "symptoms", "plan"))}
            log.add("incident.notified", t, incident_id=iid, employee_id=first,
                    recipients=recipients, details=details)
            if _often(draw):
                log.add("incident.notified", _after(draw, calendar, t, wall=("PT30M",)),
                        incident_id=iid, employee_id="M1", recipients=["senior_leadership"])
        p = t
        while _sometimes(draw):
            p = _after(draw, calendar, p, wall=("PT4H",), at_most=timedelta(hours=6))
            log.add("incident.progress", p, incident_id=iid, employee_id="M1")
        if _often(draw):
            r = _after(draw, calendar, p, wall=("PT4H", "P1D"))
            log.add("incident.resolved", r, incident_id=iid)
            if _often(draw):
                sections = draw(st.sampled_from((
                    ["impact", "handling", "root_cause", "corrective_actions"],
                    ["impact", "handling", "root_cause"], [])))
                delivered = draw(st.sampled_from((["customer", "business_dept"], ["customer"])))
                log.add("incident.report_filed",
                        _after(draw, calendar, r, working=("P3D",), at_most=timedelta(days=6)),
                        incident_id=iid, employee_id="E3", sections=sections,
                        delivered_to=delivered)
    return log.stream(_horizon(draw, calendar, log.last))


@st.composite
def complaint_lives(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                    max_complaints: int = 2, start: date = DEFAULT_START,
                    end: date = DEFAULT_END) -> Stream:
    """Residents' complaints, visits and suggestions (often received late in the evening):
    investigated by the end of the same day give or take a microsecond, reported, replied
    around 3 days, validated; now and then a benefit received."""
    log = _Log("cp")
    t0 = draw(instants(calendar, start=start, end=end))
    _add_profiles(draw, log, ("E1", "E2", "D1"), t0)
    for i in range(draw(st.integers(1, max_complaints))):
        cid = f"CP{i + 1}"
        if i:
            t0 = t0 + draw(delays("PT1H", "P1D"))
        taker = draw(st.sampled_from(("E1", "E2")))
        log.add("complaint.received", t0, complaint_id=cid,
                household_id=draw(st.sampled_from(POOLS["household"])), employee_id=taker,
                kind=draw(st.sampled_from(("complaint", "complaint", "visit", "suggestion"))))
        t = t0
        if _often(draw):
            t = _after(draw, calendar, t0, boundaries=("end_of_day",))
            log.add("complaint.investigated", t, complaint_id=cid, employee_id=taker,
                    outcome=draw(st.sampled_from(("solved", "unsolved"))))
        if _often(draw):
            t = _after(draw, calendar, t, wall=("P1D", "P2D"))
            log.add("complaint.reported", t, complaint_id=cid, employee_id=taker,
                    recipients=draw(st.sampled_from((["responsible_dept", "director"],
                                                     ["director"]))))
        if _often(draw):
            log.add("complaint.replied", _after(draw, calendar, t, wall=("P3D",),
                                                at_most=timedelta(days=5)),
                    complaint_id=cid, employee_id=taker,
                    recipients=draw(st.sampled_from((["resident", "director"], ["resident"]))))
        if _sometimes(draw):
            log.add("complaint.validated", t + draw(delays("P1D")), complaint_id=cid,
                    valid=draw(st.booleans()))
        if draw(st.integers(0, 19)) == 19:
            log.add("complaint.benefit_received", t, complaint_id=cid, employee_id=taker)
    return log.stream(_horizon(draw, calendar, log.last))


@st.composite
def pack_streams(draw: st.DrawFn, calendar: BusinessCalendar = DEFAULT_CALENDAR, *,
                 noise: int = 8, start: date = DEFAULT_START, end: date = DEFAULT_END) -> Stream:
    """A stream for the whole standard pack: some of each life above (small), around one
    drawn moment so they overlap in time, plus up to ``noise`` unrelated events of any type
    (so the policies without a dedicated life see input too)."""
    # Room after the base for the lives that run on (callbacks for months, a month of
    # attendance) before ``end``.
    base = draw(instants(calendar, start=start, end=max(start, end - timedelta(days=150))))
    lo = base.date()
    hi = min(end, lo + timedelta(days=10))
    parts: list[Stream] = []
    kw: dict[str, Any] = {"start": lo, "end": hi}
    if draw(st.booleans()):
        parts.append(draw(request_lives(calendar, max_requests=2, **kw)))
    if draw(st.booleans()):
        parts.append(draw(guard_rotas(calendar, max_shifts=3, **kw)))
    if draw(st.booleans()):
        parts.append(draw(project_lives(calendar, max_projects=1, max_months=4, **kw)))
    if draw(st.booleans()):
        parts.append(draw(attendance_months(calendar, employees=1, month=(lo.year, lo.month))))
    if draw(st.booleans()):
        parts.append(draw(incident_lives(calendar, max_incidents=1, **kw)))
    if draw(st.booleans()):
        parts.append(draw(complaint_lives(calendar, max_complaints=1, **kw)))
    parts.append(draw(event_streams(calendar=calendar, min_size=0 if parts else 1,
                                    max_size=noise, **kw)))
    return merge(*parts)


# --------------------------------------------------------------------------- deliveries

def _events_of(stream: Stream | Sequence[EventBase]) -> list[EventBase]:
    return list(stream.events if isinstance(stream, Stream) else stream)


def _like(stream: Stream | Sequence[EventBase], events: list[EventBase]) -> Any:
    return stream.replace(events) if isinstance(stream, Stream) else events


@overload
def with_duplicates(stream: Stream, *, max_copies: int = ...) -> st.SearchStrategy[Stream]: ...
@overload
def with_duplicates(stream: Sequence[EventBase], *,
                    max_copies: int = ...) -> st.SearchStrategy[list[EventBase]]: ...
def with_duplicates(stream: Stream | Sequence[EventBase], *,
                    max_copies: int = 3) -> st.SearchStrategy[Any]:
    """The same events with some delivered again (up to ``max_copies`` times each), each
    copy re-read from its wire form and placed somewhere after the first delivery."""
    events = _events_of(stream)

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        out = list(events)
        if not events:
            return _like(stream, out)
        picks = draw(st.lists(st.integers(0, len(events) - 1), max_size=len(events)))
        for i in picks:
            for _ in range(draw(st.integers(1, max_copies))):
                copy = parse_event(events[i].model_dump(mode="json", exclude_none=True))
                first = out.index(events[i])
                out.insert(draw(st.integers(first + 1, len(out))), copy)
        return _like(stream, out)

    return build()


@overload
def reordered(stream: Stream) -> st.SearchStrategy[Stream]: ...
@overload
def reordered(stream: Sequence[EventBase]) -> st.SearchStrategy[list[EventBase]]: ...
def reordered(stream: Stream | Sequence[EventBase]) -> st.SearchStrategy[Any]:
    """The same events in any arrival order (for batch evaluation, which sorts them)."""
    return st.permutations(_events_of(stream)).map(lambda evs: _like(stream, list(evs)))


def _rewrite(ev: E, tz: timezone) -> E:
    update: dict[str, Any] = {}
    for shape in field_shapes(type(ev)):
        if shape.kind == "datetime":
            value = getattr(ev, shape.name)
            if value is not None:
                update[shape.name] = value.astimezone(tz)
    return ev.model_copy(update=update)


@overload
def in_offsets(stream: Stream, offsets: Sequence[timezone] = ...) -> st.SearchStrategy[Stream]: ...
@overload
def in_offsets(stream: Sequence[EventBase],
               offsets: Sequence[timezone] = ...) -> st.SearchStrategy[list[EventBase]]: ...
def in_offsets(stream: Stream | Sequence[EventBase],
               offsets: Sequence[timezone] = OFFSETS) -> st.SearchStrategy[Any]:
    """The same instants written with other UTC offsets: every date-time field of every
    event (``at``, ``promised_by``, ``valid_from`` ...) and ``until`` rewritten, each event in
    an offset of its own."""
    events = _events_of(stream)
    zones = st.sampled_from(list(offsets))

    @st.composite
    def build(draw: st.DrawFn) -> Any:
        out = [_rewrite(ev, draw(zones)) for ev in events]
        if isinstance(stream, Stream):
            until = stream.until.astimezone(draw(zones)) if stream.until else None
            return Stream(tuple(out), until)
        return out

    return build()
