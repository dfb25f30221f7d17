"""The counts a session keeps (its own module: the session, its late-event window and the
snapshot payload all use them)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SessionStats"]


@dataclass
class SessionStats:
    """Counts of what a session has seen. Every event fed is counted exactly once, as what
    it was when fed: applied (``events``), a redelivery (``duplicates``), a copy of an id
    with another payload (``conflicts``), an event a correction already replaced
    (``superseded``) or refused with an error (``rejected``)."""

    events: int = 0
    """Events applied (late and correcting ones included)."""
    duplicates: int = 0
    """Events ignored because their id was seen before."""
    decisions: int = 0
    """Decisions returned, revocations and revisions included."""
    late: int = 0
    """Events applied behind the clock, within ``allowed_lateness``."""
    rejected: int = 0
    """Events refused: older than the allowance (EventOrderError), or a correction that
    cannot be applied. Never silently dropped: the call raised."""
    corrections: int = 0
    """Events applied that correct another (``meta.corrects``)."""
    superseded: int = 0
    """Events ignored because a correction of them had already been applied."""
    revocations: int = 0
    """Decisions revoked by late or corrected events."""
    revisions: int = 0
    """Decisions re-issued with changed figures because of late or corrected events."""
    conflicts: int = 0
    """Events refused because their id was seen before with another payload
    (:class:`EventConflictError`: the call raised)."""
