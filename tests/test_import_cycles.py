"""Module seams that must hold: the audit package's modules import each other without a
cycle (type-only imports included: the renderers read a ReportData, not the report), and
the rule shapes never import the policy layer at module level (the standard pack lives
in policykit/pack/)."""

from __future__ import annotations

import ast
from pathlib import Path

import policykit

ROOT = Path(policykit.__file__).parent


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Modules ``path`` imports, as dotted names relative to policykit (``audit._report``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = path.parent.relative_to(ROOT).parts
    # top_level_only: what importing the module runs (not type-only imports, not imports
    # inside functions, which run on first use).
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.level:
            base = list(package[: len(package) - node.level + 1])
            if node.module:
                out.add(".".join([*base, node.module]))
            else:
                out.update(".".join([*base, a.name]) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("policykit."):
            out.add(node.module.removeprefix("policykit."))  # type: ignore[union-attr]
    return out


def test_the_audit_modules_form_no_cycle() -> None:
    mods = {p.stem: p for p in (ROOT / "audit").glob("*.py")}
    graph = {m: {d.split(".")[1] for d in _imports(p) if d.startswith("audit.")} & set(mods)
             for m, p in mods.items()}

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(nxt == goal or reaches(nxt, goal, seen | {nxt})
                   for nxt in graph[start] - seen)

    assert [m for m in graph if reaches(m, m, set())] == []


def test_the_rule_shapes_never_import_the_policy_layer() -> None:
    policy_layer = {"policy", "policyfile", "pack"}
    found = {(p.name, d) for p in (ROOT / "rules").glob("*.py")
             for d in _imports(p, top_level_only=True) if d.split(".")[0] in policy_layer}
    assert found == set()
