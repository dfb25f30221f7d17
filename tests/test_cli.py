"""The `policykit` command: exit statuses, streams, and every subcommand."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import types
from pathlib import Path

import pytest
from audit_data import UNTIL, events, write_jsonl, write_policy_file
from click.testing import CliRunner, Result

from policykit import standard_pack
from policykit.cli import EXIT_BAD_INPUT, EXIT_DECISIONS, EXIT_OK, cli, main

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return write_jsonl(tmp_path / "log.jsonl", events())


@pytest.fixture
def policy(tmp_path: Path) -> Path:
    return write_policy_file(tmp_path / "acme.yaml")


def test_audit_writes_jsonl_decisions_to_stdout_and_counts_to_stderr(log: Path,
                                                                    policy: Path) -> None:
    result = run("audit", str(log), "--policy", str(policy), "--until", UNTIL)
    assert result.exit_code == EXIT_OK
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == 4  # what stands: the 2 provisional running totals are superseded
    assert {d["policy"] for d in decisions} == {"test-gm", "test-pay"}
    assert all(isinstance(d["amount"], str) for d in decisions if "amount" in d)
    assert "10 records read: 10 valid, 0 duplicate, 0 quarantined" in result.stderr


def test_fail_on_decisions_exits_1_and_kinds_narrow_it(log: Path, policy: Path) -> None:
    base = ("audit", str(log), "--policy", str(policy), "--until", UNTIL)
    assert run(*base, "--fail-on-decisions").exit_code == EXIT_DECISIONS
    assert run(*base, "--fail-on-decisions", "--fail-kinds", "fine").exit_code == EXIT_DECISIONS
    assert run(*base, "--fail-on-decisions", "--fail-kinds", "kpi").exit_code == EXIT_OK
    bad = run(*base, "--fail-on-decisions", "--fail-kinds", "fines")
    assert bad.exit_code == EXIT_BAD_INPUT and "unknown kind" in bad.stderr


def test_a_clean_log_exits_0_even_with_fail_on_decisions(tmp_path: Path, policy: Path) -> None:
    clean = write_jsonl(tmp_path / "clean.jsonl", events()[:4])  # profiles, c1 reported in time
    result = run("audit", str(clean), "--policy", str(policy), "--until", UNTIL,
                 "--fail-on-decisions")
    assert result.exit_code == EXIT_OK and result.stdout == ""


def test_bad_input_exits_2(tmp_path: Path, log: Path) -> None:
    missing = run("audit", str(tmp_path / "nope.jsonl"))
    assert missing.exit_code == EXIT_BAD_INPUT
    assert "error:" in missing.stderr and "no such file" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: my-policy\ntitle: X\nclause: c\nrules:\n  - shape: deadlin\n"
                      "    id: R1\n", encoding="utf-8")
    bad_policy = run("audit", str(log), "--policy", str(broken))
    assert bad_policy.exit_code == EXIT_BAD_INPUT and "deadline" in bad_policy.stderr
    naive = run("audit", str(log), "--until", "2026-04-01T00:00:00")
    assert naive.exit_code == EXIT_BAD_INPUT and "offset" in naive.stderr


def test_quarantined_records_are_reported_with_line_numbers(tmp_path: Path,
                                                            policy: Path) -> None:
    lines: list[object] = [*events()]
    lines.insert(3, "{oops")
    path = write_jsonl(tmp_path / "log.jsonl", lines)
    result = run("audit", str(path), "--policy", str(policy), "--until", UNTIL)
    assert result.exit_code == EXIT_OK
    assert f"quarantined: {path} line 4" in result.stderr
    assert len(result.stdout.splitlines()) == 4  # the neighbours were kept (4 decisions stand)
    strict = run("audit", str(path), "--policy", str(policy), "--strict")
    assert strict.exit_code == EXIT_BAD_INPUT


def test_csv_and_html_outputs(tmp_path: Path, log: Path, policy: Path) -> None:
    out = tmp_path / "d.csv"
    result = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "-f", "csv",
                 "-o", str(out))
    assert result.exit_code == EXIT_OK and result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 4 and "wrote 4 decisions (csv)" in result.stderr
    html = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "-f", "html")
    assert html.stdout.startswith("<!doctype html>") and "data:image/png;base64," in html.stdout


def test_stdin_and_a_standard_policy_id(log: Path) -> None:
    pid = standard_pack().ids[0]
    result = run("audit", "-", "--policy", pid, stdin=log.read_text(encoding="utf-8"))
    assert result.exit_code == EXIT_OK
    assert all(json.loads(line)["policy"] == pid for line in result.stdout.splitlines())


def test_progress_bar_never_pollutes_stdout(log: Path, policy: Path) -> None:
    result = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "--progress")
    assert result.exit_code == EXIT_OK
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()]  # pure JSONL
    assert "reading" in result.stderr or "evaluating" in result.stderr


def test_check_a_good_and_a_broken_policy_file(tmp_path: Path, policy: Path) -> None:
    good = run("check", str(policy))
    assert good.exit_code == EXIT_OK
    assert "ok:" in good.stdout and "test-gm v1" in good.stdout and "R4 deadline" in good.stdout
    broken = tmp_path / "broken.yaml"
    broken.write_text(policy.read_text(encoding="utf-8").replace("within: $gm_report_within",
                                                                 "within: $gm_report_withn"),
                      encoding="utf-8")
    bad = run("check", str(broken))
    assert bad.exit_code == EXIT_BAD_INPUT
    assert str(broken) in bad.stderr and "gm_report_withn" in bad.stderr
    assert "did you mean '$gm_report_within'" in bad.stderr
    line = next(i for i, text in enumerate(broken.read_text().splitlines(), 1)
                if "gm_report_withn" in text)
    assert f"{broken}:{line}" in bad.stderr
    assert run("check", str(tmp_path / "missing.yaml")).exit_code == EXIT_BAD_INPUT


def test_policies_lists_the_pack_with_defaults() -> None:
    pack = standard_pack()
    text = run("policies").stdout
    for p in pack:
        assert p.id in text
        for name in p.parameters:
            assert name in text
    data = json.loads(run("policies", "--json").stdout)
    assert [p["id"] for p in data] == pack.ids
    assert data[0]["parameters"] == json.loads(json.dumps(pack.get(pack.ids[0]).parameters,
                                                          default=str))


def test_schema_prints_the_wire_format() -> None:
    data = json.loads(run("schema").stdout)
    assert {"event", "decision"} <= set(data)
    assert "properties" in json.loads(run("schema", "--part", "decision").stdout)


def test_explain_and_why_not(log: Path, policy: Path) -> None:
    lines = run("audit", str(log), "-p", str(policy), "--until", UNTIL).stdout.splitlines()
    missed = next(json.loads(x) for x in lines if json.loads(x)["rule"] == "R4")
    result = run("explain", str(log), missed["id"], "-p", str(policy), "--until", UNTIL)
    assert result.exit_code == EXIT_OK
    assert "Evidence (1, in time order)" in result.stdout and "c2" in result.stdout
    as_json = run("explain", str(log), missed["id"], "-p", str(policy), "--until", UNTIL,
                  "--json")
    assert json.loads(as_json.stdout)["rule"]["id"] == "R4"
    unknown = run("explain", str(log), "d-nope", "-p", str(policy), "--until", UNTIL)
    assert unknown.exit_code == EXIT_BAD_INPUT and "decision" in unknown.stderr
    why = run("why-not", str(log), "E1", "test-gm", "R4", "-p", str(policy), "--until", UNTIL)
    assert "12 min before due" in why.stdout


def test_test_subcommand_uses_the_scenario_runner(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    class Result:
        def __init__(self, ok: bool) -> None:
            self.ok = ok

        def render(self) -> str:
            return "2 scenarios, 2 passed" if self.ok else "1 failed"

    fake = types.ModuleType("policykit.testing.scenarios")
    fake.run_path = lambda path: Result(ok=Path(path).name == "good")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "policykit.testing.scenarios", fake)
    (tmp_path / "good").mkdir()
    (tmp_path / "bad").mkdir()
    ok = run("test", str(tmp_path / "good"))
    assert ok.exit_code == EXIT_OK and "2 passed" in ok.stdout
    assert run("test", str(tmp_path / "bad")).exit_code == EXIT_DECISIONS
    monkeypatch.setitem(sys.modules, "policykit.testing.scenarios", None)  # not installed
    missing = run("test", str(tmp_path / "good"))
    assert missing.exit_code == EXIT_BAD_INPUT and "scenario runner" in missing.stderr


def test_main_returns_the_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--part", "event"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)
    assert main(["audit"]) == EXIT_BAD_INPUT  # missing argument: a usage error
    assert "Missing argument" in capsys.readouterr().err


def test_the_module_runs_as_a_real_process(log: Path, policy: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "policykit.cli", "audit", str(log), "-p", str(policy),
         "--until", UNTIL, "--progress", "--fail-on-decisions"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == EXIT_DECISIONS, proc.stderr
    assert len([json.loads(x) for x in proc.stdout.splitlines()]) == 4, proc.stderr
    assert "10 records read" in proc.stderr
