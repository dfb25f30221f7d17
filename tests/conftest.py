"""Shared fixtures: every scenario test runs on each available backend."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

import pytest
from helpers import BACKENDS, Evaluate

from policykit import (
    Decision,
    Engine,
    Policy,
    PolicySet,
    registered_event_types,
    standard_pack,
    unregister_event_types,
)


def _cost(item: pytest.Item) -> float:
    """Seconds the test takes (``@pytest.mark.slow(seconds=...)``; a bare ``slow``: 2)."""
    slow = item.get_closest_marker("slow")
    return 0.0 if slow is None else float(slow.kwargs.get("seconds", 2))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist the slow tests (and so their files, with ``--dist loadfile``) are
    handed out first, the longest first: the memory test, started two thirds of the way
    through, would run alone at the end while the other workers idle. One process keeps
    the collection order (the fast tests report first)."""
    if hasattr(config, "workerinput"):  # an xdist worker: every worker sorts alike
        items.sort(key=_cost, reverse=True)  # stable: ties keep the collection order


@pytest.fixture(autouse=True)
def _no_leaked_event_types() -> Iterator[None]:
    """An event type a test registers (without ``policykit.event_types``) ends with it."""
    yield
    if registered_event_types():
        unregister_event_types()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def evaluate(backend: str) -> Evaluate:
    """``evaluate(events, until=None, policy="lateness-deduction", **parameters)``: the
    decisions of one standard policy (with parameters changed) on the test's backend."""

    def run(events: Iterable[dict[str, Any]], until: datetime | None = None,
            policy: str | Policy | PolicySet | None = None, **parameters: Any) -> list[Decision]:
        if isinstance(policy, str):
            chosen: Policy | PolicySet = standard_pack().get(policy)
            if parameters:
                chosen = chosen.with_parameters(**parameters)
        elif policy is None:
            chosen = standard_pack()
        else:
            chosen = policy
        return Engine(chosen, backend=backend).evaluate(list(events), until=until)

    return run
