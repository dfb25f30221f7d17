"""A missing optional package is a policykit error naming the extra that brings it, in
Python as in the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from audit_data import UNTIL, events, policies, write_jsonl
from click.testing import CliRunner

import policykit
from policykit import (
    BackendUnavailableError,
    Engine,
    MissingDependencyError,
    PolicyKitError,
    standard_pack,
)
from policykit.cli import EXIT_BAD_INPUT, cli

HINT = "install it with: pip install 'policykit[audit]'"


def _hide(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make ``import name`` fail as if the package were not installed."""
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.fixture
def report() -> policykit.AuditReport:
    return policykit.audit(events(), policies(), UNTIL)


@pytest.mark.parametrize(("hidden", "call", "module"), [
    (("pandas",), lambda r: r.to_pandas(), "pandas"),
    (("pandas",), lambda r: r.summary(), "pandas"),
    (("pandas",), lambda r: r.payroll("2026-03"), "pandas"),
    (("polars",), lambda r: r.to_polars(), "polars"),
    (("matplotlib", "matplotlib.figure"), lambda r: r.violations_chart(), "matplotlib"),
    (("matplotlib", "matplotlib.figure"), lambda r: r.to_html(), "matplotlib"),
])
def test_a_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch,
                                           report: policykit.AuditReport,
                                           hidden: tuple[str, ...], call: object,
                                           module: str) -> None:
    _hide(monkeypatch, *hidden)
    with pytest.raises(MissingDependencyError) as caught:
        call(report)  # type: ignore[operator]
    err = caught.value
    assert isinstance(err, PolicyKitError) and isinstance(err, ImportError)
    assert err.module == module and err.extra == "audit" and err.name == module
    assert HINT in str(err) and module in str(err)


def test_parquet_without_pyarrow_or_polars(monkeypatch: pytest.MonkeyPatch,
                                           tmp_path: Path) -> None:
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1")
    _hide(monkeypatch, "pyarrow", "pyarrow.parquet", "polars")
    with pytest.raises(MissingDependencyError, match=r"pyarrow.*policykit\[audit\]"):
        policykit.audit(path)
    result = CliRunner().invoke(cli, ["audit", str(path)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert result.stderr.startswith("error: ") and HINT in result.stderr


def test_the_cli_html_report_without_matplotlib_exits_2(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", events()[:4])
    out = tmp_path / "report.html"
    _hide(monkeypatch, "matplotlib", "matplotlib.figure")
    result = CliRunner().invoke(cli, ["audit", str(log), "--policy", "lateness-deduction",
                                      "--format", "html", "-o", str(out)])
    assert result.exit_code == EXIT_BAD_INPUT
    assert "matplotlib" in result.stderr and HINT in result.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == [log]


def test_the_durable_backend_without_durable_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    _hide(monkeypatch, "durable")
    with pytest.raises(MissingDependencyError,
                       match=r"pip install 'policykit\[durable\]'") as caught:
        Engine(standard_pack().get("lateness-deduction"), backend="durable")
    # Still a BackendUnavailableError: fallbacks written against it keep working.
    assert isinstance(caught.value, BackendUnavailableError)
    assert "backend='native'" in str(caught.value)
