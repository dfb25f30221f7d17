"""The streaming application of the kill-and-restore test, run as its own process.

It streams a generated month through a session the way an application would: restore the
stream's last checkpoint if there is one, feed the events after it, append every decision
to a JSON Lines file the moment it is returned (one ``write`` per decision, O_APPEND, so
every process appends), and save a checkpoint every ``every`` events — after delivering the
decisions it covers. It then SIGKILLs itself where the test says (``kill``):

- ``["feed", k]``: right after delivering the decisions of event ``k``;
- ``["save", k]``: right after the checkpoint saved at event ``k``;
- ``["commit", n]``: inside the ``n``-th save's transaction, before its COMMIT;
- ``["deliver", k]``: after delivering only the first decision of event ``k``;
- ``null``: never (the test may still kill it from outside).

Usage: ``python stream_child.py '<json config>'``; prints ``saved <k>`` after each save.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from reliability_logs import horizon, month_log, policies

from policykit import Decision, Engine
from policykit.checkpoint import CheckpointStore

STREAM = "month"


def arrival_order(log: list[dict[str, Any]], delay: timedelta, seed: int) -> list[dict[str, Any]]:
    """The log as it arrives with random delays of up to ``delay`` (reordered)."""
    rng = random.Random(seed)
    keyed = [(datetime.fromisoformat(e["at"])
              + timedelta(seconds=rng.uniform(0, delay.total_seconds())), i, e)
             for i, e in enumerate(log)]
    keyed.sort(key=lambda x: (x[0], x[1]))
    return [e for _at, _i, e in keyed]


def events_for(cfg: dict[str, Any]) -> list[dict[str, Any]]:
    log = month_log(cfg["seed"], employees=cfg["employees"])
    if cfg.get("late_minutes"):
        return arrival_order(log, timedelta(minutes=cfg["late_minutes"]), cfg["seed"])
    return log


def session_options(cfg: dict[str, Any]) -> dict[str, Any]:
    if cfg.get("late_minutes"):
        return {"allowed_lateness": timedelta(minutes=cfg["late_minutes"]),
                "checkpoint_every": 16}
    return {}


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    kill = cfg.get("kill")
    engine = Engine(policies())
    events = events_for(cfg)
    store = CheckpointStore(cfg["db"], engine)
    found = store.load(STREAM)
    if found is None:
        session, start = engine.session(**session_options(cfg)), 0
    else:
        session, last = found
        ids = [e["id"] for e in events]
        start = ids.index(last) + 1 if last is not None else 0
    fd = os.open(cfg["out"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    saves = 0

    def deliver(decisions: list[Decision], k: int | None = None) -> None:
        for n, d in enumerate(decisions):
            if kill and kill[0] == "deliver" and kill[1] == k and n == 1:
                _die()
            os.write(fd, (json.dumps(d.to_json_dict(), ensure_ascii=False) + "\n").encode())

    def save(last: str) -> None:
        nonlocal saves
        saves += 1
        if kill and kill[0] == "commit" and kill[1] == saves:
            # SQLite calls this as each statement starts: dying at COMMIT leaves the
            # checkpoint's row written but not committed.
            store._conn.set_trace_callback(lambda sql: _die() if sql == "COMMIT" else None)
        store.save(STREAM, session, last)
        print(f"saved {last}", flush=True)

    for k in range(start, len(events)):
        deliver(session.feed(events[k]), k)
        if kill and kill[0] == "feed" and kill[1] == k:
            _die()
        if (k + 1) % cfg["every"] == 0:
            save(events[k]["id"])
            if kill and kill[0] == "save" and kill[1] == k:
                _die()
    deliver(session.advance_to(horizon()))
    save(events[-1]["id"])
    Path(cfg["out"] + ".done").write_text("done")


if __name__ == "__main__":
    main()
