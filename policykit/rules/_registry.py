"""The rule shapes a policy file may use: the built-in ones and the ones an application or an
installed package registers.

:data:`SHAPES` is one dict, updated in place, so every reader (the policy loader and its
"did you mean", ``policykit schema policy``, the shape reference) sees the registered shapes
as it sees the built-in ones.
"""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any, Literal, get_args, get_origin

from ..errors import ShapeRegistrationError, nearest
from ._base import RuleSpec
from .cap import CapSpec
from .deadline import DeadlineSpec
from .forbidden import ForbiddenSpec
from .gap import GapSpec
from .ladder import LadderSpec
from .precondition import PreconditionSpec
from .rate import RateSpec
from .recurrence import RecurrenceSpec
from .tariff import TariffSpec

__all__ = [
    "SHAPES",
    "SHAPES_GROUP",
    "ShapeRegistrationError",
    "load_shape_plugins",
    "register_shape",
    "registered_shapes",
    "unregister_shape",
]

_BUILTIN: dict[str, type[RuleSpec]] = {
    cls.model_fields["shape"].default: cls
    for cls in (
        CapSpec,
        DeadlineSpec,
        GapSpec,
        PreconditionSpec,
        RateSpec,
        LadderSpec,
        ForbiddenSpec,
        RecurrenceSpec,
        TariffSpec,
    )
}
#: The registered shapes, in registration order.
_REGISTERED: dict[str, type[RuleSpec]] = {}

SHAPES: dict[str, type[RuleSpec]] = dict(_BUILTIN)
"""The ``shape`` name used in policy files -> its model: the built-in shapes, then the
registered ones."""

#: The entry point group installed packages register their shapes in: each entry point's
#: name is the shape's name and its value a RuleSpec subclass.
SHAPES_GROUP = "policykit.shapes"

_NAME = re.compile(r"^[a-z][a-z0-9_.-]{0,63}$")




def _label(cls: Any) -> str:
    return str(getattr(cls, "__qualname__", None) or repr(cls))


def _shape_name(cls: Any) -> str:
    """The name of ``cls``'s shape, when ``cls`` may be registered; else the error."""
    if not isinstance(cls, type) or not issubclass(cls, RuleSpec):
        raise ShapeRegistrationError(
            _label(cls), f"got {type(cls).__name__}, expected a subclass of "
            "policykit.rules.RuleSpec")
    if cls is RuleSpec:
        raise ShapeRegistrationError("RuleSpec", "the base itself is no shape; subclass it "
                                     "with a shape: Literal['name'] = 'name' field")
    field = cls.model_fields.get("shape")
    args = get_args(field.annotation) if field is not None else ()
    if field is None or get_origin(field.annotation) is not Literal or len(args) != 1 \
            or not isinstance(args[0], str) or field.default != args[0]:
        raise ShapeRegistrationError(
            cls.__qualname__, f"its 'shape' field is {getattr(field, 'annotation', None)!r} "
            f"with default {getattr(field, 'default', None)!r}, expected a Literal of one "
            "string with that string as default, such as shape: Literal['threshold'] = "
            "'threshold'")
    name: str = args[0]
    if not _NAME.match(name):
        raise ShapeRegistrationError(
            cls.__qualname__, f"shape name {name!r}: expected 1 to 64 characters, lower-case "
            "letters, digits, '_', '-' or '.', starting with a letter")
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise ShapeRegistrationError(cls.__qualname__, f"it does not implement {missing} "
                                     "(the method building the rule's RuleRuntime)")
    builtin = _BUILTIN.get(name)
    if builtin is not None and builtin is not cls:
        raise ShapeRegistrationError(
            cls.__qualname__, f"shape {name!r} is a built-in shape ({builtin.__qualname__}); "
            "choose another name")
    other = _REGISTERED.get(name)
    if other is not None and other is not cls and (
            other.__module__, other.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ShapeRegistrationError(
            cls.__qualname__, f"shape {name!r} is already registered by "
            f"{other.__module__}.{other.__qualname__}; unregister it first")
    return name


def register_shape(cls: type[RuleSpec]) -> type[RuleSpec]:
    """Make ``cls`` (a :class:`RuleSpec` subclass with a ``shape: Literal["name"] = "name"``
    field and a ``runtime`` method) a rule shape policy files may use; returns ``cls``, so
    it also works as a class decorator.

    Raises :class:`ShapeRegistrationError` (a :class:`~policykit.errors.RegistrationError`)
    for anything else, for the name of a built-in shape, or for a name another class holds.
    Registering the same class again does nothing; a class of the same module and name (a
    reloaded module) replaces it."""
    name = _shape_name(cls)
    if name in _BUILTIN or _REGISTERED.get(name) is cls:
        return cls
    _REGISTERED[name] = cls
    _changed()
    return cls


def unregister_shape(*shapes: type[RuleSpec] | str) -> None:
    """Remove registered shapes (given as classes or names); none given: all of them.
    A name that is not registered raises :class:`ShapeRegistrationError` (built-in shapes
    cannot be removed)."""
    names: list[str] = []
    for s in shapes:
        if isinstance(s, str):
            name: str | None = s
        else:
            name = next((n for n, c in _REGISTERED.items() if c is s), None)
        if name is None or name not in _REGISTERED:
            label = s if isinstance(s, str) else _label(s)
            problem = ("a built-in shape cannot be unregistered" if name in _BUILTIN
                       else "not a registered shape")
            raise ShapeRegistrationError(
                str(label), problem, call="unregister_shape",
                suggestion=nearest(name, _REGISTERED) if name else None)
        names.append(name)
    if not shapes:
        names = list(_REGISTERED)
    if not names:
        return
    for name in names:
        _REGISTERED.pop(name, None)
    _changed()


def registered_shapes() -> dict[str, type[RuleSpec]]:
    """The registered shapes by name (a copy; built-in shapes excluded)."""
    return dict(_REGISTERED)


def _changed() -> None:
    """Make :data:`SHAPES` the built-in shapes plus the registered ones, everywhere."""
    SHAPES.clear()
    SHAPES.update(_BUILTIN)
    SHAPES.update(_REGISTERED)
    schema = sys.modules.get("policykit._schema")
    if schema is not None:  # the policy schema lists the shapes: computed once, kept
        schema.shapes_changed()


def _entry_points(group: str) -> list[Any]:
    """The installed entry points of ``group`` (a seam for tests)."""
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def load_shape_plugins() -> list[str]:
    """Register the shapes installed packages declare in the ``policykit.shapes`` entry
    point group (name -> RuleSpec subclass); returns the names registered. A plugin that
    fails to load, gives no shape, or whose entry point name is not its shape's name is
    skipped with a RuntimeWarning naming it: an installed package's bug must not stop
    ``import policykit``."""
    import warnings

    added: list[str] = []
    for ep in _entry_points(SHAPES_GROUP):
        try:
            cls = ep.load()
            name = _shape_name(cls)
            if name != ep.name:
                raise ShapeRegistrationError(
                    _label(cls), f"the entry point is named {ep.name!r} but the class's "
                    f"shape is {name!r}; name the entry point after the shape")
            register_shape(cls)
        except Exception as exc:  # a third party's code: any failure is that plugin's
            warnings.warn(f"policykit: shape plugin {ep.name!r} ({ep.value}) was not loaded: "
                          f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
            continue
        added.append(name)
    return added
