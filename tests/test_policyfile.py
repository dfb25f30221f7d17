"""Policy files: the same models from YAML, TOML and JSON, and errors that say where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from policykit import ParameterError, Policy, PolicyFileError, load_policy, loads_policy

YAML = """\
policies:
  - id: my-policy
    title: Handover
    clause: "篇二 §二"
    parameters: {handover_within: PT1H}
    rules:
      - shape: deadline
        id: R3
        trigger: {type: contact.received, where: {in_remit: false}}
        key: request_id
        within: $handover_within
        subject: {kind: employee, field: employee_id}
        fulfil: [{type: request.handed_over}]
"""

POLICY = {
    "id": "my-policy", "title": "Handover", "clause": "篇二 §二",
    "parameters": {"handover_within": "PT1H"},
    "rules": [{"shape": "deadline", "id": "R3",
               "trigger": {"type": "contact.received", "where": {"in_remit": False}},
               "key": "request_id", "within": "$handover_within",
               "subject": {"kind": "employee", "field": "employee_id"},
               "fulfil": [{"type": "request.handed_over"}]}],
}

TOML = """\
[[policies]]
id = "my-policy"
title = "Handover"
clause = "篇二 §二"
parameters = { handover_within = "PT1H" }

[[policies.rules]]
shape = "deadline"
id = "R3"
key = "request_id"
within = "$handover_within"
trigger = { type = "contact.received", where = { in_remit = false } }
subject = { kind = "employee", field = "employee_id" }
fulfil = [{ type = "request.handed_over" }]
"""


def test_yaml_toml_and_json_validate_into_the_same_policy(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text(YAML, encoding="utf-8")
    (tmp_path / "p.toml").write_text(TOML, encoding="utf-8")
    (tmp_path / "p.json").write_text(json.dumps({"policies": [POLICY]}), encoding="utf-8")
    loaded = [load_policy(tmp_path / f"p.{ext}") for ext in ("yaml", "toml", "json")]
    policies = [s.get("my-policy") for s in loaded]
    assert policies[0] == policies[1] == policies[2] == Policy.model_validate(POLICY)
    assert policies[0].specs[0].within == "PT1H"  # type: ignore[attr-defined]


def test_a_single_policy_file_is_accepted() -> None:
    assert loads_policy(json.dumps(POLICY), "json").ids == ["my-policy"]


@pytest.mark.parametrize(("old", "new", "path", "line", "hint"), [
    ("within: $handover_within", "within: PT1X", "policies[0].rules[0].within", 11, None),
    ("within: $handover_within", "within: $handover_withn", "policies[0].rules[0].within", 11,
     "$handover_within"),
    ("request.handed_over", "request.handed_ovr", "policies[0].rules[0].fulfil[0]", 13, None),
    ("title: Handover", "titel: Handover", "policies[0].titel", 3, "title"),
    ("policies:", "polices:", "polices", 1, "policies"),
    ("shape: deadline", "shape: deadlin", "policies[0].rules[0].shape", 7, "deadline"),
])
def test_errors_name_file_path_line_value_and_nearest_name(
        old: str, new: str, path: str, line: int, hint: str | None) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy(YAML.replace(old, new), source="team.yaml")
    e = err.value
    assert e.source == "team.yaml"
    assert e.path == path
    assert e.line == line
    assert e.suggestion == hint
    assert str(e).startswith(f"team.yaml:{line}: {path}")


def test_misspelt_event_field_gets_a_hint() -> None:
    with pytest.raises(PolicyFileError, match="did you mean 'request_id'"):
        loads_policy(YAML.replace("key: request_id", "key: request_idd"))


def test_yaml_tags_that_build_python_objects_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    text = f"!!python/object/apply:os.system ['touch {marker}']\n"
    with pytest.raises(PolicyFileError, match="valid YAML"):
        loads_policy(text)
    assert not marker.exists()


def test_syntax_errors_carry_the_line() -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy('{"policies": [\n  {"id": 1,\n}', "json")
    assert err.value.line == 3


def test_unreadable_and_unknown_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="readable"):
        load_policy(tmp_path / "missing.yaml")
    (tmp_path / "p.ini").write_text("x", encoding="utf-8")
    with pytest.raises(PolicyFileError, match=r"\.yaml"):
        load_policy(tmp_path / "p.ini")


def test_parameters_can_be_changed_and_unknown_ones_are_refused() -> None:
    policy = Policy.model_validate(POLICY)
    assert policy.with_parameters(handover_within="PT2H").specs[0].within == "PT2H"  # type: ignore[attr-defined]
    with pytest.raises(ParameterError, match="did you mean 'handover_within'"):
        policy.with_parameters(handover_withn="PT2H")
    with pytest.raises(PolicyFileError, match="duration"):
        policy.with_parameters(handover_within="soon")


def test_calendar_in_the_file_applies_to_its_policies() -> None:
    text = "calendar: {timezone: Europe/Berlin}\n" + YAML
    policy = loads_policy(text).get("my-policy")
    assert policy.calendar.timezone == "Europe/Berlin"
    with pytest.raises(PolicyFileError) as err:
        loads_policy("calendar: {timezone: Europe/Berln}\n" + YAML)
    assert err.value.path.startswith("calendar")
    assert "Europe/Berlin" in str(err.value)


def test_enabled_if_chooses_between_readings_and_checks_its_parameter() -> None:
    rule = dict(POLICY["rules"][0])  # type: ignore[index]
    data = {**POLICY, "parameters": {"handover_within": "PT1H", "reading": "a"},
            "rules": [{**rule, "enabled_if": {"reading": "a"}},
                      {**rule, "within": "PT2H", "enabled_if": {"reading": ["b", "c"]}}]}
    policy = Policy.model_validate(data)
    assert [s.within for s in policy.specs] == ["PT1H"]  # type: ignore[attr-defined]
    assert [s.within for s in policy.with_parameters(reading="c").specs] == ["PT2H"]  # type: ignore[attr-defined]
    bad = {**data, "rules": [{**rule, "enabled_if": {"readng": "a"}}]}
    with pytest.raises(PolicyFileError, match="did you mean 'reading'"):
        Policy.model_validate(bad)


@pytest.mark.parametrize(("where", "expected"), [
    ('{in_remit: "yes"}', "'yes' is not a value of contact.received.in_remit "
     "(expected true or false)"),
    ("{in_remit: {eq: 1}}", "1 is not a value of contact.received.in_remit "
     "(expected true or false)"),
    ("{request_id: 5}", "5 is not a value of contact.received.request_id (expected a string)"),
    ("{channel: phonee}", "(expected one of 'phone', 'visit', 'email', 'other') "
     "(did you mean 'phone'?)"),
    ("{channel: {in: [phone, emial]}}", "'emial' is not a value of contact.received.channel"),
    ("{at: {eq: notadate}}", "(expected an ISO date-time string)"),
    ("{topic: {contains_all: [a]}}", "'contains_all' needs a list field"),
    # Text compared with an instant never equals it (ne always holds): refused, not silent.
    ('{at: {ne: "2024-01-01T00:00:00+08:00"}}', "'2024-01-01T00:00:00+08:00' is text, and "
     "contact.received.at holds a date-time: an event's value never equals text"),
])
def test_where_values_are_checked_against_the_field_type(where: str, expected: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy(YAML.replace("{in_remit: false}", where))
    assert "policies[0].rules[0]" in str(err.value)
    assert "rule R3: trigger.where." in str(err.value)
    assert expected in str(err.value)


@pytest.mark.parametrize("where", [
    "{in_remit: true}", "{channel: email}", "{channel: {not_in: [phone, visit]}}",
    "{meta.anything: 5}", "{at: {exists: true}}", "{topic: {contains: x}}",
    "{request_id: {exists: true}}",
])
def test_where_values_of_the_field_type_load(where: str) -> None:
    loads_policy(YAML.replace("{in_remit: false}", where))


def test_a_where_value_deep_in_a_rule_names_the_rule_and_its_path() -> None:
    text = YAML.replace("fulfil: [{type: request.handed_over}]",
                        'fulfil: [{type: request.handed_over, where: {registered: "yes"}}]')
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text)
    assert ("rule R3: fulfil[0].where.registered: 'yes' is not a value of "
            "request.handed_over.registered (expected true or false)") in str(err.value)


@pytest.mark.parametrize(("old", "new", "path", "hint"), [
    # A misspelt required key: the unknown key, not "key: Field required".
    ("key: request_id", "kye: request_id", "policies[0].rules[0].kye", "did you mean 'key'"),
    # An unknown key whose value is a parameter: the key is wrong, not the parameter.
    ("within: $handover_within", "withn: $handover_within", "policies[0].rules[0].withn",
     "did you mean 'within'"),
])
def test_a_misspelt_key_is_named_with_the_allowed_keys(old: str, new: str, path: str,
                                                       hint: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy(YAML.replace(old, new))
    assert err.value.path == path and err.value.value == new.split(":")[0]
    assert "a field of the deadline shape: shape, id" in str(err.value)
    assert hint in str(err.value)


@pytest.mark.parametrize(("text", "path", "value"), [
    # A scalar where a list parameter is expected: the parameter, not "parameters: got 'R1'".
    ("policies: [{use: lateness-deduction, parameters: {exempt_roles: guard}}]",
     "policies[0].parameters.exempt_roles", "guard"),
    (YAML.replace("where: {in_remit: false}", "where: {in_remit: {in: false}}"),
     "policies[0].rules[0].trigger.where.in_remit.in", False),
])
def test_a_bad_where_operand_is_named_at_its_path(text: str, path: str, value: object) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text)
    assert (err.value.path, err.value.value) == (path, value)
    assert "takes a list of plain values" in str(err.value)


@pytest.mark.parametrize(("text", "path", "hint"), [
    (YAML.replace("kind: employee", "kind: employe"), "policies[0].rules[0].subject.kind",
     "(did you mean 'employee'?)"),
    (YAML.replace("within: $handover_within", "within: $handover_within\n        basis: wal"),
     "policies[0].rules[0].basis", "(did you mean 'wall'?)"),
    # Through a pack policy's parameter: the parameter, with the nearest value still.
    ("policies: [{use: lateness-deduction, parameters: {tier_mode: al}}]",
     "policies[0].parameters.tier_mode", "(did you mean 'all'?)"),
])
def test_a_value_off_a_fixed_list_names_the_nearest(text: str, path: str, hint: str) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text)
    assert err.value.path == path and str(err.value).endswith(hint)


def test_a_refused_field_equal_to_the_rule_s_title_is_named_at_the_field() -> None:
    text = YAML.replace("key: request_id", "key: handover").replace(
        "id: R3", "id: R3\n        title: handover")
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text)
    assert err.value.path == "policies[0].rules[0].key" and err.value.value == "handover"
    assert err.value.line is not None
    assert text.splitlines()[err.value.line - 1].strip() == "key: handover"


@pytest.mark.parametrize("where", ["{in_remit: 1.5}", "{at: 2026-03-02}"])
def test_a_where_value_of_no_condition_type_lists_the_choices(where: str) -> None:
    # Not pydantic's name of the union's first member (where.in_remit.str).
    with pytest.raises(PolicyFileError) as err:
        loads_policy(YAML.replace("{in_remit: false}", where))
    assert err.value.path == "policies[0].rules[0].trigger.where." + where[1:].split(":")[0]
    assert err.value.expected == ("one of: text, a whole number, true or false, a mapping "
                                  "{operator: value}")
