"""Evaluation: compile policies for a backend, stream or batch events through them."""

from .engine import BACKENDS, DEFAULT_DEDUPE_WINDOW, Engine
from .session import Session, SessionFailedError, SessionStats

__all__ = ["BACKENDS", "DEFAULT_DEDUPE_WINDOW", "Engine", "Session", "SessionFailedError",
           "SessionStats"]
