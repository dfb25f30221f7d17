"""A standard policy with one value replaced by a hostile one (a duration, a template, a
field path, a number) either fails to load with a PolicyFileError or runs: whatever
``policykit check`` accepts, the audit does not crash on."""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import policykit
from policykit import Engine, PolicyFileError, loads_policy, parse_events, standard_pack
from policykit.calendar import CalendarError

_LOG = Path(policykit.__file__).parent / "examples" / "acme-2026-03.jsonl"
EVENTS = parse_events("".join(itertools.islice(_LOG.open(encoding="utf-8"), 400)))
PACK = [p.model_dump(mode="json") for p in standard_pack()]

HOSTILE: list[Any] = [
    "P999999999D", "P100Y", "P36525D", "PT876600H", "PT1S", "PT15M", "P1M", "PT0S",
    "{0}", "{", "{subject[0]}", "{what!r}", "{subject:>99}", "{x.y}", "{nope}", "{{}}",
    "details.__class__", "meta.x", "meta.__dict__", "employee_id.upper", "_x", "",
    99999999999999999999999, 10**6, -1, 0, "1e-30", "NaN", "1e13", "0.000000000001",
    True, None, [], {},
]


def _leaves(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in _leaves(v, (*path, k))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in _leaves(v, (*path, i))]
    return [path]


def _set(node: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


@settings(max_examples=60, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.data())
def test_a_mutated_standard_policy_loads_and_runs_or_is_refused(data: st.DataObject) -> None:
    raw = copy.deepcopy(data.draw(st.sampled_from(PACK)))
    where = data.draw(st.sampled_from(("rules", "parameters")))
    leaves = _leaves(raw[where], (where,))
    if not leaves:
        return
    path = data.draw(st.sampled_from(leaves))
    _set(raw, path, data.draw(st.sampled_from(HOSTILE)))
    try:
        policies = loads_policy(json.dumps(raw), "json")
    except PolicyFileError:
        return
    try:
        Engine(policies).evaluate(EVENTS, until=EVENTS[-1].at)
    except CalendarError as exc:
        # A long working-time deadline needs holiday data for the years it spans: beyond
        # the installed data that is the calendar's documented refusal, not a crash.
        assert "holiday arrangement" in str(exc)
