"""Restarts without loss: a streaming process is SIGKILLed mid-stream, a new process restores
the last checkpoint from the SQLite store and replays the events after it. The decisions
the processes delivered, deduplicated by id, equal an uninterrupted run: none lost, none
different, and the only repeats are the decisions returned after the last checkpoint that
committed before the kill (ids are deterministic, so delivery by id is idempotent)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from reliability_logs import horizon, policies
from stream_child import events_for, session_options

from policykit import Engine

CHILD = Path(__file__).with_name("stream_child.py")
pytestmark = pytest.mark.slow  # streams in child processes, killed and restored
ROOT = Path(__file__).resolve().parents[2]
BASE: dict[str, Any] = {"seed": 11, "employees": 12, "every": 50}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_child(cfg: dict[str, Any]) -> int:
    done = subprocess.run([sys.executable, str(CHILD), json.dumps(cfg)], env=_env(),
                          capture_output=True, text=True, timeout=120)
    if done.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode


def delivered(out: Path) -> list[dict[str, Any]]:
    rows = []
    for line in out.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:  # a line cut by the kill (never seen: one write per line)
            continue
    return rows


def uninterrupted(cfg: dict[str, Any]) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Per event, the decisions an uninterrupted stream returns; and the final advance's."""
    session = Engine(policies()).session(**session_options(cfg))
    per_event = [[d.to_json_dict() for d in session.feed(e)] for e in events_for(cfg)]
    return per_event, [d.to_json_dict() for d in session.advance_to(horizon())]


def check(out: Path, per_event: list[list[dict[str, Any]]],
          final: list[dict[str, Any]]) -> Counter[str]:
    """Deduplicated delivery equals the uninterrupted run; returns the repeat counts."""
    expected = {d["id"]: d for batch in [*per_event, final] for d in batch}
    got = delivered(out)
    copies = Counter(d["id"] for d in got)
    by_id: dict[str, dict[str, Any]] = {}
    for d in got:
        assert by_id.setdefault(d["id"], d) == d, f"{d['id']} delivered with other content"
    assert set(by_id) == set(expected), (
        f"lost {sorted(set(expected) - set(by_id))[:5]}, extra "
        f"{sorted(set(by_id) - set(expected))[:5]}")
    assert by_id == expected
    assert (out.parent / (out.name + ".done")).exists()
    return Counter({k: n - 1 for k, n in copies.items() if n > 1})


def ids_of(batches: list[list[dict[str, Any]]]) -> Counter[str]:
    return Counter(d["id"] for batch in batches for d in batch)


@pytest.fixture(scope="module")
def plain() -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    return uninterrupted(BASE)


def test_the_log_is_worth_checkpointing(
        plain: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    per_event, final = plain
    total = sum(map(len, per_event)) + len(final)
    assert len(per_event) > 600 and total > 250
    assert len({d["policy"] for batch in per_event for d in batch}) >= 4


@pytest.mark.parametrize("kill", [("feed", 137), ("save", 199), ("commit", 3), ("deliver", None)])
def test_sigkill_then_restore_equals_an_uninterrupted_run(
        tmp_path: Path, kill: tuple[str, int | None],
        plain: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    per_event, final = plain
    every = BASE["every"]
    where, at = kill
    if where == "deliver":  # an event that returns several decisions, between checkpoints
        at = next(k for k, b in enumerate(per_event) if k > 60 and len(b) >= 2
                  and (k + 1) % every)
    assert at is not None
    cfg = {**BASE, "db": str(tmp_path / "cp.db"), "out": str(tmp_path / "out.jsonl")}
    assert run_child({**cfg, "kill": [where, at]}) == -signal.SIGKILL
    assert not (tmp_path / "out.jsonl.done").exists()
    assert run_child(cfg) == 0
    repeats = check(tmp_path / "out.jsonl", per_event, final)
    # Exactly the decisions returned after the last committed checkpoint come twice.
    if where == "feed":
        last_cp = (at + 1) // every * every - 1
        expected = ids_of(per_event[last_cp + 1:at + 1])
    elif where == "save":
        expected = Counter()
    elif where == "commit":
        expected = ids_of(per_event[(at - 1) * every:at * every])
    else:
        last_cp = (at + 1) // every * every - 1
        expected = ids_of([*per_event[last_cp + 1:at], per_event[at][:1]])
    assert repeats == expected
    if where != "save":
        assert sum(expected.values()) > 0  # the kill landed where something was at stake


def test_sigkill_from_outside_at_random_moments(
        tmp_path: Path, plain: tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]) -> None:
    """Two kills from another process at seeded-random instants, then a run to the end."""
    rng = random.Random(2026)
    cfg = {**BASE, "db": str(tmp_path / "cp.db"), "out": str(tmp_path / "out.jsonl")}
    kills = 0
    for want in (3, 4):
        proc = subprocess.Popen([sys.executable, str(CHILD), json.dumps(cfg)], env=_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout is not None
        for _ in range(want):  # let it save a few checkpoints, then kill it anywhere
            if not proc.stdout.readline():
                break
        time.sleep(rng.uniform(0.0, 0.08))
        proc.send_signal(signal.SIGKILL)
        kills += proc.wait(timeout=60) == -signal.SIGKILL
    assert kills >= 1
    assert run_child(cfg) == 0
    check(tmp_path / "out.jsonl", *plain)


def test_sigkill_of_a_late_event_session(tmp_path: Path) -> None:
    """With allowed_lateness the checkpoint also holds the window (its events, rule-state
    checkpoints and what was published): revocations and revisions after the restart are
    those of an uninterrupted run, with the same ids."""
    cfg = {**BASE, "late_minutes": 240, "db": str(tmp_path / "cp.db"),
           "out": str(tmp_path / "out.jsonl")}
    per_event, final = uninterrupted(cfg)
    revoked = [d for b in per_event for d in b if d["details"].get("outcome") == "revoked"]
    assert revoked  # the arrival order does revoke decisions
    assert run_child({**cfg, "kill": ["feed", 321]}) == -signal.SIGKILL
    assert run_child(cfg) == 0
    repeats = check(tmp_path / "out.jsonl", per_event, final)
    assert repeats == ids_of(per_event[300:322])
