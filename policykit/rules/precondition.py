"""The *precondition* shape: an action is allowed only if something happened before it and
still holds. A guard leaves the post only once the relief has taken it; a remote session
starts only under a customer authorization granted before it and valid at its start; a
visitor is admitted only registered and with an identity document."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, TypeVar, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..calendar import format_duration
from ..errors import RuleValueError
from ..models.decisions import DecisionKind, Subject
from ..models.events import EVENT_TYPES, EventBase
from ._base import (
    _DATETIMES,
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
    _bases,
    _check_field,
    _compile_condition,
    _describe,
    _leaf_annotation,
    event_value,
    first_key,
    key_of,
    key_part,
    keyed_by,
    part_value,
    split_key,
)
from ._base import local_iso as _iso
from ._scope import FixedSubject, after

__all__ = ["CoSign", "Gate", "PreconditionSpec", "Prior", "Revoke"]


class Revoke(Match):
    """An event that ends a prior's hold: ``same`` maps this event's fields to the prior's
    (``{guard_id: guard_id}``: the guard who started is the one who ended)."""

    same: dict[str, str] = Field(default_factory=dict)
    """This event's field -> the prior's field that must be equal."""


class CoSign(BaseModel):
    """The prior's list field ``field`` must hold the values of its fields ``by`` (a
    handover record signed by both guards it names). ``required: false`` turns it off, so a
    policy parameter can switch it."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    field: str = "signed_by"
    """The prior's list field holding who signed."""
    by: tuple[str, ...]
    """The prior's fields whose values must all be in that list."""
    required: bool = True
    """False turns the check off (so a parameter can switch it)."""


class Prior(Match):
    """The earlier event an action needs, joined on the rule's ``key`` (or this match's own
    ``key`` fields). Optional: ``same`` / ``differ`` (action field -> prior field, equal /
    different), a validity interval read from the prior's own fields (``valid_from``,
    ``valid_until``: it must cover the action's time), ``max_age`` (no older than this at
    the action), ``revoke`` events ending its hold, ``cosign``."""

    same: dict[str, str] = Field(default_factory=dict)
    """Action field -> prior field that must be equal."""
    differ: dict[str, str] = Field(default_factory=dict)
    """Action field -> prior field that must differ."""
    valid_from: str | None = None
    """The prior's date-time field holding when its validity starts (it must not be after the
    action)."""
    valid_until: str | None = None
    """The prior's date-time field holding when its validity ends (it must not be before the
    action)."""
    covers_from: str | None = None
    """An action field holding the start of a span the prior must cover, the action's time
    being its end (a session's end names its start): the prior must have been recorded at or
    before that start and be valid from it through the action. Its reasons: ``granted_late``,
    ``not_yet_valid`` or ``expired`` at the start, ``outlasted`` (valid at the start, expired
    before the action). An action without the field is checked at its own time only."""
    max_age: str | None = None
    """The prior may be at most this old at the action (an ISO-8601 duration); an older one is
    reported as too old."""
    revoke: tuple[Revoke, ...] = ()
    """Events that end the prior's hold."""
    cosign: CoSign | None = None
    """A list field of the prior that must hold the values of some of its fields."""


class Gate(Match):
    """An earlier event without which the action owes nothing, joined on the rule's ``key``
    (or this match's own ``key`` fields): the action is judged only where such an event
    holds at it (not ended by a ``revoke``), or comes while the rule waits for a late prior
    (``grace``, ``settle_within``). A shift end owes a handover record only where a relief
    has taken the post. ``required: false`` turns it off (every action is judged), so a
    policy parameter can switch it."""

    same: dict[str, str] = Field(default_factory=dict)
    """Action field -> this event's field that must be equal."""
    differ: dict[str, str] = Field(default_factory=dict)
    """Action field -> this event's field that must differ (a relief: another guard)."""
    revoke: tuple[Revoke, ...] = ()
    """Events that end its hold (``same`` maps their fields to this event's)."""
    required: bool = True
    """False turns the gate off (so a parameter can switch it)."""


_REASON_ZH = {
    "missing": "無事先記錄",
    "not_yet_valid": "尚未生效",
    "expired": "已過期",
    "too_old": "記錄過舊",
    "unsigned": "未經雙方簽名",
    "granted_late": "開始後才授權",
    "outlasted": "中途已過期",
}
# When several earlier events exist but none qualifies, the most telling reason is shown.
_REASON_RANK = ("unsigned", "too_old", "outlasted", "expired", "not_yet_valid",
                "granted_late", "missing")
Reason = Literal["missing", "not_yet_valid", "expired", "too_old", "unsigned", "granted_late",
                 "outlasted"]


class PreconditionSpec(RuleSpec):
    """An ``event`` (the action) is allowed only if a ``prior`` event for the same ``key``
    happened at or before it and still holds, and only if the action's own fields meet
    ``require``. Outcomes: ``unmet`` (no qualifying prior; details give the reason),
    ``incomplete`` (the action lacks a ``require``d field value).

    A prior that comes *after* the action never counts (an authorization granted after the
    session started), unless the rule waits: with ``grace`` a prior up to that long after
    is in time; with ``settle_within`` (or ``settle``, without a limit) the rule waits for a
    late prior and, when it comes after the grace, reports ``late`` with how long the action
    went uncovered (a guard who left a minute before the relief arrived: one minute). A case
    still open when the wait runs out is ``unmet`` (``on_unsettled: emit``) or left to
    another rule (``drop``). With ``only_if`` an action is owed only where another event
    holds at it or comes while it waits (a handover record only where a relief took the
    post)."""

    shape: Literal["precondition"] = "precondition"
    event: Match
    """The action that needs the precondition."""
    key: Names = ()
    """The field(s) joining the action with its prior."""
    prior: Prior | None = None
    """The earlier event the action needs; none: only ``require`` is checked."""
    require: dict[str, Condition] = Field(default_factory=dict)
    """Conditions on the action's own fields; an action failing one is ``incomplete``."""
    grace: str | None = None
    """A prior up to this long after the action still counts as in time."""
    settle_within: str | None = None
    """Wait this long after the action for a late prior; one after the grace is reported
    ``late`` with how long the action went uncovered."""
    settle: bool = False
    """Wait for a late prior even without ``settle_within``: for as long as the action is
    remembered (``forget_after``; ``null``: for ever). ``settle_within`` given as well
    ends the wait there (alone it implies ``settle``)."""
    settle_ignores: tuple[str, ...] = ()
    """Action fields of ``prior.differ`` not compared when a late prior settles a waiting
    action: with ``[guard_id]`` the leaving guard's own return also ends the time the post
    stood uncovered (at the departure itself only another guard covers it)."""
    on_unsettled: Literal["emit", "drop"] = "emit"
    """A case still open when the wait runs out: ``emit`` reports it ``unmet``, ``drop``
    leaves it to another rule."""
    only_if: Gate | None = None
    """An earlier event without which the action owes nothing (see :class:`Gate`)."""
    forget_after: str | None = "P365D"
    """A prior older than this at the action no longer counts, as if it never happened
    (unlike ``max_age``, which reports it as too old). Forgetting keeps a long stream's state
    flat: without it every complaint or request ever received would be kept. ``null``
    keeps priors until they are revoked or expire."""
    subject: SubjectRef | FixedSubject
    """Who the decisions are about: an action field, or a fixed subject."""
    kind: DecisionKind = "violation"
    """The kind of the ``unmet``, ``late`` and ``incomplete`` decisions."""
    only_reasons: tuple[Reason, ...] = ()
    """Report ``unmet`` only for these reasons, leaving the others to another rule (a
    session's end reports only ``outlasted``: the rest was judged at its start); empty: all."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "at", "candidates", "event", "grace", "key", "missing", "prior_at", "prior_event",
        "reason", "reason_zh", "waited", "waited_seconds", "what",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "unmet": Message(
            en="{rule} unmet: {what} — {subject} at {at} without a valid prior ({reason})",
            zh="{rule} 前提未滿足：{subject} 於 {at} 的「{what}」缺少有效前提（{reason_zh}）"),
        "late": Message(
            en="{rule} late: {what} — the prior for {subject} came {waited} after {at}",
            zh="{rule} 前提遲到：{subject} 於 {at} 的「{what}」的前提遲了 {waited}"),
        "incomplete": Message(
            en="{rule} incomplete: {what} — {subject} at {at} lacks {missing}",
            zh="{rule} 條件不足：{subject} 於 {at} 的「{what}」不符合 {missing}"),
    }

    @model_validator(mode="after")
    def _valid(self) -> PreconditionSpec:
        # The checks run in this order, so a spec with several faults names the first.
        ev_types = self.event.type
        for f in self.key:
            _check_field(ev_types, f, what="key")
        for path, cond in self.require.items():
            _check_field(ev_types, path, what="require")
            _compile_condition(path, cond)
        if isinstance(self.subject, SubjectRef):
            _check_field(ev_types, self.subject.field, what="subject.field")
        p = self.prior
        if p is None:
            if not self.require:
                raise ValueError("a precondition needs a prior or require conditions")
            if self.grace or self.settle_within or self.settle or self.only_if:
                raise ValueError("grace, settle_within, settle and only_if need a prior")
            return self
        for f in self.settle_ignores:
            if f not in p.differ:
                raise ValueError(f"settle_ignores: {f!r} is not an action field of "
                                 f"prior.differ ({', '.join(p.differ) or 'none'})")
        if self.only_if is not None:
            self._check_only_if(self.only_if)
        self._check_prior(p)
        self._check_durations(p)
        return self

    def _check_only_if(self, g: Gate) -> None:
        ev_types = self.event.type
        for f in g.key or self.key:
            _check_field(g.type, f, what="only_if.key")
        if len(g.key or self.key) != len(self.key):
            raise ValueError("only_if.key must name as many fields as the rule's key")
        for mine, theirs in (*g.same.items(), *g.differ.items()):
            _check_field(ev_types, mine, what="only_if.same/differ")
            _check_field(g.type, theirs, what="only_if.same/differ")
        for r in g.revoke:
            for f in r.key or g.key or self.key:
                _check_field(r.type, f, what="only_if.revoke.key")
            for mine, theirs in r.same.items():
                _check_field(r.type, mine, what="only_if.revoke.same")
                _check_field(g.type, theirs, what="only_if.revoke.same")

    def _check_prior(self, p: Prior) -> None:
        ev_types = self.event.type
        for f in p.key or self.key:
            _check_field(p.type, f, what="prior.key")
        if len(p.key or self.key) != len(self.key):
            raise ValueError("prior.key must name as many fields as the rule's key")
        for mine, theirs in (*p.same.items(), *p.differ.items()):
            _check_field(ev_types, mine, what="prior.same/differ")
            _check_field(p.type, theirs, what="prior.same/differ")
        for name, bound in (("valid_from", p.valid_from), ("valid_until", p.valid_until)):
            if bound is not None:
                _check_field(p.type, bound, what="prior.valid_from/valid_until")
                self._check_instant(p.type, name, bound)
        if p.covers_from is not None:
            _check_field(ev_types, p.covers_from, what="prior.covers_from")
        for r in p.revoke:
            for f in r.key or p.key or self.key:
                _check_field(r.type, f, what="prior.revoke.key")
            for mine, theirs in r.same.items():
                _check_field(r.type, mine, what="prior.revoke.same")
                _check_field(p.type, theirs, what="prior.revoke.same")
        if p.cosign is not None:
            for f in (p.cosign.field, *p.cosign.by):
                _check_field(p.type, f, what="prior.cosign")

    def _check_instant(self, types: tuple[str, ...], name: str, path: str) -> None:
        """A validity bound is compared with the action's time: the field it names must
        hold a date-time in every prior type declaring it (free-form ``meta.*`` paths are
        not checked)."""
        for t in types:
            model = EVENT_TYPES.get(t)
            annotation = None if model is None else _leaf_annotation(model, path)
            if annotation is not None and not _bases(annotation) <= set(_DATETIMES):
                raise RuleValueError(
                    f"rule {self.id}: prior.{name}: event type {t} declares {path!r} as "
                    f"{_describe(annotation)}; expected a date-time field (the bound is "
                    "compared with the action's time)", path, ("prior", name))

    def _check_durations(self, p: Prior) -> None:
        from ..calendar import parse_duration

        for spec in (p.max_age, self.grace, self.settle_within, self.forget_after):
            if spec is not None:
                parse_duration(spec)
        if (self.grace and self.settle_within
                and parse_duration(self.settle_within) < parse_duration(self.grace)):
            raise ValueError("settle_within must not be shorter than grace")

    @property
    def wait(self) -> str | None:
        """How long an unmet action waits for a late prior (None: judged at once, or with
        ``settle`` and no ``forget_after``, for ever)."""
        if self.settle and not self.settle_within:
            return self.forget_after
        return self.settle_within or self.grace

    def event_types(self) -> frozenset[str]:
        types = set(self.event.type)
        for m in (self.prior, self.only_if):
            if m is not None:
                types.update(m.type)
                for r in m.revoke:
                    types.update(r.type)
        return frozenset(types)

    def partition(self) -> Partition | str:
        if not self.key:
            return "one case for everything (no key)"
        pairs: list[tuple[Iterable[str], str | None]] = [(self.event.type, self.key[0])]
        for p in (self.prior, self.only_if):
            if p is not None:
                pairs.append((p.type, first_key(p.key, self.key)))
                pairs += [(r.type, first_key(r.key or p.key, self.key)) for r in p.revoke]
        return keyed_by(pairs)

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _PreconditionRuntime(self, policy)


# A key whose prior events are never revoked nor expire (a log without shift ends) must not
# grow without bound; the newest records are the ones an action can still rely on.
_MAX_PRIORS_PER_KEY = 256
_SWEEP_EVERY = timedelta(days=1)
_FAST_FORGET = timedelta(days=365_000)  # see _sweep


class _Held(TypedDict):
    """A held ``only_if`` event: its id, time and the fields later matching reads."""

    id: str
    at: datetime
    f: dict[str, Any]


# A held prior event: a _Held plus its validity interval (the event's own ``valid_from`` /
# ``valid_until`` values, compared as instants) and whether it is co-signed. Spelled this
# way because ``from`` is a keyword.
_Prior = TypedDict("_Prior", {
    "id": str, "at": datetime, "f": dict[str, Any],
    "from": datetime | None, "until": datetime | None, "signed": bool,
})


class _Case(TypedDict):
    """An action waiting for a late prior; ``gated`` only with ``only_if``."""

    id: str
    at: datetime
    subject: str
    f: dict[str, Any]
    reason: str
    candidates: list[str]
    due: datetime | None
    gated: NotRequired[bool]


class _State(TypedDict):
    """``_PreconditionRuntime.state`` (a plain dict at run time; the type is for mypy only)."""

    priors: dict[str, list[_Prior]]
    pending: dict[str, list[_Case]]
    gates: NotRequired[dict[str, list[_Held]]]


_R = TypeVar("_R", _Held, _Prior)


class _PreconditionRuntime(RuleRuntime):
    """State: ``priors`` key -> records of earlier events still holding; ``pending`` key ->
    actions waiting for a late prior (with ``settle_within`` / ``grace`` / ``settle``);
    with ``only_if``, ``gates`` key -> records of its events still holding."""

    spec: PreconditionSpec

    def __init__(self, spec: PreconditionSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"priors": {}, "pending": {}}
        self.state = cast(dict[str, Any], state)
        self._event_types = frozenset(spec.event.type)
        self._event_pred = spec.event.predicate()
        self._require: list[tuple[str, Callable[[EventBase], bool]]] = [
            (p, _compile_condition(p, c)) for p, c in spec.require.items()
        ]
        self._what = spec.title or spec.id
        self._fixed = spec.subject.subject() if isinstance(spec.subject, FixedSubject) else None
        from ..calendar import parse_duration

        zero = timedelta(0)
        self._grace = parse_duration(spec.grace) if spec.grace else zero
        self._wait = parse_duration(spec.wait) if spec.wait else None
        # settle without a limit: the action waits for its prior with no timer at all
        self._waits = self._wait is not None or spec.settle
        self._ignore = frozenset(spec.settle_ignores)
        p = spec.prior
        self._max_age = parse_duration(p.max_age) if p and p.max_age else None
        self._forget = parse_duration(spec.forget_after) if spec.forget_after else None
        self._sweep_at: datetime | None = None  # a memory chore only: not state
        self._prior_types: frozenset[str] = frozenset(p.type) if p else frozenset()
        self._prior_pred = p.predicate() if p else None
        self._prior_key = (p.key or spec.key) if p else spec.key
        self._revokes = [
            (frozenset(r.type), r.predicate(), r.key or self._prior_key, tuple(r.same.items()))
            for r in (p.revoke if p else ())
        ]
        # Prior fields a record must keep, and action fields a waiting case must keep.
        needed: set[str] = set()
        if p:
            needed.update(p.same.values(), p.differ.values())
            for r in p.revoke:
                needed.update(r.same.values())
        self._prior_fields = tuple(sorted(needed))
        self._cover = p.covers_from if p else None
        self._action_fields = tuple(sorted({*p.same, *p.differ, *(
            (self._cover,) if self._cover else ())})) if p else ()
        g = spec.only_if if spec.only_if is not None and spec.only_if.required else None
        self._gate = g
        if g is not None:
            state["gates"] = {}  # only then: other rules' state stays as it was
            self._gate_types: frozenset[str] = frozenset(g.type)
            self._gate_pred = g.predicate()
            self._gate_key = g.key or spec.key
            self._gate_revokes = [
                (frozenset(r.type), r.predicate(), r.key or self._gate_key,
                 tuple(r.same.items()))
                for r in g.revoke
            ]
            self._gate_fields = tuple(sorted({*g.same.values(), *g.differ.values(),
                                              *(f for r in g.revoke for f in r.same.values())}))
            self._action_fields = tuple(sorted({*self._action_fields, *g.same, *g.differ}))

    # -- judging ---------------------------------------------------------------------

    def _failure(self, rec: _Prior, fields: dict[str, Any], t: datetime,
                 ctx: RuleContext, *, late: bool) -> str | None:
        """Why ``rec`` does not cover an action with ``fields`` at ``t`` (None: it does)."""
        p = self.spec.prior
        assert p is not None
        f = rec["f"]
        if any(fields.get(mine) != f.get(theirs) for mine, theirs in p.same.items()):
            return "mismatch"
        if any(fields.get(mine) == f.get(theirs) for mine, theirs in p.differ.items()
               if not (late and mine in self._ignore)):
            return "mismatch"
        if not rec["signed"]:
            return "unsigned"
        span = fields.get(self._cover) if self._cover else None
        if isinstance(span, datetime):
            if rec["at"] > span:
                return "granted_late"
            if rec["from"] is not None and span < rec["from"]:
                return "not_yet_valid"
            if rec["until"] is not None and span > rec["until"]:
                return "expired"
            if rec["until"] is not None and t > rec["until"]:
                return "outlasted"
            return None
        if rec["from"] is not None and t < rec["from"]:
            return "not_yet_valid"
        if rec["until"] is not None and t > rec["until"]:
            return "expired"
        if not late and self._max_age is not None and after(rec["at"], self._max_age) < t:
            return "too_old"
        return None

    def _forgotten(self, rec: _Held | _Prior, now: datetime) -> bool:
        """A record past ``forget_after`` at ``now``: it counts for nothing. Decided by the
        record's own time, so when the sweep below runs never changes an answer."""
        return self._forget is not None and after(rec["at"], self._forget) < now

    def _sweep(self, now: datetime) -> None:
        """Drop forgotten records, about once a day of event time."""
        if self._forget is None or (self._sweep_at is not None and now < self._sweep_at):
            return
        self._sweep_at = now + _SWEEP_EVERY
        # ``after(at, forget) < now`` is ``at < now - forget`` in UTC (exact, whole
        # microseconds): one subtraction per sweep instead of two time-zone conversions per
        # record. Kept to spans where neither side can overflow; else the test per record.
        horizon: datetime | None = None
        if self._forget <= _FAST_FORGET:
            try:
                # In a fixed offset wall time is absolute time, and the horizon keeps the
                # events' own tzinfo, which makes each comparison below cheap.
                horizon = (now - self._forget if type(now.tzinfo) is timezone
                           else now.astimezone(UTC) - self._forget)
            except OverflowError:
                horizon = None
        state = cast(_State, self.state)
        self._sweep_held(state["priors"], horizon, now)
        self._sweep_held(state.get("gates", {}), horizon, now)

    def _sweep_held(self, held: dict[str, list[_R]], horizon: datetime | None,
                    now: datetime) -> None:
        for key in list(held):
            records = held[key]
            if horizon is not None:
                kept = [r for r in records if not r["at"] < horizon]
            else:
                kept = [r for r in records if not self._forgotten(r, now)]
            if kept:
                held[key] = kept
            else:
                del held[key]

    def _prune(self, records: list[_Prior], now: datetime, ctx: RuleContext) -> None:
        """Drop records no later action can rely on (expired, or older than max_age)."""
        max_age = self._max_age
        # Covering a span, an expired record still explains an action whose span began
        # before it expired (a session that outlasted its authorization).
        lapse = self._cover is None
        keep = [r for r in records
                if not (lapse and r["until"] is not None and r["until"] < now)
                and not (max_age is not None and after(r["at"], max_age) < now)]
        if len(keep) != len(records):
            records[:] = keep

    def _subject(self, subject_id: str) -> Subject:
        if self._fixed is not None:
            return self._fixed
        return Subject(kind=self.spec.subject.kind, id=subject_id)

    def _base_details(self, key: str, event_id: str, at: datetime,
                      ctx: RuleContext) -> dict[str, Any]:
        out: dict[str, Any] = {"what": self._what, "key": key, "event": event_id,
                               "at": _iso(ctx, at)}
        for name, value in zip(self.spec.key, split_key(key), strict=False):
            out[name] = value
        return out

    # -- events ----------------------------------------------------------------------

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        if event.type in self._event_types and self._event_pred(event):
            self._on_action(event, ctx)
        state = cast(_State, self.state)
        self._revoke(event, self._revokes, state["priors"])
        if (self._prior_pred is not None and event.type in self._prior_types
                and self._prior_pred(event)):
            self._on_prior(event, ctx)
        if self._gate is not None:
            self._revoke(event, self._gate_revokes, state["gates"])
            if event.type in self._gate_types and self._gate_pred(event):
                self._on_gate(event)

    @staticmethod
    def _revoke(event: EventBase, revokes: list[Any],
                held: dict[str, list[_R]]) -> None:
        for types, pred, rkey, same in revokes:
            if event.type in types and pred(event):
                key = key_of(event, rkey)
                if key is None:
                    continue
                records = held.get(key)
                if records:
                    records[:] = [r for r in records
                                  if not all(event_value(event, mine) == r["f"].get(theirs)
                                             for mine, theirs in same)]
                    if not records:
                        del held[key]

    def _opens(self, rec: _Held, fields: dict[str, Any]) -> bool:
        """Whether the ``only_if`` record ``rec`` makes an action with ``fields`` owed."""
        g = self._gate
        assert g is not None
        f = rec["f"]
        return (all(fields.get(mine) == f.get(theirs) for mine, theirs in g.same.items())
                and all(fields.get(mine) != f.get(theirs) for mine, theirs in g.differ.items()))

    def _on_gate(self, event: EventBase) -> None:
        key = key_of(event, self._gate_key)
        if key is None:
            return
        rec: _Held = {"id": event.id, "at": event.at,
                      "f": {f: event_value(event, f) for f in self._gate_fields}}
        state = cast(_State, self.state)
        for case in state["pending"].get(key, ()):
            if not case["gated"] and self._opens(rec, case["f"]):
                case["gated"] = True
        if self._forget is not None:
            self._sweep(event.at)
        records = state["gates"].setdefault(key, [])
        records.append(rec)
        if len(records) > _MAX_PRIORS_PER_KEY:
            del records[: len(records) - _MAX_PRIORS_PER_KEY]

    def _on_action(self, event: EventBase, ctx: RuleContext) -> None:
        s = self.spec
        subject_value = (self._fixed.id if self._fixed is not None
                         else event_value(event, s.subject.field))  # type: ignore[union-attr]
        key = key_of(event, s.key)
        if subject_value is None or key is None:
            return
        subject_id = str(subject_value)
        missing = [p for p, test in self._require if not test(event)]
        if missing:
            details = self._base_details(key, event.id, event.at, ctx)
            details["missing"] = ", ".join(missing)
            ctx.emit(s, "incomplete", kind=s.kind, subject=self._subject(subject_id),
                     at=event.at, evidence=[event.id], key=event.id, details=details)
        if s.prior is None:
            return
        fields = {f: event_value(event, f) for f in self._action_fields}
        state = cast(_State, self.state)
        stored = state["priors"].get(key, [])
        records = stored
        if self._forget is not None and stored:
            records = [r for r in stored if not self._forgotten(r, event.at)]
        reasons = set()
        # Earlier events of the right party that fail for a reason (expired, unsigned ...)
        # explain the decision; those of another party (the leaving guard's own start) not.
        candidates: list[str] = []
        for rec in records:
            why = self._failure(rec, fields, event.at, ctx, late=False)
            if why is None:
                return
            reasons.add(why)
            if why != "mismatch":
                candidates.append(rec["id"])
        if stored:
            self._prune(stored, event.at, ctx)
        reason = next((r for r in _REASON_RANK if r in reasons), "missing")
        if s.only_reasons and reason not in s.only_reasons:
            return
        gated = True
        if self._gate is not None:
            held = state["gates"].get(key, ())
            gated = any(self._opens(r, fields) for r in held
                        if not (self._forget is not None and self._forgotten(r, event.at)))
        if not self._waits:
            if gated:
                self._unmet(key, event.id, event.at, subject_id, reason, candidates, event.at,
                            ctx)
            return
        due = after(event.at, self._wait) if self._wait is not None else None
        case: _Case = {"id": event.id, "at": event.at, "subject": subject_id, "f": fields,
                       "reason": reason, "candidates": candidates, "due": due}
        if self._gate is not None:
            case["gated"] = gated
        state["pending"].setdefault(key, []).append(case)
        if due is not None:
            ctx.schedule(due, "p" + KEY_SEP + key_part(event.id) + KEY_SEP + key)

    def _unmet(self, key: str, event_id: str, at: datetime, subject_id: str, reason: str,
               candidates: list[str], when: datetime, ctx: RuleContext) -> None:
        s = self.spec
        details = self._base_details(key, event_id, at, ctx)
        details.update(reason=reason, reason_zh=_REASON_ZH.get(reason, reason),
                       candidates=candidates)
        if when != at:
            details["waited"] = format_duration(when - at)
        ctx.emit(s, "unmet", kind=s.kind, subject=self._subject(subject_id), at=when,
                 evidence=[event_id, *candidates], key=event_id, details=details)

    def _on_prior(self, event: EventBase, ctx: RuleContext) -> None:
        p = self.spec.prior
        assert p is not None
        key = key_of(event, self._prior_key)
        if key is None:
            return
        signed = True
        if p.cosign is not None and p.cosign.required:
            names = event_value(event, p.cosign.field) or ()
            signed = all(event_value(event, f) in names for f in p.cosign.by)
        rec: _Prior = {
            "id": event.id,
            "at": event.at,
            "f": {f: event_value(event, f) for f in self._prior_fields},
            "from": event_value(event, p.valid_from) if p.valid_from else None,
            "until": event_value(event, p.valid_until) if p.valid_until else None,
            "signed": signed,
        }
        state = cast(_State, self.state)
        waiting = state["pending"].get(key)
        if waiting:
            self._settle(key, waiting, rec, ctx)
        self._sweep(event.at)
        records = state["priors"].setdefault(key, [])
        records.append(rec)
        self._prune(records, event.at, ctx)
        if len(records) > _MAX_PRIORS_PER_KEY:
            del records[: len(records) - _MAX_PRIORS_PER_KEY]
        if not records:
            del state["priors"][key]

    def _settle(self, key: str, waiting: list[_Case], rec: _Prior,
                ctx: RuleContext) -> None:
        """A prior arrived while actions were waiting for one: each it covers is settled,
        in time within the grace, ``late`` after it."""
        s = self.spec
        still: list[_Case] = []
        for case in waiting:
            if self._failure(rec, case["f"], case["at"], ctx, late=True) is not None:
                still.append(case)
                continue
            if rec["at"] <= after(case["at"], self._grace) or not case.get("gated", True):
                continue  # in time, or owed nothing (no only_if event came)
            waited: timedelta = rec["at"] - case["at"]
            details = self._base_details(key, case["id"], case["at"], ctx)
            details.update(prior_event=rec["id"], prior_at=_iso(ctx, rec["at"]),
                           waited=format_duration(waited),
                           waited_seconds=int(waited.total_seconds()),
                           grace=s.grace or "PT0S")
            ctx.emit(s, "late", kind=s.kind, subject=self._subject(case["subject"]),
                     at=rec["at"], evidence=[case["id"], rec["id"]], key=case["id"],
                     details=details)
        if still:
            waiting[:] = still
        else:
            del cast(_State, self.state)["pending"][key]

    # -- time ------------------------------------------------------------------------

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        _, _, rest = key.partition(KEY_SEP)
        part, _, case_key = rest.partition(KEY_SEP)
        event_id = part_value(part)
        pending = cast(_State, self.state)["pending"]
        waiting = pending.get(case_key)
        if not waiting:
            return
        case = next((c for c in waiting if c["id"] == event_id), None)
        if case is None:
            return  # settled since
        waiting.remove(case)
        if not waiting:
            del pending[case_key]
        if self.spec.on_unsettled == "emit" and case.get("gated", True):
            self._unmet(case_key, case["id"], case["at"], case["subject"], case["reason"],
                        case["candidates"], due, ctx)
