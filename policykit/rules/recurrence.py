"""The *recurrence* shape: at least ``min_count`` matching events per window per subject.

Subjects come from a *population* (employees whose profile has a role, customers from
registration until deactivation, delivered projects) or, without one, from the occurrences
themselves (anyone who clocks in). Windows are calendar periods (day, working day, week,
month, quarter, half, year) or month windows counted from the subject's creation event with
month-end clamping, and the schedule may change with the subject's age. Inside a window an
optional ``due`` time says by when the occurrences are owed (a daily report by the end of
working hours; a weekly report Friday 14:00, on the last working day before it when Friday
is not one) and ``not_before`` when the last one may happen at the earliest (no clock-out
before 17:30).

Outcomes (each enabled by naming it in ``outcomes`` with its decision kind):

- ``missed``: fewer than ``min_count`` occurrences by ``due`` (the window's last instant by
  default); judged at ``due``, or at the window's end when ``late`` is enabled too. Needs a
  population: nobody owes anything otherwise. Its evidence is the event that created the
  subject (the profile, the delivery, the registration) plus any occurrences short of the count.
- ``late``: an occurrence after ``due`` (inside the window) while fewer than ``min_count``
  came before it: the first clock-in after 08:30 is a late day. Judged at the occurrence,
  with the seconds and minutes late.
- ``early``: at the window's end, the window's last occurrence lies before ``not_before``
  (the last clock-out of a working day before 17:30).
- ``warning`` (kind ``warning``): with ``warn_before``, still short of ``min_count`` that long
  before ``due``.

A window is not judged for a subject that did not exist yet at its due time, for a window
whose due day does not exist or lies outside it (a weekly report in a week without a working
day), nor when the subject's exemptions (approved leave) cover every working day of it.

Example: the callback-frequency rules (policykit/pack/callback-frequency.yaml, R1–R4)
in a policy file::

    - shape: recurrence          # R1: a delivered project gets a phone callback monthly in
      id: R1                     # its first year, quarterly after; window_alignment is the
      subject: {kind: project, field: project_id}          # $window_alignment parameter
      population: {start: {type: project.delivered}}
      occurrence: {type: callback.made, where: {channel: phone}}
      window:
        alignment: $window_alignment       # anniversary (from the delivery) | calendar
        schedule: [{months: 1, until: 12}, {months: 3}]
      warn_before: $warn_before            # P5D: a warning five days before a window closes
    - shape: recurrence          # R2: each director visits homes at least once a year
      id: R2
      subject: {kind: employee, field: employee_id}
      population: {start: {type: employee.profile, where: {role: director}}}
      occurrence: {type: home_visit.made}
      min_count: $min_per_year
      window: {unit: year}
    - shape: recurrence          # R3: each property officer visits the area once a quarter
      id: R3
      subject: {kind: employee, field: employee_id}
      population: {start: {type: employee.profile, where: {role: property_officer}}}
      occurrence: {type: area_visit.made}
      window: {unit: quarter}
    - shape: recurrence          # R4: one residents' forum every half year (one subject for
      id: R4                     # the whole site once any household is registered)
      subject: {kind: site, field: site_id}
      population: {start: {type: household.registered}, field: household_id, value: all}
      occurrence: {type: forum.held}
      window: {unit: half}

A population's ``start`` events are state: the latest one of those types for an id decides
membership (a profile re-sent with another role ends the old one); ``end`` events end it.
Without a population, ``profile_where`` can still leave out employees by their profile (guards
on shifts from office-hours lateness). A window is owed when the subject exists at its due
time (a customer registered on December 20 owes that December's gift).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, ClassVar, Literal, NotRequired, TypedDict, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..calendar import CalendarError, PeriodUnit, parse_duration
from ..models.decisions import DecisionKind, Subject
from ..models.events import EventBase
from ._base import (
    KEY_SEP,
    Condition,
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
    _compile_condition,
    event_value,
    key_part,
    keyed_by,
)
from ._base import local_iso as _iso
from ._scope import Population

__all__ = ["Exemption", "Only", "PerItem", "Phase", "Population", "RecurrenceSpec",
           "TimeOfWindow", "WindowSpec"]

Unit = Literal["day", "working_day", "week", "month", "quarter", "half", "year"]
Outcome = Literal["missed", "late", "early"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_UNIT_OF_MONTHS: dict[int, PeriodUnit] = {1: "month", 3: "quarter", 6: "half", 12: "year"}
_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$")
_NAMED_TIMES = ("start_of_day", "work_start", "work_end", "end_of_day")
_ONE_US = timedelta(microseconds=1)
_MAX_SCAN = 1000  # windows skipped looking for the next one that is judged


class PerItem(BaseModel):
    """One duty per item of a list on the population's start event (a property officer's
    ``areas``): the subject owes ``min_count`` occurrences per window for each item, and an
    occurrence counts only for the item its ``occurrence_field`` names (a visit to an area
    not on the list counts for nothing). Decisions keep the subject (the officer), name the
    item in ``details[name]`` and use the ``<outcome>_per_item`` message when the rule gives
    one. A member whose list is absent or empty owes one duty that any occurrence meets
    (``without_items: any``, decided as without ``per_item``) or nothing (``none``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    start_field: str
    """The list (or single id) field of the population's start event: the member's items."""
    occurrence_field: str
    """The occurrence's field naming the item it is for."""
    name: str = Field(default="item", pattern=r"^[a-z][a-z0-9_]{0,40}$")
    """The details key (and message field) holding the item."""
    without_items: Literal["any", "none"] = "any"
    """A member listing no items owes one duty any occurrence meets (``any``) or none."""


class Phase(BaseModel):
    """One step of an age-dependent schedule: windows of ``months`` months while the subject
    is younger than ``until`` months (None: from here on)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    months: int = Field(ge=1, le=120)
    """The length of each window in this phase, in months."""
    until: int | None = Field(default=None, ge=1, le=1200)
    """The phase lasts while the subject is younger than this many months; none: from here
    on."""


class WindowSpec(BaseModel):
    """A calendar ``unit``; or windows of ``months`` months; or an age-dependent
    ``schedule``. Month windows are ``anniversary`` (counted from the subject's creation,
    month-end clamped, each computed from the anchor) or ``calendar`` aligned (1, 3, 6 and
    12 months = month, quarter, half, year; clipped to the phase they belong to)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    unit: Unit | None = None
    """A calendar period: day, working_day, week, month, quarter, half or year."""
    months: int | None = Field(default=None, ge=1, le=120)
    """Or: windows of this many months."""
    schedule: tuple[Phase, ...] = ()
    """Or: window lengths by the subject's age."""
    alignment: Literal["anniversary", "calendar"] = "anniversary"
    """Month windows counted from the subject's creation (``anniversary``) or aligned to the
    calendar (``calendar``)."""

    @model_validator(mode="after")
    def _valid(self) -> WindowSpec:
        given = sum(x is not None and x != () for x in (self.unit, self.months, self.schedule))
        if given != 1:
            raise ValueError("give exactly one of unit, months, schedule")
        phases = self.phases()
        last = 0
        for i, p in enumerate(phases):
            if (p.until is None) != (i == len(phases) - 1):
                raise ValueError("every schedule step but the last needs 'until' (months of "
                                 "age), and the last must not have one")
            if p.until is not None:
                if p.until <= last:
                    raise ValueError("schedule 'until' ages must increase")
                last = p.until
            if self.unit is None and self.alignment == "calendar" and \
                    p.months not in _UNIT_OF_MONTHS:
                raise ValueError(f"calendar-aligned windows of {p.months} months do not exist;"
                                 " use 1, 3, 6 or 12, or alignment: anniversary")
        return self

    def phases(self) -> tuple[Phase, ...]:
        if self.schedule:
            return self.schedule
        if self.months is not None:
            return (Phase(months=self.months),)
        return ()

    @property
    def anchored(self) -> bool:
        """True when windows depend on the subject's creation time."""
        return self.unit is None and (self.alignment == "anniversary" or len(self.schedule) > 1)


class TimeOfWindow(BaseModel):
    """An instant inside a window: a ``day`` of it at a ``time``, plus ``grace``.

    ``day``: ``last`` (default), ``first``, a weekday (``mon`` … ``sun``: the last such day
    in the window) or n (the n-th day of the window). ``time``: ``HH:MM[:SS]``,
    ``start_of_day``, ``work_start``, ``work_end`` or ``end_of_day`` (24:00, the default).
    ``non_working``: when that day is not a working day keep it, move to the ``previous`` or
    ``next`` working day, or ``skip`` the window. An instant before the window's start skips
    the window; one after its end is its end."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    day: Literal["first", "last", "mon", "tue", "wed", "thu", "fri", "sat", "sun"] | Annotated[
        int, Field(le=366)] = "last"
    """``last``, ``first``, a weekday (the last such day in the window) or n (the n-th day of
    the window)."""
    time: str = "end_of_day"
    """``HH:MM[:SS]``, ``start_of_day``, ``work_start``, ``work_end`` or ``end_of_day``."""
    grace: str | None = None
    """Added to the instant (an ISO-8601 duration)."""
    non_working: Literal["keep", "previous", "next", "skip"] = "keep"
    """When that day is not a working day: ``keep`` it, move to the ``previous`` or ``next``
    working day, or ``skip`` the window."""

    @model_validator(mode="after")
    def _valid(self) -> TimeOfWindow:
        if isinstance(self.day, int) and self.day < 1:
            raise ValueError("day as a number counts from 1 (the window's first day)")
        if self.time not in _NAMED_TIMES and not _TIME.match(self.time):
            raise ValueError(f"time must be HH:MM[:SS] or one of {', '.join(_NAMED_TIMES)}, "
                             f"got {self.time!r}")
        if self.grace is not None:
            parse_duration(self.grace)
        return self


class Only(BaseModel):
    """Judge only some windows: by the month or weekday of their first day, or only windows
    with a working day (for day windows: working days)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    months: tuple[int, ...] = ()
    """Only windows starting in these months (1-12)."""
    weekdays: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = ()
    """Only windows starting on these weekdays."""
    working_days: bool = False
    """Only windows with a working day (for day windows: working days)."""

    @field_validator("months")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= m <= 12 for m in v):
            raise ValueError("months are 1 to 12")
        return v


class Exemption(Match):
    """Events exempting a subject for a span of dates (approved leave): a window all of
    whose working days are covered is not judged. ``key`` names the subject field (default
    the rule's ``subject.field``)."""

    start_field: str = "start"
    """The exempting event's field holding the first exempt date."""
    end_field: str = "end"
    """The exempting event's field holding the last exempt date."""


def _default_outcomes() -> dict[Outcome, DecisionKind]:
    return {"missed": "violation"}


class RecurrenceSpec(RuleSpec):
    """At least ``min_count`` ``occurrence`` events per window per subject; see the module
    docstring for the outcomes and an example."""

    shape: Literal["recurrence"] = "recurrence"
    subject: SubjectRef
    """The decisions' subject kind, and the occurrence field naming the subject."""
    population: Population | None = None
    """Who owes the occurrences, and since when; none: whoever has occurrences (only ``late``
    and ``early`` can then be judged)."""
    occurrence: OneOrMany[Match]
    """The events that count (one matcher or a list)."""
    require: Literal["any", "each"] = "any"
    """``any``: occurrences of all listed matchers count together; ``each``: every
    matcher needs ``min_count`` of its own (a gift *and* a demand survey)."""
    min_count: Count = Field(default=1, ge=1)
    """How many occurrences each window needs."""
    window: WindowSpec
    """The windows the occurrences are counted in."""
    only: Only | None = None
    """Judge only some windows."""
    due: TimeOfWindow | None = None
    """By when in the window the occurrences are owed; default the window's end."""
    not_before: TimeOfWindow | None = None
    """The window's last occurrence may not be before this (outcome ``early``)."""
    warn_before: str | None = None
    """Emit a ``warning`` this long before ``due`` while still short of ``min_count``."""
    exempt: OneOrMany[Exemption] = ()
    """Events exempting a subject for a span of dates (approved leave)."""
    period_field: str | None = None
    """An occurrence field holding a day of the window it is for (a report's ``period``):
    an occurrence counts only in the window holding that day, so a late report for last
    week does not stand for this week's. An occurrence without the field counts in the
    window it arrives in."""
    per_item: PerItem | None = None
    """One duty per item of a list on the start event (a property officer's areas)."""
    profile_where: dict[str, Condition] = Field(default_factory=dict)
    """Conditions on an employee subject's latest ``employee.profile`` (e.g. ``{role:
    {not_in: [guard]}}``): occurrences of an employee whose profile fails them are ignored;
    one without a profile is judged. For populations without a start event of their own."""
    outcomes: dict[Outcome, DecisionKind] = Field(default_factory=_default_outcomes)
    """The outcomes to judge (missed, late, early) and each one's decision kind."""
    rename: dict[str, str] = Field(default_factory=dict)
    """Outcome names as decisions show them, e.g. ``{missed: no_sign_in}``."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "count", "counts", "due", "early_minutes", "early_seconds", "late_minutes",
        "late_seconds", "min_count", "missing", "not_before", "occurred_at", "occurrence",
        "occurrences", "what", "window", "window_end", "window_start",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "missed": Message(
            en="{rule} missed: {subject} had {count} of {min_count} {what} in {window} "
               "(due {due})",
            zh="{rule} 未完成：{subject} 於 {window} 僅有 {count}/{min_count} 次「{what}」"
               "（應於 {due} 前）"),
        "late": Message(
            en="{rule} late: {subject} — {what} at {occurred_at}, due {due} "
               "({late_minutes} min late)",
            zh="{rule} 遲到：{subject} 的「{what}」於 {occurred_at}，應於 {due} 前"
               "（遲 {late_minutes} 分鐘）"),
        "early": Message(
            en="{rule} early: {subject} — last {what} at {occurred_at}, not before "
               "{not_before} ({early_minutes} min early)",
            zh="{rule} 早退：{subject} 最後一次「{what}」於 {occurred_at}，不得早於 "
               "{not_before}（早 {early_minutes} 分鐘）"),
        "warning": Message(
            en="{what} for {subject} in {window} falls due at {due} ({count} of {min_count} "
               "so far)",
            zh="{subject} 於 {window} 的「{what}」將於 {due} 到期（目前 {count}/{min_count}）"),
    }

    @model_validator(mode="after")
    def _valid(self) -> RecurrenceSpec:
        # The checks run in this order, so a spec with several faults names the first.
        self._check_matchers()
        self._check_per_item()
        self._check_exempt_and_profile()
        self._check_outcomes()
        self._check_rename()
        return self

    def _check_matchers(self) -> None:
        """Occurrence, population and period fields exist on the events they read."""
        if not self.occurrence:
            raise ValueError("occurrence needs at least one event matcher")
        pop = self.population
        for m in self.occurrence:
            if m.key is not None and len(m.key) != 1:
                raise ValueError("an occurrence key names one field: the subject's id")
            if pop is None or pop.value is None:
                _check_field(m.type, m.key[0] if m.key else self.subject.field,
                             what="occurrence.key")
        if pop is not None:
            field = pop.field or self.subject.field
            for m in (pop.start, *pop.end):
                _check_field(m.type, field, what="population.field")
        if self.period_field is not None:
            for m in self.occurrence:
                _check_field(m.type, self.period_field, what="period_field")

    def _check_per_item(self) -> None:
        pop = self.population
        if self.per_item is not None:
            per = self.per_item
            if pop is None or pop.value is not None:
                raise ValueError("per_item needs a population whose members are the subjects "
                                 "(no population.value)")
            if self.exempt or ({"late", "early"} & set(self.outcomes)):
                raise ValueError("per_item supports only missed (and warnings), without exempt")
            _check_field(pop.start.type, per.start_field, what="per_item.start_field")
            for m in self.occurrence:
                _check_field(m.type, per.occurrence_field, what="per_item.occurrence_field")
        if self.per_item is not None and self.period_field is not None:
            raise ValueError("per_item and period_field cannot be combined")

    def _check_exempt_and_profile(self) -> None:
        for ex in self.exempt:
            _check_field(ex.type, ex.key[0] if ex.key else self.subject.field, what="exempt.key")
            _check_field(ex.type, ex.start_field, what="exempt.start_field")
            _check_field(ex.type, ex.end_field, what="exempt.end_field")
        if self.profile_where:
            if self.subject.kind != "employee":
                raise ValueError("profile_where needs employee subjects")
            for path, cond in self.profile_where.items():
                _check_field(("employee.profile",), path, what="profile_where")
                _compile_condition(path, cond)

    def _check_outcomes(self) -> None:
        """Each enabled outcome has what it is judged by."""
        pop = self.population
        outs = self.outcomes
        if not outs and not self.warn_before:
            raise ValueError("outcomes is empty: name at least one of missed, late, early")
        if ("missed" in outs or self.warn_before) and pop is None:
            raise ValueError("missed and warn_before need a population: without one nobody "
                             "owes anything (only late and early can be judged)")
        if self.warn_before and "missed" not in outs:
            raise ValueError("warn_before warns of a coming 'missed': enable it in outcomes")
        if "late" in outs and self.due is None:
            raise ValueError("late needs due: the instant after which an occurrence is late")
        if "early" in outs and self.not_before is None:
            raise ValueError("early needs not_before")
        if self.require == "each" and ({"late", "early"} & set(outs)):
            raise ValueError("require: each supports only missed (late and early judge one "
                             "stream of occurrences)")
        if self.window.anchored and pop is None:
            raise ValueError("windows counted from the subject's creation need a population")
        if self.warn_before:
            parse_duration(self.warn_before)

    def _check_rename(self) -> None:
        for old, new in self.rename.items():
            if old not in ("missed", "late", "early", "warning"):
                raise ValueError(f"rename: unknown outcome {old!r}")
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,40}", new):
                raise ValueError(f"rename: {new!r} is not a lower_snake_case name")

    def event_types(self) -> frozenset[str]:
        types: set[str] = set()
        for m in (*self.occurrence, *self.exempt):
            types.update(m.type)
        if self.population is not None:
            for m in (self.population.start, *self.population.end):
                types.update(m.type)
        return frozenset(types)

    def placeholders(self) -> frozenset[str]:
        names = super().placeholders()
        return names | {self.per_item.name} if self.per_item is not None else names

    def message(self, outcome: str) -> Message:
        canonical = next((k for k, v in self.rename.items() if v == outcome), outcome)
        found = (self.messages.get(outcome) or self.messages.get(canonical)
                 or self.default_messages.get(canonical))
        return found if found is not None else super().message(outcome)

    def state_types(self) -> frozenset[str]:
        pop = self.population
        if pop is None:
            return frozenset()
        return frozenset(t for m in (pop.start, *pop.end) for t in m.type)

    def partition(self) -> Partition | str:
        pop = self.population
        if pop is not None and pop.value is not None:
            return "one subject for a whole population"
        sf = self.subject.field
        pairs: list[tuple[Iterable[str], str | None]] = [
            (m.type, m.key[0] if m.key else sf) for m in self.occurrence]
        if pop is not None:
            pairs += [(m.type, pop.field or sf) for m in (pop.start, *pop.end)]
        pairs += [(m.type, m.key[0] if m.key else sf) for m in self.exempt]
        return keyed_by(pairs, subject_keyed=True,
                        directory=bool(getattr(self, "profile_where", None)))

    def reads_directory(self) -> bool:
        return True

    def why_not_strategy(self) -> Literal["generic", "deadline", "daily"]:
        return "daily"

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _RecurrenceRuntime(self, policy)


# ------------------------------------------------------------------------ the evaluator

Window = tuple[str, datetime, datetime]  # (label, first instant, last instant)


def _utc(t: datetime) -> datetime:
    return t.astimezone(UTC)


def _getter(path: str) -> Callable[[EventBase], Any]:
    """A fast reader of one event field (plain attribute access when not dotted)."""
    if "." in path:
        return lambda ev: event_value(ev, path)
    return lambda ev: getattr(ev, path, None)


_FORGET = "forget"
_KEEP_EXEMPT = timedelta(days=366)


class _Win(TypedDict):
    """A subject's current window, in UTC: ``counts`` one per occurrence matcher with
    ``require: each`` (else one), ``ids`` its first occurrences, ``last`` the latest one's
    time and id."""

    label: str
    start: datetime
    end: datetime
    due: datetime | None
    not_before: datetime | None
    counts: list[int]
    ids: list[str]
    last: tuple[datetime, str] | None


class _Subj(TypedDict):
    """A subject (with ``per_item``: one duty). ``anchor`` and ``origin`` are the time and id
    of the event that created it (None without a population); ``resume`` where a window
    beyond the calendar's data waits; ``who`` and ``item`` only with ``per_item``."""

    anchor: datetime | None
    origin: str | None
    win: _Win | None
    resume: NotRequired[datetime]
    who: NotRequired[str]
    item: NotRequired[str | None]


class _State(TypedDict):
    """``_RecurrenceRuntime.state`` (a plain dict at run time; the type is for mypy only).
    ``members`` holds a subject id per member, or with ``per_item`` its duties' ids."""

    members: dict[str, str] | dict[str, list[str]]
    subjects: dict[str, _Subj]
    agenda: dict[str, dict[str, str]]
    exempt: dict[str, list[list[date]]]


class _RecurrenceRuntime(RuleRuntime):
    """State (plain data):

    - ``members``: member id -> subject id (closed populations); with ``per_item``: member
      id -> the ids of its duties;
    - ``subjects``: subject id -> ``{anchor, origin, win}`` where ``win`` is the current
      window ``{label, start, end, due, not_before, counts, ids, last}`` or None; with
      ``per_item`` one per duty, keyed ``member SEP item`` (``member SEP`` for the duty any
      item meets), holding also ``who`` (the member) and ``item``;
    - ``agenda``: ``action|due`` -> {subject id: window label}: one engine timer per
      instant and action, however many subjects share it;
    - ``exempt``: subject id -> ``[[first date, last date], ...]``.
    """

    spec: RecurrenceSpec
    # maps of maps: a late-event window's checkpoints track them one level down
    nested_state: ClassVar[frozenset[str]] = frozenset({"agenda"})

    def __init__(self, spec: RecurrenceSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"members": {}, "subjects": {}, "agenda": {}, "exempt": {}}
        self.state = cast(dict[str, Any], state)
        pop = spec.population
        self._pop_field = _getter((pop.field or spec.subject.field) if pop
                                  else spec.subject.field)
        self._start_types = frozenset(pop.start.type) if pop else frozenset()
        self._start = pop.start.predicate() if pop else None
        self._end = [(frozenset(m.type), m.predicate()) for m in (pop.end if pop else ())]
        self._occ = [(frozenset(m.type), m.predicate(),
                      _getter(m.key[0] if m.key else spec.subject.field))
                     for m in spec.occurrence]
        self._exempt = [(frozenset(m.type), m.predicate(),
                         _getter(m.key[0] if m.key else spec.subject.field),
                         _getter(m.start_field), _getter(m.end_field))
                        for m in spec.exempt]
        outs = spec.outcomes
        self._missed = "missed" in outs
        self._late = "late" in outs
        self._early = "early" in outs
        self._tracking = pop is not None and self._missed
        self._judge_at_end = self._late
        self._phases = spec.window.phases()
        self._from = [0]
        for p in self._phases[:-1]:
            assert p.until is not None
            self._from.append(p.until)
        self._only = spec.only
        if spec.window.unit == "working_day":
            self._only = (self._only or Only()).model_copy(update={"working_days": True})
        self._warn = parse_duration(spec.warn_before) if spec.warn_before else None
        self._what = spec.title or spec.id
        self._period = _getter(spec.period_field) if spec.period_field else None
        self._n = len(spec.occurrence) if spec.require == "each" else 1
        self._profile_ok = (Match(type=("employee.profile",), where=spec.profile_where)
                            .predicate() if spec.profile_where else None)
        per = spec.per_item
        self._per = per
        self._items = _getter(per.start_field) if per is not None else None
        self._item_of = _getter(per.occurrence_field) if per is not None else None
        # Anchor-free windows are the same for every subject: derived, not state.
        self._cache: dict[date, tuple[Window, datetime | None, datetime | None, bool]] = {}
        # The last of them: events come in time order, so most fall in the window before.
        self._last: tuple[Window, datetime | None, datetime | None, bool] | None = None
        # Text of instants many subjects share (a day's end and due): agenda keys by
        # (action, instant, zone) and local ISO text by instant. Derived, not state.
        self._keys: dict[tuple[str, datetime, Any], str] = {}
        self._isos: dict[datetime, str | None] = {}
        self._subjects: dict[str, Subject] = {}
        self._population_types = self._start_types.union(*(types for types, _ in self._end))

    def _name(self, outcome: str) -> str:
        return self.spec.rename.get(outcome, outcome)

    # -- windows -------------------------------------------------------------------------

    def _raw_window(self, anchor: datetime | None, x: datetime, ctx: RuleContext) -> Window:
        cal = ctx.calendar
        w = self.spec.window
        if w.unit is not None:
            unit: PeriodUnit = "day" if w.unit == "working_day" else w.unit
            s, e = cal.period(x, unit)
            return cal.period_key(x, unit), s, e
        assert anchor is not None or not w.anchored
        if anchor is None:  # single calendar-aligned month phase, no population
            first = _UNIT_OF_MONTHS[self._phases[0].months]
            s, e = cal.period(x, first)
            return cal.period_key(x, first), s, e
        p = 0
        while p + 1 < len(self._phases) and \
                _utc(cal.add_months(anchor, self._from[p + 1])) <= _utc(x):
            p += 1
        phase = self._phases[p]
        p_start = cal.add_months(anchor, self._from[p])
        # Last instants are taken in UTC: a microsecond before a local wall time is only
        # the previous wall time when no DST change lies between.
        p_end = (_utc(cal.add_months(anchor, phase.until)) - _ONE_US) if phase.until else None
        if w.alignment == "calendar":
            aligned = _UNIT_OF_MONTHS[phase.months]
            s, e = cal.period(x, aligned)
            label = cal.period_key(x, aligned)
        else:
            m = phase.months
            a, xl = cal.local(anchor), cal.local(x)
            j = ((xl.year - a.year) * 12 + xl.month - a.month - self._from[p]) // m
            target = _utc(x)
            while j > 0 and _utc(cal.add_months(anchor, self._from[p] + j * m)) > target:
                j -= 1
            while _utc(cal.add_months(anchor, self._from[p] + (j + 1) * m)) <= target:
                j += 1
            s = cal.add_months(anchor, self._from[p] + j * m)
            e = _utc(cal.add_months(anchor, self._from[p] + (j + 1) * m)) - _ONE_US
            label = f"{s.date().isoformat()}/P{m}M"
        if _utc(p_start) > _utc(s):
            s = p_start
        if p_end is not None and _utc(p_end) < _utc(e):
            e = p_end
        return label, cal.local(s), cal.local(e)

    def _allowed(self, s: datetime, e: datetime, ctx: RuleContext) -> bool:
        only = self._only
        if only is None:
            return True
        cal = ctx.calendar
        first = cal.local_date(s)
        if only.months and first.month not in only.months:
            return False
        if only.weekdays and WEEKDAYS[first.weekday()] not in only.weekdays:
            return False
        if only.working_days:
            last = cal.local_date(e)
            if first == last:
                return bool(cal.is_working_day(first))
            return bool(cal.next_working_day(first) <= last)
        return True

    def _instant(self, spec: TimeOfWindow | None, s: datetime, e: datetime,
                 ctx: RuleContext) -> datetime | None:
        """Where ``spec`` falls in the window [s, e]; None when the window has no such day."""
        if spec is None:
            return e
        cal = ctx.calendar
        first, last = cal.local_date(s), cal.local_date(e)
        day: date | None
        if spec.day == "last":
            day = last
        elif spec.day == "first":
            day = first
        elif isinstance(spec.day, int):
            day = first + timedelta(days=spec.day - 1)
            if day > last:
                return None
        else:
            want = WEEKDAYS.index(spec.day)
            day = last - timedelta(days=(last.weekday() - want) % 7)
            if day < first:
                return None
        if spec.non_working != "keep" and not cal.is_working_day(day):
            if spec.non_working == "skip":
                return None
            day = (cal.previous_working_day(day) if spec.non_working == "previous"
                   else cal.next_working_day(day))
        t = spec.time
        if t == "end_of_day":
            at = cal.end_of_day(cal.start_of_day(day))
        elif t == "start_of_day":
            at = cal.start_of_day(day)
        elif t == "work_start":
            at = cal.at(day, cal.work_start)
        elif t == "work_end":
            at = cal.at(day, cal.work_end)
        else:
            at = cal.at(day, time.fromisoformat(t))
        if spec.grace:
            at = cal.deadline(at, spec.grace, "wall")
        at = at.astimezone(UTC)
        if at < s:
            return None
        return e if at > e else at

    def _window(self, anchor: datetime | None, x: datetime, ctx: RuleContext
                ) -> tuple[Window, datetime | None, datetime | None, bool]:
        """The window containing ``x``, its due and not-before instants, and whether it is
        judged at all (``only``). A calendar window starts no earlier than the subject."""
        if self.spec.window.unit is None:
            return self._compute(anchor, x, ctx)
        # A calendar window depends only on the local date: computed once per date for
        # every subject (derived data, not state), then clipped to the subject's start.
        # Calendar windows do not overlap, so an instant inside the last one found (in
        # UTC, like ``x``) is in that one, without converting it to a local date.
        found = self._last
        if found is None or not (found[0][1] <= x <= found[0][2]):
            day = ctx.calendar.local_date(x)
            found = self._cache.get(day)
            if found is None:
                found = self._compute(None, x, ctx)
                if len(self._cache) > 4096:
                    self._cache.clear()
                self._cache[day] = found
            self._last = found
        (label, s, e), due, nb, allowed = found
        if anchor is not None and anchor > s:
            return (label, anchor, e), due, nb, allowed
        return found

    def _compute(self, anchor: datetime | None, x: datetime, ctx: RuleContext
                 ) -> tuple[Window, datetime | None, datetime | None, bool]:
        # Kept in UTC from here on: comparing instants of one zone by wall time would be
        # wrong in a repeated DST hour, and converting once is cheaper than at every test.
        label, ls, le = self._raw_window(anchor, x, ctx)
        win = (label, ls.astimezone(UTC), le.astimezone(UTC))
        allowed = self._allowed(win[1], win[2], ctx)
        due = nb = None
        if allowed:
            due = self._instant(self.spec.due, win[1], win[2], ctx)
            if self.spec.not_before is not None:
                nb = self._instant(self.spec.not_before, win[1], win[2], ctx)
        return win, due, nb, allowed

    def _new_win(self, found: tuple[Window, datetime | None, datetime | None, bool]
                 ) -> _Win:
        (label, s, e), due, nb, _ = found
        return {"label": label, "start": s, "end": e, "due": due, "not_before": nb,
                "counts": [0] * self._n, "ids": [], "last": None}

    # -- timers --------------------------------------------------------------------------

    def _book(self, action: str, due: datetime, sid: str, label: str,
              ctx: RuleContext) -> None:
        name = (action, due, due.tzinfo)
        key = self._keys.get(name)
        if key is None:
            if len(self._keys) > 4096:
                self._keys.clear()
            key = self._keys[name] = f"{action}{KEY_SEP}{due.isoformat()}"
        agenda = cast(_State, self.state)["agenda"]
        # A slot is booked with its timer and popped when the timer fires: while it is
        # there, its timer is pending (a rewind or a restore puts back both together).
        pending = key in agenda
        slot = agenda.setdefault(key, {})
        slot[sid] = label
        if not pending:
            ctx.schedule(due, action)

    def _open_next(self, sid: str, subj: _Subj, x: datetime, ctx: RuleContext) -> None:
        """Open the first judged window of a tracked subject that ends at or after ``x``.

        A window beyond the calendar's holiday data (the next year's arrangement is not
        published yet) cannot be laid out: the subject waits (``resume``) and picks up
        again at its next occurrence; the session refuses events in such years anyway."""
        anchor = subj["anchor"]
        assert anchor is not None  # only a population's subjects have windows laid out ahead
        subj.pop("resume", None)
        for _ in range(_MAX_SCAN):
            try:
                found = self._window(anchor, x, ctx)
            except CalendarError:
                subj["win"] = None
                subj["resume"] = x
                return
            label, _, e = found[0]
            if found[3]:
                win = self._new_win(found)
                subj["win"] = win
                self._prune_exempt(sid, win["start"], ctx)
                due = win["due"]
                if due is not None and due >= anchor:  # owed
                    if self._warn is not None:
                        warn_at = self._warn_at(due, ctx)
                        if warn_at >= max(win["start"], anchor, _utc(ctx.now)):
                            self._book("warn", warn_at, sid, label, ctx)
                    if not self._judge_at_end and due < e:
                        self._book("due", due, sid, label, ctx)
                self._book("end", e, sid, label, ctx)
                return
            x = e + _ONE_US
        subj["win"] = None

    def _warn_at(self, due: datetime, ctx: RuleContext) -> datetime:
        assert self._warn is not None
        return due - self._warn

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        state = cast(_State, self.state)
        slot = state["agenda"].pop(f"{key}{KEY_SEP}{_utc(due).isoformat()}", None)
        due = _utc(due)
        if not slot:
            return
        subjects = state["subjects"]
        if key == _FORGET:
            for sid in slot:
                if sid not in subjects:
                    self._prune_exempt(sid, due - _KEEP_EXEMPT + timedelta(days=1), ctx)
            return
        for sid, label in slot.items():
            subj = subjects.get(sid)
            win = subj["win"] if subj is not None else None
            if subj is None or win is None or win["label"] != label:
                continue  # the subject left, or moved on, since this was booked
            if key == "warn":
                if self._short(win) and not self._exempted(sid, win, ctx):
                    self._emit_missed(sid, subj, win, due, "warning", ctx)
            elif key == "due":
                self._judge(sid, subj, win, due, ctx)
            else:
                self._close(sid, subj, win, due, ctx)

    def _short(self, win: _Win) -> bool:
        return bool(min(win["counts"]) < self.spec.min_count)

    def _owed(self, subj: _Subj, win: _Win) -> bool:
        due = win["due"]
        anchor = subj["anchor"]
        return due is not None and (anchor is None or due >= anchor)

    def _judge(self, sid: str, subj: _Subj, win: _Win, at: datetime,
               ctx: RuleContext) -> None:
        if (self._missed and subj["anchor"] is not None and self._owed(subj, win)
                and self._short(win) and not self._exempted(sid, win, ctx)):
            self._emit_missed(sid, subj, win, at, "missed", ctx)

    def _close(self, sid: str, subj: _Subj, win: _Win, at: datetime,
               ctx: RuleContext) -> None:
        due = win["due"]
        if self._judge_at_end or (due is not None and due >= win["end"]):
            self._judge(sid, subj, win, at, ctx)
        if self._early and win["last"] is not None:
            self._judge_early(sid, subj, win, at, ctx)
        if self._tracking and subj["anchor"] is not None:
            self._open_next(sid, subj, win["end"] + _ONE_US, ctx)
        elif subj["anchor"] is None:
            # A subject known only by its occurrences (no population): nothing of it
            # outlives its window, so it is dropped, not kept for ever (its next occurrence
            # opens its next window as for a subject never seen).
            cast(_State, self.state)["subjects"].pop(sid, None)
        else:
            subj["win"] = None

    # -- decisions -----------------------------------------------------------------------

    def _details(self, win: _Win, ctx: RuleContext, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {
            "what": self._what,
            "window": win["label"],
            "window_start": self._iso(ctx, win["start"]),
            "window_end": self._iso(ctx, win["end"]),
            "due": self._iso(ctx, win["due"]),
            "count": min(win["counts"]) if self._n > 1 else win["counts"][0],
            "min_count": self.spec.min_count,
            "occurrences": list(win["ids"]),
        }
        out.update(extra)
        return out

    def _iso(self, ctx: RuleContext, t: datetime | None) -> str | None:
        """``_iso`` of an instant windows share (one calendar per runtime: by instant)."""
        if t is None:
            return None
        text = self._isos.get(t)
        if text is None:
            if len(self._isos) > 4096:
                self._isos.clear()
            text = self._isos[t] = _iso(ctx, t)
        return text

    def _subject(self, sid: str, subj: _Subj | None = None) -> Subject:
        who = subj.get("who", sid) if subj is not None else sid
        # A Subject is frozen: one per id serves every decision about it.
        found = self._subjects.get(who)
        if found is None:
            if len(self._subjects) > 4096:
                self._subjects.clear()
            found = self._subjects[who] = Subject(kind=self.spec.subject.kind, id=who)
        return found

    def _itemised(self, subj: _Subj, outcome: str, key: str,
                  details: dict[str, Any]) -> tuple[str, Message | None]:
        """``per_item``: the item in the details, the key and the message of its duty."""
        item = subj.get("item")
        if self._per is None or item is None:
            return key, None
        details[self._per.name] = item
        msg = self.spec.messages.get(f"{outcome}_per_item")
        return key + KEY_SEP + key_part(item), msg

    def _emit_missed(self, sid: str, subj: _Subj, win: _Win, at: datetime,
                     outcome: str, ctx: RuleContext) -> None:
        extra: dict[str, Any] = {}
        if self._n > 1:
            extra["counts"] = {"|".join(m.type): c
                               for m, c in zip(self.spec.occurrence, win["counts"], strict=True)}
            extra["missing"] = [k for k, c in extra["counts"].items() if c < self.spec.min_count]
        evidence = [subj["origin"], *win["ids"]] if subj["origin"] else list(win["ids"])
        kind: DecisionKind = "warning" if outcome == "warning" else self.spec.outcomes["missed"]
        name = self._name(outcome)
        details = self._details(win, ctx, **extra)
        key, msg = self._itemised(subj, name, win["label"], details)
        ctx.emit(self.spec, name, kind=kind, subject=self._subject(sid, subj), at=at,
                 evidence=evidence, key=key, details=details,
                 severity="low" if outcome == "warning" else None, message=msg)

    def _judge_early(self, sid: str, subj: _Subj, win: _Win, at: datetime,
                     ctx: RuleContext) -> None:
        nb = win["not_before"]
        last = win["last"]
        assert last is not None  # judged only for a window with an occurrence
        last_at, last_id = last
        anchor = subj["anchor"]
        if nb is None or (anchor is not None and nb < anchor):
            return
        if last_at >= nb or self._exempted(sid, win, ctx):
            return
        secs = int((nb - last_at).total_seconds())
        ctx.emit(self.spec, self._name("early"), kind=self.spec.outcomes["early"],
                 subject=self._subject(sid), at=at, evidence=[last_id], key=win["label"],
                 details=self._details(win, ctx, occurred_at=_iso(ctx, last_at),
                                       not_before=_iso(ctx, nb), early_seconds=secs,
                                       early_minutes=-(-secs // 60)))

    # -- events --------------------------------------------------------------------------

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        t = event.type
        if t in self._population_types:
            self._on_population(event, ctx)
        for types, pred, field, sf, ef in self._exempt:
            if t in types and pred(event):
                self._on_exempt(event, field, sf, ef, ctx)
        for i, (types, pred, field) in enumerate(self._occ):
            if t in types and pred(event):
                self._on_occurrence(event, i, field, ctx)

    def _on_population(self, event: EventBase, ctx: RuleContext) -> None:
        pop = self.spec.population
        assert pop is not None and self._start is not None
        raw = self._pop_field(event)
        if raw is None:
            return
        member = str(raw)
        ends = any(event.type in types and pred(event) for types, pred in self._end)
        joins = not ends and event.type in self._start_types and self._start(event)
        if self._per is not None:
            self._on_duties(event, member, joins, ctx)
            return
        state = cast(_State, self.state)
        members = cast(dict[str, str], state["members"])  # a subject id each (no per_item)
        subjects = state["subjects"]
        if joins:
            if member in members:
                return
            sid = pop.value if pop.value is not None else member
            members[member] = sid
            if sid not in subjects:
                anchor = event.at.astimezone(UTC)
                subj: _Subj = {"anchor": anchor, "origin": event.id, "win": None}
                subjects[sid] = subj
                if self._tracking:
                    self._open_next(sid, subj, anchor, ctx)
            return
        if event.type in self._start_types or ends:
            left = members.pop(member, None)
            if left is not None and left not in members.values():
                subjects.pop(left, None)
                state["exempt"].pop(left, None)

    def _duty(self, member: str, item: str | None) -> str:
        return key_part(member) + KEY_SEP + ("" if item is None else key_part(item))

    def _on_duties(self, event: EventBase, member: str, joins: bool, ctx: RuleContext) -> None:
        """``per_item``: the member's duties follow its latest start event's items; a duty
        kept from an earlier one keeps its anchor."""
        assert self._per is not None and self._items is not None
        state = cast(_State, self.state)
        members = cast(dict[str, list[str]], state["members"])  # with per_item: duty ids
        subjects = state["subjects"]
        wanted: dict[str, str | None] = {}
        if joins:
            found = self._items(event)
            listed = [] if found is None else [found] if isinstance(found, str) else found
            items = list(dict.fromkeys(str(x) for x in listed))
            if not items and self._per.without_items == "any":
                wanted[self._duty(member, None)] = None
            for item in items:
                wanted[self._duty(member, item)] = item
        for duty in members.pop(member, []):
            if duty not in wanted:
                subjects.pop(duty, None)
        if not wanted:
            return
        members[member] = list(wanted)
        anchor = event.at.astimezone(UTC)
        for duty, listed_item in wanted.items():
            if duty not in subjects:
                subj: _Subj = {"anchor": anchor, "origin": event.id, "win": None,
                               "who": member, "item": listed_item}
                subjects[duty] = subj
                if self._tracking:
                    self._open_next(duty, subj, anchor, ctx)

    def _on_exempt(self, event: EventBase, field: Callable[[EventBase], Any],
                   sf: Callable[[EventBase], Any], ef: Callable[[EventBase], Any],
                   ctx: RuleContext) -> None:
        sid = field(event)
        first, last = sf(event), ef(event)
        if sid is None or first is None or last is None:
            return
        cal = ctx.calendar
        first = cal.local_date(first) if isinstance(first, datetime) else first
        last = cal.local_date(last) if isinstance(last, datetime) else last
        if isinstance(first, date) and isinstance(last, date) and first <= last:
            cast(_State, self.state)["exempt"].setdefault(str(sid), []).append([first, last])
            if self.spec.population is not None:
                # A member's spans are pruned as its windows move on; one of someone not
                # (or not yet) a member is dropped a year after its last day, when no
                # window of a later member can still reach it.
                self._book(_FORGET, _utc(cal.start_of_day(last + _KEEP_EXEMPT)), str(sid),
                           last.isoformat(), ctx)

    def _prune_exempt(self, sid: str, start: datetime, ctx: RuleContext) -> None:
        exempt = cast(_State, self.state)["exempt"]
        spans = exempt.get(sid)
        if spans:
            first = ctx.calendar.local_date(start)
            kept = [s for s in spans if s[1] >= first]
            if kept:
                exempt[sid] = kept
            else:
                del exempt[sid]

    def _exempted(self, sid: str, win: _Win, ctx: RuleContext) -> bool:
        spans = cast(_State, self.state)["exempt"].get(sid)
        if not spans:
            return False
        cal = ctx.calendar
        first, last = cal.local_date(win["start"]), cal.local_date(win["end"])
        days = cal.working_days(first, last) if first != last else [first]
        if not days:
            days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        return all(any(a <= d <= b for a, b in spans) for d in days)

    def _on_occurrence(self, event: EventBase, index: int, field: Callable[[EventBase], Any],
                       ctx: RuleContext) -> None:
        found = self._occurrence_subject(event, field, ctx)
        if found is None:
            return
        sid, subj = found
        at = event.at.astimezone(UTC)
        win = self._occurrence_window(sid, subj, at, ctx)
        if win is None or at < win["start"]:
            return
        if self._period is not None:
            day = self._period(event)
            cal = ctx.calendar
            if isinstance(day, date) and not (
                    cal.local_date(win["start"]) <= day <= cal.local_date(win["end"])):
                return  # for another window: not this one's
        self._count_occurrence(event, index, sid, subj, win, at, ctx)

    def _occurrence_subject(self, event: EventBase, field: Callable[[EventBase], Any],
                            ctx: RuleContext) -> tuple[str, _Subj] | None:
        """Whose duty the occurrence counts for, and that subject's state (created for a
        rule without a population); None when it counts for nobody."""
        pop = self.spec.population
        subjects = cast(_State, self.state)["subjects"]
        if pop is not None and pop.value is not None:
            sid: str | None = pop.value
        else:
            raw = field(event)
            sid = None if raw is None else str(raw)
        if sid is None:
            return None
        if self._item_of is not None:
            # per_item: the duty for the item the occurrence names, else the member's duty
            # any item meets (when it has one); a visit to another's area counts for nothing.
            item = self._item_of(event)
            duty = self._duty(sid, str(item)) if item is not None else ""
            sid = duty if duty in subjects else self._duty(sid, None)
        subj = subjects.get(sid)
        if self._profile_ok is not None:
            profile = ctx.directory.get(sid)
            if profile is not None and not self._profile_ok(profile):
                return None
        if subj is None:
            if pop is not None:
                return None  # not (or no longer) a member: owes nothing
            subj = {"anchor": None, "origin": None, "win": None}
            subjects[sid] = subj
        return sid, subj

    def _occurrence_window(self, sid: str, subj: _Subj, at: datetime,
                           ctx: RuleContext) -> _Win | None:
        """The subject's window that ``at`` may count for, opened if need be; None when
        ``at`` falls in no judged window."""
        subjects = cast(_State, self.state)["subjects"]
        win: _Win | None = subj["win"]
        if win is None and "resume" in subj:
            self._open_next(sid, subj, subj["resume"], ctx)
            win = subj["win"]
        if win is None or at > win["end"]:
            if self._tracking:
                return None  # between judged windows (``only``): counts for none
            found = self._window(subj["anchor"], at, ctx)
            if not found[3]:
                if subj["anchor"] is None:
                    del subjects[sid]  # judges nothing here: kept for nothing
                else:
                    subj["win"] = None
                return None
            win = self._new_win(found)
            subj["win"] = win
            if subj["anchor"] is None:
                # Its end drops the subject (see _close).
                self._book("end", _utc(win["end"]), sid, win["label"], ctx)
        return win

    def _count_occurrence(self, event: EventBase, index: int, sid: str, subj: _Subj,
                          win: _Win, at: datetime, ctx: RuleContext) -> None:
        """Count it in the window (judging it late first, when it is)."""
        counts = win["counts"]
        slot = index if self._n > 1 else 0
        if (self._late and counts[slot] < self.spec.min_count and win["due"] is not None
                and at > win["due"] and self._owed(subj, win)
                and not self._exempted(sid, win, ctx)):
            secs = int((at - win["due"]).total_seconds())
            ctx.emit(self.spec, self._name("late"), kind=self.spec.outcomes["late"],
                     subject=self._subject(sid), at=at, evidence=[event.id],
                     key=win["label"] + KEY_SEP + key_part(event.id),
                     details=self._details(win, ctx, occurred_at=_iso(ctx, at),
                                           late_seconds=secs, late_minutes=-(-secs // 60),
                                           occurrence=event.id))
        counts[slot] += 1
        if len(win["ids"]) < 50:  # evidence enough to explain, bounded for long windows
            win["ids"].append(event.id)
        first_seen = win["last"] is None
        win["last"] = (at, event.id)
        # A subject without an anchor had its window's end booked when the window opened.
        if self._early and first_seen and not self._tracking and subj["anchor"] is not None:
            self._book("end", win["end"], sid, win["label"], ctx)
