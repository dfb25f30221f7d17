"""Explanations: why one decision was made — the rule, the parameters it reads, the evidence
in time order, the figures, and the deadline or window involved."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models.decisions import Decision
from ..models.events import EventBase
from ..policy import Policy, PolicySet
from ..rules import RuleSpec
from ._format import clip, fmt_at, json_value
from ._html import escape, kv_table, table

_TIMING_KEYS = re.compile(r"(due|deadline|window|period|opened|start|end|within|basis|"
                          r"anchor|month|quarter|year|until|since|from|to_time|gap|last)")


@dataclass(frozen=True)
class Explanation:
    """Why one decision was made: the rule, its parameters, the evidence in time order, the
    figures, and the deadline or window involved. ``str()`` renders it as text."""

    decision: Decision
    policy: Policy
    rule: RuleSpec
    parameters: dict[str, Any]
    parameter_docs: dict[str, str]
    evidence: list[EventBase | Decision]
    missing_evidence: list[str]
    timing: dict[str, Any]
    figures: dict[str, Any]
    superseded_by: list[str]
    supersedes: list[Decision]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything shown."""
        return {
            "decision": self.decision.to_json_dict(),
            "policy": {"id": self.policy.id, "version": self.policy.version,
                       "title": self.policy.title, "clause": self.policy.clause},
            "rule": {"id": self.rule.id, "shape": self.rule.shape, "title": self.rule.title,
                     **({"title_zh": self.rule.title_zh} if self.rule.title_zh else {}),
                     "description": self.rule.description,
                     "clause": self.rule.clause or self.policy.clause},
            "parameters": json_value(self.parameters),
            "evidence": [e.model_dump(mode="json", exclude_none=True) if isinstance(e, EventBase)
                         else e.to_json_dict() for e in self.evidence],
            "missing_evidence": self.missing_evidence,
            "timing": json_value(self.timing),
            "figures": json_value(self.figures),
            "superseded_by": self.superseded_by,
        }

    def render(self) -> str:
        d, r, p = self.decision, self.rule, self.policy
        money = f"   amount: {d.amount} {d.currency}" if d.amount is not None else ""
        out = [
            f"Decision {d.id}: {p.id} {r.id} ({d.kind}, {d.status}, severity {d.severity})",
            f"  subject: {d.subject.kind} {d.subject.id}   at: {fmt_at(d.at)}{money}",
            f"  {d.message}",
            f"  {d.message_zh}",
            "",
            f"Rule {r.id} ({r.shape}) of {p.id} v{p.version} \"{p.title}\" — "
            f"clause {r.clause or p.clause}",
        ]
        if r.title or r.title_zh:
            out.append("  " + " ".join(t for t in (r.title, r.title_zh) if t))
        if r.description:
            out.append(f"  {' '.join(r.description.split())}")
        if self.parameters:
            out += ["", "Parameters:"]
            for name, value in self.parameters.items():
                doc = self.parameter_docs.get(name, "")
                out.append(f"  {name} = {value!r}" + (f"   — {doc}" if doc else ""))
        if self.timing:
            out += ["", "Deadline / window:", *_kv_lines(self.timing)]
        if self.figures:
            out += ["", "Figures:", *_kv_lines(self.figures)]
        out += ["", f"Evidence ({len(self.evidence)}, in time order):"]
        out += ["  " + event_line(e) for e in self.evidence]
        if self.missing_evidence:
            out.append("  not in this audit: " + ", ".join(self.missing_evidence))
        if self.supersedes:
            out += ["", "Replaces:"] + ["  " + event_line(x) for x in self.supersedes]
        if self.superseded_by:
            out += ["", "Replaced by: " + ", ".join(self.superseded_by)]
        return "\n".join(out)

    __str__ = render
    __repr__ = render

    def _repr_html_(self) -> str:
        d, r, p = self.decision, self.rule, self.policy
        rows = [("subject", f"{d.subject.kind} {d.subject.id}"), ("at", fmt_at(d.at)),
                ("kind", d.kind), ("status", d.status), ("severity", d.severity),
                ("clause", r.clause or p.clause)]
        if d.amount is not None:
            rows.append(("amount", f"{d.amount} {d.currency}"))
        parts = [
            f"<div class='pk-explain'><h4>{escape(p.id)} {escape(r.id)} — "
            f"{escape(r.title or r.shape)}"
            + (f" {escape(r.title_zh)}" if r.title_zh else "") + "</h4>",
            f"<p>{escape(d.message)}<br>{escape(d.message_zh)}</p>",
            kv_table(rows),
        ]
        if r.description:
            parts.append(f"<p><em>{escape(' '.join(r.description.split()))}</em></p>")
        if self.parameters:
            parts.append("<h5>Parameters</h5>" + table(
                ["parameter", "value", "meaning"],
                [[k, repr(v), self.parameter_docs.get(k, "")] for k, v in self.parameters.items()]))
        if self.timing:
            parts.append("<h5>Deadline / window</h5>" + kv_table(list(self.timing.items())))
        if self.figures:
            parts.append("<h5>Figures</h5>" + kv_table(list(self.figures.items())))
        parts.append("<h5>Evidence</h5>" + table(
            ["at", "id", "what", "fields"],
            [[fmt_at(e.at), e.id,
              e.type if isinstance(e, EventBase) else f"decision {e.spec_rule}",
              _event_fields(e) if isinstance(e, EventBase) else e.message]
             for e in self.evidence]))
        if self.missing_evidence:
            parts.append(f"<p>Not in this audit: {escape(', '.join(self.missing_evidence))}</p>")
        parts.append("</div>")
        return "".join(parts)


def explain(d: Decision, policies: PolicySet, events: Mapping[str, EventBase],
            decisions: Mapping[str, Decision], superseded_by: list[str]) -> Explanation:
    """The explanation of ``d``, its evidence looked up among the audit's ``events`` and
    ``decisions`` (by id); ``superseded_by`` are the ids of the decisions replacing it."""
    policy, rule = find_rule(policies, d.policy, d.spec_rule)
    evidence: list[EventBase | Decision] = []
    missing = []
    for ref in d.evidence:
        found = events.get(ref) or decisions.get(ref)
        if found is None:
            missing.append(ref)
        else:
            evidence.append(found)
    evidence.sort(key=lambda e: (e.at, e.id))
    params = rule_parameters(policy, rule.id) or dict(policy.parameters)
    timing: dict[str, Any] = {}
    figures: dict[str, Any] = {}
    for key, value in d.details.items():
        if key in ("outcome", "what"):
            continue
        (timing if _TIMING_KEYS.search(key) else figures)[key] = value
    if "due" in d.details and d.details.get("outcome") == "missed":
        timing.setdefault("decided_at", fmt_at(d.at))
    return Explanation(
        decision=d, policy=policy, rule=rule, parameters=params,
        parameter_docs={k: policy.parameter_docs[k] for k in params
                        if k in policy.parameter_docs},
        evidence=evidence, missing_evidence=missing, timing=timing, figures=figures,
        superseded_by=list(superseded_by),
        supersedes=[decisions[x] for x in d.supersedes if x in decisions],
    )


def find_rule(policies: PolicySet, policy_id: str, rule_id: str) -> tuple[Policy, RuleSpec]:
    """A policy of the set and one of its rules (unknown ids raise with a suggestion)."""
    policy = policies.get(policy_id)
    return policy, policy.rule(rule_id)


def rule_parameters(policy: Policy, rule_id: str) -> dict[str, Any]:
    """The parameters a rule's data refers to (``"$name"``), with their values."""
    used: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith("$"):
            used.append(value[1:])
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for raw in policy.rules:
        if raw.get("id") == rule_id:
            walk(raw)
    return {name: policy.parameters[name] for name in dict.fromkeys(used)
            if name in policy.parameters}


def event_line(event: EventBase | Decision) -> str:
    """One line for an event or decision: time, id, type (or rule) and fields (or message)."""
    if isinstance(event, Decision):
        return (f"{fmt_at(event.at)}  {event.id}  decision {event.policy} {event.spec_rule} "
                f"({event.kind}): {event.message}")
    return f"{fmt_at(event.at)}  {event.id}  {event.type}  {_event_fields(event)}"


def _event_fields(event: EventBase) -> str:
    data = event.model_dump(mode="json", exclude_none=True,
                            exclude={"id", "type", "at", "meta"})
    parts = [f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
             for k, v in data.items()]
    return clip(" ".join(parts), 160)


def _kv_lines(values: Mapping[str, Any]) -> list[str]:
    """``key: value`` lines; a list of records (a tariff's items) one record per line."""
    out = []
    for key, value in values.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out.append(f"  {key}:")
            out += ["    - " + ", ".join(f"{k}={v}" for k, v in item.items()) for item in value]
        else:
            out.append(f"  {key}: {value}")
    return out
