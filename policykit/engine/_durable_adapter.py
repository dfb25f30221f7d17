"""The one module of policykit that touches durable_rules.

durable-rules 2.0.28 is a Rete engine in C with a thin Python wrapper. Its sharp edges are
many (the ones measured are in the durable-rules section of ``docs/architecture.md``); this
module gives the durable backend (``engine/_durable.py``) exactly what it uses, a stateless
*matcher*, and keeps every quirk on the way behind a small typed API:

* :class:`RulesetSpec` lists message kinds and :class:`Rule`\\ s, each one :class:`Match`
  of one kind whose fields equal literals (:class:`FieldEq`). Nothing else can be written:
  no joins (a comparison inside one crashes the process), no ``none()`` (silently ignored
  unless last), no comparisons (durable orders every string above every number). The
  backend decides comparisons in Python and sends their outcome as a 0/1 field.
* Every message is a *fact*: :meth:`DurableRuleset.assert_fact` fires each rule it
  completes once (a posted event would reach only the first rule), and the backend
  retracts it at once, so the network holds nothing between events.
  :meth:`~DurableRuleset.assert_facts` / :meth:`~DurableRuleset.retract_facts` do the
  same for a batch in one C call each.
* Values are normalised before they reach the engine (:func:`normalise_message`): only
  ``int`` (bool as 0/1, within int64) and ``str``, each field keeps one type per ruleset
  (durable would compare ``'7'`` with ``7`` without a word), no more than
  :data:`MAX_FIELDS` fields (durable fails at 255 properties).
* :class:`DurableRuleset` owns one private ``durable.engine.Host`` whose timer threads are
  never started, under a name no one else uses, with one session id (``"0"``): durable's
  process-wide ``durable.lang`` registry is never touched. Actions never raise: they append
  plain dicts to an adapter-owned list that :meth:`DurableRuleset.drain` hands out.
  ``close()`` deletes the session state and the C ruleset (without that, 1,000
  create/destroy cycles leak ~190-340 MiB); a ruleset dropped without ``close`` is reaped
  later (:func:`reap_abandoned`). durable's ``delete_state`` crashes the process (SIGSEGV,
  every time) on a session where no action has ever run, so the adapter opens its session
  with a message that an adapter rule consumes.
* Every call into durable_rules runs under one process-wide ``RLock``: the C module keeps
  process-wide tables and the wrapper is not thread-safe.
* durable_rules is imported lazily, the first time a ruleset is built or
  :func:`durable_available` is called, never when policykit is imported. Where it cannot
  load (Python 3.13+: ``undefined symbol: PyEval_CallObject``) you get
  :class:`DurableUnavailable`, which says why and what to do.

Example (how the backend matches one event)::

    spec = RulesetSpec(rules=(Rule("m0", (Match("e", "clock_in", (FieldEq("c0", 1),)),)),),
                       kinds=("clock_in",))
    with DurableRuleset("policykit", spec) as rs:
        rs.retract_fact(rs.assert_fact({"kind": "clock_in", "c0": 1}))
        rs.drain()   # [{'rule': 'm0', 'matched': {'e': {'kind': 'clock_in', 'c0': 1}}}]

No durable_rules timer, lease or wall-clock feature is ever used. (durable still reads the
wall clock for one thing: an action taking over 10 s is treated as abandoned. Adapter
actions take microseconds.)
"""

from __future__ import annotations

import contextlib
import difflib
import itertools
import json
import re
import sys
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
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
    "KIND", "MAX_FIELDS", "DurableActionError", "DurableAdapterError", "DurableCapacityError",
    "DurableEngineError", "DurableRuleset", "DurableUnavailable", "FieldEq", "FieldType",
    "Firing", "JSONScalar", "Match", "MessageError", "Rule", "RulesetClosedError",
    "RulesetSpec", "RulesetSpecError", "durable_available", "normalise", "normalise_message",
    "reap_abandoned",
]

JSONScalar: TypeAlias = str | int
"""What reaches durable_rules: after :func:`normalise`, every value is an ``int`` or a ``str``."""

FieldType = Literal["int", "str"]

#: The field naming a message's kind.
KIND: Final = "kind"
#: durable_rules rejects a message of 255 or more properties (error 302); the adapter adds two
#: (``id`` and ``sid``), so a message may carry at most 252 fields of its own.
MAX_FIELDS: Final = 252
_MAX_PRIORITY: Final = 1_000_000
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_SID: Final = "0"
_RESERVED_FIELDS: Final = frozenset({"id", "sid"})
_NAME_RE: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_PREFIX_RE: Final = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_OPEN_KIND: Final = "$open"


# --------------------------------------------------------------------------------------------
# Lazy import


@dataclass(frozen=True)
class _Durable:
    engine: Any  # the durable.engine module
    native: Any  # the durable_rules_engine C module
    host_cls: Any  # durable.engine.Host without timer threads


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


def normalise(value: object) -> JSONScalar | None:
    """The engine form of one value: an ``int``, a ``str``, or ``None`` (field dropped).

    ``bool`` → ``0``/``1``; ``int`` (and ``IntEnum``) → ``int`` within int64; ``str`` (and
    ``str`` enums) → plain ``str``. Anything else raises :class:`MessageError`: durable
    JSON-encodes values (``datetime`` and ``Decimal`` fail), orders every string above every
    number and chokes on ``1e-07``-style floats, so the caller decides comparisons in Python
    and sends their outcome."""
    if type(value) is str:  # the common case first
        return value
    if value is None:
        return None
    if isinstance(value, int):  # bool and IntEnum too
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise MessageError(f"{value!r} is outside the 64-bit integer range of the engine")
        return int(value)
    if isinstance(value, str):
        return str.__str__(value)
    raise MessageError(
        f"unsupported value {value!r} of type {type(value).__name__}: messages are flat and "
        "take None, bool, int and str only; decide a comparison in Python and send its "
        "outcome (late: 1)"
    )


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


def normalise_message(message: Mapping[str, object]) -> dict[str, JSONScalar]:
    """A flat message in engine form: names checked, values :func:`normalise`-d, ``None``
    fields dropped, at most :data:`MAX_FIELDS` fields."""
    if not isinstance(message, Mapping):
        raise MessageError(f"a message is a mapping of field to value, got {message!r}")
    out: dict[str, JSONScalar] = {}
    for name, raw in message.items():
        _check_field_name(name, "message")
        try:
            value = normalise(raw)
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


def _suggest(value: str, choices: Iterable[str]) -> str:
    found = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


# --------------------------------------------------------------------------------------------
# The declarative ruleset


def _spec_error(where: str, problem: str) -> RulesetSpecError:
    return RulesetSpecError(f"{where}: {problem}")


def _name(value: object, where: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise _spec_error(where, f"{what} {value!r} must be an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return value


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
        if self.field == KIND:
            raise _spec_error(where, f"the kind field {KIND!r} is set by Match's kind")
        if self.op != "==":
            raise _spec_error(
                where,
                f"operator {self.op!r} rejected: only equality ('==') reaches durable_rules "
                "(it orders every string above every number); decide the comparison in "
                "Python and send its outcome as a discrete field (late: 1)",
            )
        if self.value is None:
            raise _spec_error(where, "cannot test for None: None fields are dropped")


@dataclass(frozen=True, slots=True)
class Match:
    """A message of ``kind`` passing every test, bound to ``alias`` in the firing."""

    alias: str
    kind: str
    tests: tuple[FieldEq, ...] = ()

    def __post_init__(self) -> None:
        where = f"Match({self.alias!r}, {self.kind!r})"
        _name(self.alias, where, "alias")
        tests = self.tests
        if not isinstance(tests, tuple) or not all(isinstance(t, FieldEq) for t in tests):
            raise _spec_error(where, f"tests must be a tuple of FieldEq, got {tests!r}")
        fields = [t.field for t in tests]
        for name in fields:
            if fields.count(name) > 1:
                raise _spec_error(where, f"field {name!r} is tested twice")


@dataclass(frozen=True, slots=True)
class Rule:
    """One :class:`Match` (``conditions`` holds exactly one: joins are not offered, see the
    module docstring). ``priority``: 0..1,000,000, lower fires first (durable misorders
    negative priorities)."""

    name: str
    conditions: tuple[Match, ...]
    priority: int = 0

    def __post_init__(self) -> None:
        where = f"rule {self.name!r}"
        if not isinstance(self.name, str) or not self.name or self.name.startswith("$"):
            raise _spec_error(where, "a rule name is a non-empty string not starting with '$'")
        if len(self.name) > 200:
            raise _spec_error(where, "rule names are at most 200 characters")
        conditions = self.conditions
        if not isinstance(conditions, tuple) or [type(c) for c in conditions] != [Match]:
            raise _spec_error(
                where,
                f"needs exactly one Match, got {conditions!r}: joins are not offered (a "
                "comparison inside one crashes durable_rules with SIGSEGV when false)",
            )
        if isinstance(self.priority, bool) or not isinstance(self.priority, int) or not (
            0 <= self.priority <= _MAX_PRIORITY
        ):
            raise _spec_error(
                where,
                f"priority {self.priority!r} must be an int in 0..{_MAX_PRIORITY} "
                "(lower fires first; durable_rules misorders negative priorities)",
            )

    @property
    def match(self) -> Match:
        return self.conditions[0]


@dataclass(frozen=True)
class _Compiled:
    definition: dict[str, dict[str, Any]]  # rule name → durable rule JSON, without 'run'
    aliases: dict[str, str | None]  # rule name → alias it reports; None: a silent adapter rule
    field_types: dict[str, FieldType]  # field → type known from the literals


def _check_kinds(kinds: tuple[str, ...]) -> None:
    for kind in kinds:
        if not isinstance(kind, str) or not kind or kind.startswith("$"):
            raise _spec_error("RulesetSpec", f"kind {kind!r}: a kind is text, not starting '$'")
    if len(set(kinds)) != len(kinds):
        raise _spec_error("RulesetSpec", "kinds repeats a kind")


def _declare(types: dict[str, FieldType], test: FieldEq, where: str) -> JSONScalar:
    """The engine form of a literal test; records its field's type (one type per field)."""
    try:
        value = normalise(test.value)
    except MessageError as exc:
        raise _spec_error(where, f"FieldEq({test.field!r}): {exc}") from None
    assert value is not None  # FieldEq rejects None
    ftype, have = _type_of(value), types.setdefault(test.field, _type_of(value))
    if have != ftype:
        raise _spec_error(
            where,
            f"field {test.field!r} is {ftype} here but {have} elsewhere: one field keeps one "
            "JSON type in a ruleset (durable_rules compares text and numbers without error)",
        )
    return value


def _rule_json(rule: Rule, kinds: tuple[str, ...], types: dict[str, FieldType]) -> dict[str, Any]:
    """durable's JSON for one rule (without its action)."""
    where = f"rule {rule.name!r}"
    match = rule.match
    if match.kind not in kinds:
        raise _spec_error(
            where,
            f"kind {match.kind!r} is not declared in kinds ({sorted(kinds)})"
            + (_suggest(match.kind, kinds) if isinstance(match.kind, str) else ""),
        )
    terms: list[dict[str, Any]] = [{KIND: match.kind}]
    terms += [{test.field: _declare(types, test, where)} for test in match.tests]
    expr = terms[0] if len(terms) == 1 else {"$and": terms}
    rule_json: dict[str, Any] = {"all": [{match.alias: expr}]}
    if rule.priority:
        rule_json["pri"] = rule.priority
    return rule_json


@dataclass(frozen=True)
class RulesetSpec:
    """A whole ruleset, validated on construction (:class:`RulesetSpecError` if unsafe).

    ``rules``: the rules; ``kinds``: every message kind a message may have (a message of
    a kind no rule matches is simply not stored)."""

    rules: tuple[Rule, ...]
    kinds: tuple[str, ...]
    _compiled: _Compiled = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not isinstance(self.rules, tuple) or not self.rules:
            raise _spec_error("RulesetSpec", f"rules must be a non-empty tuple, got {self.rules!r}")
        if not isinstance(self.kinds, tuple):
            raise _spec_error("RulesetSpec", f"kinds must be a tuple, got {self.kinds!r}")
        object.__setattr__(self, "_compiled", self._compile())

    def definition(self) -> dict[str, dict[str, Any]]:
        """The durable_rules JSON definition (without actions), adapter rules included."""
        return json.loads(json.dumps(self._compiled.definition))  # type: ignore[no-any-return]

    def _compile(self) -> _Compiled:
        _check_kinds(self.kinds)
        types: dict[str, FieldType] = {KIND: "str"}
        definition: dict[str, dict[str, Any]] = {}
        aliases: dict[str, str | None] = {}
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise _spec_error("RulesetSpec", f"{rule!r} is not a Rule")
            if rule.name in definition:
                raise _spec_error(f"rule {rule.name!r}", "two rules have this name")
            definition[rule.name] = _rule_json(rule, self.kinds, types)
            aliases[rule.name] = rule.match.alias
        # Opens the session: durable's delete_state crashes (SIGSEGV, every time) on a sid
        # where no action has ever run, so the adapter's first message fires this rule.
        last = max(rule.priority for rule in self.rules) + 1
        definition[_OPEN_KIND] = {"all": [{"m": {KIND: _OPEN_KIND}}], "pri": last}
        aliases[_OPEN_KIND] = None
        return _Compiled(definition, aliases, types)


# --------------------------------------------------------------------------------------------
# The live ruleset


class Firing(TypedDict):
    """One rule firing: the rule's name and, under its alias, the matched message's fields
    (engine form, without the adapter's ``id``/``sid``)."""

    rule: str
    matched: dict[str, dict[str, JSONScalar]]


class _Sink:
    """Where actions write. Owned by the adapter; actions hold it, never the ruleset."""

    __slots__ = ("errors", "firings")

    def __init__(self) -> None:
        self.firings: list[Firing] = []
        self.errors: list[str] = []


def _strip(message: Mapping[str, Any]) -> dict[str, JSONScalar]:
    return {k: v for k, v in message.items() if k not in _RESERVED_FIELDS}


# A fact on its way into the engine: (its content key, the message as sent, with id and sid).
_Content: TypeAlias = tuple[tuple[str, JSONScalar], ...]
_Pending: TypeAlias = tuple[_Content, dict[str, JSONScalar]]


def _make_action(sink: _Sink, rule_name: str, alias: str | None) -> Callable[[Any], None]:
    """A durable action that never raises and never writes ``c.s``."""

    def action(c: Any) -> None:
        _deliver(sink, rule_name, alias, c)

    return action


def _deliver(sink: _Sink, rule_name: str, alias: str | None, source: Any) -> None:
    """What every adapter action does with the message a rule matched; never raises.
    ``source``: durable's Closure (its ``_m``), or the alias → message dict itself."""
    if alias is None:
        return
    try:
        found = source if isinstance(source, dict) else source._m  # alias → message
        sink.firings.append({"rule": rule_name, "matched": {alias: _strip(found[alias])}})
    except BaseException as exc:  # an escaping exception would be swallowed into c.s
        with contextlib.suppress(BaseException):
            sink.errors.append(f"rule {rule_name!r}: {type(exc).__name__}: {exc}")


class _Core:
    """Everything that must be torn down; never refers back to the DurableRuleset, so an
    abandoned ruleset can be collected and its core reaped."""

    def __init__(self, durable: _Durable, name: str) -> None:
        self.durable = durable
        self.name = name
        self.sink = _Sink()
        self.host: Any = None
        self.ruleset: Any = None
        self.handle: int = -1  # the C ruleset handle, for delete_ruleset
        self.opened = False  # an action ran on the sid: only then may it be deleted
        self.closed = False

    def teardown(self) -> list[str]:
        """Delete the sid's state, then the C ruleset. Best effort; returns the failures."""
        problems: list[str] = []
        if self.closed:
            return problems
        self.closed = True
        if self.ruleset is None:  # creation failed: nothing to free
            return problems
        native = self.durable.native
        if self.opened:
            try:
                native.delete_state(self.handle, _SID)
            except Exception as exc:
                problems.append(f"delete_state({self.name!r}): {exc}")
        try:
            native.delete_ruleset(self.handle)
        except Exception as exc:
            problems.append(f"delete_ruleset({self.name!r}): {exc}")
        # Nothing may reach the freed handle again.
        self.host._ruleset_directory.clear()
        self.host._ruleset_list.clear()
        self.opened = False
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
            "adapter uses one sid, so the process is short of memory)"
        ) from exc
    except DurableAdapterError:
        raise
    except Exception as exc:
        raise DurableEngineError(
            f"durable_rules failed while {what}: {type(exc).__name__}: {exc}"
        ) from exc


class DurableRuleset:
    """One isolated ruleset on its own timer-less Host, under a unique name; every call runs
    under one RLock.

    Use as a context manager, or call :meth:`close`; a ruleset dropped without ``close`` is
    torn down on a later creation/close (:func:`reap_abandoned`)."""

    def __init__(self, name_prefix: str, spec: RulesetSpec) -> None:
        if not isinstance(name_prefix, str) or not _PREFIX_RE.match(name_prefix):
            raise ParameterError("name_prefix", name_prefix, "1-64 characters of [A-Za-z0-9_-]")
        if not isinstance(spec, RulesetSpec):
            raise TypeError(f"spec must be a RulesetSpec, got {type(spec).__name__}")
        durable = _import_durable()
        reap_abandoned()
        self._spec = spec
        self._compiled = spec._compiled
        self._name = f"{name_prefix}-{next(_NAMES)}-{uuid.uuid4().hex[:12]}"
        self._core = _Core(durable, self._name)
        self._ids = itertools.count(1)
        self._field_types: dict[str, FieldType] = dict(self._compiled.field_types)
        self._facts: dict[str, dict[str, JSONScalar]] = {}  # fact id → the message as sent
        self._fact_ids: dict[_Content, str] = {}  # content → live fact id
        self.unhandled = 0
        """Facts no rule matched (durable does not store them; nor does the adapter)."""
        core = self._core
        rules = spec.definition()
        for rule_name, rule_json in rules.items():
            rule_json["run"] = _make_action(core.sink, rule_name, self._compiled.aliases[rule_name])
        with _ENGINE_LOCK, _engine_call(f"creating ruleset {self._name!r}"):
            core.host = durable.host_cls()
            core.host.register_rulesets({self._name: rules})
            core.ruleset = core.host.get_ruleset(self._name)
            core.handle = core.ruleset._handle
        # durable.lang keeps a process-wide registry; this adapter never defines rulesets
        # through it, but make sure no entry of ours could linger there.
        lang = sys.modules.get("durable.lang")
        if lang is not None:
            lang._rulesets.pop(self._name, None)
        self._finalizer = weakref.finalize(self, _bury, core)

    @property
    def name(self) -> str:
        """The unique name of the ruleset inside durable_rules."""
        return self._name

    @property
    def closed(self) -> bool:
        return self._core.closed

    def __repr__(self) -> str:
        return f"<DurableRuleset {self._name}{' closed' if self.closed else ''}>"

    def __enter__(self) -> DurableRuleset:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- facts ------------------------------------------------------------------------------

    def assert_fact(self, fact: Mapping[str, object]) -> str:
        """Assert a fact; returns its id. Every rule it completes fires once; :meth:`drain`
        collects the firings. Facts are a set: asserting one equal to a live fact returns
        that fact's id and fires nothing."""
        return self._assert((fact,), "assert_fact")[0]

    def retract_fact(self, fact_id: str) -> bool:
        """Retract a live fact by the id :meth:`assert_fact` returned; False if not live."""
        return self._retract((fact_id,), "retract_fact") == 1

    def assert_facts(self, facts: Iterable[Mapping[str, object]]) -> list[str]:
        """Assert many facts in one engine call; returns their ids, in order. All are
        validated first (on a bad one, none is asserted); each is then treated as by
        :meth:`assert_fact`, a fact no rule matches is not stored (counted in
        :attr:`unhandled`), and the firings come in the engine's order, so give each fact
        a field to map its firings back by. Batches of 32-256 cost the least per fact."""
        return self._assert(facts, "assert_facts")

    def _assert(self, facts: Iterable[Mapping[str, object]], op: str) -> list[str]:
        prepared = [self._prepare(f, op) for f in facts]
        with _ENGINE_LOCK:
            self._check_open()
            self._commit_types(prepared)
            ids: list[str] = []
            fresh: dict[_Content, str] = {}
            items: list[_Pending] = []
            for message in prepared:
                content = tuple(sorted(message.items()))
                fact_id = self._fact_ids.get(content) or fresh.get(content)
                if fact_id is None:
                    stored = self._with_id(message)
                    fact_id = fresh[content] = str(stored["id"])
                    items.append((content, stored))
                ids.append(fact_id)
            if items:
                self._assert_batch(items)
            return ids

    def _assert_batch(self, items: list[_Pending]) -> None:
        try:
            code = self._batch("assert_facts", [stored for _content, stored in items])
        except BaseException:
            # Some may be stored: keep the bookkeeping true to the engine if the engine
            # can still tell, then report the original failure.
            with contextlib.suppress(Exception):
                self._record(items, self._stored_ids())
            raise
        if code == 0:  # every fact was stored
            self._record(items, None)
            return
        self.unhandled += len(items) - self._record(items, self._stored_ids())
        if code == 2:  # fresh ids make this impossible; never leave it unsaid
            raise DurableEngineError("assert_facts: durable_rules saw a message id twice")

    def retract_facts(self, facts: Iterable[str]) -> int:
        """Retract live facts by the ids :meth:`assert_fact`/:meth:`assert_facts` returned,
        in one engine call; returns how many were live (the rest are skipped, as
        :meth:`retract_fact` returns False for them)."""
        return self._retract(facts, "retract_facts")

    def _retract(self, facts: Iterable[str], op: str) -> int:
        ids = list(facts)
        for fact_id in ids:  # validation first: on a bad one, nothing is retracted
            if not isinstance(fact_id, str):
                raise MessageError(f"{op} takes fact ids (str), got {fact_id!r}")
        with _ENGINE_LOCK:
            self._check_open()
            messages: list[dict[str, JSONScalar]] = []
            for fact_id in ids:
                stored = self._facts.pop(fact_id, None)
                if stored is not None:
                    self._fact_ids.pop(tuple(sorted(_strip(stored).items())), None)
                    messages.append(stored)
            if messages:
                self._batch("retract_facts", messages)
            return len(messages)

    def retract_all(self) -> int:
        """Retract every live fact (after a failure, so none is left behind); how many."""
        with _ENGINE_LOCK:
            return self.retract_facts(list(self._facts))

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
        """Messages still stored in the engine: waiting events (read from the engine, O(n))
        plus live facts. A diagnostic, not for hot paths."""
        with _ENGINE_LOCK:
            self._check_open()
            if not self._core.opened:
                return len(self._facts)
            with _engine_call("reading pending events"):
                events = self._core.ruleset.get_pending_events(_SID)
            return len(events) + len(self._facts)

    def close(self) -> None:
        """Delete the session state and the C ruleset. Idempotent."""
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

    def _prepare(self, raw: Mapping[str, object], op: str) -> dict[str, JSONScalar]:
        message = normalise_message(raw)
        kind = message.get(KIND)
        if not isinstance(kind, str):
            raise MessageError(f"{op}: a message needs a text {KIND!r} field, got {kind!r}")
        if kind not in self._spec.kinds:
            raise MessageError(
                f"{op}: kind {kind!r} is not declared in this ruleset"
                + _suggest(kind, self._spec.kinds)
            )
        return message

    def _commit_types(self, prepared: list[dict[str, JSONScalar]]) -> None:
        """Check each field keeps one type across the ruleset; record new ones. Atomic."""
        staged: dict[str, FieldType] = {}
        for message in prepared:
            for name, value in message.items():
                ftype = _type_of(value)
                have = staged.get(name) or self._field_types.get(name)
                if have is None:
                    staged[name] = ftype
                elif have != ftype:
                    raise MessageError(
                        f"field {name!r} of a {message[KIND]!r} message is {ftype} ({value!r}) "
                        f"but {have} elsewhere in this ruleset: durable_rules would compare "
                        "text with numbers without error, so a field keeps one type"
                    )
        self._field_types.update(staged)

    def _with_id(self, message: Mapping[str, JSONScalar]) -> dict[str, JSONScalar]:
        return {**message, "id": str(next(self._ids)), "sid": _SID}

    def _open(self) -> None:
        if not self._core.opened:
            # durable's delete_state crashes on a sid where no action ever ran: make one run
            # before anything else, and only then count the sid as one to delete.
            opener = {KIND: _OPEN_KIND, "id": _OPEN_KIND, "sid": _SID}
            with _engine_call("opening the session"):
                self._core.host.post(self._core.name, opener)
            self._core.opened = True

    def _batch(
        self, op: Literal["assert_facts", "retract_facts"], messages: list[dict[str, JSONScalar]]
    ) -> int:
        """One C call, then the actions it started; returns the engine's result code (0: all
        handled, 1: some matched nothing, 2: an id seen before). durable's ``post_batch``
        and ``Host.assert_facts`` are not atomic: on code 1 they raise *without* running the
        actions of the messages that were stored (they would fire on some later call), so
        this goes one level down: the C call, then :meth:`_run_actions`."""
        self._open()
        native = self._core.durable.native
        with _engine_call(f"{op} of {len(messages)} message(s)"):
            payload = json.dumps(messages, ensure_ascii=False)
            code, state = getattr(native, op)(self._core.handle, payload)
            self._run_actions(0 if code == 3 else state)  # as Ruleset._handle_result
        return int(code)

    def _run_actions(self, state: int) -> None:
        """Run the actions an engine call started on ``state``, in the engine's order.

        The C protocol of durable's ``Ruleset.do_actions`` (start the first action for the
        state, then complete-and-start the next until none is left; abandon on a failure),
        minus what only matters to actions that change the sid's state ``c.s``, which
        adapter actions never do: a ``Closure`` per firing, and writing the unchanged state
        back (a JSON encode and a C call per firing). Measured ~3x faster per firing."""
        native = self._core.durable.native
        handle = self._core.handle
        started = native.start_action_for_state(handle, state)
        if not started:
            return
        aliases = self._compiled.aliases
        sink = self._core.sink
        text = started[1]
        while text:
            try:
                for rule_name, found in json.loads(text).items():
                    if rule_name not in aliases:
                        sink.errors.append(f"rule {rule_name!r}: not a rule of this ruleset")
                    else:
                        _deliver(sink, rule_name, aliases[rule_name], found)
                text = native.complete_and_start_action(handle, state)
            except BaseException:
                with contextlib.suppress(Exception):  # as durable does on a failed action
                    native.abandon_action(handle, state)
                raise

    def _stored_ids(self) -> set[str]:
        """The ids of the facts the engine holds (O(live facts))."""
        with _engine_call("reading live facts"):
            return {str(f["id"]) for f in self._core.ruleset.get_facts(_SID)}

    def _record(self, items: list[_Pending], stored: set[str] | None) -> int:
        """Book the facts of ``items`` the engine stored (all when ``stored`` is None) as
        live; returns how many."""
        count = 0
        for content, message in items:
            fact_id = str(message["id"])
            if stored is None or fact_id in stored:
                self._facts[fact_id] = message
                self._fact_ids[content] = fact_id
                count += 1
        return count
