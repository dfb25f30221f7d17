"""Audits: every reader, the quarantine, counts, payroll, explain, why_not and exports."""

from __future__ import annotations

import csv
import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from audit_data import (
    EXPECTED_PAYROLL,
    UNTIL,
    contact,
    events,
    policies,
    write_jsonl,
    write_policy_file,
)
from helpers import ev, profile

from policykit import ParameterError, parse_events
from policykit.audit import AuditReport, AuditSourceError, audit, parse_instant


def _ids(report: AuditReport) -> list[str]:
    return [d.id for d in report.decisions]


@pytest.fixture(scope="module")
def reference() -> AuditReport:
    """The audit of the log given as a list of dicts: every reader must agree with it."""
    return audit(events(), policies(), UNTIL)


def test_the_reference_audit_has_the_decisions_worked_out_by_hand(reference: AuditReport) -> None:
    kinds = sorted((d.policy, d.rule, d.kind, d.status) for d in reference.trail)
    assert kinds == [
        ("test-gm", "R4", "violation", "final"),          # c2 never reported
        ("test-pay", "R1", "fine", "final"),              # minor complaint
        ("test-pay", "R1", "fine", "final"),              # serious complaint
        ("test-pay", "R2", "deduction", "final"),         # March total
        ("test-pay", "R2", "deduction", "provisional"),   # after pc1
        ("test-pay", "R2", "deduction", "provisional"),   # after pc2
    ]
    # What stands: the provisional running totals are superseded by the March total.
    assert [d for d in reference.trail if d.status == "final"] == reference.decisions
    assert reference.counts.as_dict() == {"read": 10, "valid": 10, "duplicates": 0,
                                          "quarantined": 0, "after_until": 0, "corrected": 0,
                                          "evaluated": 10, "decisions": 6}
    assert list(reference.events) == [e["id"] for e in sorted(
        events(), key=lambda e: (e["at"], e["id"]))]


# --- readers ----------------------------------------------------------------------------------


def test_jsonl_bad_lines_are_quarantined_with_line_numbers_and_neighbours_kept(
        tmp_path: Path, reference: AuditReport) -> None:
    good = events()
    lines: list[Any] = [*good[:3], "{not json", "", good[3],
                        {"id": "naive", "type": "attendance.clock_in", "at": "2026-03-02T08:00",
                         "employee_id": "E1"},
                        *good[4:], {"id": "typo", "type": "attendance.clock_inn",
                                    "at": "2026-03-02T08:00:00+08:00", "employee_id": "E1"}]
    path = write_jsonl(tmp_path / "log.jsonl", lines)
    report = audit(path, policies(), UNTIL)
    assert [(q.line, q.event_id) for q in report.quarantine] == [
        (4, None), (7, "naive"), (14, "typo")]
    assert all(q.unit == "line" and q.source == str(path) for q in report.quarantine)
    assert "valid JSON" in report.quarantine[0].error
    assert report.quarantine[1].problems[0][0] == "at"
    assert "offset" in report.quarantine[1].error
    assert "did you mean 'attendance.clock_in'" in report.quarantine[2].error
    assert str(report.quarantine[1]).startswith(f"{path} line 7 (event 'naive'): at:")
    # The records around each bad one are all there: same decisions as the clean log.
    assert _ids(report) == _ids(reference)
    assert report.counts.read == 13 and report.counts.valid == 10
    assert report.counts.quarantined == 3


def test_json_array_items_report_the_line_they_start_on(tmp_path: Path,
                                                        reference: AuditReport) -> None:
    items: list[Any] = [*events()]
    items.insert(2, {"id": "bad-kind", "type": "staff.complaint", "at": "2026-03-02T08:00:00+08:00",
                     "employee_id": "E1", "source": "customer", "severity": "huge"})
    path = tmp_path / "log.json"
    path.write_text(json.dumps(items, indent=2), encoding="utf-8")
    report = audit(path, policies(), UNTIL)
    text = path.read_text().splitlines()
    (bad,) = report.quarantine
    assert bad.event_id == "bad-kind" and bad.problems[0][0] == "severity"
    assert bad.line is not None
    # The item opens with "{" on the reported line, followed by its id.
    assert text[bad.line - 1].strip() == "{" and '"bad-kind"' in text[bad.line]
    assert _ids(report) == _ids(reference)


def test_a_json_array_that_is_not_json_fails_the_source_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "log.json"
    path.write_text('[\n{"id": "a"},\n{"id": \n', encoding="utf-8")
    with pytest.raises(AuditSourceError) as info:
        audit(path, policies())
    assert info.value.line == 3 and str(path) in str(info.value)


def test_csv_nested_fields_as_json_text_and_empty_cells_absent(tmp_path: Path,
                                                               reference: AuditReport) -> None:
    rows = events()
    notified = ev("incident.notified", "2026-03-10 09:00", id="n1", incident_id="I1",
                  employee_id="E1", recipients=["sales_owner", "manager"],
                  details={"time": "09:00", "place": "B2", "symptoms": "down", "plan": "swap"},
                  meta={"source": "crm"})
    rows.append(notified)
    columns = sorted({k for r in rows for k in r})
    path = tmp_path / "log.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for i, r in enumerate(rows):
            cells = {k: (json.dumps(v) if isinstance(v, list | dict) else
                         str(v).lower() if isinstance(v, bool) else v) for k, v in r.items()}
            if i == 2:
                # A quoted cell spanning lines: later rows must still report file lines.
                cells["topic"] = "multi\nline"
            writer.writerow(cells)
        writer.writerow({"id": "bad-row", "type": "staff.private_call",
                         "at": "2026-03-05T10:00:00+08:00", "employee_id": "E1",
                         "duration_s": "-5"})
    report = audit(path, policies(), UNTIL)
    (bad,) = report.quarantine
    assert bad.event_id == "bad-row" and bad.problems[0][0] == "duration_s"
    # header line 1, 11 rows, one of them two lines long: the bad row starts on line 14.
    assert bad.line == 14 and bad.unit == "line"
    assert ",bad-row," in path.read_text(encoding="utf-8").splitlines()[bad.line - 1]
    parsed = report.events["n1"]
    assert parsed.recipients == ["sales_owner", "manager"]  # type: ignore[attr-defined]
    assert parsed.details.plan == "swap"  # type: ignore[attr-defined]
    assert parsed.meta == {"source": "crm"}
    assert report.events["c3"].major is False  # type: ignore[attr-defined]
    assert report.events["g1"].actor is None   # empty cell: absent, not ""
    assert _ids(report) == _ids(reference)


def _frame_rows() -> list[dict[str, Any]]:
    return [dict(r) for r in events()]


def test_pandas_and_polars_frames_audit_like_the_list(reference: AuditReport) -> None:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    import polars as pl

    rows = _frame_rows()
    frame = pd.DataFrame(rows)  # absent fields become NaN cells
    assert frame["duration_s"].isna().any()
    assert _ids(audit(frame, policies(), UNTIL)) == _ids(reference)
    assert _ids(audit(pl.DataFrame(rows, infer_schema_length=None), policies(),
                      UNTIL)) == _ids(reference)


def test_a_bad_dataframe_row_is_quarantined_with_its_row_number() -> None:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    rows = _frame_rows()
    rows[4]["at"] = "2026-03-03 10:00"  # naive
    report = audit(pd.DataFrame(rows).iloc[::-1], policies(), UNTIL)  # reversed index
    (bad,) = report.quarantine
    assert (bad.unit, bad.line, bad.event_id) == ("row", len(rows) - 4, "c2")


def test_parquet_with_timestamp_and_list_columns(tmp_path: Path, reference: AuditReport) -> None:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    rows = _frame_rows()
    rows.append(ev("incident.notified", "2026-03-10 09:00", id="n1", incident_id="I1",
                   employee_id="E1", recipients=["sales_owner", "manager"]))
    frame = pd.DataFrame(rows)
    frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert("Asia/Shanghai")
    path = tmp_path / "log.parquet"
    frame.to_parquet(path)
    report = audit(path, policies(), UNTIL)
    assert report.quarantine == []
    assert report.events["n1"].recipients == ["sales_owner", "manager"]  # type: ignore[attr-defined]
    assert _ids(report) == _ids(reference)


def test_models_and_json_strings_are_sources_too(reference: AuditReport) -> None:
    models = parse_events(events())
    assert _ids(audit(models, policies(), UNTIL)) == _ids(reference)
    assert _ids(audit((json.dumps(e) for e in events()), policies(), UNTIL)) == _ids(reference)


def test_duplicates_are_counted_once_and_not_evaluated_twice(reference: AuditReport) -> None:
    log = events()
    report = audit([*log, log[6], log[8]], policies(), UNTIL)
    assert report.counts.duplicates == 2
    assert report.counts.read == 12 and report.counts.valid == 12
    assert report.counts.evaluated == 10
    assert _ids(report) == _ids(reference)


def test_until_holds_out_later_events_and_naive_until_is_refused() -> None:
    report = audit(events(), policies(), "2026-03-05T00:00:00+08:00")
    assert report.counts.after_until == 3  # pc2 (03-05 10:00), sc1, sc2
    assert report.counts.evaluated == 7
    assert report.horizon == parse_instant("2026-03-05T00:00:00+08:00")
    assert all(d.at <= report.horizon for d in report.decisions)
    with pytest.raises(ParameterError, match="offset"):
        audit(events(), policies(), "2026-04-01T00:00:00")


def test_unreadable_sources_fail_clearly(tmp_path: Path) -> None:
    with pytest.raises(AuditSourceError, match="no such file"):
        audit(tmp_path / "missing.jsonl", policies())
    odd = tmp_path / "log.txt"
    odd.write_text("hello\n")
    with pytest.raises(AuditSourceError, match="unknown format"):
        audit(odd, policies())
    sniffed = write_jsonl(tmp_path / "log.data", events())
    assert audit(sniffed, policies(), UNTIL).counts.valid == 10


def test_policy_as_a_file_or_a_standard_id(tmp_path: Path, reference: AuditReport) -> None:
    path = write_policy_file(tmp_path / "acme.yaml")
    assert _ids(audit(events(), path, UNTIL)) == _ids(reference)
    from policykit import standard_pack

    first = standard_pack().ids[0]
    assert audit(events(), first).policies.ids == [first]
    with pytest.raises(ParameterError, match=f"did you mean '{first}'"):
        audit(events(), first[:-1] + "x")


def test_progress_goes_to_stderr_only(capsys: pytest.CaptureFixture[str]) -> None:
    audit(events(), policies(), UNTIL, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "reading" in err or "evaluating" in err


# --- tables -----------------------------------------------------------------------------------


def test_to_pandas_keeps_amounts_decimal(reference: AuditReport) -> None:
    frame = reference.to_pandas()
    assert len(frame) == len(reference.decisions)
    assert frame["amount"].dtype == object
    amounts = [a for a in frame["amount"] if a is not None]
    assert amounts and all(isinstance(a, Decimal) for a in amounts)
    assert str(frame["at"].dt.tz) == "Asia/Shanghai"
    assert list(frame["id"]) == _ids(reference)


def test_polars_and_jsonl_exports(tmp_path: Path, reference: AuditReport) -> None:
    frame = reference.to_polars()
    assert frame.height == len(reference.decisions)
    assert str(frame.schema["amount"]) == "Decimal(precision=18, scale=2)"
    assert sorted(a for a in frame["amount"].to_list() if a) == sorted(
        d.amount for d in reference.decisions if d.amount is not None)
    path = reference.to_jsonl(tmp_path / "d.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["id"] for x in lines] == _ids(reference)


def test_summary_counts_and_sums_final_money(reference: AuditReport) -> None:
    standing = {(r.policy, r.rule, r.kind): r for r in reference.summary().itertuples()}
    assert standing[("test-pay", "R2", "deduction")].decisions == 1
    assert standing[("test-pay", "R2", "deduction")].amount == Decimal("120.00")
    summary = reference.summary(trail=True)
    rows = {(r.policy, r.rule, r.kind): r for r in summary.itertuples()}
    assert rows[("test-pay", "R2", "deduction")].decisions == 3
    assert rows[("test-pay", "R2", "deduction")].final == 1
    assert rows[("test-pay", "R2", "deduction")].amount == Decimal("120.00")  # not 60+120+120
    assert rows[("test-pay", "R1", "fine")].amount == Decimal("210.00")
    assert rows[("test-gm", "R4", "violation")].amount is None
    by_subject = reference.summary(by=("policy", "subject"))
    assert set(by_subject["subject"]) == {"employee:E1"}
    with pytest.raises(ParameterError, match="did you mean 'policy'"):
        reference.summary(by=("polcy",))


def test_summary_rows_are_the_summary_without_pandas(reference: AuditReport) -> None:
    for trail in (False, True):
        rows = reference.summary_rows(trail=trail)
        assert rows == reference.summary(trail=trail).to_dict("records")
    by_subject = reference.summary_rows("subject")
    assert [r["subject"] for r in by_subject] == ["employee:E1"]
    with pytest.raises(ParameterError, match="did you mean 'policy'"):
        reference.summary_rows(by=("polcy",))


def test_payroll_is_final_decimal_money_per_employee(reference: AuditReport) -> None:
    table = reference.payroll("2026-03")
    assert list(table.columns) == ["employee_id", "role", "department", "currency",
                                   "base_salary", "test-pay R1", "test-pay R2", "total", "net"]
    got = {r["employee_id"]: {k: r[k] for k in EXPECTED_PAYROLL["E1"]}
           for r in table.to_dict("records")}
    assert got == EXPECTED_PAYROLL
    assert all(isinstance(v, Decimal) for row in got.values() for v in row.values())
    assert reference.payroll().equals(table)  # the latest month with money by default
    empty = reference.payroll("2026-04")
    assert list(empty["total"]) == [Decimal("0.00"), Decimal("0.00")]
    with pytest.raises(ParameterError):
        reference.payroll("March")


def test_payroll_counts_a_late_profile_change_only_from_its_month() -> None:
    log = [*events(), profile("E1", salary="7000.00", at="2026-04-02 00:00")]
    log[0]["id"] = "p-E1-old"
    report = audit(log, policies(), "2026-04-05T00:00:00+08:00")
    march = report.payroll("2026-03").set_index("employee_id")
    assert march.loc["E1", "base_salary"] == Decimal("6000.00")
    assert march.loc["E1", "net"] == Decimal("5670.00")


# --- explanations ---------------------------------------------------------------------------


def test_explain_a_missed_deadline(reference: AuditReport) -> None:
    (missed,) = [d for d in reference.decisions if d.rule == "R4"]
    why = reference.explain(missed.id)
    assert why.rule.title == "report major matters"
    assert why.parameters == {"gm_report_within": "PT30M"}
    assert why.parameter_docs["gm_report_within"].startswith("how soon")
    assert [e.id for e in why.evidence] == ["c2"]
    assert why.timing["due"].startswith("2026-03-03T10:30")
    text = why.render()
    for part in ("test-gm R4", "report major matters", "gm_report_within = 'PT30M'",
                 "Deadline / window", "c2  contact.received", "篇二 §二.5"):
        assert part in text
    assert reference.explain(missed.id[:8]).decision == missed  # a unique prefix
    assert json.loads(json.dumps(why.to_dict()))["decision"]["id"] == missed.id
    assert "<h5>Evidence</h5>" in why._repr_html_()


def test_explain_a_settled_total_shows_items_and_what_it_replaces(
        reference: AuditReport) -> None:
    (total,) = [d for d in reference.decisions if d.rule == "R2" and d.status == "final"]
    why = reference.explain(total.id)
    assert [e.id for e in why.evidence] == ["p-E1", "pc1", "pc2"]
    assert len(why.supersedes) == 2 and why.timing["period"] == "2026-03"
    provisional = total.supersedes[0]
    assert reference.explain(provisional).superseded_by == [total.id]


def test_explain_unknown_id_suggests_the_nearest(reference: AuditReport) -> None:
    real = reference.decisions[0].id
    with pytest.raises(ParameterError, match="did you mean"):
        reference.explain(real[:-1] + ("0" if real[-1] != "0" else "1"))


def test_why_not_says_how_close_a_deadline_came(reference: AuditReport) -> None:
    report = audit([e for e in events() if e["id"] != "c2"], policies(), UNTIL)
    why = report.why_not("E1", "test-gm", "R4")
    assert why.fired == []
    assert [e.id for e in why.checked] == ["c1", "g1", "c3"]
    assert why.closest == timedelta(minutes=12)
    text = why.render()
    assert "fulfilled by g1" in text and "12 min before due" in text
    assert "c3 (contact.received) does not open a case: major is False" in text
    assert reference.why_not("employee:E1", "test-gm", "R4").fired  # it did fire there
    # The scenario files' spelling names the subject too; an unknown prefix stays an id.
    assert reference.why_not("employee/E1", "test-gm", "R4").fired
    assert not reference.why_not("nokind/E1", "test-gm", "R4").fired


def test_why_not_an_open_case_before_its_deadline() -> None:
    report = audit([contact("2026-03-02 09:00", "c1", "R1")], policies(),
                   "2026-03-02T09:20:00+08:00")
    why = report.why_not("E1", "test-gm", "R4")
    assert why.closest == timedelta(minutes=10)
    assert "still open" in why.render()


def test_why_not_a_daily_time_says_how_close_the_closest_day_came() -> None:
    log = [profile("E1"),
           ev("attendance.clock_in", "2026-03-02 08:27:30", employee_id="E1"),
           ev("attendance.clock_in", "2026-03-03 08:10", employee_id="E1"),
           ev("attendance.clock_in", "2026-03-04 08:31", employee_id="E1")]
    report = audit(log, "lateness-deduction", "2026-03-05T00:00:00+08:00")
    why = report.why_not("E1", "lateness-deduction", "R1")
    assert [d.details.get("outcome") for d in why.fired] == ["late"]  # only March 4
    assert why.closest == timedelta(minutes=2, seconds=30)
    assert "2 day(s) inside the limit" in why.render()
    assert "2 min 30 s before 2026-03-02T08:30:00+08:00" in why.render()


def test_why_not_other_shapes_lists_what_was_checked(reference: AuditReport) -> None:
    why = reference.why_not("E2", "test-pay", "R1")
    assert why.fired == [] and why.checked == []
    assert "no event" in why.render()
    with pytest.raises(ParameterError):
        reference.why_not("E1", "test-pay", "R9")


# --- exports --------------------------------------------------------------------------------


def test_csv_optional_bool_cells_are_booleans(tmp_path: Path) -> None:
    # attendance.leave's approved is Bool | None: "false" in a CSV cell is false, not text.
    path = tmp_path / "log.csv"
    path.write_text("id,type,at,employee_id,start,end,approved\n"
                    "l1,attendance.leave,2026-03-02T08:00:00+08:00,E1,2026-03-02,2026-03-02,"
                    "false\n", encoding="utf-8")
    report = audit(path, policies(), UNTIL)
    assert report.quarantine == []
    assert report.events["l1"].approved is False  # type: ignore[attr-defined]


def test_csv_export_round_trips(tmp_path: Path, reference: AuditReport) -> None:
    path = reference.to_csv(tmp_path / "decisions.csv")
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["id"] for r in rows] == _ids(reference)
    by_id = {d.id: d for d in reference.decisions}
    for row in rows:
        d = by_id[row["id"]]
        assert row["amount"] == ("" if d.amount is None else str(d.amount))
        assert tuple(json.loads(row["evidence"])) == d.evidence
        assert json.loads(row["details"])["outcome"] == d.details["outcome"]
        assert row["message_zh"] == d.message_zh


def test_html_report_is_self_contained(tmp_path: Path, reference: AuditReport) -> None:
    text = reference.to_html(tmp_path / "report.html")
    assert (tmp_path / "report.html").read_text(encoding="utf-8") == text
    assert text.count("data:image/png;base64,") == 2
    assert "http://" not in text and "https://" not in text
    for section in ("pk-summary", "pk-decisions", "payroll", "quarantine"):
        assert section in text
    assert "5670.00" in text  # E1's net pay


def test_notebook_view_and_charts(reference: AuditReport) -> None:
    view = reference._repr_html_()
    assert "By policy" in view and reference.decisions[0].id in view
    for chart in (reference.violations_chart(), reference.deductions_chart("2026-03")):
        assert chart._repr_png_().startswith(b"\x89PNG")
    empty = audit([], policies())
    assert empty.violations_chart().to_png().startswith(b"\x89PNG")
    assert "No decisions" in empty.to_html()
