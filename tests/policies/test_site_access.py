"""site-access (來客登記, 車輛登記, 篇一): visitors are verified and registered before
admission and a person without any identity document is kept out (R1); an unknown vehicle
is registered before it enters (R2). Refusing entry is never a violation."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev

POLICY = "site-access"


def visitor(admitted: bool = True, registered: bool = True, has_id: bool = True,
            **kw: Any) -> dict[str, Any]:
    return ev("visitor.arrived", "2026-03-02 10:00", visit_id="V1", post_id="GATE",
              employee_id="G1", has_id_document=has_id, registered=registered,
              admitted=admitted, **kw)


def vehicle(admitted: bool = True, known: bool = False, registered: bool = True,
            **kw: Any) -> dict[str, Any]:
    return ev("vehicle.arrived", "2026-03-02 10:00", plate="粵B12345", post_id="GATE",
              employee_id="G1", known=known, registered=registered, admitted=admitted, **kw)


def test_r1_registered_visitor_with_id_is_admitted(evaluate: Evaluate) -> None:
    assert evaluate([visitor()], policy=POLICY) == []


@pytest.mark.parametrize("registered, has_id, missing", [
    (False, True, "registered"),
    (True, False, "has_id_document"),
    (False, False, "registered, has_id_document"),
])
def test_r1_admission_without_registration_or_id(evaluate: Evaluate, registered: bool,
                                                 has_id: bool, missing: str) -> None:
    event = visitor(registered=registered, has_id=has_id, id="v-1")
    out = evaluate([event], policy=POLICY)
    assert len(out) == 1
    d = out[0]
    assert (d.rule, d.kind, d.severity) == ("R1", "violation", "high")
    assert d.subject.kind == "employee" and d.subject.id == "G1"
    assert d.details["missing"] == missing and d.evidence == ("v-1",)
    assert d.details["visit_id"] == "V1" and d.clause == "篇一"
    assert "V1" in d.message and "V1" in d.message_zh


def test_r1_person_without_id_kept_out_is_fine(evaluate: Evaluate) -> None:
    assert evaluate([visitor(admitted=False, registered=False, has_id=False)],
                    policy=POLICY) == []


def test_r1_severity_is_a_parameter(evaluate: Evaluate) -> None:
    out = evaluate([visitor(has_id=False)], policy=POLICY, visitor_severity="critical")
    assert out[0].severity == "critical"


def test_r2_unknown_vehicle_registered_before_entry(evaluate: Evaluate) -> None:
    assert evaluate([vehicle()], policy=POLICY) == []
    out = evaluate([vehicle(registered=False)], policy=POLICY)
    assert [(d.rule, d.kind, d.subject.id, d.details["plate"]) for d in out] == [
        ("R2", "violation", "G1", "粵B12345")]


def test_r2_known_or_refused_vehicles_need_no_registration(evaluate: Evaluate) -> None:
    assert evaluate([vehicle(known=True, registered=False),
                     vehicle(admitted=False, registered=False)], policy=POLICY) == []
