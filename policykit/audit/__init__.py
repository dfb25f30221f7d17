"""Batch audits: read a log in any format, run the policies over it, and read the result as
tables, a payroll summary, charts, explanations and a self-contained HTML report.

>>> report = audit("events.jsonl", until="2026-04-01T00:00:00+08:00")   # doctest: +SKIP
>>> report.summary()                       # decisions per policy, rule and kind  # doctest: +SKIP
>>> report.payroll("2026-03")              # base salary, deductions, fines, net  # doctest: +SKIP
>>> print(report.explain(report.decisions[0].id))                             # doctest: +SKIP

An invalid record never stops an audit and is never silently dropped: it goes to
``report.quarantine`` with its line (or row) number, its id and what was wrong with it.
pandas, matplotlib and pyarrow are imported only by the methods that need them.

One concept per module: ``_readers`` (sources to raw records), ``_quarantine`` (validation
and bad records), ``_audit`` (the run), ``_report`` (:class:`AuditReport`), ``_summary``,
``_payroll``, ``_explain``, ``_why_not``, ``_charts``, ``_html``, ``_diff`` (one log under
two policy sets) and ``_format`` (values as people and JSON files read them).
"""

from ..errors import AuditSourceError
from ._audit import audit, parse_instant
from ._charts import Chart
from ._data import AuditCounts
from ._diff import DecisionChange, DiffReport, MoneyChange, diff
from ._explain import Explanation
from ._quarantine import QuarantinedRecord
from ._readers import read_records
from ._report import AuditReport
from ._why_not import WhyNot

__all__ = [
    "AuditCounts",
    "AuditReport",
    "AuditSourceError",
    "Chart",
    "DecisionChange",
    "DiffReport",
    "Explanation",
    "MoneyChange",
    "QuarantinedRecord",
    "WhyNot",
    "audit",
    "diff",
    "parse_instant",
    "read_records",
]
