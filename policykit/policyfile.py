"""Policy files: YAML, TOML or JSON that validate into the same models as the standard pack.

A file either defines one policy (top-level ``id`` and ``rules``) or a set::

    pack: standard              # optional: start from every standard policy
    exclude: [site-access]      # optional: standard policies to leave out
    calendar: {timezone: Europe/Berlin}   # optional: for every policy of the file
    policies:
      - use: lateness-deduction             # a standard policy, tuned
        parameters: {tier_mode: marginal, tier_threshold: 4}
      - id: patrol-night                    # a policy of your own, in the rule shapes
        title: Night patrols
        clause: site rules §3
        rules: [...]

A bad file raises one :class:`PolicyFileError` naming the file, the path inside it, the line
(YAML and JSON), the bad value, what was expected and the nearest valid name.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .calendar import BusinessCalendar
from .errors import ParameterError, PolicyFileError, format_loc, nearest
from .policy import Policy, PolicySet

__all__ = ["load_policy", "loads_policy"]

#: Policy files larger than this are refused before parsing (hostile input).
MAX_BYTES = 5 * 1024 * 1024
_SET_KEYS = ("pack", "exclude", "calendar", "policies")
_USE_KEYS = ("use", "parameters", "calendar")
_POLICY_KEYS = tuple(Policy.model_fields)


class _Lines:
    """Maps a path inside the document (``policies[0].rules[2].within``) to its line."""

    def __init__(self, node: yaml.Node | None) -> None:
        self._map: dict[str, int] = {}
        if node is not None:
            self._walk(node, "")

    def _walk(self, node: yaml.Node, path: str) -> None:
        self._map.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                key = k.value if isinstance(k, yaml.ScalarNode) else "?"
                sub = f"{path}.{key}" if path else str(key)
                self._map[sub] = k.start_mark.line + 1
                self._walk(v, sub)
                self._map[sub] = k.start_mark.line + 1
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                self._walk(item, f"{path}[{i}]")

    def line(self, path: str) -> int | None:
        # The deepest prefix that has a line: a missing key points at its parent.
        while path:
            if path in self._map:
                return self._map[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self._map.get("")


def _parse(text: str, fmt: str, source: str) -> tuple[Any, _Lines]:
    try:
        if fmt == "toml":
            return tomllib.loads(text), _Lines(None)
        if fmt == "json":
            data = json.loads(text)
            # JSON is (nearly) YAML: compose it again only to learn the lines.
            try:
                node = yaml.compose(text, Loader=yaml.SafeLoader)
            except yaml.YAMLError:
                node = None
            return data, _Lines(node)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
        return data, _Lines(node)
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


def _problem(exc: yaml.MarkedYAMLError) -> str:
    return " ".join(str(p) for p in (exc.context, exc.problem) if p)


def _unknown_keys(data: Mapping[str, Any], allowed: tuple[str, ...], source: str, path: str,
                  lines: _Lines) -> None:
    for key in data:
        if key not in allowed:
            sub = f"{path}.{key}" if path else str(key)
            raise PolicyFileError(source, sub, key, "one of " + ", ".join(allowed),
                                  line=lines.line(sub), suggestion=nearest(key, allowed))


def _policy(data: Any, source: str, path: str, lines: _Lines,
            calendar: BusinessCalendar | None) -> Policy:
    if not isinstance(data, Mapping):
        raise PolicyFileError(source, path, data, "a mapping defining a policy",
                              line=lines.line(path))
    _unknown_keys(data, _POLICY_KEYS, source, path, lines)
    if calendar is not None and "calendar" not in data:
        data = {**data, "calendar": calendar.model_dump()}
    try:
        return Policy.model_validate(data)
    except PolicyFileError as exc:
        sub = f"{path}.{exc.path}" if path else exc.path
        raise PolicyFileError(source, sub, exc.value, exc.expected, line=lines.line(sub),
                              suggestion=exc.suggestion) from None
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        sub = format_loc(err["loc"], path)
        value = err.get("input") if err["type"] != "missing" else "<missing>"
        raise PolicyFileError(source, sub, value, err["msg"].removeprefix("Value error, "),
                              line=lines.line(sub)) from None


def _calendar(data: Any, source: str, path: str, lines: _Lines) -> BusinessCalendar:
    try:
        return BusinessCalendar.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        sub = format_loc(err["loc"], path)
        raise PolicyFileError(source, sub, err.get("input"),
                              err["msg"].removeprefix("Value error, "),
                              line=lines.line(sub)) from None


def _use(entry: Mapping[str, Any], source: str, path: str, lines: _Lines,
         calendar: BusinessCalendar | None) -> Policy:
    from .rules.standard import standard_pack

    _unknown_keys(entry, _USE_KEYS, source, path, lines)
    pack = standard_pack()
    name = entry["use"]
    if not isinstance(name, str) or name not in pack:
        raise PolicyFileError(source, f"{path}.use", name, "a standard policy id",
                              line=lines.line(f"{path}.use"), suggestion=nearest(name, pack.ids))
    policy = pack.get(name)
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
        sub = f"{path}.parameters"
        raise PolicyFileError(source, sub, exc.value, exc.expected,
                              line=lines.line(sub)) from None
    cal = entry.get("calendar")
    chosen = _calendar(cal, source, f"{path}.calendar", lines) if cal is not None else calendar
    if chosen is not None:
        data = policy.model_dump()
        data["calendar"] = chosen.model_dump()
        policy = Policy.model_validate(data)
    return policy


def loads_policy(text: str, fmt: str = "yaml", *, source: str = "<policy>") -> PolicySet:
    """Validate a policy file given as text (``fmt``: yaml, toml or json)."""
    if fmt not in ("yaml", "toml", "json"):
        raise ParameterError("fmt", fmt, "yaml, toml or json",
                             suggestion=nearest(fmt, ("yaml", "toml", "json")))
    data, lines = _parse(text, fmt, source)
    if not isinstance(data, Mapping):
        raise PolicyFileError(source, "", data, "a mapping at the top of the file",
                              line=lines.line(""))
    if "rules" in data and "policies" not in data:
        return PolicySet([_policy(data, source, "", lines, None)])
    _unknown_keys(data, _SET_KEYS, source, "", lines)
    calendar = _calendar(data["calendar"], source, "calendar", lines) \
        if data.get("calendar") is not None else None
    chosen: dict[str, Policy] = {}
    pack_name = data.get("pack")
    if pack_name is not None:
        if pack_name != "standard":
            raise PolicyFileError(source, "pack", pack_name, "'standard'",
                                  line=lines.line("pack"),
                                  suggestion=nearest(pack_name, ("standard",)))
        from .rules.standard import standard_pack

        pack = standard_pack()
        excluded = data.get("exclude") or []
        if not isinstance(excluded, list):
            raise PolicyFileError(source, "exclude", excluded, "a list of policy ids",
                                  line=lines.line("exclude"))
        for i, pid in enumerate(excluded):
            if pid not in pack:
                raise PolicyFileError(source, f"exclude[{i}]", pid, "a standard policy id",
                                      line=lines.line(f"exclude[{i}]"),
                                      suggestion=nearest(pid, pack.ids))
        for p in pack:
            if p.id not in excluded:
                chosen[p.id] = _use({"use": p.id}, source, "pack", lines, calendar) \
                    if calendar is not None else p
    elif "exclude" in data:
        raise PolicyFileError(source, "exclude", data["exclude"], "exclude only with pack",
                              line=lines.line("exclude"))
    entries = data.get("policies") or []
    if not isinstance(entries, list):
        raise PolicyFileError(source, "policies", entries, "a list of policies",
                              line=lines.line("policies"))
    if not entries and not chosen:
        raise PolicyFileError(source, "policies", entries, "at least one policy (or pack)",
                              line=lines.line("policies"))
    for i, entry in enumerate(entries):
        path = f"policies[{i}]"
        if isinstance(entry, Mapping) and "use" in entry:
            policy = _use(entry, source, path, lines, calendar)
        else:
            policy = _policy(entry, source, path, lines, calendar)
        if policy.id in chosen and not (isinstance(entry, Mapping) and "use" in entry) \
                and pack_name is None:
            raise PolicyFileError(source, f"{path}.id", policy.id, "a policy id not used "
                                  "earlier in the file", line=lines.line(f"{path}.id"))
        chosen[policy.id] = policy
    return PolicySet(chosen.values())


def load_policy(path: str | Path) -> PolicySet:
    """Load and validate a policy file (``.yaml``/``.yml``, ``.toml`` or ``.json``)."""
    p = Path(path)
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
    return loads_policy(text, fmt, source=str(p))
