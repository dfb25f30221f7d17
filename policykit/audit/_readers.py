"""Readers: raw records of any accepted source (JSONL, a JSON array, CSV, Parquet, optionally
gzipped; pandas or polars DataFrames; iterables of dicts, JSON text or models), each with
its line or row number, before validation. pyarrow and polars are imported only to read
what needs them."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from ..errors import MissingDependencyError, ParameterError, PolicyKitError, nearest
from ..models.events import EVENT_TYPES, EventBase

Unit = Literal["line", "row", "item"]

_FORMATS = ("jsonl", "json", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl", ".json": "json",
             ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


class AuditSourceError(PolicyKitError, ValueError):
    """An events source that cannot be read at all (missing file, unknown format, a JSON
    array that is not JSON). Single bad records are quarantined instead."""

    def __init__(self, source: str, reason: str, *, line: int | None = None) -> None:
        self.source = source
        self.reason = reason
        self.line = line
        where = source + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {reason}")


@dataclass
class Reader:
    """Raw records with their positions, plus what the progress bar needs."""

    label: str
    unit: Unit
    records: Iterator[tuple[int, Any]]
    total: int | None = None
    """Total for the progress bar (bytes of a file, or number of records)."""
    progress_unit: str = "rec"
    advance: Callable[[Any], int] = field(default=lambda _raw: 1)


def read_records(source: Any, *, format: str | None = None) -> Reader:
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
        return _text_reader(str(path), data, fmt)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        return _text_reader("<bytes>", data,
                            format or ("json" if data.lstrip()[:1] == b"[" else "jsonl"))
    if _is_frame(source):
        return _frame_reader("<dataframe>", source)
    if isinstance(source, Mapping | EventBase):
        source = [source]
    if not isinstance(source, Iterable):
        raise ParameterError("source", source, "a path, a DataFrame, or an iterable of event "
                             "dicts or models")
    total = len(source) if isinstance(source, Sequence) else None
    return Reader("<events>", "item", _numbered(source), total=total)


def _text_reader(label: str, data: bytes, fmt: str) -> Reader:
    """The reader of a text format; anything but CSV or a JSON array is read as JSONL."""
    if fmt == "csv":
        return _csv_reader(label, data)
    if fmt == "json":
        return _json_array_reader(label, data)
    return _jsonl_reader(label, data)


def _numbered(items: Iterable[Any]) -> Iterator[tuple[int, Any]]:
    """Items with their 1-based position; mappings (rows) cleaned as :func:`clean_row`."""
    for n, item in enumerate(items, 1):
        yield n, (clean_row(item) if isinstance(item, Mapping) else item)


# --- tabular cells ------------------------------------------------------------------------


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


def clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
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


# --- files --------------------------------------------------------------------------------


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


def _jsonl_reader(label: str, data: bytes) -> Reader:
    def records() -> Iterator[tuple[int, Any]]:
        for n, line in enumerate(data.splitlines(), 1):
            if line.strip():
                yield n, line

    return Reader(label, "line", records(), total=len(data), progress_unit="B",
                  advance=lambda raw: len(raw) + 1)


def _json_array_reader(label: str, data: bytes) -> Reader:
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

    return Reader(label, "line", records())


def _csv_reader(label: str, data: bytes) -> Reader:
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
            cleaned = clean_row(row)
            if extra:
                cleaned["__extra_cells__"] = extra
            yield here, cleaned

    return Reader(label, "line", records(), total=text.count("\n") or None)


def _has_surrogate(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def _parquet_reader(label: str, path: Path) -> Reader:
    try:
        import pyarrow.parquet as pq  # type: ignore[import-untyped,unused-ignore]
    except ImportError:  # pragma: no cover - pyarrow is in the audit extra
        try:
            import polars as pl
        except ImportError:
            raise MissingDependencyError("pyarrow", "audit",
                                         f"reading Parquet ({label})") from None
        return _frame_reader(label, pl.read_parquet(path))
    try:
        pfile = pq.ParquetFile(path)
    except Exception as exc:
        raise AuditSourceError(label, f"not a readable Parquet file ({exc})") from None
    def rows() -> Iterator[dict[str, Any]]:
        for batch in pfile.iter_batches(batch_size=8192):
            yield from batch.to_pylist()

    return Reader(label, "row", _numbered(rows()), total=pfile.metadata.num_rows)


# --- DataFrames ---------------------------------------------------------------------------


def _is_frame(source: Any) -> bool:
    mod = type(source).__module__
    return (mod.startswith("pandas") or mod.startswith("polars")) and hasattr(source, "columns")


def _frame_reader(label: str, frame: Any) -> Reader:
    mod = type(frame).__module__
    if mod.startswith("polars"):
        rows: Iterable[Mapping[str, Any]] = frame.iter_rows(named=True)
    else:
        # pandas: column-wise conversion is far faster than iterrows; positions, not index
        # labels, so a filtered frame still reports a usable row number.
        rows = frame.to_dict("records")
    return Reader(label, "row", _numbered(rows), total=len(frame))
