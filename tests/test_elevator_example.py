"""The worked example of docs/examples/elevator.md, end to end: the elevator company's plugin
(docs/examples/elevator/) installed into a fresh virtual environment, then audited by the CLI
and by ``audit()`` on both backends, its own test suite (scenario file and property tests) run
by pytest, its policy files validated by ``policykit schema policy``, its types listed by
``policykit events``, and the standard pack's decisions unchanged beside it.

Nothing is installed into the environment running this suite: the venv lives in a temporary
folder, sees this environment's packages (``--system-site-packages``, plus a ``.pth`` for
when this environment is itself a venv) and imports policykit from this checkout
(PYTHONPATH), and the plugin is built from a copy (building writes into the source folder).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import venv
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "docs" / "examples" / "elevator"
SAMPLE = "sample-2026-03.jsonl"
pytestmark = pytest.mark.slow  # builds a venv, installs the plugin, runs it in subprocesses
UNTIL = "2026-04-01T00:00:00+08:00"
CLI = "import sys; from policykit.cli import main; sys.exit(main())"

#: What the sample month decides with policy.yaml (the pack, response within PT3H):
#: (policy, rule, kind, elevator, at, amount).
EXPECTED = [
    ("elevator-response", "R1", "violation", "EL-102", "2026-03-03T17:00:00+08:00", None),
    ("elevator-response", "R2", "fine", "EL-102", "2026-03-03T17:00:00+08:00", "500.00"),
    ("elevator-response", "R1", "violation", "EL-201", "2026-03-05T23:30:00+08:00", None),
    ("elevator-response", "R2", "fine", "EL-201", "2026-03-05T23:30:00+08:00", "500.00"),
    ("elevator-repair", "R1", "warning", "EL-201", "2026-03-06T20:30:00+08:00", None),
    ("elevator-repair", "R1", "violation", "EL-201", "2026-03-06T22:30:00+08:00", None),
    ("elevator-repeat-faults", "R1", "escalation", "EL-102", "2026-03-18T16:00:00+08:00",
     None),
    ("elevator-response", "R1", "violation", "EL-101", "2026-03-20T10:00:00+08:00", None),
    ("elevator-response", "R2", "fine", "EL-101", "2026-03-20T10:00:00+08:00", "500.00"),
    ("elevator-response", "R1", "violation", "EL-201", "2026-03-31T21:00:00+08:00", None),
    ("elevator-response", "R2", "fine", "EL-201", "2026-03-31T21:00:00+08:00", "500.00"),
]


@dataclass(frozen=True)
class Venv:
    python: Path
    plugin: Path  # the installed copy's folder: policy.yaml, the sample, tests/
    env: dict[str, str]

    def run(self, *args: str, cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.python), *args], cwd=cwd or self.plugin, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    def cli(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return self.run("-c", CLI, *args, cwd=cwd)


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "PYTHON", "VIRTUAL_ENV", "COV_"))}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's policykit, whatever is installed
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


def _builds_wheels() -> bool:
    """Whether this environment's setuptools builds wheels by itself (70.1 and later have
    bdist_wheel built in; before, it needs the wheel package)."""
    try:
        from importlib.metadata import version

        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
    except Exception:  # not installed, or a version string of another form
        return False
    return (major, minor) >= (70, 1) or importlib.util.find_spec("wheel") is not None


def _install(python: Path, source: Path, env: dict[str, str]) -> None:
    """``pip install`` the plugin: with this environment's setuptools and no index when it
    can build wheels, else in pip's isolated build environment (setuptools from the
    configured package index)."""
    base = [str(python), "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
            "-q"]
    tries = [[*base, "--no-build-isolation", "--no-index", str(source)]] \
        if _builds_wheels() else []
    tries.append([*base, str(source)])
    errors = []
    for args in tries:
        proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            return
        errors.append(" ".join(args[3:]) + ":\n" + proc.stdout + proc.stderr)
    pytest.fail("installing the elevator plugin failed:\n" + "\n".join(errors))


@pytest.fixture(scope="module")
def elevator(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    tmp = tmp_path_factory.mktemp("elevator")
    plugin = tmp / "plugin"
    shutil.copytree(EXAMPLE, plugin, ignore=shutil.ignore_patterns(
        "__pycache__", "*.egg-info", "build", ".hypothesis", ".pytest_cache"))
    home = tmp / "venv"
    # No pip of its own (ensurepip takes seconds): this environment's pip, seen through the
    # system site packages, installs into the venv it runs in.
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(home)
    python = home / ("Scripts" if os.name == "nt" else "bin") / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; "
                              "print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    # When this suite runs in a venv, --system-site-packages reaches the interpreter's base,
    # not that venv: add its site folders (and their .pth files) explicitly.
    lines = [f"import site; site.addsitedir({d!r})" for d in site.getsitepackages()]
    Path(purelib, "_policykit_outer.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    env = _env()
    _install(python, plugin, env)
    return Venv(python, plugin, env)


def _decisions(jsonl: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in jsonl.splitlines() if line.strip()]


def _summary(decisions: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(d["policy"], d["rule"], d["kind"], d["subject"]["id"], d["at"],  # type: ignore[index]
             d.get("amount")) for d in decisions]


def test_the_plugin_is_installed_and_not_in_this_environment(elevator: Venv) -> None:
    assert importlib.util.find_spec("policykit_elevator") is None  # nothing leaked here
    proc = elevator.run("-c", "import policykit, policykit_elevator; "
                        "print(policykit.__file__); print(policykit_elevator.__file__); "
                        "print(sorted(policykit.registered_event_types()))")
    assert proc.returncode == 0, proc.stderr
    where, plugin, types = proc.stdout.splitlines()
    assert Path(where).resolve() == (ROOT / "policykit" / "__init__.py").resolve()
    assert str(elevator.plugin) not in plugin  # the installed package, not the source copy
    assert types == str(["elevator.fault", "elevator.repaired",
                         "elevator.technician_arrived"])


@pytest.fixture(scope="module")
def cli_audit(elevator: Venv) -> subprocess.CompletedProcess[str]:
    return elevator.cli("audit", SAMPLE, "-p", "policy.yaml", "--until", UNTIL)


def test_the_cli_audits_the_sample_month(cli_audit: subprocess.CompletedProcess[str]) -> None:
    proc = cli_audit
    assert proc.returncode == 1, proc.stderr  # decisions found
    assert "19 records read: 19 valid, 0 duplicate, 0 quarantined" in proc.stderr
    assert _summary(_decisions(proc.stdout)) == EXPECTED


SNIPPET = """
import json, sys
import policykit
policies = policykit.load_policy("policy.yaml")
for backend in sys.argv[1:]:
    report = policykit.audit("{sample}", policies, "{until}", backend=backend)
    assert not report.quarantine, report.quarantine
    print(json.dumps([d.model_dump(mode="json") for d in report.decisions]))
"""


def test_audit_gives_the_same_decisions_on_both_backends(
        elevator: Venv, cli_audit: subprocess.CompletedProcess[str]) -> None:
    backends = ["native"]
    if elevator.run("-c", "import durable.lang").returncode == 0:
        backends.append("durable")
    proc = elevator.run("-c", SNIPPET.format(sample=SAMPLE, until=UNTIL), *backends)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(results) == len(backends)
    assert _summary(results[0]) == EXPECTED
    for other in results[1:]:
        assert other == results[0]  # ids, evidence, messages: everything
    cli = _decisions(cli_audit.stdout)
    assert [d["id"] for d in cli] == [d["id"] for d in results[0]]
    if len(backends) == 1:
        pytest.skip("durable_rules is not importable: compared the native backend only")


def test_the_plugins_own_suite_collects_its_scenarios_and_properties(elevator: Venv) -> None:
    report = elevator.plugin / "report.xml"
    proc = elevator.run("-m", "pytest", "-p", "no:cacheprovider", f"--junit-xml={report}",
                        timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == \
        {"tests": "13", "failures": "0", "errors": "0", "skipped": "0"}
    cases = [(c.get("classname") or "", c.get("name") or "") for c in suite.iter("testcase")]
    scenarios = [name for cls, name in cases if "test_elevator_scenarios" in cls]
    written = yaml.safe_load((EXAMPLE / "tests" / "test_elevator_scenarios.yaml").read_text(
        encoding="utf-8"))["scenarios"]
    assert sorted(scenarios) == sorted(s["name"] for s in written)
    properties = {name for cls, name in cases if "test_elevator_properties" in cls}
    assert properties == {
        "test_from_type_draws_valid_events_of_the_company",
        "test_the_toolkit_draws_every_elevator_type",
        "test_every_decision_is_about_an_elevator_of_the_log",
        "test_a_technician_by_the_deadline_is_never_a_violation",
        "test_every_fine_follows_a_late_arrival_of_the_same_elevator",
    }


def test_the_plugins_policy_files_validate_against_the_schema(elevator: Venv) -> None:
    import jsonschema

    proc = elevator.cli("schema", "policy")
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    validator = jsonschema.Draft7Validator(schema)
    files = [EXAMPLE / "policy.yaml",
             *sorted((EXAMPLE / "src" / "policykit_elevator" / "pack").glob("*.yaml"))]
    assert len(files) == 4
    for path in files:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        errors = [e.message for e in validator.iter_errors(data)]
        assert errors == [], (path.name, errors)
    # Not a schema that accepts anything: a misspelt key and an unknown pack fail it.
    response = yaml.safe_load((EXAMPLE / "src" / "policykit_elevator" / "pack" /
                               "elevator-response.yaml").read_text(encoding="utf-8"))
    response["rules"][0]["withn_by"] = response["rules"][0].pop("within_by")
    assert list(validator.iter_errors(response))
    assert list(validator.iter_errors({"pack": "elevatr"}))


def test_policykit_events_lists_the_elevator_types(elevator: Venv) -> None:
    proc = elevator.cli("events")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "3 registered" in out
    section = out.split("### `elevator.fault`", 1)[1].split("### ", 1)[0]
    for row in ("| `elevator_id` | string, 1–64 characters | required |",
                "| `severity` | one of `minor`, `major`, `entrapment` | optional | `\"minor\"` |",
                "Registered by `policykit_elevator.events.ElevatorFault`",
                "`elevator-response` R1 (pack elevator)"):
        assert row in section, row
    assert "### `elevator.technician_arrived`" in out and "### `elevator.repaired`" in out
    assert "### `contact.received`" in out  # the built-in types too


def test_the_standard_packs_decisions_are_unchanged_beside_the_plugin(elevator: Venv) -> None:
    args = ["audit", str(ROOT / "policykit" / "examples" / "acme-2026-03.jsonl"), "--until",
            UNTIL]
    with_plugin = elevator.cli(*args, cwd=ROOT)
    # Without it: this process (the same checkout's policykit, no plugin installed).
    from click.testing import CliRunner

    from policykit.cli import cli

    without = CliRunner().invoke(cli, args)
    assert without.exit_code == with_plugin.returncode == 1, with_plugin.stderr
    assert with_plugin.stdout == without.stdout
    assert len(_decisions(without.stdout)) > 50


PAGE = ROOT / "docs" / "examples" / "elevator.md"


def test_the_page_quotes_the_example_s_files_as_they_are() -> None:
    import re

    text = PAGE.read_text(encoding="utf-8")
    quotes = re.findall(r"<!-- file: (\S+) -->\n```\w+\n(.*?)```", text, flags=re.DOTALL)
    assert len(quotes) >= 7
    for path, block in quotes:
        source = (ROOT / path).read_text(encoding="utf-8")
        assert block in source, f"docs/examples/elevator.md quotes {path} as it no longer is"


def test_the_page_shows_the_decisions_the_sample_month_gives() -> None:
    text = PAGE.read_text(encoding="utf-8")
    rows = [line.split("|")[1:-1] for line in text.splitlines()
            if line.startswith("| elevator-")]
    shown = [(p.strip(), r.strip(), k.strip(), s.strip(), at.strip(), a.strip() or None)
             for p, r, k, s, at, a in rows]
    expected = [(p, r, k, s, at[:16].replace("T", " "), a) for p, r, k, s, at, a in EXPECTED]
    assert shown == expected
