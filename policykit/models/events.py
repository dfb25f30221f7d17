"""The event vocabulary of the wire format (docs/events.md) as frozen pydantic models, one
union on ``type``.

Field names are the public wire contract: renaming one is a breaking change.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    Strict,
    StringConstraints,
    WithJsonSchema,
)
from pydantic_core import CoreSchema

__all__ = ["EVENT_TYPES", "MAX_META_BYTES", "Event", "EventBase"]

# C0 and C1 control characters (the engine's old key separator \x1f among them), DEL and
# the line/paragraph separators: never part of a real identifier, and a way to forge keys
# or split lines downstream.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def control_problem(value: str) -> str | None:
    """What is wrong with an id holding a control character, or None when it holds none."""
    found = _CONTROL.search(value)
    if found is None:
        return None
    return (f"an id without control characters (found U+{ord(found.group()):04X} at position "
            f"{found.start()})")


#: The same characters as _CONTROL, refused by pydantic-core itself (its regex, in Rust): a
#: Python validator per id cost about 0.3 µs per event. policykit.models.parsing words the
#: refusal with control_problem.
ID_PATTERN = r"^[^\x00-\x1f\x7f-\x9f\u2028\u2029]*$"


class _NoControl:
    """Adds ID_PATTERN to a str schema: a marker of its own, not a StringConstraints
    pattern, so the generated docs and the testing toolkit (which read such patterns as
    coded values, like a currency) see an id as they did."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler
                                     ) -> CoreSchema:
        schema = handler(source)
        assert schema["type"] == "str"
        return {**schema, "pattern": ID_PATTERN}


# Identifiers are bounded so a hostile record cannot make the engine hold megabytes per key.
# The JSON Schema stays what it was.
Id = Annotated[str, StringConstraints(min_length=1, max_length=256), _NoControl(),
               WithJsonSchema({"maxLength": 256, "minLength": 1, "type": "string"})]
Text = Annotated[str, StringConstraints(max_length=4096)]
MAX_LIST = 1000
#: The largest ``meta`` (serialised as compact JSON, UTF-8 bytes).
MAX_META_BYTES = 64 * 1024


#: Money text of the wire: ASCII digits, optionally a point and more digits (no sign, no
#: spaces, underscores, exponent or other scripts' digits, which Decimal() would accept).
_MONEY_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def _no_float(value: Any) -> Any:
    # Money must arrive as a decimal string or an integer: a float has already lost cents.
    if isinstance(value, float):
        raise ValueError("money must be a decimal string such as '6500.00', not a float")
    if isinstance(value, bool):
        raise ValueError("money must be a decimal string such as '6500.00', not a boolean")
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        raise ValueError("money must be a decimal string of ASCII digits such as '6500.00' "
                         "(no sign, spaces, underscores or exponent)")
    if isinstance(value, Decimal) and value.is_zero():
        return value.copy_abs()  # a Decimal('-0') given in Python is zero
    return value


def _iso_datetime(value: Any) -> Any:
    # The wire format is an ISO-8601 string (or an aware datetime from Python): numbers and
    # numeric strings would otherwise be read as Unix timestamps.
    if isinstance(value, datetime) or (
            isinstance(value, str) and len(value) >= 16 and value[4:5] == "-"
            and value[:4].isdigit()):
        return value
    raise ValueError("an ISO-8601 date-time string with a UTC offset, such as "
                     "2026-03-02T08:30:00+08:00")


def _iso_date(value: Any) -> Any:
    if (isinstance(value, date) and not isinstance(value, datetime)) or (
            isinstance(value, str) and len(value) == 10 and value[4:5] == "-"
            and value[:4].isdigit()):
        return value
    raise ValueError("an ISO-8601 date string such as 2026-03-02")


def _bounded_meta(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if not value:
        return value
    try:
        size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                              default=str).encode("utf-8", "surrogatepass"))
    except RecursionError:
        raise ValueError("a JSON object nested no deeper than Python can serialise") from None
    except ValueError:  # an integer past Python's digit limit (4,300 digits by default)
        raise ValueError("a JSON object whose integers have at most "
                         f"{sys.get_int_max_str_digits()} digits") from None
    if size > MAX_META_BYTES:
        raise ValueError(f"an object of at most {MAX_META_BYTES} bytes as JSON (this one is "
                         f"{size})")
    return value


Money = Annotated[
    Decimal,
    BeforeValidator(_no_float),
    Field(ge=0, le=Decimal("1e12"), max_digits=18, decimal_places=4, allow_inf_nan=False),
]
#: A date-time of the wire: an ISO-8601 string with a UTC offset, or an aware datetime.
DateTime = Annotated[AwareDatetime, BeforeValidator(_iso_datetime)]
#: A date of the wire: an ISO-8601 date string, or a date.
Day = Annotated[date, BeforeValidator(_iso_date)]
#: JSON true or false only ("yes", 1 or "true" are refused; the CSV and DataFrame readers
#: turn "true"/"false" cells into booleans).
Bool = Annotated[bool, Strict()]
Meta = Annotated[dict[str, Any], AfterValidator(_bounded_meta)]


class EventBase(BaseModel):
    """The envelope every event shares."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)

    id: Id
    type: str
    at: DateTime
    actor: Id | None = None
    meta: Meta | None = None


# --- employees -------------------------------------------------------------------------


class EmployeeProfile(EventBase):
    type: Literal["employee.profile"] = "employee.profile"
    employee_id: Id
    role: Id
    base_salary: Money
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] = "CNY"
    department: Id | None = None
    areas: Annotated[list[Id], Field(max_length=MAX_LIST)] | None = None


# --- first responder -------------------------------------------------------------------


class ContactReceived(EventBase):
    type: Literal["contact.received"] = "contact.received"
    request_id: Id
    customer_id: Id
    employee_id: Id
    channel: Literal["phone", "visit", "email", "other"]
    topic: Text
    in_remit: Bool
    finish_at_once: Bool
    major: Bool = False
    repeat_of: Id | None = None


class RequestHandedOver(EventBase):
    type: Literal["request.handed_over"] = "request.handed_over"
    request_id: Id
    from_employee: Id
    to_employee: Id
    to_role: Id
    registered: Bool


class RequestResolved(EventBase):
    type: Literal["request.resolved"] = "request.resolved"
    request_id: Id
    employee_id: Id


class RequestContactForm(EventBase):
    type: Literal["request.contact_form"] = "request.contact_form"
    request_id: Id
    employee_id: Id


class RequestReportedToGm(EventBase):
    type: Literal["request.reported_to_gm"] = "request.reported_to_gm"
    request_id: Id
    employee_id: Id


# --- callbacks and customer contact ----------------------------------------------------


class ProjectDelivered(EventBase):
    type: Literal["project.delivered"] = "project.delivered"
    project_id: Id
    customer_id: Id


class CallbackMade(EventBase):
    type: Literal["callback.made"] = "callback.made"
    project_id: Id | None = None
    household_id: Id | None = None
    employee_id: Id
    channel: Literal["phone", "visit", "email", "other"] = "phone"


class HouseholdRegistered(EventBase):
    type: Literal["household.registered"] = "household.registered"
    household_id: Id
    area_id: Id


class FeedbackRecorded(EventBase):
    type: Literal["feedback.recorded"] = "feedback.recorded"
    item_id: Id
    employee_id: Id
    household_id: Id | None = None
    project_id: Id | None = None


class FeedbackProcessed(EventBase):
    type: Literal["feedback.processed"] = "feedback.processed"
    item_id: Id
    employee_id: Id


class HomeVisitMade(EventBase):
    type: Literal["home_visit.made"] = "home_visit.made"
    household_id: Id
    employee_id: Id


class AreaVisitMade(EventBase):
    type: Literal["area_visit.made"] = "area_visit.made"
    area_id: Id
    employee_id: Id


class ForumHeld(EventBase):
    type: Literal["forum.held"] = "forum.held"
    site_id: Id
    employee_id: Id


class ReplyPromised(EventBase):
    type: Literal["reply.promised"] = "reply.promised"
    question_id: Id
    employee_id: Id
    promised_by: DateTime
    household_id: Id | None = None
    customer_id: Id | None = None


class ReplyGiven(EventBase):
    type: Literal["reply.given"] = "reply.given"
    question_id: Id
    employee_id: Id


# --- attendance ------------------------------------------------------------------------


class ClockIn(EventBase):
    type: Literal["attendance.clock_in"] = "attendance.clock_in"
    employee_id: Id


class ClockOut(EventBase):
    type: Literal["attendance.clock_out"] = "attendance.clock_out"
    employee_id: Id


class Leave(EventBase):
    """Leave of an employee from ``start`` to ``end`` (dates, both included). ``approved``
    false records leave that was asked for and not granted: it excuses nothing. Without
    ``approved`` the leave counts as approved, as it did before the field existed."""

    type: Literal["attendance.leave"] = "attendance.leave"
    employee_id: Id
    start: Day
    end: Day
    kind: Id = "leave"
    approved: Bool | None = None


# --- staff penalties -------------------------------------------------------------------


class StaffComplaint(EventBase):
    """A complaint against an employee. ``complaint_id`` names the complaint itself, so two
    records of one complaint (taken by the desk and relayed by sales) are one complaint;
    without it every record is a complaint of its own."""

    type: Literal["staff.complaint"] = "staff.complaint"
    employee_id: Id
    source: Literal["customer", "sales"]
    severity: Literal["minor", "moderate", "serious"]
    complaint_id: Id | None = None


class PrivateCall(EventBase):
    type: Literal["staff.private_call"] = "staff.private_call"
    employee_id: Id
    duration_s: Annotated[int, Strict(), Field(ge=0, le=10**9)]


class Misconduct(EventBase):
    type: Literal["staff.misconduct"] = "staff.misconduct"
    employee_id: Id
    kind: Literal["info_line", "unrelated_browsing", "gaming", "private_visitor"]


# --- guards ----------------------------------------------------------------------------


class ShiftStarted(EventBase):
    type: Literal["shift.started"] = "shift.started"
    post_id: Id
    guard_id: Id


class ShiftEnded(EventBase):
    type: Literal["shift.ended"] = "shift.ended"
    post_id: Id
    guard_id: Id


class HandoverRecorded(EventBase):
    type: Literal["shift.handover_recorded"] = "shift.handover_recorded"
    post_id: Id
    from_guard: Id
    to_guard: Id
    signed_by: Annotated[list[Id], Field(max_length=MAX_LIST)] | None = None


class TurnoutChecked(EventBase):
    type: Literal["shift.turnout_checked"] = "shift.turnout_checked"
    post_id: Id
    guard_id: Id
    uniform: Bool
    badge: Bool


class EquipmentChecked(EventBase):
    type: Literal["shift.equipment_checked"] = "shift.equipment_checked"
    post_id: Id
    guard_id: Id


class SuspiciousChecked(EventBase):
    type: Literal["security.suspicious_checked"] = "security.suspicious_checked"
    post_id: Id
    employee_id: Id
    subject: Literal["person", "vehicle"]
    recorded: Bool


class CaseOpened(EventBase):
    type: Literal["security.case_opened"] = "security.case_opened"
    case_id: Id
    employee_id: Id


class CaseToPolice(EventBase):
    type: Literal["security.case_to_police"] = "security.case_to_police"
    case_id: Id
    employee_id: Id


class UnsafeFound(EventBase):
    type: Literal["security.unsafe_found"] = "security.unsafe_found"
    case_id: Id
    employee_id: Id


class UnsafeReported(EventBase):
    type: Literal["security.unsafe_reported"] = "security.unsafe_reported"
    case_id: Id
    employee_id: Id


class UnsafeClosed(EventBase):
    type: Literal["security.unsafe_closed"] = "security.unsafe_closed"
    case_id: Id
    employee_id: Id


class PatrolRound(EventBase):
    type: Literal["patrol.round"] = "patrol.round"
    route_id: Id
    guard_id: Id


# --- incidents -------------------------------------------------------------------------


class IncidentDetected(EventBase):
    type: Literal["incident.detected"] = "incident.detected"
    incident_id: Id
    severity: Literal["major", "minor"]
    employee_id: Id
    customer_id: Id | None = None
    # The manager in charge of the account, when the record names one (optional: logs
    # without it stay valid; incident-escalation then names the manager by role only).
    manager_id: Id | None = None


class NotificationDetails(BaseModel):
    """What a major-fault notification must carry (time, place, symptoms, plan)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    time: Text | None = None
    place: Text | None = None
    symptoms: Text | None = None
    plan: Text | None = None


class IncidentNotified(EventBase):
    type: Literal["incident.notified"] = "incident.notified"
    incident_id: Id
    employee_id: Id
    recipients: Annotated[
        list[Literal["sales_owner", "manager", "departments", "senior_leadership"]],
        Field(max_length=16),
    ]
    details: NotificationDetails = NotificationDetails()


class IncidentProgress(EventBase):
    type: Literal["incident.progress"] = "incident.progress"
    incident_id: Id
    employee_id: Id


class IncidentResolved(EventBase):
    type: Literal["incident.resolved"] = "incident.resolved"
    incident_id: Id


class IncidentReportFiled(EventBase):
    type: Literal["incident.report_filed"] = "incident.report_filed"
    incident_id: Id
    employee_id: Id
    sections: Annotated[
        list[Literal["impact", "handling", "root_cause", "corrective_actions"]],
        Field(max_length=16),
    ]
    delivered_to: Annotated[list[Literal["customer", "business_dept"]], Field(max_length=16)]


# --- complaints (residents) ------------------------------------------------------------


class ComplaintReceived(EventBase):
    type: Literal["complaint.received"] = "complaint.received"
    complaint_id: Id
    household_id: Id
    employee_id: Id
    kind: Literal["complaint", "visit", "suggestion"]


class ComplaintInvestigated(EventBase):
    type: Literal["complaint.investigated"] = "complaint.investigated"
    complaint_id: Id
    employee_id: Id
    outcome: Literal["solved", "unsolved"]


class ComplaintReported(EventBase):
    type: Literal["complaint.reported"] = "complaint.reported"
    complaint_id: Id
    employee_id: Id
    recipients: Annotated[list[Literal["responsible_dept", "director"]], Field(max_length=16)]


class ComplaintReplied(EventBase):
    type: Literal["complaint.replied"] = "complaint.replied"
    complaint_id: Id
    employee_id: Id
    recipients: Annotated[list[Literal["resident", "director"]], Field(max_length=16)]


class ComplaintValidated(EventBase):
    type: Literal["complaint.validated"] = "complaint.validated"
    complaint_id: Id
    valid: Bool


class ComplaintBenefitReceived(EventBase):
    type: Literal["complaint.benefit_received"] = "complaint.benefit_received"
    complaint_id: Id
    employee_id: Id


# --- reporting -------------------------------------------------------------------------


class ReportSubmitted(EventBase):
    """A report handed in. ``period`` is a day of the period the report covers (the day of
    a daily report, any day of the week or month of a weekly or monthly one): a report
    counts for that period only. Without it a report counts for the period it arrives in."""

    type: Literal["report.submitted"] = "report.submitted"
    report: Literal["weekly", "daily", "supervision"]
    employee_id: Id
    department: Id | None = None
    period: Day | None = None


# --- customer care ---------------------------------------------------------------------


class CustomerRegistered(EventBase):
    type: Literal["customer.registered"] = "customer.registered"
    customer_id: Id


class CustomerDeactivated(EventBase):
    type: Literal["customer.deactivated"] = "customer.deactivated"
    customer_id: Id


class GiftSent(EventBase):
    type: Literal["gift.sent"] = "gift.sent"
    customer_id: Id
    employee_id: Id


class DemandSurveyDone(EventBase):
    type: Literal["demand_survey.done"] = "demand_survey.done"
    customer_id: Id
    employee_id: Id


class SatisfactionSurveyDone(EventBase):
    type: Literal["satisfaction_survey.done"] = "satisfaction_survey.done"
    customer_id: Id
    employee_id: Id


class InspectionDone(EventBase):
    type: Literal["inspection.done"] = "inspection.done"
    project_id: Id
    employee_id: Id
    findings: Annotated[int, Strict(), Field(ge=0, le=10**6)]


class InspectionFindingsForwarded(EventBase):
    type: Literal["inspection.findings_forwarded"] = "inspection.findings_forwarded"
    project_id: Id
    employee_id: Id


class ServiceResearchVisited(EventBase):
    type: Literal["service_research.visited"] = "service_research.visited"
    customer_id: Id
    employee_id: Id


class ServiceResearchPlanMade(EventBase):
    type: Literal["service_research.plan_made"] = "service_research.plan_made"
    customer_id: Id
    employee_id: Id


# --- holiday duty ----------------------------------------------------------------------


class DutyCheck(EventBase):
    type: Literal["duty.check"] = "duty.check"
    employee_id: Id
    target: Id


class DutyProblemFound(EventBase):
    type: Literal["duty.problem_found"] = "duty.problem_found"
    problem_id: Id
    employee_id: Id
    target: Id


class DutyProblemEscalated(EventBase):
    type: Literal["duty.problem_escalated"] = "duty.problem_escalated"
    problem_id: Id
    employee_id: Id
    target: Id


# --- site access -----------------------------------------------------------------------


class VisitorArrived(EventBase):
    type: Literal["visitor.arrived"] = "visitor.arrived"
    visit_id: Id
    post_id: Id
    employee_id: Id
    has_id_document: Bool
    registered: Bool
    admitted: Bool


class VehicleArrived(EventBase):
    type: Literal["vehicle.arrived"] = "vehicle.arrived"
    plate: Id
    post_id: Id
    employee_id: Id
    known: Bool
    registered: Bool
    admitted: Bool


# --- service delivery ------------------------------------------------------------------


class RemoteAuthorized(EventBase):
    type: Literal["remote.authorized"] = "remote.authorized"
    request_id: Id
    customer_id: Id
    valid_from: DateTime
    valid_until: DateTime
    granted_by: Id


class RemoteSessionStarted(EventBase):
    type: Literal["remote.session_started"] = "remote.session_started"
    request_id: Id
    customer_id: Id
    employee_id: Id


class RemoteSessionEnded(EventBase):
    """The end of a remote session; ``started_at`` is when it began (the ``at`` of its
    ``remote.session_started``), so one authorization can be checked over the whole
    session."""

    type: Literal["remote.session_ended"] = "remote.session_ended"
    request_id: Id
    customer_id: Id
    employee_id: Id
    started_at: DateTime


class ServiceStep(EventBase):
    type: Literal["service.step"] = "service.step"
    request_id: Id
    step: Literal["hotline", "remote", "onsite"]
    outcome: Literal["solved", "unsolved"]
    employee_id: Id


class OnsiteDispatched(EventBase):
    type: Literal["onsite.dispatched"] = "onsite.dispatched"
    request_id: Id
    site_id: Id
    employee_id: Id


class OnsiteDeparted(EventBase):
    type: Literal["onsite.departed"] = "onsite.departed"
    request_id: Id
    site_id: Id
    employee_id: Id


class OnsiteArrived(EventBase):
    type: Literal["onsite.arrived"] = "onsite.arrived"
    request_id: Id
    site_id: Id
    employee_id: Id


_ALL: tuple[type[EventBase], ...] = (
    EmployeeProfile, ContactReceived, RequestHandedOver, RequestResolved, RequestContactForm,
    RequestReportedToGm, ProjectDelivered, CallbackMade, HouseholdRegistered, FeedbackRecorded,
    FeedbackProcessed, HomeVisitMade, AreaVisitMade, ForumHeld, ReplyPromised, ReplyGiven,
    ClockIn, ClockOut, Leave, StaffComplaint, PrivateCall, Misconduct, ShiftStarted, ShiftEnded,
    HandoverRecorded, TurnoutChecked, EquipmentChecked, SuspiciousChecked, CaseOpened,
    CaseToPolice, UnsafeFound, UnsafeReported, UnsafeClosed, PatrolRound, IncidentDetected,
    IncidentNotified, IncidentProgress, IncidentResolved, IncidentReportFiled, ComplaintReceived,
    ComplaintInvestigated, ComplaintReported, ComplaintReplied, ComplaintValidated,
    ComplaintBenefitReceived, ReportSubmitted, CustomerRegistered, CustomerDeactivated, GiftSent,
    DemandSurveyDone, SatisfactionSurveyDone, InspectionDone, InspectionFindingsForwarded,
    ServiceResearchVisited, ServiceResearchPlanMade, DutyCheck, DutyProblemFound,
    DutyProblemEscalated, VisitorArrived, VehicleArrived, RemoteAuthorized, RemoteSessionStarted,
    RemoteSessionEnded, ServiceStep, OnsiteDispatched, OnsiteDeparted, OnsiteArrived,
)

#: Every event type name, mapped to its model.
EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["type"].default: cls for cls in _ALL
}



def builtin_models() -> tuple[type[EventBase], ...]:
    """The models of the built-in event types (without the application's registered ones)."""
    return _ALL


Event = Annotated[
    Union[  # noqa: UP007 - a discriminated union needs the explicit Union for pydantic
        EmployeeProfile, ContactReceived, RequestHandedOver, RequestResolved, RequestContactForm,
        RequestReportedToGm, ProjectDelivered, CallbackMade, HouseholdRegistered,
        FeedbackRecorded, FeedbackProcessed, HomeVisitMade, AreaVisitMade, ForumHeld,
        ReplyPromised, ReplyGiven, ClockIn, ClockOut, Leave, StaffComplaint, PrivateCall,
        Misconduct, ShiftStarted, ShiftEnded, HandoverRecorded, TurnoutChecked,
        EquipmentChecked, SuspiciousChecked, CaseOpened, CaseToPolice, UnsafeFound,
        UnsafeReported, UnsafeClosed, PatrolRound, IncidentDetected, IncidentNotified,
        IncidentProgress, IncidentResolved, IncidentReportFiled, ComplaintReceived,
        ComplaintInvestigated, ComplaintReported, ComplaintReplied, ComplaintValidated,
        ComplaintBenefitReceived, ReportSubmitted, CustomerRegistered, CustomerDeactivated,
        GiftSent, DemandSurveyDone, SatisfactionSurveyDone, InspectionDone,
        InspectionFindingsForwarded, ServiceResearchVisited, ServiceResearchPlanMade, DutyCheck,
        DutyProblemFound, DutyProblemEscalated, VisitorArrived, VehicleArrived,
        RemoteAuthorized, RemoteSessionStarted, RemoteSessionEnded, ServiceStep,
        OnsiteDispatched, OnsiteDeparted, OnsiteArrived,
    ],
    Field(discriminator="type"),
]
"""Any policykit event: a union discriminated on ``type``."""

