"""Rule shapes: the small vocabulary the rulebook is written in, and the standard pack.

Each shape is a pydantic model (the data a policy file holds) that builds its own native
evaluator. ``SHAPES`` maps the ``shape`` name used in policy files to its model.
"""

from ._base import Match, Message, RuleSpec, SubjectRef
from .cap import CapSpec
from .deadline import DeadlineSpec
from .forbidden import ForbiddenSpec
from .gap import GapSpec
from .ladder import LadderSpec
from .precondition import PreconditionSpec
from .rate import RateSpec
from .recurrence import RecurrenceSpec
from .tariff import TariffSpec

SHAPES: dict[str, type[RuleSpec]] = {
    cls.model_fields["shape"].default: cls
    for cls in (
        CapSpec,
        DeadlineSpec,
        GapSpec,
        PreconditionSpec,
        RateSpec,
        LadderSpec,
        ForbiddenSpec,
        RecurrenceSpec,
        TariffSpec,
    )
}

__all__ = [
    "SHAPES",
    "CapSpec",
    "DeadlineSpec",
    "ForbiddenSpec",
    "GapSpec",
    "LadderSpec",
    "Match",
    "Message",
    "PreconditionSpec",
    "RateSpec",
    "RecurrenceSpec",
    "RuleSpec",
    "SubjectRef",
    "TariffSpec",
]
