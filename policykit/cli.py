"""The ``policykit`` command: audit event logs, check policy files, list the standard pack,
print the wire format's JSON Schema, explain decisions and run scenario tests.

Exit status: 0 clean; 1 decisions found (only with ``--fail-on-decisions``) or a failing
scenario test; 2 bad input (an unreadable events file, a bad policy file, a bad option).
Results go to stdout (or ``--out``); progress, counts and quarantined records to stderr, so
``policykit audit log.jsonl | jq`` always reads clean JSON Lines.
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
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn

import click

from . import __version__
from .errors import PolicyKitError

__all__ = ["EXIT_BAD_INPUT", "EXIT_DECISIONS", "EXIT_OK", "cli", "main"]

EXIT_OK = 0
EXIT_DECISIONS = 1
EXIT_BAD_INPUT = 2

_INPUT_FORMATS = ("jsonl", "json", "csv", "parquet")


class BadInput(click.ClickException):
    """Bad input: printed as ``error: ...`` on stderr, exit status 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _fail(message: str) -> NoReturn:
    raise BadInput(message)


def _until(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from .audit import parse_instant

    try:
        return parse_instant(value)
    except PolicyKitError:
        raise click.BadParameter(
            f"{value!r} has no UTC offset or is not ISO-8601; write it with an offset, "
            "e.g. 2026-04-01T00:00:00+08:00 (naive times are ambiguous)") from None


_POLICY_HELP = ("A policy file (YAML, TOML or JSON) or the id of one standard policy. "
                "Default: the whole standard pack with its defaults.")


def _run_audit(events: str, policy: str | None, until: datetime | None, backend: str,
               input_format: str | None, progress: bool | float) -> Any:
    """``audit()`` with every input failure turned into exit status 2."""
    from .audit import audit

    source: Any = events
    if events == "-":
        source = sys.stdin.buffer.read()
    try:
        return audit(source, policy, until, backend=backend, progress=progress,
                     format=input_format)
    except PolicyKitError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(f"{events}: {exc.strerror or exc}")
    except ImportError as exc:
        _fail(f"{exc}; install the audit extras: pip install 'policykit[audit]'")


def _report_stderr(report: Any, limit: int = 20) -> None:
    """Counts and quarantined records (with their line numbers) on stderr."""
    click.echo(f"policykit: {report.counts}", err=True)
    for q in report.quarantine[:limit]:
        click.echo(f"quarantined: {q}", err=True)
    if len(report.quarantine) > limit:
        click.echo(f"quarantined: ... and {len(report.quarantine) - limit} more "
                   "(all of them in the HTML report)", err=True)
    if report.counts.after_until:
        click.echo(f"note: {report.counts.after_until} event(s) after --until were not "
                   "evaluated", err=True)


def _progress_choice(flag: bool | None) -> bool | float:
    if flag is not None:
        return flag
    # Auto: only on a terminal, and only once the run takes a second (long inputs).
    return 1.0 if sys.stderr.isatty() else False


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(version=__version__, prog_name="policykit",
                      message="%(prog)s %(version)s")
def cli() -> None:
    """policykit: events in, explainable decisions out.

    Audit a log of service-operations events (JSON Lines, JSON, CSV, Parquet) against the
    standard policy pack or your own policy file.

    \b
    Examples:
      policykit audit events.jsonl --until 2026-04-01T00:00:00+08:00
      policykit audit events.csv --format html --out report.html
      policykit check my-policy.yaml
      policykit policies
      policykit explain events.jsonl d-1ef379348260cb1a9ee2

    Exit status: 0 clean, 1 decisions found (with --fail-on-decisions), 2 bad input.
    """


@cli.command()
@click.argument("events", metavar="EVENTS")
@click.option("--policy", "-p", metavar="FILE", help=_POLICY_HELP)
@click.option("--until", metavar="T", callback=_until,
              help="Advance event time to T (ISO-8601 with offset): deadlines due at or before "
                   "T fire; later events are not evaluated.")
@click.option("--format", "-f", "fmt", type=click.Choice(["jsonl", "csv", "html"]),
              default="jsonl", show_default=True, help="Output: decisions as JSON Lines or "
              "CSV, or a self-contained HTML report.")
@click.option("--out", "-o", metavar="FILE", help="Write here instead of stdout.")
@click.option("--backend", type=click.Choice(["native", "durable"]), default="native",
              show_default=True, help="The evaluator.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS),
              help="Format of EVENTS when its name does not say (default: by extension; '-' "
                   "reads JSON Lines from stdin).")
@click.option("--fail-on-decisions", is_flag=True,
              help="Exit 1 when the audit produced any decision (for CI gates).")
@click.option("--fail-kinds", metavar="KINDS",
              help="With --fail-on-decisions: only these decision kinds count, comma-separated "
                   "(e.g. violation,fine).")
@click.option("--strict", is_flag=True, help="Exit 2 when any record was quarantined.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar on stderr (default: on a terminal, for long inputs).")
@click.option("--quiet", "-q", is_flag=True, help="No counts on stderr (quarantined records "
              "are still reported).")
def audit(events: str, policy: str | None, until: datetime | None, fmt: str, out: str | None,
          backend: str, input_format: str | None, fail_on_decisions: bool,
          fail_kinds: str | None, strict: bool, progress: bool | None, quiet: bool) -> None:
    """Audit EVENTS and write the decisions.

    Invalid records never stop the audit: each is quarantined and reported on stderr with
    its line number, and the counts of read, valid, duplicate and quarantined records are
    printed there.

    \b
    Examples:
      policykit audit events.jsonl
      policykit audit events.jsonl --until 2026-04-01T00:00:00+08:00 -o decisions.jsonl
      policykit audit events.parquet --policy acme.yaml --format csv -o decisions.csv
      policykit audit events.jsonl --format html -o report.html
      policykit audit events.jsonl --fail-on-decisions --fail-kinds violation,fine
      cat events.jsonl | policykit audit - --policy lateness-deduction
    """
    from .models.decisions import DECISION_KINDS

    kinds: set[str] | None = None
    if fail_kinds:
        kinds = {k.strip() for k in fail_kinds.split(",") if k.strip()}
        unknown = kinds - set(DECISION_KINDS)
        if unknown:
            raise click.BadParameter(f"unknown kind(s) {', '.join(sorted(unknown))}; kinds are "
                                     + ", ".join(DECISION_KINDS), param_hint="--fail-kinds")
    report = _run_audit(events, policy, until, backend, input_format,
                        _progress_choice(progress))
    try:
        with click.open_file(out or "-", "w", encoding="utf-8", lazy=False) as fh:
            if fmt == "jsonl":
                report.write_jsonl(fh)
            elif fmt == "csv":
                report.write_csv(fh)
            else:
                fh.write(report.to_html())
    except BrokenPipeError:
        # `policykit audit log | head`: the reader left. Not an error; the exit status
        # still says whether decisions were found.
        _silence_stdout()
    except OSError as exc:
        _fail(f"cannot write {out or 'stdout'}: {exc.strerror or exc}")
    except ImportError as exc:
        _fail(f"{exc}; the HTML report needs matplotlib: pip install 'policykit[audit]'")
    if quiet:
        for q in report.quarantine[:20]:
            click.echo(f"quarantined: {q}", err=True)
    else:
        _report_stderr(report)
        if out:
            click.echo(f"policykit: wrote {len(report.decisions)} decisions ({fmt}) to {out}",
                       err=True)
    if strict and report.quarantine:
        sys.exit(EXIT_BAD_INPUT)
    if fail_on_decisions:
        found = [d for d in report.decisions if kinds is None or d.kind in kinds]
        if found:
            sys.exit(EXIT_DECISIONS)
    sys.exit(EXIT_OK)


@cli.command()
@click.argument("policy_file", metavar="POLICY_FILE")
def check(policy_file: str) -> None:
    """Validate POLICY_FILE and print what it defines, or the error with its location.

    An error names the file, the line, the path inside the document, the bad value, what
    was expected and the nearest valid name.

    \b
    Examples:
      policykit check acme.yaml
      policykit check policies/patrols.toml

    \b
    Exit status: 0 valid, 2 invalid or unreadable.
    """
    from .policyfile import load_policy

    try:
        policies = load_policy(policy_file)
    except PolicyKitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except OSError as exc:
        click.echo(f"error: {policy_file}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_BAD_INPUT)
    click.echo(f"ok: {policy_file}: {len(policies)} "
               f"polic{'y' if len(policies) == 1 else 'ies'}")
    for p in policies:
        rules = ", ".join(f"{s.id} {s.shape}" for s in p.specs)
        click.echo(f"  {p.id} v{p.version} ({p.clause}): {len(p.specs)} rules: {rules}")
    sys.exit(EXIT_OK)


def _policy_set(policy: str | None) -> Any:
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
@click.option("--policy", "-p", metavar="FILE", help="List this file's policies instead.")
@click.option("--json", "as_json", is_flag=True, help="Everything as JSON.")
@click.option("--verbose", "-v", is_flag=True, help="Rules and full parameter docs.")
def policies(policy: str | None, as_json: bool, verbose: bool) -> None:
    """List the standard pack: policy ids, titles, clauses and parameters with defaults.

    \b
    Examples:
      policykit policies
      policykit policies --verbose
      policykit policies --json | jq '.[].id'
    """
    chosen = _policy_set(policy)
    if as_json:
        data = [{
            "id": p.id, "version": p.version, "title": p.title, "title_zh": p.title_zh,
            "clause": p.clause, "summary": p.summary, "parameters": p.parameters,
            "parameter_docs": p.parameter_docs,
            "rules": [{"id": s.id, "shape": s.shape, "title": s.title,
                       "severity": s.severity, "clause": s.clause or p.clause}
                      for s in p.specs],
        } for p in chosen]
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    for p in chosen:
        click.echo(click.style(p.id, bold=True) + f"  v{p.version}  {p.title}"
                   + (f"  {p.title_zh}" if p.title_zh else "") + f"  ({p.clause})")
        if verbose:
            for s in p.specs:
                click.echo(f"    {s.id:<4} {s.shape:<12} {s.title}")
        if p.parameters:
            width = max(len(k) for k in p.parameters)
            for name, value in p.parameters.items():
                doc = p.parameter_docs.get(name, "")
                doc = " ".join(doc.split()) if verbose else _one_line(doc, 80)
                shown = json.dumps(value, ensure_ascii=False, default=str)
                click.echo(f"    {name:<{width}} = {shown}" + (f"   # {doc}" if doc else ""))
        click.echo("")


@cli.command()
@click.option("--part", type=click.Choice(["all", "event", "decision"]), default="all",
              show_default=True, help="The whole wire format, or one half.")
def schema(part: str) -> None:
    """Print the JSON Schema of the wire format (events and decisions).

    \b
    Examples:
      policykit schema > policykit.schema.json
      policykit schema --part event
    """
    from .models import json_schema

    data = json_schema()
    if part != "all":
        data = data[part]
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@cli.command()
@click.argument("events", metavar="EVENTS")
@click.argument("decision_id", metavar="DECISION_ID")
@click.option("--policy", "-p", metavar="FILE", help=_POLICY_HELP)
@click.option("--until", metavar="T", callback=_until, help="As for audit.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS))
@click.option("--json", "as_json", is_flag=True, help="The explanation as JSON.")
def explain(events: str, decision_id: str, policy: str | None, until: datetime | None,
            input_format: str | None, as_json: bool) -> None:
    """Explain one decision of auditing EVENTS: the rule, its parameters, the evidence
    events in time order, the figures and the deadline or window.

    Run it with the same --policy and --until as the audit: decision ids are deterministic,
    so the same inputs give the same id. A unique prefix of the id is enough.

    \b
    Examples:
      policykit explain events.jsonl d-1ef379348260cb1a9ee2
      policykit explain events.jsonl d-1ef3 --until 2026-04-01T00:00:00+08:00
    """
    report = _run_audit(events, policy, until, "native", input_format, False)
    try:
        explanation = report.explain(decision_id)
    except PolicyKitError as exc:
        _fail(str(exc))
    if as_json:
        click.echo(json.dumps(explanation.to_dict(), indent=2, ensure_ascii=False))
    else:
        click.echo(explanation.render())


@cli.command("why-not")
@click.argument("events", metavar="EVENTS")
@click.argument("subject", metavar="SUBJECT")
@click.argument("policy_id", metavar="POLICY")
@click.argument("rule", metavar="RULE")
@click.option("--policy", "-p", "policy_file", metavar="FILE", help=_POLICY_HELP)
@click.option("--until", metavar="T", callback=_until, help="As for audit.")
@click.option("--input-format", type=click.Choice(_INPUT_FORMATS))
def why_not(events: str, subject: str, policy_id: str, rule: str, policy_file: str | None,
            until: datetime | None, input_format: str | None) -> None:
    """Why RULE of POLICY did not fire for SUBJECT: the subject's events the rule reads,
    what each was checked against, and how close it came.

    \b
    Examples:
      policykit why-not events.jsonl E7 first-responder R2
      policykit why-not events.jsonl employee:E7 lateness-deduction R1
    """
    report = _run_audit(events, policy_file, until, "native", input_format, False)
    try:
        click.echo(report.why_not(subject, policy_id, rule).render())
    except PolicyKitError as exc:
        _fail(str(exc))


@cli.command("test")
@click.argument("path", metavar="PATH")
def test_cmd(path: str) -> None:
    """Run scenario files (given these events, expect these decisions) under PATH.

    \b
    Examples:
      policykit test scenarios/
      policykit test scenarios/lateness.yaml

    Exit status: 0 all pass, 1 a scenario failed, 2 bad input.
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
    try:
        result = run_path(path)
    except PolicyKitError as exc:
        _fail(str(exc))
    click.echo(result.render())
    sys.exit(EXIT_OK if result.ok else EXIT_DECISIONS)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush into a closed pipe is quiet."""
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``policykit`` command; returns the exit status."""
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="policykit",
                 standalone_mode=True)
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else EXIT_BAD_INPUT)
    except BrokenPipeError:
        # `policykit policies | head`: the reader left; not an error of ours.
        _silence_stdout()
        return EXIT_OK
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
