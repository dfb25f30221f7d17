"""Evaluation: compile policies for a backend, stream or batch events through them.

The batch pipeline's names (``Parse``, ``TEXT_AS_EVENT``, ``numbered``, ``parse_instant``,
``prepare``, ``progress_bar``, ``run_batch``, ``run_ordered``, ``zone``) are exported for the
audit and distributed audits: library-internal, not user API (docs/architecture.md,
Stability)."""

from ._batch import (
    TEXT_AS_EVENT,
    Parse,
    numbered,
    parse_instant,
    prepare,
    progress_bar,
    run_batch,
    run_ordered,
    zone,
)
from .engine import BACKENDS, DEFAULT_DEDUPE_WINDOW, Engine
from .session import Session, SessionFailedError, SessionStats

__all__ = [
    "BACKENDS",
    "DEFAULT_DEDUPE_WINDOW",
    "TEXT_AS_EVENT",
    "Engine",
    "Parse",
    "Session",
    "SessionFailedError",
    "SessionStats",
    "numbered",
    "parse_instant",
    "prepare",
    "progress_bar",
    "run_batch",
    "run_ordered",
    "zone",
]
