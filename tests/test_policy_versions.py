"""Policy versions in force by date (docs/versions.md): the version in force at each instant
decides and says so (its fingerprint), a month straddling a change counts all its late days
and charges each by its own version, on both backends, streaming, restored and
distributed."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from helpers import ev, profile, t

from policykit import Decision, Engine, PolicyFileError, PolicySet, SnapshotError, standard_pack
from policykit._schema import policy_schema
from policykit.cli import main
from policykit.distributed import distributed_audit
from policykit.errors import ParameterError
from policykit.policyfile import loads_policy

LD = "lateness-deduction"
# Two versions of the lateness deduction; the change on Monday 16 March, mid-month.
TWO = """
policies:
  - use: lateness-deduction
    version: "2026.1"
    effective_from: 2026-01-01
    parameters: {base_rate: "0.01", tier_rate: "0.05"}
  - use: lateness-deduction
    version: "2026.2"
    effective_from: 2026-03-16
    parameters: {base_rate: "0.02", tier_rate: "0.10"}
"""
END = t("2026-04-01 00:00")


def _late(day: str, emp: str = "E1", at: str = "09:00", id: str | None = None
          ) -> dict[str, Any]:
    return ev("attendance.clock_in", f"{day} {at}", id=id, employee_id=emp)


def _fp(ps: PolicySet) -> tuple[str, str]:
    old, new = ps.get(LD).versions
    return old.fingerprint(), new.fingerprint()


def _r2(decisions: list[Decision], status: str = "final") -> list[Decision]:
    return [d for d in decisions if d.rule == "R2" and d.status == status]


def _rates(d: Decision) -> list[tuple[str, str]]:
    return [(row["at"][:10], row["rate"]) for row in d.details["items"]]


def test_a_file_gives_versions_each_with_its_own_fingerprint() -> None:
    ps = loads_policy(TWO)
    assert ps.ids == [LD] and len(ps) == 1
    old, new = ps.get(LD).versions
    assert (old.version, new.version) == ("2026.1", "2026.2")
    assert new.in_force_from() == t("2026-03-16 00:00")
    assert old.parameters["base_rate"] == "0.01" and new.parameters["base_rate"] == "0.02"
    assert len({old.fingerprint(), new.fingerprint(), ps.get(LD).fingerprint()}) == 3
    # Without dates nothing moves: the standard policy keeps its fingerprint.
    assert "effective_from" not in json.dumps(standard_pack().get(LD).model_dump(mode="json",
                                              exclude={"effective_from", "effective_until"}))
    plain = loads_policy("policies: [{use: lateness-deduction}]").get(LD)
    assert plain.fingerprint() == standard_pack().get(LD).fingerprint()
    assert plain.versions == (plain,)


def test_an_event_at_exactly_effective_from_is_the_new_versions(backend: str) -> None:
    ps = loads_policy(TWO.replace("effective_from: 2026-03-16",
                                  "effective_from: 2026-03-16T09:00:00"))
    old, new = _fp(ps)
    events = [profile("E1"), profile("E2"),
              _late("2026-03-16", "E1", "09:00:00"), _late("2026-03-16", "E2", "08:59:59")]
    r1 = {d.subject.id: d for d in Engine(ps, backend=backend).evaluate(events, until=END)
          if d.rule == "R1"}
    assert r1["E1"].policy_fingerprint == new  # at the very first instant of 2026.2
    assert r1["E2"].policy_fingerprint == old  # one second before it


def test_a_month_straddling_a_change_counts_all_and_charges_each_by_its_day(
        backend: str) -> None:
    ps = loads_policy(TWO)
    old, new = _fp(ps)
    events = [profile("E1", salary="10000.00"),
              *(_late(d) for d in ("2026-03-02", "2026-03-03", "2026-03-16", "2026-03-17"))]
    out = Engine(ps, backend=backend).evaluate(events, until=END)
    running = _r2(out, "provisional")
    # Each running total is the version in force at its late day's ...
    assert [d.policy_fingerprint for d in running] == [old, old, new, new]
    assert [d.amount for d in running] == [Decimal("100.00"), Decimal("200.00"),
                                           Decimal("2000.00"), Decimal("3000.00")]
    (final,) = _r2(out)
    # ... the month's total is settled by the version in force at its last instant, its
    # tiers count all four late days (the third reaches tier_rate under tier_mode all),
    # and each late day is charged at its own version's tier rate: 5% then 10%.
    assert final.policy_fingerprint == new
    assert _rates(final) == [("2026-03-02", "0.05"), ("2026-03-03", "0.05"),
                             ("2026-03-16", "0.10"), ("2026-03-17", "0.10")]
    assert final.amount == Decimal("3000.00")
    assert set(final.supersedes) == {d.id for d in running}


def test_the_other_way_the_new_version_does_not_reprice_the_month_before(
        backend: str) -> None:
    # The change on 1 April: March is the old version's to the end (its total, settled at
    # its last instant, too); April's late days are the new one's, counted from 1 again.
    ps = loads_policy(TWO.replace("2026-03-16", "2026-04-01"))
    old, new = _fp(ps)
    events = [profile("E1", salary="10000.00"), _late("2026-03-31"), _late("2026-04-01")]
    out = Engine(ps, backend=backend).evaluate(events, until=t("2026-05-01 00:00"))
    march, april = _r2(out)
    assert (march.policy_fingerprint, march.amount) == (old, Decimal("100.00"))
    assert (april.policy_fingerprint, april.amount) == (new, Decimal("200.00"))
    assert _rates(april) == [("2026-04-01", "0.02")]


def test_a_late_event_for_an_instant_before_the_change_is_decided_by_the_old_version(
        backend: str) -> None:
    ps = loads_policy(TWO)
    old, _new = _fp(ps)
    events = [profile("E1", salary="10000.00"), _late("2026-03-16"), _late("2026-03-17"),
              _late("2026-03-13", id="late-13")]  # arrives after the change
    session = Engine(ps, backend=backend).session(allowed_lateness=timedelta(days=7))
    made = [d for e in events for d in session.feed(e)]
    made += session.advance_to(END)
    late = next(d for d in made if d.rule == "R1" and "late-13" in d.evidence)
    assert late.policy_fingerprint == old
    batch = Engine(ps, backend=backend).evaluate(events, until=END)
    # What stands of the stream (revocations only take their targets out) is the batch's.
    gone = {s for d in made for s in d.supersedes}
    assert {d.id for d in made if d.id not in gone and d.status == "final"
            and d.details["outcome"] != "revoked"} == \
        {d.id for d in batch if d.status == "final"}
    (final,) = _r2(batch)
    assert _rates(final) == [("2026-03-13", "0.05"), ("2026-03-16", "0.10"),
                             ("2026-03-17", "0.10")]


def test_streaming_and_a_restored_snapshot_switch_versions_like_the_batch(
        backend: str) -> None:
    ps = loads_policy(TWO)
    engine = Engine(ps, backend=backend)
    events = [profile("E1", salary="8000.00"), profile("E2"),
              *(_late(d, e) for d in ("2026-03-05", "2026-03-12", "2026-03-16", "2026-03-20")
                for e in ("E1", "E2"))]
    batch = engine.evaluate(events, until=END)
    session = engine.session()
    made = [d for e in events[:4] for d in session.feed(e)]  # up to 12 March: before it
    restored = engine.restore(session.snapshot())
    made += [d for e in events[4:] for d in restored.feed(e)]
    made += restored.advance_to(END)
    # The batch orders by (time, id); a stream gives decisions as they are made.
    assert sorted((d.at, d.id) for d in made) == [(d.at, d.id) for d in batch]
    assert len(_r2(batch)) == 2 and len(_r2(batch, "provisional")) == 8
    # The snapshot carries the schedule: another one is refused, naming both.
    other = Engine(loads_policy(TWO.replace("2026-03-16", "2026-03-23")), backend=backend)
    with pytest.raises(SnapshotError, match=r"2026\.2 from 2026-03-16"):
        other.restore(session.snapshot())


def test_a_distributed_audit_agrees() -> None:
    ps = loads_policy(TWO)
    events = [profile(e, salary="9000.00") for e in ("E1", "E2", "E3")] + [
        _late(d, e) for d in ("2026-03-04", "2026-03-11", "2026-03-16", "2026-03-18")
        for e in ("E1", "E2", "E3")]
    whole = Engine(ps).evaluate(events, until=END)
    split = distributed_audit(events, ps, until=END, partitions=2)
    assert [d.id for d in split] == [d.id for d in whole]
    assert len(_r2(whole)) == 3


def test_overlapping_ranges_are_an_error_naming_both_entries() -> None:
    text = TWO.replace('version: "2026.1"', 'version: "2026.1"\n    effective_until: 2026-04-01')
    with pytest.raises(PolicyFileError) as info:
        loads_policy(text, source="v.yaml")
    err = str(info.value)
    assert "v.yaml:3" in err and "v.yaml:8" in err and "2026-04-01" in err, err
    with pytest.raises(PolicyFileError, match="both in force from 2026-03-16"):
        loads_policy(TWO.replace("2026-01-01", "2026-03-16"))
    with pytest.raises(PolicyFileError, match="after effective_from"):
        loads_policy(TWO.replace('version: "2026.1"',
                                 'version: "2026.1"\n    effective_until: 2025-12-01'))
    # Touching ranges are no overlap.
    ok = loads_policy(TWO.replace('version: "2026.1"',
                                  'version: "2026.1"\n    effective_until: 2026-03-16'))
    assert len(ok.get(LD).versions) == 2


def test_one_id_twice_without_dates_is_still_an_error() -> None:
    p = standard_pack().get(LD)
    with pytest.raises(ParameterError, match="unique policy ids"):
        PolicySet([p, p])
    with pytest.raises(ParameterError, match="comes from"):
        _ = PolicySet([p]) + PolicySet([p])
    # Dated on either side: versions.
    later = p.model_copy(update={"effective_from": "2026-04-01"})
    assert len((PolicySet([p]) + PolicySet([later])).get(LD).versions) == 2


def test_an_undated_version_is_in_force_until_the_first_dated_one(backend: str) -> None:
    # The pack's policy (no dates) and a dated use: the pack's until 16 March, then it.
    ps = loads_policy("pack: standard\npolicies:\n  - use: lateness-deduction\n"
                      "    effective_from: 2026-03-16\n    parameters: {base_rate: '0.02'}\n")
    pack, dated = ps.get(LD).versions
    assert pack.fingerprint() == standard_pack().get(LD).fingerprint()
    assert pack.in_force_from() is None
    events = [profile("E1"), _late("2026-03-13"), _late("2026-03-16")]
    r1 = [d.policy_fingerprint for d in Engine(ps.select(LD), backend=backend)
          .evaluate(events, until=END) if d.rule == "R1"]
    assert r1 == [pack.fingerprint(), dated.fingerprint()]
    # Two versions from the beginning are an error.
    with pytest.raises(PolicyFileError, match="without effective_from"):
        loads_policy("policies:\n  - use: lateness-deduction\n    effective_until: 2026-03-01\n"
                     "  - use: lateness-deduction\n")


def test_before_the_first_version_nothing_is_in_force() -> None:
    ps = loads_policy(TWO.replace("2026-01-01", "2026-03-09"))
    events = [profile("E1"), _late("2026-03-02"), _late("2026-03-09")]
    r1 = [d for d in Engine(ps).evaluate(events, until=END) if d.rule == "R1"]
    assert [d.at.day for d in r1] == [9]


def test_the_cli_audits_with_a_versioned_file(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "versions.yaml").write_text(TWO, encoding="utf-8")
    log = tmp_path / "log.jsonl"
    events = [profile("E1", salary="10000.00"),
              *(_late(d) for d in ("2026-03-02", "2026-03-03", "2026-03-16", "2026-03-17"))]
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    code = main(["audit", str(log), "-p", str(tmp_path / "versions.yaml"), "--until",
                 "2026-04-01T00:00:00+08:00", "--format", "jsonl", "-q"])
    assert code == 1
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    (total,) = [r for r in rows if r["rule"] == "R2"]
    new = loads_policy(TWO).get(LD).versions[1].fingerprint()
    assert (total["amount"], total["policy_fingerprint"]) == ("3000.00", new)


def test_the_schema_takes_the_dates() -> None:
    validator = jsonschema.Draft7Validator(policy_schema())

    def errors(text: str) -> list[str]:
        data = json.loads(json.dumps(yaml.safe_load(text), default=str))
        return [e.message for e in validator.iter_errors(data)]

    assert errors(TWO) == []
    assert errors(TWO.replace("2026-03-16", "2026-03-16T08:30:00")) == []
    assert errors(TWO.replace("2026-03-16", "mid-March"))
    assert errors(TWO.replace("effective_from", "effective_form"))
    # null is "no date" to the loader, so the schema takes it too
    open_ended = TWO.replace('version: "2026.2"', 'version: "2026.2"\n    effective_until: null')
    assert errors(open_ended) == []
    assert loads_policy(open_ended).get(LD).versions[-1].effective_until is None


def test_an_audit_reports_each_versions_fingerprint_and_dates() -> None:
    from policykit import audit

    ps = loads_policy(TWO)
    report = audit([profile("E1"), _late("2026-03-16")], policy=ps, until=END)
    (entry,) = report.provenance["policies"]
    assert [(v["version"], v["fingerprint"], v["effective_from"]) for v in entry["versions"]] \
        == [(v.version, v.fingerprint(), v.effective_from.isoformat())  # type: ignore[union-attr]
            for v in ps.get(LD).versions]
    made = {d.policy_fingerprint for d in report.decisions if d.rule == "R1"}
    assert made == {ps.get(LD).versions[1].fingerprint()}
    plain = audit([profile("E1")], policy=standard_pack().select(LD), until=END)
    assert "versions" not in plain.provenance["policies"][0]


def test_a_bad_date_names_its_field_and_line() -> None:
    with pytest.raises(PolicyFileError) as info:
        loads_policy(TWO.replace("2026-03-16", "mid-March"), source="v.yaml")
    assert info.value.path == "policies[1].effective_from" and info.value.line == 9
    assert "mid-March" in str(info.value) and "2026-04-01T08:00:00" in str(info.value)


def test_a_one_policy_file_with_a_date_decides_only_from_it(tmp_path: Path) -> None:
    from policykit.policyfile import load_policy

    own = {"id": "my-late", "title": "late", "clause": "c", "effective_from": "2026-03-16",
           "rules": [{"shape": "recurrence", "id": "R1", "occurrence":
                      {"type": "attendance.clock_in"}, "window": {"unit": "working_day"},
                      "subject": {"kind": "employee", "field": "employee_id"},
                      "due": {"time": "work_start"}, "outcomes": {"late": "violation"}}]}
    path = tmp_path / "own.json"
    path.write_text(json.dumps(own), encoding="utf-8")
    out = Engine(load_policy(path)).evaluate([_late("2026-03-13"), _late("2026-03-16")],
                                             until=END)
    assert [d.at.day for d in out] == [16]


def test_many_versions_are_joined_once() -> None:
    # Joined when the file is read, not one by one (which re-validated every prefix).
    from datetime import date

    days = [date(2020, 1, 1) + timedelta(days=i) for i in range(150)]
    text = "policies:\n" + "".join(f"  - {{use: site-access, effective_from: {d}}}\n"
                                   for d in days)
    versions = loads_policy(text).get("site-access").versions
    assert [v.effective_from for v in versions] == days
    assert PolicySet(versions).get("site-access").fingerprint() == \
        loads_policy(text).get("site-access").fingerprint()


# The monthly cap (R6, a cap rule reading every policy's money) across a change.
CAPPED = """
policies:
  - use: lateness-deduction
    version: "A"
    parameters: {monthly_cap_rate: "0.03"}
  - use: lateness-deduction
    version: "B"
    effective_from: 2026-03-16
    parameters: {monthly_cap_rate: %s}
"""


@pytest.mark.parametrize(("cap", "reduction"), [('"0.10"', "-1000.00"), ("null", None)])
def test_the_cap_in_force_at_the_months_end_limits_the_whole_month(
        backend: str, cap: str, reduction: str | None) -> None:
    # Four late days, two before the change: 4 × 5% = 2,000.00 for the month. B's cap (10%)
    # limits it to 1,000.00, counting A's days too; a B without a cap (null) reduces
    # nothing, where it once crashed on the timer A's cap had set for the month's end.
    ps = loads_policy(CAPPED % cap)
    events = [profile("E1", salary="10000.00"),
              *(_late(d) for d in ("2026-03-02", "2026-03-03", "2026-03-16", "2026-03-17"))]
    out = Engine(ps, backend=backend).evaluate(events, until=END)
    assert [d.amount for d in _r2(out)] == [Decimal("2000.00")]
    r6 = [d for d in out if d.rule == "R6"]
    assert [str(d.amount) for d in r6] == ([reduction] if reduction else [])
    if r6:
        assert r6[0].policy_fingerprint == ps.get(LD).versions[1].fingerprint()


def test_a_distributed_audit_refuses_a_cap_of_an_earlier_version() -> None:
    # The latest version has no cap, an earlier one has: the set still reads every
    # policy's money, which shards run apart (it once ran, silently without the cap).
    ps = loads_policy(CAPPED % "null")
    with pytest.raises(ParameterError, match="lateness-deduction R6"):
        distributed_audit([profile("E1")], ps, until=END, partitions=2)


@pytest.mark.parametrize("value", ["20260401", "'20260401'", "20260401.5", "true"])
def test_a_number_is_no_date(value: str) -> None:
    # Read as seconds since 1970 it was a version in force from 23 August 1970; the schema
    # refuses it too.
    text = f"policies:\n  - use: lateness-deduction\n    effective_from: {value}\n"
    with pytest.raises(PolicyFileError) as info:
        loads_policy(text, source="v.yaml")
    assert info.value.path == "policies[0].effective_from" and info.value.line == 3
    assert "2026-04-01T08:00:00" in str(info.value)
    validator = jsonschema.Draft7Validator(policy_schema())
    assert list(validator.iter_errors(yaml.safe_load(text)))


def test_check_lists_the_versions_of_files_given_together(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One version per file (-p a.yaml -p b.yaml, or check a.yaml b.yaml): they join.
    first, second = TWO.split("  - use: lateness-deduction\n    version: \"2026.2\"")
    (tmp_path / "a.yaml").write_text(first, encoding="utf-8")
    (tmp_path / "b.yaml").write_text(
        "policies:\n  - use: lateness-deduction\n    version: \"2026.2\"" + second,
        encoding="utf-8")
    assert main(["check", str(tmp_path / "a.yaml"), str(tmp_path / "b.yaml")]) == 0
    assert "versions: 2026.1 from 2026-01-01, 2026.2 from 2026-03-16" in capsys.readouterr().out


def test_dates_without_offset_are_in_the_policy_calendars_zone(backend: str) -> None:
    # A Berlin calendar: the change at 09:00 Berlin wall time (08:00 UTC in winter), and
    # a change given with another zone's offset is that instant.
    from datetime import datetime
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    cal = "\n    calendar: {timezone: Europe/Berlin, holiday_source: none}"
    for start in ("2026-03-16T09:00:00", "2026-03-16T16:00:00+08:00"):
        ps = loads_policy(TWO.replace('version: "2026.1"', 'version: "2026.1"' + cal)
                          .replace('version: "2026.2"', 'version: "2026.2"' + cal)
                          .replace("2026-03-16", start))
        old, new = _fp(ps)
        at = datetime(2026, 3, 16, 9, tzinfo=berlin)
        events = [profile("E1"), profile("E2"),
                  ev("attendance.clock_in", at, employee_id="E1"),
                  ev("attendance.clock_in", at - timedelta(microseconds=1), employee_id="E2")]
        r1 = {d.subject.id: d.policy_fingerprint for d in Engine(ps, backend=backend)
              .evaluate(events, until=END) if d.rule == "R1"}
        assert r1 == {"E1": new, "E2": old}, start


def test_a_deadline_opened_before_a_change_keeps_its_due_and_the_new_version_judges(
        backend: str) -> None:
    ps = loads_policy("policies:\n  - use: complaint-handling\n    version: A\n"
                      "    parameters: {report_within: P1D}\n"
                      "  - use: complaint-handling\n    version: B\n"
                      "    effective_from: 2026-03-16\n    parameters: {report_within: PT4H}\n")
    old, new = (v.fingerprint() for v in ps.get("complaint-handling").versions)

    def complaint(cid: str, received: str, investigated: str) -> list[dict[str, Any]]:
        return [ev("complaint.received", received, complaint_id=cid, household_id="H1",
                   employee_id="E1", kind="complaint"),
                ev("complaint.investigated", investigated, complaint_id=cid,
                   employee_id="E2", outcome="solved")]

    events = [profile("E1"), profile("E2"),
              *complaint("C1", "2026-03-15 19:00", "2026-03-15 20:00"),  # due +1 day
              *complaint("C2", "2026-03-16 08:00", "2026-03-16 09:00")]  # due +4 hours
    missed = {d.details["key"]: (d.at, d.policy_fingerprint) for d in
              Engine(ps, backend=backend).evaluate(events, until=t("2026-03-20 00:00"))
              if d.spec_rule == "R2b"}
    assert missed == {"C1": (t("2026-03-16 20:00"), new), "C2": (t("2026-03-16 13:00"), new)}
    assert old != new
