"""Message templates are parsed when the policy loads: plain ``{name}`` fields the rule's
shape provides, nothing else; at run time a message is assembled from the parsed pieces
(never ``str.format`` on a policy's text), and the default messages come out as before."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _policies import check, forbidden, load, policy
from helpers import ev, t
from hypothesis import given, settings
from hypothesis import strategies as st

from policykit import PolicyFileError
from policykit.audit import audit
from policykit.rules import SHAPES
from policykit.rules._base import (
    MAX_TEMPLATE_CHARS,
    MAX_TEMPLATE_FIELDS,
    MAX_VALUE_CHARS,
    check_template,
    render,
)


def call(**kw: Any) -> dict[str, Any]:
    return ev("staff.private_call", "2026-03-02 10:00", employee_id="E1", duration_s=600, **kw)


def with_message(en: str, zh: str = "{rule}：{subject}") -> dict[str, Any]:
    return forbidden(messages={"occurred": {"en": en, "zh": zh}})


@pytest.mark.parametrize(("template", "said"), [
    ("{0}", "positional"),
    ("{}", "positional"),
    ("{", "malformed"),
    ("}", "malformed"),
    ("{subject", "malformed"),
    ("{subject[99]}", "no attribute or index"),
    ("{x.nope}", "no attribute or index"),
    ("{what!r:>{rule}}", "no conversions"),
    ("{subject!s}", "no conversions"),
    ("{subject:>2000000000}", "no format specs"),
    ("{rule:{subject}}", "no format specs"),
    ("{_what}", "no attribute or index"),
    ("{nope}", "unknown field {nope}"),
    ("{subjet}", "did you mean {subject}"),
])
def test_bad_templates_are_refused_at_load_naming_rule_and_template(
        tmp_path: Path, template: str, said: str) -> None:
    for en, zh in ((template, "{rule}"), ("{rule}", template)):
        with pytest.raises(PolicyFileError, match=r"rule R1: messages\.occurred") as err:
            load(with_message(en, zh))
        assert said in str(err.value) and repr(template) in str(err.value)
    code, out = check(tmp_path, policy(with_message(template)))
    assert code == 2 and said in out


def test_known_fields_and_escaped_braces_render() -> None:
    pol = load(with_message("{rule} {{literal}} {subject} {what} at {at} ({event_type})",
                            "{subject}：{what}"))
    report = audit([call(id="c1")], pol, until=t("2026-03-03 00:00"))
    (d,) = report.decisions
    assert d.message == ("R1 {literal} E1 long private call at 2026-03-02T10:00:00+08:00 "
                         "(staff.private_call)")
    assert d.message_zh == "E1：long private call"


def test_show_and_key_fields_are_known_placeholders() -> None:
    load(forbidden(show=["duration_s"], messages={"occurred": {"en": "{duration_s}s",
                                                               "zh": "{duration_s}"}}))


def test_default_messages_render_exactly_as_str_format_did() -> None:
    values: dict[str, Any] = {"rule": "R1", "subject": "E1", "amount": Decimal("12.50"),
                              "currency": "CNY", "count": 3, "met": True, "rate": None,
                              "items": [{"a": 1}], "what": "x{y}z"}
    checked = 0
    for cls in SHAPES.values():
        assert cls.default_messages, cls
        for msg in cls.default_messages.values():
            for text in (msg.en, msg.zh):
                check_template(text, cls.message_fields | {"subject", "rule"})
                full = {name: values.get(name, f"<{name}>")
                        for name in cls.message_fields | {"subject", "rule"}}
                assert render(text, full) == text.format_map(full)
                checked += 1
    assert checked > 30


def test_an_unchecked_template_is_never_formatted_at_run_time() -> None:
    start = time.perf_counter()
    # Not through check_template (a spec built past validation): the text stays as is.
    assert render("{subject:>2000000000}", {"subject": "x"}) == "{subject:>2000000000}"
    assert render("{subject.__class__}", {"subject": "x"}) == "{subject.__class__}"
    assert render("{0}{", {"subject": "x"}) == "{0}{"
    assert time.perf_counter() - start < 0.5
    assert render("{missing} {subject}", {"subject": "x"}) == "{missing} x"


_bits = st.sampled_from(["{", "}", "{{", "}}", "subject", "rule", "what", "nope", "0", "!r",
                         "!s", ":", ">9", ".x", "[0]", " ", "at", "_", "{rule}", "{subject}"])
templates = st.lists(_bits, max_size=8).map("".join) | st.text(max_size=16)


@settings(max_examples=300, deadline=None, database=None)
@given(templates)
def test_any_template_loads_cleanly_or_is_refused_with_a_policy_file_error(text: str) -> None:
    try:
        pol = load(with_message(text, text))
    except PolicyFileError as exc:
        # Refused as a template, or (a text starting with "$") as a parameter reference:
        # either way the error names where in the file.
        assert "messages.occurred" in str(exc)
        return
    report = audit([call()], pol, until=t("2026-03-03 00:00"))
    (d,) = report.decisions
    fields = {"rule": "R1", "subject": "E1", **{k: v for k, v in d.details.items()}}
    assert d.message == text.format_map(fields)


# -- size bounds (review 14: a 360 KB template of 60,000 ``{meta}`` ran out of memory) ------


def benefit(meta: dict[str, Any]) -> dict[str, Any]:
    return ev("complaint.benefit_received", "2026-03-02 08:00", complaint_id="C1",
              employee_id="E1", meta=meta)


def meta_rule(en: str, zh: str = "x") -> dict[str, Any]:
    return forbidden(event={"type": "complaint.benefit_received"}, show=["meta"],
                     messages={"occurred": {"en": en, "zh": zh}})


@pytest.mark.parametrize(("template", "said"), [
    ("{meta}" * 60_000, "at most 2000"),
    ("x" * (MAX_TEMPLATE_CHARS + 1), "at most 2000"),
    ("{meta}" * (MAX_TEMPLATE_FIELDS + 1), "at most 20"),
])
def test_oversized_templates_are_refused_at_load(template: str, said: str) -> None:
    with pytest.raises(PolicyFileError, match=said):
        load(meta_rule(template))
    with pytest.raises(PolicyFileError, match=said):
        load(meta_rule("{subject}", template))


def test_a_rendered_message_is_bounded_whatever_the_event_holds() -> None:
    template = "{meta}" * MAX_TEMPLATE_FIELDS
    template += "x" * (MAX_TEMPLATE_CHARS - len(template))
    pol = load(meta_rule(template, "{subject} {meta}"))
    report = audit([benefit({"x": "A" * 65_000})], pol, until=t("2026-03-03 00:00"))
    (d,) = report.decisions
    assert len(d.message) <= 10_000
    clipped = d.message[:MAX_VALUE_CHARS]
    assert clipped.startswith("{'x': 'AAA") and clipped.endswith("\u2026")
    assert d.message_zh == "E1 " + clipped
    assert len(d.details["meta"]) > 65_000  # the details keep the whole value


def test_values_up_to_the_bound_render_whole() -> None:
    value = "v" * MAX_VALUE_CHARS
    assert render("<{x}>", {"x": value}) == f"<{value}>"
    assert render("<{x}>", {"x": value + "w"}) == "<" + "v" * (MAX_VALUE_CHARS - 1) + "\u2026>"
