"""The ``policykit`` command: audit event logs, weigh a rulebook change (``diff``), check
policy files, list the standard pack, print the wire format's JSON Schema, explain decisions
and run scenario tests.

Exit status (docs/cli.md has the table):

- 0: nothing found (``audit``: no decision counted; ``check``: valid; ``test``: all pass);
- 1: decisions found (``audit``, by default; ``--no-fail-on-decisions`` turns it off,
  ``--fail-kinds`` narrows what counts), decisions that differ (``diff``, by default) or a
  failing scenario;
- 2: usage error or unreadable input (an unreadable events file, a bad policy file, a bad
  option or ``--until``, a missing optional package);
- 3: records were quarantined (``--allow-quarantine`` accepts them); it wins over 1, and an
  input whose every record was quarantined exits 3 even with ``--allow-quarantine``;
- 70: an internal error (a bug): one line on stderr, the traceback with ``--debug`` or
  ``POLICYKIT_DEBUG=1``;
- 130: interrupted (SIGINT); stdout output is partial, an ``--out`` file is left as it was.

Results go to stdout (or ``--out``, written atomically); progress, counts and quarantined
records to stderr, so ``policykit audit log.jsonl | jq`` always reads clean JSON Lines. On a
terminal, ``audit`` without ``--format`` prints a summary table instead.
"""

# click rather than typer: click is one small dependency (typer pulls in click itself plus
# rich and shellingham), it is already what typer runs on, and it gives direct control over
# exit codes and over which stream each line goes to — the two things this command's
# contract is about. Help texts use click's ``\b`` blocks so the examples keep their lines.

from __future__ import annotations

import contextlib
import importlib
import json
import os
import stat
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator, Sequence
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, NoReturn

import click

from . import __version__
from .errors import PolicyKitError

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_DECISIONS",
    "EXIT_INTERNAL_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_QUARANTINED",
    "cli",
    "main",
]

EXIT_OK = 0
EXIT_DECISIONS = 1
EXIT_BAD_INPUT = 2
EXIT_QUARANTINED = 3
#: sysexits.h EX_SOFTWARE: never 1, so a crash is not read as "decisions found".
EXIT_INTERNAL_ERROR = 70
#: 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
EXIT_INTERRUPTED = 130

_INPUT_FORMATS = ("jsonl", "json", "csv", "parquet")


class _RunState:
    """What the exit handler needs to know about the run in progress."""

    def __init__(self) -> None:
        self.debug = False
        self.out: str | None = None


_STATE = _RunState()


class BadInput(click.ClickException):
    """Bad input: printed as ``error: ...`` on stderr, exit status 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _fail(message: str) -> NoReturn:
    raise BadInput(message)


def _debug_wanted() -> bool:
    return _STATE.debug or os.environ.get("POLICYKIT_DEBUG", "") not in ("", "0")


def _run_command(group: click.Group, args: list[str], prog_name: str,
                 extra: dict[str, Any]) -> int:
    """Run the command line and turn every way it can end into one exit status.

    Not click's own ``main``: it maps Ctrl-C and a broken pipe to status 1, the status that
    means "decisions found"."""
    _STATE.debug, _STATE.out = False, None  # a fresh state per run (tests run many)
    try:
        with group.make_context(prog_name, args, **extra) as ctx:
            group.invoke(ctx)
        return EXIT_OK
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except SystemExit as exc:
        code = exc.code
        if code is None or isinstance(code, int):
            return code or EXIT_OK
        click.echo(f"error: {code}", err=True)
        return EXIT_BAD_INPUT
    except (KeyboardInterrupt, click.Abort):
        where = (f"{_STATE.out} was left as it was" if _STATE.out
                 else "the output is partial")
        click.echo(f"\npolicykit: interrupted; {where}", err=True)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `policykit policies | head`: the reader left; not an error of ours.
        _silence_stdout()
        return EXIT_OK
    except Exception as exc:
        if _debug_wanted():
            traceback.print_exc()
        message = " ".join(str(exc).split())[:200]
        click.echo(f"policykit: internal error (a bug in policykit {__version__}, exit "
                   f"{EXIT_INTERNAL_ERROR}): {type(exc).__name__}: {message} — please report "
                   "it to the policykit maintainers with the command line and the traceback "
                   "printed by --debug", err=True)
        return EXIT_INTERNAL_ERROR


class _Group(click.Group):
    """A click group whose ``main`` returns policykit's exit statuses (see the module doc)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True,
             windows_expand_args: bool = True, **extra: Any) -> Any:
        self._main_shell_completion(extra, prog_name or "policykit", complete_var)
        argv = list(args) if args is not None else sys.argv[1:]
        code = _run_command(self, argv, prog_name or "policykit", extra)
        if standalone_mode:
            sys.exit(code)
        return code


def _set_debug(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        _STATE.debug = True


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # Which build runs: docs/contributing.md, "A compiled build".
    if value and not ctx.resilient_parsing:
        from ._compiled import backend

        click.echo(f"policykit {__version__} ({backend()})")
        ctx.exit()


_POLICY_HELP = ("A policy file (YAML, TOML or JSON) or the id of one standard policy; "
                "repeat it to combine several (one policy id twice exits 2). "
                "Default: the whole standard pack with its defaults.")
_UNTIL_HELP = ("Advance event time to T: an ISO-8601 date-time with offset "
               "(2026-04-01T00:00:00+08:00) or a date (2026-04-01, the start of that day in "
               "the policy calendar's zone). Deadlines due at or before T fire; later events "
               "are not evaluated. A T policykit cannot read exits 2.")
_ASSUME_TZ_HELP = ("The zone (e.g. Asia/Shanghai) of times written without a UTC offset, "
                   "as HR and spreadsheet exports write them (2026/3/2 8:31). Without it such "
                   "records are quarantined.")
_ALLOW_QUARANTINE_HELP = ("Accept quarantined records: they are still reported on stderr, "
                          "but no longer make the exit status 3 (unless every record was "
                          "quarantined).")


# audit()'s parameters as the command line spells them, for its errors.
_OPTIONS = {"until": "--until", "assume_tz": "--assume-tz", "format": "--input-format",
            "backend": "--backend", "encoding": "--encoding", "policy": "--policy"}


def _combined_policies(policy: Sequence[str]) -> Any:
    """What repeated ``--policy`` options name: None (the standard pack), one spec as
    written, or several joined into one set (one id twice exits 2 naming both)."""
    if len(policy) <= 1:
        return policy[0] if policy else None
    from .policyfile import resolve_many

    try:
        return resolve_many(list(policy), names=[f"--policy {p}" for p in policy])
    except PolicyKitError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{exc.filename or ', '.join(policy)}: {exc.strerror or exc}")


def _run_audit(events: str, policy: Sequence[str], until: str | None, backend: str,
               input_format: str | None, progress: bool | float,
               assume_tz: str | None = None, encoding: str | None = None) -> Any:
    """``audit()`` with every input failure turned into exit status 2. ``until`` goes to
    ``audit()`` as written: the library decides what a valid instant is."""
    from .audit import audit

    policies = _combined_policies(policy)
    source: Any = events
    if events == "-":
        source = sys.stdin.buffer.read()
    with _input_errors(events):
        return audit(source, policies, until, backend=backend, progress=progress,
                     format=input_format, assume_tz=assume_tz, encoding=encoding)


@contextlib.contextmanager
def _input_errors(events: str) -> Iterator[None]:
    """Every input failure of an audit run turned into exit status 2."""
    try:
        yield
    except PolicyKitError as exc:  # MissingDependencyError included: it names the extra
        _fail(_as_option(exc))
    except OSError as exc:
        _fail(f"{events}: {exc.strerror or exc}")
    except ImportError as exc:  # an optional import not (yet) behind policykit._optional
        _fail(f"{exc}; install it with: pip install 'policykit[audit]'")


def _as_option(exc: PolicyKitError) -> str:
    """The error's message, naming a parameter of audit() as the command line spells it
    (``--until: ...`` rather than ``until: ...``)."""
    text = str(exc)
    name = getattr(exc, "name", None)
    if not isinstance(name, str) or name not in _OPTIONS or not text.startswith(f"{name}: "):
        return text
    return _OPTIONS[name] + text[len(name):]


def _report_stderr(report: Any, limit: int = 20) -> None:
    """Counts and quarantined records (with their line numbers) on stderr."""
    click.echo(f"policykit: {report.counts}", err=True)
    _report_quarantine(report, limit)
    if report.counts.after_until:
        click.echo(f"note: {report.counts.after_until} event(s) after --until were not "
                   "evaluated", err=True)


def _report_quarantine(report: Any, limit: int = 20) -> None:
    for note in getattr(report, "notes", ()):
        click.echo(f"note: {note}", err=True)
    for q in report.quarantine[:limit]:
        click.echo(f"quarantined: {q}", err=True)
    if len(report.quarantine) > limit:
        click.echo(f"quarantined: ... and {len(report.quarantine) - limit} more "
                   "(all of them in the HTML report)", err=True)


def _quarantine_status(report: Any, allow: bool, source: str) -> int | None:
    """EXIT_QUARANTINED when quarantined records make the run's answer incomplete: any, unless
    ``allow``; all of them (nothing was audited) even with ``allow``."""
    counts = report.counts
    if not counts.quarantined:
        return None
    if counts.read and counts.quarantined >= counts.read:
        click.echo(f"error: every record of {source} was quarantined ({counts.quarantined}); "
                   "nothing was audited", err=True)
        return EXIT_QUARANTINED
    if allow:
        return None
    click.echo(f"policykit: {counts.quarantined} record(s) quarantined: exit status "
               f"{EXIT_QUARANTINED} (--allow-quarantine accepts them)", err=True)
    return EXIT_QUARANTINED


def _check_audited(report: Any, until: str | None, events: str) -> None:
    """Exit 2 when --until is before every valid event: a mistyped year must not look like
    a clean audit."""
    counts = report.counts
    if counts.valid and counts.after_until == counts.valid:
        _fail(f"--until {until}: every one of the {counts.valid} valid events of {events} is "
              "after it, so nothing was audited; give a horizon after the events")


def _progress_choice(flag: bool | None) -> bool | float:
    if flag is not None:
        return flag
    # Auto: only on a terminal, and only once the run takes a second (long inputs).
    return 1.0 if sys.stderr.isatty() else False


def _write_output(out: str | None, write: Callable[[IO[str]], None]) -> None:
    """Run ``write`` on stdout, or on ``out`` written atomically, with the errors a
    command reports the same way whatever it writes."""
    try:
        if out is None:
            with click.open_file("-", "w", encoding="utf-8", lazy=False) as fh:
                write(fh)
        else:
            _write_atomically(out, write)
    except BrokenPipeError:
        # `policykit audit log | head`: the reader left. Not an error; the exit status
        # still says whether decisions were found.
        _silence_stdout()
    except PolicyKitError as exc:  # MissingDependencyError for charts: names the extra
        _fail(str(exc))
    except OSError as exc:
        _fail(f"cannot write {out or 'stdout'}: {exc.strerror or exc}")
    except ImportError as exc:  # an optional import not (yet) behind policykit._optional
        _fail(f"{exc}; install it with: pip install 'policykit[audit]'")


def _write_atomically(path: str, write: Callable[[IO[str]], None]) -> None:
    """Write ``path`` through a temporary file in its directory, renamed over it only once
    everything is written: a failed or interrupted run leaves the previous file intact and
    no temporary file behind."""
    # Through symlinks to the file they name; a device, FIFO or other special file (e.g.
    # /dev/null, a pipe) is written in place, since renaming over it would replace it.
    target = os.path.realpath(path)
    try:
        info = os.stat(target)
        if not stat.S_ISREG(info.st_mode) or os.path.abspath(path).startswith(
                ("/dev/", "/proc/")):
            with open(target, "w", encoding="utf-8") as fh:
                write(fh)
            return
        mode = info.st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(target),
                               prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _stdout_is_terminal() -> bool:
    isatty = getattr(sys.stdout, "isatty", None)
    return bool(isatty and isatty())


def _money(value: Decimal) -> str:
    return f"{value:,.2f}"


def _summary_table(report: Any) -> str:
    """Decisions by policy, rule and kind with the money that stands (final, not superseded),
    as an aligned plain-text table for a terminal."""
    # Every decision made is counted (``decisions``), those that stand in ``final``, and
    # only the money that stands is added up: the table shows the trail and its result.
    rows = report.summary_rows(("policy", "rule", "kind"), trail=True)
    if not rows:
        return f"No decisions ({report.counts.evaluated} events evaluated).\n"
    totals: dict[str, Decimal] = {}
    for d in report.decisions:
        if d.amount is not None and d.status == "final" and not report.is_superseded(d):
            cur = d.currency or ""
            totals[cur] = totals.get(cur, Decimal(0)) + d.amount
    head = ("policy", "rule", "kind", "decisions", "final", "subjects", "amount")
    table = [head] + [
        (r["policy"], r["rule"], r["kind"], str(r["decisions"]), str(r["final"]),
         str(r["subjects"]), "" if r["amount"] is None else _money(r["amount"]))
        for r in rows]
    money = "; ".join(f"{_money(v)} {c}".strip() for c, v in sorted(totals.items()))
    table.append(("total", "", "", str(sum(r["decisions"] for r in rows)),
                  str(sum(r["final"] for r in rows)), "", money))
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    right = {3, 4, 5, 6}

    def line(row: Sequence[str]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]
        return "  ".join(cells).rstrip()

    out = [line(table[0]), "  ".join("-" * w for w in widths)]
    out += [line(row) for row in table[1:-1]]
    out += ["  ".join("-" * w for w in widths), line(table[-1])]
    out.append("")
    out.append("amount: money of final decisions not superseded by a later one.")
    out.append("A summary for the terminal: --format jsonl|csv|html, -o FILE or a pipe give "
               "the decisions.")
    return "\n".join(out) + "\n"


@click.group(cls=_Group,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the version (and pure Python or compiled).")
@click.option("--debug", is_flag=True, expose_value=False, is_eager=True, callback=_set_debug,
              help="On an internal error, print the traceback (also: POLICYKIT_DEBUG=1).")
def cli() -> None:
    """policykit: events in, explainable decisions out.

    Audit a log of service-operations events (JSON Lines, JSON, CSV, Parquet) against the
    standard policy pack or your own policy file.

    \b
    Examples:
      policykit audit events.jsonl --until 2026-04-01T00:00:00+08:00
      policykit audit events.csv --format html --out report.html
      policykit diff events.jsonl --new proposal.yaml --until 2026-04-01
      policykit check my-policy.yaml
      policykit policies
      policykit explain events.jsonl d-1ef379348260cb1a9ee2

    \b
    Exit status:
      0    nothing found (no decision; valid policy file; all scenarios pass)
      1    decisions found (audit), decisions differ (diff), a scenario failed (test)
      2    usage error or unreadable input (file, policy, option, missing package)
      3    records quarantined (--allow-quarantine accepts them); wins over 1
      70   internal error (a bug; --debug prints the traceback)
      130  interrupted (Ctrl-C): stdout is partial, an --out file is left as it was
    """


@cli.command()
@click.argument("events", metavar="EVENTS")
@click.option("--policy", "-p", metavar="FILE", multiple=True, help=_POLICY_HELP)
@click.option("--until", metavar="T", help=_UNTIL_HELP)
@click.option("--assume-tz", metavar="ZONE", help=_ASSUME_TZ_HELP)
@click.option("--encoding", metavar="NAME",
              help="The text encoding of a CSV EVENTS file (e.g. gbk, cp1252) when it has "
                   "no byte-order mark and is not UTF-8 (default: read as GB18030, with a "
                   "note on stderr).")
@click.option("--format", "-f", "fmt", type=click.Choice(["jsonl", "csv", "html"]),
              help="Output: decisions as JSON Lines (the default) or CSV, or a "
                   "self-contained HTML report. Without it, a terminal gets a summary table.")
@click.option("--out", "-o", metavar="FILE",
              help="Write here instead of stdout; the file is replaced only when the whole "
                   "output is written (a failed run leaves the previous one intact).")
@click.option("--backend", type=click.Choice(["native", "durable"]), default="native",
              show_default=True, help="The evaluator.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS),
              help="Format of EVENTS when its name does not say (default: by extension; '-' "
                   "reads JSON Lines from stdin).")
@click.option("--fail-on-decisions/--no-fail-on-decisions", default=True,
              help="Exit 1 when the audit produced a decision (the default; "
                   "--no-fail-on-decisions exits 0 instead).")
@click.option("--fail-kinds", metavar="KINDS",
              help="Only these decision kinds make the exit status 1, comma-separated "
                   "(e.g. violation,fine).")
@click.option("--trail", is_flag=True,
              help="Write every decision (provisional, superseded and revocations "
                   "included), each with its status, instead of only those that stand.")
@click.option("--csv-bom", is_flag=True,
              help="With --format csv: start with a UTF-8 byte-order mark, so Excel reads "
                   "the Chinese text right.")
@click.option("--allow-quarantine", is_flag=True, help=_ALLOW_QUARANTINE_HELP)
@click.option("--strict", is_flag=True, hidden=True,
              help="Deprecated: quarantined records now exit 3 without it.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: on a terminal, for long inputs).")
@click.option("--quiet", "-q", is_flag=True, help="No counts on stderr (quarantined records "
              "are still reported).")
def audit(events: str, policy: tuple[str, ...], until: str | None, assume_tz: str | None,
          encoding: str | None, fmt: str | None, out: str | None, backend: str,
          input_format: str | None,
          fail_on_decisions: bool, fail_kinds: str | None, trail: bool, csv_bom: bool,
          allow_quarantine: bool, strict: bool, progress: bool | None, quiet: bool) -> None:
    """Audit EVENTS and write the decisions.

    Invalid records never stop the audit: each is quarantined and reported on stderr with
    its line number, and the counts of read, valid, duplicate and quarantined records are
    printed there.

    \b
    Exit status:
      0    no decision (or none of --fail-kinds)
      1    decisions found
      2    usage error or unreadable input (EVENTS, --policy, --until, a missing package)
      3    records quarantined, unless --allow-quarantine; wins over 1. An input whose
           every record was quarantined exits 3 even with --allow-quarantine
      70   internal error; 130 interrupted

    \b
    Examples:
      policykit audit events.jsonl
      policykit audit events.jsonl --until 2026-04-01 -o decisions.jsonl
      policykit audit events.parquet --policy acme.yaml --format csv -o decisions.csv
      policykit audit events.jsonl --format html -o report.html
      policykit audit events.jsonl --fail-kinds violation,fine
      cat events.jsonl | policykit audit - --policy lateness-deduction
    """
    from .models.decisions import DECISION_KINDS

    kinds: set[str] | None = None
    if fail_kinds:
        if not fail_on_decisions:
            raise click.BadParameter("has no effect with --no-fail-on-decisions",
                                     param_hint="--fail-kinds")
        kinds = {k.strip() for k in fail_kinds.split(",") if k.strip()}
        unknown = kinds - set(DECISION_KINDS)
        if unknown:
            raise click.BadParameter(f"unknown kind(s) {', '.join(sorted(unknown))}; kinds are "
                                     + ", ".join(DECISION_KINDS), param_hint="--fail-kinds")
    if strict:
        if allow_quarantine:
            raise click.UsageError("--strict and --allow-quarantine contradict each other")
        click.echo("note: --strict is deprecated and no longer needed: quarantined records "
                   f"exit {EXIT_QUARANTINED} by default", err=True)
    if csv_bom and fmt != "csv":
        raise click.UsageError("--csv-bom goes with --format csv")
    if out in ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        # Standard output as it is (a pipe, or a file opened for appending by the shell):
        # reopening it by name would truncate the file or fail on the pipe.
        out = None
    _STATE.out = out
    report = _run_audit(events, policy, until, backend, input_format,
                        _progress_choice(progress), assume_tz, encoding)
    _check_audited(report, until, events)
    as_table = fmt is None and out is None and _stdout_is_terminal()
    fmt = fmt or "jsonl"

    def write(fh: IO[str]) -> None:
        if as_table:
            fh.write(_summary_table(report))
        elif fmt == "jsonl":
            report.write_jsonl(fh, trail=trail)
        elif fmt == "csv":
            report.write_csv(fh, trail=trail, bom=csv_bom)
        else:
            fh.write(report.to_html(trail=trail))

    _write_output(out, write)
    if quiet:
        _report_quarantine(report)
    else:
        _report_stderr(report)
        if out:
            written = len(report.trail if trail else report.decisions)
            click.echo(f"policykit: wrote {written} decisions ({fmt}) to {out}", err=True)
    if report.counts.read == 0:
        click.echo(f"note: {events} holds no records", err=True)
    status = _quarantine_status(report, allow_quarantine, events)
    if status is not None:
        sys.exit(status)
    if fail_on_decisions and any(kinds is None or d.kind in kinds for d in report.decisions):
        sys.exit(EXIT_DECISIONS)
    sys.exit(EXIT_OK)


def _side_policies(option: str, spec: str | None) -> Any:
    """The policy set ``--old``/``--new`` names; exit 2 naming the option when it cannot."""
    from .policyfile import resolve_policies

    try:
        return resolve_policies(spec)
    except PolicyKitError as exc:
        text = str(exc)
        _fail(option + text[len("policy"):] if text.startswith("policy: ")
              else f"{option}: {text}")
    except OSError as exc:
        _fail(f"{option} {spec}: {exc.strerror or exc}")


@cli.command()
@click.argument("events", metavar="EVENTS")
@click.option("--old", metavar="FILE",
              help="The policies in force: a policy file or the id of one standard policy "
                   "(default: the whole standard pack with its defaults).")
@click.option("--new", metavar="FILE", required=True,
              help="The proposed policies, as --old.")
@click.option("--until", metavar="T", help=_UNTIL_HELP)
@click.option("--assume-tz", metavar="ZONE", help=_ASSUME_TZ_HELP)
@click.option("--encoding", metavar="NAME", help="As for audit.")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "jsonl", "csv"]),
              help="Output: the tables a terminal gets by default, or one row per changed "
                   "decision and per employee and month as JSON Lines (the default off a "
                   "terminal) or CSV.")
@click.option("--out", "-o", metavar="FILE", help="As for audit (written atomically).")
@click.option("--backend", type=click.Choice(["native", "durable"]), default="native",
              show_default=True, help="The evaluator (both sides).")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS), help="As for audit.")
@click.option("--fail-on-differences/--no-fail-on-differences", default=True,
              help="Exit 1 when some decision differs (the default; "
                   "--no-fail-on-differences exits 0 instead).")
@click.option("--csv-bom", is_flag=True, help="As for audit.")
@click.option("--allow-quarantine", is_flag=True, help=_ALLOW_QUARANTINE_HELP)
@click.option("--progress/--no-progress", default=None, help="As for audit.")
@click.option("--quiet", "-q", is_flag=True, help="No counts on stderr.")
def diff(events: str, old: str | None, new: str, until: str | None, assume_tz: str | None,
         encoding: str | None, fmt: str | None, out: str | None, backend: str,
         input_format: str | None, fail_on_differences: bool, csv_bom: bool,
         allow_quarantine: bool, progress: bool | None, quiet: bool) -> None:
    """The impact of a rulebook change: audit EVENTS under the --old and the --new policies
    and write what differs — decisions only one side makes, decisions of one case whose
    kind, outcome or amount changed (matched by policy, rule, subject and case, not by id),
    and each employee's money per month under both sides with the difference.

    EVENTS is read once; each side runs the audit's pipeline, so its decisions are those
    `policykit audit --policy` gives.

    \b
    Exit status:
      0    no decision differs (or --no-fail-on-differences)
      1    some decision differs
      2    usage error or unreadable input (EVENTS, --old, --new, --until, a package)
      3    records quarantined, unless --allow-quarantine; wins over 1
      70   internal error; 130 interrupted

    \b
    Examples:
      policykit diff events.jsonl --new strict.yaml --until 2026-04-01
      policykit diff events.jsonl --old acme.yaml --new proposal.yaml --format csv -o d.csv
    """
    if csv_bom and fmt != "csv":
        raise click.UsageError("--csv-bom goes with --format csv")
    if out in ("-", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"):
        out = None  # standard output as it is (see audit)
    _STATE.out = out
    from .audit import diff as run_diff

    before, after = _side_policies("--old", old), _side_policies("--new", new)
    source: Any = sys.stdin.buffer.read() if events == "-" else events
    with _input_errors(events):
        report = run_diff(source, before, after, until, backend=backend,
                          progress=_progress_choice(progress), format=input_format,
                          assume_tz=assume_tz, encoding=encoding)
    for side in (report.old, report.new):
        _check_audited(side, until, events)
    fmt = fmt or ("table" if out is None and _stdout_is_terminal() else "jsonl")

    def write(fh: IO[str]) -> None:
        if fmt == "table":
            fh.write(report.render())
        elif fmt == "jsonl":
            report.write_jsonl(fh)
        else:
            report.write_csv(fh, bom=csv_bom)

    _write_output(out, write)
    _report_quarantine(report)
    if not quiet:
        click.echo(f"policykit: {report.old.counts.read} records read; old: "
                   f"{len(report.old.decisions)} decisions, new: "
                   f"{len(report.new.decisions)}; {report.summary()}", err=True)
        if report.old.counts.after_until:
            click.echo(f"note: {report.old.counts.after_until} event(s) after --until were "
                       "not evaluated", err=True)
        if out:
            click.echo(f"policykit: wrote the diff ({fmt}) to {out}", err=True)
    worst = max((report.old, report.new), key=lambda r: r.counts.quarantined)
    status = _quarantine_status(worst, allow_quarantine, events)
    if status is not None:
        sys.exit(status)
    sys.exit(EXIT_DECISIONS if fail_on_differences and report.differs else EXIT_OK)


@cli.command()
@click.argument("policy_files", metavar="POLICY_FILE...", nargs=-1, required=True)
def check(policy_files: tuple[str, ...]) -> None:
    """Validate POLICY_FILE (and the files it includes) and print what it defines, or the
    error with its location. Several files are checked as one set, as repeated --policy
    options combine them: one policy id in two files is an error naming both.

    An error names the file, the line, the path inside the document, the bad value, what
    was expected and the nearest valid name.

    \b
    Examples:
      policykit check acme.yaml
      policykit check policies/patrols.toml policies/lateness.yaml

    \b
    Exit status: 0 valid, 2 invalid or unreadable.
    """
    from .policy import _combine
    from .policyfile import load_policy

    try:
        policies = _combine((load_policy(f), f) for f in policy_files)
    except PolicyKitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:
        click.echo(f"error: {exc.filename or ', '.join(policy_files)}: {exc.strerror or exc}",
                   err=True)
        sys.exit(EXIT_BAD_INPUT)
    policy_file = ", ".join(policy_files)
    click.echo(f"ok: {policy_file}: {len(policies)} "
               f"polic{'y' if len(policies) == 1 else 'ies'}")
    for p in policies:
        rules = ", ".join(f"{s.id} {s.shape}" for s in p.specs)
        click.echo(f"  {p.id} v{p.version} ({p.clause}): {len(p.specs)} rules: {rules}")
        if len(p.versions) > 1:  # versions in force by date (docs/versions.md)
            from .policy import version_text

            click.echo(f"    versions: {version_text(p)}")
    sys.exit(EXIT_OK)


def _policy_set(policy: Any) -> Any:
    from .policyfile import resolve_policies

    try:
        return resolve_policies(policy)
    except PolicyKitError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{policy}: {exc.strerror or exc}")


def _one_line(text: str, limit: int = 110) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


@cli.command()
@click.option("--policy", "-p", metavar="FILE", multiple=True,
              help="List this file's policies instead (repeat to combine files).")
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Rules and full parameter docs.")
def policies(policy: tuple[str, ...], as_json: bool, verbose: bool) -> None:
    """List the standard pack: policy ids, titles, clauses and parameters with defaults.

    \b
    Examples:
      policykit policies
      policykit policies --verbose
      policykit policies --json | jq '.[].id'
    """
    chosen = _policy_set(_combined_policies(policy))
    if as_json:
        data = [{
            "id": p.id, "version": p.version, "title": p.title, "title_zh": p.title_zh,
            "clause": p.clause, "summary": p.summary, "parameters": p.parameters,
            "parameter_docs": p.parameter_docs,
            "rules": [{"id": s.id, "shape": s.shape, "title": s.title,
                       "title_zh": s.title_zh, "severity": s.severity,
                       "clause": s.clause or p.clause}
                      for s in p.specs],
        } for p in chosen]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    for p in chosen:
        click.echo(click.style(p.id, bold=True) + f"  v{p.version}  {p.title}"
                   + (f"  {p.title_zh}" if p.title_zh else "") + f"  ({p.clause})")
        if verbose:
            for s in p.specs:
                click.echo(f"    {s.id:<4} {s.shape:<12} {s.title}"
                           + (f"  {s.title_zh}" if s.title_zh else ""))
        if p.parameters:
            width = max(len(k) for k in p.parameters)
            for name, value in p.parameters.items():
                doc = p.parameter_docs.get(name, "")
                doc = " ".join(doc.split()) if verbose else _one_line(doc, 80)
                shown = json.dumps(value, ensure_ascii=False, default=str)
                click.echo(f"    {name:<{width}} = {shown}" + (f"   # {doc}" if doc else ""))
        click.echo("")


_SCHEMA_PARTS = ["all", "event", "decision", "policy"]


@cli.command()
@click.argument("what", metavar="[PART]", required=False, type=click.Choice(_SCHEMA_PARTS))
@click.option("--part", type=click.Choice(_SCHEMA_PARTS), default=None,
              help="Same as PART: all (the default), event, decision or policy.")
@click.option("--policy", "-p", metavar="FILE", multiple=True,
              help="Policy files whose declared event types (their events: section) the "
                   "wire format includes.")
def schema(what: str | None, part: str | None, policy: tuple[str, ...]) -> None:
    """Print a JSON Schema: of the wire format (PART all, the default: an event or a
    decision; event; decision), or of policy files (policy, draft-07 for editors).

    \b
    Examples:
      policykit schema > policykit.schema.json
      policykit schema event
      policykit schema policy > policy.schema.json
      policykit schema event -p elevator.yaml
    """
    from ._schema import policy_schema, wire_schema

    if policy:  # loading a file registers the event types it declares
        from .policyfile import resolve_policies

        try:
            resolve_policies(_combined_policies(policy))
        except PolicyKitError as exc:
            _fail(str(exc))

    if what is not None and part is not None and what != part:
        _fail(f"schema: PART {what} and --part {part} disagree; give one")
    chosen = what or part or "all"
    data = policy_schema() if chosen == "policy" else wire_schema(chosen)
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@cli.command("events")
@click.argument("types", metavar="[TYPE...]", nargs=-1)
@click.option("--policy", "-p", metavar="FILE", multiple=True,
              help="Policy files whose declared event types (their events: section) the "
                   "reference includes, and whose policies it lists as readers.")
def events_cmd(types: tuple[str, ...], policy: tuple[str, ...]) -> None:
    """Print the event reference in Markdown: every event type this process accepts, the
    built-in ones and those installed plugins (or the application) registered, with their
    fields, the policies of the installed packs that read them and a valid example. TYPE
    names the types to show (default: all). docs/events.md is the same page for the built-in
    types.

    \b
    Examples:
      policykit events > events.md
      policykit events elevator.fault elevator.repaired
      policykit events -p elevator.yaml
    """
    from . import _eventdoc
    from .errors import nearest
    from .models import EVENT_TYPES, registered_event_types
    from .policyfile import _installed_packs

    files = None
    if policy:  # loading a file registers the event types it declares
        from .policyfile import resolve_policies

        try:
            files = resolve_policies(_combined_policies(policy))
        except PolicyKitError as exc:
            _fail(str(exc))

    for name in types:
        if name not in EVENT_TYPES:
            hint = nearest(name, sorted(EVENT_TYPES))
            _fail(f"events: unknown event type {name!r}"
                  + (f"; did you mean {hint!r}?" if hint else "")
                  + " (policykit events lists them all)")
    models = {n: m for n, m in EVENT_TYPES.items() if not types or n in types}
    packs, failed = _installed_packs()
    for name, why in failed.items():  # a plugin's bug: the reference lists the rest
        click.echo(f"policykit: pack {name!r} not loaded: {why}", err=True)
    if files is not None:
        packs[", ".join(policy)] = files
    click.echo(_eventdoc.page(models, packs, links=False, generated_by="policykit events",
                              registered=frozenset(registered_event_types()) & set(models),
                              selected=bool(types)),
               nl=False)


@cli.command()
@click.argument("events", metavar="EVENTS")
@click.argument("decision_id", metavar="DECISION_ID")
@click.option("--policy", "-p", metavar="FILE", multiple=True, help=_POLICY_HELP)
@click.option("--until", metavar="T", help="As for audit.")
@click.option("--assume-tz", metavar="ZONE", help="As for audit.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS))
@click.option("--json", "as_json", is_flag=True, help="The explanation as JSON.")
@click.option("--allow-quarantine", is_flag=True, help=_ALLOW_QUARANTINE_HELP)
def explain(events: str, decision_id: str, policy: tuple[str, ...], until: str | None,
            assume_tz: str | None, input_format: str | None, as_json: bool,
            allow_quarantine: bool) -> None:
    """Explain one decision of auditing EVENTS: the rule, its parameters, the evidence
    events in time order, the figures and the deadline or window.

    Run it with the same --policy and --until as the audit: decision ids are deterministic,
    so the same inputs give the same id. A unique prefix of the id is enough.

    Exit status: 0 explained; 2 bad input or no such decision; 3 records were quarantined
    (the evidence may be incomplete; --allow-quarantine accepts them).

    \b
    Examples:
      policykit explain events.jsonl d-1ef379348260cb1a9ee2
      policykit explain events.jsonl d-1ef3 --until 2026-04-01T00:00:00+08:00
    """
    report = _run_audit(events, policy, until, "native", input_format, False, assume_tz)
    try:
        explanation = report.explain(decision_id)
    except PolicyKitError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(explanation.render())
    sys.exit(_quarantine_status(report, allow_quarantine, events) or EXIT_OK)


@cli.command("why-not")
@click.argument("events", metavar="EVENTS")
@click.argument("subject", metavar="SUBJECT")
@click.argument("policy_id", metavar="POLICY")
@click.argument("rule", metavar="RULE")
@click.option("--policy", "-p", "policy_file", metavar="FILE", multiple=True,
              help=_POLICY_HELP)
@click.option("--until", metavar="T", help="As for audit.")
@click.option("--assume-tz", metavar="ZONE", help="As for audit.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS))
@click.option("--allow-quarantine", is_flag=True, help=_ALLOW_QUARANTINE_HELP)
def why_not(events: str, subject: str, policy_id: str, rule: str,
            policy_file: tuple[str, ...],
            until: str | None, assume_tz: str | None, input_format: str | None,
            allow_quarantine: bool) -> None:
    """Why RULE of POLICY did not fire for SUBJECT: the subject's events the rule reads,
    what each was checked against, and how close it came.

    Exit status: 0 answered; 2 bad input; 3 records were quarantined (one of them may be
    why; --allow-quarantine accepts them).

    \b
    Examples:
      policykit why-not events.jsonl E7 first-responder R2
      policykit why-not events.jsonl employee:E7 lateness-deduction R1
    """
    report = _run_audit(events, policy_file, until, "native", input_format, False,
                        assume_tz)
    try:
        click.echo(report.why_not(subject, policy_id, rule).render())
    except PolicyKitError as exc:
        _fail(str(exc))
    sys.exit(_quarantine_status(report, allow_quarantine, events) or EXIT_OK)


@cli.command("test")
@click.argument("path", metavar="PATH")
@click.option("--policy", "-p", "policy", metavar="FILE", multiple=True,
              help="Run the scenarios against this policy file instead of the policies they "
                   "name (named ids the file holds select among its policies); repeat to "
                   "combine files.")
@click.option("--junit-xml", "junit_xml", metavar="PATH",
              help="Also write a JUnit XML report (one testcase per scenario) to PATH.")
@click.option("--min-coverage", "min_coverage", metavar="PCT",
              type=click.FloatRange(0, 100),
              help="Exit 1 when fewer than PCT percent of the rules run fired in some "
                   "scenario (the rule-coverage report).")
def test_cmd(path: str, policy: tuple[str, ...], junit_xml: str | None,
             min_coverage: float | None) -> None:
    """Run scenario files (given these events, expect these decisions) under PATH.

    \b
    Examples:
      policykit test scenarios/
      policykit test scenarios/lateness.yaml
      policykit test scenarios/ --policy my-policies.yaml --min-coverage 80
      policykit test scenarios/ --junit-xml reports/scenarios.xml

    Exit status: 0 all pass, 1 a scenario failed or coverage is below --min-coverage,
    2 bad input.
    """
    try:
        # Imported by name: the scenario runner is another module's, and may be absent.
        scenarios = importlib.import_module("policykit.testing.scenarios")
    except ImportError:
        _fail("`policykit test` needs the scenario runner (policykit.testing.scenarios), "
              "which this installation does not have")
    run_path = getattr(scenarios, "run_path", None)
    if run_path is None:
        _fail("policykit.testing.scenarios has no run_path(); the scenario runner is "
              "incomplete in this installation")
    if not Path(path).exists():
        _fail(f"{path}: no such file or directory")
    for file in policy:
        if not Path(file).is_file():
            _fail(f"--policy {file}: no such policy file")
    try:
        result = run_path(path, override=_combined_policies(policy)) if policy \
            else run_path(path)
    except PolicyKitError as exc:
        _fail(str(exc))
    click.echo(result.render())
    if junit_xml is not None:
        try:
            target = Path(junit_xml)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(result.junit_xml(), encoding="utf-8")
        except OSError as exc:
            _fail(f"--junit-xml {junit_xml}: {exc.strerror or exc}")
    status = EXIT_OK if result.ok else EXIT_DECISIONS
    if min_coverage is not None:
        percent = result.coverage.ratio * 100
        if percent < min_coverage:
            click.echo(f"rule coverage {percent:.1f}% is below --min-coverage "
                       f"{min_coverage:g}%", err=True)
            status = EXIT_DECISIONS
    sys.exit(status)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe is quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``policykit`` command; returns the exit status."""
    code: int = cli.main(args=list(argv) if argv is not None else None, prog_name="policykit",
                         standalone_mode=False)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
