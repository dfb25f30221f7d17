"""Charts: violations over time and money per employee as matplotlib figures, built without
pyplot so audits never touch the global figure registry or the interactive backend.
matplotlib is imported only when a chart is drawn."""

from __future__ import annotations

import base64
import io
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .._optional import optional_import
from ..models.decisions import Decision
from ._format import natural
from ._payroll import employee_money, money

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from ._data import ReportData

_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
            "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#9333ea"]


class Chart:
    """A matplotlib figure that shows itself in Jupyter (``_repr_png_``) without pyplot, so
    audits never touch the global figure registry or the interactive backend."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure

    def to_png(self, dpi: int = 110) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def to_svg(self) -> str:
        buf = io.StringIO()
        self.figure.savefig(buf, format="svg")
        return buf.getvalue()

    def data_uri(self, dpi: int = 110) -> str:
        return "data:image/png;base64," + base64.b64encode(self.to_png(dpi)).decode("ascii")

    def savefig(self, path: str | Path, **kwargs: Any) -> None:
        self.figure.savefig(path, **kwargs)

    def _repr_png_(self) -> bytes:
        return self.to_png()

    @property
    def title(self) -> str:
        axes = self.figure.get_axes()
        return axes[0].get_title(loc="left") if axes else ""

    def __repr__(self) -> str:
        return f"Chart({self.title!r})"


def violations_chart(report: ReportData, kinds: Sequence[str] = ("violation",),
                     freq: Literal["auto", "D", "W", "M"] = "auto",
                     decisions: Sequence[Decision] | None = None) -> Chart:
    """See :meth:`AuditReport.violations_chart`."""
    fig, ax = _new_figure(9.0, 3.8)
    title = "Violations over time by policy"
    chosen = [d for d in (report.decisions if decisions is None else decisions)
              if d.kind in kinds]
    if not chosen:
        return _empty_chart(fig, ax, title, "No violations")
    days = [d.at.astimezone(report.tz).date() for d in chosen]
    span = (max(days) - min(days)).days
    if freq == "auto":
        freq = "D" if span <= 62 else "W" if span <= 400 else "M"

    def bucket(day: date) -> date:
        if freq == "W":
            return day - timedelta(days=day.weekday())
        if freq == "M":
            return day.replace(day=1)
        return day

    counts: dict[str, Counter[date]] = defaultdict(Counter)
    for d, day in zip(chosen, days, strict=True):
        counts[d.policy][bucket(day)] += 1
    buckets = sorted({b for c in counts.values() for b in c})
    first, last = buckets[0], buckets[-1]
    step = {"D": 1, "W": 7}.get(freq)
    if step is not None:
        axis = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]
    else:
        axis = buckets
    positions = list(range(len(axis)))
    bottom = [0] * len(axis)
    order = [p.id for p in report.policies if p.id in counts] + \
        sorted(set(counts) - set(report.policies.ids))
    for i, pid in enumerate(order):
        heights = [counts[pid].get(b, 0) for b in axis]
        ax.bar(positions, heights, bottom=bottom, label=pid, width=0.8,
               color=_PALETTE[i % len(_PALETTE)])
        bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
    fmt = {"D": "%m-%d", "W": "wk %m-%d", "M": "%Y-%m"}[freq]
    every = max(1, len(axis) // 16)
    ax.set_xticks(positions[::every], [b.strftime(fmt) for b in axis][::every],
                  rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("decisions")
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return Chart(fig)


def deductions_chart(report: ReportData, month: str | None = None, top: int = 25) -> Chart:
    """See :meth:`AuditReport.deductions_chart`."""
    title = "Deductions and fines by employee" + (f", {month}" if month else "")
    sums, currencies = employee_money(report.effective(), report.tz, month)
    currency = next(iter(currencies.values()), "")
    people = sorted(sums, key=lambda e: (-sum(sums[e].values()), natural(e)))[:top]
    fig, ax = _new_figure(9.0, max(2.6, 0.34 * len(people) + 1.3))
    if not people:
        return _empty_chart(fig, ax, title, "No deductions or fines")
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.8)
    columns = sorted({c for per in sums.values() for c in per}, key=natural)
    people = people[::-1]  # largest on top
    left = [0.0] * len(people)
    for i, col in enumerate(columns):
        # Decimal -> float only for drawing bar lengths; every figure shown is Decimal.
        widths = [float(sums[e].get(col, Decimal(0))) for e in people]
        ax.barh(people, widths, left=left, label=col, color=_PALETTE[i % len(_PALETTE)],
                height=0.7)
        left = [a + b for a, b in zip(left, widths, strict=True)]
    for y, e in enumerate(people):
        total = money(sum(sums[e].values(), Decimal(0)))
        ax.text(left[y], y, f" {total}", va="center", fontsize=8, color="#374151")
    ax.set_xlabel(f"amount ({currency})" if currency else "amount")
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.legend(loc="lower right", frameon=False, fontsize=8)
    ax.margins(x=0.12)
    return Chart(fig)


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    with optional_import("audit", "charts and the HTML report"):
        from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _empty_chart(fig: Figure, ax: Any, title: str, text: str) -> Chart:
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    ax.set_xticks([])
    ax.set_yticks([])
    return Chart(fig)
