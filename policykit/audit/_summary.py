"""Summary: decisions counted per group (policy, rule, kind, subject, month ...) with the
money of the ones that stand (final, not superseded) and the time span."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError, nearest
from ..models.decisions import Decision
from ._payroll import money, month_of

if TYPE_CHECKING:
    from ._data import ReportData

SUMMARY_KEYS = ("policy", "rule", "part", "kind", "severity", "status", "subject", "subject_kind",
                "subject_id", "currency", "date", "month")


def summary_rows(report: ReportData, by: Sequence[str],
                 decisions: Sequence[Decision] | None = None) -> list[dict[str, Any]]:
    """One row per group of ``by`` (from :data:`SUMMARY_KEYS`) of ``decisions`` (default
    those that stand), groups in text order."""
    for name in by:
        if name not in SUMMARY_KEYS:
            raise ParameterError("summary.by", name,
                                 "one of " + ", ".join(SUMMARY_KEYS),
                                 suggestion=nearest(name, SUMMARY_KEYS))
    tz = report.tz
    groups: dict[tuple[Any, ...], list[Decision]] = defaultdict(list)
    for d in report.decisions if decisions is None else decisions:
        groups[tuple(_key(d, k, tz, report) for k in by)].append(d)
    rows = []
    for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
        items = groups[key]
        counting = [d for d in items if d.amount is not None
                    and report.status(d) == "final"]
        amount = sum((d.amount for d in counting if d.amount is not None), Decimal(0))
        rows.append({
            **dict(zip(by, key, strict=True)),
            "decisions": len(items),
            "final": sum(1 for d in items if report.status(d) == "final"),
            "subjects": len({(d.subject.kind, d.subject.id) for d in items}),
            "amount": money(amount) if counting else None,
            "first_at": min(d.at for d in items),
            "last_at": max(d.at for d in items),
        })
    return rows


def _key(d: Decision, key: str, tz: Any, report: ReportData) -> Any:
    if key == "status":
        return report.status(d)
    if key == "part":
        return d.part or ""
    if key == "subject":
        return f"{d.subject.kind}:{d.subject.id}"
    if key == "subject_kind":
        return d.subject.kind
    if key == "subject_id":
        return d.subject.id
    if key == "date":
        return d.at.astimezone(tz).date().isoformat()
    if key == "month":
        return month_of(d, tz)
    return getattr(d, key)

