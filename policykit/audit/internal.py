"""What the driver-less distributed audit (``policykit/_dask_files.py``) uses of the audit
package on its workers: the readers' :class:`Reader`, record validation and quarantine
entries, so a worker quarantines exactly as :func:`policykit.audit` does.

Library-internal: not user API (these may change in any release). Imported from here, not
from the private modules, so no private name crosses a package boundary
(tests/test_layout.py).
"""

from ._quarantine import quarantined, validate
from ._readers import Reader

__all__ = ["Reader", "quarantined", "validate"]
