"""What every rule shape shares: event matchers, subjects, messages, the spec base class
(the data a policy file holds) and the runtime interface the native evaluator drives."""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from string import Formatter
from types import UnionType
from typing import (
    TYPE_CHECKING,
    Annotated,
    Any,
    ClassVar,
    Literal,
    TypeVar,
    Union,
    get_args,
    get_origin,
    overload,
)

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    NaiveDatetime,
    model_validator,
)

from ..errors import EventError, RuleValueError, format_loc, nearest
from ..models.decisions import (
    Decision,
    DecisionKind,
    Severity,
    Subject,
    SubjectKind,
    build_decision,
)
from ..models.events import EVENT_TYPES, EventBase

if TYPE_CHECKING:
    from ..calendar import BusinessCalendar

__all__ = [
    "MAX_AMOUNT",
    "MAX_COUNT",
    "Amount",
    "Condition",
    "Count",
    "DurationSpec",
    "EmitFn",
    "Match",
    "Message",
    "Names",
    "Partition",
    "PolicyInfo",
    "RuleContext",
    "RuleRuntime",
    "RuleSpec",
    "SubjectRef",
    "check_subjects",
    "check_template",
    "checked_subject",
    "decision_id",
    "event_value",
    "field_getter",
    "first_key",
    "join_key",
    "key_getter",
    "key_of",
    "key_part",
    "keyed_by",
    "part_value",
    "render",
    "split_key",
    "subject_paths",
    "value_part",
]

def _check_deadline_spec(value: str) -> str:
    from ..calendar import validate_deadline_spec

    return validate_deadline_spec(value)


DurationSpec = Annotated[str, AfterValidator(_check_deadline_spec)]
"""An ISO-8601 duration (``PT15M``, ``P1D``) or a calendar boundary (``end_of_day``...),
checked where the policy is loaded so a typo points at its field."""

def _one_or_many(value: Any) -> Any:
    # One item written alone (a name, a mapping, a model) is a list of one.
    return (value,) if isinstance(value, str | Mapping | BaseModel) else value


_T = TypeVar("_T")

OneOrMany = Annotated[tuple[_T, ...], BeforeValidator(_one_or_many)]
"""One item or a list of them, kept as a tuple: ``occurrence: {type: ...}`` and
``occurrence: [{type: ...}, ...]`` both validate (the policy JSON schema says so too)."""

Names = OneOrMany[str]
"""One name or a list of names (event types, key fields, rule ids): ``key: request_id`` and
``key: [customer_id, topic]`` both validate."""

MAX_COUNT = 1_000_000
"""The largest count a policy may give (a tier's first item, a limit, a minimum count)."""
MAX_AMOUNT = Decimal(10) ** 12
"""The largest amount, rate or target a policy may give (as large as event money may be)."""
Count = Annotated[int, Field(le=MAX_COUNT)]
"""A count in a policy: at most ``MAX_COUNT`` (fields add their own lower bound)."""
Amount = Annotated[Decimal, Field(ge=-MAX_AMOUNT, le=MAX_AMOUNT, decimal_places=12,
                                  allow_inf_nan=False)]
"""A decimal in a policy: finite, at most ``MAX_AMOUNT`` either side of zero, at most 12
decimal places."""

Scalar = str | int | bool | None
_OPS = frozenset({"eq", "ne", "in", "not_in", "contains", "contains_all", "exists",
                  "gt", "ge", "lt", "le"})
Condition = Scalar | dict[str, Any]
"""A field test: a plain value means equality; ``{op: value}`` with op one of
eq, ne, in, not_in, contains, contains_all, exists, gt, ge, lt, le."""

KEY_SEP = "\x1f"
"""Joins the parts of a key (a case key of several fields, a timer key and its case)."""
KEY_ESC = "\x1b"
"""Escapes a separator or itself inside one part, so joining is injective (see key_part)."""
_ESCAPED = {KEY_ESC: KEY_ESC + "e", KEY_SEP: KEY_ESC + "s"}
_UNESCAPED = {"e": KEY_ESC, "s": KEY_SEP}


def key_part(value: str) -> str:
    """One id as a part of a key: unchanged unless it holds ``KEY_SEP`` or ``KEY_ESC``,
    which are escaped (``ESC e``, ``ESC s``). An encoded part never holds the separator and
    never holds ``ESC`` followed by anything but ``e`` or ``s``, so keys joined from encoded
    parts never collide, whatever characters the ids hold, and ordinary ids keep their
    plain keys."""
    if KEY_SEP in value or KEY_ESC in value:
        return "".join(_ESCAPED.get(c, c) for c in value)
    return value


_TYPED = KEY_ESC + "t"  # opens a typed part (value_part); key_part never writes ESC t
_TYPED_TEXT = KEY_ESC + ":"  # ends the type name of a typed part


def value_part(value: Any) -> str:
    """One key value as an encoded key part: a string as :func:`key_part` encodes it (so
    string ids keep their keys); any other value (a number, a bool, a list from ``meta``)
    as ``ESC t <type> ESC : <text>``, which no string's part can be (key_part writes ESC
    only before ``e`` or ``s``), so ``1`` and ``"1"``, ``True`` and ``"True"``, ``["a"]``
    and ``"['a']"`` never share a case."""
    if isinstance(value, str):
        text = str(value)
        return text if KEY_SEP not in text and KEY_ESC not in text else key_part(text)
    return _TYPED + key_part(type(value).__name__) + _TYPED_TEXT + key_part(str(value))


def part_value(part: str) -> str:
    """The id :func:`key_part` encoded as ``part`` (for a typed part of
    :func:`value_part`, the value's text)."""
    if KEY_ESC not in part:
        return part
    if part.startswith(_TYPED):
        part = part[part.find(_TYPED_TEXT) + 2:]
    out: list[str] = []
    chars = iter(part)
    for c in chars:
        out.append(_UNESCAPED.get(next(chars, ""), "") if c == KEY_ESC else c)
    return "".join(out)


def join_key(parts: Iterable[str]) -> str:
    """Parts joined into one key, each encoded with :func:`key_part`."""
    return KEY_SEP.join(key_part(p) for p in parts)


def split_key(key: str) -> list[str]:
    """The ids a key of :func:`join_key` was built from."""
    return [part_value(p) for p in key.split(KEY_SEP)]


_PARTS: dict[str, tuple[str, ...] | None] = {}
# Pydantic model classes -> their declared field names. isinstance(x, BaseModel) goes
# through ABCMeta (as does the Mapping check), which costs more than the field read itself
# on the per-event path; a dict lookup of the exact type does not.
_MODELS: dict[type, frozenset[str]] = {}


def _declared(value: Any) -> frozenset[str] | None:
    """The declared fields of a pydantic model instance; None for anything else."""
    cls = type(value)
    fields = _MODELS.get(cls)
    if fields is None and isinstance(value, BaseModel):
        fields = _MODELS[cls] = frozenset(cls.model_fields)
    return fields


def _path_parts(path: str) -> tuple[str, ...] | None:
    """A path's parts; None when one is empty or private (``_x``, ``__class__``): such a
    path reads nothing, ever."""
    parts = tuple(path.split("."))
    if any(not p or p[0] == "_" for p in parts):
        return None
    return parts


@overload
def local_iso(ctx: RuleContext, t: datetime) -> str: ...
@overload
def local_iso(ctx: RuleContext, t: datetime | None) -> str | None: ...
def local_iso(ctx: RuleContext, t: datetime | None) -> str | None:
    """An instant as every decision's details show it: in the policy calendar's zone, to
    the second (None stays None)."""
    if t is None:
        return None
    # Rules often write one instant several times in a row (a tariff's R2 money and R3
    # count note the same late day): the last text is kept, by calendar and instant (the
    # text is the instant's local time in that calendar, whatever zone ``t`` is written in).
    global _LAST_ISO
    cal = ctx.calendar
    last = _LAST_ISO
    if last is not None and last[0] is cal and last[1] == t:
        return last[2]
    text = cal.local(t).isoformat(timespec="seconds")
    _LAST_ISO = (cal, t, text)
    return text


_LAST_ISO: tuple[Any, datetime, str] | None = None


def event_value(event: EventBase, path: str) -> Any:
    """The value at a dotted field path of an event (``details.plan``), or None.

    Only declared fields of the event models are read, and free-form mappings (``meta``)
    by key: never an attribute of anything else (no methods, no ``__class__``), so a
    policy file can read the event's data and nothing beyond it."""
    if path in _PARTS:
        parts = _PARTS[path]
    else:
        parts = _PARTS[path] = _path_parts(path)
    if parts is None:
        return None
    value: Any = event
    for part in parts:
        if value is None:
            return None
        fields = _MODELS.get(type(value))
        if fields is None:
            fields = _declared(value)
        if fields is not None:
            value = getattr(value, part) if part in fields else None
        elif type(value) is dict or isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
    return value


def field_getter(path: str) -> Callable[[Any], Any]:
    """A compiled :func:`event_value` for one path: the same answers, without re-reading
    the path on every event (a plain attribute read for a model and an undotted path)."""
    if "." in path or _path_parts(path) is None:
        return lambda ev: event_value(ev, path)

    # Model classes known to declare ``path``: one set lookup per read, as cheap as a plain
    # attribute read (every other value goes the checked way of event_value).
    declaring: set[type] = set()

    def get(ev: Any) -> Any:
        cls = type(ev)
        if cls in declaring:
            return getattr(ev, path)
        fields = _declared(ev)
        if fields is not None and path in fields:
            declaring.add(cls)
        return event_value(ev, path)

    return get


_KEYS: dict[tuple[str, ...], Callable[[Any], str | None]] = {}


def _key_getter(fields: tuple[str, ...]) -> Callable[[Any], str | None]:
    getters = tuple(field_getter(f) for f in fields)
    sep, esc = KEY_SEP, KEY_ESC
    if len(getters) == 1:
        (one,) = getters

        def single(ev: Any) -> str | None:
            v = one(ev)
            if v is None:
                return None
            if not isinstance(v, str):
                return value_part(v)
            text = str(v)
            # key_part inlined for the common case: no separator, no escape, no call.
            return text if sep not in text and esc not in text else key_part(text)

        return single

    last = len(getters) - 1

    def joined(ev: Any) -> str | None:
        parts = []
        typed = False
        for g in getters:
            v = g(ev)
            if v is None:
                return None
            if not isinstance(v, str):
                typed = True
            parts.append(v)
        if typed:
            return sep.join(map(value_part, parts))
        key = sep.join(map(str, parts))
        if esc in key or key.count(sep) != last:
            return join_key(map(str, parts))  # a part holds the separator or the escape
        return key

    return joined


def key_getter(fields: tuple[str, ...]) -> Callable[[Any], str | None]:
    """A compiled :func:`key_of` for ``fields`` (shared by every rule keyed on them)."""
    get = _KEYS.get(fields)
    if get is None:
        get = _KEYS[fields] = _key_getter(tuple(fields))
    return get


def key_of(event: EventBase, fields: tuple[str, ...]) -> str | None:
    """The case key an event belongs to: its key fields' parts (:func:`value_part`) joined
    with ``KEY_SEP``; None if one is missing."""
    get = _KEYS.get(fields)
    if get is None:
        get = _KEYS[fields] = _key_getter(tuple(fields))
    return get(event)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def checked_subject(event: EventBase, field: str, value: Any) -> str | None:
    """The subject id an event gives at ``field``: None when it gives none; the value when
    it is a non-empty string without control characters. Anything else (``""``, ``"a\\nb"``,
    a number, a list, a bool from ``meta``) raises :class:`~policykit.EventError` naming
    the field and value: it is no id to make decisions about. An audit quarantines the
    event; a session raises."""
    if value is None:
        return None
    if isinstance(value, str) and value and _CONTROL.search(value) is None:
        return str(value)
    raise EventError("<event>", [(field, value, "a subject id: a non-empty string "
                                  "without control characters")], event_id=event.id)


def subject_paths(specs: Iterable[RuleSpec]) -> dict[str, tuple[str, ...]]:
    """Event type -> the dotted (free-form, e.g. ``meta.who``) ``subject.field`` paths of the
    rules reading that type. Declared top-level id fields are typed by the event models;
    a dotted path can hold anything, so :func:`check_subjects` checks it before a session
    applies the event."""
    out: dict[str, dict[str, None]] = {}
    for spec in specs:
        ref = getattr(spec, "subject", None)
        if isinstance(ref, SubjectRef) and "." in ref.field:
            for t in spec.event_types():
                out.setdefault(t, {})[ref.field] = None
    return {t: tuple(paths) for t, paths in out.items()}


def check_subjects(event: EventBase, paths: Mapping[str, tuple[str, ...]]) -> None:
    """:class:`~policykit.EventError` when ``event`` holds, at a subject path a rule reads
    from its type (:func:`subject_paths`), a value that is no subject id
    (:func:`checked_subject`)."""
    for path in paths.get(event.type, ()):
        checked_subject(event, path, event_value(event, path))


_MAPPING = "mapping"  # a free-form dict field (meta, a decision's details): keys below it
_LEAF = "leaf"  # a value with no fields below it (a string, a number, a list, a time)


def _field_kind(annotation: Any) -> Any:
    """What lies below a field of this annotation: a model class, _MAPPING or _LEAF."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _field_kind(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        kinds = {_field_kind(a) for a in get_args(annotation) if a is not type(None)}
        return kinds.pop() if len(kinds) == 1 else _LEAF
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if annotation is dict or origin is dict or origin is Mapping:
        return _MAPPING
    return _LEAF


def _path_problem(model: type[BaseModel], path: str) -> str | None:
    """Why ``path`` names no declared field of ``model`` (None when it does)."""
    parts = path.split(".")
    for part in parts:
        if not part or part[0] == "_":
            return (f"field path {path!r}: {part!r} is not a field name (empty and "
                    "private names are never read)")
    kind: Any = model
    for i, part in enumerate(parts):
        if kind is _MAPPING:
            return None  # free-form data: the rest are keys, read as keys only
        if kind is _LEAF:
            return (f"field path {path!r}: {'.'.join(parts[:i])!r} has no fields "
                    f"(nothing below it can be read)")
        fields = kind.model_fields
        if part not in fields:
            where = "" if i == 0 else f" {'.'.join(parts[:i])!r} ({kind.__name__})"
            hint = nearest(part, fields)
            return (f"field path {path!r}:{where or ' the event'} has no field {part!r}"
                    + (f" (did you mean {hint!r}?)" if hint
                       else f" (its fields: {', '.join(sorted(fields))})"))
        kind = _field_kind(fields[part].annotation)
    return None


def _field_exists(types: Iterable[str], path: str) -> bool:
    head = path.split(".")[0]
    return any(head in EVENT_TYPES[t].model_fields for t in types if t in EVENT_TYPES)


def _check_types(types: tuple[str, ...]) -> None:
    for t in types:
        if t not in EVENT_TYPES:
            hint = nearest(t, EVENT_TYPES)
            raise ValueError(
                f"unknown event type {t!r}" + (f" (did you mean {hint!r}?)" if hint else "")
            )


def _check_field(types: tuple[str, ...], path: str, what: str = "") -> None:
    """``path`` must name a declared field of one of the event ``types`` (and below it only
    declared fields of nested models, or keys of a free-form mapping such as ``meta``).
    ``what``: the rule field holding the path, named in the error."""
    label = f"{what}: " if what else ""
    if not _field_exists(types, path):
        fields = {f for t in types for f in EVENT_TYPES[t].model_fields}
        hint = nearest(path.split(".")[0], fields)
        raise RuleValueError(
            f"{label}event type {', '.join(types)} has no field {path!r}"
            + (f" (did you mean {hint!r}?)" if hint else ""), path)
    problems = [_path_problem(EVENT_TYPES[t], path) for t in types if t in EVENT_TYPES]
    if all(problems):
        raise RuleValueError(f"{label}event type {', '.join(types)}: {problems[0]}", path)


def check_model_path(model: type[BaseModel], path: str, what: str = "") -> None:
    """:func:`_check_field` for another model (a decision's fields, read by a tariff)."""
    problem = _path_problem(model, path)
    if problem is not None:
        raise ValueError((f"{what}: " if what else "") + f"{model.__name__}: {problem}")


def _leaf_annotation(model: type[BaseModel], path: str) -> Any:
    """The declared annotation at ``path`` in ``model``; None where the path goes through
    free-form data (``meta.*``) or names no field (those are reported elsewhere)."""
    kind: Any = model
    annotation: Any = None
    for part in path.split("."):
        if not (isinstance(kind, type) and issubclass(kind, BaseModel)):
            return None
        field = kind.model_fields.get(part)
        if field is None:
            return None
        annotation = field.annotation
        kind = _field_kind(annotation)
    return annotation


_DATETIMES: tuple[Any, ...] = (datetime, AwareDatetime, NaiveDatetime)


def _describe(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _describe(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return " or ".join(_describe(a) for a in get_args(annotation) if a is not type(None))
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return "one of " + ", ".join(repr(m.value) for m in annotation)
    if origin in (list, tuple, set, frozenset):
        return "a list"
    if annotation in _DATETIMES:
        return "an ISO date-time string"
    for typ, name in ((bool, "true or false"), (int, "an integer"),
                      (Decimal, "a number"), (float, "a number"), (str, "a string"),
                      (datetime, "an ISO date-time string"), (date, "an ISO date string")):
        if annotation is typ:
            return name
    return getattr(annotation, "__name__", str(annotation))


def _fits(annotation: Any, value: Any) -> bool:
    """Whether a condition's ``value`` can be a value of a field of ``annotation``: only
    kinds known here are checked (anything else, such as an application's own class,
    passes)."""
    if value is None or annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Annotated:
        return _fits(get_args(annotation)[0], value)
    if origin is Union or origin is UnionType:
        return any(_fits(a, value) for a in get_args(annotation) if a is not type(None))
    if origin is Literal:
        return value in get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return any(value == m.value or value is m for m in annotation)
    if origin in (list, tuple, set, frozenset) or annotation in (list, tuple, set, frozenset):
        return isinstance(value, list | tuple)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation in (Decimal, float):
        if isinstance(value, str):
            try:
                Decimal(value)
            except ArithmeticError:
                return False
            return True
        return isinstance(value, int | float | Decimal) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if annotation in _DATETIMES or annotation is date:
        if isinstance(value, date):
            return True
        if not isinstance(value, str):
            return False
        try:
            (date if annotation is date else datetime).fromisoformat(value)
        except ValueError:
            return False
        return True
    return True


def _bases(annotation: Any) -> set[Any]:
    """The scalar types a field holds, through Annotated and unions (None left out)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _bases(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return {b for a in get_args(annotation) if a is not type(None) for b in _bases(a)}
    return {annotation}


#: Field types whose values are objects an event holds (a date, an instant, a Decimal):
#: text written in a condition never equals one of them.
_NOT_TEXT = (date, Decimal, *_DATETIMES)


def _item_annotation(annotation: Any) -> Any:
    """The item type of a list field (None when ``annotation`` is not one)."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _item_annotation(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        items = [_item_annotation(a) for a in get_args(annotation) if a is not type(None)]
        found = [i for i in items if i is not None]
        return found[0] if len(found) == 1 else None
    if origin in (list, set, frozenset):
        return get_args(annotation)[0] if get_args(annotation) else Any
    if origin is tuple:
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return args[0] if len(set(args)) == 1 else Any
    return None


def _check_value_types(types: tuple[str, ...], path: str, cond: Condition) -> None:
    """A condition's value(s) must be values of the field's declared type in every event
    type of the match declaring it; free-form paths (``meta.*``) are not checked."""
    if isinstance(cond, dict):
        if len(cond) != 1:
            return  # _compile_condition reports it
        (op, arg), = cond.items()
    else:
        op, arg = "eq", cond
    if op == "exists":
        return
    for t in types:
        model = EVENT_TYPES.get(t)
        annotation = None if model is None else _leaf_annotation(model, path)
        if annotation is not None:
            _check_operand(t, path, op, arg, annotation)


def _check_operand(t: str, path: str, op: str, arg: Any, annotation: Any) -> None:
    """One event type's check of ``op: arg`` on its field ``path`` declared ``annotation``."""
    if op in ("gt", "ge", "lt", "le"):
        # A comparison holds only for a number (see _compile_condition): on any other
        # field it would never match, silently.
        if not _fits(annotation, 0):
            raise RuleValueError(f"where.{path}: {op!r} compares numbers; {t} declares "
                                 f"{path!r} as {_describe(annotation)}", arg)
        return
    found = _operands(t, path, op, arg, annotation)
    if found is None:
        return
    expect, values = found
    for value in values:
        if not _fits(expect, value):
            choices = _choices(expect) if isinstance(value, str) else []
            hint = nearest(value, choices) if choices else None
            raise RuleValueError(
                f"where.{path}: {value!r} is not a value of {t}.{path} (expected "
                f"{_describe(expect)})" + (f" (did you mean {hint!r}?)" if hint else ""),
                value)
    if op in ("eq", "ne", "in", "not_in"):
        _check_not_text(t, path, expect, values)


def _operands(t: str, path: str, op: str, arg: Any, annotation: Any
              ) -> tuple[Any, list[Any]] | None:
    """(the type each value must have, the values) of ``op: arg``; None when there is
    nothing to check (a substring test on a text field)."""
    if op in ("in", "not_in"):
        return annotation, list(arg) if isinstance(arg, list | tuple) else []
    if op not in ("contains", "contains_all"):
        return annotation, [arg]
    item = _item_annotation(annotation)
    if item is None:
        if op == "contains" and _fits(annotation, ""):
            return None  # a substring test on a text field
        raise RuleValueError(f"where.{path}: {op!r} needs a list field; {t} "
                             f"declares {path!r} as {_describe(annotation)}", arg)
    many = op == "contains_all" and isinstance(arg, list | tuple)
    return item, list(arg) if many else [arg]


def _check_not_text(t: str, path: str, expect: Any, values: list[Any]) -> None:
    """Text tested for equality with a date, date-time or money field never holds."""
    text = next((v for v in values if isinstance(v, str)), None)
    held = _bases(expect) if text is not None else set()
    if held and all(b in _NOT_TEXT for b in held):
        # _fits accepts the text ("2026-03-02" is a date), but the test compares the
        # event's value (a date, a Decimal) with the text itself: it never holds.
        hint = ("write it as a number, {eq: 120.5}, or compare with gt/ge/lt/le"
                if held <= {Decimal} else "test it with exists, or test another field")
        kinds = sorted({"a decimal number" if b is Decimal else "a date-time"
                        if b in _DATETIMES else "a date" for b in held})
        raise RuleValueError(
            f"where.{path}: {text!r} is text, and {t}.{path} holds "
            f"{' or '.join(kinds)}: an event's value never equals text ({hint})", text)


def _choices(annotation: Any) -> list[str]:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _choices(get_args(annotation)[0])
    if origin is Union or origin is UnionType:
        return [c for a in get_args(annotation) for c in _choices(a)]
    if origin is Literal:
        return [a for a in get_args(annotation) if isinstance(a, str)]
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [m.value for m in annotation if isinstance(m.value, str)]
    return []


def _compile_condition(path: str, cond: Condition) -> Callable[[EventBase], bool]:
    get = field_getter(path)
    if not isinstance(cond, dict):
        return lambda ev: get(ev) == cond
    if len(cond) != 1:
        raise ValueError(f"condition on {path!r} must have exactly one operator, got {cond!r}")
    (op, arg), = cond.items()
    if op not in _OPS:
        hint = nearest(op, _OPS)
        raise ValueError(f"unknown operator {op!r} on {path!r}"
                         + (f" (did you mean {hint!r}?)" if hint else ""))
    if op == "eq":
        return lambda ev: get(ev) == arg
    if op == "ne":
        return lambda ev: get(ev) != arg
    if op in ("in", "not_in", "contains_all"):
        if not isinstance(arg, list | tuple) or not all(
                isinstance(a, str | int | bool) or a is None for a in arg):
            raise RuleValueError(f"{op!r} on {path!r} takes a list of plain values, got "
                                f"{arg!r}", arg)
        values = frozenset(arg)
    if op in ("in", "not_in"):
        if op == "in":
            return lambda ev: get(ev) in values
        return lambda ev: get(ev) not in values
    if op == "contains":
        if not (isinstance(arg, str | int | bool) or arg is None):
            raise RuleValueError(f"'contains' on {path!r} takes a plain value, got {arg!r}",
                                arg)
        return lambda ev: arg in (get(ev) or ())
    if op == "contains_all":
        return lambda ev: values.issubset(get(ev) or ())
    if op == "exists":
        want = bool(arg)
        return lambda ev: (get(ev) not in (None, "")) is want
    if not isinstance(arg, int | float | Decimal) or isinstance(arg, bool):
        raise RuleValueError(f"{op!r} on {path!r} takes a number, got {arg!r}", arg)
    num = arg

    def _cmp(ev: EventBase) -> bool:
        v = get(ev)
        if not isinstance(v, int | float | Decimal) or isinstance(v, bool):
            return False
        return (v > num if op == "gt" else v >= num if op == "ge"
                else v < num if op == "lt" else v <= num)

    return _cmp


#: One piece of a parsed message template: literal text, then a placeholder name or None.
_Piece = tuple[str, str | None]
_TEMPLATES: dict[str, tuple[_Piece, ...]] = {}


def _template_pieces(text: str) -> tuple[_Piece, ...]:
    """``text`` parsed with ``string.Formatter``; ValueError naming what is not allowed:
    malformed braces, positional fields, attribute or index access, conversions and format
    specs (``{0}``, ``{x.y}``, ``{x[0]}``, ``{x!r}``, ``{x:>99}``)."""
    try:
        parsed = list(Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"malformed ({exc}; write {{{{ and }}}} for literal braces)") from None
    pieces: list[_Piece] = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            pieces.append((literal, None))
            continue
        if name == "" or name.isdigit():
            raise ValueError(f"positional field {{{name}}}: name a field, e.g. {{subject}}")
        if not name.isidentifier() or name.startswith("_"):
            raise ValueError(f"field {{{name}}}: only plain names, no attribute or index access")
        if conversion is not None:
            raise ValueError(f"field {{{name}!{conversion}}}: no conversions")
        if spec:
            raise ValueError(f"field {{{name}:{spec}}}: no format specs")
        pieces.append((literal, name))
    return tuple(pieces)


MAX_TEMPLATE_CHARS = 2_000
"""Longest message template a policy file may give."""
MAX_TEMPLATE_FIELDS = 20
"""Most ``{field}`` placeholders in one message template."""
MAX_VALUE_CHARS = 400
"""Longest text one placeholder renders to: a longer value is cut to its first
``MAX_VALUE_CHARS - 1`` characters and ``…``. With the two limits above, a rendered message
holds at most 2,000 + 20 × 400 = 10,000 characters, whatever the events hold."""
_CLIP = "\u2026"


def check_template(text: str, names: Iterable[str]) -> None:
    """ValueError unless ``text`` is a message template using only ``names`` as fields,
    of at most MAX_TEMPLATE_CHARS characters and MAX_TEMPLATE_FIELDS placeholders."""
    known = frozenset(names)
    if len(text) > MAX_TEMPLATE_CHARS:
        raise ValueError(f"message template {text[:40]!r}... of {len(text)} characters: "
                         f"at most {MAX_TEMPLATE_CHARS}")
    try:
        pieces = _template_pieces(text)
    except ValueError as exc:
        raise ValueError(f"message template {text!r}: {exc}") from None
    for _literal, name in pieces:
        if name is not None and name not in known:
            hint = nearest(name, known)
            raise ValueError(
                f"message template {text!r}: unknown field {{{name}}} "
                + (f"(did you mean {{{hint}}}?)" if hint
                   else f"(known: {', '.join(sorted(known))})"))
    fields = sum(name is not None for _literal, name in pieces)
    if fields > MAX_TEMPLATE_FIELDS:
        raise ValueError(f"message template {text[:40]!r}... has {fields} fields: "
                         f"at most {MAX_TEMPLATE_FIELDS}")
    _TEMPLATES[text] = pieces


def render(text: str, values: Mapping[str, Any]) -> str:
    """A message from its template: each field replaced by ``format(value, "")`` (what
    ``str.format`` gives for a plain ``{name}``) cut to MAX_VALUE_CHARS characters, a
    field with no value kept as written.
    Nothing but a mapping lookup by plain name happens: no attribute, index or format-spec
    handling, whatever the template."""
    pieces = _TEMPLATES.get(text)
    if pieces is None:
        try:
            pieces = _template_pieces(text)
        except ValueError:
            pieces = ((text, None),)  # not a template this module accepts: the text as is
        if len(_TEMPLATES) < 10_000:
            _TEMPLATES[text] = pieces
    out: list[str] = []
    add = out.append
    for literal, name in pieces:
        add(literal)
        if name is not None:
            value = values.get(name, _ABSENT)
            if value is _ABSENT:
                add("{" + name + "}")
                continue
            # format(text, "") is the text itself (for an exact str): no call needed.
            text = value if type(value) is str else format(value, "")
            add(text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 1] + _CLIP)
    return "".join(out)


_ABSENT: Any = object()


class Message(BaseModel):
    """A decision's sentence in English and Chinese; ``{name}`` fields come from the
    decision's details, plus ``subject`` and ``rule``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    en: str
    """The English sentence, a template: ``{name}`` fields are filled from the decision."""
    zh: str
    """The Chinese sentence, a template like ``en``."""


class Match(BaseModel):
    """Which events a rule looks at: one or more types and field conditions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Names
    """The event type, or a list of types, this matcher takes."""
    where: dict[str, Condition] = Field(default_factory=dict)
    """Conditions on the event's fields, by dotted path (``details.plan``): a plain value means
    equality; ``{op: value}`` with op one of eq, ne, in, not_in, contains, contains_all,
    exists, gt, ge, lt, le. All must hold."""
    key: Names | None = None
    """Fields naming the case this event belongs to, where they differ from the rule's key."""

    @model_validator(mode="after")
    def _valid(self) -> Match:
        _check_types(self.type)
        for path, cond in self.where.items():
            try:
                _check_field(self.type, path, what="where")
            except RuleValueError as exc:
                exc.loc = ("where", path)  # a key of where, not a value: say which
                raise
            try:
                _compile_condition(path, cond)
            except RuleValueError as exc:
                exc.loc = ("where", path, *cond) if isinstance(cond, dict) else ("where", path)
                raise
        for f in self.key or ():
            _check_field(self.type, f, what="key")
        return self

    def predicate(self) -> Callable[[EventBase], bool]:
        """A fast test for one event (type already routed, so only the conditions)."""
        tests = tuple(_compile_condition(p, c) for p, c in self.where.items())
        if not tests:
            return lambda ev: True
        if len(tests) == 1:
            return tests[0]

        def all_hold(ev: EventBase) -> bool:
            # A loop, not all(<generator>): no generator object per event on the hot path.
            for test in tests:  # noqa: SIM110
                if not test(ev):
                    return False
            return True

        return all_hold


def _matches(value: Any, loc: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Match]]:
    """Every Match inside a rule's fields, with its location (``("fulfil", 0)``)."""
    if isinstance(value, Match):
        yield loc, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _matches(getattr(value, name), (*loc, name))
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            yield from _matches(item, (*loc, i))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _matches(item, (*loc, key))


class SubjectRef(BaseModel):
    """Where a decision's subject comes from: a kind and the event field holding its id."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    kind: SubjectKind
    """What the decisions are about (employee, customer, request, ...)."""
    field: str
    """The event field (a dotted path) holding the subject's id."""


class PolicyInfo(BaseModel):
    """What a rule knows about the policy it belongs to."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)
    id: str
    version: str
    clause: str
    calendar: Any  # BusinessCalendar; Any keeps this module free of an import cycle
    fingerprint: str = ""
    """The policy's fingerprint (:meth:`policykit.Policy.fingerprint`)."""


class RuleSpec(BaseModel):
    """The data of one rule: its id, shape, clause and figures. Subclasses add the shape's
    fields and build the runtime that evaluates them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    shape: str
    """The rule shape: which model validates the rule and which evaluator runs it."""
    id: str = Field(min_length=1, max_length=32)
    """The rule's id, unique in its policy (``R1``); decisions name it."""
    part_of: str | None = Field(default=None, min_length=1, max_length=32)
    """The rulebook rule this one is a part of, where the policy splits one rule into several
    (``R2b`` with ``part_of: R2``): its decisions say ``rule: R2`` and ``part: R2b``. Ids,
    messages and policy files keep naming the part by ``id``."""
    title: str = ""
    """A short name for the rule, used in messages and listings."""
    title_zh: str = ""
    """The rule's short name in Chinese, shown beside ``title`` in listings and explanations."""
    description: str = ""
    """What the rule checks, in a sentence or two (the policy reference shows it)."""
    clause: str | None = None
    """The rulebook clause the rule enforces; default the policy's clause."""
    severity: Severity = "medium"
    """How serious a decision of this rule is."""
    messages: dict[str, Message] = Field(default_factory=dict)
    """Overrides of the shape's default sentences, by outcome name."""

    #: The shape's sentences by outcome; a spec's ``messages`` override them.
    default_messages: ClassVar[dict[str, Message]] = {}
    #: The details the shape's decisions carry, which messages may name as ``{field}``
    #: (besides ``subject``, ``rule`` and the rule's ``key`` and ``show`` fields).
    message_fields: ClassVar[frozenset[str]] = frozenset()

    def placeholders(self) -> frozenset[str]:
        """The ``{field}`` names this rule's message templates may use."""
        extra: set[str] = set()
        for attr in ("key", "show"):
            value = getattr(self, attr, None)
            if isinstance(value, tuple):
                extra.update(v for v in value if isinstance(v, str))
        return frozenset({"subject", "rule", *self.message_fields, *extra})

    @model_validator(mode="after")
    def _valid_messages(self) -> RuleSpec:
        names = self.placeholders()
        for outcome, msg in self.messages.items():
            for lang in ("en", "zh"):
                try:
                    check_template(getattr(msg, lang), names)
                except ValueError as exc:
                    raise ValueError(f"rule {self.id}: messages.{outcome}.{lang}: {exc}") \
                        from None
        return self

    @model_validator(mode="after")
    def _valid_where_values(self) -> RuleSpec:
        # Here rather than in Match, so the error names the rule as well as the path.
        for loc, match in _matches(self):
            for path, cond in match.where.items():
                try:
                    _check_value_types(match.type, path, cond)
                except RuleValueError as exc:
                    where = (*loc, "where", path)
                    if isinstance(cond, dict) and len(cond) == 1:
                        where = (*where, *cond)  # the operator: where.ok.gt
                    raise RuleValueError(f"rule {self.id}: {format_loc(loc)}.{exc}",
                                        exc.value, where) from None
        return self

    def event_types(self) -> frozenset[str]:
        """Every event type this rule reads (used for routing and documentation)."""
        return frozenset()

    def consumes(self) -> frozenset[str]:
        """Ids of rules in the same policy whose decisions this rule reads."""
        return frozenset()

    def reads_money(self) -> bool:
        """True for a rule reading every money decision (an amount) of every policy in the
        set, its own excepted: a cap on all of a month's deductions and fines."""
        return False

    @abstractmethod
    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        """The native evaluator of this rule."""

    # What the engine's other parts ask a rule, so none of them switches on a shape's name:
    # the defaults are right (if not the fastest) for any shape.

    def state_types(self) -> frozenset[str]:
        """Event types this rule reads as *state*: its runtime must see every event of
        these types, even one failing the ``where`` of the matchers naming them (a
        population's profile that stops matching ends a membership). The durable backend
        never filters them away. Default: none (the runtime acts only on events passing
        one of its matchers)."""
        return frozenset()

    def partition(self) -> Partition | str:
        """How this rule's state is keyed, for :mod:`policykit.distributed`: a
        :class:`Partition` (build it with :func:`keyed_by`), or why the rule cannot be
        split (its group then runs whole, in one shard). Default: runs whole."""
        return f"shape {self.shape!r} has no partitioning rule (runs whole)"

    def reads_directory(self) -> bool:
        """Whether the runtime may look employees up in ``RuleContext.directory`` (the
        latest ``employee.profile`` per employee)."""
        return False

    def why_not_strategy(self) -> Literal["generic", "deadline", "daily"]:
        """How ``AuditReport.why_not`` explains a subject this rule did not fire for:
        ``generic`` (events seen, failed conditions, the rule's limits), ``deadline``
        (replay each case: the step that closed it and its margin to the deadline) or
        ``daily`` (the generic findings after each day's distance to a time of day)."""
        return "generic"

    def message(self, outcome: str) -> Message:
        found = self.messages.get(outcome) or self.default_messages.get(outcome)
        if found is None:
            return Message(en=f"{self.id} {outcome}: {{subject}}",
                           zh=f"{self.id} {outcome}：{{subject}}")
        return found


@dataclass(frozen=True)
class Partition:
    """How a rule's state is keyed, so a distributed audit can split its events
    (:meth:`RuleSpec.partition`).

    ``routes`` maps every event type the rule reads to the field whose value names the
    piece of state the event touches (None: the event is read by every piece, e.g. a
    population's membership). ``subject_keyed``: every piece is one decision subject's,
    so rules reading this rule's decisions per subject may be split with it.
    ``directory``: the rule looks employees up in the directory, so each shard needs
    the profiles of its subjects."""

    routes: Mapping[str, str | None]
    subject_keyed: bool = False
    directory: bool = False


def keyed_by(pairs: Iterable[tuple[Iterable[str], str | None]], *, subject_keyed: bool = False,
             directory: bool = False) -> Partition | str:
    """A :class:`Partition` from ``(event types, key field)`` pairs, or the first conflict
    (one type keyed by two fields) as the reason the rule cannot be split."""
    routes: dict[str, str | None] = {}
    for types, field in pairs:
        for t in types:
            if t in routes and routes[t] != field:
                return f"{t} is keyed by both {routes[t]} and {field}"
            routes[t] = field
    return Partition(routes, subject_keyed, directory)


def first_key(fields: Sequence[str] | None, default: Sequence[str]) -> str | None:
    """The first of ``fields``, or of ``default`` when there are none (a step's own key or
    the rule's)."""
    chosen = fields or default
    return chosen[0] if chosen else None


EmitFn = Callable[..., Decision]


def decision_id(policy: str, version: str, rule: str, outcome: str, subject: Subject,
                key: str, at: datetime, status: str, fingerprint: str = "") -> str:
    """Deterministic decision id: same events and policy give the same id, everywhere.

    The instant enters in UTC so the same moment written with another offset gives the
    same id. The policy's ``fingerprint`` (parameters, calendar, version, rules) enters
    too, so a decision made under other parameters never shares an id with this one."""
    return _decision_id(_id_head(policy, version, rule, outcome), subject, key, at, status,
                        fingerprint)


def _id_head(policy: str, version: str, rule: str, outcome: str) -> str:
    """The first four parts of a decision id's text, encoded: they repeat for every
    decision of a rule's outcome, so they are encoded once (the same text each time)."""
    head = _ID_HEADS.get((policy, version, rule, outcome))
    if head is None:
        if len(_ID_HEADS) > 4096:
            _ID_HEADS.clear()
        head = _ID_HEADS[(policy, version, rule, outcome)] = KEY_SEP.join(
            map(key_part, (policy, version, rule, outcome)))
    return head


def _decision_id(head: str, subject: Subject, key: str, at: datetime, status: str,
                 fingerprint: str) -> str:
    # Every part but ``key`` is encoded, so none holds the separator, and the stamp, status
    # and fingerprint never do: the key (which may join several parts) is whatever lies
    # between the sixth part and the last three.
    return hashed_id(head, key_part(subject.kind), key_part(subject.id), key,
                     at.astimezone(UTC).isoformat(), status, fingerprint)


def hashed_id(*parts: str) -> str:
    """A decision id from its parts joined by ``KEY_SEP`` (the caller keeps the joining
    injective): every decision id, the evaluator's and the session's derived ones."""
    raw = KEY_SEP.join(parts)
    return "d-" + hashlib.blake2b(raw.encode(), digest_size=10).hexdigest()


_ID_HEADS: dict[tuple[str, str, str, str], str] = {}


class RuleContext:
    """What a rule may do while evaluating: read the time, the calendar and the employee
    directory, schedule a wake-up in event time, and emit decisions."""

    __slots__ = ("_emit", "_outcomes", "_schedule", "calendar", "directory", "now", "policy")

    def __init__(
        self,
        policy: PolicyInfo,
        directory: Mapping[str, Any],
        emit: Callable[[Decision], None],
        schedule: Callable[[datetime, str], None],
    ) -> None:
        self.policy = policy
        self.calendar: BusinessCalendar = policy.calendar
        self.directory = directory
        """employee id -> latest ``employee.profile`` event."""
        self._emit = emit
        self._schedule = schedule
        self.now: datetime = datetime.min.replace(tzinfo=UTC)
        # (id of a spec, outcome) -> what emit takes from them for every decision (see
        # _outcome); the spec is kept in the entry so its id is never reused while cached.
        self._outcomes: dict[tuple[int, str], _Outcome] = {}

    def for_policy(self, policy: PolicyInfo) -> RuleContext:
        """A context for another version of the policy: the same directory and session
        callbacks, that version's identity and calendar."""
        return RuleContext(policy, self.directory, self._emit, self._schedule)

    def schedule(self, due: datetime, key: str) -> None:
        """Wake this rule's ``on_timer(key)`` when event time reaches ``due``."""
        self._schedule(due, key)

    def emit(
        self,
        spec: RuleSpec,
        outcome: str,
        *,
        kind: DecisionKind,
        subject: Subject,
        at: datetime,
        evidence: Iterable[str],
        key: str,
        details: dict[str, Any] | None = None,
        amount: Decimal | None = None,
        currency: str | None = None,
        severity: Severity | None = None,
        status: Literal["final", "provisional"] = "final",
        supersedes: Iterable[str] = (),
        message: Message | None = None,
    ) -> Decision:
        """Build, record and return one decision. ``outcome`` names the message template
        (unless ``message`` gives another) and enters the id, so two outcomes of one rule for
        one case never collide."""
        details = details or {}
        pol = self.policy
        local_at = self.calendar.local(at)
        # The message's fields: the details, and (unless the details name them) the
        # subject, the rule, the amount and currency. One dict, built once for both texts.
        fmt = ({"subject": subject.id, "rule": spec.id, **details} if amount is None else
               {"subject": subject.id, "rule": spec.id, "amount": amount,
                "currency": currency, **details})
        o = self._outcomes.get((id(spec), outcome))
        if o is None or o.spec is not spec or o.policy is not pol:
            o = self._outcome(spec, outcome)
        msg = message or o.message
        # Built without re-validating what is already of the model's types (see
        # build_decision: anything else is validated, and refused, as by Decision(...)).
        decision = build_decision(
            _decision_id(o.id_head, subject, key, at, status, pol.fingerprint),
            pol.id,
            o.rule,
            o.part,
            kind,
            subject,
            local_at,
            tuple(dict.fromkeys(evidence)),
            amount,
            currency,
            severity or o.severity,
            o.clause,
            render(msg.en, fmt),
            render(msg.zh, fmt),
            {"outcome": outcome, **details},
            status,
            tuple(supersedes),
            pol.fingerprint or None,
        )
        self._emit(decision)
        return decision

    def _outcome(self, spec: RuleSpec, outcome: str) -> _Outcome:
        pol = self.policy
        if len(self._outcomes) > 1024:
            self._outcomes.clear()
        o = self._outcomes[(id(spec), outcome)] = _Outcome(
            spec=spec,
            policy=pol,
            id_head=_id_head(pol.id, pol.version, spec.id, outcome),
            # A split rule's decisions name the rulebook's rule and the part; the id keeps
            # hashing the part, so ids stay unique per part and unchanged by the split.
            rule=spec.part_of or spec.id,
            part=spec.id if spec.part_of else None,
            severity=spec.severity,
            clause=spec.clause or pol.clause,
            message=spec.message(outcome))
        return o


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What every decision of one rule's outcome shares, looked up once per context."""

    spec: RuleSpec
    policy: PolicyInfo
    id_head: str
    rule: str
    part: str | None
    severity: Severity
    clause: str
    message: Message


class RuleRuntime(ABC):
    """The native evaluator of one rule. All mutable state lives in ``self.state`` as plain
    data (dicts, lists, tuples, str, int, Decimal, datetime) so sessions can be snapshotted."""

    spec: RuleSpec
    state: dict[str, Any]

    def __init__(self, spec: RuleSpec, policy: PolicyInfo) -> None:
        self.spec = spec
        self.policy = policy
        self.state = {}

    @abstractmethod
    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        """An event of one of ``spec.event_types()`` arrived (in event-time order)."""

    def on_decision(self, decision: Decision, ctx: RuleContext) -> None:  # noqa: B027
        """A decision of a rule in ``spec.consumes()`` was emitted."""

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:  # noqa: B027
        """Event time reached ``due``, scheduled earlier with ``ctx.schedule(due, key)``."""
