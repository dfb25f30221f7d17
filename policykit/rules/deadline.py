"""The *deadline* shape: after a trigger, a fulfilment must follow within a duration or by a
calendar boundary. Same-day investigation, notify within 15 minutes, reply by the promised
time, hand over within an hour of working time.

Beyond the plain "A then B by D", a case can:

- start its clock at a later event than the one that opened it (``start``: the failure
  report is due 3 working days after the incident is *resolved*);
- recur (``restart``: each progress update satisfies the current deadline and starts the
  next one; a miss re-arms it from the missed deadline);
- have no deadline at all (``open_ended``): it is open until fulfilled or cancelled and only
  its breaches are judged (``breach_closes: false`` judges every breach, not only the first);
- be found by other events through its trigger's fields (``correlate``: same customer and
  topic within 7 days) or through extra keys it picked up (``alias``: the repeat contact's
  own request id);
- have an owner that moves (``reassign``: a registered handover makes its receiver the
  case's owner, and every later decision names the owner at that moment).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, NotRequired, TypedDict, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from ..calendar import BOUNDARIES, DeadlineStr, parse_calendar_duration, parse_duration
from ..models.decisions import DecisionKind, Subject
from ..models.events import EventBase
from ._base import (
    KEY_ESC,
    KEY_SEP,
    Condition,
    Match,
    Message,
    Names,
    Partition,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    SubjectRef,
    _check_field,
    _compile_condition,
    event_value,
    field_getter,
    first_key,
    join_key,
    key_getter,
    key_part,
    keyed_by,
    split_key,
    value_part,
)
from ._base import local_iso as _iso

__all__ = ["DeadlineSpec", "Reassign", "Step", "WithinBy"]

# Timer keys: the case key (or an expiry day) after a tag no case key can start with (an
# encoded key holds ESC only before "e", "s", "t" or ":", see key_part and value_part), so
# a case whose key reads like a warning's or an expiry's is still its own deadline.
_WARN = KEY_ESC + "w"
_EXPIRE = KEY_ESC + "x"
_DAY = timedelta(days=1)
_SWEEP_EVERY = timedelta(days=1)


def _exact(spec: str) -> str:
    parse_duration(spec)
    return spec


ExactDuration = Annotated[str, AfterValidator(_exact)]
"""An ISO-8601 duration of fixed length (no months or years), e.g. ``PT15M``."""


class Step(Match):
    """An event that fulfils, cancels, breaches, starts or restarts an open case.

    ``same`` maps this event's fields to the trigger's: ``{employee_id: employee_id}`` means
    "by the same employee who received it"; ``differ`` means "by another one".
    ``correlate`` finds the case by trigger fields instead of the key
    (``{customer_id: customer_id, topic: topic}``: the most recently opened open case whose
    trigger had this customer and topic), limited to cases opened within
    ``correlate_within`` before this event when given. ``alias`` names a field of this event
    whose value becomes another key of the case it reached (later events naming that value
    reach the same case).
    """

    same: dict[str, str] = Field(default_factory=dict)
    """This event's field -> the trigger's field that must be equal (``{employee_id:
    employee_id}``: by the same employee)."""
    differ: dict[str, str] = Field(default_factory=dict)
    """This event's field -> the trigger's field that must differ (by another one)."""
    correlate: dict[str, str] = Field(default_factory=dict)
    """Find the case by trigger fields instead of the key: this event's field -> the trigger's;
    the most recently opened matching open case is taken."""
    correlate_within: DeadlineStr | None = None
    """With ``correlate``: only cases opened at most this long before the event."""
    alias: str | None = None
    """A field of this event whose value becomes another key of the case it reached."""


class Reassign(Step):
    """An event that moves a case's ownership to the employee named in its ``to`` field."""

    to: str
    """The field of this event naming the case's new owner."""


class WithinBy(BaseModel):
    """A deadline looked up by a trigger field (e.g. each site's own arrival SLA)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    field: str
    """The trigger field whose value picks the deadline."""
    values: dict[str, DeadlineStr] = Field(default_factory=dict)
    """Deadline by that field's value: a duration or a calendar boundary."""
    default: DeadlineStr
    """The deadline for any other value."""


class DeadlineSpec(RuleSpec):
    """After ``trigger``, one of ``fulfil`` must happen for the same ``key`` by the deadline
    (``within``, ``within_field`` or ``within_by``; or none with ``open_ended``). Outcomes:
    ``missed`` (at the deadline), ``breached`` (a ``breach`` event while open),
    ``incomplete`` (fulfilled without the ``require``d fields), and optional ``obligation``
    when the clock starts (``announce``), ``warning`` before the deadline and ``escalation``
    when it is missed (``escalate_to``)."""

    shape: Literal["deadline"] = "deadline"
    trigger: Match
    """The event that opens a case (and, without ``start``, starts its clock)."""
    key: Names
    """The trigger field(s) naming the case; later events reach it by the same fields."""
    within: DeadlineStr | None = None
    """The deadline after the trigger: an ISO-8601 duration (``PT15M``, ``P1D``) or a calendar
    boundary (``end_of_day``, ``end_of_working_day``, ...)."""
    within_field: str | None = None
    """Or: a field of the trigger holding the deadline instant (a promised reply time)."""
    within_by: WithinBy | None = None
    """Or: a deadline looked up by a field of the trigger."""
    open_ended: bool = False
    """No deadline: the case is open until fulfilled, cancelled or breached, and only
    breaches and incomplete fulfilments are judged."""
    basis: Literal["wall", "working"] = "wall"
    """``wall``: durations run on the clock; ``working``: only working time of the policy's
    calendar counts."""
    fulfil: tuple[Step, ...] = ()
    """Events that meet the obligation and close the case."""
    require: dict[str, Condition] = Field(default_factory=dict)
    """Conditions the fulfilling event's fields must meet; a fulfilment without them is
    ``incomplete``."""
    cancel: tuple[Step, ...] = ()
    """Events that close the case with no decision (the obligation lapsed)."""
    breach: tuple[Step, ...] = ()
    """Events that break the rule while the case is open (outcome ``breached``)."""
    breach_closes: bool = True
    """False: a breach is judged and the case stays open, so every breach counts."""
    start: tuple[Step, ...] = ()
    """When given, the trigger opens the case without a clock; the first ``start`` event
    starts it (the deadline counts from that event). A fulfilment before it still closes
    the case."""
    restart: tuple[Step, ...] = ()
    """Events that satisfy the current deadline and start the next one from their own time
    (a recurring deadline). A miss re-arms the deadline from the missed instant, so every
    full period without one is judged; only ``fulfil``, ``cancel`` or a breach close it."""
    reassign: tuple[Reassign, ...] = ()
    """Events that move the case to a new owner: decisions then name the owner at that
    moment as subject (the trigger's ``subject`` field names the first owner)."""
    continues: str | None = None
    """A field of the trigger naming the key of an earlier case this trigger continues (a
    repeat contact's ``repeat_of``): while that case is open, or once it was judged (with
    ``once``, for as long as its key is remembered), the trigger opens no case of its own;
    the matter is that case's. Without such a case the trigger opens its own."""
    once: bool = True
    """Judge each key once: a later trigger for a case already judged is ignored."""
    forget_after: ExactDuration | None = "P365D"
    """With ``once``: how long after a case closed its key is remembered. A trigger with
    that key later than this opens a new case; until then it is ignored. Forgetting keeps a
    long stream's state flat (a year of closed request ids, not all of them). ``null``
    remembers every key forever."""
    expire_after: ExactDuration | None = "P365D"
    """How long an open case waits for its next event (its trigger, or a later step that
    leaves it open: start, restart, reassign, a breach that does not close it). After that
    long without one, the case is closed with an ``expired`` decision (a warning, naming
    the case and its last event), so a case that never closes neither stays in memory
    forever nor disappears unreported. An expired case was never judged: its key is not
    remembered (``once``), and a later trigger with it opens a new case. ``null`` keeps
    open cases until they close."""
    subject: SubjectRef
    """Who the decisions are about: a kind and the trigger field holding the id."""
    kind: DecisionKind = "violation"
    """The kind of the ``missed`` and ``breached`` decisions (``incomplete`` is always a
    violation)."""
    announce: bool = False
    """Emit a decision when the clock starts: who must act, and by when."""
    announce_kind: Literal["obligation", "escalation"] = "obligation"
    """The kind of the ``announce`` decision: an ``escalation`` for matters that must be
    acted on at once (report a major matter to the general manager now)."""
    warn_before: ExactDuration | None = None
    """Emit a ``warning`` this long before the deadline while the case is still open (an exact
    duration)."""
    escalate_to: str | None = None
    """On a miss, also emit an ``escalation`` naming who must act next."""
    actor: str | None = None
    """Who must act, for messages (e.g. ``owner``, ``general_manager``)."""
    carry: tuple[str, ...] = ()
    """Trigger fields copied into the details of every decision of the case, where the
    trigger has a value for them (the manager named on an incident); a trigger without
    one adds nothing."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "actor", "basis", "breach_at", "breach_event", "breach_type", "deadline", "due",
        "expire_after", "fulfilled_by", "key", "last_event_at", "missing", "opened_at",
        "owner", "owners", "period", "started_at", "to", "what",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "missed": Message(
            en="{rule} missed: {what} for {subject} was due by {due}",
            zh="{rule} 逾期：{subject} 的「{what}」應於 {due} 前完成"),
        "breached": Message(
            en="{rule} breached: {what} for {subject} ({breach_type} at {breach_at})",
            zh="{rule} 違反：{subject} 的「{what}」（{breach_type}，{breach_at}）"),
        "incomplete": Message(
            en="{rule} incomplete: {what} for {subject} lacks {missing}",
            zh="{rule} 不完整：{subject} 的「{what}」缺少 {missing}"),
        "obligation": Message(
            en="{what} for {subject} is due by {due}",
            zh="{subject} 的「{what}」須於 {due} 前完成"),
        "warning": Message(
            en="{what} for {subject} falls due at {due}",
            zh="{subject} 的「{what}」將於 {due} 到期"),
        "escalation": Message(
            en="Escalate to {to}: {what} for {subject} was not done by {due}",
            zh="上報 {to}：{subject} 的「{what}」未於 {due} 前完成"),
        "expired": Message(
            en="{rule} expired: {what} for {subject} (case {key}, opened {opened_at}) had no "
               "event for {expire_after} since {last_event_at}; closed without a judgement",
            zh="{rule} 過期：{subject} 的「{what}」（案件 {key}，{opened_at} 開立）自 "
               "{last_event_at} 起 {expire_after} 無任何事件，未經判定即結案"),
    }

    def placeholders(self) -> frozenset[str]:
        names = super().placeholders()
        if len(self.key) == 1:  # only a key of several fields is spelled out in details
            names -= set(self.key) - self.message_fields
        return names

    @model_validator(mode="after")
    def _valid(self) -> DeadlineSpec:
        # The checks run in this order, so a spec with several faults names the first.
        self._check_clock()
        self._check_trigger_fields()
        self._check_steps()
        if self.require:
            if not self.fulfil:
                raise ValueError("require needs fulfil")
            for path, cond in self.require.items():
                for step in self.fulfil:
                    _check_field(step.type, path, what="require")
                _compile_condition(path, cond)
        if not (self.fulfil or self.breach or self.restart):
            raise ValueError("a deadline needs fulfil, breach or restart steps")
        return self

    def _check_clock(self) -> None:
        """One way of giving the time allowed (or none, open-ended), fit for the basis."""
        given = [x for x in (self.within, self.within_field, self.within_by) if x is not None]
        if self.open_ended:
            if given:
                raise ValueError("an open_ended deadline takes no within, within_field, within_by")
            if (self.warn_before or self.escalate_to or self.announce or self.start
                    or self.restart):
                raise ValueError("an open_ended deadline has no clock: no warn_before, "
                                 "escalate_to, announce, start or restart")
            if not (self.breach or self.require):
                raise ValueError("an open_ended deadline needs breach steps or require")
        elif len(given) != 1:
            raise ValueError("give exactly one of within, within_field, within_by "
                             "(or open_ended: true)")
        if self.restart and self.within_field:
            raise ValueError("restart needs a duration (within or within_by), not within_field")
        if self.basis == "working":
            specs = [self.within] if self.within else []
            if self.within_by:
                specs += [*self.within_by.values.values(), self.within_by.default]
            for spec in specs:
                if spec not in BOUNDARIES and parse_calendar_duration(spec).months:
                    raise ValueError(f"within {spec!r} with basis: working: a duration without "
                                     "years or months (they have no fixed amount of working "
                                     "time); use basis: wall")

    def _check_trigger_fields(self) -> None:
        for f in self.key:
            _check_field(self.trigger.type, f, what="key")
        _check_field(self.trigger.type, self.subject.field, what="subject.field")
        if self.continues is not None:
            _check_field(self.trigger.type, self.continues, what="continues")
        if self.within_field:
            _check_field(self.trigger.type, self.within_field, what="within_field")
        if self.within_by:
            _check_field(self.trigger.type, self.within_by.field, what="within_by.field")
        for f in self.carry:
            _check_field(self.trigger.type, f, what="carry")

    def _check_steps(self) -> None:
        for step in (*self.fulfil, *self.cancel, *self.breach, *self.start, *self.restart,
                     *self.reassign):
            if not step.correlate:
                for f in step.key or self.key:
                    _check_field(step.type, f, what="key")
            for mine, theirs in (*step.same.items(), *step.differ.items(),
                                 *step.correlate.items()):
                _check_field(step.type, mine, what="same/differ/correlate")
                _check_field(self.trigger.type, theirs, what="same/differ/correlate")
            if step.correlate_within is not None and not step.correlate:
                raise ValueError("correlate_within needs correlate")
            if step.alias is not None:
                _check_field(step.type, step.alias, what="alias")
        for move in self.reassign:
            _check_field(move.type, move.to, what="reassign.to")

    def event_types(self) -> frozenset[str]:
        types = set(self.trigger.type)
        for step in (*self.fulfil, *self.cancel, *self.breach, *self.start, *self.restart,
                     *self.reassign):
            types.update(step.type)
        return frozenset(types)

    def partition(self) -> Partition | str:
        steps = (*self.fulfil, *self.cancel, *self.breach, *self.start, *self.restart,
                 *self.reassign)
        if self.continues or any(s.correlate or s.alias for s in steps):
            return "correlates or aliases cases across keys"
        return keyed_by([(self.trigger.type, self.key[0]),
                         *((s.type, first_key(s.key, self.key)) for s in steps)])

    def why_not_strategy(self) -> Literal["generic", "deadline", "daily"]:
        return "deadline"

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _DeadlineRuntime(self, policy)


class _CompiledStep:
    __slots__ = ("alias", "corr", "corr_within", "differ", "index", "key", "keyget", "pred",
                 "same", "to", "types")

    def __init__(self, step: Step, default_key: tuple[str, ...]) -> None:
        self.types = frozenset(step.type)
        self.key = step.key or default_key
        self.keyget = key_getter(self.key)
        self.pred = step.predicate()
        # (reader of this event's field, the trigger's field it is compared with)
        self.same = tuple((field_getter(mine), theirs) for mine, theirs in step.same.items())
        self.differ = tuple((field_getter(mine), theirs)
                            for mine, theirs in step.differ.items())
        # correlate: this event's fields, and the name of the index over the trigger's.
        self.corr = tuple(step.correlate)
        self.index = join_key(step.correlate.values()) if step.correlate else ""
        self.corr_within = step.correlate_within
        self.alias = step.alias
        self.to = step.to if isinstance(step, Reassign) else None


def _joined(values: list[Any]) -> str | None:
    if any(v is None for v in values):
        return None
    return KEY_SEP.join(map(value_part, values))


class _Case(TypedDict):
    """One open case. ``clock`` is what its deadline is made of (None: open-ended);
    ``due`` None until its clock starts. Only with their options: ``carry`` (carry),
    ``touched`` / ``expiry`` (expire_after; expiry None once expired), ``warn_at``
    (warn_before)."""

    key: str
    trigger: str
    opened_at: datetime
    started_at: datetime | None
    clock: str | datetime | None
    due: datetime | None
    subject: str
    owners: list[str]
    context: list[str]
    aliases: list[str]
    period: int
    latest: str | None
    fields: dict[str, Any]
    carry: NotRequired[dict[str, str]]
    touched: NotRequired[datetime]
    expiry: NotRequired[str | None]
    warn_at: NotRequired[datetime]


class _State(TypedDict):
    """``_DeadlineRuntime.state`` (a plain dict at run time; the type is for mypy only):
    ``expiry`` UTC day -> keys (a dict used as an ordered set)."""

    open: dict[str, _Case]
    done: dict[str, datetime]
    alias: dict[str, str]
    index: dict[str, dict[str, list[str]]]
    expiry: dict[str, dict[str, None]]


class _DeadlineRuntime(RuleRuntime):
    """State: ``open`` key -> case dict; ``done`` keys already judged (with ``once``);
    ``alias`` extra key -> case key; ``index`` correlate index name -> trigger values ->
    case keys in opening order."""

    spec: DeadlineSpec
    # maps of maps: a late-event window's checkpoints track them one level down
    nested_state: ClassVar[frozenset[str]] = frozenset({"index", "expiry"})

    def __init__(self, spec: DeadlineSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        # done: closed key -> the instant it closed (see forget_after)
        # expiry: UTC day -> keys of the open cases expiring that day (see expire_after)
        state: _State = {"open": {}, "done": {}, "alias": {}, "index": {}, "expiry": {}}
        self.state = cast(dict[str, Any], state)
        self._forget: timedelta | None = (parse_duration(spec.forget_after)
                                          if spec.forget_after else None)
        self._sweep_at: datetime | None = None  # a memory chore only: not state
        self._expire: timedelta | None = (parse_duration(spec.expire_after)
                                          if spec.expire_after else None)
        self._trigger_types = frozenset(spec.trigger.type)
        self._trigger = spec.trigger.predicate()
        self._fulfil = [_CompiledStep(s, spec.key) for s in spec.fulfil]
        self._cancel = [_CompiledStep(s, spec.key) for s in spec.cancel]
        self._breach = [_CompiledStep(s, spec.key) for s in spec.breach]
        self._start = [_CompiledStep(s, spec.key) for s in spec.start]
        self._restart = [_CompiledStep(s, spec.key) for s in spec.restart]
        self._reassign = [_CompiledStep(s, spec.key) for s in spec.reassign]
        every = (*self._fulfil, *self._cancel, *self._breach, *self._start, *self._restart,
                 *self._reassign)
        self._needed = sorted({theirs for step in every
                               for _, theirs in (*step.same, *step.differ)}
                              | {f for s in spec.breach + spec.fulfil + spec.cancel
                                 + spec.start + spec.restart + spec.reassign
                                 for f in s.correlate.values()})
        self._needed_get = [(f, field_getter(f)) for f in self._needed]
        self._key = key_getter(spec.key)
        self._subject_get = field_getter(spec.subject.field)
        self._continues = field_getter(spec.continues) if spec.continues else None
        self._carry = [(f, field_getter(f)) for f in spec.carry]
        # Per event type, its plan: the steps of each kind it can be (in declaration order;
        # most events of a rule's types are one kind of step only, so the others are never
        # scanned), the closing kinds among them (breach, fulfil, cancel, each with its
        # handler) and whether it can trigger. Built once, so the per-event path builds
        # nothing.
        Handler = Callable[[_Case, EventBase, RuleContext], None]
        self._plans: dict[str, tuple[list[_CompiledStep], list[_CompiledStep],
                                     list[_CompiledStep],
                                     tuple[tuple[list[_CompiledStep], Handler], ...],
                                     bool]] = {}
        for t in spec.event_types():
            reassign, start, restart, breach, fulfil, cancel = (
                [step for step in steps if t in step.types]
                for steps in (self._reassign, self._start, self._restart, self._breach,
                              self._fulfil, self._cancel))
            handlers: tuple[tuple[list[_CompiledStep], Handler], ...] = tuple(
                (steps, handler) for steps, handler in (
                    (breach, self._on_breach), (fulfil, self._on_fulfil),
                    (cancel, self._on_cancel)) if steps)
            self._plans[t] = (reassign, start, restart, handlers, t in self._trigger_types)
        # correlate index name -> trigger fields it is built from
        self._indexes = {step.index: split_key(step.index) for step in every if step.index}
        self._require = [(p, _compile_condition(p, c)) for p, c in spec.require.items()]
        self._what = spec.title or spec.id
        self._warn: timedelta | None = (parse_duration(spec.warn_before) if spec.warn_before
                                        else None)

    # -- helpers ---------------------------------------------------------------------

    def _clock(self, event: EventBase) -> str | datetime | None:
        """What the deadline is made of for a trigger: a spec string, or a fixed instant."""
        s = self.spec
        if s.open_ended:
            return None
        if s.within_field:
            value = event_value(event, s.within_field)
            return value if isinstance(value, datetime) else None
        if s.within_by is not None:
            return s.within_by.values.get(str(event_value(event, s.within_by.field)),
                                          s.within_by.default)
        return s.within

    def _due(self, case: _Case, since: datetime, ctx: RuleContext) -> datetime:
        clock = case["clock"]
        if isinstance(clock, datetime):
            # A deadline taken from an event field (a promised reply time) may lie before
            # the event that set it: it is then due at once, never before its own evidence.
            return max(clock, since)
        # Only open-ended cases have no clock, and they are never armed (no start/restart
        # steps, see _check_clock).
        assert clock is not None
        return ctx.calendar.deadline(since, clock, self.spec.basis)

    def _subject(self, case: _Case) -> Subject:
        return Subject(kind=self.spec.subject.kind, id=case["subject"])

    @staticmethod
    def _evidence(case: _Case, *more: str) -> list[str]:
        latest = case["latest"]
        return [case["trigger"], *case["context"], *((latest,) if latest else ()), *more]

    def _details(self, case: _Case, ctx: RuleContext, **extra: Any) -> dict[str, Any]:
        s = self.spec
        out: dict[str, Any] = {
            "what": self._what,
            "key": "/".join(split_key(case["key"])),
            "opened_at": _iso(ctx, case["opened_at"]),
        }
        if len(s.key) > 1:
            out.update(zip(s.key, split_key(case["key"]), strict=False))
        if case["due"] is not None:
            out["due"] = _iso(ctx, case["due"])
            out["deadline"] = (case["clock"] if isinstance(case["clock"], str)
                               else s.within_field)
            out["basis"] = s.basis
        else:
            out["deadline"] = "open" if s.open_ended else "not started"
        if case["started_at"] is not None and self._start:
            out["started_at"] = _iso(ctx, case["started_at"])
        if s.actor:
            out["actor"] = s.actor
        if self._reassign:
            out["owner"] = case["subject"]
            out["owners"] = list(case["owners"])
        if self._restart:
            out["period"] = case["period"]
        out.update(case.get("carry", ()))
        out.update(extra)
        return out

    @staticmethod
    def _fits(step: _CompiledStep, event: EventBase, case: _Case) -> bool:
        fields = case["fields"]
        for mine, theirs in step.same:
            if mine(event) != fields.get(theirs):
                return False
        for mine, theirs in step.differ:  # noqa: SIM110 - no generator per event
            if mine(event) == fields.get(theirs):
                return False
        return True

    def _find(self, step: _CompiledStep, event: EventBase,
              ctx: RuleContext) -> _Case | None:
        """The open case this step event belongs to, if any."""
        state = cast(_State, self.state)
        opened = state["open"]
        if step.index:
            values = _joined([event_value(event, f) for f in step.corr])
            keys = state["index"].get(step.index, {}).get(values, ()) if values else ()
            for open_key in reversed(keys):
                candidate = opened[open_key]
                if step.corr_within is not None and ctx.calendar.deadline(
                        candidate["opened_at"], step.corr_within) < event.at:
                    continue
                if self._fits(step, event, candidate):
                    return candidate
            return None
        key = step.keyget(event)
        if key is None:
            return None
        key = state["alias"].get(key, key)
        case = opened.get(key)
        if case is None or not self._fits(step, event, case):
            return None
        return case

    def _add_alias(self, step: _CompiledStep, event: EventBase, case: _Case) -> None:
        if step.alias is None:
            return
        value = event_value(event, step.alias)
        if value is None:
            return
        alias = key_part(str(value))
        state = cast(_State, self.state)
        if alias != case["key"] and alias not in state["open"]:
            state["alias"][alias] = case["key"]
            case["aliases"].append(alias)

    # -- events ----------------------------------------------------------------------

    def _first(self, steps: list[_CompiledStep], event: EventBase,
               ctx: RuleContext) -> tuple[_CompiledStep, _Case] | None:
        """The first of ``steps`` (all of this event's type) this event is, with the open
        case it reaches."""
        for step in steps:
            if step.pred(event):
                case = self._find(step, event, ctx)
                if case is not None:
                    return step, case
        return None

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        plan = self._plans.get(event.type)
        if plan is None:
            return
        reassign, start, restart, closers, triggers = plan
        if reassign and (hit := self._first(reassign, event, ctx)):
            step, case = hit
            new = event_value(event, step.to) if step.to else None
            self._touch(case, event)
            if new is not None:
                case["subject"] = str(new)
                case["owners"].append(str(new))
                case["context"].append(event.id)
                self._add_alias(step, event, case)
        if start and (hit := self._first(start, event, ctx)):
            step, case = hit
            self._touch(case, event)
            if case["due"] is None:
                self._add_alias(step, event, case)
                self._arm(case, event, ctx)
        if restart and (hit := self._first(restart, event, ctx)):
            step, case = hit
            self._touch(case, event)
            if case["due"] is not None:
                self._add_alias(step, event, case)
                self._restart_clock(case, event, ctx)
                return
        # Breaches, fulfilments and cancellations next: an event that both triggers and
        # fulfils (rare) is judged as a step of the case already open, never as fulfilling
        # itself.
        for steps, handler in closers:
            if hit := self._first(steps, event, ctx):
                step, case = hit
                self._add_alias(step, event, case)
                handler(case, event, ctx)
                return
        if triggers and self._trigger(event):
            self._open(event, ctx)

    def _open(self, event: EventBase, ctx: RuleContext) -> None:
        s = self.spec
        key = self._key(event)
        subject_id = self._subject_get(event)
        if key is None or subject_id is None:
            return
        state = cast(_State, self.state)
        if key in state["open"] or key in state["alias"] or (s.once and self._done(key, ctx)):
            return
        if self._continues is not None and (earlier := self._continues(event)) is not None:
            prior = key_part(str(earlier))
            if prior in state["open"] or prior in state["alias"] or (
                    s.once and self._done(prior, ctx)):
                return  # the matter is the earlier case's (open, or already judged)
        clock = self._clock(event)
        if clock is None and not s.open_ended:
            return
        fields = {f: get(event) for f, get in self._needed_get}
        case: _Case = {
            "key": key,
            "trigger": event.id,
            "opened_at": event.at,
            "started_at": None,
            "clock": clock,
            "due": None,
            "subject": str(subject_id),
            "owners": [str(subject_id)],
            "context": [],
            "aliases": [],
            "period": 0,
            "latest": None,
            "fields": fields,
        }
        if self._carry:  # only then: other rules' case state stays as it was
            case["carry"] = {f: str(v) for f, get in self._carry if (v := get(event)) is not None}
        state["open"][key] = case
        if self._expire is not None:
            case["touched"] = event.at
            self._file_expiry(case, event.at + self._expire, ctx)
        for name, trigger_fields in self._indexes.items():
            values = _joined([fields.get(f) for f in trigger_fields])
            if values is not None:
                state["index"].setdefault(name, {}).setdefault(values, []).append(key)
        if not s.open_ended and not self._start:
            self._arm(case, event, ctx)

    def _arm(self, case: _Case, event: EventBase, ctx: RuleContext) -> None:
        """Start the case's clock at ``event`` (the trigger, or its ``start`` event)."""
        if event.id != case["trigger"]:
            case["context"].append(event.id)
        case["started_at"] = event.at
        self._set_due(case, self._due(case, event.at, ctx), event.at, ctx)
        s = self.spec
        if s.announce:
            escalate = s.announce_kind == "escalation"
            ctx.emit(s, "obligation", kind=s.announce_kind, subject=self._subject(case),
                     at=event.at, evidence=self._evidence(case), key=case["key"],
                     details=self._details(case, ctx, **({"to": s.escalate_to}
                                                         if escalate and s.escalate_to else {})),
                     severity=None if escalate else "info")

    def _set_due(self, case: _Case, due: datetime, now: datetime,
                 ctx: RuleContext) -> None:
        case["due"] = due
        ctx.schedule(due, case["key"])
        if self._warn is not None:
            warn_at = due - self._warn
            if warn_at > now:
                case["warn_at"] = warn_at
                ctx.schedule(warn_at, _WARN + case["key"])

    def _touch(self, case: _Case, event: EventBase) -> None:
        """An event of the case that leaves it open: its expiry counts from here (the timer
        set when it opened is moved on lazily, when it fires)."""
        if "touched" in case and event.at > case["touched"]:
            case["touched"] = event.at

    def _file_expiry(self, case: _Case, when: datetime, ctx: RuleContext) -> None:
        """File the case under the first UTC midnight at or after ``when``: one timer per
        day for all the cases expiring that day (not one per case, which would keep a
        timer for every case long closed), and closing a case unfiles it."""
        utc = when.astimezone(UTC)
        day = utc.replace(hour=0, minute=0, second=0, microsecond=0)
        if day < utc:
            day += _DAY
        bucket = day.isoformat()
        filed = cast(_State, self.state)["expiry"]
        keys = filed.get(bucket)
        if keys is None:
            # The day's timer is set with its first case: it stays set until it fires and
            # takes the day's cases (an emptied day is dropped, and set again if refilled).
            keys = filed[bucket] = {}
            ctx.schedule(day, _EXPIRE + bucket)
        keys[case["key"]] = None
        case["expiry"] = bucket

    def _unfile_expiry(self, case: _Case) -> None:
        bucket = case.get("expiry")
        if bucket is None:
            return
        filed = cast(_State, self.state)["expiry"]
        keys = filed.get(bucket)
        if keys is not None:
            keys.pop(case["key"], None)
            if not keys:
                del filed[bucket]

    def _expire_day(self, bucket: str, due: datetime, ctx: RuleContext) -> None:
        state = cast(_State, self.state)
        keys = state["expiry"].pop(bucket, None)
        if not keys or self._expire is None:
            return
        opened = state["open"]
        # In key order: the same whatever order the day's keys were filed in (a late event's
        # repair may file them again in another).
        for key in sorted(keys):
            case = opened.get(key)
            if case is None or case.get("expiry") != bucket:
                continue
            touched: datetime = case["touched"]
            if touched + self._expire > due:
                self._file_expiry(case, touched + self._expire, ctx)  # an event came since
                continue
            case["expiry"] = None
            s = self.spec
            details = self._details(case, ctx, expire_after=s.expire_after,
                                    last_event_at=_iso(ctx, touched))
            # Not judged, so not remembered as judged (once): a later trigger with its key
            # opens a new case. Its key is not kept a year more.
            self._close(case, ctx.now, judged=False)
            ctx.emit(s, "expired", kind="warning", subject=self._subject(case), at=due,
                     evidence=self._evidence(case), key=key, details=details, severity="low")

    def _restart_clock(self, case: _Case, event: EventBase, ctx: RuleContext) -> None:
        case["latest"] = event.id  # the update the next period runs from
        case["period"] += 1
        self._set_due(case, self._due(case, event.at, ctx), event.at, ctx)

    def _done(self, key: str, ctx: RuleContext) -> bool:
        """True when ``key`` was judged and is still remembered at ``ctx.now``. Decided by
        the closing time alone, so when the sweep below runs never changes an answer."""
        closed = cast(_State, self.state)["done"].get(key)
        if closed is None:
            return False
        return self._forget is None or closed + self._forget >= ctx.now

    def _sweep(self, now: datetime) -> None:
        """Drop the closed keys ``_done`` would no longer count, about once a day of event
        time (each sweep is one pass over the keys closed within ``forget_after``)."""
        if self._forget is None or (self._sweep_at is not None and now < self._sweep_at):
            return
        self._sweep_at = now + _SWEEP_EVERY
        horizon = now - self._forget
        done = cast(_State, self.state)["done"]
        # ``_close`` keeps ``done`` in closing order (event time only moves forward), so the
        # stale keys are a prefix: stop at the first one still remembered instead of a pass
        # over a year of keys every day. Were the order ever off (a restored state), a stale
        # key merely stays longer: ``_done`` judges by time, never by presence alone.
        stale: list[str] = []
        for k, closed in done.items():
            if closed >= horizon:
                break
            stale.append(k)
        for k in stale:
            del done[k]

    def _close(self, case: _Case, now: datetime, judged: bool = True) -> None:
        state = cast(_State, self.state)
        key = case["key"]
        del state["open"][key]
        self._unfile_expiry(case)
        for alias in case["aliases"]:
            state["alias"].pop(alias, None)
        for name, trigger_fields in self._indexes.items():
            values = _joined([case["fields"].get(f) for f in trigger_fields])
            if values is None:
                continue  # never indexed (see _open)
            bucket = state["index"].get(name, {})
            keys = bucket.get(values)
            if keys is not None:
                keys.remove(key)
                if not keys:
                    del bucket[values]
        if self.spec.once and judged:
            done = state["done"]
            # Re-inserted at the end, so the dict stays in closing order (see _sweep).
            done.pop(key, None)
            done[key] = now
            for alias in case["aliases"]:
                done.pop(alias, None)
                done[alias] = now
            self._sweep(now)

    def _on_fulfil(self, case: _Case, event: EventBase, ctx: RuleContext) -> None:
        self._close(case, ctx.now)
        missing = [self._missing(p, event) for p, test in self._require if not test(event)]
        if missing:
            ctx.emit(self.spec, "incomplete", kind="violation", subject=self._subject(case),
                     at=event.at, evidence=self._evidence(case, event.id), key=case["key"],
                     details=self._details(case, ctx, missing=", ".join(missing),
                                           fulfilled_by=event.id))

    def _missing(self, path: str, event: EventBase) -> str:
        """What a failed ``require`` lacks: the path, and for ``contains``/``contains_all``
        the items not there (``sections: root_cause``)."""
        cond = self.spec.require[path]
        if isinstance(cond, dict) and len(cond) == 1:
            (op, arg), = cond.items()
            if op in ("contains", "contains_all"):
                have = event_value(event, path) or ()
                wanted = arg if op == "contains_all" else [arg]
                lacking = [str(x) for x in wanted if x not in have]
                return f"{path}: {' '.join(lacking)}"
        return path

    def _on_cancel(self, case: _Case, event: EventBase, ctx: RuleContext) -> None:
        self._close(case, ctx.now)

    def _on_breach(self, case: _Case, event: EventBase, ctx: RuleContext) -> None:
        key = case["key"]
        if self.spec.breach_closes:
            self._close(case, ctx.now)
        else:
            self._touch(case, event)
            key = key + KEY_SEP + key_part(event.id)  # every breach is its own decision
        ctx.emit(self.spec, "breached", kind=self.spec.kind, subject=self._subject(case),
                 at=event.at, evidence=self._evidence(case, event.id), key=key,
                 details=self._details(case, ctx, breach_type=event.type,
                                       breach_at=_iso(ctx, event.at), breach_event=event.id))

    # -- time ------------------------------------------------------------------------

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        s = self.spec
        if key.startswith(_EXPIRE):
            self._expire_day(key[len(_EXPIRE):], due, ctx)
            return
        if key.startswith(_WARN):
            case = cast(_State, self.state)["open"].get(key[len(_WARN):])
            if case is not None and case.get("warn_at") == due:
                ctx.emit(s, "warning", kind="warning", subject=self._subject(case), at=due,
                         evidence=self._evidence(case), key=case["key"],
                         details=self._details(case, ctx), severity="low")
            return
        case = cast(_State, self.state)["open"].get(key)
        if case is None or case["due"] != due:
            return  # fulfilled, cancelled, breached or restarted since it was scheduled
        details = self._details(case, ctx)
        evidence = self._evidence(case)
        subject = self._subject(case)
        if self._restart:
            # Still owed: the next period runs from the missed deadline.
            case["period"] += 1
            self._set_due(case, self._due(case, due, ctx), due, ctx)
        else:
            self._close(case, ctx.now)
        ctx.emit(s, "missed", kind=s.kind, subject=subject, at=due, evidence=evidence,
                 key=key, details=details)
        if s.escalate_to:
            ctx.emit(s, "escalation", kind="escalation", subject=subject, at=due,
                     evidence=evidence, key=key, details={**details, "to": s.escalate_to})
