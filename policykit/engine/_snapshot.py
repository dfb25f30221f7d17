"""The snapshot codec: a session's plain-data state as bytes that are safe to restore from
anywhere.

Why not pickle: a checkpoint store, a message queue or a file is input from outside, and
``pickle.loads`` of crafted bytes runs arbitrary code. Here the bytes are JSON, so decoding
can only ever build the few types below; anything else is refused with a
:class:`~policykit.errors.SnapshotError`.

Layout of a snapshot::

    b"PKSNAP" | format version (2 bytes, big-endian) | blake2b-16 digest of the body | body

where the body is zlib-compressed UTF-8 JSON. The digest detects truncation and corruption
(it is not a signature: whoever can write your checkpoints can change them, but never make
policykit execute anything). Everything that costs memory is bounded before it is built, so
a crafted body is refused with a :class:`~policykit.errors.SnapshotError` instead of
exhausting memory: the body is inflated chunk by chunk and refused once it passes
:data:`MAX_SNAPSHOT_BYTES` or :data:`MAX_RATIO` times its compressed size (a "zip bomb");
the JSON values in it are counted before it is parsed (at most :data:`MAX_NODES` plus
:data:`NODES_PER_BYTE` per compressed byte: a "list bomb"); nesting is limited to
:data:`MAX_DEPTH`. A real session's snapshot stays far inside these (about 12 times
compression and 2 values per compressed byte).

Values are tagged JSON: ``null``/booleans/integers/strings/finite floats as themselves, lists
as arrays, dicts with string keys not starting with ``$`` as objects, and otherwise a
one-key object naming the type::

    {"$t": [...]}                 tuple            {"$s": [...]}     set (sorted: stable bytes)
    {"$fs": [...]}                frozenset        {"$m": [[k, v]]}  dict with other keys
    {"$dec": "12.50"}             Decimal          {"$f": "nan"}     non-finite float
    {"$dt": "...", "tz": "..."}   datetime (zone kept when it is a named zone)
    {"$date": "2026-03-02"}       date             {"$time": "08:30:00"}  time
    {"$td": [d, s, us]}           timedelta        {"$ref": n}       the n-th list/dict/set
    {"$ev": {...}}                an event (re-validated through the event models)
    {"$decision": {...}}          a decision (re-validated)

``$ref`` keeps shared and cyclic references: lists, dicts and sets are numbered in the order
the encoder first meets them, and the decoder numbers them in the same order.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import struct
import zlib
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Final
from zoneinfo import ZoneInfo, available_timezones

from pydantic import ValidationError

from ..errors import EventError, SnapshotError
from ..models.decisions import Decision
from ..models.events import EventBase
from ..models.parsing import MAX_YEAR as _MAX_YEAR
from ..models.parsing import MIN_YEAR as _MIN_YEAR
from ..models.parsing import parse_event

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "MAX_DEPTH",
    "MAX_DURATION",
    "MAX_NODES",
    "MAX_RATIO",
    "MAX_SNAPSHOT_BYTES",
    "NODES_PER_BYTE",
    "decode",
    "encode",
    "pack",
    "unpack",
]

MAGIC: Final = b"PKSNAP"
FORMAT_VERSION: Final = 1
#: The largest decompressed body a snapshot may have (refused beyond: a "zip bomb").
MAX_SNAPSHOT_BYTES: Final = 1 << 30
#: A body may inflate to at most this many times its compressed size, plus
#: :data:`RATIO_ALLOWANCE` bytes: memory stays proportional to the bytes given.
MAX_RATIO: Final = 100
RATIO_ALLOWANCE: Final = 1 << 20
#: The most JSON values (object keys included) a body may hold: this many, plus
#: :data:`NODES_PER_BYTE` per compressed byte. Counted before parsing, so a small body that
#: expands into millions of values is refused before any of them is built.
MAX_NODES: Final = 1 << 20
NODES_PER_BYTE: Final = 16
#: The longest lateness window or dedupe window a restored session may have (100 years):
#: beyond it the clock arithmetic overflows.
MAX_DURATION: Final = timedelta(days=36525)
_CHUNK = 1 << 20
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
#: The deepest nesting of tagged values decoded (state is a few levels deep; JSON text from
#: outside could be thousands).
MAX_DEPTH: Final = 200
_DIGEST = 16
_HEADER = struct.Struct(">6sH")


# --------------------------------------------------------------------------------------------
# Encoding


class _Encoder:
    __slots__ = ("memo",)

    def __init__(self) -> None:
        self.memo: dict[int, int] = {}  # id of a list/dict/set -> its number

    def _ref(self, value: object) -> dict[str, int] | None:
        key = id(value)
        found = self.memo.get(key)
        if found is not None:
            return {"$ref": found}
        self.memo[key] = len(self.memo)
        return None

    def enc(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is str or t is bool or t is int:
            return v
        if t is list:
            return self._ref(v) or [self.enc(x) for x in v]
        if t is dict:
            ref = self._ref(v)
            if ref is not None:
                return ref
            if all(type(k) is str and not k.startswith("$") for k in v):
                return {k: self.enc(x) for k, x in v.items()}
            return {"$m": [[self.enc(k), self.enc(x)] for k, x in v.items()]}
        if t is tuple:
            return {"$t": [self.enc(x) for x in v]}
        if t is set:
            return self._ref(v) or {"$s": _sorted([self.enc(x) for x in v])}
        if t is frozenset:
            return {"$fs": _sorted([self.enc(x) for x in v])}
        return _enc_value(v, t)


def _enc_value(v: Any, t: type) -> Any:
    """A value that holds no other values (an event or a decision is dumped whole)."""
    if t is Decimal:
        return {"$dec": str(v)}
    if isinstance(v, datetime):
        return _enc_datetime(v)
    if t is float:
        return v if math.isfinite(v) else {"$f": repr(v)}
    if t is date:
        return {"$date": v.isoformat()}
    if t is timedelta:
        return {"$td": [v.days, v.seconds, v.microseconds]}
    if t is time and v.tzinfo is None:
        return {"$time": v.isoformat()}
    if isinstance(v, EventBase):
        return {"$ev": v.model_dump(mode="json")}
    if isinstance(v, Decision):
        return {"$decision": v.model_dump(mode="json")}
    raise SnapshotError(
        f"cannot snapshot a value of type {t.__qualname__} ({_short(v)}): rule state must "
        "be plain data (dict, list, set, tuple, str, int, bool, Decimal, datetime, date, "
        "timedelta, events, decisions)"
    )


def _sorted(items: list[Any]) -> list[Any]:
    # Sets iterate in hash order, which varies between processes: sort for stable bytes.
    return sorted(items, key=lambda x: json.dumps(x, sort_keys=True, separators=(",", ":")))


def _enc_datetime(v: datetime) -> dict[str, Any]:
    out: dict[str, Any] = {"$dt": v.isoformat()}
    tz = v.tzinfo
    if isinstance(tz, ZoneInfo) and tz.key:
        out["tz"] = tz.key  # a named zone keeps its DST rules through the round trip
    if type(v) is not datetime:
        out["p"] = 1  # a pendulum DateTime: rebuilt as one, so its methods still work
    return out


def encode(value: Any) -> Any:
    """``value`` as tagged JSON data (see the module doc); SnapshotError for other types."""
    return _Encoder().enc(value)


# --------------------------------------------------------------------------------------------
# Decoding


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


class _Decoder:
    __slots__ = ("ranged", "refs")

    def __init__(self, ranged: bool = False) -> None:
        self.refs: list[Any] = []
        self.ranged = ranged  # refuse instants and durations no session can hold

    def dec(self, v: Any, depth: int = 0) -> Any:
        if depth > MAX_DEPTH:
            raise SnapshotError(f"snapshot nests deeper than {MAX_DEPTH} levels")
        t = type(v)
        if v is None or t is str or t is bool or t is int or t is float:
            return v
        if t is list:
            out_list: list[Any] = []
            self.refs.append(out_list)
            out_list.extend(self.dec(x, depth + 1) for x in v)
            return out_list
        if t is not dict:
            raise SnapshotError(f"unexpected JSON value {_short(v)}")
        if not any(k.startswith("$") for k in v):
            out: dict[str, Any] = {}
            self.refs.append(out)
            for k, x in v.items():
                out[k] = self.dec(x, depth + 1)
            return out
        return self._tagged(v, depth)

    def _tagged(self, v: dict[str, Any], depth: int) -> Any:
        tag = next((k for k in v if k.startswith("$")), "")
        extra = set(v) - {tag, "tz", "p"} if tag == "$dt" else set(v) - {tag}
        if extra:
            raise SnapshotError(f"tagged value {tag!r} has unexpected keys {sorted(extra)}")
        arg = v[tag]
        handler = _TAGS.get(tag)
        if handler is None:
            raise SnapshotError(f"unknown tag {tag!r} in snapshot")
        try:
            return handler(self, arg, v, depth + 1)
        except SnapshotError:
            raise
        except (TypeError, ValueError, KeyError, IndexError, OverflowError, ArithmeticError,
                InvalidOperation, ValidationError, EventError) as exc:
            raise SnapshotError(f"bad {tag!r} value {_short(arg)}: {exc}") from None

    # -- tag handlers --------------------------------------------------------------------

    def _items(self, arg: Any, depth: int) -> list[Any]:
        if type(arg) is not list:
            raise SnapshotError(f"expected a JSON array, got {_short(arg)}")
        return [self.dec(x, depth) for x in arg]

    def t_tuple(self, arg: Any, _v: dict[str, Any], depth: int) -> Any:
        return tuple(self._items(arg, depth))

    def t_set(self, arg: Any, _v: dict[str, Any], depth: int) -> Any:
        out: set[Any] = set()
        self.refs.append(out)
        out.update(self._items(arg, depth))
        return out

    def t_frozenset(self, arg: Any, _v: dict[str, Any], depth: int) -> Any:
        return frozenset(self._items(arg, depth))

    def t_map(self, arg: Any, _v: dict[str, Any], depth: int) -> Any:
        if type(arg) is not list:
            raise SnapshotError(f"expected a JSON array of pairs, got {_short(arg)}")
        out: dict[Any, Any] = {}
        self.refs.append(out)
        for pair in arg:
            if type(pair) is not list or len(pair) != 2:
                raise SnapshotError(f"expected a [key, value] pair, got {_short(pair)}")
            out[self.dec(pair[0], depth)] = self.dec(pair[1], depth)
        return out

    def t_ref(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not int or not 0 <= arg < len(self.refs):
            raise SnapshotError(f"dangling reference {_short(arg)}")
        return self.refs[arg]

    def t_decimal(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not str or len(arg) > 100:
            raise SnapshotError(f"bad decimal {_short(arg)}")
        return Decimal(arg)

    def t_float(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if arg not in ("nan", "inf", "-inf"):
            raise SnapshotError(f"bad float {_short(arg)}")
        return float(arg)

    def t_datetime(self, arg: Any, v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not str or len(arg) > 64:
            raise SnapshotError(f"bad datetime {_short(arg)}")
        out = datetime.fromisoformat(arg)
        zone = v.get("tz")
        if zone is not None:
            if type(zone) is not str or zone not in _zones():
                raise SnapshotError(f"unknown time zone {_short(zone)}")
            if out.tzinfo is None:
                raise SnapshotError(f"datetime {arg!r} has a zone but no offset")
            out = _in_zone(out, ZoneInfo(zone))
        if self.ranged and not _MIN_YEAR <= out.year <= _MAX_YEAR:
            # Events and horizons are refused outside these years (models/parsing.py,
            # engine/_batch.py), so no state holds such an instant (no rule keeps a
            # datetime.min or max marker either); a forged one would overflow clock
            # arithmetic later, far from here.
            raise SnapshotError(f"datetime {arg!r} is outside the years {_MIN_YEAR}-"
                                f"{_MAX_YEAR}")
        if v.get("p") == 1 and out.tzinfo is not None:
            import pendulum

            out = pendulum.instance(out)
        return out

    def t_date(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not str or len(arg) > 32:
            raise SnapshotError(f"bad date {_short(arg)}")
        return date.fromisoformat(arg)

    def t_time(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not str or len(arg) > 32:
            raise SnapshotError(f"bad time {_short(arg)}")
        return time.fromisoformat(arg)

    def t_timedelta(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not list or len(arg) != 3 or any(type(x) is not int for x in arg):
            raise SnapshotError(f"bad timedelta {_short(arg)}")
        out = timedelta(days=arg[0], seconds=arg[1], microseconds=arg[2])
        if self.ranged and abs(out) > MAX_DURATION:
            raise SnapshotError(f"timedelta {out} is longer than {MAX_DURATION.days} days")
        return out

    def t_event(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not dict:
            raise SnapshotError(f"bad event {_short(arg)}")
        return parse_event(arg, source="<snapshot>")

    def t_decision(self, arg: Any, _v: dict[str, Any], _depth: int) -> Any:
        if type(arg) is not dict:
            raise SnapshotError(f"bad decision {_short(arg)}")
        return Decision.model_validate(arg)


def _in_zone(aware: datetime, zone: ZoneInfo) -> datetime:
    """``aware`` (a fixed offset) as the same wall time and instant in ``zone``. Keeping the
    wall time and choosing the fold avoids converting through UTC, which overflows at the
    ends of the datetime range."""
    offset = aware.utcoffset()
    for fold in (0, 1):
        candidate = aware.replace(tzinfo=zone, fold=fold)
        if candidate.utcoffset() == offset:
            return candidate
    return aware.astimezone(zone)  # not a wall time of the zone: keep the instant


_Handler = Callable[[_Decoder, Any, dict[str, Any], int], Any]
_TAGS: dict[str, _Handler] = {
    "$t": _Decoder.t_tuple,
    "$s": _Decoder.t_set,
    "$fs": _Decoder.t_frozenset,
    "$m": _Decoder.t_map,
    "$ref": _Decoder.t_ref,
    "$dec": _Decoder.t_decimal,
    "$f": _Decoder.t_float,
    "$dt": _Decoder.t_datetime,
    "$date": _Decoder.t_date,
    "$time": _Decoder.t_time,
    "$td": _Decoder.t_timedelta,
    "$ev": _Decoder.t_event,
    "$decision": _Decoder.t_decision,
}


def decode(data: Any, *, ranged: bool = False) -> Any:
    """The value :func:`encode` produced; SnapshotError for anything malformed. ``ranged``:
    also for a date-time outside the years events may have (datetime.min and max
    included) or a timedelta over :data:`MAX_DURATION`, which a session's state
    never holds and whose arithmetic would overflow after the restore."""
    return _Decoder(ranged).dec(data)


# --------------------------------------------------------------------------------------------
# Bytes


def pack(payload: Any) -> bytes:
    """Encode, serialise and compress ``payload`` into snapshot bytes."""
    text = json.dumps(encode(payload), ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False)
    body = zlib.compress(text.encode("utf-8"), 6)
    digest = hashlib.blake2b(body, digest_size=_DIGEST).digest()
    return _HEADER.pack(MAGIC, FORMAT_VERSION) + digest + body


def unpack(data: bytes | bytearray | memoryview, *, limit: int = MAX_SNAPSHOT_BYTES,
           max_nodes: int | None = None, ranged: bool = False) -> Any:
    """The payload of snapshot bytes. Raises SnapshotError, naming what is wrong, for bytes
    that are not a snapshot, another format version, a corrupt or oversized body (see the
    module doc for the limits; ``max_nodes`` replaces the size-scaled value limit), or
    values that do not decode (``ranged``: see :func:`decode`). Never executes anything
    from the bytes."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise SnapshotError(f"a snapshot is bytes, got {type(data).__name__}")
    data = bytes(data)
    head = _HEADER.size
    if len(data) < head + _DIGEST or data[:len(MAGIC)] != MAGIC:
        raise SnapshotError("not a policykit snapshot (bad magic bytes or too short)")
    _magic, version = _HEADER.unpack_from(data)
    if version != FORMAT_VERSION:
        raise SnapshotError(
            f"snapshot format version {version} is not supported by this policykit (it reads "
            f"version {FORMAT_VERSION}); restore it with the version that wrote it"
        )
    digest, body = data[head:head + _DIGEST], data[head + _DIGEST:]
    if hashlib.blake2b(body, digest_size=_DIGEST).digest() != digest:
        raise SnapshotError("snapshot is corrupt or truncated (digest mismatch)")
    raw = _inflate(body, limit)
    _count_nodes(raw, max_nodes if max_nodes is not None
                 else MAX_NODES + NODES_PER_BYTE * len(body))
    try:
        parsed = json.loads(raw.decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise SnapshotError(f"snapshot body is not valid JSON: {_short(str(exc))}") from None
    del raw
    try:
        return decode(parsed, ranged=ranged)
    except RecursionError:
        raise SnapshotError("snapshot nests too deeply") from None


def _inflate(body: bytes, limit: int) -> bytes:
    """The decompressed body, inflated a chunk at a time so that a body growing past
    ``limit`` or :data:`MAX_RATIO` times its size is refused before it is all in memory."""
    bound = min(limit, MAX_RATIO * len(body) + RATIO_ALLOWANCE)
    inflater = zlib.decompressobj()
    parts: list[bytes] = []
    size = 0
    try:
        chunk = inflater.decompress(body, _CHUNK)
        while True:
            size += len(chunk)
            if size > bound:
                what = (f"{limit} bytes" if bound == limit else
                        f"{MAX_RATIO} times its compressed size of {len(body)} bytes")
                raise SnapshotError(f"snapshot body is larger than {what} once decompressed "
                                    "(refused as a decompression bomb)")
            parts.append(chunk)
            if inflater.eof or not inflater.unconsumed_tail:
                break
            chunk = inflater.decompress(inflater.unconsumed_tail, _CHUNK)
        if not inflater.eof:
            raise SnapshotError("snapshot body is truncated")
    except zlib.error as exc:
        raise SnapshotError(f"snapshot body does not decompress: {exc}") from None
    return b"".join(parts)


def _count_nodes(raw: bytes, most: int) -> None:
    """Refuse a body with more than ``most`` JSON values, before parsing it. Every value
    but the first follows a ``[``, ``,`` or ``:``, and every object opens with ``{``; counting
    them is an upper bound, made exact (strings removed) only when it is over."""
    def count(text: bytes) -> int:
        return 1 + sum(text.count(c) for c in (b"[", b",", b":", b"{"))

    if count(raw) <= most:
        return
    found = count(_STRING.sub(b'""', raw))
    if found > most:
        raise SnapshotError(f"snapshot body holds {found} JSON values, more than the {most} "
                            "a snapshot of its size may hold (refused as a list bomb)")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed in a snapshot")


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
