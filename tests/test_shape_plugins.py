"""Rule shapes as plugins: the shape of docs/shape-authoring.md (its very code, run here)
registered and used in a policy file, on both backends, in a distributed audit, in
why_not, in the policy schema and in the shape reference; and the registry's errors."""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import tempfile
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pytest
import yaml

import policykit
from policykit import Engine, PolicyFileError, RegistrationError, audit, loads_policy
from policykit._schema import policy_schema
from policykit.distributed import distributed_audit, plan
from policykit.engine._durable_adapter import durable_available
from policykit.models.parsing import parse_events
from policykit.rules import (
    SHAPES,
    EventBase,
    Match,
    PolicyInfo,
    RuleContext,
    RuleRuntime,
    RuleSpec,
    ShapeRegistrationError,
    Subject,
    register_shape,
    registered_shapes,
    unregister_shape,
)
from policykit.rules import _registry as registry

DOCS = Path(__file__).resolve().parents[1] / "docs"
GUIDE = (DOCS / "shape-authoring.md").read_text(encoding="utf-8")


def _block(lang: str) -> str:
    """The first ``lang`` code block of the guide."""
    found = re.search(rf"^```{lang}\n(.*?)^```", GUIDE, re.S | re.M)
    assert found is not None, f"no {lang} block in docs/shape-authoring.md"
    return found.group(1)


def _import_guide() -> types.ModuleType:
    """The guide's Python block as a module (it registers its shape when run). A file,
    not exec: the shape reference reads the fields' docstrings from the source."""
    folder = Path(tempfile.mkdtemp(prefix="shape_guide_"))
    path = folder / "shape_guide_example.py"
    path.write_text(_block("python"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("shape_guide_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def guide() -> Iterator[types.ModuleType]:
    module = _import_guide()
    try:
        yield module
    finally:
        unregister_shape()
        sys.modules.pop(module.__name__, None)


def _events() -> list[EventBase]:
    calls = [("E1", "2026-03-02T09:00"), ("E1", "2026-03-02T10:00"), ("E1", "2026-03-02T11:00"),
             ("E1", "2026-03-02T12:00"),  # the 3rd and 4th of a day: one decision, at the 3rd
             ("E2", "2026-03-02T09:00"), ("E2", "2026-03-02T23:30"),
             ("E2", "2026-03-03T00:30"),  # three, but over two local days: none
             ("E3", "2026-03-04T09:00"), ("E3", "2026-03-04T09:05"),
             ("E3", "2026-03-04T09:10"), ("E3", "2026-03-05T09:00"), ("E3", "2026-03-05T09:01"),
             ("E3", "2026-03-05T09:02"), ("E4", "2026-03-04T10:00")]
    records: list[dict[str, Any]] = [
        {"id": f"c{i}", "type": "staff.private_call", "at": at + ":00+08:00",
         "employee_id": who, "duration_s": 60} for i, (who, at) in enumerate(calls)]
    records.append({"id": "x1", "type": "attendance.clock_in", "at": "2026-03-02T08:00:00+08:00",
                    "employee_id": "E1"})
    return [*parse_events(records)]


def test_the_guides_shape_decides_alike_on_both_backends_and_in_shards(
        guide: types.ModuleType) -> None:
    pset = loads_policy(_block("yaml"))
    events = _events()
    native = Engine(pset).evaluate(events)
    assert [(d.subject.id, d.at.isoformat(), d.evidence, d.details["count"]) for d in native] \
        == [("E1", "2026-03-02T11:00:00+08:00", ("c2",), 3),
            ("E3", "2026-03-04T09:10:00+08:00", ("c9",), 3),
            ("E3", "2026-03-05T09:02:00+08:00", ("c12",), 3)]
    assert native[0].message == "E1: 3 staff.private_call on 2026-03-02, more than 2 a day"
    assert native[0].message_zh.startswith("E1：2026-03-02 staff.private_call 3 次")
    # The shape's partition splits the rule by employee (the default would run it whole).
    assert {s.why for s in plan(pset, partitions=3)} == {"by employee_id"}
    assert distributed_audit(events, pset, partitions=3) == native
    if durable_available()[0]:
        assert Engine(pset, backend="durable").evaluate(events) == native
        assert distributed_audit(events, pset, partitions=3, backend="durable") == native


def test_the_guides_shape_state_survives_a_snapshot(guide: types.ModuleType) -> None:
    pset = loads_policy(_block("yaml"))
    events = sorted(_events(), key=lambda e: (e.at, e.id))
    whole = Engine(pset).evaluate(events)
    first = Engine(pset).session()
    out = first.feed_many(events[:3])  # E1's first two calls of the day and E2's first
    second = Engine(pset).restore(first.snapshot())
    out += second.feed_many(events[3:])
    assert out == whole and len(out) == 3


def test_why_not_explains_a_registered_shape(guide: types.ModuleType) -> None:
    report = audit(_events(), loads_policy(_block("yaml")))
    text = report.why_not("employee:E2", "private-calls", "R1").render()
    assert "(daily_limit: At most two private calls a day) for employee:E2" in text
    assert "It did not fire" in text and "events seen: 3 staff.private_call" in text
    fired = report.why_not("E1", "private-calls", "R1").render()
    assert "It did fire: 1 violation decision(s)" in fired


def test_the_loader_schema_and_reference_see_the_registered_shape(
        guide: types.ModuleType) -> None:
    text = _block("yaml")
    with pytest.raises(PolicyFileError, match="did you mean 'daily_limit'"):
        loads_policy(text.replace("shape: daily_limit", "shape: daily_limt"))
    with pytest.raises(PolicyFileError, match=r"severty.*a field of.*did you mean 'severity'"):
        loads_policy(text.replace("limit: 2", "limit: 2\n    severty: high"))
    with pytest.raises(PolicyFileError, match="has no field 'employe_id'"):
        loads_policy(text.replace("field: employee_id", "field: employe_id"))

    schema = policy_schema()
    assert "daily_limit" in schema["definitions"]["Rule"]["properties"]["shape"]["enum"]
    validator = jsonschema.Draft7Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(text))) == []
    bad = yaml.safe_load(text.replace("limit: 2", "limit: two"))
    assert list(validator.iter_errors(bad))

    gen_shapes = importlib.import_module("gen_shapes")  # docs/, on pytest's pythonpath
    pages = {p.name: t for p, t in gen_shapes.pages().items()}
    assert "# The `daily_limit` shape" in pages["daily_limit.md"]
    assert "| `limit` | integer ≥ 0 ≤ 1000 | required | How many a day are allowed. |" \
        in pages["daily_limit.md"]
    assert "[`daily_limit`](daily_limit.md)" in pages["index.md"]

    unregister_shape("daily_limit")
    assert "daily_limit" not in SHAPES
    assert "daily_limit" not in policy_schema()["definitions"]["Rule"]["properties"]["shape"][
        "enum"]
    with pytest.raises(PolicyFileError, match=re.escape("rules[0].shape")):
        loads_policy(text)


class _Runtime(RuleRuntime):
    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        pass


class _Counted(RuleSpec):
    shape: Literal["counted"] = "counted"
    event: Match

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _Runtime(self, policy)


def test_register_shape_refuses_what_is_no_new_shape() -> None:
    class Deadline(_Counted):
        shape: Literal["deadline"] = "deadline"  # type: ignore[assignment]

    class Loose(_Counted):
        shape: str = "loose"  # type: ignore[assignment]

    class NoRuntime(RuleSpec):
        shape: Literal["abstract"] = "abstract"

    class Other(_Counted):
        pass

    cases: list[tuple[Any, str]] = [
        (dict, "got type, expected a subclass of policykit.rules.RuleSpec"),
        ("counted", "got str, expected a subclass"),
        (RuleSpec, "the base itself is no shape"),
        (Deadline, "'deadline' is a built-in shape (DeadlineSpec); choose another name"),
        (Loose, "expected a Literal of one string"),
        (NoRuntime, "does not implement runtime"),
    ]
    for cls, expected in cases:
        with pytest.raises(ShapeRegistrationError, match=re.escape(expected)) as caught:
            register_shape(cls)
        assert isinstance(caught.value, RegistrationError)
        assert str(caught.value).startswith("register_shape: ")
    assert registered_shapes() == {}
    try:
        assert register_shape(_Counted) is _Counted
        register_shape(_Counted)  # again: nothing happens
        assert registered_shapes() == {"counted": _Counted}
        with pytest.raises(ShapeRegistrationError, match="already registered by"):
            register_shape(Other)
        with pytest.raises(ShapeRegistrationError, match=r"^unregister_shape: countd: .*did "
                           r"you mean 'counted'"):
            unregister_shape("countd")
        with pytest.raises(ShapeRegistrationError, match="built-in shape cannot be"):
            unregister_shape("deadline")
        assert policykit.register_shape is register_shape
    finally:
        unregister_shape()
    assert "counted" not in SHAPES and set(SHAPES) == {
        "cap", "deadline", "forbidden", "gap", "ladder", "precondition", "rate", "recurrence",
        "tariff"}


class _EntryPoint:
    def __init__(self, name: str, value: object) -> None:
        self.name, self.value, self._value = name, f"plugin:{name}", value

    def load(self) -> object:
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


def test_installed_packages_register_shapes_through_entry_points(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``policykit.shapes`` group: name -> RuleSpec subclass; a broken plugin is skipped
    with a warning naming it, never stopping the others or ``import policykit``."""
    module = _import_guide()
    spec_cls = module.DailyLimitSpec
    unregister_shape()  # the guide registered it; the entry point brings it back
    found = {"policykit.shapes": [
        _EntryPoint("daily_limit", spec_cls),
        _EntryPoint("broken", ImportError("no module named 'shapes_plugin'")),
        _EntryPoint("misnamed", _Counted),
        _EntryPoint("not-a-shape", dict),
    ]}
    monkeypatch.setattr(registry, "_entry_points", lambda group: found.get(group, []))
    try:
        with pytest.warns(RuntimeWarning) as caught:
            added = registry.load_shape_plugins()
        assert added == ["daily_limit"]
        assert registered_shapes() == {"daily_limit": spec_cls}
        said = [str(w.message) for w in caught]
        assert len(said) == 3
        assert "'broken'" in said[0] and "ImportError" in said[0]
        assert "'misnamed'" in said[1] and "shape is 'counted'" in said[1]
        assert "'not-a-shape'" in said[2]
        pset = loads_policy(_block("yaml"))
        assert len(Engine(pset).evaluate(_events())) == 3
    finally:
        unregister_shape()
        sys.modules.pop(module.__name__, None)


def test_the_real_entry_point_group_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    asked: list[str] = []

    def fake(**kw: Any) -> list[Any]:
        asked.append(kw["group"])
        return []

    monkeypatch.setattr(md, "entry_points", fake)
    assert registry.load_shape_plugins() == []
    assert asked == ["policykit.shapes"]


class _Spy(RuleSpec):
    shape: Literal["spy"] = "spy"

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _Runtime(self, policy)


def test_a_shape_without_overrides_gets_safe_defaults() -> None:
    spec = _Spy(id="S1")
    assert spec.state_types() == frozenset()
    assert spec.partition() == "shape 'spy' has no partitioning rule (runs whole)"
    assert spec.reads_directory() is False
    assert spec.why_not_strategy() == "generic"


class _SeesAll(RuleRuntime):
    """Reports every event it is handed, matching or not (as a population tracker must
    see a profile that stops matching)."""

    def on_event(self, event: EventBase, ctx: RuleContext) -> None:
        ctx.emit(self.spec, "seen", kind="kpi", subject=Subject(kind="employee", id="all"),
                 at=event.at, evidence=[event.id], key=event.id)


class _Guards(RuleSpec):
    shape: Literal["guards"] = "guards"
    event: Match

    def event_types(self) -> frozenset[str]:
        return frozenset(self.event.type)

    def state_types(self) -> frozenset[str]:
        return frozenset(self.event.type)

    def runtime(self, policy: PolicyInfo) -> RuleRuntime:
        return _SeesAll(self, policy)


class _GuardsFiltered(_Guards):
    shape: Literal["guards_filtered"] = "guards_filtered"  # type: ignore[assignment]

    def state_types(self) -> frozenset[str]:
        return frozenset()


@pytest.mark.skipif(not durable_available()[0], reason="durable_rules unavailable")
def test_state_types_reach_the_runtime_on_the_durable_backend() -> None:
    """The durable backend hands a rule only the events passing one of its matchers, plus
    the types its spec names in state_types (the question it used to answer by a model's
    class name)."""
    profiles = parse_events([
        {"id": f"p{i}", "type": "employee.profile", "at": f"2026-03-0{i + 1}T09:00:00+08:00",
         "employee_id": "E1", "role": role, "base_salary": "6000.00"}
        for i, role in enumerate(["guard", "customer_service", "guard"])])
    register_shape(_Guards)
    register_shape(_GuardsFiltered)
    try:
        for shape, seen in (("guards", ["p0", "p1", "p2"]), ("guards_filtered", ["p0", "p2"])):
            pset = loads_policy(
                f"id: guards\nversion: '1'\nclause: c\ntitle: t\nrules:\n  - shape: {shape}\n"
                "    id: R1\n    event: {type: employee.profile, where: {role: guard}}\n")
            durable = Engine(pset, backend="durable").evaluate(profiles)
            assert [d.evidence[0] for d in durable] == seen
        assert len(Engine(pset).evaluate(profiles)) == 3  # native hands the runtime all
    finally:
        unregister_shape()
