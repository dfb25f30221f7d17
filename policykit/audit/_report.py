"""The audit report: decisions, quarantined records and counts, and every way to read them —
tables (pandas, polars, CSV, JSONL), the summary, payroll, explanations, charts and HTML.
pandas, polars and matplotlib are imported only by the methods that need them."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from .._optional import optional_import
from ..errors import ParameterError, nearest
from ..models.decisions import Decision, Subject
from ..models.events import EventBase
from ..policy import PolicySet
from . import _charts, _explain, _payroll, _why_not
from ._charts import Chart
from ._explain import Explanation
from ._format import json_value
from ._html import render_notebook, render_report
from ._quarantine import QuarantinedRecord
from ._summary import summary_rows
from ._why_not import WhyNot

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]


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


@dataclass
class AuditReport:
    """The result of an audit: decisions, quarantined records, counts, and ways to read them.

    ``events`` holds the evaluated events by id in (time, id) order, so any decision's
    evidence can be looked up."""

    decisions: list[Decision]
    events: dict[str, EventBase]
    policies: PolicySet
    quarantine: list[QuarantinedRecord]
    counts: AuditCounts
    until: datetime | None = None
    backend: str = "native"
    source: str = "<events>"
    _by_id: dict[str, Decision] = field(default_factory=dict, repr=False)
    _superseded: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {d.id: d for d in self.decisions}
        superseded: dict[str, list[str]] = defaultdict(list)
        for d in self.decisions:
            for old in d.supersedes:
                superseded[old].append(d.id)
        self._superseded = dict(superseded)

    def __repr__(self) -> str:
        return f"<AuditReport {self.source}: {self.counts}>"

    def __len__(self) -> int:
        return len(self.decisions)

    # -- lookups -------------------------------------------------------------------------

    @property
    def tz(self) -> Any:
        """The display time zone: the first policy's calendar."""
        for p in self.policies:
            tz = p.calendar.tz
            return tz() if callable(tz) else tz
        return None

    @property
    def horizon(self) -> datetime | None:
        """How far event time got: ``until``, or the last evaluated event."""
        if self.until is not None:
            return self.until
        last = next(reversed(self.events.values()), None) if self.events else None
        return last.at if last is not None else None

    def decision(self, decision_id: str) -> Decision:
        """One decision by id (a unique prefix is enough)."""
        found = self._by_id.get(decision_id)
        if found is not None:
            return found
        prefixed = [d for i, d in self._by_id.items() if i.startswith(decision_id)]
        if len(prefixed) == 1:
            return prefixed[0]
        raise ParameterError("decision_id", decision_id,
                             "the id of a decision of this audit"
                             + (f" ({len(prefixed)} ids start with it)" if prefixed else ""),
                             suggestion=nearest(decision_id, self._by_id))

    def is_superseded(self, decision: Decision) -> bool:
        return decision.id in self._superseded

    def effective(self) -> list[Decision]:
        """Decisions that count: final and not replaced by a later one."""
        return [d for d in self.decisions if d.status == "final" and d.id not in self._superseded]

    # -- tables ----------------------------------------------------------------------------

    _COLUMNS = ("id", "at", "policy", "rule", "kind", "subject_kind", "subject_id", "severity",
                "status", "amount", "currency", "clause", "message", "message_zh", "evidence",
                "details", "supersedes", "superseded")

    def _row(self, d: Decision) -> dict[str, Any]:
        return {"id": d.id, "at": d.at, "policy": d.policy, "rule": d.rule, "kind": d.kind,
                "subject_kind": d.subject.kind, "subject_id": d.subject.id,
                "severity": d.severity, "status": d.status, "amount": d.amount,
                "currency": d.currency, "clause": d.clause, "message": d.message,
                "message_zh": d.message_zh, "evidence": list(d.evidence),
                "details": dict(d.details), "supersedes": list(d.supersedes),
                "superseded": d.id in self._superseded}

    def to_pandas(self) -> pd.DataFrame:
        """One row per decision. ``amount`` holds ``Decimal`` values (object dtype), never
        floats; ``at`` is timezone-aware in the calendar's zone."""
        with optional_import("audit", "AuditReport.to_pandas()"):
            import pandas as pd

        frame = pd.DataFrame([self._row(d) for d in self.decisions], columns=self._COLUMNS)
        if len(frame):
            frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(self.tz)
        frame["amount"] = frame["amount"].astype(object)
        return frame

    to_dataframe = to_pandas

    def to_polars(self) -> Any:
        """The decisions as a polars DataFrame (``amount`` as a decimal string column)."""
        with optional_import("audit", "AuditReport.to_polars()"):
            import polars as pl

        rows = []
        for d in self.decisions:
            row = self._row(d)
            row["amount"] = None if d.amount is None else str(d.amount)
            row["details"] = json.dumps(json_value(d.details), ensure_ascii=False)
            rows.append(row)
        return pl.DataFrame(rows, schema_overrides={"amount": pl.String}, strict=False)

    def summary(self, by: Sequence[str] | str = ("policy", "rule", "kind")) -> pd.DataFrame:
        """Decisions counted per group: ``decisions``, ``final``, distinct ``subjects``, the
        money of final, non-replaced decisions (``amount``, Decimal) and the time span.
        ``by`` from: policy, rule, kind, severity, status, subject, subject_kind, subject_id,
        currency, date, month."""
        with optional_import("audit", "AuditReport.summary()"):
            import pandas as pd

        keys = (by,) if isinstance(by, str) else tuple(by)
        columns = [*keys, "decisions", "final", "subjects", "amount", "first_at", "last_at"]
        frame = pd.DataFrame(summary_rows(self, keys), columns=columns)
        frame["amount"] = frame["amount"].astype(object)
        return frame

    # -- payroll ---------------------------------------------------------------------------

    def months(self) -> list[str]:
        """Months (``YYYY-MM``) holding final money decisions, in order."""
        return _payroll.months(self)

    def payroll_rows(self, month: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """The payroll table as (money columns, rows); see :meth:`payroll`."""
        return _payroll.payroll_rows(self, month)

    def payroll(self, month: str | None = None) -> pd.DataFrame:
        """Per employee for ``month`` (``YYYY-MM``; default the latest month with money):
        ``base_salary`` (from the latest profile by the month's end), one column per rule
        that deducts or fines (``"lateness-deduction R2"``), ``total`` and ``net`` — every
        figure a ``Decimal`` rounded half-up to the cent. Only final decisions count, and
        none replaced by a later one. Employees with a profile and nothing deducted are
        listed too: payroll needs every row."""
        with optional_import("audit", "AuditReport.payroll()"):
            import pandas as pd

        cols, rows = self.payroll_rows(month)
        head = ["employee_id", "role", "department", "currency", "base_salary"]
        frame = pd.DataFrame(rows, columns=[*head, *cols, "total", "net"])
        for col in ("base_salary", *cols, "total", "net"):
            frame[col] = frame[col].astype(object)
        return frame

    # -- explanations ------------------------------------------------------------------------

    def explain(self, decision_id: str) -> Explanation:
        """Why a decision was made: the rule (title, description, clause), its parameters,
        the evidence events in time order, the figures and the deadline or window."""
        d = self.decision(decision_id)
        return _explain.explain(d, self.policies, self.events, self._by_id,
                       self._superseded.get(d.id, []))

    def why_not(self, subject: str | Subject | Mapping[str, str] | tuple[str, str],
                policy: str, rule: str) -> WhyNot:
        """Why ``rule`` of ``policy`` did not fire for ``subject`` (an id, ``"employee:E7"``,
        a :class:`Subject` or ``(kind, id)``): the subject's events the rule reads, what
        each was checked against, and how close it came (for a deadline: fulfilled N
        minutes before due)."""
        return _why_not.why_not(self, subject, policy, rule)

    # -- charts ------------------------------------------------------------------------------

    def violations_chart(self, kinds: Sequence[str] = ("violation",),
                         freq: Literal["auto", "D", "W", "M"] = "auto") -> Chart:
        """Violations over time, stacked by policy (daily, weekly or monthly bars)."""
        return _charts.violations_chart(self, kinds, freq)

    def deductions_chart(self, month: str | None = None, top: int = 25) -> Chart:
        """Deductions and fines by employee (final only), stacked by rule; one month or all."""
        return _charts.deductions_chart(self, month, top)

    # -- export ------------------------------------------------------------------------------

    def write_csv(self, out: TextIO) -> None:
        """Decisions as CSV: lists and objects as JSON text, amounts as decimal strings."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self._COLUMNS)
        for d in self.decisions:
            row = self._row(d)
            row["at"] = d.at.isoformat()
            row["amount"] = "" if d.amount is None else str(d.amount)
            row["currency"] = d.currency or ""
            for key in ("evidence", "supersedes", "details"):
                row[key] = json.dumps(json_value(row[key]), ensure_ascii=False)
            row["superseded"] = "true" if row["superseded"] else "false"
            writer.writerow([row[c] for c in self._COLUMNS])

    def to_csv(self, path: str | Path) -> Path:
        """Write the decisions to a CSV file (UTF-8); returns the path."""
        return _write_file(path, self.write_csv, newline="")

    def write_jsonl(self, out: TextIO) -> None:
        """Decisions in the wire format, one JSON object per line."""
        for d in self.decisions:
            out.write(json.dumps(d.to_json_dict(), ensure_ascii=False) + "\n")

    def to_jsonl(self, path: str | Path) -> Path:
        """Write the decisions to a JSONL file (UTF-8); returns the path."""
        return _write_file(path, self.write_jsonl)

    def to_html(self, path: str | Path | None = None, *, max_rows: int = 5000) -> str:
        """A self-contained HTML report (tables, charts as embedded PNG, no external
        resources). Written to ``path`` when given; the HTML text is returned."""
        text = render_report(self, max_rows=max_rows)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        return render_notebook(self)


def _write_file(path: str | Path, write: Callable[[TextIO], None],
                newline: str | None = None) -> Path:
    """Open ``path`` for UTF-8 text, let ``write`` fill it, return the path."""
    target = Path(path)
    with target.open("w", encoding="utf-8", newline=newline) as fh:
        write(fh)
    return target
