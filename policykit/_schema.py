"""JSON Schemas generated from the models that validate: the wire format (events and
decisions, one schema with ``$defs``) and policy files (draft-07, for editors).

The policy schema is draft-07 because editors' YAML support (yaml-language-server, used by
VS Code, Neovim and others) validates draft-07; pydantic writes 2020-12, so the few keywords
that differ are converted here. Field docs come from the models' attribute docstrings, so an
editor's hover text and the shape reference pages (docs/gen_shapes.py) say what the code says.
"""

from __future__ import annotations

import ast
import copy
import inspect
import itertools
import textwrap
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, get_args, get_origin

from pydantic import BaseModel, BeforeValidator
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from pydantic_core import core_schema

if TYPE_CHECKING:
    from .policy import PolicySet

__all__ = ["DRAFT_07", "attribute_docs", "policy_schema", "shapes_changed", "wire_schema"]

DRAFT_07 = "http://json-schema.org/draft-07/schema#"
_DRAFT_2020 = "https://json-schema.org/draft/2020-12/schema"
#: A ``$name`` parameter reference: rules may write one in place of any value.
PARAM_PATTERN = r"^\$[a-z_][a-z0-9_]*$"


@cache
def _own_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings written in ``cls``'s own body (a string right after a field)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out: dict[str, str] = {}
    for node, after in itertools.pairwise(body):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            out[node.target.id] = inspect.cleandoc(after.value.value)
    return out


def attribute_docs(cls: type) -> dict[str, str]:
    """Field name -> its docstring, for ``cls`` and its bases (the nearest class wins)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass is not object and klass is not BaseModel:
            out.update(_own_docs(klass))
    return out


_ONE_OR_MANY = "_one_or_many"
"""The name of the before-validator that takes one item for a list of one: the one inside
``OneOrMany`` (policykit/rules/_base.py), or a shape's own class-level validator so named."""


def _takes_one(annotation: Any, metadata: list[Any]) -> bool:
    """Whether a field's type carries the one-or-many validator (``Names``)."""
    if any(isinstance(m, BeforeValidator) and getattr(m.func, "__name__", "") == _ONE_OR_MANY
           for m in metadata):
        return True
    if get_origin(annotation) is Annotated:
        return _takes_one(None, list(get_args(annotation)[1:]))
    return any(_takes_one(a, []) for a in get_args(annotation))


def _one_or_list(prop: dict[str, Any]) -> dict[str, Any]:
    """A list schema that also accepts one item alone (as the validator does)."""
    if prop.get("type") == "array" and isinstance(prop.get("items"), dict):
        top: dict[str, Any] = {k: prop[k] for k in ("title", "description", "default")
               if k in prop}
        rest = {k: v for k, v in prop.items() if k not in top}
        return {**top, "anyOf": [prop["items"], rest]}
    if isinstance(prop.get("anyOf"), list):
        alts: list[Any] = []
        for alt in prop["anyOf"]:
            if isinstance(alt, dict) and alt.get("type") == "array" \
                    and isinstance(alt.get("items"), dict):
                alts.append(alt["items"])
            alts.append(alt)
        return {**prop, "anyOf": alts}
    return prop


class _WithDocs(GenerateJsonSchema):
    """Pydantic's generator, plus each field's attribute docstring as its description, and
    a single item accepted where the model's validator takes one for a list of one."""

    def model_schema(self, schema: core_schema.ModelSchema) -> dict[str, Any]:
        js = super().model_schema(schema)
        cls = schema["cls"]
        props = js.get("properties")
        if not (isinstance(props, dict) and issubclass(cls, BaseModel)):
            return js
        docs = attribute_docs(cls)
        singles = {f for d in cls.__pydantic_decorators__.field_validators.values()
                   if d.cls_var_name == _ONE_OR_MANY and d.info.mode == "before"
                   for f in d.info.fields}
        for name, info in cls.model_fields.items():
            key = info.alias or name
            if key not in props:
                continue
            if name in singles or _takes_one(info.annotation, info.metadata):
                props[key] = _one_or_list(props[key])
            if name in docs and "description" not in props[key]:
                props[key]["description"] = " ".join(docs[name].split())
        return js


def _draft07(node: Any) -> Any:
    """A 2020-12 schema (as pydantic writes it) in draft-07 terms: ``prefixItems`` as an
    ``items`` list, ``$ref`` alone in its object (draft-07 ignores siblings of ``$ref``)."""
    if isinstance(node, list):
        return [_draft07(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _draft07(v) for k, v in node.items()}
    if "prefixItems" in out:
        rest = out.pop("items", False)
        out["items"] = out.pop("prefixItems")
        out["additionalItems"] = rest
    if "$ref" in out and len(out) > 1:
        ref = out.pop("$ref")
        out["allOf"] = [{"$ref": ref}, *out.get("allOf", [])]
    out.pop("discriminator", None)  # OpenAPI's keyword, not JSON Schema's
    return out


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(ref.rsplit("/", 1)[-1])
        for v in node.values():
            _refs(v, found)
    elif isinstance(node, list):
        for v in node:
            _refs(v, found)


def _reachable(roots: list[str], defs: dict[str, Any]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in seen or name not in defs:
            continue
        seen.add(name)
        found: set[str] = set()
        _refs(defs[name], found)
        todo.extend(found)
    return seen


def _or_param(node: Any) -> Any:
    """Every value position of a rule schema also accepts a ``$parameter`` reference (the
    policy fills it in before the rule is validated)."""
    if isinstance(node, list):
        return [_or_param(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _or_param(v) for k, v in node.items()}
    for key in ("properties", "patternProperties"):
        if isinstance(out.get(key), dict):
            out[key] = {k: _param_ok(v) for k, v in out[key].items()}
    for key in ("additionalProperties", "additionalItems", "items"):
        if isinstance(out.get(key), dict):
            out[key] = _param_ok(out[key])
        elif key == "items" and isinstance(out.get(key), list):
            out[key] = [_param_ok(v) for v in out[key]]
    return out


def _param_ok(schema: dict[str, Any]) -> dict[str, Any]:
    if not schema:
        return schema  # anything goes already
    # Keep the description and default at the top, where editors show them.
    top: dict[str, Any] = {k: schema[k] for k in ("title", "description", "default")
                           if k in schema}
    rest = {k: v for k, v in schema.items() if k not in top}
    return {**top, "anyOf": [rest, {"$ref": "#/definitions/ParameterRef"}]}


def _shape_classes() -> dict[str, type[BaseModel]]:
    from .rules import SHAPES

    return dict(sorted(SHAPES.items()))


DATE_OR_TIME_PATTERN = (r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?"
                        r"(Z|[+-]\d{2}:?\d{2})?)?$")
"""A policy version's ``effective_from``/``effective_until``: a day or a date-time."""


@cache
def _policy_schema(_packs: tuple[str, ...]) -> dict[str, Any]:
    # Keyed by the installed packs' names: the schema lists them and their policies.
    from .calendar import BusinessCalendar
    from .models.declared import events_schema
    from .pack import standard_pack
    from .policy import Policy

    shapes = _shape_classes()
    models: list[type[BaseModel]] = [*shapes.values(), Policy, BusinessCalendar]
    keys, raw = models_json_schema([(m, "validation") for m in models],
                                   ref_template="#/definitions/{model}",
                                   schema_generator=_WithDocs)
    defs: dict[str, Any] = raw.get("$defs", {})
    name_of = {m: keys[(m, "validation")]["$ref"].rsplit("/", 1)[-1] for m in models}
    rule_defs = _reachable([name_of[c] for c in shapes.values()], defs)
    policy_name = name_of[Policy]
    for name in rule_defs:
        spec = _or_param(defs[name])
        if name in {name_of[c] for c in shapes.values()}:
            spec["required"] = sorted({"shape", *spec.get("required", [])})
            spec["properties"]["enabled_if"] = {
                "type": "object", "minProperties": 1,
                "description": "Keep this rule only when these parameters have these "
                               "values (a value or a list of values).",
                "propertyNames": {"pattern": r"^[a-z_][a-z0-9_]*$"}}
        defs[name] = spec
    defs["ParameterRef"] = {
        "type": "string", "pattern": PARAM_PATTERN,
        "description": "A parameter of the policy, filled in before the rule is validated."}
    names = list(shapes)
    defs["Rule"] = {
        "type": "object",
        "description": "One rule, in one of the rule shapes: " + ", ".join(names) + ".",
        "required": ["shape"],
        "properties": {"shape": {"enum": names}},
        "allOf": [{"if": {"properties": {"shape": {"const": s}}, "required": ["shape"]},
                   "then": {"$ref": f"#/definitions/{name_of[c]}"}}
                  for s, c in shapes.items()],
    }
    policy = defs[policy_name]
    policy["properties"]["rules"] = {
        "type": "array", "minItems": 1, "items": {"$ref": "#/definitions/Rule"},
        "description": "The rules, each in one of the rule shapes."}
    # Versions in force by date (docs/versions.md): a day, or a date-time with or without
    # offset (without: in the calendar's zone). A pattern, not ``format``, which validators
    # need not check and which would refuse a date-time without offset.
    for key in ("effective_from", "effective_until"):
        policy["properties"][key] = {
            "type": ["string", "null"], "pattern": DATE_OR_TIME_PATTERN,
            "description": policy["properties"][key].get("description", "")}
    pack = _pack_policies(standard_pack())
    cal_ref = {"$ref": f"#/definitions/{name_of[BusinessCalendar]}"}
    defs["Use"] = {
        "type": "object", "additionalProperties": False, "required": ["use"],
        "description": "A policy of an installed pack (standard or the file's pack), with "
                       "some parameters or the calendar changed, or one version of it in "
                       "force by date (docs/versions.md).",
        "properties": {
            "use": {"enum": pack.ids, "description": "A policy id of an installed pack."},
            "parameters": {"type": "object",
                           "description": "Parameters to change (the others keep their "
                                          "defaults)."},
            "calendar": cal_ref,
            "version": policy["properties"]["version"],
            "effective_from": policy["properties"]["effective_from"],
            "effective_until": policy["properties"]["effective_until"],
        },
        # The parameters each standard policy has: a misspelt one fails here too.
        "allOf": [{"if": {"properties": {"use": {"const": p.id}}, "required": ["use"]},
                   "then": {"properties": {"parameters": {
                       "additionalProperties": False,
                       "properties": {k: {} for k in p.parameters}}}}}
                  for p in pack],
    }
    defs["PolicySet"] = {
        "type": "object", "additionalProperties": False,
        "description": "A set of policies: standard ones (all with pack, or some with use) "
                       "and policies of your own.",
        "properties": {
            "include": {"anyOf": [{"type": "string"},
                                  {"type": "array", "items": {"type": "string"}}],
                        "description": "Other policy files (paths relative to this one) "
                                       "whose policies come first."},
            "pack": {"enum": list(_packs),
                     "description": "Start from every policy of an installed pack "
                                    "(standard is built in)."},
            "exclude": {"type": "array", "items": {"enum": pack.ids},
                        "description": "Policies of the pack to leave out (only with pack)."},
            "calendar": cal_ref,
            "events": {"$ref": "#/definitions/EventTypes"},
            "policies": {"type": "array", "items": {
                "if": {"type": "object", "required": ["use"]},
                "then": {"$ref": "#/definitions/Use"},
                "else": {"$ref": f"#/definitions/{policy_name}"}}},
        },
        "anyOf": [{"required": ["pack"]}, {"required": ["policies"]},
                  {"required": ["include"]}, {"required": ["events"]}],
        "dependencies": {"exclude": ["pack"]},
    }
    # Declared event types: in a set, and beside a single policy's id and rules.
    defs.update(events_schema())
    one = copy.deepcopy(defs[policy_name])
    one["properties"]["events"] = {"$ref": "#/definitions/EventTypes"}
    defs["PolicyFile"] = one
    body = {
        "$schema": DRAFT_07,
        "$id": "https://policykit.invalid/schema/policy.json",
        "title": "policykit policy file",
        "description": "One policy (top-level id and rules) or a set of policies "
                       "(pack, exclude, calendar, policies), either with the event types "
                       "it declares (events). Generated by "
                       "`policykit schema policy`.",
        "type": "object",
        # The loader's own test: rules without policies is one policy.
        "if": {"required": ["rules"], "not": {"required": ["policies"]}},
        "then": {"$ref": "#/definitions/PolicyFile"},
        "else": {"$ref": "#/definitions/PolicySet"},
        "definitions": dict(sorted(defs.items())),
    }
    result: dict[str, Any] = _draft07(body)
    return result


def _pack_policies(standard: PolicySet) -> PolicySet:
    """The standard pack's policies, then those of the other installed packs (``use:`` and
    ``exclude:`` take a policy of the file's pack). A pack that fails to load is left out
    here; loading a file that names it reports why."""
    from .policy import PolicySet
    from .policyfile import _installed_packs

    found = {p.id: p for p in standard}
    for pack in _installed_packs()[0].values():
        for p in pack:
            found.setdefault(p.id, p)
    return PolicySet(list(found.values()))


def _pack_names() -> list[str]:
    from .policyfile import _pack_loaders

    return sorted(_pack_loaders())


def policy_schema() -> dict[str, Any]:
    """The JSON Schema (draft-07) of a policy file, as YAML, TOML or JSON data."""
    # Keyed by the installed packs: one installed (or a test's) after the first call counts.
    return copy.deepcopy(_policy_schema(tuple(_pack_names())))


def shapes_changed() -> None:
    """The rule shapes changed (policykit/rules/_registry.py): the policy schema, which lists
    them, is built again when next asked."""
    _policy_schema.cache_clear()


def wire_schema(part: str = "all") -> dict[str, Any]:
    """The wire format as one JSON Schema (2020-12): an event or a decision, their models
    under ``$defs``. ``part``: all, event or decision."""
    from .models import json_schema

    data = json_schema()
    halves = {"event": data["event"], "decision": data["decision"]}
    if part in halves:
        return {"$schema": _DRAFT_2020, **halves[part]}
    defs: dict[str, Any] = {}
    for name, half in (("Event", halves["event"]), ("Decision", halves["decision"])):
        for key, value in half.get("$defs", {}).items():
            if key in defs and defs[key] != value:
                raise ValueError(f"two models named {key} in the wire format")
            defs[key] = value
        defs[name] = {k: v for k, v in half.items() if k != "$defs"}
    return {
        "$schema": _DRAFT_2020,
        "title": data.get("title", "policykit wire format"),
        "description": "An event (one line of an event log) or a decision.",
        "anyOf": [{"$ref": "#/$defs/Event"}, {"$ref": "#/$defs/Decision"}],
        "$defs": dict(sorted(defs.items())),
    }
