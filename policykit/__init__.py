"""policykit: declarative policy enforcement for service operations.

Events in, decisions out: feed pydantic event records to an :class:`Engine` built from a
policy set (the standard pack by default) and get back violations, deductions, fines,
escalations and obligations, each with its evidence.

Logging goes to the ``policykit`` logger (silent unless the application configures
logging): quarantined records at WARNING, one line of counts per batch run at INFO, each
duplicate, late and corrected event at DEBUG.
"""

import logging as _logging

from .audit import AuditReport, DiffReport, audit, diff
from .calendar import BusinessCalendar
from .checkpoint import CheckpointStore
from .engine import DEFAULT_DEDUPE_WINDOW, Engine, Session, SessionStats
from .errors import (
    AuditSourceError,
    BackendUnavailableError,
    CalendarError,
    CheckpointError,
    EventConflictError,
    EventError,
    EventOrderError,
    MissingDependencyError,
    ParameterError,
    PolicyFileError,
    PolicyKitError,
    RegistrationError,
    SessionFailedError,
    ShapeRegistrationError,
    SnapshotError,
)
from .models import (
    EVENT_TYPES,
    Decision,
    Event,
    EventBase,
    Subject,
    event_types,
    json_schema,
    parse_event,
    parse_events,
    register_event_types,
    registered_event_types,
    unregister_event_types,
)
from .pack import standard_pack
from .policy import Policy, PolicySet
from .policyfile import load_policy, loads_policy, resolve_policies
from .rules import register_shape, registered_shapes, unregister_shape

__all__ = [
    "DEFAULT_DEDUPE_WINDOW",
    "EVENT_TYPES",
    "AuditReport",
    "AuditSourceError",
    "BackendUnavailableError",
    "BusinessCalendar",
    "CalendarError",
    "CheckpointError",
    "CheckpointStore",
    "Decision",
    "DiffReport",
    "Engine",
    "Event",
    "EventBase",
    "EventConflictError",
    "EventError",
    "EventOrderError",
    "MissingDependencyError",
    "ParameterError",
    "Policy",
    "PolicyFileError",
    "PolicyKitError",
    "PolicySet",
    "RegistrationError",
    "Session",
    "SessionFailedError",
    "SessionStats",
    "ShapeRegistrationError",
    "SnapshotError",
    "Subject",
    "audit",
    "diff",
    "event_types",
    "json_schema",
    "load_policy",
    "loads_policy",
    "parse_event",
    "parse_events",
    "register_event_types",
    "register_shape",
    "registered_event_types",
    "registered_shapes",
    "resolve_policies",
    "standard_pack",
    "unregister_event_types",
    "unregister_shape",
]

__version__ = "0.1.0"

_logging.getLogger("policykit").addHandler(_logging.NullHandler())

# Event types installed packages declare (entry point group ``policykit.events``).
from .models.registry import load_event_plugins as _load_event_plugins  # noqa: E402

_load_event_plugins()

# Rule shapes installed packages declare (entry point group ``policykit.shapes``), after the
# event types: a shape's matchers may name them.
from .rules import load_shape_plugins as _load_shape_plugins  # noqa: E402

_load_shape_plugins()
