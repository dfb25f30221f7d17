"""One batch pipeline: Engine.evaluate, audit(), the CLI and distributed_audit give the same
decisions, ids included, for a hostile-ish log — on both backends — and the horizon, local
times and logging behave the same on every door."""

from __future__ import annotations

import json
import logging
import random
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from helpers import SHANGHAI, ev, profile

from policykit import (
    Engine,
    EventConflictError,
    EventError,
    ParameterError,
    PolicySet,
    audit,
    standard_pack,
)
from policykit.audit import parse_instant
from policykit.calendar import CalendarError
from policykit.cli import main
from policykit.distributed import distributed_audit
from policykit.models.decisions import Decision

UNTIL = "2026-05-01T00:00:00+08:00"
BACKENDS = ["native", "durable"]


def hostile_log() -> list[dict[str, Any]]:
    """Three employees from January to April 2026: daily attendance, complaints, a complaint
    redelivered 42 days after it happened, corrections, and records given out of order."""
    rng = random.Random(13)
    log: list[dict[str, Any]] = [profile(e, at="2026-01-01 00:00") for e in ("E1", "E2", "E3")]
    day = date(2026, 1, 5)
    n = 0
    while day < date(2026, 4, 25):
        if day.weekday() < 5:
            for e in ("E1", "E2", "E3"):
                n += 1
                late = rng.random() < 0.15
                log.append(ev("attendance.clock_in", f"{day} {'09:05' if late else '08:20'}",
                              id=f"in-{n}", employee_id=e))
                log.append(ev("attendance.clock_out", f"{day} 17:45", id=f"out-{n}",
                              employee_id=e))
        day += timedelta(days=1)
    complaint = ev("staff.complaint", "2026-01-20 10:00", id="c-1", employee_id="E1",
                   source="customer", severity="serious")
    log.append(complaint)
    log.append(ev("staff.complaint", "2026-02-10 11:00", id="c-2", employee_id="E2",
                  source="customer", severity="moderate"))
    # Corrections: c-2 was really minor; a late clock-in was really on time.
    log.append(ev("staff.complaint", "2026-02-10 11:00", id="c-2-fix", employee_id="E2",
                  source="customer", severity="minor", meta={"corrects": "c-2"}))
    late_in = next(r for r in log if r["type"] == "attendance.clock_in"
                   and r["at"].endswith("09:05:00+08:00") and r["at"] > "2026-03")
    log.append({**late_in, "id": late_in["id"] + "-fix",
                "at": late_in["at"].replace("09:05", "08:15"),
                "meta": {"corrects": late_in["id"]}})
    # Some records arrive late: a March week shuffled into April.
    march = [i for i, r in enumerate(log) if r["at"].startswith("2026-03-1")]
    moved = [log[i] for i in march]
    for i in reversed(march):
        del log[i]
    log += moved
    # The redelivery: the same complaint (same id, same record) delivered again 42 days
    # later, among the records of early March.
    log.insert(next(i for i, r in enumerate(log) if r["at"] >= "2026-03-03"), dict(complaint))
    return log


def conflicting_log() -> list[dict[str, Any]]:
    """The hostile log, with the complaint sent again 42 days later stamped with the time it
    was re-sent: the same id with another payload."""
    log = hostile_log()
    again = {**next(r for r in log if r["id"] == "c-1"), "at": "2026-03-03T10:00:00+08:00"}
    log.insert(next(i for i, r in enumerate(log) if r["at"] >= again["at"]), again)
    return log


def _key(decisions: list[Decision]) -> list[str]:
    return [d.model_dump_json() for d in decisions]


@pytest.fixture(scope="module")
def log() -> list[dict[str, Any]]:
    return hostile_log()


@pytest.fixture(scope="module", params=BACKENDS)
def reference(request: pytest.FixtureRequest, log: list[dict[str, Any]]
              ) -> tuple[str, list[Decision]]:
    backend = request.param
    return backend, Engine(standard_pack(), backend=backend).evaluate(log, until=UNTIL)


def test_the_redelivered_complaint_is_fined_once(reference: tuple[str, list[Decision]]
                                                 ) -> None:
    _backend, decisions = reference
    fines = [d for d in decisions if d.kind == "fine" and "c-1" in d.evidence]
    assert len(fines) == 1 and fines[0].amount == Decimal("200.00")
    # The correction stands in for c-2: one fine, the minor one.
    c2 = [d for d in decisions if d.kind == "fine" and {"c-2", "c-2-fix"} & set(d.evidence)]
    assert [(d.evidence, d.amount) for d in c2] == [(("c-2-fix",), Decimal("10.00"))]


def test_audit_gives_the_engines_decisions(reference: tuple[str, list[Decision]],
                                           log: list[dict[str, Any]]) -> None:
    backend, decisions = reference
    report = audit(log, standard_pack(), UNTIL, backend=backend)
    assert report.quarantine == []
    assert _key(report.trail) == _key(decisions)
    assert report.counts.duplicates == 1
    assert report.counts.corrected == 2
    assert report.counts.evaluated == len(log) - 1 - 2


def test_the_cli_gives_the_engines_decisions(reference: tuple[str, list[Decision]],
                                             log: list[dict[str, Any]], tmp_path: Path
                                             ) -> None:
    backend, decisions = reference
    src = tmp_path / "log.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    out = tmp_path / "decisions.jsonl"
    code = main(["audit", str(src), "--until", UNTIL, "--backend", backend, "--format",
                 "jsonl", "--trail", "-o", str(out)])
    assert code in (0, 1)
    rows = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines() if x.strip()]
    # Each line is the decision's wire form plus the audit's own "audit" annotation.
    assert [{k: v for k, v in r.items() if k != "audit"} for r in rows] == \
        [json.loads(json.dumps(d.to_json_dict())) for d in decisions]


def test_distributed_gives_the_engines_decisions(reference: tuple[str, list[Decision]],
                                                 log: list[dict[str, Any]]) -> None:
    backend, decisions = reference
    got = distributed_audit(log, standard_pack(), UNTIL, partitions=3, backend=backend)
    assert _key(got) == _key(decisions)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_session_refusal_quarantines_one_event_and_keeps_the_rest(
        monkeypatch: pytest.MonkeyPatch, log: list[dict[str, Any]], backend: str) -> None:
    """An EventError the session raises for one event (a future conflicting duplicate, a
    refused correction) sets that event aside; the events around it are still audited."""
    from policykit.engine.session import Session

    real = Session._feed

    def refuse(self: Session, event: Any) -> Any:
        if event.id == "c-2-fix":
            self.stats.rejected += 1
            raise EventError("<event>", [("meta.corrects", "c-2", "a refusable correction")],
                             event_id=event.id)
        return real(self, event)

    monkeypatch.setattr(Session, "_feed", refuse)
    report = audit(log, standard_pack(), UNTIL, backend=backend)
    assert [q.event_id for q in report.quarantine] == ["c-2-fix"]
    assert report.quarantine[0].line == next(i for i, r in enumerate(log, 1)
                                             if r["id"] == "c-2-fix")
    assert "c-2-fix" not in report.events
    assert report.counts.read == report.counts.valid + report.counts.quarantined
    # Everything around the refused event was still evaluated: the decisions are those of
    # the log without it (and without c-2, which the batch dropped as corrected before the
    # session refused the correction).
    without = [r for r in log if r["id"] not in ("c-2", "c-2-fix")]
    monkeypatch.undo()
    want = Engine(standard_pack(), backend=backend).evaluate(without, until=UNTIL)
    assert _key(report.trail) == _key(want)
    monkeypatch.setattr(Session, "_feed", refuse)
    with pytest.raises(EventError, match="refusable"):
        Engine(backend=backend).evaluate(log, until=UNTIL)


# ------------------------------------------------------------------------------ until


def test_until_takes_every_documented_form() -> None:
    log = [profile("E1"), ev("attendance.clock_in", "2026-03-02 09:10", employee_id="E1")]
    want = Engine().evaluate(log, until=datetime(2026, 3, 4, tzinfo=SHANGHAI))
    for until in ("2026-03-04T00:00:00+08:00", "2026-03-03T16:00:00Z", date(2026, 3, 4),
                  "2026-03-04"):
        assert Engine().evaluate(log, until=until) == want, until
        assert audit(log, until=until).trail == want, until
        assert distributed_audit(log, until=until) == want, until
    assert Engine().evaluate(log, until="2026-03-04 00:00", assume_tz="Asia/Shanghai") == want
    with pytest.raises(ParameterError, match="assume_tz"):
        Engine().evaluate(log, until="2026-03-04T00:00:00")
    with pytest.raises(ParameterError, match="offset"):
        audit(log, until=datetime(2026, 3, 4))
    with pytest.raises(ParameterError, match="until"):
        distributed_audit(log, until="next tuesday")


def test_a_date_means_the_start_of_that_day_in_the_calendar_zone() -> None:
    pack = standard_pack()
    assert parse_instant("2026-04-01", policies=pack) == \
        datetime(2026, 4, 1, tzinfo=ZoneInfo("Asia/Shanghai"))
    first, *rest = list(pack)
    berlin = first.model_copy(update={"calendar": first.calendar.model_copy(
        update={"timezone": "Europe/Berlin"})})
    mixed = PolicySet([berlin, *rest])
    with pytest.raises(ParameterError, match="disagree"):
        parse_instant("2026-04-01", policies=mixed)
    with pytest.raises(ParameterError, match="calendar"):
        parse_instant("2026-04-01")  # no policies, no zone: no way to say when the day starts


# ------------------------------------------------------------------------------ assume_tz


def _local_log() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The same three records with offsets, and as a local-time export writes them."""
    aware = [profile("E1"), ev("attendance.clock_in", "2026-03-02 09:10", id="a",
                               employee_id="E1"),
             ev("attendance.clock_in", "2026-03-03 08:31", id="b", employee_id="E1")]
    local = [dict(r) for r in aware]
    local[0]["at"] = "2026-01-01 00:00"
    local[1]["at"] = "2026/3/2 9:10"
    local[2]["at"] = "2026/03/03 08:31:00"
    return aware, local


def test_assume_tz_reads_local_and_spreadsheet_times() -> None:
    aware, local = _local_log()
    want = Engine().evaluate(aware, until="2026-03-05")
    assert want  # the late clock-in is judged
    assert Engine().evaluate(local, until="2026-03-05", assume_tz="Asia/Shanghai") == want
    report = audit(local, until="2026-03-05", assume_tz="Asia/Shanghai")
    assert report.quarantine == [] and report.trail == want
    assert distributed_audit(local, until="2026-03-05", assume_tz="Asia/Shanghai") == want
    # Naive timestamps of a DataFrame or Parquet file are read the same way.
    walls = [datetime(2026, 1, 1), datetime(2026, 3, 2, 9, 10), datetime(2026, 3, 3, 8, 31)]
    frames = [{**r, "at": wall} for r, wall in zip(local, walls, strict=True)]
    assert audit(frames, until="2026-03-05", assume_tz="Asia/Shanghai").trail == want
    # The same wall times elsewhere are other instants.
    assert audit(local, until="2026-03-05", assume_tz="UTC").trail != want


def test_without_assume_tz_local_times_are_quarantined_saying_how_to_fix_it() -> None:
    _aware, local = _local_log()
    report = audit(local, until="2026-03-05T00:00:00+08:00")
    assert len(report.quarantine) == 3
    assert all("assume_tz" in q.error and "--assume-tz" in q.error for q in report.quarantine)
    with pytest.raises(EventError, match="assume_tz"):
        Engine().evaluate(local)


def test_assume_tz_refuses_unknown_zones_and_dst_wall_times() -> None:
    with pytest.raises(ParameterError, match="Asia/Shanghai"):
        audit([], assume_tz="Asia/Shangai")
    with pytest.raises(ParameterError, match="assume_tz"):
        Engine().evaluate([], assume_tz="Mars/Olympus")
    records = [
        ev("attendance.clock_in", "2026-03-02 09:10", id="ok", employee_id="E1"),
        {"id": "gap", "type": "attendance.clock_in", "at": "2026-03-29 02:30",
         "employee_id": "E1"},
        {"id": "twice", "type": "attendance.clock_in", "at": "2026-10-25 02:30",
         "employee_id": "E1"},
    ]
    report = audit(records, assume_tz="Europe/Berlin")
    problems = {q.event_id: q.error for q in report.quarantine}
    assert set(problems) == {"gap", "twice"}
    assert "does not exist" in problems["gap"] and "happens twice" in problems["twice"]
    assert report.counts.evaluated == 1


# ------------------------------------------------------------------------------ holiday data


def test_a_horizon_beyond_the_holiday_data_is_refused_on_every_door() -> None:
    log = [profile("E1"), ev("attendance.clock_in", "2026-12-01 09:10", employee_id="E1")]
    for run in (lambda: Engine().evaluate(log, until="2027-03-01"),
                lambda: audit(log, until="2027-03-01T00:00:00+08:00"),
                lambda: distributed_audit(log, until="2027-03-01")):
        with pytest.raises(CalendarError, match="2027"):
            run()


def test_a_horizon_closing_the_last_covered_year_is_taken() -> None:
    log = [profile("E1"), ev("attendance.clock_in", "2026-12-31 09:10", employee_id="E1")]
    assert Engine().evaluate(log, until="2027-01-01") == audit(
        log, until="2027-01-01T00:00:00+08:00").trail
    with pytest.raises(CalendarError):
        audit(log, until="2027-01-01T00:00:00.000001+08:00")


def test_the_cli_exits_2_for_a_horizon_beyond_the_holiday_data(tmp_path: Path) -> None:
    src = tmp_path / "log.jsonl"
    src.write_text(json.dumps(ev("attendance.clock_in", "2026-12-01 09:10",
                                 employee_id="E1")) + "\n", encoding="utf-8")
    assert main(["audit", str(src), "--until", "2027-03-01T00:00:00+08:00",
                 "-o", str(tmp_path / "out.jsonl")]) == 2


def test_events_beyond_the_holiday_data_are_quarantined_or_refused() -> None:
    log = [profile("E1"), ev("attendance.clock_in", "2026-03-02 09:10", employee_id="E1"),
           ev("attendance.clock_in", "2027-03-02 09:10", id="next-year", employee_id="E1")]
    report = audit(log)
    assert [q.event_id for q in report.quarantine] == ["next-year"]
    assert "2027" in report.quarantine[0].error and report.counts.evaluated == 2
    with pytest.raises(CalendarError, match="next-year"):
        Engine().evaluate(log)


def test_a_calendar_that_ignores_missing_data_takes_any_horizon() -> None:
    pack = standard_pack()
    ignoring = [p.model_copy(update={"calendar": p.calendar.model_copy(
        update={"missing_holiday_data": "ignore"})}) for p in pack]
    log = [profile("E1"), ev("attendance.clock_in", "2026-12-01 09:10", employee_id="E1")]
    assert Engine(PolicySet(ignoring)).evaluate(log, until="2027-03-01") is not None


# ------------------------------------------------------------------------------ logging


def test_the_policykit_logger_reports_quarantine_and_counts(
        caplog: pytest.LogCaptureFixture, log: list[dict[str, Any]]) -> None:
    assert any(isinstance(h, logging.NullHandler)
               for h in logging.getLogger("policykit").handlers)
    bad = [*log[:50], {"id": "broken", "type": "attendance.clock_in", "at": "soon"}]
    with caplog.at_level(logging.DEBUG, logger="policykit"):
        audit(bad, until="2026-02-01T00:00:00+08:00")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "broken" in warnings[0].getMessage()
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert len(info) == 1 and "51 records read, 1 quarantined" in info[0]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="policykit"):
        audit(log, until=UNTIL)
    debug = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
    assert "'c-1' repeats an id" in debug
    assert "'c-2' is replaced by a correction" in debug
    assert "came after later events" in debug
    info = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "1 duplicates, 2 replaced by corrections" in info[0]


def test_many_quarantined_records_are_logged_as_a_count(
        caplog: pytest.LogCaptureFixture) -> None:
    bad = [{"id": f"b{i}", "type": "attendance.clock_in", "at": "soon"} for i in range(30)]
    with caplog.at_level(logging.WARNING, logger="policykit"):
        audit(bad)
    assert len(caplog.records) == 21
    assert "30 records quarantined in all" in caplog.records[-1].getMessage()


def test_progress_bars_come_from_tqdm_auto(monkeypatch: pytest.MonkeyPatch) -> None:
    import tqdm.auto

    made: list[str] = []
    real = tqdm.auto.tqdm

    class Spy(real):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            made.append(kwargs.get("desc", ""))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Spy)
    audit([profile("E1")], progress=True)
    assert made == ["reading", "evaluating"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_copy_with_another_time_is_a_conflict_on_every_door(backend: str,
                                                              tmp_path: Path) -> None:
    """The same complaint id re-sent 42 days later with another time: one fine, never two.
    The audit quarantines the later copy (naming the differing field), the CLI exits 3, and
    the strict doors (evaluate, distributed) refuse the log with the same error."""
    log = conflicting_log()
    clean = [r for r in log if not (r["id"] == "c-1" and r["at"].startswith("2026-03-03"))]
    want = Engine(standard_pack(), backend=backend).evaluate(clean, until=UNTIL)
    report = audit(log, until=UNTIL, backend=backend)
    assert [(q.event_id, q.problems[0][0]) for q in report.quarantine] == [("c-1", "at")]
    assert report.trail == want
    fines = [d for d in report.decisions if d.kind == "fine" and "c-1" in d.evidence]
    assert [d.amount for d in fines] == [Decimal("200.00")]
    src = tmp_path / "log.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")
    assert main(["audit", str(src), "--until", UNTIL, "--backend", backend,
                 "-o", str(tmp_path / "out.jsonl")]) == 3
    with pytest.raises(EventConflictError, match="'c-1'"):
        Engine(standard_pack(), backend=backend).evaluate(log, until=UNTIL)
    with pytest.raises(EventConflictError, match="'c-1'"):
        distributed_audit(log, standard_pack(), UNTIL, partitions=2, backend=backend)


def test_advance_to_takes_the_forms_until_takes_and_refuses_a_silent_horizon() -> None:
    """Streaming sessions read instants like every batch door, and refuse a horizon past the
    holiday data instead of judging nothing after it."""
    engine = Engine(standard_pack())
    dated = engine.session()
    dated.feed(profile("E7", at="2026-12-01 00:00"))
    by_date = dated.advance_to("2026-12-03")
    aware = engine.session()
    aware.feed(profile("E7", at="2026-12-01 00:00"))
    by_time = aware.advance_to(datetime(2026, 12, 3, tzinfo=SHANGHAI))
    assert by_date and [d.id for d in by_date] == [d.id for d in by_time]
    assert dated.advance_to(date(2026, 12, 4)) == aware.advance_to("2026-12-04T00:00:00+08:00")
    with pytest.raises(ParameterError, match=r"advance_to\.instant"):
        dated.advance_to("2026-12-05T00:00")  # no offset: ambiguous
    with pytest.raises(CalendarError, match="2027"):
        dated.advance_to("2027-03-01")
    assert dated.advance_to("2027-01-01") == aware.advance_to("2027-01-01T00:00:00+08:00")


def test_assume_tz_reads_a_spreadsheets_dates_too(tmp_path: Path) -> None:
    """An HR export writes a leave's days as it writes its times (2026/3/12): with the zone
    named, both are read; a date that does not exist is still refused by the model."""
    src = tmp_path / "leave.csv"
    src.write_text("id,type,at,employee_id,start,end,kind\n"
                   "l1,attendance.leave,2026/3/11 15:07,E7,2026/3/12,2026/3/13,sick\n"
                   "l2,attendance.leave,2026/3/11 15:08,E8,2026/2/30,2026/3/13,sick\n",
                   encoding="utf-8")
    report = audit(src, assume_tz="Asia/Shanghai")
    leave = report.events["l1"]
    assert (leave.start, leave.end) == (date(2026, 3, 12), date(2026, 3, 13))  # type: ignore[attr-defined]
    assert leave.at == datetime(2026, 3, 11, 15, 7, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert [(q.event_id, q.problems[0][0]) for q in report.quarantine] == [("l2", "start")]
    plain = audit(src)
    assert {q.event_id for q in plain.quarantine} == {"l1", "l2"}
