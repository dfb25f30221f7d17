"""Generate the policy reference (docs/policies/*.md) from the standard pack itself.

Every page is built from the pack's own data — title, the rulebook's words (source_zh), the
English summary, parameters with defaults and their docs, each rule's title, description,
shape, severity, the event types it reads and the decision kinds it returns — plus an example
decision made by running the engine on a tiny event log written below. So the reference
cannot drift from the pack:

    python docs/gen_policies.py           # write the pages
    python docs/gen_policies.py --check   # exit 1 if a committed page is stale (CI)

It is also an mkdocs hook (``hooks:`` in mkdocs.yml): ``mkdocs build`` regenerates the
pages first and lists them under "Policy reference" in the navigation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUT = DOCS / "policies"

try:
    import policykit  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import _generated  # noqa: E402  (docs/, beside this script)
from _generated import write_pages  # noqa: E402
from _pack_numbers import added_rows, rule_settings  # noqa: E402

from policykit import Decision, Engine, Policy, standard_pack  # noqa: E402
from policykit.models.decisions import DECISION_KINDS  # noqa: E402
from policykit.rules import RuleSpec  # noqa: E402

# --- the tiny example logs ------------------------------------------------------------------

_n = 0


def ev(type_: str, at: str, **fields: Any) -> dict[str, Any]:
    """An event at a local Shanghai time (``2026-03-02 09:00``)."""
    global _n
    _n += 1
    stamp = datetime.fromisoformat(at).isoformat() + "+08:00"
    return {"id": fields.pop("id", f"e{_n}"), "type": type_, "at": stamp, **fields}


def profile(emp: str, role: str, salary: str = "6000.00", at: str = "2026-03-01 00:00"
            ) -> dict[str, Any]:
    return ev("employee.profile", at, id=f"p-{emp}", employee_id=emp, role=role,
              base_salary=salary)


def contact(at: str, request: str, **extra: Any) -> dict[str, Any]:
    fields = {"request_id": request, "customer_id": "C1", "employee_id": "E1",
              "channel": "phone", "topic": "water leak", "in_remit": True,
              "finish_at_once": True, **extra}
    return ev("contact.received", at, **fields)


Example = tuple[Callable[[], list[dict[str, Any]]], str, str]

#: Per policy: (events, until, what the log shows). Each must produce a decision.
EXAMPLES: dict[str, Example] = {
    "first-responder": (lambda: [
        contact("2026-03-02 09:00", "R1"),
    ], "2026-03-03T00:00:00+08:00",
        "E1 takes a request that could be finished at once and does not resolve it that day."),
    "callback-frequency": (lambda: [
        ev("project.delivered", "2026-01-10 10:00", project_id="P1", customer_id="C1"),
        ev("callback.made", "2026-01-20 10:00", project_id="P1", employee_id="E1"),
    ], "2026-03-11T00:00:00+08:00",
        "Project P1, delivered on January 10, gets a callback in its first month but none in "
        "its second (February 10 to March 10)."),
    "lateness-deduction": (lambda: [
        profile("E1", "customer_service"),
        ev("attendance.clock_in", "2026-03-02 08:41", employee_id="E1"),
        ev("attendance.clock_out", "2026-03-02 17:35", employee_id="E1"),
    ], "2026-03-02T23:00:00+08:00",
        "E1 (base salary 6000.00) clocks in at 08:41 on Monday, March 2."),
    "staff-penalties": (lambda: [
        profile("E1", "customer_service"),
        ev("staff.complaint", "2026-03-02 11:00", employee_id="E1", source="customer",
           severity="moderate"),
        ev("staff.private_call", "2026-03-02 15:00", employee_id="E1", duration_s=420),
    ], "2026-03-03T00:00:00+08:00",
        "A customer complains about E1 (moderate), and E1 takes a seven-minute private call."),
    "shift-handover": (lambda: [
        ev("shift.started", "2026-03-02 08:00", post_id="GATE-1", guard_id="G1"),
        ev("shift.turnout_checked", "2026-03-02 08:05", post_id="GATE-1", guard_id="G1",
           uniform=True, badge=False),
    ], "2026-03-02T09:00:00+08:00",
        "Guard G1 takes the gate without an equipment check and without the badge."),
    "incident-escalation": (lambda: [
        ev("incident.detected", "2026-03-02 10:00", incident_id="I1", severity="major",
           employee_id="E1", customer_id="C1"),
        ev("incident.notified", "2026-03-02 10:10", incident_id="I1", employee_id="E1",
           recipients=["sales_owner", "manager", "departments"],
           details={"time": "10:00", "place": "server room B2", "symptoms": "core switch down"}),
    ], "2026-03-02T10:20:00+08:00",
        "E1 reports a major fault to the salesperson and the manager within ten minutes, but "
        "without a response plan."),
    "complaint-handling": (lambda: [
        ev("complaint.received", "2026-03-02 10:00", complaint_id="Q1", household_id="H1",
           employee_id="E1", kind="complaint"),
    ], "2026-03-03T00:00:00+08:00",
        "A resident's complaint is received at 10:00 and nobody investigates it that day."),
    "reporting-duties": (lambda: [
        profile("E1", "customer_service"),
    ], "2026-03-02T18:00:00+08:00",
        "Customer service employee E1 submits no daily report on Monday, March 2."),
    "annual-customer-care": (lambda: [
        ev("inspection.done", "2026-03-02 10:00", project_id="P1", employee_id="E1",
           findings=2),
    ], "2026-03-03T12:00:00+08:00",
        "A quality inspection of project P1 finds two problems that are never passed on to "
        "customer service."),
    "holiday-coverage": (lambda: [
        profile("E1", "customer_service", at="2026-04-30 00:00"),
        ev("duty.check", "2026-05-01 08:00", employee_id="E1", target="website"),
        ev("duty.check", "2026-05-01 14:00", employee_id="E1", target="website"),
    ], "2026-05-01T15:00:00+08:00",
        "On Labour Day (a statutory holiday) the website is checked at 08:00 and then not "
        "until 14:00."),
    "site-access": (lambda: [
        ev("visitor.arrived", "2026-03-02 21:15", visit_id="V1", post_id="GATE-1",
           employee_id="G1", has_id_document=False, registered=False, admitted=True),
    ], "2026-03-03T00:00:00+08:00",
        "Guard G1 lets in a visitor with no identity document and no registration."),
    "service-delivery": (lambda: [
        ev("remote.session_started", "2026-03-02 14:00", request_id="S1", customer_id="C1",
           employee_id="E1"),
    ], "2026-03-02T15:00:00+08:00",
        "E1 opens a remote session on a customer's system without any authorization."),
}

# Which decision to show in full: money first, then breaches, then the rest.
_PRIORITY = ("deduction", "fine", "violation", "sanction", "escalation", "kpi", "warning",
             "obligation")


def run_example(policy: Policy) -> tuple[list[dict[str, Any]], str, str, list[Decision]]:
    """The example log of a policy, its horizon, its story and the engine's decisions."""
    if policy.id not in EXAMPLES:
        return [], "", "", []
    global _n
    make, until, story = EXAMPLES[policy.id]
    _n = 0  # ids e1, e2 ... per example, whatever the order of the pages
    events = make()
    decisions = Engine(policy).evaluate(events, until=datetime.fromisoformat(until))
    return events, until, story, decisions


# --- page building --------------------------------------------------------------------------


def _cell(text: Any) -> str:
    """Text for a markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _value(value: Any) -> str:
    return f"`{json.dumps(value, ensure_ascii=False, default=str)}`"


def rule_kinds(spec: RuleSpec, seen: set[str]) -> list[str]:
    """Decision kinds a rule returns: from its fields, plus any seen in its example."""
    kinds: set[str] = set(seen)
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        emitted = {
            "kind": value in DECISION_KINDS and spec.shape != "tariff",
            "limit_kind": getattr(spec, "limit", None) is not None,
            "announce_kind": bool(getattr(spec, "announce", False)),
        }
        if emitted.get(name):
            kinds.add(value)
        elif name == "each_item":
            kinds.update(value)
        elif name == "outcomes" and isinstance(value, dict):
            kinds.update(v for v in value.values() if v in DECISION_KINDS)
    if getattr(spec, "announce", False) and not hasattr(spec, "announce_kind"):
        kinds.add("obligation")
    if getattr(spec, "warn_before", None):
        kinds.add("warning")
    if getattr(spec, "escalate_to", None):
        kinds.add("escalation")
    if spec.shape == "ladder":
        kinds.add("sanction")
    if spec.shape == "rate":
        kinds.add("kpi")
    if spec.shape == "cap":
        kinds.add("deduction")  # a negative one: the excess over the cap
    if spec.shape == "tariff":
        # A tariff's kind is what it charges; a limit-only tariff charges nothing.
        charges = (getattr(spec, "tiers", ()) or getattr(spec, "amount_by", None)
                   or (getattr(spec, "limit", None) is not None
                       and getattr(spec, "limit_amount", 0) > 0))
        if charges:
            kinds.add(getattr(spec, "kind", "deduction"))
    return [k for k in _PRIORITY if k in kinds]


def policy_page(policy: Policy) -> str:
    events, until, story, decisions = run_example(policy)
    seen: dict[str, set[str]] = {}
    for d in decisions:
        seen.setdefault(d.spec_rule, set()).add(d.kind)
    cal = policy.calendar
    out = [
        f"<!-- Generated by docs/gen_policies.py from policykit/pack/{policy.id}.yaml; "
        "do not edit by hand. -->",
        f"# {policy.title}" + (f" — {policy.title_zh}" if policy.title_zh else ""),
        "",
        "| field | value |", "|---|---|",
        f"| id | `{policy.id}` |",
        f"| version | {policy.version} |",
        f"| clause | {_cell(policy.clause)} |",
        f"| rules | {len(policy.specs)} |",
        f"| calendar | {cal.timezone}, working hours {cal.work_start:%H:%M}–{cal.work_end:%H:%M} |",
        "",
        policy.summary.strip(),
        "",
        "## The rulebook's words",
        "",
    ]
    out += [f"> {line}  " for line in policy.source_zh.strip().splitlines() if line.strip()]
    out += ["", "## Parameters", ""]
    if policy.parameters:
        out += ["| parameter | default | meaning |", "|---|---|---|"]
        for name, value in policy.parameters.items():
            out.append(f"| `{name}` | {_value(value)} | "
                       f"{_cell(policy.parameter_docs.get(name, ''))} |")
        first = next(iter(policy.parameters))
        out += ["", "Change any of them in a policy file, for example:", "", "```yaml",
                "policies:", f"  - use: {policy.id}",
                f"    parameters: {{{first}: "
                f"{json.dumps(policy.parameters[first], ensure_ascii=False, default=str)}}}",
                "```"]
    else:
        out.append("This policy has no parameters.")
    out += ["", "## Rules", ""]
    for spec in policy.specs:
        kinds = rule_kinds(spec, seen.get(spec.id, set()))
        out += [
            f"### {spec.id} — {spec.title or spec.shape}"
            + (f" ({spec.title_zh})" if spec.title_zh else ""),
            "",
            *([f"A part of the rulebook's {spec.part_of}: its decisions say "
               f"`rule: {spec.part_of}`, `part: {spec.id}`.", ""] if spec.part_of else []),
            "| shape | severity | clause | reads | returns |",
            "|---|---|---|---|---|",
            f"| `{spec.shape}` | {spec.severity} | {_cell(spec.clause or policy.clause)} | "
            + ", ".join([f"`{t}`" for t in sorted(spec.event_types())]
                        + [f"decisions of {r}" for r in sorted(spec.consumes())]
                        + (["deductions and fines of every policy"]
                           if spec.shape == "cap" else [])) + " | "
            + ", ".join(kinds) + " |",
            "",
        ]
        if spec.description:
            out += [" ".join(spec.description.split()), ""]
    out += ["## Example", ""]
    if not decisions:
        out.append("No example decision (the example log produced none).")
    else:
        out += [f"{story} Run with `until` = `{until}`:", "", "```json"]
        out += [json.dumps(e, ensure_ascii=False) for e in events]
        out += ["```", "", "The engine decides:", "",
                "| rule | kind | subject | at | message |", "|---|---|---|---|---|"]
        for d in decisions:
            money = f" ({d.amount} {d.currency})" if d.amount is not None else ""
            out.append(f"| {d.spec_rule} | {d.kind}{money} | {d.subject.kind} {d.subject.id} | "
                       f"{d.at.isoformat(timespec='minutes')} | {_cell(d.message)} |")
        shown = min(decisions, key=lambda d: (_PRIORITY.index(d.kind), d.at, d.id))
        out += ["", f"{shown.spec_rule}'s decision in full (the wire format):", "", "```json",
                json.dumps(shown.to_json_dict(), indent=2, ensure_ascii=False), "```"]
    return "\n".join(out) + "\n"


def index_page(policies: list[Policy]) -> str:
    out = ["<!-- Generated by docs/gen_policies.py; do not edit by hand. -->",
           "# Policy reference", "",
           "Every policy of the standard pack, generated from the pack itself "
           "(`policykit/pack/*.yaml`). `policykit policies` lists the same on the "
           "command line.", "",
           "| policy | title | 標題 | clause | rules |", "|---|---|---|---|---|"]
    for p in policies:
        out.append(f"| [`{p.id}`]({p.id}.md) | {_cell(p.title)} | {_cell(p.title_zh)} | "
                   f"{_cell(p.clause)} | {len(p.specs)} |")
    out += ["", "Every number in a rule is a parameter with a default; the parameter tables "
            "say what each means and, where the rulebook can be read two ways, which reading "
            "the default takes and why. Tune them in a policy file (see "
            "[Concepts](../concepts.md#policies-and-parameters)). The figures the pack adds "
            "where the rulebook gives none are listed, with their reasons, in "
            "[Numbers the pack adds](pack-numbers.md)."]
    return "\n".join(out) + "\n"


def numbers_page(policies: list[Policy]) -> str:
    """The figures the pack adds where the rulebook gives none (docs/_pack_numbers.py)."""
    out = ["<!-- Generated by docs/gen_policies.py from the pack and docs/_pack_numbers.py; "
           "do not edit by hand. -->",
           "# Numbers the pack adds", "",
           "Most figures of the standard pack are the rulebook's own (三分鐘, 最低罰款10元/次, "
           "每月三次, 每季回訪1次) or its documented reading, quoted on each policy's page. "
           "Where the rulebook gives no figure and a rule cannot run without one, the pack "
           "chooses a default. This page lists every such choice, why it is what it is, and "
           "what changes it; tests/test_pack_numbers.py checks that every parameter of the "
           "pack is either the rulebook's or listed here.", "",
           "## Parameters", "",
           "| policy | parameter | default | what it decides | why this default |",
           "|---|---|---|---|---|"]
    for pid, name, value, doc, reason in added_rows(policies):
        out.append(f"| [`{pid}`]({pid}.md) | `{name}` | {_value(value)} | {_cell(doc)} | "
                   f"{_cell(reason)} |")
    out += ["", "Each is a parameter: set it in a policy file, for example", "", "```yaml",
            "policies:", "  - use: lateness-deduction",
            "    parameters: {exempt_roles: []}   # office hours for guards too", "```", "",
            "## Rule settings", "",
            "Figures of the rule shapes the pack runs with. They are not parameters but fields "
            "of the rule itself, set where a policy file defines the rule.", "",
            "| policy | rule | setting | value | meaning |", "|---|---|---|---|---|"]
    for pid, rule, name, value, meaning in rule_settings(policies):
        out.append(f"| [`{pid}`]({pid}.md) | {rule} | `{name}` | {_value(value)} | "
                   f"{_cell(meaning)} |")
    return "\n".join(out) + "\n"


def pages() -> dict[Path, str]:
    """Every generated page: path -> content."""
    policies = list(standard_pack())
    out = {OUT / "index.md": index_page(policies),
           OUT / "pack-numbers.md": numbers_page(policies)}
    for p in policies:
        out[OUT / f"{p.id}.md"] = policy_page(p)
    return out


def write(check: bool = False) -> list[Path]:
    """Write the pages that changed; with ``check``, write nothing and return the stale
    ones."""
    return write_pages(pages(), OUT, check)


# --- mkdocs hook ----------------------------------------------------------------------------


def on_config(config: Any) -> Any:
    """Expand the "Policy reference" entry of the nav into one page per policy."""
    nav = config.get("nav") or []
    for i, item in enumerate(nav):
        if isinstance(item, dict) and item.get("Policy reference") == "policies/index.md":
            nav[i] = {"Policy reference": ["policies/index.md"] + [
                {p.id: f"policies/{p.id}.md"} for p in standard_pack()]}
    return config


def on_pre_build(config: Any) -> None:
    write()


def main(argv: list[str] | None = None) -> int:
    return _generated.main(__doc__, write, "gen_policies.py", ROOT, argv)


if __name__ == "__main__":
    sys.exit(main())
