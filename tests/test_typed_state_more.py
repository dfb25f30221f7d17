"""A precondition's validity bounds must name date-time fields: ``valid_from`` /
``valid_until`` are compared with the action's time, so a field of another type (a date, a
text) is refused when the policy loads, naming the rule, the parameter, the field and its
type, instead of failing the session at the first action it judges."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Policy
from policykit.errors import PolicyFileError


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
