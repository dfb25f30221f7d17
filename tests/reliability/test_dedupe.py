"""A session remembers event ids for ``dedupe_window`` of event time: a redelivery within it
is ignored and counted, an older one is refused as too late (never silently applied twice),
and the memory of ids stays bounded however long the stream runs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from helpers import ev, profile, t

from policykit import (
    DEFAULT_DEDUPE_WINDOW,
    Engine,
    EventError,
    EventOrderError,
    ParameterError,
    standard_pack,
)
from policykit.engine._snapshot import pack, unpack

LATENESS = standard_pack().select("lateness-deduction")


def clock_in(day: int, hour: str = "08:20", n: int = 0) -> dict[str, object]:
    return ev("attendance.clock_in", f"2026-{3 + (day - 1) // 28:02d}-"
              f"{(day - 1) % 28 + 1:02d} {hour}", id=f"in-{day}-{n}", employee_id="E1")


@pytest.mark.parametrize(("days_later", "ignored"), [(29, True), (31, False)])
def test_a_default_session_remembers_ids_for_thirty_days(days_later: int,
                                                         ignored: bool) -> None:
    assert timedelta(days=30) == DEFAULT_DEDUPE_WINDOW
    session = Engine(LATENESS).session()
    session.feed(profile("E1"))
    first = clock_in(1)
    session.feed(first)
    later = t("2026-03-01 08:20") + timedelta(days=days_later)
    session.feed(ev("attendance.clock_in", later, id="later", employee_id="E1"))
    if ignored:
        assert session.feed(first) == []
        assert session.stats.duplicates == 1
    else:
        with pytest.raises(EventOrderError):
            session.feed(first)
        assert session.stats.rejected == 1


def test_a_redelivery_within_the_window_is_ignored_and_counted() -> None:
    session = Engine(LATENESS).session()
    session.feed(profile("E1"))
    first = clock_in(1)
    session.feed(first)
    session.feed(clock_in(20))
    assert session.feed(first) == []  # 19 days later: still remembered
    assert session.stats.duplicates == 1
    assert session.stats.rejected == 0


def test_a_redelivery_older_than_the_window_is_refused_and_says_why() -> None:
    session = Engine(LATENESS).session(dedupe_window=timedelta(days=7))
    session.feed(profile("E1"))
    first = clock_in(1)
    session.feed(first)
    session.feed(clock_in(10))
    with pytest.raises(EventOrderError) as info:
        session.feed(first)
    assert "dedupe window (P7D)" in str(info.value)
    assert "in-1-0" in str(info.value)
    assert session.stats.rejected == 1
    assert session.stats.duplicates == 0


def test_forgotten_ids_leave_memory_and_the_rest_stay() -> None:
    session = Engine(LATENESS).session(dedupe_window=timedelta(days=3))
    session.feed(profile("E1"))
    for day in range(1, 41):
        session.feed(clock_in(day))
    remembered = session._seen
    # Ids of the last three days (and the day at the horizon) stay; the rest went.
    assert len(remembered) == 4
    assert "in-40-0" in remembered and "in-37-0" in remembered
    assert "in-36-0" not in remembered
    assert remembered.forgotten_until == t("2026-04-08 08:20")


def test_none_remembers_every_id() -> None:
    session = Engine(LATENESS).session(dedupe_window=None)
    session.feed(profile("E1"))
    first = clock_in(1)
    session.feed(first)
    session.feed(clock_in(40))
    assert session.feed(first) == []
    assert session.stats.duplicates == 1


def test_the_window_is_never_shorter_than_the_allowed_lateness() -> None:
    session = Engine(LATENESS).session(dedupe_window=timedelta(days=1),
                                       allowed_lateness=timedelta(days=5))
    assert session._seen.window == timedelta(days=5)
    session.feed(profile("E1"))
    first = clock_in(1)
    session.feed(first)
    session.feed(clock_in(4))
    assert session.feed(first) == []  # inside the lateness window: known, so a duplicate
    assert session.stats.duplicates == 1


def test_a_correction_of_an_id_that_may_be_forgotten_is_refused() -> None:
    session = Engine(LATENESS).session(dedupe_window=timedelta(days=3))
    session.feed(profile("E1"))
    for day in range(1, 10):
        session.feed(clock_in(day))
    fix = ev("attendance.clock_in", "2026-03-09 09:00", id="fix", employee_id="E1",
             meta={"corrects": "in-2-0"})
    with pytest.raises(EventError) as info:
        session.feed(fix)
    message = str(info.value)
    assert "meta.corrects" in message and "dedupe_window" in message and "P3D" in message
    assert session.stats.rejected == 1
    assert session.stats.corrections == 0


def test_a_correction_arriving_before_its_original_still_works_before_any_forgetting() -> None:
    session = Engine(LATENESS).session(dedupe_window=timedelta(days=3))
    session.feed(profile("E1"))
    fix = ev("attendance.clock_in", "2026-03-01 08:10", id="fix", employee_id="E1",
             meta={"corrects": "later"})
    session.feed(fix)
    assert session.stats.corrections == 1


@pytest.mark.parametrize("bad", [timedelta(0), timedelta(days=-1), 30, "P30D"])
def test_a_bad_window_is_a_parameter_error(bad: object) -> None:
    with pytest.raises(ParameterError) as info:
        Engine(LATENESS).session(dedupe_window=bad)  # type: ignore[arg-type]
    assert "dedupe_window" in str(info.value)


def test_a_snapshot_keeps_the_window_and_what_was_forgotten() -> None:
    engine = Engine(LATENESS)
    session = engine.session(dedupe_window=timedelta(days=3))
    session.feed(profile("E1"))
    for day in range(1, 11):
        session.feed(clock_in(day))
    restored = engine.restore(session.snapshot())
    assert restored._seen.window == timedelta(days=3)
    assert restored._seen.forgotten_until == session._seen.forgotten_until
    assert restored._seen.ids == session._seen.ids
    assert restored.feed(clock_in(10)) == []  # remembered: a duplicate
    with pytest.raises(EventOrderError):
        restored.feed(clock_in(2))  # forgotten, and too old


def test_a_snapshot_written_before_ids_had_times_still_restores() -> None:
    engine = Engine(LATENESS)
    session = engine.session(dedupe_window=None)
    session.feed(profile("E1"))
    session.feed(clock_in(1))
    payload = unpack(session.snapshot())
    assert isinstance(payload, dict)
    payload["seen"] = sorted(i for i, _at, _digest in payload["seen"]["ids"])
    payload["corrected"] = []  # the list of corrected ids that older versions wrote
    del payload["forgotten_until"], payload["dedupe_window"]
    restored = engine.restore(pack(payload))
    assert restored.feed(clock_in(1)) == []
    assert restored.stats.duplicates == 1
