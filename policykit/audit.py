"""Batch audits: read a log in any format, run the policies over it, and read the result as
tables, a payroll summary, charts, explanations and a self-contained HTML report.

>>> report = audit("events.jsonl", until="2026-04-01T00:00:00+08:00")   # doctest: +SKIP
>>> report.summary()                       # decisions per policy, rule and kind  # doctest: +SKIP
>>> report.payroll("2026-03")              # base salary, deductions, fines, net  # doctest: +SKIP
>>> print(report.explain(report.decisions[0].id))                             # doctest: +SKIP

An invalid record never stops an audit and is never silently dropped: it goes to
``report.quarantine`` with its line (or row) number, its id and what was wrong with it.
pandas, matplotlib and pyarrow are imported only by the methods that need them.
"""

from __future__ import annotations

import base64
import csv
import gzip
import html
import io
import json
import math
import os
import re
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO, Union, get_args, get_origin

from pydantic import BaseModel

from .engine import Engine
from .errors import EventError, ParameterError, PolicyKitError, nearest
from .models.decisions import Decision, Subject
from .models.events import EVENT_TYPES, EventBase
from .models.parsing import parse_event
from .policy import Policy, PolicySet
from .rules._base import Match, RuleSpec, _compile_condition, event_value, key_of

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]
    from matplotlib.figure import Figure

__all__ = [
    "AuditCounts",
    "AuditReport",
    "AuditSourceError",
    "Chart",
    "Explanation",
    "QuarantinedRecord",
    "WhyNot",
    "audit",
    "parse_instant",
    "read_records",
]

CENT = Decimal("0.01")
MONEY_KINDS = ("deduction", "fine")
Unit = Literal["line", "row", "item"]
PolicyArg = Union[None, str, Path, Policy, PolicySet, Iterable[Policy]]  # noqa: UP007


class AuditSourceError(PolicyKitError, ValueError):
    """An events source that cannot be read at all (missing file, unknown format, a JSON
    array that is not JSON). Single bad records are quarantined instead."""

    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")


def parse_instant(value: str | datetime, *, name: str = "until") -> datetime:
    """An ISO-8601 date-time **with offset** (``2026-04-01T00:00:00+08:00`` or ``...Z``).

    A naive time is refused: event time is absolute, and guessing a zone moves deadlines."""
    if isinstance(value, datetime):
        out = value
    else:
        text = str(value).strip()
        try:
            out = datetime.fromisoformat(text)
        except ValueError:
            raise ParameterError(name, value, "an ISO-8601 date-time with offset, e.g. "
                                 "2026-04-01T00:00:00+08:00") from None
    if out.tzinfo is None or out.utcoffset() is None:
        raise ParameterError(name, value, "a date-time with a UTC offset (naive times are "
                             "ambiguous), e.g. 2026-04-01T00:00:00+08:00")
    return out


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QuarantinedRecord:
    """A record that did not validate, and where it was."""

    source: str
    line: int | None
    """Line of the file (JSONL, JSON, CSV: the header is line 1) or 1-based row/item."""
    unit: Unit
    event_id: str | None
    problems: tuple[tuple[str, Any, str], ...]
    """(field path, bad value, what was expected) for each failure."""
    record: str
    """The record as read, shortened, to find and fix it."""

    @property
    def error(self) -> str:
        return "; ".join(f"{f or '<record>'}: got {_short(v)}, expected {e}"
                         for f, v, e in self.problems)

    def __str__(self) -> str:
        where = self.source + (f" {self.unit} {self.line}" if self.line is not None else "")
        ident = f" (event {self.event_id!r})" if self.event_id else ""
        return f"{where}{ident}: {self.error}"


@dataclass
class AuditCounts:
    """What happened to the records: ``read = valid + quarantined``; of the valid ones,
    ``duplicates`` repeated an id already seen (ignored, not counted twice) and
    ``after_until`` were later than the audit horizon (not evaluated)."""

    read: int = 0
    valid: int = 0
    duplicates: int = 0
    quarantined: int = 0
    after_until: int = 0
    evaluated: int = 0
    decisions: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)

    def __str__(self) -> str:
        text = (f"{self.read} records read: {self.valid} valid, {self.duplicates} duplicate, "
                f"{self.quarantined} quarantined")
        if self.after_until:
            text += f", {self.after_until} after the horizon"
        return text + f"; {self.evaluated} events evaluated, {self.decisions} decisions"


_FORMATS = ("jsonl", "json", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl", ".json": "json",
             ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass
class _Reader:
    """Raw records with their positions, plus what the progress bar needs."""

    label: str
    unit: Unit
    records: Iterator[tuple[int, Any]]
    total: int | None = None
    """Total for the progress bar (bytes of a file, or number of records)."""
    progress_unit: str = "rec"
    advance: Callable[[Any], int] = field(default=lambda _raw: 1)


def _structured_fields() -> dict[str, frozenset[str]]:
    """Per event type, the fields holding lists or objects: in a CSV cell (or a text column
    of a DataFrame) they are JSON text."""

    def structured(annotation: Any) -> bool:
        origin = get_origin(annotation)
        if origin in (list, tuple, dict, set, frozenset):
            return True
        if isinstance(annotation, type) and issubclass(annotation, BaseModel | dict | list):
            return True
        return any(structured(a) for a in get_args(annotation) if a is not type(None))

    out: dict[str, frozenset[str]] = {}
    for name, model in EVENT_TYPES.items():
        out[name] = frozenset(f for f, info in model.model_fields.items()
                              if structured(info.annotation))
    return out


_STRUCTURED = _structured_fields()


def _cell(name: str, value: Any, structured: frozenset[str] | None) -> Any:
    """A text cell as the wire format wants it: JSON text decoded where the field holds a
    list or object (or anything bracketed, when the type is unknown)."""
    text = value.strip()
    is_struct = name in structured if structured is not None else False
    if (is_struct or name == "meta" or structured is None) and text[:1] in ("[", "{"):
        try:
            return json.loads(text)
        except (ValueError, RecursionError):
            return value  # validation names the field and shows the text
    return value


def _clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A tabular row as an event dict: empty/null cells are absent, numpy and pandas scalars
    become plain Python, JSON text in list/object fields is decoded."""
    kind = row.get("type")
    structured = _STRUCTURED.get(kind) if isinstance(kind, str) else None
    out: dict[str, Any] = {}
    for name, value in row.items():
        if not isinstance(name, str) or not name:
            continue
        value = _plain(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            value = _cell(name, value, structured)
        out[name] = value
    return out


def _plain(value: Any) -> Any:
    """numpy/pandas/pyarrow values as plain Python; missing values (NaN, NaT, NA) as None."""
    if value is None or isinstance(value, str | bool | int | Decimal | datetime | date):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    mod = type(value).__module__
    if mod.startswith("pandas"):
        if type(value).__name__ in ("NaTType", "NAType"):
            return None
        if hasattr(value, "to_pydatetime"):
            return value.to_pydatetime()
    if hasattr(value, "tolist") and mod.startswith("numpy"):  # numpy arrays and scalars
        as_py = value.tolist()
        if isinstance(as_py, float) and math.isnan(as_py):
            return None
        return _plain(as_py)
    if hasattr(value, "item") and mod.startswith("numpy"):
        return _plain(value.item())
    return value


def _read_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise AuditSourceError(str(path), f"cannot read the file ({exc.strerror or exc})") from None
    if path.suffix == ".gz":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as exc:
            raise AuditSourceError(str(path), f"not a valid gzip file ({exc})") from None
    return data


def _sniff(path: Path, head: bytes) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix in _SUFFIXES:
        fmt = _SUFFIXES[suffix]
        if fmt == "json" and head.lstrip()[:1] == b"{":
            return "jsonl"  # a .json file with one object per line
        return fmt
    if head[:4] == b"PAR1":
        return "parquet"
    first = head.lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    raise AuditSourceError(str(path), "unknown format: name the file .jsonl, .json, .csv or "
                           ".parquet, or pass format=")


def _jsonl_reader(label: str, data: bytes) -> _Reader:
    def records() -> Iterator[tuple[int, Any]]:
        for n, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield n, line

    return _Reader(label, "line", records(), total=len(data), progress_unit="B",
                   advance=lambda raw: len(raw) + 1)


def _json_array_reader(label: str, data: bytes) -> _Reader:
    """Items of a JSON array with the line each starts on (one bad item is quarantined;
    text that is not JSON cannot be split into records and fails the source)."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditSourceError(label, f"not UTF-8 text ({exc.reason} at byte {exc.start})"
                               ) from None
    decoder = json.JSONDecoder()
    ws = re.compile(r"\s*")

    def fail(pos: int, what: str) -> AuditSourceError:
        return AuditSourceError(label, f"invalid JSON array: {what}",
                                line=text.count("\n", 0, pos) + 1)

    pos = ws.match(text, 0).end()  # type: ignore[union-attr]
    if text[pos:pos + 1] != "[":
        raise fail(pos, "expected '['")

    def records() -> Iterator[tuple[int, Any]]:
        nonlocal pos
        pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]
        line, counted = 1, 0
        if text[pos:pos + 1] == "]":
            return
        while True:
            line += text.count("\n", counted, pos)
            counted = pos
            try:
                item, end = decoder.raw_decode(text, pos)
            except (ValueError, RecursionError) as exc:
                raise fail(pos, str(exc).split(":")[0]) from None
            yield line, item
            pos = ws.match(text, end).end()  # type: ignore[union-attr]
            sep = text[pos:pos + 1]
            if sep == "]":
                return
            if sep != ",":
                raise fail(pos, "expected ',' or ']' after an item")
            pos = ws.match(text, pos + 1).end()  # type: ignore[union-attr]

    return _Reader(label, "line", records())


def _csv_reader(label: str, data: bytes) -> _Reader:
    # surrogateescape keeps undecodable bytes visible, so their row is quarantined rather
    # than the whole file failing or the bytes being silently replaced.
    text = data.decode("utf-8-sig", errors="surrogateescape")

    def records() -> Iterator[tuple[int, Any]]:
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is None:
            return
        start = reader.line_num + 1
        for row in reader:
            here, start = start, reader.line_num + 1
            if any(isinstance(v, str) and _has_surrogate(v) for v in row.values()):
                yield here, {"__invalid_utf8__": True, "id": row.get("id")}
                continue
            extra = row.pop(None, None)  # type: ignore[call-overload,unused-ignore]
            cleaned = _clean_row(row)
            if extra:
                cleaned["__extra_cells__"] = extra
            yield here, cleaned

    return _Reader(label, "line", records(), total=text.count("\n") or None)


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parquet_reader(label: str, path: Path) -> _Reader:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - pyarrow is in the audit extra
        try:
            import polars as pl
        except ImportError:
            raise AuditSourceError(label, "reading Parquet needs pyarrow (pip install "
                                   "'policykit[audit]')") from None
        return _frame_reader(label, pl.read_parquet(path))
    try:
        pfile = pq.ParquetFile(path)
    except Exception as exc:
        raise AuditSourceError(label, f"not a readable Parquet file ({exc})") from None

    def records() -> Iterator[tuple[int, Any]]:
        n = 0
        for batch in pfile.iter_batches(batch_size=8192):
            for row in batch.to_pylist():
                n += 1
                yield n, _clean_row(row)

    return _Reader(label, "row", records(), total=pfile.metadata.num_rows)


def _frame_reader(label: str, frame: Any) -> _Reader:
    mod = type(frame).__module__
    if mod.startswith("polars"):
        rows: Iterable[Mapping[str, Any]] = frame.iter_rows(named=True)
    else:
        # pandas: column-wise conversion is far faster than iterrows; positions, not index
        # labels, so a filtered frame still reports a usable row number.
        rows = frame.to_dict("records")

    def records() -> Iterator[tuple[int, Any]]:
        for n, row in enumerate(rows, 1):
            yield n, _clean_row(row)

    return _Reader(label, "row", records(), total=len(frame))


def _is_frame(source: Any) -> bool:
    mod = type(source).__module__
    return (mod.startswith("pandas") or mod.startswith("polars")) and hasattr(source, "columns")


def read_records(source: Any, *, format: str | None = None) -> _Reader:
    """Raw records of any accepted source, each with its line/row number (no validation)."""
    if format is not None and format not in _FORMATS:
        raise ParameterError("format", format, "one of " + ", ".join(_FORMATS),
                             suggestion=nearest(format, _FORMATS))
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            hint = "no such file" if not path.exists() else "not a file"
            raise AuditSourceError(str(path), f"cannot read the events: {hint}")
        fmt = format
        if fmt == "parquet" or (fmt is None and path.suffix.lower() in (".parquet", ".pq")):
            return _parquet_reader(str(path), path)
        data = _read_bytes(path)
        fmt = fmt or _sniff(path, data[:64])
        if fmt == "parquet":
            return _parquet_reader(str(path), path)
        if fmt == "csv":
            return _csv_reader(str(path), data)
        if fmt == "json":
            return _json_array_reader(str(path), data)
        return _jsonl_reader(str(path), data)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        if (format or ("json" if data.lstrip()[:1] == b"[" else "jsonl")) == "json":
            return _json_array_reader("<bytes>", data)
        if format == "csv":
            return _csv_reader("<bytes>", data)
        return _jsonl_reader("<bytes>", data)
    if _is_frame(source):
        return _frame_reader("<dataframe>", source)
    if isinstance(source, Mapping | EventBase):
        source = [source]
    if not isinstance(source, Iterable):
        raise ParameterError("source", source, "a path, a DataFrame, or an iterable of event "
                             "dicts or models")
    items = source
    total = len(items) if isinstance(items, Sequence) else None

    def records() -> Iterator[tuple[int, Any]]:
        for n, item in enumerate(items, 1):
            yield n, (_clean_row(item) if isinstance(item, Mapping) else item)

    return _Reader("<events>", "item", records(), total=total)


def _load_policies(policy: PolicyArg) -> PolicySet:
    if policy is None:
        from .rules.standard import standard_pack

        return standard_pack()
    if isinstance(policy, PolicySet):
        return policy
    if isinstance(policy, Policy):
        return PolicySet([policy])
    if isinstance(policy, str | Path):
        path = Path(policy)
        if not path.exists() and isinstance(policy, str):
            from .rules.standard import standard_pack

            pack = standard_pack()
            if policy in pack:
                return pack.select(policy)
            if not path.suffix and "/" not in policy:
                raise ParameterError("policy", policy, "a policy file, or the id of a standard "
                                     "policy: " + ", ".join(pack.ids),
                                     suggestion=nearest(policy, pack.ids))
        from .policyfile import load_policy

        loaded: object = load_policy(path)
        if isinstance(loaded, Policy):
            return PolicySet([loaded])
        if isinstance(loaded, PolicySet):
            return loaded
        return PolicySet(loaded)  # type: ignore[arg-type]  # an iterable of policies
    return PolicySet(policy)


def _bar(progress: bool | float, total: int | None, desc: str, unit: str) -> Any:
    """A tqdm bar on stderr, or None. ``progress`` as a number: appear only after that many
    seconds, so short inputs print nothing."""
    if progress is False:
        return None
    from tqdm import tqdm  # type: ignore[import-untyped,unused-ignore]

    delay = 0.0 if progress is True else float(progress)
    return tqdm(total=total, desc=desc, unit=unit, unit_scale=unit == "B", file=sys.stderr,
                delay=delay, leave=False, dynamic_ncols=True)


def audit(
    source: Any,
    policy: PolicyArg = None,
    until: datetime | str | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    format: str | None = None,
) -> AuditReport:
    """Audit an event log against policies.

    ``source``: a path (``.jsonl``, ``.json`` array, ``.csv``, ``.parquet``, optionally
    ``.gz``), a pandas or polars DataFrame, or an iterable of event dicts, JSON strings or
    models. In CSV and text columns, list/object fields (``recipients``, ``details``,
    ``meta``) are JSON text and empty cells are absent.
    ``policy``: None for the standard pack, a :class:`Policy` or :class:`PolicySet`, a policy
    file path, or the id of one standard policy.
    ``until``: event time to advance to (with offset): deadlines due at or before it fire;
    records later than it are counted in ``counts.after_until`` and not evaluated.
    ``progress``: a tqdm bar on stderr (a number: only once the run takes that many seconds).
    """
    policies = _load_policies(policy)
    horizon = parse_instant(until) if until is not None else None
    engine = Engine(policies, backend=backend)
    reader = read_records(source, format=format)

    counts = AuditCounts()
    quarantine: list[QuarantinedRecord] = []
    good: list[EventBase] = []
    bar = _bar(progress, reader.total, "reading", reader.progress_unit)
    try:
        for line, raw in reader.records:
            counts.read += 1
            if bar is not None:
                bar.update(reader.advance(raw))
            try:
                event = _validate(raw, reader.label, line)
            except EventError as exc:
                quarantine.append(_quarantined(exc, reader, line, raw))
                continue
            good.append(event)
    finally:
        if bar is not None:
            bar.close()
    counts.quarantined = len(quarantine)
    counts.valid = len(good)

    # Applied in (time, id) order, as Engine.evaluate does: arrival order never matters.
    good.sort(key=lambda e: (e.at, e.id))
    if horizon is not None:
        kept = [e for e in good if e.at <= horizon]
        counts.after_until = len(good) - len(kept)
        good = kept
    decisions: list[Decision] = []
    events: dict[str, EventBase] = {}
    bar = _bar(progress, len(good), "evaluating", "ev")
    try:
        with engine.session() as session:
            for event in good:
                decisions += session.feed(event)
                events.setdefault(event.id, event)
                if bar is not None:
                    bar.update(1)
            if horizon is not None:
                decisions += session.advance_to(horizon)
            counts.duplicates = session.stats.duplicates
            counts.evaluated = session.stats.events
    finally:
        if bar is not None:
            bar.close()
    decisions.sort(key=lambda d: (d.at, d.id))
    counts.decisions = len(decisions)
    return AuditReport(decisions=decisions, events=events, policies=policies,
                       quarantine=quarantine, counts=counts, until=horizon, backend=backend,
                       source=reader.label)


def _validate(raw: Any, label: str, line: int) -> EventBase:
    if isinstance(raw, dict):
        if raw.get("__invalid_utf8__"):
            raise EventError(label, [("", "<undecodable bytes>", "UTF-8 text")],
                             event_id=raw.get("id") if isinstance(raw.get("id"), str) else None,
                             line=line)
        extra = raw.pop("__extra_cells__", None)
        if extra:
            raise EventError(label, [("", extra, "no more cells than the header has columns")],
                             event_id=raw.get("id") if isinstance(raw.get("id"), str) else None,
                             line=line)
    event: EventBase = parse_event(raw, source=label, line=line)
    return event


def _quarantined(exc: EventError, reader: _Reader, line: int, raw: Any) -> QuarantinedRecord:
    if isinstance(raw, bytes):
        shown = raw.decode("utf-8", errors="replace")
    elif isinstance(raw, EventBase):
        shown = raw.model_dump_json()
    elif isinstance(raw, str):
        shown = raw
    else:
        try:
            shown = json.dumps(raw, ensure_ascii=False, default=str)
        except (TypeError, ValueError):
            shown = repr(raw)
    return QuarantinedRecord(source=reader.label, line=line, unit=reader.unit,
                             event_id=exc.event_id, problems=tuple(exc.problems),
                             record=_clip(shown, 300))


# --- explanations ---------------------------------------------------------------------------

_BREACH_KINDS = frozenset({"violation", "deduction", "fine", "sanction"})
_VERBS = {"breached": "breach", "fulfilled": "fulfil", "cancelled": "cancel"}
_TIMING_KEYS = re.compile(r"(due|deadline|window|period|opened|start|end|within|basis|"
                          r"anchor|month|quarter|year|until|since|from|to_time|gap|last)")


def _rule_parameters(policy: Policy, rule_id: str) -> dict[str, Any]:
    """The parameters a rule's data refers to (``"$name"``), with their values."""
    used: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str) and value.startswith("$"):
            used.append(value[1:])
        elif isinstance(value, Mapping):
            for v in value.values():
                walk(v)
        elif isinstance(value, list | tuple):
            for v in value:
                walk(v)

    for raw in policy.rules:
        if raw.get("id") == rule_id:
            walk(raw)
    return {name: policy.parameters[name] for name in dict.fromkeys(used)
            if name in policy.parameters}


def _event_line(event: EventBase | Decision, tz: Any = None) -> str:
    if isinstance(event, Decision):
        return (f"{_fmt_at(event.at, tz)}  {event.id}  decision {event.policy} {event.rule} "
                f"({event.kind}): {event.message}")
    return f"{_fmt_at(event.at, tz)}  {event.id}  {event.type}  {_event_fields(event)}"


def _event_fields(event: EventBase) -> str:
    data = event.model_dump(mode="json", exclude_none=True,
                            exclude={"id", "type", "at", "meta"})
    parts = [f"{k}={json.dumps(v, ensure_ascii=False) if not isinstance(v, str) else v}"
             for k, v in data.items()]
    return _clip(" ".join(parts), 160)


def _kv_lines(values: Mapping[str, Any]) -> list[str]:
    """``key: value`` lines; a list of records (a tariff's items) one record per line."""
    out = []
    for key, value in values.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            out.append(f"  {key}:")
            out += ["    - " + ", ".join(f"{k}={v}" for k, v in item.items()) for item in value]
        else:
            out.append(f"  {key}: {value}")
    return out


def _fmt_at(at: datetime, tz: Any = None) -> str:
    local = at.astimezone(tz) if tz is not None else at
    return local.isoformat(timespec="seconds")


def _human(delta: timedelta) -> str:
    """``1 d 2 h 5 min`` (sign dropped; the sentence says before or after)."""
    seconds = int(abs(delta).total_seconds())
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m, s = divmod(rem, 60)
    parts = [f"{d} d" if d else "", f"{h} h" if h else "", f"{m} min" if m else "",
             f"{s} s" if s and not (d or h) else ""]
    return " ".join(p for p in parts if p) or "0 s"


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v) for v in value]
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return value


@dataclass(frozen=True)
class Explanation:
    """Why one decision was made: the rule, its parameters, the evidence in time order, the
    figures, and the deadline or window involved. ``str()`` renders it as text."""

    decision: Decision
    policy: Policy
    rule: RuleSpec
    parameters: dict[str, Any]
    parameter_docs: dict[str, str]
    evidence: list[EventBase | Decision]
    missing_evidence: list[str]
    timing: dict[str, Any]
    figures: dict[str, Any]
    superseded_by: list[str]
    supersedes: list[Decision]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of everything shown."""
        return {
            "decision": self.decision.to_json_dict(),
            "policy": {"id": self.policy.id, "version": self.policy.version,
                       "title": self.policy.title, "clause": self.policy.clause},
            "rule": {"id": self.rule.id, "shape": self.rule.shape, "title": self.rule.title,
                     "description": self.rule.description,
                     "clause": self.rule.clause or self.policy.clause},
            "parameters": _json_value(self.parameters),
            "evidence": [e.model_dump(mode="json", exclude_none=True) if isinstance(e, EventBase)
                         else e.to_json_dict() for e in self.evidence],
            "missing_evidence": self.missing_evidence,
            "timing": _json_value(self.timing),
            "figures": _json_value(self.figures),
            "superseded_by": self.superseded_by,
        }

    def render(self) -> str:
        d, r, p = self.decision, self.rule, self.policy
        money = f"   amount: {d.amount} {d.currency}" if d.amount is not None else ""
        out = [
            f"Decision {d.id}: {p.id} {r.id} ({d.kind}, {d.status}, severity {d.severity})",
            f"  subject: {d.subject.kind} {d.subject.id}   at: {_fmt_at(d.at)}{money}",
            f"  {d.message}",
            f"  {d.message_zh}",
            "",
            f"Rule {r.id} ({r.shape}) of {p.id} v{p.version} \"{p.title}\" — "
            f"clause {r.clause or p.clause}",
        ]
        if r.title:
            out.append(f"  {r.title}")
        if r.description:
            out.append(f"  {' '.join(r.description.split())}")
        if self.parameters:
            out += ["", "Parameters:"]
            for name, value in self.parameters.items():
                doc = self.parameter_docs.get(name, "")
                out.append(f"  {name} = {value!r}" + (f"   — {doc}" if doc else ""))
        if self.timing:
            out += ["", "Deadline / window:", *_kv_lines(self.timing)]
        if self.figures:
            out += ["", "Figures:", *_kv_lines(self.figures)]
        out += ["", f"Evidence ({len(self.evidence)}, in time order):"]
        out += ["  " + _event_line(e) for e in self.evidence]
        if self.missing_evidence:
            out.append("  not in this audit: " + ", ".join(self.missing_evidence))
        if self.supersedes:
            out += ["", "Replaces:"] + ["  " + _event_line(x) for x in self.supersedes]
        if self.superseded_by:
            out += ["", "Replaced by: " + ", ".join(self.superseded_by)]
        return "\n".join(out)

    __str__ = render
    __repr__ = render

    def _repr_html_(self) -> str:
        d, r, p = self.decision, self.rule, self.policy
        rows = [("subject", f"{d.subject.kind} {d.subject.id}"), ("at", _fmt_at(d.at)),
                ("kind", d.kind), ("status", d.status), ("severity", d.severity),
                ("clause", r.clause or p.clause)]
        if d.amount is not None:
            rows.append(("amount", f"{d.amount} {d.currency}"))
        parts = [
            f"<div class='pk-explain'><h4>{_e(p.id)} {_e(r.id)} — {_e(r.title or r.shape)}</h4>",
            f"<p>{_e(d.message)}<br>{_e(d.message_zh)}</p>",
            _kv_table(rows),
        ]
        if r.description:
            parts.append(f"<p><em>{_e(' '.join(r.description.split()))}</em></p>")
        if self.parameters:
            parts.append("<h5>Parameters</h5>" + _table(
                ["parameter", "value", "meaning"],
                [[k, repr(v), self.parameter_docs.get(k, "")] for k, v in self.parameters.items()]))
        if self.timing:
            parts.append("<h5>Deadline / window</h5>" + _kv_table(list(self.timing.items())))
        if self.figures:
            parts.append("<h5>Figures</h5>" + _kv_table(list(self.figures.items())))
        parts.append("<h5>Evidence</h5>" + _table(
            ["at", "id", "what", "fields"],
            [[_fmt_at(e.at), e.id,
              e.type if isinstance(e, EventBase) else f"decision {e.rule}",
              _event_fields(e) if isinstance(e, EventBase) else e.message]
             for e in self.evidence]))
        if self.missing_evidence:
            parts.append(f"<p>Not in this audit: {_e(', '.join(self.missing_evidence))}</p>")
        parts.append("</div>")
        return "".join(parts)


@dataclass(frozen=True)
class WhyNot:
    """Why a rule did not fire for a subject: what it checked and how close it came.

    ``findings`` are sentences such as "request R1: fulfilled by e-9 12 min before due";
    ``margins`` are the signed distances to the limit (positive: inside it)."""

    subject: str
    policy: Policy
    rule: RuleSpec
    event_types: tuple[str, ...]
    checked: list[EventBase]
    fired: list[Decision]
    findings: list[str]
    margins: list[timedelta]
    horizon: datetime | None

    @property
    def closest(self) -> timedelta | None:
        """The smallest margin seen (how close the rule came to firing), if any."""
        return min(self.margins) if self.margins else None

    def render(self) -> str:
        r, p = self.rule, self.policy
        head = f"{p.id} {r.id} ({r.shape}{': ' + r.title if r.title else ''}) for {self.subject}"
        out = [head]
        breaches = [d for d in self.fired if d.kind in _BREACH_KINDS]
        if breaches:
            out.append(f"  It did fire: {len(breaches)} "
                       f"{'/'.join(sorted({d.kind for d in breaches}))} decision(s):")
        else:
            out.append("  It did not fire (no violation, deduction, fine or sanction).")
        if self.fired:
            if not breaches:
                out.append(f"  Other decisions it made for this subject ({len(self.fired)}):")
            out += ["    " + _event_line(d) for d in self.fired[:20]]
            if len(self.fired) > 20:
                out.append(f"    ... and {len(self.fired) - 20} more")
        out.append("  Reads event types: " + ", ".join(self.event_types))
        out.append(f"  Checked {len(self.checked)} event(s) of this subject:")
        out += ["    " + _event_line(e) for e in self.checked[:50]]
        if len(self.checked) > 50:
            out.append(f"    ... and {len(self.checked) - 50} more")
        if self.findings:
            out.append("  Findings:")
            out += [f"    - {f}" for f in self.findings]
        if self.closest is not None:
            out.append(f"  Closest: {_human(self.closest)} "
                       f"{'inside' if self.closest >= timedelta(0) else 'past'} the limit")
        if self.horizon is not None:
            out.append(f"  Audit horizon: {_fmt_at(self.horizon)}")
        return "\n".join(out)

    __str__ = render
    __repr__ = render

    def _repr_html_(self) -> str:
        return f"<pre class='pk-whynot'>{_e(self.render())}</pre>"


def _deadline_due(spec: Any, trigger: EventBase, calendar: Any) -> datetime | None:
    if spec.within_field:
        value = event_value(trigger, spec.within_field)
        return value if isinstance(value, datetime) else None
    within = spec.within
    if spec.within_by is not None:
        within = spec.within_by.values.get(str(event_value(trigger, spec.within_by.field)),
                                           spec.within_by.default)
    if within is None:
        return None
    return calendar.deadline(trigger.at, within, spec.basis)  # type: ignore[no-any-return]


def _time_of_day(cal: Any, day: date, tow: Any) -> datetime | None:
    """A recurrence's due / not-before time on one day (``work_start``, ``17:30`` ...),
    with its grace; None for end-of-day limits, which a same-day event always meets."""
    from datetime import time as clock

    name = getattr(tow, "time", None)
    if name == "work_start":
        at = cal.at(day, cal.work_start)
    elif name == "work_end":
        at = cal.at(day, cal.work_end)
    elif isinstance(name, str) and name not in ("end_of_day", "start_of_day"):
        try:
            at = cal.at(day, clock.fromisoformat(name))
        except ValueError:
            return None
    else:
        return None
    grace = getattr(tow, "grace", None)
    if grace:
        at = cal.deadline(at, grace, "wall")
    return at  # type: ignore[no-any-return]


def _failed_conditions(match: Match, event: EventBase) -> list[str]:
    """Which ``where`` conditions of a matcher an event fails, as readable text."""
    out = []
    for path, cond in match.where.items():
        if not _compile_condition(path, cond)(event):
            out.append(f"{path} is {event_value(event, path)!r}, the rule needs {cond!r}")
    return out


def _matchers(spec: RuleSpec) -> list[tuple[str, Match]]:
    """Every event matcher among a rule's fields (any shape built from ``Match``)."""
    out: list[tuple[str, Match]] = []
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, Match):
            out.append((name, value))
        elif isinstance(value, tuple):
            out += [(f"{name}[{i}]", v) for i, v in enumerate(value) if isinstance(v, Match)]
    return out


# --- the report -----------------------------------------------------------------------------


class Chart:
    """A matplotlib figure that shows itself in Jupyter (``_repr_png_``) without pyplot, so
    audits never touch the global figure registry or the interactive backend."""

    def __init__(self, figure: Figure) -> None:
        self.figure = figure

    def to_png(self, dpi: int = 110) -> bytes:
        buf = io.BytesIO()
        self.figure.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def to_svg(self) -> str:
        buf = io.StringIO()
        self.figure.savefig(buf, format="svg")
        return buf.getvalue()

    def data_uri(self, dpi: int = 110) -> str:
        return "data:image/png;base64," + base64.b64encode(self.to_png(dpi)).decode("ascii")

    def savefig(self, path: str | Path, **kwargs: Any) -> None:
        self.figure.savefig(path, **kwargs)

    def _repr_png_(self) -> bytes:
        return self.to_png()

    @property
    def title(self) -> str:
        axes = self.figure.get_axes()
        return axes[0].get_title(loc="left") if axes else ""

    def __repr__(self) -> str:
        return f"Chart({self.title!r})"


_PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777",
            "#65a30d", "#ea580c", "#4f46e5", "#0d9488", "#9333ea"]


def _new_figure(width: float, height: float) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.subplots()
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)
    return fig, ax


def _empty_chart(fig: Figure, ax: Any, title: str, text: str) -> Chart:
    ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="#6b7280")
    ax.set_xticks([])
    ax.set_yticks([])
    return Chart(fig)


@dataclass
class AuditReport:
    """The result of an audit: decisions, quarantined records, counts, and ways to read them.

    ``events`` holds the evaluated events by id in (time, id) order, so any decision's
    evidence can be looked up."""

    decisions: list[Decision]
    events: dict[str, EventBase]
    policies: PolicySet
    quarantine: list[QuarantinedRecord]
    counts: AuditCounts
    until: datetime | None = None
    backend: str = "native"
    source: str = "<events>"
    _by_id: dict[str, Decision] = field(default_factory=dict, repr=False)
    _superseded: dict[str, list[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {d.id: d for d in self.decisions}
        superseded: dict[str, list[str]] = defaultdict(list)
        for d in self.decisions:
            for old in d.supersedes:
                superseded[old].append(d.id)
        self._superseded = dict(superseded)

    def __repr__(self) -> str:
        return f"<AuditReport {self.source}: {self.counts}>"

    def __len__(self) -> int:
        return len(self.decisions)

    # -- lookups -------------------------------------------------------------------------

    @property
    def tz(self) -> Any:
        """The display time zone: the first policy's calendar."""
        for p in self.policies:
            tz = p.calendar.tz
            return tz() if callable(tz) else tz
        return None

    @property
    def horizon(self) -> datetime | None:
        """How far event time got: ``until``, or the last evaluated event."""
        if self.until is not None:
            return self.until
        last = next(reversed(self.events.values()), None) if self.events else None
        return last.at if last is not None else None

    def decision(self, decision_id: str) -> Decision:
        """One decision by id (a unique prefix is enough)."""
        found = self._by_id.get(decision_id)
        if found is not None:
            return found
        prefixed = [d for i, d in self._by_id.items() if i.startswith(decision_id)]
        if len(prefixed) == 1:
            return prefixed[0]
        raise ParameterError("decision_id", decision_id,
                             "the id of a decision of this audit"
                             + (f" ({len(prefixed)} ids start with it)" if prefixed else ""),
                             suggestion=nearest(decision_id, self._by_id))

    def is_superseded(self, decision: Decision) -> bool:
        return decision.id in self._superseded

    def effective(self) -> list[Decision]:
        """Decisions that count: final and not replaced by a later one."""
        return [d for d in self.decisions if d.status == "final" and d.id not in self._superseded]

    # -- tables ----------------------------------------------------------------------------

    _COLUMNS = ("id", "at", "policy", "rule", "kind", "subject_kind", "subject_id", "severity",
                "status", "amount", "currency", "clause", "message", "message_zh", "evidence",
                "details", "supersedes", "superseded")

    def _row(self, d: Decision) -> dict[str, Any]:
        return {"id": d.id, "at": d.at, "policy": d.policy, "rule": d.rule, "kind": d.kind,
                "subject_kind": d.subject.kind, "subject_id": d.subject.id,
                "severity": d.severity, "status": d.status, "amount": d.amount,
                "currency": d.currency, "clause": d.clause, "message": d.message,
                "message_zh": d.message_zh, "evidence": list(d.evidence),
                "details": dict(d.details), "supersedes": list(d.supersedes),
                "superseded": d.id in self._superseded}

    def to_pandas(self) -> pd.DataFrame:
        """One row per decision. ``amount`` holds ``Decimal`` values (object dtype), never
        floats; ``at`` is timezone-aware in the calendar's zone."""
        import pandas as pd

        frame = pd.DataFrame([self._row(d) for d in self.decisions], columns=self._COLUMNS)
        if len(frame):
            frame["at"] = pd.to_datetime(frame["at"], utc=True).dt.tz_convert(self.tz)
        frame["amount"] = frame["amount"].astype(object)
        return frame

    to_dataframe = to_pandas

    def to_polars(self) -> Any:
        """The decisions as a polars DataFrame (``amount`` as a decimal string column)."""
        import polars as pl

        rows = []
        for d in self.decisions:
            row = self._row(d)
            row["amount"] = None if d.amount is None else str(d.amount)
            row["details"] = json.dumps(_json_value(d.details), ensure_ascii=False)
            rows.append(row)
        return pl.DataFrame(rows, schema_overrides={"amount": pl.String}, strict=False)

    _SUMMARY_KEYS = ("policy", "rule", "kind", "severity", "status", "subject", "subject_kind",
                     "subject_id", "currency", "date", "month")

    def _summary_rows(self, by: Sequence[str]) -> list[dict[str, Any]]:
        for name in by:
            if name not in self._SUMMARY_KEYS:
                raise ParameterError("summary.by", name,
                                     "one of " + ", ".join(self._SUMMARY_KEYS),
                                     suggestion=nearest(name, self._SUMMARY_KEYS))
        groups: dict[tuple[Any, ...], list[Decision]] = defaultdict(list)
        for d in self.decisions:
            groups[tuple(self._key(d, k) for k in by)].append(d)
        rows = []
        for key in sorted(groups, key=lambda k: tuple(str(x) for x in k)):
            items = groups[key]
            counting = [d for d in items if d.amount is not None and d.status == "final"
                        and d.id not in self._superseded]
            amount = sum((d.amount for d in counting if d.amount is not None), Decimal(0))
            rows.append({
                **dict(zip(by, key, strict=True)),
                "decisions": len(items),
                "final": sum(1 for d in items if d.status == "final"),
                "subjects": len({(d.subject.kind, d.subject.id) for d in items}),
                "amount": amount.quantize(CENT, ROUND_HALF_UP) if counting else None,
                "first_at": min(d.at for d in items),
                "last_at": max(d.at for d in items),
            })
        return rows

    def _key(self, d: Decision, key: str) -> Any:
        if key == "subject":
            return f"{d.subject.kind}:{d.subject.id}"
        if key == "subject_kind":
            return d.subject.kind
        if key == "subject_id":
            return d.subject.id
        if key == "date":
            return d.at.astimezone(self.tz).date().isoformat()
        if key == "month":
            return _month_of(d, self.tz)
        return getattr(d, key)

    def summary(self, by: Sequence[str] | str = ("policy", "rule", "kind")) -> pd.DataFrame:
        """Decisions counted per group: ``decisions``, ``final``, distinct ``subjects``, the
        money of final, non-replaced decisions (``amount``, Decimal) and the time span.
        ``by`` from: policy, rule, kind, severity, status, subject, subject_kind, subject_id,
        currency, date, month."""
        import pandas as pd

        keys = (by,) if isinstance(by, str) else tuple(by)
        columns = [*keys, "decisions", "final", "subjects", "amount", "first_at", "last_at"]
        frame = pd.DataFrame(self._summary_rows(keys), columns=columns)
        frame["amount"] = frame["amount"].astype(object)
        return frame

    def months(self) -> list[str]:
        """Months (``YYYY-MM``) holding final money decisions, in order."""
        return sorted({_month_of(d, self.tz) for d in self.effective()
                       if d.kind in MONEY_KINDS and d.amount is not None})

    def _profiles_until(self, end: datetime | None) -> dict[str, EventBase]:
        found: dict[str, EventBase] = {}
        for event in self.events.values():
            if event.type != "employee.profile":
                continue
            if end is not None and event.at > end:
                break
            found[event.employee_id] = event  # type: ignore[attr-defined]
        return found

    def payroll_rows(self, month: str | None = None) -> tuple[list[str], list[dict[str, Any]]]:
        """The payroll table as (money columns, rows); see :meth:`payroll`."""
        month = month or self._default_month()
        if not re.fullmatch(r"\d{4}-\d{2}", month):
            raise ParameterError("month", month, "a month as YYYY-MM, e.g. 2026-03")
        money: dict[str, dict[str, Decimal]] = defaultdict(dict)
        currency: dict[str, str] = {}
        columns: set[str] = set()
        for d in self.effective():
            if (d.kind not in MONEY_KINDS or d.amount is None or d.subject.kind != "employee"
                    or _month_of(d, self.tz) != month):
                continue
            col = f"{d.policy} {d.rule}"
            columns.add(col)
            per = money[d.subject.id]
            per[col] = per.get(col, Decimal(0)) + d.amount
            if d.currency:
                currency.setdefault(d.subject.id, d.currency)
        year, mon = (int(x) for x in month.split("-"))
        month_end = (datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=self.tz)
                     if self.tz is not None else None)
        profiles = self._profiles_until(month_end - timedelta(microseconds=1)
                                        if month_end is not None else None)
        ordered = sorted(columns, key=_rule_order)
        rows = []
        for emp in sorted(set(profiles) | set(money), key=_natural):
            prof = profiles.get(emp)
            base = getattr(prof, "base_salary", None)
            row: dict[str, Any] = {
                "employee_id": emp,
                "role": getattr(prof, "role", None),
                "department": getattr(prof, "department", None),
                "currency": getattr(prof, "currency", None) or currency.get(emp, "CNY"),
                "base_salary": _money(base) if base is not None else None,
            }
            total = Decimal(0)
            for col in ordered:
                value = money.get(emp, {}).get(col, Decimal(0))
                row[col] = _money(value)
                total += value
            row["total"] = _money(total)
            row["net"] = _money(base - total) if base is not None else None
            rows.append(row)
        return ordered, rows

    def payroll(self, month: str | None = None) -> pd.DataFrame:
        """Per employee for ``month`` (``YYYY-MM``; default the latest month with money):
        ``base_salary`` (from the latest profile by the month's end), one column per rule
        that deducts or fines (``"lateness-deduction R2"``), ``total`` and ``net`` — every
        figure a ``Decimal`` rounded half-up to the cent. Only final decisions count, and
        none replaced by a later one. Employees with a profile and nothing deducted are
        listed too: payroll needs every row."""
        import pandas as pd

        cols, rows = self.payroll_rows(month)
        head = ["employee_id", "role", "department", "currency", "base_salary"]
        frame = pd.DataFrame(rows, columns=[*head, *cols, "total", "net"])
        for col in ("base_salary", *cols, "total", "net"):
            frame[col] = frame[col].astype(object)
        return frame

    def _default_month(self) -> str:
        months = self.months()
        if months:
            return months[-1]
        h = self.horizon
        if h is None:
            raise ParameterError("month", None, "a month as YYYY-MM (the audit is empty)")
        return h.astimezone(self.tz).strftime("%Y-%m")

    # -- explanations ------------------------------------------------------------------------

    def _rule(self, policy_id: str, rule_id: str) -> tuple[Policy, RuleSpec]:
        policy = self.policies.get(policy_id)
        return policy, policy.rule(rule_id)

    def explain(self, decision_id: str) -> Explanation:
        """Why a decision was made: the rule (title, description, clause), its parameters,
        the evidence events in time order, the figures and the deadline or window."""
        d = self.decision(decision_id)
        policy, rule = self._rule(d.policy, d.rule)
        evidence: list[EventBase | Decision] = []
        missing = []
        for ref in d.evidence:
            found = self.events.get(ref) or self._by_id.get(ref)
            if found is None:
                missing.append(ref)
            else:
                evidence.append(found)
        evidence.sort(key=lambda e: (e.at, e.id))
        params = _rule_parameters(policy, rule.id) or dict(policy.parameters)
        timing: dict[str, Any] = {}
        figures: dict[str, Any] = {}
        for key, value in d.details.items():
            if key in ("outcome", "what"):
                continue
            (timing if _TIMING_KEYS.search(key) else figures)[key] = value
        if "due" in d.details and d.details.get("outcome") == "missed":
            timing.setdefault("decided_at", _fmt_at(d.at))
        return Explanation(
            decision=d, policy=policy, rule=rule, parameters=params,
            parameter_docs={k: policy.parameter_docs[k] for k in params
                            if k in policy.parameter_docs},
            evidence=evidence, missing_evidence=missing, timing=timing, figures=figures,
            superseded_by=list(self._superseded.get(d.id, [])),
            supersedes=[self._by_id[x] for x in d.supersedes if x in self._by_id],
        )

    def why_not(self, subject: str | Subject | Mapping[str, str] | tuple[str, str],
                policy: str, rule: str) -> WhyNot:
        """Why ``rule`` of ``policy`` did not fire for ``subject`` (an id, ``"employee:E7"``,
        a :class:`Subject` or ``(kind, id)``): the subject's events the rule reads, what
        each was checked against, and how close it came (for a deadline: fulfilled N
        minutes before due)."""
        kind, sid = _subject_parts(subject)
        pol, spec = self._rule(policy, rule)
        types = spec.event_types()
        fired = [d for d in self.decisions if d.policy == pol.id and d.rule == spec.id
                 and d.subject.id == sid and (kind is None or d.subject.kind == kind)]
        checked = self._subject_events(spec, types, sid)
        findings: list[str] = []
        margins: list[timedelta] = []
        if spec.shape == "deadline":
            self._deadline_closeness(pol, spec, checked, findings, margins)
        else:
            if spec.shape == "recurrence":
                self._daily_closeness(pol, spec, checked, findings, margins)
            self._generic_closeness(pol, spec, checked, findings)
        label = f"{kind}:{sid}" if kind else sid
        if not checked:
            findings.insert(0, f"no event of the types this rule reads mentions {sid!r}")
        return WhyNot(subject=label, policy=pol, rule=spec, event_types=tuple(sorted(types)),
                      checked=checked, fired=fired, findings=findings, margins=margins,
                      horizon=self.horizon)

    def _subject_events(self, spec: RuleSpec, types: frozenset[str], sid: str) -> list[EventBase]:
        """Events of the rule's types naming the subject in any field, plus (one hop) events
        sharing their case key — the resolution of a request names the request, not the
        employee."""
        direct: list[EventBase] = []
        for event in self.events.values():
            if event.type in types and _mentions(event, sid):
                direct.append(event)
        key_fields: tuple[str, ...] = tuple(getattr(spec, "key", ()) or ())
        if not key_fields or not all(isinstance(f, str) for f in key_fields):
            return direct
        keys = {k for e in direct if (k := key_of(e, key_fields)) is not None}
        step_keys: list[tuple[frozenset[str], tuple[str, ...]]] = []
        for _name, m in _matchers(spec):
            step_keys.append((frozenset(m.type), m.key or key_fields))
        seen = {e.id for e in direct}
        out = list(direct)
        for event in self.events.values():
            if event.id in seen or event.type not in types:
                continue
            for mtypes, kf in step_keys:
                if event.type in mtypes and key_of(event, kf) in keys:
                    out.append(event)
                    seen.add(event.id)
                    break
        out.sort(key=lambda e: (e.at, e.id))
        return out

    def _deadline_closeness(self, pol: Policy, spec: Any, checked: list[EventBase],
                            findings: list[str], margins: list[timedelta]) -> None:
        """Replays each of the subject's cases of a deadline rule: the step that closed it
        and its distance to the deadline, or why an event did not count."""
        trigger_types = frozenset(spec.trigger.type)
        horizon = self.horizon
        open_ended = bool(getattr(spec, "open_ended", False))
        for trig in checked:
            if trig.type not in trigger_types:
                continue
            failed = _failed_conditions(spec.trigger, trig)
            if failed:
                findings.append(f"{trig.id} ({trig.type}) does not open a case: "
                                + "; ".join(failed))
                continue
            key = key_of(trig, spec.key)
            due = None if open_ended else _deadline_due(spec, trig, pol.calendar)
            if key is None or (due is None and not open_ended):
                findings.append(f"{trig.id}: no case key or deadline could be read from it")
                continue
            label = (f"case {key.replace(chr(0x1f), '/')} (opened by {trig.id} at "
                     f"{_fmt_at(trig.at, self.tz)})")
            outcome = self._first_step(spec, trig, key, checked, label, findings)
            if outcome is None:
                if due is None:
                    watched = sorted({t for step in spec.breach for t in step.type})
                    findings.append(f"{label}: open-ended, no breach ("
                                    + (", ".join(watched) or "none defined") + ") happened")
                elif horizon is not None and due > horizon:
                    findings.append(f"{label}: still open, due {_fmt_at(due, self.tz)}, after "
                                    f"the audit horizon, so not judged yet "
                                    f"({_human(due - horizon)} to go)")
                    margins.append(due - horizon)
                else:
                    findings.append(f"{label}: nothing fulfilled it by {_fmt_at(due, self.tz)}")
                continue
            verb, event = outcome
            if verb == "fulfilled" and due is not None:
                margin = due - event.at
                side = "before" if margin >= timedelta(0) else "after"
                findings.append(f"{label}: fulfilled by {event.id} ({event.type}) at "
                                f"{_fmt_at(event.at, self.tz)}, {_human(margin)} {side} due "
                                f"{_fmt_at(due, self.tz)}")
                missing = [p for p, c in spec.require.items()
                           if not _compile_condition(p, c)(event)]
                if missing:
                    findings.append(f"{label}: but {event.id} lacks {', '.join(missing)}")
                margins.append(margin)
            else:
                findings.append(f"{label}: {verb} by {event.id} ({event.type}) at "
                                f"{_fmt_at(event.at, self.tz)}")

    @staticmethod
    def _first_step(spec: Any, trig: EventBase, key: str, checked: list[EventBase], label: str,
                    findings: list[str]) -> tuple[str, EventBase] | None:
        """The first event after the trigger that breaches, fulfils or cancels its case."""
        for event in checked:
            if event.at < trig.at or event.id == trig.id:
                continue
            for group, verb in ((spec.breach, "breached"), (spec.fulfil, "fulfilled"),
                                (spec.cancel, "cancelled")):
                for step in group:
                    if event.type not in step.type or key_of(event, step.key or spec.key) != key:
                        continue
                    failed = _failed_conditions(step, event)
                    for mine, theirs in (getattr(step, "same", None) or {}).items():
                        if event_value(event, mine) != event_value(trig, theirs):
                            failed.append(f"{mine} is {event_value(event, mine)!r}, the rule "
                                          f"needs the trigger's {theirs} "
                                          f"{event_value(trig, theirs)!r}")
                    if failed:
                        findings.append(f"{label}: {event.id} ({event.type}) does not "
                                        f"{_VERBS[verb]} it: " + "; ".join(failed))
                        continue
                    return verb, event
        return None

    def _daily_closeness(self, pol: Policy, spec: Any, checked: list[EventBase],
                         findings: list[str], margins: list[timedelta]) -> None:
        """For a recurrence judged per day against a time (late if the first clock-in is
        after 08:30, early if the last clock-out is before 17:30): each day's distance to
        that time, and the closest days that stayed inside it."""
        unit = getattr(getattr(spec, "window", None), "unit", None)
        if unit not in ("day", "working_day"):
            return
        cal = pol.calendar
        occurs = [(frozenset(m.type), m.predicate()) for m in spec.occurrence]
        days: dict[date, list[EventBase]] = defaultdict(list)
        for event in checked:
            if any(event.type in types and pred(event) for types, pred in occurs):
                days[cal.local_date(event.at)].append(event)
        close: list[tuple[timedelta, str]] = []
        for day, seen in sorted(days.items()):
            if unit == "working_day" and not cal.is_working_day(day):
                continue
            for tow, first, word in ((spec.due, True, "before"), (spec.not_before, False,
                                                                  "after")):
                limit = _time_of_day(cal, day, tow) if tow is not None else None
                if limit is None:
                    continue
                event = min(seen, key=lambda e: e.at) if first else max(seen, key=lambda e: e.at)
                margin = (limit - event.at) if first else (event.at - limit)
                if margin >= timedelta(0):
                    margins.append(margin)
                    close.append((margin, f"{day}: {'first' if first else 'last'} {event.type} "
                                          f"{event.id} at {_fmt_at(event.at, self.tz)}, "
                                          f"{_human(margin)} {word} {_fmt_at(limit, self.tz)}"))
        if close:
            close.sort(key=lambda c: c[0])
            findings.append(f"{len(close)} day(s) inside the limit; the closest:")
            findings += ["  " + text for _m, text in close[:3]]

    def _generic_closeness(self, pol: Policy, spec: RuleSpec, checked: list[EventBase],
                           findings: list[str]) -> None:
        matchers = _matchers(spec)
        by_type = Counter(e.type for e in checked)
        if by_type:
            findings.append("events seen: " + ", ".join(f"{n} {t}" for t, n in
                                                       sorted(by_type.items())))
        months = Counter(e.at.astimezone(self.tz).strftime("%Y-%m") for e in checked)
        if len(months) > 1:
            findings.append("per month: "
                            + ", ".join(f"{m}: {n}" for m, n in sorted(months.items())))
        for event in checked:
            for name, m in matchers:
                if event.type in m.type:
                    failed = _failed_conditions(m, event)
                    if failed:
                        findings.append(f"{event.id} does not match {name}: " + "; ".join(failed))
        params = _rule_parameters(pol, spec.id)
        if params:
            findings.append("limits: " + ", ".join(f"{k}={v!r}" for k, v in params.items()))

    # -- charts ------------------------------------------------------------------------------

    def violations_chart(self, kinds: Sequence[str] = ("violation",),
                         freq: Literal["auto", "D", "W", "M"] = "auto") -> Chart:
        """Violations over time, stacked by policy (daily, weekly or monthly bars)."""
        fig, ax = _new_figure(9.0, 3.8)
        title = "Violations over time by policy"
        chosen = [d for d in self.decisions if d.kind in kinds]
        if not chosen:
            return _empty_chart(fig, ax, title, "No violations")
        days = [d.at.astimezone(self.tz).date() for d in chosen]
        span = (max(days) - min(days)).days
        if freq == "auto":
            freq = "D" if span <= 62 else "W" if span <= 400 else "M"

        def bucket(day: date) -> date:
            if freq == "W":
                return day - timedelta(days=day.weekday())
            if freq == "M":
                return day.replace(day=1)
            return day

        counts: dict[str, Counter[date]] = defaultdict(Counter)
        for d, day in zip(chosen, days, strict=True):
            counts[d.policy][bucket(day)] += 1
        buckets = sorted({b for c in counts.values() for b in c})
        first, last = buckets[0], buckets[-1]
        step = {"D": 1, "W": 7}.get(freq)
        if step is not None:
            axis = [first + timedelta(days=i) for i in range(0, (last - first).days + 1, step)]
        else:
            axis = buckets
        positions = list(range(len(axis)))
        bottom = [0] * len(axis)
        order = [p.id for p in self.policies if p.id in counts] + \
            sorted(set(counts) - set(self.policies.ids))
        for i, pid in enumerate(order):
            heights = [counts[pid].get(b, 0) for b in axis]
            ax.bar(positions, heights, bottom=bottom, label=pid, width=0.8,
                   color=_PALETTE[i % len(_PALETTE)])
            bottom = [a + b for a, b in zip(bottom, heights, strict=True)]
        fmt = {"D": "%m-%d", "W": "wk %m-%d", "M": "%Y-%m"}[freq]
        every = max(1, len(axis) // 16)
        ax.set_xticks(positions[::every], [b.strftime(fmt) for b in axis][::every],
                      rotation=45, ha="right", fontsize=8)
        ax.set_ylabel("decisions")
        ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), frameon=False, fontsize=8)
        ax.yaxis.get_major_locator().set_params(integer=True)
        return Chart(fig)

    def deductions_chart(self, month: str | None = None, top: int = 25) -> Chart:
        """Deductions and fines by employee (final only), stacked by rule; one month or all."""
        title = "Deductions and fines by employee" + (f", {month}" if month else "")
        money: dict[str, dict[str, Decimal]] = defaultdict(dict)
        currency = ""
        for d in self.effective():
            if d.kind not in MONEY_KINDS or d.amount is None or d.subject.kind != "employee":
                continue
            if month is not None and _month_of(d, self.tz) != month:
                continue
            col = f"{d.policy} {d.rule}"
            money[d.subject.id][col] = money[d.subject.id].get(col, Decimal(0)) + d.amount
            currency = currency or (d.currency or "")
        people = sorted(money, key=lambda e: (-sum(money[e].values()), _natural(e)))[:top]
        fig, ax = _new_figure(9.0, max(2.6, 0.34 * len(people) + 1.3))
        if not people:
            return _empty_chart(fig, ax, title, "No deductions or fines")
        ax.grid(axis="y", visible=False)
        ax.grid(axis="x", color="#e5e7eb", linewidth=0.8)
        columns = sorted({c for per in money.values() for c in per}, key=_rule_order)
        people = people[::-1]  # largest on top
        left = [0.0] * len(people)
        for i, col in enumerate(columns):
            # Decimal -> float only for drawing bar lengths; every figure shown is Decimal.
            widths = [float(money[e].get(col, Decimal(0))) for e in people]
            ax.barh(people, widths, left=left, label=col, color=_PALETTE[i % len(_PALETTE)],
                    height=0.7)
            left = [a + b for a, b in zip(left, widths, strict=True)]
        for y, e in enumerate(people):
            total = _money(sum(money[e].values(), Decimal(0)))
            ax.text(left[y], y, f" {total}", va="center", fontsize=8, color="#374151")
        ax.set_xlabel(f"amount ({currency})" if currency else "amount")
        ax.set_title(title, loc="left", fontsize=12, fontweight="bold")
        ax.legend(loc="lower right", frameon=False, fontsize=8)
        ax.margins(x=0.12)
        return Chart(fig)

    # -- export ------------------------------------------------------------------------------

    def write_csv(self, out: TextIO) -> None:
        """Decisions as CSV: lists and objects as JSON text, amounts as decimal strings."""
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self._COLUMNS)
        for d in self.decisions:
            row = self._row(d)
            row["at"] = d.at.isoformat()
            row["amount"] = "" if d.amount is None else str(d.amount)
            row["currency"] = d.currency or ""
            for key in ("evidence", "supersedes", "details"):
                row[key] = json.dumps(_json_value(row[key]), ensure_ascii=False)
            row["superseded"] = "true" if row["superseded"] else "false"
            writer.writerow([row[c] for c in self._COLUMNS])

    def to_csv(self, path: str | Path) -> Path:
        """Write the decisions to a CSV file (UTF-8); returns the path."""
        target = Path(path)
        with target.open("w", encoding="utf-8", newline="") as fh:
            self.write_csv(fh)
        return target

    def write_jsonl(self, out: TextIO) -> None:
        """Decisions in the wire format, one JSON object per line."""
        for d in self.decisions:
            out.write(json.dumps(d.to_json_dict(), ensure_ascii=False) + "\n")

    def to_jsonl(self, path: str | Path) -> Path:
        target = Path(path)
        with target.open("w", encoding="utf-8") as fh:
            self.write_jsonl(fh)
        return target

    def to_html(self, path: str | Path | None = None, *, max_rows: int = 5000) -> str:
        """A self-contained HTML report (tables, charts as embedded PNG, no external
        resources). Written to ``path`` when given; the HTML text is returned."""
        text = _render_report(self, max_rows=max_rows)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        return _render_notebook(self)


# --- small helpers --------------------------------------------------------------------------


def _month_of(d: Decision, tz: Any) -> str:
    period = d.details.get("period")
    if isinstance(period, str) and re.fullmatch(r"\d{4}-\d{2}", period):
        return period
    return d.at.astimezone(tz).strftime("%Y-%m") if tz is not None else d.at.strftime("%Y-%m")


def _money(value: Decimal) -> Decimal:
    return Decimal(value).quantize(CENT, ROUND_HALF_UP)


def _natural(text: str) -> tuple[Any, ...]:
    """Sort E2 before E10."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _rule_order(column: str) -> tuple[Any, ...]:
    return _natural(column)


def _mentions(event: EventBase, value: str) -> bool:
    for name, v in event:
        if name in ("id", "type", "at", "meta"):
            continue
        if v == value or (isinstance(v, list | tuple) and value in v):
            return True
    return False


def _subject_parts(subject: Any) -> tuple[str | None, str]:
    if isinstance(subject, Subject):
        return subject.kind, subject.id
    if isinstance(subject, Mapping):
        return subject.get("kind"), str(subject["id"])
    if isinstance(subject, tuple) and len(subject) == 2:
        return str(subject[0]), str(subject[1])
    text = str(subject)
    if ":" in text:
        kind, _, sid = text.partition(":")
        return kind, sid
    return None, text


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(head: Sequence[str], rows: Iterable[Sequence[Any]], cls: str = "pk") -> str:
    out = [f"<table class='{cls}'><thead><tr>"]
    out += [f"<th>{_e(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _kv_table(rows: Sequence[tuple[str, Any]]) -> str:
    return "<table class='pk kv'><tbody>" + "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows) + "</tbody></table>"


# --- HTML ---------------------------------------------------------------------------------

_CSS = """
:root{--ink:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f8fafc;--card:#fff;--accent:#2563eb}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);font:14px/1.5 system-ui,-apple-system,
"Segoe UI",Roboto,"Noto Sans","Noto Sans CJK SC","PingFang SC","Microsoft YaHei",sans-serif}
header{background:#0f172a;color:#f8fafc;padding:28px 40px 22px}
header .brand{font-size:12px;letter-spacing:.12em;text-transform:uppercase;color:#93c5fd}
header h1{margin:4px 0 6px;font-size:26px;font-weight:650}
header p{margin:0;color:#cbd5e1}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);
padding:8px 40px;display:flex;gap:18px;flex-wrap:wrap}
nav a{color:var(--accent);text-decoration:none;font-weight:550}
main{max-width:1280px;margin:0 auto;padding:20px 40px 60px}
section{margin-top:28px}
h2{font-size:18px;margin:0 0 10px}
h3{font-size:15px;margin:18px 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(128px,1fr));gap:12px}
.card{background:var(--card);border:1px solid var(--line);border-radius:10px;padding:12px 16px}
.card .n{font-size:24px;font-weight:650}
.card .l{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.05em}
.card.warn .n{color:#b45309}.card.bad .n{color:#b91c1c}.card.wide{grid-column:span 2}
.charts{display:grid;grid-template-columns:1fr;gap:16px}
figure{margin:0;background:#fff;border:1px solid var(--line);border-radius:10px;padding:12px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:12px;margin-top:6px}
.tablewrap{overflow-x:auto;background:#fff;border:1px solid var(--line);border-radius:10px}
table.pk{border-collapse:collapse;width:100%;font-size:13px}
table.pk th{background:#f1f5f9;text-align:left;font-weight:600;position:sticky;top:0}
table.pk th,table.pk td{padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
table.pk tr:hover td{background:#f8fafc}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.id,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
td.when,td.nowrap{white-space:nowrap}
td.id{font-size:11px}
.clip{max-width:120px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
td.msg{min-width:280px}
.badge+div,div>.badge{margin-top:3px}
.zh{color:var(--muted);font-size:12px}
.badge{display:inline-block;padding:1px 8px;border-radius:999px;font-size:11px;font-weight:600;
white-space:nowrap}
.k-violation,.s-high{background:#fee2e2;color:#991b1b}.s-critical{background:#7f1d1d;color:#fff}
.k-deduction,.k-fine{background:#fef3c7;color:#92400e}.k-sanction{background:#fce7f3;color:#9d174d}
.k-escalation{background:#ede9fe;color:#5b21b6}.k-obligation,.k-warning{background:#e0f2fe;
color:#075985}.k-kpi{background:#dcfce7;color:#166534}.s-info{background:#f1f5f9;color:#475569}
.s-low{background:#e0f2fe;color:#075985}.s-medium{background:#fef3c7;color:#92400e}
.filter{margin:0 0 10px;padding:7px 10px;width:min(420px,100%);border:1px solid #cbd5e1;
border-radius:8px;font:inherit}
.note{color:var(--muted);font-size:12px}
tr.total td{font-weight:650;background:#f8fafc}
table.payroll th{max-width:120px;white-space:normal}
table.payroll td,table.payroll th{padding:6px 8px}
footer{color:var(--muted);font-size:12px;text-align:center;padding:20px}
"""

_FILTER_JS = """
document.querySelectorAll('input.filter').forEach(function(box){
  var rows=document.querySelectorAll('#'+box.dataset.table+' tbody tr');
  box.addEventListener('input',function(){
    var q=box.value.toLowerCase();
    rows.forEach(function(r){r.style.display=r.textContent.toLowerCase().indexOf(q)<0?'none':'';});
  });
});
"""


def _badge(prefix: str, value: str) -> str:
    return f"<span class='badge {prefix}-{_e(value)}'>{_e(value)}</span>"


def _cards(report: AuditReport) -> str:
    c = report.counts
    violations = sum(1 for d in report.decisions if d.kind == "violation")
    money: dict[str, Decimal] = defaultdict(Decimal)
    for d in report.effective():
        if d.kind in MONEY_KINDS and d.amount is not None:
            money[d.currency or ""] += d.amount
    money_text = " + ".join(f"{_money(v)} {k}".strip() for k, v in sorted(money.items())) or "0"
    items = [("records read", c.read, ""), ("valid", c.valid, ""),
             ("duplicates", c.duplicates, "warn" if c.duplicates else ""),
             ("quarantined", c.quarantined, "bad" if c.quarantined else ""),
             ("decisions", c.decisions, ""), ("violations", violations,
                                              "bad" if violations else ""),
             ("deductions + fines", money_text, "wide")]
    if c.after_until:
        items.insert(4, ("after horizon", c.after_until, "warn"))
    return "<div class='cards'>" + "".join(
        f"<div class='card {cls}'><div class='n'>{_e(v)}</div>"
        f"<div class='l'>{_e(label)}</div></div>"
        for label, v, cls in items) + "</div>"


def _summary_html(report: AuditReport) -> str:
    rows = report._summary_rows(("policy", "rule", "kind"))
    if not rows:
        return "<p class='note'>No decisions.</p>"
    titles = {(p.id, s.id): s.title for p in report.policies for s in p.specs}
    out = ["<div class='tablewrap'><table class='pk' id='pk-summary'><thead><tr><th>policy</th>"
           "<th>rule</th><th>title</th><th>kind</th><th class='num'>decisions</th>"
           "<th class='num'>final</th><th class='num'>subjects</th><th class='num'>amount</th>"
           "</tr></thead><tbody>"]
    for r in rows:
        out.append(
            f"<tr><td>{_e(r['policy'])}</td><td>{_e(r['rule'])}</td>"
            f"<td>{_e(titles.get((r['policy'], r['rule']), ''))}</td>"
            f"<td>{_badge('k', r['kind'])}</td><td class='num'>{r['decisions']}</td>"
            f"<td class='num'>{r['final']}</td><td class='num'>{r['subjects']}</td>"
            f"<td class='num'>{_e(r['amount'] if r['amount'] is not None else '')}</td></tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _payroll_html(report: AuditReport, month: str) -> str:
    cols, rows = report.payroll_rows(month)
    head = ["employee", "role", "currency", "base salary", *cols, "total", "net"]
    out = [f"<h3>{_e(month)}</h3><div class='tablewrap'><table class='pk payroll'><thead><tr>"]
    out += [f"<th class='{'num' if i >= 3 else ''}'>{_e(h)}</th>" for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    sums: dict[str, Decimal] = defaultdict(Decimal)
    for r in rows:
        cells = [f"<td>{_e(r['employee_id'])}</td><td>{_e(r['role'] or '')}</td>"
                 f"<td>{_e(r['currency'])}</td>"]
        for key in ("base_salary", *cols, "total", "net"):
            value = r[key]
            if isinstance(value, Decimal):
                sums[key] += value
            cells.append(f"<td class='num'>{_e('' if value is None else value)}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("<tr class='total'><td>total</td><td></td><td></td>" + "".join(
        f"<td class='num'>{_e(_money(sums[k]))}</td>"
        for k in ("base_salary", *cols, "total", "net")) + "</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


def _decision_rows(report: AuditReport, decisions: Sequence[Decision]) -> str:
    out = []
    for d in decisions:
        amount = f"{d.amount} {d.currency}" if d.amount is not None else ""
        status = d.status + (" (replaced)" if report.is_superseded(d) else "")
        when = d.at.astimezone(report.tz).strftime("%Y-%m-%d %H:%M")
        evidence = ", ".join(d.evidence[:6]) + ("…" if len(d.evidence) > 6 else "")
        out.append(
            f"<tr id='{_e(d.id)}'><td class='when'>{_e(when)}</td>"
            f"<td>{_e(d.policy)}<div class='zh'>{_e(d.rule)} · "
            f"{_e(d.clause)}</div></td>"
            f"<td>{_badge('k', d.kind)}<div>{_badge('s', d.severity)}</div></td>"
            f"<td class='nowrap'>{_e(d.subject.kind)} <b>{_e(d.subject.id)}</b></td>"
            f"<td class='num'>{_e(amount)}</td><td>{_e(status)}</td>"
            f"<td class='msg'>{_e(d.message)}<div class='zh'>{_e(d.message_zh)}</div></td>"
            f"<td class='id'><div class='clip' title='{_e(d.id)}'>{_e(d.id)}</div>"
            f"<div class='zh clip' title='{_e(evidence)}'>{_e(evidence)}</div></td></tr>")
    return "".join(out)


_DECISION_HEAD = ("<thead><tr><th>at</th><th>policy · rule</th><th>kind</th><th>subject</th>"
                  "<th class='num'>amount</th><th>status</th><th>message</th>"
                  "<th>id · evidence</th></tr></thead>")


def _quarantine_html(report: AuditReport, limit: int) -> str:
    if not report.quarantine:
        return "<p class='note'>No invalid records: every record validated.</p>"
    rows = [[f"{q.unit} {q.line}" if q.line is not None else "", q.event_id or "", q.error,
             q.record] for q in report.quarantine[:limit]]
    more = len(report.quarantine) - limit
    return ("<div class='tablewrap'>" + _table(["where", "event id", "problem", "record"], rows)
            .replace("<table class='pk'>", "<table class='pk' id='pk-quarantine'>")
            + "</div>" + (f"<p class='note'>… and {more} more.</p>" if more > 0 else ""))


def _policies_html(report: AuditReport) -> str:
    rows = [[p.id, p.version, p.title, p.title_zh, p.clause, len(p.specs)]
            for p in report.policies]
    return "<div class='tablewrap'>" + _table(
        ["policy", "version", "title", "標題", "clause", "rules"], rows) + "</div>"


def _render_report(report: AuditReport, *, max_rows: int = 5000) -> str:
    c = report.counts
    horizon = report.horizon
    events = list(report.events.values())
    span = (f"events {_fmt_at(events[0].at, report.tz)} → {_fmt_at(events[-1].at, report.tz)}"
            if events else "no events")
    sub = " · ".join([
        f"{len(report.policies)} policies", span,
        f"horizon {_fmt_at(horizon, report.tz)}" if horizon else "no horizon",
        f"backend {report.backend}"])
    charts = [
        (report.violations_chart(), "Violations per day (or week) stacked by policy."),
        (report.deductions_chart(), "Deductions and fines per employee, final decisions only, "
                                    "stacked by rule."),
    ]
    chart_html = "".join(
        f"<figure><img alt='{_e(ch.title)}' "
        f"src='{ch.data_uri()}'><figcaption>{_e(cap)}</figcaption></figure>"
        for ch, cap in charts)
    months = report.months()
    payroll = "".join(_payroll_html(report, m) for m in months) or \
        "<p class='note'>No deductions or fines.</p>"
    shown = report.decisions[:max_rows]
    cut = (f"<p class='note'>Showing the first {max_rows} of {len(report.decisions)} decisions; "
           "the CSV export has them all.</p>" if len(report.decisions) > max_rows else "")
    name = "events" if report.source.startswith("<") else Path(report.source).name
    title = f"policykit audit — {name}"
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><div class='brand'>policykit audit</div><h1>{_e(name)}</h1>"
        f"<p>{_e(sub)}</p></header>",
        "<nav><a href='#overview'>Overview</a><a href='#charts'>Charts</a>"
        "<a href='#summary'>Summary</a><a href='#payroll'>Payroll</a>"
        "<a href='#decisions'>Decisions</a><a href='#quarantine'>Quarantine</a>"
        "<a href='#policies'>Policies</a></nav><main>",
        f"<section id='overview'><h2>Overview</h2>{_cards(report)}"
        f"<p class='note'>{_e(str(c))}.</p></section>",
        f"<section id='charts'><h2>Charts</h2><div class='charts'>{chart_html}</div></section>",
        f"<section id='summary'><h2>Summary by policy, rule and kind</h2>{_summary_html(report)}"
        "</section>",
        "<section id='payroll'><h2>Payroll</h2><p class='note'>Base salary from the latest "
        "employee profile by month end; final, non-replaced deductions and fines; amounts "
        f"rounded half-up to the cent.</p>{payroll}</section>",
        f"<section id='decisions'><h2>Decisions ({len(report.decisions)})</h2>"
        "<input class='filter' data-table='pk-decisions' placeholder='Filter: employee, "
        "policy, kind, text…' aria-label='filter decisions'>"
        f"{cut}<div class='tablewrap'><table class='pk' id='pk-decisions'>{_DECISION_HEAD}"
        f"<tbody>{_decision_rows(report, shown)}</tbody></table></div></section>",
        f"<section id='quarantine'><h2>Quarantined records ({c.quarantined})</h2>"
        f"{_quarantine_html(report, 1000)}</section>",
        f"<section id='policies'><h2>Policies</h2>{_policies_html(report)}</section>",
        "</main><footer>Generated by policykit from event time only; decision ids are "
        "deterministic (same events and policies, same ids).</footer>",
        f"<script>{_FILTER_JS}</script></body></html>",
    ]
    return "".join(parts)


_NB_CSS = ("<style>.pk-report .cards{display:flex;flex-wrap:wrap;gap:8px;margin:6px 0}"
           ".pk-report .card{border:1px solid #e5e7eb;border-radius:8px;padding:6px 12px}"
           ".pk-report .n{font-size:18px;font-weight:650}.pk-report .l{font-size:11px;"
           "color:#6b7280;text-transform:uppercase}.pk-report .card.bad .n{color:#b91c1c}"
           ".pk-report .card.warn .n{color:#b45309}.pk-report .zh{color:#6b7280;font-size:11px}"
           ".pk-report table.pk td,.pk-report table.pk th{text-align:left;vertical-align:top}"
           ".pk-report .badge{padding:0 6px;border-radius:9px;font-size:11px}"
           ".pk-report .k-violation,.pk-report .s-high{background:#fee2e2;color:#991b1b}"
           ".pk-report .k-deduction,.pk-report .k-fine{background:#fef3c7;color:#92400e}"
           "</style>")


def _policy_overview_html(report: AuditReport) -> str:
    """One row per policy: decisions, violations, the other kinds, money (final)."""
    by_policy: dict[str, Counter[str]] = defaultdict(Counter)
    money: dict[str, Decimal] = defaultdict(Decimal)
    for d in report.decisions:
        by_policy[d.policy][d.kind] += 1
    for d in report.effective():
        if d.kind in MONEY_KINDS and d.amount is not None:
            money[d.policy] += d.amount
    if not by_policy:
        return "<p class='note'>No decisions.</p>"
    order = [p.id for p in report.policies if p.id in by_policy]
    rows = []
    for pid in order:
        kinds = by_policy[pid]
        other = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()) if k != "violation")
        rows.append([pid, sum(kinds.values()), kinds.get("violation", 0), other,
                     _money(money[pid]) if pid in money else ""])
    return _table(["policy", "decisions", "violations", "other kinds", "amount (final)"], rows)


def _render_notebook(report: AuditReport, rows: int = 10) -> str:
    """The compact view Jupyter shows for a report."""
    parts = [_NB_CSS, "<div class='pk-report'>",
             f"<b>Audit of {_e(report.source)}</b> — {len(report.policies)} policies, "
             f"horizon {_e(_fmt_at(report.horizon, report.tz) if report.horizon else 'none')}",
             _cards(report), "<h4>By policy</h4>",
             f"<div style='overflow-x:auto'>{_policy_overview_html(report)}</div>"]
    if report.decisions:
        parts.append(f"<h4>First {min(rows, len(report.decisions))} of "
                     f"{len(report.decisions)} decisions</h4>")
        parts.append(f"<div style='overflow-x:auto'><table class='pk'>{_DECISION_HEAD}<tbody>"
                     f"{_decision_rows(report, report.decisions[:rows])}</tbody></table></div>")
    if report.quarantine:
        parts.append(f"<h4>Quarantined records ({len(report.quarantine)})</h4>")
        parts.append(_quarantine_html(report, 5))
    parts.append("<p class='zh'>More: <code>report.to_pandas()</code>, <code>.summary()</code>, "
                 "<code>.payroll(month)</code>, <code>.explain(id)</code>, <code>.why_not(subject,"
                 " policy, rule)</code>, <code>.violations_chart()</code>, "
                 "<code>.deductions_chart()</code>, <code>.to_html(path)</code>.</p></div>")
    return "".join(parts)
