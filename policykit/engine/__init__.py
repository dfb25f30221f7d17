"""Evaluation: compile policies for a backend, stream or batch events through them.

The batch pipeline's names (``Parse``, ``TEXT_AS_EVENT``, ``numbered``, ``parse_instant``,
``prepare``, ``progress_bar``, ``run_batch``, ``zone``) are exported for the audit and distributed
audits: library-internal, not user API (docs/architecture.md, Stability)."""

from ..models.registry import on_types_changed
from . import _batch
from ._batch import (
    TEXT_AS_EVENT,
    Parse,
    numbered,
    parse_instant,
    prepare,
    progress_bar,
    run_batch,
    zone,
)
from .engine import BACKENDS, DEFAULT_DEDUPE_WINDOW, Engine
from .session import Session, SessionFailedError, SessionStats

# The batch pipeline's caches per event type name follow the vocabulary.
on_types_changed(_batch._fields_holding.cache_clear)
on_types_changed(_batch._time_fields_any.cache_clear)

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
    "zone",
]
