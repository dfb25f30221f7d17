"""A policy is data: an id, a version, a clause, named parameters and rules built from the
rule shapes. A policy set is the policies an engine runs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from itertools import pairwise
from typing import Any, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .calendar import DEFAULT_CALENDAR, BusinessCalendar
from .errors import ParameterError, PolicyFileError, PolicyKitError, format_loc, nearest
from .rules import SHAPES, PolicyInfo, RuleSpec
from .rules.internal import old_population, respell_population

__all__ = ["Policy", "PolicySet"]

#: How ``effective_from``/``effective_until`` text starts: a day, then maybe a time.
_DATE_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d|$)")

_PARAM = re.compile(r"^\$([a-z_][a-z0-9_]*)$")


def _substitute(value: Any, params: Mapping[str, Any], path: str, used: set[str]) -> Any:
    """Replace every ``"$name"`` string with the parameter's value."""
    if isinstance(value, str):
        m = _PARAM.match(value)
        if not m:
            return value
        name = m.group(1)
        if name not in params:
            raise PolicyFileError("<policy>", path, value, "a declared parameter",
                                  suggestion=("$" + s) if (s := nearest(name, params)) else None)
        used.add(name)
        return params[name]
    if isinstance(value, Mapping):
        return {k: _substitute(v, params, f"{path}.{k}", used) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_substitute(v, params, f"{path}[{i}]", used) for i, v in enumerate(value)]
    return value


def _parameter_at(raw: Any, loc: tuple[Any, ...]) -> str | None:
    """The parameter a rule's value at ``loc`` came from (``$name`` written there or at a
    level above it), or None when it was written in the rule itself."""
    node = raw
    for part in loc:
        if isinstance(node, str):
            break
        found = (isinstance(node, Mapping) and part in node) or (
            isinstance(node, list | tuple) and isinstance(part, int) and 0 <= part < len(node))
        if not found:
            return None
        node = node[part]
    m = _PARAM.match(node) if isinstance(node, str) else None
    return m.group(1) if m else None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models a field's type holds (through unions, lists, mappings)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def _walk(cls: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel],
                                                             tuple[Any, ...]]:
    """The model at ``loc`` inside a rule model, and ``loc`` as the file has it (without
    the names pydantic adds for the member of a union it tried: ``subject.SubjectRef``)."""
    model: type[BaseModel] = cls
    choices: list[type[BaseModel]] = []
    written: list[Any] = []
    for part in loc:
        by_key = {(f.alias or n): f for n, f in model.model_fields.items()}
        named = [m for m in choices if m.__name__ == part] if len(choices) > 1 else []
        if named:
            model, choices = named[0], []
            continue
        written.append(part)
        if isinstance(part, str) and part in by_key:
            choices = _models_in(by_key[part].annotation)
            model = choices[0] if choices else model
        # else: a list index or a mapping key, inside the current field
    return model, tuple(written)



def _rule_error(exc: ValidationError, cls: type[RuleSpec], shape: str, raw: dict[str, Any],
                filled: dict[str, Any], where: str) -> PolicyFileError:
    """The error of a rule that does not validate, at the value written wrong: an unknown
    key with the keys allowed, a union's choices, the nearest of a fixed list, the value a
    whole-rule check refused, or the parameter the value came from."""
    errors = exc.errors(include_url=False)
    # An unknown key first: a misspelt required key is also a missing one, and
    # "did you mean" names the fix where "Field required" does not.
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    msg = err["msg"].removeprefix("Value error, ")
    loc = tuple(err["loc"])
    members = [e["loc"][-1] for e in errors
               if tuple(e["loc"][:-1]) == loc[:-1] and e["loc"]]
    if len(members) > 1 and set(members) <= set(_UNION_MEMBERS):
        # A value none of a union's scalar types takes (a YAML date or a float
        # in a where): the choices, not pydantic's name of its first member.
        loc = loc[:-1]
        msg = "one of: " + ", ".join(_UNION_MEMBERS[str(m)] for m in members)
    value = err.get("input") if loc else filled.get("id")
    suggestion = None
    cause = (err.get("ctx") or {}).get("error")
    if err["type"] == "missing":
        value = "<missing>"  # not the mapping it is missing from
    elif err["type"] in ("literal_error", "enum") and isinstance(value, str):
        # One of a fixed list (a subject kind, a basis): name the nearest.
        listed = re.findall(r"'([^']*)'", str((err.get("ctx") or {}).get(
            "expected", "")))
        suggestion = nearest(value, listed)
    elif err["type"] == "extra_forbidden" and loc:
        # Name the key and list the ones the shape (or the part of it) takes.
        allowed = _keys_at(cls, loc[:-1], top=shape)
        value, suggestion = loc[-1], nearest(str(loc[-1]), allowed[1])
        msg = f"a field of {allowed[0]}: " + ", ".join(allowed[1])
    elif isinstance(cause, PolicyKitError) and hasattr(cause, "value") \
            and hasattr(cause, "expected"):
        # A check of a whole rule (or part) refused one of its values: find
        # where that value was written, to point there and not at the rule.
        found = getattr(cause, "loc", None) or _locate(
            err.get("input") if loc else filled, cause.value)
        if found is not None:
            loc, value, msg = (*loc, *found), cause.value, cause.expected
    loc = _walk(cls, loc)[1]
    at = format_loc(loc, where)
    # (An unknown key is the key's error, wherever its value came from.)
    param = None if err["type"] == "extra_forbidden" else _parameter_at(raw, loc)
    if param is not None:
        # The value came from a parameter: point at the parameter.
        return PolicyFileError("<policy>", f"parameters.{param}", value,
                               f"{msg} (at {at}, which uses ${param})", suggestion=suggestion)
    return PolicyFileError("<policy>", at, value, msg, suggestion=suggestion)


def _keys_at(cls: type[BaseModel], loc: tuple[Any, ...], top: str) -> tuple[str, list[str]]:
    """What the model at ``loc`` inside a rule of shape ``top`` is called, and its keys."""
    model = _walk(cls, loc)[0]
    keys = [f.alias or n for n, f in model.model_fields.items()]
    if model is cls:
        return f"the {top} shape", [*keys, "enabled_if"]
    return f"{model.__name__} (in the {top} shape)", keys


#: The names pydantic gives a union's scalar members in an error's location, as a file's
#: reader would say them.
_UNION_MEMBERS = {"str": "text", "int": "a whole number", "bool": "true or false",
                  "none": "null", "dict[str,any]": "a mapping {operator: value}"}

#: A rule's prose: no check refuses a value written there, so a refused value equal to a
#: title (``title: handover``, ``key: handover``) is looked for elsewhere.
_PROSE = frozenset({"id", "title", "title_zh", "description", "clause", "messages",
                    "severity", "part_of"})


def _locate(value: Any, wanted: Any, loc: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
    """Where ``wanted`` (a text or number a check refused) was written in a rule."""
    if type(value) is type(wanted) and value == wanted:
        return loc
    items: Iterable[tuple[Any, Any]] = (
        value.items() if isinstance(value, Mapping)
        else enumerate(value) if isinstance(value, list | tuple) else ())
    for k, v in items:
        if not loc and k in _PROSE:
            continue
        found = _locate(v, wanted, (*loc, k))
        if found is not None:
            return found
    return None


def _check_references(specs: list[RuleSpec], seen: set[str]) -> None:
    """``part_of`` names a rulebook rule (not a part), and consumed decisions are this
    policy's."""
    parts = {s.id: s.part_of for s in specs if s.part_of is not None}
    for spec in specs:
        if spec.part_of is not None and (spec.part_of == spec.id
                                         or spec.part_of in parts):
            raise PolicyFileError("<policy>", f"rules.{spec.id}.part_of", spec.part_of,
                                  "the id of the rulebook rule this rule is a part of, "
                                  "not its own id nor the id of another part")
        for dep in spec.consumes():
            if dep not in seen:
                raise PolicyFileError("<policy>", f"rules.{spec.id}", dep,
                                      "a rule id of this policy", suggestion=nearest(dep, seen))


class Policy(BaseModel):
    """One policy of the rulebook. ``rules`` hold the rule data as written (with ``$param``
    references); :attr:`specs` are the validated rules with parameters filled in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z][a-z0-9-]{1,63}$")
    version: str = "1"
    title: str
    title_zh: str = ""
    clause: str
    summary: str = ""
    source_zh: str = ""
    """The rulebook's own words (traditional characters), quoted."""
    calendar: BusinessCalendar = DEFAULT_CALENDAR
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_docs: dict[str, str] = Field(default_factory=dict)
    rules: tuple[dict[str, Any], ...]
    effective_from: date | datetime | None = None
    """This version is in force from this day (its first instant) or date-time, included,
    in the calendar's zone (see docs/versions.md); None: from the beginning."""
    effective_until: date | datetime | None = None
    """... until this day or date-time, excluded; None: until the next version's start."""

    _specs: tuple[RuleSpec, ...] = PrivateAttr(default=())
    _kept_fingerprint: str | None = PrivateAttr(default=None)
    # A policy with versions in force by date: every version, earliest first (see
    # PolicySet); this object is then the latest one standing for them all.
    _versions: tuple[Policy, ...] = PrivateAttr(default=())
    # Where each version came from ("acme.yaml:12"), for errors naming both of two entries.
    _version_origins: tuple[str, ...] = PrivateAttr(default=())

    @field_validator("effective_from", "effective_until", mode="before")
    @classmethod
    def _a_date(cls, value: Any) -> Any:
        # Not a number: pydantic would read 20260401 as seconds since 1970, a version in
        # force from 23 August 1970 instead of 1 April 2026.
        if value is None or isinstance(value, date):
            return value
        if isinstance(value, str) and _DATE_TEXT.match(value):
            return value
        raise ValueError("a date (2026-04-01) or a date-time (2026-04-01T08:00:00)")

    @model_validator(mode="after")
    def _compile_rules(self, info: ValidationInfo) -> Policy:
        specs: list[RuleSpec] = []
        seen: set[str] = set()
        used: set[str] = set()
        # id -> the values its disabled variants' enabled_if accept, and how many there are
        unchosen: dict[str, dict[str, list[Any]]] = {}
        variants: dict[str, int] = {}
        for i, raw in enumerate(self.rules):
            where = f"rules[{i}]"
            if old_population(raw.get("population")):
                found = raw.get("id")
                rid = found if isinstance(found, str) else repr(found)
                _warn_population(where, rid, raw["population"], info.context)
            if not self._chosen(raw, where, unchosen, variants):
                continue
            raw = {k: v for k, v in raw.items() if k != "enabled_if"}
            filled = _substitute(raw, self.parameters, where, used)
            shape = filled.get("shape")
            cls = SHAPES.get(shape) if isinstance(shape, str) else None
            if cls is None:
                raise PolicyFileError("<policy>", f"{where}.shape", shape,
                                      "one of " + ", ".join(sorted(SHAPES)),
                                      suggestion=nearest(shape, SHAPES))
            try:
                spec = cls.model_validate(filled)
            except ValidationError as exc:
                raise _rule_error(exc, cls, shape, raw, filled, where) from None
            if spec.id in seen:
                raise PolicyFileError("<policy>", f"{where}.id", spec.id,
                                      "a rule id unique in the policy")
            seen.add(spec.id)
            specs.append(spec)
        self._check_variants_chosen(unchosen, variants, seen)
        _check_references(specs, seen)
        self._specs = tuple(specs)
        self._check_in_force()
        return self

    def _chosen(self, raw: dict[str, Any], where: str,
                unchosen: dict[str, dict[str, list[Any]]], variants: dict[str, int]) -> bool:
        """Whether the parameters enable this rule (variant); a rule left out records the
        values that would have chosen it."""
        found = raw.get("id")
        rid = found if isinstance(found, str) else repr(found)
        variants[rid] = variants.get(rid, 0) + 1
        if self._enabled(raw.get("enabled_if"), where):
            return True
        for name, wanted in raw["enabled_if"].items():
            unchosen.setdefault(rid, {}).setdefault(name, []).extend(
                wanted if isinstance(wanted, list) else [wanted])
        return False

    def _check_variants_chosen(self, unchosen: dict[str, dict[str, list[Any]]],
                               variants: dict[str, int], seen: set[str]) -> None:
        for rule_id, choices in unchosen.items():
            if rule_id in seen or variants[rule_id] < 2:
                continue  # a variant is chosen, or a lone rule a parameter switches off
            # Alternative readings of a rule: a value none accepts would drop it unsaid.
            for name, values in choices.items():
                if self.parameters[name] not in values:
                    raise PolicyFileError("<policy>", f"parameters.{name}",
                                          self.parameters[name],
                                          f"one of {', '.join(map(str, values))} (rule "
                                          f"{rule_id} has a variant for each)",
                                          suggestion=nearest(str(self.parameters[name]),
                                                             [str(v) for v in values]))

    def _check_in_force(self) -> None:
        first, last = self.in_force_from(), self.in_force_until()
        if first is not None and last is not None and first >= last:
            start, end = self.effective_from, self.effective_until
            raise PolicyFileError("<policy>", "effective_until", _date_text(end),
                                  f"a date or date-time after effective_from ({_date_text(start)})")

    def _enabled(self, condition: Any, where: str) -> bool:
        """A rule's ``enabled_if: {parameter: value or [values]}``: alternative readings of one
        rule (callback R2 counted per director or per household) chosen by a parameter."""
        if condition is None:
            return True
        if not isinstance(condition, dict) or not condition:
            raise PolicyFileError("<policy>", f"{where}.enabled_if", condition,
                                  "a mapping of parameter names to values")
        for name, wanted in condition.items():
            if name not in self.parameters:
                raise PolicyFileError("<policy>", f"{where}.enabled_if.{name}", name,
                                      "a declared parameter",
                                      suggestion=nearest(name, self.parameters))
            choices = wanted if isinstance(wanted, list) else [wanted]
            if self.parameters[name] not in choices:
                return False
        return True

    @property
    def specs(self) -> tuple[RuleSpec, ...]:
        """The rules, validated. For a policy with versions: the latest version's rules,
        then those only earlier versions have."""
        if self._versions:
            by_id: dict[str, RuleSpec] = {}
            for v in reversed(self._versions):
                for spec in v._specs:
                    by_id.setdefault(spec.id, spec)
            return tuple(by_id.values())
        return self._specs

    @property
    def versions(self) -> tuple[Policy, ...]:
        """The versions of this policy in force by date, earliest first (see
        docs/versions.md); a policy without versions is its only one."""
        return self._versions or (self,)

    def in_force_from(self) -> datetime | None:
        """The first instant this version is in force (None: from the beginning)."""
        return _instant(self.effective_from, self.calendar)

    def in_force_until(self) -> datetime | None:
        """The instant this version stops being in force, as written (``effective_until``;
        a version of a set without one ends where the next begins)."""
        return _instant(self.effective_until, self.calendar)

    @cached_property
    def info(self) -> PolicyInfo:
        return PolicyInfo(id=self.id, version=self.version, clause=self.clause,
                          calendar=self.calendar, fingerprint=self.fingerprint())

    def rule(self, rule_id: str) -> RuleSpec:
        """The rule ``rule_id`` (a part's own id, such as ``R2b``). A rulebook rule the policy
        only splits into parts (``R7`` as ``R7a``-``R7d``) is not one rule: the error names
        its parts."""
        for spec in self._specs:
            if spec.id == rule_id:
                return spec
        parts = [s.id for s in self._specs if s.part_of == rule_id]
        if parts:
            raise ParameterError("rule", rule_id,
                                 f"one rule of {self.id}: {rule_id} is split into the parts "
                                 f"{', '.join(parts)}; name one of them", suggestion=parts[0])
        raise ParameterError("rule", rule_id, f"a rule of {self.id}",
                             suggestion=nearest(rule_id, [s.id for s in self._specs]))

    def model_copy(self, *, update: Mapping[str, Any] | None = None,
                   deep: bool = False) -> Policy:
        """A copy; with ``update`` the changed definition is validated again, so its rules,
        :attr:`info` and fingerprint follow the change (a plain copy would keep them)."""
        if update:
            return Policy.model_validate({**self.model_dump(), **update})
        return super().model_copy(deep=deep)

    def with_parameters(self, **values: Any) -> Policy:
        """A copy with some parameters changed; an unknown name is an error with a hint.
        A policy with versions has them changed in every version."""
        if self._versions:
            return _schedule([v.with_parameters(**values) for v in self._versions],
                             list(self._version_origins))
        for name in values:
            if name not in self.parameters:
                raise ParameterError(f"{self.id}.parameters.{name}", values[name],
                                     "a parameter of this policy",
                                     suggestion=nearest(name, self.parameters))
        data = self.model_dump()
        data["parameters"] = {**self.parameters, **values}
        return Policy.model_validate(data)

    def fingerprint(self) -> str:
        """A digest of the policy's full definition: id, version, texts, calendar,
        parameters and rules as written (mapping keys in any order). Every decision records
        it and its id depends on it; snapshots refuse another one."""
        return self._kept_fingerprint or self._digest

    def _only_rules(self, rule_ids: Iterable[str]) -> Policy:
        """This policy running only ``rule_ids`` (with the rules they read, or it does not
        validate), keeping its fingerprint: a shard of the policy makes the very decisions,
        ids included, that the whole policy makes for those rules."""
        wanted = set(rule_ids)
        if wanted >= {s.id for s in self.specs}:
            return self
        if self._versions:
            part = _schedule([v._only_rules(wanted) for v in self._versions],
                             list(self._version_origins))
            part._kept_fingerprint = self.fingerprint()
            return part
        data = self.model_dump()
        # By the rule's own id: alternative readings of one rule (enabled_if) share it, and
        # the parameters still choose among them.
        data["rules"] = [raw for raw in self.rules if raw.get("id") in wanted]
        part = Policy.model_validate(data)
        part._kept_fingerprint = self.fingerprint()
        return part

    @cached_property
    def _digest(self) -> str:
        import json

        # Keys sorted: the same policy written in YAML (keys in any order), TOML or Python
        # gives the same fingerprint, so the same decision ids.
        if self._versions:
            # All the versions and their dates: another schedule is another policy.
            joined = "|".join(v.fingerprint() for v in self._versions)
            return _fingerprint_of(joined)
        # The dates enter only when given: a policy without them keeps its fingerprint.
        unset = {k for k in ("effective_from", "effective_until") if getattr(self, k) is None}
        data = self.model_dump(mode="json", exclude=unset)
        data["rules"] = [_hashed_rule(r) for r in data["rules"]]
        text = json.dumps(data, sort_keys=True,
                          ensure_ascii=False, separators=(",", ":"))
        return _fingerprint_of(text)

    def __repr__(self) -> str:
        rules = ", ".join(s.id for s in self._specs)
        return (f"<Policy {self.id} v{self.version}: {len(self._specs)} rules [{rules}], "
                f"fingerprint {self.fingerprint()}>")

    def __str__(self) -> str:
        return repr(self)

    def _repr_html_(self) -> str:
        from html import escape

        params = ", ".join(f"{k}={v!r}" for k, v in self.parameters.items())
        head = [("policy", f"{self.id} (version {self.version})"),
                ("title", f"{self.title} {self.title_zh}".strip()), ("clause", self.clause),
                ("calendar", self.calendar.timezone), ("parameters", params),
                ("fingerprint", self.fingerprint())]
        rows = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th>"
                       f"<td style='text-align:left' colspan='2'>{escape(v)}</td></tr>"
                       for k, v in head if v)
        rules = "".join(f"<tr><th style='text-align:left'>{escape(s.id)}</th>"
                        f"<td style='text-align:left'>{escape(s.shape)}</td>"
                        f"<td style='text-align:left'>{escape(s.title)}</td></tr>"
                        for s in self._specs)
        return f"<table class='pk-policy'><tbody>{rows}{rules}</tbody></table>"


class PolicySet:
    """An ordered set of policies with unique ids."""

    def __init__(self, policies: Iterable[Policy]) -> None:
        self._by_id: dict[str, Policy] = {}
        # Where each policy came from ("acme.yaml:12"), where known: for duplicate-id errors.
        self._origins: dict[str, str] = {}
        first: dict[str, int] = {}  # id -> where it came first
        # Versions in force by date (docs/versions.md) join into one policy, once all are
        # seen; one id twice with no dates on either is an error.
        versions: dict[str, list[tuple[Policy, str]]] = {}
        for i, p in enumerate(policies):
            if p.id in self._by_id:
                if not (dated(p) or p.id in versions or dated(self._by_id[p.id])):
                    raise ParameterError("policies", p.id, "unique policy ids")
                versions.setdefault(p.id, [(self._by_id[p.id], f"policy #{first[p.id]}")])
                versions[p.id].append((p, f"policy #{i}"))
                continue
            first[p.id] = i
            self._by_id[p.id] = p
        for pid, given in versions.items():
            self._by_id[pid] = _schedule([p for p, _ in given], [o for _, o in given])

    def __add__(self, other: object) -> PolicySet:
        """The policies of both sets (or of this set and one more policy), this set's
        first; one id in both is a ParameterError naming where each came from."""
        if isinstance(other, Policy):
            other = PolicySet([other])
        if not isinstance(other, PolicySet):
            return NotImplemented
        return _combine([(self, "the left-hand set"), (other, "the right-hand set")])

    def __radd__(self, other: object) -> PolicySet:
        # sum(sets) starts from 0; a policy + a set is a set too.
        if isinstance(other, int) and other == 0:
            return self
        if isinstance(other, Policy):
            return PolicySet([other]) + self
        return NotImplemented

    def __iter__(self) -> Iterator[Policy]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, policy_id: object) -> bool:
        return policy_id in self._by_id

    def __repr__(self) -> str:
        shown = ", ".join(f"{p.id}@{p.version}" for p in list(self)[:8])
        more = f", ... {len(self) - 8} more" if len(self) > 8 else ""
        return (f"<PolicySet of {len(self)}: {shown}{more}; "
                f"fingerprint {self.fingerprint()}>")

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td style='text-align:left'>{escape(p.id)}</td><td>{escape(p.version)}</td>"
            f"<td style='text-align:left'>{escape(p.title)}</td><td>{len(p.specs)}</td>"
            f"<td style='text-align:left'><code>{escape(p.fingerprint())}</code></td></tr>"
            for p in self)
        return ("<table class='pk-policies'><thead><tr><th>policy</th><th>version</th>"
                "<th>title</th><th>rules</th><th>fingerprint</th></tr></thead>"
                f"<tbody>{rows}</tbody><tfoot><tr><td colspan='5' style='text-align:left'>"
                f"set fingerprint <code>{escape(self.fingerprint())}</code></td></tr></tfoot>"
                "</table>")

    @property
    def ids(self) -> list[str]:
        return list(self._by_id)

    def get(self, policy_id: str) -> Policy:
        try:
            return self._by_id[policy_id]
        except KeyError:
            raise ParameterError("policy", policy_id, "a policy id of this set",
                                 suggestion=nearest(policy_id, self._by_id)) from None

    def __getitem__(self, policy_id: str) -> Policy:
        return self.get(policy_id)

    def select(self, *policy_ids: str) -> PolicySet:
        return PolicySet(self.get(i) for i in policy_ids)

    def with_parameters(self, policy_id: str, **values: Any) -> PolicySet:
        changed = self.get(policy_id).with_parameters(**values)
        return PolicySet(changed if p.id == policy_id else p for p in self)

    def replace(self, policy: Policy) -> PolicySet:
        """This set with ``policy`` added, or replacing the one with its id."""
        out = dict(self._by_id)
        out[policy.id] = policy
        return PolicySet(out.values())

    def fingerprint(self) -> str:
        """A digest of the set's policies (ids and fingerprints, in order)."""
        return _fingerprint_of("|".join(f"{p.id}:{p.fingerprint()}" for p in self))


def _combine(parts: Iterable[tuple[PolicySet, str]]) -> PolicySet:
    """Join sets in order; ``parts`` pairs each set with what to call it where it does not
    know a policy's origin. One id twice raises a ParameterError naming both origins."""
    by_id: dict[str, Policy] = {}
    origins: dict[str, str] = {}
    for ps, name in parts:
        for p in ps:
            origin = ps._origins.get(p.id, name)
            if p.id in by_id:
                if not (dated(p) or dated(by_id[p.id])):
                    raise ParameterError("policies", p.id, "each policy id once: "
                                         f"{p.id!r} comes from {origins[p.id]} and from "
                                         f"{origin}")
                p = _schedule([by_id[p.id], p], [origins[p.id], origin])
            by_id[p.id] = p
            origins[p.id] = origin
    out = PolicySet(by_id.values())
    out._origins = origins
    return out


def _warn_population(where: str, rule: str, population: dict[str, Any],
                     context: Any) -> None:
    """The DeprecationWarning for a population in the ``{type, member, where, leave}``
    spelling: where it is (the file and line when loaded from one) and how to write it."""
    import warnings

    import yaml

    ctx = context if isinstance(context, dict) else {}
    source = ctx.get("source", "<policy>")
    line = ctx["line"](f"{where}.population") if "line" in ctx else None
    new = yaml.safe_dump(respell_population(population), default_flow_style=True,
                         sort_keys=False, allow_unicode=True, width=1 << 20).strip()
    warnings.warn(f"{source}{f':{line}' if line else ''}: {where}.population (rule {rule}): "
                  "the spelling {type, member, where, leave} is deprecated; write "
                  f"population: {new}", DeprecationWarning, stacklevel=2)


#: The shapes whose populations were spelled ``{type, member, where, leave}`` before every
#: shape read one spelling.
_OLD_SPELLING_SHAPES = frozenset({"gap", "rate"})


def _hashed_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """``rule`` as its policy's fingerprint reads it. A gap's or rate's population is hashed
    in the spelling those shapes had before (``{type, member, where, leave}``) when it can be
    written so: the same rule in either spelling keeps the fingerprint it always had, hence
    the same decision ids."""
    pop = rule.get("population")
    if rule.get("shape") not in _OLD_SPELLING_SHAPES or not isinstance(pop, dict) \
            or old_population(pop):
        return rule
    start, end = pop.get("start"), pop.get("end", [])
    ends = [end] if isinstance(end, dict) else end
    if not (isinstance(start, dict) and "type" in start and start.keys() <= {"type", "where"}
            and "field" in pop and pop.keys() <= {"start", "end", "field"}
            and isinstance(ends, list)
            and all(isinstance(e, dict) and e.keys() == {"type"} for e in ends)):
        return rule
    old = {"type": start["type"], "member": pop["field"]}
    if "where" in start:
        old["where"] = start["where"]
    if "end" in pop:
        old["leave"] = end["type"] if isinstance(end, dict) else [e["type"] for e in ends]
    return {**rule, "population": old}


def _date_text(value: date | datetime | None) -> str:
    return "the beginning" if value is None else value.isoformat()


def _instant(value: date | datetime | None, calendar: BusinessCalendar) -> datetime | None:
    """A policy date as an instant: a day is its first instant and a naive date-time its
    wall time, both in the calendar's zone; an aware date-time is itself."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return calendar.start_of_day(value)
    if value.tzinfo is None:
        return calendar.at(value.date(), value.timetz())
    return value


def version_text(policy: Policy) -> str:
    """The version, or for a policy with versions each with the date it is in force from
    (``1 until ..., 2 from 2026-04-01``): what a snapshot records and its errors name."""
    if not policy._versions:
        return policy.version
    return ", ".join(f"{v.version} from {_date_text(v.effective_from)}"
                     + (f" until {_date_text(v.effective_until)}" if v.effective_until else "")
                     for v in policy._versions)


def _fingerprint_of(text: str) -> str:
    """The one digest every fingerprint is (a policy's, a version schedule's, a set's)."""
    import hashlib

    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def has_versions(policy: Policy) -> bool:
    """True for a policy standing for versions in force by date (docs/versions.md)."""
    return bool(policy._versions)


def dated(policy: Policy) -> bool:
    """True for a policy with versions, or a version with an effective date."""
    return bool(policy._versions) or policy.effective_from is not None \
        or policy.effective_until is not None


def _schedule(policies: Iterable[Policy], origins: Iterable[str]) -> Policy:
    """One policy standing for the versions ``policies`` give (policies with versions
    contribute theirs), each in force from its ``effective_from`` (an entry without one:
    from the beginning) until its ``effective_until`` or else the next one's start.
    ``origins`` say where each came from; a ParameterError names both of two versions
    that overlap, start together, or give one rule id in two shapes."""
    flat: list[tuple[Policy, str]] = []
    for p, origin in zip(policies, origins, strict=True):
        if p._versions:
            flat += zip(p._versions, p._version_origins, strict=True)
        else:
            flat.append((p, origin))
    pid = flat[0][0].id

    def start(item: tuple[Policy, str]) -> tuple[int, datetime]:
        at = item[0].in_force_from()
        return (0, datetime.min.replace(tzinfo=UTC)) if at is None else (1, at)

    def clash(a: tuple[Policy, str], b: tuple[Policy, str], why: str) -> ParameterError:
        return ParameterError("policies", pid, f"versions of {pid!r} in force at different "
                              f"times: {why} (the version from {a[1]} and the one from {b[1]})")

    flat.sort(key=start)
    for a, b in pairwise(flat):
        a_from, b_from = a[0].in_force_from(), b[0].in_force_from()
        a_until = a[0].in_force_until()
        if b_from is None:  # both from the beginning (the sort puts those first)
            raise clash(a, b, "two versions without effective_from, both in force from "
                              "the beginning")
        if a_from == b_from:
            raise clash(a, b, f"both in force from {_date_text(b[0].effective_from)}")
        if a_until is not None and a_until > b_from:
            raise clash(a, b, f"one is in force until {_date_text(a[0].effective_until)}, "
                              f"after the other's effective_from "
                              f"{_date_text(b[0].effective_from)}")
    shapes: dict[str, tuple[str, tuple[Policy, str]]] = {}
    for item in flat:
        for spec in item[0]._specs:
            seen = shapes.setdefault(spec.id, (spec.shape, item))
            if seen[0] != spec.shape:
                raise clash(seen[1], item, f"rule {spec.id} is a {seen[0]} in one and a "
                                           f"{spec.shape} in the other; a rule keeps its "
                                           "shape across versions (its state carries over)")
    latest = flat[-1][0]
    out = Policy.model_validate(latest.model_dump())
    out._versions = tuple(p for p, _ in flat)
    out._version_origins = tuple(o for _, o in flat)
    return out
