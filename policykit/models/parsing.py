"""From the wire to models: dicts, JSON text, JSON Lines or bytes into validated events."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, tzinfo
from typing import Annotated, Any, Union, get_args

from pydantic import (
    AwareDatetime,
    Field,
    FutureDate,
    FutureDatetime,
    Json,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    TypeAdapter,
    ValidationError,
)

from .._timezones import shared_offset
from ..errors import EventError, ParameterError, nearest
from .decisions import Decision
from .events import EVENT_TYPES, ID_PATTERN, Event, EventBase, builtin_models, control_problem

__all__ = ["iter_events", "json_schema", "parse_event", "parse_events"]

_BUILTIN_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
#: The adapter over the built-in union, or over it and the application's registered types
#: (see :mod:`policykit.models.registry`): one tagged union either way, so a record's type
#: picks its model in one lookup and built-in records cost the same with types registered.
_ADAPTER: TypeAdapter[Event] = _BUILTIN_ADAPTER
_UNION: Any = Event  # the union _ADAPTER validates


def _use_types(extra: tuple[type[EventBase], ...]) -> None:
    """Parse the built-in types and ``extra`` (the registered ones) from now on."""
    global _ADAPTER, _UNION
    if not extra:
        _ADAPTER, _UNION = _BUILTIN_ADAPTER, Event
        return
    # Any: a union built at run time is a type form to pydantic, not to a type checker.
    union: Any = Annotated[Union[(*builtin_models(), *extra)],
                           Field(discriminator="type")]
    _ADAPTER, _UNION = TypeAdapter(union), union


#: The bulk form of :data:`_ADAPTER` (see :func:`parse_texts`), built on first use for the
#: adapter it wraps.
_BULK: tuple[TypeAdapter[Event], TypeAdapter[list[Any]]] | None = None


def _bulk_adapter() -> TypeAdapter[list[Any]]:
    global _BULK
    if _BULK is None or _BULK[0] is not _ADAPTER:
        # Json[...] parses each text on its own (no joining: a line cannot run into the
        # next) and validates it as validate_json does, in one call for the whole list.
        _BULK = (_ADAPTER, TypeAdapter(list[Json[_UNION]]))
    return _BULK[1]

#: Nesting deeper than this in one record is refused before validation (hostile input).
MAX_DEPTH = 32
#: Every date and date-time of an event must fall in these years (UTC for date-times):
#: beyond them calendar arithmetic overflows (year 1 or 9999 with an offset) and no
#: business calendar has data, so such a record is refused as invalid instead of failing
#: an evaluation half-way.
MIN_YEAR = 1900
MAX_YEAR = 2199
#: The ``meta`` key of a correction event: ``{"corrects": "<id of the event it replaces>"}``.
CORRECTS = "corrects"


def _problems(exc: ValidationError, raw: Any) -> list[tuple[str, Any, str]]:
    out: list[tuple[str, Any, str]] = []
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        # The discriminated union puts the tag first ("attendance.clock_in.employee_id"): the
        # user wrote a field, so name the field, not the union branch.
        if loc and loc[0] in EVENT_TYPES:
            loc = loc[1:]
        field = ".".join(loc)
        kind = err["type"]
        value = err.get("input")
        if kind == "union_tag_invalid" or kind == "union_tag_not_found":
            tag = raw.get("type") if isinstance(raw, Mapping) else None
            hint = nearest(tag, EVENT_TYPES)
            expected = "a known event type" + (f" (did you mean {hint!r}?)" if hint else
                                               " (see `policykit schema`)")
            out.append(("type", tag, expected))
        elif kind == "extra_forbidden":
            tag = raw.get("type") if isinstance(raw, Mapping) else None
            model = EVENT_TYPES.get(tag) if isinstance(tag, str) else None
            hint = nearest(loc[-1], model.model_fields) if model and loc else None
            expected = "no such field" + (f" (did you mean {hint!r}?)" if hint else "") + \
                "; put application data under 'meta'"
            out.append((field, value, expected))
        elif kind == "missing":
            out.append((field, "<missing>", "a value: the field is required"))
        elif (kind == "string_pattern_mismatch" and isinstance(value, str)
              and (err.get("ctx") or {}).get("pattern") == ID_PATTERN
              and (problem := control_problem(value)) is not None):
            out.append((field, value, problem))
        elif kind == "timezone_aware":
            out.append((field, value,
                        "a date-time with a UTC offset, e.g. 2026-03-02T08:30:00+08:00"))
        else:
            msg = err["msg"]
            if kind == "value_error" and msg.startswith("Value error, "):
                msg = msg[len("Value error, "):]  # our own validators' words, not pydantic's
            out.append((field, value, msg))
    return out


def _depth(value: Any, limit: int) -> bool:
    """True when ``value`` nests no deeper than ``limit`` (iterative: no recursion limit)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, d = stack.pop()
        if d > limit:
            return False
        if isinstance(item, Mapping):
            stack.extend((v, d + 1) for v in item.values())
        elif isinstance(item, list | tuple):
            stack.extend((v, d + 1) for v in item)
    return True


def parse_event(
    record: Mapping[str, Any] | str | bytes | EventBase,
    *,
    source: str = "<event>",
    line: int | None = None,
) -> Event:
    """Validate one event given as a model, a dict, or JSON text/bytes.

    Raises :class:`policykit.EventError` naming the field, the bad value and what was expected.
    """
    if isinstance(record, EventBase):
        return record  # type: ignore[return-value]  # every EventBase subclass is in Event
    if isinstance(record, str | bytes | bytearray) and _shallow(record):
        # The fast path for JSON text: pydantic parses and validates the line in one pass
        # (about 5x cheaper than json.loads + validate_python + a depth walk). With at most
        # MAX_DEPTH brackets in the whole text, no value can nest deeper than MAX_DEPTH, so
        # the depth walk is not needed. Any failure takes the slow path below, which
        # builds the error exactly as before (same checks, same order, same messages).
        try:
            event: Event = _ADAPTER.validate_json(record)
        except Exception:  # the slow path below reports it
            pass
        else:
            return _checked(event, source, line)
    raw: Any = record
    if isinstance(record, str | bytes | bytearray):
        try:
            raw = json.loads(record)
        except (ValueError, RecursionError) as exc:
            raise EventError(source, [("", _clip(record), f"valid JSON ({exc})")],
                             line=line) from None
    if not isinstance(raw, Mapping):
        raise EventError(source, [("", raw, "a JSON object")], line=line)
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else None
    if not _depth(raw, MAX_DEPTH):
        raise EventError(source, [("", "<deeply nested>", f"at most {MAX_DEPTH} levels")],
                         event_id=event_id, line=line)
    try:
        event = _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise EventError(source, _problems(exc, raw), event_id=event_id, line=line) from None
    except (RecursionError, OverflowError, ValueError, TypeError) as exc:
        raise EventError(source, [("", _clip(raw), f"a valid event ({exc})")],
                         event_id=event_id, line=line) from None
    return _checked(event, source, line)


def parse_texts(
    texts: Sequence[str | bytes],
    *,
    source: str = "<events>",
    lines: Sequence[int | None] | None = None,
) -> list[Event | EventError]:
    """:func:`parse_event` of each JSON text, in one pydantic call for the lot: for each
    text its event, or the :class:`EventError` parse_event would raise (the same error).
    Should parse_event raise any other Exception, the list ends with it.

    When the bulk validation fails, the texts it names are given to parse_event one by one
    (for the exact error: same checks, same order, same messages) and the rest validated
    again in bulk; so is a text parse_event would not validate in one pass (more than
    MAX_DEPTH brackets: see _shallow)."""
    n = len(texts)
    where: Sequence[int | None] = lines if lines is not None else [None] * n
    out: list[Any] = [None] * n  # Event | EventError, or what else parse_event raised
    alone: set[int] = set()
    todo = list(range(n))
    valid: list[tuple[int, Any]] = []
    for _attempt in range(2):
        if not todo:
            break
        try:
            got = _bulk_adapter().validate_python([texts[i] for i in todo])
        except ValidationError as exc:
            bad = {todo[e["loc"][0]] for e in exc.errors(include_url=False)
                   if e["loc"] and isinstance(e["loc"][0], int)}
            if not bad:  # not one record's fault: each on its own
                bad = set(todo)
            alone |= bad
            todo = [i for i in todo if i not in bad]
            continue
        except Exception:  # each on its own: parse_event says what it is
            break
        valid = list(zip(todo, got, strict=True))
        todo = []
    alone.update(todo)  # failed twice (or not one record's fault): each on its own
    deep = _deep(texts, [i for i, _e in valid])
    alone |= deep
    for i, event in valid:
        if i in deep:
            continue
        try:
            out[i] = _checked(event, source, where[i])
        except EventError as exc:
            out[i] = exc
    for i in sorted(alone):
        try:
            out[i] = parse_event(texts[i], source=source, line=where[i])
        except EventError as exc:
            out[i] = exc
        except Exception as exc:  # raised there, after the texts before it
            out[i] = exc
            return out[:i + 1]
    return out  # every slot is filled above


def _deep(texts: Sequence[str | bytes], valid: list[int]) -> set[int]:
    """Of the ``valid`` texts (each a JSON object, so each with at least one ``{``), those
    _shallow would send to parse_event's slow path. Counted on the texts joined: a group
    whose brackets number at most MAX_DEPTH more than one per other text holds no deep
    text; any other group is halved, down to single texts."""
    out: set[int] = set()
    stack = [valid] if valid else []
    while stack:
        group = stack.pop()
        if len(group) == 1:
            if not _shallow(texts[group[0]]):
                out.add(group[0])
            continue
        parts = [texts[i] for i in group]
        try:
            joined = parts[0][:0].join(parts)  # type: ignore[arg-type]
        except TypeError:  # str and bytes mixed
            stack.extend([i] for i in group)
            continue
        brace, bracket = ("{", "[") if isinstance(joined, str) else (b"{", b"[")
        total = joined.count(brace) + joined.count(bracket)  # type: ignore[arg-type]
        if total - (len(group) - 1) > MAX_DEPTH:
            half = len(group) // 2
            stack += (group[:half], group[half:])
    return out


def _checked(event: Event, source: str, line: int | None) -> Event:
    """The checks after validation: dates in range and a well-formed ``meta.corrects``;
    parsed offsets shared (see :mod:`policykit._timezones`: cheap comparisons)."""
    cls = type(event)
    fields = _DATE_FIELDS.get(cls) or _date_fields(cls)
    values = event.__dict__  # the model is frozen to its users; this is its construction
    for name in fields:
        value = values[name]
        if value is None:
            continue
        # Inside the years no offset can move an instant out of range: no call needed.
        if not MIN_YEAR < value.year < MAX_YEAR and not _in_range(value):
            raise EventError(source, [(name, _clip(str(value)),
                                       f"a date in the years {MIN_YEAR}-{MAX_YEAR}")],
                             event_id=event.id, line=line)
        if type(value) is datetime and type(tz := value.tzinfo) is _PYDANTIC_TZ:
            # pydantic's TzInfo hashes and compares by offset: one lookup finds the shared
            # zone. The same date-time in it is built from the pickled state (its fields,
            # fold 0 as every parsed date-time has): half the cost of the constructor from
            # seven fields, a quarter of replace(tzinfo=...).
            zone = _SHARED.get(tz)
            if zone is None:
                zone = _SHARED[tz] = shared_offset(value).tzinfo
            values[name] = _from_state(value.__reduce__()[1][0], zone)
    meta = event.meta
    if meta and CORRECTS in meta:
        target = meta[CORRECTS]
        # A correction names the event it replaces (see Session): checked here, so a bad
        # one is an invalid record (quarantined by audits), not a failure mid-stream.
        if not isinstance(target, str) or not 1 <= len(target) <= 256 or target == event.id:
            raise EventError(source, [(f"meta.{CORRECTS}", _clip(target),
                                       "the id of another event (1 to 256 characters) that "
                                       "this event corrects")], event_id=event.id, line=line)
    return event


def _shallow(text: str | bytes | bytearray) -> bool:
    """True when ``text`` cannot nest deeper than MAX_DEPTH (brackets in strings count too:
    an overestimate only sends the record to the slow path)."""
    if isinstance(text, str):
        return text.count("{") + text.count("[") <= MAX_DEPTH
    return text.count(b"{") + text.count(b"[") <= MAX_DEPTH


_PYDANTIC_TZ = type(_ADAPTER.validate_python(
    {"id": "x", "type": "attendance.clock_in", "at": "2026-01-01T00:00:00+08:00",
     "employee_id": "x"}).at.tzinfo)

_SHARED: dict[Any, tzinfo | None] = {}
#: datetime's unpickling form: datetime(state, tzinfo), the state as __reduce__ gives it.
_from_state: Callable[[Any, tzinfo | None], datetime] = datetime  # type: ignore[assignment]  # pydantic TzInfo -> the shared zone of its offset

# pydantic's constrained date types are marker classes, not date subclasses.
_DATE_MARKERS = (AwareDatetime, NaiveDatetime, PastDate, FutureDate, PastDatetime,
                 FutureDatetime)


def _holds_date(annotation: Any) -> bool:
    if isinstance(annotation, type):
        return issubclass(annotation, date) or annotation in _DATE_MARKERS
    return any(_holds_date(arg) for arg in get_args(annotation))


_DATE_FIELDS: dict[type[EventBase], tuple[str, ...]] = {}


def _date_fields(model: type[EventBase]) -> tuple[str, ...]:
    """The fields of ``model`` that hold a date or date-time, in field order (the only
    values the range check applies to: ``meta`` holds JSON values, never dates)."""
    names = _DATE_FIELDS.get(model)
    if names is None:
        names = tuple(n for n, f in model.model_fields.items() if _holds_date(f.annotation))
        _DATE_FIELDS[model] = names
    return names


def _in_range(value: date) -> bool:
    if MIN_YEAR < value.year < MAX_YEAR:
        return True  # a UTC offset moves an instant by less than a day: no year to check
    if isinstance(value, datetime):
        try:
            value = value.astimezone(UTC)
        except (OverflowError, ValueError):
            return False
    return MIN_YEAR <= value.year <= MAX_YEAR


def _clip(value: Any) -> Any:
    if isinstance(value, str | bytes) and len(value) > 60:
        return value[:60] + (b"..." if isinstance(value, bytes) else "...")  # type: ignore[operator]
    return value


_ACCEPTED = ("JSON array or JSON Lines text (str or bytes), an event dict or model, or an "
             "iterable of event dicts, JSON strings or models")


def _records(data: Any, *, name: str = "events") -> Iterator[tuple[int | None, Any]]:
    """(line or position, raw record) pairs from any accepted input shape; anything else
    raises :class:`ParameterError` naming ``name`` at once, not when first iterated."""
    if not isinstance(data, str | bytes | bytearray | Mapping | EventBase | Iterable):
        raise ParameterError(name, data, _ACCEPTED)
    return _each_record(data)


def _each_record(data: Any) -> Iterator[tuple[int | None, Any]]:
    if isinstance(data, bytes | bytearray):
        data = data.decode("utf-8", errors="replace")
    if isinstance(data, str):
        text = data.lstrip()
        if text.startswith("["):
            try:
                items = json.loads(text)
            except (ValueError, RecursionError):
                items = None
            if isinstance(items, list):
                for n, item in enumerate(items, 1):
                    yield n, item
                return
        # Split on "\n" only: str.splitlines would also split on U+2028, U+2029, U+0085
        # and other separators, which are valid inside a JSON string.
        for n, row in enumerate(data.split("\n"), 1):
            row = row.removesuffix("\r")
            if row.strip():
                yield n, row
        return
    if isinstance(data, Mapping | EventBase):
        yield 1, data
        return
    for n, item in enumerate(data, 1):
        yield n, item


def iter_events(
    data: str | bytes | Iterable[Any] | Mapping[str, Any],
    *,
    source: str = "<events>",
    errors: list[EventError] | None = None,
) -> Iterator[Event]:
    """Validate events lazily. With ``errors`` given, a bad record is appended there (with its
    line number) and the good records around it are kept; without, the first one raises."""
    for line, raw in _records(data, name="data"):
        try:
            yield parse_event(raw, source=source, line=line)
        except EventError as exc:
            if errors is None:
                raise
            errors.append(exc)


def parse_events(
    data: str | bytes | Iterable[Any] | Mapping[str, Any],
    *,
    source: str = "<events>",
    errors: list[EventError] | None = None,
) -> list[Event]:
    """Validate many events: JSON array text, JSON Lines text, bytes, or an iterable of dicts,
    JSON strings or models. See :func:`iter_events` for ``errors``."""
    return list(iter_events(data, source=source, errors=errors))


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the wire format: ``{"event": ..., "decision": ...}``."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "policykit wire format",
        "event": _ADAPTER.json_schema(),
        "decision": Decision.model_json_schema(),
    }


