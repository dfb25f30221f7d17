"""Packs and composition: `pack:` names from the `policykit.packs` entry points, `include:`,
`PolicySet + PolicySet` and the command line's repeated `--policy`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_data import GM_POLICY, PAY_POLICY, UNTIL, events, write_jsonl, write_policy_file
from click.testing import CliRunner, Result

import policykit.policyfile as policyfile
from policykit import PolicyFileError, PolicySet, audit, standard_pack
from policykit.cli import EXIT_BAD_INPUT, EXIT_OK, cli
from policykit.errors import ParameterError
from policykit.policyfile import MAX_INCLUDE_DEPTH, load_policy, loads_policy, resolve_many


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def write(path: Path, data: Any) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False),
                    encoding="utf-8")
    return path


class _EntryPoint:
    def __init__(self, name: str, obj: Any) -> None:
        self.name = name
        self._obj = obj

    def load(self) -> Any:
        return self._obj


@pytest.fixture
def plugin_pack(monkeypatch: pytest.MonkeyPatch) -> PolicySet:
    """An installed third-party pack `acme` (and the standard pack as its entry point)."""
    acme = PolicySet([standard_pack().get("lateness-deduction")])
    from policykit.pack import standard_pack as builtin

    eps = {"standard": _EntryPoint("standard", builtin), "acme": _EntryPoint("acme", acme)}
    monkeypatch.setattr(policyfile, "_entry_points", lambda: eps)
    return acme


# --- pack: NAME ---------------------------------------------------------------------------

def test_pack_standard_works_without_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(policyfile, "_entry_points", dict)
    ps = loads_policy("pack: standard\n")
    assert ps.ids == standard_pack().ids


def test_pack_resolves_through_the_entry_point_group(monkeypatch: pytest.MonkeyPatch,
                                                     plugin_pack: PolicySet) -> None:
    seen: list[str] = []
    real = policyfile._entry_points

    def spy() -> dict[str, Any]:
        seen.append("called")
        return real()

    monkeypatch.setattr(policyfile, "_entry_points", spy)
    ps = loads_policy("pack: acme\n")
    assert ps.ids == ["lateness-deduction"] and seen
    tuned = loads_policy("pack: acme\npolicies:\n  - use: lateness-deduction\n"
                         "    parameters: {tier_threshold: 4}\n")
    assert tuned.get("lateness-deduction").parameters["tier_threshold"] == 4


def test_the_real_entry_point_group_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata as md

    asked: list[str] = []

    def fake(**kw: Any) -> list[Any]:
        asked.append(kw["group"])
        return [_EntryPoint("other", PolicySet([standard_pack().get("site-access")]))]

    monkeypatch.setattr(md, "entry_points", fake)
    assert loads_policy("pack: other\n").ids == ["site-access"]
    assert asked == ["policykit.packs"]


def test_unknown_pack_names_the_nearest_installed_one(plugin_pack: PolicySet) -> None:
    with pytest.raises(PolicyFileError) as err:
        loads_policy("pack: acmee\n", source="x.yaml")
    assert err.value.path == "pack" and err.value.suggestion == "acme"
    assert err.value.line == 1 and "acme, standard" in err.value.expected


def test_a_pack_that_fails_to_load_is_a_policy_file_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def boom() -> PolicySet:
        raise RuntimeError("plugin broken")

    monkeypatch.setattr(policyfile, "_entry_points",
                        lambda: {"bad": _EntryPoint("bad", boom),
                                 "odd": _EntryPoint("odd", 42)})
    with pytest.raises(PolicyFileError, match="plugin broken"):
        loads_policy("pack: bad\n")
    with pytest.raises(PolicyFileError, match="not int"):
        loads_policy("pack: odd\n")


def test_pyproject_registers_the_standard_pack() -> None:
    import tomllib

    root = Path(__file__).resolve().parent.parent
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    target = data["project"]["entry-points"]["policykit.packs"]["standard"]
    module, _, attr = target.partition(":")
    import importlib

    loaded = getattr(importlib.import_module(module), attr)()
    assert loaded.fingerprint() == standard_pack().fingerprint()


def test_standard_pack_decisions_unchanged_through_the_entry_point(
        tmp_path: Path, plugin_pack: PolicySet) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", events())
    via_file = audit(log, write(tmp_path / "p.yaml", {"pack": "standard"}), UNTIL)
    default = audit(log, None, UNTIL)
    assert [d.id for d in via_file.decisions] == [d.id for d in default.decisions]
    assert [d.amount for d in via_file.decisions] == [d.amount for d in default.decisions]


# --- include: -----------------------------------------------------------------------------

def test_include_is_relative_to_the_including_file(tmp_path: Path) -> None:
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "gm.yaml", GM_POLICY)
    write(sub / "site.yaml", {"include": ["gm.yaml"], "policies": [PAY_POLICY]})
    ps = load_policy(sub / "site.yaml")
    assert ps.ids == ["test-gm", "test-pay"]
    # An include-only file is a set too, whatever the working folder.
    write(tmp_path / "top.yaml", {"include": "sub/site.yaml"})
    assert load_policy(tmp_path / "top.yaml").ids == ["test-gm", "test-pay"]


def test_include_cycle_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"include": ["b.yaml"], "policies": [GM_POLICY]})
    write(tmp_path / "b.yaml", {"include": ["a.yaml"], "policies": [PAY_POLICY]})
    with pytest.raises(PolicyFileError) as err:
        load_policy(tmp_path / "a.yaml")
    assert err.value.source.endswith("b.yaml") and err.value.path == "include[0]"
    assert "cycle" in err.value.expected
    chain = err.value.expected
    assert chain.index("a.yaml") < chain.index("b.yaml") < chain.rindex("a.yaml")
    write(tmp_path / "self.yaml", {"include": "./self.yaml"})
    with pytest.raises(PolicyFileError, match="cycle"):
        load_policy(tmp_path / "self.yaml")


def test_missing_include_names_the_chain(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", {"include": ["b.yaml"]})
    write(tmp_path / "b.yaml", {"policies": [GM_POLICY], "include": ["gone.yaml"]})
    with pytest.raises(PolicyFileError) as err:
        load_policy(tmp_path / "a.yaml")
    assert err.value.value == "gone.yaml" and err.value.line is not None
    assert "a.yaml -> " in err.value.expected and "gone.yaml" in err.value.expected


def test_include_depth_is_bounded(tmp_path: Path) -> None:
    n = MAX_INCLUDE_DEPTH + 2
    for i in range(n):
        write(tmp_path / f"f{i}.yaml", {"include": f"f{i + 1}.yaml"})
    write(tmp_path / f"f{n}.yaml", GM_POLICY)
    with pytest.raises(PolicyFileError, match=f"at most {MAX_INCLUDE_DEPTH} files deep"):
        load_policy(tmp_path / "f0.yaml")
    assert load_policy(tmp_path / f"f{n - MAX_INCLUDE_DEPTH + 1}.yaml").ids == ["test-gm"]


def test_bad_include_values(tmp_path: Path) -> None:
    for bad in ({"include": 3}, {"include": [None]}, {"include": [""]}):
        with pytest.raises(PolicyFileError) as err:
            loads_policy(yaml.safe_dump(bad), base_dir=tmp_path)
        assert err.value.path.startswith("include")


def test_size_limits_apply_to_each_included_file(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("x" * (policyfile.MAX_BYTES + 1), encoding="utf-8")
    write(tmp_path / "a.yaml", {"include": "big.yaml"})
    with pytest.raises(PolicyFileError) as err:
        load_policy(tmp_path / "a.yaml")
    assert err.value.source.endswith("big.yaml") and "bytes" in err.value.expected


def test_one_id_in_including_and_included_file_names_both(tmp_path: Path) -> None:
    write(tmp_path / "base.yaml", {"policies": [GM_POLICY]})
    write(tmp_path / "site.yaml", {"include": ["base.yaml"], "policies": [PAY_POLICY, GM_POLICY]})
    with pytest.raises(PolicyFileError) as err:
        load_policy(tmp_path / "site.yaml")
    msg = str(err.value)
    assert "'test-gm'" in msg and "base.yaml:2" in msg and "site.yaml:" in msg
    assert err.value.path == "policies[1]" and err.value.line is not None


def test_one_id_in_two_included_files_names_both(tmp_path: Path) -> None:
    write(tmp_path / "one.yaml", GM_POLICY)
    write(tmp_path / "two.yaml", {"pack": "standard", "policies": [GM_POLICY]})
    write(tmp_path / "three.yaml", {"policies": [PAY_POLICY, GM_POLICY]})
    write(tmp_path / "site.yaml", {"include": ["one.yaml", "three.yaml"]})
    with pytest.raises(PolicyFileError) as err:
        load_policy(tmp_path / "site.yaml")
    assert "one.yaml:1" in str(err.value) and "three.yaml:" in str(err.value)
    write(tmp_path / "site2.yaml", {"include": ["two.yaml"], "pack": "standard"})
    with pytest.raises(PolicyFileError, match="pack standard"):
        load_policy(tmp_path / "site2.yaml")


# --- PolicySet + PolicySet ----------------------------------------------------------------

def test_policy_sets_add_in_order_and_sum() -> None:
    pack = standard_pack()
    a, b, c = (pack.select(i) for i in pack.ids[:3])
    assert (a + b).ids == pack.ids[:2]
    assert sum([a, b, c], PolicySet([])).ids == pack.ids[:3]
    assert sum([a, b, c]).ids == pack.ids[:3]  # type: ignore[union-attr]
    with pytest.raises(TypeError):
        a + 1


def test_a_set_and_one_policy_add_either_way() -> None:
    pack = standard_pack()
    a = pack.select(pack.ids[0])
    extra = pack.get(pack.ids[1])
    assert (a + extra).ids == pack.ids[:2]
    assert (extra + a).ids == [pack.ids[1], pack.ids[0]]
    with pytest.raises(ParameterError, match="each policy id once"):
        a + pack.get(pack.ids[0])


def test_adding_one_id_twice_names_both_sources(tmp_path: Path) -> None:
    pack = standard_pack()
    with pytest.raises(ParameterError, match="left-hand set and from the right-hand set"):
        pack + pack.select("site-access")
    write(tmp_path / "one.yaml", GM_POLICY)
    write(tmp_path / "two.yaml", {"policies": [PAY_POLICY, GM_POLICY]})
    with pytest.raises(ParameterError) as err:
        load_policy(tmp_path / "one.yaml") + load_policy(tmp_path / "two.yaml")
    assert "one.yaml:1" in str(err.value) and "two.yaml:" in str(err.value)


# --- the command line ---------------------------------------------------------------------

def _split_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    return (write(tmp_path / "gm.yaml", GM_POLICY), write(tmp_path / "pay.yaml", PAY_POLICY),
            write_policy_file(tmp_path / "both.yaml"))


def test_repeated_policy_combines_for_audit_explain_and_why_not(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", events())
    gm, pay, both = _split_files(tmp_path)
    split = run("audit", str(log), "-p", str(gm), "-p", str(pay), "--until", UNTIL)
    whole = run("audit", str(log), "-p", str(both), "--until", UNTIL)
    assert split.stdout == whole.stdout
    assert {json.loads(x)["policy"] for x in split.stdout.splitlines()} == {"test-gm",
                                                                           "test-pay"}
    first = json.loads(split.stdout.splitlines()[0])
    explained = run("explain", str(log), first["id"], "-p", str(gm), "-p", str(pay),
                    "--until", UNTIL)
    assert explained.exit_code == EXIT_OK and first["policy"] in explained.stdout
    why = run("why-not", str(log), "E1", "test-gm", "R4", "-p", str(gm), "-p", str(pay),
              "--until", UNTIL)
    assert why.exit_code in (EXIT_OK, 3) and "12 min before due" in why.stdout


def test_repeated_policy_with_one_id_twice_exits_2_naming_both(tmp_path: Path) -> None:
    log = write_jsonl(tmp_path / "log.jsonl", events())
    gm, _pay, both = _split_files(tmp_path)
    result = run("audit", str(log), "-p", str(both), "-p", str(gm), "--until", UNTIL)
    assert result.exit_code == EXIT_BAD_INPUT
    assert "both.yaml:" in result.stderr and "gm.yaml:1" in result.stderr
    ids = run("audit", str(log), "-p", "site-access", "-p", "site-access")
    assert ids.exit_code == EXIT_BAD_INPUT and "--policy site-access" in ids.stderr


def test_check_takes_several_files(tmp_path: Path) -> None:
    gm, pay, both = _split_files(tmp_path)
    ok = run("check", str(gm), str(pay))
    assert ok.exit_code == EXIT_OK and "2 policies" in ok.stdout
    dup = run("check", str(both), str(pay))
    assert dup.exit_code == EXIT_BAD_INPUT and "pay.yaml:1" in dup.stderr
    assert run("check").exit_code != EXIT_OK


def test_resolve_many_names_specs_without_files() -> None:
    with pytest.raises(ParameterError, match="from A and from B"):
        resolve_many(["site-access", "site-access"], names=["A", "B"])
    assert resolve_many(["site-access", "first-responder"]).ids == ["site-access",
                                                                     "first-responder"]


def test_policy_schema_accepts_include_and_installed_pack_names(
        plugin_pack: PolicySet) -> None:
    import jsonschema

    from policykit._schema import policy_schema

    validator = jsonschema.Draft7Validator(policy_schema())
    assert validator.is_valid({"include": ["base.yaml"]})
    assert validator.is_valid({"include": "base.yaml", "pack": "acme"})
    assert not validator.is_valid({"include": 3})
    assert not validator.is_valid({"pack": "nope"})


def test_the_old_home_of_the_pack_still_works_and_says_where_it_moved() -> None:
    import policykit.pack
    import policykit.rules.standard as old

    with pytest.warns(DeprecationWarning, match=r"import standard_pack from policykit\.pack"):
        assert old.standard_pack is policykit.pack.standard_pack
    with pytest.warns(DeprecationWarning, match="PACK_ORDER"):
        assert old.PACK_ORDER == policykit.pack.PACK_ORDER
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        old.nope  # noqa: B018
