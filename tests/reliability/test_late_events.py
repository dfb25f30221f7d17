"""Late and corrected events: within ``allowed_lateness`` an event older than the clock is
applied where it belongs and the decisions it changes are revoked, revised or replaced by
new decisions naming what they supersede; beyond it the event is refused and counted."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from helpers import ev, profile, t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_logs import comparable, effective, month_log, policies

from policykit import Decision, Engine, EventError, EventOrderError, ParameterError, standard_pack
from policykit.engine._durable_adapter import durable_available


def run(session_events: list[dict[str, Any]], engine: Engine, until: datetime,
        lateness: timedelta, **kw: Any) -> tuple[list[Decision], Any]:
    session = engine.session(allowed_lateness=lateness, **kw)
    out: list[Decision] = []
    for e in session_events:
        out += session.feed(e)
    out += session.advance_to(until)
    return out, session


# --- a late callback cancels the missed-callback violation --------------------------------

CALLBACKS = standard_pack().select("callback-frequency")


def test_a_late_callback_revokes_the_missed_callback_violation() -> None:
    delivered = ev("project.delivered", "2026-01-15 10:00", id="deliv", project_id="P1",
                   customer_id="C1")
    later = ev("project.delivered", "2026-02-16 09:00", id="other", project_id="P2",
               customer_id="C2")
    callback = ev("callback.made", "2026-02-12 15:00", id="cb", project_id="P1",
                  employee_id="E1", channel="phone")
    engine = Engine(CALLBACKS)
    session = engine.session(allowed_lateness=timedelta(days=7))
    session.feed(delivered)
    fired = session.feed(later)  # event time passes Feb 15 10:00: the window closed
    missed = [d for d in fired if d.kind == "violation"]
    assert [(d.rule, d.subject.id) for d in missed] == [("R1", "P1")]
    warnings = [d for d in fired if d.kind == "warning"]
    assert warnings  # five days before the window closed, no callback yet

    out = session.feed(callback)  # logged on Feb 12, delivered on Feb 16: late
    revocation = next(d for d in out if d.supersedes == (missed[0].id,))
    assert revocation.details["outcome"] == "revoked"
    assert revocation.details["revoked"] == missed[0].id
    assert revocation.details["revoked_by"] == "cb"
    assert "arrived late" in revocation.details["reason"]
    assert (revocation.policy, revocation.rule, revocation.kind, revocation.subject) == (
        missed[0].policy, missed[0].rule, missed[0].kind, missed[0].subject)
    assert revocation.id not in {missed[0].id} and revocation.id.startswith("d-")
    assert revocation.message.startswith("Revoked") and revocation.message_zh.startswith("撤銷")
    assert revocation.at == t("2026-02-16 09:00")  # decided when the late event came
    assert "cb" in revocation.evidence
    # The warning was true when it was given (Feb 10, before the callback): it stays.
    assert all(d.supersedes != (w.id,) for d in out for w in warnings)
    assert session.stats.late == 1 and session.stats.revocations == 1

    # What a consumer holds equals the in-order result of the same events.
    until = t("2026-03-01 00:00")
    out += session.advance_to(until)
    batch = engine.evaluate([delivered, later, callback], until=until)
    assert effective([*fired, *out]) == comparable({d.id: d for d in batch})


def test_the_same_late_event_gives_the_same_revocation_ids() -> None:
    events = [
        ev("project.delivered", "2026-01-15 10:00", id="d1", project_id="P1", customer_id="C"),
        ev("project.delivered", "2026-02-16 09:00", id="d2", project_id="P2", customer_id="C"),
        ev("callback.made", "2026-02-12 15:00", id="c1", project_id="P1", employee_id="E1"),
    ]
    a, _ = run(events, Engine(CALLBACKS), t("2026-03-01"), timedelta(days=7))
    b, _ = run(events, Engine(CALLBACKS), t("2026-03-01"), timedelta(days=7))
    assert [d.id for d in a] == [d.id for d in b] and a == b


# --- a corrected clock-in changes the month's deduction ----------------------------------

LATENESS = standard_pack().select("lateness-deduction")


def clock_ins(times: list[str]) -> list[dict[str, Any]]:
    return [ev("attendance.clock_in", at, id=f"in-{at[:10]}", employee_id="E1")
            for at in times]


def month_deductions(decisions: list[Decision]) -> list[Decision]:
    return [d for d in decisions if d.rule == "R2" and d.status == "final"]


LATE_DAYS = ["2026-03-03 08:45", "2026-03-04 08:50", "2026-03-05 08:40"]


def test_a_correction_within_the_month_changes_the_final_deduction() -> None:
    """Three late days at 6000.00: 5% each under tier_mode all (900.00). The third clock-in
    is corrected to 08:20 on the next day: two late days at 1% (120.00)."""
    events = [profile("E1", salary="6000.00"), *clock_ins(LATE_DAYS)]
    fix = ev("attendance.clock_in", "2026-03-05 08:20", id="fix-0305", employee_id="E1",
             meta={"corrects": "in-2026-03-05"})
    until = t("2026-04-01 00:00")
    engine = Engine(LATENESS)
    plain = engine.evaluate(events, until=until)
    assert [d.amount for d in month_deductions(plain)] == [Decimal("900.00")]

    session = engine.session(allowed_lateness=timedelta(days=2))
    before = session.feed_many(events)
    changed = session.feed(fix)
    after = session.advance_to(until)
    late_day = next(d for d in before if d.rule == "R1" and "in-2026-03-05" in d.evidence)
    revoked = {d.details["revoked"] for d in changed if d.details.get("outcome") == "revoked"}
    assert late_day.id in revoked  # the late day of March 5 is gone
    assert all("corrects" in d.details.get("reason", "") for d in changed
               if d.details.get("outcome") == "revoked")
    assert [d.amount for d in month_deductions(after)] == [Decimal("120.00")]
    assert session.stats.corrections == 1
    corrected = engine.evaluate([*events, fix], until=until)  # batch honours corrections
    assert effective([*before, *changed, *after]) == comparable({d.id: d for d in corrected})
    # The original arriving again (a redelivery) changes nothing and is counted.
    assert session.feed(events[-1]) == [] and session.stats.superseded == 1


def test_a_correction_after_the_month_closed_revises_the_final_deduction() -> None:
    events = [profile("E1", salary="6000.00"), *clock_ins(LATE_DAYS)]
    engine = Engine(LATENESS)
    session = engine.session(allowed_lateness=timedelta(days=30))
    first = session.feed_many(events)
    first += session.advance_to(t("2026-04-01 00:00"))
    final = month_deductions(first)
    assert [d.amount for d in final] == [Decimal("900.00")]
    fix = ev("attendance.clock_in", "2026-03-05 08:20", id="fix", employee_id="E1",
             meta={"corrects": "in-2026-03-05"})
    changed = session.feed(fix)
    revision = next(d for d in changed if final[0].id in d.supersedes)
    assert revision.amount == Decimal("120.00") and revision.status == "final"
    assert revision.id != final[0].id
    assert revision.details["original_id"] == final[0].id
    assert revision.details["revision_of"] == final[0].id
    assert revision.details["revised_by"] == "fix"
    assert session.stats.revisions >= 1
    # A second correction of the same day revises the revision, naming it.
    again = ev("attendance.clock_in", "2026-03-05 08:55", id="fix2", employee_id="E1",
               meta={"corrects": "fix"})
    changed2 = session.feed(again)
    second = next(d for d in changed2 if revision.id in d.supersedes)
    assert second.amount == Decimal("900.00") and second.details["original_id"] == final[0].id


def test_a_correction_of_an_event_not_seen_yet_wins_over_it() -> None:
    engine = Engine(LATENESS)
    original = clock_ins(["2026-03-03 08:45"])[0]
    fix = ev("attendance.clock_in", "2026-03-03 08:20", id="fix", employee_id="E1",
             meta={"corrects": original["id"]})
    for lateness in (None, timedelta(hours=1)):
        session = engine.session(allowed_lateness=lateness)
        session.feed(profile("E1"))
        session.feed(fix)
        assert session.feed(original) == []
        assert session.stats.superseded == 1 and session.stats.events == 2


def test_a_strict_session_refuses_a_correction_of_an_applied_event() -> None:
    session = Engine(LATENESS).session()
    session.feed_many([profile("E1"), *clock_ins(["2026-03-03 08:45"])])
    fix = ev("attendance.clock_in", "2026-03-03 09:00", id="fix", employee_id="E1",
             meta={"corrects": "in-2026-03-03"})
    with pytest.raises(EventOrderError, match="correction of 'in-2026-03-03'"):
        session.feed(fix)
    assert session.stats.rejected == 1 and session.stats.events == 2


@pytest.mark.parametrize("corrects", [5, "", "x" * 257, "self"])
def test_a_malformed_correction_is_an_invalid_record(corrects: Any) -> None:
    record = ev("attendance.clock_in", "2026-03-03 09:00", id="self", employee_id="E1",
                meta={"corrects": corrects})
    with pytest.raises(EventError, match=r"meta\.corrects"):
        Engine(LATENESS).session().feed(record)


# --- beyond the allowance ------------------------------------------------------------------


def test_an_event_beyond_the_allowance_is_refused_counted_and_changes_nothing() -> None:
    engine = Engine(LATENESS)
    session = engine.session(allowed_lateness=timedelta(hours=2))
    session.feed_many([profile("E1"), *clock_ins(["2026-03-03 08:45", "2026-03-04 08:20"])])
    too_old = ev("attendance.clock_in", "2026-03-04 06:19:59", id="old", employee_id="E2")
    with pytest.raises(EventOrderError) as err:
        session.feed(too_old)
    assert "06:19:59" in str(err.value) and "08:20" in str(err.value)
    assert "allowed lateness 2:00:00" in str(err.value)
    assert session.stats.rejected == 1 and session.stats.late == 0
    # Exactly at the allowance it is still applied.
    edge = ev("attendance.clock_in", "2026-03-04 06:20:00", id="edge", employee_id="E2")
    session.feed(edge)
    assert session.stats.late == 1
    # A correction of an event older than the window is refused too.
    fix = ev("attendance.clock_in", "2026-03-04 09:00", id="fix", employee_id="E1",
             meta={"corrects": "in-2026-03-03"})
    with pytest.raises(EventOrderError, match="before the allowed lateness window"):
        session.feed(fix)
    assert session.stats.rejected == 2


def test_allowed_lateness_must_be_a_non_negative_timedelta() -> None:
    engine = Engine(LATENESS)
    for bad in (timedelta(seconds=-1), 3600, "PT1H"):
        with pytest.raises(ParameterError, match="allowed_lateness"):
            engine.session(allowed_lateness=bad)  # type: ignore[arg-type]
    with pytest.raises(ParameterError, match="checkpoint_every"):
        engine.session(allowed_lateness=timedelta(1), checkpoint_every=0)


def test_the_window_stays_bounded_on_a_long_stream() -> None:
    """Memory stays flat: the log, the checkpoints and the published decisions hold only
    the last allowance's worth, however long the stream."""
    engine = Engine(policies())
    log = month_log(5, employees=6, days=62)
    session = engine.session(allowed_lateness=timedelta(hours=6), checkpoint_every=16)
    sizes = []
    for n, e in enumerate(log):
        session.feed(e)
        w = session._window
        assert w is not None
        if n % 50 == 0:
            sizes.append((len(w.ops), len(w.checkpoints), len(w.pub)))
    # Measured: at most 39 steps, 2 checkpoints and 23 decisions over 1,018 events.
    assert max(s[0] for s in sizes) < 80 and max(s[1] for s in sizes) <= 4
    assert max(s[2] for s in sizes) < 60
    assert len(log) > 1000


# --- exactness: any bounded reordering and corrections give the in-order result ----------


def deliveries(log: list[dict[str, Any]], rng: random.Random, delay: timedelta,
               fixes: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(arrival order, corrections): every event delayed by up to ``delay``, and ``fixes``
    corrections (moved by up to ``delay``, never onto another event's instant) of random
    attendance, callback, handover and resolution events."""
    fixable = [e for e in log if e["type"] in ("attendance.clock_in", "attendance.clock_out",
                                                "callback.made", "request.handed_over",
                                                "request.resolved", "incident.notified")]
    corrections = []
    for n, target in enumerate(rng.sample(fixable, min(fixes, len(fixable)))):
        moved = datetime.fromisoformat(target["at"]) + timedelta(
            seconds=rng.randrange(-int(delay.total_seconds()), int(delay.total_seconds())),
            microseconds=7)  # original instants are whole seconds: no ties
        fields = {k: v for k, v in target.items() if k not in ("id", "at")}
        if fields["type"] == "request.handed_over":
            fields["registered"] = not fields["registered"]
        corrections.append({**fields, "id": f"fix{n}", "at": moved.isoformat(),
                            "meta": {"corrects": target["id"]}})
    arrival = []
    for i, e in enumerate(log):
        arrival.append((datetime.fromisoformat(e["at"]) + delay * rng.random(), 0, i, e))
    by_id = {e["id"]: e for e in log}
    for i, c in enumerate(corrections):
        target_at = datetime.fromisoformat(by_id[c["meta"]["corrects"]]["at"])
        arrival.append((max(target_at + delay, datetime.fromisoformat(c["at"]))
                        + delay * rng.random(), 1, i, c))
    arrival.sort(key=lambda x: (x[0], x[1], x[2]))
    return [e for *_k, e in arrival], corrections


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), delay_min=st.sampled_from([10, 45, 120]),
       fixes=st.integers(0, 8), every=st.sampled_from([1, 8, 64]))
def test_reordered_and_corrected_stream_equals_the_in_order_result(
        seed: int, delay_min: int, fixes: int, every: int) -> None:
    """Invariant: for a log delivered with delays of up to D and corrections arriving
    within the window, a session with allowed_lateness 4·D ends up — after applying its
    revocations, revisions and replacements — with exactly the decisions of the in-order
    run of the corrected log (Engine.evaluate), ids and figures included."""
    rng = random.Random(seed)
    log = month_log(seed, employees=4, days=12)
    delay = timedelta(minutes=delay_min)
    arrival, corrections = deliveries(log, rng, delay, fixes)
    until = datetime.fromisoformat(log[-1]["at"]) + timedelta(days=20)
    engine = Engine(policies())
    out, session = run(arrival, engine, until, 4 * delay, checkpoint_every=every)
    batch = engine.evaluate([*log, *corrections], until=until)
    assert effective(out) == comparable({d.id: d for d in batch})
    assert session.stats.corrections == len(corrections)
    assert session.stats.rejected == 0
    assert session.stats.events == len(log) + len(corrections)
    assert len({d.id for d in out}) == len(out)  # every published id is new


@pytest.mark.skipif(not durable_available()[0], reason="durable_rules cannot be imported here")
@pytest.mark.parametrize("seed", [1, 2])
def test_late_event_sessions_publish_the_same_decisions_on_both_backends(seed: int) -> None:
    rng = random.Random(seed)
    log = month_log(seed, employees=4, days=10)
    delay = timedelta(minutes=45)
    arrival, _corrections = deliveries(log, rng, delay, 6)
    until = datetime.fromisoformat(log[-1]["at"]) + timedelta(days=20)
    native, _ = run(arrival, Engine(policies()), until, 4 * delay, checkpoint_every=8)
    durable, session = run(arrival, Engine(policies(), backend="durable"), until, 4 * delay,
                           checkpoint_every=8)
    assert durable == native
    assert session.stats.late > 0
