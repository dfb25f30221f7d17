"""One population spelling for every shape: ``{start, end, field, value}``. The older
``{type, member, where, leave}`` of gap and rate rules is still read, with a
DeprecationWarning naming where it is and how to write it, and gives the same decisions and
the same fingerprint (so the same decision ids)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import Evaluate, ev, t

from policykit import Policy, load_policy
from policykit.errors import PolicyFileError

OLD = {"type": "customer.registered", "member": "customer_id",
       "leave": "customer.deactivated"}
NEW = {"start": {"type": "customer.registered"}, "field": "customer_id",
       "end": {"type": "customer.deactivated"}}


def rate(population: dict[str, Any]) -> dict[str, Any]:
    return {"id": "pop-test", "title": "population test", "clause": "篇三", "rules": [{
        "shape": "rate", "id": "R6", "title": "complaint rate",
        "numerator": {"type": "complaint.validated", "key": "complaint_id"},
        "population": population, "target": 50, "comparison": "at_most",
        "subject": {"kind": "department", "id": "office"}}]}


def quiet(data: dict[str, Any]) -> Policy:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return Policy.model_validate(data)


EVENTS = [ev("customer.registered", "2026-01-05 10:00", customer_id="C1"),
          ev("customer.registered", "2026-01-05 11:00", customer_id="C2"),
          ev("customer.deactivated", "2026-03-01 10:00", customer_id="C2"),
          ev("complaint.validated", "2026-06-01 10:00", complaint_id="K1", valid=True)]


def test_old_spelling_warns_with_the_rule_and_the_new_spelling() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        Policy.model_validate(rate(OLD))
    text = str(caught[0].message)
    assert "rules[0].population (rule R6)" in text
    assert ("write population: {start: {type: customer.registered}, field: customer_id, "
            "end: {type: customer.deactivated}}") in text
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        Policy.model_validate(rate(NEW))   # the new spelling: no warning


def test_old_spelling_warning_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(rate(OLD), sort_keys=False, allow_unicode=True),
                    encoding="utf-8")
    line = path.read_text(encoding="utf-8").splitlines().index("  population:") + 1
    with pytest.warns(DeprecationWarning, match=rf"p\.yaml:{line}: rules\[0\]\.population"):
        load_policy(path)


def test_both_spellings_decide_alike_with_one_fingerprint(evaluate: Evaluate) -> None:
    old, new = quiet(rate(OLD)), Policy.model_validate(rate(NEW))
    assert old.fingerprint() == new.fingerprint()
    until = t("2026-12-31 23:59:59.999999")
    a, b = evaluate(EVENTS, until=until, policy=old), evaluate(EVENTS, until=until, policy=new)
    assert [d.to_json_dict() for d in a] == [d.to_json_dict() for d in b]
    # C2 left: one member at the close, one complaint, 100% > 50%.
    assert [(d.details["denominator"], d.details["outcome"]) for d in b] == [(1, "missed")]


@pytest.mark.parametrize("old, new", [
    ({"type": ["customer.registered"], "member": "customer_id",
      "leave": ["customer.deactivated"]},
     {"start": {"type": ["customer.registered"]}, "field": "customer_id",
      "end": [{"type": "customer.deactivated"}]}),
    ({"type": "employee.profile", "member": "employee_id", "where": {"role": "guard"}},
     {"field": "employee_id", "start": {"where": {"role": "guard"}, "type": "employee.profile"}}),
])
def test_fingerprint_ignores_the_spelling(old: dict[str, Any], new: dict[str, Any]) -> None:
    assert quiet(rate(old)).fingerprint() == Policy.model_validate(rate(new)).fingerprint()


def test_a_leave_type_that_also_admits_is_redundant() -> None:
    # Old reading: an event of a type in both lists admits when ``where`` holds.
    old = {"type": "employee.profile", "member": "employee_id", "where": {"role": "guard"},
           "leave": "employee.profile"}
    spec = quiet(rate(old)).specs[0]
    assert spec.population.end == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize("population, message", [
    ({"start": {"type": "customer.registered"}}, "population.field"),
    ({"start": {"type": "customer.registered"}, "field": "customer_id", "value": "x"},
     "population.value"),
    ({"start": {"type": "customer.registered"}, "field": "customerid"}, "customer_id"),
])
def test_gap_and_rate_need_the_member_field(population: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        Policy.model_validate(rate(population))
