"""Event types declared in a policy file (its ``events:`` section), without Python.

Each declaration becomes an :class:`~policykit.EventBase` model built from the wire types
the built-in events use (:mod:`policykit.models.events`), registered through
:func:`~policykit.register_event_types`, so a declared type is parsed, quarantined,
checked in policies and audited exactly as a registered Python model is::

    events:
      elevator.fault:
        description: A lift reported out of service.
        fields:
          elevator_id: id                       # shorthand: the type, required
          reported_at: {type: datetime, required: false}
          severity: {type: enum, values: [minor, major], description: How bad.}

A bad declaration raises :class:`~policykit.PolicyFileError` at its path
(``events.elevator.fault.fields.severity.type``).
"""

from __future__ import annotations

import copyreg
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, Strict, create_model
from pydantic._internal._model_construction import ModelMetaclass

from ..errors import PolicyFileError, RegistrationError, nearest
from . import registry
from .events import MAX_LIST, Bool, DateTime, Day, EventBase, Id, Money, Text

__all__ = ["FIELD_TYPES", "declare_event_types", "events_schema", "rollback_on_error"]

#: Whole numbers of a declared ``int`` field: strict (``"3"`` and ``3.0`` are refused) and
#: within the integers JSON readers and both backends hold exactly.
_INT_LIMIT = 2**53 - 1
Int = Annotated[int, Strict(), Field(ge=-_INT_LIMIT, le=_INT_LIMIT)]
Ids = Annotated[list[Id], Field(max_length=MAX_LIST)]

#: A declared field's type name -> the wire type it validates with (``enum`` is built from
#: its ``values``). ``money`` is another name for ``decimal``.
FIELD_TYPES: dict[str, Any] = {
    "id": Id, "text": Text, "bool": Bool, "int": Int, "decimal": Money, "money": Money,
    "datetime": DateTime, "date": Day, "enum": None, "ids": Ids,
}
_SAME = {"money": "decimal"}
_TYPE_KEYS = ("description", "fields")
_FIELD_KEYS = ("type", "values", "required", "description")
_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
FIELD_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"
_MAX_VALUE = 256
#: Bounds on one file's declarations (hostile input: each type is a model to build and a
#: branch of the parser's union; the largest built-in type has 20 fields).
MAX_TYPES = 256
MAX_FIELDS = 256
#: The envelope every event has (and the tag): a declaration cannot redefine them.
_ENVELOPE = tuple(EventBase.model_fields)

#: The models built here by class name, so ``policykit.models.declared.<Name>`` names one.
_MODELS: dict[str, type[EventBase]] = {}


class _DeclaredModel(ModelMetaclass):
    """The metaclass of declared models: ``pickle`` writes such a model as its declaration
    (see :func:`_pickled_model`), not as a name only the declaring process knows."""


def _pickled_model(cls: Any) -> Any:
    return _declared_model, (_declared_name(cls), cls.__policykit_declaration__,
                             cls.__policykit_source__)


def _declared_model(name: str, decl: Mapping[str, Any], source: str) -> type[EventBase]:
    """The registered model of the declaration ``name: decl``, declared here first when
    this process has not (a Dask worker, a session restored in another process): events
    and snapshots of declared types load wherever policykit is installed."""
    other = registry.registered_event_types().get(name)
    old = getattr(other, "__policykit_declaration__", None)
    if other is not None and old is not None and _contract(old) == _contract(decl):
        return other
    return declare_event_types({name: decl}, source)[0]


copyreg.pickle(_DeclaredModel, _pickled_model)


def __getattr__(name: str) -> type[EventBase]:
    try:
        return _MODELS[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


Line = Callable[[str], int | None]


class _Errors:
    """Raise PolicyFileErrors of one file."""

    def __init__(self, source: str, line: Line) -> None:
        self.source, self.line = source, line

    def __call__(self, path: str, value: Any, expected: str,
                 suggestion: str | None = None) -> PolicyFileError:
        return PolicyFileError(self.source, path, value, expected, line=self.line(path),
                               suggestion=suggestion)


def _type_names(enum: bool = True) -> str:
    return ", ".join(t if t != "ids" else "ids (a list of ids)" for t in FIELD_TYPES
                     if enum or t != "enum")


def _normal_field(spec: Any, path: str, err: _Errors) -> dict[str, Any]:
    """One field's declaration as a mapping with every key: type, values, required,
    description."""
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping):
        raise err(path, spec, f"a field type ({_type_names(False)}) or a mapping with "
                  "keys " + ", ".join(_FIELD_KEYS))
    for key in spec:
        if key not in _FIELD_KEYS:
            raise err(f"{path}.{key}", key, "one of " + ", ".join(_FIELD_KEYS),
                      suggestion=nearest(key, _FIELD_KEYS))
    kind = spec.get("type")
    if kind is None:
        raise err(f"{path}.type", "<missing>", f"a field type: {_type_names()}")
    if not isinstance(kind, str) or kind not in FIELD_TYPES:
        raise err(f"{path}.type", kind, f"a field type: {_type_names()}",
                  suggestion=nearest(kind, FIELD_TYPES))
    values = spec.get("values")
    if kind == "enum":
        if not isinstance(values, list) or not values:
            raise err(f"{path}.values", values if values is not None else "<missing>",
                      "a non-empty list of the values an enum field takes")
        for i, v in enumerate(values):
            if not isinstance(v, str) or not v or len(v) > _MAX_VALUE \
                    or not v.isprintable():
                raise err(f"{path}.values[{i}]", v, f"text of 1 to {_MAX_VALUE} printable "
                          "characters (quote values YAML reads otherwise: 'yes', 'no', "
                          "'on', 'off', numbers)")
            if v in values[:i]:
                raise err(f"{path}.values[{i}]", v, "each value once")
        values = list(values)
    elif values is not None:
        raise err(f"{path}.values", values, "values only with type: enum")
    required = spec.get("required", True)
    if not isinstance(required, bool):
        raise err(f"{path}.required", required, "true or false")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise err(f"{path}.description", description, "text")
    return {"type": kind, "values": values, "required": required,
            "description": description}


def _normal_type(name: Any, spec: Any, err: _Errors) -> dict[str, Any]:
    """One event type's declaration: its description and its fields, each normalised."""
    path = f"events.{name}"
    if not isinstance(name, str) or not name or len(name) > registry._MAX_NAME \
            or not name.isprintable() or any(c.isspace() for c in name):
        raise err(path, name, f"an event type name of 1 to {registry._MAX_NAME} printable "
                  "characters without spaces, such as elevator.fault")
    builtin = registry._BUILTIN.get(name)
    if builtin is not None:
        raise err(path, name, f"a name that is not a built-in event type ({name} is the "
                  f"built-in {builtin.__name__}); prefix the application's own names, "
                  "e.g. elevator.fault")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        raise err(path, spec, "a mapping with keys " + ", ".join(_TYPE_KEYS))
    for key in spec:
        if key not in _TYPE_KEYS:
            raise err(f"{path}.{key}", key, "one of " + ", ".join(_TYPE_KEYS),
                      suggestion=nearest(key, _TYPE_KEYS))
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise err(f"{path}.description", description, "text")
    fields = spec.get("fields") or {}
    if not isinstance(fields, Mapping):
        raise err(f"{path}.fields", fields, "a mapping of field names to field types")
    if len(fields) > MAX_FIELDS:
        raise err(f"{path}.fields", f"{len(fields)} fields", f"at most {MAX_FIELDS}")
    out: dict[str, dict[str, Any]] = {}
    for field, fspec in fields.items():
        fpath = f"{path}.fields.{field}"
        if not isinstance(field, str) or not _FIELD_NAME.fullmatch(field):
            raise err(fpath, field, "a field name of ASCII letters, digits and _ (at most "
                      "64), starting with a letter")
        if field in _ENVELOPE:
            raise err(fpath, field, "a field other than the envelope every event has ("
                      + ", ".join(_ENVELOPE) + "); put it under another name")
        if hasattr(BaseModel, field):
            raise err(fpath, field, f"a field name that is not a pydantic model attribute "
                      f"({field!r} is one); choose another name")
        out[field] = _normal_field(fspec, fpath, err)
    return {"description": description, "fields": out}


def _annotation(field: Mapping[str, Any]) -> tuple[Any, Any]:
    """The pydantic (annotation, FieldInfo) of a normalised field declaration."""
    kind = field["type"]
    base: Any = Literal[tuple(field["values"])] if kind == "enum" else FIELD_TYPES[kind]
    extra: dict[str, Any] = {}
    if field["description"]:
        extra["description"] = field["description"]
    if field["required"]:
        return base, Field(**extra)
    if kind == "ids":  # an optional list is empty when absent
        return base, Field(default_factory=list, **extra)
    return base | None, Field(default=None, **extra)


def _class_name(name: str, taken: set[str]) -> str:
    """``elevator.fault`` -> ``ElevatorFault``; a name a built-in model or another declared
    type holds gets a number, so each class name (pickle's reference, the schema's
    definition name) is one type's."""
    parts = [p for p in re.split(r"[^0-9A-Za-z]+", name) if p]
    stem = "".join(p[:1].upper() + p[1:] for p in parts) or "Declared"
    if not stem[0].isalpha():
        stem = "Event" + stem
    chosen, n = stem, 1
    builtin = {m.__name__ for m in registry._BUILTIN.values()}
    while chosen in builtin or chosen in taken or (
            chosen in _MODELS and _declared_name(_MODELS[chosen]) != name):
        n += 1
        chosen = f"{stem}{n}"
    return chosen


def _declared_name(cls: type[EventBase]) -> str:
    return str(cls.model_fields["type"].default)


def _build(name: str, decl: Mapping[str, Any], source: str,
           taken: set[str]) -> type[EventBase]:
    """The model of one declaration; its class name is added to ``taken`` (the batch's)."""
    fields: dict[str, Any] = {"type": (Literal[name], Field(default=name))}
    for field, spec in decl["fields"].items():
        fields[field] = _annotation(spec)
    cls: type[EventBase] = create_model(
        _class_name(name, taken), __base__=EventBase, __module__=__name__,
        __cls_kwargs__={"metaclass": _DeclaredModel},
        __doc__=decl["description"] or f"The event type {name}, declared in {source}.",
        **fields)
    cls.__policykit_declaration__ = decl  # type: ignore[attr-defined]
    cls.__policykit_source__ = source  # type: ignore[attr-defined]
    taken.add(cls.__name__)
    return cls


def _contract(decl: Mapping[str, Any]) -> dict[str, Any]:
    """What a declaration promises about records (its descriptions are documentation)."""
    return {f: (_SAME.get(s["type"], s["type"]), s["values"], s["required"])
            for f, s in decl["fields"].items()}


def _spec_text(spec: Mapping[str, Any]) -> str:
    parts = [f"type: {spec['type']}"]
    if spec["values"] is not None:
        parts.append("values: [" + ", ".join(spec["values"]) + "]")
    if not spec["required"]:
        parts.append("required: false")
    return "{" + ", ".join(parts) + "}"


def _clash(name: str, decl: Mapping[str, Any], other: type[EventBase],
           err: _Errors) -> PolicyFileError:
    """The error for a declaration of ``name`` other than the registered ``other``."""
    path = f"events.{name}"
    old = getattr(other, "__policykit_declaration__", None)
    if old is None:
        return err(path, name, f"an event type name not registered by another model: "
                   f"{name!r} is registered by {other.__module__}.{other.__qualname__} with "
                   "other fields; choose another name")
    where = f"declared in {other.__policykit_source__}"  # type: ignore[attr-defined]
    mine, theirs = _contract(decl), _contract(old)
    for field, spec in decl["fields"].items():
        if field not in theirs:
            return err(f"{path}.fields.{field}", field, f"the fields {name!r} already has "
                       f"({where}: " + (", ".join(theirs) or "none") + "); unregister it "
                       "first or choose another type name")
        if mine[field] != theirs[field]:
            key = next(k for k, a, b in zip(("type", "values", "required"), mine[field],
                                            theirs[field], strict=True) if a != b)
            return err(f"{path}.fields.{field}.{key}", spec[key],
                       f"the declaration {name!r} already has ({where}: {field}: "
                       f"{_spec_text(old['fields'][field])}); unregister it first or "
                       "choose another type name")
    missing = [f for f in theirs if f not in mine]
    return err(f"{path}.fields", ", ".join(missing), f"also the fields {name!r} already has "
               f"({where}: " + ", ".join(theirs) + "); unregister it first or choose another "
               "type name")


def declare_event_types(spec: Any, source: str,
                        line: Line = lambda _: None) -> list[type[EventBase]]:
    """Build and register the event types of a policy file's ``events:`` section (all or
    none); returns their models. A type already declared the same way (the file loaded
    again, or another file declaring it alike) keeps its registered model."""
    err = _Errors(source, line)
    if spec is None:
        return []
    if not isinstance(spec, Mapping):
        raise err("events", spec, "a mapping of event type names to their declarations")
    if len(spec) > MAX_TYPES:
        raise err("events", f"{len(spec)} event types", f"at most {MAX_TYPES} in one file")
    registered = registry.registered_event_types()
    models: list[type[EventBase]] = []
    new: list[type[EventBase]] = []
    taken: set[str] = set()
    for name, decl_spec in spec.items():
        decl = _normal_type(name, decl_spec, err)
        other = registered.get(name)
        if other is not None:
            old = getattr(other, "__policykit_declaration__", None)
            if old is not None and _contract(old) == _contract(decl):
                models.append(other)
                continue
            if old is None:
                cls = _build(name, decl, source, set())
                if registry._signature(cls) == registry._signature(other):
                    models.append(other)
                    continue
            raise _clash(name, decl, other, err)
        cls = _build(name, decl, source, taken)
        models.append(cls)
        new.append(cls)
    if new:
        try:
            registry.register_event_types(*new)
        except RegistrationError as exc:  # the checks above should have said it first
            raise err("events", exc.args[0] if exc.args else str(exc),
                      "event types that register") from None
        for cls in new:
            _MODELS[cls.__name__] = cls
    return models


@contextmanager
def rollback_on_error() -> Iterator[None]:
    """Unregister the types registered inside the block when it raises: a policy file
    that does not load leaves no types of its own behind."""
    before = registry.registered_event_types()
    try:
        yield
    except BaseException:
        added = [n for n, c in registry.registered_event_types().items()
                 if before.get(n) is not c]
        if added:
            registry.unregister_event_types(*added)
        raise


def events_schema() -> dict[str, Any]:
    """JSON Schema (draft-07) definitions of the ``events:`` section: ``EventTypes``,
    ``EventType`` and ``EventField``."""
    types = list(FIELD_TYPES)
    return {
        "EventTypes": {
            "type": "object",
            "description": "Event types of the application, declared here: a type name "
                           "(such as elevator.fault) and its fields.",
            "propertyNames": {"minLength": 1, "maxLength": registry._MAX_NAME,
                              "pattern": r"^\S+$",
                              "not": {"enum": sorted(registry._BUILTIN)}},
            "additionalProperties": {"$ref": "#/definitions/EventType"},
        },
        "EventType": {
            "type": ["object", "null"], "additionalProperties": False,
            "description": "One event type: its fields (besides id, type, at, actor and "
                           "meta, which every event has).",
            "properties": {
                "description": {"type": "string", "description": "What the event means."},
                "fields": {"type": ["object", "null"],
                           "propertyNames": {"pattern": FIELD_PATTERN,
                                             "not": {"enum": list(_ENVELOPE)}},
                           "additionalProperties": {"$ref": "#/definitions/EventField"}},
            },
        },
        "EventField": {
            "description": "A field: its type alone (required), or a mapping.",
            "anyOf": [
                {"enum": [t for t in types if t != "enum"]},
                {"type": "object", "additionalProperties": False, "required": ["type"],
                 "properties": {
                     "type": {"enum": types, "description": "The field's type: "
                              + _type_names() + "; money is decimal."},
                     "values": {"type": "array", "minItems": 1, "uniqueItems": True,
                                "items": {"type": "string", "minLength": 1,
                                          "maxLength": _MAX_VALUE},
                                "description": "The values of an enum field."},
                     "required": {"type": "boolean", "default": True,
                                  "description": "false: the field may be absent (none, "
                                                 "or an empty list for ids)."},
                     "description": {"type": "string"},
                 },
                 "if": {"properties": {"type": {"const": "enum"}}},
                 "then": {"required": ["values"]},
                 "else": {"not": {"required": ["values"]}}},
            ],
        },
    }

