"""Event types declared in a policy file (its ``events:`` section): a CLI user audits a log
of their own events without Python, with the validation the built-in types get."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
import yaml
from click.testing import CliRunner
from helpers import BACKENDS

import policykit
from policykit import (
    EVENT_TYPES,
    EventBase,
    EventError,
    PolicyFileError,
    audit,
    load_policy,
    loads_policy,
    parse_event,
    register_event_types,
    registered_event_types,
    unregister_event_types,
)
from policykit._schema import policy_schema
from policykit.cli import cli

ROOT = Path(__file__).resolve().parent.parent
UNTIL = "2026-03-03T00:00:00+08:00"

EVENTS = """
events:
  elevator.fault:
    description: A lift reported out of service.
    fields:
      elevator_id: id
      fault_id: id
      severity: {type: enum, values: [minor, major, entrapment], required: false}
  elevator.technician_arrived:
    fields:
      elevator_id: id
      fault_id: id
      technician_id: {type: id, description: Who came.}
  elevator.repaired:
    fields:
      elevator_id: id
      fault_id: id
      cost: {type: money, required: false}
"""

POLICIES = """
policies:
  - id: elevator-response
    title: A technician arrives within two hours of a serious fault
    clause: maintenance contract §3
    parameters: {within: PT2H}
    rules:
      - shape: deadline
        id: R1
        title: technician on site
        trigger: {type: elevator.fault, where: {severity: {in: [major, entrapment]}}}
        key: fault_id
        within: $within
        fulfil:
          - {type: elevator.technician_arrived}
          - {type: elevator.repaired}
        subject: {kind: item, field: elevator_id}
"""

FILE = EVENTS + POLICIES


def _ev(i: str, t: str, at: str, **fields: object) -> dict[str, object]:
    return {"id": i, "type": f"elevator.{t}", "at": f"2026-03-02T{at}:00+08:00", **fields}


LOG: list[dict[str, object]] = [
    _ev("f1", "fault", "08:00", elevator_id="E1", fault_id="F1", severity="major"),
    _ev("t1", "technician_arrived", "09:30", elevator_id="E1", fault_id="F1",
        technician_id="T9"),  # on time
    _ev("f2", "fault", "08:00", elevator_id="E2", fault_id="F2", severity="entrapment"),
    _ev("t2", "technician_arrived", "10:30", elevator_id="E2", fault_id="F2",
        technician_id="T9"),  # 30 minutes late
    _ev("r2", "repaired", "11:00", elevator_id="E2", fault_id="F2", cost="120.50"),
    _ev("f4", "fault", "15:00", elevator_id="E1", fault_id="F4", severity="major"),  # never
    _ev("f5", "fault", "16:00", elevator_id="E4", fault_id="F5"),  # no severity: out of scope
]
EXPECTED = [("violation", "E2", "2026-03-02T10:00:00+08:00", ("f2",)),
            ("violation", "E1", "2026-03-02T17:00:00+08:00", ("f4",))]


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    """Every test starts and ends without registered types."""
    assert registered_event_types() == {}
    yield
    unregister_event_types()


def _seen(decisions: list[policykit.Decision]) -> list[tuple[object, ...]]:
    return [(d.kind, d.subject.id, d.at.isoformat(), d.evidence) for d in decisions]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- auditing a log


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_declared_log_is_audited_on_both_backends(tmp_path: Path, backend: str) -> None:
    report = audit(LOG, _write(tmp_path, "elevator.yaml", FILE), UNTIL, backend=backend)
    assert report.counts.quarantined == 0 and report.counts.valid == len(LOG)
    assert _seen(report.decisions) == EXPECTED
    assert report.events["r2"].cost == Decimal("120.50")  # type: ignore[attr-defined]
    assert report.events["f5"].severity is None  # type: ignore[attr-defined]
    assert set(registered_event_types()) == {
        "elevator.fault", "elevator.technician_arrived", "elevator.repaired"}
    assert EVENT_TYPES["elevator.fault"].__doc__ == "A lift reported out of service."


def test_the_cli_audits_a_declared_log(tmp_path: Path) -> None:
    policy = _write(tmp_path, "elevator.yaml", FILE)
    log = _write(tmp_path, "log.jsonl", "".join(json.dumps(e) + "\n" for e in LOG))
    result = CliRunner().invoke(cli, ["audit", str(log), "-p", str(policy), "--until", UNTIL],
                                catch_exceptions=False)
    assert result.exit_code == 1, result.output  # decisions found
    got = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["kind"], d["subject"]["id"], d["at"], d["evidence"]) for d in got] == [
        (k, s, at, list(ev)) for k, s, at, ev in EXPECTED]


def test_the_cli_quarantines_a_bad_declared_event_naming_the_field(tmp_path: Path) -> None:
    policy = _write(tmp_path, "elevator.yaml", FILE)
    bad = _ev("f9", "fault", "12:00", elevator_id="E9", fault_id="F9", severity="huge")
    log = _write(tmp_path, "log.jsonl", "".join(json.dumps(e) + "\n" for e in [*LOG, bad]))
    result = CliRunner().invoke(cli, ["audit", str(log), "-p", str(policy), "--until", UNTIL],
                                catch_exceptions=False)
    assert result.exit_code == 3  # quarantined
    assert "line 8 (event 'f9'): severity: got 'huge'" in result.stderr
    assert "'minor', 'major' or 'entrapment'" in result.stderr
    assert len(result.stdout.splitlines()) == 2  # the good records around it still decided


def test_a_csv_log_of_declared_types_reads_optional_bool_and_int_cells(
        tmp_path: Path) -> None:
    # A CSV cell is text: "true" and "3" become the JSON values of bool and int fields,
    # optional ones (Bool | None, Int | None) included; other text is still quarantined.
    text = FILE.replace("fault_id: id\n      severity", "fault_id: id\n      urgent: "
                        "{type: bool, required: false}\n      floors: {type: int, required: "
                        "false}\n      severity", 1)
    policy = loads_policy(text.replace("{severity: {in: [major, entrapment]}}",
                                       "{urgent: true, floors: {ge: 2}}"))
    rows = ["id,type,at,elevator_id,fault_id,urgent,floors",
            "a,elevator.fault,2026-03-02T08:00:00+08:00,E1,F1,true,3",
            "b,elevator.fault,2026-03-02T08:00:00+08:00,E2,F2,false,3",
            "c,elevator.fault,2026-03-02T08:00:00+08:00,E3,F3,true,",
            "d,elevator.fault,2026-03-02T08:00:00+08:00,E4,F4,yes,3",
            "e,elevator.fault,2026-03-02T08:00:00+08:00,E5,F5,true,three"]
    path = _write(tmp_path, "log.csv", "\n".join(rows) + "\n")
    report = policykit.audit(path, policy, UNTIL)
    assert [(d.subject.id, d.evidence) for d in report.decisions] == [("E1", ("a",))]
    assert [(q.event_id, q.problems[0][0]) for q in report.quarantine] == [
        ("d", "urgent"), ("e", "floors")]
    assert report.events["c"].floors is None  # type: ignore[attr-defined]


def test_a_bad_declared_event_is_quarantined_by_audit(tmp_path: Path) -> None:
    records = [*LOG, _ev("t9", "technician_arrived", "12:00", elevator_id="E9",
                         fault_id="F9"),
               _ev("r9", "repaired", "12:00", elevator_id="E9", fault_id="F9", cost=1.5),
               _ev("x9", "repiared", "12:00", elevator_id="E9", fault_id="F9")]
    report = audit(records, loads_policy(FILE), UNTIL)
    assert report.counts.valid == len(LOG)
    errors = {q.event_id: q.error for q in report.quarantine}
    assert "technician_id: got '<missing>', expected a value: the field is required" \
        in errors["t9"]
    assert "cost: got 1.5, expected money must be a decimal string" in errors["r9"]
    assert "did you mean 'elevator.repaired'" in errors["x9"]
    assert _seen(report.decisions) == EXPECTED


def test_the_other_formats_and_a_single_policy_file_declare_too(tmp_path: Path) -> None:
    data = yaml.safe_load(FILE)
    as_json = _write(tmp_path, "elevator.json", json.dumps(data))
    assert _seen(audit(LOG, as_json, UNTIL).decisions) == EXPECTED
    unregister_event_types()
    toml = ('[events."elevator.fault".fields]\nelevator_id = "id"\nfault_id = "id"\n'
            'severity = {type = "enum", values = ["minor", "major", "entrapment"], '
            'required = false}\n'
            '[events."elevator.technician_arrived".fields]\nelevator_id = "id"\n'
            'fault_id = "id"\ntechnician_id = "id"\n'
            '[events."elevator.repaired".fields]\nelevator_id = "id"\nfault_id = "id"\n'
            'cost = {type = "money", required = false}\n')
    policy = data["policies"][0]
    as_toml = _write(tmp_path, "elevator.toml", toml + "\n" + _toml_policies(policy))
    assert _seen(audit(LOG, as_toml, UNTIL).decisions) == EXPECTED
    unregister_event_types()
    # One policy (top-level id and rules) with its event types beside it.
    single = _write(tmp_path, "one.yaml", yaml.safe_dump({"events": data["events"],
                                                         **policy}))
    assert _seen(audit(LOG, single, UNTIL).decisions) == EXPECTED


def _toml_policies(policy: dict[str, Any]) -> str:
    rule = policy["rules"][0]
    return (f'[[policies]]\nid = "{policy["id"]}"\ntitle = "{policy["title"]}"\n'
            f'clause = "{policy["clause"]}"\nparameters = {{within = "PT2H"}}\n'
            '[[policies.rules]]\nshape = "deadline"\nid = "R1"\n'
            f'title = "{rule["title"]}"\nkey = "fault_id"\nwithin = "$within"\n'
            'trigger = {type = "elevator.fault", where = {severity = {in = ["major", '
            '"entrapment"]}}}\n'
            'fulfil = [{type = "elevator.technician_arrived"}, {type = "elevator.repaired"}]\n'
            'subject = {kind = "item", field = "elevator_id"}\n')


def test_declared_events_pickle_and_snapshot() -> None:
    engine = policykit.Engine(loads_policy(FILE))
    fault = parse_event(LOG[0])
    assert pickle.loads(pickle.dumps(fault)) == fault
    log = sorted(LOG, key=lambda e: str(e["at"]))
    first = engine.session()
    got = [d for ev in log[:3] for d in first.feed(ev)]
    restored = engine.restore(first.snapshot())
    got += [d for ev in log[3:] for d in restored.feed(ev)] + restored.advance_to(UNTIL)
    assert sorted(_seen(got)) == sorted(EXPECTED)


def test_declared_events_unpickle_in_a_process_that_never_loaded_the_file() -> None:
    # A Dask worker (distributed_audit) or a session restored elsewhere: the pickle carries
    # the declaration, so the type is declared there and the event keeps its model.
    loads_policy(FILE)
    payload = pickle.dumps([parse_event(LOG[0]), parse_event(LOG[4])])
    script = (
        "import pickle, sys\n"
        "import policykit\n"
        "assert 'elevator.fault' not in policykit.EVENT_TYPES\n"
        "events = pickle.loads(sys.stdin.buffer.read())\n"
        "models = policykit.registered_event_types()\n"
        "assert [type(e) for e in events] == [models['elevator.fault'], "
        "models['elevator.repaired']]\n"
        "assert policykit.parse_event(events[0].model_dump_json()) == events[0]\n"
        "print(events[1].cost, events[0].severity)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True,
                          env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().split() == ["120.50", "major"]


def test_unpickling_a_declared_event_against_another_declaration_is_refused() -> None:
    loads_policy(FILE)
    payload = pickle.dumps(parse_event(LOG[0]))
    unregister_event_types()
    loads_policy("events: {elevator.fault: {fields: {elevator_id: id}}}\n"
                 "policies: [{use: lateness-deduction}]")
    with pytest.raises(PolicyFileError, match="fault_id"):
        pickle.loads(payload)


# --------------------------------------------------------------- policies checked at load


@pytest.mark.parametrize(("old", "new", "message"), [
    ("key: fault_id", "key: faultid", "has no field 'faultid' (did you mean 'fault_id'?)"),
    ("{severity: {in", "{severty: {in", "has no field 'severty' (did you mean 'severity'?)"),
    ("type: elevator.repaired}", "type: elevator.repaird}",
     "did you mean 'elevator.repaired'"),
])
def test_the_file_s_policies_are_checked_against_its_declarations(
        old: str, new: str, message: str) -> None:
    assert old in FILE
    with pytest.raises(PolicyFileError) as err:
        loads_policy(FILE.replace(old, new))
    assert message in str(err.value)
    assert registered_event_types() == {}  # a file that does not load registers nothing


def test_a_where_value_is_checked_against_the_declared_field_type() -> None:
    text = FILE.replace("elevator_id: id\n      fault_id: id\n      severity",
                        "elevator_id: id\n      fault_id: id\n      urgent: bool\n"
                        "      severity", 1)
    ok = text.replace("where: {severity: {in: [major, entrapment]}}", "where: {urgent: true}")
    assert loads_policy(ok).ids == ["elevator-response"]
    unregister_event_types()
    with pytest.raises(PolicyFileError, match="urgent"):
        loads_policy(ok.replace("{urgent: true}", "{urgent: 'yes'}"))
    with pytest.raises(PolicyFileError, match="'huge'"):
        loads_policy(FILE.replace("[major, entrapment]", "[major, huge]"))


@pytest.mark.parametrize(("where", "message"), [
    ("{urgent: {gt: 0}}", "'gt' compares numbers; elevator.fault declares 'urgent' as true or "
     "false"),
    ("{severity: {le: 2}}", "'le' compares numbers; elevator.fault declares 'severity' as one "
     "of 'minor', 'major', 'entrapment'"),
    ("{fault_id: {lt: 5}}", "'lt' compares numbers"),
])
def test_a_comparison_on_a_field_that_is_not_a_number_is_refused(where: str,
                                                                   message: str) -> None:
    # It would never match (comparisons hold for numbers only): a rule that never fires.
    text = FILE.replace("fault_id: id\n      severity", "fault_id: id\n      urgent: bool\n"
                        "      n: {type: int, required: false}\n      severity", 1)
    assert loads_policy(text.replace("{severity: {in: [major, entrapment]}}",
                                     "{n: {ge: 2}}")).ids == ["elevator-response"]
    unregister_event_types()
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text.replace("{severity: {in: [major, entrapment]}}", where))
    assert message in str(err.value)


@pytest.mark.parametrize(("old", "new", "path", "value"), [
    ("where: {severity: {in: [major, entrapment]}}", "where: {severity: {in: [major, huge]}}",
     "policies[0].rules[0].trigger.where.severity.in", "huge"),
    ("where: {severity: {in: [major, entrapment]}}", "where: {severity: major2}",
     "policies[0].rules[0].trigger.where.severity", "major2"),
    ("where: {severity: {in: [major, entrapment]}}", "where: {severty: major}",
     "policies[0].rules[0].trigger.where.severty", "severty"),
    ("key: fault_id", "key: faultid", "policies[0].rules[0].key", "faultid"),
])
def test_a_refused_field_or_where_value_is_named_at_its_path(old: str, new: str, path: str,
                                                             value: str) -> None:
    # Not at the whole rule (policies[0].rules[0], its first line): at the value itself.
    with pytest.raises(PolicyFileError) as err:
        loads_policy(FILE.replace(old, new))
    assert (err.value.path, err.value.value) == (path, value)
    assert err.value.line is not None
    line = FILE.replace(old, new).splitlines()[err.value.line - 1]
    assert value in line


@pytest.mark.parametrize(("where", "message"), [
    ('{day: "2026-03-02"}', "holds a date: an event's value never equals text"),
    ('{when: {in: ["2026-03-02T08:00:00+08:00"]}}', "holds a date-time"),
    ('{cost: "120.50"}', "holds a decimal number: an event's value never equals text (write "
     "it as a number, {eq: 120.5}"),
])
def test_text_compared_with_a_date_time_or_money_field_is_refused(where: str,
                                                                  message: str) -> None:
    # The value is of the field's type as text, but an event's value is a date, an instant
    # or a Decimal: the test would never hold (and ne/not_in always), on both backends.
    text = FILE.replace("fault_id: id\n      severity", "fault_id: id\n      day: {type: "
                        "date, required: false}\n      when: {type: datetime, required: "
                        "false}\n      cost: {type: money, required: false}\n      severity", 1)
    policy = loads_policy(text.replace("{severity: {in: [major, entrapment]}}",
                                       "{cost: {eq: 120.5}, day: {exists: true}}"))
    fault = {**LOG[0], "cost": "120.50", "day": "2026-03-02"}
    for backend in BACKENDS:  # a number does equal the money
        decisions = policykit.Engine(policy, backend=backend).evaluate([fault], until=UNTIL)
        assert [d.evidence for d in decisions] == [("f1",)]
    unregister_event_types()
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text.replace("{severity: {in: [major, entrapment]}}", where))
    assert message in str(err.value)


# --------------------------------------------------------------- idempotence and clashes


def test_loading_twice_and_two_files_declaring_alike_is_idempotent(tmp_path: Path) -> None:
    path = _write(tmp_path, "elevator.yaml", FILE)
    load_policy(path)
    models = registered_event_types()
    load_policy(path)
    # Another file declaring the same type alike (with other descriptions) and its own.
    other = _write(tmp_path, "other.yaml", """
events:
  elevator.repaired:
    description: Put right.
    fields: {elevator_id: id, fault_id: id, cost: {type: decimal, required: false}}
  elevator.inspected: {fields: {elevator_id: id}}
policies: [{use: lateness-deduction}]
""")
    load_policy(other)
    now = registered_event_types()
    assert {n: now[n] for n in models} == models  # the same model objects
    assert "elevator.inspected" in now


def test_a_clashing_declaration_names_file_path_value_and_the_existing_one(
        tmp_path: Path) -> None:
    load_policy(_write(tmp_path, "first.yaml", FILE))
    before = registered_event_types()
    clash = _write(tmp_path, "second.yaml", """
policies: [{use: lateness-deduction}]
events:
  elevator.fault:
    fields:
      elevator_id: id
      fault_id: id
      severity: {type: text, required: false}
""")
    with pytest.raises(PolicyFileError) as err:
        load_policy(clash)
    e = err.value
    assert (e.source, e.path, e.value, e.line) == (
        str(clash), "events.elevator.fault.fields.severity.type", "text", 8)
    assert f"declared in {tmp_path / 'first.yaml'}" in e.expected
    assert "severity: {type: enum, values: [minor, major, entrapment], required: false}" \
        in e.expected
    for changed, path, value in [
        ("severity: {type: enum, values: [minor, major], required: false}",
         "events.elevator.fault.fields.severity.values", ["minor", "major"]),
        ("severity: {type: enum, values: [minor, major, entrapment]}",
         "events.elevator.fault.fields.severity.required", True),
        ("severity: {type: enum, values: [minor, major, entrapment], required: false}\n"
         "      extra: id",
         "events.elevator.fault.fields.extra", "extra"),
        ("", "events.elevator.fault.fields", "severity"),
    ]:
        with pytest.raises(PolicyFileError) as err:
            loads_policy(clash.read_text("utf-8").replace(
                "severity: {type: text, required: false}", changed))
        assert (err.value.path, err.value.value) == (path, value)
    assert registered_event_types() == before


def test_a_declaration_clashing_with_a_python_model_or_a_built_in_is_refused() -> None:
    class Fault(EventBase):
        type: Literal["elevator.fault"]
        lift: str

    register_event_types(Fault)
    with pytest.raises(PolicyFileError) as err:
        loads_policy(FILE)
    assert err.value.path == "events.elevator.fault"
    assert "registered by" in err.value.expected and "Fault" in err.value.expected
    assert registered_event_types() == {"elevator.fault": Fault}
    unregister_event_types()
    with pytest.raises(PolicyFileError) as err:
        loads_policy(FILE.replace("elevator.repaired:", "attendance.clock_in:"))
    assert err.value.path == "events.attendance.clock_in"
    assert "built-in event type" in err.value.expected
    assert registered_event_types() == {}


# ------------------------------------------------------------------------ declarations


def _declare(fields: Any, name: str = "acme.thing") -> type[EventBase]:
    loads_policy(yaml.safe_dump({"events": {name: {"fields": fields}},
                                 "policies": [{"use": "lateness-deduction"}]}))
    return EVENT_TYPES[name]


def _record(**fields: object) -> dict[str, object]:
    return {"id": "e1", "type": "acme.thing", "at": "2026-03-02T08:00:00+08:00", **fields}


@pytest.mark.parametrize(("kind", "good", "bad"), [
    ("id", ["E1", "x" * 256], ["", "x" * 257, 5, "a\x00b", None]),
    ("text", ["", "any text"], ["x" * 4097, 5, None]),
    ("bool", [True, False], ["true", 1, "yes", None]),
    ("int", [0, -3, 2**53 - 1], [1.0, "3", True, 2**53, None]),
    ("decimal", ["6500.00", "0.5", 7], [1.5, "-1", "1e3", "1.23456", True, None]),
    ("money", ["6500.00"], [1.5]),
    ("datetime", ["2026-03-02T08:30:00+08:00"], ["2026-03-02T08:30:00", 1700000000,
                                                  "2026-03-02", None]),
    ("date", ["2026-03-02"], ["2026-03-02T08:30:00+08:00", 20260302, "2026-3-2", None]),
    ("ids", [[], ["a", "b"]], ["a", [""], [5], ["x"] * 1001, None]),
    ({"type": "enum", "values": ["a", "b"]}, ["a", "b"], ["c", "A", 1, None]),
])
def test_every_field_type_accepts_and_refuses_like_the_built_ins(
        kind: Any, good: list[Any], bad: list[Any]) -> None:
    model = _declare({"v": kind})
    for value in good:
        parsed = parse_event(_record(v=value))
        assert parse_event(parsed.model_dump_json()) == parsed  # round-trips its JSON
    for value in bad:
        with pytest.raises(EventError) as err:
            parse_event(_record(v=value))
        assert err.value.problems[0][0].split(".")[0] == "v", (kind, value)
    assert "v" in model.model_fields


def test_optional_fields_default_to_none_or_an_empty_list() -> None:
    _declare({"a": {"type": "id", "required": False}, "b": {"type": "ids", "required": False},
              "c": {"type": "enum", "values": ["x"], "required": False},
              "d": {"type": "datetime", "required": False}, "e": "id"})
    event = parse_event(_record(e="E"))
    assert (event.a, event.b, event.c, event.d) == (None, [], None, None)  # type: ignore[union-attr]
    assert parse_event(_record(e="E", a=None)).a is None  # type: ignore[union-attr]
    with pytest.raises(EventError, match="e: got '<missing>'"):
        parse_event(_record())
    with pytest.raises(EventError, match="did you mean 'e'"):
        parse_event(_record(e="E", ee="x"))
    assert parse_event(_record(e="E", a="A", c="x", d="2026-03-02T08:00:00Z")).c == "x"  # type: ignore[union-attr]


BAD_DECLARATIONS = [
    ({"x": "bolean"}, "events.acme.thing.fields.x.type", "bolean", "bool"),
    ({"x": {"type": "integer"}}, "events.acme.thing.fields.x.type", "integer", "int"),
    ({"x": {"tpye": "id"}}, "events.acme.thing.fields.x.tpye", "tpye", "type"),
    ({"x": {"required": False}}, "events.acme.thing.fields.x.type", "<missing>", None),
    ({"x": {"type": "enum"}}, "events.acme.thing.fields.x.values", "<missing>", None),
    ({"x": {"type": "enum", "values": [True]}}, "events.acme.thing.fields.x.values[0]",
     True, None),
    ({"x": {"type": "enum", "values": ["a", "a"]}}, "events.acme.thing.fields.x.values[1]",
     "a", None),
    ({"x": {"type": "id", "values": ["a"]}}, "events.acme.thing.fields.x.values", ["a"],
     None),
    ({"x": {"type": "id", "required": "no"}}, "events.acme.thing.fields.x.required", "no",
     None),
    ({"at": "id"}, "events.acme.thing.fields.at", "at", None),
    ({"copy": "id"}, "events.acme.thing.fields.copy", "copy", None),
    ({"1x": "id"}, "events.acme.thing.fields.1x", "1x", None),
    ({"x": 5}, "events.acme.thing.fields.x", 5, None),
]


@pytest.mark.parametrize(("fields", "path", "value", "suggestion"), BAD_DECLARATIONS)
def test_a_bad_declaration_is_refused_at_its_path(fields: Any, path: str, value: Any,
                                                  suggestion: str | None) -> None:
    with pytest.raises(PolicyFileError) as err:
        _declare(fields)
    assert (err.value.path, err.value.value, err.value.suggestion) == (path, value, suggestion)
    assert registered_event_types() == {}


def test_bad_type_names_and_unknown_declaration_keys() -> None:
    for text, path, expected in [
        ("events: {acme.thing: {fileds: {}}}", "events.acme.thing.fileds",
         "one of description, fields"),
        ("events: {'acme thing': {}}", "events.acme thing", "without spaces"),
        ("events: [acme.thing]", "events", "a mapping of event type names"),
        ("events: {acme.thing: [x]}", "events.acme.thing", "a mapping with keys"),
        ("events: {acme.thing: {fields: [x]}}", "events.acme.thing.fields",
         "a mapping of field names"),
    ]:
        with pytest.raises(PolicyFileError) as err:
            loads_policy(text + "\npolicies: [{use: lateness-deduction}]")
        assert err.value.path == path and expected in err.value.expected, str(err.value)
    with pytest.raises(PolicyFileError, match="one of include, events, pack"):
        loads_policy("event: {}\npolicies: [{use: lateness-deduction}]")
    # A type with no fields of its own is allowed: just the envelope.
    loads_policy("events: {acme.ping: }\npolicies: [{use: lateness-deduction}]")
    assert parse_event({"id": "p", "type": "acme.ping", "at": "2026-03-02T08:00:00Z"})


# ---------------------------------------------------------------------------- schemas


def test_the_policy_schema_describes_the_events_section() -> None:
    validator = jsonschema.Draft7Validator(policy_schema())
    data = yaml.safe_load(FILE)
    assert not list(validator.iter_errors(data))
    single = {"events": data["events"], **data["policies"][0]}
    assert not list(validator.iter_errors(single))
    fields = data["events"]["elevator.fault"]["fields"]
    for bad in ("bolean", {"type": "bolean"}, {"type": "enum"},
                {"type": "id", "values": ["a"]}, {"type": "id", "requird": False}):
        fields["severity"] = bad
        assert list(validator.iter_errors(data)), bad
    fields["severity"] = "id"
    data["events"]["attendance.clock_in"] = {}
    assert list(validator.iter_errors(data))


def test_the_wire_schema_includes_declared_types() -> None:
    loads_policy(FILE)
    schema = policykit._schema.wire_schema("event")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(validator.iter_errors(LOG[0]))
    assert list(validator.iter_errors({**LOG[0], "severity": "huge"}))


# ------------------------------------------------------------------------------- docs


def test_the_documented_declaration_loads_and_audits(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "custom-events.md").read_text("utf-8")
    section = text.split("## Declaring event types in a policy file")[1]
    policy_yaml = section.split("```yaml\n")[1].split("```")[0]
    log = section.split("```json\n")[1].split("```")[0]
    policy = _write(tmp_path, "elevator.yaml", policy_yaml)
    events = _write(tmp_path, "faults.jsonl", log)
    assert not list(jsonschema.Draft7Validator(policy_schema()).iter_errors(
        yaml.safe_load(policy_yaml)))
    result = CliRunner().invoke(cli, ["audit", str(events), "-p", str(policy),
                                      "--until", "2026-03-03"], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert [json.loads(line)["subject"]["id"] for line in result.stdout.splitlines()] == ["E2"]


def test_the_cli_schema_includes_the_types_a_policy_file_declares(tmp_path: Path) -> None:
    policy = _write(tmp_path, "elevator.yaml", FILE)
    without = CliRunner().invoke(cli, ["schema", "event"], catch_exceptions=False)
    assert "elevator.fault" not in without.stdout
    result = CliRunner().invoke(cli, ["schema", "event", "-p", str(policy)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    validator = jsonschema.Draft202012Validator(json.loads(result.stdout))
    assert not list(validator.iter_errors(LOG[0]))
    assert list(validator.iter_errors({**LOG[0], "severity": "huge"}))
    bad = _write(tmp_path, "bad.yaml", FILE.replace("fault_id: id", "fault_id: bolean", 1))
    result = CliRunner().invoke(cli, ["schema", "-p", str(bad)])
    assert result.exit_code == 2 and "did you mean 'bool'" in result.output


def test_the_cli_event_reference_includes_the_types_a_policy_file_declares(
        tmp_path: Path) -> None:
    policy = _write(tmp_path, "elevator.yaml", FILE)
    without = CliRunner().invoke(cli, ["events", "elevator.fault"])
    assert without.exit_code == 2 and "unknown event type 'elevator.fault'" in without.output
    result = CliRunner().invoke(cli, ["events", "-p", str(policy), "elevator.fault"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "### `elevator.fault`" in result.stdout and "A lift reported out of service." \
        in result.stdout
    assert f"Read by: `elevator-response` R1 (pack {policy})" in result.stdout
    assert f"Declared in `{policy}`." in result.stdout
    bad = _write(tmp_path, "bad.yaml", FILE.replace("fault_id: id", "fault_id: bolean", 1))
    result = CliRunner().invoke(cli, ["events", "-p", str(bad)])
    assert result.exit_code == 2 and "did you mean 'bool'" in result.output


def test_class_names_stay_unique_and_events_pickle() -> None:
    # "clock.in" would be ClockIn, the built-in model's name; "clock_in2" its numbered one.
    loads_policy("events: {clock.in: {fields: {x: id}}, clock_in2: {}}\n"
                 "policies: [{use: lateness-deduction}]")
    models = registered_event_types()
    names = {m.__name__ for m in models.values()}
    assert len(names) == 2 and "ClockIn" not in names
    for record in ({"id": "a", "type": "clock.in", "at": "2026-03-02T08:00:00Z", "x": "X"},
                   {"id": "b", "type": "clock_in2", "at": "2026-03-02T08:00:00Z"}):
        event = parse_event(record)
        assert pickle.loads(pickle.dumps(event)) == event


def test_the_testing_strategies_generate_declared_events() -> None:
    from hypothesis import given, settings

    from policykit.testing import events as event_strategy

    _declare({"a": "id", "b": "text", "c": "bool", "d": "int", "e": "decimal",
              "f": "datetime", "g": "date", "h": "ids",
              "i": {"type": "enum", "values": ["x", "y"], "required": False}})
    seen: list[EventBase] = []

    @settings(max_examples=25, deadline=None, database=None)
    @given(event=event_strategy("acme.thing"))
    def check(event: EventBase) -> None:
        assert type(event) is EVENT_TYPES["acme.thing"]
        assert parse_event(event.model_dump_json()) == event  # generated events are valid
        seen.append(event)

    check()
    assert len(seen) == 25


def test_a_file_of_declarations_alone_is_included_or_combined(tmp_path: Path) -> None:
    _write(tmp_path, "elevator-events.yaml", EVENTS)
    policies = _write(tmp_path, "policies.yaml", "include: [elevator-events.yaml]\n" + POLICIES)
    assert _seen(audit(LOG, policies, UNTIL).decisions) == EXPECTED
    unregister_event_types()
    # The command line's repeated --policy: the declarations first, then the policies.
    alone = _write(tmp_path, "alone.yaml", POLICIES)
    log = _write(tmp_path, "log.jsonl", "".join(json.dumps(e) + "\n" for e in LOG))
    result = CliRunner().invoke(cli, ["audit", str(log), "-p",
                                      str(tmp_path / "elevator-events.yaml"), "-p",
                                      str(alone), "--until", UNTIL], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert len(result.stdout.splitlines()) == len(EXPECTED)
    assert not list(jsonschema.Draft7Validator(policy_schema()).iter_errors(
        yaml.safe_load(EVENTS)))
    with pytest.raises(PolicyFileError, match="at least one policy"):
        loads_policy("events: {}")
