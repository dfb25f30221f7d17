"""What an audit report's renderers read — the HTML page, charts, payroll, summaries and
why-not — as plain data: the report hands them a :class:`ReportData`, not itself, so none of
those modules imports the report module, and the report module imports them without a
cycle."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from ..models.decisions import Decision
from ..models.events import EventBase
from ._quarantine import QuarantinedRecord

if TYPE_CHECKING:
    from ..policy import PolicySet

__all__ = ["AuditCounts", "ReportData", "Status"]

Status = Literal["final", "provisional", "superseded"]
"""A decision's status in a report: ``superseded`` when a later decision (a revision, a
revocation, the month's final total) names it in ``supersedes``, else its own status."""


@dataclass
class AuditCounts:
    """What happened to the records: ``read = valid + quarantined``; of the valid ones,
    ``duplicates`` repeated an id already seen (ignored, not counted twice) and
    ``after_until`` were later than the audit horizon (not evaluated)."""

    read: int = 0
    valid: int = 0
    duplicates: int = 0
    quarantined: int = 0
    after_until: int = 0
    corrected: int = 0
    """Valid records replaced by a later correction (``meta.corrects``), not evaluated."""
    evaluated: int = 0
    decisions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        text = (f"{self.read} records read: {self.valid} valid, {self.duplicates} duplicate, "
                f"{self.quarantined} quarantined")
        if self.after_until:
            text += f", {self.after_until} after the horizon"
        if self.corrected:
            text += f", {self.corrected} replaced by corrections"
        return text + f"; {self.evaluated} events evaluated, {self.decisions} decisions"


@dataclass(frozen=True)
class ReportData:
    """An audit report's contents, as its renderers read them (see AuditReport)."""

    trail: list[Decision]
    """Every decision, superseded and provisional ones included."""
    decisions: list[Decision]
    """What stands: final decisions no later decision supersedes."""
    events: dict[str, EventBase]
    policies: PolicySet
    quarantine: list[QuarantinedRecord]
    counts: AuditCounts
    superseded: Collection[str]
    """Ids of the decisions a later one supersedes."""
    tz: Any
    horizon: datetime | None
    backend: str
    source: str
    provenance_of: Callable[[], dict[str, Any]]

    @property
    def provenance(self) -> dict[str, Any]:
        return self.provenance_of()

    def status(self, decision: Decision) -> Status:
        return "superseded" if decision.id in self.superseded else decision.status

    def effective(self) -> list[Decision]:
        return list(self.decisions)
