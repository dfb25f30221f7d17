"""A long stream's state stays flat: closed requests, incidents, complaints and past periods
are forgotten (deadline keys and precondition priors after ``forget_after``, a year by
default; tariff and rate periods when they close).

The stream: the generated company (12 employees) over 30 months from 2016 (~80k events,
the whole standard pack). 1M events would take minutes on the native backend, so this is
the largest stream that keeps the test well under a minute on the CI machine; bench/run.py
reports the process memory over 1M. What is measured is the rule state itself (its pickled
size), at each month's start: closed-case state must stop growing once a year of it is
kept. Populations are excluded: delivered projects and registered customers are owed
callbacks and visits for as long as they exist, so that state grows with the business.
"""

from __future__ import annotations

import pickle
import sys
from datetime import date
from pathlib import Path
from typing import Any

from policykit.engine._native import NativeBackend
from policykit.models.parsing import parse_event
from policykit.rules.standard import standard_pack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.generate import generate  # noqa: E402

MONTHS = 30


def _closed_case_state(rules: list[list[dict[str, Any]]], shapes: list[list[str]]) -> int:
    """Bytes of every rule's state but the populations recurrences keep."""
    total = 0
    for states, kinds in zip(rules, shapes, strict=True):
        for state, shape in zip(states, kinds, strict=True):
            if shape == "recurrence":
                continue
            total += len(pickle.dumps(state, pickle.HIGHEST_PROTOCOL))
    return total


def test_closed_case_state_stays_flat_over_a_long_stream() -> None:
    pack = standard_pack()
    shapes = [[spec.shape for spec in p.specs] for p in pack]
    evaluator = NativeBackend().open(pack)
    sizes: list[int] = []
    done_keys: list[int] = []
    month: tuple[int, int] | None = None
    events = 0
    for raw in generate(12, MONTHS, 5, start=date(2016, 1, 1)):
        event = parse_event(raw)
        local = (event.at.year, event.at.month)
        if local != month:
            if month is not None:
                state = evaluator.export_state()
                sizes.append(_closed_case_state(state["rules"], shapes))
                done_keys.append(len(state["rules"][0][0]["done"]))  # first-responder R1
            month = local
        evaluator.fire_due(event.at, inclusive=False)
        evaluator.apply(event)
        events += 1
    assert events > 60_000
    assert len(sizes) == MONTHS - 1
    # Requests keep arriving at the same pace; after a year they are forgotten as fast.
    assert done_keys[12] > 500
    assert max(done_keys[18:]) <= 1.25 * max(done_keys[12:18])
    middle, last = max(sizes[12:20]), max(sizes[20:])
    assert last <= 1.25 * middle, (sizes, done_keys)
