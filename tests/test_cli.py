"""The `policykit` command: exit statuses, streams, and every subcommand."""

from __future__ import annotations

import csv
import importlib
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
from policykit.cli import (
    EXIT_BAD_INPUT,
    EXIT_DECISIONS,
    EXIT_INTERNAL_ERROR,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_QUARANTINED,
    cli,
    main,
)

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
    assert result.exit_code == EXIT_DECISIONS  # decisions found: 1 by default
    decisions = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(decisions) == 4  # what stands: the 2 provisional running totals are superseded
    assert {d["policy"] for d in decisions} == {"test-gm", "test-pay"}
    assert all(isinstance(d["amount"], str) for d in decisions if "amount" in d)
    assert "10 records read: 10 valid, 0 duplicate, 0 quarantined" in result.stderr


def test_decisions_exit_1_by_default_and_kinds_narrow_it(log: Path, policy: Path) -> None:
    base = ("audit", str(log), "--policy", str(policy), "--until", UNTIL)
    assert run(*base).exit_code == EXIT_DECISIONS
    assert run(*base, "--fail-on-decisions").exit_code == EXIT_DECISIONS  # still accepted
    assert run(*base, "--no-fail-on-decisions").exit_code == EXIT_OK
    assert run(*base, "--fail-kinds", "fine").exit_code == EXIT_DECISIONS
    assert run(*base, "--fail-kinds", "kpi").exit_code == EXIT_OK
    assert run(*base, "--fail-on-decisions", "--fail-kinds", "kpi").exit_code == EXIT_OK
    bad = run(*base, "--fail-kinds", "fines")
    assert bad.exit_code == EXIT_BAD_INPUT and "unknown kind" in bad.stderr
    both = run(*base, "--no-fail-on-decisions", "--fail-kinds", "fine")
    assert both.exit_code == EXIT_BAD_INPUT and "--fail-kinds" in both.stderr


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
    bad_until = run("audit", str(log), "--until", "next tuesday")
    assert bad_until.exit_code == EXIT_BAD_INPUT
    assert "until" in bad_until.stderr and "next tuesday" in bad_until.stderr
    assert bad_until.stdout == ""


def test_quarantined_records_are_reported_with_line_numbers(tmp_path: Path,
                                                            policy: Path) -> None:
    lines: list[object] = [*events()]
    lines.insert(3, "{oops")
    path = write_jsonl(tmp_path / "log.jsonl", lines)
    result = run("audit", str(path), "--policy", str(policy), "--until", UNTIL)
    assert result.exit_code == EXIT_QUARANTINED  # 3 wins over 1 (decisions were found too)
    assert f"quarantined: {path} line 4" in result.stderr
    assert "--allow-quarantine" in result.stderr
    assert len(result.stdout.splitlines()) == 4  # the neighbours were kept (4 decisions stand)
    allowed = run("audit", str(path), "--policy", str(policy), "--until", UNTIL,
                  "--allow-quarantine")
    assert allowed.exit_code == EXIT_DECISIONS and f"{path} line 4" in allowed.stderr
    assert allowed.stdout == result.stdout
    clean = run("audit", str(path), "--policy", str(policy), "--until", UNTIL,
                "--allow-quarantine", "--no-fail-on-decisions")
    assert clean.exit_code == EXIT_OK
    strict = run("audit", str(path), "--policy", str(policy), "--strict")  # deprecated alias
    assert strict.exit_code == EXIT_QUARANTINED and "deprecated" in strict.stderr
    both = run("audit", str(path), "--policy", str(policy), "--strict", "--allow-quarantine")
    assert both.exit_code == EXIT_BAD_INPUT


def test_csv_and_html_outputs(tmp_path: Path, log: Path, policy: Path) -> None:
    out = tmp_path / "d.csv"
    result = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "-f", "csv",
                 "-o", str(out))
    assert result.exit_code == EXIT_DECISIONS and result.stdout == ""
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert len(rows) == 4 and "wrote 4 decisions (csv)" in result.stderr
    html = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "-f", "html")
    assert html.stdout.startswith("<!doctype html>") and "data:image/png;base64," in html.stdout


def test_stdin_and_a_standard_policy_id(log: Path) -> None:
    pid = standard_pack().ids[0]
    result = run("audit", "-", "--policy", pid, stdin=log.read_text(encoding="utf-8"))
    assert result.exit_code == EXIT_DECISIONS and result.stdout
    assert all(json.loads(line)["policy"] == pid for line in result.stdout.splitlines())


def test_progress_bar_never_pollutes_stdout(log: Path, policy: Path) -> None:
    result = run("audit", str(log), "-p", str(policy), "--until", UNTIL, "--progress")
    assert result.exit_code == EXIT_DECISIONS
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
    assert {"Event", "Decision"} <= set(data["$defs"])  # one schema, not two side by side
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
         "--until", UNTIL, "--progress"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == EXIT_DECISIONS, proc.stderr
    assert len([json.loads(x) for x in proc.stdout.splitlines()]) == 4, proc.stderr
    assert "10 records read" in proc.stderr


# ------------------------------------------------------------------ the exit-code contract


def test_an_input_whose_every_record_is_quarantined_never_exits_0(tmp_path: Path,
                                                                  policy: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("{oops\n" + json.dumps({"id": "x", "type": "nope"}) + "\n",
                      encoding="utf-8")
    for extra in ((), ("--allow-quarantine",), ("--no-fail-on-decisions", "--allow-quarantine")):
        result = run("audit", str(broken), "-p", str(policy), "--until", UNTIL, *extra)
        assert result.exit_code == EXIT_QUARANTINED, extra
        assert "every record" in result.stderr and result.stdout == ""


def test_until_goes_to_audit_as_written(monkeypatch: pytest.MonkeyPatch, log: Path) -> None:
    audit_module = importlib.import_module("policykit.audit")  # the package, not audit()
    seen: list[object] = []
    real = audit_module.audit

    def spy(source: object, policy: object = None, until: object = None,
            **kw: object) -> object:
        seen.append(until)
        return real(source, policy, None, **kw)

    monkeypatch.setattr(audit_module, "audit", spy)
    run("audit", str(log), "--until", "2026-04-01")
    run("explain", str(log), "d-x", "--until", "2026-04-01T00:00:00+08:00")
    run("why-not", str(log), "E1", "test-gm", "R4", "--until", "2026-04-01")
    assert seen == ["2026-04-01", "2026-04-01T00:00:00+08:00", "2026-04-01"]


def test_sigint_exits_130_saying_the_output_is_partial(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       log: Path) -> None:
    import signal

    def interrupted(*_a: object, **_k: object) -> None:
        signal.raise_signal(signal.SIGINT)  # Python's own handler: KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module("policykit.audit"), "audit", interrupted)
    assert main(["audit", str(log)]) == EXIT_INTERRUPTED
    assert "interrupted; the output is partial" in capsys.readouterr().err
    assert main(["explain", str(log), "d-x"]) == EXIT_INTERRUPTED


def test_an_internal_error_never_exits_1(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str], log: Path,
                                         policy: Path) -> None:
    from policykit.audit import AuditReport

    def boom(self: object, fh: object, **_k: object) -> None:
        raise RuntimeError("boom\nsecond line")

    monkeypatch.setattr(AuditReport, "write_jsonl", boom)
    monkeypatch.delenv("POLICYKIT_DEBUG", raising=False)
    args = ["audit", str(log), "-p", str(policy), "--until", UNTIL]
    assert main(args) == EXIT_INTERNAL_ERROR
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "internal error" in lines[0] and "RuntimeError: boom" in lines[0]
    assert "report" in lines[0] and "Traceback" not in err
    assert main(["--debug", *args]) == EXIT_INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("POLICYKIT_DEBUG", "1")
    assert main(args) == EXIT_INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err
    # Through click's own runner (standalone mode) the status is the same.
    assert CliRunner().invoke(cli, args).exit_code == EXIT_INTERNAL_ERROR


# ------------------------------------------------------------------ -o is atomic


def test_out_replaces_the_file_only_when_complete(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str],
                                                  tmp_path: Path, log: Path,
                                                  policy: Path) -> None:
    import errno

    from policykit.audit import AuditReport

    out = tmp_path / "decisions.jsonl"
    out.write_text("previous run\n", encoding="utf-8")
    out.chmod(0o640)
    args = ["audit", str(log), "-p", str(policy), "--until", UNTIL, "-o", str(out)]
    real = AuditReport.write_jsonl

    def disk_full(self: AuditReport, fh: io.TextIOBase, **_k: object) -> None:
        fh.write('{"id": "d-half')
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(AuditReport, "write_jsonl", disk_full)
    assert main(args) == EXIT_BAD_INPUT
    assert "No space left on device" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "previous run\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["decisions.jsonl", "log.jsonl", "acme.yaml"])

    def interrupted(self: AuditReport, fh: io.TextIOBase, **_k: object) -> None:
        fh.write('{"id": "d-half')
        raise KeyboardInterrupt

    monkeypatch.setattr(AuditReport, "write_jsonl", interrupted)
    assert main(args) == EXIT_INTERRUPTED
    assert f"{out} was left as it was" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "previous run\n"
    assert len(list(tmp_path.iterdir())) == 3

    monkeypatch.setattr(AuditReport, "write_jsonl", real)
    assert main(args) == EXIT_DECISIONS
    assert len(out.read_text(encoding="utf-8").splitlines()) == 4  # what stands
    assert out.stat().st_mode & 0o777 == 0o640 and len(list(tmp_path.iterdir())) == 3


# ------------------------------------------------------------------ the terminal view


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_summary_table_and_a_pipe_gets_jsonl(
        monkeypatch: pytest.MonkeyPatch, log: Path, policy: Path) -> None:
    args = ["audit", str(log), "-p", str(policy), "--until", UNTIL]
    screen = _Terminal()
    monkeypatch.setattr(sys, "stdout", screen)
    assert main(args) == EXIT_DECISIONS
    table = screen.getvalue().splitlines()
    assert table[0].split() == ["policy", "rule", "kind", "decisions", "final", "subjects",
                                "amount"]
    rows = {tuple(line.split()[:3]): line.split() for line in table[2:]}
    assert rows[("test-pay", "R1", "fine")][-1] == "210.00"
    assert rows[("test-pay", "R2", "deduction")][-1] == "120.00"
    assert rows[("test-gm", "R4", "violation")][3] == "1"
    total = next(line for line in table if line.startswith("total")).split()
    assert total[1:3] == ["6", "4"] and total[-2:] == ["330.00", "CNY"]
    assert not any(line.startswith("{") for line in table)

    screen = _Terminal()  # --format given: the decisions, even on a terminal
    monkeypatch.setattr(sys, "stdout", screen)
    assert main([*args, "--format", "jsonl"]) == EXIT_DECISIONS
    assert len([json.loads(x) for x in screen.getvalue().splitlines()]) == 4
    piped = run(*args)  # not a terminal: unchanged JSON Lines
    assert len([json.loads(x) for x in piped.stdout.splitlines()]) == 4


def test_assume_tz_reads_a_spreadsheet_export_and_a_date_until(tmp_path: Path) -> None:
    src = tmp_path / "hr.csv"
    src.write_text("id,type,at,employee_id,role,base_salary\n"
                   "p1,employee.profile,2026/3/1 0:00,E7,customer_service,6000.00\n"
                   "c1,attendance.clock_in,2026/3/2 8:31,E7,,\n", encoding="utf-8")
    args = ("audit", str(src), "--policy", "lateness-deduction", "--until", "2026-04-01")
    without = run(*args)
    assert without.exit_code == EXIT_QUARANTINED
    assert "--assume-tz" in without.stderr
    with_zone = run(*args, "--assume-tz", "Asia/Shanghai")
    assert with_zone.exit_code == EXIT_DECISIONS
    decisions = [json.loads(line) for line in with_zone.stdout.splitlines()]
    late = [d for d in decisions if d["rule"] == "R1"]
    assert [d["at"] for d in late] == ["2026-03-02T08:31:00+08:00"]
    # The month closed at the start of 2026-04-01 in the calendar's zone: a final total.
    assert any(d["rule"] == "R2" and d["status"] == "final" and d["amount"] == "60.00"
               for d in decisions)
    typo = run(*args, "--assume-tz", "Asia/Shangai")
    assert typo.exit_code == 2 and "Asia/Shanghai" in typo.stderr


def test_trail_and_csv_bom(tmp_path: Path, log: Path, policy: Path) -> None:
    base = ("audit", str(log), "--policy", str(policy), "--until", UNTIL)
    standing = run(*base).stdout.splitlines()
    trail = [json.loads(line) for line in run(*base, "--trail").stdout.splitlines()]
    assert len(standing) == 4 and len(trail) == 6
    assert {d["audit"]["status"] for d in trail} == {"final", "superseded"}
    out = tmp_path / "d.csv"
    assert run(*base, "--format", "csv", "--csv-bom", "-o", str(out)).exit_code == 1
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode()) and raw.count("\ufeff".encode()) == 1
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert len(rows) == 4
    assert not run(*base, "--format", "csv", "-o", str(out)).stdout
    assert not out.read_bytes().startswith("\ufeff".encode())
    assert run(*base, "--csv-bom").exit_code == 2  # only with --format csv


def test_out_writes_through_a_symlink_and_into_special_files(tmp_path: Path, log: Path,
                                                             policy: Path) -> None:
    """-o is atomic for a regular file; a symlink is followed to the file it names, and a
    FIFO or device is written in place, never replaced by a regular file."""
    import os
    import threading

    real = tmp_path / "real.jsonl"
    real.write_text("OLD\n", encoding="utf-8")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    base = ("audit", str(log), "--policy", str(policy), "--until", UNTIL, "-q")
    assert run(*base, "-o", str(link)).exit_code == EXIT_DECISIONS
    assert link.is_symlink() and len(real.read_text(encoding="utf-8").splitlines()) == 4
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    assert run(*base, "-o", str(fifo)).exit_code == EXIT_DECISIONS
    reader.join(timeout=30)
    assert fifo.is_fifo() and len(got[0].splitlines()) == 4
    assert run(*base, "-o", os.devnull).exit_code == EXIT_DECISIONS
    assert Path(os.devnull).is_char_device()


def test_rule_title_zh_and_the_concepts_message_example(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "concepts.md").read_text(encoding="utf-8")
    block = text.split("title_zh: 非本職請求轉交")[0].rsplit("```yaml\n", 1)[1]
    block += "title_zh: 非本職請求轉交" + text.split("title_zh: 非本職請求轉交")[1].split("```")[0]
    rules = "\n".join("      " + line for line in block.splitlines())
    path = tmp_path / "p.yaml"
    path.write_text("policies:\n  - id: my-policy\n    title: Handover\n    clause: c\n"
                    "    rules:\n" + rules + "\n", encoding="utf-8")
    listed = run("policies", "-v", "-p", str(path))
    assert listed.exit_code == EXIT_OK, listed.output
    assert "R3   deadline     hand over out-of-remit requests  非本職請求轉交" in listed.stdout
    data = json.loads(run("policies", "--json", "-p", str(path)).stdout)
    assert data[0]["rules"][0]["title_zh"] == "非本職請求轉交"
    from policykit import load_policy
    spec = load_policy(path).get("my-policy").specs[0]
    assert spec.message("missed").zh.startswith("{subject} 未於")


ONE_LATE_DAY = """\
policy: lateness-deduction
scenarios:
  - name: one late day costs 1%
    given:
      - {type: employee.profile, at: 2026-03-01 00:00, employee_id: E1,
         role: customer_service, base_salary: "6000.00"}
      - {type: attendance.clock_in, at: 2026-03-02 08:30:01, employee_id: E1}
    until: 2026-03-02 23:59:59
    expect:
      - {rule: R1, kind: violation, subject: employee/E1}
      - {rule: R2, kind: deduction, amount: "60.00"}
  - name: a wrong figure
    given:
      - {type: employee.profile, at: 2026-03-01 00:00, employee_id: E1,
         role: customer_service, base_salary: "6000.00"}
      - {type: attendance.clock_in, at: 2026-03-02 08:30:01, employee_id: E1}
    until: 2026-03-02 23:59:59
    expect:
      - {rule: R1, kind: violation, subject: employee/E1}
      - {rule: R2, kind: deduction, amount: "50.00"}
"""


def test_test_policy_runs_the_scenarios_against_another_policy_file(tmp_path: Path) -> None:
    scenario = tmp_path / "late.yaml"
    scenario.write_text(ONE_LATE_DAY.split("  - name: a wrong figure")[0], encoding="utf-8")
    assert run("test", str(scenario)).exit_code == EXIT_OK
    pack = (ROOT / "policykit" / "pack" / "lateness-deduction.yaml").read_text(
        encoding="utf-8")
    assert "  grace: PT0M\n" in pack
    lenient = tmp_path / "lenient.yaml"
    lenient.write_text(pack.replace("  grace: PT0M\n", "  grace: PT5M\n"), encoding="utf-8")
    result = run("test", str(scenario), "--policy", str(lenient))
    # 08:30:01 is within a five-minute grace: the file's policy, not the pack's, ran.
    assert result.exit_code == EXIT_DECISIONS
    assert "FAIL  one late day costs 1%" in result.stdout
    assert "expected, not decided:" in result.stdout
    same = tmp_path / "same.yaml"
    same.write_text(pack, encoding="utf-8")
    assert run("test", str(scenario), "-p", str(same)).exit_code == EXIT_OK
    missing = run("test", str(scenario), "--policy", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == EXIT_BAD_INPUT and "nope.yaml" in missing.stderr


def test_repeated_policy_options_combine_files_or_name_the_clash(tmp_path: Path) -> None:
    # policykit policies / policykit test: -p a -p b is both files, never silently the last.
    pack = (ROOT / "policykit" / "pack" / "lateness-deduction.yaml").read_text(
        encoding="utf-8")
    lateness, other = tmp_path / "lateness.yaml", tmp_path / "other.yaml"
    lateness.write_text(pack.replace("  grace: PT0M\n", "  grace: PT5M\n"), encoding="utf-8")
    other.write_text("policies:\n  - use: first-responder\n", encoding="utf-8")
    listed = json.loads(run("policies", "--json", "-p", str(lateness), "-p", str(other)).stdout)
    assert [p["id"] for p in listed] == ["lateness-deduction", "first-responder"]
    clash = run("policies", "-p", str(lateness), "-p", str(lateness))
    assert clash.exit_code == EXIT_BAD_INPUT and "each policy id once" in clash.stderr
    scenario = tmp_path / "late.yaml"
    scenario.write_text(ONE_LATE_DAY.split("  - name: a wrong figure")[0], encoding="utf-8")
    # The lenient lateness file given first: still the one that runs (five minutes' grace).
    result = run("test", str(scenario), "-p", str(lateness), "-p", str(other))
    assert result.exit_code == EXIT_DECISIONS and "FAIL  one late day costs 1%" in result.stdout
    missing = run("test", str(scenario), "-p", str(other), "-p", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == EXIT_BAD_INPUT and "nope.yaml" in missing.stderr


def test_test_junit_xml_has_one_testcase_per_scenario(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    scenario = tmp_path / "late.yaml"
    scenario.write_text(ONE_LATE_DAY, encoding="utf-8")
    report = tmp_path / "reports" / "junit.xml"
    result = run("test", str(scenario), "--junit-xml", str(report))
    assert result.exit_code == EXIT_DECISIONS
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["one late day costs 1%", "a wrong figure"]
    assert all(c.get("classname") == str(scenario) for c in cases)
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.text is not None
    assert "amount: expected 50.00, got 60.00" in failure.text


def test_test_min_coverage_fails_below_the_percentage(tmp_path: Path) -> None:
    scenario = tmp_path / "late.yaml"
    scenario.write_text(ONE_LATE_DAY.split("  - name: a wrong figure")[0], encoding="utf-8")
    # One late day fires R1 and R2 of the six rules (R6, the cap, is off): 33.3%.
    assert run("test", str(scenario), "--min-coverage", "33").exit_code == EXIT_OK
    below = run("test", str(scenario), "--min-coverage", "50")
    assert below.exit_code == EXIT_DECISIONS
    assert "rule coverage 33.3% is below --min-coverage 50%" in below.stderr
    bad = run("test", str(scenario), "--min-coverage", "150")
    assert bad.exit_code == EXIT_BAD_INPUT


def test_explain_shows_the_rules_title_zh(log: Path, tmp_path: Path) -> None:
    policy = write_policy_file(tmp_path / "acme.yaml")
    text = policy.read_text(encoding="utf-8")
    assert "title: report major matters\n" in text
    policy.write_text(text.replace("title: report major matters\n",
                                   "title: report major matters\n    title_zh: 重大事項上報\n"),
                      encoding="utf-8")
    lines = run("audit", str(log), "-p", str(policy), "--until", UNTIL).stdout.splitlines()
    missed = next(json.loads(x) for x in lines if json.loads(x)["rule"] == "R4")
    shown = run("explain", str(log), missed["id"], "-p", str(policy), "--until", UNTIL)
    assert "  report major matters 重大事項上報" in shown.stdout
    as_json = run("explain", str(log), missed["id"], "-p", str(policy), "--until", UNTIL,
                  "--json")
    assert json.loads(as_json.stdout)["rule"]["title_zh"] == "重大事項上報"


def test_out_dev_stdout_is_standard_output_as_it_is(tmp_path: Path, log: Path,
                                                    policy: Path) -> None:
    """`-o /dev/stdout >> file` appends, and into a pipe it streams: the command never
    reopens standard output by name (that would truncate the file or fail on a pipe)."""
    appended = tmp_path / "app.log"
    appended.write_text("PREVIOUS\n", encoding="utf-8")
    cmd = [sys.executable, "-m", "policykit.cli", "audit", str(log), "--policy", str(policy),
           "--until", UNTIL, "-q", "-o", "/dev/stdout"]
    with appended.open("a", encoding="utf-8") as fh:
        done = subprocess.run(cmd, stdout=fh, stderr=subprocess.PIPE, cwd=ROOT, check=False)
    assert done.returncode == EXIT_DECISIONS, done.stderr
    lines = appended.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "PREVIOUS" and len(lines) == 5
    piped = subprocess.run(cmd, capture_output=True, cwd=ROOT, check=False)
    assert piped.returncode == EXIT_DECISIONS and len(piped.stdout.splitlines()) == 4


def test_a_horizon_before_every_event_is_a_usage_error(log: Path, policy: Path) -> None:
    """Nothing audited because --until is before the whole log: exit 2, not a clean 0."""
    result = run("audit", str(log), "--policy", str(policy), "--until", "2025-01-01")
    assert result.exit_code == EXIT_BAD_INPUT
    assert "--until 2025-01-01" in result.stderr and "nothing was audited" in result.stderr
    assert not result.stdout


def test_errors_name_options_as_the_command_line_spells_them(log: Path) -> None:
    missing = run("audit", str(log), "--policy", "no-such-policy")
    assert missing.exit_code == EXIT_BAD_INPUT and "--policy: got 'no-such-policy'" in \
        missing.stderr
    late = run("audit", str(log), "--until", "2027-03-01")
    assert late.exit_code == EXIT_BAD_INPUT and late.stderr.startswith("error: --until: ")
