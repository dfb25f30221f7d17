"""Records: the event vocabulary and the decisions."""

from .decisions import DECISION_KINDS, Decision, DecisionKind, Severity, Subject, SubjectKind
from .events import EVENT_TYPES, Event, EventBase
from .parsing import _records as raw_records  # library-internal, for the engine
from .parsing import iter_events, json_schema, parse_event, parse_events
from .registry import (
    event_types,
    register_event_types,
    registered_event_types,
    unregister_event_types,
)

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
    "event_types",
    "iter_events",
    "json_schema",
    "parse_event",
    "parse_events",
    "raw_records",
    "register_event_types",
    "registered_event_types",
    "unregister_event_types",
]
