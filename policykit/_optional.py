"""Optional packages: one place that turns a missing one into a policykit error naming the
``pip install 'policykit[extra]'`` that brings it.

Use it around the import, where the feature is first needed::

    with optional_import("audit", "to_pandas()"):
        import pandas as pd
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager

from .errors import MissingBackendError, MissingDependencyError

__all__ = ["MissingBackendError", "is_missing", "optional_import"]




@contextmanager
def optional_import(extra: str, feature: str) -> Iterator[None]:
    """Re-raise an ``ImportError`` inside the block as :class:`MissingDependencyError`
    naming ``extra`` and ``feature`` (what the user called)."""
    try:
        yield
    except MissingDependencyError:
        raise
    except ImportError as exc:
        module = (exc.name or "an optional package").split(".")[0]
        raise MissingDependencyError(module, extra, feature) from exc


def is_missing(module: str) -> bool:
    """True when ``module`` is not installed at all. A package that is installed but fails
    to load is *not* missing: the caller's own error says more about a broken build."""
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return False
