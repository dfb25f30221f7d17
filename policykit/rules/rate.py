"""The *rate* shape: a ratio per period against a target, reported as ``kpi`` decisions
when the period closes. Callback feedback processed / recorded at 100%; valid complaints /
registered households at most 1%."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar, Literal, TypedDict, cast

from pydantic import Field, model_validator

from ..calendar import MonthsUnit
from ..models.events import EventBase
from ._base import (
    KEY_SEP,
    Amount,
    Match,
    Message,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    key_of,
    local_iso,
)
from ._scope import FixedSubject, Population, PopulationTracker

__all__ = ["RateSpec"]

_ONE_US = timedelta(microseconds=1)


class RateSpec(RuleSpec):
    """``numerator`` count / ``denominator`` count per calendar ``period`` (``year`` by
    default; ``half``, ``quarter`` or ``month``), times ``scale`` (100: a percentage),
    rounded half-up to ``places``, compared with ``target`` (``at_least`` / ``at_most``).

    The denominator is either events (``denominator``) or the size of a ``population`` at
    the period's close (registered households). A match with ``key`` counts distinct key
    values, not events. With ``join``, the numerator counts the denominator's own items
    (by key) that got a numerator event by the period's close: the processing rate of the
    feedback recorded in the period. Outcomes (all ``kind: kpi``): ``met``, ``missed``
    and ``no_data`` (an empty denominator: no rate)."""

    shape: Literal["rate"] = "rate"
    numerator: Match
    """The events counted above the line (with ``key``: distinct key values)."""
    denominator: Match | None = None
    """The events counted below the line; or give ``population``."""
    population: Population | None = None
    """Or: the size of this population at the period's close is the denominator."""
    join: bool = False
    """Count in the numerator only the denominator's own items (by key) that got a numerator
    event by the period's close."""
    period: MonthsUnit = "year"
    """The calendar period of each rate."""
    target: Amount
    """The rate to compare with (after ``scale``: 100 means 100%)."""
    comparison: Literal["at_least", "at_most"] = "at_least"
    """``at_least``: the rate must reach the target; ``at_most``: not exceed it."""
    scale: Amount = Decimal(100)
    """The ratio is multiplied by this (100: a percentage)."""
    places: int = Field(default=2, ge=0, le=10)
    """Decimal places the rate is rounded to, half-up."""
    subject: FixedSubject
    """Who the rate is about (a department, the site)."""
    evidence_limit: int = Field(default=100, ge=0, le=10_000)
    """At most this many event ids as evidence (numerator events first)."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "comparison", "comparison_en", "comparison_zh", "denominator", "evidence_truncated",
        "met", "numerator", "period", "period_end", "period_start", "rate", "scale", "target",
        "unit", "what",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "met": Message(
            en="{rule} {what} {period}: {rate}{unit} ({numerator}/{denominator}), target "
               "{comparison_en} {target}{unit}: met",
            zh="{rule}「{what}」{period}：{rate}{unit}（{numerator}/{denominator}），目標"
               "{comparison_zh} {target}{unit}：達標"),
        "missed": Message(
            en="{rule} {what} {period}: {rate}{unit} ({numerator}/{denominator}), target "
               "{comparison_en} {target}{unit}: missed",
            zh="{rule}「{what}」{period}：{rate}{unit}（{numerator}/{denominator}），目標"
               "{comparison_zh} {target}{unit}：未達標"),
        "no_data": Message(
            en="{rule} {what} {period}: no rate (denominator 0, numerator {numerator})",
            zh="{rule}「{what}」{period}：無法計算（分母為 0，分子 {numerator}）"),
    }

    @model_validator(mode="after")
    def _valid(self) -> RateSpec:
        if (self.denominator is None) == (self.population is None):
            raise ValueError("give exactly one of denominator, population")
        if self.population is not None:
            self.population.check_members("rate")
        if self.scale <= 0:
            raise ValueError("scale must be positive")
        if self.join:
            if self.denominator is None:
                raise ValueError("join needs a denominator match")
            if not self.numerator.key or not self.denominator.key:
                raise ValueError("join needs key fields on numerator and denominator")
            if len(self.numerator.key) != len(self.denominator.key):
                raise ValueError("numerator.key and denominator.key must name as many fields")
        return self

    def event_types(self) -> frozenset[str]:
        types = set(self.numerator.type)
        if self.denominator is not None:
            types.update(self.denominator.type)
        if self.population is not None:
            types.update(self.population.event_types())
        return frozenset(types)

    def state_types(self) -> frozenset[str]:
        return self.population.event_types() if self.population is not None else frozenset()

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _RateRuntime(self, policy)


class _Period(TypedDict):
    """One open period's counts (``num``/``den`` distinct keys, ``num_n``/``den_n`` keyless
    counts, ``items`` joined item -> numerator seen, ``ev`` evidence so far)."""

    start: datetime
    end: datetime
    num: set[str]
    num_n: int
    den: set[str]
    den_n: int
    items: dict[str, bool]
    ev: list[str]


class _State(TypedDict):
    """``_RateRuntime.state`` (a plain dict at run time; the type is for mypy only)."""

    periods: dict[str, _Period]
    item_period: dict[str, str]
    members: dict[str, str]


class _RateRuntime(RuleRuntime):
    """State: ``periods`` period key -> counts of the open period; ``item_period`` (with
    ``join``) item -> the open period it was recorded in; ``members`` the population."""

    spec: RateSpec
    # Its order is read (the first member is evidence): a late-event window's checkpoints
    # copy it whole instead of journaling its keys, which could put a removed one back last.
    whole_state: ClassVar[frozenset[str]] = frozenset({"members"})

    def __init__(self, spec: RateSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"periods": {}, "item_period": {}, "members": {}}
        self.state = cast(dict[str, Any], state)
        self._num_types = frozenset(spec.numerator.type)
        self._num = spec.numerator.predicate()
        den = spec.denominator
        self._den_types = frozenset(den.type) if den else frozenset()
        self._den = den.predicate() if den else None
        self._pop = PopulationTracker(spec.population) if spec.population else None
        self._what = spec.title or spec.id
        self._quantum = Decimal(1).scaleb(-spec.places)
        # The last period looked up: a pure function of the instant, so caching it outside
        # ``state`` is safe across snapshots.
        self._last: tuple[datetime, datetime, str] | None = None

    def _period(self, t: datetime, ctx: RuleContext) -> _Period:
        last = self._last
        if last is None or not (last[0] <= t <= last[1]):
            start, end = ctx.calendar.period(t, self.spec.period)
            last = (start, end, ctx.calendar.period_key(t, self.spec.period))
            self._last = last
        periods = cast(_State, self.state)["periods"]
        found = periods.get(last[2])
        if found is None:
            found = {"start": last[0], "end": last[1], "num": set(), "num_n": 0,
                     "den": set(), "den_n": 0, "items": {}, "ev": []}
            periods[last[2]] = found
            ctx.schedule(last[1], "c" + KEY_SEP + last[2])
        return found

    def _evidence(self, period: _Period, event_id: str) -> None:
        if len(period["ev"]) < self.spec.evidence_limit:
            period["ev"].append(event_id)

    @staticmethod
    def _count(period: _Period, which: Literal["num", "den"], key: str | None) -> bool:
        """Count one event (or a new distinct key); False if the key was counted already."""
        if key is None:
            # Spelled out (not ``which + "_n"``) so the keys stay checkable.
            if which == "num":
                period["num_n"] += 1
            else:
                period["den_n"] += 1
            return True
        keys = period[which]
        if key in keys:
            return False
        keys.add(key)
        return True

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        s = self.spec
        state = cast(_State, self.state)
        if (self._pop is not None and self._pop.handles(event)
                and self._pop.apply(event, state["members"]) > 0):
            self._period(event.at, ctx)
        if self._den is not None and event.type in self._den_types and self._den(event):
            den = s.denominator
            assert den is not None
            key = key_of(event, den.key) if den.key else None
            if not (den.key and key is None):
                period = self._period(event.at, ctx)
                if s.join:
                    assert key is not None
                    if key not in period["items"] and key not in state["item_period"]:
                        period["items"][key] = False
                        state["item_period"][key] = ctx.calendar.period_key(
                            event.at, s.period)
                        self._evidence(period, event.id)
                elif self._count(period, "den", key):
                    self._evidence(period, event.id)
        if event.type in self._num_types and self._num(event):
            nkey = key_of(event, s.numerator.key) if s.numerator.key else None
            if s.numerator.key and nkey is None:
                return
            if s.join:
                assert nkey is not None
                pkey = state["item_period"].get(nkey)
                recorded = state["periods"].get(pkey) if pkey is not None else None
                # An item recorded before the log or in a closed period is not this rate's.
                if recorded is not None and not recorded["items"][nkey]:
                    recorded["items"][nkey] = True
                    self._evidence(recorded, event.id)
                return
            period = self._period(event.at, ctx)
            if self._count(period, "num", nkey):
                self._evidence(period, event.id)

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        s = self.spec
        pkey = key.partition(KEY_SEP)[2]
        state = cast(_State, self.state)
        period = state["periods"].pop(pkey, None)
        if period is None:
            return
        evidence: list[str] = list(period["ev"])
        if s.join:
            items = period["items"]
            for item in items:
                state["item_period"].pop(item, None)
            den = len(items)
            num = sum(1 for done in items.values() if done)
        else:
            num = len(period["num"]) if s.numerator.key else period["num_n"]
            if self._pop is not None:
                members = state["members"]
                den = len(members)
                for admitted_by in members.values():
                    if len(evidence) >= s.evidence_limit:
                        break
                    evidence.append(admitted_by)
            else:
                assert s.denominator is not None
                den = len(period["den"]) if s.denominator.key else period["den_n"]
        details: dict[str, Any] = {
            "what": self._what,
            "period": pkey,
            "period_start": local_iso(ctx, period["start"]),
            "period_end": local_iso(ctx, period["end"]),
            "numerator": num,
            "denominator": den,
            "target": s.target,
            "comparison": s.comparison,
            "comparison_en": "at least" if s.comparison == "at_least" else "at most",
            "comparison_zh": "不低於" if s.comparison == "at_least" else "不高於",
            "unit": "%" if s.scale == 100 else "",
            "scale": s.scale,
            "evidence_truncated": len(evidence) >= s.evidence_limit,
        }
        if den == 0:
            details.update(rate=None, met=None)
            outcome, severity = "no_data", "info"
        else:
            # Judged on the exact ratio, reported rounded: 0.996% is not "at most 0.99%".
            exact_scaled = Decimal(num) * s.scale
            met = (exact_scaled >= s.target * den if s.comparison == "at_least"
                   else exact_scaled <= s.target * den)
            rate = (exact_scaled / Decimal(den)).quantize(self._quantum, ROUND_HALF_UP)
            details.update(rate=rate, met=met)
            outcome, severity = ("met", "info") if met else ("missed", s.severity)
        ctx.emit(s, outcome, kind="kpi", subject=s.subject.subject(), at=due,
                 evidence=evidence, key=pkey, details=details,
                 severity=severity)  # type: ignore[arg-type]
        if self._pop is not None and state["members"]:
            self._period(due + _ONE_US, ctx)
