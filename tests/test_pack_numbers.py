"""Every parameter of the standard pack is either the rulebook's (docs/_pack_numbers.py
RULEBOOK) or a figure the pack adds, listed with its reason on docs/policies/pack-numbers.md."""

from __future__ import annotations

from pathlib import Path

from _pack_numbers import ADDED, RULEBOOK  # docs/, on pytest's pythonpath

from policykit import standard_pack

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_every_pack_parameter_is_the_rulebooks_or_listed_as_added() -> None:
    unclassified, both = [], []
    for policy in standard_pack():
        rulebook = RULEBOOK.get(policy.id, frozenset())
        for name in policy.parameters:
            added = (policy.id, name) in ADDED
            if added and name in rulebook:
                both.append(f"{policy.id}.{name}")
            elif not added and name not in rulebook:
                unclassified.append(f"{policy.id}.{name}")
    assert not unclassified, (
        "parameters neither in RULEBOOK nor in ADDED of docs/_pack_numbers.py (give the "
        "reason for an added figure): " + ", ".join(unclassified))
    assert not both, "parameters in both tables: " + ", ".join(both)


def test_the_tables_name_only_parameters_the_pack_has() -> None:
    pack = {p.id: set(p.parameters) for p in standard_pack()}
    stale = [f"{pid}.{name}" for pid, names in RULEBOOK.items() for name in names
             if name not in pack.get(pid, set())]
    stale += [f"{pid}.{name}" for pid, name in ADDED if name not in pack.get(pid, set())]
    assert not stale, "no such pack parameter: " + ", ".join(stale)


def test_the_page_lists_every_added_figure_with_its_reason() -> None:
    page = (DOCS / "policies" / "pack-numbers.md").read_text(encoding="utf-8")
    for (pid, name), reason in ADDED.items():
        row = next((line for line in page.splitlines()
                    if line.startswith(f"| [`{pid}`]") and f"| `{name}` |" in line), None)
        assert row is not None and " ".join(reason.split()) in row, (pid, name)
    for needle in ("`exempt_roles` | `[\"guard\"]`", "`turnout_within` | `\"PT30M\"`",
                   "`update_every` | `\"PT2H\"`", "before the outgoing guard's shift end"):
        assert needle in page
