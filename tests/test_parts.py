"""Split rules: a part's decisions name the rulebook's rule and the part (``rule: R2``,
``part: R2b``), through ids, exports, summaries, explain, why_not and scenarios."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from typing import Any

import pytest
from helpers import BACKENDS, Evaluate, ev, t

from policykit import (
    Decision,
    Engine,
    ParameterError,
    Policy,
    PolicyFileError,
    audit,
    standard_pack,
)
from policykit.testing import load_scenarios

POLICY = "service-delivery"
UNTIL = t("2026-04-01 00:00")


def step(at: str, name: str, request: str = "Q1") -> dict[str, Any]:
    return ev("service.step", at, request_id=request, step=name, outcome="unsolved",
              employee_id="E1")


def onsite(kind: str, at: str) -> dict[str, Any]:
    return ev(f"onsite.{kind}", at, request_id="Q1", site_id="S1", employee_id="E1")


# Remote without a hotline step (R2 itself) and on-site without a remote step (part R2b).
LADDER = [step("2026-03-02 09:00", "remote", "Q1"), step("2026-03-02 10:00", "onsite", "Q2")]


def test_a_part_names_the_rulebook_rule_and_the_part(evaluate: Evaluate) -> None:
    out = evaluate(LADDER, until=UNTIL, policy=POLICY)
    assert sorted((d.spec_rule, d.rule, d.part) for d in out) == [
        ("R2", "R2", None), ("R2b", "R2", "R2b")]
    whole, part = sorted(out, key=lambda d: d.spec_rule)
    assert "part" not in whole.to_json_dict()          # an unsplit rule: as before
    assert part.to_json_dict()["part"] == "R2b"
    assert part.message.startswith("R2b: ")           # the message names the part
    assert Decision.model_validate(part.to_json_dict()) == part


def test_ids_stay_unique_per_part(evaluate: Evaluate) -> None:
    # R3 (departure) and R3b (arrival) miss for the same dispatch: same rule R3, two ids.
    out = evaluate([onsite("dispatched", "2026-03-02 09:00")], until=UNTIL, policy=POLICY)
    assert sorted((d.rule, d.part or "") for d in out) == [("R3", ""), ("R3", "R3b")]
    assert len({d.id for d in out}) == 2


def test_exports_and_summary_group_by_the_rulebook_rule() -> None:
    report = audit(LADDER, POLICY, until=UNTIL)
    rows = {(r["rule"], r["part"]): r["decisions"]
            for r in report.summary(by=("rule", "part")).to_dict("records")}
    assert rows == {("R2", ""): 1, ("R2", "R2b"): 1}
    assert report.summary(by="rule").to_dict("records")[0]["decisions"] == 2
    table = list(csv.DictReader(io.StringIO(_csv(report))))
    assert sorted((r["rule"], r["part"]) for r in table) == [("R2", ""), ("R2", "R2b")]
    assert list(table[0])[3:6] == ["rule", "part", "kind"]
    arrow = report.to_arrow()
    assert sorted(zip(arrow["rule"].to_pylist(), arrow["part"].to_pylist(),
                      strict=True), key=str) == [("R2", "R2b"), ("R2", None)]
    lines = [json.loads(x) for x in _jsonl(report).splitlines()]
    assert sorted(x.get("part", "") for x in lines) == ["", "R2b"]


def _csv(report: Any) -> str:
    out = io.StringIO()
    report.write_csv(out)
    return out.getvalue()


def _jsonl(report: Any) -> str:
    out = io.StringIO()
    report.write_jsonl(out)
    return out.getvalue()


def test_explain_and_why_not_take_the_part() -> None:
    report = audit(LADDER, POLICY, until=UNTIL)
    (part,) = [d for d in report.decisions if d.part == "R2b"]
    assert report.explain(part.id).rule.id == "R2b"
    # The part's own decision is found by its part id (subjects are written kind:id).
    who = f"{part.subject.kind}:{part.subject.id}"
    assert [d.id for d in report.why_not(who, POLICY, "R2b").fired] == [part.id]
    assert report.why_not(who, POLICY, "R2").fired == [
        d for d in report.decisions if d.part is None]
    shift = audit([], "shift-handover", until=UNTIL)
    with pytest.raises(ParameterError, match=r"R7 is split into the parts R7a, R7b, R7c, "
                                             r"R7d; name one of them"):
        shift.why_not("employee/E1", "shift-handover", "R7")


def test_a_part_cannot_be_its_own_rule_nor_a_part_of_a_part() -> None:
    base = standard_pack().get(POLICY).model_dump()
    for rule_id, part_of in (("R2b", "R2b"), ("R3b", "R2b")):
        data = json.loads(json.dumps(base, default=str))
        for raw in data["rules"]:
            if raw["id"] == rule_id:
                raw["part_of"] = part_of
        with pytest.raises(PolicyFileError, match=rf"rules\.{rule_id}\.part_of"):
            Policy.model_validate(data)


GIVEN = """\
    given:
      - {type: service.step, at: 2026-03-02 09:00, request_id: Q1, step: remote,
         outcome: unsolved, employee_id: E1}
      - {type: service.step, at: 2026-03-02 10:00, request_id: Q2, step: onsite,
         outcome: unsolved, employee_id: E1}
    until: 2026-03-03 00:00
"""
SCENARIO = f"""\
policy: service-delivery
scenarios:
  - name: the rulebook's R2 counts its parts
{GIVEN}    expect: [{{rule: R2, count: 2}}]
  - name: a part is named by its own id
{GIVEN}    expect: [{{rule: R2b, kind: warning, subject: employee/E1}}]
    allow: [{{rule: R2}}]
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_scenarios_name_the_rule_or_the_part(backend: str) -> None:
    # rule: R2 counts the rule with its parts; rule: R2b the part alone.
    results = load_scenarios(SCENARIO, source="parts.yaml").run(backend)
    assert results.ok, results.render()
    wrong = SCENARIO.replace("{rule: R2b, kind: warning", "{rule: R3b, kind: warning")
    assert not load_scenarios(wrong, source="parts.yaml").run(backend).ok


def test_every_lettered_rule_of_the_pack_is_a_part_of_its_number() -> None:
    for policy in standard_pack():
        for spec in policy.specs:
            lettered = re.fullmatch(r"(R\d+)[a-z]", spec.id)
            assert spec.part_of == (lettered[1] if lettered else None), (policy.id, spec.id)


def test_a_revoked_part_decision_keeps_its_part() -> None:
    # On site without a remote step (R2b); the remote step then arrives late, dated before.
    session = Engine(standard_pack().get(POLICY)).session(allowed_lateness=timedelta(days=1))
    (warning,) = session.feed(step("2026-03-02 10:00", "onsite"))
    assert (warning.rule, warning.part) == ("R2", "R2b")
    session.feed(ev("service.step", "2026-03-02 11:00", request_id="Q9", step="hotline",
                    outcome="solved", employee_id="E1"))
    out = session.feed(step("2026-03-02 09:00", "remote"))
    revocation = next(d for d in out if d.supersedes == (warning.id,))
    assert (revocation.rule, revocation.part, revocation.spec_rule) == ("R2", "R2b", "R2b")
