"""Field paths in policy files read the event's declared data and nothing else: checked at
load against the event models (nested models by their declared fields, ``meta`` by key),
and read at run time without attribute access beyond declared fields."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from _policies import check, forbidden, load
from helpers import ev, t
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit import PolicyFileError, parse_events
from policykit.audit import audit
from policykit.rules._base import event_value, field_getter

SECRET_PATH = "details.__class__.__init__.__globals__.sys.modules.os.environ.PK_SECRET"


def notified(**kw: Any) -> dict[str, Any]:
    return ev("incident.notified", "2026-03-02 10:00", incident_id="I1", employee_id="E1",
              recipients=["manager"], details={"plan": "reboot"}, **kw)


def incident_rule(**rule: Any) -> dict[str, Any]:
    return forbidden(**{"event": {"type": "incident.notified"}, **rule})


def test_a_show_path_into_python_internals_is_refused_at_load(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError) as err:
        load(incident_rule(show=[SECRET_PATH]))
    assert "__class__" in str(err.value) and "rules[0]" in err.value.path
    assert "show: event type incident.notified" in str(err.value)
    code, out = check(tmp_path, {"id": "hostile", "title": "x", "clause": "§1",
                                 "rules": [incident_rule(show=[SECRET_PATH])]})
    assert code == 2 and "__class__" in out


@pytest.mark.parametrize(("place", "path", "said"), [
    ("show", "details.nope", "its fields: place, plan, symptoms, time"),
    ("show", "details.pln", "did you mean 'plan'"),
    ("show", "employee_id.upper", "has no fields"),
    ("show", "at.year", "has no fields"),
    ("show", "meta._private", "private"),
    ("show", "meta..x", "empty"),
    ("show", "model_dump", "has no field"),
    ("where", "details.__dict__", "private"),
    ("subject", "details.__class__", "private"),
])
def test_bad_paths_name_the_path_and_the_nearest_field(place: str, path: str,
                                                       said: str) -> None:
    rule: dict[str, Any] = {"show": [path]} if place == "show" else \
        {"event": {"type": "incident.notified", "where": {path: "x"}}} if place == "where" \
        else {"subject": {"kind": "employee", "field": path}}
    with pytest.raises(PolicyFileError, match=said) as err:
        load(incident_rule(**rule))
    assert path in str(err.value)


def test_key_paths_of_other_shapes_are_checked_too() -> None:
    deadline = {"shape": "deadline", "id": "D1", "trigger": {"type": "incident.notified"},
                "key": "details.__class__", "within": "PT1H",
                "fulfil": [{"type": "incident.resolved"}],
                "subject": {"kind": "employee", "field": "employee_id"}}
    with pytest.raises(PolicyFileError, match="private"):
        load(deadline)
    tariff = {"shape": "tariff", "id": "T1", "decisions_of": ["R1"], "basis": "fixed",
              "amount_by": {"field": "details.__class__", "values": {"a": "1"}}}
    with pytest.raises(PolicyFileError, match="private"):
        load(forbidden(), tariff)


def test_declared_nested_fields_and_meta_keys_still_load_and_read() -> None:
    (spec,) = load(incident_rule(show=["details.plan", "meta.ticket.no"])).get("hostile").specs
    assert spec.show == ("details.plan", "meta.ticket.no")  # type: ignore[attr-defined]
    (event,) = parse_events([notified(meta={"ticket": {"no": 7}, "__class__": "x"})])
    assert event_value(event, "details.plan") == "reboot"
    assert event_value(event, "meta.ticket.no") == 7


def test_run_time_reads_never_go_beyond_declared_fields() -> None:
    (event,) = parse_events([notified(meta={"__class__": "x", "k": "v"})])
    for path in (SECRET_PATH, "details.__class__", "__class__", "model_dump", "json",
                 "meta.__class__", "meta.k.upper", "id.__len__", "at.year", "details.copy",
                 "_abc", ""):
        assert event_value(event, path) is None, path
        assert field_getter(path)(event) is None, path
    assert event_value(event, "meta.k") == "v"
    assert field_getter("employee_id")(event) == "E1"


def test_a_secret_in_the_environment_never_reaches_a_decision(monkeypatch: Any) -> None:
    monkeypatch.setenv("PK_SECRET", "hunter2")
    assert os.environ["PK_SECRET"] == "hunter2"
    pol = load(incident_rule(show=["details.plan"]))
    report = audit([notified()], pol, until=t("2026-03-03 00:00"))
    assert len(report.decisions) == 1
    assert "hunter2" not in report.decisions[0].model_dump_json()


# --- random paths ---------------------------------------------------------------------

_parts = st.sampled_from(["details", "plan", "meta", "employee_id", "__class__", "__init__",
                          "_x", "", "model_dump", "json", "at", "year", "environ", "x",
                          "recipients", "0", "__globals__"])
paths = st.lists(_parts, min_size=1, max_size=5).map(".".join) | st.text(max_size=12)


@settings(max_examples=200, deadline=None, database=None)
@given(paths)
def test_any_path_loads_cleanly_or_is_refused_with_a_policy_file_error(path: str) -> None:
    try:
        pol = load(incident_rule(show=[path]))
    except PolicyFileError:
        return
    parts = path.split(".")
    assert all(p and not p.startswith("_") for p in parts)
    assert parts[0] in {"details", "meta", "employee_id", "at", "recipients", "id", "type",
                        "actor", "incident_id"}
    (event,) = parse_events([notified(meta={"x": {"year": 1}})])
    value = event_value(event, path)
    assert value is None or isinstance(value, str | int | list | dict | tuple) \
        or type(value).__module__.startswith(("policykit", "datetime"))
    report = audit([notified()], pol, until=t("2026-03-03 00:00"))
    assert len(report.decisions) == 1
