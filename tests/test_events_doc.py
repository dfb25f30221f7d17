"""The generated event reference (docs/events.md): committed in sync with the models, every
example on it a valid event of its own type, and the generator refusing a broken example."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from policykit import EVENT_TYPES, EventError, parse_event, standard_pack
from policykit.testing import EventFactory

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "docs" / "gen_events.py"
PAGE = ROOT / "docs" / "events.md"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_events", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_event_reference_is_up_to_date() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    proc = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, ("docs/events.md is stale; run python docs/gen_events.py\n"
                                  + proc.stdout + proc.stderr)


def _sections(text: str) -> dict[str, str]:
    """Per event type heading (### `type`), the text up to the next heading."""
    parts = re.split(r"^### `([^`]+)`$", text, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def test_every_type_has_a_section_with_a_valid_example_of_that_type() -> None:
    text = PAGE.read_text(encoding="utf-8")
    sections = _sections(text)
    assert set(sections) == set(EVENT_TYPES)
    assert len(re.findall(r"^### ", text, flags=re.MULTILINE)) == len(EVENT_TYPES)  # no repeats
    for type_, body in sections.items():
        blocks = re.findall(r"```json\n(.*?)\n```", body, flags=re.DOTALL)
        assert len(blocks) == 1, type_
        event = parse_event(json.loads(blocks[0]))
        assert event.type == type_


def test_fields_and_readers_match_the_models_and_the_pack() -> None:
    sections = _sections(PAGE.read_text(encoding="utf-8"))
    readers: dict[str, set[str]] = {}
    for policy in standard_pack():
        for spec in policy.specs:
            for type_ in spec.event_types():
                readers.setdefault(type_, set()).add(policy.id)
    for type_, body in sections.items():
        model = EVENT_TYPES[type_]
        own = set(model.model_fields) - {"id", "type", "at", "actor", "meta"}
        listed = set(re.findall(r"^\| `([a-z_]+)` \|", body, flags=re.MULTILINE))
        assert listed == own, type_
        for name in own:
            row = re.search(rf"^\| `{name}` \|.*\| (required|optional) \|", body, re.MULTILINE)
            assert row is not None, (type_, name)
            assert (row.group(1) == "required") == model.model_fields[name].is_required()
        read_line = next(line for line in body.splitlines() if line.startswith("Read by:"))
        assert set(re.findall(r"\[([a-z-]+)\]\(policies/", read_line)) == \
            readers.get(type_, set()), type_


def test_check_reports_a_stale_page_and_leaves_it_alone(tmp_path: Path) -> None:
    gen = _generator()
    out = tmp_path / "events.md"
    assert gen.write(out=out) is True  # missing: written
    assert gen.write(check=True, out=out) is False
    out.write_text(out.read_text(encoding="utf-8").replace("boolean", "bool"), encoding="utf-8")
    tampered = out.read_text(encoding="utf-8")
    assert gen.write(check=True, out=out) is True
    assert out.read_text(encoding="utf-8") == tampered  # --check writes nothing


def test_a_broken_example_fails_the_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    gen = _generator()

    class Broken(EventFactory):
        def fields(self, type: str, at: Any, **given: Any) -> dict[str, Any]:
            record = super().fields(type, at, **given)
            if type == "staff.private_call":
                record["duration_s"] = -5  # the model wants >= 0
            return record

    monkeypatch.setattr(gen, "EventFactory", Broken)
    with pytest.raises(EventError, match="duration_s"):
        gen.page()
