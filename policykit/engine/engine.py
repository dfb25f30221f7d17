"""The engine: a policy set bound to an evaluator backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta, tzinfo
from functools import cached_property
from typing import Any

from ..errors import BackendUnavailableError, ParameterError, PolicyKitError, SnapshotError, nearest
from ..models import raw_records
from ..models.decisions import Decision
from ..models.events import EventBase
from ..policy import Policy, PolicySet, version_text
from ._backend import Backend
from ._batch import parse_instant, run_batch, zone
from ._native import NativeBackend
from ._payload import unpack_session
from ._snapshot import MAX_DURATION as _MAX_RESTORED_DURATION
from .session import Session, restore_state

__all__ = ["BACKENDS", "Engine"]


def _durable() -> Backend:
    # Imported lazily: durable_rules is optional and fails to import on Python 3.13+.
    from importlib import import_module

    from .._optional import MissingBackendError, is_missing

    if is_missing("durable"):  # not installed at all; a broken build gets the adapter's error
        raise MissingBackendError("durable-rules", "durable",
                                  "backend='durable' (Python 3.11/3.12; backend='native' "
                                  "needs nothing more)")
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
#: How long a streaming session remembers an event id (in event time behind its clock).
DEFAULT_DEDUPE_WINDOW = timedelta(days=30)


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
            from ..pack import standard_pack

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

    def __repr__(self) -> str:
        ids = self.policies.ids
        shown = ", ".join(ids[:6]) + (f", ... {len(ids) - 6} more" if len(ids) > 6 else "")
        return (f"<Engine {self.backend}: {len(ids)} policies [{shown}], "
                f"fingerprint {self.fingerprint}>")

    def _repr_html_(self) -> str:
        from html import escape

        return (f"<div class='pk-engine'><b>Engine</b> · backend {escape(self.backend)} · "
                f"{len(self.policies)} policies</div>{self.policies._repr_html_()}")

    @cached_property
    def fingerprint(self) -> str:
        """The policy set's fingerprint: snapshots record it and refuse another."""
        return self.policies.fingerprint()

    def session(
        self,
        *,
        allowed_lateness: timedelta | None = None,
        checkpoint_every: int = 256,
        dedupe_window: timedelta | None = DEFAULT_DEDUPE_WINDOW,
    ) -> Session:
        """A streaming session: ``feed(event)`` and ``advance_to(instant)``.

        ``allowed_lateness``: an event up to this much older than the session clock is
        still applied where it belongs; the decisions it invalidates are revoked, those it
        changes are revised, each by a new decision whose ``supersedes`` names the old one.
        Older events raise :class:`~policykit.EventOrderError` (counted in
        ``stats.rejected``). The session keeps the window's events and a checkpoint of the
        rule state every ``checkpoint_every`` steps (more apart for large states) for this.

        ``dedupe_window``: how long (in event time behind the clock, and at least
        ``allowed_lateness``) the session remembers an event id, to ignore a redelivery of
        it. Older ids are forgotten, so memory stays flat over a long stream; an event that
        old is refused as too late anyway, and a correction naming an id the session might
        have forgotten is refused rather than applied twice. ``None`` remembers every id
        (memory grows by about 100 bytes per event).
        """
        if allowed_lateness is not None and (
                not isinstance(allowed_lateness, timedelta) or allowed_lateness < timedelta(0)
                or allowed_lateness > _MAX_RESTORED_DURATION):
            raise ParameterError("allowed_lateness", allowed_lateness,
                                 "a non-negative datetime.timedelta of at most 100 years, "
                                 "e.g. timedelta(hours=1)")
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 1:
            raise ParameterError("checkpoint_every", checkpoint_every, "a positive int")
        if dedupe_window is not None and (
                not isinstance(dedupe_window, timedelta) or dedupe_window <= timedelta(0)
                or dedupe_window > _MAX_RESTORED_DURATION):
            raise ParameterError("dedupe_window", dedupe_window,
                                 "a positive datetime.timedelta of at most 100 years, e.g. "
                                 "timedelta(days=30), or None to remember every event id")
        return self._open(allowed_lateness=allowed_lateness, checkpoint_every=checkpoint_every,
                          dedupe_window=dedupe_window)

    def _open(self, **options: Any) -> Session:
        """A session of this engine's policies on its backend (options checked by the
        caller)."""
        return Session(self._backend.open(self.policies), backend=self.backend,
                       policies=self.policies, fingerprint=self.fingerprint, **options)

    def _batch_session(self) -> Session:
        """The session of the batch pipeline (engine/_batch.py): every id remembered, and no
        payload digests, since the pipeline resolved repeated ids and conflicts before
        feeding it (split_corrections) and the session would only repeat that work."""
        return self._open(dedupe_window=None, payload_digests=False)

    def restore(self, snapshot: bytes) -> Session:
        """The session :meth:`Session.snapshot` saved, ready to take the events after it.

        Raises :class:`~policykit.SnapshotError` for bytes that are not a snapshot of this
        format, are corrupt, or were taken with another policy set (another version or
        other parameters: a snapshot is never applied to rules it was not made by) or
        another backend. Restoring never executes anything from the bytes."""
        payload = unpack_session(snapshot, backend=self.backend, fingerprint=self.fingerprint,
                                 policies=[[p.id, version_text(p)] for p in self.policies])
        window = payload.window
        session = self._open(allowed_lateness=window.allowed if window is not None else None,
                             dedupe_window=payload.ledger.seen.window)
        try:
            restore_state(session, payload)
        except (PolicyKitError, MemoryError):
            session.close()
            raise
        except Exception as exc:
            # A forged value the layout checks let through (a wrong type deep in the state,
            # met when the window's steps are replayed): refused, never a raw Python error.
            session.close()
            raise SnapshotError(f"snapshot: state does not restore ({type(exc).__name__}: "
                                f"{str(exc)[:200]})") from exc
        except BaseException:
            session.close()
            raise
        return session

    def evaluate(
        self,
        events: Iterable[EventBase | Mapping[str, Any] | str] | str | bytes,
        until: datetime | date | str | None = None,
        *,
        assume_tz: str | tzinfo | None = None,
    ) -> list[Decision]:
        """The decisions of a whole log, ordered by time then id.

        Events may come in any order: they are applied in (time, id) order; a repeated id
        is applied once, however far apart the copies are, and a correction
        (``meta.corrects``) replaces the event it names. With ``until`` (an aware datetime,
        an ISO-8601 date-time with offset, or a date: the start of that day in the policy
        calendar's zone), every deadline due at or before it fires; later windows are not
        judged yet. ``assume_tz`` (e.g. ``"Asia/Shanghai"``) reads offset-less times, in
        the records and in ``until``, as local times in that zone.

        The first invalid record raises its :class:`~policykit.EventError`; an event or a
        horizon a policy calendar cannot place (no holiday data) raises ``CalendarError``.
        :func:`policykit.audit` runs the same pipeline and quarantines instead.
        """
        tz = zone(assume_tz)
        horizon = None if until is None else parse_instant(
            until, policies=self.policies, assume_tz=tz)
        return run_batch(self, raw_records(events), until=horizon, assume_tz=tz).decisions

