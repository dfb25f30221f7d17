"""Scenario files: "given these events (up to ``until``), expect these decisions".

A scenario file is YAML::

    policy: lateness-deduction        # a standard policy id, a list of ids, a policy file
                                      # (relative to this file) or an inline policy mapping;
                                      # default: the policies given to run_path, else the pack
    parameters: {tier_mode: all}      # optional; by policy id when several policies run
    timezone: Asia/Shanghai           # for times written without an offset (default: the
                                      # first policy's calendar zone)
    scenarios:
      - name: the third late day costs 5%
        given:                        # events (``id`` optional), or a JSONL/JSON file path
          - {type: employee.profile, at: 2026-03-01 00:00, employee_id: E1,
             role: customer_service, base_salary: "6000.00"}
          - {type: attendance.clock_in, at: 2026-03-02 08:30:01, employee_id: E1}
        until: 2026-03-31 23:59:59.999999
        expect:                       # each matches decisions on the fields it names
          - {rule: R1, kind: violation, subject: employee/E1}
          - {rule: R2, kind: deduction, subject: employee/E1, amount: "60.00", status: final}
        allow: [{status: provisional}]   # may appear, need not
        allow_other: false            # default: a decision nobody expected fails the scenario

Matchers name any of: ``policy``, ``rule``, ``kind``, ``subject`` (``kind/id``, ``id`` or a
mapping), ``amount``, ``currency``, ``status``, ``at``, ``severity``, ``outcome`` (the
decision's ``details.outcome``), ``details`` (a subset), ``evidence`` (ids it must cite) and
``count`` (how many such decisions; default 1; ``0`` forbids them even with ``allow_other``).

:func:`run_path` runs a file or every scenario file under a folder and returns
:class:`ScenarioResults`: ``.ok``, ``.render()`` (expected vs got per failing scenario) and
``.coverage`` (which rules of the policies run fired in some scenario, which none reached).
A malformed file raises :class:`~policykit.PolicyFileError` naming the file, the path inside
it and the line.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from .._yamllines import LineMap
from ..errors import EventError, ParameterError, PolicyFileError, PolicyKitError, nearest
from ..models.decisions import DECISION_KINDS, Decision
from ..models.events import EVENT_TYPES, EventBase
from ..models.parsing import parse_event, parse_events
from ..policy import PolicySet
from ._model import field_shapes
from ._resolve import PolicyLike, apply_parameters, resolve_policies

__all__ = [
    "Coverage",
    "Expectation",
    "RuleCoverage",
    "Scenario",
    "ScenarioFile",
    "ScenarioResult",
    "ScenarioResults",
    "load_scenarios",
    "run_path",
    "run_text",
]

_FILE_KEYS = ("policy", "parameters", "timezone", "description", "scenarios")
_SCENARIO_KEYS = ("name", "description", "parameters", "given", "until", "expect", "allow",
                  "allow_other")
_MATCH_KEYS = ("policy", "rule", "kind", "subject", "amount", "currency", "status", "at",
               "severity", "outcome", "details", "evidence", "count")
_SEVERITIES = ("info", "low", "medium", "high", "critical")
_STATUSES = ("final", "provisional")
MAX_BYTES = 5 * 1024 * 1024


# --------------------------------------------------------------------------- YAML + lines




class _Ctx:
    """Where we are in one file, to raise errors that say so."""

    def __init__(self, source: str, lines: LineMap) -> None:
        self.source = source
        self.lines = lines

    def error(self, path: str, value: Any, expected: str, *,
              suggestion: str | None = None) -> PolicyFileError:
        return PolicyFileError(self.source, path, value, expected, line=self.lines.line(path),
                               suggestion=suggestion)

    def keys(self, data: Mapping[str, Any], allowed: Sequence[str], path: str) -> None:
        for key in data:
            if key not in allowed:
                sub = f"{path}.{key}" if path else str(key)
                raise self.error(sub, key, "one of " + ", ".join(allowed),
                                 suggestion=nearest(key, allowed))

    def mapping(self, value: Any, path: str, what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(path, value, what)
        return value

    def listing(self, value: Any, path: str, what: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.error(path, value, what)
        return value


def _parse_yaml(text: str, source: str) -> tuple[Any, LineMap]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        return yaml.safe_load(text), LineMap(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise PolicyFileError(source, "", problem, "valid YAML",
                              line=mark.line + 1 if mark else None) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError(source, "", str(exc), "valid YAML") from None
    except RecursionError:
        raise PolicyFileError(source, "", "<deeply nested>", "a file of sane depth") from None


# --------------------------------------------------------------------------- time


def _instant(value: Any, tz: ZoneInfo) -> datetime | None:
    """An aware instant from a YAML value: an aware or naive datetime (naive = local in
    ``tz``), an ISO string with or without offset, or a date (its midnight)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time(0))
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    if dt.tzinfo is None:
        # Through UTC, so a wall time in a DST gap moves forward as in the calendar.
        dt = dt.replace(tzinfo=tz).astimezone(UTC).astimezone(tz)
    return dt


# --------------------------------------------------------------------------- matchers


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _same(expected: Any, got: Any) -> bool:
    if expected == got:
        return True
    a, b = _decimal(expected), _decimal(got)
    if a is not None and b is not None:
        return a == b
    return str(expected) == str(got)


@dataclass(frozen=True)
class Expectation:
    """One matcher of ``expect`` or ``allow``: the fields a decision must have."""

    criteria: Mapping[str, Any]
    count: int = 1
    path: str = ""
    line: int | None = None

    def differences(self, d: Decision) -> list[tuple[str, str, str]]:
        """(field, expected, got) for each criterion ``d`` fails."""
        out: list[tuple[str, str, str]] = []
        c = self.criteria
        for key in ("policy", "kind", "currency", "status", "severity"):
            if key in c and getattr(d, key) != c[key]:
                out.append((key, str(c[key]), str(getattr(d, key))))
        # A rule names the rulebook's rule (R2: all its parts) or one part (R2b).
        if "rule" in c and c["rule"] not in (d.rule, d.part):
            out.append(("rule", str(c["rule"]), d.spec_rule))
        if "subject" in c:
            kind, ident = c["subject"]
            if d.subject.id != ident or (kind is not None and d.subject.kind != kind):
                out.append(("subject", _subj(kind, ident), f"{d.subject.kind}/{d.subject.id}"))
        if "amount" in c and (d.amount is None or d.amount != c["amount"]):
            out.append(("amount", str(c["amount"]), str(d.amount)))
        if "at" in c and d.at != c["at"]:
            out.append(("at", c["at"].isoformat(), d.at.isoformat()))
        if "outcome" in c and d.details.get("outcome") != c["outcome"]:
            out.append(("outcome", str(c["outcome"]), str(d.details.get("outcome"))))
        for k, v in c.get("details", {}).items():
            if k not in d.details or not _same(v, d.details[k]):
                out.append((f"details.{k}", str(v), str(d.details.get(k, "<absent>"))))
        missing = [e for e in c.get("evidence", ()) if e not in d.evidence]
        if missing:
            out.append(("evidence", ", ".join(c["evidence"]), ", ".join(d.evidence)))
        return out

    def matches(self, d: Decision) -> bool:
        return not self.differences(d)

    def describe(self) -> str:
        c = self.criteria
        parts = [str(c[k]) for k in ("policy", "rule", "kind") if k in c]
        if "subject" in c:
            parts.append(_subj(*c["subject"]))
        if "outcome" in c:
            parts.append(f"({c['outcome']})")
        if "amount" in c:
            parts.append(f"amount {c['amount']}" + (f" {c['currency']}" if "currency" in c else ""))
        if "at" in c:
            parts.append(f"at {c['at'].isoformat()}")
        for key in ("status", "severity"):
            if key in c:
                parts.append(f"{key} {c[key]}")
        for k, v in c.get("details", {}).items():
            parts.append(f"details.{k}={v}")
        if c.get("evidence"):
            parts.append("evidence ⊇ [" + ", ".join(c["evidence"]) + "]")
        text = " ".join(parts) or "any decision"
        return text if self.count == 1 else f"{self.count} × {text}"


def _subj(kind: str | None, ident: str) -> str:
    return f"{kind}/{ident}" if kind else ident


def describe_decision(d: Decision) -> str:
    """One line: policy, rule, kind, subject, outcome, amount, time, status."""
    text = f"{d.policy} {d.spec_rule} {d.kind} {d.subject.kind}/{d.subject.id}"
    outcome = d.details.get("outcome")
    if outcome:
        text += f" ({outcome})"
    if d.amount is not None:
        text += f" amount {d.amount} {d.currency}"
    text += f" at {d.at.isoformat()}"
    if d.status != "final":
        text += f" [{d.status}]"
    return text


def _matcher(raw: Any, path: str, ctx: _Ctx, tz: ZoneInfo, policies: PolicySet) -> Expectation:
    data = ctx.mapping(raw, path, "a mapping of decision fields, e.g. {rule: R1, kind: "
                       "violation, subject: employee/E1}")
    ctx.keys(data, _MATCH_KEYS, path)
    c: dict[str, Any] = {}
    # Read in this order, so a matcher with several faults names the first.
    _match_who(data, path, ctx, policies, c)
    _match_what(data, path, ctx, tz, c)
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ctx.error(f"{path}.count", count, "a whole number, at least 0")
    return Expectation(c, count, path, ctx.lines.line(path))


def _match_who(data: Mapping[str, Any], path: str, ctx: _Ctx, policies: PolicySet,
               c: dict[str, Any]) -> None:
    """Policy, rule, kind and subject of a matcher, into ``c``."""
    if "policy" in data:
        pid = data["policy"]
        if pid not in policies:
            raise ctx.error(f"{path}.policy", pid, "a policy this scenario runs: "
                            + ", ".join(policies.ids), suggestion=nearest(pid, policies.ids))
        c["policy"] = pid
    if "rule" in data:
        rule = str(data["rule"])
        scope = [policies.get(c["policy"])] if "policy" in c else list(policies)
        rules = sorted({r for p in scope for s in p.specs for r in (s.id, s.part_of) if r})
        if rule not in rules:
            raise ctx.error(f"{path}.rule", rule, "a rule id of " + ", ".join(p.id for p in scope)
                            + ": " + ", ".join(rules), suggestion=nearest(rule, rules))
        c["rule"] = rule
    if "kind" in data:
        if data["kind"] not in DECISION_KINDS:
            raise ctx.error(f"{path}.kind", data["kind"], "one of " + ", ".join(DECISION_KINDS),
                            suggestion=nearest(data["kind"], DECISION_KINDS))
        c["kind"] = data["kind"]
    if "subject" in data:
        s = data["subject"]
        if isinstance(s, Mapping) and "id" in s and set(s) <= {"kind", "id"}:
            c["subject"] = (s.get("kind"), str(s["id"]))
        elif isinstance(s, str | int) and not isinstance(s, bool):
            kind, sep, ident = str(s).partition("/")
            c["subject"] = (kind, ident) if sep else (None, kind)
        else:
            raise ctx.error(f"{path}.subject", s, "'kind/id' such as employee/E1, an id, or "
                            "{kind: employee, id: E1}")


def _match_what(data: Mapping[str, Any], path: str, ctx: _Ctx, tz: ZoneInfo,
                c: dict[str, Any]) -> None:
    """Amount, status, severity, currency, outcome, time, details and evidence, into ``c``."""
    if "amount" in data:
        amount = _decimal(data["amount"])
        if amount is None:
            raise ctx.error(f"{path}.amount", data["amount"], "a decimal such as '60.00'")
        c["amount"] = amount
    for key, choices in (("status", _STATUSES), ("severity", _SEVERITIES)):
        if key in data:
            if data[key] not in choices:
                raise ctx.error(f"{path}.{key}", data[key], "one of " + ", ".join(choices),
                                suggestion=nearest(data[key], choices))
            c[key] = data[key]
    for key in ("currency", "outcome"):
        if key in data:
            c[key] = str(data[key])
    if "at" in data:
        at = _instant(data["at"], tz)
        if at is None:
            raise ctx.error(f"{path}.at", data["at"], "a date-time such as 2026-03-31 "
                            "23:59:59.999999 (local) or with an offset")
        c["at"] = at
    if "details" in data:
        c["details"] = dict(ctx.mapping(data["details"], f"{path}.details",
                                        "a mapping of detail fields"))
    if "evidence" in data:
        ev = data["evidence"]
        c["evidence"] = [str(ev)] if isinstance(ev, str) else \
            [str(e) for e in ctx.listing(ev, f"{path}.evidence", "a list of event ids")]


# --------------------------------------------------------------------------- matching


def _assign(slots: list[Expectation], decisions: list[Decision]) -> list[int | None]:
    """A maximum matching of expectation slots to distinct decisions (augmenting paths),
    so a broad matcher never takes the one decision a narrow matcher needed."""
    candidates = [[j for j, d in enumerate(decisions) if e.matches(d)] for e in slots]
    owner: dict[int, int] = {}

    def augment(i: int, seen: set[int]) -> bool:
        for j in candidates[i]:
            if j in seen:
                continue
            seen.add(j)
            if j not in owner or augment(owner[j], seen):
                owner[j] = i
                return True
        return False

    for i in range(len(slots)):
        augment(i, set())
    out: list[int | None] = [None] * len(slots)
    for j, i in owner.items():
        out[i] = j
    return out


# --------------------------------------------------------------------------- results


@dataclass
class ScenarioResult:
    """How one scenario went."""

    file: str
    name: str
    line: int | None
    policies: PolicySet
    decisions: list[Decision] = field(default_factory=list)
    missing: list[tuple[Expectation, int, Decision | None]] = field(default_factory=list)
    """(expectation, how many short, the nearest decision) for each unmet expectation."""
    unexpected: list[Decision] = field(default_factory=list)
    forbidden: list[tuple[Expectation, Decision]] = field(default_factory=list)
    allowed: list[Decision] = field(default_factory=list)
    matched: list[tuple[Expectation, Decision]] = field(default_factory=list)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and not (self.missing or self.unexpected or self.forbidden)

    @property
    def where(self) -> str:
        return self.file + (f":{self.line}" if self.line else "")

    def render(self) -> str:
        """PASS/FAIL line; for a failure, expected vs got."""
        head = f"{'PASS' if self.passed else 'FAIL'}  {self.name}  ({self.where})"
        if self.passed:
            return head
        out = [head]
        if self.error:
            out.append(f"    error: {self.error}")
        if self.missing:
            out.append("    expected, not decided:")
            for exp, short, near in self.missing:
                got = exp.count - short
                note = f"  (expected {exp.count}, got {got})" if exp.count > 1 else ""
                out.append(f"      - {exp.describe()}{note}"
                           + (f"   [line {exp.line}]" if exp.line else ""))
                if near is not None:
                    diffs = exp.differences(near)
                    out.append(f"          nearest: {describe_decision(near)}")
                    for key, want, have in diffs:
                        out.append(f"            {key}: expected {want}, got {have}")
        if self.forbidden:
            out.append("    decided, but forbidden (count: 0):")
            for exp, d in self.forbidden:
                out.append(f"      ! {describe_decision(d)}   [matches {exp.describe()}, "
                           f"line {exp.line}]")
        if self.unexpected:
            out.append("    decided, not expected:")
            for d in self.unexpected:
                out.append(f"      + {describe_decision(d)}")
                out.append(f"          {d.message}")
        return "\n".join(out)


@dataclass
class RuleCoverage:
    """One rule of the policies run, and the scenarios that reached it."""

    policy: str
    rule: str
    title: str
    fired_in: list[str] = field(default_factory=list)
    asserted_in: list[str] = field(default_factory=list)

    @property
    def fired(self) -> bool:
        return bool(self.fired_in)


@dataclass
class Coverage:
    """Which rules of the policies the scenarios ran fired in some scenario."""

    rules: list[RuleCoverage] = field(default_factory=list)

    @property
    def fired(self) -> list[RuleCoverage]:
        return [r for r in self.rules if r.fired]

    @property
    def unreached(self) -> list[RuleCoverage]:
        """Rules no scenario made fire."""
        return [r for r in self.rules if not r.fired]

    @property
    def ratio(self) -> float:
        return len(self.fired) / len(self.rules) if self.rules else 1.0

    def render(self) -> str:
        if not self.rules:
            return "rule coverage: no policies ran"
        out = [f"rule coverage: {len(self.fired)} of {len(self.rules)} rules fired "
               f"({self.ratio:.0%})"]
        width = max(len(r.policy) for r in self.rules)
        for r in self.rules:
            if r.fired:
                n = len(set(r.fired_in))
                checked = len(set(r.asserted_in))
                out.append(f"  ✓ {r.policy:<{width}}  {r.rule:<5} {r.title[:40]:<40}  fired in "
                           f"{n} scenario{'s' if n != 1 else ''}, asserted in {checked}")
        if self.unreached:
            out.append("  never reached:")
            for r in self.unreached:
                out.append(f"  ✗ {r.policy:<{width}}  {r.rule:<5} {r.title}")
        return "\n".join(out)

    def add(self, result: ScenarioResult) -> None:
        index = {(r.policy, r.rule): r for r in self.rules}
        for p in result.policies:
            for spec in p.specs:
                if (p.id, spec.id) not in index:
                    new = RuleCoverage(p.id, spec.id, spec.title)
                    self.rules.append(new)
                    index[(p.id, spec.id)] = new
        label = f"{result.file}::{result.name}"
        for d in result.decisions:
            rc = index.get((d.policy, d.spec_rule))
            if rc is not None and label not in rc.fired_in:
                rc.fired_in.append(label)
        for _, d in result.matched:
            rc = index.get((d.policy, d.spec_rule))
            if rc is not None and label not in rc.asserted_in:
                rc.asserted_in.append(label)


@dataclass
class ScenarioResults:
    """The results of every scenario run, and the rule coverage over all of them."""

    results: list[ScenarioResult] = field(default_factory=list)
    coverage: Coverage = field(default_factory=Coverage)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every scenario passed (and there was at least one)."""
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def passed(self) -> list[ScenarioResult]:
        return [r for r in self.results if r.passed]

    @property
    def failed(self) -> list[ScenarioResult]:
        return [r for r in self.results if not r.passed]

    def render(self, *, coverage: bool = True) -> str:
        """A report a person reads: one line per scenario, expected vs got for each failure,
        then the rule coverage."""
        out = []
        for r in self.results:
            out.append(r.render())
        n, f = len(self.results), len(self.failed)
        files = len(self.files)
        out.append("")
        out.append(f"{n} scenario{'s' if n != 1 else ''} in {files} file"
                   f"{'s' if files != 1 else ''}: {n - f} passed, {f} failed")
        if coverage:
            out.append("")
            out.append(self.coverage.render())
        return "\n".join(out)

    def junit_xml(self) -> str:
        """A JUnit XML report: one ``testcase`` per scenario (classname: its file), a
        ``failure`` holding the expected-vs-got text, an ``error`` for a scenario that could
        not run; the rule coverage as suite properties."""
        import xml.etree.ElementTree as ET

        errors = sum(1 for r in self.results if r.error is not None)
        suite = ET.Element("testsuite", {
            "name": "policykit scenarios", "tests": str(len(self.results)),
            "failures": str(len(self.failed) - errors), "errors": str(errors),
            "skipped": "0"})
        props = ET.SubElement(suite, "properties")
        for name, value in (("rule_coverage", f"{self.coverage.ratio:.4f}"),
                            ("rules", str(len(self.coverage.rules))),
                            ("rules_fired", str(len(self.coverage.fired)))):
            ET.SubElement(props, "property", {"name": name, "value": value})
        for r in self.results:
            case = ET.SubElement(suite, "testcase", {"classname": r.file, "name": r.name,
                                                     "file": r.file})
            if r.line:
                case.set("line", str(r.line))
            if r.error is not None:
                ET.SubElement(case, "error", {"message": r.error}).text = r.render()
            elif not r.passed:
                short = len(r.missing) + len(r.unexpected) + len(r.forbidden)
                ET.SubElement(case, "failure", {
                    "message": f"{short} difference{'s' if short != 1 else ''} between "
                               "expected and decided"}).text = r.render()
        root = ET.Element("testsuites")
        root.append(suite)
        ET.indent(root)
        return ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n"

    def extend(self, other: ScenarioResults) -> None:
        self.files.extend(other.files)
        for r in other.results:
            self.results.append(r)
            self.coverage.add(r)


# --------------------------------------------------------------------------- scenarios


@dataclass
class Scenario:
    """One parsed scenario, ready to run."""

    file: str
    name: str
    line: int | None
    policies: PolicySet
    events: list[EventBase]
    until: datetime | None
    expect: list[Expectation]
    allow: list[Expectation]
    allow_other: bool = False

    def run(self, backend: str = "native") -> ScenarioResult:
        """Evaluate the events and compare the decisions with the expectations."""
        from ..engine import Engine

        result = ScenarioResult(self.file, self.name, self.line, self.policies)
        try:
            decisions = Engine(self.policies, backend=backend).evaluate(self.events,
                                                                        until=self.until)
        except Exception as exc:  # one broken scenario must not hide the rest
            result.error = f"{type(exc).__name__}: {exc}"
            return result
        result.decisions = decisions
        positive = [e for e in self.expect if e.count > 0]
        slots = [e for e in positive for _ in range(e.count)]
        assignment = _assign(slots, decisions)
        used = {j for j in assignment if j is not None}
        short: dict[int, int] = {}
        for slot, j in zip(slots, assignment, strict=True):
            if j is None:
                short[id(slot)] = short.get(id(slot), 0) + 1
            else:
                result.matched.append((slot, decisions[j]))
        for exp in positive:
            if id(exp) in short:
                near = min(decisions, key=lambda d: (len(exp.differences(d)), d.at, d.id),
                           default=None)
                result.missing.append((exp, short[id(exp)], near))
        forbidding = [e for e in self.expect if e.count == 0]
        for j, d in enumerate(decisions):
            if j in used:
                continue
            bad = next((e for e in forbidding if e.matches(d)), None)
            if bad is not None:
                result.forbidden.append((bad, d))
            elif self.allow_other or any(a.matches(d) for a in self.allow):
                result.allowed.append(d)
            else:
                result.unexpected.append(d)
        return result


def _events(raw: Any, path: str, ctx: _Ctx, tz: ZoneInfo, base_dir: Path | None) -> list[EventBase]:
    if isinstance(raw, str):  # a JSONL / JSON events file next to the scenario file
        file = (base_dir / raw) if base_dir is not None else Path(raw)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ctx.error(path, raw, f"a readable events file ({exc.strerror})") from None
        try:
            return list(parse_events(text, source=str(file)))
        except EventError as exc:
            raise ctx.error(path, raw, f"valid events ({exc})") from None
    items = ctx.listing(raw, path, "a list of events, or the path of a JSONL file")
    out: list[EventBase] = []
    by_id: dict[str, EventBase] = {}
    for j, item in enumerate(items):
        sub = f"{path}[{j}]"
        record = dict(ctx.mapping(item, sub, "an event: {type: ..., at: ..., fields...}"))
        record.setdefault("id", f"e{j + 1}")
        model = EVENT_TYPES.get(record.get("type"))  # type: ignore[arg-type]
        times = {s.name for s in field_shapes(model) if s.kind == "datetime"} if model \
            else {"at"}
        for name in times:
            if name in record:
                at = _instant(record[name], tz)
                if at is None:
                    raise ctx.error(f"{sub}.{name}", record[name], "a date-time such as "
                                    "2026-03-02 08:30 (local) or 2026-03-02T08:30:00+08:00")
                record[name] = at
        try:
            event = parse_event(record, source=ctx.source)
        except EventError as exc:
            # A misspelt field also reads as the right one missing: name the misspelling,
            # it carries the "did you mean".
            fld, value, expected = min(exc.problems, key=lambda p: "no such field" not in p[2])
            raise ctx.error(f"{sub}.{fld}" if fld else sub, value, expected) from None
        earlier = by_id.get(event.id)
        if earlier is not None and earlier != event:
            # The same event delivered twice is a fair thing to test; two different events
            # under one id (often an explicit id equal to an automatic ``eN``) is a mistake.
            raise ctx.error(f"{sub}.id", event.id, "an id no other event of the scenario has "
                            "(events without an id are named e1, e2, ... by position)")
        by_id[event.id] = event
        out.append(event)
    return out


def _policy_error(ctx: _Ctx, path: str, exc: PolicyKitError) -> PolicyFileError:
    if isinstance(exc, PolicyFileError):
        if path.endswith("parameters"):
            # A value a rule refuses: point at the parameters the user wrote, and say which
            # rule field refused it.
            inner = f" (at {exc.path})" if exc.path else ""
            return ctx.error(path, exc.value, exc.expected + inner, suggestion=exc.suggestion)
        if exc.source in ("<policy>", ctx.source) or exc.source.startswith(ctx.source + ":"):
            sub = f"{path}.{exc.path}" if exc.path else path
            return ctx.error(sub, exc.value, exc.expected, suggestion=exc.suggestion)
        return exc  # an error inside a policy file the scenario names: its own location
    if isinstance(exc, ParameterError):
        name = exc.name.split("parameters.", 1)[-1] if "parameters." in exc.name else exc.name
        sub = f"{path}.{name}" if path.endswith("parameters") else path
        return ctx.error(sub, exc.value, exc.expected, suggestion=exc.suggestion)
    return ctx.error(path, "", str(exc))


@dataclass
class ScenarioFile:
    """A parsed scenario file."""

    source: str
    scenarios: list[Scenario]
    description: str = ""

    def run(self, backend: str = "native") -> ScenarioResults:
        results = ScenarioResults(files=[self.source])
        for sc in self.scenarios:
            r = sc.run(backend)
            results.results.append(r)
            results.coverage.add(r)
        return results


def _instead(named: Any, override: PolicySet) -> PolicySet:
    """The policies of ``override`` that run in place of those a scenario file names: the
    ones with the ids it names when ``override`` has them all, else all of them (the file
    names a policy file, an inline policy or ids ``override`` does not hold)."""
    ids = [named] if isinstance(named, str) else named
    if isinstance(ids, list) and ids and all(isinstance(i, str) and i in override
                                             for i in ids):
        return PolicySet([override.get(i) for i in ids])
    return override


def load_scenarios(text: str, *, source: str = "<scenarios>", base_dir: Path | None = None,
                   policy: PolicyLike = None, override: PolicyLike = None) -> ScenarioFile:
    """Parse and validate a scenario file given as text (see the module docstring).
    ``override``: a policy set to run instead of the one the file names (``policykit test
    --policy``); named ids it holds select among its policies."""
    data, lines = _parse_yaml(text, source)
    ctx = _Ctx(source, lines)
    top = ctx.mapping(data, "", "a mapping with 'scenarios' (and optionally policy, "
                      "parameters, timezone)")
    ctx.keys(top, _FILE_KEYS, "")
    if "scenarios" not in top:
        raise ctx.error("scenarios", "<missing>", "a list of scenarios")
    context = resolve_policies(policy) if policy is not None else None
    try:
        if override is not None:
            base = _instead(top.get("policy"), resolve_policies(override))
        elif "policy" in top:
            base = resolve_policies(top["policy"], base_dir=base_dir, context=context,
                                    source=f"{source}: policy")
        else:
            base = resolve_policies(None, context=context)
    except PolicyKitError as exc:
        raise _policy_error(ctx, "policy", exc) from None
    try:
        base = apply_parameters(base, top.get("parameters"))
    except PolicyKitError as exc:
        raise _policy_error(ctx, "parameters", exc) from None
    tz_name = top.get("timezone") or (base.get(base.ids[0]).calendar.timezone if len(base)
                                      else "Asia/Shanghai")
    try:
        tz = ZoneInfo(str(tz_name))
    except (KeyError, ValueError):
        raise ctx.error("timezone", tz_name, "an IANA time zone such as Asia/Shanghai") from None
    items = ctx.listing(top["scenarios"], "scenarios", "a list of scenarios")
    scenarios: list[Scenario] = []
    for i, raw in enumerate(items):
        path = f"scenarios[{i}]"
        sc = ctx.mapping(raw, path, "a scenario: {name, given, expect}")
        ctx.keys(sc, _SCENARIO_KEYS, path)
        for key in ("given", "expect"):
            if key not in sc:
                raise ctx.error(f"{path}.{key}", "<missing>",
                                "a list of events" if key == "given" else
                                "a list of expected decisions (may be [])")
        name = str(sc.get("name") or f"scenario {i + 1}")
        try:
            policies = apply_parameters(base, sc.get("parameters"))
        except PolicyKitError as exc:
            raise _policy_error(ctx, f"{path}.parameters", exc) from None
        events = _events(sc["given"], f"{path}.given", ctx, tz, base_dir)
        until = None
        if sc.get("until") is not None:
            until = _instant(sc["until"], tz)
            if until is None:
                raise ctx.error(f"{path}.until", sc["until"], "a date-time such as "
                                "2026-03-31 23:59:59.999999 (local) or with an offset")
        expect = [_matcher(m, f"{path}.expect[{k}]", ctx, tz, policies)
                  for k, m in enumerate(ctx.listing(sc["expect"], f"{path}.expect",
                                                    "a list of expected decisions"))]
        allow = [_matcher(m, f"{path}.allow[{k}]", ctx, tz, policies)
                 for k, m in enumerate(ctx.listing(sc.get("allow") or [], f"{path}.allow",
                                                   "a list of decision matchers"))]
        allow_other = sc.get("allow_other", False)
        if not isinstance(allow_other, bool):
            raise ctx.error(f"{path}.allow_other", allow_other, "true or false")
        scenarios.append(Scenario(source, name, lines.line(path), policies, events, until,
                                  expect, allow, allow_other))
    return ScenarioFile(source, scenarios, str(top.get("description") or ""))


def run_text(text: str, *, source: str = "<scenarios>", policy: PolicyLike = None,
             backend: str = "native", base_dir: Path | None = None) -> ScenarioResults:
    """Run the scenarios of a file given as text."""
    return load_scenarios(text, source=source, base_dir=base_dir, policy=policy).run(backend)


def _read(path: Path) -> str:
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise PolicyFileError(str(path), "", f"{size} bytes", f"at most {MAX_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyFileError(str(path), "", exc.strerror or str(exc), "a readable file") from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError(str(path), "", exc.reason, "UTF-8 text") from None


def _is_scenario_file(text: str) -> bool:
    # In a folder, YAML files without a top-level 'scenarios' are policy files or other data.
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return True  # let the loader report it with its line
    return isinstance(data, Mapping) and "scenarios" in data


def _files(path: Path) -> Iterable[tuple[Path, str]]:
    if path.is_dir():
        for p in sorted([*path.rglob("*.yaml"), *path.rglob("*.yml")]):
            text = _read(p)
            if _is_scenario_file(text):
                yield p, text
    else:
        yield path, _read(path)


def run_path(path: str | Path, policy: PolicyLike = None,
             backend: str = "native", *, override: PolicyLike = None) -> ScenarioResults:
    """Run a scenario file, or every scenario file (``*.yaml``/``*.yml`` with a top-level
    ``scenarios``) under a folder. ``policy`` (a policy file, a pack id, a Policy or
    PolicySet) is the policy set for files that name none; ids a file names are looked up in
    it before the standard pack. ``override`` runs every file against that policy set instead
    of the one it names (see :func:`load_scenarios`). Raises PolicyFileError for a malformed
    file."""
    root = Path(path)
    if not root.exists():
        raise PolicyFileError(str(root), "", str(root), "an existing scenario file or folder")
    context = resolve_policies(policy) if policy is not None else None
    instead = resolve_policies(override) if override is not None else None
    results = ScenarioResults()
    found = False
    for file, text in _files(root):
        found = True
        loaded = load_scenarios(text, source=str(file), base_dir=file.parent, policy=context,
                                override=instead)
        results.extend(loaded.run(backend))
    if not found:
        raise PolicyFileError(str(root), "", str(root), "a folder holding scenario files "
                              "(YAML with a top-level 'scenarios' list)")
    return results
