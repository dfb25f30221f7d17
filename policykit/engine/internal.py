"""What the driver-less distributed audit (``policykit/_dask_files.py``) runs of the batch
pipeline on its workers: the per-record steps, the horizon check and the corrections'
rules.

Library-internal: not user API (these may change in any release). Imported from here, not
from the private modules, so no private name crosses a package boundary
(tests/test_layout.py).
"""

from ._batch import check_horizon, read_valid
from ._corrections import corrected_id, split_corrections

__all__ = ["check_horizon", "corrected_id", "read_valid", "split_corrections"]
