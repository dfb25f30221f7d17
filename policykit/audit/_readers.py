"""Readers: raw records of any accepted source (JSONL, a JSON array, CSV, Parquet, optionally
gzipped; pandas or polars DataFrames; iterables of dicts, JSON text or models), each with
its line or row number, before validation. pyarrow and polars are imported only to read
what needs them."""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import math
import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, BinaryIO, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from ..errors import AuditSourceError, MissingDependencyError, ParameterError, nearest
from ..models.events import EVENT_TYPES, EventBase
from ..models.registry import on_types_changed

Unit = Literal["line", "row", "item"]

_FORMATS = ("jsonl", "json", "csv", "parquet")
_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl", ".json": "json",
             ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}




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
    notes: list[str] = field(default_factory=list)
    """What the reader guessed about the source (e.g. its text encoding), for the report."""


def read_records(source: Any, *, format: str | None = None,
                 encoding: str | None = None) -> Reader:
    """Raw records of any accepted source, each with its line/row number (no validation).

    ``encoding`` names a CSV file's text encoding (e.g. ``"cp1252"``) instead of sniffing it
    (a byte-order mark, UTF-8, else a GB18030 guess that the reader's notes report)."""
    if format is not None and format not in _FORMATS:
        raise ParameterError("format", format, "one of " + ", ".join(_FORMATS),
                             suggestion=nearest(format, _FORMATS))
    if encoding is not None:
        try:
            encoding = codecs.lookup(encoding).name
        except (LookupError, TypeError, ValueError):
            raise ParameterError("encoding", encoding, "a text encoding Python knows, e.g. "
                                 "'utf-8', 'gb18030' or 'cp1252'") from None
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            hint = "no such file" if not path.exists() else "not a file"
            raise AuditSourceError(str(path), f"cannot read the events: {hint}")
        fmt = format
        if fmt == "parquet" or (fmt is None and path.suffix.lower() in (".parquet", ".pq")):
            return _parquet_reader(str(path), path)
        fmt = fmt or _sniff(path, _head(path, str(path)))
        if fmt == "parquet":
            return _parquet_reader(str(path), path)
        return _stream_reader(str(path), path, fmt, encoding)
    if isinstance(source, bytes | bytearray):
        data = bytes(source)
        return _stream_reader("<bytes>", data, format or (
            "json" if _strip_bom(data[:SNIFF_BYTES]).lstrip()[:1] == b"[" else "jsonl"),
            encoding)
    if _is_frame(source):
        return _frame_reader("<dataframe>", source)
    if isinstance(source, Mapping | EventBase):
        source = [source]
    if not isinstance(source, Iterable):
        raise ParameterError("source", source, "a path, a DataFrame, or an iterable of event "
                             "dicts or models")
    total = len(source) if isinstance(source, Sequence) else None
    return Reader("<events>", "item", _numbered(source, tabular=False), total=total)


def _numbered(items: Iterable[Any], *, tabular: bool = True) -> Iterator[tuple[int, Any]]:
    """Items with their 1-based position; mappings (rows) cleaned as :func:`clean_row`."""
    for n, item in enumerate(items, 1):
        yield n, (clean_row(item, tabular=tabular) if isinstance(item, Mapping) else item)


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


def _fields_of(kind: type) -> dict[str, frozenset[str]]:
    """Per event type, the fields whose type (bare or optional, constrained or not) is
    ``kind``."""
    def holds(annotation: Any) -> bool:
        origin = get_origin(annotation)
        if origin is Annotated:  # Bool, a declared int: Annotated[int, Strict(), ...]
            return holds(get_args(annotation)[0])
        if origin is Union or origin is UnionType:
            return any(holds(a) for a in get_args(annotation) if a is not type(None))
        return annotation is kind

    return {name: frozenset(f for f, info in model.model_fields.items()
                            if holds(info.annotation))
            for name, model in EVENT_TYPES.items()}


# The wire format wants JSON booleans and integers; a CSV cell is text and a DataFrame
# column with gaps holds floats, so those are turned into the JSON value here, explicitly
# (the models themselves accept only true/false and integers).
_BOOLS = _fields_of(bool)
_INTS = _fields_of(int)


def _types_changed() -> None:
    """The vocabulary changed: the tables above, recomputed in place (read by reference)."""
    _STRUCTURED.clear()
    _STRUCTURED.update(_structured_fields())
    for table, kind in ((_BOOLS, bool), (_INTS, int)):
        table.clear()
        table.update(_fields_of(kind))


on_types_changed(_types_changed)
_INTEGER = re.compile(r"[+-]?[0-9]{1,19}")


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


def clean_row(row: Mapping[str, Any], *, tabular: bool = True) -> dict[str, Any]:
    """A tabular row as an event dict: empty/null cells are absent, numpy and pandas scalars
    become plain Python, JSON text in list/object fields is decoded. ``tabular`` (a CSV,
    Parquet or DataFrame row, not a dict given in Python): ``true``/``false`` text in
    boolean fields and integer text, or whole floats of a column with gaps, in integer
    fields become booleans and integers."""
    kind = row.get("type")
    structured = _STRUCTURED.get(kind) if isinstance(kind, str) else None
    typed = tabular and isinstance(kind, str)
    bools = _BOOLS.get(kind, frozenset()) if typed else frozenset()  # type: ignore[arg-type]
    ints = _INTS.get(kind, frozenset()) if typed else frozenset()  # type: ignore[arg-type]
    out: dict[str, Any] = {}
    for name, value in row.items():
        if not isinstance(name, str) or not name:
            continue
        value = _plain(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        if isinstance(value, str):
            text = value.strip()
            if name in bools and text.lower() in ("true", "false"):
                value = text.lower() == "true"
            elif name in ints and _INTEGER.fullmatch(text):
                value = int(text)
            else:
                value = _cell(name, value, structured)
        elif isinstance(value, float) and name in ints and value.is_integer():
            value = int(value)  # an integer column with gaps arrives as floats
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

#: A record (a JSON Lines line, one item of a JSON array, a CSV row) may be at most this
#: many bytes; a longer one is quarantined and the reader goes on after it.
MAX_RECORD_BYTES = 1 << 20
#: A ``.gz`` file may inflate to at most this many times its size on disk, plus
#: :data:`GZIP_ALLOWANCE` bytes (an event log compresses about 10 times); beyond it the
#: source fails with an AuditSourceError (a "zip bomb").
MAX_GZIP_RATIO = 100
GZIP_ALLOWANCE = 64 << 20
#: The bytes read to tell the format, the CSV encoding and the CSV delimiter.
SNIFF_BYTES = 64 << 10
_CHUNK = 1 << 20
#: The longest CSV cell (characters): the csv module's field_size_limit, 131,072 unless the
#: application changes it (it is process-wide, so policykit does not): a longer cell
#: quarantines its row.
_DELIMITERS = (",", ";", "\t", "|")
_TRIED = "a UTF-8, UTF-16 or UTF-32 byte-order mark, then UTF-8, then GB18030"


def unreadable(shown: Any, expected: str, *, event_id: Any = None) -> dict[str, Any]:
    """The raw record a reader yields for a record it could not read: validation
    (``_quarantine.validate``) quarantines it with ``expected`` as the reason."""
    return {"__unreadable__": (shown, expected), "id": event_id}


class _Bounded(io.RawIOBase):
    """A decompressing stream that fails the source, rather than memory, once it has
    produced more than ``limit`` bytes; gzip damage is an AuditSourceError too."""

    def __init__(self, file: BinaryIO, label: str, limit: int) -> None:
        self.file = file
        self.inner = gzip.GzipFile(fileobj=file, mode="rb")
        self.label, self.limit, self.produced = label, limit, 0

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        try:
            self.inner.close()
            self.file.close()
        finally:
            super().close()

    def readinto(self, buffer: Any) -> int:
        try:
            n = self.inner.readinto(buffer)
        except (OSError, EOFError, zlib.error) as exc:
            raise AuditSourceError(self.label, f"not a valid gzip file ({exc})") from None
        self.produced += n
        if self.produced > self.limit:
            raise AuditSourceError(
                self.label, f"inflates to more than {self.limit} bytes ({MAX_GZIP_RATIO} "
                "times its compressed size plus 64 MiB): refused as a decompression bomb; "
                "decompress it yourself if it is genuine")
        return n


@dataclass
class _Source:
    """A file (or bytes) opened for streaming: ``stream`` gives the decompressed bytes,
    ``position()`` how far into the stored bytes reading has got (for progress)."""

    label: str
    stream: io.BufferedReader[Any]
    position: Callable[[], int]
    size: int | None

    read_so_far: int = 0

    def advance(self, _raw: Any) -> int:
        """The stored bytes read since the last call (a Reader's ``advance``)."""
        now = self.position()
        step, self.read_so_far = now - self.read_so_far, now
        return step

    def close(self) -> None:
        self.stream.close()


def _open(source: Path | bytes, label: str) -> _Source:
    if isinstance(source, bytes):
        buf = io.BytesIO(source)
        return _Source(label, io.BufferedReader(buf), buf.tell, len(source))
    try:
        raw = source.open("rb")
        size = os.fstat(raw.fileno()).st_size
    except OSError as exc:
        raise AuditSourceError(label, f"cannot read the file ({exc.strerror or exc})") from None
    if source.suffix != ".gz":
        return _Source(label, raw, raw.tell, size)
    inflated = _Bounded(raw, label, MAX_GZIP_RATIO * size + GZIP_ALLOWANCE)
    return _Source(label, io.BufferedReader(inflated, _CHUNK), raw.tell, size)


def _head(source: Path | bytes, label: str) -> bytes:
    opened = _open(source, label)
    try:
        return opened.stream.read(SNIFF_BYTES)
    finally:
        opened.close()


def _sniff(path: Path, head: bytes) -> str:
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    suffix = Path(name).suffix.lower()
    if suffix in _SUFFIXES:
        fmt = _SUFFIXES[suffix]
        if fmt == "json" and _strip_bom(head).lstrip()[:1] == b"{":
            return "jsonl"  # a .json file with one object per line
        return fmt
    if head[:4] == b"PAR1":
        return "parquet"
    first = _strip_bom(head).lstrip()[:1]
    if first == b"[":
        return "json"
    if first == b"{":
        return "jsonl"
    raise AuditSourceError(str(path), "unknown format: name the file .jsonl, .json, .csv or "
                           ".parquet, or pass format=")


def _strip_bom(data: bytes) -> bytes:
    return data[3:] if data.startswith(codecs.BOM_UTF8) else data


def _utf8_only(label: str, head: bytes, what: str) -> None:
    for bom, name in ((codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"),
                      (codecs.BOM_UTF16_LE, "UTF-16"), (codecs.BOM_UTF16_BE, "UTF-16")):
        if head.startswith(bom):
            raise AuditSourceError(label, f"{what} must be UTF-8 text; this file starts with "
                                   f"a {name} byte-order mark (re-save it as UTF-8)")


def _stream_reader(label: str, source: Path | bytes, fmt: str,
                   encoding: str | None = None) -> Reader:
    """The reader of a text format; anything but CSV or a JSON array is read as JSONL."""
    head = _head(source, label)
    if fmt == "csv":
        return _csv_reader(label, source, head, encoding)
    _utf8_only(label, head, "JSON" if fmt == "json" else "JSON Lines")
    opened = _open(source, label)

    records = (_json_array_records if fmt == "json" else _jsonl_records)(opened)
    return Reader(label, "line", records, total=opened.size, progress_unit="B",
                  advance=opened.advance)


def _jsonl_records(opened: _Source) -> Iterator[tuple[int, Any]]:
    """Lines split on ``\n`` only (a ``\r`` before it is dropped), each at most
    MAX_RECORD_BYTES; a longer line is quarantined and skipped without being held."""
    stream = opened.stream
    try:
        n = 0
        while True:
            line = stream.readline(MAX_RECORD_BYTES + 1)
            if not line:
                return
            n += 1
            if n == 1:
                line = _strip_bom(line)
            if len(line) > MAX_RECORD_BYTES and not line.endswith(b"\n"):
                while (rest := stream.readline(_CHUNK)) and not rest.endswith(b"\n"):
                    pass
                yield n, unreadable(line[:60].decode("utf-8", "replace") + "...",
                                    f"a record of at most {MAX_RECORD_BYTES} bytes")
                continue
            line = line.rstrip(b"\r\n")
            if line.strip():
                yield n, line
    finally:
        opened.close()


_WS = re.compile(r"[ \t\r\n]*")
_STRUCT = re.compile(r'["\[\]{},]')
_STRING_REST = re.compile(r'(?:[^"\\]|\\.)*("?)', re.DOTALL)


def _json_array_records(opened: _Source) -> Iterator[tuple[int, Any]]:
    """Items of a JSON array read a chunk at a time, each with the line it starts on. One
    bad item (invalid, too deep, a number past Python's digit limit, or larger than
    MAX_RECORD_BYTES) is quarantined and the items after it are read; text that cannot be
    split into items any more (unbalanced, truncated) fails the source with its line."""
    label = opened.label
    decoder = json.JSONDecoder()
    text_in = codecs.getincrementaldecoder("utf-8-sig")()
    buf = ""
    pos = 0  # into buf
    mark, mark_line = 0, 1  # a position of buf and its line number
    eof = False

    def here() -> int:
        nonlocal mark, mark_line
        mark_line += buf.count("\n", mark, pos)
        mark = pos
        return mark_line

    def more() -> bool:
        nonlocal buf, pos, mark, eof
        if eof:
            return False
        chunk = opened.stream.read(_CHUNK)
        try:
            text = text_in.decode(chunk, final=not chunk)
        except UnicodeDecodeError as exc:
            raise AuditSourceError(label, f"not UTF-8 text ({exc.reason})", line=here()) \
                from None
        eof = not chunk
        here()
        buf = buf[pos:] + text
        pos = mark = 0
        return True

    def skip_ws() -> None:
        nonlocal pos
        while True:
            pos = _WS.match(buf, pos).end()  # type: ignore[union-attr]
            if pos < len(buf) or not more():
                return

    def fail(what: str) -> AuditSourceError:
        return AuditSourceError(label, f"invalid JSON array: {what}", line=here())

    def skip_item(start: int) -> None:
        """Past one item, however bad or deep, by its brackets and strings: no recursion,
        and only a chunk held at a time."""
        nonlocal pos
        depth = 0
        in_string = False
        while True:
            while pos < len(buf):
                if in_string:
                    m = _STRING_REST.match(buf, pos)
                    pos = m.end()  # type: ignore[union-attr]
                    if m.group(1):  # type: ignore[union-attr]
                        in_string = False
                        continue
                    break  # the string goes on in the next chunk
                found = _STRUCT.search(buf, pos)
                if found is None:
                    pos = len(buf)
                    break
                tok = found.group()
                pos = found.end()
                if tok == '"':
                    in_string = True
                elif tok in "[{":
                    depth += 1
                elif depth == 0:  # the "," or "]" after the item
                    pos = found.start()
                    return
                elif tok in "]}":
                    depth -= 1
            if not more():
                raise AuditSourceError(label, "invalid JSON array: an item is not closed "
                                       "before the end of the file", line=start)

    def item_at() -> tuple[Any, int, str | None]:
        """(item, end, None), or (None, 0, the problem) for an item that is bad."""
        while True:
            try:
                item, end = decoder.raw_decode(buf, pos)
            except RecursionError:
                return None, 0, "JSON nested no deeper than Python can parse"
            except json.JSONDecodeError as exc:
                # Cut short by the chunk (an open string, a literal at the end)? Read on.
                cut = exc.msg.startswith("Unterminated string") or exc.pos >= len(buf) - 16
                if cut and len(buf) - pos <= MAX_RECORD_BYTES and more():
                    continue
                if len(buf) - pos > MAX_RECORD_BYTES:
                    return None, 0, f"an item of at most {MAX_RECORD_BYTES} bytes"
                return None, 0, f"valid JSON ({exc.msg})"
            except ValueError as exc:  # e.g. an integer past Python's digit limit
                return None, 0, f"valid JSON ({str(exc).split(';')[0]})"
            if end < len(buf) or not more():  # a number may go on in the next chunk
                return item, end, None

    try:
        skip_ws()
        if buf[pos:pos + 1] != "[":
            raise fail("expected '['")
        pos += 1
        skip_ws()
        if buf[pos:pos + 1] == "]":
            return
        while True:
            start = here()
            item, end, problem = item_at()
            if problem is None:
                pos = end
                yield start, item
            else:
                shown = buf[pos:pos + 60] + "..."
                skip_item(start)
                yield start, unreadable(shown, problem)
            skip_ws()
            sep = buf[pos:pos + 1]
            if sep == "]":
                return
            if sep != ",":
                raise fail("expected ',' or ']' after an item")
            pos += 1
            skip_ws()
    finally:
        opened.close()


def _encoding(label: str, head: bytes) -> str:
    """The encoding of CSV text: a byte-order mark, else UTF-8, else GB18030 (Chinese HR
    exports; GBK is its subset), judged on the first SNIFF_BYTES."""
    for bom, name in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                      (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if head.startswith(bom):
            return name
    if b"\x00" in head:
        raise AuditSourceError(label, "cannot tell the text encoding: the file holds NUL "
                               "bytes (UTF-16 without a byte-order mark, or not text); "
                               f"tried {_TRIED}")
    whole = len(head) < SNIFF_BYTES

    def fits(codec: str) -> bool:
        try:
            codecs.getincrementaldecoder(codec)().decode(head, final=whole)
        except UnicodeDecodeError:
            return False
        return True

    if fits("utf-8"):
        return "utf-8"
    if fits("gb18030"):
        return "gb18030"
    # Mostly UTF-8 with a few bad bytes: their rows are quarantined (surrogateescape).
    bad = len(re.findall("[\udc80-\udcff]", head.decode("utf-8", "surrogateescape")))
    if bad <= 8:
        return "utf-8"
    raise AuditSourceError(label, f"cannot tell the text encoding ({bad} bytes in the first "
                           f"{len(head)} are not UTF-8, and the text is not GB18030 either); "
                           f"tried {_TRIED}: re-save it as UTF-8")


def _dialect(label: str, sample: str) -> str:
    """The delimiter: the one that splits the header into columns that include ``id`` and
    ``type``; else what csv.Sniffer finds on the header and first lines."""
    lines = sample.splitlines()[:20]
    if not lines:
        return ","
    for delimiter in _DELIMITERS:
        header = next(csv.reader([lines[0]], delimiter=delimiter), [])
        names = {h.strip() for h in header}
        if {"id", "type"} <= names:
            return delimiter
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters="".join(_DELIMITERS)).delimiter
    except csv.Error:
        raise AuditSourceError(label, "cannot tell the CSV delimiter: the header has no "
                               "'id' and 'type' columns when split on ',', ';', tab or "
                               f"'|' (header: {lines[0][:80]!r})") from None


def _bounded_lines(text: io.TextIOBase, oversize: set[int]) -> Iterator[str]:
    """Physical lines of at most MAX_RECORD_BYTES characters; a longer one is cut short
    (its number noted in ``oversize``) and the rest of it skipped without being held."""
    n = 0
    while True:
        piece = text.readline(MAX_RECORD_BYTES + 1)
        if not piece:
            return
        n += 1
        if len(piece) > MAX_RECORD_BYTES and not piece.endswith("\n"):
            oversize.add(n)
            while (rest := text.readline(_CHUNK)) and not rest.endswith("\n"):
                pass
            yield "\n"  # the row is quarantined by its number; its text is not kept
            continue
        yield piece


#: A CSV row (a quoted cell may hold line breaks) may span at most this many physical
#: lines; a longer one is taken for a stray ``"`` (see :class:`_Lines`).
MAX_ROW_LINES = 1000


class _RowTooLong(Exception):
    """A CSV row went past MAX_ROW_LINES lines or MAX_RECORD_BYTES characters."""


class _Lines:
    """The physical lines fed to csv.reader, numbered, with the ones the current row has
    taken kept so that a row spanning several lines that fails (a stray ``"`` opening a
    quoted cell that never closes properly) can give back all but its first line: only
    that line is quarantined and parsing goes on at the next one, so a stray quote never
    swallows the good rows after it."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.count = 0  # physical lines read from the file
        self.pending: list[tuple[int, str]] = []  # given back, in reverse order
        self.taken: list[tuple[int, str]] = []
        self.chars = 0
        self.ended_inside = False  # the file ended while the row still wanted lines

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pending:
            line = self.pending.pop()
        else:
            try:
                text = next(self.lines)
            except StopIteration:
                self.ended_inside = bool(self.taken)
                raise
            self.count += 1
            line = (self.count, text)
        self.taken.append(line)
        self.chars += len(line[1])
        if len(self.taken) > 1 and (len(self.taken) > MAX_ROW_LINES
                                    or self.chars > MAX_RECORD_BYTES):
            raise _RowTooLong
        return line[1]

    def start_row(self) -> None:
        self.taken, self.chars, self.ended_inside = [], 0, False

    def give_back(self, lines: list[tuple[int, str]]) -> None:
        self.pending.extend(reversed(lines))


def _csv_reader(label: str, source: Path | bytes, head: bytes,
                named: str | None = None) -> Reader:
    notes: list[str] = []
    if named is not None:
        encoding = named
    else:
        encoding = _encoding(label, head)
        if encoding == "gb18030":
            # Almost any bytes decode as GB18030, so this is a guess: said, never silent.
            notes.append(f"{label}: not UTF-8; read as GB18030 (Chinese). If it is another "
                         "encoding, name it: encoding='cp1252' (CLI: --encoding cp1252)")
    sample = head.decode(encoding, errors="replace")
    delimiter = _dialect(label, sample.lstrip("\ufeff"))
    opened = _open(source, label)

    def records() -> Iterator[tuple[int, Any]]:
        # surrogateescape keeps undecodable bytes visible, so their row is quarantined
        # rather than the whole file failing or the bytes being silently replaced.
        text = io.TextIOWrapper(opened.stream, encoding=encoding, errors="surrogateescape",
                                newline="")
        oversize: set[int] = set()
        feed = _Lines(_bounded_lines(text, oversize))
        reader = csv.reader(feed, delimiter=delimiter)
        try:
            header = _csv_header(reader, label)
            if header is None:
                return
            while True:
                feed.start_row()
                problem: str | None = None  # what a row on one line should have been
                detail: str | None = None  # what went wrong with a row on several lines
                try:
                    cells = next(reader)
                except StopIteration:
                    if not feed.taken:
                        return
                    cells, detail = [], "the file ends inside it"
                except csv.Error as exc:
                    cells, problem = [], _csv_problem(exc)
                    detail = f"the row would not parse: {exc}"
                except _RowTooLong:
                    cells, detail = [], (f"it runs past {MAX_ROW_LINES} lines or "
                                         f"{MAX_RECORD_BYTES} characters")
                taken = feed.taken
                here = taken[0][0]
                if feed.ended_inside:
                    detail = "the file ends inside it"
                    problem = problem or _UNTERMINATED
                if len(taken) > 1:
                    detail = detail or _swallowed(taken, cells, header, oversize, delimiter)
                    if detail is not None:
                        # Most likely a stray quote: set aside only this line and read
                        # the lines it swallowed again, as rows of their own.
                        feed.give_back(taken[1:])
                        yield here, unreadable(_shown(taken[0][1]), (
                            "every quoted cell closed (this line opens one that is not: an "
                            f"unterminated quoted cell, a stray '\"'?; {detail}); the lines "
                            "after it are read as rows of their own"))
                        continue
                elif problem is None and here in oversize:
                    problem = f"a row of at most {MAX_RECORD_BYTES} characters"
                if problem is not None:
                    yield here, unreadable(f"<row of line {here}>", problem)
                    continue
                if not cells:
                    continue
                row = dict(zip(header, cells, strict=False))
                if any(_has_surrogate(v) for v in cells):
                    yield here, {"__invalid_utf8__": True, "id": row.get("id")}
                    continue
                cleaned = clean_row(row)
                if len(cells) > len(header):
                    cleaned["__extra_cells__"] = cells[len(header):]
                yield here, cleaned
        finally:
            opened.close()

    return Reader(label, "line", records(), total=opened.size, progress_unit="B",
                  advance=opened.advance, notes=notes)


def _csv_header(reader: Iterator[list[str]], label: str) -> list[str] | None:
    """The header row, its names stripped (and of a BOM); None for an empty file. An
    AuditSourceError when it does not parse or names a column twice."""
    try:
        header = next(reader)
    except StopIteration:
        return None
    except (csv.Error, _RowTooLong) as exc:
        why = (_csv_problem(exc) if isinstance(exc, csv.Error)
               else "a header on one line")
        raise AuditSourceError(label, f"the CSV header does not parse ({why})",
                               line=1) from None
    header = [h.lstrip("\ufeff").strip() if isinstance(h, str) else h for h in header]
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if twice:
        # Which of two "id" columns is the event's? Guessing would pick one silently.
        raise AuditSourceError(label, "the CSV header names a column more than once "
                               f"({', '.join(map(repr, twice))}): rename or remove "
                               "the copy", line=1)
    return header


def _swallowed(taken: list[tuple[int, str]], cells: list[str], header: list[str],
               oversize: set[int], delimiter: str) -> str | None:
    """Why a row read over several lines (``taken``) is most likely not one row but lines a
    stray quote swallowed; None when it stands as one row."""
    if len(cells) != len(header):
        return f"the row would have {len(cells)} cells, the header has {len(header)}"
    if any(n in oversize for n, _ in taken):
        return f"a line in it is over {MAX_RECORD_BYTES} characters"
    if (n := _row_inside(taken[1:], header, delimiter)) is not None:
        # Two stray quotes close each other: the row parses and has the header's cells,
        # but a line inside it is a whole event row.
        return f"line {n} inside it is an event row of its own"
    return None


def _row_inside(lines: list[tuple[int, str]], header: list[str],
                delimiter: str) -> int | None:
    """The number of a line that, read on its own, is a complete event row (as many cells
    as the header, a known event type in ``type``): inside a quoted cell, it was swallowed
    by a stray quote, not written there."""
    from ..models.events import EVENT_TYPES

    try:
        at = header.index("type")
    except ValueError:
        return None
    for n, line in lines:
        try:
            cells = next(csv.reader([line.rstrip("\r\n")], delimiter=delimiter), [])
        except csv.Error:
            continue
        if len(cells) == len(header) and cells[at].strip() in EVENT_TYPES:
            return n
    return None


_UNTERMINATED = ("every quoted cell closed before the end of the file (an unterminated "
                 "quoted cell, a stray '\"'?)")


def _shown(line: str) -> str:
    """The start of a physical line, for a quarantine entry."""
    text = line.rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text if len(text) <= 60 else text[:60] + "..."


def _csv_problem(exc: csv.Error) -> str:
    text = str(exc)
    if "field larger than field limit" in text:
        return f"CSV cells of at most {csv.field_size_limit()} characters"
    return f"a well-formed CSV row ({text})"


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
