"""Which figures of the standard pack come from the rulebook and which the pack adds.

Every parameter of every pack policy is in exactly one of the two tables below
(tests/test_pack_numbers.py checks it): ``RULEBOOK`` holds the parameters whose default the
rulebook gives or its documented reading fixes (the policy pages quote the words), ``ADDED``
the figures and choices the pack adds where the rulebook gives none, each with the reason for
its default. docs/gen_policies.py turns ``ADDED`` (and the rule settings found in the pack)
into docs/policies/pack-numbers.md.
"""

from __future__ import annotations

from typing import Any

#: policy id -> the parameters whose default the rulebook (or its documented reading) gives.
RULEBOOK: dict[str, frozenset[str]] = {
    "first-responder": frozenset({
        "resolve_at_once_within", "handover_within", "handover_basis", "gm_report_within",
        "contact_form_within", "contact_form_basis", "repeat_window", "ladder_rules",
        "ladder_window", "ladder_steps", "transfer_at",
        # a reading switch: its default is the rulebook's reading (repeat contacts report too)
        "gm_report_repeats"}),
    "callback-frequency": frozenset({
        "window_alignment", "first_year_months", "first_year_every", "later_every",
        "callback_channel", "warn_before", "min_per_year", "per", "director_role",
        "officer_role", "area_visits_per_quarter", "forums_per_half_year", "kpi_period",
        "processing_rate_target", "valid_complaint_rate_max",
        # a reading switch: its default is the rulebook's reading (own areas only)
        "area_visits_count_for"}),
    "lateness-deduction": frozenset({
        "grace", "base_rate", "tier_threshold", "tier_rate", "tier_mode", "monthly_limit",
        "limit_fine", "monthly_cap_rate", "wage_floor",
        # a reading switch: its default is the rulebook's reading (all of a month's money)
        "cap_scope"}),
    "staff-penalties": frozenset({
        "severity_fines", "minimum_fine", "complaint_sources", "private_call_max",
        "private_call_fine", "misconduct_fine", "currency"}),
    "shift-handover": frozenset({
        "require_signatures", "check_within", "max_patrol_gap", "police_handover_within",
        "report_within",
        # reading switches: their defaults are the rulebook's reading (no cap on a late
        # relief; a record only where a change of guard happens)
        "late_relief_cap", "record_only_with_relief"}),
    "incident-escalation": frozenset({
        "notify_within", "relay_within", "track_every", "report_within", "report_basis",
        # the rulebook's recipients besides salesperson and manager: the departments
        "notify_also"}),
    "complaint-handling": frozenset({
        "investigate_within", "report_within", "reply_within", "suggestion_report_within"}),
    "reporting-duties": frozenset({
        "weekly_roles", "weekly_due_day", "weekly_due_time", "weekly_non_working",
        "daily_roles", "daily_due_time", "monthly_roles", "monthly_department",
        "monthly_non_working"}),
    "annual-customer-care": frozenset({
        "gift_months", "inspection_every", "findings_within", "survey_every",
        "research_every", "plan_within"}),
    "holiday-coverage": frozenset({
        "check_every", "hours", "days", "staff_role", "escalate_within"}),
    "site-access": frozenset(),
    "service-delivery": frozenset({"depart_within", "arrival_sla", "arrival_sla_default"}),
}

#: (policy id, parameter) -> why the pack's default is what it is. The rulebook gives none.
ADDED: dict[tuple[str, str], str] = {
    ("lateness-deduction", "exempt_roles"):
        "The office hours (08:30-17:30, 篇四) are the customer-service staff's; guards work "
        "12-hour shifts, nights and weekends included, and their presence is the "
        "shift-handover policy's shift events. Judging guards by office hours would make "
        "every night shift a late day and every day off a missing sign-in.",
    ("callback-frequency", "officer_without_areas"):
        "The rulebook gives each property officer an area (負責區域) and does not say what "
        "an officer without one owes. The default (any) keeps the quarterly visit owed, to "
        "any area, so a profile that omits the areas does not quietly end the duty; none "
        "owes nothing until a profile lists the areas.",
    ("shift-handover", "max_uncovered"):
        "How long a post left empty waits for its relief before the empty post is reported "
        "(R4). The rulebook sets no figure; an hour separates a late relief from an "
        "abandoned post. It does not limit R1: the guard who left is R1's however late the "
        "relief comes.",
    ("shift-handover", "record_within"):
        "The rulebook asks for a handover record (認真做好交接記錄) without a time; the "
        "reading gives 15 minutes after the change of guard. The pack also accepts a "
        "record made up to the same 15 minutes before the outgoing guard's shift end, "
        "because guards write it while both are at the post.",
    ("shift-handover", "turnout_within"):
        "Uniform and badge are checked on taking the post (上崗必須穿著統一制服，佩戴統一的"
        "工號) with no time given; 30 minutes, like the equipment check (R3), which is "
        "done on taking the post as well.",
    ("shift-handover", "update_every"):
        "An unsafe situation is reported with its changes until it is dealt with "
        "(隨時匯報變動情況), with no interval given; two hours keeps the leader informed "
        "through a shift without asking for a report every few minutes.",
    ("shift-handover", "exempt_posts"):
        "Every post is a 24-hour post (24小時嚴密監視), so none is exempt; a company with a "
        "day-only gate names it here so it may close at night without a relief.",
    ("complaint-handling", "basis"):
        "Whether the report, reply and suggestion deadlines count calendar or working "
        "time: the rulebook does not say. Wall (calendar) time, as residents count days and "
        "as the same-day investigation counts weekends.",
    ("site-access", "visitor_severity"):
        "The rulebook forbids admitting a person of unknown identity (身份不明…應禁止其入內) "
        "without ranking it; high, as a security breach of the site.",
    ("site-access", "vehicle_severity"):
        "An unknown vehicle let in unregistered: medium, a lapse of the register rather than "
        "admitting an unidentified person.",
    ("service-delivery", "authorization_key"):
        "What one customer authorization covers: the rulebook says only 在客戶授權的前提下. "
        "By default the request it names, the narrow reading for a security rule; "
        "customer_id lets one authorization cover every session for that customer while "
        "valid.",
    ("service-delivery", "onsite_basis"):
        "Whether departure and arrival times count wall or working time: not said. Wall "
        "time, because a fault at a customer's site does not wait for office hours.",
}


def added_rows(policies: list[Any]) -> list[tuple[str, str, Any, str, str]]:
    """(policy, parameter, default, parameter doc, reason) for each added figure still in
    the pack, in pack order."""
    rows = []
    for p in policies:
        for name, value in p.parameters.items():
            reason = ADDED.get((p.id, name))
            if reason is not None:
                rows.append((p.id, name, value, p.parameter_docs.get(name, ""), reason))
    return rows


def rule_settings(policies: list[Any]) -> list[tuple[str, str, str, Any, str]]:
    """(policy, rule, setting, value, meaning) for the figures of rule shapes the pack runs
    with: set in a policy file on the rule, not as parameters."""
    rows = []
    for p in policies:
        for spec in p.specs:
            forget = getattr(spec, "forget_after", None)
            if spec.shape == "precondition" and forget is not None:
                rows.append((p.id, spec.id, "forget_after", forget,
                             "an earlier record older than this at the action no longer "
                             "counts (it keeps a long stream's state flat)"))
            if spec.shape == "tariff" and getattr(spec, "distinct", None):
                rows.append((p.id, spec.id, "distinct_for", spec.distinct_for,
                             f"records naming the same {spec.distinct} count once within "
                             "this time of the first"))
    return rows
