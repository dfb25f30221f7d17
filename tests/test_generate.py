"""The event-log generator: deterministic, sorted, complete; the bundled example is its output."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.generate import LogGenerator, dumps, generate
from policykit import EVENT_TYPES as MODELLED_TYPES

ROOT = Path(__file__).resolve().parents[1]

EXAMPLES = ROOT / "policykit" / "examples"
EXAMPLE_LOG = EXAMPLES / "acme-2026-03.jsonl"
EXAMPLE_BOOKS = EXAMPLES / "acme-2026-03.planted.json"
EVENTS_MD = ROOT / "docs" / "events.md"

# Every modelled event type: tests/test_models.py holds the models to the wire format's list.
EVENT_TYPES = frozenset(MODELLED_TYPES)
SHANGHAI = timedelta(hours=8)


@pytest.fixture(scope="module")
def two_months() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Thirty employees over March and April 2026 (Qingming falls in it), with the books;
    remote sessions record their ends, so every event type appears."""
    gen = LogGenerator(30, 2, 1, session_ends=True)
    events = list(gen.events())
    return events, gen.planted()


def test_same_seed_same_log_other_seed_other_log() -> None:
    first = [dumps(e) for e in generate(20, 1, 42)]
    assert first == [dumps(e) for e in generate(20, 1, 42)]
    assert first != [dumps(e) for e in generate(20, 1, 43)]


def test_ids_unique_and_times_sorted_with_offset(
    two_months: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, _ = two_months
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"ev-\d{7}", i) for i in ids)
    times = [datetime.fromisoformat(e["at"]) for e in events]
    assert all(t.utcoffset() == SHANGHAI for t in times)
    assert times == sorted(times)
    assert times[0] == datetime.fromisoformat("2026-03-01T00:00:00+08:00")
    assert times[-1] < datetime.fromisoformat("2026-05-01T00:00:00+08:00")
    # Profiles come first, before anything else happens.
    n = sum(1 for e in events if e["type"] == "employee.profile")
    assert n == 30
    assert {e["type"] for e in events[:n]} == {"employee.profile"}


def test_every_event_type_appears(
    two_months: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, _ = two_months
    assert {e["type"] for e in events} == EVENT_TYPES


def test_event_type_list_matches_the_event_reference() -> None:
    # docs/events.md, the users' reference of the wire format, has one heading per type.
    text = EVENTS_MD.read_text(encoding="utf-8")
    listed = re.findall(r"^### `([a-z_]+\.[a-z_]+)`$", text, flags=re.MULTILINE)
    assert len(listed) == len(set(listed))
    assert set(listed) == EVENT_TYPES


def test_plausible_mix_and_wire_values(
    two_months: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, _ = two_months
    counts: dict[str, int] = {}
    for e in events:
        counts[e["type"]] = counts.get(e["type"], 0) + 1
    attendance = counts["attendance.clock_in"] + counts["attendance.clock_out"]
    assert attendance == max(*counts.values(), attendance)  # attendance dominates
    working_days = 42  # March 22 + April 20 (Qingming: April 6 off)
    assert 5 <= len(events) / 30 / working_days <= 12
    for e in events:
        for value in e.values():
            assert not isinstance(value, float)  # money and everything else: never floats
        if e["type"] == "employee.profile":
            assert re.fullmatch(r"\d+\.\d{2}", e["base_salary"])
    holiday_checks = [e for e in events if e["type"] == "duty.check"
                      and e["at"].startswith(("2026-04-04", "2026-04-05", "2026-04-06"))]
    assert len(holiday_checks) >= 12  # Qingming: checks through every holiday day
    late = [e for e in events if e["type"] == "attendance.clock_in"
            and e["at"][11:19] in ("08:30:00", "08:30:01")]
    assert late  # the boundary seconds occur


def test_books_name_emitted_events_within_the_log(
    two_months: tuple[list[dict[str, Any]], dict[str, Any]],
) -> None:
    events, books = two_months
    ids = {e["id"] for e in events}
    end = datetime.fromisoformat(books["generator"]["end"])
    assert books["events"] == len(events)
    for row in books["planted"] + books["boundaries"]:
        assert row["evidence"] and set(row["evidence"]) <= ids
        assert datetime.fromisoformat(row["due"]) <= end
    policies = set(books["counts"])
    assert len(policies) == 12  # every policy of the pack has planted violations


def test_bundled_example_is_the_generators_output() -> None:
    books = json.loads(EXAMPLE_BOOKS.read_text(encoding="utf-8"))
    params = books["generator"]
    gen = LogGenerator(params["employees"], params["months"], params["seed"],
                       date.fromisoformat(params["start"]))
    lines = [dumps(e) for e in gen.events()]
    assert EXAMPLE_LOG.read_text(encoding="utf-8").splitlines() == lines
    assert gen.planted() == books
    assert 2000 <= len(lines) <= 6000
    assert len(books["counts"]) == 12


def test_example_readme_counts_match_the_books() -> None:
    books = json.loads(EXAMPLE_BOOKS.read_text(encoding="utf-8"))
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    table = {
        (m[1], m[2]): int(m[3])
        for m in re.finditer(r"^\| `([a-z-]+)` \| (R\w+) \| (\d+) \|", readme, re.MULTILINE)
    }
    expected = {(p, r): n for p, rules in books["counts"].items() for r, n in rules.items()}
    assert table == expected
    assert f"{books['events']:,} events" in readme
    assert f"{len(books['planted'])} planted decisions" in readme
    cited = set(re.findall(r"`(ev-\d{7})`", readme))
    lines = EXAMPLE_LOG.read_text(encoding="utf-8").splitlines()
    log_ids = {json.loads(line)["id"] for line in lines}
    assert cited and cited <= log_ids


def test_example_parses_as_policykit_events() -> None:
    models = pytest.importorskip("policykit.models")
    with EXAMPLE_LOG.open(encoding="utf-8") as fh:
        for line in fh:
            models.parse_event(json.loads(line))


def test_rejects_a_company_too_small_for_every_role() -> None:
    with pytest.raises(ValueError):
        LogGenerator(5, 1, 1)
