"""The *ladder* shape: the n-th violation within a rolling window → the n-th sanction step.

It reads the decisions of other rules of the same policy (``counts``), per subject: the
first counted violation within ``window`` gets the first step (criticism), the second the
second (education), and so on; past the end of ``steps`` the last step repeats, and from
``transfer_at`` violations on the step is ``transfer`` (調離原工作崗位). The order of the
measures is the company's choice: the rulebook lists them without one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, TypedDict, cast

from pydantic import Field, model_validator

from ..models.decisions import Decision, DecisionKind, Severity, Subject, SubjectKind
from ..models.events import EventBase
from ._base import (
    KEY_SEP,
    Count,
    Message,
    OneOrMany,
    Partition,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    keyed_by,
    local_iso,
)

__all__ = ["STEP_SEVERITY", "STEP_ZH", "LadderSpec", "window_start"]

#: Chinese names of the usual steps (批評、教育和處分; 調離原工作崗位).
STEP_ZH: dict[str, str] = {
    "criticism": "批評",
    "education": "教育",
    "sanction": "處分",
    "transfer": "調離原工作崗位",
    "warning": "警告",
}
#: Severity of the usual steps; other step names take the rule's severity.
STEP_SEVERITY: dict[str, Severity] = {
    "criticism": "low",
    "education": "medium",
    "sanction": "high",
    "transfer": "critical",
}


def window_start(calendar: Any, at: datetime, window: str) -> datetime:
    """The instant ``window`` (an ISO duration) before ``at``, in the calendar: months and
    days move the local date and keep the wall time (month ends clamped), hours are elapsed.
    A rolling window ending at ``at`` is ``(window_start, at]``."""
    from ..calendar import parse_calendar_duration

    dur = parse_calendar_duration(window)
    local = calendar.local(at)
    if dur.months:
        local = calendar.add_months(local, -dur.months)
    days = 7 * dur.weeks + dur.days
    if days:
        local = calendar.at(local.date() - timedelta(days=days), local.time())
    if dur.exact:
        local = calendar.local(local - dur.exact)
    return local  # type: ignore[no-any-return]


class LadderSpec(RuleSpec):
    """Counts the ``kinds`` decisions of the rules ``counts`` per subject over a rolling
    ``window`` (``(at - window, at]`` in the policy's calendar: a violation exactly one
    window old no longer counts) and emits, for the n-th, a ``sanction`` decision with the
    n-th of ``steps`` (the last one repeating), or ``transfer_step`` from ``transfer_at``
    violations on. Its evidence is the counted violations' evidence; its details list them."""

    shape: Literal["ladder"] = "ladder"
    counts: OneOrMany[str]
    """Ids of the rules (of this policy) whose decisions are counted."""
    kinds: OneOrMany[DecisionKind] = ("violation",)
    """Only decisions of these kinds are counted."""
    subject_kind: SubjectKind = "employee"
    """Only decisions about subjects of this kind are counted (per subject id)."""
    window: str = "P12M"
    """The rolling window the violations are counted in (an ISO-8601 duration, ``P12M``)."""
    steps: OneOrMany[str] = ("criticism", "education", "sanction")
    """The measure for the 1st, 2nd, ... violation in the window; the last repeats."""
    transfer_at: Count | None = Field(default=5, ge=1)
    """From this many violations in the window on, the step is ``transfer_step``;
    None disables it."""
    transfer_step: str = "transfer"
    """The step from ``transfer_at`` violations on."""
    kind: DecisionKind = "sanction"
    """The kind of the step decisions."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "count", "counted_rules", "step", "step_zh", "trigger_decision", "violations",
        "window", "window_start",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "sanction": Message(
            en="{rule}: {step} for {subject} — violation no. {count} within {window} "
               "({counted_rules})",
            zh="{rule}：{subject} 於 {window} 內第 {count} 次違規（{counted_rules}），"
               "給予{step_zh}"),
    }

    @model_validator(mode="after")
    def _valid(self) -> LadderSpec:
        if not self.counts:
            raise ValueError("counts needs at least one rule id")
        if self.id in self.counts:
            raise ValueError("a ladder cannot count its own decisions")
        if not self.steps:
            raise ValueError("steps needs at least one step")
        if any(not s for s in (*self.steps, self.transfer_step)):
            raise ValueError("step names must not be empty")
        from ..calendar import parse_calendar_duration

        dur = parse_calendar_duration(self.window)
        if not (dur.months or dur.weeks or dur.days or dur.exact):
            raise ValueError("window must be a positive duration")
        return self

    def consumes(self) -> frozenset[str]:
        return frozenset(self.counts)

    def step_for(self, count: int) -> str:
        """The step the ``count``-th violation in the window earns (count >= 1)."""
        if self.transfer_at is not None and count >= self.transfer_at:
            return self.transfer_step
        return self.steps[min(count, len(self.steps)) - 1]

    def partition(self) -> Partition | str:
        return keyed_by([], subject_keyed=True)

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _LadderRuntime(self, policy)


# One counted violation: ``[at, decision id, rule, outcome, evidence]``. A list, not a
# record, because that is its snapshot form; its fields are read by position.
_Entry = list[Any]


class _State(TypedDict):
    """``_LadderRuntime.state`` (a plain dict at run time; the type is for mypy only)."""

    seen: dict[str, list[_Entry]]


class _LadderRuntime(RuleRuntime):
    """State: ``seen`` subject id -> counted violations still possibly in the window, each
    ``[at, decision id, rule, outcome, evidence]`` in arrival order."""

    spec: LadderSpec

    def __init__(self, spec: LadderSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"seen": {}}
        self.state = cast(dict[str, Any], state)
        self._kinds = frozenset(spec.kinds)
        self._counts = ", ".join(spec.counts)
        from ..calendar import parse_calendar_duration

        dur = parse_calendar_duration(spec.window)
        # At least the window, whatever the month lengths (pruning later is harmless).
        self._span = (timedelta(days=31 * dur.months + 7 * dur.weeks + dur.days + 1)
                      + (dur.exact or timedelta(0)))

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        seen = cast(_State, self.state)["seen"]
        entries = seen.get(key)
        if entries is None:
            return
        start = window_start(ctx.calendar, due, self.spec.window)
        kept = [v for v in entries if v[0] > start]
        if kept:
            seen[key] = kept
        else:
            del seen[key]

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        """A ladder reads decisions only."""

    def on_decision(self, decision: Decision, ctx: RuleContext) -> None:
        s = self.spec
        if (decision.kind not in self._kinds or decision.status != "final"
                or decision.subject.kind != s.subject_kind):
            return
        sid = decision.subject.id
        start = window_start(ctx.calendar, decision.at, s.window)
        seen = cast(_State, self.state)["seen"]
        kept = [v for v in seen.get(sid, []) if v[0] > start]
        kept.append([decision.at, decision.id, decision.spec_rule,
                     decision.details.get("outcome", decision.kind), list(decision.evidence)])
        seen[sid] = kept
        # When this violation has surely left the window: the subject's list is pruned
        # then, so a subject with no later violation is not remembered for ever.
        ctx.schedule(decision.at + self._span, sid)
        count = len(kept)
        step = s.step_for(count)
        counted = [{"decision": v[1], "rule": v[2], "outcome": v[3],
                    "at": local_iso(ctx, v[0])} for v in kept]
        evidence = [e for v in kept for e in v[4]]
        ctx.emit(s, "sanction", kind=s.kind, subject=Subject(kind=s.subject_kind, id=sid),
                 at=decision.at, evidence=evidence, key=decision.id + KEY_SEP + step,
                 severity=STEP_SEVERITY.get(step),
                 details={
                     "step": step,
                     "step_zh": STEP_ZH.get(step, step),
                     "count": count,
                     "window": s.window,
                     "window_start": local_iso(ctx, start),
                     "counted_rules": self._counts,
                     "violations": counted,
                     "trigger_decision": decision.id,
                 })
