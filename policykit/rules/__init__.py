"""Rule shapes: the small vocabulary the rulebook is written in, and the standard pack.

Each shape is a pydantic model (the data a policy file holds) that builds its own native
evaluator. ``SHAPES`` maps the ``shape`` name used in policy files to its model.
"""

from ._base import Match, Message, RuleSpec, SubjectRef
from .deadline import DeadlineSpec
from .ladder import LadderSpec

SHAPES: dict[str, type[RuleSpec]] = {
    cls.model_fields["shape"].default: cls
    for cls in (
        DeadlineSpec,
        LadderSpec,
    )
}

__all__ = ["SHAPES", "DeadlineSpec", "LadderSpec", "Match", "Message", "RuleSpec", "SubjectRef"]
