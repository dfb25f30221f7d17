"""build_decision: the engine's decisions built without re-validation are the decisions
``Decision(...)`` builds, and every value it would refuse is still refused, the same way."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import Any, cast
from unittest.mock import patch
from zoneinfo import ZoneInfo

import pytest
from helpers import ev
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from policykit import Decision, Engine, SessionFailedError
from policykit.models.decisions import (
    DECISION_KINDS,
    Subject,
    build_decision,
)
from policykit.rules._base import decision_id

_SUBJECT_KINDS = ("employee", "customer", "request", "item")
_text = st.text(max_size=12)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8)


class Plus3(tzinfo):
    """A zone of neither ZoneInfo nor timezone: its offset is asked for."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=3)

    def dst(self, dt: datetime | None) -> timedelta:
        return timedelta(0)

    def tzname(self, dt: datetime | None) -> str:
        return "+03"


class RaisingOffset(Plus3):
    """A tzinfo whose offset cannot be computed."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        raise RuntimeError("no offset here")


class DayOffset(Plus3):
    """An offset of a day or more: the model keeps it, ``datetime.utcoffset`` refuses it."""

    def utcoffset(self, dt: datetime | None) -> timedelta:
        return timedelta(hours=30)


class NoOffset(tzinfo):
    """A tzinfo that gives no offset: a datetime with it is not aware."""

    def utcoffset(self, dt: datetime | None) -> None:
        return None

    def dst(self, dt: datetime | None) -> None:
        return None

    def tzname(self, dt: datetime | None) -> None:
        return None


_zones = st.sampled_from([UTC, ZoneInfo("Asia/Shanghai"), ZoneInfo("America/New_York"),
                          timezone(timedelta(hours=5, minutes=45))])
_amounts = st.decimals(allow_nan=False, allow_infinity=False, places=2,
                       min_value=Decimal("-1e9"), max_value=Decimal("1e9"))


@st.composite
def fields(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(DECISION_KINDS))
    evidence = tuple(draw(st.lists(_text, min_size=1 if kind == "violation" else 0,
                                   max_size=4, unique=True)))
    amount = draw(st.none() | _amounts)
    return {
        "id": "d-" + draw(_text), "policy": draw(_text), "rule": draw(_text),
        "part": draw(st.none() | _text), "kind": kind,
        "subject": Subject(kind=draw(st.sampled_from(_SUBJECT_KINDS)), id=draw(_text)),
        "at": draw(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1),
                                timezones=_zones)),
        "evidence": evidence, "amount": amount,
        "currency": None if amount is None else draw(st.sampled_from(["CNY", "EUR"])),
        "severity": draw(st.sampled_from(["info", "low", "medium", "high", "critical"])),
        "clause": draw(_text), "message": draw(st.text(max_size=40)),
        "message_zh": draw(st.text(max_size=40)),
        "details": draw(st.dictionaries(_text, _json, max_size=4)),
        "status": draw(st.sampled_from(["final", "provisional"])),
        "supersedes": tuple(draw(st.lists(_text, max_size=3))),
        "policy_fingerprint": draw(st.none() | _text),
    }


@settings(max_examples=80, deadline=None)
@given(fields())
def test_fast_build_equals_validated(f: dict[str, Any]) -> None:
    with patch.object(Decision, "__init__", side_effect=AssertionError("validated")):
        fast = build_decision(**f)  # the fast path: never Decision(...)
    slow = Decision(**f)
    assert type(fast) is Decision
    assert fast == slow and fast.__dict__ == slow.__dict__
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    assert fast.to_json_dict() == slow.to_json_dict()
    again = Decision.model_validate(fast.model_dump())
    assert again == fast and again.model_dump_json() == fast.model_dump_json()
    assert Decision.model_validate_json(fast.model_dump_json()) == fast


def good() -> dict[str, Any]:
    return {"id": "d-1", "policy": "p", "rule": "R1", "part": None, "kind": "violation",
            "subject": Subject(kind="employee", id="E1"),
            "at": datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("Asia/Shanghai")),
            "evidence": ("e1",), "amount": Decimal("12.50"), "currency": "CNY",
            "severity": "medium", "clause": "§1", "message": "m", "message_zh": "訊",
            "details": {"outcome": "late"}, "status": "final", "supersedes": (),
            "policy_fingerprint": "fp"}


def test_valid_values_skip_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_a: Any, **_k: Any) -> None:
        raise AssertionError("validated")

    monkeypatch.setattr(Decision, "__init__", refuse)
    d = build_decision(**good())
    assert d.kind == "violation" and d.amount == Decimal("12.50")


class Text(str):
    pass


BAD: dict[str, dict[str, Any]] = {
    "unknown kind": {"kind": "penalty"},
    "unknown severity": {"severity": "urgent"},
    "unknown status": {"status": "draft"},
    "naive time": {"at": datetime(2026, 3, 2, 9)},
    "time in a zone without offset": {"at": datetime(2026, 3, 2, 9, tzinfo=NoOffset())},
    "time as text": {"at": "2026-03-02T09:00:00+08:00"},
    "time in a zone of another class": {"at": datetime(2026, 3, 2, 9, tzinfo=Plus3())},
    "time in a zone whose offset raises": {
        "at": datetime(2026, 3, 2, 9, tzinfo=RaisingOffset())},
    "time in a zone a day ahead": {"at": datetime(2026, 3, 2, 9, tzinfo=DayOffset())},
    "NaN amount": {"amount": Decimal("NaN")},
    "infinite amount": {"amount": Decimal("Infinity")},
    "float amount": {"amount": 1.5},
    "amount without currency": {"currency": None},
    "currency without amount": {"amount": None},
    "violation without evidence": {"evidence": ()},
    "evidence not text": {"evidence": ("e1", 7)},
    "evidence as list": {"evidence": ["e1"]},
    "details key not text": {"details": {1: "x"}},
    "subject as dict": {"subject": {"kind": "employee", "id": "E1"}},
    "subject of unknown kind": {"subject": {"kind": "robot", "id": "E1"}},
    "part not text": {"part": 3},
    "fingerprint not text": {"policy_fingerprint": 3},
    "message a str subclass": {"message": Text("m")},
    "supersedes not text": {"supersedes": (None,)},
    "currency not text": {"currency": 5},
}


@pytest.mark.parametrize("change", BAD.values(), ids=list(BAD))
def test_other_values_go_through_validation(change: dict[str, Any]) -> None:
    """What the fast path does not vouch for is validated: refused with the validator's own
    error, or converted as the validator converts it."""
    f = {**good(), **change}
    try:
        expected = Decision(**f)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as got:
            build_decision(**f)
        assert str(got.value) == str(exc)
    else:
        d = build_decision(**f)
        assert d == expected and d.model_dump_json() == expected.model_dump_json()


def test_a_rules_bad_value_is_refused_with_a_policykit_error() -> None:
    session = Engine().session()
    runtime, _ctx = cast(Any, session._ev)._targets["contact.received"][0]

    def bad(event: Any, ctx: Any) -> None:
        ctx.emit(runtime.spec, "late", kind="violation", severity="urgent",
                 subject=Subject(kind="employee", id="E1"), at=event.at,
                 evidence=[event.id], key="k")

    runtime.on_event = bad
    with pytest.raises(SessionFailedError, match="severity"):
        session.feed(ev("contact.received", "2026-03-02T09:00:00", id="c-R1", request_id="R1",
                        customer_id="C1", employee_id="E1", channel="phone", topic="printer",
                        in_remit=False, finish_at_once=False))


def _contact(i: int) -> dict[str, Any]:
    return ev("contact.received", f"2026-03-02T09:{i // 60:02d}:{i % 60:02d}", id=f"c-{i}",
              request_id=f"R{i}", customer_id="C1", employee_id=f"E{i % 7}", channel="phone",
              topic="printer", in_remit=False, finish_at_once=False)


def test_emitted_ids_are_decision_id() -> None:
    """emit writes the id inline: the text decision_id gives, for every outcome and subject."""
    session = Engine().session()
    runtime, ctx = cast(Any, session._ev)._targets["contact.received"][0]
    got: list[Decision] = []
    ctx._emit = got.append
    at = datetime(2026, 3, 2, 9, tzinfo=ZoneInfo("Asia/Shanghai"))
    for outcome, sid, key, status in [("late", "E1", "k", "final"),
                                      ("late", "E\x1f2", "a\x1fb", "provisional"),
                                      ("other", "E\x1b3", "", "final")]:
        d = ctx.emit(runtime.spec, outcome, kind="violation", at=at, evidence=["e1"], key=key,
                     subject=Subject(kind="employee", id=sid), status=status)
        pol = ctx.policy
        assert d.id == decision_id(pol.id, pol.version, runtime.spec.id, outcome, d.subject,
                                   key, at, status, pol.fingerprint)
    assert len({d.id for d in got}) == 3


def test_collector_stays_paused_through_evaluate() -> None:
    """No collection runs inside evaluate, its final sort included (gc.callbacks sees every
    run of the collector)."""
    runs: list[str] = []

    def watch(phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            runs.append(phase)

    events = [_contact(i) for i in range(300)]
    engine = Engine()
    engine.evaluate(events[:5])  # what a first run loads (the pack's lazy parts)
    gc.collect()
    assert gc.isenabled()
    gc.callbacks.append(watch)
    try:
        decisions = engine.evaluate(events, until="2026-03-03T00:00:00+08:00")
    finally:
        gc.callbacks.remove(watch)
    assert decisions and runs == []
    assert gc.isenabled()


def test_a_run_leaves_no_cyclic_garbage() -> None:
    """The batch session is discarded at the end of the run: its rules' state is freed by
    reference counting, so moving the run's objects past the young generation (instead of
    walking them) leaves no garbage waiting for a full collection."""
    events = [_contact(i) for i in range(300)]
    engine = Engine()
    engine.evaluate(events[:5])
    gc.collect()
    decisions = engine.evaluate(events, until="2026-03-03T00:00:00+08:00")
    assert decisions
    assert gc.collect() == 0


def test_the_collector_state_is_the_applications_after_any_exit() -> None:
    """After a run, whatever ends it (a rule raising KeyboardInterrupt included), the
    collector is as the application left it, and objects it froze stay frozen (the end of
    a run moves the run's objects on only when nothing is frozen: unfreeze would thaw them)."""
    events = [_contact(i) for i in range(40)]
    engine = Engine()
    engine.evaluate(events[:5])
    runtime_class = type(cast(Any, engine.session()._ev)._targets["contact.received"][0][0])

    def interrupted(self: Any, event: Any, ctx: Any) -> None:
        raise KeyboardInterrupt

    try:
        gc.freeze()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        engine.evaluate(events)
        assert gc.isenabled() and gc.get_freeze_count() >= frozen - 10
        with patch.object(runtime_class, "on_event", interrupted):
            for enabled in (True, False):
                (gc.enable if enabled else gc.disable)()
                with pytest.raises(KeyboardInterrupt):
                    engine.evaluate(events)
                assert gc.isenabled() is enabled
    finally:
        gc.enable()
        gc.unfreeze()
