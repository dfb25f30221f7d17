"""The documentation: the tutorial notebook runs cell by cell, the site builds with warnings
as errors, the generated policy reference matches the pack, and the CLI page covers every
command. The notebook and the build are the slow ones (about 15 s and 5 s)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib.resources import files
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE = files("policykit") / "examples" / "acme-2026-03.jsonl"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _have(*modules: str) -> bool:
    return all(importlib.util.find_spec(m) is not None for m in modules)


@pytest.mark.slow
@pytest.mark.skipif(not _have("nbclient", "nbformat", "ipykernel"),
                    reason="the docs extras (nbclient, nbformat, ipykernel) are not installed")
def test_tutorial_notebook_runs_without_errors(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import nbclient
    import nbformat

    assert EXAMPLE.is_file(), "the tutorial audits the bundled example log"
    nb = nbformat.read(DOCS / "tutorial.ipynb", as_version=4)  # type: ignore[no-untyped-call]
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs (the docs build executes it)"
    monkeypatch.setenv("PYTHONPATH", _env()["PYTHONPATH"])  # the kernel inherits it
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError, naming the cell, if any cell fails
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # both charts rendered
    html = [o["data"]["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("pk-report" in h for h in html)  # the report's own notebook view
    assert any("<h5>Evidence</h5>" in h for h in html)  # an explanation


@pytest.mark.slow
@pytest.mark.skipif(not _have("mkdocs", "material", "mkdocs_jupyter"),
                    reason="the docs extras (mkdocs-material, mkdocs-jupyter) are not installed")
def test_site_builds_strict(tmp_path: Path) -> None:
    env = _env()
    env["POLICYKIT_DOCS_EXECUTE"] = "false"  # the notebook test above executes it
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    from policykit import standard_pack

    for p in standard_pack():
        page = tmp_path / "policies" / p.id / "index.html"
        assert page.is_file(), f"no reference page for {p.id}"
        assert p.title in page.read_text(encoding="utf-8")
    assert (tmp_path / "tutorial" / "index.html").is_file()
    from policykit.rules import SHAPES

    for shape in SHAPES:
        page = tmp_path / "shapes" / shape / "index.html"
        assert page.is_file(), f"no reference page for the {shape} shape"


def test_policy_reference_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(DOCS / "gen_policies.py"), "--check"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, ("docs/policies is stale; run python docs/gen_policies.py\n"
                                  + proc.stdout)


def test_shape_reference_is_up_to_date() -> None:
    proc = subprocess.run([sys.executable, str(DOCS / "gen_shapes.py"), "--check"],
                          cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, ("docs/shapes is stale; run python docs/gen_shapes.py\n"
                                  + proc.stdout)


def test_shape_reference_lists_every_field() -> None:
    from policykit.rules import SHAPES

    for shape, cls in SHAPES.items():
        text = (DOCS / "shapes" / f"{shape}.md").read_text(encoding="utf-8")
        for name, info in cls.model_fields.items():
            if name not in ("shape", "id", "part_of", "title", "title_zh", "description", "clause",
                            "severity", "messages"):
                row = next((line for line in text.splitlines()
                            if line.startswith(f"| `{info.alias or name}` |")), None)
                assert row is not None, f"{shape}.{name}"
                # Every field says what it means: a docstring under it in the model.
                assert not row.endswith("|  |"), f"{shape}.{name} has no docstring"
        assert "## Example" in text and f"shape: {shape}" in text


def test_every_pack_policy_has_a_worked_example() -> None:
    import gen_policies  # docs/, on pytest's pythonpath

    from policykit import standard_pack

    for p in standard_pack():
        events, _until, _story, decisions = gen_policies.run_example(p)
        assert events and decisions, f"{p.id}: the docs example produces no decision"


def test_cli_page_covers_every_command_and_option() -> None:
    import click

    from policykit.cli import cli

    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for name, command in cli.commands.items():
        assert f"policykit {name}" in text, name
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(opt in text for opt in param.opts), f"{name} {param.opts}"
