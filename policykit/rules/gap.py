"""The *gap* shape: consecutive events per key no further apart than ``max_gap``. Patrol
rounds at most two hours apart, holiday monitoring checks every four hours during the day,
a 24-hour post never left empty.

The violation fires in event time at the moment the gap is reached (a timer), not when the
late event finally comes, so an application can act on it at once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, ClassVar, Literal, NotRequired, TypedDict, cast

from pydantic import BaseModel, ConfigDict, model_validator

from ..calendar import format_duration
from ..models.decisions import DecisionKind, Subject
from ..models.events import EventBase
from ._base import (
    KEY_SEP,
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
    event_value,
    first_key,
    key_of,
    keyed_by,
    split_key,
)
from ._base import local_iso as _iso
from ._scope import (
    Active,
    FixedSubject,
    Population,
    PopulationTracker,
    after,
)
from .deadline import ExactDuration

__all__ = ["GapSpec", "Occupancy"]


#: The shortest ``max_gap`` a rule with ``repeat: true`` may give.
MIN_REPEAT_GAP = timedelta(minutes=15)
#: The most decisions one gap makes with ``repeat: true`` (over ten days at PT15M).
MAX_REPEATS = 1000


class Occupancy(BaseModel):
    """Coverage instead of beats: ``enter`` and ``leave`` events (``shift.started`` /
    ``shift.ended``) keep the set of ``occupant`` values per key; the gap runs from the
    moment the set becomes empty until the next ``enter``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    enter: Match
    """Events that add an occupant (``shift.started``)."""
    leave: Match
    """Events that remove one (``shift.ended``)."""
    occupant: str
    """The field of those events naming the occupant."""

    @model_validator(mode="after")
    def _valid(self) -> Occupancy:
        _check_field(self.enter.type, self.occupant, what="occupancy.occupant")
        _check_field(self.leave.type, self.occupant, what="occupancy.occupant")
        return self


class GapSpec(RuleSpec):
    """Per ``key``, consecutive ``event`` matches (or, with ``occupancy``, the uncovered
    stretches) may be no further apart than ``max_gap``. Outcome ``gap`` fires at the moment
    the gap is reached (``last event + max_gap``); an event exactly then is in time.

    Options: ``stop`` events close a key (an incident closed: no more updates due);
    ``active`` limits the rule to some days and hours (each active interval starts a fresh
    gap at its start, so a day with no check at all is caught too); ``population`` keeps the
    rule in force only while it has members (while customer service has staff) and, with
    no ``key``, arms it without any event of its own; ``repeat`` fires again every
    ``max_gap`` while nothing comes (otherwise once per gap)."""

    shape: Literal["gap"] = "gap"
    event: Match | None = None
    """The events that must keep coming (beats), per key."""
    occupancy: Occupancy | None = None
    """Or: coverage kept by enter and leave events; the gap runs while nobody is in."""
    key: Names = ()
    """The event field(s) the gaps are measured per (a post, an incident); none: one stream."""
    max_gap: str
    """The longest allowed time between two events (an ISO-8601 duration)."""
    stop: tuple[Match, ...] = ()
    """Events that close a key: no more events are due for it."""
    active: Active | None = None
    """Days and hours the rule is in force; each active interval starts a fresh gap."""
    population: Population | None = None
    """Keep the rule in force only while this population has members."""
    subject: SubjectRef | FixedSubject
    """Who the decisions are about: an event field, or a fixed subject."""
    repeat: bool = False
    """Fire again every ``max_gap`` while nothing comes: needs ``max_gap`` of at least
    ``PT15M`` (at most 96 decisions per key a day), and one gap fires at most
    ``MAX_REPEATS`` times (the key is then silent until its next event)."""
    kind: DecisionKind = "violation"
    """The kind of the ``gap`` decisions."""
    expire_after: ExactDuration | None = "P365D"
    """With ``occupancy``: how long a key may stay occupied without any event of its own
    (an entry or a leave). After that long the occupants are taken never to have left (a
    lost ``leave`` event): the key is closed with an ``expired`` warning naming them, and
    its next entry starts it afresh. ``null`` keeps it occupied for ever."""

    message_fields: ClassVar[frozenset[str]] = frozenset({
        "due", "expire_after", "gap", "gap_seconds", "key", "last_at", "last_by",
        "last_event", "last_event_at", "max_gap", "occupants", "since", "what", "window_end",
        "window_start",
    })

    default_messages: ClassVar[dict[str, Message]] = {
        "gap": Message(
            en="{rule} gap: no {what} for {subject} since {since} ({gap} > {max_gap})",
            zh="{rule} 間隔超時：{subject} 自 {since} 起已逾 {max_gap} 未見「{what}」"),
        "expired": Message(
            en="{rule} expired: {subject} has been occupied by {occupants} with no event "
               "since {last_event_at} ({expire_after}); closed without a judgement",
            zh="{rule} 過期：{subject} 自 {last_event_at} 起 {expire_after} 無任何事件"
               "（在崗：{occupants}），未經判定即結案"),
    }

    def _matches(self) -> list[Match]:
        out: list[Match] = []
        if self.event is not None:
            out.append(self.event)
        if self.occupancy is not None:
            out += [self.occupancy.enter, self.occupancy.leave]
        return out

    @model_validator(mode="after")
    def _valid(self) -> GapSpec:
        if (self.event is None) == (self.occupancy is None):
            raise ValueError("give exactly one of event, occupancy")
        from ..calendar import parse_duration

        gap = parse_duration(self.max_gap)
        if not gap:
            raise ValueError("max_gap must be longer than zero")
        if self.repeat and gap < MIN_REPEAT_GAP:
            raise ValueError(f"max_gap {self.max_gap} with repeat: true: at least "
                             f"{format_duration(MIN_REPEAT_GAP)} (every max_gap of a gap is "
                             "a decision per key)")
        for m in (*self._matches(), *self.stop):
            for f in m.key or self.key:
                _check_field(m.type, f, what="key")
        if isinstance(self.subject, SubjectRef):
            for m in self._matches():
                _check_field(m.type, self.subject.field, what="subject.field")
            if not self.key and self.population is not None:
                raise ValueError("a rule armed by its population alone (no key) needs a "
                                 "fixed subject: {kind: ..., id: ...}")
        if self.population is not None:
            self.population.check_members("gap")
        return self

    def event_types(self) -> frozenset[str]:
        types: set[str] = set()
        for m in (*self._matches(), *self.stop):
            types.update(m.type)
        if self.population is not None:
            types.update(self.population.event_types())
        return frozenset(types)

    def state_types(self) -> frozenset[str]:
        return self.population.event_types() if self.population is not None else frozenset()

    def partition(self) -> Partition | str:
        if not self.key:
            return "one chain for everything (no key)"
        occ = self.occupancy
        matches = [self.event] if self.event is not None else \
            [occ.enter, occ.leave] if occ is not None else []
        pairs: list[tuple[Iterable[str], str | None]] = [
            (m.type, first_key(m.key, self.key)) for m in (*matches, *self.stop)]
        if self.population is not None:
            pairs.append((self.population.event_types(), None))
        return keyed_by(pairs)

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _GapRuntime(self, policy)


class _Route:
    __slots__ = ("key", "pred", "role", "types")

    def __init__(self, match: Match, default_key: tuple[str, ...], role: str) -> None:
        self.types = frozenset(match.type)
        self.pred = match.predicate()
        self.key = match.key or default_key
        self.role = role


class _Chain(TypedDict):
    """One key's chain: the subject, the last event (id, time, who left), the gap start
    (``since``) and its ``due``, the active interval ``win`` ``[start, end]`` and the timer
    at its edge (``start``), the occupants; ``fired`` repeats so far, ``touched`` and
    ``entry`` only while occupied (with ``expire_after`` / occupancy)."""

    subject: str | None
    last: str | None
    last_at: datetime | None
    last_by: str | None
    since: datetime | None
    due: datetime | None
    win: list[datetime] | None
    start: datetime | None
    occ: list[str]
    fired: NotRequired[int]
    touched: NotRequired[datetime]
    entry: NotRequired[str]


class _State(TypedDict):
    """``_GapRuntime.state`` (a plain dict at run time; the type is for mypy only)."""

    chains: dict[str, _Chain]
    members: dict[str, str]


class _GapRuntime(RuleRuntime):
    """State: ``chains`` key -> plain dict (last event, gap start, due, active interval,
    next interval timer, occupants); ``members`` the population."""

    spec: GapSpec
    # Its order is read (the first member is evidence): a late-event window's checkpoints
    # copy it whole instead of journaling its keys, which could put a removed one back last.
    whole_state: ClassVar[frozenset[str]] = frozenset({"members"})

    def __init__(self, spec: GapSpec, policy: PolicyInfo) -> None:
        super().__init__(spec, policy)
        state: _State = {"chains": {}, "members": {}}
        self.state = cast(dict[str, Any], state)
        routes: list[_Route] = []
        if spec.event is not None:
            routes.append(_Route(spec.event, spec.key, "beat"))
        if spec.occupancy is not None:
            routes.append(_Route(spec.occupancy.enter, spec.key, "enter"))
            routes.append(_Route(spec.occupancy.leave, spec.key, "leave"))
        routes += [_Route(m, spec.key, "stop") for m in spec.stop]
        self._routes = routes
        self._pop = PopulationTracker(spec.population) if spec.population else None
        self._what = spec.title or spec.id
        self._fixed = spec.subject.subject() if isinstance(spec.subject, FixedSubject) else None
        from ..calendar import parse_duration

        self._gap = parse_duration(spec.max_gap)
        self._expire = parse_duration(spec.expire_after) if spec.expire_after else None

    # -- helpers ---------------------------------------------------------------------

    def _chain(self, key: str) -> _Chain:
        chains = cast(_State, self.state)["chains"]
        chain = chains.get(key)
        if chain is None:
            chain = {"subject": None, "last": None, "last_at": None, "last_by": None,
                     "since": None, "due": None, "win": None, "start": None, "occ": []}
            chains[key] = chain
        return chain

    def _in_force(self) -> bool:
        return self._pop is None or bool(cast(_State, self.state)["members"])

    def _arm(self, key: str, chain: _Chain, since: datetime, ctx: RuleContext) -> None:
        """Start measuring a gap at ``since`` (a beat, a post left empty, an interval's
        start) and schedule the moment it is exceeded."""
        chain["due"] = None
        if not self._in_force() or chain["occ"]:
            chain["start"] = None
            return
        chain["since"] = since
        s = self.spec
        active = s.active
        if active is None:
            due = after(since, self._gap)
            chain["due"] = due
            ctx.schedule(due, "g" + KEY_SEP + key)
            return
        win = chain["win"]
        if win is None or not (win[0] <= since < win[1]):
            found = active.next_interval(ctx.calendar, since)
            win = None if found is None else [found[0], found[1]]
            chain["win"] = win
        if win is None:
            chain["start"] = None
            return
        start, end = win
        if start <= since:
            due = after(since, self._gap)
            # Reaching the limit at or after the interval's end is no gap: the rest is
            # outside the hours the rule is in force.
            if due < end:
                chain["due"] = due
                ctx.schedule(due, "g" + KEY_SEP + key)
            wake = end
        else:
            wake = start
        chain["start"] = wake
        ctx.schedule(wake, "s" + KEY_SEP + key)

    def _subject(self, chain: _Chain) -> Subject:
        if self._fixed is not None:
            return self._fixed
        return Subject(kind=self.spec.subject.kind, id=chain["subject"] or "?")

    # -- events ----------------------------------------------------------------------

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        if self._pop is not None and self._pop.handles(event):
            state = cast(_State, self.state)
            change = self._pop.apply(event, state["members"])
            if change > 0:
                if not self.spec.key:
                    self._chain("")
                for chain_key, chain in state["chains"].items():
                    self._arm(chain_key, chain, event.at, ctx)
            elif change < 0:
                for chain in state["chains"].values():
                    chain["due"] = chain["start"] = None
        for route in self._routes:
            if event.type in route.types and route.pred(event):
                key = key_of(event, route.key)
                if key is not None:
                    self._on_match(route.role, key, event, ctx)

    def _on_match(self, role: str, key: str, event: EventBase, ctx: RuleContext) -> None:
        if role == "stop":
            cast(_State, self.state)["chains"].pop(key, None)
            return
        chain = self._chain(key)
        chain.pop("fired", None)  # any event of the key ends a run of repeats
        if isinstance(self.spec.subject, SubjectRef):
            value = event_value(event, self.spec.subject.field)
            if value is not None:
                chain["subject"] = str(value)
        if role == "beat":
            chain["last"], chain["last_at"] = event.id, event.at
            self._arm(key, chain, event.at, ctx)
            return
        assert self.spec.occupancy is not None
        who = str(event_value(event, self.spec.occupancy.occupant))
        occ = chain["occ"]
        if self._expire is not None:
            chain["touched"] = event.at
        if role == "enter":
            if self._expire is not None and not occ:
                # One wake-up per occupied stretch, moved on lazily (see on_timer).
                ctx.schedule(event.at + self._expire, "x" + KEY_SEP + key)
            if who not in occ:
                occ.append(who)
                chain["entry"] = event.id
            chain["due"] = None
        else:
            if who in occ:
                occ.remove(who)
            if not occ:
                chain["last"], chain["last_at"], chain["last_by"] = event.id, event.at, who
                self._arm(key, chain, event.at, ctx)

    # -- time ------------------------------------------------------------------------

    def on_timer(self, key: str, due: datetime, ctx: RuleContext) -> None:
        kind, _, chain_key = key.partition(KEY_SEP)
        chains = cast(_State, self.state)["chains"]
        chain = chains.get(chain_key)
        if chain is None:
            return
        if kind == "x":
            self._expire_chain(chain_key, chain, due, ctx)
            return
        if kind == "s":
            if chain["start"] != due:
                return  # re-armed since
            chain["start"] = None
            chain.pop("fired", None)  # a new active interval: a new gap
            self._arm(chain_key, chain, due, ctx)
            return
        if chain["due"] != due:
            return  # a beat (or an enter) came in time
        self._emit(chain_key, chain, due, ctx)
        fired = chain.get("fired", 0) + 1
        if self.spec.repeat and fired < MAX_REPEATS:
            chain["fired"] = fired
            self._arm(chain_key, chain, due, ctx)
        elif self._pop is None and chain["start"] is None and not chain["occ"]:
            # Judged, and nothing pending: the key's next event starts a new chain just as
            # this one would go on, so the chain ends here instead of staying for ever.
            del chains[chain_key]
        else:
            chain.pop("fired", None)
            chain["due"] = None

    def _expire_chain(self, key: str, chain: _Chain, due: datetime,
                      ctx: RuleContext) -> None:
        touched = chain.get("touched")
        if not chain["occ"] or touched is None or self._expire is None:
            return  # left since: the next entry sets a new wake-up
        if touched + self._expire > due:
            ctx.schedule(touched + self._expire, "x" + KEY_SEP + key)
            return
        s = self.spec
        details: dict[str, Any] = {
            "what": self._what, "key": key, "occupants": ", ".join(chain["occ"]),
            "last_event_at": _iso(ctx, touched), "expire_after": s.expire_after,
        }
        del cast(_State, self.state)["chains"][key]
        ctx.emit(s, "expired", kind="warning", subject=self._subject(chain), at=due,
                 evidence=[e for e in (chain.get("entry"), chain["last"]) if e], key=key,
                 details=details, severity="low")

    def _emit(self, key: str, chain: _Chain, due: datetime, ctx: RuleContext) -> None:
        s = self.spec
        since = chain["since"]
        assert since is not None  # set by every _arm that sets ``due``
        evidence = [chain["last"]] if chain["last"] else []
        members = cast(_State, self.state)["members"]
        if self._pop is not None and members:
            evidence.append(next(iter(members.values())))
        details: dict[str, Any] = {
            "what": self._what,
            "key": key,
            "last_event": chain["last"],
            "last_at": _iso(ctx, chain["last_at"]),
            "since": _iso(ctx, since),
            "due": _iso(ctx, due),
            "gap": format_duration(due - since),
            "gap_seconds": int((due - since).total_seconds()),
            "max_gap": s.max_gap,
        }
        for name, value in zip(s.key, split_key(key), strict=False):
            details[name] = value
        if chain["last_by"] is not None:
            details["last_by"] = chain["last_by"]
        if s.active is not None and chain["win"] is not None:
            details["window_start"] = _iso(ctx, chain["win"][0])
            details["window_end"] = _iso(ctx, chain["win"][1])
        ctx.emit(s, "gap", kind=s.kind, subject=self._subject(chain), at=due,
                 evidence=evidence, key=key, details=details)
