"""Hypothesis's plugin hook (the package's ``hypothesis`` entry point, run when hypothesis is
imported): the elevator id pools for ``st.from_type`` and ``policykit.testing.events``.

A module of its own that imports nothing at load: when the strategies module is what is
importing hypothesis, it is only half built here, and it registers the pools itself when it
finishes."""

from __future__ import annotations

import sys


def setup() -> None:
    """Register the id pools (importing the strategies module does it)."""
    if "policykit_elevator.strategies" in sys.modules:
        return  # importing now, or imported: it registers them itself
    import policykit_elevator.strategies  # noqa: F401
