"""A streaming session's memory stays flat over a long stream: seven and a half years.

The stream: the generated company in its steady form (``bench/generate.py --steady``: 12
employees, the first year's projects and no more, the same households, and every month one
customer leaves and a new one registers), from January 2016 to mid-2023 (about 170,000
events, the whole standard pack), fed one by one into ``Engine().session()`` with its
defaults. Every six months of event time, and at the end, the test reads what the session
holds and asserts:

* **closed cases are forgotten**: the state of every rule but the recurrences (requests,
  incidents, complaints, priors, tariff and rate periods, ladders) stops growing once a year
  of closed keys is remembered (``forget_after``, a year by default);
* **populations cost a bounded amount per member, and leavers cost nothing**: recurrences
  keep one entry per live member, each at a bounded cost, and a customer's entries go with
  its ``customer.deactivated``; the business keeps its size, so their whole state and their
  members stay flat too, while ninety customers come and go;
* **event ids are remembered for the dedupe window only**: exactly the ids of the events
  of the last 30 days.

Each bound is 1.25x the level after the first year (the highest of the samples at 18 and 24
months), held by every later sample over five and a half more years. What is measured is
the state itself (pickled bytes), not the process RSS, which the test's own generator would
dominate; ``bench/run.py --long`` streams the growing 44-person company (1M events) and
reports the RSS.

Why the steady company: in the growing one the populations and the events per month rise
year after year (a delivered project is owed callbacks for ever, new customers come at 5%
a month), so flat state can only be shown per member and on a stream long enough for a
large company (1M events, minutes); the smallest growing company grows thirtyfold and
breaks the bound. A steady business shows the same three properties on a sixth of the
events, and more strictly: nothing but a leak can make its state grow, so its whole
recurrence state and its members are bounded too (a leak of leavers lowers the state per
member). Each kind of leak, planted in the rules or the session, breaks a bound
(docs/performance.md, "Memory"); the tests at the end check the checks.
"""

from __future__ import annotations

import pickle
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any

import pytest

from bench.generate import generate
from policykit import DEFAULT_DEDUPE_WINDOW, Engine
from policykit.engine.session import Session

EMPLOYEES, MONTHS, SEED = 12, 90, 5  # January 2016 to July 2023
START = date(2016, 1, 1)
BOUND = 1.25


@dataclass(frozen=True)
class Sample:
    """What the session holds at one instant."""

    closed: int  # pickled bytes of the rules but the recurrences
    recurring: int  # pickled bytes of the recurrences
    members: int  # the recurrences' members and subjects
    stray_ids: int  # ids remembered outside the dedupe window, plus ids in it forgotten


def _sample(session: Session, shapes: list[list[str]], window: set[str]) -> Sample:
    closed = recurring = members = 0
    for states, kinds in zip(session._ev.export_state()["rules"], shapes, strict=True):
        for rule_state, shape in zip(states, kinds, strict=True):
            size = len(pickle.dumps(rule_state, pickle.HIGHEST_PROTOCOL))
            if shape == "recurrence":
                recurring += size
                members += len(rule_state["members"]) + len(rule_state["subjects"])
            else:
                closed += size
    return Sample(closed, recurring, members, len(set(session._seen.ids) ^ window))


def watch(engine: Engine, stream: Iterable[dict[str, Any]]) -> list[Sample]:
    """Feeds ``stream`` into a new session of ``engine``: a sample every half year of event
    time (before its first event) and one at the end."""
    shapes = [[spec.shape for spec in p.specs] for p in engine.policies]
    session = engine.session()
    recent: deque[tuple[datetime, str]] = deque()  # the events of the last dedupe window
    samples: list[Sample] = []
    half: tuple[int, int] | None = None
    fed = 0

    def sample() -> None:
        horizon = recent[-1][0] - DEFAULT_DEDUPE_WINDOW  # the session's clock
        while recent and recent[0][0] < horizon:
            recent.popleft()
        samples.append(_sample(session, shapes, {i for _at, i in recent}))

    for raw in stream:
        at = datetime.fromisoformat(raw["at"])
        now = (at.year, (at.month - 1) // 6)
        if now != half:
            if half is not None:
                sample()
            half = now
        session.feed(raw)
        recent.append((at, raw["id"]))
        fed += 1
    sample()
    assert session.stats.events == fed and session.stats.rejected == 0
    return samples


def failures(samples: list[Sample]) -> list[str]:
    """The bounds ``samples`` break (none: the state is flat)."""
    out = [f"{s.stray_ids} ids outside the dedupe window at sample {k}"
           for k, s in enumerate(samples) if s.stray_ids]
    if len(samples) < 15:  # seven and a half years, sampled every half year
        return [*out, f"only {len(samples)} samples"]
    # A year of closed keys is kept, so the state fills in the first two samples; from then
    # on it must stay flat while the stream goes on for five and a half more years.
    closed = [s.closed for s in samples]
    if min(closed[3:]) <= 0.5 * max(closed[2:4]):
        out.append(f"closed-case state collapsed (no real work?): {closed}")
    series: dict[str, Sequence[float]] = {
        "closed-case state": closed,
        "recurrence state": [s.recurring for s in samples],
        "recurrence members": [s.members for s in samples],
        "recurrence state per member": [s.recurring / s.members for s in samples],
    }
    for name, values in series.items():
        if max(values[4:]) > BOUND * max(values[2:4]):
            out.append(f"{name} grew past {BOUND}x its level after the first year: {values}")
    return out


@pytest.mark.slow(seconds=15)
def test_a_session_streaming_seven_years_of_a_steady_business_keeps_flat_state() -> None:
    samples = watch(Engine(), generate(EMPLOYEES, MONTHS, SEED, START, steady=True))
    assert failures(samples) == []


FLAT = [Sample(1000 if k else 500, 2000, 100, 0) for k in range(15)]


@pytest.mark.parametrize(("leak", "broken"), [
    # a rule keeps its closed cases: a year's more state each year
    ({"closed": lambda k, s: s.closed * max(1, k) // 2}, "closed-case state grew"),
    # a rule keeps the members who left (churn): members and state grow, per member flat
    ({"recurring": lambda k, s: s.recurring * (10 + k) // 10,
      "members": lambda k, s: s.members * (10 + k) // 10}, "recurrence members grew"),
    # a member's entry grows with time (an agenda never pruned): members flat
    ({"recurring": lambda k, s: s.recurring * (10 + k) // 10}, "state per member grew"),
    # the session never forgets ids
    ({"stray_ids": lambda k, s: 100 * k}, "ids outside the dedupe window at sample 1"),
])
def test_a_leak_is_reported(leak: dict[str, Any], broken: str) -> None:
    leaky = [replace(s, **{f: grow(k, s) for f, grow in leak.items()})
             for k, s in enumerate(FLAT)]
    assert failures(FLAT) == []
    assert any(broken in f for f in failures(leaky)), failures(leaky)


def test_a_session_that_never_forgets_ids_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real watch on a real leak: ids never forgotten, caught within months."""
    from policykit.engine._dedupe import SeenIds

    monkeypatch.setattr(SeenIds, "forget_before", lambda self, clock: None)
    samples = watch(Engine(), generate(EMPLOYEES, 2, SEED, START, steady=True))
    assert [bool(s.stray_ids) for s in samples] == [True]
