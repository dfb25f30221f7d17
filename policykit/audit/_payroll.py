"""Payroll: which decisions are money, their months, and per employee and month the base
salary, one column per deducting or fining rule, the total and the net — every figure a
``Decimal`` rounded half-up to the cent."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from ..errors import ParameterError
from ..models.decisions import Decision
from ..models.events import EventBase
from ._format import natural

if TYPE_CHECKING:
    from ._data import ReportData

CENT = Decimal("0.01")
MONEY_KINDS = ("deduction", "fine")


def money(value: Decimal) -> Decimal:
    """An amount rounded half-up to the cent."""
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def is_money(d: Decision) -> bool:
    """A deduction or fine with an amount."""
    return d.kind in MONEY_KINDS and d.amount is not None


def month_of(d: Decision, tz: Any) -> str:
    """The month (``YYYY-MM``) a decision counts in: its ``period`` detail when that names a
    month, else the month of its local date."""
    period = d.details.get("period")
    if isinstance(period, str) and re.fullmatch(r"\d{4}-\d{2}", period):
        return period
    return d.at.astimezone(tz).strftime("%Y-%m") if tz is not None else d.at.strftime("%Y-%m")


def employee_money(decisions: Iterable[Decision], tz: Any, month: str | None = None
                   ) -> tuple[dict[str, dict[str, Decimal]], dict[str, str]]:
    """Money of employees (of one month, or all) summed per employee and per
    ``"<policy> <rule>"`` column, and each employee's first currency (in decision order)."""
    sums: dict[str, dict[str, Decimal]] = defaultdict(dict)
    currency: dict[str, str] = {}
    for d in decisions:
        if not is_money(d) or d.subject.kind != "employee":
            continue
        if month is not None and month_of(d, tz) != month:
            continue
        col = f"{d.policy} {d.rule}"
        per = sums[d.subject.id]
        per[col] = per.get(col, Decimal(0)) + d.amount  # type: ignore[operator]
        if d.currency:
            currency.setdefault(d.subject.id, d.currency)
    return sums, currency


def money_totals(decisions: Iterable[Decision], key: Callable[[Decision], str]
                 ) -> dict[str, Decimal]:
    """The money of ``decisions`` summed per ``key`` (a currency, a policy ...)."""
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for d in decisions:
        if is_money(d):
            totals[key(d)] += d.amount  # type: ignore[operator]
    return dict(totals)


def months(report: ReportData) -> list[str]:
    """Months (``YYYY-MM``) holding final money decisions, in order."""
    return sorted({month_of(d, report.tz) for d in report.effective() if is_money(d)})


def payroll_rows(report: ReportData, month: str | None = None
                 ) -> tuple[list[str], list[dict[str, Any]]]:
    """The payroll table as (money columns, rows); see :meth:`AuditReport.payroll`."""
    month = month or _default_month(report)
    if not re.fullmatch(r"\d{4}-\d{2}", month):
        raise ParameterError("month", month, "a month as YYYY-MM, e.g. 2026-03")
    tz = report.tz
    sums, currency = employee_money(report.effective(), tz, month)
    year, mon = (int(x) for x in month.split("-"))
    month_end = (datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz)
                 if tz is not None else None)
    profiles = _profiles_until(report, month_end - timedelta(microseconds=1)
                               if month_end is not None else None)
    ordered = sorted({c for per in sums.values() for c in per}, key=natural)
    rows = []
    for emp in sorted(set(profiles) | set(sums), key=natural):
        prof = profiles.get(emp)
        base = getattr(prof, "base_salary", None)
        row: dict[str, Any] = {
            "employee_id": emp,
            "role": getattr(prof, "role", None),
            "department": getattr(prof, "department", None),
            "currency": getattr(prof, "currency", None) or currency.get(emp, "CNY"),
            "base_salary": money(base) if base is not None else None,
        }
        total = Decimal(0)
        for col in ordered:
            value = sums.get(emp, {}).get(col, Decimal(0))
            row[col] = money(value)
            total += value
        row["total"] = money(total)
        row["net"] = money(base - total) if base is not None else None
        rows.append(row)
    return ordered, rows


def _profiles_until(report: ReportData, end: datetime | None) -> dict[str, EventBase]:
    """Each employee's latest profile at or before ``end`` (events are in time order)."""
    found: dict[str, EventBase] = {}
    for event in report.events.values():
        if event.type != "employee.profile":
            continue
        if end is not None and event.at > end:
            break
        found[event.employee_id] = event  # type: ignore[attr-defined]
    return found


def _default_month(report: ReportData) -> str:
    """The latest month with money, else the month of the audit's horizon."""
    found = months(report)
    if found:
        return found[-1]
    h = report.horizon
    if h is None:
        raise ParameterError("month", None, "a month as YYYY-MM (the audit is empty)")
    return h.astimezone(report.tz).strftime("%Y-%m")
