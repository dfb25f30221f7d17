"""Policy files cannot make the engine do unbounded work: size, node and depth limits for
every format before the expensive parsing, a floor on repeating gaps and a cap on their
repeats, and bounds on the counts and decimals a policy gives."""

from __future__ import annotations

import json
import time
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _policies import check, forbidden, load
from helpers import ev, t
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit import Engine, PolicyFileError, loads_policy, standard_pack
from policykit.audit import audit
from policykit.policyfile import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_KEY_PARTS,
    MAX_NODES,
    _check_toml_shape,
)
from policykit.rules.gap import MAX_REPEATS


def big(fmt: str, items: int) -> str:
    if fmt == "json":
        return json.dumps({"id": "big", "title": "x", "clause": "x", "rules": [0] * items})
    if fmt == "toml":
        return 'id = "big"\nrules = [' + ",".join(["0"] * items) + "]\n"
    return "id: big\nrules: [" + ",".join(["0"] * items) + "]\n"


@pytest.mark.parametrize("fmt", ["json", "toml", "yaml"])
def test_too_many_nodes_are_refused_quickly_in_every_format(fmt: str) -> None:
    text = big(fmt, 200_000)  # under the size limit, ten times the node limit
    assert len(text.encode()) < MAX_BYTES
    start = time.perf_counter()
    with pytest.raises(PolicyFileError, match=f"at most {MAX_NODES}"):
        loads_policy(text, fmt)
    assert time.perf_counter() - start < 2.5


@pytest.mark.parametrize("fmt", ["json", "toml", "yaml"])
def test_nodes_up_to_the_limit_are_parsed(fmt: str) -> None:
    with pytest.raises(PolicyFileError) as err:  # parsed, then refused for what it says
        loads_policy(big(fmt, MAX_NODES // 2 - 10), fmt)
    assert "nodes" not in str(err.value)


@pytest.mark.parametrize("fmt", ["json", "toml", "yaml"])
def test_oversized_text_is_refused_before_parsing(fmt: str) -> None:
    text = "#" * (MAX_BYTES + 1) if fmt != "json" else " " * (MAX_BYTES + 1)
    with pytest.raises(PolicyFileError, match=f"at most {MAX_BYTES} bytes"):
        loads_policy(text, fmt)


def test_deep_toml_is_refused() -> None:
    text = "x = " + "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5) + "\n"
    with pytest.raises(PolicyFileError, match="nested"):
        loads_policy(text, "toml")


def test_an_oversized_file_fails_check(tmp_path: Path) -> None:
    code, out = check(tmp_path, big("json", 300_000))
    assert code == 2 and "nodes" in out


# --- gap repeat -----------------------------------------------------------------------

def gap(max_gap: str, repeat: bool = True) -> dict[str, Any]:
    return {"shape": "gap", "id": "G1", "event": {"type": "patrol.round"}, "key": "route_id",
            "max_gap": max_gap, "repeat": repeat,
            "subject": {"kind": "route", "field": "route_id"}}


@pytest.mark.parametrize("max_gap", ["PT1S", "PT14M59S", "PT0.5S"])
def test_repeat_needs_a_max_gap_of_15_minutes(max_gap: str) -> None:
    with pytest.raises(PolicyFileError, match="at least PT15M"):
        load(gap(max_gap))
    load(gap(max_gap, repeat=False))  # once per gap: any length
    load(gap("PT15M"))


def test_one_gap_repeats_at_most_max_repeats_times() -> None:
    engine = Engine(load(gap("PT15M")))
    rounds = [ev("patrol.round", "2026-03-02 00:00", id="r1", route_id="N", guard_id="G"),
              ev("patrol.round", "2026-03-20 00:00", id="r2", route_id="N", guard_id="G")]
    out = engine.evaluate(rounds, until=t("2026-03-20 01:00"))
    first = [d for d in out if d.evidence == ("r1",)]
    second = [d for d in out if d.evidence == ("r2",)]
    assert len(first) == MAX_REPEATS == 1000  # over ten days at PT15M, then silence
    assert len({d.id for d in first}) == MAX_REPEATS
    assert len(second) == 4  # the next round starts a new gap: 00:15 ... 01:00


# --- counts and decimals ----------------------------------------------------------------

def test_a_huge_tier_threshold_names_the_parameter(tmp_path: Path) -> None:
    lateness = standard_pack().get("lateness-deduction")
    with pytest.raises(PolicyFileError, match="less than or equal to 1000000") as err:
        lateness.with_parameters(tier_threshold=99999999999999999999999)
    assert err.value.path == "parameters.tier_threshold"
    assert "$tier_threshold" in str(err.value)
    text = ("policies: [{use: lateness-deduction, "
            "parameters: {tier_threshold: 99999999999999999999999}}]")
    with pytest.raises(PolicyFileError) as err:
        loads_policy(text)
    assert err.value.path == "policies[0].parameters.tier_threshold"
    code, out = check(tmp_path, text, "p.yaml")
    assert code == 2 and "tier_threshold" in out


@pytest.mark.parametrize(("param", "value", "said"), [
    ("base_rate", "1e-30", "12 decimal places"),
    ("base_rate", "NaN", "finite"),
    ("tier_rate", "Infinity", "finite"),
    ("monthly_limit", 10**30, "1000000"),
])
def test_decimals_and_counts_are_bounded(param: str, value: Any, said: str) -> None:
    with pytest.raises(PolicyFileError, match=said):
        standard_pack().get("lateness-deduction").with_parameters(**{param: value})


def test_amounts_in_a_rule_are_bounded() -> None:
    fine: dict[str, Any] = {"shape": "tariff", "id": "T1", "events": {"type": "staff.complaint"},
            "basis": "fixed", "period": None, "settle": "item",
            "amount_by": {"field": "severity", "values": {"minor": "1e13"}}}
    with pytest.raises(PolicyFileError, match="less than or equal to 1000000000000"):
        load(fine)
    fine["amount_by"]["values"] = {"minor": "10.5"}
    load(fine)


_values = (st.integers(min_value=-(10**30), max_value=10**30) | st.decimals(allow_nan=True)
           .map(str) | st.sampled_from(["1e400", "-0", "0.1", "1e-13", "abc", None]))


@settings(max_examples=150, deadline=None, database=None)
@given(st.sampled_from(["tier_threshold", "monthly_limit", "base_rate", "tier_rate"]), _values)
def test_any_parameter_value_loads_or_is_a_policy_file_error(name: str, value: Any) -> None:
    try:
        tuned = standard_pack().get("lateness-deduction").with_parameters(**{name: value})
    except PolicyFileError as exc:
        assert exc.path.startswith(("parameters.", "rules"))
        return
    for spec in tuned.specs:
        for tier in getattr(spec, "tiers", ()):
            assert 1 <= tier.start <= 1_000_000
            for d in (tier.rate, tier.amount):
                assert d is None or (d.is_finite() and abs(d) <= Decimal(10) ** 12)


def test_the_audit_runs_for_good_records_next_to_hostile_ones() -> None:
    pol = load(forbidden(show=["meta.note"]))
    good = ev("staff.private_call", "2026-03-02 10:00", id="ok", employee_id="E1",
              duration_s=600, meta={"note": "n", "__class__": {"__init__": 1}})
    bad = ev("staff.private_call", "2026-03-02 10:05", id="bad", employee_id="E1",
             duration_s="long")
    report = audit([good, bad], pol, until=t("2026-03-03 00:00"))
    assert [d.evidence for d in report.decisions] == [("ok",)]
    assert report.decisions[0].details["meta.note"] == "n"
    assert len(report.quarantine) == 1


# -- TOML read before tomllib (review 14: tomllib is quadratic in a key's dotted parts) -------


@pytest.mark.parametrize(("text", "line", "said"), [
    ("a" + ".a" * 50_000 + " = 1\n", 1, "dotted parts"),
    ('id = "x"\n\n[' + ".".join(["a"] * 20_000) + "]\n", 3, "dotted parts"),
    ('id = "x"\nr = {' + "a." * 70 + "b = 1}\n", 2, "dotted parts"),
    ("x = " + "[" * 10_000 + "]" * 10_000 + "\n", 1, "nested"),
    ("x = " + "{a = " * 100 + "1" + "}" * 100 + "\n", 1, "nested"),
])
def test_toml_keys_too_deep_are_refused_before_parsing(text: str, line: int, said: str) -> None:
    start = time.perf_counter()
    with pytest.raises(PolicyFileError, match=said) as info:
        loads_policy(text, "toml", source="d.toml")
    assert time.perf_counter() - start < 0.5
    assert info.value.line == line
    assert str(info.value).startswith(f"d.toml:{line}:")


@pytest.mark.parametrize("text", [
    "a" + ".a" * (MAX_KEY_PARTS - 1) + " = 1\n",
    "[" + ".".join(["a"] * MAX_KEY_PARTS) + "]\n",
    'x = "' + "." * 500 + '"\n',
    "x = '" + "[" * 500 + "'\n",
    'x = """\n' + "{." * 500 + '\n"""\n',
    "x = '''" + "." * 500 + "'''\n",
    "# " + "[." * 500 + "\nx = 1.5\n",
    'x = "a\\"' + "." * 500 + '"\n',
])
def test_toml_within_the_limits_passes_the_scan(text: str) -> None:
    _check_toml_shape(text, "ok.toml")
    tomllib.loads(text)



def test_a_long_dotted_key_in_json_is_refused_fast() -> None:
    # An unknown key is reported at its line: finding it walked back one dotted part at a
    # time, hashing the path again each time (100,000 parts took 2 s, 450,000 took 48 s).
    # (YAML refuses a key of over 1024 characters itself.)
    text = json.dumps({"id": "x", "a" + ".a" * 100_000: 1})
    start = time.perf_counter()
    with pytest.raises(PolicyFileError, match="one of"):
        loads_policy(text, "json")
    assert time.perf_counter() - start < 0.5
