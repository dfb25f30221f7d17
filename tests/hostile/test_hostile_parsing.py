"""Hostile records through parse_events / Engine.evaluate: strict wire types, bounded meta,
ids without control characters, JSON lines split on "\\n" only; only EventError escapes and
the good records around a bad one are kept."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from audit_data import UNTIL, events, policies
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policykit import Engine, EventError, ParameterError, parse_event, parse_events
from policykit.audit import audit
from policykit.calendar import CalendarError, parse_calendar_duration, parse_duration
from policykit.cli import main
from policykit.models.events import MAX_META_BYTES

CONTACT: dict[str, Any] = {
    "id": "c1", "type": "contact.received", "at": "2026-03-02T09:00:00+08:00",
    "request_id": "R1", "customer_id": "C1", "employee_id": "E1", "channel": "phone",
    "topic": "leak", "in_remit": True, "finish_at_once": False}
CALL: dict[str, Any] = {"id": "p1", "type": "staff.private_call",
                        "at": "2026-03-02T09:00:00+08:00", "employee_id": "E1",
                        "duration_s": 400}
LEAVE: dict[str, Any] = {"id": "l1", "type": "attendance.leave",
                         "at": "2026-03-02T09:00:00+08:00", "employee_id": "E1",
                         "start": "2026-03-03", "end": "2026-03-04"}


def refused(record: dict[str, Any], field: str, words: str) -> None:
    """Refused from a dict and from JSON text alike, naming the field."""
    for given_as in (record, json.dumps(record, ensure_ascii=False)):
        with pytest.raises(EventError) as caught:
            parse_event(given_as)
        (problem,) = caught.value.problems
        assert problem[0] == field and words in problem[2], problem


@pytest.mark.parametrize(("base", "field", "value", "words"), [
    (CONTACT, "at", 1772409600, "ISO-8601"),
    (CONTACT, "at", 1772409600.5, "ISO-8601"),
    (CONTACT, "at", "1772409600", "ISO-8601"),
    (CONTACT, "at", True, "ISO-8601"),
    (CONTACT, "in_remit", "yes", "boolean"),
    (CONTACT, "in_remit", "true", "boolean"),
    (CONTACT, "in_remit", 1, "boolean"),
    (CONTACT, "major", 0, "boolean"),
    (CALL, "duration_s", "400", "integer"),
    (CALL, "duration_s", 400.0, "integer"),
    (CALL, "duration_s", True, "integer"),
    (LEAVE, "start", 1772409600, "ISO-8601 date"),
    (LEAVE, "start", "2026-03-03T00:00:00+08:00", "ISO-8601 date"),
])
def test_wire_types_are_strict(base: dict[str, Any], field: str, value: Any,
                               words: str) -> None:
    refused({**base, field: value}, field, words)


def test_python_values_of_the_right_type_are_still_accepted() -> None:
    at = datetime(2026, 3, 2, 1, tzinfo=UTC)
    event = parse_event({**LEAVE, "at": at, "start": date(2026, 3, 3)})
    assert event.at == at and event.start == date(2026, 3, 3)  # type: ignore[union-attr]
    with pytest.raises(EventError):
        parse_event({**LEAVE, "start": datetime(2026, 3, 3, tzinfo=UTC)})
    with pytest.raises(EventError, match="offset"):
        parse_event({**LEAVE, "at": datetime(2026, 3, 2, 1)})  # naive


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"])
@pytest.mark.parametrize("field", ["id", "request_id", "actor", "employee_id"])
def test_ids_with_control_characters_are_refused(char: str, field: str) -> None:
    refused({**CONTACT, field: f"w{char}REQ-1"}, field, "control characters")


def test_ids_in_lists_with_control_characters_are_refused() -> None:
    record = {"id": "p", "type": "employee.profile", "at": "2026-03-01T00:00:00+08:00",
              "employee_id": "E1", "role": "guard", "base_salary": "6000.00",
              "areas": ["A1", "A\x1f2"]}
    with pytest.raises(EventError, match="control characters"):
        parse_event(record)


def test_meta_is_bounded() -> None:
    pad = MAX_META_BYTES - len('{"k":""}')
    parse_event({**CONTACT, "meta": {"k": "x" * pad}})
    refused({**CONTACT, "meta": {"k": "x" * (pad + 1)}}, "meta", f"{MAX_META_BYTES} bytes")
    big = {**CONTACT, "meta": {"k": "x" * (50 * 1024 * 1024)}}
    with pytest.raises(EventError, match="at most 65536 bytes"):
        parse_event(big)


def test_csv_and_dataframe_cells_still_give_booleans_and_integers(tmp_path: Any) -> None:
    pd = pytest.importorskip("pandas")
    rows = [CONTACT, {**CALL, "id": "p2"}, {**CONTACT, "id": "c9", "major": "TRUE"}]
    frame = pd.DataFrame(rows)  # duration_s has gaps: a float column
    assert frame["duration_s"].dtype.kind == "f"
    report = audit(frame, policies(), UNTIL)
    assert not report.quarantine
    assert report.events["p2"].duration_s == 400  # type: ignore[attr-defined]
    assert report.events["c9"].major is True  # type: ignore[attr-defined]
    bad = pd.DataFrame([{**CONTACT, "in_remit": "yes"}, {**CALL, "duration_s": 400.5}])
    assert [q.problems[0][0] for q in audit(bad, policies(), UNTIL).quarantine] == \
        ["in_remit", "duration_s"]


def test_dicts_given_in_python_get_no_text_conversion() -> None:
    """Only tabular sources have text cells: a dict with "true" is refused by audit() as by
    parse_events."""
    report = audit([{**CONTACT, "in_remit": "true"}, {**CALL, "duration_s": 400.0}],
                   policies(), UNTIL)
    assert [q.problems[0][0] for q in report.quarantine] == ["in_remit", "duration_s"]


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\x85", "\x1c", "\x0b", "\x0c"])
def test_line_separators_inside_json_strings_do_not_split_records(sep: str) -> None:
    records = [{**CONTACT, "topic": f"a{sep}b"}, CALL]
    for newline in ("\n", "\r\n"):
        text = newline.join(json.dumps(r, ensure_ascii=False) for r in records) + newline
        parsed = parse_events(text)
        assert [e.id for e in parsed] == ["c1", "p1"]
        assert parsed[0].topic == f"a{sep}b"  # type: ignore[union-attr]
        assert len(Engine(policies()).evaluate(text)) == len(
            Engine(policies()).evaluate(records))


_junk = st.one_of(st.text(max_size=60).map(lambda t: t.replace("\n", " ")),
                  st.builds(lambda k, v: json.dumps({**CONTACT, k: v}, ensure_ascii=False),
                            st.sampled_from(["at", "in_remit", "id", "meta", "duration_s"]),
                            st.one_of(st.integers(), st.text(max_size=8), st.booleans(),
                                      st.floats(allow_nan=False), st.none())))


@settings(max_examples=80, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(junk=st.lists(_junk, min_size=1, max_size=4), where=st.integers(0, 10))
def test_garbage_lines_only_cost_themselves(junk: list[str], where: int) -> None:
    good = [json.dumps(r, ensure_ascii=False) for r in events()]
    text = "\n".join(good[:where] + junk + good[where:])
    errors: list[EventError] = []
    parsed = parse_events(text, errors=errors)
    good_ids = [r["id"] for r in events()]
    found = iter(e.id for e in parsed)
    assert all(i in found for i in good_ids)  # every good record, in order
    assert len(parsed) + len(errors) == len(good) + len([j for j in junk if j.strip()])
    assert all(isinstance(e, EventError) and e.line for e in errors)


# --- odd values given in Python ---------------------------------------------------------------

CLOCK_IN: dict[str, Any] = {"id": "c1", "type": "attendance.clock_in",
                            "at": "2026-03-02T09:40:00+08:00", "employee_id": "E1"}


@pytest.mark.parametrize("meta", [
    {"x": 10**5000}, {"a": {"b": [1, {"c": -(10**5000)}]}},
])
def test_an_integer_past_the_digit_limit_in_meta_is_an_event_error(meta: dict[str, Any]
                                                                     ) -> None:
    record = {**CLOCK_IN, "meta": meta}
    for feed in (parse_event, lambda r: Engine().evaluate([r]),
                 lambda r: Engine().session().feed(r)):
        with pytest.raises(EventError) as caught:
            feed(record)
        (problem,) = caught.value.problems
        assert problem[0] == "meta" and "4300 digits" in problem[2]
        assert "meta" in str(caught.value)


@pytest.mark.parametrize("tz", ["A" * 100_000, "A" * 300, "../../etc/passwd", "Asia/\x00"],
                         ids=["100000", "300", "path", "nul"])
def test_an_odd_assume_tz_is_a_parameter_error(tz: str) -> None:
    with pytest.raises(ParameterError) as caught:
        Engine().evaluate([CLOCK_IN], assume_tz=tz)
    assert caught.value.name == "assume_tz" and "IANA" in str(caught.value)


def test_the_cli_blames_assume_tz_not_the_events_file(tmp_path: Any,
                                                      capsys: pytest.CaptureFixture[str]
                                                      ) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text(json.dumps(CLOCK_IN) + "\n", encoding="utf-8")
    assert main(["audit", str(log), "--assume-tz", "A" * 5000]) == 2
    err = capsys.readouterr().err
    assert "--assume-tz" in err and str(log) not in err


@pytest.mark.parametrize("events", [None, 5, object(), 1.5])
def test_events_that_are_not_events_are_a_parameter_error(events: Any) -> None:
    with pytest.raises(ParameterError) as caught:
        Engine().evaluate(events)
    assert caught.value.name == "events" and "iterable of event dicts" in str(caught.value)
    with pytest.raises(ParameterError, match="iterable of event dicts"):
        parse_events(events)


# --- money and durations are ASCII decimal text ------------------------------------------------

PROFILE: dict[str, Any] = {"id": "e1", "type": "employee.profile",
                           "at": "2026-03-01T00:00:00+08:00", "employee_id": "E1",
                           "role": "customer_service", "base_salary": "6000.00"}


@pytest.mark.parametrize("salary", ["1_000", "  100 ", "100\n", "-0", "-0.00", "-5", "+5",
                                    "１００", "٣٠٠", "1e3", ".5", "5.", "NaN", ""])
def test_money_text_is_ascii_digits_only(salary: str) -> None:
    refused({**PROFILE, "base_salary": salary}, "base_salary", "ASCII digits")


def test_money_in_the_documented_forms_is_still_accepted() -> None:
    for salary, value in (("6000.00", "6000.00"), ("6000", "6000"), (6000, "6000"),
                          ("0", "0"), (Decimal("12.5000"), "12.5000"), (Decimal("-0"), "0")):
        event = parse_event({**PROFILE, "base_salary": salary})
        assert str(event.base_salary) == value  # type: ignore[union-attr]


@pytest.mark.parametrize("spec", ["P１D", "PT１H", "P٣D", "PT1.５H", "P1Y２M"])
def test_durations_take_ascii_digits_only(spec: str) -> None:
    with pytest.raises(CalendarError, match="ISO-8601 duration"):
        parse_duration(spec)
    with pytest.raises(CalendarError, match="ISO-8601 duration"):
        parse_calendar_duration(spec)
    assert parse_calendar_duration(spec.translate(_ASCII_DIGITS))  # the ASCII form is fine


_ASCII_DIGITS = {ord(c): str(i) for digits in ("０１２３４５６７８９", "٠١٢٣٤٥٦٧٨٩")
                 for i, c in enumerate(digits)}
