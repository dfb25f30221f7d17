"""The batch pipeline leaves events of types no rule of the set reads unapplied (counted, ids
kept, the clock moved: Session._feed_run). A differential check: the same logs with and
without that path give the same decisions, ids included, and the same counts — with
redeliveries, corrections and conflicting copies of unread events, a refused event, and
a log ending with unread events after deadlines fell due."""

from __future__ import annotations

import io
from typing import Any

import pytest
from helpers import ev, profile

from bench.generate import generate
from policykit import Engine, EventError, audit, standard_pack
from policykit.engine.session import Session

UNREAD = "patrol.round"  # no lateness-deduction rule reads it


def _log() -> list[dict[str, Any]]:
    events = list(generate(12, 1, 5))
    unread = [e for e in events if e["type"] == UNREAD]
    assert len(unread) > 20
    a, b, c = unread[3], unread[8], unread[12]
    last = max(e["at"] for e in events)
    assert last < "2026-04-01"
    events += [
        dict(a),                                                   # a redelivery
        {**b, "id": b["id"] + "-fix", "meta": {"corrects": b["id"]}},  # a correction
        {**c, "at": last},                                         # a conflicting copy
        # unread events after everything else (the next day): what fell due before them
        # fires only because they are fed
        {**a, "id": "tail-1", "at": "2026-04-01T23:00:00+08:00"},
    ]
    return events


def _skipping(monkeypatch: pytest.MonkeyPatch, on: bool) -> list[int]:
    """Turn the skip path on or off; a list that counts the events it skipped."""
    skipped = [0]
    real_feed = Session._feed
    real_skips = Session._skips

    def feed(self: Session, ev: Any) -> Any:
        skipped[0] -= 1
        return real_feed(self, ev)

    monkeypatch.setattr(Session, "_feed", feed)
    monkeypatch.setattr(Session, "_skips",
                        real_skips if on else (lambda self: None))
    return skipped


def _audit(log: list[dict[str, Any]], backend: str) -> tuple[Any, ...]:
    report = audit(log, standard_pack().select("lateness-deduction"), backend=backend)
    out = io.StringIO()
    report.write_jsonl(out, trail=True)
    return (out.getvalue(), report.counts, [(q.event_id, q.line, str(q.error))
                                            for q in report.quarantine])


@pytest.mark.parametrize("backend", ["native", "durable"])
def test_unread_events_skipped_change_nothing(backend: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    log = _log()
    with monkeypatch.context() as m:
        calls = _skipping(m, on=True)
        fast = _audit(log, backend)
        fast_eval = Engine(standard_pack().select("lateness-deduction"),
                           backend=backend).evaluate(log[:-4] + log[-1:])
        fed = -calls[0]
    with monkeypatch.context() as m:
        calls = _skipping(m, on=False)
        slow = _audit(log, backend)
        slow_eval = Engine(standard_pack().select("lateness-deduction"),
                           backend=backend).evaluate(log[:-4] + log[-1:])
        fed_all = -calls[0]
    assert fed < fed_all / 2  # most events were skipped...
    assert fast == slow  # ...and nothing shows it
    assert [d.model_dump_json() for d in fast_eval] == [d.model_dump_json()
                                                        for d in slow_eval]
    counts = fast[1]
    assert counts.duplicates == 1 and counts.corrected == 1 and counts.quarantined == 1
    assert fast[0].count("\n") > 20
    # the month's totals fall due at its end, before the unread tail event: fired for it
    assert len(fast_eval) > len(Engine(standard_pack().select("lateness-deduction"),
                                       backend=backend).evaluate(log[:-4]))


def test_a_refused_event_after_skipped_ones_keeps_their_due_deadlines(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An event the session refuses right after skipped ones: the deadlines due before the
    skipped ones still fire, in the decisions the refusal carries."""
    from policykit.models.parsing import parse_event

    patrol = next(e for e in generate(12, 1, 5) if e["type"] == UNREAD)
    log = [profile("E1", at="2026-03-01 00:00"),
           ev("attendance.clock_in", "2026-03-02 08:20", id="in-1", employee_id="E1"),
           ev("attendance.clock_out", "2026-03-02 16:00", id="out-1", employee_id="E1"),
           {**patrol, "id": "night", "at": "2026-03-03T01:00:00+08:00"},
           ev("attendance.clock_in", "2026-03-03 08:20", id="in-2", employee_id="E1")]
    events = [parse_event(e) for e in log]
    engine = Engine(standard_pack().select("lateness-deduction"))

    def run(on: bool) -> tuple[list[str], list[str]]:
        with monkeypatch.context() as m:
            _skipping(m, on)
            real = Session._feed

            def refuse(self: Session, ev: Any) -> Any:
                if ev.id == "in-2":
                    raise EventError("<event>", [("id", ev.id, "refused")], event_id=ev.id)
                return real(self, ev)

            m.setattr(Session, "_feed", refuse)
            session = engine._batch_session()
            with pytest.raises(EventError) as exc:
                session.feed_many(events)
            carried = [d.rule for d in exc.value.decisions]  # type: ignore[attr-defined]
            return carried, [d.rule for d in session.advance_to(events[-1].at)]

    fast = run(True)
    assert fast == run(False)
    assert fast[0] == ["R5"]  # left early on the 2nd: judged at the day's end
