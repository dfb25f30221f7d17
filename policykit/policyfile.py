"""Policy files: YAML, TOML or JSON that validate into the same models as the standard pack.

A file either defines one policy (top-level ``id`` and ``rules``) or a set::

    include: [base.yaml]        # optional: other policy files, relative to this one
    events:                     # optional: event types of the application, declared here
      elevator.fault: {fields: {elevator_id: id, severity: {type: enum, values: [minor, major]}}}
    pack: standard              # optional: start from every policy of a pack
    exclude: [site-access]      # optional: standard policies to leave out
    calendar: {timezone: Europe/Berlin}   # optional: for every policy of the file
    policies:
      - use: lateness-deduction             # a standard policy, tuned
        parameters: {tier_mode: marginal, tier_threshold: 4}
      - id: patrol-night                    # a policy of your own, in the rule shapes
        title: Night patrols
        clause: site rules §3
        rules: [...]

Packs are found through the entry point group ``policykit.packs`` (``standard`` is one;
it is built in, so it works even where the entry points are not installed). Included files'
policies come first; one policy id in two files is an error naming both.

A bad file raises one :class:`PolicyFileError` naming the file, the path inside it, the line
(YAML and JSON), the bad value, what was expected and the nearest valid name.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ._yamllines import LineMap
from .calendar import BusinessCalendar
from .errors import ParameterError, PolicyFileError, PolicyKitError, format_loc, nearest
from .models.declared import declare_event_types, rollback_on_error
from .policy import Policy, PolicySet, _combine, _schedule, dated

__all__ = ["PolicyLike", "load_policy", "loads_policy", "resolve_policies"]

#: Policy files larger than this are refused before parsing (hostile input). The largest
#: standard policy is under 20 KiB; parsing TOML (pure Python) costs about 0.7 s per MiB.
MAX_BYTES = 1024 * 1024
#: Nesting deeper than this is refused before building anything (parsers recurse).
MAX_DEPTH = 64
#: A document with more nodes (scalars, keys, lists, mappings) than this is refused before
#: its lines are mapped and before validation: the largest standard policy has about 550.
#: In YAML each use of an alias counts as a copy of what it names ("billion laughs": a few
#: lines of anchors can stand for billions of nodes, which validation would walk one by
#: one); YAML is scanned as an event stream, JSON and TOML counted right after the parser
#: (a C parser for JSON) and before anything else.
MAX_NODES = 20_000
_SET_KEYS = ("include", "events", "pack", "exclude", "calendar", "policies")
#: How deep ``include:`` may nest (a file including a file ... ), counting the first file.
MAX_INCLUDE_DEPTH = 16
#: The entry point group packs register in: ``name = "module:callable"`` where the callable
#: returns a PolicySet (or the object is one).
PACK_GROUP = "policykit.packs"
_USE_KEYS = ("use", "parameters", "calendar", "version", "effective_from", "effective_until")
#: What a ``use:`` entry may set besides parameters and calendar (docs/versions.md).
_VERSION_KEYS = ("version", "effective_from", "effective_until")
_POLICY_KEYS = tuple(Policy.model_fields)




def _check_yaml_size(text: str, source: str) -> None:
    """Refuse deep or alias-bombed YAML by scanning its event stream (which needs no
    recursion and builds nothing): depth, and node count with aliases expanded."""
    sizes: dict[str, int] = {}  # anchor -> expanded node count of the node it names
    stack: list[list[Any]] = []  # open collections: [anchor, expanded nodes so far]
    total = 0

    def add(n: int) -> None:
        nonlocal total
        total += n
        for frame in stack:
            frame[1] += n
        if total > MAX_NODES:
            raise PolicyFileError(source, "", f"more than {MAX_NODES} nodes",
                                  f"a policy file of at most {MAX_NODES} YAML nodes, aliases "
                                  "counted as copies of what they name")

    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            add(sizes.get(event.anchor or "", 1))
        elif isinstance(event, yaml.ScalarEvent):
            add(1)
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            add(1)
            stack.append([event.anchor, 1])
            if len(stack) > MAX_DEPTH:
                raise PolicyFileError(source, "", "<deeply nested>",
                                      f"a policy file nested at most {MAX_DEPTH} levels",
                                      line=event.start_mark.line + 1 if event.start_mark
                                      else None)
        elif isinstance(event, yaml.CollectionEndEvent) and stack:
            anchor, size = stack.pop()
            if anchor:
                sizes[anchor] = size


def _check_tree(data: Any, source: str) -> None:
    """Refuse parsed data nested deeper than MAX_DEPTH or of more than MAX_NODES nodes
    (iterative: no recursion limit; stops at the first node beyond either)."""
    stack: list[tuple[Any, int]] = [(data, 0)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise PolicyFileError(source, "", "<deeply nested>",
                                  f"a policy file nested at most {MAX_DEPTH} levels")
        nodes += 1
        if isinstance(item, Mapping):
            nodes += len(item)  # the keys
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        if nodes > MAX_NODES:
            raise PolicyFileError(source, "", f"more than {MAX_NODES} nodes",
                                  f"a policy file of at most {MAX_NODES} nodes")


MAX_KEY_PARTS = 64
"""Most dotted parts in one TOML key or table header (``a.b.c`` has 3)."""

# What the TOML pre-scan looks at: string openers, comments, brackets, key separators.
_TOML_SPECIAL = re.compile(r"[\"'#\[\]{}=,.\n]")
_TOML_STRINGS = {
    '"""': re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""', re.S),
    "'''": re.compile(r"'''.*?'''", re.S),
    '"': re.compile(r'"(?:[^"\\\n]|\\.)*"'),
    "'": re.compile(r"'[^'\n]*'"),
}


def _check_toml_shape(text: str, source: str) -> None:
    """Refuse, before ``tomllib`` reads it, TOML whose keys have more than MAX_KEY_PARTS
    dotted parts or whose brackets and braces nest deeper than MAX_DEPTH.

    ``tomllib`` takes time and memory quadratic in the parts of a dotted key or table
    header (50,000 parts: 15 s and 4 GB), so the limits on the parsed tree come too late.
    This lexical scan skips strings and comments and counts dots and brackets outside
    them; it is linear, and stops (leaving the error to ``tomllib``) at an unterminated
    string."""
    depth = dots = 0
    line = 1
    pos = 0
    search = _TOML_SPECIAL.search
    while (m := search(text, pos)) is not None:
        c = m.group()
        i = m.start()
        pos = i + 1
        if c == "\n":
            line += 1
            dots = 0
        elif c == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                raise PolicyFileError(source, "", f"a key of more than {MAX_KEY_PARTS} "
                                      "dotted parts",
                                      f"keys and table headers of at most {MAX_KEY_PARTS} "
                                      "dotted parts", line=line)
        elif c == "#":
            end = text.find("\n", i)
            if end < 0:
                return
            pos = end
        elif c in "\"'":
            opener = c * 3 if text.startswith(c * 3, i) else c
            sm = _TOML_STRINGS[opener].match(text, i)
            if sm is None:
                return  # unterminated: tomllib says where
            pos = sm.end()
            line += text.count("\n", i, pos)
        else:
            dots = 0
            if c in "[{":
                depth += 1
                if depth > MAX_DEPTH:
                    raise PolicyFileError(source, "", f"brackets nested over {MAX_DEPTH} "
                                          "deep", f"a policy file nested at most {MAX_DEPTH} "
                                          "levels", line=line)
            elif c in "]}":
                depth = max(depth - 1, 0)


def _parse(text: str, fmt: str, source: str) -> tuple[Any, LineMap]:
    data, lines = _parse_text(text, fmt, source)
    _check_tree(data, source)
    return data, lines


def _parse_text(text: str, fmt: str, source: str) -> tuple[Any, LineMap]:
    try:
        if fmt == "yaml":
            _check_yaml_size(text, source)
        if fmt == "toml":
            _check_toml_shape(text, source)
            return tomllib.loads(text), LineMap(None)
        if fmt == "json":
            data = json.loads(text, parse_constant=_no_constant)
            _check_tree(data, source)  # before composing it again, which costs far more
            # JSON is (nearly) YAML: compose it again only to learn the lines.
            try:
                node = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                node = None
            return data, LineMap(node)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
        return data, LineMap(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise PolicyFileError(source, "", _problem(exc), f"valid {fmt.upper()}",
                              line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError(source, "", str(exc), f"valid {fmt.upper()}") from None
    except json.JSONDecodeError as exc:
        raise PolicyFileError(source, "", exc.msg, "valid JSON", line=exc.lineno) from None
    except tomllib.TOMLDecodeError as exc:
        raise PolicyFileError(source, "", str(exc), "valid TOML") from None
    except RecursionError:
        raise PolicyFileError(source, "", "<deeply nested>",
                              "a policy file of sane depth") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise PolicyFileError(source, "", _short_text(str(exc)), f"valid {fmt.upper()}") \
            from None


def _short_text(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _no_constant(name: str) -> Any:
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


def _problem(exc: yaml.MarkedYAMLError) -> str:
    return " ".join(str(p) for p in (exc.context, exc.problem) if p)


def _unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], source: str, path: str,
                  lines: LineMap) -> None:
    for key in data:
        if key not in allowed:
            sub = f"{path}.{key}" if path else str(key)
            raise PolicyFileError(source, sub, key, "one of " + ", ".join(allowed),
                                  line=lines.line(sub), suggestion=nearest(key, allowed))


#: What a validator may raise besides ValidationError when given data no rule expects (a
#: rule shape's checks are plain Python): turned into a PolicyFileError at the path.
_UNEXPECTED = (TypeError, KeyError, AttributeError, IndexError, OverflowError, ArithmeticError,
               RecursionError, ValueError, ValidationError)


def _unexpected(exc: BaseException, source: str, path: str, lines: LineMap) -> PolicyFileError:
    return PolicyFileError(source, path, _short_text(f"{type(exc).__name__}: {exc}"),
                           "values of the types the rule shapes take", line=lines.line(path))


def _policy(data: Any, source: str, path: str, lines: LineMap,
            calendar: BusinessCalendar | None) -> Policy:
    if not isinstance(data, Mapping):
        raise PolicyFileError(source, path, data, "a mapping defining a policy",
                              line=lines.line(path))
    _unknown_keys(data, _POLICY_KEYS, source, path, lines)
    if calendar is not None and "calendar" not in data:
        data = {**data, "calendar": calendar.model_dump()}
    try:
        # The context lets a deprecation warning name the file and line (policy.py).
        return Policy.model_validate(data, context={
            "source": source, "line": lambda sub: lines.line(f"{path}.{sub}" if path else sub)})
    except PolicyFileError as exc:
        sub = f"{path}.{exc.path}" if path else exc.path
        raise PolicyFileError(source, sub, exc.value, exc.expected, line=lines.line(sub),
                              suggestion=exc.suggestion) from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        loc, msg = err["loc"], err["msg"].removeprefix("Value error, ")
        if loc and loc[0] in ("effective_from", "effective_until"):
            # Not the union member pydantic tried last (``effective_from.date``).
            loc, msg = loc[:1], "a date (2026-04-01) or a date-time (2026-04-01T08:00:00)"
        sub = format_loc(loc, path)
        value = err.get("input") if err["type"] != "missing" else "<missing>"
        raise PolicyFileError(source, sub, value, msg, line=lines.line(sub)) from None
    except _UNEXPECTED as exc:
        raise _unexpected(exc, source, path, lines) from None


def _calendar(data: Any, source: str, path: str, lines: LineMap) -> BusinessCalendar:
    try:
        return BusinessCalendar.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        sub = format_loc(err["loc"], path)
        raise PolicyFileError(source, sub, err.get("input"),
                              err["msg"].removeprefix("Value error, "),
                              line=lines.line(sub)) from None
    except PolicyKitError as exc:
        raise PolicyFileError(source, path, _short_text(str(exc)), "a valid calendar",
                              line=lines.line(path)) from None
    except _UNEXPECTED as exc:
        raise _unexpected(exc, source, path, lines) from None


def _entry_points() -> dict[str, Any]:
    """The installed packs' entry points by name (a seam for tests)."""
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=PACK_GROUP)}


def _builtin_standard() -> PolicySet:
    from .pack import standard_pack

    return standard_pack()


def _pack_loaders() -> dict[str, Callable[[], Any]]:
    found: dict[str, Callable[[], Any]] = {name: ep.load for name, ep in _entry_points().items()}
    # Built in as well: a source checkout or an editable install without fresh metadata
    # has no entry points, and `pack: standard` must work there too.
    found.setdefault("standard", lambda: _builtin_standard)
    return found


def _installed_packs() -> tuple[dict[str, PolicySet], dict[str, str]]:
    """Every installed pack by name (the standard pack first), and why those that failed
    to load did (listings show the rest; loading a file that names one raises)."""
    packs: dict[str, PolicySet] = {}
    failed: dict[str, str] = {}
    for name, load in sorted(_pack_loaders().items(), key=lambda kv: (kv[0] != "standard",
                                                                        kv[0])):
        try:
            obj = load()
            pack = obj() if callable(obj) and not isinstance(obj, PolicySet) else obj
        except Exception as exc:  # a third-party plugin's failure
            failed[name] = _short_text(f"{type(exc).__name__}: {exc}")
            continue
        if isinstance(pack, PolicySet):
            packs[name] = pack
        else:
            failed[name] = f"its entry point gives {type(pack).__name__}, not a PolicySet"
    return packs, failed


def _named_pack(name: Any, source: str, path: str, lines: LineMap) -> PolicySet:
    """The pack installed under ``name``, or a PolicyFileError naming the nearest one."""
    loaders = _pack_loaders()
    if not isinstance(name, str) or name not in loaders:
        raise PolicyFileError(source, path, name, "the name of an installed pack: "
                              + ", ".join(sorted(loaders)), line=lines.line(path),
                              suggestion=nearest(name, sorted(loaders)))
    try:
        obj = loaders[name]()
        pack = obj() if callable(obj) and not isinstance(obj, PolicySet) else obj
    except PolicyFileError:
        raise
    except Exception as exc:  # a third-party plugin's failure, named as the pack's
        raise PolicyFileError(source, path, name, "a pack that loads, but it raised "
                              + _short_text(f"{type(exc).__name__}: {exc}"),
                              line=lines.line(path)) from None
    if not isinstance(pack, PolicySet):
        raise PolicyFileError(source, path, name, "a pack whose entry point gives a PolicySet, "
                              f"not {type(pack).__name__}", line=lines.line(path))
    return pack


def _use(entry: Mapping[str, Any], source: str, path: str, lines: LineMap,
         calendar: BusinessCalendar | None, pack: PolicySet | None = None) -> Policy:
    """A policy of the file's pack (or else of the standard pack), tuned."""
    _unknown_keys(entry, _USE_KEYS, source, path, lines)
    standard = _builtin_standard()
    name = entry["use"]
    known = [*(pack.ids if pack is not None else ()), *standard.ids]
    if not isinstance(name, str) or name not in known:
        raise PolicyFileError(source, f"{path}.use", name,
                              "a policy id of the pack" if pack is not None
                              else "a standard policy id",
                              line=lines.line(f"{path}.use"), suggestion=nearest(name, known))
    policy = pack.get(name) if pack is not None and name in pack else standard.get(name)
    params = entry.get("parameters") or {}
    if not isinstance(params, Mapping):
        raise PolicyFileError(source, f"{path}.parameters", params, "a mapping of parameters",
                              line=lines.line(f"{path}.parameters"))
    try:
        policy = policy.with_parameters(**params)
    except ParameterError as exc:
        bad = exc.name.rsplit(".", 1)[-1]
        sub = f"{path}.parameters.{bad}"
        raise PolicyFileError(source, sub, bad, f"a parameter of {name}: "
                              + ", ".join(policy.parameters), line=lines.line(sub),
                              suggestion=exc.suggestion) from None
    except PolicyFileError as exc:
        # A parameter value the rule refuses: point at the parameter the user wrote.
        sub = f"{path}.{exc.path}" if exc.path.startswith("parameters.") \
            else f"{path}.parameters"
        raise PolicyFileError(source, sub, exc.value, exc.expected,
                              line=lines.line(sub), suggestion=exc.suggestion) from None
    except _UNEXPECTED as exc:
        raise _unexpected(exc, source, f"{path}.parameters", lines) from None
    cal = entry.get("calendar")
    chosen = _calendar(cal, source, f"{path}.calendar", lines) if cal is not None else calendar
    if chosen is not None:
        data = policy.model_dump()
        data["calendar"] = chosen.model_dump()
        try:
            policy = Policy.model_validate(data)
        except (PolicyFileError, *_UNEXPECTED) as exc:
            raise PolicyFileError(source, f"{path}.calendar", _short_text(str(exc)),
                                  "a calendar the policy's rules accept",
                                  line=lines.line(f"{path}.calendar")) from None
    dated = {k: entry[k] for k in _VERSION_KEYS if k in entry}
    if dated:
        policy = _policy({**policy.model_dump(), **dated}, source, path, lines, None)
    return policy


def loads_policy(text: str, fmt: str = "yaml", *, source: str = "<policy>",
                 base_dir: str | Path | None = None) -> PolicySet:
    """Validate a policy file given as text (``fmt``: yaml, toml or json); ``include:``
    paths are read from ``base_dir`` (default: the working folder)."""
    base = Path(base_dir) if base_dir is not None else Path()
    with rollback_on_error():  # a file that does not load registers no event types
        return _loads(text, fmt, source, base, ((_key(Path(source)), source),))


def _key(path: Path) -> str:
    try:
        return str(path.resolve())
    except (OSError, RuntimeError):
        return str(path.absolute())


#: The files being loaded, outermost first: (resolved path, the path as shown).
_Chain = tuple[tuple[str, str], ...]


def _loads(text: str, fmt: str, source: str, base: Path, chain: _Chain) -> PolicySet:
    _check_text(text, fmt, source)
    data, lines = _parse(text, fmt, source)
    if not isinstance(data, Mapping):
        raise PolicyFileError(source, "", data, "a mapping at the top of the file",
                              line=lines.line(""))
    # The file's own event types first: its rules' field paths are checked against them.
    declare_event_types(data.get("events"), source, lines.line)
    if "rules" in data and "policies" not in data:
        data = {k: v for k, v in data.items() if k != "events"} if "events" in data else data
        one = PolicySet([_policy(data, source, "", lines, None)])
        one._origins = {p.id: _where(source, lines, "") for p in one}
        return one
    _unknown_keys(data, _SET_KEYS, source, "", lines)
    included = _includes(data.get("include"), source, base, lines, chain)
    calendar = _calendar(data["calendar"], source, "calendar", lines) \
        if data.get("calendar") is not None else None
    read = _Read(source, lines)
    pack = read.pack(data, calendar)
    entries = data.get("policies") or []
    if not isinstance(entries, list):
        raise PolicyFileError(source, "policies", entries, "a list of policies",
                              line=lines.line("policies"))
    if not entries and not read.chosen and len(included) == 0 and not data.get("events"):
        raise PolicyFileError(source, "policies", entries,
                              "at least one policy (or pack, include or events)",
                              line=lines.line("policies"))
    read.entries(entries, calendar, pack, data.get("pack"))
    read.once_with(included)
    own = PolicySet(read.chosen.values())
    own._origins = read.origins
    try:
        return _combine([(included, source), (own, source)])
    except ParameterError as exc:  # versions of an included file and of this one clash
        path = read.paths.get(str(exc.value), "policies")
        raise PolicyFileError(source, path, exc.value, exc.expected,
                              line=lines.line(path)) from None


def _check_text(text: str, fmt: str, source: str) -> None:
    """A policy file's text, before it is parsed: a known format, text, not too large."""
    if fmt not in ("yaml", "toml", "json"):
        raise ParameterError("fmt", fmt, "yaml, toml or json",
                             suggestion=nearest(fmt, ("yaml", "toml", "json")))
    if not isinstance(text, str):
        raise PolicyFileError(source, "", type(text).__name__, "the policy file as text")
    if len(text) > MAX_BYTES or (len(text) * 4 > MAX_BYTES
                                 and len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES):
        raise PolicyFileError(source, "", f"{len(text)} characters",
                              f"at most {MAX_BYTES} bytes of UTF-8")


class _Read:
    """The policies a policy-set file defines itself (its pack and ``policies:``), by id,
    with where each was defined."""

    def __init__(self, source: str, lines: LineMap) -> None:
        self.source, self.lines = source, lines
        self.chosen: dict[str, Policy] = {}
        self.origins: dict[str, str] = {}
        self.paths: dict[str, str] = {}  # id -> where in this file it was defined

    def pack(self, data: Mapping[str, Any], calendar: BusinessCalendar | None,
             ) -> PolicySet | None:
        """``pack:`` less ``exclude:``; the pack, for ``use:`` entries (None without one)."""
        source, lines = self.source, self.lines
        pack_name = data.get("pack")
        if pack_name is None:
            if "exclude" in data:
                raise PolicyFileError(source, "exclude", data["exclude"],
                                      "exclude only with pack", line=lines.line("exclude"))
            return None
        pack = _named_pack(pack_name, source, "pack", lines)
        excluded = data.get("exclude") or []
        if not isinstance(excluded, list):
            raise PolicyFileError(source, "exclude", excluded, "a list of policy ids",
                                  line=lines.line("exclude"))
        for i, pid in enumerate(excluded):
            if not isinstance(pid, str) or pid not in pack:
                raise PolicyFileError(source, f"exclude[{i}]", pid,
                                      "a standard policy id" if pack_name == "standard"
                                      else f"a policy id of pack {pack_name}",
                                      line=lines.line(f"exclude[{i}]"),
                                      suggestion=nearest(pid, pack.ids))
        for p in pack:
            if p.id not in excluded:
                self.chosen[p.id] = _use({"use": p.id}, source, "pack", lines, calendar, pack) \
                    if calendar is not None else p
                self.origins[p.id] = f"{_where(source, lines, 'pack')} (pack {pack_name})"
                self.paths[p.id] = "pack"
        return pack

    def entries(self, entries: list[Any], calendar: BusinessCalendar | None,
                pack: PolicySet | None, pack_name: Any) -> None:
        """``policies:``, in order: a later entry of an id replaces the pack's, and dated
        entries of one id are its versions."""
        source, lines = self.source, self.lines
        chosen, origins = self.chosen, self.origins
        versions: dict[str, list[tuple[Policy, str]]] = {}  # id -> its versions, if several
        for i, entry in enumerate(entries):
            path = f"policies[{i}]"
            if isinstance(entry, Mapping) and "use" in entry:
                policy = _use(entry, source, path, lines, calendar, pack)
            else:
                policy = _policy(entry, source, path, lines, calendar)
            here = _where(source, lines, path)
            if policy.id in chosen and (dated(policy) or dated(chosen[policy.id])
                                        or policy.id in versions):
                # Versions in force by date (docs/versions.md): joined once all are read.
                versions.setdefault(policy.id, [(chosen[policy.id], origins[policy.id])])
                versions[policy.id].append((policy, here))
            elif policy.id in chosen and not (isinstance(entry, Mapping) and "use" in entry) \
                    and pack_name is None:
                raise PolicyFileError(source, f"{path}.id", policy.id, "a policy id not used "
                                      "earlier in the file", line=lines.line(f"{path}.id"))
            chosen[policy.id] = policy
            origins[policy.id] = here
            self.paths[policy.id] = path
        for pid, given in versions.items():
            try:
                chosen[pid] = _schedule([p for p, _ in given], [o for _, o in given])
            except ParameterError as exc:
                raise PolicyFileError(source, self.paths[pid], exc.value, exc.expected,
                                      line=lines.line(self.paths[pid])) from None

    def once_with(self, included: PolicySet) -> None:
        """No id both included and defined here (unless both are dated versions)."""
        for pid in self.chosen:
            if pid in included and not (dated(self.chosen[pid]) or dated(included.get(pid))):
                path = self.paths[pid]
                raise PolicyFileError(self.source, path, pid, "each policy id once: "
                                      f"{pid!r} comes from {included._origins[pid]} and from "
                                      f"{self.origins[pid]}", line=self.lines.line(path))


def _where(source: str, lines: LineMap, path: str) -> str:
    line = lines.line(path)
    return f"{source}:{line}" if line is not None else source


def _includes(spec: Any, source: str, base: Path, lines: LineMap, chain: _Chain) -> PolicySet:
    """The policies of the files ``include:`` names, in order; relative paths from ``base``
    (the including file's folder)."""
    if spec is None:
        return PolicySet([])
    items = [(spec, "include")] if isinstance(spec, str) else \
        [(v, f"include[{i}]") for i, v in enumerate(spec)] if isinstance(spec, list) else None
    if items is None:
        raise PolicyFileError(source, "include", spec, "a policy file path or a list of them",
                              line=lines.line("include"))
    parts: list[tuple[PolicySet, str]] = []
    for value, path in items:
        if not isinstance(value, str) or not value.strip():
            raise PolicyFileError(source, path, value, "a policy file path",
                                  line=lines.line(path))
        target = Path(value) if Path(value).is_absolute() else base / value
        shown = " -> ".join([*(s for _, s in chain), str(target)])
        key = _key(target)
        if any(k == key for k, _ in chain):
            raise PolicyFileError(source, path, value, "a file not already being included "
                                  f"(an include cycle: {shown})", line=lines.line(path))
        if len(chain) >= MAX_INCLUDE_DEPTH:
            raise PolicyFileError(source, path, value, f"includes nested at most "
                                  f"{MAX_INCLUDE_DEPTH} files deep ({shown})",
                                  line=lines.line(path))
        if not target.is_file():
            raise PolicyFileError(source, path, value, f"an existing policy file (include "
                                  f"chain: {shown})", line=lines.line(path))
        sub = _load_file(target, (*chain, (key, str(target))))
        parts.append((sub, str(target)))
    try:
        return _combine(parts)
    except ParameterError as exc:
        raise PolicyFileError(source, "include", exc.value, exc.expected,
                              line=lines.line("include")) from None


def load_policy(path: str | Path) -> PolicySet:
    """Load and validate a policy file (``.yaml``/``.yml``, ``.toml`` or ``.json``) and the
    files it includes."""
    p = Path(path)
    with rollback_on_error():  # a file that does not load registers no event types
        return _load_file(p, ((_key(p), str(p)),))


def _load_file(p: Path, chain: _Chain) -> PolicySet:
    suffix = p.suffix.lower()
    fmt = {".yaml": "yaml", ".yml": "yaml", ".toml": "toml", ".json": "json"}.get(suffix)
    if fmt is None:
        raise PolicyFileError(str(p), "", p.suffix or p.name,
                              "a .yaml, .yml, .toml or .json file")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise PolicyFileError(str(p), "", f"{size} bytes", f"at most {MAX_BYTES} bytes")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(str(p), "", exc.strerror or str(exc), "a readable file") from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError(str(p), "", exc.reason, "UTF-8 text") from None
    return _loads(text, fmt, str(p), p.parent, chain)


PolicyLike = (str | Path | Policy | PolicySet | Sequence[str] | Iterable[Policy]
              | Mapping[str, Any] | None)
"""What names a policy set: None (the standard pack), a standard policy id, a list of ids or
of policies, a path to a policy file, a policy-file mapping, a Policy or a PolicySet."""

_SUFFIXES = (".yaml", ".yml", ".toml", ".json")


def _pack() -> PolicySet:
    from .pack import standard_pack

    return standard_pack()


def _load(path: Path) -> PolicySet:
    return load_policy(path)


def _by_id(pid: str, context: PolicySet | None) -> Policy | None:
    for ps in (context, _pack()):
        if ps is not None and pid in ps:
            return ps.get(pid)
    return None


def resolve_policies(spec: PolicyLike = None, *, base_dir: Path | None = None,
                     context: PolicySet | None = None, source: str = "<policy>") -> PolicySet:
    """The policy set ``spec`` names. Policy ids are looked up in ``context`` first (a set
    the caller was given, e.g. ``policykit test --policy``), then in the standard pack; a
    relative path is tried from ``base_dir`` (the scenario file's folder), then as given."""
    if spec is None:
        return context if context is not None else _pack()
    if isinstance(spec, PolicySet):
        return spec
    if isinstance(spec, Policy):
        return PolicySet([spec])
    if isinstance(spec, Mapping):
        return loads_policy(yaml.safe_dump(dict(spec), allow_unicode=True), "yaml",
                            source=source, base_dir=base_dir)
    if isinstance(spec, Path) or (isinstance(spec, str) and
                                  (spec.lower().endswith(_SUFFIXES) or "/" in spec)):
        path = Path(spec)
        if not path.is_absolute() and base_dir is not None and (base_dir / path).exists():
            path = base_dir / path
        if not path.exists():
            where = f" (looked in {base_dir} and the working folder)" if base_dir else ""
            raise ParameterError("policy", str(spec), "an existing policy file" + where)
        return _load(path)
    ids = [spec] if isinstance(spec, str) else list(spec)
    if ids and all(isinstance(p, Policy) for p in ids):
        return PolicySet(ids)  # type: ignore[arg-type]  # checked just above
    chosen: list[Policy] = []
    for pid in ids:
        policy = _by_id(pid, context) if isinstance(pid, str) else None
        if policy is None:
            known = sorted({*(context.ids if context else ()), *_pack().ids})
            raise ParameterError("policy", pid, "a standard policy id or a policy file path",
                                 suggestion=nearest(pid, known))
        chosen.append(policy)
    return PolicySet(chosen)


def resolve_many(specs: Sequence[PolicyLike], *, names: Sequence[str] | None = None,
                 base_dir: Path | None = None) -> PolicySet:
    """The policy sets ``specs`` name, joined in order (the command line's repeated
    ``--policy``); one policy id twice is a ParameterError naming both sources. ``names``
    says what to call each spec where a policy's file and line are not known."""
    shown = list(names) if names is not None else [str(s) for s in specs]
    if len(shown) != len(specs):
        raise ParameterError("names", len(shown), f"one name per spec ({len(specs)})")
    return _combine((resolve_policies(s, base_dir=base_dir), n)
                    for s, n in zip(specs, shown, strict=True))
