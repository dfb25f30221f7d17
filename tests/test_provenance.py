"""Decision provenance (the policy fingerprint on every decision and in its id) and money
you can add up (what stands by default, the trail on request, decimal money and provenance
in every export), CSV hardening and readable reprs."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from audit_data import GM_POLICY, PAY_POLICY, UNTIL, contact, events, policies
from helpers import ev, profile, t

import policykit
from policykit import Decision, Engine, ParameterError, Policy, PolicySet, standard_pack
from policykit.audit import AuditCounts, AuditReport, audit, parse_instant
from policykit.engine._durable_adapter import durable_available
from policykit.rules._base import decision_id

EXAMPLE = Path(policykit.__file__).parent / "examples" / "acme-2026-03.jsonl"
APRIL = "2026-04-01T00:00:00+08:00"
END = parse_instant(UNTIL)
MARGINAL = {"tier_mode": "marginal", "tier_threshold": 4}


@pytest.fixture(scope="module")
def march() -> AuditReport:
    return audit(EXAMPLE, until=APRIL)


@pytest.fixture(scope="module")
def marginal() -> AuditReport:
    pack = standard_pack().with_parameters("lateness-deduction", **MARGINAL)
    return audit(EXAMPLE, pack, until=APRIL)


# --- the fingerprint --------------------------------------------------------------------------


def test_the_fingerprint_covers_parameters_calendar_version_and_rules() -> None:
    pay = Policy.model_validate(PAY_POLICY)
    changed = [
        pay.with_parameters(call_rate="0.02"),
        pay.model_copy(update={"version": "2"}),
        pay.model_copy(update={"calendar": pay.calendar.model_copy(
            update={"extra_holidays": {date(2026, 3, 9): "company day"}})}),
        Policy.model_validate({**PAY_POLICY, "rules": PAY_POLICY["rules"][:1]}),
    ]
    prints = {p.fingerprint() for p in changed}
    assert len(prints) == len(changed) and pay.fingerprint() not in prints
    # The same definition, keys in another order (a YAML file sorts them): the same print.
    reordered = yaml.safe_load(yaml.safe_dump(PAY_POLICY, sort_keys=True))
    assert list(reordered) != list(PAY_POLICY)
    assert Policy.model_validate(reordered).fingerprint() == pay.fingerprint()
    assert pay.with_parameters().fingerprint() == pay.fingerprint()


def test_a_shard_of_a_policy_keeps_its_fingerprint() -> None:
    pay = Policy.model_validate(PAY_POLICY)
    part = pay._only_rules(["R2"])
    assert [s.id for s in part.specs] == ["R2"]
    assert part.fingerprint() == pay.fingerprint()
    assert part.info.fingerprint == pay.fingerprint()


def test_every_decision_records_its_policy_fingerprint(march: AuditReport) -> None:
    prints = {p.id: p.fingerprint() for p in march.policies}
    assert march.trail and all(d.policy_fingerprint == prints[d.policy] for d in march.trail)
    wire = march.decisions[0].to_json_dict()
    assert wire["policy_fingerprint"] == prints[march.decisions[0].policy]
    assert Decision.model_validate(wire) == march.decisions[0]
    # An older record without the field still validates: the field is optional.
    del wire["policy_fingerprint"]
    assert Decision.model_validate(wire).policy_fingerprint is None


def test_decision_id_depends_on_the_fingerprint() -> None:
    from policykit import Subject

    at = t("2026-03-02 08:31")
    args = ("p", "1", "R1", "late", Subject(kind="employee", id="E1"), "k", at, "final")
    assert decision_id(*args, "aaa") != decision_id(*args, "bbb")
    assert decision_id(*args, "aaa") == decision_id(*args, "aaa")


def test_other_parameters_give_other_ids_wherever_the_money_differs(
        march: AuditReport, marginal: AuditReport) -> None:
    def money(report: AuditReport) -> dict[tuple[Any, ...], tuple[str, Decimal]]:
        return {(d.policy, d.rule, d.subject.id, d.at, d.status, d.details.get("outcome")):
                (d.id, d.amount) for d in report.trail if d.amount is not None
                and d.policy == "lateness-deduction"}

    before, after = money(march), money(marginal)
    differ = [k for k in before.keys() & after.keys() if before[k][1] != after[k][1]]
    assert differ  # the retuned tiers change some amounts ...
    assert all(before[k][0] != after[k][0] for k in differ)  # ... and never under one id
    ids = {d.id for d in march.trail}
    retuned = {d.id for d in marginal.trail if d.policy == "lateness-deduction"}
    assert retuned and not ids & retuned  # every decision of the retuned policy is new
    # The other policies did not change: neither did their ids.
    assert {d.id for d in march.trail if d.policy != "lateness-deduction"} == \
        {d.id for d in marginal.trail if d.policy != "lateness-deduction"}


def test_a_calendar_change_changes_ids_and_nothing_else() -> None:
    log = [profile("E1"), contact("2026-03-03 10:00", "c1", "q1")]
    gm = Policy.model_validate(GM_POLICY)
    moved = gm.model_copy(update={"calendar": gm.calendar.model_copy(
        update={"extra_holidays": {date(2026, 12, 30): "company day"}})})
    a = Engine(gm).evaluate(log, until=END)
    b = Engine(moved).evaluate(log, until=END)
    assert len(a) == len(b) == 1
    assert a[0].id != b[0].id
    same = {"id", "policy_fingerprint"}
    assert a[0].model_dump(exclude=same) == b[0].model_dump(exclude=same)


def test_the_same_inputs_give_the_same_ids_run_after_run(march: AuditReport) -> None:
    again = audit(EXAMPLE, until=APRIL)
    assert [d.id for d in again.trail] == [d.id for d in march.trail]
    log = [*events()]
    native = Engine(policies()).evaluate(log, until=END)
    reloaded = Engine(PolicySet(Policy.model_validate(json.loads(p.model_dump_json()))
                                for p in policies())).evaluate(log, until=END)
    assert [d.id for d in reloaded] == [d.id for d in native]
    if durable_available()[0]:
        durable = Engine(policies(), backend="durable").evaluate(log, until=END)
        assert durable == native


def test_revocations_and_revisions_keep_the_fingerprint() -> None:
    callbacks = standard_pack().select("callback-frequency")
    engine = Engine(callbacks)
    session = engine.session(allowed_lateness=timedelta(days=7))
    session.feed(ev("project.delivered", "2026-01-15 10:00", id="deliv", project_id="P1",
                    customer_id="C1"))
    session.feed(ev("project.delivered", "2026-02-16 09:00", id="other", project_id="P2",
                    customer_id="C2"))
    out = session.feed(ev("callback.made", "2026-02-12 15:00", id="cb", project_id="P1",
                          employee_id="E1", channel="phone"))
    revocation = next(d for d in out if d.details.get("outcome") == "revoked")
    assert revocation.policy_fingerprint == callbacks.get("callback-frequency").fingerprint()


# --- what stands, and the trail ---------------------------------------------------------------


def test_the_report_reads_what_stands_and_keeps_the_trail(march: AuditReport) -> None:
    assert len(march.trail) == march.counts.decisions == 195
    assert march.decisions == march.effective() and len(march) == len(march.decisions) == 172
    assert all(march.status(d) == "final" for d in march.decisions)
    statuses = {march.status(d) for d in march.trail}
    assert statuses == {"final", "superseded"}  # the running totals were all superseded
    # A report built from the full list, as audit() builds it.
    rebuilt = AuditReport(decisions=march.trail, events=march.events,
                          policies=march.policies, quarantine=[], counts=march.counts)
    assert rebuilt.decisions == march.decisions


def _total(values: Any) -> Decimal:
    return sum((Decimal(str(v)) for v in values if v is not None and v == v and v != ""),
               Decimal(0))


def test_every_export_adds_up_to_the_payroll(march: AuditReport, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    payroll = _total(march.payroll("2026-03")["total"])
    assert payroll == Decimal("9932.00")
    assert _total(march.to_pandas()["amount"]) == payroll
    assert _total(march.to_polars()["amount"].to_list()) == payroll
    assert _total(march.to_arrow().column("amount").to_pylist()) == payroll
    back = pq.read_table(march.to_parquet(tmp_path / "d.parquet"))
    assert str(back.schema.field("amount").type) == "decimal128(18, 2)"
    assert _total(back.column("amount").to_pylist()) == payroll
    with (tmp_path / "d.csv").open("w", encoding="utf-8", newline="") as fh:
        march.write_csv(fh)
    rows = list(csv.DictReader((tmp_path / "d.csv").open(encoding="utf-8")))
    assert _total(r["amount"] for r in rows) == payroll
    lines = [json.loads(x) for x in march.to_jsonl(tmp_path / "d.jsonl").read_text(
        encoding="utf-8").splitlines()]
    assert _total(x.get("amount") for x in lines) == payroll
    assert _total(march.summary()["amount"]) == payroll
    # The trail sums everything ever said: provisional running totals included.
    assert _total(march.to_pandas(trail=True)["amount"]) == Decimal("40978.00")
    trail = march.to_polars(trail=True)
    final = trail.filter(trail["status"] == "final")
    assert _total(final["amount"].to_list()) == payroll


def test_exports_carry_status_and_provenance(march: AuditReport, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    fingerprints = {p.id: p.fingerprint() for p in march.policies}
    meta = json.loads(pq.read_schema(march.to_parquet(tmp_path / "t.parquet", trail=True))
                      .metadata[b"policykit"])
    assert meta["policykit_version"] == policykit.__version__ and meta["view"] == "trail"
    assert {p["id"]: p["fingerprint"] for p in meta["policies"]} == fingerprints
    assert meta["policy_set_fingerprint"] == march.policies.fingerprint()
    frame = march.to_pandas(trail=True)
    assert frame.attrs["policykit"]["view"] == "trail"
    assert set(frame["status"]) == {"final", "superseded"}
    assert set(frame["policykit_version"]) == {policykit.__version__}
    assert (frame["policy_fingerprint"] == frame["policy"].map(fingerprints)).all()
    buf = io.StringIO()
    march.write_jsonl(buf, trail=True)
    lines = [json.loads(x) for x in buf.getvalue().splitlines()]
    assert len(lines) == len(march.trail)
    assert {x["audit"]["status"] for x in lines} == {"final", "superseded"}
    assert all(x["audit"]["policykit_version"] == policykit.__version__ for x in lines)
    # Without the ``audit`` object each line is the decision's wire form.
    assert Decision.model_validate({k: v for k, v in lines[0].items() if k != "audit"}) \
        == march.trail[0]


def test_the_html_page_carries_status_and_provenance() -> None:
    small = audit(events(), policies(), UNTIL)  # a small report: the page draws charts
    text = small.to_html()
    assert policykit.__version__ in text and small.policies.fingerprint() in text
    assert all(p.fingerprint() in text for p in small.policies)
    found = re.search(r"<script type='application/json' id='pk-provenance'>(.*?)</script>", text)
    assert found and json.loads(found.group(1))["view"] == "standing"
    assert "superseded" not in text.split("id='pk-decisions'")[1].split("</table>")[0]
    trail = small.to_html(trail=True).split("id='pk-decisions'")[1].split("</table>")[0]
    assert trail.count("<td>superseded</td>") == 2  # the two provisional running totals


def test_pandas_output_writes_to_parquet(march: AuditReport, tmp_path: Path) -> None:
    frame = march.to_pandas(trail=True)
    frame.to_parquet(tmp_path / "p.parquet")  # details is JSON text: no struct clash
    assert json.loads(frame["details"].iloc[0]) == json.loads(
        json.dumps(march.trail[0].details, default=str))


def _report_with(amount: str) -> AuditReport:
    d = Engine(policies()).evaluate([*events()], until=END)
    money = next(x for x in d if x.amount is not None and x.status == "final")
    bad = money.model_copy(update={"amount": Decimal(amount)})
    return AuditReport(decisions=[bad], events={}, policies=policies(), quarantine=[],
                       counts=AuditCounts())


@pytest.mark.parametrize("amount", ["12345678901234567.00", "1.005"])
def test_money_that_does_not_fit_decimal128_is_a_clear_error(amount: str) -> None:
    report = _report_with(amount)
    for export in (report.to_arrow, report.to_polars):
        with pytest.raises(ParameterError, match=r"amount.*decimal128\(18, 2\)"):
            export()
    assert report.to_pandas()["amount"].iloc[0] == Decimal(amount)  # pandas keeps any Decimal


# --- CSV hardening ----------------------------------------------------------------------------


def test_csv_escapes_formula_cells_keeps_amounts_numeric_and_writes_a_bom(
        tmp_path: Path) -> None:
    log = [profile("=HYPERLINK(\"http://x\")"), profile("E2"),
           ev("staff.complaint", "2026-03-05 10:00", id="k1", employee_id="=HYPERLINK(\"http://x\")",
              severity="minor", source="customer"),
           ev("staff.complaint", "2026-03-05 11:00", id="k2", employee_id="E2",
              severity="minor", source="customer")]
    report = audit(log, policies(), UNTIL)
    path = report.to_csv(tmp_path / "d.csv", bom=True)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    subjects = {r["subject_id"] for r in rows}
    assert subjects == {"'=HYPERLINK(\"http://x\")", "E2"}
    assert {r["amount"] for r in rows} == {"10.00"}  # numbers stay numbers
    plain = io.StringIO()
    report.write_csv(plain)
    assert not plain.getvalue().startswith("\ufeff")


# --- reprs ------------------------------------------------------------------------------------


def test_reprs_are_one_readable_line() -> None:
    pack = standard_pack()
    lateness = pack.get("lateness-deduction")
    text = repr(lateness)
    assert len(text) < 160 and "\n" not in text
    assert all(part in text for part in ("lateness-deduction", "v1", "R1", "R5",
                                         lateness.fingerprint()))
    assert "lateness-deduction" in lateness._repr_html_() and \
        "tier_mode" in lateness._repr_html_()
    assert len(repr(pack)) < 300 and pack.fingerprint() in repr(pack)
    assert all(p.fingerprint() in pack._repr_html_() for p in pack)
    engine = Engine(pack)
    assert len(repr(engine)) < 300 and "native" in repr(engine) and \
        engine.fingerprint in repr(engine)
    assert "first-responder" in engine._repr_html_()
    d = Engine(policies()).evaluate([*events()], until=END)[0]
    assert len(repr(d)) < 200 and d.id in repr(d) and d.rule in repr(d)
    assert d.message in d._repr_html_() and d.id in d._repr_html_()
