"""Records: the event vocabulary and the decisions."""

from .decisions import DECISION_KINDS, Decision, DecisionKind, Severity, Subject, SubjectKind
from .events import EVENT_TYPES, Event, EventBase
from .parsing import iter_events, json_schema, parse_event, parse_events

__all__ = [
    "DECISION_KINDS",
    "EVENT_TYPES",
    "Decision",
    "DecisionKind",
    "Event",
    "EventBase",
    "Severity",
    "Subject",
    "SubjectKind",
    "iter_events",
    "json_schema",
    "parse_event",
    "parse_events",
]
