"""The decision record of the wire format (docs/events.md): what a rule concluded, with
its evidence."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = ["DECISION_KINDS", "Decision", "DecisionKind", "Severity", "Subject", "SubjectKind"]

DecisionKind = Literal[
    "violation", "deduction", "fine", "sanction", "escalation", "obligation", "warning", "kpi"
]
DECISION_KINDS: tuple[str, ...] = get_args(DecisionKind)
Severity = Literal["info", "low", "medium", "high", "critical"]
SubjectKind = Literal[
    "employee", "customer", "request", "project", "post", "route", "incident", "household",
    "department", "case", "complaint", "problem", "question", "visit", "vehicle", "area",
    "site", "item",
]


class Subject(BaseModel):
    """Who or what a decision is about, e.g. ``{"kind": "employee", "id": "E7"}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: SubjectKind
    id: str


class Decision(BaseModel):
    """One conclusion of one rule, with the events it rests on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    policy: str
    rule: str
    part: str | None = None
    """Where the policy splits a rulebook rule into parts (``R2b`` beside ``R2``), the part
    that made the decision; ``rule`` is then the rulebook's rule (``R2``), so reports group
    by the rulebook's numbering. Absent for a rule that is not split."""
    kind: DecisionKind
    subject: Subject
    at: AwareDatetime
    evidence: tuple[str, ...]
    amount: Decimal | None = None
    currency: str | None = None
    severity: Severity = "medium"
    clause: str
    message: str
    message_zh: str
    details: dict[str, Any] = Field(default_factory=dict)
    status: Literal["final", "provisional"] = "final"
    supersedes: tuple[str, ...] = ()
    policy_fingerprint: str | None = None
    """The fingerprint of the policy that made the decision (its whole definition:
    version, parameters, calendar, rules); it also enters the decision id."""

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.kind == "violation" and not self.evidence:
            raise ValueError("a violation must name at least one evidence event")
        if (self.amount is None) != (self.currency is None):
            raise ValueError("amount and currency go together")
        return self

    @property
    def spec_rule(self) -> str:
        """The id of the policy rule that made the decision: its ``part`` where the rule is
        split, else ``rule`` (what ``Policy.rule`` looks up)."""
        return self.part or self.rule

    def __repr__(self) -> str:
        money = f" {self.amount} {self.currency}" if self.amount is not None else ""
        return (f"<Decision {self.id} {self.kind} {self.policy}/{self.spec_rule} "
                f"{self.subject.kind}:{self.subject.id}{money} {self.status} "
                f"at {self.at.isoformat(timespec='seconds')}>")

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        from html import escape

        rows = [("id", self.id), ("policy · rule", f"{self.policy} · {self.rule}"
                                   + (f" ({self.part})" if self.part else "")),
                ("kind", f"{self.kind} ({self.severity})"),
                ("subject", f"{self.subject.kind} {self.subject.id}"),
                ("at", self.at.isoformat(timespec="seconds")),
                ("amount", f"{self.amount} {self.currency}" if self.amount is not None else ""),
                ("status", self.status), ("clause", self.clause),
                ("message", self.message), ("訊息", self.message_zh),
                ("evidence", ", ".join(self.evidence)),
                ("supersedes", ", ".join(self.supersedes)),
                ("policy fingerprint", self.policy_fingerprint or "")]
        body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th>"
                       f"<td style='text-align:left'>{escape(v)}</td></tr>"
                       for k, v in rows if v)
        return f"<table class='pk-decision'><tbody>{body}</tbody></table>"

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: amounts as decimal strings, times as ISO-8601 with offset."""
        return self.model_dump(mode="json", exclude_none=True)


_KINDS = frozenset(DECISION_KINDS)
_SEVERITIES = frozenset(get_args(Severity))
_STATUSES = frozenset(("final", "provisional"))
_FIELDS = frozenset(Decision.model_fields)
_STR = frozenset((str,))
_ZONES = frozenset((ZoneInfo, timezone))
_new = object.__new__
_set = object.__setattr__


def build_decision(
    id: str, policy: str, rule: str, part: str | None, kind: str, subject: Subject,
    at: datetime, evidence: tuple[str, ...], amount: Decimal | None, currency: str | None,
    severity: str, clause: str, message: str, message_zh: str, details: dict[str, Any],
    status: str, supersedes: tuple[str, ...], policy_fingerprint: str | None,
) -> Decision:
    """The :class:`Decision` of these fields, as ``Decision(...)`` builds it.

    Validating a decision through pydantic costs more than the rest of building it. Where
    every value is already of the exact type the model holds (a ``str``, not a subclass; a
    finite ``Decimal``; a ``datetime`` in a ``ZoneInfo`` or ``timezone``; a ``Subject``;
    tuples of ``str``; a dict with ``str`` keys; a kind, severity and status the model
    names; amount and currency together; a violation with evidence) validation would
    accept it and keep each value as given, so the model is filled in directly. Anything
    else goes through ``Decision(...)``, which converts it or refuses it with its own
    error, exactly as before (tests/test_decision_build.py checks both sides)."""
    if (str is type(id) is type(policy) is type(rule) is type(kind) is type(severity)
            is type(status) is type(clause) is type(message) is type(message_zh)
            and kind in _KINDS and severity in _SEVERITIES and status in _STATUSES
            and (part is None or type(part) is str)
            and type(subject) is Subject
            # aware: a zone whose offsets are never None and always valid. Any other tzinfo
            # is the model's to judge: its utcoffset may raise, or give an offset datetime
            # refuses (a day or more) where the model keeps it.
            and type(at) is datetime and type(at.tzinfo) in _ZONES
            and type(evidence) is tuple is type(supersedes)
            and set(map(type, evidence)) <= _STR
            and (not supersedes or set(map(type, supersedes)) <= _STR)
            and (evidence or kind != "violation")
            and (amount is None
                 or (type(amount) is Decimal and amount.is_finite() and type(currency) is str))
            and (currency is None or amount is not None)
            and type(details) is dict and set(map(type, details)) <= _STR
            and (policy_fingerprint is None or type(policy_fingerprint) is str)):
        d = _new(Decision)
        _set(d, "__dict__", {
            "id": id, "policy": policy, "rule": rule, "part": part, "kind": kind,
            "subject": subject, "at": at, "evidence": evidence, "amount": amount,
            "currency": currency, "severity": severity, "clause": clause,
            "message": message, "message_zh": message_zh, "details": dict(details),
            "status": status, "supersedes": supersedes,
            "policy_fingerprint": policy_fingerprint})
        _set(d, "__pydantic_fields_set__", set(_FIELDS))
        _set(d, "__pydantic_extra__", None)
        _set(d, "__pydantic_private__", None)
        return d
    return Decision(id=id, policy=policy, rule=rule, part=part, kind=kind, subject=subject,
                    at=at, evidence=evidence, amount=amount, currency=currency,
                    severity=severity, clause=clause, message=message, message_zh=message_zh,
                    details=details, status=status, supersedes=supersedes,
                    policy_fingerprint=policy_fingerprint)
