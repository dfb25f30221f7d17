"""Differential property: on generated event streams across every policy of the standard
pack, the durable-rules backend returns exactly the native decisions (ids, messages,
evidence, everything) and leaves every rule in exactly the native state.

The state comparison is what proves the Rete routing sound: the durable backend skips a
rule's ``on_event`` for events none of its matchers pass, which is only right if the rule
would have done nothing with them. A disagreement found here is kept below as an explicit
``@example``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from policykit import Decision, Engine, standard_pack
from policykit.engine import _durable_adapter as da
from policykit.engine.session import drop_corrected
from policykit.models.parsing import iter_events
from policykit.testing import Stream, pack_streams

AVAILABLE, WHY = da.durable_available()
pytestmark = pytest.mark.skipif(not AVAILABLE, reason=f"durable_rules unavailable: {WHY}")

PACK = standard_pack()
NATIVE = Engine(PACK)
DURABLE = Engine(PACK, backend="durable") if AVAILABLE else None


def run(engine: Engine, events: Any, until: datetime | None) -> tuple[list[Decision], Any]:
    """The decisions (in evaluate's order) and the final rule state of one backend."""
    ordered = sorted(drop_corrected(iter_events(list(events))), key=lambda e: (e.at, e.id))
    with engine.session() as session:
        out = session.feed_many(ordered)
        if until is not None:
            out += session.advance_to(until)
        state = session._ev.export_state()["rules"]
    return sorted(out, key=lambda d: (d.at, d.id)), state


def check(events: Any, until: datetime | None) -> None:
    assert DURABLE is not None
    native, native_state = run(NATIVE, events, until)
    durable, durable_state = run(DURABLE, events, until)
    assert [d.model_dump() for d in durable] == [d.model_dump() for d in native]
    assert durable_state == native_state


# A regression example in the wire format: a profile that stops matching a population's
# filter (a guard) and a private call right at the 180 s comparison.
_REGRESSION = Stream(tuple(iter_events([
    {"id": "p1", "type": "employee.profile", "at": "2026-03-01T00:00:00+08:00",
     "employee_id": "E1", "role": "customer_service", "base_salary": "6000.00"},
    {"id": "p2", "type": "employee.profile", "at": "2026-03-02T07:00:00+08:00",
     "employee_id": "E1", "role": "guard", "base_salary": "6000.00"},
    {"id": "c1", "type": "attendance.clock_in", "at": "2026-03-02T08:30:01+08:00",
     "employee_id": "E1"},
    {"id": "k1", "type": "staff.private_call", "at": "2026-03-02T09:00:00+08:00",
     "employee_id": "E1", "duration_s": 180},
])), datetime.fromisoformat("2026-04-01T00:00:00+08:00"))


@pytest.mark.slow(seconds=15)
@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(pack_streams())
@example(_REGRESSION)
def test_durable_and_native_agree_on_every_decision_and_state(stream: Stream) -> None:
    check(stream.events, stream.until)
