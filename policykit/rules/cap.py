"""The *cap* shape: a limit on all of an employee's money in a period, across policies.

Wage rules limit what may be taken from one month's wage *in total*: PRC rules cap the
monthly deductions for an employee's losses at 20% of the month's wage, and what is paid
after them may not fall below the local minimum wage. A tariff sees only its own items, so
this shape reads every final money decision (kind ``deduction`` or ``fine`` with an
amount) of **every policy in the set** — lateness deductions and complaint fines alike —
per employee and calendar ``period``, and when the period closes compares their total
with the employee's limit:

- ``cap_rate``: the total may not exceed this share of the base salary (rounded half-up
  to the cent);
- ``wage_floor``: the base salary minus the total may not fall below this amount;
- both given: the lower limit holds. Neither: the rule does nothing (it is off).

Over the limit, one ``reduced`` decision (kind ``deduction``, a **negative amount**: minus
the excess) per employee and period, at the period's last instant, so every sum over the
standing decisions — the payroll view, each export, a total in a spreadsheet — gives the
capped figure. Its details say why and by how much: the base salary, cap, floor, limit,
the total before and after, and ``reduced``: which decisions were reduced, by how much,
and what remains charged. The excess is taken from the **latest** money first (by
decision time, then id), down to zero each before the next: the charges that came first
fit under the limit, the ones that pushed the total over it are waived. Amounts are
already in cents, so the reduction is exact, no rounding beyond the cap's own.

The base salary is the employee's latest ``employee.profile`` when the period closes; an
employee without one has no limit to apply (nothing is reduced). Money in a currency other
than the profile's is neither added nor reduced. ``policies`` narrows the money read to
some policies (``[lateness-deduction]``: the cap on lateness deductions alone).

Decisions made at the period's last instant by a policy listed *after* this rule's policy
are not seen (the pack's month-end lateness total comes from the same policy, before it).
Money decided for a period after it closed (a revision by a late event) is not capped
again. ``policykit.distributed`` cannot split a set holding an active cap (its shards run
policies apart) and refuses it.

Example (policykit/pack/lateness-deduction.yaml R6)::

    - shape: cap
      id: R6
      period: month
      cap_rate: $monthly_cap_rate     # e.g. 0.2
      wage_floor: $wage_floor         # e.g. 2490.00
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Literal, TypedDict, cast

from pydantic import Field, model_validator

from ..calendar import MonthsUnit
from ..models.decisions import Decision, Subject
from ..models.events import EventBase
from ._base import Amount, Message, PolicyInfo, RuleContext, RuleRuntime, RuleSpec, local_iso

__all__ = ["CapSpec"]

_CENT = Decimal("0.01")
_ZERO = Decimal(0)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


class CapSpec(RuleSpec):
    """A limit on an employee's deductions and fines together per period; see the module
    docstring."""

    shape: Literal["cap"] = "cap"
    period: MonthsUnit = "month"
    """The calendar period the money is added up in."""
    cap_rate: Amount | None = Field(default=None, ge=0, le=1)
    """The period's money may not exceed this share of the base salary; none: no cap."""
    wage_floor: Amount | None = Field(default=None, ge=0)
    """Base salary minus the period's money may not fall below this; none: no floor."""
    kinds: tuple[Literal["deduction", "fine"], ...] = ("deduction", "fine")
    """The decision kinds that count as money taken from the wage."""
    policies: tuple[str, ...] = ()
    """Only money of these policies; empty (default): every policy in the set. An id no
    policy of the set has matches nothing."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "base_salary", "cap", "cap_rate", "count", "currency", "limit", "period",
        "period_end", "period_start", "reduced", "reduction", "total", "total_before",
        "wage_floor",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "reduced": Message(
            en="{rule}: deductions and fines of {subject} in {period} reduced by {reduction} "
               "{currency} to the limit of {limit} (from {total_before} to {total})",
            zh="{rule}：{subject} 於 {period} 的扣款及罰款合計 {total_before}，超過上限 {limit}，"
               "減免 {reduction} {currency}，實扣 {total}"),
    }

    @model_validator(mode="after")
    def _valid(self) -> CapSpec:
        if not self.kinds:
            raise ValueError("kinds is empty: name deduction, fine or both")
        return self

    @property
    def active(self) -> bool:
        """False when neither a cap nor a floor is set: the rule then does nothing."""
        return self.cap_rate is not None or self.wage_floor is not None

    def reads_money(self) -> bool:
        return self.active

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _CapRuntime(self, policy)


# One money decision: ``[policy, rule, amount text, currency, UTC time text, evidence]``.
# A list, not a record, because that is its snapshot form; its fields are read by position.
_Money = list[Any]


class _Book(TypedDict):
    """One open period: its bounds and, by employee id, money decision id -> its money."""

    start: datetime
    end: datetime
    employees: dict[str, dict[str, _Money]]


class _State(TypedDict):
    """``_CapRuntime.state`` (a plain dict at run time; the type is for mypy only)."""

    periods: dict[str, _Book]


class _CapRuntime(RuleRuntime):
    """State: ``periods`` label -> ``{start, end, employees}``, employees by id -> money
    decision id -> ``[policy, rule, amount, currency, UTC time, evidence]``. A period's
    state is dropped when it closes."""

    spec: CapSpec

    def __init__(self, spec: CapSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"periods": {}}
        self.state = cast(dict[str, Any], state)
        self._kinds = frozenset(spec.kinds)
        self._policies = frozenset(spec.policies)

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        return None  # reads decisions only

    def on_decision(self, decision: Decision, ctx: RuleContext) -> None:
        if decision.status != "final" or decision.subject.kind != "employee":
            return
        periods = cast(_State, self.state)["periods"]
        sid = decision.subject.id
        for held in periods.values():  # a revision replaces what it supersedes
            money = held["employees"].get(sid)
            if money:
                for old in decision.supersedes:
                    money.pop(old, None)
        if (decision.kind not in self._kinds or decision.amount is None
                or (self._policies and decision.policy not in self._policies)):
            return
        cal = ctx.calendar
        label = cal.period_key(decision.at, self.spec.period)
        book = periods.get(label)
        if book is None:
            start, end = cal.period(decision.at, self.spec.period)
            book = periods[label] = {"start": start, "end": end, "employees": {}}
            ctx.schedule(end, label)
        book["employees"].setdefault(sid, {})[decision.id] = [
            decision.policy, decision.rule, str(decision.amount), decision.currency,
            decision.at.astimezone(UTC).isoformat(), list(decision.evidence)]

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        book = cast(_State, self.state)["periods"].pop(key, None)
        if book is None or not self.spec.active:
            # Inactive: a policy with versions whose version in force at the period's end
            # has no cap (docs/versions.md); the earlier one booked the money.
            return
        for sid, money in book["employees"].items():
            if money:
                self._settle(sid, money, key, book, due, ctx)

    def _settle(self, sid: str, money: dict[str, _Money], label: str,
                book: _Book, at: datetime, ctx: RuleContext) -> None:
        s = self.spec
        profile = ctx.directory.get(sid)
        if profile is None:
            return  # no base salary: no limit to apply
        salary = Decimal(profile.base_salary)
        currency = profile.currency
        items = sorted(((at_, did, Decimal(amount), policy, rule, ev)
                        for did, (policy, rule, amount, cur, at_, ev) in money.items()
                        if cur == currency), reverse=True)  # latest first
        total = sum((x[2] for x in items), _ZERO)
        limits = []
        details: dict[str, Any] = {"period": label,
                                   "period_start": local_iso(ctx, book["start"]),
                                   "period_end": local_iso(ctx, book["end"]),
                                   "base_salary": str(_cents(salary))}
        if s.cap_rate is not None:
            cap = _cents(salary * s.cap_rate)
            details.update(cap_rate=str(s.cap_rate), cap=str(cap))
            limits.append(cap)
        if s.wage_floor is not None:
            details["wage_floor"] = str(_cents(s.wage_floor))
            limits.append(max(_cents(salary - s.wage_floor), _ZERO))
        limit = min(limits)
        if total <= limit:
            return
        excess = total - limit
        left = excess
        reduced = []
        for _at, did, amount, policy, rule, _ev in items:
            if left <= 0:
                break
            cut = min(amount, left)
            left -= cut
            reduced.append({"decision": did, "policy": policy, "rule": rule,
                            "amount": str(amount), "reduced_by": str(cut),
                            "charged": str(amount - cut)})
        details.update(limit=str(limit), total_before=str(total), total=str(limit),
                       reduction=str(excess), count=len(items), reduced=reduced)
        # The events behind the money (the decisions reduced are named in ``reduced``).
        evidence = [e for x in reversed(items) for e in x[5]] + [profile.id]
        ctx.emit(s, "reduced", kind="deduction", subject=Subject(kind="employee", id=sid),
                 at=at, evidence=evidence, key=label, details=details, amount=-excess,
                 currency=currency)
