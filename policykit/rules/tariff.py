"""The *tariff* shape: counted items per period -> money, tiered.

Items are either decisions of other rules of the same policy (``decisions_of``: the late
days a lateness rule emits) or events (``events``: complaints against staff). Each item
costs a share of the employee's base salary (``basis: salary``, from the latest
``employee.profile``) or a fixed amount, by ``tiers`` over the item's number in its period
(1% per late day, 5% from the 3rd) or by a field (``amount_by``: a fine by severity), never
below ``minimum``. ``tier_mode: all`` charges every item of the period at the highest tier
reached; ``marginal`` charges each item at its own tier.

Settling:

- ``settle: period`` — after each item a ``provisional`` decision with the period's running
  total, and when the period closes the ``final`` one, whose ``supersedes`` lists that
  period's provisional ids. Optional ``cap_rate`` (a share of base salary the period's total
  may not exceed) and ``wage_floor`` (base salary minus the total not below it).
- ``settle: item`` — each item is charged on its own, final at once.

Also per period: ``limit`` — the item after the ``limit``-th in a period gives one
``over_limit`` decision (kind ``limit_kind``, plus a ``limit_fine`` of ``limit_amount`` when
that is above zero); and per item: ``each_item`` — extra decisions of those kinds (a
``violation`` and a ``sanction`` beside the fine).

Money is ``Decimal``, each item rounded half-up to the cent before summing (the rulebook
charges per late day). With ``basis: salary`` and no profile for the employee, the decision
says the salary is unknown (outcome ``salary_unknown``, no amount, the share of base salary
in ``details``) instead of guessing.

Example (lateness, policykit/pack/lateness-deduction.yaml R2)::

    - shape: tariff
      id: R2
      decisions_of: [R1]
      outcomes: [late]
      period: month
      basis: salary
      tiers: [{from: 1, rate: $base_rate}, {from: $tier_threshold, rate: $tier_rate}]
      tier_mode: $tier_mode
      kind: deduction
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..calendar import PeriodUnit, parse_duration
from ..models.decisions import Decision, DecisionKind, Subject, SubjectKind
from ..models.events import EventBase
from ._base import (
    KEY_SEP,
    Amount,
    Count,
    Match,
    Message,
    OneOrMany,
    Partition,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    SubjectRef,
    _check_field,
    check_model_path,
    event_value,
    key_part,
    keyed_by,
)
from ._base import local_iso as _iso
from ._scope import after

__all__ = ["AmountBy", "TariffSpec", "Tier", "cents"]

_CENT = Decimal("0.01")
_ZERO = Decimal(0)


def cents(value: Decimal) -> Decimal:
    """Money rounded half-up to the cent."""
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _money(value: Decimal) -> str:
    return str(cents(value))


class Tier(BaseModel):
    """From the ``from``-th item of a period on: a ``rate`` (share of base salary) or a
    fixed ``amount`` per item."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    start: Count = Field(alias="from", ge=1)
    """The item number in the period from which this tier applies."""
    rate: Amount | None = Field(default=None, ge=0, le=1)
    """A share of the base salary per item (0.01 is 1%)."""
    amount: Amount | None = Field(default=None, ge=0)
    """Or: a fixed amount per item."""

    @model_validator(mode="after")
    def _one(self) -> Tier:
        if (self.rate is None) == (self.amount is None):
            raise ValueError("a tier has exactly one of rate (share of base salary) or amount")
        return self


class AmountBy(BaseModel):
    """A fixed amount per item looked up by a field of it (``severity``; for decisions a
    path such as ``details.severity``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    field: str
    """The item's field (for decisions a path such as ``details.severity``)."""
    values: dict[str, Amount]
    """The amount by that field's value."""
    default: Amount | None = None
    """The amount for any other value; none: such items are not charged."""

    @field_validator("values")
    @classmethod
    def _non_negative(cls, v: dict[str, Decimal]) -> dict[str, Decimal]:
        if any(a < 0 for a in v.values()):
            raise ValueError("amounts must not be negative")
        return v


class TariffSpec(RuleSpec):
    """Counted items per subject and period -> money; see the module docstring."""

    shape: Literal["tariff"] = "tariff"
    decisions_of: OneOrMany[str] = ()
    """Rule ids (same policy) whose final decisions are the items."""
    outcomes: OneOrMany[str] = ()
    """Only decisions with these ``details.outcome`` values (all when empty)."""
    events: Match | None = None
    """Or: events that are the items."""
    subject: SubjectRef | None = None
    """With ``events``: who pays (default kind employee, field employee_id)."""
    period: PeriodUnit | None = "month"
    """The calendar period items are counted and settled in; none: each item on its own."""
    settle: Literal["period", "item"] = "period"
    """``period``: a running provisional total and a final one when the period closes;
    ``item``: each item final at once."""
    basis: Literal["salary", "fixed"] = "fixed"
    """``salary``: tier rates are shares of the base salary; ``fixed``: amounts."""
    tiers: tuple[Tier, ...] = ()
    """Price per item by its number in the period."""
    tier_mode: Literal["all", "marginal"] = "marginal"
    """``all``: every item of the period at the highest tier reached; ``marginal``: each item
    at its own tier."""
    amount_by: AmountBy | None = None
    """Or: a fixed amount per item looked up by one of its fields."""
    minimum: Amount | None = Field(default=None, ge=0)
    """No charged item below this amount (a complaint fine of at least 10)."""
    currency: str = Field(default="CNY", pattern=r"^[A-Z]{3}$")
    """Currency of fixed amounts (salary-based ones take the profile's)."""
    kind: Literal["deduction", "fine"] = "deduction"
    """The kind of the money decisions."""
    cap_rate: Amount | None = Field(default=None, ge=0, le=1)
    """The period's total may not exceed this share of the base salary."""
    wage_floor: Amount | None = Field(default=None, ge=0)
    """Base salary minus the period's total may not fall below this."""
    limit: Count | None = Field(default=None, ge=0)
    """The item after the ``limit``-th in a period gives an ``over_limit`` decision."""
    limit_kind: DecisionKind = "violation"
    """The kind of the ``over_limit`` decision."""
    limit_amount: Amount = Field(default=_ZERO, ge=0)
    """With ``limit``: a fine of this amount beside it, when above zero."""
    each_item: OneOrMany[DecisionKind] = ()
    """Extra decisions of these kinds for every item (a violation beside the fine)."""
    show: OneOrMany[str] = ()
    """With ``events``: event fields copied into per-item decisions' details (and so
    usable in their messages), e.g. the kind of misconduct."""
    distinct: str | None = None
    """With ``events``: a field naming the thing an item is about (a complaint's id). Later
    records of one subject with the same value are the same item and count nothing more;
    records without the field each count, as without this setting."""
    distinct_for: str = "P366D"
    """How long a ``distinct`` value is remembered after its first record."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "amount", "base_salary", "cap", "capped", "count", "currency", "item", "item_at",
        "item_type", "items", "limit", "listed_amount", "minimum", "number", "period",
        "period_end", "period_start", "rate", "salary_known", "share", "share_percent", "tier_mode",
        "tiers", "total", "uncapped_total", "wage_floor", "what",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "running": Message(
            en="{rule}: {what} for {subject} in {period} so far {amount} {currency} "
               "after {count} item(s) (provisional)",
            zh="{rule}：{subject} 於 {period} 的「{what}」目前累計 {amount} {currency}"
               "（{count} 次，暫計）"),
        "total": Message(
            en="{rule}: {what} for {subject} in {period}: {amount} {currency} for {count} "
               "item(s)",
            zh="{rule}：{subject} 於 {period} 的「{what}」共 {amount} {currency}（{count} 次）"),
        "item": Message(
            en="{rule}: {what} for {subject}: {amount} {currency}",
            zh="{rule}：{subject} 的「{what}」{amount} {currency}"),
        "salary_unknown": Message(
            en="{rule}: {what} for {subject} in {period}: {share_percent}% of base salary for "
               "{count} item(s); the amount is unknown because {subject} has no employee "
               "profile with a base salary",
            zh="{rule}：{subject} 於 {period} 的「{what}」為基本工資的 {share_percent}%"
               "（{count} 次）；無員工資料，基本工資未知，金額無法計算"),
        "over_limit": Message(
            en="{rule}: {subject} has {count} {what} in {period}, more than the limit of "
               "{limit}",
            zh="{rule}：{subject} 於 {period} 已有 {count} 次「{what}」，超過上限 {limit} 次"),
        "limit_fine": Message(
            en="{rule}: fine for {subject} exceeding {limit} {what} in {period}: {amount} "
               "{currency}",
            zh="{rule}：{subject} 於 {period} 的「{what}」超過 {limit} 次，罰款 {amount} "
               "{currency}"),
        "violation": Message(
            en="{rule}: {what} — {subject} ({item_type} at {item_at})",
            zh="{rule}：{subject} 「{what}」（{item_type}，{item_at}）"),
        "sanction": Message(
            en="{rule}: sanction for {subject} — {what} ({item_type} at {item_at})",
            zh="{rule}：{subject} 「{what}」，給予處分（{item_type}，{item_at}）"),
    }

    @field_validator("tiers")
    @classmethod
    def _sorted(cls, v: tuple[Tier, ...]) -> tuple[Tier, ...]:
        starts = [t.start for t in v]
        if len(set(starts)) != len(starts):
            raise ValueError("two tiers start at the same item number")
        return tuple(sorted(v, key=lambda t: t.start))

    def placeholders(self) -> frozenset[str]:
        names = super().placeholders()
        if self.amount_by is not None:
            names |= {self.amount_by.field.rsplit(".", 1)[-1]}
        return names

    @model_validator(mode="after")
    def _valid(self) -> TariffSpec:
        # The checks run in this order, so a spec with several faults names the first.
        self._check_source()
        self._check_charges()
        return self

    def _check_source(self) -> None:
        """What is counted: decisions of other rules, or events (with their fields)."""
        if bool(self.decisions_of) == (self.events is not None):
            raise ValueError("give exactly one of decisions_of (rule ids) or events")
        if self.id in self.decisions_of:
            raise ValueError("a tariff cannot count its own decisions")
        if self.events is not None:
            subject = self.subject or SubjectRef(kind="employee", field="employee_id")
            _check_field(self.events.type, subject.field, what="subject.field")
            if self.amount_by is not None:
                _check_field(self.events.type, self.amount_by.field, what="amount_by.field")
            for f in self.show:
                _check_field(self.events.type, f, what="show")
            if self.distinct is not None:
                _check_field(self.events.type, self.distinct, what="distinct")
                parse_duration(self.distinct_for)
        elif self.subject is not None or self.show or self.distinct is not None:
            raise ValueError("subject, show and distinct go with events; decisions keep "
                             "their own subject and details")
        elif self.amount_by is not None:
            check_model_path(Decision, self.amount_by.field, what="amount_by.field")

    def _check_charges(self) -> None:
        """How items are charged and settled: tiers, amounts, limits, periods agree."""
        if self.tiers and self.amount_by is not None:
            raise ValueError("give tiers or amount_by, not both")
        for t in self.tiers:
            if (t.rate is not None) != (self.basis == "salary"):
                raise ValueError("with basis: salary tiers give a rate; with basis: fixed an "
                                 "amount")
        if self.amount_by is not None and self.basis != "fixed":
            raise ValueError("amount_by gives fixed amounts: use basis: fixed")
        charges = bool(self.tiers or self.amount_by)
        if not (charges or self.limit is not None or self.each_item):
            raise ValueError("nothing to do: give tiers or amount_by, a limit, or each_item")
        if self.settle == "period":
            if self.period is None and charges:
                raise ValueError("settle: period needs a period")
        elif self.tier_mode == "all" and len(self.tiers) > 1:
            raise ValueError("tier_mode: all re-prices earlier items, so it needs settle: "
                             "period")
        if (self.cap_rate is not None or self.wage_floor is not None) and not (
                self.basis == "salary" and self.settle == "period"):
            raise ValueError("cap_rate and wage_floor need basis: salary and settle: period")
        if self.limit is not None and self.period is None:
            raise ValueError("limit counts per period: give a period")
        if self.period is None and len(self.tiers) > 1:
            raise ValueError("tiers by item number need a period to count in")

    def event_types(self) -> frozenset[str]:
        return frozenset(self.events.type) if self.events is not None else frozenset()

    def consumes(self) -> frozenset[str]:
        return frozenset(self.decisions_of)

    def tier_for(self, n: int) -> Tier | None:
        """The tier of the ``n``-th item of a period (None before the first tier)."""
        found = None
        for t in self.tiers:
            if t.start <= n:
                found = t
        return found

    def partition(self) -> Partition | str:
        pairs: list[tuple[Iterable[str], str | None]] = []
        if self.events is not None:
            field = self.subject.field if self.subject is not None else "employee_id"
            pairs.append((self.events.type, field))
        return keyed_by(pairs, subject_keyed=True, directory=self.basis == "salary")

    def reads_directory(self) -> bool:
        return True

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _TariffRuntime(self, policy)


# ------------------------------------------------------------------------ the evaluator


# One counted item: ``[id, local time text, value, evidence]``. A list, not a record,
# because that is its snapshot form; its fields are read by position.
_Item = list[Any]


class _Entry(TypedDict):
    """One subject's items in an open period, the ids of its provisional totals, and whether
    its ``over_limit`` decision was made."""

    kind: SubjectKind
    id: str
    items: list[_Item]
    prov: list[str]
    limited: bool


class _Book(TypedDict):
    """One open period: its bounds and, by ``kind SEP id``, each subject's entry."""

    start: datetime
    end: datetime
    subjects: dict[str, _Entry]


class _State(TypedDict):
    """``_TariffRuntime.state`` (a plain dict at run time; the type is for mypy only);
    ``seen`` only with ``distinct``."""

    periods: dict[str, _Book]
    seen: NotRequired[dict[str, datetime]]


class _TariffRuntime(RuleRuntime):
    """State: ``periods`` label -> ``{start, end, subjects}``, subjects by kind and id ->
    ``{kind, id, items, prov, limited}``; an item is ``[id, local time text, value,
    evidence]``. A period's state is dropped when it closes."""

    spec: TariffSpec
    #: For a policy with versions (engine/_versions.py): the tariff of the version in force
    #: at an instant (None: none), so a period straddling a change charges each item by
    #: its own version while counting all of them. None: ``spec`` prices every item.
    spec_at: Callable[[datetime], Any] | None = None

    def __init__(self, spec: TariffSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"periods": {}}
        self.state = cast(dict[str, Any], state)
        if spec.distinct is not None:
            # distinct value key -> when first recorded; forgotten after distinct_for.
            state["seen"] = {}
            self._remember = parse_duration(spec.distinct_for)
        self._subject = spec.subject or SubjectRef(kind="employee", field="employee_id")
        self._pred = spec.events.predicate() if spec.events is not None else None
        self._outcomes = frozenset(spec.outcomes)
        self._charges = bool(spec.tiers or spec.amount_by)
        self._what = spec.title or spec.id
        # Not state: caches of what the state determines (see ``_priced_rows``), by period.
        self._priced: dict[str, dict[str, _Priced]] = {}
        self._bounds: dict[str, tuple[str, str]] = {}
        self._span: tuple[datetime, datetime, str] | None = None
        # (base salary text or None, rate or fixed amount text) -> the item's amount and its
        # text; the base salary text -> its money text.
        self._amounts: dict[tuple[str | None, str], tuple[Decimal, str]] = {}
        self._salaries: dict[str, str] = {}
        self._tier_rows = tuple(
            (t.start, "rate" if t.rate is not None else "amount",
             str(t.rate if t.rate is not None else t.amount)) for t in spec.tiers)

    # -- items -----------------------------------------------------------------------

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        if self._pred is None or not self._pred(event):
            return
        sid = event_value(event, self._subject.field)
        if sid is None:
            return
        if self.spec.distinct is not None:
            same = event_value(event, self.spec.distinct)
            if same is not None:
                seen_key = KEY_SEP.join((key_part(self._subject.kind), key_part(str(sid)),
                                         key_part(str(same))))
                seen = cast(_State, self.state)["seen"]
                if seen_key in seen:
                    return  # another record of an item already counted
                seen[seen_key] = event.at
                ctx.schedule(after(event.at, self._remember), _SEEN + KEY_SEP + seen_key)
        value = event_value(event, self.spec.amount_by.field) if self.spec.amount_by else None
        shown = {f: _plain(event_value(event, f)) for f in self.spec.show}
        self._item(Subject(kind=self._subject.kind, id=str(sid)), event.id, event.at,
                   event.type, None if value is None else str(value), [event.id], ctx, shown)

    def on_decision(self, decision: Decision, ctx: RuleContext) -> None:
        if decision.status != "final":
            return
        if self._outcomes and decision.details.get("outcome") not in self._outcomes:
            return
        value = (event_value(decision, self.spec.amount_by.field)  # type: ignore[arg-type]
                 if self.spec.amount_by else None)
        # The decision's own subject (a frozen model): the same as a new one of its kind and id.
        self._item(decision.subject, decision.id, decision.at,
                   f"{decision.spec_rule}:{decision.details.get('outcome', decision.kind)}",
                   None if value is None else str(value), list(decision.evidence), ctx, {})

    def _item(self, subject: Subject, item_id: str, at: datetime, item_type: str,
              value: str | None, evidence: list[str], ctx: RuleContext,
              shown: dict[str, Any]) -> None:
        s = self.spec
        cal = ctx.calendar
        kind, sid = subject.kind, subject.id
        for extra in s.each_item:
            ctx.emit(s, extra, kind=extra, subject=subject, at=at, evidence=evidence,
                     key=item_id, details={"what": self._what, "item": item_id,
                                           "item_type": item_type, "item_at": _iso(ctx, at),
                                           **shown})
        if s.period is None:
            if self._charges:
                self._charge_item(subject, 1, item_id, at, value, evidence, "", ctx, shown)
            return
        # Periods do not overlap, so an instant inside the last one found is in that one:
        # its label without converting the instant to a local date again.
        span = self._span
        if span is None or not (span[0] <= at <= span[1]):
            span = self._span = (*cal.period(at, s.period), cal.period_key(at, s.period))
        label = span[2]
        periods = cast(_State, self.state)["periods"]
        book = periods.get(label)
        if book is None:
            start, end = span[0], span[1]
            book = periods[label] = {"start": start, "end": end, "subjects": {}}
            ctx.schedule(end, label)
            for old in [k for k in self._priced if k not in periods]:
                self._forget(old)  # left by a rewind, or closed under another version
        skey = kind + KEY_SEP + sid
        entry = book["subjects"].get(skey)
        if entry is None:
            entry = book["subjects"][skey] = {"kind": kind, "id": sid, "items": [], "prov": [],
                                              "limited": False}
        entry["items"].append([item_id, _iso(ctx, at), value, evidence])
        n = len(entry["items"])
        if s.limit is not None and n > s.limit and not entry["limited"]:
            entry["limited"] = True
            self._over_limit(subject, entry, label, book, at, ctx)
        if not self._charges:
            return
        if s.settle == "item":
            self._charge_item(subject, n, item_id, at, value, evidence, label, ctx, shown)
        else:
            prov = self._charge_period(subject, entry, label, book, at, "provisional", ctx)
            if prov is not None:
                entry["prov"].append(prov.id)

    # -- money -----------------------------------------------------------------------

    def _rate_or_amount(self, n: int, reached: int, value: str | None,
                        spec: TariffSpec | None = None
                        ) -> tuple[Decimal | None, Decimal | None]:
        """(rate, fixed amount) of the ``n``-th item when ``reached`` items were counted,
        by ``spec`` (default this rule's)."""
        s = spec or self.spec
        if s.amount_by is not None:
            found = s.amount_by.values.get(value) if value is not None else None
            return None, found if found is not None else s.amount_by.default
        tier = s.tier_for(reached if s.tier_mode == "all" else n)
        if tier is None:
            return (_ZERO, None) if s.basis == "salary" else (None, _ZERO)
        return tier.rate, tier.amount

    def _amount(self, salary_key: str | None, price: str, salary: Decimal | None,
                value: Decimal | None) -> tuple[Decimal, str]:
        """An item's amount and its money text: ``salary`` times the rate ``value``, or
        the fixed amount ``value``, floored; kept by the texts of salary and price (equal
        texts, equal Decimals: the same amount, computed once)."""
        found = self._amounts.get((salary_key, price))
        if found is None:
            if len(self._amounts) > 4096:
                self._amounts.clear()
            if salary is not None:
                assert value is not None
                amount = self._floor(cents(salary * value))
            else:
                amount = self._floor(value)
            found = self._amounts[(salary_key, price)] = (amount, _money(amount))
        return found

    def _salary_text(self, salary_key: str | None, salary: Decimal) -> str:
        text = self._salaries.get(salary_key) if salary_key is not None else None
        if text is None:
            if len(self._salaries) > 4096:
                self._salaries.clear()
            text = _money(salary)
            if salary_key is not None:
                self._salaries[salary_key] = text
        return text

    def _floor(self, amount: Decimal | None) -> Decimal:
        minimum = self.spec.minimum
        amount = _ZERO if amount is None else amount
        return max(amount, minimum) if minimum is not None else amount

    def _salary(self, subject: Subject, ctx: RuleContext) -> tuple[Any, Decimal | None]:
        """The employee's latest profile and base salary, or (None, None)."""
        if subject.kind != "employee":
            return None, None
        profile = ctx.directory.get(subject.id)
        if profile is None:
            return None, None
        return profile, Decimal(profile.base_salary)

    def _charge_item(self, subject: Subject, n: int, item_id: str, at: datetime,
                     value: str | None, evidence: list[str], label: str,
                     ctx: RuleContext, shown: dict[str, Any]) -> None:
        s = self.spec
        rate, fixed = self._rate_or_amount(n, n, value)
        details: dict[str, Any] = {"what": self._what, "item": item_id, "number": n,
                                   "period": label or None, **shown}
        if s.amount_by is not None:
            # Named after the field's last part, so messages can say "{severity}".
            details[s.amount_by.field.rsplit(".", 1)[-1]] = value
        if s.basis == "salary":
            profile, salary = self._salary(subject, ctx)
            assert rate is not None
            details["rate"] = str(rate)
            if salary is None:
                details.update(share=str(rate), share_percent=_pct(rate), salary_known=False)
                ctx.emit(s, "salary_unknown", kind=s.kind, subject=subject, at=at,
                         evidence=evidence, key=item_id, details=details)
                return
            amount = self._floor(cents(salary * rate))
            currency = profile.currency
            details["base_salary"] = _money(salary)
            evidence = [*evidence, profile.id]
        else:
            amount = self._floor(fixed)
            currency = s.currency
            details["listed_amount"] = None if fixed is None else _money(fixed)
            if s.minimum is not None:
                details["minimum"] = _money(s.minimum)
        amount = cents(amount)
        if amount <= 0:
            return  # nothing to charge: a zero fine is no fine
        ctx.emit(s, "item", kind=s.kind, subject=subject, at=at, evidence=evidence,
                 key=item_id, details=details, amount=amount, currency=currency)

    def _charge_period(self, subject: Subject, entry: _Entry, label: str,
                       book: _Book, at: datetime,
                       status: Literal["final", "provisional"], ctx: RuleContext
                       ) -> Decision | None:
        s = self.spec
        items = entry["items"]
        reached = len(items)
        profile: Any
        salary: Decimal | None
        profile, salary = (self._salary(subject, ctx) if s.basis == "salary"
                           else (None, None))
        priced = self._priced_rows(label, entry["kind"] + KEY_SEP + entry["id"], items,
                                   salary)
        rows, share, total = list(priced.rows), priced.share, priced.total
        evidence = list(priced.evidence)
        start_end = self._bounds.get(label)
        if start_end is None:
            start_end = self._bounds[label] = (_iso(ctx, book["start"]),
                                               _iso(ctx, book["end"]))
        details: dict[str, Any] = {
            "what": self._what, "period": label,
            "period_start": start_end[0], "period_end": start_end[1],
            "count": reached, "tier_mode": s.tier_mode,
            "tiers": [{"from": start, name: text} for start, name, text in self._tier_rows],
            "items": rows,
        }
        final = status == "final"
        supersedes = list(entry["prov"]) if final else []
        key = label if final else f"{label}{KEY_SEP}{reached}"
        if s.basis == "salary":
            details["share"] = str(share)
            details["share_percent"] = _pct(share)
            if salary is None:
                details["salary_known"] = False
                return ctx.emit(s, "salary_unknown", kind=s.kind, subject=subject, at=at,
                                evidence=evidence, key=key, details=details, status=status,
                                supersedes=supersedes)
            evidence.append(profile.id)
            details["base_salary"] = self._salary_text(priced.salary_key, salary)
            details["salary_known"] = True
            total = self._capped(total, salary, details)
            currency = profile.currency
        else:
            currency = s.currency
        total = cents(total)
        if total <= 0 and not supersedes:
            return None
        details["total"] = _money(total)
        return ctx.emit(s, "total" if final else "running", kind=s.kind, subject=subject,
                        at=at, evidence=evidence, key=key, details=details, amount=total,
                        currency=currency, status=status, supersedes=supersedes)

    def _priced_rows(self, label: str, skey: str, items: list[_Item],
                     salary: Decimal | None) -> _Priced:
        """The period's items priced, each row as the whole-period pass would price it.

        A running total follows every item, so pricing the whole period each time costs
        the square of its items. The rows priced last time are kept (outside ``state``: a
        cache, rebuilt from the items whenever it cannot be trusted) and only the items
        since are priced, unless what an earlier row depends on changed: the base salary
        (a new profile), or, under ``tier_mode: all``, the tier the period's count reaches
        (every earlier item is re-priced at it). The items must be the very objects priced
        last time (a rewound or restored state holds copies, and is priced afresh)."""
        reached = len(items)
        salary_key = None if salary is None else str(salary)
        cached = self._priced.setdefault(label, {})
        p = cached.get(skey)
        if p is not None:
            n = p.n
            if (p.items is not items or n > reached or p.salary_key != salary_key
                    or (n and items[n - 1] is not p.last)):
                p = None
            else:
                for spec, tier in p.reaching.values():
                    if spec.tier_for(reached) is not tier:
                        p = None  # the count reached a new tier: every item is re-priced
                        break
        if p is None:
            p = cached[skey] = _Priced(items, salary_key)
        if p.n == reached:
            return p
        s = self.spec
        spec_at = self.spec_at
        salary_basis = s.basis == "salary"
        rows, evidence, reaching = p.rows, p.evidence, p.reaching
        share, total = p.share, p.total
        for n in range(p.n + 1, reached + 1):
            item_id, item_at, value, ev = items[n - 1]
            own = spec_at(datetime.fromisoformat(item_at)) if spec_at is not None else None
            pricing = own if isinstance(own, TariffSpec) else s
            if pricing.amount_by is None and pricing.tier_mode == "all":
                reaching[id(pricing)] = (pricing, pricing.tier_for(reached))
            rate, fixed = self._rate_or_amount(
                n, reached, value, own if isinstance(own, TariffSpec) else None)
            row: dict[str, Any] = {"item": item_id, "at": item_at, "number": n}
            if salary_basis:
                assert rate is not None
                share += rate
                rate_text = str(rate)
                row["rate"] = rate_text
                if salary is not None:
                    amount, row["amount"] = self._amount(p.salary_key, rate_text, salary, rate)
                    total += amount
            else:
                amount, row["amount"] = self._amount(
                    None, "" if fixed is None else str(fixed), None, fixed)
                total += amount
            rows.append(row)
            evidence.extend(ev)
        p.n, p.last, p.share, p.total = reached, items[reached - 1], share, total
        return p

    def _capped(self, total: Decimal, salary: Decimal, details: dict[str, Any]) -> Decimal:
        s = self.spec
        limits = []
        if s.cap_rate is not None:
            cap = cents(salary * s.cap_rate)
            details["cap"] = _money(cap)
            limits.append(cap)
        if s.wage_floor is not None:
            room = max(salary - s.wage_floor, _ZERO)
            details["wage_floor"] = _money(s.wage_floor)
            limits.append(room)
        if limits and total > min(limits):
            details["uncapped_total"] = _money(total)
            details["capped"] = True
            return min(limits)
        if limits:
            details["capped"] = False
        return total

    def _over_limit(self, subject: Subject, entry: _Entry, label: str,
                    book: _Book, at: datetime, ctx: RuleContext) -> None:
        s = self.spec
        items = entry["items"]
        evidence = [e for it in items for e in it[3]]
        details = {"what": self._what, "period": label, "count": len(items), "limit": s.limit,
                   "items": [it[0] for it in items],
                   "period_start": _iso(ctx, book["start"]),
                   "period_end": _iso(ctx, book["end"])}
        ctx.emit(s, "over_limit", kind=s.limit_kind, subject=subject, at=at,
                 evidence=evidence, key=label, details=details)
        if s.limit_amount > 0:
            ctx.emit(s, "limit_fine", kind="fine", subject=subject, at=at, evidence=evidence,
                     key=label, details=details, amount=cents(s.limit_amount),
                     currency=s.currency)

    def _forget(self, label: str) -> None:
        self._priced.pop(label, None)
        self._bounds.pop(label, None)

    # -- time ------------------------------------------------------------------------

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        state = cast(_State, self.state)
        if key.startswith(_SEEN + KEY_SEP):
            state["seen"].pop(key[len(_SEEN) + 1:], None)
            return
        book = state["periods"].pop(key, None)
        if book is not None and self._charges and self.spec.settle == "period":
            for entry in book["subjects"].values():
                self._charge_period(Subject(kind=entry["kind"], id=entry["id"]), entry, key,
                                    book, due, "final", ctx)
        self._forget(key)


class _Priced:
    """A subject's period priced up to its ``n``-th item (see ``_priced_rows``)."""

    __slots__ = ("evidence", "items", "last", "n", "reaching", "rows", "salary_key", "share",
                 "total")

    def __init__(self, items: list[_Item], salary_key: str | None) -> None:
        self.items = items
        self.salary_key = salary_key
        self.n = 0
        self.last: Any = None
        self.rows: list[dict[str, Any]] = []
        self.evidence: list[str] = []
        # Each ``tier_mode: all`` tariff pricing a row (by id: specs with maps are not
        # hashable) -> it and the tier the count had reached.
        self.reaching: dict[int, tuple[TariffSpec, Tier | None]] = {}
        self.share = _ZERO
        self.total = _ZERO


_SEEN = "seen"  # timer keys forgetting a distinct value; period labels never start so


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of an event field for details."""
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return str(value)


def _pct(share: Decimal) -> str:
    return format((share * 100).normalize(), "f")
