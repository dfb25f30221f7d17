"""The small interface every evaluator implements: apply an event, fire what is due."""

from __future__ import annotations

import pickle
from abc import ABC, abstractmethod
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ..models.decisions import Decision
from ..models.events import EventBase
from ..policy import PolicySet


class EvaluatorSession(ABC):
    """The evolving state of one evaluation. The caller (``Session``) owns the clock,
    deduplication and ordering; an evaluator only sees events in event-time order."""

    @abstractmethod
    def apply(self, event: EventBase) -> list[Decision]:
        """Apply one event; return the decisions it caused."""

    def check(self, event: EventBase) -> None:  # noqa: B027 - optional hook
        """Raise :class:`~policykit.EventError` for an event the rules refuse, before any
        of it is applied (a subject path holding no id, see rules._base.check_subjects)."""

    def discard(self) -> None:  # noqa: B027 - optional hook
        """Free what the session holds once it is closed and done with (the batch
        pipeline's session, used for one run)."""

    @abstractmethod
    def fire_due(self, until: datetime, *, inclusive: bool) -> list[Decision]:
        """Fire every deadline due before ``until`` (or at it, when ``inclusive``)."""

    @abstractmethod
    def export_state(self) -> Any:
        """All mutable state as plain data (for snapshots)."""

    @abstractmethod
    def import_state(self, state: Any) -> None:
        """Replace all mutable state with what ``export_state`` returned."""

    # -- checkpoints of the late-event window (see Session) ----------------------------

    journals: bool = False
    """True when :meth:`journal` makes checkpoints copy-on-write (their cost then follows
    the keys touched between them, not the size of the state)."""

    def journal(self) -> None:  # noqa: B027 - optional hook
        """Checkpoints are to be taken from now on (:meth:`mark`): prepare for them."""

    def mark(self) -> Any:
        """A checkpoint of the state now: a token for :meth:`rewind`. By default a whole
        copy (the bytes never leave the process)."""
        return pickle.dumps(self.export_state(), protocol=pickle.HIGHEST_PROTOCOL)

    def rewind(self, token: Any) -> None:
        """Go back to the state of checkpoint ``token``; later checkpoints are dropped."""
        self.import_state(pickle.loads(token))

    def release(self, token: Any) -> None:  # noqa: B027 - optional hook
        """The checkpoints before ``token`` will never be rewound to."""

    def state_at(self, token: Any) -> Any:
        """The state of checkpoint ``token`` as :meth:`export_state` gives it."""
        return pickle.loads(token)

    reads: frozenset[str] | None = None
    """The event types :meth:`apply` and :meth:`check` do anything with (None: all). An event
    of any other type changes nothing but the clock: a session may then count it and keep
    its id without applying it, provided what is due before it fires before the next event
    is applied (the batch pipeline does, see Session._feed_run)."""

    prepares: bool = False
    """True when :meth:`prepare` does something: callers then pass events ahead in chunks."""

    def prepare(self, events: Sequence[EventBase]) -> None:  # noqa: B027 - optional hook
        """These events are about to be applied in this order; an evaluator may precompute
        per-event work. The caller may still skip some, or apply others in between."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release external resources."""


class Backend(ABC):
    """An evaluator of policy sets."""

    name: str

    @abstractmethod
    def open(self, policies: PolicySet) -> EvaluatorSession:
        """A fresh evaluation of ``policies``."""
