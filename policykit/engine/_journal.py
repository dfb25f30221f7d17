"""Copy-on-write checkpoints of keyed rule state: the late-event window's undo log.

A session with ``allowed_lateness`` checkpoints the evaluator's state every few steps and,
for a late event, goes back to the checkpoint before it. Copying the whole state at every
checkpoint costs the state's size (a year of open cases and closed keys); instead, each
rule's per-key maps (the top-level dicts of its ``state``) become :class:`Tracked` dicts
that copy a key's value the first time it is touched after a checkpoint. Going back to a
checkpoint puts back the values of the keys touched since, and nothing else: a checkpoint
and a rewind cost what the steps since touched, not the number of keys held.

Maps of maps (a rule's ``nested`` entries: a correlate index, timer agendas, expiry days)
are tracked one level down too, so touching one entry of a big inner map does not copy it.

Every access that may lead to a change notes the key (reads included: a rule mutates the
values it reads in place), so the journal is a superset of what changed; in a map of maps,
reading an inner map notes nothing (its own entries are noted as they are touched). Iterating a
tracked dict's ``items()``/``values()`` notes each key as it is reached.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from typing import Any

_ABSENT: Any = object()
_PROTO = pickle.HIGHEST_PROTOCOL

# A note: (the dict noted, or the parent of a nested one; the nested map's key in its
# parent, or None; key; pickled old value or None when the key was absent; sequence number).
Note = tuple[Any, Any, Any, bytes | None, int]


class Journal:
    """The notes since the current checkpoint (``log``), and a sequence counter."""

    __slots__ = ("log", "seq")

    def __init__(self) -> None:
        self.log: dict[tuple[Any, ...], Note] | None = None
        self.seq = 0


def _copy(value: Any) -> bytes:
    if type(value) is Tracked:
        value = dict(value)  # a nested map: its entries, not the tracking
    return pickle.dumps(value, _PROTO)


class Tracked(dict[Any, Any]):
    """A dict noting the first touch of each key since the journal's last checkpoint."""

    __slots__ = ("_j", "_name", "_nested", "_parent")

    def __init__(self, data: dict[Any, Any], journal: Journal, nested: bool = False,
                 parent: Tracked | None = None, name: Any = None) -> None:
        super().__init__()
        self._j = journal
        self._nested = nested
        self._parent = parent
        self._name = name
        for k, v in data.items():
            dict.__setitem__(self, k, self._wrap(k, v))

    def _wrap(self, k: Any, v: Any) -> Any:
        if self._nested and type(v) is dict:
            return Tracked(v, self._j, parent=self, name=k)
        return v

    def _note(self, k: Any) -> None:
        j = self._j
        log = j.log
        if log is None:
            return
        p = self._parent
        path = (id(self), k) if p is None else (id(p), self._name, k)
        if path in log:
            return
        old = dict.get(self, k, _ABSENT)
        j.seq += 1
        log[path] = (self if p is None else p, self._name, k,
                     None if old is _ABSENT else _copy(old), j.seq)

    def __reduce__(self) -> Any:  # never pickled with its journal
        return (dict, (dict(self),))

    # A nested map's entries are noted by the inner maps themselves: reading one from its
    # parent notes nothing (only adding, replacing or removing an inner map does).

    def __getitem__(self, k: Any) -> Any:
        if not self._nested:
            self._note(k)
        return dict.__getitem__(self, k)

    def get(self, k: Any, default: Any = None) -> Any:
        if not self._nested:
            self._note(k)
        return dict.get(self, k, default)

    def __setitem__(self, k: Any, v: Any) -> None:
        self._note(k)
        dict.__setitem__(self, k, self._wrap(k, v))

    def __delitem__(self, k: Any) -> None:
        self._note(k)
        dict.__delitem__(self, k)

    def setdefault(self, k: Any, default: Any = None) -> Any:
        if not (self._nested and k in self):
            self._note(k)
        if k in self:
            return dict.__getitem__(self, k)
        v = self._wrap(k, default)
        dict.__setitem__(self, k, v)
        return v

    def pop(self, k: Any, *default: Any) -> Any:
        self._note(k)
        return dict.pop(self, k, *default)

    def popitem(self) -> tuple[Any, Any]:
        if not self:
            raise KeyError("popitem(): dictionary is empty")
        k = next(reversed(self))
        return k, self.pop(k)

    def update(self, *args: Any, **kw: Any) -> None:
        for k, v in dict(*args, **kw).items():
            self[k] = v

    def clear(self) -> None:
        for k in list(self):
            del self[k]

    def items(self) -> Iterator[tuple[Any, Any]]:  # type: ignore[override]
        for k in list(dict.keys(self)):
            if k in self:
                if not self._nested:
                    self._note(k)
                yield k, dict.__getitem__(self, k)

    def values(self) -> Iterator[Any]:  # type: ignore[override]
        for _k, v in self.items():
            yield v


def plain(value: Any) -> Any:
    """A tracked dict (and its nested ones) as plain dicts; anything else as it is."""
    if type(value) is Tracked:
        return {k: plain(v) for k, v in dict.items(value)}
    return value


def first_notes(logs: list[dict[tuple[Any, ...], Note]]) -> tuple[list[Note], list[Note]]:
    """The earliest note of each path over ``logs`` (oldest first): what every touched key
    held at the first checkpoint of ``logs``. Returned as (top-level notes, nested notes),
    nested ones dropped where their map was itself replaced earlier (its copy then holds
    them)."""
    first: dict[tuple[Any, ...], Note] = {}
    for log in logs:
        for path, note in log.items():
            if path not in first:
                first[path] = note
    top: list[Note] = []
    outer_seq: dict[tuple[Any, ...], int] = {}
    inner: list[tuple[tuple[Any, ...], Note]] = []
    for path, note in first.items():
        if len(path) == 2:
            top.append(note)
            outer_seq[path] = note[4]
        else:
            inner.append((path, note))
    nested = [note for path, note in inner
              if not ((s := outer_seq.get((path[0], path[1]))) is not None and s < note[4])]
    return top, nested
