"""The *deadline* shape's boundaries: exactly at the deadline is in time and one second after
is missed; working-time deadlines over weekends, holidays and make-up days; warnings,
escalations, announcements, cancel, breach, ``once``; and the case features policies build
on (``start``, ``restart``, ``open_ended``, ``reassign``, ``correlate``, ``alias``)."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import pytest
from helpers import Evaluate, ev, t

from policykit import Decision, Engine, Policy
from policykit.errors import PolicyFileError


def policy(**rule: Any) -> Policy:
    base: dict[str, Any] = {
        "shape": "deadline", "id": "R1", "title": "hand over",
        "trigger": {"type": "contact.received"},
        "key": "request_id",
        "subject": {"kind": "employee", "field": "employee_id"},
        "within": "PT1H",
        "fulfil": [{"type": "request.handed_over", "where": {"registered": True}}],
    }
    base.update(rule)
    base = {k: v for k, v in base.items() if v is not None}
    return Policy.model_validate({"id": "deadline-test", "title": "deadline test",
                                  "clause": "篇二 §二", "rules": [base]})


def contact(rid: str, at: str, employee: str = "E1", **kw: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"customer_id": "C1", "channel": "phone", "topic": "printer",
                              "in_remit": False, "finish_at_once": False}
    fields.update(kw)
    return ev("contact.received", at, id=f"c-{rid}-{at[-5:]}", request_id=rid,
              employee_id=employee, **fields)


def handover(rid: str, at: str, registered: bool = True, to: str = "E9",
             frm: str = "E1") -> dict[str, Any]:
    return ev("request.handed_over", at, request_id=rid, from_employee=frm, to_employee=to,
              to_role="manager", registered=registered)


def resolved(rid: str, at: str, employee: str = "E1") -> dict[str, Any]:
    return ev("request.resolved", at, request_id=rid, employee_id=employee)


def kinds(out: list[Decision]) -> list[tuple[str, str, datetime]]:
    return sorted((d.kind, d.details["outcome"], d.at) for d in out)


# -- exact boundaries ------------------------------------------------------------------------


def test_fulfilled_exactly_at_the_deadline_is_in_time(evaluate: Evaluate) -> None:
    out = evaluate([contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 10:00")],
                   until=t("2026-03-03 00:00"), policy=policy())
    assert out == []


def test_one_second_after_is_missed_at_the_deadline(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00")
    out = evaluate([c, handover("Q1", "2026-03-02 10:00:01")], until=t("2026-03-03 00:00"),
                   policy=policy())
    assert kinds(out) == [("violation", "missed", t("2026-03-02 10:00"))]
    (d,) = out
    assert d.evidence == (c["id"],)
    assert d.subject.id == "E1"
    assert d.details["due"] == "2026-03-02T10:00:00+08:00"
    assert d.message and d.message_zh


def test_nothing_is_judged_before_the_horizon_reaches_the_deadline(evaluate: Evaluate) -> None:
    events = [contact("Q1", "2026-03-02 09:00")]
    assert evaluate(events, until=t("2026-03-02 09:59:59"), policy=policy()) == []
    assert len(evaluate(events, until=t("2026-03-02 10:00"), policy=policy())) == 1


def test_end_of_day_a_complaint_at_23_50_is_due_before_midnight(evaluate: Evaluate) -> None:
    p = policy(trigger={"type": "complaint.received"}, key="complaint_id", within="end_of_day",
               fulfil=[{"type": "complaint.investigated"}])

    def run(investigated_at: str) -> list[Decision]:
        return evaluate([
            ev("complaint.received", "2026-03-07 23:50", complaint_id="K1", household_id="H1",
               employee_id="E1", kind="complaint"),
            ev("complaint.investigated", investigated_at, complaint_id="K1", employee_id="E1",
               outcome="solved"),
        ], until=t("2026-03-09 00:00"), policy=p)

    assert run("2026-03-07 23:59:59") == []
    (missed,) = run("2026-03-08 00:00:00")
    assert missed.at == t("2026-03-07 23:59:59.999999")


# -- working time ----------------------------------------------------------------------------


@pytest.mark.parametrize(("received", "due"), [
    ("2026-03-02 09:00", "2026-03-02 10:00"),  # inside working hours
    ("2026-03-02 17:00", "2026-03-03 09:00"),  # half an hour today, half tomorrow
    ("2026-03-06 17:00", "2026-03-09 09:00"),  # Friday evening: over the weekend
    ("2026-03-07 11:00", "2026-03-09 09:30"),  # Saturday: counting starts Monday 08:30
    ("2026-04-30 17:00", "2026-05-06 09:00"),  # over the Labour Day holiday (May 1-5)
    ("2026-05-08 17:00", "2026-05-09 09:00"),  # into the make-up working Saturday
])
def test_working_time_deadline(evaluate: Evaluate, received: str, due: str) -> None:
    p = policy(basis="working")
    on_time = evaluate([contact("Q1", received), handover("Q1", due)],
                       until=t("2026-06-01 00:00"), policy=p)
    assert on_time == []
    (late,) = evaluate([contact("Q1", received)], until=t("2026-06-01 00:00"), policy=p)
    assert late.at == t(due)
    assert late.details["basis"] == "working"


# -- warning, escalation, announce -----------------------------------------------------------


def test_warning_before_the_deadline_and_escalation_at_it(evaluate: Evaluate) -> None:
    p = policy(warn_before="PT15M", escalate_to="manager")
    out = evaluate([contact("Q1", "2026-03-02 09:00")], until=t("2026-03-03 00:00"), policy=p)
    assert kinds(out) == [("escalation", "escalation", t("2026-03-02 10:00")),
                          ("violation", "missed", t("2026-03-02 10:00")),
                          ("warning", "warning", t("2026-03-02 09:45"))]
    esc = next(d for d in out if d.kind == "escalation")
    assert esc.details["to"] == "manager"
    assert esc.subject.id == "E1"
    # Fulfilled before the warning time: neither warning nor escalation.
    done = evaluate([contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 09:44")],
                    until=t("2026-03-03 00:00"), policy=p)
    assert done == []
    # Fulfilled after the warning, in time: the warning only.
    late_ok = evaluate([contact("Q1", "2026-03-02 09:00"), handover("Q1", "2026-03-02 09:50")],
                       until=t("2026-03-03 00:00"), policy=p)
    assert kinds(late_ok) == [("warning", "warning", t("2026-03-02 09:45"))]


def test_announce_emits_who_must_act_by_when(evaluate: Evaluate) -> None:
    c = contact("Q1", "2026-03-02 09:00")
    out = evaluate([c, handover("Q1", "2026-03-02 09:10")], policy=policy(announce=True,
                                                                          actor="owner"))
    (ob,) = out
    assert (ob.kind, ob.at, ob.severity) == ("obligation", t("2026-03-02 09:00"), "info")
    assert ob.details["due"] == "2026-03-02T10:00:00+08:00"
    assert ob.details["actor"] == "owner"
    esc = evaluate([c], policy=policy(announce=True, announce_kind="escalation",
                                      escalate_to="general_manager", severity="high"))
    (e,) = esc
    assert (e.kind, e.severity, e.details["to"]) == ("escalation", "high", "general_manager")


# -- cancel, breach, once, require -----------------------------------------------------------


def test_cancel_closes_without_a_decision(evaluate: Evaluate) -> None:
    p = policy(cancel=[{"type": "request.resolved"}])
    out = evaluate([contact("Q1", "2026-03-02 09:00"), resolved("Q1", "2026-03-02 09:30")],
                   until=t("2026-03-03 00:00"), policy=p)
    assert out == []


def test_breach_is_judged_at_once_and_closes_the_case(evaluate: Evaluate) -> None:
    p = policy(breach=[{"type": "request.handed_over", "where": {"registered": False}}])
    c = contact("Q1", "2026-03-02 09:00")
    h = handover("Q1", "2026-03-02 09:20", registered=False)
    out = evaluate([c, h], until=t("2026-03-03 00:00"), policy=p)
    assert kinds(out) == [("violation", "breached", t("2026-03-02 09:20"))]
    assert out[0].evidence == (c["id"], h["id"])


def test_once_judges_a_key_once(evaluate: Evaluate) -> None:
    events = [contact("Q1", "2026-03-02 09:00"), contact("Q1", "2026-03-02 11:00")]
    assert len(evaluate(events, until=t("2026-03-03 00:00"), policy=policy())) == 1
    assert len(evaluate(events, until=t("2026-03-03 00:00"), policy=policy(once=False))) == 2


def test_require_makes_an_incomplete_fulfilment_a_violation(evaluate: Evaluate) -> None:
    p = policy(trigger={"type": "incident.detected"}, key="incident_id",
               within="PT15M",
               fulfil=[{"type": "incident.notified"}],
               require={"details.plan": {"exists": True},
                        "recipients": {"contains_all": ["sales_owner", "manager"]}})
    det = ev("incident.detected", "2026-03-02 09:00", incident_id="I1", severity="major",
             employee_id="E1")
    note = ev("incident.notified", "2026-03-02 09:05", incident_id="I1", employee_id="E1",
              recipients=["manager"], details={"time": "9", "place": "x", "symptoms": "y"})
    (d,) = evaluate([det, note], until=t("2026-03-03 00:00"), policy=p)
    assert d.details["outcome"] == "incomplete"
    assert d.details["missing"] == "details.plan, recipients: sales_owner"
    assert d.evidence == (det["id"], note["id"])


def test_same_and_differ(evaluate: Evaluate) -> None:
    p = policy(fulfil=[{"type": "request.resolved", "same": {"employee_id": "employee_id"}}],
               breach=[{"type": "request.resolved", "differ": {"employee_id": "employee_id"}}])
    c = contact("Q1", "2026-03-02 09:00")
    assert evaluate([c, resolved("Q1", "2026-03-02 09:30", "E1")],
                    until=t("2026-03-03"), policy=p) == []
    (d,) = evaluate([c, resolved("Q1", "2026-03-02 09:30", "E2")], until=t("2026-03-03"),
                    policy=p)
    assert d.details["outcome"] == "breached"


# -- within_by, within_field -----------------------------------------------------------------


def test_within_by_looks_the_deadline_up_per_value(evaluate: Evaluate) -> None:
    p = policy(trigger={"type": "onsite.dispatched"}, within=None,
               within_by={"field": "site_id", "values": {"S-far": "PT8H"}, "default": "PT4H"},
               fulfil=[{"type": "onsite.arrived"}])

    def dispatch(site: str) -> dict[str, Any]:
        return ev("onsite.dispatched", "2026-03-02 09:00", request_id="Q1", site_id=site,
                  employee_id="E1")

    (near,) = evaluate([dispatch("S-near")], until=t("2026-03-03"), policy=p)
    (far,) = evaluate([dispatch("S-far")], until=t("2026-03-03"), policy=p)
    assert (near.at, far.at) == (t("2026-03-02 13:00"), t("2026-03-02 17:00"))
    assert far.details["deadline"] == "PT8H"


def test_within_field_uses_the_promised_time(evaluate: Evaluate) -> None:
    p = policy(trigger={"type": "reply.promised"}, key="question_id", within=None,
               within_field="promised_by", fulfil=[{"type": "reply.given"}])
    promise = ev("reply.promised", "2026-03-02 09:00", question_id="Q1", employee_id="E1",
                 promised_by=t("2026-03-04 12:00").isoformat())
    reply_ok = ev("reply.given", "2026-03-04 12:00", question_id="Q1", employee_id="E1")
    assert evaluate([promise, reply_ok], until=t("2026-03-05"), policy=p) == []
    (d,) = evaluate([promise], until=t("2026-03-05"), policy=p)
    assert d.at == t("2026-03-04 12:00")


# -- start and restart -----------------------------------------------------------------------


def test_start_counts_the_deadline_from_a_later_event(evaluate: Evaluate) -> None:
    p = policy(start=[{"type": "request.resolved"}], within="P1D", basis="working",
               fulfil=[{"type": "request.contact_form"}])
    c = contact("Q1", "2026-03-02 09:00")
    res = resolved("Q1", "2026-03-06 10:00")  # a Friday: one working day later is Monday
    form = ev("request.contact_form", "2026-03-09 10:00", request_id="Q1", employee_id="E1")
    assert evaluate([c, res, form], until=t("2026-03-20"), policy=p) == []
    (d,) = evaluate([c, res], until=t("2026-03-20"), policy=p)
    assert d.at == t("2026-03-09 10:00")
    assert d.evidence == (c["id"], res["id"])
    assert d.details["started_at"] == "2026-03-06T10:00:00+08:00"
    # No clock before the start event, however long; a fulfilment before it closes the case.
    assert evaluate([c], until=t("2026-04-01"), policy=p) == []
    early = ev("request.contact_form", "2026-03-03 10:00", request_id="Q1", employee_id="E1")
    assert evaluate([c, early, res], until=t("2026-04-01"), policy=p) == []


def test_restart_makes_a_recurring_deadline(evaluate: Evaluate) -> None:
    p = policy(trigger={"type": "incident.detected"}, key="incident_id", within="PT4H",
               fulfil=[], restart=[{"type": "incident.progress"}],
               cancel=[{"type": "incident.resolved"}],
               subject={"kind": "incident", "field": "incident_id"})
    det = ev("incident.detected", "2026-03-02 08:00", incident_id="I1", severity="major",
             employee_id="E1")

    def progress(at: str) -> dict[str, Any]:
        return ev("incident.progress", at, incident_id="I1", employee_id="M1")

    done = ev("incident.resolved", "2026-03-02 20:00", incident_id="I1")
    # Every update exactly at its deadline: in time, each restarting the clock.
    ok = [det, progress("2026-03-02 12:00"), progress("2026-03-02 16:00"),
          progress("2026-03-02 20:00"), done]
    assert evaluate(ok, until=t("2026-03-03 12:00"), policy=p) == []
    # One second late: missed at 12:00; the late update still restarts the clock from its
    # own time (due 16:00:01), and the next update exactly then is in time.
    late = [det, progress("2026-03-02 12:00:01"), progress("2026-03-02 16:00:01"), done]
    (miss,) = evaluate(late, until=t("2026-03-03 12:00"), policy=p)
    assert miss.at == t("2026-03-02 12:00")
    # Without updates or resolution every full period is judged, from the missed deadline.
    out = evaluate([det, progress("2026-03-02 09:00")], until=t("2026-03-02 21:00"), policy=p)
    assert [d.at for d in out] == [t("2026-03-02 13:00"), t("2026-03-02 17:00"),
                                   t("2026-03-02 21:00")]
    assert [d.details["period"] for d in out] == [1, 2, 3]
    prog_id = out[0].evidence[1]
    assert out[0].evidence == (det["id"], prog_id)


def test_restart_streaming_equals_batch() -> None:
    p = policy(trigger={"type": "incident.detected"}, key="incident_id", within="PT4H",
               fulfil=[], restart=[{"type": "incident.progress"}],
               cancel=[{"type": "incident.resolved"}], escalate_to="senior_leadership",
               warn_before="PT30M", subject={"kind": "incident", "field": "incident_id"})
    events = [ev("incident.detected", "2026-03-02 08:00", incident_id="I1", severity="major",
                 employee_id="E1"),
              ev("incident.progress", "2026-03-02 11:00", incident_id="I1", employee_id="M"),
              ev("incident.progress", "2026-03-02 18:00", incident_id="I1", employee_id="M"),
              ev("incident.resolved", "2026-03-03 01:00", incident_id="I1")]
    batch = Engine(p).evaluate(events, until=t("2026-03-03 12:00"))
    with Engine(p).session() as s:
        streamed = [d for e in events for d in s.feed(e)] + s.advance_to(t("2026-03-03 12:00"))
    assert sorted(d.id for d in batch) == sorted(d.id for d in streamed)
    # The 11:00 update restarts the clock (due 15:00): warned 14:30, missed 15:00, re-armed
    # to 19:00; the 18:00 update moves it to 22:00: warned 21:30, missed 22:00, re-armed to
    # 02:00; the resolution at 01:00 stops it. Stale warnings (11:30, 18:30) stay silent.
    assert [(d.at, d.kind) for d in batch] == [
        (t("2026-03-02 14:30"), "warning"),
        *sorted([(t("2026-03-02 15:00"), "violation"), (t("2026-03-02 15:00"), "escalation")],
                key=lambda x: next(d.id for d in batch if (d.at, d.kind) == x)),
        (t("2026-03-02 21:30"), "warning"),
        *sorted([(t("2026-03-02 22:00"), "violation"), (t("2026-03-02 22:00"), "escalation")],
                key=lambda x: next(d.id for d in batch if (d.at, d.kind) == x)),
    ]


# -- open-ended cases, owners, correlation, aliases ------------------------------------------


def repeat_rule(**kw: Any) -> Policy:
    rule: dict[str, Any] = dict(
        within=None, open_ended=True, fulfil=[], breach_closes=False,
        breach=[{"type": "contact.received", "key": "repeat_of", "alias": "request_id"},
                {"type": "contact.received", "correlate": {"customer_id": "customer_id",
                                                           "topic": "topic"},
                 "correlate_within": "P7D", "alias": "request_id"}],
        reassign=[{"type": "request.handed_over", "where": {"registered": True},
                   "to": "to_employee"}],
        cancel=[{"type": "request.resolved"}])
    rule.update(kw)
    return policy(**rule)


def test_open_ended_judges_every_breach_and_never_misses(evaluate: Evaluate) -> None:
    p = policy(within=None, open_ended=True, fulfil=[], breach_closes=False,
               breach=[{"type": "request.handed_over", "where": {"registered": False}}],
               cancel=[{"type": "request.resolved"}])
    events = [contact("Q1", "2026-03-02 09:00"),
              handover("Q1", "2026-03-02 09:10", registered=False),
              handover("Q1", "2026-03-02 09:20", registered=False),
              resolved("Q1", "2026-03-02 09:30"),
              handover("Q1", "2026-03-02 09:40", registered=False)]  # after closing: ignored
    out = evaluate(events, until=t("2027-01-01"), policy=p)
    assert [d.at for d in out] == [t("2026-03-02 09:10"), t("2026-03-02 09:20")]
    assert len({d.id for d in out}) == 2


def test_reassign_names_the_owner_at_that_moment(evaluate: Evaluate) -> None:
    first = contact("Q1", "2026-03-02 09:00", employee="E1", topic="a")
    moved = handover("Q1", "2026-03-02 09:30", registered=True, to="E2")
    not_moved = handover("Q1", "2026-03-02 09:40", registered=False, to="E3", frm="E2")
    again = contact("Q2", "2026-03-02 10:00", employee="E5", repeat_of="Q1", topic="b")
    (d,) = evaluate([first, moved, not_moved, again], policy=repeat_rule())
    assert d.subject.id == "E2"
    assert d.details["owners"] == ["E1", "E2"]
    assert d.evidence == (first["id"], moved["id"], again["id"])
    (before,) = evaluate([first, again], policy=repeat_rule())
    assert before.subject.id == "E1"


def test_correlate_within_window_and_alias(evaluate: Evaluate) -> None:
    first = contact("Q1", "2026-03-02 09:00", topic="printer")
    same_topic = contact("Q2", "2026-03-09 09:00", employee="E2", topic="printer")  # exactly P7D
    out = evaluate([first, same_topic], policy=repeat_rule())
    assert [(d.subject.id, d.details["key"]) for d in out] == [("E1", "Q1")]
    too_late = contact("Q2", "2026-03-09 09:00:01", employee="E2", topic="printer")
    assert evaluate([first, too_late], policy=repeat_rule()) == []
    other_topic = contact("Q2", "2026-03-03 09:00", employee="E2", topic="invoice")
    assert evaluate([first, other_topic], policy=repeat_rule()) == []
    # The repeat's own id became an alias of Q1: its resolution closes Q1 ...
    third = contact("Q3", "2026-03-09 11:00", employee="E3", repeat_of="Q1", topic="x")
    assert evaluate([first, same_topic, resolved("Q2", "2026-03-09 10:00"), third],
                    policy=repeat_rule()) == [out[0]]
    # ... and a contact naming it in repeat_of reaches Q1.
    third = contact("Q3", "2026-03-09 11:00", employee="E3", repeat_of="Q2", topic="x")
    out2 = evaluate([first, same_topic, third], policy=repeat_rule())
    assert [d.details["key"] for d in out2] == ["Q1", "Q1"]


def test_carry_copies_trigger_fields_into_every_decision(evaluate: Evaluate) -> None:
    p = policy(carry=["customer_id", "repeat_of"], escalate_to="manager")
    out = evaluate([contact("Q1", "2026-03-02 09:00")], until=t("2026-03-02 12:00"), policy=p)
    assert kinds(out) == [("escalation", "escalation", t("2026-03-02 10:00")),
                          ("violation", "missed", t("2026-03-02 10:00"))]
    # customer_id is there; repeat_of has no value on this trigger, so adds nothing.
    assert all(d.details["customer_id"] == "C1" and "repeat_of" not in d.details
               for d in out)


def test_state_is_plain_data() -> None:
    p = repeat_rule()
    with Engine(p).session() as s:
        s.feed(contact("Q1", "2026-03-02 09:00"))
        s.feed(handover("Q1", "2026-03-02 09:30"))
        s.feed(contact("Q2", "2026-03-02 10:00", repeat_of="Q1"))
        state = s._ev.export_state()
    plain = (dict, list, set, tuple, str, int, bool, type(None), datetime)

    def check(v: Any) -> None:
        assert isinstance(v, plain), type(v)
        if isinstance(v, dict):
            for k, x in v.items():
                check(k)
                check(x)
        elif isinstance(v, list | set | tuple):
            for x in v:
                check(x)

    check(state["rules"])
    assert copy.deepcopy(state["rules"]) == state["rules"]


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(("rule", "expected"), [
    ({"within": None}, "exactly one of within"),
    ({"open_ended": True}, "open_ended deadline takes no within"),
    ({"within": None, "open_ended": True, "fulfil": []}, "needs breach steps or require"),
    ({"within": None, "open_ended": True, "escalate_to": "x",
      "breach": [{"type": "request.resolved"}]}, "has no clock"),
    ({"within": "PT1X"}, "ISO-8601 duration"),
    ({"fulfil": [{"type": "request.resolved", "correlate_within": "P7D"}]},
     "correlate_within needs correlate"),
    ({"fulfil": [{"type": "request.resolved", "correlate": {"topc": "topic"}}]}, "topc"),
    ({"reassign": [{"type": "request.handed_over", "to": "to_employe"}]}, "to_employee"),
    ({"carry": ["custmer_id"]}, "customer_id"),
])
def test_invalid_specs_are_rejected(rule: dict[str, Any], expected: str) -> None:
    with pytest.raises(PolicyFileError, match=expected):
        policy(**rule)
