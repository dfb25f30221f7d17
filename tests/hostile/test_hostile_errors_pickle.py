"""Every policykit error pickles with its message and attributes (multiprocess audits send
them between processes). The classes are found by walking the subclasses of PolicyKitError,
so a new error class is covered without changing this test."""

from __future__ import annotations

import importlib
import inspect
import pickle
import pkgutil
from typing import Any

import pytest

import policykit
from policykit.errors import PolicyKitError


def _all_errors() -> list[type[PolicyKitError]]:
    for info in pkgutil.walk_packages(policykit.__path__, "policykit."):
        if ".testing" in info.name:
            continue  # the pytest plugin, imported on its own
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional dependency that is not installed
            continue
    found: list[type[PolicyKitError]] = []
    todo: list[type[PolicyKitError]] = [PolicyKitError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(c for c in cls.__subclasses__() if c not in found)
    return sorted(set(found), key=lambda c: c.__module__ + "." + c.__qualname__)


def _value(name: str) -> Any:
    if name == "problems":
        return [("employee_id", 5, "a string")]
    if name == "differences":
        return [("at", "2026-03-02T08:31:00+08:00", "2026-03-02T08:45:00+08:00")]
    if name == "first_known":
        return True
    if name in ("line", "column"):
        return 7
    if name == "suggestion":
        return "near"
    return f"the-{name}"


def _make(cls: type[PolicyKitError]) -> PolicyKitError:
    """An instance with every constructor argument filled in (optional ones too, so their
    attributes are checked)."""
    sig = inspect.signature(cls.__init__)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in list(sig.parameters.values())[1:]:
        if p.kind is p.VAR_POSITIONAL:
            args.append("a message")
        elif p.kind is p.VAR_KEYWORD:
            continue
        elif p.kind is p.KEYWORD_ONLY:
            kwargs[p.name] = _value(p.name)
        else:
            args.append(_value(p.name))
    return cls(*args, **kwargs)


ERRORS = _all_errors()


def test_the_walk_finds_the_errors_defined_outside_errors_py() -> None:
    names = {c.__name__ for c in ERRORS}
    assert {"EventError", "EventOrderError", "PolicyFileError", "ParameterError",
            "SnapshotError", "AuditSourceError", "CalendarError", "CheckpointError",
            "SessionFailedError"} <= names


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__qualname__)
def test_every_error_round_trips_through_pickle(cls: type[PolicyKitError]) -> None:
    error = _make(cls)
    for protocol in (0, pickle.HIGHEST_PROTOCOL):
        again = pickle.loads(pickle.dumps(error, protocol))
        assert type(again) is cls
        assert str(again) == str(error) and again.args == error.args
        assert vars(again) == vars(error)
        assert isinstance(again, PolicyKitError)
