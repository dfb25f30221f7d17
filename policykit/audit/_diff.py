"""The impact of a rulebook change before it is made: one log audited under the policies in
force (``old``) and under a proposal (``new``), and what differs — the decisions only one
side makes, those whose kind, outcome or amount changed, and the money per employee and
month under each side.

Decisions are matched by policy, rule, subject and *case*, never by id: an id includes the
policy's fingerprint, so every decision of a changed policy has a new one. A case is what a
rule judges once: a deadline's key and opening, a recurrence's window (and occurrence), a
tariff's period or item, a gap's start, a breach's event; a ladder's step is about the case
of the decision that triggered it (the step reached is compared, as an outcome is). Only
decisions that stand count (final and not superseded: :attr:`AuditReport.decisions`)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from html import escape
from typing import IO, TYPE_CHECKING, Any, Literal

from .._optional import optional_import
from ..engine import Engine, parse_instant, zone
from ..errors import EventError, ParameterError
from ..models.decisions import Decision, Subject
from ..models.events import EventBase
from ..policy import PolicySet
from ..policyfile import PolicyLike, resolve_policies
from ._audit import _reading, run_audit
from ._format import natural
from ._payroll import is_money, money, month_of
from ._quarantine import QuarantinedRecord, validate
from ._readers import read_records
from ._report import AuditReport, _cell

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

__all__ = ["DecisionChange", "DiffReport", "MoneyChange", "diff"]

Change = Literal["removed", "added", "changed"]
"""``removed``: only the old policies make the decision; ``added``: only the new ones;
``changed``: both, with another kind, outcome or amount."""

#: Details that name the case a decision is about (see the module docstring), in the order
#: they are shown. Parameters (a deadline's length, a ladder's window) never enter a case.
CASE_FIELDS = ("key", "opened_at", "period", "window", "area", "occurrence", "item",
               "event", "since", "breach_event")

#: Columns of :meth:`DiffReport.rows` (JSON Lines and CSV), decisions and money alike.
COLUMNS = ("record", "change", "policy", "rule", "subject_kind", "subject_id", "case",
           "month", "currency", "old_kind", "new_kind", "old_outcome", "new_outcome",
           "old_amount", "new_amount", "difference", "old_id", "new_id", "old_at", "new_at")
_MONEY_COLUMNS = frozenset({"old_amount", "new_amount", "difference"})


def diff(
    source: Any,
    old: PolicyLike,
    new: PolicyLike,
    until: datetime | date | str | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    format: str | None = None,
    assume_tz: str | tzinfo | None = None,
    encoding: str | None = None,
) -> DiffReport:
    """Audit ``source`` under the ``old`` and the ``new`` policies and compare.

    ``old`` and ``new`` are what :func:`policykit.audit` accepts as ``policy`` (a policy
    file, a :class:`Policy` or :class:`PolicySet`, a standard policy's id, None for the
    standard pack); every other argument is :func:`policykit.audit`'s. The records are read
    and validated once, then run through the one batch pipeline under each side; a date
    ``until`` must start at the same instant under both sides' calendars."""
    before, after = resolve_policies(old), resolve_policies(new)
    tz = zone(assume_tz)
    horizon = _horizon(until, before, after, tz) if until is not None else None
    engines = Engine(before, backend=backend), Engine(after, backend=backend)
    reader = read_records(source, format=format, encoding=encoding)
    once = _ReadOnce()
    old_report = run_audit(engines[0], reader, once.first(_reading(reader, progress)),
                           horizon, tz, progress=progress, parse=once.parse)
    new_report = run_audit(engines[1], reader, once.again(), horizon, tz,
                           progress=progress, parse=once.parse_again, log_notes=False)
    return DiffReport(old_report, new_report)


def _horizon(until: datetime | date | str, old: PolicySet, new: PolicySet,
             tz: tzinfo | None) -> datetime:
    first = parse_instant(until, policies=old, assume_tz=tz)
    second = parse_instant(until, policies=new, assume_tz=tz)
    if first != second:
        raise ParameterError("until", until, "a date-time with offset: the old and new "
                             f"policies' calendars start that day at different instants "
                             f"({first.isoformat()}, {second.isoformat()})")
    return first


class _ReadOnce:
    """Records read and validated on the first run, handed to the second as they came out:
    the events themselves, and each bad record with its error, so the log is parsed once and
    both sides quarantine the same records at the same lines."""

    def __init__(self) -> None:
        self._records: list[tuple[int | None, Any]] = []
        self._failed: dict[int, EventError] = {}
        self._at = -1

    def first(self, records: Iterable[tuple[int | None, Any]]
              ) -> Iterator[tuple[int | None, Any]]:
        for line, raw in records:
            self._records.append((line, raw))
            yield line, raw

    def parse(self, raw: Any, label: str, line: int | None) -> EventBase:
        # The pipeline parses each record as it reads it: the last one kept is this one.
        at = len(self._records) - 1
        try:
            event = validate(raw, label, line)
        except EventError as exc:
            self._failed[at] = exc
            raise
        self._records[at] = (line, event)
        return event

    def again(self) -> Iterator[tuple[int | None, Any]]:
        for at, record in enumerate(self._records):
            self._at = at
            yield record

    def parse_again(self, raw: Any, label: str, line: int | None) -> EventBase:
        failed = self._failed.get(self._at)
        if failed is not None:
            raise failed
        if not isinstance(raw, EventBase):  # not reached: every record was parsed once
            return validate(raw, label, line)
        return raw


# ------------------------------------------------------------------------------ the result


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


@dataclass(frozen=True)
class DecisionChange:
    """A decision only one side makes (``old`` or ``new`` is None), or one case decided
    differently by both."""

    change: Change
    policy: str
    rule: str
    subject: Subject
    case: str
    """The case as ``name=value`` pairs (e.g. ``period=2026-03``)."""
    old: Decision | None
    new: Decision | None

    @property
    def difference(self) -> Decimal | None:
        """New money minus old (a missing side or amount counts 0); None when neither
        side's decision is money."""
        if not any(d is not None and is_money(d) for d in (self.old, self.new)):
            return None
        return _amount(self.new) - _amount(self.old)

    @property
    def month(self) -> str | None:
        """The month the decision counts in (``YYYY-MM``), of the new side when it has one."""
        d = self.new or self.old
        return month_of(d, d.at.tzinfo) if d is not None else None

    def row(self) -> dict[str, Any]:
        old, new = self.old, self.new
        amount = next((d for d in (new, old) if d is not None and d.currency), None)
        return {
            "record": "decision", "change": self.change, "policy": self.policy,
            "rule": self.rule, "subject_kind": self.subject.kind,
            "subject_id": self.subject.id, "case": self.case, "month": self.month,
            "currency": amount.currency if amount is not None else None,
            "old_kind": old.kind if old else None, "new_kind": new.kind if new else None,
            "old_outcome": _outcome(old), "new_outcome": _outcome(new),
            "old_amount": old.amount if old else None,
            "new_amount": new.amount if new else None, "difference": self.difference,
            "old_id": old.id if old else None, "new_id": new.id if new else None,
            "old_at": old.at if old else None, "new_at": new.at if new else None,
        }


@dataclass(frozen=True)
class MoneyChange:
    """An employee's money (deductions and fines that stand) in one month and currency
    under each side, each summed then rounded half-up to the cent as the payroll view
    (:meth:`AuditReport.payroll`) does."""

    employee_id: str
    month: str
    currency: str
    old: Decimal
    new: Decimal

    @property
    def difference(self) -> Decimal:
        return self.new - self.old

    def row(self) -> dict[str, Any]:
        return {
            "record": "money", "change": "changed" if self.difference else "unchanged",
            "policy": None, "rule": None, "subject_kind": "employee",
            "subject_id": self.employee_id, "case": None, "month": self.month,
            "currency": self.currency, "old_kind": None, "new_kind": None,
            "old_outcome": None, "new_outcome": None, "old_amount": self.old,
            "new_amount": self.new, "difference": self.difference, "old_id": None,
            "new_id": None, "old_at": None, "new_at": None,
        }


def _amount(d: Decision | None) -> Decimal:
    return d.amount if d is not None and is_money(d) and d.amount is not None else Decimal(0)


def _outcome(d: Decision | None) -> str | None:
    """The decision's outcome, with its step for a ladder's (``sanction criticism``)."""
    if d is None:
        return None
    outcome = d.details.get("outcome")
    step = d.details.get("step")
    text = outcome if isinstance(outcome, str) else None
    return f"{text} {step}" if text is not None and isinstance(step, str) else text


_MatchKey = tuple[str, str, str, str, str]


class _Cases:
    """The case of each decision of one report (see the module docstring)."""

    def __init__(self, report: AuditReport) -> None:
        self._by_id = {d.id: d for d in report.trail}
        self._memo: dict[str, str] = {}

    def of(self, d: Decision, depth: int = 0) -> str:
        found = self._memo.get(d.id)
        if found is None:
            found = self._memo[d.id] = self._case(d, depth)
        return found

    def _case(self, d: Decision, depth: int) -> str:
        det = d.details
        trigger = self._by_id.get(det.get("trigger_decision") or "")
        if trigger is not None and depth < 8:
            # A ladder step: the trigger's id has the fingerprint in it; its case has not.
            # The step reached is the verdict (compared), not the case.
            return (f"trigger=({trigger.policy} {trigger.rule} {_outcome(trigger)} "
                    f"{self.of(trigger, depth + 1)})")
        parts = [f"{name}={_text(det[name])}" for name in CASE_FIELDS
                 if det.get(name) is not None]
        if not parts:
            parts.append("evidence=" + (",".join(d.evidence) if d.evidence
                                        else d.at.isoformat()))
        return " ".join(parts)

    def key(self, d: Decision) -> _MatchKey:
        # The part, not the rulebook rule: R2a's and R2b's decisions are different cases.
        return (d.policy, d.spec_rule, d.subject.kind, d.subject.id, self.of(d))


class DiffReport:
    """What changes when the ``old`` policies are replaced by the ``new`` ones, on one log.

    :attr:`removed`, :attr:`added`, :attr:`changed` (each a list of
    :class:`DecisionChange`), :attr:`unchanged` (a count), :attr:`money` (a
    :class:`MoneyChange` per employee, month and currency with money on either side), and
    the two audits themselves (:attr:`old`, :attr:`new`)."""

    def __init__(self, old: AuditReport, new: AuditReport) -> None:
        self.old = old
        self.new = new
        self.removed: list[DecisionChange] = []
        self.added: list[DecisionChange] = []
        self.changed: list[DecisionChange] = []
        self.unchanged = 0
        self._compare()
        self.money = _money_changes(old, new)

    def _compare(self) -> None:
        cases = _Cases(self.old), _Cases(self.new)
        groups: dict[_MatchKey, tuple[list[Decision], list[Decision]]] = defaultdict(
            lambda: ([], []))
        for side, report in enumerate((self.old, self.new)):
            for d in report.decisions:
                groups[cases[side].key(d)][side].append(d)
        for key, (olds, news) in groups.items():
            case = key[4]
            for before, after in _pairs(olds, news):
                if before is not None and after is not None and _same(before, after):
                    self.unchanged += 1
                    continue
                made = before or after
                assert made is not None
                change: Change = ("changed" if before is not None and after is not None
                                  else "removed" if before is not None else "added")
                entry = DecisionChange(change, made.policy, made.rule, made.subject, case,
                                       before, after)
                {"changed": self.changed, "removed": self.removed,
                 "added": self.added}[change].append(entry)
        for found in (self.removed, self.added, self.changed):
            found.sort(key=_order)

    # -- reading ---------------------------------------------------------------------

    @property
    def changes(self) -> list[DecisionChange]:
        """Every decision that differs: removed, added and changed, in (policy, rule,
        subject, case) order."""
        return sorted([*self.removed, *self.added, *self.changed], key=_order)

    @property
    def differs(self) -> bool:
        """True when some decision differs (money differs only through decisions)."""
        return bool(self.removed or self.added or self.changed)

    def __len__(self) -> int:
        return len(self.removed) + len(self.added) + len(self.changed)

    def __repr__(self) -> str:
        return (f"<DiffReport {self.old.source}: {len(self.removed)} removed, "
                f"{len(self.added)} added, {len(self.changed)} changed, "
                f"{self.unchanged} unchanged>")

    @property
    def quarantine(self) -> list[QuarantinedRecord]:
        """Records set aside by either side (the same bad record once)."""
        seen: set[tuple[Any, ...]] = set()
        out: list[QuarantinedRecord] = []
        for q in (*self.old.quarantine, *self.new.quarantine):
            mark = (q.line, q.event_id, q.error)
            if mark not in seen:
                seen.add(mark)
                out.append(q)
        return out

    @property
    def notes(self) -> list[str]:
        return list(self.old.notes)

    def totals(self) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
        """Per currency: the employees' money under old and new, and the difference."""
        out: dict[str, tuple[Decimal, Decimal, Decimal]] = {}
        for m in self.money:
            o, n, _d = out.get(m.currency, (Decimal(0), Decimal(0), Decimal(0)))
            out[m.currency] = (o + m.old, n + m.new, (n + m.new) - (o + m.old))
        return out

    def rows(self) -> list[dict[str, Any]]:
        """The decision changes, then the money rows, as dicts of :data:`COLUMNS`."""
        return [c.row() for c in self.changes] + [m.row() for m in self.money]

    # -- files -------------------------------------------------------------------------

    def write_jsonl(self, out: IO[str]) -> None:
        """:meth:`rows` as JSON Lines: amounts as decimal strings, times ISO-8601."""
        for row in self.rows():
            out.write(json.dumps({k: _json(v) for k, v in row.items()},
                                 ensure_ascii=False) + "\n")

    def write_csv(self, out: IO[str], *, bom: bool = False) -> None:
        """:meth:`rows` as CSV with a header; text cells a spreadsheet would run as a
        formula start with ``'``, amounts are plain decimal numbers."""
        if bom:
            out.write("\ufeff")
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in self.rows():
            writer.writerow(["" if row[c] is None else
                             _json(row[c]) if c in _MONEY_COLUMNS else _cell(_json(row[c]))
                             for c in COLUMNS])

    def to_pandas(self, table: Literal["decisions", "money"] = "decisions") -> pd.DataFrame:
        """The decision changes (``table="decisions"``) or the money per employee and month
        (``"money"``) as a DataFrame; amounts are ``Decimal`` (object dtype), never floats."""
        if table not in ("decisions", "money"):
            raise ParameterError("table", table, "'decisions' or 'money'")
        with optional_import("audit", "DiffReport.to_pandas()"):
            import pandas as pd

        rows = ([c.row() for c in self.changes] if table == "decisions"
                else [m.row() for m in self.money])
        columns = [c for c in COLUMNS if c != "record"]
        if table == "money":
            columns = ["subject_id", "month", "currency", "old_amount", "new_amount",
                       "difference"]
        frame = pd.DataFrame([{c: r[c] for c in columns} for r in rows], columns=columns)
        if table == "money":
            frame = frame.rename(columns={"subject_id": "employee_id", "old_amount": "old",
                                          "new_amount": "new"})
        for c in ("old_amount", "new_amount", "difference", "old", "new"):
            if c in frame:
                frame[c] = frame[c].astype(object)
        return frame

    # -- people --------------------------------------------------------------------------

    def summary(self) -> str:
        """One line: how many decisions differ, and how."""
        return (f"{len(self.removed)} only under old, {len(self.added)} only under new, "
                f"{len(self.changed)} changed, {self.unchanged} unchanged")

    def render(self, limit: int | None = 50) -> str:
        """The changes and the money as aligned plain-text tables (for a terminal); at most
        ``limit`` decision rows (None: all)."""
        out = [f"decisions: {self.summary()}", ""]
        changes = self.changes
        if changes:
            shown = changes if limit is None else changes[:limit]
            out += _table(("change", "policy", "rule", "subject", "case", "old", "new",
                           "difference"),
                          [(c.change, c.policy, c.rule, c.subject.id, c.case, _side(c.old),
                            _side(c.new), _signed(c.difference)) for c in shown],
                          right={7})
            if len(changes) > len(shown):
                out.append(f"... and {len(changes) - len(shown)} more (--format jsonl or csv "
                           "lists them all)")
            out.append("")
        if self.money:
            out.append("money per employee and month (deductions and fines that stand):")
            rows = [(m.employee_id, m.month, m.currency, _plain(m.old), _plain(m.new),
                     _signed(m.difference)) for m in self.money]
            rows += [("total", "", cur, _plain(o), _plain(n), _signed(d))
                     for cur, (o, n, d) in sorted(self.totals().items())]
            out += _table(("employee", "month", "currency", "old", "new", "difference"),
                          rows, right={3, 4, 5}, rule_before=len(self.money))
        else:
            out.append("money: none under either side.")
        return "\n".join(out) + "\n"

    def __str__(self) -> str:
        return self.render()

    def _repr_html_(self) -> str:
        def table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
            th = "".join(f"<th>{escape(h)}</th>" for h in head)
            body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>"
                           for r in rows)
            return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"

        parts = [f"<div class='pk-diff'><p><b>Diff</b> · {escape(self.old.source)} · "
                 f"{escape(self.summary())}</p>"]
        if self.changes:
            parts.append(table(("change", "policy", "rule", "subject", "case", "old", "new",
                                "difference"),
                               [(c.change, c.policy, c.rule, f"{c.subject.kind} {c.subject.id}",
                                 c.case, _side(c.old), _side(c.new), _signed(c.difference))
                                for c in self.changes]))
        if self.money:
            parts.append("<p>Money per employee and month</p>")
            rows = [(m.employee_id, m.month, m.currency, _plain(m.old), _plain(m.new),
                     _signed(m.difference)) for m in self.money]
            rows += [("total", "", cur, _plain(o), _plain(n), _signed(d))
                     for cur, (o, n, d) in sorted(self.totals().items())]
            parts.append(table(("employee", "month", "currency", "old", "new", "difference"),
                               rows))
        return "".join(parts) + "</div>"


def _order(c: DecisionChange) -> tuple[Any, ...]:
    return (c.policy, natural(c.rule), natural(c.subject.id), c.case, c.change)


def _same(a: Decision, b: Decision) -> bool:
    return (a.kind == b.kind and _outcome(a) == _outcome(b) and a.amount == b.amount
            and a.currency == b.currency)


def _pairs(olds: list[Decision], news: list[Decision]
           ) -> Iterator[tuple[Decision | None, Decision | None]]:
    """Decisions of one case paired: first those of the same kind and outcome, in time
    order, then the rest in time order; what is left over is one side's alone."""
    olds, news = list(olds), list(news)
    for a in list(olds):
        b = next((n for n in news if n.kind == a.kind and _outcome(n) == _outcome(a)), None)
        if b is not None:
            olds.remove(a)
            news.remove(b)
            yield a, b
    for a, b in zip(olds, news, strict=False):
        yield a, b
    rest = len(olds) - len(news)
    for a in olds[len(news):] if rest > 0 else ():
        yield a, None
    for b in news[len(olds):] if rest < 0 else ():
        yield None, b


def _money_changes(old: AuditReport, new: AuditReport) -> list[MoneyChange]:
    sums: dict[tuple[str, str, str], list[Decimal]] = defaultdict(
        lambda: [Decimal(0), Decimal(0)])
    for side, report in enumerate((old, new)):
        tz = report.tz
        for d in report.effective():
            if not is_money(d) or d.subject.kind != "employee":
                continue
            key = (d.subject.id, month_of(d, tz), d.currency or "")
            sums[key][side] += d.amount  # type: ignore[operator]
    return [MoneyChange(emp, month, cur, money(o), money(n))
            for (emp, month, cur), (o, n) in sorted(
                sums.items(), key=lambda kv: (natural(kv[0][0]), kv[0][1], kv[0][2]))]


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _plain(value: Decimal) -> str:
    return f"{value:,.2f}"


def _signed(value: Decimal | None) -> str:
    if value is None:
        return ""
    return f"{value:+,.2f}" if value else "0.00"


def _side(d: Decision | None) -> str:
    if d is None:
        return "-"
    text = f"{d.kind} {_outcome(d) or ''}".strip()
    return f"{text} {_plain(d.amount)}" if d.amount is not None else text


def _table(head: tuple[str, ...], rows: Sequence[tuple[str, ...]], *, right: set[int],
           rule_before: int | None = None) -> list[str]:
    widths = [max(len(r[i]) for r in (head, *rows)) for i in range(len(head))]

    def line(row: tuple[str, ...]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(row, widths, strict=True))).rstrip()

    rule = "  ".join("-" * w for w in widths)
    out = [line(head), rule]
    for i, row in enumerate(rows):
        if i == rule_before:
            out.append(rule)
        out.append(line(row))
    return out
