"""The *precondition* shape's boundaries: a prior exactly at the action counts and one a
second after does not; a validity interval from the prior's fields must cover the action
(remote access authorizations, as service-delivery R1 uses them, joined on request_id and
customer_id); revocation; ``differ`` / ``same``; late priors with ``settle_within`` (how long
the action went uncovered) and ``grace``; ``max_age``; ``cosign``; conditions on the
action's own fields; validation."""

from __future__ import annotations

from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision, Engine, Policy
from policykit.errors import PolicyFileError


def policy(**rule: Any) -> Policy:
    """The service-delivery R1 shape: a remote session needs an authorization of the same
    request and customer, granted before it, valid at its start."""
    base: dict[str, Any] = {
        "shape": "precondition", "id": "R1", "title": "remote access authorized",
        "severity": "high",
        "event": {"type": "remote.session_started"},
        "key": ["request_id", "customer_id"],
        "prior": {"type": "remote.authorized", "valid_from": "valid_from",
                  "valid_until": "valid_until"},
        "subject": {"kind": "employee", "field": "employee_id"},
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    return Policy.model_validate({"id": "pre-test", "title": "precondition test",
                                  "clause": "篇二 §十.2", "rules": [base]})


def auth(at: str, frm: str, until: str, request: str = "Q1", customer: str = "C1",
         **kw: Any) -> dict[str, Any]:
    return ev("remote.authorized", at, request_id=request, customer_id=customer,
              valid_from=t(frm).isoformat(), valid_until=t(until).isoformat(),
              granted_by="boss", **kw)


def session(at: str, request: str = "Q1", customer: str = "C1", **kw: Any) -> dict[str, Any]:
    return ev("remote.session_started", at, request_id=request, customer_id=customer,
              employee_id="E1", **kw)


def outcomes(out: list[Decision]) -> list[str]:
    return [d.details["outcome"] for d in out]


# -- validity and timing ----------------------------------------------------------------


def test_authorization_before_and_covering_the_start_is_fine(evaluate: Evaluate) -> None:
    events = [auth("2026-03-02 09:00", "2026-03-02 09:00", "2026-03-02 12:00"),
              session("2026-03-02 10:00")]
    assert evaluate(events, policy=policy()) == []


def test_authorization_granted_after_the_start_does_not_count(evaluate: Evaluate) -> None:
    start = session("2026-03-02 10:00", id="s1")
    events = [start, auth("2026-03-02 10:00:01", "2026-03-02 09:00", "2026-03-02 12:00")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=policy())
    assert len(out) == 1
    d = out[0]
    assert d.kind == "violation" and d.severity == "high" and d.at == t("2026-03-02 10:00")
    assert d.details["reason"] == "missing" and d.evidence == ("s1",)
    assert d.subject.id == "E1"
    assert d.details["request_id"] == "Q1" and d.details["customer_id"] == "C1"


def test_authorization_at_the_same_instant_counts_when_applied_first(
        evaluate: Evaluate) -> None:
    events = [auth("2026-03-02 10:00", "2026-03-02 10:00", "2026-03-02 12:00", id="a"),
              session("2026-03-02 10:00", id="b")]
    assert evaluate(events, policy=policy()) == []


@pytest.mark.parametrize("frm, until, reason", [
    ("2026-03-02 10:00:01", "2026-03-02 12:00", "not_yet_valid"),
    ("2026-03-02 08:00", "2026-03-02 09:59:59", "expired"),
])
def test_validity_must_cover_the_start(evaluate: Evaluate, frm: str, until: str,
                                       reason: str) -> None:
    events = [auth("2026-03-02 08:00", frm, until, id="a1"), session("2026-03-02 10:00")]
    out = evaluate(events, policy=policy())
    assert outcomes(out) == ["unmet"]
    assert out[0].details["reason"] == reason
    assert "a1" in out[0].evidence


def test_validity_bounds_are_inclusive(evaluate: Evaluate) -> None:
    events = [auth("2026-03-02 08:00", "2026-03-02 10:00", "2026-03-02 10:00"),
              session("2026-03-02 10:00")]
    assert evaluate(events, policy=policy()) == []


def test_join_on_both_key_fields(evaluate: Evaluate) -> None:
    events = [auth("2026-03-02 08:00", "2026-03-02 08:00", "2026-03-02 12:00", customer="C2"),
              auth("2026-03-02 08:00", "2026-03-02 08:00", "2026-03-02 12:00", request="Q2"),
              session("2026-03-02 10:00")]
    out = evaluate(events, policy=policy())
    assert outcomes(out) == ["unmet"] and out[0].details["reason"] == "missing"


def test_revoked_authorization_no_longer_holds(evaluate: Evaluate) -> None:
    # a customer withdrawing consent, modelled as an authorization by "revoked"
    pol = policy(prior={"type": "remote.authorized", "valid_from": "valid_from",
                        "valid_until": "valid_until",
                        "revoke": [{"type": "remote.authorized",
                                    "where": {"granted_by": "revoked"}}]})
    grant = auth("2026-03-02 08:00", "2026-03-02 08:00", "2026-03-02 12:00")
    withdraw = ev("remote.authorized", "2026-03-02 09:00", request_id="Q1", customer_id="C1",
                  valid_from=t("2026-03-02 09:00").isoformat(),
                  valid_until=t("2026-03-02 09:00").isoformat(), granted_by="revoked")
    start = session("2026-03-02 10:00")
    assert outcomes(evaluate([grant, withdraw, start], policy=pol)) == ["unmet"]
    assert evaluate([grant, start], policy=pol) == []


# -- shifts: differ, revoke by the same guard, settle -----------------------------------


def relief_policy(**kw: Any) -> Policy:
    rule: dict[str, Any] = {
        "event": {"type": "shift.ended"}, "key": "post_id",
        "prior": {"type": "shift.started", "differ": {"guard_id": "guard_id"},
                  "revoke": [{"type": "shift.ended", "same": {"guard_id": "guard_id"}}]},
        "subject": {"kind": "employee", "field": "guard_id"},
        "settle_within": "PT1H", "on_unsettled": "drop",
    }
    rule.update(kw)
    return policy(**rule)


def shift(kind: str, at: str, guard: str, post: str = "P1", **kw: Any) -> dict[str, Any]:
    return ev(f"shift.{kind}", at, post_id=post, guard_id=guard, **kw)


def test_leaving_after_the_relief_arrived_is_fine(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("started", "2026-03-02 19:55", "B"),
              shift("ended", "2026-03-02 20:00", "A")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy()) == []


def test_late_relief_reports_the_uncovered_time(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"),
              shift("ended", "2026-03-02 19:59", "A", id="end"),
              shift("started", "2026-03-02 20:00", "B", id="relief")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy())
    assert outcomes(out) == ["late"]
    d = out[0]
    assert d.subject.id == "A" and d.at == t("2026-03-02 20:00")
    assert d.details["waited"] == "PT1M" and d.details["waited_seconds"] == 60
    assert d.evidence == ("end", "relief")


def test_relief_at_the_same_instant_is_fine(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"),
              shift("ended", "2026-03-02 20:00", "A", id="a-end"),
              shift("started", "2026-03-02 20:00", "B", id="b-start")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy()) == []


def test_own_start_or_a_guard_who_left_does_not_relieve(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("started", "2026-03-02 09:00", "B"),
              shift("ended", "2026-03-02 10:00", "B"),        # B gone again
              shift("ended", "2026-03-02 20:00", "A")]
    out = evaluate(events, until=t("2026-03-03 00:00"),
                   policy=relief_policy(settle_within=None, on_unsettled="emit"))
    assert [(d.subject.id, d.details["outcome"]) for d in out] == [("A", "unmet")]


def test_unsettled_drop_or_emit(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("ended", "2026-03-02 20:00", "A")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy()) == []
    out = evaluate(events, until=t("2026-03-03 00:00"),
                   policy=relief_policy(on_unsettled="emit"))
    assert outcomes(out) == ["unmet"] and out[0].at == t("2026-03-02 21:00")
    assert out[0].details["waited"] == "PT1H"
    # a relief after the wait is no longer this rule's
    late = [*events, shift("started", "2026-03-02 21:00:01", "B")]
    assert evaluate(late, until=t("2026-03-03 00:00"), policy=relief_policy()) == []
    # exactly at the end of the wait still settles (events before timers)
    edge = [*events, shift("started", "2026-03-02 21:00", "B")]
    out = evaluate(edge, until=t("2026-03-03 00:00"), policy=relief_policy())
    assert outcomes(out) == ["late"] and out[0].details["waited"] == "PT1H"


def test_one_relief_settles_everyone_waiting(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("started", "2026-03-02 08:00", "C"),
              shift("ended", "2026-03-02 19:50", "A"), shift("ended", "2026-03-02 19:55", "C"),
              shift("started", "2026-03-02 20:00", "B")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy())
    assert sorted((d.subject.id, d.details["waited"]) for d in out) == [("C", "PT5M")]
    # A left while C was still there: only C left the post empty


def test_settle_without_a_limit_waits_for_the_prior(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("ended", "2026-03-02 20:00", "A"),
              shift("started", "2026-03-04 08:00", "B")]
    pol = relief_policy(settle=True, settle_within=None)
    out = evaluate(events, until=t("2026-03-05 00:00"), policy=pol)
    assert outcomes(out) == ["late"] and out[0].details["waited"] == "P1DT12H"
    # the wait ends when the action is forgotten: dropped (or unmet) then, not kept for ever
    short = relief_policy(settle=True, settle_within=None, forget_after="P1D",
                          on_unsettled="emit")
    out = evaluate(events[:2], until=t("2026-03-05 00:00"), policy=short)
    assert outcomes(out) == ["unmet"] and out[0].at == t("2026-03-03 20:00")
    # settle_within given as well caps the wait (here: the relief is too late)
    capped = relief_policy(settle=True, settle_within="PT1H")
    assert evaluate(events, until=t("2026-03-05 00:00"), policy=capped) == []


def test_settle_ignores_lets_the_same_guard_end_the_wait(evaluate: Evaluate) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("ended", "2026-03-02 20:00", "A"),
              shift("started", "2026-03-02 20:40", "A", id="back")]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=relief_policy()) == []
    out = evaluate(events, until=t("2026-03-03 00:00"),
                   policy=relief_policy(settle_ignores=["guard_id"]))
    assert outcomes(out) == ["late"] and out[0].details["prior_event"] == "back"
    assert out[0].details["waited"] == "PT40M"
    # at the departure itself the guard's own shift still does not count
    alone = [shift("started", "2026-03-02 08:00", "A"), shift("ended", "2026-03-02 20:00", "A")]
    assert outcomes(evaluate(alone, until=t("2026-03-03 00:00"),
                             policy=relief_policy(settle_ignores=["guard_id"],
                                                  on_unsettled="emit"))) == ["unmet"]


def gated_record_policy(**kw: Any) -> Policy:
    """A handover record owed only where a relief (another guard) is on the post or comes
    within the grace."""
    rule: dict[str, Any] = {
        "only_if": {"type": "shift.started", "differ": {"guard_id": "guard_id"},
                    "revoke": [{"type": "shift.ended", "same": {"guard_id": "guard_id"}}]},
        "grace": "PT15M"}
    rule.update(kw)
    return policy(event={"type": "shift.ended"}, key="post_id",
                  prior={"type": "shift.handover_recorded",
                         "same": {"guard_id": "from_guard"}, "max_age": "PT15M"},
                  subject={"kind": "employee", "field": "guard_id"}, **rule)


@pytest.mark.parametrize("relief, owed", [
    ("2026-03-02 19:55", True),        # on the post at the end
    ("2026-03-02 20:15", True),        # exactly the grace after
    ("2026-03-02 20:15:01", False),    # after the grace: nobody to hand over to
    (None, False),                     # never
])
def test_only_if_gates_the_action(evaluate: Evaluate, relief: str | None, owed: bool) -> None:
    events = [shift("started", "2026-03-02 08:00", "A"), shift("ended", "2026-03-02 20:00", "A")]
    if relief:
        events.append(shift("started", relief, "B"))
    events.sort(key=lambda e: e["at"])
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=gated_record_policy())
    assert outcomes(out) == (["unmet"] if owed else [])
    off = gated_record_policy(only_if={"type": "shift.started", "required": False})
    assert outcomes(evaluate(events, until=t("2026-03-03 00:00"), policy=off)) == ["unmet"]


def test_only_if_ignores_the_guards_own_start_and_a_relief_gone_again(
        evaluate: Evaluate) -> None:
    # B leaves while A is on the post (a record owed by B); A leaves alone later: A's own
    # start and B, gone since, make no change of guard.
    events = [shift("started", "2026-03-02 08:00", "A"), shift("started", "2026-03-02 09:00", "B"),
              shift("ended", "2026-03-02 10:00", "B"), shift("ended", "2026-03-02 20:00", "A")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=gated_record_policy())
    assert [(d.subject.id, d.at) for d in out] == [("B", t("2026-03-02 10:15"))]
    # without a wait the gate is judged at the action alone
    now = gated_record_policy(grace=None)
    assert [d.subject.id for d in evaluate(events, until=t("2026-03-03 00:00"),
                                           policy=now)] == ["B"]
    there = [*events[:3], shift("started", "2026-03-02 19:00", "C"), events[3]]
    assert [d.subject.id for d in evaluate(there, until=t("2026-03-03 00:00"),
                                           policy=now)] == ["B", "A"]


# -- grace, max_age, same, cosign -------------------------------------------------------


def record_policy(required: bool = False) -> Policy:
    return policy(event={"type": "shift.ended"}, key="post_id",
                  prior={"type": "shift.handover_recorded",
                         "same": {"guard_id": "from_guard"},
                         "differ": {"guard_id": "to_guard"}, "max_age": "PT15M",
                         "cosign": {"field": "signed_by", "by": ["from_guard", "to_guard"],
                                    "required": required}},
                  grace="PT15M", subject={"kind": "employee", "field": "guard_id"})


def record(at: str, frm: str = "A", to: str = "B", **kw: Any) -> dict[str, Any]:
    return ev("shift.handover_recorded", at, post_id="P1", from_guard=frm, to_guard=to, **kw)


@pytest.mark.parametrize("when, ok", [
    ("2026-03-02 19:45", True),        # exactly max_age before
    ("2026-03-02 19:44:59", False),    # one second older
    ("2026-03-02 20:15", True),        # exactly the grace after
    ("2026-03-02 20:15:01", False),    # one second after the grace
])
def test_record_window_before_and_after(evaluate: Evaluate, when: str, ok: bool) -> None:
    events = [shift("ended", "2026-03-02 20:00", "A", id="end"), record(when)]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=record_policy())
    if ok:
        assert out == []
    else:
        assert outcomes(out) == ["unmet"] and out[0].at == t("2026-03-02 20:15")
        assert out[0].evidence[0] == "end"


def test_too_old_reason(evaluate: Evaluate) -> None:
    events = [record("2026-03-02 19:00", id="old"), shift("ended", "2026-03-02 20:00", "A")]
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=record_policy())
    assert out[0].details["reason"] == "too_old"


def test_record_must_name_the_leaving_guard_and_another(evaluate: Evaluate) -> None:
    end = shift("ended", "2026-03-02 20:00", "A")
    for bad in (record("2026-03-02 20:01", frm="X"), record("2026-03-02 20:01", to="A")):
        assert outcomes(evaluate([end, bad], until=t("2026-03-03 00:00"),
                                 policy=record_policy())) == ["unmet"]


def test_cosign(evaluate: Evaluate) -> None:
    events = [shift("ended", "2026-03-02 20:00", "A"), record("2026-03-02 20:01",
                                                                signed_by=["A"])]
    assert evaluate(events, until=t("2026-03-03 00:00"), policy=record_policy()) == []
    out = evaluate(events, until=t("2026-03-03 00:00"), policy=record_policy(required=True))
    assert outcomes(out) == ["unmet"]
    signed = [events[0], record("2026-03-02 20:01", signed_by=["B", "A"])]
    assert evaluate(signed, until=t("2026-03-03 00:00"), policy=record_policy(True)) == []
    before = [record("2026-03-02 19:59", signed_by=["A"]), events[0]]
    out = evaluate(before, until=t("2026-03-03 00:00"), policy=record_policy(True))
    assert out[0].details["reason"] == "unsigned"


def test_grace_without_settle_late_prior_in_between() -> None:
    # settle_within longer than the grace: a record after the grace is "late", not "unmet"
    pol = policy(event={"type": "shift.ended"}, key="post_id",
                 prior={"type": "shift.handover_recorded", "same": {"guard_id": "from_guard"}},
                 grace="PT15M", settle_within="PT1H",
                 subject={"kind": "employee", "field": "guard_id"})
    out = Engine(pol).evaluate([shift("ended", "2026-03-02 20:00", "A"),
                                record("2026-03-02 20:20")], until=t("2026-03-03 00:00"))
    assert outcomes(out) == ["late"] and out[0].details["waited"] == "PT20M"


# -- the action's own fields ------------------------------------------------------------


def test_require_on_the_action_fields(evaluate: Evaluate) -> None:
    pol = policy(event={"type": "visitor.arrived", "where": {"admitted": True}}, key="visit_id",
                 prior=None, require={"registered": True, "has_id_document": True})

    def visitor(**kw: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"post_id": "G", "employee_id": "E1",
                                  "has_id_document": True, "registered": True, "admitted": True}
        fields.update(kw)
        return ev("visitor.arrived", "2026-03-02 10:00", visit_id="v", **fields)

    assert evaluate([visitor()], policy=pol) == []
    assert evaluate([visitor(registered=False, has_id_document=False, admitted=False)],
                    policy=pol) == []
    out = evaluate([visitor(registered=False, has_id_document=False)], policy=pol)
    assert outcomes(out) == ["incomplete"]
    assert out[0].details["missing"] == "registered, has_id_document"
    two = evaluate([visitor(registered=False), visitor(registered=False)], policy=pol)
    assert len({d.id for d in two}) == 2  # same instant, same guard: still two decisions


# -- validation -------------------------------------------------------------------------


@pytest.mark.parametrize("rule, message", [
    ({"prior": None}, "prior or require"),
    ({"prior": None, "require": {"employee_id": "E1"}, "grace": "PT1M"}, "need a prior"),
    ({"prior": {"type": "remote.authorized", "valid_until": "valid_to"}}, "valid_to"),
    ({"prior": {"type": "remote.authorized", "differ": {"employe_id": "employee_id"}}},
     "employee_id"),
    ({"grace": "PT1H", "settle_within": "PT10M"}, "shorter than grace"),
    ({"prior": {"type": "remote.authorized", "key": ["request_id"]}}, "as many fields"),
    ({"require": {"admitted": {"gt": "x"}}}, "admitted"),
    ({"prior": None, "require": {"employee_id": "E1"}, "settle": True}, "need a prior"),
    ({"settle_ignores": ["employee_id"]}, "not an action field of prior.differ"),
    ({"only_if": {"type": "remote.authorized", "differ": {"employee_id": "granted_bx"}}},
     "granted_by"),
    ({"only_if": {"type": "remote.authorized", "key": ["request_id"]}}, "as many fields"),
])
def test_validation(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyFileError, match=message):
        policy(**rule)
