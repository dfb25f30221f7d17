"""Shared set-up of the property suite: hypothesis profiles, the policy sets under test and
small evaluation helpers.

Profiles (``HYPOTHESIS_PROFILE``): ``dev`` (default, 60 examples), ``ci`` (100 examples) and
``thorough`` (1000, for hunting bugs locally). Applied per test, not loaded globally, so other
suites keep their own settings.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from functools import cache
from typing import NamedTuple

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

from policykit import (
    DEFAULT_DEDUPE_WINDOW,
    Decision,
    Engine,
    EventBase,
    EventOrderError,
    Policy,
    PolicySet,
    standard_pack,
)
from policykit.calendar import DEFAULT_CALENDAR, BusinessCalendar
from policykit.models.parsing import parse_event
from policykit.testing import BERLIN, OFFSETS, Stream, pack_streams

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    "print_blob": True,
}
settings.register_profile("dev", max_examples=60, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("ci", max_examples=100, **_COMMON)  # type: ignore[arg-type]
settings.register_profile("thorough", max_examples=1000, **_COMMON)  # type: ignore[arg-type]


def _profile() -> settings:
    name = os.environ.get("HYPOTHESIS_PROFILE", "dev")
    try:
        return settings.get_profile(name)
    except InvalidArgument:
        return settings.get_profile("dev")


PROFILE = _profile()
"""The settings every property of this suite runs with."""


def on_calendar(policies: PolicySet, calendar: BusinessCalendar) -> PolicySet:
    """The same policies on another business calendar (a site outside China)."""
    out = []
    for p in policies:
        data = p.model_dump()
        data["calendar"] = calendar.model_dump()
        out.append(Policy.model_validate(data))
    return PolicySet(out)


@cache
def target(name: str) -> tuple[PolicySet, BusinessCalendar]:
    """A policy set under test and the calendar its streams are drawn in: the whole standard
    pack as shipped ("shanghai"), and on a Berlin site calendar with DST ("berlin")."""
    if name == "shanghai":
        return standard_pack(), DEFAULT_CALENDAR
    return on_calendar(standard_pack(), BERLIN), BERLIN


TARGETS = ("shanghai", "berlin")


class Case(NamedTuple):
    """A drawn stream and the target it runs on."""

    target: str
    stream: Stream

    @property
    def policies(self) -> PolicySet:
        return target(self.target)[0]


def cases() -> st.SearchStrategy[Case]:
    """Streams for the whole pack, on either target's calendar."""
    def on(name: str) -> st.SearchStrategy[Case]:
        return pack_streams(target(name)[1]).map(lambda s: Case(name, s))

    return st.one_of(*(on(name) for name in TARGETS))


RANDOMS = st.randoms(use_true_random=False)
"""Choices made inside a test (order, copies, chunks, offsets) come from a seeded Random,
so a counterexample can be kept as ``@example(case=..., rnd=random.Random(0))``."""


# --------------------------------------------------------------------------- deliveries


def shuffled(events: Sequence[EventBase], rnd: random.Random) -> list[EventBase]:
    out = list(events)
    rnd.shuffle(out)
    return out


def with_copies(events: Sequence[EventBase], rnd: random.Random) -> list[EventBase]:
    """Some events delivered again (re-read from the wire form), each copy after its
    original."""
    out = list(events)
    for ev in [e for e in events if rnd.random() < 0.3]:
        copy = parse_event(ev.model_dump(mode="json", exclude_none=True))
        out.insert(rnd.randint(out.index(ev) + 1, len(out)), copy)
    return out


def in_other_offsets(s: Stream, rnd: random.Random) -> Stream:
    """The same instants, each event (and ``until``) written in an offset of its own."""
    out = []
    for ev in s.events:
        tz = rnd.choice(OFFSETS)
        update = {name: value.astimezone(tz) for name, value in ev
                  if isinstance(value, datetime)}
        out.append(ev.model_copy(update=update))
    until = s.until.astimezone(rnd.choice(OFFSETS)) if s.until is not None else None
    return Stream(tuple(out), until)


def chunking(events: Sequence[EventBase],
             rnd: random.Random) -> tuple[list[int], list[datetime | None]]:
    """Chunk boundaries and, for each, an ``advance_to`` instant not after the next event:
    strictly before it (at its instant, deadlines due then would fire before it, which makes
    it late by definition), from the clock itself to a microsecond before."""
    if len(events) < 2:
        return [], []
    cuts = sorted(rnd.sample(range(1, len(events)), min(len(events) - 1, rnd.randint(0, 6))))
    pauses: list[datetime | None] = []
    for i in cuts:
        clock, nxt = events[i - 1].at, events[i].at
        if nxt <= clock:
            pauses.append(None)
            continue
        mid = clock + (nxt - clock) // 2
        pauses.append(rnd.choice((None, clock, mid, nxt - timedelta(microseconds=1))))
    return cuts, pauses


def evaluate(policies: PolicySet, events: Iterable[EventBase],
             until: datetime | None) -> list[Decision]:
    """A batch evaluation on a fresh engine."""
    return Engine(policies).evaluate(list(events), until=until)


def stream(policies: PolicySet, events: Sequence[EventBase], until: datetime | None, *,
           cuts: Sequence[int] = (), pauses: Sequence[datetime | None] = (),
           allowed_lateness: timedelta | None = None,
           dedupe_window: timedelta | None = DEFAULT_DEDUPE_WINDOW,
           refused: list[EventBase] | None = None) -> list[Decision]:
    """Feed ``events`` (in the given order) one by one into a session; after the events
    before each cut, ``advance_to`` the matching pause (None: no advance); then advance to
    ``until``. The decisions of all calls, in the engine's order. With ``refused``, events
    the session refuses as too old are collected there instead of raising."""
    out: list[Decision] = []
    pause_at = dict(zip(cuts, pauses, strict=True))
    with Engine(policies).session(allowed_lateness=allowed_lateness,
                                  dedupe_window=dedupe_window) as session:
        for i, ev in enumerate(events):
            pause = pause_at.get(i)
            if pause is not None:
                out += session.advance_to(pause)
            if refused is None:
                out += session.feed(ev)
                continue
            try:
                out += session.feed(ev)
            except EventOrderError:
                refused.append(ev)
        if until is not None:
            out += session.advance_to(until)
    return sorted(out, key=lambda d: (d.at, d.id))


def show(decisions: Iterable[Decision]) -> str:
    """Decisions one per line, for assertion messages."""
    return "\n".join(f"  {d.policy} {d.rule} {d.kind} {d.subject.kind}/{d.subject.id} "
                     f"{d.details.get('outcome', '')} {d.amount or ''} {d.at.isoformat()} "
                     f"{d.status} {d.id}" for d in decisions)


def diff(a: list[Decision], b: list[Decision]) -> str:
    """What one list of decisions has that the other lacks."""
    sa, sb = set(map(_key, a)), set(map(_key, b))
    only_a = [d for d in a if _key(d) not in sb]
    only_b = [d for d in b if _key(d) not in sa]
    return f"only in the first ({len(only_a)}):\n{show(only_a)}\n" \
           f"only in the second ({len(only_b)}):\n{show(only_b)}"


def _key(d: Decision) -> str:
    return d.model_dump_json()
