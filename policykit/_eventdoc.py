"""The event reference: every event type's fields, the policies that read it and a valid
example, in Markdown, read off the event models themselves.

One renderer for both readers of it, so they cannot drift: ``docs/gen_events.py`` writes
the built-in types to docs/events.md, and ``policykit events`` prints every type this
process knows (built-in and registered, e.g. by an installed plugin) with the packs
installed.
"""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from .models.events import MAX_META_BYTES, EventBase
from .models.parsing import parse_event
from .policy import PolicySet
from .testing import EventFactory

__all__ = ["describe", "field_rows", "page"]

#: When every example happens: a Monday morning, local time of the standard calendar.
EXAMPLE_AT = "2026-03-02 09:00"

# --- field types ----------------------------------------------------------------------------

_BOUNDS = ("ge", "gt", "le", "lt", "min_length", "max_length", "pattern", "decimal_places")


def _strip(annotation: Any, metadata: Any = ()) -> tuple[Any, list[Any]]:
    """The bare type under ``Annotated[...]`` and ``X | None``, with every extra met on the
    way (constraints, validators, nested ``Field(...)``) plus the field's own metadata."""
    extras = list(metadata)
    while True:
        if get_origin(annotation) is Annotated:
            annotation, *more = get_args(annotation)
            extras += more
        elif get_origin(annotation) in (Union, types.UnionType) and \
                type(None) in get_args(annotation):
            rest = [a for a in get_args(annotation) if a is not type(None)]
            annotation = rest[0] if len(rest) == 1 else Union[tuple(rest)]  # noqa: UP007
        else:
            return annotation, extras


def _bounds(extras: list[Any]) -> dict[str, Any]:
    """Constraints (``max_length``, ``ge`` ...) from the extras of :func:`_strip`."""
    bounds: dict[str, Any] = {}
    for extra in extras:
        for item in (extra.metadata if isinstance(extra, FieldInfo) else [extra]):
            for name in _BOUNDS:
                value = getattr(item, name, None)
                if value is not None:
                    bounds[name] = value
    return bounds


def _literals(annotation: Any) -> str:
    return ", ".join(f"`{v}`" for v in get_args(annotation))


def describe(annotation: Any, metadata: Any = ()) -> str:
    """A field's type in words: ``string, 1–256 characters``, ``one of `a`, `b``` ..."""
    bare, extras = _strip(annotation, metadata)
    bounds = _bounds(extras)
    origin = get_origin(bare)
    if origin is Literal:
        return "one of " + _literals(bare)
    if origin in (list, tuple, set, frozenset):
        item = get_args(bare)[0] if get_args(bare) else Any
        size = f" (at most {bounds['max_length']} items)" if "max_length" in bounds else ""
        item_bare, _ = _strip(item)
        if get_origin(item_bare) is Literal:
            return f"list of {_literals(item_bare)}{size}"
        return f"list of: {describe(item)}{size}"
    if origin is dict or bare is dict:
        return "object"
    if isinstance(bare, type) and issubclass(bare, BaseModel):
        return "object (its fields follow)"
    if bare is bool:
        return "boolean"
    if bare is int:
        return "integer" + _range(bounds)
    if bare is Decimal:
        return _decimal(Annotated[(bare, *extras)] if extras else bare, bounds)
    if bare is AwareDatetime:
        return "date-time with UTC offset (ISO 8601)"
    if bare is datetime:
        return "date-time (ISO 8601)"
    if bare is date:
        return "date (`YYYY-MM-DD`)"
    if bare is str:
        return "string" + _length(bounds)
    return str(getattr(bare, "__name__", bare))


def _range(bounds: dict[str, Any]) -> str:
    low = bounds.get("ge", bounds.get("gt"))
    high = bounds.get("le", bounds.get("lt"))
    if low is not None and high is not None:
        return f", {low} to {high}"
    if low is not None:
        return f" ≥ {low}"
    if high is not None:
        return f" ≤ {high}"
    return ""


def _length(bounds: dict[str, Any]) -> str:
    out = ""
    if bounds.get("pattern"):
        out += f" matching `{bounds['pattern']}`"
    low, high = bounds.get("min_length"), bounds.get("max_length")
    if low and high:
        out += f", {low}–{high} characters"
    elif high:
        out += f", at most {high} characters"
    elif low:
        out += f", at least {low} characters"
    return out


def _decimal(annotated: Any, bounds: dict[str, Any]) -> str:
    """A decimal (money) field; whether it refuses a JSON float is asked of the model."""
    try:
        TypeAdapter(annotated).validate_python(1.5)
        floats = ""
    except ValidationError:
        floats = ", never a float"
    text = ('decimal as a string such as `"6000.00"` (ASCII digits and an optional `.`; '
            "or an integer" + floats + ")")
    text += _range(bounds)
    if bounds.get("decimal_places") is not None:
        text += f", at most {bounds['decimal_places']} decimal places"
    return text


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return ""
    value = info.get_default(call_default_factory=True)
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_none=True)
    return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def field_rows(model: type[BaseModel], skip: frozenset[str] = frozenset(),
               prefix: str = "") -> Iterator[str]:
    """Table rows ``| name | type | required | default |``; an object field's own fields
    follow it as ``field.sub`` rows."""
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        yield (f"| `{prefix}{name}` | {_cell(describe(info.annotation, info.metadata))} | "
               f"{'required' if info.is_required() else 'optional'} | {_default(info)} |")
        inner, _extras = _strip(info.annotation)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            yield from field_rows(inner, prefix=f"{prefix}{name}.")


# --- what reads each type, and an example -----------------------------------------------------


def readers(packs: Mapping[str, PolicySet]) -> dict[str, list[tuple[str, str, list[str]]]]:
    """Per event type, the policies of ``packs`` (name -> pack) whose rules read it:
    [(pack name, policy id, rule ids)]."""
    out: dict[str, list[tuple[str, str, list[str]]]] = {}
    for name, pack in packs.items():
        for policy in pack:
            per_type: dict[str, list[str]] = {}
            for spec in policy.specs:
                for type_ in spec.event_types():
                    per_type.setdefault(type_, []).append(spec.id)
            for type_, rules in per_type.items():
                out.setdefault(type_, []).append((name, policy.id, rules))
    return out


def example(type_: str) -> dict[str, Any]:
    """A valid record of ``type_`` with its required fields, as JSON holds it; raises if
    ``parse_event`` refuses it."""
    factory = EventFactory(start=EXAMPLE_AT)
    record = factory.fields(type_, factory.now)
    wire: dict[str, Any] = json.loads(json.dumps({"id": "e1", **record}, ensure_ascii=False,
                                                 default=_iso))
    event = parse_event(wire, source=f"docs/gen_events.py example of {type_}")
    if event.type != type_:
        raise ValueError(f"the example of {type_} parsed as {event.type}")
    return wire


def _iso(value: Any) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"not JSON: {value!r}")


def anchor(heading: str) -> str:
    """The id mkdocs gives a heading (Python-Markdown's default ``toc`` slugify)."""
    text = re.sub(r"[^\w\s-]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


# --- the page ---------------------------------------------------------------------------------


def areas(models: Mapping[str, type[EventBase]]) -> dict[str, list[str]]:
    """Event types per area, areas in the order the models define them."""
    out: dict[str, list[str]] = {}
    for type_ in models:
        out.setdefault(type_.split(".", 1)[0], []).append(type_)
    return out


def _read_by(read: list[tuple[str, str, list[str]]], links: bool, names: list[str]) -> str:
    if not read:
        return "no policy of " + (f"the {names[0]} pack" if len(names) == 1 else
                                  "the packs " + ", ".join(names))
    if links:  # the site's policy pages: the standard pack's
        return "; ".join(f"[{pid}](policies/{pid}.md) {', '.join(rules)}"
                         for _pack, pid, rules in read)
    return "; ".join(f"`{pid}` {', '.join(rules)} (pack {pack})" for pack, pid, rules in read)


def page(models: Mapping[str, type[EventBase]], packs: Mapping[str, PolicySet], *,
         links: bool = True, generated_by: str = "docs/gen_events.py",
         registered: frozenset[str] = frozenset(), selected: bool = False) -> str:
    """The reference of ``models`` (type name -> model) and which policies of ``packs``
    read them. ``links``: link the standard policies' pages of the documentation site;
    ``registered``: the names of the application's own types, marked as such;
    ``selected``: ``models`` are some of the types, not all."""
    grouped = areas(models)
    read_by = readers(packs)
    pack_names = list(packs)
    envelope = set(EventBase.model_fields)
    source = "policykit.EVENT_TYPES and the " + (
        "standard pack" if pack_names == ["standard"] else "packs " + ", ".join(pack_names))
    count = f"{len(models)} types"
    if registered:
        count += f" ({len(models) - len(registered)} built in, {len(registered)} registered)"
    out = [
        f"<!-- Generated by {generated_by} from {source}; do not edit by hand. -->",
        "# Event reference",
        "",
        ("The event types asked for" if selected else "Every event type policykit accepts")
        + f": {count} in {len(grouped)} area{'s' if len(grouped) != 1 else ''} "
        "(the part of the type before the dot), generated from the event models "
        f"(`policykit.EVENT_TYPES`) and the {source.split(' and the ', 1)[1]}, so it cannot "
        "drift from the code. `policykit schema` prints the same contract as JSON Schema; "
        + ("[Events, time and decisions](concepts.md)" if links
           else "the documentation's *Events, time and decisions*")
        + " explains how the engine orders them.",
        "",
        "Each type lists its own fields (name, type, whether required, default), the "
        "policies whose rules read it, and a valid example with the required fields only.",
        "",
        "## Every event",
        "",
        "Fields every event carries, whatever its type:",
        "",
        "| field | type | required | default |", "|---|---|---|---|",
        *field_rows(EventBase),
        "",
    ]
    if EventBase.model_config.get("extra") == "forbid":
        out += ["Unknown fields are rejected, so a misspelt field never silently drops a "
                "rule's input; `meta` is the place for the application's own data.", ""]
    out += ["Types are strict, as JSON has them: a date-time is an ISO-8601 string with its "
            "offset (a number is not read as a Unix time), a boolean is `true` or `false` "
            "(not `\"yes\"`, `1` or `\"true\"`), an integer is a JSON integer. Money is a "
            "decimal string of ASCII digits (`\"6000.00\"`, `\"6000\"`: no sign, spaces, "
            "underscores or exponent) or an integer, never a float. Ids hold no control characters "
            "(C0, C1, U+2028, U+2029). `meta` is at most "
            f"{MAX_META_BYTES // 1024} KiB as compact JSON, 32 levels deep. CSV and "
            "DataFrame sources are text or typed columns: their readers turn `true`/`false` "
            "cells and integer cells into booleans and integers first.", ""]
    out += ["## Index", "", "| area | event types |", "|---|---|"]
    for area, names in grouped.items():
        out.append(f"| [{area}](#{anchor(area)}) | "
                   + ", ".join(f"[`{n}`](#{anchor(n)})" for n in names) + " |")
    for area, names in grouped.items():
        out += ["", f"## {area}"]
        for type_ in names:
            model = models[type_]
            out += ["", f"### `{type_}`", ""]
            if model.__doc__ and model.__doc__ is not EventBase.__doc__:
                out += [" ".join(model.__doc__.split()), ""]
            declared_in = getattr(model, "__policykit_source__", None)
            if type_ in registered and declared_in is not None:  # an events: section's type
                out += [f"Declared in `{declared_in}`.", ""]
            elif type_ in registered:
                out += [f"Registered by `{model.__module__}.{model.__qualname__}`.", ""]
            out += [f"Read by: {_read_by(read_by.get(type_, []), links, pack_names)}.", ""]
            own = list(field_rows(model, skip=frozenset(envelope)))
            if own:
                out += ["| field | type | required | default |", "|---|---|---|---|", *own]
            else:
                out.append("No fields besides those of every event.")
            out += ["", "```json", json.dumps(example(type_), ensure_ascii=False), "```"]
    return "\n".join(out) + "\n"
