"""service-delivery (篇二 §十.2): remote access only under a prior customer authorization
covering its start (one granted after the session started does not count), the
hotline → remote → on-site order as a warning, on-site departure and per-site arrival."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision

POLICY = "service-delivery"
UNTIL = t("2026-04-01 00:00")


def authorized(at: str, valid_from: str, valid_until: str, request: str = "Q1",
               customer: str = "C1") -> dict[str, Any]:
    return ev("remote.authorized", at, request_id=request, customer_id=customer,
              valid_from=t(valid_from).isoformat(), valid_until=t(valid_until).isoformat(),
              granted_by="customer-it")


def session(at: str, request: str = "Q1", customer: str = "C1") -> dict[str, Any]:
    return ev("remote.session_started", at, request_id=request, customer_id=customer,
              employee_id="E1")


def ended(at: str, started: str, request: str = "Q1", customer: str = "C1") -> dict[str, Any]:
    return ev("remote.session_ended", at, request_id=request, customer_id=customer,
              employee_id="E1", started_at=t(started).isoformat())


def step(at: str, name: str, outcome: str = "unsolved") -> dict[str, Any]:
    return ev("service.step", at, request_id="Q1", step=name, outcome=outcome,
              employee_id="E1")


def onsite(kind: str, at: str, site: str = "S1") -> dict[str, Any]:
    return ev(f"onsite.{kind}", at, request_id="Q1", site_id=site, employee_id="E1")


def of(out: list[Decision], rule: str) -> list[Decision]:
    return [d for d in out if d.spec_rule == rule]


# -- R1 remote access needs authorization ----------------------------------------------------


def test_r1_authorized_before_and_valid_at_the_start(evaluate: Evaluate) -> None:
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 18:00"),
              session("2026-03-02 10:00")]
    assert evaluate(events, until=UNTIL, policy=POLICY) == []


def test_r1_session_without_authorization_is_high_severity(evaluate: Evaluate) -> None:
    s = session("2026-03-02 10:00")
    (d,) = of(evaluate([s], until=UNTIL, policy=POLICY), "R1")
    assert (d.kind, d.severity, d.subject.id, d.at) == (
        "violation", "high", "E1", t("2026-03-02 10:00"))
    assert d.evidence[0] == s["id"]


def test_r1_authorization_granted_after_the_session_started_does_not_count(
        evaluate: Evaluate) -> None:
    # Its validity even reaches back before the session: what matters is when it was granted.
    events = [session("2026-03-02 10:00"),
              authorized("2026-03-02 10:05", "2026-03-02 09:00", "2026-03-02 18:00")]
    (d,) = of(evaluate(events, until=UNTIL, policy=POLICY), "R1")
    assert (d.kind, d.severity, d.at) == ("violation", "high", t("2026-03-02 10:00"))


@pytest.mark.parametrize(("valid_from", "valid_until", "customer", "reason"), [
    ("2026-03-02 10:30", "2026-03-02 18:00", "C1", "not_yet_valid"),
    ("2026-03-01 09:00", "2026-03-02 09:59:59", "C1", "expired"),
    ("2026-03-02 09:00", "2026-03-02 18:00", "C2", "missing"),  # another customer's
])
def test_r1_authorization_must_cover_the_start(evaluate: Evaluate, valid_from: str,
                                              valid_until: str, customer: str,
                                              reason: str) -> None:
    events = [authorized("2026-03-02 09:00", valid_from, valid_until, customer=customer),
              session("2026-03-02 10:00")]
    (d,) = of(evaluate(events, until=UNTIL, policy=POLICY), "R1")
    assert d.details["reason"] == reason


def test_r1_authorization_valid_exactly_at_the_start(evaluate: Evaluate) -> None:
    events = [authorized("2026-03-02 09:00", "2026-03-02 10:00", "2026-03-02 10:00"),
              session("2026-03-02 10:00")]
    assert of(evaluate(events, until=UNTIL, policy=POLICY), "R1") == []


def test_r1_authorization_scope_is_a_parameter(evaluate: Evaluate) -> None:
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 18:00",
                         request="Q0"),
              session("2026-03-02 10:00", request="Q1")]
    assert len(of(evaluate(events, until=UNTIL, policy=POLICY), "R1")) == 1
    assert of(evaluate(events, until=UNTIL, policy=POLICY, authorization_key="customer_id"),
              "R1") == []


# -- R1b the authorization covers the whole session (remote.session_ended) -------------------


def test_r1b_a_session_outlasting_its_authorization_is_a_violation_at_its_end(
        evaluate: Evaluate) -> None:
    # Valid at the start (R1 is met), expired at 12:00 while the session ran until 12:30.
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 12:00"),
              session("2026-03-02 10:00"), ended("2026-03-02 12:30", "2026-03-02 10:00")]
    out = evaluate(events, until=UNTIL, policy=POLICY)
    (d,) = out
    assert (d.rule, d.part, d.kind, d.severity, d.at) == (
        "R1", "R1b", "violation", "high", t("2026-03-02 12:30"))
    assert d.details["reason"] == "outlasted"
    assert d.evidence == (events[2]["id"], events[0]["id"])


def test_r1b_a_session_ending_exactly_at_the_expiry_is_covered(evaluate: Evaluate) -> None:
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 12:00"),
              session("2026-03-02 10:00"), ended("2026-03-02 12:00", "2026-03-02 10:00")]
    assert evaluate(events, until=UNTIL, policy=POLICY) == []


def test_r1b_a_later_authorization_does_not_cover_the_session(evaluate: Evaluate) -> None:
    # A second authorization granted mid-session does not cover it: one authorization
    # granted before the start must cover the whole session.
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 11:00"),
              session("2026-03-02 10:00"),
              authorized("2026-03-02 10:30", "2026-03-02 10:30", "2026-03-02 18:00"),
              ended("2026-03-02 12:00", "2026-03-02 10:00")]
    (d,) = evaluate(events, until=UNTIL, policy=POLICY)
    assert (d.part, d.details["reason"]) == ("R1b", "outlasted")


def test_r1b_an_unauthorized_session_is_reported_once_at_its_start(
        evaluate: Evaluate) -> None:
    # No authorization, or one granted after the start: R1 at the start, not again at the end.
    for events in ([session("2026-03-02 10:00"), ended("2026-03-02 11:00", "2026-03-02 10:00")],
                   [session("2026-03-02 10:00"),
                    authorized("2026-03-02 10:05", "2026-03-02 09:00", "2026-03-02 10:30"),
                    ended("2026-03-02 11:00", "2026-03-02 10:00")]):
        out = evaluate(events, until=UNTIL, policy=POLICY)
        assert [(d.rule, d.part, d.at) for d in out] == [("R1", None, t("2026-03-02 10:00"))]


def test_r1b_without_session_ends_the_old_result_stands(evaluate: Evaluate) -> None:
    # The same session without its end: judged at the start only, as before the event existed.
    events = [authorized("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 12:00"),
              session("2026-03-02 10:00")]
    assert evaluate(events, until=UNTIL, policy=POLICY) == []


# -- R2 hotline, then remote, then on site ---------------------------------------------------


def test_r2_full_ladder_gives_nothing(evaluate: Evaluate) -> None:
    events = [step("2026-03-02 09:00", "hotline"), step("2026-03-02 10:00", "remote"),
              step("2026-03-02 11:00", "onsite", "solved")]
    assert evaluate(events, until=UNTIL, policy=POLICY) == []


def test_r2_remote_without_hotline_is_a_warning(evaluate: Evaluate) -> None:
    out = evaluate([step("2026-03-02 10:00", "remote", "solved")], until=UNTIL, policy=POLICY)
    (d,) = of(out, "R2")
    assert (d.kind, d.severity, d.at) == ("warning", "low", t("2026-03-02 10:00"))
    assert not [x for x in out if x.kind == "violation"]


def test_r2b_onsite_skipping_remote_is_a_warning(evaluate: Evaluate) -> None:
    out = evaluate([step("2026-03-02 09:00", "hotline"),
                    step("2026-03-02 11:00", "onsite", "solved")], until=UNTIL, policy=POLICY)
    assert [(d.spec_rule, d.kind) for d in out] == [("R2b", "warning")]


# -- R3 departure and arrival ----------------------------------------------------------------


def test_r3_departure_within_an_hour(evaluate: Evaluate) -> None:
    ok = [onsite("dispatched", "2026-03-02 09:00"), onsite("departed", "2026-03-02 10:00"),
          onsite("arrived", "2026-03-02 13:00")]
    assert evaluate(ok, until=UNTIL, policy=POLICY) == []
    late = [onsite("dispatched", "2026-03-02 09:00"), onsite("departed", "2026-03-02 10:00:01"),
            onsite("arrived", "2026-03-02 13:00")]
    (d,) = evaluate(late, until=UNTIL, policy=POLICY)
    assert (d.rule, d.kind, d.at, d.subject.id) == ("R3", "violation", t("2026-03-02 10:00"),
                                                    "E1")
    assert "S1" in d.message


def test_r3b_arrival_within_the_default_sla(evaluate: Evaluate) -> None:
    late = [onsite("dispatched", "2026-03-02 09:00"), onsite("departed", "2026-03-02 09:30"),
            onsite("arrived", "2026-03-02 13:00:01")]
    (d,) = evaluate(late, until=UNTIL, policy=POLICY)
    assert (d.spec_rule, d.at, d.details["deadline"]) == ("R3b", t("2026-03-02 13:00"), "PT4H")


def test_r3b_arrival_sla_looked_up_per_site(evaluate: Evaluate) -> None:
    sla = {"S-far": "PT8H", "S-core": "PT2H"}
    far = [onsite("dispatched", "2026-03-02 09:00", "S-far"),
           onsite("departed", "2026-03-02 09:30", "S-far"),
           onsite("arrived", "2026-03-02 16:00", "S-far")]
    assert evaluate(far, until=UNTIL, policy=POLICY, arrival_sla=sla) == []
    core = [onsite("dispatched", "2026-03-02 09:00", "S-core"),
            onsite("departed", "2026-03-02 09:30", "S-core"),
            onsite("arrived", "2026-03-02 11:30", "S-core")]
    (d,) = evaluate(core, until=UNTIL, policy=POLICY, arrival_sla=sla)
    assert (d.spec_rule, d.at) == ("R3b", t("2026-03-02 11:00"))


def test_r3_a_second_dispatch_is_judged_again(evaluate: Evaluate) -> None:
    events = [onsite("dispatched", "2026-03-02 09:00"), onsite("departed", "2026-03-02 09:30"),
              onsite("arrived", "2026-03-02 12:00"),
              onsite("dispatched", "2026-03-05 09:00")]
    out = evaluate(events, until=UNTIL, policy=POLICY)
    assert sorted((d.spec_rule, d.at) for d in out) == [("R3", t("2026-03-05 10:00")),
                                                  ("R3b", t("2026-03-05 13:00"))]
