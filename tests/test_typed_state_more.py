"""Rule state types and load-time checks of what rule state will hold.

A precondition's validity bounds must name date-time fields: ``valid_from`` /
``valid_until`` are compared with the action's time, so a field of another type (a date, a
text) is refused when the policy loads, naming the rule, the parameter, the field and its
type, instead of failing the session at the first action it judges. And each shape's
``_State`` TypedDict (what mypy checks the rule's state reads against) matches the plain
dicts the rule really keeps."""

from __future__ import annotations

import sys
from types import UnionType
from typing import (
    Any,
    Literal,
    NotRequired,
    Union,
    get_args,
    get_origin,
    get_type_hints,
    is_typeddict,
)

import pytest
from helpers import Evaluate, ev, t

from bench.generate import generate, late_clock_ins
from policykit import Engine, Policy, parse_events
from policykit.errors import PolicyFileError
from policykit.pack import standard_pack


def policy(prior: dict[str, Any], event: str = "remote.session_started",
           key: tuple[str, ...] = ("request_id", "customer_id")) -> Policy:
    rule = {"shape": "precondition", "id": "R1", "event": {"type": event},
            "key": list(key), "prior": prior,
            "subject": {"kind": "employee", "field": "employee_id"}}
    return Policy.model_validate({"id": "pre-test", "title": "precondition test",
                                  "clause": "§1", "rules": [rule]})


@pytest.mark.parametrize("prior, bound, field, described", [
    ({"type": "remote.authorized", "valid_from": "granted_by"}, "valid_from", "granted_by",
     "a string"),
    ({"type": "remote.authorized", "valid_from": "valid_from", "valid_until": "request_id"},
     "valid_until", "request_id", "a string"),
])
def test_a_bound_of_another_type_is_refused_at_load(
        prior: dict[str, Any], bound: str, field: str, described: str) -> None:
    with pytest.raises(PolicyFileError) as info:
        policy(prior)
    err = info.value
    assert err.path == f"rules[0].prior.{bound}"
    assert err.value == field
    text = str(err)
    assert "rule R1" in text
    assert f"prior.{bound}" in text
    assert f"remote.authorized declares {field!r} as {described}" in text
    assert "expected a date-time field" in text


def test_a_date_field_is_refused_too() -> None:
    # A date is not an instant: comparing one with the action's time fails.
    with pytest.raises(PolicyFileError, match=r"attendance.leave declares 'end' as an ISO "
                                              r"date string.*expected a date-time field"):
        policy({"type": "attendance.leave", "valid_until": "end"},
               event="attendance.clock_in", key=("employee_id",))


def test_a_policy_parameter_is_named() -> None:
    raw = {"id": "pre-test", "title": "precondition test", "clause": "§1",
           "parameters": {"bound": "granted_by"},
           "rules": [{"shape": "precondition", "id": "R1",
                      "event": {"type": "remote.session_started"},
                      "key": ["request_id", "customer_id"],
                      "prior": {"type": "remote.authorized", "valid_from": "$bound"},
                      "subject": {"kind": "employee", "field": "employee_id"}}]}
    with pytest.raises(PolicyFileError) as info:
        Policy.model_validate(raw)
    assert info.value.path == "parameters.bound"
    assert info.value.value == "granted_by"
    assert "rules[0].prior.valid_from, which uses $bound" in str(info.value)


def test_date_time_bounds_still_load_and_judge(evaluate: Evaluate) -> None:
    pol = policy({"type": "remote.authorized", "valid_from": "valid_from",
                  "valid_until": "valid_until"})
    auth = ev("remote.authorized", "2026-03-02 09:00", request_id="Q1", customer_id="C1",
              valid_from=t("2026-03-02 09:00").isoformat(),
              valid_until=t("2026-03-02 10:00").isoformat(), granted_by="boss")
    late = ev("remote.session_started", "2026-03-02 11:00", request_id="Q1",
              customer_id="C1", employee_id="E1")
    out = evaluate([auth, late], policy=pol)
    assert [(d.details["outcome"], d.details["reason"]) for d in out] == [("unmet", "expired")]


# -- the state types describe the state ---------------------------------------------------

def _mismatches(value: Any, hint: Any, at: str) -> list[str]:
    """Where ``value`` (plain rule state) does not have the type ``hint`` says."""
    if hint is Any:
        return []
    if is_typeddict(hint):
        return _record_mismatches(value, hint, at)
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, UnionType):
        found = [_mismatches(value, a, at) for a in args]
        return [] if any(not f for f in found) else min(found, key=len)
    if origin is Literal:
        return [] if value in args else [f"{at}: {value!r} not one of {args}"]
    if origin in (dict, list, set, tuple):
        return _container_mismatches(value, origin, args, at)
    if hint is None or hint is type(None):
        return [] if value is None else [f"{at}: {value!r} is not None"]
    return [] if isinstance(value, hint) else [f"{at}: {type(value).__name__}, not {hint}"]


def _record_mismatches(value: Any, hint: Any, at: str) -> list[str]:
    """:func:`_mismatches` for a TypedDict: its keys, then each value."""
    if not isinstance(value, dict):
        return [f"{at}: {type(value).__name__}, not a {hint.__name__}"]
    fields = get_type_hints(hint)
    # Not __required_keys__: under postponed annotations Python 3.11 counts a
    # NotRequired key as required there.
    optional = {k for k, h in get_type_hints(hint, include_extras=True).items()
                if get_origin(h) is NotRequired}
    out = [f"{at}: key {k!r} not in {hint.__name__}" for k in value if k not in fields]
    out += [f"{at}: {hint.__name__} key {k!r} missing"
            for k in fields if k not in optional and k not in value]
    for k, v in value.items():
        if k in fields:
            out += _mismatches(v, fields[k], f"{at}.{k}")
    return out


def _container_mismatches(value: Any, origin: type, args: tuple[Any, ...],
                          at: str) -> list[str]:
    """:func:`_mismatches` for a dict, list, set or fixed tuple: the container, then each
    item."""
    if not isinstance(value, origin):
        return [f"{at}: {type(value).__name__}, not a {origin.__name__}"]
    if isinstance(value, dict):
        return [m for k, v in value.items() for m in _mismatches(v, args[1], f"{at}[{k!r}]")]
    assert isinstance(value, list | set | tuple)
    if isinstance(value, tuple):
        if len(value) != len(args):
            return [f"{at}: {value!r} is not a {len(args)}-tuple"]
        return [m for i, (v, a) in enumerate(zip(value, args, strict=True))
                for m in _mismatches(v, a, f"{at}[{i}]")]
    return [m for i, v in enumerate(value) for m in _mismatches(v, args[0], f"{at}[{i}]")]


def _typed_states(session: Any) -> list[tuple[str, Any, dict[str, Any]]]:
    """(shape, its state type, the state) of every runtime whose shape declares one."""
    out = []
    for runtimes in session._ev._runtimes:
        for rt in runtimes:
            declared = getattr(sys.modules[type(rt).__module__], "_State", None)
            if declared is not None:
                out.append((rt.spec.shape, declared, rt.state))
    return out


def test_the_state_types_describe_the_state_of_a_run_and_of_a_restored_snapshot() -> None:
    """Every runtime's state (a plain dict) has the keys and value types its ``_State``
    TypedDict declares, mid-run and after a snapshot round trip; so what mypy checks is
    what runs."""
    events = sorted(parse_events(late_clock_ins(generate(12, 1, 2))), key=lambda e: e.at)
    # The cap is off by default: a low one, so it books money and reduces some.
    engine = Engine(standard_pack().with_parameters("lateness-deduction",
                                                    monthly_cap_rate="0.03"))
    session = engine.session()
    held: set[str] = set()  # shapes seen holding entries, not only empty maps
    for i, e in enumerate(events):
        session.feed(e)
        if i % 250 == 249:
            # Now and then through a snapshot too: restored state must match as well.
            restored = [engine.restore(session.snapshot())] if i % 1000 == 999 else []
            for s in (session, *restored):
                for shape, declared, state in _typed_states(s):
                    assert _mismatches(state, declared, shape) == []
                    if any(v for v in state.values()):
                        held.add(shape)
    assert {"recurrence", "tariff", "cap", "deadline", "gap", "precondition"} <= held
