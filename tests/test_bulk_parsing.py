"""The batch pipeline validates runs of JSON texts in one pydantic call (parse_texts): each
text must come out exactly as parse_event makes it (the same event, or the same error with
the same line), whatever is around it, and audits must quarantine the same records with the
same messages as record-by-record parsing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from audit_data import UNTIL, events, policies
from pydantic import Field

from policykit import (
    Engine,
    EventBase,
    EventError,
    register_event_types,
    unregister_event_types,
)
from policykit.audit import audit, read_records
from policykit.audit._quarantine import validate
from policykit.engine import parse_instant, run_batch
from policykit.models.parsing import MAX_DEPTH, parse_event, parse_texts

CLOCK = {"id": "h1", "type": "attendance.clock_in", "at": "2026-03-02T08:31:00+08:00",
         "employee_id": "E1"}


def text(**change: Any) -> str:
    return json.dumps({**CLOCK, **change}, ensure_ascii=False)


def deep_meta(levels: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(levels):
        value = {"k": value}
    return value  # type: ignore[no-any-return]


HOSTILE: list[str] = [
    text(),
    "not json",
    text(type="attendance.clock_inn"),
    text(id="c\x1f2"),                                   # a control character in an id
    text(id="c3", employee_id="E\u20281"),
    text(id="c4", meta={"deep": deep_meta(MAX_DEPTH + 2)}),   # too deep: the slow path
    text(id="c5", meta={"deep": deep_meta(MAX_DEPTH - 3)}),   # deep but allowed
    text(id="c6", meta={"note": "[" * 40}),              # brackets in a string: slow path
    text(id="c7") + "," + text(id="c8"),                 # two objects on one line
    '{"id": "c9", "type": "attendance.clock_in", "at": "2026-03-02T08:31:00+08:00", '
    '"employee_id": "E',                                 # an open string ...
    '1"}',                                               # ... closed on the next line
    text(id="c10", at="1899-12-31T23:00:00+08:00"),      # out of the years
    text(id="c11", meta={"corrects": "c11"}),            # corrects itself
    text(id="c12", at=1772409600),                       # a number for a date-time
    '{"id": "c13", "id": "c14", "type": "attendance.clock_in", '
    '"at": "2026-03-02T08:31:00Z", "employee_id": "E1"}',  # a repeated key
    text(id="c15", at="2026-03-02T08:31:00.5-03:30", actor="A" * 257),
    text(id="c16", at="2026-03-02T08:31:00.123456-03:30", meta={"n": 10 ** 30}),
    "[]",
    "",
    text(id="c17", extra_field=1),
]


def outcome(result: Any) -> Any:
    if isinstance(result, EventError):
        return ("error", str(result), result.problems, result.line, result.event_id)
    assert not isinstance(result, BaseException), result
    return ("event", repr(result), {k: type(getattr(result, k)) for k in ("at",)},
            type(result.at.tzinfo), result.model_dump())


def one_by_one(texts: list[Any], lines: list[int]) -> list[Any]:
    out: list[Any] = []
    for t, n in zip(texts, lines, strict=True):
        try:
            out.append(parse_event(t, source="log", line=n))
        except EventError as exc:
            out.append(exc)
    return out


@pytest.mark.parametrize("as_bytes", [False, True])
def test_each_text_comes_out_as_parse_event_makes_it(as_bytes: bool) -> None:
    texts: list[Any] = [t.encode() for t in HOSTILE] if as_bytes else list(HOSTILE)
    lines = list(range(10, 10 + len(texts)))
    got = parse_texts(texts, source="log", lines=lines)
    assert [outcome(r) for r in got] == [outcome(r) for r in one_by_one(texts, lines)]
    # The bad texts really are bad, the good ones good (the test can fail both ways).
    kinds = [outcome(r)[0] for r in got]
    assert kinds.count("event") >= 4 and kinds.count("error") >= 10


def test_the_shared_zone_is_the_one_parse_event_gives() -> None:
    (bulk,) = parse_texts([text()])
    assert bulk.at.tzinfo is parse_event(text()).at.tzinfo  # type: ignore[union-attr]


def test_a_clean_run_is_one_call_and_a_bad_text_does_not_spoil_its_neighbours() -> None:
    good = [text(id=f"g{i}") for i in range(50)]
    mixed = [*good[:25], text(id="bad", employee_id=""), *good[25:]]
    got = parse_texts(mixed, source="log", lines=list(range(1, 52)))
    assert [getattr(r, "id", None) for r in got] == \
        [f"g{i}" for i in range(25)] + [None] + [f"g{i}" for i in range(25, 50)]
    assert isinstance(got[25], EventError) and got[25].line == 26


def test_an_audit_quarantines_the_same_records_with_the_same_messages(tmp_path: Path
                                                                     ) -> None:
    rows = [json.dumps(e, ensure_ascii=False) for e in events()]
    step = max(1, len(rows) // len(HOSTILE))
    for i, bad in enumerate(HOSTILE):
        rows.insert(i * step, bad)
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")

    def by_one(raw: Any, label: str, line: int | None) -> Any:  # not known to parse alike
        return validate(raw, label, line)

    def run(parse: Any) -> tuple[list[tuple[int | None, str]], list[str]]:
        kept: list[tuple[int | None, str]] = []
        batch = run_batch(Engine(policies()), read_records(path).records, source="log",
                          until=parse_instant(UNTIL), parse=parse, hold_after_until=True,
                          quarantine=lambda exc, line, raw: kept.append((line, str(exc))))
        return kept, [d.model_dump_json() for d in batch.decisions]

    bulk, single = run(validate), run(by_one)
    assert bulk == single
    assert len(bulk[0]) >= 10 and bulk[1]
    # audit() runs the bulk path and quarantines the same lines.
    report = audit(path, policies(), UNTIL)
    assert sorted(q.line for q in report.quarantine if q.line) == \
        sorted(line for line, _m in bulk[0] if line)


def test_the_records_before_a_failing_reader_are_reported_first() -> None:
    def records() -> Iterator[tuple[int, Any]]:
        yield 1, text()
        yield 2, text(id="c2", employee_id="")
        raise RuntimeError("the reader broke")

    with pytest.raises(EventError) as caught:
        run_batch(Engine(policies()), records())
    assert caught.value.line == 2
    seen: list[int | None] = []
    with pytest.raises(RuntimeError):
        run_batch(Engine(policies()), records(),
                  quarantine=lambda exc, line, raw: seen.append(line))
    assert seen == [2]


class LiftStopped(EventBase):
    type: Literal["lift.stopped"]
    lift_id: Annotated[str, Field(min_length=1, max_length=64)]


def test_registered_types_are_validated_in_bulk_and_forgotten_with_them() -> None:
    lift = ('{"id": "l1", "type": "lift.stopped", "at": "2026-03-02T08:00:00+08:00", '
            '"lift_id": "L1"}')
    register_event_types(LiftStopped)
    try:
        got = parse_texts([lift, text()])
        first: object = got[0]  # a registered type: outside parse_texts' declared union
        assert type(first) is LiftStopped
        assert [outcome(r) for r in got] == [outcome(parse_event(t)) for t in (lift, text())]
    finally:
        unregister_event_types(LiftStopped)
    (gone,) = parse_texts([lift])
    assert isinstance(gone, EventError) and "a known event type" in str(gone)
