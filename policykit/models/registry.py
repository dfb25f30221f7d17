"""The application's own event types: registered next to the built-in vocabulary.

A registered type is one more model in :data:`policykit.EVENT_TYPES` and one more branch of
the tagged union the parser validates with, so everything that reads either (parsing and
its error messages, policy validation at load, both backends, snapshots, audits, the
testing strategies) treats it as it treats a built-in type.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Literal, get_args, get_origin

from ..errors import RegistrationError, nearest
from . import parsing
from .events import EVENT_TYPES, EventBase, builtin_models

__all__ = [
    "event_types",
    "register_event_types",
    "registered_event_types",
    "unregister_event_types",
]

_BUILTIN: dict[str, type[EventBase]] = {
    m.model_fields["type"].default: m for m in builtin_models()
}
#: The registered types, in registration order.
_REGISTERED: dict[str, type[EventBase]] = {}
#: The envelope every event shares: a registered model may narrow none of it.
_COMMON = ("id", "at", "actor", "meta")
_MAX_NAME = 128


def _type_name(cls: type[EventBase]) -> str:
    """The single string of ``cls``'s ``type: Literal[...]`` field, or a RegistrationError."""
    field = cls.model_fields.get("type")
    annotation = field.annotation if field is not None else None
    args = get_args(annotation)
    if get_origin(annotation) is not Literal or len(args) != 1 or not isinstance(args[0], str):
        raise RegistrationError(
            cls.__qualname__, f"its 'type' field is {annotation!r}, expected a Literal of one "
            "string such as type: Literal['elevator.fault']")
    name = args[0]
    if not name or len(name) > _MAX_NAME or not name.isprintable() or any(
            c.isspace() for c in name):
        raise RegistrationError(cls.__qualname__, f"event type {name!r}: expected 1 to "
                                f"{_MAX_NAME} printable characters without spaces")
    return name


def _signature(cls: type[EventBase]) -> dict[str, str]:
    """The fields of ``cls`` as comparable text (type, default, constraints)."""
    return {n: repr(f) for n, f in cls.model_fields.items()}


def _check(cls: Any) -> str:
    """The event type name of ``cls`` when it may be registered; a RegistrationError if not."""
    if not isinstance(cls, type) or not issubclass(cls, EventBase):
        raise RegistrationError(
            getattr(cls, "__qualname__", repr(cls)),
            f"got {type(cls).__name__}, expected a subclass of policykit.EventBase")
    if cls is EventBase:
        raise RegistrationError("EventBase", "the envelope itself is not an event type; "
                                "subclass it with a type: Literal[...] field")
    if not cls.__pydantic_complete__:
        try:
            cls.model_rebuild()
        except Exception as exc:  # pydantic's PydanticUndefinedAnnotation and kin
            raise RegistrationError(
                cls.__qualname__, f"the model is not fully defined ({exc}); define the types "
                "its annotations name before registering it") from None
    name = _type_name(cls)
    for common in _COMMON:
        mine, base = cls.model_fields[common], EventBase.model_fields[common]
        if repr(mine) != repr(base):
            raise RegistrationError(
                cls.__qualname__, f"field {common!r} redefines the field every event "
                f"shares ({base.annotation!r}); give the application's field another name")
    config = cls.model_config
    if config.get("extra") != "forbid" or not config.get("frozen"):
        raise RegistrationError(
            cls.__qualname__, "events are frozen and refuse unknown fields: keep "
            "EventBase's model_config (frozen=True, extra='forbid')")
    builtin = _BUILTIN.get(name)
    if builtin is not None and builtin is not cls:
        raise RegistrationError(
            cls.__qualname__, f"event type {name!r} is a built-in type "
            f"({builtin.__qualname__}); choose another name, e.g. with the application's "
            "prefix")
    other = _REGISTERED.get(name)
    if other is not None and other is not cls and _signature(other) != _signature(cls):
        raise RegistrationError(
            cls.__qualname__, f"event type {name!r} is already registered by "
            f"{other.__module__}.{other.__qualname__} with other fields; unregister it first")
    return name


def register_event_types(*classes: type[EventBase]) -> None:
    """Add the application's event models to the vocabulary.

    Each is an :class:`~policykit.EventBase` subclass with a ``type: Literal["name"]``
    field. All are checked before any is added (a refused one adds none), raising
    :class:`~policykit.errors.RegistrationError`. Registering the same class again does
    nothing; a class with the same name and the same fields (a reloaded module) replaces it.
    """
    checked: dict[str, type[EventBase]] = {}
    for cls in classes:
        name = _check(cls)
        seen = checked.get(name)
        if seen is not None and seen is not cls:
            raise RegistrationError(cls.__qualname__, f"event type {name!r} is given twice "
                                    f"(also by {seen.__qualname__})")
        checked[name] = cls
    added = {n: c for n, c in checked.items() if n not in _BUILTIN and _REGISTERED.get(n) is not c}
    if not added:
        return
    _REGISTERED.update(added)
    _changed()


def unregister_event_types(*types: type[EventBase] | str) -> None:
    """Remove registered event types (given as models or names); none given: all of them.

    A name that is not registered raises :class:`~policykit.errors.RegistrationError`
    (built-in types cannot be removed)."""
    names: list[str] = []
    for t in types:
        name = t if isinstance(t, str) else _type_name(t) if isinstance(t, type) and \
            issubclass(t, EventBase) else None
        if name is None or name not in _REGISTERED or (
                not isinstance(t, str) and _REGISTERED[name] is not t):
            label = t if isinstance(t, str) else getattr(t, "__qualname__", repr(t))
            problem = ("a built-in event type cannot be unregistered" if name in _BUILTIN
                       else "not a registered event type")
            raise RegistrationError(str(label), problem, call="unregister_event_types",
                                    suggestion=nearest(name, _REGISTERED) if name else None)
        names.append(name)
    if not types:
        names = list(_REGISTERED)
    if not names:
        return
    for name in names:
        _REGISTERED.pop(name, None)
    _changed()


def registered_event_types() -> dict[str, type[EventBase]]:
    """The application's registered types by name (a copy; built-in types excluded)."""
    return dict(_REGISTERED)


@contextmanager
def event_types(*classes: type[EventBase]) -> Iterator[None]:
    """Register ``classes`` for the ``with`` block only (tests): the ones this call added
    are removed on the way out, even when the block raises."""
    before = dict(_REGISTERED)
    register_event_types(*classes)
    try:
        yield
    finally:
        if before != _REGISTERED:
            _REGISTERED.clear()
            _REGISTERED.update(before)
            _changed()


def on_types_changed(listener: Callable[[], None]) -> None:
    """Call ``listener`` after every change of the vocabulary (EVENT_TYPES and the parser
    already updated). A module of another package that keeps tables computed from the event
    types when imported (the batch pipeline, the record readers, the testing strategies)
    registers how to recompute them here, rather than this module reaching into it.
    Library-internal."""
    _LISTENERS.append(listener)


_LISTENERS: list[Callable[[], None]] = []


def _changed() -> None:
    """Make the vocabulary the built-in types plus the registered ones, everywhere."""
    # EVENT_TYPES is one dict read by reference across the package: update it in place.
    for name in [n for n in EVENT_TYPES if n not in _BUILTIN]:
        del EVENT_TYPES[name]
    EVENT_TYPES.update(_REGISTERED)
    parsing._use_types(tuple(_REGISTERED.values()))
    # What other modules computed from EVENT_TYPES when imported (a module imported later
    # computes from the new vocabulary).
    for listener in _LISTENERS:
        listener()


#: The entry point group installed packages register their event models in: each entry
#: point names an EventBase subclass, an iterable of them, or a callable returning either.
EVENTS_GROUP = "policykit.events"


def _entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group`` (a seam for tests)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def load_event_plugins() -> list[str]:
    """Register the event types installed packages declare in the ``policykit.events``
    entry point group; returns the names registered. A plugin that fails to load or gives
    something that is not event models is skipped with a warning naming it (an installed
    package's bug must not stop ``import policykit``); :func:`register_event_types`
    rules apply to the rest."""
    import warnings

    added: list[str] = []
    for ep in _entry_points(EVENTS_GROUP):
        try:
            found = ep.load()
            if callable(found) and not isinstance(found, type):
                found = found()
            classes = [found] if isinstance(found, type) else list(found)
            register_event_types(*classes)
        except Exception as exc:  # a third party's code: any failure is that plugin's
            warnings.warn(f"policykit: event plugin {ep.name!r} ({ep.value}) was not loaded: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            continue
        added += [_type_name(c) for c in classes]
    return added
