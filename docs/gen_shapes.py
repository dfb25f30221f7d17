"""Generate the rule shape reference (docs/shapes/*.md) from the rule models themselves.

One page per rule shape: what the shape does (its module's and model's docstrings), every
field with its type, default and meaning, the same for the models nested in it (event
matchers, subjects, tiers...), and the shortest rule of that shape in the standard pack as an
example. Types come from the JSON Schema that ``policykit schema policy`` prints, defaults
from the pydantic models, meanings from the fields' docstrings — the models that validate
policy files — so the reference cannot drift from the code:

    python docs/gen_shapes.py           # write the pages
    python docs/gen_shapes.py --check   # exit 1 if a committed page is stale (CI)

It is also an mkdocs hook (``hooks:`` in mkdocs.yml): ``mkdocs build`` regenerates the
pages first and lists them under "Rule shapes" in the navigation.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path
from typing import Any, get_args

import yaml

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUT = DOCS / "shapes"

try:
    import policykit  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import _generated  # noqa: E402  (docs/, beside this script)
from _generated import write_pages  # noqa: E402
from pydantic import BaseModel  # noqa: E402

from policykit import standard_pack  # noqa: E402
from policykit._schema import attribute_docs, policy_schema  # noqa: E402
from policykit.rules import SHAPES, RuleSpec  # noqa: E402

_PARAM_REF = {"$ref": "#/definitions/ParameterRef"}
_COMMON = set(RuleSpec.model_fields)


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _def_name(cls: type[BaseModel], defs: dict[str, Any]) -> str:
    """The schema definition pydantic wrote for ``cls`` (its name, or its long name when
    two models share one)."""
    for name in (cls.__name__, f"{cls.__module__}.{cls.__qualname__}".replace(".", "__")):
        if name in defs:
            return name
    raise LookupError(f"no schema definition for {cls.__module__}.{cls.__qualname__}")


def _nested(cls: type[BaseModel]) -> list[type[BaseModel]]:
    """The models used in ``cls``'s fields, depth first, each once."""
    out: list[type[BaseModel]] = []

    def walk(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in out:
                out.append(annotation)
                for f in annotation.model_fields.values():
                    walk(f.annotation)
            return
        for arg in get_args(annotation):
            walk(arg)

    for f in cls.model_fields.values():
        walk(f.annotation)
    return [m for m in out if m is not cls]


def _type(node: Any, titles: dict[str, str]) -> str:
    """A schema in a few words; models as links to their section."""
    if not isinstance(node, dict) or not node:
        return "any"
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        title = titles.get(name, name)
        return f"[{title}](#{title.lower()})" if name in titles else title
    if "allOf" in node and len(node["allOf"]) == 1:
        return _type(node["allOf"][0], titles)
    if "const" in node:
        return f"`{json.dumps(node['const'], ensure_ascii=False)}`"
    if "enum" in node:
        return " | ".join(f"`{json.dumps(v, ensure_ascii=False)}`" for v in node["enum"])
    if "anyOf" in node:
        return _alternatives(node["anyOf"], titles)
    kind = node.get("type")
    if kind == "array":
        items = node.get("items")
        if isinstance(items, list):
            return "[" + ", ".join(_type(i, titles) for i in items) + "]"
        return "list of " + _type(items, titles)
    if kind == "object":
        value = node.get("additionalProperties")
        return "mapping" + (f" of names to {_type(value, titles)}"
                            if isinstance(value, dict) and value else "")
    return _scalar(node, kind)


def _alternatives(any_of: list[Any], titles: dict[str, str]) -> str:
    """``anyOf``: a number-or-numeric-text pair reads as "decimal" (pydantic 2.14 writes a
    constrained decimal's text without its pattern, earlier versions with it; no shape
    field is a number-or-any-text union); a ``$parameter`` alternative goes without
    saying."""
    alts = [a for a in any_of if a != _PARAM_REF]
    types = {a.get("type") for a in alts if isinstance(a, dict)}
    if {"number", "string"} <= types and all(
            a.get("type") != "string" or "pattern" in a or set(a) == {"type"}
            for a in alts):
        rest = [a for a in alts if a.get("type") not in ("number", "string")]
        return " or ".join(["decimal", *(_type(a, titles) for a in rest)])
    return " or ".join(dict.fromkeys(_type(a, titles) for a in alts))


def _scalar(node: dict[str, Any], kind: Any) -> str:
    bounds = [f"≥ {node['minimum']:g}" if "minimum" in node else "",
              f"≤ {node['maximum']:g}" if "maximum" in node else ""]
    word = {"string": "text", "integer": "integer", "number": "number", "boolean": "true/false",
            "null": "null"}.get(str(kind), str(kind))
    if node.get("format") in ("date", "date-time", "time"):
        word = node["format"]
    return " ".join([word, *(b for b in bounds if b)])


def _default(info: Any) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"


def _fields(cls: type[BaseModel], schema: dict[str, Any], titles: dict[str, str],
            skip: frozenset[str] | set[str] = frozenset()) -> list[str]:
    docs = attribute_docs(cls)
    props = schema.get("properties", {})
    out = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, info in cls.model_fields.items():
        if name in skip:
            continue
        key = info.alias or name
        out.append(f"| `{key}` | {_cell(_type(props.get(key, {}), titles))} | "
                   f"{_cell(_default(info))} | {_cell(docs.get(name, ''))} |")
    return out


def _example(shape: str) -> tuple[str, str] | None:
    """The shortest rule of ``shape`` in the standard pack, as written there."""
    found: list[tuple[int, str, str]] = []
    for policy in standard_pack():
        for raw in policy.rules:
            if raw.get("shape") == shape:
                text = yaml.safe_dump([raw], allow_unicode=True, sort_keys=False, width=90)
                found.append((len(text), policy.id, text))
    if not found:
        return None
    _, pid, text = min(found)
    return pid, text


def _doc(obj: Any) -> str:
    return inspect.cleandoc(obj.__doc__ or "")


def shape_page(shape: str, cls: type[RuleSpec], schema: dict[str, Any]) -> str:
    defs = schema["definitions"]
    nested = _nested(cls)
    titles = {_def_name(m, defs): m.__name__ for m in nested}
    module = sys.modules[cls.__module__]
    out = [f"<!-- Generated by docs/gen_shapes.py from {cls.__module__}.{cls.__name__}; "
           "do not edit by hand. -->",
           f"# The `{shape}` shape", "", _doc(module), "", _doc(cls), "",
           "## Fields", "",
           f"A rule of this shape has `shape: {shape}`, the [fields every rule has]"
           "(index.md#fields-every-rule-has), and these:", ""]
    out += _fields(cls, defs[_def_name(cls, defs)], titles, skip=_COMMON)
    out += ["", "Any value may instead be a `$name` reference to a parameter of the policy."]
    for model in nested:
        out += ["", f"### {model.__name__}", "", _doc(model), ""]
        out += _fields(model, defs[_def_name(model, defs)], titles)
    out += ["", "## Example", ""]
    example = _example(shape)
    if example is None:
        out.append("No standard policy uses this shape.")
    else:
        pid, text = example
        out += [f"From the standard policy [{pid}](../policies/{pid}.md) "
                f"(`policykit/pack/{pid}.yaml`):", "", "```yaml", "rules:",
                *("  " + line if line else line for line in text.rstrip().splitlines()),
                "```"]
    return "\n".join(out) + "\n"


def index_page(schema: dict[str, Any]) -> str:
    defs = schema["definitions"]
    out = ["<!-- Generated by docs/gen_shapes.py; do not edit by hand. -->",
           "# Rule shapes", "",
           "Every rule of a policy is written in one of these shapes (its `shape:` key). "
           "The pages list each shape's fields with their types, defaults and meaning, "
           "generated from the models that validate policy files; "
           "`policykit schema policy` prints the same as a JSON Schema for editors "
           "(see [the command line](../cli.md#schema)). An application can add shapes of "
           "its own ([Your own rule shapes](../shape-authoring.md)); the registered ones are "
           "listed here too when this page is generated.", "",
           "| shape | what it decides |", "|---|---|"]
    for shape, cls in sorted(SHAPES.items()):
        first = _doc(sys.modules[cls.__module__]).split("\n\n")[0]
        out.append(f"| [`{shape}`]({shape}.md) | {_cell(first)} |")
    out += ["", "## Fields every rule has", ""]
    out += _fields(RuleSpec, defs[_def_name(next(iter(SHAPES.values())), defs)], {},
                   skip={"shape"})
    out += ["", "A rule may also carry `enabled_if: {parameter: value or [values]}`: the rule "
            "is kept only when the policy's parameters have those values (alternative "
            "readings of one rule, chosen by a parameter).", "",
            "`messages` maps an outcome of the shape to `{en: ..., zh: ...}` sentences that "
            "replace the shape's defaults; `{name}` fields in them come from the decision's "
            "details, plus `subject` and `rule`. A policy file is checked for fields a "
            "message may not use when it is loaded."]
    return "\n".join(out) + "\n"


def pages() -> dict[Path, str]:
    """Every generated page: path -> content."""
    schema = policy_schema()
    out = {OUT / "index.md": index_page(schema)}
    for shape, cls in sorted(SHAPES.items()):
        out[OUT / f"{shape}.md"] = shape_page(shape, cls, schema)
    return out


def write(check: bool = False) -> list[Path]:
    """Write the pages that changed; with ``check``, write nothing and return the stale
    ones."""
    return write_pages(pages(), OUT, check)


# --- mkdocs hook ----------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Expand the "Rule shapes" entry of the nav into one page per shape."""
    nav = config.get("nav") or []
    for i, item in enumerate(nav):
        if isinstance(item, dict) and item.get("Rule shapes") == "shapes/index.md":
            nav[i] = {"Rule shapes": ["shapes/index.md"] + [
                {shape: f"shapes/{shape}.md"} for shape in sorted(SHAPES)]}
    return config


def on_pre_build(config: Any) -> None:
    write()


def main(argv: list[str] | None = None) -> int:
    return _generated.main(__doc__, write, "gen_shapes.py", ROOT, argv)


if __name__ == "__main__":
    sys.exit(main())
