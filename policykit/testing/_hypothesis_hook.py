"""Hypothesis's plugin hook (its ``hypothesis`` entry point group, run when hypothesis is
imported): ``st.from_type(Model)`` builds valid events for every event model without
importing :mod:`policykit.testing` first.

A module of its own, importing nothing at load: when policykit's strategies module is what
is importing hypothesis, it is only half built here, and it registers the models itself
when it finishes."""

from __future__ import annotations

import sys


def setup() -> None:
    """Register the event models' strategies (importing the strategies module does it)."""
    if "policykit.testing.strategies" in sys.modules:
        return  # importing now, or imported: it registers them itself
    import policykit.testing.strategies  # noqa: F401
