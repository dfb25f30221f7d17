"""Corrections (``meta.corrects``) and repeated ids, batch and streaming alike: chains stand
on their last link, cycles and corrections of another type or subject are refused, a copy of
an id with another payload is a conflict (never silently dropped), and a correction that
arrives before its original still works after the session has forgotten old ids."""

from __future__ import annotations

import itertools
import pickle
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from helpers import ev, t
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit import (
    Decision,
    Engine,
    EventConflictError,
    EventError,
    EventOrderError,
    parse_event,
    standard_pack,
)
from policykit.engine._corrections import payload_digest, split_corrections, subject_fields
from policykit.engine._dedupe import ForgottenIds
from policykit.engine._durable_adapter import durable_available
from policykit.engine._snapshot import pack, unpack
from policykit.engine.session import Session

LATENESS = standard_pack().select("lateness-deduction")
BACKENDS = ["native", "durable"] if durable_available()[0] else ["native"]
UNTIL = t("2026-04-01 00:00")
WIDE = timedelta(days=45)  # every correction of March is within the allowance


def profile(employee: str) -> dict[str, Any]:
    return ev("employee.profile", "2026-03-01 00:00", id=f"p-{employee}",
              employee_id=employee, role="customer_service", base_salary="6000.00")


def clock_in(id: str, day: int, minute: int = 45, employee: str = "E1",
             corrects: str | None = None, **meta: Any) -> dict[str, Any]:
    if corrects is not None:
        meta["corrects"] = corrects
    return ev("attendance.clock_in", f"2026-03-{day:02d} 08:{minute:02d}", id=id,
              employee_id=employee, **({"meta": meta} if meta else {}))


def effective(decisions: list[Decision]) -> dict[str, Decision]:
    """What a consumer holds after honouring revocations, revisions and replacements, keyed
    by the evaluator's id and comparable with an in-order run (see reliability_logs)."""
    dead: set[str] = set()
    for d in decisions:
        for key in ("revoked", "revision_of", "replaces"):
            if key in d.details:
                dead.add(str(d.details[key]))
    out = {}
    for d in decisions:
        if d.id in dead or d.details.get("outcome") == "revoked":
            continue
        base = str(d.details.get("original_id", d.id))
        details = {k: v for k, v in d.details.items()
                   if k not in ("original_id", "revision_of", "revised_by", "replaces",
                                "replaced_by")}
        out[base] = d.model_copy(update={"id": base, "details": details, "supersedes": ()})
    return out


def in_order(decisions: list[Decision]) -> dict[str, Decision]:
    return {d.id: d.model_copy(update={"supersedes": ()}) for d in decisions}


def stream(records: list[dict[str, Any]], backend: str = "native",
           lateness: timedelta | None = WIDE) -> tuple[list[Decision], list[tuple[
               dict[str, Any], EventError]], Session]:
    """Feed ``records`` in (time, id) order (ties in list order), recording refusals."""
    session = Engine(LATENESS, backend=backend).session(allowed_lateness=lateness)
    out: list[Decision] = []
    refused = []
    for r in sorted(records, key=lambda r: (datetime.fromisoformat(r["at"]), r["id"])):
        try:
            out += session.feed(r)
        except EventError as exc:
            refused.append((r, exc))
            out += getattr(exc, "decisions", [])
    out += session.advance_to(UNTIL)
    return out, refused, session


def batch(records: list[dict[str, Any]], backend: str = "native") -> tuple[
        list[Decision], list[str], list[tuple[Any, EventError]]]:
    kept, refused = split_corrections([parse_event(r) for r in records])
    decisions = Engine(LATENESS, backend=backend).evaluate(kept, until=UNTIL)
    return decisions, [e.id for e in kept], refused


def live(session: Session) -> set[str]:
    ledger = session._ledger
    return {i for i in ledger.seen.ids if ledger._live(i)}


def amounts(decisions: list[Decision]) -> list[Decimal | None]:
    # In subject order: decisions due at one instant come in id order, which moves with the
    # policy's fingerprint.
    return [d.amount for d in sorted(decisions, key=lambda d: d.subject.id)
            if d.rule == "R2" and d.status == "final"]


# --- 1. cycles ----------------------------------------------------------------------------


def test_a_cycle_is_refused_alike_in_batch_and_in_a_stream() -> None:
    """A corrects B and B corrects A: both refused, the error naming the ring. Before,
    batch dropped both silently and a stream kept A."""
    a = clock_in("A", 3, corrects="B")
    b = clock_in("B", 4, minute=50, corrects="A")
    records = [profile("E1"), a, b]
    with pytest.raises(EventError, match=r"cycle of corrections: 'A' corrects 'B', "
                                         r"'B' corrects 'A'"):
        Engine(LATENESS).evaluate(records, until=UNTIL)
    decisions, kept, refused = batch(records)
    assert kept == ["p-E1"]
    assert [(e.id, err.event_id) for e, err in refused] == [("A", "A"), ("B", "B")]
    assert all("every event of the cycle is refused" in str(err) for _e, err in refused)

    out, raised, session = stream(records)
    assert [r["id"] for r, _e in raised] == ["B"]
    assert "'B' corrects 'A', 'A' corrects 'B'" in str(raised[0][1])
    assert live(session) == {"p-E1"} and set(session._ledger.refused) == {"A", "B"}
    assert effective(out) == in_order(decisions)
    assert session.stats.rejected == 1 and session.stats.revocations > 0
    # A redelivered member is refused again; an event correcting one stands as new.
    with pytest.raises(EventError, match="cycle"):
        session.feed(a)
    session.feed(clock_in("D", 20, corrects="A"))
    assert "D" in live(session)


def test_a_three_event_cycle_in_every_arrival_order_leaves_nothing() -> None:
    ring = [clock_in("A", 3, corrects="B"), clock_in("B", 4, corrects="C"),
            clock_in("C", 5, corrects="A")]
    alone = in_order(Engine(LATENESS).evaluate([profile("E1")], until=UNTIL))
    for order in itertools.permutations(ring):
        session = Engine(LATENESS).session(allowed_lateness=WIDE)
        out = session.feed(profile("E1"))
        errors = []
        for r in order:
            try:
                out += session.feed(r)
            except EventError as exc:
                errors.append(exc)
                out += exc.decisions  # type: ignore[attr-defined]
        assert len(errors) == 1 and "cycle" in str(errors[0])
        assert live(session) == {"p-E1"}
        out += session.advance_to(UNTIL)
        assert effective(out) == alone, [r["id"] for r in order]


# --- chains -------------------------------------------------------------------------------


def test_a_chain_stands_on_its_last_link_in_every_arrival_order() -> None:
    """C2 corrects C1 corrects O: only C2 is applied, whatever the order they arrive in.
    Before, C2 then C1 then O applied both O and C2."""
    o = clock_in("O", 3, minute=45)
    c1 = clock_in("C1", 3, minute=50, corrects="O")
    c2 = clock_in("C2", 3, minute=20, corrects="C1")  # in time: not late at all
    expected = in_order(Engine(LATENESS).evaluate([profile("E1"), c2], until=UNTIL))
    for order in itertools.permutations([o, c1, c2]):
        session = Engine(LATENESS).session(allowed_lateness=WIDE)
        out = session.feed(profile("E1"))
        for r in order:
            out += session.feed(r)
        out += session.advance_to(UNTIL)
        assert live(session) == {"p-E1", "C2"}, order
        assert effective(out) == expected, [r["id"] for r in order]
    _d, kept, refused = batch([profile("E1"), c1, o, c2])
    assert kept == ["p-E1", "C2"] and refused == []


def test_a_second_correction_of_the_same_event_is_refused() -> None:
    records = [profile("E1"), clock_in("O", 3), clock_in("F1", 4, corrects="O"),
               clock_in("F2", 5, corrects="O")]
    _d, kept, refused = batch(records)
    assert kept == ["p-E1", "F1"]
    assert [e.id for e, _err in refused] == ["F2"]
    assert "corrected by 'F1'" in str(refused[0][1])


# --- 2. a correction keeps the type and the subject ---------------------------------------


def fine(id: str = "F", employee: str = "E1") -> dict[str, Any]:
    return ev("staff.misconduct", "2026-03-03 10:00", id=id, employee_id=employee,
              kind="gaming")


STAFF = standard_pack().select("staff-penalties")


def test_a_correction_of_another_type_and_employee_does_not_delete_a_fine() -> None:
    """Before, a clock-in of E2 "correcting" E1's misconduct deleted the fine silently."""
    fix = clock_in("G", 3, minute=5, employee="E2", corrects="F")
    fix["at"] = t("2026-03-03 10:05").isoformat()
    engine = Engine(STAFF)
    with pytest.raises(EventError) as info:
        engine.evaluate([fine(), fix])
    message = str(info.value)
    assert "'G'" in message and "'F'" in message and "type" in message
    assert "staff.misconduct" in message and "attendance.clock_in" in message
    kept, refused = split_corrections([parse_event(fine()), parse_event(fix)])
    assert [e.id for e in kept] == ["F"] and [e.id for e, _x in refused] == ["G"]
    fines = [d for d in engine.evaluate(kept) if d.amount]
    assert fines  # the fine stands
    session = engine.session(allowed_lateness=timedelta(days=1))
    session.feed(fine())
    with pytest.raises(EventError, match="keeps the type and subject"):
        session.feed(fix)
    assert session.stats.rejected == 1 and session.stats.corrections == 0


def test_a_correction_of_the_same_type_for_another_employee_is_refused() -> None:
    fix = dict(fine("G", "E2"), meta={"corrects": "F"})
    fix["at"] = t("2026-03-03 10:05").isoformat()
    with pytest.raises(EventError) as info:
        Engine(STAFF).evaluate([fine(), fix])
    message = str(info.value)
    assert "employee_id: got 'E2', expected 'E1'" in message
    assert "'G'" in message and "'F'" in message


def test_when_the_correction_comes_first_the_mismatched_original_is_refused() -> None:
    """Of a correction and its original, the one taken second is refused: here the
    original, so the correction already applied is never withdrawn by a bad pair."""
    fix = dict(fine("G", "E2"), meta={"corrects": "F"})
    fix["at"] = t("2026-03-03 09:00").isoformat()  # before the original
    kept, refused = split_corrections([parse_event(fine()), parse_event(fix)])
    assert [e.id for e in kept] == ["G"] and [e.id for e, _x in refused] == ["F"]
    assert "'G', the correction of this event" in str(refused[0][1])
    session = Engine(STAFF).session()
    session.feed(fix)
    with pytest.raises(EventError, match="employee_id: got 'E1', expected 'E2'"):
        session.feed(fine())


def test_the_subject_fields_are_the_identifiers_of_the_type() -> None:
    assert subject_fields("attendance.clock_in") == ("employee_id",)
    assert subject_fields("contact.received") == ("request_id", "customer_id", "employee_id")
    assert subject_fields("vehicle.arrived") == ("plate", "post_id", "employee_id")
    assert subject_fields("callback.made") == ("project_id", "household_id", "employee_id")


# --- 3. a correction before its original, after the session forgot old ids ---------------


def long_session(days: int = 40) -> Session:
    session = Engine(LATENESS).session()  # default dedupe window: 30 days
    session.feed(ev("employee.profile", "2026-01-01 00:00", id="p-E1", employee_id="E1",
                    role="customer_service", base_salary="6000.00"))
    start = t("2026-01-02 08:20")
    for n in range(days):
        session.feed(ev("attendance.clock_in", start + timedelta(days=n), id=f"in-{n}",
                        employee_id="E1"))
    assert session._seen.forgotten_until is not None  # it has forgotten some ids
    return session


def test_a_correction_before_its_original_works_after_thirty_days() -> None:
    """Before, any correction naming an unknown id was refused once ids were forgotten."""
    session = long_session()
    at = t("2026-02-11 08:10")
    fix = ev("attendance.clock_in", at, id="fix", employee_id="E1",
             meta={"corrects": "in-later"})
    session.feed(fix)
    assert session.stats.corrections == 1
    original = ev("attendance.clock_in", at + timedelta(minutes=30), id="in-later",
                  employee_id="E1")
    assert session.feed(original) == []
    assert session.stats.superseded == 1


def test_a_correction_of_a_really_forgotten_original_is_still_refused() -> None:
    session = long_session()
    fix = ev("attendance.clock_in", t("2026-02-11 08:10"), id="fix", employee_id="E1",
             meta={"corrects": "in-1"})  # applied on Jan 3, forgotten since
    with pytest.raises(EventError, match=r"meta\.corrects.*dedupe_window"):
        session.feed(fix)
    assert session.stats.rejected == 1 and session.stats.corrections == 0


def test_the_forgotten_ids_survive_a_snapshot_and_older_snapshots_restore() -> None:
    session = long_session()
    engine = Engine(LATENESS)
    restored = engine.restore(session.snapshot())
    fix = ev("attendance.clock_in", t("2026-02-11 08:10"), id="fix", employee_id="E1",
             meta={"corrects": "in-1"})
    with pytest.raises(EventError, match="dedupe_window"):
        restored.feed(fix)
    restored.feed(dict(fix, id="fix2", meta={"corrects": "in-later"}))  # unknown: applied
    # A snapshot of a version without the filter: every unknown id may be forgotten.
    payload = unpack(session.snapshot())
    assert isinstance(payload, dict)
    payload["seen"] = [[i, at] for i, at, _digest in payload["seen"]["ids"]]
    payload["corrected"] = []
    old = engine.restore(pack(payload))
    with pytest.raises(EventError, match="dedupe_window"):
        old.feed(dict(fix, id="fix2", meta={"corrects": "in-later"}))


def test_the_forgotten_ids_filter_has_no_false_negatives_and_a_small_error() -> None:
    f = ForgottenIds()
    ids = [f"ev-{n}" for n in range(20_000)]
    for i in ids:
        f.add(i)
    assert all(i in f for i in ids)
    others = sum(f"other-{n}" in f for n in range(20_000))
    assert others <= 2  # expected rate at 20,000 ids: about 2e-11
    assert f.false_positive_rate() < 1e-9
    assert len(f.bits) == 512 * 1024
    again = ForgottenIds.load(f.export())
    assert again.bits == f.bits and again.count == f.count
    with pytest.raises(ValueError):
        ForgottenIds.load([1, "AAAA"])


# --- 4. the same id with another payload --------------------------------------------------


def test_a_copy_with_another_payload_is_a_conflict_in_batch() -> None:
    """Before, the earliest copy won silently."""
    first = clock_in("X", 3, minute=45)
    other = clock_in("X", 3, minute=55, note="resent")
    with pytest.raises(EventConflictError) as info:
        Engine(LATENESS).evaluate([profile("E1"), other, first], until=UNTIL)
    message = str(info.value)
    assert "2026-03-03T08:55:00+08:00" in message and "2026-03-03T08:45:00+08:00" in message
    assert "meta.note" in message
    assert info.value.differences == [("at", "2026-03-03T08:45:00+08:00",
                                       "2026-03-03T08:55:00+08:00"),
                                      ("meta.note", None, "resent")]
    _d, kept, refused = batch([profile("E1"), other, first])
    assert kept == ["p-E1", "X"] and refused[0][0].at == t("2026-03-03 08:55")


def test_a_copy_with_another_payload_is_a_conflict_in_a_stream() -> None:
    first = clock_in("X", 3, minute=45)
    other = clock_in("X", 3, minute=55)
    for lateness in (None, timedelta(days=2)):
        session = Engine(LATENESS).session(allowed_lateness=lateness)
        session.feed(profile("E1"))
        session.feed(first)
        with pytest.raises(EventConflictError) as info:
            session.feed(other)
        if lateness:  # the first copy is still held: the fields are named
            assert info.value.differences[0][0] == "at"
        else:
            assert "no longer held" in str(info.value)
        assert session.stats.conflicts == 1 and session.stats.duplicates == 0
        assert session.feed(first) == [] and session.stats.duplicates == 1


def test_identical_redeliveries_stay_duplicates_whatever_the_key_order() -> None:
    a = clock_in("X", 3, first=1, second=2)
    b = clock_in("X", 3, second=2, first=1)
    assert payload_digest(parse_event(a)) == payload_digest(parse_event(b))
    assert payload_digest(parse_event(clock_in("Y", 3))) == payload_digest(
        parse_event(dict(clock_in("Y", 3), meta={})))
    session = Engine(LATENESS).session()
    session.feed(a)
    assert session.feed(b) == [] and session.stats.duplicates == 1


def test_the_conflict_error_pickles() -> None:
    err = EventConflictError("X", [("at", "a", "b")])
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, EventConflictError) and str(back) == str(err)
    assert back.differences == err.differences


def test_the_digests_survive_a_snapshot() -> None:
    engine = Engine(LATENESS)
    session = engine.session(allowed_lateness=timedelta(days=2))
    session.feed_many([profile("E1"), clock_in("X", 3), clock_in("F", 4, corrects="Z")])
    restored = engine.restore(session.snapshot())
    with pytest.raises(EventConflictError):
        restored.feed(clock_in("X", 3, minute=10))
    assert restored.feed(clock_in("X", 3)) == []
    with pytest.raises(EventError, match="corrected by 'F'"):
        restored.feed(clock_in("F2", 4, corrects="Z"))


# --- 5/6. batch and a time-ordered stream agree -------------------------------------------


@st.composite
def logs(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A few clock-ins of two employees, corrections (of events and of corrections, some
    of another employee: chains, forks and cycles), redeliveries and conflicting copies."""
    records: list[dict[str, Any]] = [profile("E1"), profile("E2")]
    n = draw(st.integers(1, 5))
    for i in range(n):
        records.append(clock_in(f"e{i}", draw(st.integers(2, 13)), draw(st.integers(10, 59)),
                                draw(st.sampled_from(["E1", "E2"]))))
    ids = [f"e{i}" for i in range(n)] + [f"c{j}" for j in range(4)]
    for j in range(draw(st.integers(0, 4))):
        target = draw(st.sampled_from([i for i in ids if i != f"c{j}"]))
        records.append(clock_in(f"c{j}", draw(st.integers(2, 13)), draw(st.integers(10, 59)),
                                draw(st.sampled_from(["E1", "E2"])), corrects=target))
    for _ in range(draw(st.integers(0, 3))):
        copy = dict(draw(st.sampled_from(records[2:])))
        if draw(st.booleans()):
            copy["at"] = (datetime.fromisoformat(copy["at"])
                          + timedelta(minutes=draw(st.integers(-3, 3)))).isoformat()
        records.append(copy)
    return draw(st.permutations(records))


def refusal_keys(pairs: list[tuple[Any, EventError]]) -> Counter[tuple[str, int, bool]]:
    return Counter((e["id"] if isinstance(e, dict) else e.id,
                    payload_digest(parse_event(e) if isinstance(e, dict) else e),
                    isinstance(err, EventConflictError)) for e, err in pairs)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=logs())
def test_batch_and_a_time_ordered_stream_apply_the_same_events(
        records: list[dict[str, Any]]) -> None:
    """Invariant: split_corrections and a session fed the same log in (time, id) order
    (allowance covering the log) keep the same events, refuse the same ones (a stream
    refuses a cycle's earlier members when the cycle closes) and give the same decisions
    once revocations and revisions are honoured."""
    decisions, kept, refused = batch(records)
    out, raised, session = stream(records)
    assert live(session) == set(kept)
    ledger = session._ledger
    withdrawn = Counter((m, ledger.seen.ids[m], False) for m in ledger.refused
                        if m in ledger.seen.ids)
    assert refusal_keys(raised) + withdrawn == refusal_keys(refused)
    assert effective(out) == in_order(decisions)
    stats = session.stats
    assert stats.conflicts == sum(isinstance(e, EventConflictError) for _r, e in raised)


@pytest.mark.parametrize("backend", BACKENDS)
def test_both_backends_agree_on_chains_cycles_and_conflicts(backend: str) -> None:
    records = [profile("E1"), profile("E2"),
               clock_in("O", 3, 45), clock_in("C1", 3, 50, corrects="O"),
               clock_in("C2", 3, 40, corrects="C1"),              # chain: C2 stands
               clock_in("A", 4, 50, corrects="B"), clock_in("B", 5, 55, corrects="A"),
               clock_in("L", 6, 55), clock_in("L", 6, 59),          # conflict
               clock_in("M", 9, 50, employee="E2"),
               clock_in("N", 10, 15, employee="E1", corrects="M"),  # another subject
               clock_in("Q", 11, 40), clock_in("Q", 11, 40)]        # a redelivery
    native, kept, refused = batch(records)
    assert kept == ["p-E1", "p-E2", "C2", "L", "M", "Q", "Q"]
    assert sorted(e.id for e, _x in refused) == ["A", "B", "L", "N"]
    decisions, _kept, _refused = batch(records, backend)
    assert decisions == native
    out, raised, session = stream(records, backend)
    assert sorted(r["id"] for r, _e in raised) == ["B", "L", "N"]
    assert effective(out) == in_order(native)
    # E1 late on the 3rd (C2), 6th (L) and 11th (Q): 5% each; E2 on the 9th (M): 1%.
    assert amounts(native) == [Decimal("900.00"), Decimal("60.00")]  # E1, E2
    assert session.stats.conflicts == 1 and session.stats.duplicates == 1


def test_a_strict_session_cannot_withdraw_an_applied_event() -> None:
    """Without an allowance, a chain reaching an event already applied is refused as a
    correction of an applied event (batch withdraws it): a stream agrees with batch only
    when its allowance covers the distance."""
    session = Engine(LATENESS).session()
    session.feed_many([profile("E1"), clock_in("O", 3), clock_in("C2", 4, corrects="C1")])
    with pytest.raises(EventOrderError, match="correction of 'O'"):
        session.feed(clock_in("C1", 5, corrects="O"))


def test_feed_many_keeps_the_revocations_of_a_refused_cycle() -> None:
    session = Engine(LATENESS).session(allowed_lateness=WIDE)
    with pytest.raises(EventError, match="cycle") as info:
        session.feed_many([profile("E1"), clock_in("A", 3, corrects="B"),
                           clock_in("B", 4, corrects="A")])
    got = info.value.decisions  # type: ignore[attr-defined]
    revoked = {d.details["revoked"] for d in got if d.details.get("outcome") == "revoked"}
    late_day = [d for d in got if d.rule == "R1" and "A" in d.evidence
                and d.details.get("outcome") != "revoked"]
    assert late_day and {d.id for d in late_day} <= revoked
    assert session.stats.decisions == len(got)


def test_a_snapshot_with_the_corrected_ids_of_an_older_version_restores() -> None:
    engine = Engine(LATENESS)
    session = engine.session(allowed_lateness=timedelta(days=2))
    session.feed_many([profile("E1"), clock_in("F", 3, 10, corrects="O")])
    payload = unpack(session.snapshot())
    assert isinstance(payload, dict)
    payload["corrected"] = ["O"]  # what older versions wrote: the corrected ids only
    restored = engine.restore(pack(payload))
    assert restored.feed(clock_in("O", 3, 50)) == [] and restored.stats.superseded == 1
    with pytest.raises(EventError, match="corrected already"):
        restored.feed(clock_in("F2", 4, corrects="O"))


@st.composite
def consistent_logs(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(a log, an arrival order of it): clock-ins of one employee and corrections of the
    same employee, each event corrected at most once (chains and cycles, no forks), with
    identical redeliveries: the result must not depend on the arrival order."""
    n = draw(st.integers(1, 4))
    m = draw(st.integers(0, 4))
    ids = [f"e{i}" for i in range(n)] + [f"c{j}" for j in range(m)]
    # Distinct instants: at one instant a session applies events in arrival order, a batch
    # in id order (a tie rule of late events, not of corrections).
    when = iter(draw(st.lists(st.tuples(st.integers(2, 13), st.integers(10, 59)),
                              min_size=n + m, max_size=n + m, unique=True)))
    records: list[dict[str, Any]] = [profile("E1")]
    records += [clock_in(f"e{i}", *next(when)) for i in range(n)]
    free = list(ids)
    for j in range(m):
        choices = [i for i in free if i != f"c{j}"]
        if not choices:
            break
        target = draw(st.sampled_from(choices))
        free.remove(target)
        records.append(clock_in(f"c{j}", *next(when), corrects=target))
    records += [dict(r) for r in draw(st.lists(st.sampled_from(records[1:]), max_size=2))]
    return records, draw(st.permutations(records))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=consistent_logs())
def test_without_forks_or_mismatches_the_arrival_order_does_not_matter(
        case: tuple[list[dict[str, Any]], list[dict[str, Any]]]) -> None:
    records, arrival = case
    decisions, kept, _refused = batch(records)
    session = Engine(LATENESS).session(allowed_lateness=WIDE)
    out: list[Decision] = []
    for r in arrival:
        try:
            out += session.feed(r)
        except EventError as exc:
            assert "cycle" in str(exc)  # closing a ring, or a copy of a refused member
            out += getattr(exc, "decisions", [])
    out += session.advance_to(UNTIL)
    assert live(session) == set(kept)
    assert effective(out) == in_order(decisions)


def test_meta_that_is_not_json_data_never_crashes_the_digest() -> None:
    """Events built in Python may carry any object in meta: the digest and the conflict
    message still work (no raw serialization error)."""
    session = Engine(LATENESS).session(allowed_lateness=timedelta(days=1))
    odd = clock_in("X", 3)
    odd["meta"] = {"raw": b"\xff", "obj": object(), "keys": {1: "a", "b": 2}}
    session.feed(odd)
    assert session.feed(odd) == [] and session.stats.duplicates == 1
    with pytest.raises(EventConflictError, match="at: got"):
        session.feed(dict(odd, at=t("2026-03-03 08:01").isoformat()))
