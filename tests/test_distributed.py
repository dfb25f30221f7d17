"""The Dask audit returns exactly the single-process decisions, ids included."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bench.generate import generate
from policykit import Engine, standard_pack
from policykit.distributed import distributed_audit, plan
from policykit.errors import ParameterError
from policykit.models.parsing import parse_events

ROOT = Path(__file__).resolve().parents[1]

EXAMPLE = ROOT / "policykit" / "examples" / "acme-2026-03.jsonl"
APRIL = datetime.fromisoformat("2026-04-01T00:00:00+08:00")
MAY = datetime.fromisoformat("2026-05-01T00:00:00+08:00")


@pytest.fixture(scope="module")
def example() -> list[Any]:
    return parse_events(EXAMPLE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def two_months() -> list[Any]:
    return parse_events(list(generate(16, 2, 7)))


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_plan_splits_by_key_and_keeps_the_discipline_ladder_whole() -> None:
    shards = plan(standard_pack(), partitions=3)
    by_rules = {(s.policy, s.rules): s for s in shards}
    ladder = by_rules[("first-responder", ("R3", "R6", "R7"))]
    assert ladder.routes is None and ladder.count == 1  # cross-request: one shard
    late = by_rules[("lateness-deduction", ("R1", "R2", "R3"))]
    assert late.count == 3 and late.routes is not None
    assert late.routes["attendance.clock_in"] == "employee_id"
    handover = by_rules[("first-responder", ("R1",))]
    assert handover.routes is not None and handover.routes["request.resolved"] == "request_id"
    assert by_rules[("callback-frequency", ("R6a",))].routes is None  # a rate: whole


def test_in_process_shards_equal_the_engine(example: list[Any], two_months: list[Any]) -> None:
    assert distributed_audit(example, until=APRIL, partitions=3) == \
        Engine().evaluate(example, until=APRIL)
    assert distributed_audit(two_months, partitions=5) == Engine().evaluate(two_months)


def test_duplicates_and_corrections_are_resolved_before_splitting(example: list[Any]) -> None:
    events = [e.model_dump(mode="json") for e in example[:400]]
    dup = dict(events[10])
    fixed = dict(events[20], id="fix-1", meta={"corrects": events[20]["id"]})
    log = [*events, dup, fixed]
    assert distributed_audit(log, partitions=4) == Engine().evaluate(log)


def test_until_before_the_last_event_is_refused(example: list[Any]) -> None:
    with pytest.raises(ParameterError):
        distributed_audit(example, until=datetime.fromisoformat("2026-03-02T00:00:00+08:00"))


@pytest.mark.slow
def test_local_cluster_equals_the_engine(client: Any, example: list[Any],
                                         two_months: list[Any]) -> None:
    assert distributed_audit(example, until=APRIL, client=client) == \
        Engine().evaluate(example, until=APRIL)
    single = Engine().evaluate(two_months, until=MAY)
    assert len(single) > 100
    assert distributed_audit(two_months, until=MAY, client=client) == single
