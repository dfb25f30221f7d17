"""The audit report: decisions, quarantined records and counts, and every way to read them —
tables (pandas, polars, Arrow, Parquet, CSV, JSONL), the summary, payroll, explanations,
charts and HTML. pandas, polars, pyarrow and matplotlib are imported only by the methods that
need them.

Every reading defaults to what *stands*: final decisions no later one supersedes
(:attr:`AuditReport.decisions`); ``trail=True`` gives every decision made, each with its
status in this report (``final``, ``provisional`` or ``superseded``)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from .._optional import optional_import
from ..errors import ParameterError, nearest
from ..models.decisions import Decision, Subject
from ..models.events import EventBase
from ..policy import PolicySet, has_versions
from . import _charts, _explain, _payroll, _why_not
from ._charts import Chart
from ._data import AuditCounts, ReportData, Status
from ._explain import Explanation
from ._format import json_value
from ._html import render_notebook, render_report
from ._quarantine import QuarantinedRecord
from ._summary import summary_rows
from ._why_not import WhyNot

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]


#: Money in Arrow, Parquet and polars: 16 digits before the point, 2 after.
MONEY_PRECISION, MONEY_SCALE = 18, 2
_MONEY_LIMIT = Decimal(10) ** (MONEY_PRECISION - MONEY_SCALE)
_CENT = Decimal(1).scaleb(-MONEY_SCALE)
#: Text cells a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class AuditReport:
    """The result of an audit: decisions, quarantined records, counts, and ways to read them.

    Built with every decision the audit made (``decisions=``, in order); :attr:`decisions`
    then reads what stands (final, not superseded) and :attr:`trail` all of them.
    ``events`` holds the evaluated events by id in (time, id) order, so any decision's
    evidence can be looked up."""

    def __init__(
        self,
        decisions: Sequence[Decision],
        events: dict[str, EventBase],
        policies: PolicySet,
        quarantine: list[QuarantinedRecord],
        counts: AuditCounts,
        until: datetime | None = None,
        backend: str = "native",
        source: str = "<events>",
    ) -> None:
        self.trail: list[Decision] = list(decisions)
        """Every decision the audit made, superseded and provisional ones included."""
        self.events = events
        self.policies = policies
        self.quarantine = quarantine
        self.counts = counts
        self.until = until
        self.backend = backend
        self.source = source
        self.notes: list[str] = []
        """What the readers guessed about the source (a CSV's encoding), to check."""
        self._by_id = {d.id: d for d in self.trail}
        superseded: dict[str, list[str]] = defaultdict(list)
        for d in self.trail:
            for old in d.supersedes:
                superseded[old].append(d.id)
        self._superseded = dict(superseded)
        self._standing = [d for d in self.trail
                          if d.status == "final" and d.id not in self._superseded]

    @property
    def decisions(self) -> list[Decision]:
        """What stands: final decisions no later decision supersedes, in order. A revocation
        record is final and stands (it carries no money); provisional decisions (running
        month-to-date figures) never stand — :attr:`trail` has them."""
        return self._standing

    def __repr__(self) -> str:
        return f"<AuditReport {self.source}: {self.counts}>"

    def __len__(self) -> int:
        return len(self._standing)

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

    def status(self, decision: Decision) -> Status:
        """``superseded`` if a later decision of this report replaces it, else its own
        ``final`` or ``provisional``."""
        return "superseded" if decision.id in self._superseded else decision.status

    def effective(self) -> list[Decision]:
        """Decisions that count: final and not replaced by a later one (:attr:`decisions`)."""
        return list(self._standing)

    def _view(self, trail: bool) -> list[Decision]:
        return self.trail if trail else self._standing

    def _data(self) -> ReportData:
        """What the renderers (charts, HTML, payroll, summaries, why-not) read."""
        return ReportData(
            trail=self.trail, decisions=self._standing, events=self.events,
            policies=self.policies, quarantine=self.quarantine, counts=self.counts,
            superseded=self._superseded.keys(), tz=self.tz, horizon=self.horizon,
            backend=self.backend, source=self.source,
            provenance_of=lambda: self.provenance)

    @property
    def provenance(self) -> dict[str, Any]:
        """What made these decisions: the policykit version, each policy's id, version and
        fingerprint, the policy set's fingerprint, the source, horizon and backend."""
        from .. import __version__

        return {
            "policykit_version": __version__,
            "policy_set_fingerprint": self.policies.fingerprint(),
            "policies": [{"id": p.id, "version": p.version, "fingerprint": p.fingerprint(),
                          **_versions(p)} for p in self.policies],
            "source": self.source,
            "until": self.until.isoformat() if self.until is not None else None,
            "backend": self.backend,
        }

    # -- tables ----------------------------------------------------------------------------

    _COLUMNS = ("id", "at", "policy", "rule", "part", "kind", "subject_kind", "subject_id",
                "severity", "status", "amount", "currency", "clause", "message", "message_zh",
                "evidence", "details", "supersedes", "superseded", "policy_fingerprint",
                "policykit_version")

    def _row(self, d: Decision) -> dict[str, Any]:
        from .. import __version__

        return {"id": d.id, "at": d.at, "policy": d.policy, "rule": d.rule, "part": d.part,
                "kind": d.kind,
                "subject_kind": d.subject.kind, "subject_id": d.subject.id,
                "severity": d.severity, "status": self.status(d), "amount": d.amount,
                "currency": d.currency, "clause": d.clause, "message": d.message,
                "message_zh": d.message_zh, "evidence": list(d.evidence),
                "details": json.dumps(json_value(d.details), ensure_ascii=False),
                "supersedes": list(d.supersedes), "superseded": d.id in self._superseded,
                "policy_fingerprint": d.policy_fingerprint, "policykit_version": __version__}

    def _metadata(self, trail: bool) -> dict[str, Any]:
        return {**self.provenance, "view": "trail" if trail else "standing"}

    def to_pandas(self, *, trail: bool = False) -> pd.DataFrame:
        """One row per decision that stands (every decision with ``trail=True``).
        ``amount`` holds ``Decimal`` values (object dtype), never floats; ``at`` is
        timezone-aware in the calendar's zone; ``status`` is ``final``, ``provisional`` or
        ``superseded``; ``details`` is JSON text. ``frame.attrs["policykit"]`` holds the
        provenance (version, policy fingerprints, view)."""
        with optional_import("audit", "AuditReport.to_pandas()"):
            import pandas as pd

        frame = pd.DataFrame([self._row(d) for d in self._view(trail)], columns=self._COLUMNS)
        if len(frame):
            frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(self.tz)
        frame["amount"] = frame["amount"].astype(object)
        frame.attrs["policykit"] = self._metadata(trail)
        return frame

    to_dataframe = to_pandas

    def _money_cell(self, d: Decision) -> Decimal | None:
        """The amount as ``decimal128(18, 2)`` holds it, or a clear error if it cannot."""
        if d.amount is None:
            return None
        try:
            exact = d.amount.is_finite() and d.amount.quantize(_CENT) == d.amount
            fits = exact and abs(d.amount) < _MONEY_LIMIT
        except InvalidOperation:
            fits = False
        if not fits:
            raise ParameterError(
                f"decision {d.id}.amount", d.amount,
                f"money that fits decimal128({MONEY_PRECISION}, {MONEY_SCALE}): at most "
                f"{MONEY_PRECISION - MONEY_SCALE} digits before the point and {MONEY_SCALE} "
                "after (use to_pandas() or to_jsonl(), which keep any Decimal)")
        return d.amount.quantize(_CENT)

    def _arrow_tz(self) -> str:
        tz = self.tz
        return str(getattr(tz, "key", None) or tz) if tz is not None else "UTC"

    def to_arrow(self, *, trail: bool = False) -> pa.Table:
        """The decisions as a ``pyarrow.Table``: ``amount`` as ``decimal128(18, 2)``,
        ``at`` as a timestamp in the calendar's zone, ``details`` as JSON text, ``evidence``
        and ``supersedes`` as lists of ids; the schema metadata ``policykit`` holds the
        provenance as JSON. Raises :class:`~policykit.ParameterError` for an amount that
        does not fit decimal128(18, 2)."""
        with optional_import("audit", "AuditReport.to_arrow()"):
            import pyarrow as pa

        schema = self._arrow_schema(pa)
        rows = []
        for d in self._view(trail):
            row = self._row(d)
            row["amount"] = self._money_cell(d)
            rows.append(row)
        columns = {name: [r[name] for r in rows] for name in self._COLUMNS}
        meta = {"policykit": json.dumps(self._metadata(trail), ensure_ascii=False)}
        return pa.Table.from_pydict(columns, schema=schema.with_metadata(meta))

    def _arrow_schema(self, pa: Any) -> Any:
        text, ids = pa.string(), pa.list_(pa.string())
        types = {"at": pa.timestamp("us", tz=self._arrow_tz()),
                 "amount": pa.decimal128(MONEY_PRECISION, MONEY_SCALE),
                 "evidence": ids, "supersedes": ids, "superseded": pa.bool_()}
        return pa.schema([(name, types.get(name, text)) for name in self._COLUMNS])

    def to_parquet(self, path: str | Path, *, trail: bool = False) -> Path:
        """Write :meth:`to_arrow` to a Parquet file (money stays ``decimal128(18, 2)``, the
        provenance stays in the schema metadata); returns the path."""
        with optional_import("audit", "AuditReport.to_parquet()"):
            import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]

        target = Path(path)
        pq.write_table(self.to_arrow(trail=trail), target)
        return target

    def to_polars(self, *, trail: bool = False) -> Any:
        """The decisions as a polars DataFrame: ``amount`` as ``Decimal(18, 2)``, ``at`` in
        the calendar's zone, ``details`` as JSON text (columns as in :meth:`to_pandas`)."""
        with optional_import("audit", "AuditReport.to_polars()"):
            import polars as pl

        rows = []
        for d in self._view(trail):
            row = self._row(d)
            row["amount"] = self._money_cell(d)
            rows.append(row)
        ids = pl.List(pl.String)
        types: dict[str, Any] = {"at": pl.Datetime("us", time_zone=self._arrow_tz()),
                 "amount": pl.Decimal(MONEY_PRECISION, MONEY_SCALE),
                 "evidence": ids, "supersedes": ids, "superseded": pl.Boolean}
        schema: dict[str, Any] = {name: types.get(name, pl.String) for name in self._COLUMNS}
        return pl.DataFrame(rows, schema=schema)

    def summary(self, by: Sequence[str] | str = ("policy", "rule", "kind"), *,
                trail: bool = False) -> pd.DataFrame:
        """Decisions that stand (all with ``trail=True``) counted per group: ``decisions``,
        ``final`` (standing), distinct ``subjects``, the money of the standing decisions
        (``amount``, Decimal) and the time span. ``by`` from: policy, rule, part (the
        part of a split rule, empty for others), kind, severity, status, subject,
        subject_kind, subject_id, currency, date, month (``status`` is the status in this
        report: final, provisional or superseded)."""
        with optional_import("audit", "AuditReport.summary()"):
            import pandas as pd

        keys = (by,) if isinstance(by, str) else tuple(by)
        columns = [*keys, "decisions", "final", "subjects", "amount", "first_at", "last_at"]
        frame = pd.DataFrame(self.summary_rows(keys, trail=trail), columns=columns)
        frame["amount"] = frame["amount"].astype(object)
        return frame

    def summary_rows(self, by: Sequence[str] | str = ("policy", "rule", "kind"), *,
                     trail: bool = False) -> list[dict[str, Any]]:
        """The :meth:`summary` table as one dict per group, without pandas."""
        keys = (by,) if isinstance(by, str) else tuple(by)
        return summary_rows(self._data(), keys, self._view(trail))

    # -- payroll ---------------------------------------------------------------------------

    def months(self) -> list[str]:
        """Months (``YYYY-MM``) holding final money decisions, in order."""
        return _payroll.months(self._data())

    def payroll_rows(self, month: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """The payroll table as (money columns, rows); see :meth:`payroll`."""
        return _payroll.payroll_rows(self._data(), month)

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
        return _why_not.why_not(self._data(), subject, policy, rule)

    # -- charts ------------------------------------------------------------------------------

    def violations_chart(self, kinds: Sequence[str] = ("violation",),
                         freq: Literal["auto", "D", "W", "M"] = "auto", *,
                         trail: bool = False) -> Chart:
        """Violations that stand (all with ``trail=True``) over time, stacked by policy
        (daily, weekly or monthly bars)."""
        return _charts.violations_chart(self._data(), kinds, freq, self._view(trail))

    def deductions_chart(self, month: str | None = None, top: int = 25) -> Chart:
        """Deductions and fines by employee (final only), stacked by rule; one month or all."""
        return _charts.deductions_chart(self._data(), month, top)

    # -- export ------------------------------------------------------------------------------

    def write_csv(self, out: TextIO, *, trail: bool = False, bom: bool = False) -> None:
        """Decisions that stand (all with ``trail=True``) as CSV, columns as in
        :meth:`to_pandas`: lists and objects as JSON text, amounts as plain decimal strings.
        A text cell starting with ``= + - @``, a tab or a carriage return is prefixed with
        ``'`` so a spreadsheet shows it instead of running it. ``bom=True`` starts the text
        with a UTF-8 byte order mark (Excel then reads Chinese text right)."""
        if bom:
            out.write("\ufeff")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self._COLUMNS)
        for d in self._view(trail):
            row = self._row(d)
            row["at"] = d.at.isoformat()
            row["amount"] = "" if d.amount is None else str(d.amount)
            row["currency"] = d.currency or ""
            row["part"] = d.part or ""
            row["policy_fingerprint"] = d.policy_fingerprint or ""
            for key in ("evidence", "supersedes"):
                row[key] = json.dumps(row[key], ensure_ascii=False)
            row["superseded"] = "true" if row["superseded"] else "false"
            writer.writerow([row[c] if c in _CSV_PLAIN else _cell(row[c])
                             for c in self._COLUMNS])

    def to_csv(self, path: str | Path, *, trail: bool = False, bom: bool = False) -> Path:
        """Write :meth:`write_csv` to a file (UTF-8, with a BOM if ``bom``); returns the
        path."""
        return _write_file(path, lambda fh: self.write_csv(fh, trail=trail, bom=bom),
                           newline="")

    def write_jsonl(self, out: TextIO, *, trail: bool = False) -> None:
        """Decisions that stand (all with ``trail=True``), one JSON object per line: the
        decision's wire format (``policy_fingerprint`` included) plus an ``audit`` object
        with its ``status`` in this report and the ``policykit_version``."""
        from .. import __version__

        for d in self._view(trail):
            line = d.to_json_dict()
            line["audit"] = {"status": self.status(d), "policykit_version": __version__}
            out.write(json.dumps(line, ensure_ascii=False) + "\n")

    def to_jsonl(self, path: str | Path, *, trail: bool = False) -> Path:
        """Write :meth:`write_jsonl` to a file (UTF-8); returns the path."""
        return _write_file(path, lambda fh: self.write_jsonl(fh, trail=trail))

    def to_html(self, path: str | Path | None = None, *, max_rows: int = 5000,
                trail: bool = False) -> str:
        """A self-contained HTML report (tables, charts as embedded PNG, no external
        resources) of the decisions that stand (all with ``trail=True``), with the
        policykit version and policy fingerprints. Written to ``path`` when given; the HTML
        text is returned."""
        text = render_report(self._data(), max_rows=max_rows, trail=trail)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        return render_notebook(self._data())


#: CSV columns written as they are: numbers, times and booleans a spreadsheet must read as
#: such (an amount is never text to escape).
_CSV_PLAIN = frozenset({"at", "amount", "superseded"})


def _cell(value: Any) -> Any:
    """A text cell a spreadsheet shows as text: ``'`` before a formula-starting character."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write_file(path: str | Path, write: Callable[[TextIO], None],
                newline: str | None = None) -> Path:
    """Open ``path`` for UTF-8 text, let ``write`` fill it, return the path."""
    target = Path(path)
    with target.open("w", encoding="utf-8", newline=newline) as fh:
        write(fh)
    return target


def _versions(policy: Any) -> dict[str, Any]:
    """For a policy with versions in force by date (docs/versions.md): each version's
    fingerprint, the one its decisions carry, and its dates; nothing for another policy."""
    if not has_versions(policy):
        return {}
    return {"versions": [
        {"version": v.version, "fingerprint": v.fingerprint(),
         "effective_from": v.effective_from.isoformat() if v.effective_from else None,
         "effective_until": v.effective_until.isoformat() if v.effective_until else None}
        for v in policy.versions]}
