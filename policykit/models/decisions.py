"""The decision record of EVENTS.md: what a rule concluded, with its evidence."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Literal, get_args

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

    @model_validator(mode="after")
    def _consistent(self) -> Decision:
        if self.kind == "violation" and not self.evidence:
            raise ValueError("a violation must name at least one evidence event")
        if (self.amount is None) != (self.currency is None):
            raise ValueError("amount and currency go together")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: amounts as decimal strings, times as ISO-8601 with offset."""
        return self.model_dump(mode="json", exclude_none=True)
