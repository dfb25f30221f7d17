"""Reading the event models: each field's shape (literal choices, bounds, list items, nested
models), and the id pools that make generated events join up.

Both the hypothesis strategies and the event factory are derived from these shapes, so a new
event type or field needs no change here unless it uses a type never seen before (then
:func:`field_shapes` raises, naming the model and field).
"""

from __future__ import annotations

import re
import types
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import AwareDatetime, BaseModel
from pydantic_core import PydanticUndefined

__all__ = [
    "POOLS",
    "FieldShape",
    "field_shapes",
    "pool_for",
]

Kind = Literal["literal", "bool", "int", "decimal", "str", "date", "datetime", "list", "model",
               "dict"]


@dataclass(frozen=True)
class FieldShape:
    """What one model field accepts, reduced to what a generator needs."""

    name: str
    kind: Kind
    required: bool
    optional: bool  # None is accepted
    # A default may be a list or a dict (``codes: list[int] = []``): shapes are hashed (the
    # strategies are cached per shape), so it is compared by its repr.
    default: Any = field(default=None, compare=False)
    default_key: str = "None"
    choices: tuple[Any, ...] = ()
    ge: int | Decimal | None = None
    le: int | Decimal | None = None
    max_length: int | None = None
    pattern: str | None = None
    item: FieldShape | None = None
    model: type[BaseModel] | None = None


#: Small id pools per field family, so generated events about the same request, post or
#: employee meet in the rules' keyed state. Guards are kept apart from office staff because
#: the standard pack asks different things of them.
POOLS: dict[str, tuple[str, ...]] = {
    "employee": ("E1", "E2", "E3", "M1"),
    "guard": ("G1", "G2", "G3", "G4"),
    "request": ("R1", "R2", "R3"),
    "customer": ("C1", "C2", "C3"),
    "project": ("PJ1", "PJ2"),
    "household": ("H1", "H2", "H3"),
    "area": ("A1", "A2"),
    "post": ("P1", "P2"),
    "route": ("RT1", "RT2"),
    "incident": ("I1", "I2"),
    "case": ("K1", "K2"),
    "complaint": ("CP1", "CP2", "CP3"),
    "item": ("F1", "F2", "F3"),
    "question": ("Q1", "Q2"),
    "site": ("S1", "S2"),
    "problem": ("PB1", "PB2"),
    "visit": ("V1", "V2", "V3"),
    "plate": ("沪A12345", "京B00001"),
    "target": ("website", "crm"),
    "role": ("customer_service", "tech_service", "guard", "property_officer", "manager",
             "director", "general_manager", "business"),
    "department": ("customer_service", "tech_service", "business"),
    "topic": ("billing", "outage", "access"),
    "leave_kind": ("leave", "sick", "annual"),
    "text": ("10:05 outage", "server room B", "no network", "switch to backup link"),
}

# Field name -> pool. Names not listed fall back on their ``_id`` stem (see pool_for).
_FIELD_POOLS: dict[str, str] = {
    "employee_id": "employee", "from_employee": "employee", "to_employee": "employee",
    "actor": "employee", "granted_by": "employee",
    "guard_id": "guard", "from_guard": "guard", "to_guard": "guard", "signed_by": "guard",
    "repeat_of": "request", "areas": "area", "plate": "plate", "target": "target",
    "role": "role", "to_role": "role", "department": "department", "topic": "topic",
}
_MODEL_FIELD_POOLS: dict[tuple[str, str], str] = {
    # A guard's own events name them as employee_id.
    ("security.suspicious_checked", "employee_id"): "guard",
    ("visitor.arrived", "employee_id"): "guard",
    ("vehicle.arrived", "employee_id"): "guard",
    ("attendance.leave", "kind"): "leave_kind",
}


def pool_for(field: str, event_type: str | None = None) -> tuple[str, ...]:
    """The id pool a field draws from: by event type and field, by field name, by its
    ``xyz_id`` stem, else a pool named after the field (``XYZ1``...)."""
    name = _MODEL_FIELD_POOLS.get((event_type or "", field)) or _FIELD_POOLS.get(field)
    if name is None and field.endswith("_id"):
        stem = field[:-3]
        name = stem if stem in POOLS else None
        if name is None:
            prefix = re.sub(r"[^A-Z]", "", stem.title()) or "X"
            return tuple(f"{prefix}{i}" for i in (1, 2, 3))
    if name is None:
        return tuple(f"{field}-{i}" for i in (1, 2))
    return POOLS[name]


def _unwrap(annotation: Any, meta: list[Any]) -> tuple[Any, list[Any], bool]:
    """Strip Annotated and Optional; collect metadata; report whether None is allowed."""
    optional = False
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            base, *extra = get_args(annotation)
            meta = [*meta, *extra]
            annotation = base
        elif origin is Union or origin is types.UnionType:
            args = [a for a in get_args(annotation) if a is not type(None)]
            optional = optional or len(args) < len(get_args(annotation))
            if len(args) != 1:
                return annotation, meta, optional
            annotation = args[0]
        else:
            return annotation, meta, optional


def _constraints(meta: list[Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for m in meta:
        # A FieldInfo nested in Annotated carries its own metadata list.
        for item in [m, *getattr(m, "metadata", ())]:
            if isinstance(item, annotated_types.Ge):
                out["ge"] = item.ge
            elif isinstance(item, annotated_types.Gt):
                out["ge"] = item.gt + 1  # type: ignore[operator]  # ints only in events
            elif isinstance(item, annotated_types.Le):
                out["le"] = item.le
            elif isinstance(item, annotated_types.Lt):
                out["le"] = item.lt - 1  # type: ignore[operator]
            elif isinstance(item, annotated_types.MaxLen):
                out["max_length"] = item.max_length
            elif type(item).__name__ == "StringConstraints":
                if getattr(item, "max_length", None) is not None:
                    out["max_length"] = item.max_length
                if getattr(item, "pattern", None) is not None:
                    out["pattern"] = item.pattern
    return out


def _shape(name: str, annotation: Any, meta: list[Any], required: bool, default: Any,
           owner: str) -> FieldShape:
    ann, meta, optional = _unwrap(annotation, list(meta))
    c = _constraints(meta)
    origin = get_origin(ann)
    base: dict[str, Any] = {"name": name, "required": required, "optional": optional,
                            "default": default, "default_key": repr(default)}
    if origin is Literal:
        return FieldShape(kind="literal", choices=get_args(ann), **base)
    args = get_args(ann)
    if origin in (list, set, frozenset) or (origin is tuple and len(args) == 2
                                             and args[1] is Ellipsis):
        # A set or a homogeneous tuple is a JSON list too: the model makes it its type.
        item_ann = args[0] if args else Any
        item = _shape(name, item_ann, [], True, None, owner)
        return FieldShape(kind="list", item=item, max_length=c.get("max_length"), **base)
    if origin is dict:
        return FieldShape(kind="dict", **base)
    if ann is bool:
        return FieldShape(kind="bool", **base)
    if ann is int:
        return FieldShape(kind="int", ge=c.get("ge"), le=c.get("le"), **base)
    if ann is Decimal:
        return FieldShape(kind="decimal", ge=c.get("ge"), le=c.get("le"), **base)
    if ann is str:
        return FieldShape(kind="str", max_length=c.get("max_length"), pattern=c.get("pattern"),
                          **base)
    if ann is AwareDatetime or ann is datetime:
        return FieldShape(kind="datetime", **base)
    if ann is date:
        return FieldShape(kind="date", **base)
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return FieldShape(kind="model", model=ann, **base)
    raise TypeError(
        f"policykit.testing cannot derive values for {owner}.{name} ({annotation!r}); "
        f"register one with policykit.testing.register_field({name!r}, strategy)"
    )


@cache
def field_shapes(model: type[BaseModel]) -> tuple[FieldShape, ...]:
    """The shapes of a model's fields, in declaration order."""
    owner = model.__name__
    if "type" in model.model_fields:  # the event type, also of a model without a default
        tag = get_args(model.model_fields["type"].annotation)
        owner = str(tag[0]) if len(tag) == 1 else owner
    out = []
    for name, info in model.model_fields.items():
        default = None if info.default is PydanticUndefined else info.default
        out.append(_shape(name, info.annotation, list(info.metadata), info.is_required(),
                          default, owner))
    return tuple(out)
