"""The engine: a policy set bound to an evaluator backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from ..errors import BackendUnavailableError, ParameterError, nearest
from ..models.decisions import Decision
from ..models.events import EventBase
from ..models.parsing import iter_events
from ..policy import Policy, PolicySet
from ._backend import Backend
from ._native import NativeBackend
from .session import Session

__all__ = ["BACKENDS", "Engine"]


def _durable() -> Backend:
    # Imported lazily: durable_rules is optional and fails to import on Python 3.13+.
    from importlib import import_module

    try:
        module = import_module("policykit.engine._durable")
    except ModuleNotFoundError as exc:
        if exc.name != "policykit.engine._durable":
            raise
        raise BackendUnavailableError(
            "backend 'durable' is not built into this version of policykit; "
            "use backend='native'") from None
    backend: Backend = module.DurableBackend()
    return backend


BACKENDS = ("native", "durable")


class Engine:
    """Evaluates a policy set over events.

    >>> engine = Engine(standard_pack())            # doctest: +SKIP
    >>> decisions = engine.evaluate(events, until=end_of_month)   # doctest: +SKIP
    """

    def __init__(
        self,
        policies: PolicySet | Policy | Iterable[Policy] | None = None,
        *,
        backend: str = "native",
    ) -> None:
        if policies is None:
            from ..rules.standard import standard_pack

            policies = standard_pack()
        if isinstance(policies, Policy):
            policies = PolicySet([policies])
        elif not isinstance(policies, PolicySet):
            policies = PolicySet(policies)
        self.policies: PolicySet = policies
        if backend == "native":
            self._backend: Backend = NativeBackend()
        elif backend == "durable":
            self._backend = _durable()
        else:
            raise ParameterError("backend", backend, "one of " + ", ".join(BACKENDS),
                                 suggestion=nearest(backend, BACKENDS))
        self.backend = backend

    def session(self) -> Session:
        """A streaming session: ``feed(event)`` and ``advance_to(instant)``."""
        return Session(self._backend.open(self.policies), backend=self.backend)

    def evaluate(
        self,
        events: Iterable[EventBase | Mapping[str, Any] | str] | str | bytes,
        until: datetime | None = None,
    ) -> list[Decision]:
        """The decisions of a whole log, ordered by time then id.

        Events may come in any order: they are applied in (time, id) order. With ``until``,
        every deadline due at or before it fires; later windows are not judged yet.
        """
        parsed = sorted(iter_events(events), key=lambda e: (e.at, e.id))
        with self.session() as session:
            out = session.feed_many(parsed)
            if until is not None:
                out += session.advance_to(until)
        return sorted(out, key=lambda d: (d.at, d.id))
