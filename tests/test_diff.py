"""`policykit.diff` and `policykit diff`: the impact of a rulebook change, matched by case
(not by id), with money that adds up to the difference of the two payroll views."""

from __future__ import annotations

import importlib
import io
import json
import re
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from helpers import BACKENDS, ev, profile
from hypothesis import HealthCheck, given, settings

import policykit
from policykit import DiffReport, MissingDependencyError, PolicySet, standard_pack
from policykit.audit import AuditReport
from policykit.cli import EXIT_BAD_INPUT, EXIT_DECISIONS, EXIT_OK, EXIT_QUARANTINED, cli, main
from policykit.testing import Stream, attendance_months

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "policykit" / "examples" / "acme-2026-03.jsonl"
UNTIL = "2026-04-01T00:00:00+08:00"
LATENESS = "lateness-deduction"
#: The strict reading of 超過三次(含)以上: from the 4th late day, and only those days.
STRICT = {"tier_threshold": 4, "tier_mode": "marginal"}


def lateness(**parameters: Any) -> PolicySet:
    return PolicySet([standard_pack().get(LATENESS).with_parameters(**parameters)])


def strict_file(path: Path) -> Path:
    """The whole standard pack with the strict reading of the lateness tiers."""
    path.write_text(yaml.safe_dump({"pack": "standard", "policies": [
        {"use": LATENESS, "parameters": STRICT}]}), encoding="utf-8")
    return path


def payroll_totals(report: AuditReport) -> dict[tuple[str, str], Decimal]:
    """(employee, month) -> the payroll view's total, for every month with money."""
    out: dict[tuple[str, str], Decimal] = {}
    for month in report.months():
        frame = report.payroll(month)
        for emp, total in zip(frame["employee_id"], frame["total"], strict=True):
            out[(emp, month)] = total
    return out


def assert_money_is_payroll_difference(d: DiffReport) -> None:
    old, new = payroll_totals(d.old), payroll_totals(d.new)
    shown: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for m in d.money:
        assert m.old.as_tuple().exponent == -2 and m.new.as_tuple().exponent == -2
        assert m.difference == m.new - m.old
        shown[(m.employee_id, m.month)] += m.difference
    for key in set(old) | set(new) | set(shown):
        expected = new.get(key, Decimal(0)) - old.get(key, Decimal(0))
        assert shown.get(key, Decimal(0)) == expected, key


def lateness_log() -> list[dict[str, Any]]:
    """March 2026, E1 (6000.00): late 08:35 on Mon 2 March and 09:00 on Tue 3 March, on
    time otherwise; leave for the rest of the month so no sign-in is missed."""
    out = [profile("E1", salary="6000.00", at="2026-03-01 00:00")]
    out.append(ev("attendance.leave", "2026-03-01 00:00", id="lv", employee_id="E1",
                  start="2026-03-04", end="2026-03-31"))
    for day, time in (("02", "08:35"), ("03", "09:00")):
        out.append(ev("attendance.clock_in", f"2026-03-{day} {time}", id=f"in{day}",
                      employee_id="E1"))
        out.append(ev("attendance.clock_out", f"2026-03-{day} 17:45", id=f"out{day}",
                      employee_id="E1"))
    return out


# ------------------------------------------------------------------ the bundled example


@pytest.fixture(scope="module", params=BACKENDS)
def example(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
            ) -> DiffReport:
    policy = strict_file(tmp_path_factory.mktemp("diff") / "strict.yaml")
    return policykit.diff(EXAMPLE, None, policy, until=UNTIL, backend=request.param)


def test_money_difference_is_the_difference_of_the_payroll_views(example: DiffReport
                                                                 ) -> None:
    assert_money_is_payroll_difference(example)
    # The strict reading never charges more, and charges someone of the month less.
    assert all(m.difference <= 0 for m in example.money)
    assert any(m.difference < 0 for m in example.money)


def test_example_changes_are_the_lateness_months_and_add_up(example: DiffReport) -> None:
    assert example.changed and not example.added and not example.removed
    assert {(c.policy, c.rule, c.change) for c in example.changes} == {
        (LATENESS, "R2", "changed")}
    assert all(c.case.startswith("period=") for c in example.changes)
    # Ids differ (the policy fingerprint is in them), yet every other decision matches.
    assert all(c.old is not None and c.new is not None and c.old.id != c.new.id
               for c in example.changed)
    assert example.unchanged + len(example.changed) == len(example.old.decisions)
    by_change = sum(c.difference or Decimal(0) for c in example.changes)
    assert by_change == sum(m.difference for m in example.money)
    old, new, total = example.totals()["CNY"]
    assert total == new - old == by_change


def test_the_example_is_read_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    quarantine = importlib.import_module("policykit.audit._quarantine")

    calls = []
    real = quarantine.parse_event

    def counting(raw: Any, **kw: Any) -> Any:
        calls.append(1)
        return real(raw, **kw)

    monkeypatch.setattr(quarantine, "parse_event", counting)
    d = policykit.diff(EXAMPLE, None, strict_file(tmp_path / "s.yaml"), until=UNTIL)
    assert len(calls) == d.old.counts.read == d.new.counts.read > 4000


# ------------------------------------------------------------------ small known logs


def test_identical_policies_give_an_empty_diff(backend: str) -> None:
    d = policykit.diff(lateness_log(), lateness(), lateness(), until=UNTIL, backend=backend)
    assert not d.differs and len(d) == 0 and not d.changes
    assert d.unchanged == len(d.old.decisions) > 0
    assert [m.difference for m in d.money] == [Decimal("0.00")]
    assert "0 changed" in d.render()


def test_a_changed_amount_is_one_changed_decision(backend: str) -> None:
    d = policykit.diff(lateness_log(), lateness(), lateness(base_rate="0.02"), until=UNTIL,
                       backend=backend)
    [change] = d.changes
    assert (change.change, change.rule, change.case) == ("changed", "R2", "period=2026-03")
    assert change.old is not None and change.new is not None
    # Two late days: 2 x 1% of 6000.00 before, 2 x 2% after.
    assert (change.old.amount, change.new.amount) == (Decimal("120.00"), Decimal("240.00"))
    assert change.difference == Decimal("120.00")
    # The two late days are the same decisions under both (other ids, same case).
    assert d.unchanged == 2
    [m] = d.money
    assert (m.employee_id, m.month, m.old, m.new) == ("E1", "2026-03", Decimal("120.00"),
                                                      Decimal("240.00"))
    assert_money_is_payroll_difference(d)


def test_decisions_only_one_side_makes(backend: str) -> None:
    # A 10-minute grace: the 08:35 clock-in is no longer a late day.
    d = policykit.diff(lateness_log(), lateness(), lateness(grace="PT10M"), until=UNTIL,
                       backend=backend)
    [removed] = d.removed
    assert (removed.rule, removed.old and removed.old.evidence) == ("R1", ("in02",))
    assert removed.new is None and removed.difference is None
    assert removed.case == "window=2026-03-02 occurrence=in02"
    [changed] = d.changed
    assert changed.difference == Decimal("-60.00")
    assert not d.added
    # The other way round, the same decision is one the new side alone makes.
    back = policykit.diff(lateness_log(), lateness(grace="PT10M"), lateness(), until=UNTIL,
                          backend=backend)
    [added] = back.added
    assert added.old is None and added.new is not None and removed.old is not None
    assert added.new.id == removed.old.id
    assert_money_is_payroll_difference(back)


def test_kind_or_outcome_changes_are_changes_not_one_of_each() -> None:
    # Over the monthly limit with a fine: the violation stays, and a fine is added.
    log = lateness_log()
    old = lateness(monthly_limit=1)
    new = lateness(monthly_limit=1, limit_fine="50")
    d = policykit.diff(log, old, new, until=UNTIL)
    [added] = d.added
    assert (added.rule, added.new and added.new.kind) == ("R3", "fine")
    assert added.difference == Decimal("50.00")
    assert_money_is_payroll_difference(d)


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(s=attendance_months(employees=2))
def test_generated_months_money_is_the_payroll_difference(s: Stream) -> None:
    d = policykit.diff(s.events, lateness(), lateness(**STRICT), until=s.until)
    assert_money_is_payroll_difference(d)
    assert all(m.difference <= 0 for m in d.money)


# ------------------------------------------------------------------ readings


def test_rows_pandas_and_html() -> None:
    d = policykit.diff(lateness_log(), lateness(), lateness(base_rate="0.02"), until=UNTIL)
    frame = d.to_pandas()
    assert list(frame["change"]) == ["changed"] and frame["difference"].dtype == object
    assert frame["difference"].iloc[0] == Decimal("120.00")
    money = d.to_pandas("money")
    assert list(money.columns) == ["employee_id", "month", "currency", "old", "new",
                                   "difference"]
    assert money["new"].iloc[0] == Decimal("240.00")
    html = d._repr_html_()
    assert "period=2026-03" in html and "+120.00" in html and "<script" not in html
    with pytest.raises(policykit.ParameterError, match="table"):
        d.to_pandas("payroll")  # type: ignore[arg-type]


def test_to_pandas_without_pandas_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    d = policykit.diff(lateness_log(), lateness(), lateness(), until=UNTIL)
    monkeypatch.setitem(__import__("sys").modules, "pandas", None)
    with pytest.raises(MissingDependencyError, match="audit"):
        d.to_pandas()


def test_a_bad_horizon_is_a_parameter_error_naming_until() -> None:
    with pytest.raises(policykit.ParameterError, match="until"):
        policykit.diff(lateness_log(), lateness(), lateness(), until="not a time")


# ------------------------------------------------------------------ the command


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, Path]:
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in lateness_log()), encoding="utf-8")
    old = tmp_path / "old.yaml"
    old.write_text(yaml.safe_dump({"policies": [{"use": LATENESS}]}), encoding="utf-8")
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({"policies": [{"use": LATENESS,
                                                 "parameters": {"base_rate": "0.02"}}]}),
                   encoding="utf-8")
    return log, old, new


@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_jsonl_by_default_and_exit_1_on_differences(files: tuple[Path, Path, Path],
                                                        backend: str) -> None:
    log, old, new = files
    result = run("diff", str(log), "--old", str(old), "--new", str(new), "--until", UNTIL,
                 "--backend", backend)
    assert result.exit_code == EXIT_DECISIONS
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["record"], r["change"]) for r in rows] == [("decision", "changed"),
                                                          ("money", "changed")]
    assert rows[0]["difference"] == "120.00" and rows[1]["new_amount"] == "240.00"
    assert "1 changed, 2 unchanged" in result.stderr


def test_cli_identical_sides_exit_0(files: tuple[Path, Path, Path]) -> None:
    log, old, _new = files
    result = run("diff", str(log), "--old", str(old), "--new", str(old), "--until", UNTIL)
    assert result.exit_code == EXIT_OK
    assert all(json.loads(line)["change"] == "unchanged" for line in result.stdout.splitlines())


def test_cli_no_fail_on_differences(files: tuple[Path, Path, Path]) -> None:
    log, old, new = files
    assert run("diff", str(log), "--old", str(old), "--new", str(new), "--until", UNTIL,
               "--no-fail-on-differences").exit_code == EXIT_OK


def test_cli_csv_and_table(files: tuple[Path, Path, Path]) -> None:
    log, old, new = files
    base = ("diff", str(log), "--old", str(old), "--new", str(new), "--until", UNTIL)
    csv_out = run(*base, "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("record,change,policy,rule,")
    assert csv_out[1].split(",")[:4] == ["decision", "changed", LATENESS, "R2"]
    assert "'" not in csv_out[1]  # amounts stay numbers
    table = run(*base, "--format", "table").stdout
    assert "period=2026-03" in table and "+120.00" in table and "total" in table


def test_cli_out_is_atomic(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    log, old, new = files
    out = tmp_path / "diff.csv"
    base = ("diff", str(log), "--old", str(old), "--new", str(new), "-f", "csv", "-o", str(out))
    assert run(*base, "--until", UNTIL).exit_code == EXIT_DECISIONS
    written = out.read_text(encoding="utf-8")
    assert written.startswith("record,")
    # A run that fails on its input leaves the previous file as it was.
    assert run(*base, "--until", "2026-13-01").exit_code == EXIT_BAD_INPUT
    assert out.read_text(encoding="utf-8") == written


def test_cli_bad_inputs_exit_2_naming_the_option(files: tuple[Path, Path, Path]) -> None:
    log, old, _new = files
    bad = run("diff", str(log), "--new", "lateness-deductio")
    assert bad.exit_code == EXIT_BAD_INPUT and "--new" in bad.stderr
    assert "lateness-deduction" in bad.stderr
    until = run("diff", str(log), "--new", str(old), "--until", "soon")
    assert until.exit_code == EXIT_BAD_INPUT and "--until" in until.stderr
    missing = run("diff", str(log.with_name("nothere.jsonl")), "--new", str(old))
    assert missing.exit_code == EXIT_BAD_INPUT


def test_cli_quarantine_is_reported_once_and_exits_3(files: tuple[Path, Path, Path]) -> None:
    log, old, new = files
    with log.open("a", encoding="utf-8") as fh:
        fh.write('{"id": "bad", "type": "attendance.clock_in"}\n')
    base = ("diff", str(log), "--old", str(old), "--new", str(new), "--until", UNTIL)
    result = run(*base)
    assert result.exit_code == EXIT_QUARANTINED
    quarantined = [ln for ln in result.stderr.splitlines() if ln.startswith("quarantined:")]
    assert len(quarantined) == 1  # one record, not once per side
    assert "line 7" in result.stderr
    assert run(*base, "--allow-quarantine").exit_code == EXIT_DECISIONS


def test_every_case_of_the_example_is_unique_and_free_of_ids(example: DiffReport) -> None:
    """No case names a decision id (ids carry the policy fingerprint: a ladder step is
    matched through its trigger's case), and within one side a case, kind and outcome name
    one decision, so matching never has to guess."""
    from policykit.audit._diff import _Cases, _outcome

    cases = _Cases(example.old)
    keys = [(cases.key(d), d.kind, _outcome(d)) for d in example.old.decisions]
    assert len(set(keys)) == len(keys)
    ids = {d.id for d in example.old.trail}
    assert not any(i in key[0][4] for key in keys for i in ids)
    assert any(key[0][4].startswith("trigger=") for key in keys)  # the ladder's steps


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_a_terminal_gets_the_tables_and_stdin_is_read(
        monkeypatch: pytest.MonkeyPatch, files: tuple[Path, Path, Path]) -> None:
    log, old, new = files
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert main(["diff", str(log), "--old", str(old), "--new", str(new), "--until",
                 UNTIL]) == EXIT_DECISIONS
    lines = screen.getvalue().splitlines()
    assert lines[0] == "decisions: 0 only under old, 0 only under new, 1 changed, 2 unchanged"
    assert lines[4].split()[-3:] == ["total", "240.00", "+120.00"]
    money = next(ln for ln in lines if ln.startswith("E1 "))
    assert money.split() == ["E1", "2026-03", "CNY", "120.00", "240.00", "+120.00"]
    piped = CliRunner().invoke(cli, ["diff", "-", "--old", str(old), "--new", str(new),
                                     "--until", UNTIL], input=log.read_text(encoding="utf-8"))
    assert piped.exit_code == EXIT_DECISIONS
    assert [json.loads(x)["record"] for x in piped.stdout.splitlines()] == ["decision",
                                                                           "money"]


def test_a_date_horizon_needs_both_calendars_to_start_the_day_together(tmp_path: Path
                                                                       ) -> None:
    berlin = tmp_path / "berlin.yaml"
    berlin.write_text(yaml.safe_dump({"calendar": {"timezone": "Europe/Berlin"},
                                      "policies": [{"use": LATENESS}]}), encoding="utf-8")
    with pytest.raises(policykit.ParameterError, match=r"until.*different instants"):
        policykit.diff(lateness_log(), lateness(), berlin, until="2026-04-01")
    # With an offset there is nothing to disagree about.
    d = policykit.diff(lateness_log(), lateness(), berlin, until=UNTIL)
    assert d.old.until == d.new.until


# ------------------------------------------------------------------ docs/diff.md's figures

DOC = (ROOT / "docs" / "diff.md").read_text(encoding="utf-8")
_ID = r"d-[0-9a-f]{20}"


def _console(command: str) -> list[str]:
    """The lines docs/diff.md shows after ``$ <command>``, up to the end of the block."""
    start = DOC.index(f"$ {command}\n") + len(command) + 3
    return DOC[start:DOC.index("```", start)].rstrip("\n").split("\n")


def test_the_pages_table_and_csv_are_a_real_run(example: DiffReport) -> None:
    # The page quotes a run on the bundled month: its figures are measured, not typed.
    shown = _console("policykit diff acme-2026-03.jsonl --new strict.yaml --until 2026-04-01 "
                     "--format table")
    assert shown[:-1] == example.render().rstrip("\n").split("\n")
    assert shown[-1] == (f"policykit: {example.old.counts.read} records read; old: "
                         f"{len(example.old.decisions)} decisions, new: "
                         f"{len(example.new.decisions)}; {example.summary()}")
    assert f"The other {example.unchanged} decisions that stand" in DOC
    csv_shown = _console("policykit diff acme-2026-03.jsonl --new strict.yaml --until "
                         "2026-04-01 --format csv | head -3")
    out = io.StringIO()
    example.write_csv(out)
    # Ids follow the pack's fingerprints; every other column is the run's.
    assert [re.sub(_ID, "d-…", x) for x in csv_shown] == \
        [re.sub(_ID, "d-…", x) for x in out.getvalue().splitlines()[:3]]


@pytest.mark.parametrize(("parameters", "quoted"), [
    ({"tier_threshold": 4}, "`tier_threshold: 4` alone changes nothing (`0 changed, {n} "
                            "unchanged`"),
    ({"tier_mode": "marginal"}, "`tier_mode: marginal` alone brings the total to {new} "
                                "(−{saved}: E0022 to\n{E0022}, E0024 to {E0024})"),
], ids=["threshold", "marginal"])
def test_the_pages_one_parameter_figures_are_a_real_run(
        tmp_path: Path, parameters: dict[str, Any], quoted: str) -> None:
    path = tmp_path / "one.yaml"
    path.write_text(yaml.safe_dump({"pack": "standard", "policies": [
        {"use": LATENESS, "parameters": parameters}]}), encoding="utf-8")
    d = policykit.diff(EXAMPLE, None, path, until=UNTIL)
    _old, new, diff = d.totals()["CNY"]
    by_emp = {m.employee_id: f"{m.new:,}" for m in d.money}
    assert quoted.format(n=d.unchanged, new=f"{new:,}", saved=f"{-diff:,}", **by_emp) in DOC


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_dated_change_of_the_cap_and_of_fines_is_the_payroll_difference(
        tmp_path: Path, backend: str) -> None:
    # The new side: the pack until 16 March, then a 3% monthly cap over all money (read
    # at the month's end, so it limits all of March) and dearer complaint fines.
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump({"pack": "standard", "policies": [
        {"use": LATENESS, "effective_from": "2026-03-16",
         "parameters": {"monthly_cap_rate": "0.03"}},
        {"use": "staff-penalties", "parameters": {"minimum_fine": "15"}}]}),
        encoding="utf-8")
    d = policykit.diff(EXAMPLE, None, new, until=UNTIL, backend=backend)
    assert_money_is_payroll_difference(d)
    caps = [c for c in d.changes if c.rule == "R6"]
    assert caps and all(c.change == "added" and c.case == "period=2026-03" for c in caps)
    assert all(c.new is not None and c.new.policy_fingerprint
               == d.new.policies.get(LATENESS).versions[1].fingerprint() for c in caps)
    assert any(c.policy == "staff-penalties" and c.change == "changed" for c in d.changes)
    assert sum(c.difference or Decimal(0) for c in d.changes) == \
        sum(m.difference for m in d.money) < 0
