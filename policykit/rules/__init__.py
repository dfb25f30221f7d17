"""Rule shapes: the small vocabulary the rulebook is written in, and the API to add shapes.

Each shape is a pydantic model (a :class:`RuleSpec` subclass: the data a policy file holds)
that builds its own evaluator (a :class:`RuleRuntime`). ``SHAPES`` maps the ``shape`` name
used in policy files to its model: the built-in shapes and the registered ones
(:func:`register_shape`, or the ``policykit.shapes`` entry point group of an installed
package). docs/shape-authoring.md shows a complete shape.

Stability note (0.x)
--------------------
Stable — kept compatible through 0.x, deprecated for a release before any change:
the names exported here; :class:`RuleSpec`'s common fields (``shape``, ``id``, ``title``,
``title_zh``, ``description``, ``clause``, ``severity``, ``messages``), its
``default_messages`` / ``message_fields`` class attributes and the methods a shape defines
or overrides (``runtime``, ``event_types``, ``consumes``, ``state_types``, ``partition``,
``reads_directory``, ``why_not_strategy``); :class:`RuleRuntime`'s ``on_event``,
``on_decision`` and ``on_timer`` and its ``spec`` / ``policy`` / ``state`` attributes;
:class:`RuleContext`'s ``emit``, ``schedule``, ``now``, ``calendar``, ``directory`` and
``policy``; the decision types (``Decision``, ``Subject``, ``DecisionKind``,
``SubjectKind``, ``Severity``) and ``EventBase``; :class:`Match`, :class:`Message`,
:class:`SubjectRef`, :class:`Partition`, ``Names``, ``OneOrMany``, :func:`keyed_by`,
``check_field``, ``event_value``, ``key_of``; the ``policykit.shapes`` entry point group.

May change in a 0.x release: new optional methods on :class:`RuleSpec` (with
defaults, so existing shapes keep working), new keyword arguments of
:meth:`RuleContext.emit`, the set of ``why_not_strategy`` values, and the built-in shapes'
own classes and fields (``DeadlineSpec`` ...), which are documented as policy-file syntax
(docs/shapes/) rather than as Python API. Anything imported from a private module
(``policykit.rules._base``, ``_scope`` ...) or from ``policykit.rules.internal`` (what
policykit's own engine and audit use) is not covered.

A runtime keeps all its mutable state in ``self.state`` as plain data (dicts, lists,
tuples, str, int, Decimal, datetime), so sessions snapshot and restore it; it must do
nothing with an event that passes none of its matchers (the durable backend sends it only
those, plus the types of :meth:`RuleSpec.state_types`).
"""

from ..models.decisions import Decision, DecisionKind, Severity, Subject, SubjectKind
from ..models.events import EventBase
from ._base import (
    Amount,
    Condition,
    Count,
    DurationSpec,
    Match,
    Message,
    Names,
    OneOrMany,
    Partition,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    SubjectRef,
    event_value,
    first_key,
    key_of,
    keyed_by,
)
from ._base import _check_field as check_field
from ._registry import (
    SHAPES,
    SHAPES_GROUP,
    ShapeRegistrationError,
    load_shape_plugins,
    register_shape,
    registered_shapes,
    unregister_shape,
)
from .cap import CapSpec
from .deadline import DeadlineSpec
from .forbidden import ForbiddenSpec
from .gap import GapSpec
from .ladder import LadderSpec
from .precondition import PreconditionSpec
from .rate import RateSpec
from .recurrence import RecurrenceSpec
from .tariff import TariffSpec

__all__ = [
    "SHAPES",
    "SHAPES_GROUP",
    "Amount",
    "CapSpec",
    "Condition",
    "Count",
    "DeadlineSpec",
    "Decision",
    "DecisionKind",
    "DurationSpec",
    "EventBase",
    "ForbiddenSpec",
    "GapSpec",
    "LadderSpec",
    "Match",
    "Message",
    "Names",
    "OneOrMany",
    "Partition",
    "PolicyInfo",
    "PreconditionSpec",
    "RateSpec",
    "RecurrenceSpec",
    "RuleContext",
    "RuleRuntime",
    "RuleSpec",
    "Severity",
    "ShapeRegistrationError",
    "Subject",
    "SubjectKind",
    "SubjectRef",
    "TariffSpec",
    "check_field",
    "event_value",
    "first_key",
    "key_of",
    "keyed_by",
    "load_shape_plugins",
    "register_shape",
    "registered_shapes",
    "unregister_shape",
]
