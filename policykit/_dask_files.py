"""The driver-less audit behind :func:`policykit.distributed.distributed_audit` (private;
the public module is :mod:`policykit.distributed`): workers read, validate, resolve,
route, evaluate and write; the driver builds the task graph and adds up a summary. The
argument for its exactness is in :mod:`policykit.distributed`'s docstring ("Without the
log on the driver")."""

from __future__ import annotations

import functools
import importlib
import itertools
import json
import logging
import os
import pickle
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from .errors import AuditSourceError, EventError, ParameterError
from .models.events import EventBase
from .models.parsing import CORRECTS

if TYPE_CHECKING:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    from .models.decisions import Decision
    from .policy import Policy, PolicySet
    from .rules import RuleSpec

__all__ = ["Actions", "AuditSummary", "actions", "file_source", "rule_group", "run_files",
           "shards_of"]

#: The files a directory source is read from (each optionally ``.gz``).
_SUFFIXES = (".jsonl", ".ndjson", ".jsonlines", ".json", ".csv", ".parquet", ".pq")
#: Records of an in-memory source per task.
_CHUNK = 50_000
#: Events travel and wait between stages packed one by one (``ev``, :func:`_pack`): a
#: twentieth of the memory of the live models, one value to send whatever the copies.
_dumps = pickle.dumps
_loads = pickle.loads
#: A record's place in the input: (source number << _LINE_BITS) + line, so that ties of
#: (time, id) fall in input order, as in the single-process pipeline.
_LINE_BITS = 40

# The columns the events travel in: ``ev`` (packed events), ``at`` (microseconds since the
# epoch, UTC: the instant an aware datetime compares by) and the routed ``id`` (UTF-8, lone
# surrogates kept) are Arrow columns, one buffer each, not a Python object per row: ten
# million of those fragment a worker's heap (gigabytes it keeps after its tasks), and are
# pickled one by one whenever a partition moves or spills.
_BINARY = "binary[pyarrow]"
_MICROS = "int64[pyarrow]"
_EVENTS = {"pos": "int64", "ev": _BINARY, "at": _MICROS, "id": "object"}
_KEYED = {**_EVENTS, "key": "object", "linked": "bool"}
_RESOLVED = {"kind": "object", "pos": "int64", "ev": _BINARY, "at": _MICROS,
             "row": "object"}
_ROUTED = {"shard": "int64", "ev": _BINARY, "at": _MICROS, "id": _BINARY}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)


@functools.cache
def _fields(cls: type[EventBase]) -> tuple[str, ...]:
    return tuple(cls.model_fields)


@functools.cache
def _bits(cls: type[EventBase]) -> dict[str, int]:
    """Each declared field's bit in a packed event's mask of the fields set."""
    return {name: 1 << i for i, name in enumerate(_fields(cls))}


@functools.cache
def _given(cls: type[EventBase], mask: int) -> frozenset[str]:
    """The fields a packed event's mask names (a few masks per type in a log)."""
    return frozenset(name for i, name in enumerate(_fields(cls)) if mask >> i & 1)


def _pack(e: EventBase) -> bytes:
    """``e`` pickled as its exact state (what pydantic's own pickling keeps: its fields'
    values, which were set, extras, private attributes), the values in declaration order
    without their names: about half the bytes of pickling the model."""
    cls = type(e)
    names = _fields(cls)
    values = e.__dict__
    if tuple(values) != names:  # not a plain model's state: pickled whole
        return _dumps(e, 5)
    bits = _bits(cls)
    try:
        mask = sum(bits[name] for name in e.__pydantic_fields_set__)
    except KeyError:  # an extra field set (extra="allow"): pickled whole, as above
        return _dumps(e, 5)
    return _dumps((cls, tuple(values.values()), mask, e.__pydantic_extra__,
                   e.__pydantic_private__), 5)


_set_attr = object.__setattr__


def _unpack(blob: bytes) -> EventBase:
    """The event :func:`_pack` packed, as pydantic's ``__setstate__`` rebuilds one."""
    state = _loads(blob)
    if not isinstance(state, tuple):
        return state  # type: ignore[no-any-return]
    cls, values, mask, extra, private = state
    names = _fields(cls)
    e = cls.__new__(cls)
    _set_attr(e, "__dict__", dict(zip(names, values, strict=True)))
    _set_attr(e, "__pydantic_fields_set__", set(_given(cls, mask)))
    _set_attr(e, "__pydantic_extra__", extra)
    _set_attr(e, "__pydantic_private__", private)
    return e  # type: ignore[no-any-return]


def _micros(at: datetime) -> int:
    """An aware time as microseconds since the epoch: ordered as the times are, when no
    two of them share a named zone (see :func:`_zoned`)."""
    return (at - _EPOCH) // _MICRO


@functools.cache
def _fixed_zones() -> tuple[type, ...]:
    from pydantic_core import TzInfo

    return (timezone, TzInfo)


def _zoned(events: Sequence[EventBase]) -> bool:
    """Whether an event's time is in a named zone (an in-memory source's ZoneInfo). Two
    times sharing a tzinfo compare by their wall clocks, not their instants (Python's
    rule), so in a DST change the microseconds order them otherwise than audit() does:
    such a run orders and compares the times themselves, as the models (:func:`_sorted`)."""
    fixed = _fixed_zones()
    return any(type(e.at.tzinfo) not in fixed for e in events)


_QUARANTINE = ("pos", "source", "line", "unit", "event_id", "problems", "error", "record")
_DECISIONS = ("id", "at", "policy", "rule", "kind", "subject_kind", "subject_id", "amount",
              "currency", "status", "decision")
_TALLY = {"policy": "object", "kind": "object", "currency": "object", "n": "int64",
          "amount": "object", "standing": "int64", "foreign": "int64"}


@dataclass(frozen=True)
class AuditSummary:
    """What a distributed audit wrote, and its counts (as :class:`~policykit.AuditCounts`
    counts them). The decisions and the quarantine are Parquet datasets under ``output``:
    read them with ``pandas.read_parquet(summary.decisions_path)``; the ``decision`` column
    holds each decision's JSON (``Decision.model_validate_json``)."""

    output: str
    decisions_path: str
    quarantine_path: str
    sources: tuple[str, ...]
    read: int
    valid: int
    quarantined: int
    corrected: int
    duplicates: int
    after_until: int
    evaluated: int
    decisions: int
    by_outcome: dict[tuple[str, str], int] = field(default_factory=dict)
    """(policy id, decision kind) -> how many."""
    money: dict[tuple[str, str], Decimal] = field(default_factory=dict)
    """(policy id, currency) -> the money that stands: the total amount of its final
    decisions that no other decision supersedes (:attr:`AuditReport.decisions
    <policykit.AuditReport.decisions>`, the money to pay or deduct; a running total's
    superseded revisions are in the output, not in this sum)."""
    notes: tuple[str, ...] = ()
    """What the readers guessed about the files (a CSV's encoding), to check: as
    :attr:`AuditReport.notes <policykit.AuditReport.notes>`."""


# ------------------------------------------------------------------------------ sources


def file_source(source: Any) -> bool:
    """A path, a glob or a directory (local or an fsspec URL): read by the workers."""
    return isinstance(source, str | os.PathLike)


def _accepted(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    if name.startswith((".", "_")):  # hidden files, _SUCCESS, _metadata
        return False
    if name.endswith(".gz"):
        name = name[:-3]
    return name.lower().endswith(_SUFFIXES)


def _marker(path: str) -> bool:
    """A writer's marker or metadata file beside the data (``_SUCCESS``, ``.crc``
    files, ``_common_metadata``): a name starting with ``_`` or ``.``."""
    return path.rstrip("/").rsplit("/", 1)[-1].startswith(("_", "."))


def _expand(source: str | os.PathLike[str]) -> list[tuple[str, bool]]:
    """(path or URL, local?) of each file ``source`` names, in a stable (sorted) order."""
    from fsspec.core import url_to_fs  # type: ignore[import-untyped,unused-ignore]

    text = os.fspath(source)
    try:
        fs, path = url_to_fs(text)
    except (ImportError, ValueError) as exc:
        raise AuditSourceError(text, f"cannot read the events: {exc}") from None
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    local = protocol in ("file", "local")
    if any(c in path for c in "*?["):
        matched: list[str] = []
        for p in fs.glob(path):
            if fs.isdir(p):  # a matched directory is read as a directory source is
                matched.extend(q for q in fs.find(p) if _accepted(q))
            elif _accepted(p) or not _marker(p):
                matched.append(p)
        found = sorted(set(matched))
        if not found:
            raise AuditSourceError(text, "cannot read the events: no file matches this "
                                   "pattern")
    elif fs.isdir(path):
        found = sorted(p for p in fs.find(path) if _accepted(p))
        if not found:
            raise AuditSourceError(text, "cannot read the events: the directory holds no "
                                   ".jsonl, .json, .csv or .parquet file (optionally .gz)")
    elif fs.isfile(path):
        return [(text if local else fs.unstrip_protocol(path), local)]
    else:
        raise AuditSourceError(text, "cannot read the events: no such file or directory")
    return [(p if local else fs.unstrip_protocol(p), local) for p in found]


# ------------------------------------------------------------------------------ stage 0: read


def _pos(index: int, line: int | None) -> int:
    return (index << _LINE_BITS) + (line or 0)


def _frame(rows: dict[str, list[Any]], dtypes: dict[str, str]) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    return pd.DataFrame({c: _column(rows[c], t) for c, t in dtypes.items()})


def _column(values: list[Any], dtype: str) -> pd.Series:
    """An Arrow column built by Arrow from the list (pandas' own conversion of a list of
    bytes passes through copies as large as the column), any other by pandas."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if dtype.endswith("[pyarrow]"):
        import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

        kind = pa.binary() if dtype == _BINARY else pa.int64()
        return pd.Series(pd.arrays.ArrowExtensionArray(pa.array(values, type=kind)))
    return pd.Series(values, dtype=dtype)


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return _frame({c: [] for c in dtypes}, dtypes)


def _q_row(q: Any, pos: int) -> dict[str, Any]:
    return {"pos": pos, "source": _text(q.source), "line": q.line, "unit": _text(q.unit),
            "event_id": _text(q.event_id), "error": _text(q.error),
            "record": _text(q.record),
            "problems": _text(json.dumps([list(p) for p in q.problems], ensure_ascii=False,
                                         default=str))}


def _text(value: str | None) -> str | None:
    """``value`` as Parquet's UTF-8 text can hold it: a lone surrogate (an in-memory
    record's id or field can carry one; validation refuses it, so only the quarantine
    sees it) written as its escape, ``\\ud800``."""
    if value is None:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _q_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    return pd.DataFrame(rows, columns=list(_QUARANTINE), dtype=object).astype(
        {"pos": "int64"})


def _parse(index: int, reader: Any, policies: PolicySet, tz: tzinfo | None
           ) -> dict[str, Any]:
    """Validate and place one part of the log (a file, or a chunk of an in-memory source),
    quarantining as audit() does."""
    from .audit.internal import quarantined, validate
    from .engine.internal import corrected_id, read_valid

    rows: list[dict[str, Any]] = []

    def keep(exc: EventError, line: int | None, raw: Any) -> None:
        rows.append(_q_row(quarantined(exc, reader, line, raw), _pos(index, line)))

    pos: list[int] = []
    evs: list[bytes] = []
    ats: list[int] = []
    ids: list[str] = []
    edges: list[tuple[str, str]] = []  # (id, the id it corrects)
    read = 0
    zoned = False
    records = iter(reader.records)
    # A slice of the part at a time: validating and placing judge one record at a time
    # (read_valid), so the slices give what the whole part gives, and the task holds one
    # slice's models beside the part's packed events, not a whole file's models.
    while chunk := list(itertools.islice(records, _PARSE)):
        prep = read_valid(chunk, policies, source=reader.label, quarantine=keep,
                          assume_tz=tz, parse=validate)
        del chunk
        read += prep.read
        for e in prep.events:
            if e.meta and CORRECTS in e.meta:
                try:
                    target = corrected_id(e)
                except EventError:
                    target = None
                # Malformed: linked to itself, so that the rules see it (and refuse it).
                edges.append((e.id, target or e.id))
        pos += [_pos(index, ln) for ln in prep.lines]
        evs += [_pack(e) for e in prep.events]
        ats += [_micros(e.at) for e in prep.events]
        ids += [e.id for e in prep.events]
        zoned = zoned or _zoned(prep.events)
        del prep
    events = _frame({"pos": pos, "ev": evs, "at": ats, "id": ids}, _EVENTS)
    return {"events": events, "quarantine": _q_frame(rows), "edges": edges,
            "zoned": zoned, "info": (reader.label, reader.unit, read, list(reader.notes))}


#: Records a reading task validates at once: a few MiB of models.
_PARSE = 8192


def _read_file(index: int, url: str, local: bool, policies: PolicySet, tz: tzinfo | None,
               fmt: str | None, encoding: str | None, _types: tuple[type, ...] = ()
               ) -> dict[str, Any]:
    """One file, read on a worker. A remote file is copied to a temporary local file first,
    so every format is read (gzip limits, CSV sniffing) exactly as audit() reads it.
    ``_types``: the driver's registered event types, unpickled here only to register them
    (a type declared in a policy file travels as its declaration)."""
    from .audit import read_records

    if local:
        return _parse(index, read_records(url, format=fmt, encoding=encoding), policies, tz)
    from fsspec.core import url_to_fs  # type: ignore[import-untyped,unused-ignore]

    fs, path = url_to_fs(url)
    with tempfile.TemporaryDirectory(prefix="policykit-") as tmp:
        copy = os.path.join(tmp, path.rsplit("/", 1)[-1])
        fs.get_file(path, copy)
        reader = read_records(copy, format=fmt, encoding=encoding)
        reader.label = url
        reader.notes = [n.replace(copy, url) for n in reader.notes]
        return _parse(index, reader, policies, tz)


def _read_chunk(label: str, unit: str, records: list[tuple[int, Any]], policies: PolicySet,
                tz: tzinfo | None, _types: tuple[type, ...] = ()) -> dict[str, Any]:
    from .audit.internal import Reader

    return _parse(0, Reader(label, unit, iter(records)), policies, tz)  # type: ignore[arg-type]


def _part(parts: dict[str, Any], name: str) -> Any:
    return parts[name]


# ------------------------------------------------------------------------------ stage 1: resolve


def _components(*edge_lists: list[tuple[str, str]]) -> dict[str, str]:
    """Each id joined by corrections to others -> one id standing for its whole group (the
    ids linked by ``meta.corrects``, chains and rings included)."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for edges in edge_lists:
        for a, b in edges:
            ra, rb = find(a), find(b)
            if ra != rb:
                parent[max(ra, rb)] = min(ra, rb)
    # The key a group is shuffled by can be an id only a correction names, which validation
    # never saw (a lone surrogate in meta.corrects): as text Arrow and hashing can hold.
    return {x: _text(find(x)) or "" for x in parent}


def _keyed(part: pd.DataFrame, groups: dict[str, str]) -> pd.DataFrame:
    out = part.copy()
    out["key"] = [groups.get(i, i) for i in part["id"]]
    out["linked"] = [i in groups for i in part["id"]]  # a correction involves it
    return out


def _resolve(part: pd.DataFrame, horizon: datetime | None,
             labels: Sequence[tuple[str, str]], exact: bool = False) -> pd.DataFrame:
    """Corrections and repeated ids of whole groups (every copy of an id, every event a
    correction links to it): the single-process rules (split_corrections), then the
    horizon, then the first copy of each id. ``exact``: times in named zones (:func:`_zoned`),
    compared with the horizon as times."""
    from .audit.internal import Reader, quarantined
    from .engine.internal import split_corrections

    part = part.sort_values("pos", kind="stable")
    kinds: list[str] = []
    pos: list[int] = []
    evs: list[bytes | None] = []
    ats: list[int | None] = []
    rows: list[Any] = []
    limit = None if horizon is None else _micros(horizon)
    # An event with an id of its own that no correction involves is kept as it is (its
    # group is itself), without being unpickled; the rules run on the others' groups.
    alone = ~(part["linked"] | part["id"].duplicated(keep=False))
    after = 0
    for p, b, at in zip(part["pos"][alone].tolist(), part["ev"][alone].tolist(),
                        part["at"][alone].tolist(), strict=True):
        if horizon is not None and (_unpack(b).at > horizon if exact else at > limit):
            after += 1
            continue
        _add(kinds, pos, evs, ats, rows, "e", p, b, at, None)
    part = part[~alone]
    packed: list[bytes] = part["ev"].tolist()
    events: list[EventBase] = [_unpack(b) for b in packed]
    where = {id(e): p for e, p in zip(events, part["pos"].tolist(), strict=True)}
    blob = {id(e): b for e, b in zip(events, packed, strict=True)}
    kept, refused = split_corrections(events)
    for e, exc in refused:
        p = where[id(e)]
        label, unit = labels[p >> _LINE_BITS]
        line = p & ((1 << _LINE_BITS) - 1)
        q = quarantined(exc, Reader(label, unit, iter(())), line, e)
        _add(kinds, pos, evs, ats, rows, "q", p, None, None, _q_row(q, p))
    corrected = len(events) - len(kept) - len(refused)
    if horizon is not None:
        later = sum(1 for e in kept if e.at > horizon)
        if later:
            after += later
            kept = [e for e in kept if e.at <= horizon]
    seen: set[str] = set()
    for e in sorted(kept, key=lambda e: (e.at, e.id)):  # stable: ties in input order
        if e.id in seen:
            continue
        seen.add(e.id)
        _add(kinds, pos, evs, ats, rows, "e", where[id(e)], blob[id(e)], _micros(e.at), None)
    _add(kinds, pos, evs, ats, rows, "s", 0, None, None,
         (corrected, len(kept) - len(seen), after))
    return _frame({"kind": kinds, "pos": pos, "ev": evs, "at": ats, "row": rows}, _RESOLVED)


def _add(kinds: list[str], pos: list[int], evs: list[bytes | None],
         ats: list[int | None], rows: list[Any], kind: str, p: int, ev: bytes | None,
         at: int | None, row: Any) -> None:
    kinds.append(kind)
    pos.append(p)
    evs.append(ev)
    ats.append(at)
    rows.append(row)


def _latest(part: pd.DataFrame, exact: bool = False) -> pd.DataFrame:
    """The partition's latest event time, as its event has it (of equal instants written
    in different offsets, the first in the partition, as ``max`` of the times picks).
    ``exact``: times in named zones, compared as times (:func:`_zoned`)."""
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    last = None
    if exact:
        last = max((_unpack(b).at for b in part["ev"].tolist()), default=None)
    elif ats := part["at"].tolist():
        last = _unpack(part["ev"].iloc[ats.index(max(ats))]).at
    return pd.DataFrame({"at": pd.Series([last] if last is not None else [], dtype=object)})


def _by_pos(part: pd.DataFrame) -> pd.DataFrame:
    return part.sort_values("pos", kind="stable")


def _quarantine_rows(part: pd.DataFrame) -> pd.DataFrame:
    return _q_frame(list(part["row"]))


# ------------------------------------------------------------------------------ stage 2: shards


@dataclass(frozen=True)
class _Group:
    """One rule group of :func:`policykit.distributed.plan`, with its first shard number."""

    policy: Policy
    routes: dict[str, str | None] | None
    directory: bool
    types: frozenset[str]
    base: int
    count: int


def _router(pset: PolicySet, partitions: int) -> list[_Group]:
    from .distributed import _groups, _subset

    out: list[_Group] = []
    base = 0
    for policy in pset:
        for group in _groups(policy):
            sub = _subset(policy, tuple(dict.fromkeys(s.id for s in group)))
            out.append(rule_group(sub, group, partitions, base))
            base += out[-1].count
    return out


def rule_group(policy: Policy, group: list[RuleSpec], partitions: int, base: int) -> _Group:
    """``group`` of ``policy`` as shards ``base`` onwards: one when it runs whole, else
    ``partitions``."""
    from .distributed import PROFILE, _group_routes

    routes, directory, _why = _group_routes(group)
    types: set[str] = set()
    for spec in group:
        types |= spec.event_types()
    if routes is None:
        types.add(PROFILE)
    return _Group(policy, routes, directory, frozenset(types), base,
                  1 if routes is None else partitions)


Actions = dict[str, list[tuple[str | None, int, int]]]


def actions(router: list[_Group]) -> Actions:
    """Per event type: (field, or None for every shard; first shard; shard count) per group
    reading it: where an event goes, as a table (the in-memory call's split uses it too)."""
    from .distributed import PROFILE

    out: dict[str, list[tuple[str | None, int, int]]] = {}
    for g in router:
        types = set(g.types) | ({PROFILE} if g.directory else set())
        if g.routes is not None:
            types |= set(g.routes)
        for t in sorted(types):
            if g.routes is None:
                if t in g.types:
                    out.setdefault(t, []).append((None, g.base, 1))
            elif t == PROFILE and PROFILE not in g.routes:
                if g.directory:
                    out.setdefault(t, []).append((None, g.base, g.count))
            elif t in g.routes:
                out.setdefault(t, []).append((g.routes[t], g.base, g.count))
    return out


def shards_of(ev: EventBase, table: Actions) -> list[int]:
    """The shards that read ``ev``: every shard of a group reading its type without a key,
    else the one its key's value hashes to (none where the event lacks the key)."""
    from .distributed import _bucket

    out: list[int] = []
    for name, base, count in table.get(ev.type, ()):
        if name is None:
            out += range(base, base + count)
        else:
            value = getattr(ev, name, None)
            if value is not None:
                out.append(base + _bucket(value, count))
    return out


def _route(part: pd.DataFrame, router: list[_Group]) -> pd.DataFrame:
    """Each event once per shard that reads it, with its (time, id): a shard's order."""
    table = actions(router)
    shards: list[int] = []
    evs: list[bytes] = []
    ats: list[int] = []
    ids: list[bytes] = []
    for blob, at in zip(part["ev"].tolist(), part["at"].tolist(), strict=True):
        ev = _unpack(blob)
        to = shards_of(ev, table)
        if to:
            key = ev.id.encode("utf-8", "surrogatepass")  # byte order = str order
            for k in to:
                shards.append(k)
                evs.append(blob)
                ats.append(at)
                ids.append(key)
    return _frame({"shard": shards, "ev": evs, "at": ats, "id": ids}, _ROUTED)


def _run_shards(part: pd.DataFrame, router: list[_Group], horizon: datetime | None,
                last: datetime | None, backend: str, exact: bool = False) -> pd.DataFrame:
    """Each shard of the partition through the batch pipeline's evaluation (its events
    come resolved, placed and within the horizon), its decisions as rows.

    A shard's events are put in (time, id) order as they travel, packed, and unpacked a
    chunk at a time as the session takes them: a shard run whole (first-responder's
    R3 + R6 + R7 gets 28% of a log) holds its rules' state, not its events as models
    (about 20 times their packed bytes).

    ``exact`` (times in named zones, :func:`_zoned`): a shard's events are unpacked whole
    and sorted by their (time, id) as models, in the order they arrived, as audit() sorts
    them (the microseconds would order a DST change's wall clocks otherwise)."""
    import numpy as np
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]
    import pyarrow.compute as pc  # type: ignore[import-untyped,unused-ignore]

    from .engine import Engine, run_ordered
    from .policy import PolicySet

    cols = pa.Table.from_pandas(part[["shard", "at", "id", "ev"]], preserve_index=False)
    # ids are unique after _resolve: (shard, time, id) is a total order. A shard's marker
    # (no event: null time, id and event) sorts last in its shard.
    order = pc.sort_indices(cols, sort_keys=[("shard", "ascending"), ("at", "ascending"),
                                             ("id", "ascending")])  # nulls: at the end
    shard = cols.column("shard").take(order).to_numpy()
    held = cols.column("at").take(order).is_valid().to_numpy(zero_copy_only=False)
    events = cols.column("ev")
    starts = [*np.flatnonzero(np.diff(shard, prepend=-1)).tolist(), len(shard)]
    groups = {g.base + i: g for g in router for i in range(g.count)}
    decisions: list[Decision] = []
    for start, end in itertools.pairwise(starts):
        k = int(shard[start])
        n = int(held[start:end].sum())  # the shard's events, its marker (last) left out
        if not n and horizon is None and last is None:
            continue
        engine = Engine(PolicySet([groups[k].policy]), backend=backend)
        rows = order[start:start + n]
        chunks = [_sorted(events, rows)] if exact else _unpacked(events, rows)
        decisions += run_ordered(engine, chunks, total=n, until=horizon, fire_before=last)
    decisions.sort(key=lambda d: (d.at, d.id))
    return _decision_frame(decisions)


#: Events unpacked at once by a shard: a few MiB of models.
_FEED = 4096


def _unpacked(events: Any, order: Any) -> Iterator[list[EventBase]]:
    """``events`` at the positions ``order`` lists, as models, a chunk at a time."""
    for start in range(0, len(order), _FEED):
        yield [_unpack(b) for b in events.take(order[start:start + _FEED]).to_pylist()]


def _sorted(events: Any, order: Any) -> list[EventBase]:
    """``events`` at the positions ``order`` lists, as models sorted by their (time, id),
    ties (as the times compare) in the partition's order."""
    import numpy as np

    rows = events.take(np.sort(order.to_numpy())).to_pylist()  # the partition's order
    models = [_unpack(b) for b in rows]
    models.sort(key=lambda e: (e.at, e.id))
    return models


def _decision_frame(decisions: list[Decision]) -> pd.DataFrame:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    return pd.DataFrame(
        [(d.id, d.at.isoformat(), d.policy, d.rule, d.kind, d.subject.kind, d.subject.id,
          None if d.amount is None else str(d.amount), d.currency, d.status,
          d.model_dump_json()) for d in decisions],
        columns=list(_DECISIONS), dtype=object)  # None stays None (not a text column's NaN)


def _tally(part: pd.DataFrame, gone: frozenset[str] | None = None) -> pd.DataFrame:
    """Per (policy, kind, currency): how many decisions, and the money of those that stand
    (final and superseded by no other decision: :attr:`AuditReport.decisions
    <policykit.AuditReport.decisions>`; summing every decision would count a running
    total's money once per revision). ``gone``: the ids every partition supersedes, when
    one names a decision it does not hold (``foreign``); else a session's decisions
    supersede only its own, which are all in its shard's partition."""
    superseded = set(gone or ())
    superseded.update(_superseded(part))
    foreign = 0 if gone is not None else len(superseded.difference(part["id"]))
    counts: dict[tuple[str, str, str | None], list[Any]] = {}
    for i, policy, kind, amount, currency, status in zip(
            part["id"], part["policy"], part["kind"], part["amount"], part["currency"],
            part["status"], strict=True):
        entry = counts.setdefault((policy, kind, currency), [0, Decimal(0), 0])
        entry[0] += 1
        if amount is not None and status == "final" and i not in superseded:
            entry[1] += Decimal(amount)
            entry[2] += 1
    keys = list(counts)
    return _frame({"policy": [k[0] for k in keys], "kind": [k[1] for k in keys],
                   "currency": [k[2] for k in keys], "n": [counts[k][0] for k in keys],
                   "amount": [str(counts[k][1]) for k in keys],
                   "standing": [counts[k][2] for k in keys],
                   "foreign": [foreign] * len(keys)}, _TALLY)


def _superseded(part: pd.DataFrame) -> list[str]:
    """The ids the partition's decisions supersede."""
    return [s for text in part["decision"] for s in json.loads(text).get("supersedes") or ()]


# ------------------------------------------------------------------------------ the run


def _schemas() -> tuple[Any, Any]:
    import pyarrow as pa  # type: ignore[import-untyped,unused-ignore]

    text = pa.string()
    decisions = pa.schema([(c, text) for c in _DECISIONS])
    quarantine = pa.schema([("pos", pa.int64()), ("source", text), ("line", pa.int64()),
                            ("unit", text), ("event_id", text), ("problems", text),
                            ("error", text), ("record", text)])
    return decisions, quarantine


def _dask() -> Any:
    return importlib.import_module("dask")  # untyped: one Any for every dask call


class _Runner:
    """persist/compute on the given client, else on dask's default scheduler."""

    def __init__(self, client: Any) -> None:
        self.client = client
        # Dask's task-based shuffle. The peer-to-peer one (the columns are ints, text and
        # bytes, so it could) was slower and took more worker memory in bench/distributed.py
        # at 200k events (63 s and ~820 MiB per worker, against 47 s and ~550 MiB).
        self.shuffle = "tasks"

    def persist(self, *colls: Any) -> list[Any]:
        dask = _dask()

        if self.client is not None:
            return list(self.client.persist(list(colls)))
        return list(dask.persist(*colls))

    def persist_frame(self, frame: Any, meta: pd.DataFrame) -> Any:
        """``frame`` computed and kept (on the workers with a client) as a new collection
        of its partitions. Not ``DataFrame.persist``: without a client that embeds the
        partitions in the graph, and every expression built on it hashes them all."""
        dask = _dask()
        dd: Any = importlib.import_module("dask.dataframe")
        parts = frame.to_delayed()
        if self.client is not None:
            parts = self.client.persist(parts)
        else:
            parts = [dask.delayed(p, pure=False) for p in dask.compute(*parts)]
        return dd.from_delayed(parts, meta=meta, verify_meta=False)

    def compute(self, *colls: Any) -> list[Any]:
        dask = _dask()

        if self.client is not None:
            return list(self.client.gather(self.client.compute(list(colls))))
        return list(dask.compute(*colls))


def _read_tasks(source: Any, pset: PolicySet, tz: tzinfo | None, fmt: str | None,
                encoding: str | None) -> tuple[list[Any], list[str]]:
    """One delayed read per file (or per chunk of an in-memory source), and the sources."""
    from .models.registry import registered_event_types

    delayed = _dask().delayed
    types = tuple(registered_event_types().values())
    if file_source(source):
        files = _expand(source)
        return [delayed(_read_file, pure=True)(i, url, local, pset, tz, fmt, encoding, types)
                for i, (url, local) in enumerate(files)], [u for u, _l in files]
    from .audit import read_records

    reader = read_records(source, format=fmt, encoding=encoding)
    records = iter(reader.records)
    tasks = []
    while chunk := list(itertools.islice(records, _CHUNK)):
        tasks.append(delayed(_read_chunk, pure=False)(reader.label, reader.unit, chunk,
                                                      pset, tz, types))
    if not tasks:
        tasks.append(delayed(_read_chunk, pure=False)(reader.label, reader.unit, [], pset, tz,
                                                      types))
    return tasks, [reader.label]


def run_files(source: Any, pset: PolicySet, horizon: datetime | None, tz: tzinfo | None,
              *, output: str | os.PathLike[str], client: Any, partitions: int, backend: str,
              fmt: str | None = None, encoding: str | None = None,
              progress: bool | float = False) -> AuditSummary:
    """The driver-less audit of ``source``, written under ``output``."""
    from .engine import progress_bar

    bar = progress_bar(progress, 4, "distributed audit: read", "stage")
    try:
        return _run_files(source, pset, horizon, tz, out=output, client=client,
                          partitions=partitions, backend=backend, fmt=fmt,
                          encoding=encoding, bar=bar)
    finally:
        if bar is not None:
            bar.close()


def _stage(bar: Any, done: str) -> None:
    """One stage of the file audit done; the bar names the next."""
    if bar is not None:
        bar.update()
        bar.set_description(f"distributed audit: {done}")


def _run_files(source: Any, pset: PolicySet, horizon: datetime | None, tz: tzinfo | None,
               *, out: str | os.PathLike[str], client: Any, partitions: int, backend: str,
               fmt: str | None, encoding: str | None, bar: Any) -> AuditSummary:
    output = out
    dask = _dask()
    try:
        dd: Any = importlib.import_module("dask.dataframe")
    except ImportError:
        from .errors import MissingDependencyError

        raise MissingDependencyError("dask[dataframe]", "dask", "distributed audits of "
                                     "files") from None
    out = os.fspath(output)
    if not out.strip():
        raise ParameterError("output", output, "a directory or fsspec URL to write the "
                             "decisions and quarantine to")
    run = _Runner(client)
    # Each stage is kept on the workers until the next one is; the driver holds futures,
    # counts and the latest event time.
    with dask.config.set({"dataframe.convert-string": False}):
        tasks, sources = _read_tasks(source, pset, tz, fmt, encoding)
        tasks = run.persist(*tasks)  # read once
        *infos, zoned = run.compute(*[dask.delayed(_part)(t, "info") for t in tasks],
                                    dask.delayed(any)([dask.delayed(_part)(t, "zoned")
                                                       for t in tasks]))
        # An in-memory source's chunks share source number 0 (their lines run on).
        labels = [(label, unit) for label, unit, _n, _notes in infos]
        read = sum(n for _l, _u, n, _notes in infos)
        notes = tuple(note for *_x, found in infos for note in found)
        for note in notes:  # logged here as audit() logs them: workers' logs go unread
            logging.getLogger("policykit").warning("%s", note)
        q0 = run.persist(*[dask.delayed(_part)(t, "quarantine") for t in tasks])
        _stage(bar, "resolve corrections and repeated ids")
        groups = dask.delayed(_components)(*[dask.delayed(_part)(t, "edges") for t in tasks])
        events = dd.from_delayed([dask.delayed(_part)(t, "events") for t in tasks],
                                 meta=_empty(_EVENTS), verify_meta=False)
        keyed = events.map_partitions(_keyed, groups, meta=_empty(_KEYED))
        resolved = keyed.shuffle(on="key", npartitions=partitions, shuffle_method=run.shuffle) \
            .map_partitions(_resolve, horizon, labels, zoned, meta=_empty(_RESOLVED))
        resolved = run.persist_frame(resolved, _empty(_RESOLVED))
        del tasks, groups, events, keyed  # the parsed files: released on the workers
        applied = resolved[resolved["kind"] == "e"]
        q1 = run.persist_frame(resolved[resolved["kind"] == "q"].map_partitions(
            _quarantine_rows, meta=_q_frame([])), _q_frame([]))
        latest = applied.map_partitions(_latest, zoned, meta={"at": "object"})["at"]
        stats_rows, latest_rows, evaluated = run.compute(
            resolved[resolved["kind"] == "s"]["row"], latest, applied["pos"].count())
        corrected, duplicates, after_until = (sum(r[i] for r in stats_rows) for i in range(3))
        _stage(bar, "evaluate the shards")
        last = None if horizon is not None else max(latest_rows, default=None)
        router = _router(pset, partitions)
        nshards = sum(g.count for g in router)
        # One marker row per shard: a shard no event reaches still runs (to its horizon).
        markers = dd.from_pandas(_frame({"shard": list(range(nshards)), "ev": [None] * nshards,
                                         "at": [None] * nshards,
                                         "id": [None] * nshards}, _ROUTED), npartitions=1)
        routed = dd.concat([applied.map_partitions(_route, router, meta=_empty(_ROUTED)),
                            markers])
        decisions = routed.shuffle(on="shard", npartitions=max(1, min(nshards, 4 * partitions)),
                                   shuffle_method=run.shuffle) \
            .map_partitions(_run_shards, router, horizon, last, backend, zoned,
                            meta=_decision_frame([]))
        decisions = run.persist_frame(decisions, _decision_frame([]))
        del resolved, applied, routed  # the events: released on the workers
        _stage(bar, "write")
        quarantine = dd.concat([
            dd.from_delayed(q0, meta=_q_frame([]), verify_meta=False), q1]).map_partitions(
            _by_pos, meta=_q_frame([]))
        dschema, qschema = _schemas()
        dpath, qpath = _join(out, "decisions"), _join(out, "quarantine")
        write_d = decisions.to_parquet(dpath, write_index=False, schema=dschema,
                                       overwrite=True, compute=False)
        write_q = quarantine.to_parquet(qpath, write_index=False, schema=qschema,
                                        overwrite=True, compute=False)
        tally = decisions.map_partitions(_tally, meta=_empty(_TALLY))
        _w1, _w2, counts, nq = run.compute(write_d, write_q, tally, quarantine["pos"].count())
        if counts["foreign"].any():  # a decision superseding one in another partition
            # Each partition's list, computed as lists (a frame's partitions that are
            # lists cannot be concatenated: "No dispatch for <class 'list'>").
            gone = frozenset(itertools.chain.from_iterable(run.compute(
                *[dask.delayed(_superseded)(p) for p in decisions.to_delayed()])))
            (counts,) = run.compute(decisions.map_partitions(_tally, gone,
                                                             meta=_empty(_TALLY)))
        _stage(bar, "done")
    by_outcome: dict[tuple[str, str], int] = {}
    money: dict[tuple[str, str], Decimal] = {}
    for row in counts.itertuples(index=False):
        by_outcome[(row.policy, row.kind)] = by_outcome.get((row.policy, row.kind), 0) + row.n
        if row.currency is not None and row.standing:
            key = (row.policy, row.currency)
            money[key] = money.get(key, Decimal(0)) + Decimal(row.amount)
    return AuditSummary(output=out, decisions_path=dpath, quarantine_path=qpath,
                        sources=tuple(sources), read=read, valid=read - int(nq),
                        quarantined=int(nq), corrected=corrected, duplicates=duplicates,
                        after_until=after_until, evaluated=int(evaluated),
                        decisions=sum(by_outcome.values()), by_outcome=by_outcome,
                        money=money, notes=notes)


def _join(base: str, name: str) -> str:
    return base.rstrip("/") + "/" + name if "://" in base else os.path.join(base, name)
