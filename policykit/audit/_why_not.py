"""Why not: why a rule did not fire for a subject — the subject's events it reads, what each
was checked against, and how close it came (for a deadline: fulfilled N minutes before
due)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import TYPE_CHECKING, Any, get_args

from ..models.decisions import Decision, Subject, SubjectKind
from ..models.events import EventBase
from ..policy import Policy
from ..rules import Match, RuleSpec, event_value, key_of
from ..rules.internal import compile_condition
from ._explain import event_line, find_rule, rule_parameters
from ._format import fmt_at, human
from ._html import escape

if TYPE_CHECKING:
    from ._data import ReportData

_BREACH_KINDS = frozenset({"violation", "deduction", "fine", "sanction"})
_VERBS = {"breached": "breach", "fulfilled": "fulfil", "cancelled": "cancel"}


@dataclass(frozen=True)
class WhyNot:
    """Why a rule did not fire for a subject: what it checked and how close it came.

    ``findings`` are sentences such as "request R1: fulfilled by e-9 12 min before due";
    ``margins`` are the signed distances to the limit (positive: inside it)."""

    subject: str
    policy: Policy
    rule: RuleSpec
    event_types: tuple[str, ...]
    checked: list[EventBase]
    fired: list[Decision]
    findings: list[str]
    margins: list[timedelta]
    horizon: datetime | None

    @property
    def closest(self) -> timedelta | None:
        """The smallest margin seen (how close the rule came to firing), if any."""
        return min(self.margins) if self.margins else None

    def render(self) -> str:
        r, p = self.rule, self.policy
        head = f"{p.id} {r.id} ({r.shape}{': ' + r.title if r.title else ''}) for {self.subject}"
        out = [head]
        breaches = [d for d in self.fired if d.kind in _BREACH_KINDS]
        if breaches:
            out.append(f"  It did fire: {len(breaches)} "
                       f"{'/'.join(sorted({d.kind for d in breaches}))} decision(s):")
        else:
            out.append("  It did not fire (no violation, deduction, fine or sanction).")
        if self.fired:
            if not breaches:
                out.append(f"  Other decisions it made for this subject ({len(self.fired)}):")
            out += ["    " + event_line(d) for d in self.fired[:20]]
            if len(self.fired) > 20:
                out.append(f"    ... and {len(self.fired) - 20} more")
        out.append("  Reads event types: " + ", ".join(self.event_types))
        out.append(f"  Checked {len(self.checked)} event(s) of this subject:")
        out += ["    " + event_line(e) for e in self.checked[:50]]
        if len(self.checked) > 50:
            out.append(f"    ... and {len(self.checked) - 50} more")
        if self.findings:
            out.append("  Findings:")
            out += [f"    - {f}" for f in self.findings]
        if self.closest is not None:
            out.append(f"  Closest: {human(self.closest)} "
                       f"{'inside' if self.closest >= timedelta(0) else 'past'} the limit")
        if self.horizon is not None:
            out.append(f"  Audit horizon: {fmt_at(self.horizon)}")
        return "\n".join(out)

    __str__ = render
    __repr__ = render

    def _repr_html_(self) -> str:
        return f"<pre class='pk-whynot'>{escape(self.render())}</pre>"


def why_not(report: ReportData, subject: str | Subject | Mapping[str, str] | tuple[str, str],
            policy: str, rule: str) -> WhyNot:
    """See :meth:`AuditReport.why_not`."""
    kind, sid = _subject_parts(subject)
    pol, spec = find_rule(report.policies, policy, rule)
    types = spec.event_types()
    fired = [d for d in report.trail if d.policy == pol.id and d.spec_rule == spec.id
             and d.subject.id == sid and (kind is None or d.subject.kind == kind)]
    checked = _subject_events(report.events, spec, types, sid)
    findings: list[str] = []
    margins: list[timedelta] = []
    tz, horizon = report.tz, report.horizon
    strategy = spec.why_not_strategy()
    if strategy == "deadline":
        _deadline_closeness(pol, spec, checked, findings, margins, tz, horizon)
    else:
        if strategy == "daily":
            _daily_closeness(pol, spec, checked, findings, margins, tz)
        _generic_closeness(pol, spec, checked, findings, tz)
    label = f"{kind}:{sid}" if kind else sid
    if not checked:
        findings.insert(0, f"no event of the types this rule reads mentions {sid!r}")
    return WhyNot(subject=label, policy=pol, rule=spec, event_types=tuple(sorted(types)),
                  checked=checked, fired=fired, findings=findings, margins=margins,
                  horizon=horizon)


def _subject_parts(subject: Any) -> tuple[str | None, str]:
    """(kind or None, id) of a subject written any of the accepted ways."""
    if isinstance(subject, Subject):
        return subject.kind, subject.id
    if isinstance(subject, Mapping):
        return subject.get("kind"), str(subject["id"])
    if isinstance(subject, tuple) and len(subject) == 2:
        return str(subject[0]), str(subject[1])
    text = str(subject)
    if ":" in text:
        kind, _, sid = text.partition(":")
        return kind, sid
    # The scenario files' ``request/R3``; a plain id may hold a slash, so only a kind counts.
    kind, slash, sid = text.partition("/")
    if slash and kind in _KINDS:
        return kind, sid
    return None, text


_KINDS = frozenset(get_args(SubjectKind))


def _mentions(event: EventBase, value: str) -> bool:
    for name, v in event:
        if name in ("id", "type", "at", "meta"):
            continue
        if v == value or (isinstance(v, list | tuple) and value in v):
            return True
    return False


def _subject_events(events: Mapping[str, EventBase], spec: RuleSpec, types: frozenset[str],
                    sid: str) -> list[EventBase]:
    """Events of the rule's types naming the subject in any field, plus (one hop) events
    sharing their case key — the resolution of a request names the request, not the
    employee."""
    direct: list[EventBase] = []
    for event in events.values():
        if event.type in types and _mentions(event, sid):
            direct.append(event)
    key_fields: tuple[str, ...] = tuple(getattr(spec, "key", ()) or ())
    if not key_fields or not all(isinstance(f, str) for f in key_fields):
        return direct
    keys = {k for e in direct if (k := key_of(e, key_fields)) is not None}
    step_keys: list[tuple[frozenset[str], tuple[str, ...]]] = []
    for _name, m in _matchers(spec):
        step_keys.append((frozenset(m.type), m.key or key_fields))
    seen = {e.id for e in direct}
    out = list(direct)
    for event in events.values():
        if event.id in seen or event.type not in types:
            continue
        for mtypes, kf in step_keys:
            if event.type in mtypes and key_of(event, kf) in keys:
                out.append(event)
                seen.add(event.id)
                break
    out.sort(key=lambda e: (e.at, e.id))
    return out


def _matchers(spec: RuleSpec) -> list[tuple[str, Match]]:
    """Every event matcher among a rule's fields (any shape built from ``Match``)."""
    out: list[tuple[str, Match]] = []
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, Match):
            out.append((name, value))
        elif isinstance(value, tuple):
            out += [(f"{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Match)]
    return out


def _failed_conditions(match: Match, event: EventBase) -> list[str]:
    """Which ``where`` conditions of a matcher an event fails, as readable text."""
    out = []
    for path, cond in match.where.items():
        if not compile_condition(path, cond)(event):
            out.append(f"{path} is {event_value(event, path)!r}, the rule needs {cond!r}")
    return out


# --- deadlines ------------------------------------------------------------------------------


def _deadline_closeness(pol: Policy, spec: Any, checked: list[EventBase], findings: list[str],
                        margins: list[timedelta], tz: Any, horizon: datetime | None) -> None:
    """Replays each of the subject's cases of a deadline rule: the step that closed it
    and its distance to the deadline, or why an event did not count."""
    trigger_types = frozenset(spec.trigger.type)
    open_ended = bool(getattr(spec, "open_ended", False))
    for trig in checked:
        if trig.type not in trigger_types:
            continue
        failed = _failed_conditions(spec.trigger, trig)
        if failed:
            findings.append(f"{trig.id} ({trig.type}) does not open a case: "
                            + "; ".join(failed))
            continue
        key = key_of(trig, spec.key)
        due = None if open_ended else _deadline_due(spec, trig, pol.calendar)
        if key is None or (due is None and not open_ended):
            findings.append(f"{trig.id}: no case key or deadline could be read from it")
            continue
        label = (f"case {key.replace(chr(0x1f), '/')} (opened by {trig.id} at "
                 f"{fmt_at(trig.at, tz)})")
        outcome = _first_step(spec, trig, key, checked, label, findings)
        if outcome is None:
            if due is None:
                watched = sorted({t for step in spec.breach for t in step.type})
                findings.append(f"{label}: open-ended, no breach ("
                                + (", ".join(watched) or "none defined") + ") happened")
            elif horizon is not None and due > horizon:
                findings.append(f"{label}: still open, due {fmt_at(due, tz)}, after "
                                f"the audit horizon, so not judged yet "
                                f"({human(due - horizon)} to go)")
                margins.append(due - horizon)
            else:
                findings.append(f"{label}: nothing fulfilled it by {fmt_at(due, tz)}")
            continue
        verb, event = outcome
        if verb == "fulfilled" and due is not None:
            margin = due - event.at
            side = "before" if margin >= timedelta(0) else "after"
            findings.append(f"{label}: fulfilled by {event.id} ({event.type}) at "
                            f"{fmt_at(event.at, tz)}, {human(margin)} {side} due "
                            f"{fmt_at(due, tz)}")
            missing = [p for p, c in spec.require.items()
                       if not compile_condition(p, c)(event)]
            if missing:
                findings.append(f"{label}: but {event.id} lacks {', '.join(missing)}")
            margins.append(margin)
        else:
            findings.append(f"{label}: {verb} by {event.id} ({event.type}) at "
                            f"{fmt_at(event.at, tz)}")


def _deadline_due(spec: Any, trigger: EventBase, calendar: Any) -> datetime | None:
    if spec.within_field:
        value = event_value(trigger, spec.within_field)
        return value if isinstance(value, datetime) else None
    within = spec.within
    if spec.within_by is not None:
        within = spec.within_by.values.get(str(event_value(trigger, spec.within_by.field)),
                                           spec.within_by.default)
    if within is None:
        return None
    return calendar.deadline(trigger.at, within, spec.basis)  # type: ignore[no-any-return]


def _first_step(spec: Any, trig: EventBase, key: str, checked: list[EventBase], label: str,
                findings: list[str]) -> tuple[str, EventBase] | None:
    """The first event after the trigger that breaches, fulfils or cancels its case."""
    for event in checked:
        if event.at < trig.at or event.id == trig.id:
            continue
        for group, verb in ((spec.breach, "breached"), (spec.fulfil, "fulfilled"),
                            (spec.cancel, "cancelled")):
            for step in group:
                if event.type not in step.type or key_of(event, step.key or spec.key) != key:
                    continue
                failed = _failed_conditions(step, event)
                for mine, theirs in (getattr(step, "same", None) or {}).items():
                    if event_value(event, mine) != event_value(trig, theirs):
                        failed.append(f"{mine} is {event_value(event, mine)!r}, the rule "
                                      f"needs the trigger's {theirs} "
                                      f"{event_value(trig, theirs)!r}")
                if failed:
                    findings.append(f"{label}: {event.id} ({event.type}) does not "
                                    f"{_VERBS[verb]} it: " + "; ".join(failed))
                    continue
                return verb, event
    return None


# --- recurrences and the rest ---------------------------------------------------------------


def _daily_closeness(pol: Policy, spec: Any, checked: list[EventBase], findings: list[str],
                     margins: list[timedelta], tz: Any) -> None:
    """For a recurrence judged per day against a time (late if the first clock-in is
    after 08:30, early if the last clock-out is before 17:30): each day's distance to
    that time, and the closest days that stayed inside it."""
    unit = getattr(getattr(spec, "window", None), "unit", None)
    if unit not in ("day", "working_day"):
        return
    cal = pol.calendar
    occurs = [(frozenset(m.type), m.predicate()) for m in spec.occurrence]
    days: dict[date, list[EventBase]] = defaultdict(list)
    for event in checked:
        if any(event.type in types and pred(event) for types, pred in occurs):
            days[cal.local_date(event.at)].append(event)
    close: list[tuple[timedelta, str]] = []
    for day, seen in sorted(days.items()):
        if unit == "working_day" and not cal.is_working_day(day):
            continue
        for tow, first, word in ((spec.due, True, "before"), (spec.not_before, False,
                                                              "after")):
            limit = _time_of_day(cal, day, tow) if tow is not None else None
            if limit is None:
                continue
            event = min(seen, key=lambda e: e.at) if first else max(seen, key=lambda e: e.at)
            margin = (limit - event.at) if first else (event.at - limit)
            if margin >= timedelta(0):
                margins.append(margin)
                close.append((margin, f"{day}: {'first' if first else 'last'} {event.type} "
                                      f"{event.id} at {fmt_at(event.at, tz)}, "
                                      f"{human(margin)} {word} {fmt_at(limit, tz)}"))
    if close:
        close.sort(key=lambda c: c[0])
        findings.append(f"{len(close)} day(s) inside the limit; the closest:")
        findings += ["  " + text for _m, text in close[:3]]


def _time_of_day(cal: Any, day: date, tow: Any) -> datetime | None:
    """A recurrence's due / not-before time on one day (``work_start``, ``17:30`` ...),
    with its grace; None for end-of-day limits, which a same-day event always meets."""
    name = getattr(tow, "time", None)
    if name == "work_start":
        at = cal.at(day, cal.work_start)
    elif name == "work_end":
        at = cal.at(day, cal.work_end)
    elif isinstance(name, str) and name not in ("end_of_day", "start_of_day"):
        try:
            at = cal.at(day, clock.fromisoformat(name))
        except ValueError:
            return None
    else:
        return None
    grace = getattr(tow, "grace", None)
    if grace:
        at = cal.deadline(at, grace, "wall")
    return at  # type: ignore[no-any-return]


def _generic_closeness(pol: Policy, spec: RuleSpec, checked: list[EventBase],
                       findings: list[str], tz: Any) -> None:
    """Any shape: the events seen (per type and month), which failed a matcher's
    conditions, and the limits the rule's parameters set."""
    matchers = _matchers(spec)
    by_type = Counter(e.type for e in checked)
    if by_type:
        findings.append("events seen: " + ", ".join(f"{n} {t}" for t, n in
                                                   sorted(by_type.items())))
    months = Counter(e.at.astimezone(tz).strftime("%Y-%m") for e in checked)
    if len(months) > 1:
        findings.append("per month: "
                        + ", ".join(f"{m}: {n}" for m, n in sorted(months.items())))
    for event in checked:
        for name, m in matchers:
            if event.type in m.type:
                failed = _failed_conditions(m, event)
                if failed:
                    findings.append(f"{event.id} does not match {name}: " + "; ".join(failed))
    params = rule_parameters(pol, spec.id)
    if params:
        findings.append("limits: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))
