"""Small builders for tests: events with defaults, local times, evaluation on a backend.

Tests import what they share from here (``tests/`` is on pytest's ``pythonpath``), never
from ``conftest``, which only defines fixtures.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from policykit import Decision
from policykit.engine._durable_adapter import durable_available

# The backends every scenario test runs on: the ``backend`` fixture's parameters.
BACKENDS = ["native", "durable"] if durable_available()[0] else ["native"]

# The ``evaluate`` fixture: ``evaluate(events, until=None, policy=None, **parameters)``.
Evaluate = Callable[..., list[Decision]]

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ids = itertools.count(1)


def t(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """A local Shanghai time: ``t("2026-03-02 08:30")`` or with seconds."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


def ev(type_: str, at: str | datetime, id: str | None = None, **fields: Any) -> dict[str, Any]:
    """An event dict in the wire format; ``at`` as a local Shanghai time string."""
    when = t(at) if isinstance(at, str) else at
    return {"id": id or f"t{next(_ids)}", "type": type_, "at": when.isoformat(), **fields}


def profile(employee_id: str, role: str = "customer_service", salary: str = "6000.00",
            at: str = "2026-01-01 00:00", **fields: Any) -> dict[str, Any]:
    return ev("employee.profile", at, id=f"p-{employee_id}", employee_id=employee_id, role=role,
              base_salary=salary, **fields)
