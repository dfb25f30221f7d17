"""bench/distributed.py's equality checks, in CI at a small size (issue 17: the distributed
bench row's check runs in CI): the files it writes, audited by ``distributed_audit`` (dask's
synchronous scheduler here, not its LocalCluster), then both of its checks — every decision
against one ``audit()`` of the files, and the sampled check, one policy at a time on only
the events that policy reads — must find the output equal, and must catch a difference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

dask = pytest.importorskip("dask")
pd = pytest.importorskip("pandas")
pytest.importorskip("pyarrow")

from bench.distributed import SAMPLE, check, check_sample, month_after, write_files  # noqa: E402
from policykit.distributed import distributed_audit  # noqa: E402


@pytest.fixture(autouse=True)
def synchronous() -> Iterator[None]:
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.mark.slow(seconds=6)
def test_the_bench_checks_pass_on_its_own_output_and_catch_a_difference(tmp_path: Path
                                                                         ) -> None:
    inputs = tmp_path / "in"
    written, latest = write_files(3000, 4, inputs)
    assert written == 3000 and len(list(inputs.glob("*.parquet"))) == 4
    until = month_after(latest)
    summary = distributed_audit(inputs, until=until, output=tmp_path / "out", partitions=3)
    equal, count, _wall = check(inputs, summary.decisions_path, until)
    assert equal and count == summary.decisions > 0
    for policy_id in SAMPLE:
        kept, decided, same, _w = check_sample(inputs, summary.decisions_path, policy_id,
                                               until, 10_000, tmp_path)
        assert 0 < kept < written and same is True, (policy_id, kept, decided)
    # Above the limit the reference is not run, and says so.
    assert check_sample(inputs, summary.decisions_path, SAMPLE[0], until, 0,
                        tmp_path)[2] is None
    # A decision missing from the output is caught by both checks.
    frame = pd.read_parquet(summary.decisions_path)
    victim = frame[frame["policy"] == SAMPLE[-1]].index[0]
    damaged = tmp_path / "damaged.parquet"
    frame.drop(index=victim).to_parquet(damaged, index=False)
    assert check(inputs, str(damaged), until)[0] is False
    assert check_sample(inputs, str(damaged), SAMPLE[-1], until, 10_000, tmp_path)[2] is False
