"""The errors policykit raises: every one names the input, where in it, the bad value and
what was expected, with the nearest valid name where there is one.

Every error class is defined here (the modules that raise them re-import them, and
tests/test_layout.py keeps it so). The hierarchy, with the builtin each also is::

    PolicyKitError                          base of every error raised on purpose
    ├── EventError (ValueError)             an event record that does not fit the wire format
    │   └── EventConflictError              an event id again with another payload
    ├── EventOrderError (ValueError)        an event older than the session clock
    ├── PolicyFileError                     a policy file or definition that does not validate
    ├── RuleValueError (ValueError)         a rule's check refusing one value written in it
                                            (internal: load turns it into PolicyFileError)
    ├── ParameterError (ValueError)         a bad argument to a function or policy parameter
    ├── CalendarError (ValueError)          a bad calendar parameter, a date past holiday data
    ├── RegistrationError (ValueError)      an event type that cannot join the vocabulary
    │   └── ShapeRegistrationError          a rule shape that cannot be registered
    ├── SnapshotError (ValueError)          a snapshot this engine cannot restore
    ├── CheckpointError                     the checkpoint database cannot be used
    ├── AuditSourceError (ValueError)       an events source that cannot be read at all
    ├── SessionFailedError (RuntimeError)   rule code failed; raised ``from`` its error
    ├── BackendUnavailableError (RuntimeError)  the evaluator cannot run here
    │   ├── MissingBackendError             ... because its package is not installed
    │   └── DurableUnavailable              ... because durable_rules cannot be imported
    ├── MissingDependencyError (ImportError)    an optional package is not installed
    │   └── MissingBackendError             (both: ``except`` either one catches it)
    └── DurableAdapterError                 the durable backend's adapter (internal)
        ├── RulesetSpecError (ValueError), MessageError (ValueError)
        ├── DurableCapacityError (RuntimeError), RulesetClosedError (RuntimeError)
        ├── DurableUnavailable              (both: also a BackendUnavailableError, above)
        └── DurableEngineError (RuntimeError)
            └── DurableActionError

The backend boundary maps what a backend library raises into this tree: the durable
adapter (policykit/engine/_durable_adapter.py) turns durable_rules' bare exceptions into
``DurableAdapterError`` errors, and a session turns an error of rule code that is not one of
these into :class:`SessionFailedError`. The names in ``policykit.__all__`` are the public
ones; ``MissingBackendError`` and the ``Durable*`` errors are caught through their public
bases (:class:`BackendUnavailableError`, :class:`MissingDependencyError`,
:class:`PolicyKitError`).

Not here, as none is raised by the library's API: the command line's ``BadInput`` (a
``click`` exception, cli.py), the pytest plugin's ``ScenarioFailed`` (a test failure,
testing/plugin.py) and private control flow (``_RowTooLong`` in audit/_readers.py).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import date, time, timedelta
from typing import Any

__all__ = [
    "AuditSourceError",
    "BackendUnavailableError",
    "CalendarError",
    "CheckpointError",
    "DurableActionError",
    "DurableAdapterError",
    "DurableCapacityError",
    "DurableEngineError",
    "DurableUnavailable",
    "EventConflictError",
    "EventError",
    "EventOrderError",
    "MessageError",
    "MissingBackendError",
    "MissingDependencyError",
    "ParameterError",
    "PolicyFileError",
    "PolicyKitError",
    "RegistrationError",
    "RuleValueError",
    "RulesetClosedError",
    "RulesetSpecError",
    "SessionFailedError",
    "ShapeRegistrationError",
    "SnapshotError",
    "format_loc",
    "nearest",
]


def nearest(value: object, choices: Iterable[str]) -> str | None:
    """The valid name closest to a misspelt one, or None when nothing is close."""
    if not isinstance(value, str):
        return None
    found = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def format_loc(loc: Iterable[object], prefix: str = "") -> str:
    """A pydantic error location as a path: ``("rules", 0, "within")`` -> ``rules[0].within``."""
    out = prefix
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _suggest(suggestion: str | None) -> str:
    return f" (did you mean {suggestion!r}?)" if suggestion else ""


class PolicyKitError(Exception):
    """Base of every error policykit raises on purpose.

    Every one pickles (multiprocess audits send them between processes): the subclasses'
    constructors take the parts of the message, not the message, so an error is rebuilt
    from its message and attributes instead of by calling the constructor again."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, self.__dict__))


def _rebuild(cls: type[PolicyKitError], args: tuple[Any, ...],
             state: dict[str, Any]) -> PolicyKitError:
    """An error unpickled: its message (``args``) and attributes, without ``__init__``."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class EventError(PolicyKitError, ValueError):
    """An event record that does not fit the wire format.

    ``problems`` lists each failure as (field path, bad value, what was expected).
    """

    def __init__(
        self,
        source: str,
        problems: list[tuple[str, Any, str]],
        *,
        event_id: str | None = None,
        line: int | None = None,
    ) -> None:
        self.source = source
        self.problems = problems
        self.event_id = event_id
        self.line = line
        where = source
        if line is not None:
            where += f", line {line}"
        if event_id is not None:
            where += f", event {event_id!r}"
        parts = [f"{field or '<record>'}: got {_short(value)}, expected {expected}"
                 for field, value, expected in problems]
        super().__init__(f"invalid event ({where}): " + "; ".join(parts))


class EventConflictError(EventError):
    """An event id delivered again with a different payload: the later copy is refused.

    ``differences`` lists each differing field as (field path, value in the copy accepted
    first, value in this copy); ``first_known`` is False when only a digest of the first
    copy was kept, so the fields cannot be named."""

    def __init__(self, event_id: str, differences: list[tuple[str, Any, Any]],
                 first_known: bool = True) -> None:
        self.differences = differences
        self.first_known = first_known
        if first_known:
            problems = [(f, this, f"{_short(first)}, as in the first copy of event "
                                  f"{event_id!r} (the same id with another payload is a "
                                  f"conflict, not a redelivery)")
                        for f, first, this in differences]
        else:
            problems = [("", "<this copy>", f"the payload of the first copy of event "
                                            f"{event_id!r} (applied earlier, no longer held: "
                                            f"its digest differs; the same id with another "
                                            f"payload is a conflict, not a redelivery)")]
        super().__init__("<event>", problems, event_id=event_id)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.event_id, self.differences, self.first_known))


class EventOrderError(PolicyKitError, ValueError):
    """An event older than the session's clock (beyond any allowed lateness)."""

    def __init__(self, event_id: str, event_at: object, clock: object, allowed: object,
                 note: str = "") -> None:
        self.event_id = event_id
        self.event_at = event_at
        self.clock = clock
        super().__init__(
            f"event {event_id!r} at {event_at} is older than the session clock {clock} "
            f"(allowed lateness {allowed}); feed events in time order, or open the session "
            f"with a larger allowed_lateness" + (f". {note}" if note else "")
        )


class PolicyFileError(PolicyKitError):
    """A policy file or policy definition that does not validate.

    Deliberately not a ``ValueError``: raised inside a pydantic validator it passes through
    unchanged instead of being folded into a ``ValidationError`` that loses the location."""

    def __init__(
        self,
        source: str,
        path: str,
        value: Any,
        expected: str,
        *,
        line: int | None = None,
        suggestion: str | None = None,
    ) -> None:
        self.source = source
        self.path = path
        self.value = value
        self.expected = expected
        self.line = line
        self.suggestion = suggestion
        where = source + (f":{line}" if line is not None else "")
        super().__init__(
            f"{where}: {path or '<top>'}: got {_short(value)}, expected {expected}"
            + _suggest(suggestion)
        )


class RuleValueError(PolicyKitError, ValueError):
    """A rule's check refusing one value written in the rule (a field path, a ``where``
    value): ``value`` is that value and ``loc``, when known, where it is inside the model
    validated, so a policy file's error points at it rather than at the whole rule. Loading
    a policy turns it into a :class:`PolicyFileError`."""

    def __init__(self, message: str, value: Any, loc: tuple[Any, ...] | None = None) -> None:
        super().__init__(message)
        self.value, self.expected, self.loc = value, message, loc


class ParameterError(PolicyKitError, ValueError):
    """A bad argument to a policykit function or a bad policy parameter."""

    def __init__(
        self, name: str, value: Any, expected: str, *, suggestion: str | None = None
    ) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        self.suggestion = suggestion
        super().__init__(
            f"{name}: got {_short(value)}, expected {expected}" + _suggest(suggestion)
        )


class BackendUnavailableError(PolicyKitError, RuntimeError):
    """The requested evaluator cannot run in this interpreter."""


class MissingDependencyError(PolicyKitError, ImportError):
    """An optional package a feature needs is not installed; names the extra that brings it.

    Also an ``ImportError``, so ``except ImportError`` around optional features still works."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        self.module = module
        self.extra = extra
        self.feature = feature
        super().__init__(
            f"{feature} needs {module}, which is not installed; "
            f"install it with: pip install 'policykit[{extra}]'",
            name=module,
        )


class RegistrationError(PolicyKitError, ValueError):
    """An event type the application registers that cannot join the vocabulary.

    ``name`` is the class (or event type) refused, ``problem`` what is wrong with it;
    the message starts with ``call``, the function that refused it."""

    call = "register_event_types"

    def __init__(self, name: str, problem: str, *, suggestion: str | None = None,
                 call: str | None = None) -> None:
        self.name = name
        self.problem = problem
        self.suggestion = suggestion
        super().__init__(f"{call or self.call}: {name}: {problem}" + _suggest(suggestion))


class ShapeRegistrationError(RegistrationError):
    """A rule shape that cannot be registered: ``name`` is the class (or shape name)
    refused, ``problem`` what is wrong with it."""

    call = "register_shape"


class SnapshotError(PolicyKitError, ValueError):
    """A snapshot that cannot be restored into this engine."""


class CalendarError(PolicyKitError, ValueError):
    """A bad calendar parameter or argument, or a date outside the holiday data.

    The message names the parameter, the bad value and the expected form, plus the nearest
    valid name where there is one.
    """

    def __init__(
        self, name: str, value: object, expected: str, suggestion: str | None = None
    ) -> None:
        self.name = name
        self.value = value
        self.expected = expected
        self.suggestion = suggestion
        super().__init__(f"{name}: got {_clip(repr(value))}, expected {expected}"
                         + _suggest(suggestion))

    def __reduce__(self) -> tuple[Any, ...]:
        # Exceptions pickle through their args; ours has four, so say so (multiprocess audits).
        return (type(self), (self.name, self.value, self.expected, self.suggestion))


class CheckpointError(PolicyKitError):
    """The checkpoint database cannot be opened, read or written."""


class AuditSourceError(PolicyKitError, ValueError):
    """An events source that cannot be read at all (missing file, unknown format, a JSON
    array that is not JSON). Single bad records are quarantined instead."""

    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")


class SessionFailedError(PolicyKitError, RuntimeError):
    """A step the session's rules could not complete, raised ``from`` what they raised.

    Raised for the step itself when a rule raises an error that is not policykit's (a
    ``KeyError``, ``OverflowError``...: rule state that is inconsistent, from a forged or
    corrupt snapshot, or a bug), and from then on by a session that cannot go on: without
    ``allowed_lateness`` a session whose rules raised mid-step (whatever the error) has a
    state that may be partial, so it refuses further use. With ``allowed_lateness`` the
    step is rolled back and the session goes on, unless the rollback failed too."""


class MissingBackendError(MissingDependencyError, BackendUnavailableError):
    """A backend's package is not installed: both a missing dependency and an unavailable
    backend, so ``except BackendUnavailableError`` fallbacks keep working."""


# The durable backend's adapter (policykit/engine/_durable_adapter.py): what durable_rules
# raises is mapped to these there, so none of its bare exceptions reaches a caller.


class DurableAdapterError(PolicyKitError):
    """Base of every error the durable_rules adapter raises."""


class DurableUnavailable(DurableAdapterError, BackendUnavailableError):
    """durable_rules cannot be imported in this interpreter; the message says why."""


class RulesetSpecError(DurableAdapterError, ValueError):
    """A ruleset description that would be unsafe or meaningless in durable_rules."""


class MessageError(DurableAdapterError, ValueError):
    """A message (or value) that cannot be sent to durable_rules as it is."""


class DurableCapacityError(DurableAdapterError, RuntimeError):
    """durable_rules ran out of memory or session slots (it raises a bare ``MemoryError``)."""


class DurableEngineError(DurableAdapterError, RuntimeError):
    """durable_rules failed in a way the adapter did not prevent."""


class DurableActionError(DurableEngineError):
    """An adapter action failed inside durable_rules (a bug: actions are not meant to fail).

    ``firings`` holds the results (the adapter's ``Firing`` dicts) drained along with the
    failure; ``errors`` the failures."""

    def __init__(self, errors: list[str], firings: list[Any]) -> None:
        self.errors = errors
        self.firings = firings
        super().__init__(
            f"{len(errors)} durable_rules action(s) failed; first: {errors[0]}"
        )


class RulesetClosedError(DurableAdapterError, RuntimeError):
    """The ruleset was closed; its engine state is gone."""


def _short(value: Any, limit: int = 80) -> str:
    if isinstance(value, date | time | timedelta):  # as a user writes it, not a repr
        return repr(value.isoformat() if not isinstance(value, timedelta) else str(value))
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's digit limit, deep nesting
        text = f"<a value that cannot be shown ({type(value).__name__})>"
    return _clip(text, limit)


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
