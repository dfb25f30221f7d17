"""Testing toolkit: hypothesis strategies for events and coherent event streams, an event
factory, a pytest plugin, and scenario files with rule coverage.

A property test of a policy in a few lines::

    from hypothesis import given
    from policykit import Engine
    from policykit.testing import attendance_months

    @given(attendance_months())
    def test_deductions_never_exceed_salary(stream):
        for d in Engine(my_policy).evaluate(stream.events, until=stream.until):
            assert d.amount is None or d.amount <= Decimal("6000.00")

See docs/testing.md.
"""

# Hypothesis first: it runs its plugins' hooks (other packages' field strategies among them)
# when imported, and those may import this package's strategies module. Imported here, before
# that module, a hook finds the module unimported (and imports it whole), never half built.
import hypothesis  # noqa: F401

from .factory import EventFactory
from .scenarios import (
    Coverage,
    Expectation,
    RuleCoverage,
    Scenario,
    ScenarioFile,
    ScenarioResult,
    ScenarioResults,
    load_scenarios,
    run_path,
    run_text,
)
from .strategies import (
    BERLIN,
    DEFAULT_END,
    DEFAULT_START,
    MONEY,
    OFFSETS,
    Stream,
    attendance_months,
    boundary_days,
    boundary_times,
    complaint_lives,
    delays,
    event_streams,
    events,
    guard_rotas,
    in_offsets,
    incident_lives,
    instants,
    merge,
    pack_streams,
    profiles,
    project_lives,
    register_field,
    reordered,
    request_lives,
    with_duplicates,
)

__all__ = [
    "BERLIN",
    "DEFAULT_END",
    "DEFAULT_START",
    "MONEY",
    "OFFSETS",
    "Coverage",
    "EventFactory",
    "Expectation",
    "RuleCoverage",
    "Scenario",
    "ScenarioFile",
    "ScenarioResult",
    "ScenarioResults",
    "Stream",
    "attendance_months",
    "boundary_days",
    "boundary_times",
    "complaint_lives",
    "delays",
    "event_streams",
    "events",
    "guard_rotas",
    "in_offsets",
    "incident_lives",
    "instants",
    "load_scenarios",
    "merge",
    "pack_streams",
    "profiles",
    "project_lives",
    "register_field",
    "reordered",
    "request_lives",
    "run_path",
    "run_text",
    "with_duplicates",
]
