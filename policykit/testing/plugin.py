"""The policykit pytest plugin (entry point ``pytest11: policykit``): fixtures for testing
policies.

- ``policykit_engine(policy=None, backend="native", **parameters)``: an :class:`Engine` for
  a policy file (relative paths from the test's folder), a standard policy id or a list of
  ids, a Policy or PolicySet; ``None`` is the whole standard pack. Keyword parameters change
  the policy's parameters (by policy id when several policies run).
- ``event_factory``: an :class:`EventFactory` starting Monday 2026-03-02 08:30 in
  Asia/Shanghai.
- ``business_calendar``: the bundled calendar (Asia/Shanghai, 08:30-17:30, PRC holidays and
  make-up working days).

Without the installed entry point, enable it with ``-p policykit.testing.plugin`` or
``pytest_plugins = ["policykit.testing.plugin"]`` in the root conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..calendar import BusinessCalendar
    from ..engine import Engine
    from ._resolve import PolicyLike
    from .factory import EventFactory

__all__ = ["EngineFactory", "business_calendar", "event_factory", "policykit_engine"]

EngineFactory = Callable[..., "Engine"]

# policykit is imported inside the fixtures, not here: pytest loads this plugin in every
# run of every project where policykit is installed, and most of those runs never use it.


@pytest.fixture(scope="module")
def policykit_engine(request: pytest.FixtureRequest) -> EngineFactory:
    """``policykit_engine(policy=None, backend="native", **parameters) -> Engine``.

    Module-scoped (an engine holds no state between evaluations), so hypothesis tests may
    use it."""
    from ..engine import Engine
    from ._resolve import apply_parameters, resolve_policies

    base_dir = request.path.parent

    def make(policy: PolicyLike = None, backend: str = "native", **parameters: Any) -> Engine:
        policies = resolve_policies(policy, base_dir=base_dir)
        return Engine(apply_parameters(policies, parameters), backend=backend)

    return make


@pytest.fixture
def event_factory() -> EventFactory:
    """A fresh :class:`~policykit.testing.EventFactory` (Monday 2026-03-02 08:30, Shanghai)."""
    from .factory import EventFactory

    return EventFactory()


@pytest.fixture(scope="session")
def business_calendar() -> BusinessCalendar:
    """The bundled business calendar (``policykit.calendar.DEFAULT_CALENDAR``)."""
    from ..calendar import DEFAULT_CALENDAR

    return DEFAULT_CALENDAR
