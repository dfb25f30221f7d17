"""HTML: the self-contained report page (tables, charts as embedded PNG, a filter box; no
external resources), the compact view Jupyter shows for a report, and the small table
helpers explanations use for their own HTML."""

from __future__ import annotations

import html
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..models.decisions import Decision
from ._charts import deductions_chart, violations_chart
from ._format import fmt_at
from ._payroll import money, money_totals, payroll_rows
from ._payroll import months as report_months
from ._summary import summary_rows

if TYPE_CHECKING:
    from ._data import ReportData


def escape(value: Any) -> str:
    """Text for HTML (None as empty)."""
    return html.escape("" if value is None else str(value))


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "pk",
          table_id: str | None = None) -> str:
    """A table with a header row; every cell escaped."""
    ident = f" id='{table_id}'" if table_id else ""
    out = [f"<table class='{cls}'{ident}><thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    """A two-column table: one ``key | value`` row each."""
    return "<table class='pk kv'><tbody>" + "".join(
        f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows) + "</tbody></table>"


_CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif}
header{background:#0f172a;color:#f8fafc;padding:28px 40px 22px}
header .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:#93c5fd}
header h1{margin:4px 0 6px;font-size:26px;font-weight:650}
header p{margin:0;color:#cbd5e1}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
padding:8px 40px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:var(--accent);text-decoration:none;font-weight:550}
main{max-width:1280px;margin:0 auto;padding:20px 40px 60px}
section{margin-top:28px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:18px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.card .n{font-size:24px;font-weight:650}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.card.warn .n{color:#b45309}.card.bad .n{color:#b91c1c}.card.wide{grid-column:span 2}
.charts{display:grid;grid-template-columns:1fr;gap:16px}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:12px;margin-top:6px}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:10px}
table.pk{border-collapse:collapse;width:100%;font-size:13px}
table.pk th{background:#f1f5f9;text-align:left;font-weight:600;position:sticky;top:0}
table.pk th,table.pk td{padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
table.pk tr:hover td{background:#f8fafc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.id,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
td.when,td.nowrap{white-space:nowrap}
td.id{font-size:11px}
.clip{max-width:120px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.msg{min-width:280px}
.badge+div,div>.badge{margin-top:3px}
.zh{color:var(--muted);font-size:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:11px;font-weight:600;
white-space:nowrap}
.k-violation,.s-high{background:#fee2e2;color:#991b1b}.s-critical{background:#7f1d1d;color:#fff}
.k-deduction,.k-fine{background:#fef3c7;color:#92400e}.k-sanction{background:#fce7f3;color:#9d174d}
.k-escalation{background:#ede9fe;color:#5b21b6}.k-obligation,.k-warning{background:#e0f2fe;
color:#075985}.k-kpi{background:#dcfce7;color:#166534}.s-info{background:#f1f5f9;color:#475569}
.s-low{background:#e0f2fe;color:#075985}.s-medium{background:#fef3c7;color:#92400e}
.filter{margin:0 0 10px;padding:7px 10px;width:min(420px,100%);border:1px solid #cbd5e1;
border-radius:8px;font:inherit}
.note{color:var(--muted);font-size:12px}
tr.total td{font-weight:650;background:#f8fafc}
table.payroll th{max-width:120px;white-space:normal}
table.payroll td,table.payroll th{padding:6px 8px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:20px}
"""

_FILTER_JS = """
document.querySelectorAll('input.filter').forEach(function(box){
  var rows=document.querySelectorAll('#'+box.dataset.table+' tbody tr');
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});
  });
});
"""


def _badge(prefix: str, value: str) -> str:
    return f"<span class='badge {prefix}-{escape(value)}'>{escape(value)}</span>"


def _cards(report: ReportData, decisions: Sequence[Decision] | None = None) -> str:
    c = report.counts
    shown = report.decisions if decisions is None else decisions
    violations = sum(1 for d in shown if d.kind == "violation")
    totals = money_totals(report.effective(), lambda d: d.currency or "")
    money_text = " + ".join(f"{money(v)} {k}".strip() for k, v in sorted(totals.items())) or "0"
    items = [("records read", c.read, ""), ("valid", c.valid, ""),
             ("duplicates", c.duplicates, "warn" if c.duplicates else ""),
             ("quarantined", c.quarantined, "bad" if c.quarantined else ""),
             ("decisions made", c.decisions, ""), ("standing", len(report.decisions), ""),
             ("violations", violations,
                                              "bad" if violations else ""),
             ("deductions + fines", money_text, "wide")]
    if c.after_until:
        items.insert(4, ("after horizon", c.after_until, "warn"))
    return "<div class='cards'>" + "".join(
        f"<div class='card {cls}'><div class='n'>{escape(v)}</div>"
        f"<div class='l'>{escape(label)}</div></div>"
        for label, v, cls in items) + "</div>"


def _summary_html(report: ReportData, decisions: Sequence[Decision] | None = None) -> str:
    rows = summary_rows(report, ("policy", "rule", "kind"), decisions)
    if not rows:
        return "<p class='note'>No decisions.</p>"
    titles = {(p.id, s.id): s.title for p in report.policies for s in p.specs}
    out = ["<div class='tablewrap'><table class='pk' id='pk-summary'><thead><tr><th>policy</th>"
           "<th>rule</th><th>title</th><th>kind</th><th class='num'>decisions</th>"
           "<th class='num'>final</th><th class='num'>subjects</th><th class='num'>amount</th>"
           "</tr></thead><tbody>"]
    for r in rows:
        out.append(
            f"<tr><td>{escape(r['policy'])}</td><td>{escape(r['rule'])}</td>"
            f"<td>{escape(titles.get((r['policy'], r['rule']), ''))}</td>"
            f"<td>{_badge('k', r['kind'])}</td><td class='num'>{r['decisions']}</td>"
            f"<td class='num'>{r['final']}</td><td class='num'>{r['subjects']}</td>"
            f"<td class='num'>{escape(r['amount'] if r['amount'] is not None else '')}</td></tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _payroll_html(report: ReportData, month: str) -> str:
    cols, rows = payroll_rows(report, month)
    head = ["employee", "role", "currency", "base salary", *cols, "total", "net"]
    out = [f"<h3>{escape(month)}</h3><div class='tablewrap'><table class='pk payroll'><thead><tr>"]
    out += [f"<th class='{'num' if i >= 3 else ''}'>{escape(h)}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        cells = [f"<td>{escape(r['employee_id'])}</td><td>{escape(r['role'] or '')}</td>"
                 f"<td>{escape(r['currency'])}</td>"]
        for key in ("base_salary", *cols, "total", "net"):
            value = r[key]
            if isinstance(value, Decimal):
                sums[key] += value
            cells.append(f"<td class='num'>{escape('' if value is None else value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("<tr class='total'><td>total</td><td></td><td></td>" + "".join(
        f"<td class='num'>{escape(money(sums[k]))}</td>"
        for k in ("base_salary", *cols, "total", "net")) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


_DECISION_HEAD = ("<thead><tr><th>at</th><th>policy · rule</th><th>kind</th><th>subject</th>"
                  "<th class='num'>amount</th><th>status</th><th>message</th>"
                  "<th>id · evidence</th></tr></thead>")


def _decision_table(report: ReportData, decisions: Sequence[Decision],
                    table_id: str | None = None) -> str:
    """The decisions table: time, policy and rule, kind and severity, subject, money,
    status, both messages, id and evidence."""
    ident = f" id='{table_id}'" if table_id else ""
    out = [f"<table class='pk'{ident}>{_DECISION_HEAD}<tbody>"]
    for d in decisions:
        amount = f"{d.amount} {d.currency}" if d.amount is not None else ""
        status = report.status(d)
        when = d.at.astimezone(report.tz).strftime("%Y-%m-%d %H:%M")
        evidence = ", ".join(d.evidence[:6]) + ("…" if len(d.evidence) > 6 else "")
        out.append(
            f"<tr id='{escape(d.id)}'><td class='when'>{escape(when)}</td>"
            f"<td>{escape(d.policy)}<div class='zh'>{escape(d.rule)}"
            f"{escape(f' ({d.part})' if d.part else '')} · "
            f"{escape(d.clause)}</div></td>"
            f"<td>{_badge('k', d.kind)}<div>{_badge('s', d.severity)}</div></td>"
            f"<td class='nowrap'>{escape(d.subject.kind)} <b>{escape(d.subject.id)}</b></td>"
            f"<td class='num'>{escape(amount)}</td><td>{escape(status)}</td>"
            f"<td class='msg'>{escape(d.message)}<div class='zh'>{escape(d.message_zh)}</div></td>"
            f"<td class='id'><div class='clip' title='{escape(d.id)}'>{escape(d.id)}</div>"
            f"<div class='zh clip' title='{escape(evidence)}'>{escape(evidence)}</div></td></tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _quarantine_html(report: ReportData, limit: int) -> str:
    if not report.quarantine:
        return "<p class='note'>No invalid records: every record validated.</p>"
    rows = [[f"{q.unit} {q.line}" if q.line is not None else "", q.event_id or "", q.error,
             q.record] for q in report.quarantine[:limit]]
    more = len(report.quarantine) - limit
    return ("<div class='tablewrap'>"
            + table(["where", "event id", "problem", "record"], rows, table_id="pk-quarantine")
            + "</div>" + (f"<p class='note'>… and {more} more.</p>" if more > 0 else ""))


def _policies_html(report: ReportData) -> str:
    rows = [[p.id, p.version, p.title, p.title_zh, p.clause, len(p.specs), p.fingerprint()]
            for p in report.policies]
    return "<div class='tablewrap'>" + table(
        ["policy", "version", "title", "標題", "clause", "rules", "fingerprint"], rows,
        table_id="pk-policies") + "</div>"


def _provenance_html(report: ReportData, trail: bool) -> str:
    """The provenance as JSON a program can read back (``#pk-provenance``)."""
    meta = {**report.provenance, "view": "trail" if trail else "standing"}
    text = json.dumps(meta, ensure_ascii=False).replace("</", "<\\/")
    return f"<script type='application/json' id='pk-provenance'>{text}</script>"


def render_report(report: ReportData, *, max_rows: int = 5000, trail: bool = False) -> str:
    """The self-contained report page; see :meth:`AuditReport.to_html`."""
    c = report.counts
    view = report.trail if trail else report.decisions
    prov = report.provenance
    horizon = report.horizon
    events = list(report.events.values())
    span = (f"events {fmt_at(events[0].at, report.tz)} → {fmt_at(events[-1].at, report.tz)}"
            if events else "no events")
    sub = " · ".join([
        f"{len(report.policies)} policies", span,
        f"horizon {fmt_at(horizon, report.tz)}" if horizon else "no horizon",
        f"backend {report.backend}", f"policykit {prov['policykit_version']}"])
    charts = [
        (violations_chart(report, decisions=report.trail if trail else report.decisions),
         "Violations per day (or week) stacked by policy."),
        (deductions_chart(report), "Deductions and fines per employee, final decisions only, "
                                    "stacked by rule."),
    ]
    chart_html = "".join(
        f"<figure><img alt='{escape(ch.title)}' "
        f"src='{ch.data_uri()}'><figcaption>{escape(cap)}</figcaption></figure>"
        for ch, cap in charts)
    months = report_months(report)
    payroll = "".join(_payroll_html(report, m) for m in months) or \
        "<p class='note'>No deductions or fines.</p>"
    shown = view[:max_rows]
    cut = (f"<p class='note'>Showing the first {max_rows} of {len(view)} decisions; "
           "the CSV export has them all.</p>" if len(view) > max_rows else "")
    if trail:
        heading = f"Decisions: the full trail ({len(view)})"
        what = ("Every decision made, each with its status: final, provisional (a running "
                "figure) or superseded (replaced by a later decision).")
    else:
        heading = f"Decisions that stand ({len(view)})"
        what = (f"Final decisions no later decision supersedes; {len(report.trail)} were "
                "made in all (the trail, with provisional and superseded ones, is "
                "<code>to_html(trail=True)</code>).")
    name = "events" if report.source.startswith("<") else Path(report.source).name
    title = f"policykit audit — {name}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><div class='brand'>policykit audit</div><h1>{escape(name)}</h1>"
        f"<p>{escape(sub)}</p></header>",
        "<nav><a href='#overview'>Overview</a><a href='#charts'>Charts</a>"
        "<a href='#summary'>Summary</a><a href='#payroll'>Payroll</a>"
        "<a href='#decisions'>Decisions</a><a href='#quarantine'>Quarantine</a>"
        "<a href='#policies'>Policies</a></nav><main>",
        f"<section id='overview'><h2>Overview</h2>{_cards(report, view)}"
        f"<p class='note'>{escape(str(c))}.</p></section>",
        f"<section id='charts'><h2>Charts</h2><div class='charts'>{chart_html}</div></section>",
        "<section id='summary'><h2>Summary by policy, rule and kind</h2>"
        f"{_summary_html(report, view)}"
        "</section>",
        "<section id='payroll'><h2>Payroll</h2><p class='note'>Base salary from the latest "
        "employee profile by month end; final, non-replaced deductions and fines; amounts "
        f"rounded half-up to the cent.</p>{payroll}</section>",
        f"<section id='decisions'><h2>{escape(heading)}</h2><p class='note'>{what}</p>"
        "<input class='filter' data-table='pk-decisions' placeholder='Filter: employee, "
        "policy, kind, text…' aria-label='filter decisions'>"
        f"{cut}<div class='tablewrap'>{_decision_table(report, shown, 'pk-decisions')}</div>"
        "</section>",
        f"<section id='quarantine'><h2>Quarantined records ({c.quarantined})</h2>"
        f"{_quarantine_html(report, 1000)}</section>",
        f"<section id='policies'><h2>Policies</h2>{_policies_html(report)}</section>",
        "</main><footer>Generated by policykit "
        f"{escape(prov['policykit_version'])} from event time only; decision ids are "
        "deterministic (same events and policies, same ids). Policy set fingerprint "
        f"<code id='pk-fingerprint'>{escape(prov['policy_set_fingerprint'])}</code>; "
        f"view: {'the full trail' if trail else 'what stands'}.</footer>",
        _provenance_html(report, trail),
        f"<script>{_FILTER_JS}</script></body></html>",
    ]
    return "".join(parts)


_NB_CSS = ("<style>.pk-report .cards{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}"
           ".pk-report .card{border:1px solid #e5e7eb;border-radius:8px;padding:6px 12px}"
           ".pk-report .n{font-size:18px;font-weight:650}.pk-report .l{font-size:11px;"
           "color:#6b7280;text-transform:uppercase}.pk-report .card.bad .n{color:#b91c1c}"
           ".pk-report .card.warn .n{color:#b45309}.pk-report .zh{color:#6b7280;font-size:11px}"
           ".pk-report table.pk td,.pk-report table.pk th{text-align:left;vertical-align:top}"
           ".pk-report .badge{padding:0 6px;border-radius:9px;font-size:11px}"
           ".pk-report .k-violation,.pk-report .s-high{background:#fee2e2;color:#991b1b}"
           ".pk-report .k-deduction,.pk-report .k-fine{background:#fef3c7;color:#92400e}"
           "</style>")


def _policy_overview_html(report: ReportData) -> str:
    """One row per policy: decisions, violations, the other kinds, money (final)."""
    by_policy: dict[str, Counter[str]] = defaultdict(Counter)
    for d in report.decisions:
        by_policy[d.policy][d.kind] += 1
    totals = money_totals(report.effective(), lambda d: d.policy)
    if not by_policy:
        return "<p class='note'>No decisions.</p>"
    order = [p.id for p in report.policies if p.id in by_policy]
    rows = []
    for pid in order:
        kinds = by_policy[pid]
        other = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if k != "violation")
        rows.append([pid, sum(kinds.values()), kinds.get("violation", 0), other,
                     money(totals[pid]) if pid in totals else ""])
    return table(["policy", "decisions", "violations", "other kinds", "amount (final)"], rows)


def render_notebook(report: ReportData, rows: int = 10) -> str:
    """The compact view Jupyter shows for a report."""
    horizon = fmt_at(report.horizon, report.tz) if report.horizon else "none"
    parts = [_NB_CSS, "<div class='pk-report'>",
             f"<b>Audit of {escape(report.source)}</b> — {len(report.policies)} policies, "
             f"horizon {escape(horizon)}",
             _cards(report), "<h4>By policy</h4>",
             f"<div style='overflow-x:auto'>{_policy_overview_html(report)}</div>"]
    if report.decisions:
        parts.append(f"<h4>First {min(rows, len(report.decisions))} of "
                     f"{len(report.decisions)} decisions that stand "
                     f"({len(report.trail)} made)</h4>")
        parts.append("<div style='overflow-x:auto'>"
                     f"{_decision_table(report, report.decisions[:rows])}</div>")
    if report.quarantine:
        parts.append(f"<h4>Quarantined records ({len(report.quarantine)})</h4>")
        parts.append(_quarantine_html(report, 5))
    parts.append("<p class='zh'>More: <code>report.to_pandas()</code>, <code>.summary()</code>, "
                 "<code>.payroll(month)</code>, <code>.explain(id)</code>, <code>.why_not(subject,"
                 " policy, rule)</code>, <code>.violations_chart()</code>, "
                 "<code>.deductions_chart()</code>, <code>.to_html(path)</code>.</p></div>")
    return "".join(parts)
