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

Scenario files named ``test_*.yaml`` (or ``.yml``) with a top-level ``scenarios`` list are
collected as test items, one per scenario; a failing one reports expected vs got.

Without the installed entry point, enable it with ``-p policykit.testing.plugin`` or
``pytest_plugins = ["policykit.testing.plugin"]`` in the root conftest.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from ..calendar import BusinessCalendar
    from ..engine import Engine
    from ._resolve import PolicyLike
    from .factory import EventFactory
    from .scenarios import Scenario, ScenarioResult

__all__ = ["EngineFactory", "ScenarioFailed", "ScenarioItem", "ScenarioYamlFile",
           "business_calendar", "event_factory", "policykit_engine", "pytest_collect_file"]

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


# --------------------------------------------------------------------------- scenario files


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """``test_*.yaml`` / ``test_*.yml`` files holding a top-level ``scenarios`` list."""
    if not (file_path.name.startswith("test_") and file_path.suffix in (".yaml", ".yml")):
        return None
    import yaml

    try:
        data = yaml.safe_load(file_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = {"scenarios": None}  # collected, so the loader reports it with its line
    if not (isinstance(data, dict) and "scenarios" in data):
        return None  # some other YAML file of the project
    collector: pytest.Collector = ScenarioYamlFile.from_parent(parent, path=file_path)
    return collector


class ScenarioFailed(Exception):
    """A scenario whose decisions differ from its expectations."""

    def __init__(self, result: ScenarioResult) -> None:
        super().__init__(result.name)
        self.result = result


class ScenarioYamlFile(pytest.File):
    """A scenario file: one item per scenario."""

    def collect(self) -> Iterator[pytest.Item]:
        from ..errors import PolicyKitError
        from .scenarios import load_scenarios

        try:
            source = str(self.path.relative_to(self.config.rootpath))
        except ValueError:
            source = str(self.path)
        try:
            loaded = load_scenarios(self.path.read_text(encoding="utf-8"),
                                    source=source, base_dir=self.path.parent)
        except (PolicyKitError, OSError, UnicodeDecodeError) as exc:
            raise self.CollectError(str(exc)) from None
        seen: dict[str, int] = {}
        for sc in loaded.scenarios:
            # Two scenarios with one name still get two items (pytest ids must differ).
            n = seen[sc.name] = seen.get(sc.name, 0) + 1
            name = sc.name if n == 1 else f"{sc.name} [{n}]"
            yield ScenarioItem.from_parent(self, name=name, scenario=sc)


class ScenarioItem(pytest.Item):
    """One scenario of a scenario file."""

    def __init__(self, *, scenario: Scenario, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario

    def runtest(self) -> None:
        result = self.scenario.run()
        if not result.passed:
            raise ScenarioFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException],
                     style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return excinfo.value.result.render()
        return str(super().repr_failure(excinfo, style))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        line = self.scenario.line - 1 if self.scenario.line else None
        return self.path, line, f"scenario: {self.name}"
