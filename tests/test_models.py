"""Event and decision models: the wire format (docs/events.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from helpers import ev

from policykit import EVENT_TYPES, Decision, EventError, json_schema, parse_event, parse_events
from policykit.models import iter_events

CLOCK_IN = {"id": "e1", "type": "attendance.clock_in", "at": "2026-03-02T08:30:01+08:00",
            "employee_id": "E1"}


def test_every_event_type_of_the_wire_format_is_modelled() -> None:
    spec_types = {
        "employee.profile", "contact.received", "request.handed_over", "request.resolved",
        "request.contact_form", "request.reported_to_gm", "project.delivered", "callback.made",
        "attendance.clock_in", "staff.complaint", "staff.private_call", "staff.misconduct",
        "attendance.clock_out", "attendance.leave", "shift.started", "shift.ended",
        "shift.handover_recorded", "shift.turnout_checked", "security.suspicious_checked",
        "security.case_opened", "security.case_to_police", "security.unsafe_found",
        "security.unsafe_reported", "security.unsafe_closed", "shift.equipment_checked",
        "patrol.round", "incident.detected", "incident.notified", "incident.progress",
        "incident.resolved", "incident.report_filed", "household.registered",
        "feedback.recorded", "feedback.processed", "home_visit.made", "area_visit.made",
        "forum.held", "reply.promised", "reply.given", "complaint.received",
        "complaint.investigated", "complaint.reported", "complaint.replied",
        "complaint.validated", "report.submitted", "customer.registered",
        "customer.deactivated", "gift.sent", "demand_survey.done", "satisfaction_survey.done",
        "inspection.done", "inspection.findings_forwarded", "duty.check",
        "duty.problem_found", "duty.problem_escalated", "complaint.benefit_received",
        "service_research.visited", "service_research.plan_made", "visitor.arrived",
        "vehicle.arrived", "remote.authorized", "remote.session_started",
        "remote.session_ended", "service.step", "onsite.dispatched", "onsite.departed",
        "onsite.arrived",
    }
    assert set(EVENT_TYPES) == spec_types


def test_parse_from_dict_json_text_and_bytes_agree() -> None:
    a = parse_event(CLOCK_IN)
    b = parse_event(json.dumps(CLOCK_IN))
    c = parse_event(json.dumps(CLOCK_IN).encode())
    assert a == b == c
    assert a.type == "attendance.clock_in"
    assert a.at.utcoffset() is not None
    with pytest.raises(Exception):  # noqa: B017 - frozen models refuse assignment
        a.id = "x"  # type: ignore[misc]


def test_naive_time_is_rejected_with_the_field_and_the_expected_form() -> None:
    with pytest.raises(EventError) as err:
        parse_event({**CLOCK_IN, "at": "2026-03-02T08:30:01"})
    assert err.value.problems[0][0] == "at"
    assert "UTC offset" in str(err.value)
    assert err.value.event_id == "e1"


def test_unknown_field_is_rejected_with_the_nearest_name() -> None:
    bad = {**CLOCK_IN, "employe_id": "E1"}
    del bad["employee_id"]
    with pytest.raises(EventError) as err:
        parse_event(bad)
    text = str(err.value)
    assert "did you mean 'employee_id'" in text
    assert "employee_id: got '<missing>'" in text


def test_unknown_type_suggests_the_nearest_type() -> None:
    with pytest.raises(EventError, match=r"did you mean 'attendance\.clock_in'"):
        parse_event({**CLOCK_IN, "type": "attendance.clockin"})


def test_money_must_not_be_a_float() -> None:
    prof = ev("employee.profile", "2026-03-01 00:00", employee_id="E1", role="guard",
              base_salary=6500.5)
    with pytest.raises(EventError, match="not a float"):
        parse_event(prof)
    prof["base_salary"] = "6500.50"
    assert parse_event(prof).base_salary == Decimal("6500.50")  # type: ignore[union-attr]


def test_meta_is_the_place_for_application_data() -> None:
    e = parse_event({**CLOCK_IN, "meta": {"badge_reader": "north-door"}})
    assert e.meta == {"badge_reader": "north-door"}


def test_parse_events_keeps_good_records_around_a_bad_one() -> None:
    lines = "\n".join([json.dumps(CLOCK_IN), "{not json", json.dumps({**CLOCK_IN, "id": "e2"})])
    errors: list[EventError] = []
    good = parse_events(lines, source="log.jsonl", errors=errors)
    assert [e.id for e in good] == ["e1", "e2"]
    assert len(errors) == 1 and errors[0].line == 2
    assert "log.jsonl, line 2" in str(errors[0])
    with pytest.raises(EventError):
        parse_events(lines)


def test_json_array_text_is_accepted() -> None:
    text = json.dumps([CLOCK_IN, {**CLOCK_IN, "id": "e2"}])
    assert [e.id for e in parse_events(text)] == ["e1", "e2"]


def test_deeply_nested_record_is_refused_not_crashing() -> None:
    deep: dict[str, object] = {}
    cur = deep
    for _ in range(5000):
        nxt: dict[str, object] = {}
        cur["x"] = nxt
        cur = nxt
    with pytest.raises(EventError, match="levels"):
        parse_event({**CLOCK_IN, "meta": deep})


def test_iter_events_is_lazy() -> None:
    def gen() -> Iterator[dict[str, Any]]:
        yield CLOCK_IN
        raise AssertionError("read too far")

    it = iter_events(gen())
    assert next(it).id == "e1"


def test_json_schema_covers_events_and_decisions() -> None:
    schema = json_schema()
    mapping = schema["event"]["discriminator"]["mapping"]
    assert set(mapping) == set(EVENT_TYPES)
    assert "evidence" in schema["decision"]["properties"]
    json.dumps(schema)  # serialisable as published


def test_decision_wire_form_has_decimal_string_amounts() -> None:
    d = Decision(id="d-1", policy="p", rule="R1", kind="deduction",
                 subject={"kind": "employee", "id": "E1"},
                 at="2026-03-31T23:59:59+08:00",
                 evidence=("e1",), amount=Decimal("60.00"), currency="CNY", clause="c",
                 message="m", message_zh="m")
    wire = d.to_json_dict()
    assert wire["amount"] == "60.00"
    assert wire["at"] == "2026-03-31T23:59:59+08:00"
    assert Decision.model_validate_json(json.dumps(wire)) == d


def test_violation_without_evidence_is_refused() -> None:
    with pytest.raises(ValueError, match="evidence"):
        Decision(id="d-1", policy="p", rule="R1", kind="violation",
                 subject={"kind": "employee", "id": "E1"},
                 at="2026-03-31T23:59:59+08:00",
                 evidence=(), clause="c", message="m", message_zh="m")
