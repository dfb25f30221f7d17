"""What policykit's own engine and audit use from the rules package beyond the shape-author
API: compiled matchers, subject checks, key parts and the decision id hash.

Library-internal: not covered by the stability note of :mod:`policykit.rules` (these may
change in any release). The engine and audit import them from here, not from the private
``_base`` module, so no private name crosses a package boundary (tests/test_layout.py).
"""

from ._base import (
    KEY_SEP,
    check_subjects,
    field_getter,
    hashed_id,
    key_part,
    part_value,
    subject_paths,
)
from ._base import _compile_condition as compile_condition
from ._scope import old_population, respell_population

__all__ = ["KEY_SEP", "check_subjects", "compile_condition", "field_getter", "hashed_id",
           "key_part", "old_population", "part_value", "respell_population", "subject_paths"]
