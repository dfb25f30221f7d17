"""Audits on Dask: the decisions of ``Engine().evaluate`` and :func:`policykit.audit` — the
same decisions, ids included — computed by many processes or machines, from files the
workers read themselves.

How the work is split, and why the result is exact
--------------------------------------------------
Rules interact only in two ways: a rule may read the decisions of other rules *of the same
policy* (``consumes``: a tariff over late days, a discipline ladder over violations), and
every rule may read the employee directory (the latest ``employee.profile`` per employee).
(A third, a rule reading every policy's money — the monthly cap of lateness-deduction R6 —
crosses policies; a set where one is active is refused.) So:

1. **By rule group.** Each policy is cut into groups of rules connected by ``consumes``;
   groups never influence each other. A group runs as a policy with the same id, version
   and parameters holding only its rules (in their original order), so its decisions — and
   their ids, which hash policy id, version, rule, outcome, subject, case key, time and
   status — are the ones the whole pack gives. A group sees only the event types its rules
   read; the time between its events is covered by firing its deadlines up to the same
   instant the single-process audit reaches (``until``, or just before the last event).
2. **By key, where every piece of a group's state is keyed by one field.** Each shape says
   what its state is keyed by (``RuleSpec.partition``; a shape that says nothing runs
   whole): a *deadline* by its case key (unless it ``correlate``s cases by other fields
   or ``alias``es keys — first-responder R6, "same customer and topic within 7 days",
   crosses requests), a *precondition* and a keyed *gap* by their key, a
   *recurrence* by its subject (unless one fixed subject stands for a whole population), a
   *forbidden* rule or an event *tariff* by its subject. A group whose rules all agree on
   one field per event type is split into ``partitions`` shards by a stable hash (CRC-32) of
   that field's value; all events of one case — one request, one post, one employee — land
   in one shard with the whole history that case's decisions depend on. An event lacking
   the field is one every rule of the group ignores, and goes nowhere. Events a rule reads
   without a key (a gap's population: customer service has staff) go to every shard: they
   change no keyed state by themselves.
3. **Cross-key rules stay exact by staying together.** A rule reading other rules' decisions
   is keyed by the decisions' *subject*: a ladder counts an employee's violations, a tariff
   charges an employee per month. That is safe only if the rules it reads are themselves
   keyed by their subject (lateness: R1 late days are per employee, so R1 + the R2/R3 tariffs
   split by employee). First-responder R7's ladder counts an owner's buck-passing (R3) and
   second-call (R6) violations across requests, while R3 and R6 are keyed by request and an
   owner changes with registered handovers: that group (R3, R6, R7) runs whole, in one
   shard, so every violation reaches the ladder in the single-process order. R1, R2, R4
   and R5 of the same policy are split by request. Rates (a ratio over a whole population
   per period) and population-wide recurrences and gaps also run whole.
4. **The directory.** Profiles go where they are read: split by employee to a group that
   reads ``employee.profile`` events by ``employee_id`` (its directory then holds its own
   employees, the only ones its rules look up — salaries and role filters are looked up for
   a decision's subject); to every shard of any other group that looks salaries or roles up.

The in-memory call
------------------
``distributed_audit(source)`` with ``source`` in memory and no ``output``: the driver runs
the first half of the batch pipeline (:mod:`policykit.engine._batch`: validate, place on
the calendars, drop events corrected by a later one (``meta.corrects``), order by (time,
id)) and drops repeated ids (the first wins), so every shard sees exactly the events the
single process applies; each shard then runs the whole pipeline on its events, as
``Engine.evaluate`` does on the whole log, and the decisions come back to the driver.
:func:`plan` shows the split of a policy set.

Without the log on the driver
-----------------------------
With ``output`` (and always for a path, a glob or a directory, local or any fsspec URL)
the driver only builds a Dask graph; it holds no event and no decision:

5. **Read and validate where the data is.** One task per file reads it with the readers
   of :func:`policykit.audit` (``.jsonl``/``.json``/``.csv``/``.parquet``, ``.gz``; a
   remote file is first copied to the worker's disk) and runs the pipeline's first two
   steps (validate, place on the calendars): each judges one record at a time, so a file
   gives the quarantine entries the whole log gives, named by their own file and line.
   Each event keeps its place in the input (file number, line): ties of (time, id) then
   fall in input order, as in one process.
6. **Corrections and repeated ids, per correction group.** What ``split_corrections``
   decides about an event depends only on the events it meets through equal ids and
   ``meta.corrects`` links (its copies, what it corrects, what corrects it, chains and
   rings): the ledger looks nothing else up. So the ids linked by corrections are joined
   into groups (union-find over the (id, corrected id) pairs, in one task: their number is
   the number of corrections), every event is keyed by its group (its own id when no
   correction touches it), and a Dask shuffle on that key puts each group whole in one
   partition, where ``split_corrections`` runs on the partition's events in input order.
   Being a union of whole groups, a partition gets exactly the single-process outcome for
   each of its events: replaced, refused (quarantined with the same message), or kept. (An
   event whose id no other event has and no correction involves is a group of one, kept as
   it is: the rules run on the other groups only.)
   Then, as in one process, events after ``until`` are set aside (counted), and of
   identical copies the first is kept.
7. **To the shards.** Each kept event is written once per shard that reads it (rule 2-4
   above: the key's hash, every shard, or the one whole shard), and a second shuffle on
   the shard number brings each shard's events together. The event a correction replaces
   is applied nowhere (it counts as never delivered), so the correction is routed as any
   event, by its own fields; they hold the corrected event's subject anyway (a correction
   keeping another type or subject is refused). Each event travels with its time and id,
   and every shard applies its events in (time, id) order (ids are unique by now: the
   single process's order) with the pipeline's last step alone, the session, unpacking
   them a slice at a time as the session takes them (``run_ordered`` in
   :mod:`policykit.engine._batch`), then fires deadlines up to ``until``, or up to just
   before the latest kept event (one number, reduced on the workers).
8. **Written by the workers.** Decisions (one row each, the decision's JSON in
   ``decision``) and the quarantine are Parquet datasets under ``output``; the call returns
   an :class:`AuditSummary` (counts, decisions by policy and kind, the money that stands
   per policy and currency, the paths). Read back, the decisions equal ``audit()``'s
   (``trail``), ids and content, and the quarantine equals its quarantine
   (tests/test_distributed_files.py).

The shuffles are Dask's own (``DataFrame.shuffle``, task-based). Events travel packed:
each one's exact state pickled with its fields' values in order but not their names, in an
Arrow column beside its time (microseconds, UTC) and id, so a partition is a few buffers,
not a Python object per event. Times in a named zone (a ``ZoneInfo``, as an in-memory source
or a Parquet column with a zone gives them) are the exception: Python compares two times
sharing such a zone by their wall clocks, as ``audit()`` then orders them, which in a
daylight-saving change is not the order of their instants; when any event has one, the
workers order, bound and compare the times themselves (a shard then holds its events as
models). Between stages the partitions are persisted on the workers.

Running it
----------
``pip install "policykit[dask]"``, then::

    from distributed import Client
    from policykit.distributed import distributed_audit

    client = Client("tcp://scheduler:8786")      # a real cluster; Client() starts a local one
    summary = distributed_audit("s3://bucket/events/2026-03/*.parquet", until="2026-04-01",
                                output="s3://bucket/audits/2026-03", client=client)
    decisions = distributed_audit(events, until=end_of_month, client=client)  # in memory

Without a client the file path runs on Dask's default scheduler in this process, and the
in-memory call runs its shards one after the other here. Workers need policykit installed,
in the same version as the driver, and access to the files.
"""

from __future__ import annotations

import os
import warnings
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from pathlib import Path
from typing import Any, overload

from ._dask_files import AuditSummary, actions, file_source, rule_group, run_files, shards_of
from .errors import ParameterError
from .models import raw_records
from .models.decisions import Decision
from .models.events import EventBase
from .policy import Policy, PolicySet
from .policyfile import PolicyLike
from .rules import RuleSpec

__all__ = ["AuditSummary", "Shard", "distributed_audit", "plan"]

PROFILE = "employee.profile"


@dataclass(frozen=True)
class Shard:
    """One unit of work: some rules of one policy over some of the events.

    ``routes`` maps each event type the rules read to the field whose value picks the
    shard (None: the event goes to every shard of the group); ``routes is None`` means the
    group runs whole. ``index`` of ``count`` names this shard of the group."""

    policy: str
    rules: tuple[str, ...]
    routes: Mapping[str, str | None] | None
    index: int
    count: int
    why: str


# ------------------------------------------------------------------------------ analysis
# Per rule: (routes, keyed by subject?, reads the directory?) or a reason it cannot split.
# Each shape says how its state is keyed (RuleSpec.partition), so a new shape is split, or
# runs whole, without this module knowing it.


def _rule_routes(spec: RuleSpec) -> tuple[dict[str, str | None], bool, bool] | str:
    """How one rule's state is keyed: ``(routes, subject_keyed, reads_directory)``, or why
    it cannot be split."""
    found = spec.partition()
    if isinstance(found, str):
        return found
    return dict(found.routes), found.subject_keyed, found.directory


def _groups(policy: Policy) -> list[list[RuleSpec]]:
    """The policy's rules in groups connected by ``consumes``, in rule order. For a policy
    with versions a group holds every version's spec of its rules (one id may come several
    times), so it is keyed, and split, only where every version allows."""
    specs = list(policy.specs)
    every = [s for v in policy.versions for s in v.specs] if policy._versions else specs
    parent = {s.id: s.id for s in specs}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in every:
        for dep in s.consumes():
            parent[find(dep)] = find(s.id)
    groups: dict[str, list[RuleSpec]] = defaultdict(list)
    for s in every:
        groups[find(s.id)].append(s)
    order = [s.id for s in specs]
    return sorted(groups.values(), key=lambda g: order.index(g[0].id))


def _group_routes(group: list[RuleSpec]) -> tuple[dict[str, str | None] | None, bool, str]:
    """(routes or None for whole, reads the directory, why)."""
    routes: dict[str, str | None] = {}
    directory = False
    keyed: dict[str, bool] = {}
    whole: str | None = None
    for spec in group:
        found = _rule_routes(spec)
        if isinstance(found, str):
            whole = whole or f"{spec.id}: {found}"
            directory = directory or spec.reads_directory()
            continue
        r, subject_keyed, reads = found
        keyed[spec.id] = subject_keyed
        directory = directory or reads
        for t, f in r.items():
            if t in routes and routes[t] != f:
                whole = whole or f"{spec.id}: {t} is keyed by both {routes[t]} and {f}"
            routes[t] = f
    for spec in group:
        for dep in sorted(spec.consumes()):
            if whole is None and not keyed.get(dep, False):
                whole = (f"{spec.id} reads {dep}'s decisions per subject, and {dep} is not "
                         "keyed by its subject")
    if whole is not None:
        return None, directory, whole
    if not any(f is not None for f in routes.values()):
        return None, directory, "no event carries a key"
    keys = sorted({f for f in routes.values() if f is not None})
    return routes, directory, "by " + ", ".join(keys)


def plan(policies: PolicySet | Iterable[Policy] | None = None, partitions: int = 4
         ) -> list[Shard]:
    """The shards :func:`distributed_audit` runs for ``policies`` (default: the standard
    pack) with ``partitions`` shards per splittable group."""
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ParameterError("partitions", partitions, "a positive int")
    out: list[Shard] = []
    for policy in _policy_set(policies):
        for group in _groups(policy):
            routes, _directory, why = _group_routes(group)
            ids = tuple(dict.fromkeys(s.id for s in group))
            if routes is None:
                out.append(Shard(policy.id, ids, None, 0, 1, "whole: " + why))
            else:
                out += [Shard(policy.id, ids, routes, i, partitions, why)
                        for i in range(partitions)]
    return out


def _policy_set(policies: PolicySet | Iterable[Policy] | None) -> PolicySet:
    if policies is None:
        from .pack import standard_pack

        pset = standard_pack()
    elif isinstance(policies, Policy):
        pset = PolicySet([policies])
    else:
        pset = policies if isinstance(policies, PolicySet) else PolicySet(policies)
    for policy in pset:
        # Every version: a cap in force only in an earlier one reads money all the same.
        for spec in (s for v in policy.versions for s in v.specs):
            if spec.reads_money():
                # It adds up the money of every policy, which the shards run apart.
                raise ParameterError(
                    "policies", f"{policy.id} {spec.id}",
                    "no rule reading every policy's money (an active monthly cap): run "
                    "such a set with Engine.evaluate or audit(), or switch the cap off")
    return pset


# ------------------------------------------------------------------------------ routing


def _bucket(value: Any, count: int) -> int:
    # A stable hash: Python's hash() of a str differs between processes.
    return zlib.crc32(str(value).encode("utf-8")) % count


def _subset(policy: Policy, rules: tuple[str, ...]) -> Policy:
    """The policy with only ``rules`` (same id, version, parameters: same decision ids)."""
    return policy._only_rules(rules)  # keeps the policy's fingerprint, so its decision ids


def _prepare(events: Any, pset: PolicySet, until: datetime | None,
             assume_tz: tzinfo | None) -> list[EventBase]:
    """What a session applies, in the order it applies it: the batch pipeline's first half
    (validated, placed, corrections resolved, ordered by (time, id)), then repeated ids
    dropped (the first wins) so that a copy cannot reach another shard than its first."""
    from .engine import prepare

    ordered = prepare(raw_records(events), pset, horizon=until, assume_tz=assume_tz).events
    seen: set[str] = set()
    out: list[EventBase] = []
    for ev in ordered:
        if ev.id not in seen:
            seen.add(ev.id)
            out.append(ev)
    return out


def _shard_events(policy: Policy, group: list[RuleSpec], events: list[EventBase],
                  partitions: int) -> list[tuple[Shard, list[EventBase]]]:
    why = _group_routes(group)[2]
    ids = tuple(dict.fromkeys(s.id for s in group))
    g = rule_group(policy, group, partitions, 0)
    shards = ([Shard(policy.id, ids, None, 0, 1, "whole: " + why)] if g.routes is None else
              [Shard(policy.id, ids, g.routes, i, partitions, why) for i in range(partitions)])
    table = actions([g])
    buckets: list[list[EventBase]] = [[] for _ in range(g.count)]
    for ev in events:
        for k in shards_of(ev, table):
            buckets[k].append(ev)
    return list(zip(shards, buckets, strict=True))


# ------------------------------------------------------------------------------ running


def _run_shard(policy: Policy, events: list[EventBase], stop: datetime | None,
               last: datetime | None, backend: str = "native") -> list[Decision]:
    """Evaluate one shard with the single process's pipeline: its events in order, then its
    deadlines up to ``stop`` (inclusive: ``until``) or up to just before ``last`` (the whole
    log's last event: without ``until`` nothing at or after it fires)."""
    from .engine import Engine, numbered, run_batch

    return run_batch(Engine(PolicySet([policy]), backend=backend), numbered(events),
                     until=stop, fire_before=last).decisions


#: No argument given (``source`` may come as the deprecated ``events=``).
_MISSING: Any = object()


@overload
def distributed_audit(
    source: Any = _MISSING,
    policy: PolicyLike | os.PathLike[str] = None,
    until: datetime | date | str | None = None,
    client: Any = None,
    partitions: int | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    assume_tz: str | tzinfo | None = None,
    output: None = None,
    format: str | None = None,
    encoding: str | None = None,
    events: Any = _MISSING,
    policies: Any = _MISSING,
) -> list[Decision]: ...


@overload
def distributed_audit(
    source: Any = _MISSING,
    policy: PolicyLike | os.PathLike[str] = None,
    until: datetime | date | str | None = None,
    client: Any = None,
    partitions: int | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    assume_tz: str | tzinfo | None = None,
    output: str | os.PathLike[str],
    format: str | None = None,
    encoding: str | None = None,
    events: Any = _MISSING,
    policies: Any = _MISSING,
) -> AuditSummary: ...


def distributed_audit(
    source: Any = _MISSING,
    policy: PolicyLike | os.PathLike[str] = None,
    until: datetime | date | str | None = None,
    client: Any = None,
    partitions: int | None = None,
    *,
    backend: str = "native",
    progress: bool | float = False,
    assume_tz: str | tzinfo | None = None,
    output: str | os.PathLike[str] | None = None,
    format: str | None = None,
    encoding: str | None = None,
    events: Any = _MISSING,
    policies: Any = _MISSING,
) -> list[Decision] | AuditSummary:
    """An audit on a Dask ``client`` (``distributed.Client``; None: dask's default
    scheduler, or one shard after another in this process for the in-memory call).

    ``source``, ``policy``, ``until`` and the keyword options are :func:`policykit.audit`'s.
    With ``output`` (a directory or fsspec URL): the audit of :func:`policykit.audit` on
    ``source`` — a path, a glob or a directory of ``.jsonl``/``.json``/``.csv``/``.parquet``
    files (optionally ``.gz``, local or on any fsspec filesystem), a DataFrame or an
    iterable of records — with its quarantine. The workers read the files; the decisions
    and the quarantine are written as Parquet under ``output/decisions`` and
    ``output/quarantine`` (replacing what was there), and an :class:`AuditSummary` is
    returned. Records later than ``until`` are counted (``after_until``), not evaluated.

    Without ``output`` (``source`` in memory: an iterable of models, dicts or JSON text):
    the decisions of ``Engine(policy, backend=backend).evaluate(source, until,
    assume_tz=assume_tz)``, ids included; the first bad record raises.

    ``progress``: a bar on stderr, as in :func:`policykit.audit` (the stages of a file
    audit, or the shards of the in-memory call; a number: only once the run takes that
    many seconds). ``events=`` and ``policies=`` are the old names of ``source`` and
    ``policy`` (deprecated).

    ``partitions``: shards per splittable rule group (default: twice the cluster's worker
    threads, 4 without a client). See the module docstring for how it stays exact."""
    from .engine import BACKENDS, parse_instant, zone

    events, policies = _renamed(source, policy, events, policies)
    if isinstance(policies, Policy):
        policies = [policies]
    if policies is not None and not isinstance(policies, PolicySet):
        # As audit() names a set: a file, a standard policy id, a list of ids, a mapping.
        from .policyfile import resolve_policies

        policies = resolve_policies(Path(os.fspath(policies))
                                    if isinstance(policies, os.PathLike) else policies)
    pset = _policy_set(policies)
    if backend not in BACKENDS:
        from .errors import nearest

        raise ParameterError("backend", backend, "one of " + ", ".join(BACKENDS),
                             suggestion=nearest(backend, BACKENDS))
    partitions = _partitions(partitions, client)
    tz = zone(assume_tz)
    horizon = None if until is None else parse_instant(until, policies=pset, assume_tz=tz)
    if output is not None or file_source(events):
        if output is None:
            raise ParameterError(
                "output", None, f"a directory or fsspec URL for the decisions and the "
                f"quarantine: the workers read {os.fspath(events)!r} and write what they "
                "find, the driver holds none of it")
        if horizon is not None:
            from .engine.internal import check_horizon

            check_horizon(horizon, pset)
        return run_files(events, pset, horizon, tz, output=output, client=client,
                         partitions=partitions, backend=backend, fmt=format,
                         encoding=encoding, progress=progress)
    if format is not None or encoding is not None:
        raise ParameterError("format" if format is not None else "encoding",
                             format if format is not None else encoding,
                             "None for events given in memory (it names how to read a file)")
    return _in_memory(events, pset, horizon, tz, client, partitions, backend, progress)


def _renamed(source: Any, policy: Any, events: Any, policies: Any) -> tuple[Any, Any]:
    """``source`` and ``policy``, taken from their old names where those were given."""
    source = _old_name("events", "source", events, source)
    policy = _old_name("policies", "policy", policies, policy)
    if source is _MISSING:
        raise ParameterError("source", None, "the events to audit: a path, a glob, a "
                             "directory, a DataFrame or an iterable of records")
    return source, policy


def _old_name(old: str, new: str, value: Any, current: Any) -> Any:
    """``current``, or ``value`` given under the old name (with a DeprecationWarning)."""
    if value is _MISSING:
        return current
    if current is not _MISSING and current is not None:
        raise ParameterError(old, value, f"one of {new!r} or {old!r} (the old name of "
                             f"{new!r}), not both")
    warnings.warn(f"distributed_audit({old}=...) is deprecated: use {new}=..., the name "
                  "policykit.audit() gives it", DeprecationWarning, stacklevel=4)
    return value


def _partitions(partitions: int | None, client: Any) -> int:
    """Shards per splittable group: as given, else twice the cluster's worker threads (4
    without a client)."""
    if partitions is None:
        threads = 0
        if client is not None:
            threads = sum(client.nthreads().values())
        partitions = max(2, 2 * threads) if threads else 4
    if isinstance(partitions, bool) or not isinstance(partitions, int) or partitions < 1:
        raise ParameterError("partitions", partitions, "a positive int")
    return partitions


def _in_memory(events: Any, pset: PolicySet, horizon: datetime | None, tz: tzinfo | None,
               client: Any, partitions: int, backend: str,
               progress: bool | float = False) -> list[Decision]:
    """The in-memory call: prepared here, shards submitted with their events."""
    ordered = _prepare(events, pset, horizon, tz)
    last = ordered[-1].at if ordered else None
    work: list[tuple[Policy, list[EventBase]]] = []
    for policy in pset:
        for group in _groups(policy):
            sub = _subset(policy, tuple(dict.fromkeys(s.id for s in group)))
            for _shard, evs in _shard_events(policy, group, ordered, partitions):
                if evs or horizon is not None or last is not None:
                    work.append((sub, evs))
    from .engine import progress_bar

    bar = progress_bar(progress, len(work), "distributed audit", "shard")
    results: list[list[Decision]]
    try:
        if client is None:
            results = []
            for p, evs in work:
                results.append(_run_shard(p, evs, horizon, last, backend))
                if bar is not None:
                    bar.update()
        else:
            futures = [client.submit(_run_shard, p, evs, horizon, last, backend, pure=False)
                       for p, evs in work]
            if bar is not None:
                import importlib

                as_completed: Any = importlib.import_module("distributed").as_completed
                for _done in as_completed(futures):
                    bar.update()
            results = client.gather(futures)
    finally:
        if bar is not None:
            bar.close()
    return sorted((d for part in results for d in part), key=lambda d: (d.at, d.id))
