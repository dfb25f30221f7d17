"""Is validating JSON Lines in bulk cheaper? pydantic's ``validate_json`` per line (what
``parse_event`` runs first), against one call per chunk of lines: a ``list[Event]`` over
the lines joined as one JSON array (with the cyclic collector on, as a plain script runs,
and paused, as ``Engine.evaluate``/``audit`` run), and ``list[Json[Event]]`` over the lines
as they are (each parsed on its own: what ``parse_texts`` runs); then policykit's own
floors: ``parse_event`` per line and ``parse_texts`` per chunk (validation plus
policykit's checks: dates, shared zones, corrections; what the batch pipeline runs).

    python bench/bulk_validation.py LOG.jsonl [--runs 3]

Every variant keeps the events it makes (as the pipeline does: discarding them at once
lets the allocator reuse the same memory and flatters the per-line loop). CPU µs per
event (``time.process_time``), best of ``--runs``, variants alternating, load average
printed."""

from __future__ import annotations

import argparse
import gc
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import Json, TypeAdapter

from policykit.models.events import Event
from policykit.models.parsing import _ADAPTER, parse_event, parse_texts


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("log", type=Path)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    lines = [ln for ln in args.log.read_bytes().split(b"\n") if ln.strip()]
    listed = TypeAdapter(list[Event])
    texts = TypeAdapter(list[Json[Event]])

    def per_line() -> list[Any]:
        validate = _ADAPTER.validate_json
        return [validate(ln) for ln in lines]

    def joined(size: int) -> Callable[[], list[Any]]:
        def run() -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(lines), size):
                out += listed.validate_json(b"[" + b",".join(lines[i:i + size]) + b"]")
            return out
        return run

    def each(size: int) -> Callable[[], list[Any]]:
        def run() -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(lines), size):
                out += texts.validate_python(lines[i:i + size])
            return out
        return run

    def parsed() -> list[Any]:
        return [parse_event(ln) for ln in lines]

    def bulk(size: int) -> Callable[[], list[Any]]:
        def run() -> list[Any]:
            out: list[Any] = []
            for i in range(0, len(lines), size):
                out += parse_texts(lines[i:i + size])
            return out
        return run

    variants: list[tuple[str, Callable[[], list[Any]], bool]] = [
        ("validate_json per line", per_line, False),
        ("joined array of 1,000 lines, collector on", joined(1000), True),
        ("joined array of 1,000 lines", joined(1000), False),
        ("list[Json[Event]] of 512 lines", each(512), False),
        ("parse_event per line", parsed, False),
        ("parse_texts of 512 lines", bulk(512), False),
    ]
    best = {name: float("inf") for name, _f, _g in variants}
    collecting = gc.isenabled()
    for _ in range(args.runs):
        for name, fn, collector in variants:
            gc.collect()
            if not collector:
                gc.disable()
            start = time.process_time()
            got = fn()
            took = time.process_time() - start
            if collecting:
                gc.enable()
            assert len(got) == len(lines)
            del got
            best[name] = min(best[name], took)
    n = len(lines)
    for name, took in best.items():
        print(f"{name}: {took / n * 1e6:.2f} µs per event")
    base = best["validate_json per line"]
    print(f"validate_json per line ÷ parse_texts: {base / best['parse_texts of 512 lines']:.2f}×;"
          f" parse_event ÷ parse_texts: "
          f"{best['parse_event per line'] / best['parse_texts of 512 lines']:.2f}×; "
          f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
