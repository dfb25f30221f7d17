"""The one module of policykit that touches durable_rules.

durable-rules 2.0.28 is a Rete engine in C with a thin Python wrapper. It is fast and it is
the engine policykit is specified with, but its sharp edges are many (the ones measured are
in the durable-rules section of ``docs/architecture.md``). This module lets only the
constructs measured safe reach it, and keeps every quirk behind a small typed API:

* :class:`RulesetSpec` is a declarative description of a ruleset. It can express exactly
  three things: conditions that test message fields for *equality* with a literal,
  equality *joins* between messages on key fields, and ``none(...)`` (:class:`NoMatch`) as the
  *last* condition of a rule. A comparison inside a join (a SIGSEGV when false), ``none()``
  in the middle (silently ignored), ``or``/``and`` mix-ups and text-vs-number comparisons
  cannot be written down; trying gives a :class:`RulesetSpecError` that says why.
* Every message kind declares its lifetime: ``"transient"`` events are discarded when
  nothing completes on their arrival (the adapter adds a lowest-priority sink rule),
  ``"held"`` events wait in joins until a rule consumes them or :meth:`DurableRuleset.purge`
  removes them, ``"fact"`` kinds are asserted and stay until retracted. So nothing
  accumulates unseen: :meth:`DurableRuleset.pending_count` tells what is still stored.
* Values are normalised before they reach the engine (:func:`normalise`): only ``int`` and
  ``str`` ever do, each field keeps one type per ruleset, no float in exponent form, no more
  than :data:`MAX_FIELDS` fields.
* :class:`DurableRuleset` owns one private ``durable.engine.Host`` per shard, whose timer
  threads are never started, under a ruleset name no one else uses; ``durable.lang`` (and its
  process-wide registry) is never touched. Actions never raise: they append plain dicts to
  an adapter-owned list that :meth:`DurableRuleset.drain` hands out in firing order.
  ``close()`` deletes the session state and the C ruleset (without that, 1,000
  create/destroy cycles leak ~190-340 MiB). durable's ``delete_state`` crashes the process
  (SIGSEGV, every time) on a session where no action has ever run, so the adapter opens
  each session with a message that an adapter rule consumes.
* Every call into durable_rules runs under one process-wide ``RLock``: the C module keeps
  process-wide tables and the wrapper is not thread-safe.
* durable_rules is imported lazily, the first time a ruleset is built or
  :func:`durable_available` is called, never when policykit is imported. On an interpreter
  where it cannot load (Python 3.13+: ``undefined symbol: PyEval_CallObject``) you get
  :class:`DurableUnavailable`, which says why and what to do.

Example (the deadline shape: a ``trigger`` must be followed by a ``fulfil`` before the
Python-side clock posts the ``deadline`` for the same key)::

    spec = RulesetSpec(
        kinds={"trigger": "held", "fulfil": "held", "deadline": "transient"},
        partition_keys=("key",),
        rules=(
            Rule("late", (
                Match("a", "trigger"),
                Match("d", "deadline", (FieldJoin("key", "a"),)),
                NoMatch("fulfil", (FieldJoin("key", "a"),)),
            )),
            Rule("on_time", (
                Match("a", "trigger"),
                Match("d", "deadline", (FieldJoin("key", "a"),)),
                Match("f", "fulfil", (FieldJoin("key", "a"),)),
            ), priority=1, emit=False),
        ),
    )
    with DurableRuleset("sla", spec) as rs:
        rs.post({"kind": "trigger", "key": "T-1"})
        rs.post({"kind": "deadline", "key": "T-1"})
        rs.drain()   # [{'rule': 'late', 'matched': {'a': {...}, 'd': {...}}}]

Limits, on purpose:

* One session id (sid) per shard: keys inside the messages partition the work, so the
  engine's cap of 1,024 live sids per ruleset never matters. ``shards=N`` spreads keys over
  N independent rulesets by a stable hash of the partition keys.
* Events are consumed by the first rule (lowest ``priority`` value) that completes on them;
  facts fire every rule they complete, once.
* ``post_many`` posts one message at a time (durable's ``post_batch`` is not atomic: on an
  unhandled message it keeps the others asserted but runs no action, and it fires in an
  order unrelated to the batch). ``assert_facts``/``retract_facts`` do batch: one C call
  per shard, whose actions the adapter runs itself (so a fact matching nothing does not
  hold back the others' firings); their firings come in the engine's order.
* No durable_rules timer, lease or wall-clock feature is ever used: time travels as messages.
  (durable still reads the wall clock for one thing: an action taking over 10 s is treated
  as abandoned. Adapter actions take microseconds.)
* Every waiting message costs ~8-10 KiB inside durable (20,000 waiting triggers: ~170 MiB):
  purge closed keys.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import difflib
import itertools
import json
import math
import re
import sys
import threading
import uuid
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias, TypedDict

from ..errors import (
    DurableActionError,
    DurableAdapterError,
    DurableCapacityError,
    DurableEngineError,
    DurableUnavailable,
    MessageError,
    ParameterError,
    RulesetClosedError,
    RulesetSpecError,
)

__all__ = [
    "MAX_FIELDS",
    "DurableActionError",
    "DurableAdapterError",
    "DurableCapacityError",
    "DurableEngineError",
    "DurableRuleset",
    "DurableUnavailable",
    "FieldEq",
    "FieldJoin",
    "FieldType",
    "Firing",
    "JSONScalar",
    "Lifetime",
    "Match",
    "MessageError",
    "NoMatch",
    "Rule",
    "RulesetClosedError",
    "RulesetSpec",
    "RulesetSpecError",
    "RulesetState",
    "durable_available",
    "normalise",
    "normalise_message",
    "reap_abandoned",
]

JSONScalar: TypeAlias = str | int
"""What reaches durable_rules: after :func:`normalise`, every value is an ``int`` or a ``str``."""

FieldType = Literal["int", "str"]
Lifetime = Literal["transient", "held", "fact"]

#: durable_rules rejects a message of 255 or more properties (error 302); the adapter adds two
#: (``id`` and ``sid``), so a message may carry at most 252 fields of its own.
MAX_FIELDS: Final = 252
_MAX_PRIORITY: Final = 1_000_000
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_FLOAT_EXACT: Final = 2**53
_EPOCH: Final = _dt.datetime(1970, 1, 1, tzinfo=_dt.UTC)
_MICROSECOND: Final = _dt.timedelta(microseconds=1)
_SID: Final = "0"
_RESERVED_FIELDS: Final = frozenset({"id", "sid"})
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_PURGE_PREFIX: Final = "$purge:"
_OPEN_KIND: Final = "$open"
_STATE_FORMAT: Final = "policykit.durable-adapter/1"


# --------------------------------------------------------------------------------------------
# Lazy import


@dataclass(frozen=True)
class _Durable:
    engine: Any  # the durable.engine module
    native: Any  # the durable_rules_engine C module
    host_cls: Any  # durable.engine.Host without timer threads
    not_handled: type[BaseException]
    observed: type[BaseException]


_IMPORT_LOCK = threading.Lock()
_durable: _Durable | None = None
_durable_error: str | None = None


def _unavailable_message(exc: BaseException) -> str:
    version = ".".join(str(part) for part in sys.version_info[:3])
    return (
        f"durable_rules cannot be imported on Python {version}: "
        f"{type(exc).__name__}: {exc}. "
        "durable-rules 2.0.28 (the PyPI release) ships no wheels, builds a C extension, and "
        "fails to load on Python 3.13+ ('undefined symbol: PyEval_CallObject'); the fix is "
        "upstream but unreleased. Use backend='native' (the reference evaluator: same "
        "decisions, no C engine), or run on Python 3.11/3.12 with "
        "'pip install policykit[durable]' (needs a C compiler), or install a durable-rules "
        "build that includes the upstream fix."
    )


def _no_timers(self: Any) -> None:
    """Replaces ``Host._run``, which starts two timer threads that never stop."""


def _import_durable() -> _Durable:
    global _durable, _durable_error
    with _IMPORT_LOCK:
        if _durable is not None:
            return _durable
        if _durable_error is not None:
            raise DurableUnavailable(_durable_error)
        try:
            import durable.engine as engine  # type: ignore[import-untyped,unused-ignore]
            import durable_rules_engine as native  # type: ignore[import-not-found]
        except Exception as exc:  # ImportError, OSError, a broken build: all mean "unusable"
            _durable_error = _unavailable_message(exc)
            raise DurableUnavailable(_durable_error) from exc
        host_cls = type(
            "_QuietHost",
            (engine.Host,),
            {"_run": _no_timers, "__doc__": "A durable Host that starts no threads."},
        )
        _durable = _Durable(
            engine=engine,
            native=native,
            host_cls=host_cls,
            not_handled=engine.MessageNotHandledException,
            observed=engine.MessageObservedException,
        )
        return _durable


def durable_available() -> tuple[bool, str | None]:
    """``(True, None)`` if durable_rules imports here, else ``(False, why and what to do)``.

    The import is attempted once, on the first call (never at policykit import time)."""
    try:
        _import_durable()
    except DurableUnavailable as exc:
        return False, str(exc)
    return True, None


# --------------------------------------------------------------------------------------------
# Values


def normalise(value: object, *, decimal_scale: int = 2) -> JSONScalar | None:
    """The engine form of one value: an ``int``, a ``str``, or ``None`` (field dropped).

    * ``None`` → ``None``: the field is left out of the message.
    * ``bool`` → ``0`` / ``1``; ``int`` (and ``IntEnum``) → ``int``, within int64.
    * ``str`` (and ``str`` enums) → plain ``str``; ``date`` → ``"YYYY-MM-DD"``.
    * time-zone-aware ``datetime`` (pendulum too) → epoch microseconds (``int``);
      a naive one is rejected: its instant is ambiguous.
    * ``Decimal`` → integer minor units at ``decimal_scale`` (``Decimal("50.00")`` →
      ``5000``); rejected if not exact (``Decimal("0.001")`` at scale 2).
    * ``float`` → ``int`` when it is a whole number below 2**53; otherwise rejected (equality
      on binary fractions is unreliable and durable_rules chokes on ``1e-07``-style text).

    Anything else raises :class:`MessageError`. Only equality reaches the engine, so these
    forms need to be exact, not ordered like the originals (dates-as-text are both anyway).
    """
    if type(value) is str:  # the common cases first
        return value
    if type(value) is int:
        return _check_int(value, value)
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return _check_int(int(value), value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, float):
        if math.isfinite(value) and value.is_integer() and abs(value) <= _FLOAT_EXACT:
            return int(value)
        raise MessageError(
            f"float {value!r} is not accepted: only whole numbers below 2**53 are; pass an "
            "int, or a Decimal (sent as integer minor units), or decide the comparison in "
            "Python and send its outcome"
        )
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise MessageError(f"Decimal {value} is not finite")
        if isinstance(decimal_scale, bool) or not isinstance(decimal_scale, int) or not (
            0 <= decimal_scale <= 18
        ):
            raise MessageError(f"decimal_scale must be an int in 0..18, got {decimal_scale!r}")
        minor = Fraction(value) * 10**decimal_scale
        if minor.denominator != 1:
            raise MessageError(
                f"Decimal {value} is not a whole number of minor units at scale "
                f"{decimal_scale} (1 unit = 10**-{decimal_scale}); round it first"
            )
        return _check_int(minor.numerator, value)
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise MessageError(
                f"naive datetime {value.isoformat()} has no time zone: attach one (the "
                "policy calendar's), so it names one instant"
            )
        delta = _dt.datetime.__sub__(value, _EPOCH)  # base method: exact, whatever subclass
        return _check_int(delta // _MICROSECOND, value)
    if isinstance(value, _dt.date):
        return _dt.date.isoformat(value)
    raise MessageError(
        f"unsupported value {value!r} of type {type(value).__name__}: messages are flat and "
        "take None, bool, int, str, whole float, Decimal, date or aware datetime"
    )


def _check_int(number: int, original: object) -> int:
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise MessageError(f"{original!r} is outside the 64-bit integer range of the engine")
    return number


_GOOD_NAMES: set[str] = set()


def _check_field_name(name: object, where: str) -> str:
    if isinstance(name, str) and name in _GOOD_NAMES:
        return name
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise MessageError(
            f"{where}: field name {name!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*); "
            "messages are flat, without dots or '$'"
        )
    if name in _RESERVED_FIELDS:
        raise MessageError(
            f"{where}: field name {name!r} is reserved by the adapter (message identity and "
            "session id); use another name"
        )
    if len(_GOOD_NAMES) < 10_000:
        _GOOD_NAMES.add(name)
    return name


def normalise_message(
    message: Mapping[str, object], *, decimal_scale: int = 2
) -> dict[str, JSONScalar]:
    """A flat message in engine form: names checked, values :func:`normalise`-d, ``None``
    fields dropped, at most :data:`MAX_FIELDS` fields."""
    if not isinstance(message, Mapping):
        raise MessageError(f"a message is a mapping of field to value, got {message!r}")
    out: dict[str, JSONScalar] = {}
    for name, raw in message.items():
        _check_field_name(name, "message")
        try:
            value = normalise(raw, decimal_scale=decimal_scale)
        except MessageError as exc:
            raise MessageError(f"field {name!r}: {exc}") from None
        if value is not None:
            out[name] = value
    if len(out) > MAX_FIELDS:
        raise MessageError(
            f"message has {len(out)} fields; durable_rules accepts at most {MAX_FIELDS} "
            "(255 properties fail with error 302, and the adapter adds 'id' and 'sid')"
        )
    return out


def _type_of(value: JSONScalar) -> FieldType:
    return "str" if isinstance(value, str) else "int"


# --------------------------------------------------------------------------------------------
# The declarative ruleset


def _spec_error(where: str, problem: str) -> RulesetSpecError:
    return RulesetSpecError(f"{where}: {problem}")


def _name(value: object, where: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _spec_error(where, f"{what} {value!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return value


def _suggest(value: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


_EQUALITY_ONLY: Final = (
    "only equality ('==') reaches durable_rules: it orders every string above every number "
    "and compares ISO timestamps as text. Decide the comparison in Python before posting and "
    "send its outcome as a discrete field (late: 1, window: 'P1#3')"
)
_JOIN_EQUALITY_ONLY: Final = (
    "only equality joins reach durable_rules: a comparison inside a join "
    "(m.now > c.i.due) crashes the process with SIGSEGV whenever it is false. Decide the "
    "comparison in Python before posting and join on the outcome (a key or a bucket label)"
)


@dataclass(frozen=True, slots=True)
class FieldEq:
    """``m.<field> == <value>``: a message field equals a literal (normalised like messages)."""

    field: str
    value: object
    op: str = "=="

    def __post_init__(self) -> None:
        where = f"FieldEq({self.field!r})"
        _name(self.field, where, "field")
        if self.field in _RESERVED_FIELDS:
            raise _spec_error(where, f"field {self.field!r} is reserved by the adapter")
        if self.op != "==":
            raise _spec_error(where, f"operator {self.op!r} rejected: {_EQUALITY_ONLY}")
        if self.value is None:
            raise _spec_error(where, "cannot test for None: None fields are dropped")


@dataclass(frozen=True, slots=True)
class FieldJoin:
    """``m.<field> == c.<alias>.<other_field>``: equality with a field of an earlier match.

    ``other_field`` defaults to ``field``."""

    field: str
    alias: str
    other_field: str | None = None
    op: str = "=="

    def __post_init__(self) -> None:
        where = f"FieldJoin({self.field!r}, {self.alias!r})"
        _name(self.field, where, "field")
        _name(self.alias, where, "alias")
        _name(self.target_field, where, "other_field")
        if {self.field, self.target_field} & _RESERVED_FIELDS:
            raise _spec_error(where, "fields 'id' and 'sid' are reserved by the adapter")
        if self.op != "==":
            raise _spec_error(where, f"operator {self.op!r} rejected: {_JOIN_EQUALITY_ONLY}")

    @property
    def target_field(self) -> str:
        return self.field if self.other_field is None else self.other_field


Test: TypeAlias = FieldEq | FieldJoin


def _tests(value: object, where: str) -> tuple[Test, ...]:
    if isinstance(value, FieldEq | FieldJoin):
        value = (value,)
    if not isinstance(value, tuple | list):
        raise _spec_error(where, f"tests must be a tuple of FieldEq/FieldJoin, got {value!r}")
    for item in value:
        if not isinstance(item, FieldEq | FieldJoin):
            raise _spec_error(where, f"{item!r} is not a FieldEq or FieldJoin")
    return tuple(value)


@dataclass(frozen=True, slots=True)
class Match:
    """A positive condition: a message of ``kind`` passing every test, bound to ``alias``."""

    alias: str
    kind: str
    tests: tuple[Test, ...] = ()

    def __post_init__(self) -> None:
        where = f"Match({self.alias!r}, {self.kind!r})"
        _name(self.alias, where, "alias")
        object.__setattr__(self, "tests", _tests(self.tests, where))


@dataclass(frozen=True, slots=True)
class NoMatch:
    """``none(...)``: no message of ``kind`` passes the tests. Only as a rule's last condition
    (durable_rules silently ignores ``none()`` anywhere else)."""

    kind: str
    tests: tuple[Test, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "tests", _tests(self.tests, f"NoMatch({self.kind!r})"))


Condition: TypeAlias = Match | NoMatch


@dataclass(frozen=True, slots=True)
class Rule:
    """Conditions joined by "all of". ``priority``: among rules completing on one event, the
    lowest value fires (and consumes the event); 0..1,000,000 (durable misorders negatives).
    ``emit=False``: the rule only consumes its messages and reports nothing."""

    name: str
    conditions: tuple[Condition, ...]
    priority: int = 0
    emit: bool = True

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name.startswith("$"):
            raise _spec_error(where, "a rule name is a non-empty string not starting with '$'")
        if len(self.name) > 200:
            raise _spec_error(where, "rule names are at most 200 characters")
        conditions = self.conditions
        if isinstance(conditions, Match | NoMatch):
            conditions = (conditions,)
        if not isinstance(conditions, tuple | list) or not conditions:
            raise _spec_error(where, "needs a non-empty tuple of Match/NoMatch conditions")
        conditions = tuple(conditions)
        object.__setattr__(self, "conditions", conditions)
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not (
            0 <= self.priority <= _MAX_PRIORITY
        ):
            raise _spec_error(
                where,
                f"priority {self.priority!r} must be an int in 0..{_MAX_PRIORITY} "
                "(lower fires first; durable_rules misorders negative priorities)",
            )
        if not isinstance(self.emit, bool):
            raise _spec_error(where, f"emit must be a bool, got {self.emit!r}")
        aliases: set[str] = set()
        for index, cond in enumerate(conditions):
            cwhere = f"{where}, condition {index}"
            if isinstance(cond, NoMatch):
                if index != len(conditions) - 1:
                    raise _spec_error(
                        cwhere,
                        "NoMatch (none()) is only safe as the LAST condition: durable_rules "
                        "silently ignores it anywhere else and gives wrong answers; move it "
                        "last, or split the rule",
                    )
                if index == 0:
                    raise _spec_error(
                        cwhere, "a rule needs at least one Match before its NoMatch"
                    )
            elif isinstance(cond, Match):
                if cond.alias in aliases:
                    raise _spec_error(cwhere, f"alias {cond.alias!r} is bound twice")
            else:
                raise _spec_error(cwhere, f"{cond!r} is not a Match or NoMatch")
            seen: set[str] = set()
            for test in cond.tests:
                if test.field in seen:
                    raise _spec_error(cwhere, f"field {test.field!r} is tested twice")
                seen.add(test.field)
                if isinstance(test, FieldJoin) and test.alias not in aliases:
                    raise _spec_error(
                        cwhere,
                        f"FieldJoin refers to alias {test.alias!r}, which no earlier Match "
                        f"binds (earlier: {sorted(aliases) or 'none'})"
                        + _suggest(test.alias, aliases),
                    )
            if isinstance(cond, Match):
                aliases.add(cond.alias)

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(c.alias for c in self.conditions if isinstance(c, Match))


class _Types:
    """Field name → type class (joined fields share one), and each class's known type."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}
        self.known: dict[str, FieldType] = {}
        self.origin: dict[str, str] = {}

    def find(self, name: str) -> str:
        root = name
        while self.parent.get(root, root) != root:
            root = self.parent[root]
        while name != root:  # path compression
            self.parent[name], name = root, self.parent[name]
        return root

    def union(self, a: str, b: str, where: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        ta, tb = self.known.get(ra), self.known.get(rb)
        if ta is not None and tb is not None and ta != tb:
            raise _spec_error(
                where,
                f"joins {a!r} ({ta}, from {self.origin[ra]}) with {b!r} ({tb}, from "
                f"{self.origin[rb]}): durable_rules would compare text with a number "
                "without any error",
            )
        self.parent[rb] = ra
        if ta is None and tb is not None:
            self.known[ra] = tb
            self.origin[ra] = self.origin[rb]

    def declare(self, name: str, ftype: FieldType, origin: str) -> None:
        root = self.find(name)
        have = self.known.get(root)
        if have is not None and have != ftype:
            raise _spec_error(
                origin,
                f"field {name!r} is {ftype} here but {have} in {self.origin[root]}: one field "
                "keeps one JSON type in a ruleset (durable_rules compares text and numbers "
                "without error)",
            )
        if have is None:
            self.known[root] = ftype
            self.origin[root] = origin


@dataclass(frozen=True)
class _Compiled:
    definition: dict[str, dict[str, Any]]  # rule name → durable rule JSON, without 'run'
    actions: dict[str, tuple[str, tuple[str, ...]]]  # rule name → (action kind, aliases)
    field_class: dict[str, str]  # field → its type class
    class_types: dict[str, FieldType]  # class → type known from the spec
    held: tuple[str, ...]
    facts: tuple[str, ...]


@dataclass(frozen=True)
class RulesetSpec:
    """A whole ruleset, validated on construction (:class:`RulesetSpecError` if unsafe).

    * ``rules``: the user rules.
    * ``kinds``: every message kind and its lifetime — ``"transient"`` (an event discarded
      when no rule completes on its arrival, so it never waits), ``"held"`` (an event that
      waits in joins until a rule consumes it or :meth:`DurableRuleset.purge` removes it),
      ``"fact"`` (asserted, stays until retracted).
    * ``partition_keys``: fields every message carries that partition the work (a ticket
      id, an employee id): used by ``purge`` and to route over ``shards``.
    * ``field_types``: optional declared types (``"int"``/``"str"``); the rest are inferred
      from literals and from the first message carrying the field.
    * ``kind_field``: the field naming a message's kind; ``decimal_scale``: minor units of
      ``Decimal`` values.
    """

    rules: tuple[Rule, ...]
    kinds: Mapping[str, Lifetime] = field(hash=False)
    partition_keys: tuple[str, ...] = ()
    field_types: Mapping[str, FieldType] = field(
        default_factory=lambda: MappingProxyType({}), hash=False
    )
    kind_field: str = "kind"
    decimal_scale: int = 2
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        rules = self.rules
        if isinstance(rules, Rule):
            rules = (rules,)
        if not isinstance(rules, tuple | list):
            raise _spec_error("RulesetSpec", f"rules must be a tuple of Rule, got {rules!r}")
        object.__setattr__(self, "rules", tuple(rules))
        if not isinstance(self.kinds, Mapping):
            raise _spec_error("RulesetSpec", "kinds must map kind → lifetime")
        object.__setattr__(self, "kinds", MappingProxyType(dict(self.kinds)))
        object.__setattr__(self, "field_types", MappingProxyType(dict(self.field_types)))
        keys = self.partition_keys
        if isinstance(keys, str):
            keys = (keys,)
        object.__setattr__(self, "partition_keys", tuple(keys))
        object.__setattr__(self, "_compiled", self._compile())

    def definition(self) -> dict[str, dict[str, Any]]:
        """The durable_rules JSON definition (without actions), adapter rules included."""
        return json.loads(json.dumps(self._compiled.definition))  # type: ignore[no-any-return]

    # -- validation and compilation --------------------------------------------------------

    def _compile(self) -> _Compiled:
        where = "RulesetSpec"
        try:
            kind_field = _check_field_name(self.kind_field, "kind_field")
            for key in self.partition_keys:
                _check_field_name(key, "partition_keys")
            for name in self.field_types:
                _check_field_name(name, "field_types")
        except MessageError as exc:
            raise _spec_error(where, str(exc)) from None
        if kind_field in self.partition_keys:
            raise _spec_error(where, f"the kind field {kind_field!r} cannot be a partition key")
        if len(set(self.partition_keys)) != len(self.partition_keys):
            raise _spec_error(where, "partition_keys repeats a field")
        if isinstance(self.decimal_scale, bool) or not isinstance(self.decimal_scale, int) or not (
            0 <= self.decimal_scale <= 18
        ):
            raise _spec_error(where, f"decimal_scale {self.decimal_scale!r} must be in 0..18")
        if not self.rules:
            raise _spec_error(where, "a ruleset needs at least one rule")
        for kind, lifetime in self.kinds.items():
            if not isinstance(kind, str) or not kind or kind.startswith("$"):
                raise _spec_error(where, f"kind {kind!r}: kinds are non-empty, not starting '$'")
            if lifetime not in ("transient", "held", "fact"):
                raise _spec_error(
                    where, f"kind {kind!r}: lifetime {lifetime!r} is not transient/held/fact"
                )

        types = _Types()
        types.declare(kind_field, "str", "kind_field")
        for name, ftype in self.field_types.items():
            if ftype not in ("int", "str"):
                raise _spec_error(where, f"field_types[{name!r}] = {ftype!r}: use 'int'/'str'")
            types.declare(name, ftype, f"field_types[{name!r}]")

        definition: dict[str, dict[str, Any]] = {}
        actions: dict[str, tuple[str, tuple[str, ...]]] = {}
        positive: set[str] = set()
        patterns: dict[str, dict[str, list[dict[str, Any]]]] = {}  # held kind → literal tests
        names: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise _spec_error(where, f"{rule!r} is not a Rule")
            rwhere = f"rule {rule.name!r}"
            if rule.name in names:
                raise _spec_error(rwhere, "two rules have this name")
            names.add(rule.name)
            kinds_in_rule: dict[str, Lifetime] = {}
            conds: list[dict[str, Any]] = []
            for index, cond in enumerate(rule.conditions):
                cwhere = f"{rwhere}, condition {index}"
                lifetime = self._lifetime(cond.kind, cwhere)
                if isinstance(cond, NoMatch):
                    if lifetime == "transient":
                        raise _spec_error(
                            cwhere,
                            f"NoMatch on transient kind {cond.kind!r} is always true: a "
                            "transient message never stays; declare it 'held' or 'fact'",
                        )
                else:
                    positive.add(cond.kind)
                    kinds_in_rule[cond.alias] = lifetime
                    if lifetime == "transient" and "transient" in [
                        kinds_in_rule[a] for a in kinds_in_rule if a != cond.alias
                    ]:
                        raise _spec_error(
                            cwhere,
                            "joins two transient messages: each is discarded on arrival "
                            "unless a rule completes, so they can never meet; make one 'held'",
                        )
                expr = self._expression(cond, kind_field, types, cwhere)
                if lifetime == "held":
                    literal = [
                        term for term in expr.get("$and", [expr])
                        if not isinstance(next(iter(term.values())), dict)
                    ]
                    patterns.setdefault(cond.kind, {})[json.dumps(literal)] = literal
                if isinstance(cond, NoMatch):
                    label = "none"
                    while label in kinds_in_rule:
                        label = "_" + label
                    conds.append({f"{label}$not": expr})
                else:
                    conds.append({cond.alias: expr})
            rule_json: dict[str, Any] = {"all": conds}
            if rule.priority:
                rule_json["pri"] = rule.priority
            definition[rule.name] = rule_json
            actions[rule.name] = ("emit" if rule.emit else "silent", rule.aliases)

        for kind, lifetime in self.kinds.items():
            if lifetime == "held" and kind not in positive:
                raise _spec_error(
                    where,
                    f"held kind {kind!r} is consumed by no rule (only a Match consumes): it "
                    "would accumulate forever; add a rule, or declare it 'transient'/'fact'",
                )

        self._adapter_rules(definition, actions, kind_field, patterns)
        held = tuple(k for k, v in self.kinds.items() if v == "held")
        facts = tuple(k for k, v in self.kinds.items() if v == "fact")
        names_seen = set(types.parent) | set(types.known) | {kind_field}
        field_class = {name: types.find(name) for name in names_seen}
        return _Compiled(definition, actions, field_class, dict(types.known), held, facts)

    def _lifetime(self, kind: object, where: str) -> Lifetime:
        if not isinstance(kind, str) or kind not in self.kinds:
            raise _spec_error(
                where,
                f"kind {kind!r} is not declared in kinds ({sorted(self.kinds)})"
                + (_suggest(kind, self.kinds) if isinstance(kind, str) else ""),
            )
        return self.kinds[kind]

    def _expression(
        self, cond: Condition, kind_field: str, types: _Types, where: str
    ) -> dict[str, Any]:
        terms: list[dict[str, Any]] = [{kind_field: cond.kind}]
        for test in cond.tests:
            if test.field == kind_field:
                raise _spec_error(where, f"the kind field {kind_field!r} is set by 'kind'")
            if isinstance(test, FieldEq):
                try:
                    value = normalise(test.value, decimal_scale=self.decimal_scale)
                except MessageError as exc:
                    raise _spec_error(where, f"FieldEq({test.field!r}): {exc}") from None
                assert value is not None  # FieldEq rejects None
                types.declare(test.field, _type_of(value), f"{where} (FieldEq {test.field!r})")
                terms.append({test.field: value})
            else:
                types.union(test.field, test.target_field, where)
                if test.target_field == kind_field or test.field == kind_field:
                    raise _spec_error(where, "joins on the kind field are not supported")
                terms.append({test.field: {test.alias: test.target_field}})
        return terms[0] if len(terms) == 1 else {"$and": terms}

    def _adapter_rules(
        self,
        definition: dict[str, dict[str, Any]],
        actions: dict[str, tuple[str, tuple[str, ...]]],
        kind_field: str,
        patterns: dict[str, dict[str, list[dict[str, Any]]]],
    ) -> None:
        last = max(rule.priority for rule in self.rules) + 1
        # Opens a session: durable's delete_state crashes (SIGSEGV, every time) on a sid where
        # no action has ever run, so the adapter's first message on each sid fires this rule.
        definition[_OPEN_KIND] = {"all": [{"m": {kind_field: _OPEN_KIND}}], "pri": last}
        actions[_OPEN_KIND] = ("silent", ())
        for kind, lifetime in self.kinds.items():
            if lifetime == "transient":
                # Discards a transient message when no user rule completes on it.
                definition[f"$sink:{kind}"] = {"all": [{"m": {kind_field: kind}}], "pri": last}
                actions[f"$sink:{kind}"] = ("silent", ())
            elif lifetime == "held":
                # purge(): a '$purge:<kind>' message consumes one waiting message of the kind
                # with equal partition keys, or is itself discarded when none is left. The
                # waiting side repeats the literal tests of the user conditions on the kind,
                # so a message no user rule could use is still dropped, not stored.
                purge_kind = _PURGE_PREFIX + kind
                terms: list[dict[str, Any]] = [{kind_field: purge_kind}]
                terms += [{key: {"x": key}} for key in self.partition_keys]
                expr = terms[0] if len(terms) == 1 else {"$and": terms}
                found = list(patterns[kind].values())
                if any(len(literal) == 1 for literal in found):
                    found = [[{kind_field: kind}]]  # one test of the kind alone covers all
                for index, literal in enumerate(found):
                    waiting = literal[0] if len(literal) == 1 else {"$and": literal}
                    name = f"$purge:{kind}#{index}"
                    definition[name] = {"all": [{"x": waiting}, {"p": expr}]}
                    actions[name] = ("purged", ())
                definition[f"$purge-idle:{kind}"] = {
                    "all": [{"m": {kind_field: purge_kind}}],
                    "pri": last,
                }
                actions[f"$purge-idle:{kind}"] = ("silent", ())


# --------------------------------------------------------------------------------------------
# The live ruleset


class Firing(TypedDict):
    """One rule firing: the rule's name and, per alias, the matched message's fields
    (engine form, without the adapter's ``id``/``sid``)."""

    rule: str
    matched: dict[str, dict[str, JSONScalar]]


class RulesetState(TypedDict):
    """What :meth:`DurableRuleset.get_state` returns: plain JSON data."""

    format: str
    next_id: int
    field_types: dict[str, FieldType]
    facts: list[dict[str, JSONScalar]]
    events: list[dict[str, JSONScalar]]


class _Sink:
    """Where actions write. Owned by the adapter; actions hold it, never the ruleset."""

    __slots__ = ("errors", "firings", "purged")

    def __init__(self) -> None:
        self.firings: list[Firing] = []
        self.errors: list[str] = []
        self.purged = 0


def _strip(message: Mapping[str, Any]) -> dict[str, JSONScalar]:
    return {k: v for k, v in message.items() if k not in _RESERVED_FIELDS}


# A fact on its way into the engine: (its content key, the message as sent, with id and sid).
_Pending: TypeAlias = tuple[tuple[tuple[str, JSONScalar], ...], dict[str, JSONScalar]]


def _make_action(
    sink: _Sink, rule_name: str, kind: str, aliases: tuple[str, ...]
) -> Callable[[Any], None]:
    """A durable action that never raises and never writes ``c.s``."""

    def action(c: Any) -> None:
        _deliver(sink, rule_name, kind, aliases, c)

    return action


def _deliver(
    sink: _Sink, rule_name: str, kind: str, aliases: tuple[str, ...], source: Any
) -> None:
    """What every adapter action does with the messages a rule matched; never raises.
    ``source``: durable's Closure (its ``_m``), or the alias → message dict itself."""
    try:
        if kind == "emit":
            found = source if isinstance(source, dict) else source._m  # alias → message
            sink.firings.append(
                {"rule": rule_name, "matched": {a: _strip(found[a]) for a in aliases}}
            )
        elif kind == "purged":
            sink.purged += 1
    except BaseException as exc:  # an escaping exception would be swallowed into c.s
        with contextlib.suppress(BaseException):
            sink.errors.append(f"rule {rule_name!r}: {type(exc).__name__}: {exc}")


class _Shard:
    __slots__ = ("handle", "host", "name", "ruleset", "sids")

    def __init__(self, name: str, host: Any, ruleset: Any) -> None:
        self.name = name
        self.host = host
        self.ruleset = ruleset
        self.handle: int = ruleset._handle  # the C ruleset handle for delete_ruleset
        self.sids: set[str] = set()


class _Core:
    """Everything that must be torn down; never refers back to the DurableRuleset, so an
    abandoned ruleset can be collected and its core reaped."""

    def __init__(self, durable: _Durable) -> None:
        self.durable = durable
        self.shards: list[_Shard] = []
        self.sink = _Sink()
        self.closed = False

    def teardown(self) -> list[str]:
        """Delete every sid's state, then the C ruleset. Best effort; returns the failures."""
        problems: list[str] = []
        if self.closed:
            return problems
        self.closed = True
        native = self.durable.native
        for shard in self.shards:
            for sid in sorted(shard.sids):
                try:
                    native.delete_state(shard.handle, sid)
                except Exception as exc:  # a sid the engine never created: nothing to free
                    if "309" not in str(exc):
                        problems.append(f"delete_state({shard.name!r}, {sid!r}): {exc}")
            try:
                native.delete_ruleset(shard.handle)
            except Exception as exc:
                problems.append(f"delete_ruleset({shard.name!r}): {exc}")
            # Nothing may reach the freed handle again.
            shard.host._ruleset_directory.clear()
            shard.host._ruleset_list.clear()
            shard.sids.clear()
        self.shards.clear()
        return problems


#: One lock around every call into durable_rules, process-wide (the C module has global tables).
_ENGINE_LOCK: Final = threading.RLock()
_GRAVEYARD: list[_Core] = []
_NAMES = itertools.count(1)


def _bury(core: _Core) -> None:
    """weakref.finalize callback: defer the teardown to a well-defined moment."""
    _GRAVEYARD.append(core)


def reap_abandoned() -> int:
    """Tear down rulesets that were garbage-collected without ``close()``; returns how many.

    Called on every ruleset creation and close, so it rarely needs calling directly."""
    count = 0
    with _ENGINE_LOCK:
        while _GRAVEYARD:
            core = _GRAVEYARD.pop()
            core.teardown()
            count += 1
    return count


@contextlib.contextmanager
def _engine_call(what: str) -> Iterator[None]:
    try:
        yield
    except MemoryError as exc:
        raise DurableCapacityError(
            f"durable_rules could not allocate while {what} (it raises a bare MemoryError "
            "when a ruleset has 1,024 live session ids or the C heap is exhausted; this "
            "adapter uses one sid per shard, so the process is short of memory)"
        ) from exc
    except DurableAdapterError:
        raise
    except Exception as exc:
        raise DurableEngineError(
            f"durable_rules failed while {what}: {type(exc).__name__}: {exc}"
        ) from exc


class DurableRuleset:
    """One isolated ruleset (``shards`` of them, routed by partition-key hash), each on its
    own timer-less Host and under a unique name; every call runs under one RLock.

    Use as a context manager, or call :meth:`close`; a ruleset dropped without ``close`` is
    torn down on a later creation/close (:func:`reap_abandoned`)."""

    def __init__(self, name_prefix: str, spec: RulesetSpec, *, shards: int = 1) -> None:
        if not isinstance(name_prefix, str) or not _PREFIX_RE.match(name_prefix):
            raise ParameterError("name_prefix", name_prefix, "1-64 characters of [A-Za-z0-9_-]")
        if not isinstance(spec, RulesetSpec):
            raise TypeError(f"spec must be a RulesetSpec, got {type(spec).__name__}")
        if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= 1024:
            raise ParameterError("shards", shards, "an int in 1..1024")
        if shards > 1 and not spec.partition_keys:
            raise ParameterError(
                "shards", shards, "1 when the spec has no partition_keys to route messages by"
            )
        durable = _import_durable()
        reap_abandoned()
        self._spec = spec
        self._compiled = spec._compiled
        self._name = f"{name_prefix}-{next(_NAMES)}-{uuid.uuid4().hex[:12]}"
        self._core = _Core(durable)
        self._ids = itertools.count(1)
        self._class_types: dict[str, FieldType] = dict(self._compiled.class_types)
        self._facts: dict[str, tuple[_Shard, dict[str, JSONScalar]]] = {}
        self._fact_ids: dict[tuple[tuple[str, JSONScalar], ...], str] = {}
        self.unhandled = 0
        """Messages no rule could ever match (durable drops them; so does the adapter)."""
        with _ENGINE_LOCK:
            try:
                for index in range(shards):
                    self._core.shards.append(self._make_shard(f"{self._name}-s{index}"))
            except BaseException:
                self._core.teardown()
                raise
        self._finalizer = weakref.finalize(self, _bury, self._core)

    def _make_shard(self, name: str) -> _Shard:
        durable = self._core.durable
        rules: dict[str, dict[str, Any]] = {}
        for rule_name, rule_json in self._spec.definition().items():
            kind, aliases = self._compiled.actions[rule_name]
            rule_json["run"] = _make_action(self._core.sink, rule_name, kind, aliases)
            rules[rule_name] = rule_json
        with _engine_call(f"creating ruleset {name!r}"):
            host = durable.host_cls()
            host.register_rulesets({name: rules})
            ruleset = host.get_ruleset(name)
        shard = _Shard(name, host, ruleset)
        # durable.lang keeps a process-wide registry; this adapter never defines rulesets
        # through it, but make sure no entry of ours could linger there.
        lang = sys.modules.get("durable.lang")
        if lang is not None:
            lang._rulesets.pop(name, None)
        return shard

    # -- properties -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """The unique base name (shards are ``<name>-s<i>``)."""
        return self._name

    @property
    def spec(self) -> RulesetSpec:
        return self._spec

    @property
    def closed(self) -> bool:
        return self._core.closed

    @property
    def shards(self) -> int:
        return len(self._core.shards)

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self.shards} shard(s)"
        return f"<DurableRuleset {self._name} {state}>"

    def __enter__(self) -> DurableRuleset:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- messages ---------------------------------------------------------------------------

    def post(self, message: Mapping[str, object]) -> None:
        """Post one event (a ``transient`` or ``held`` kind). Actions run before it returns;
        :meth:`drain` collects their results."""
        self.post_many((message,))

    def post_many(self, messages: Iterable[Mapping[str, object]]) -> None:
        """Post events in order. All are validated first: on a bad one, none is posted."""
        prepared = [self._prepare(m, ("transient", "held"), "post") for m in messages]
        with _ENGINE_LOCK:
            self._check_open()
            self._commit_types(prepared)
            for message, _kind in prepared:
                self._send("post", self._route(message), self._with_id(message))

    def assert_fact(self, fact: Mapping[str, object]) -> str:
        """Assert a fact (a ``fact`` kind); returns its id. Facts are a set: asserting one
        equal to a live fact returns that fact's id and fires nothing."""
        message, _kind = self._prepare(fact, ("fact",), "assert_fact")
        content = tuple(sorted(message.items()))
        with _ENGINE_LOCK:
            self._check_open()
            live = self._fact_ids.get(content)
            if live is not None:
                return live
            self._commit_types([(message, _kind)])
            shard = self._route(message)
            stored = self._with_id(message)
            fact_id = str(stored["id"])
            if self._send("assert_fact", shard, stored):
                self._facts[fact_id] = (shard, stored)
                self._fact_ids[content] = fact_id
            return fact_id

    def retract_fact(self, fact: str | Mapping[str, object]) -> bool:
        """Retract a live fact, by the id :meth:`assert_fact` returned or by its content.
        Returns False if no such fact is live. Rules it blocked (``NoMatch``) may fire."""
        with _ENGINE_LOCK:
            self._check_open()
            if isinstance(fact, str):
                fact_id: str | None = fact
            else:
                message, _kind = self._prepare(fact, ("fact",), "retract_fact")
                fact_id = self._fact_ids.get(tuple(sorted(message.items())))
            if fact_id is None or fact_id not in self._facts:
                return False
            shard, stored = self._facts.pop(fact_id)
            self._fact_ids.pop(tuple(sorted(_strip(stored).items())), None)
            self._send("retract_fact", shard, stored)
            return True

    def assert_facts(self, facts: Iterable[Mapping[str, object]]) -> list[str]:
        """Assert many facts in one engine call per shard; returns their ids, in order.

        Each fact is treated as :meth:`assert_fact` would: all are validated first (on a bad
        one, none is asserted); a fact equal to a live one, or to an earlier one of the same
        batch, gets that fact's id and fires nothing; a fact no rule could match is not
        stored (and counted in :attr:`unhandled`). One difference: the firings of a batch
        come in the engine's order, not the facts' order, so give each fact a field to map
        its firings back by. A batch where some fact matches nothing also reads the shard's
        live facts once (O(live facts)) to learn which ones were stored. Per fact, batches
        of 32-256 cost about half of :meth:`assert_fact` plus :meth:`retract_fact`; much
        larger ones cost more again (measured on the standard pack, issue 8)."""
        prepared = [self._prepare(f, ("fact",), "assert_facts") for f in facts]
        with _ENGINE_LOCK:
            self._check_open()
            self._commit_types(prepared)
            ids: list[str] = []
            fresh: dict[tuple[tuple[str, JSONScalar], ...], str] = {}
            # id(shard) -> (shard, [(content, stored message)]), in first-seen order
            batches: dict[int, tuple[_Shard, list[_Pending]]] = {}
            for message, _kind in prepared:
                content = tuple(sorted(message.items()))
                fact_id = self._fact_ids.get(content) or fresh.get(content)
                if fact_id is None:
                    shard = self._route(message)
                    stored = self._with_id(message)
                    fact_id = fresh[content] = str(stored["id"])
                    batches.setdefault(id(shard), (shard, []))[1].append((content, stored))
                ids.append(fact_id)
            for shard, items in batches.values():
                try:
                    code = self._batch("assert_facts", shard, [s for _c, s in items])
                except BaseException:
                    # Some may be stored: keep the bookkeeping true to the engine if the
                    # engine can still tell, then report the original failure.
                    with contextlib.suppress(Exception):
                        self._record(shard, items, self._stored_ids(shard))
                    raise
                if code == 0:  # every fact was stored
                    self._record(shard, items, None)
                    continue
                stored_now = self._stored_ids(shard)
                self.unhandled += len(items) - self._record(shard, items, stored_now)
                if code == 2:  # fresh ids make this impossible; never leave it unsaid
                    raise DurableEngineError("assert_facts: durable_rules saw a message id twice")
            return ids

    def retract_facts(self, facts: Iterable[str]) -> int:
        """Retract live facts by the ids :meth:`assert_fact`/:meth:`assert_facts` returned,
        in one engine call per shard; returns how many were live (the rest are skipped, as
        :meth:`retract_fact` returns False for them). Rules they blocked may fire."""
        ids = list(facts)
        for fact_id in ids:  # validation first: on a bad one, nothing is retracted
            if not isinstance(fact_id, str):
                raise MessageError(f"retract_facts takes fact ids (str), got {fact_id!r}")
        with _ENGINE_LOCK:
            self._check_open()
            batches: dict[int, tuple[_Shard, list[dict[str, JSONScalar]]]] = {}
            count = 0
            for fact_id in ids:
                entry = self._facts.pop(fact_id, None)
                if entry is None:
                    continue
                shard, stored = entry
                self._fact_ids.pop(tuple(sorted(_strip(stored).items())), None)
                batches.setdefault(id(shard), (shard, []))[1].append(stored)
                count += 1
            for shard, messages in batches.values():
                self._batch("retract_facts", shard, messages)
            return count

    def purge(
        self, key: Mapping[str, object] | None = None, *, kinds: Iterable[str] | None = None
    ) -> int:
        """Remove every waiting ``held`` event and live fact of ``kinds`` (default: all held
        and fact kinds) whose partition keys equal ``key``; returns how many were removed.

        Call it when a key is closed (a resolved ticket, a closed month) so state stays
        flat. With no ``partition_keys`` in the spec, ``key`` must be None and the kinds are
        purged whole."""
        compiled = self._compiled
        pk = self._spec.partition_keys
        if pk:
            if key is None or set(key) != set(pk):
                raise MessageError(f"purge needs exactly the partition keys {list(pk)}")
            normal = normalise_message(key, decimal_scale=self._spec.decimal_scale)
            if set(normal) != set(pk):
                raise MessageError(f"purge: partition keys {list(pk)} cannot be None")
            for name, value in normal.items():  # durable would join '7' with 7
                have = self._class_types.get(self._compiled.field_class.get(name, name))
                if have is not None and have != _type_of(value):
                    raise MessageError(
                        f"purge: key {name!r} is {have} in this ruleset, got {value!r}"
                    )
        elif key:
            raise MessageError("purge: this ruleset has no partition_keys; pass no key")
        else:
            normal = {}
        chosen = tuple(compiled.held + compiled.facts) if kinds is None else tuple(kinds)
        for kind in chosen:
            if kind not in compiled.held and kind not in compiled.facts:
                raise MessageError(
                    f"purge: {kind!r} is not a held or fact kind"
                    + _suggest(str(kind), compiled.held + compiled.facts)
                )
        kind_field = self._spec.kind_field
        removed = 0
        with _ENGINE_LOCK:
            self._check_open()
            for kind in chosen:
                if kind in compiled.facts:
                    for fact_id, (_shard, stored) in list(self._facts.items()):
                        if stored.get(kind_field) == kind and all(
                            stored.get(k) == v for k, v in normal.items()
                        ):
                            self.retract_fact(fact_id)
                            removed += 1
                    continue
                targets = [self._route(normal)] if pk else list(self._core.shards)
                for shard in targets:
                    while True:
                        before = self._core.sink.purged
                        message = {kind_field: _PURGE_PREFIX + kind, **normal}
                        self._send("post", shard, self._with_id(message))
                        if self._core.sink.purged == before:
                            break
                        removed += 1
        return removed

    def drain(self) -> list[Firing]:
        """The firings since the last drain, in firing order (plain dicts).

        Raises :class:`DurableActionError` (carrying the firings) if an action failed."""
        with _ENGINE_LOCK:
            sink = self._core.sink
            firings, sink.firings = sink.firings, []
            errors, sink.errors = sink.errors, []
        if errors:
            raise DurableActionError(errors, firings)
        return firings

    def pending_count(self) -> int:
        """Messages still stored in the engine: waiting events plus live facts. Reads the
        engine's event lists (O(n)): a diagnostic, not for hot paths."""
        with _ENGINE_LOCK:
            self._check_open()
            return len(self._pending_events()) + len(self._facts)

    # -- snapshots --------------------------------------------------------------------------

    def get_state(self) -> RulesetState:
        """A JSON-able snapshot: live facts and waiting events (O(n) in their number).

        Firings already drained are not part of it; undrained ones are not either (drain
        first). :meth:`load_state` rebuilds an equivalent ruleset."""
        with _ENGINE_LOCK:
            self._check_open()
            events = sorted(self._pending_events(), key=lambda m: int(m["id"]))
            facts = sorted(
                ({k: v for k, v in s.items() if k != "sid"} for _sh, s in self._facts.values()),
                key=lambda m: int(m["id"]),
            )
            next_id = next(self._ids)
            self._ids = itertools.count(next_id)
            return {
                "format": _STATE_FORMAT,
                "next_id": next_id,
                "field_types": dict(self._class_types),
                "facts": facts,
                "events": events,
            }

    def load_state(self, state: RulesetState) -> None:
        """Load what :meth:`get_state` returned into this fresh ruleset (nothing posted yet).

        Facts are re-asserted and events re-posted with their ids; the firings this
        re-feeding produces were delivered before the snapshot and are discarded."""
        if not isinstance(state, Mapping) or state.get("format") != _STATE_FORMAT:
            raise MessageError(f"not a {_STATE_FORMAT} snapshot")
        with _ENGINE_LOCK:
            self._check_open()
            if self._facts or any(shard.sids for shard in self._core.shards):
                raise MessageError("load_state needs a fresh ruleset (nothing posted yet)")
            for name, ftype in state["field_types"].items():
                declared = self._compiled.class_types.get(name, ftype)
                if ftype not in ("int", "str") or declared != ftype:
                    raise MessageError(
                        f"snapshot field {name!r} is {ftype!r}, this ruleset wants {declared!r}"
                    )
            top = int(state["next_id"])
            sink = self._core.sink
            saved, sink.firings = sink.firings, []
            try:
                self._class_types.update(state["field_types"])
                for items, op in ((state["facts"], "assert_fact"), (state["events"], "post")):
                    for item in items:
                        message = dict(item)
                        ident = str(message.pop("id"))
                        lifetimes: tuple[Lifetime, ...] = (
                            ("fact",) if op == "assert_fact" else ("transient", "held")
                        )
                        normal, kind = self._prepare(message, lifetimes, "load_state")
                        self._commit_types([(normal, kind)])
                        shard = self._route(normal)
                        stored: dict[str, JSONScalar] = {**normal, "id": ident, "sid": _SID}
                        handled = self._send(op, shard, stored)
                        if op == "assert_fact" and handled:
                            self._facts[ident] = (shard, stored)
                            self._fact_ids[tuple(sorted(normal.items()))] = ident
                        top = max(top, int(ident) + 1)
            finally:
                sink.firings = saved
            self._ids = itertools.count(top)

    # -- teardown ---------------------------------------------------------------------------

    def close(self) -> None:
        """Delete every sid's state and every C ruleset. Idempotent."""
        with _ENGINE_LOCK:
            self._finalizer.detach()
            problems = self._core.teardown()
            self._facts.clear()
            self._fact_ids.clear()
            reap_abandoned()
        if problems:
            raise DurableEngineError("closing left problems: " + "; ".join(problems))

    # -- internals --------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._core.closed:
            raise RulesetClosedError(f"ruleset {self._name} is closed")

    def _prepare(
        self, raw: Mapping[str, object], lifetimes: tuple[Lifetime, ...], op: str
    ) -> tuple[dict[str, JSONScalar], str]:
        spec = self._spec
        message = normalise_message(raw, decimal_scale=spec.decimal_scale)
        kind = message.get(spec.kind_field)
        if not isinstance(kind, str):
            raise MessageError(
                f"{op}: a message needs a text {spec.kind_field!r} field, got {kind!r}"
            )
        lifetime = spec.kinds.get(kind)
        if lifetime is None:
            raise MessageError(
                f"{op}: kind {kind!r} is not declared in this ruleset"
                + _suggest(kind, spec.kinds)
            )
        if lifetime not in lifetimes:
            hint = "assert_fact" if lifetime == "fact" else "post"
            raise MessageError(f"{op}: kind {kind!r} is a {lifetime} kind; use {hint}()")
        missing = [k for k in spec.partition_keys if k not in message]
        if missing:
            raise MessageError(f"{op}: message of kind {kind!r} lacks partition keys {missing}")
        return message, kind

    def _commit_types(self, prepared: list[tuple[dict[str, JSONScalar], str]]) -> None:
        """Check each field keeps one type across the ruleset; record new ones. Atomic."""
        classes = self._compiled.field_class
        staged: dict[str, FieldType] = {}
        for message, kind in prepared:
            for name, value in message.items():
                cls = classes.get(name, name)
                ftype = _type_of(value)
                have = staged.get(cls) or self._class_types.get(cls)
                if have is None:
                    staged[cls] = ftype
                elif have != ftype:
                    raise MessageError(
                        f"field {name!r} of a {kind!r} message is {ftype} ({value!r}) but "
                        f"{have} elsewhere in this ruleset: durable_rules would compare text "
                        "with numbers without error, so a field keeps one type"
                    )
        self._class_types.update(staged)

    def _with_id(self, message: Mapping[str, JSONScalar]) -> dict[str, JSONScalar]:
        return {**message, "id": str(next(self._ids)), "sid": _SID}

    def _route(self, message: Mapping[str, JSONScalar]) -> _Shard:
        shards = self._core.shards
        if len(shards) == 1:
            return shards[0]
        values = [message[k] for k in self._spec.partition_keys]
        text = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
        return shards[zlib.crc32(text.encode()) % len(shards)]

    def _send(self, op: str, shard: _Shard, message: dict[str, JSONScalar]) -> bool:
        """One call into durable_rules; False if the engine matched the message to nothing
        (it is then not stored). Opens the shard's sid first if needed."""
        self._open(shard)
        return self._call(op, shard, message)

    def _open(self, shard: _Shard) -> None:
        if _SID not in shard.sids:
            # durable's delete_state crashes on a sid where no action ever ran: make one run
            # before anything else, and only then count the sid as one to delete.
            opener: dict[str, JSONScalar] = {
                self._spec.kind_field: _OPEN_KIND, "id": _OPEN_KIND, "sid": _SID
            }
            self._call("post", shard, opener)
            shard.sids.add(_SID)

    def _batch(
        self,
        op: Literal["assert_facts", "retract_facts"],
        shard: _Shard,
        messages: list[dict[str, JSONScalar]],
    ) -> int:
        """One batch call into durable_rules, then the actions it started; returns the
        engine's result code (0: every message handled, 1: some matched nothing, 2: an id
        seen before). Opens the shard's sid first if needed.

        durable's ``Host.assert_facts`` raises on code 1 *without* running the actions of
        the facts that were stored (they would fire on some later call), so this goes one
        level down: the C call, then :meth:`_run_actions` on the state it returns."""
        self._open(shard)
        native = self._core.durable.native
        with _engine_call(f"{op} of {len(messages)} message(s)"):
            payload = json.dumps(messages, ensure_ascii=False)
            code, state = getattr(native, op)(shard.handle, payload)
            self._run_actions(shard, 0 if code == 3 else state)  # as Ruleset._handle_result
        return int(code)

    def _run_actions(self, shard: _Shard, state: int) -> None:
        """Run the actions an engine call started on ``state``, in the engine's order.

        The C protocol of durable's ``Ruleset.do_actions`` (start the first action for the
        state, then complete-and-start the next until none is left; abandon on a failure),
        minus what only matters to actions that change the sid's state ``c.s``, which
        adapter actions never do: a ``Closure`` per firing, and writing the unchanged state
        back (a JSON encode and a C call per firing). Measured ~3x faster per firing."""
        native = self._core.durable.native
        handle = shard.handle
        started = native.start_action_for_state(handle, state)
        if not started:
            return
        actions = self._compiled.actions
        sink = self._core.sink
        text = started[1]
        while text:
            try:
                for rule_name, found in json.loads(text).items():
                    entry = actions.get(rule_name)
                    if entry is None:
                        sink.errors.append(f"rule {rule_name!r}: not a rule of this ruleset")
                    else:
                        _deliver(sink, rule_name, entry[0], entry[1], found)
                text = native.complete_and_start_action(handle, state)
            except BaseException:
                with contextlib.suppress(Exception):  # as durable does on a failed action
                    native.abandon_action(handle, state)
                raise

    def _stored_ids(self, shard: _Shard) -> set[str]:
        """The ids of the facts the engine holds on a shard (O(live facts))."""
        with _engine_call("reading live facts"):
            return {str(f["id"]) for f in shard.ruleset.get_facts(_SID)}

    def _record(self, shard: _Shard, items: list[_Pending], stored: set[str] | None) -> int:
        """Book the facts of ``items`` the engine stored (all when ``stored`` is None) as
        live; returns how many."""
        count = 0
        for content, message in items:
            fact_id = str(message["id"])
            if stored is None or fact_id in stored:
                self._facts[fact_id] = (shard, message)
                self._fact_ids[content] = fact_id
                count += 1
        return count

    def _call(self, op: str, shard: _Shard, message: dict[str, JSONScalar]) -> bool:
        durable = self._core.durable
        try:
            getattr(shard.host, op)(shard.name, message)
        except durable.not_handled:
            self.unhandled += 1
            return False
        except durable.observed as exc:
            raise DurableEngineError(
                f"{op}: durable_rules saw message id {message['id']!r} twice"
            ) from exc
        except Exception as exc:  # MemoryError and the engine's own errors
            with _engine_call(f"{op} of {message.get(self._spec.kind_field)!r}"):
                raise exc
        return True

    def _pending_events(self) -> list[dict[str, JSONScalar]]:
        out: list[dict[str, JSONScalar]] = []
        for shard in self._core.shards:
            for sid in sorted(shard.sids):
                with _engine_call("reading pending events"):
                    events = shard.ruleset.get_pending_events(sid)
                out.extend({k: v for k, v in e.items() if k != "sid"} for e in events)
        return out

