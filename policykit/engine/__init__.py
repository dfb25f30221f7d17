"""Evaluation: compile policies for a backend, stream or batch events through them."""

from .engine import BACKENDS, Engine
from .session import Session, SessionFailedError, SessionStats

__all__ = ["BACKENDS", "Engine", "Session", "SessionFailedError", "SessionStats"]
