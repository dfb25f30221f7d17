"""Is validating JSON Lines in bulk cheaper? pydantic's ``validate_json`` per line (what
``parse_event`` runs), against ``TypeAdapter(list[Event]).validate_json`` on chunks of lines
joined as one JSON array, and ``parse_event`` itself (validation plus policykit's checks).

    python bench/bulk_validation.py LOG.jsonl [--runs 3]

CPU µs per event (``time.process_time``), best of ``--runs``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import TypeAdapter

from policykit.models.events import Event
from policykit.models.parsing import _ADAPTER, parse_event


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lines = [ln for ln in args.log.read_text(encoding="utf-8").split("\n") if ln.strip()]
    listed = TypeAdapter(list[Event])

    def per_line() -> None:
        for ln in lines:
            _ADAPTER.validate_json(ln)

    def bulk(size: int) -> Callable[[], None]:
        def run() -> None:
            for i in range(0, len(lines), size):
                got = listed.validate_json("[" + ",".join(lines[i:i + size]) + "]")
                assert len(got) == len(lines[i:i + size])
        return run

    def parsed() -> None:
        for ln in lines:
            parse_event(ln)

    for name, fn in [("validate_json per line", per_line), ("list of 100 lines", bulk(100)),
                     ("list of 1,000 lines", bulk(1000)), ("parse_event per line", parsed)]:
        best = float("inf")
        for _ in range(args.runs):
            start = time.process_time()
            fn()
            best = min(best, time.process_time() - start)
        print(f"{name}: {best / len(lines) * 1e6:.2f} µs per event")


if __name__ == "__main__":
    main()
