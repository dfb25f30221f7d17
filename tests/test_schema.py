"""The JSON Schemas: `policykit schema` is one valid schema of the wire format, and
`policykit schema policy` a draft-07 schema every policy file of the pack and the docs passes,
while typos and wrong types fail it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from policykit import standard_pack
from policykit.cli import cli

ROOT = Path(__file__).resolve().parent.parent
POLICY_FILES = sorted((ROOT / "policykit" / "pack").glob("*.yaml")) + [
    # Every policy of the examples, the elevator plugin's pack included (its policy.yaml
    # names `pack: elevator`, installed only in tests/test_elevator_example.py's venv).
    p for p in sorted((ROOT / "docs" / "examples").rglob("*.yaml"))
    if "rules" in (yaml.safe_load(p.read_text(encoding="utf-8")) or {})]


def _schema(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["schema", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = _schema("policy")
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def _plain(text: str) -> Any:
    """YAML as an editor sees it: dates and times are strings."""
    return json.loads(json.dumps(yaml.safe_load(text), default=str))


def _errors(validator: jsonschema.Draft7Validator, data: Any) -> list[str]:
    return [e.message for e in validator.iter_errors(data)]


def test_the_wire_schema_is_one_valid_schema() -> None:
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert {"Event", "Decision"} <= set(schema["$defs"])
    v = jsonschema.Draft202012Validator(schema)
    event = {"id": "e1", "type": "attendance.clock_in", "at": "2026-03-02T08:41:00+08:00",
             "employee_id": "E1"}
    assert not list(v.iter_errors(event))
    assert list(v.iter_errors({**event, "type": "attendance.clock_inn"}))
    assert list(v.iter_errors({"id": 3}))
    # --part and the positional PART pick one half, itself a whole schema.
    for part in ("event", "decision"):
        half = _schema(part)
        assert half == _schema("--part", part)
        jsonschema.Draft202012Validator.check_schema(half)
    assert not list(jsonschema.Draft202012Validator(_schema("event")).iter_errors(event))


def test_disagreeing_parts_are_refused() -> None:
    result = CliRunner().invoke(cli, ["schema", "policy", "--part", "event"])
    assert result.exit_code == 2 and "disagree" in result.output


def test_all_policy_files_validate(validator: jsonschema.Draft7Validator) -> None:
    assert len(POLICY_FILES) >= len(standard_pack()) + 4
    assert "elevator-response.yaml" in {p.name for p in POLICY_FILES}
    for path in POLICY_FILES:
        errors = _errors(validator, _plain(path.read_text(encoding="utf-8")))
        assert not errors, f"{path.name}: {errors[:3]}"


GOOD = """
id: night-patrol
title: Night patrols
clause: site rules §3
parameters: {within: PT2H}
rules:
  - shape: deadline
    id: R1
    trigger: {type: contact.received}
    key: request_id
    within: $within
    fulfil: [{type: request.resolved}]
    subject: {kind: request, field: request_id}
"""


@pytest.mark.parametrize(("old", "new", "what"), [
    ("shape: deadline", "shape: deadlin", "a typo'd shape"),
    ("key: request_id", "kee: request_id", "an unknown rule key"),
    ("title: Night patrols", "title: Night patrols\ncolor: red", "an unknown policy key"),
    ("{kind: request, field: request_id}", "{kind: request, field: [1]}", "a list for text"),
    ("trigger: {type: contact.received}", "trigger: 5", "a number for an event matcher"),
    ("{kind: request,", "{kind: requests,", "a value outside the enum"),
    ("within: $within", "within: 2", "a number for a duration"),
])
def test_mistakes_fail_validation(validator: jsonschema.Draft7Validator, old: str, new: str,
                                  what: str) -> None:
    assert not _errors(validator, _plain(GOOD))
    bad = GOOD.replace(old, new)
    assert bad != GOOD
    assert _errors(validator, _plain(bad)), what


@pytest.mark.parametrize(("text", "ok"), [
    ("pack: standard\nexclude: [site-access]", True),
    ("pack: standard\nexclude: [site-acess]", False),
    ("exclude: [site-access]\npolicies: [{use: site-access}]", False),
    ("pack: standards", False),
    ("policies:\n  - use: lateness-deduction\n    parameters: {tier_threshold: 4}", True),
    ("policies:\n  - use: lateness-deduction\n    parameters: {tier_treshold: 4}", False),
    ("policies:\n  - use: lateness-deductio", False),
    ("policies:\n  - use: lateness-deduction\n    calendar: {timezone: 5}", False),
    ("calendar: {timezone: Europe/Berlin}\npolicies: [{use: site-access}]", True),
])
def test_policy_sets(validator: jsonschema.Draft7Validator, text: str, ok: bool) -> None:
    assert (not _errors(validator, _plain(text))) is ok, _errors(validator, _plain(text))


def test_field_docs_reach_the_schema() -> None:
    defs = _schema("policy")["definitions"]
    assert "parameter" in defs["ParameterRef"]["description"]
    # An attribute docstring of a rule model is the property's description.
    assert "case" in json.dumps(defs["Match"]["properties"]["key"]["description"])


# --- load-time errors: what the schema cannot say, the loader says precisely ----------------

RULE = ("id: x-y\ntitle: t\nclause: c\nparameters: {k: PT1H}\nrules:\n"
        "  - {shape: forbidden, id: R1, event: {type: complaint.benefit_received},"
        " subject: {kind: employee, field: employee_id}}\n")


@pytest.mark.parametrize(("old", "new", "path", "expected", "hint"), [
    ("subject: {kind", "sho: [a], subject: {kind", "rules[0].sho",
     "a field of the forbidden shape: ", "show"),
    ("event: {type: complaint.benefit_received}",
     "event: {type: complaint.benefit_received, wher: {}}", "rules[0].event.wher",
     "a field of Match (in the forbidden shape): type, where, key", "where"),
])
def test_an_unknown_key_lists_the_allowed_ones(old: str, new: str, path: str, expected: str,
                                               hint: str) -> None:
    from policykit import PolicyFileError, loads_policy

    with pytest.raises(PolicyFileError) as info:
        loads_policy(RULE.replace(old, new))
    err = info.value
    assert err.path == path and expected in err.expected and err.suggestion == hint
    assert "Extra inputs" not in str(err)
    if path == "rules[0].sho":
        assert "enabled_if" in err.expected and "subject" in err.expected


@pytest.mark.parametrize(("text", "path", "value"), [
    # A check of the whole rule refused a value that came from a parameter.
    ("policies:\n  - id: x-y\n    title: t\n    clause: c\n    parameters: {k: four}\n"
     "    rules:\n      - {shape: ladder, id: R1, counts: R0, window: $k}\n",
     "policies[0].parameters.k", "four"),
    # ...or was written in the rule itself.
    ("policies:\n  - id: x-y\n    title: t\n    clause: c\n"
     "    rules:\n      - {shape: ladder, id: R1, counts: R0, window: four}\n",
     "policies[0].rules[0].window", "four"),
    # A standard policy's parameter, refused inside a nested part of a rule.
    ("policies:\n  - use: lateness-deduction\n    parameters: {grace: soon}\n",
     "policies[0].parameters.grace", "soon"),
    ("policies:\n  - use: lateness-deduction\n    parameters: {tier_threshold: four}\n",
     "policies[0].parameters.tier_threshold", "four"),
])
def test_a_bad_value_names_its_parameter_or_field(text: str, path: str, value: str) -> None:
    from policykit import PolicyFileError, loads_policy

    with pytest.raises(PolicyFileError) as info:
        loads_policy(text)
    err = info.value
    assert (err.path, err.value) == (path, value)
    assert "spec:" not in err.expected  # no internal argument names


def test_a_union_member_name_never_shows_in_the_path() -> None:
    from policykit import PolicyFileError, loads_policy

    gap = ("id: x-y\ntitle: t\nclause: c\nrules:\n  - {shape: gap, id: R1, event: "
           "{type: duty.check}, max_gap: PT1H, subject: SUBJECT}\n")
    with pytest.raises(PolicyFileError) as info:
        loads_policy(gap.replace("SUBJECT", "{kind: department, field: employee_id, idd: x}"))
    assert info.value.path == "rules[0].subject.idd"
    assert info.value.expected == "a field of SubjectRef (in the gap shape): kind, field"
    with pytest.raises(PolicyFileError) as info:
        loads_policy(gap.replace("SUBJECT", "{kind: department}"))
    assert (info.value.path, info.value.value) == ("rules[0].subject.field", "<missing>")


@pytest.mark.parametrize("mistake", ["shape", "key", "value type"])
def test_every_policy_file_fails_with_a_mistake(validator: jsonschema.Draft7Validator,
                                                mistake: str) -> None:
    # Each file's every rule: a misspelt shape, a misspelt key, a title that is a number.
    for path in POLICY_FILES:
        data = _plain(path.read_text(encoding="utf-8"))
        for i, rule in enumerate(data["rules"]):
            bad = {**rule, "shape": rule["shape"] + "s"} if mistake == "shape" else \
                {**rule, "titel": "x"} if mistake == "key" else {**rule, "title": 5}
            broken = {**data, "rules": [*data["rules"][:i], bad, *data["rules"][i + 1:]]}
            assert _errors(validator, broken), f"{path.name} rule {i}: {mistake} accepted"
