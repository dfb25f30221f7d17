"""Generate the event reference (docs/events.md) from the event models themselves.

Every built-in event type, grouped by area (the part of the type before the dot), with each
field's name, type, whether it is required and its default — all read off the pydantic
models — the policies of the standard pack whose rules read the type (each rule's
``event_types()``), and a JSON example built by ``policykit.testing.EventFactory`` and
validated with ``policykit.parse_event`` (a broken example fails the build). So the
reference cannot drift from the code. The renderer is ``policykit/_eventdoc.py``, which
``policykit events`` prints with the application's registered types as well:

    python docs/gen_events.py           # write the page
    python docs/gen_events.py --check   # exit 1 if the committed page is stale (CI)

It is also an mkdocs hook (``hooks:`` in mkdocs.yml): ``mkdocs build`` regenerates the page
first.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
OUT = DOCS / "events.md"

try:
    import policykit  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

from policykit import _eventdoc, standard_pack  # noqa: E402
from policykit.models.events import builtin_models  # noqa: E402


def page() -> str:
    """The page: the built-in types only, so an installed plugin never changes it."""
    models = {m.model_fields["type"].default: m for m in builtin_models()}
    return _eventdoc.page(models, {"standard": standard_pack()})


def write(check: bool = False, out: Path = OUT) -> bool:
    """Write the page if it changed; with ``check``, write nothing. True if it was stale."""
    text = page()
    stale = not out.exists() or out.read_text(encoding="utf-8") != text
    if stale and not check:
        out.write_text(text, encoding="utf-8")
    return stale


# --- mkdocs hook ------------------------------------------------------------------------------


def on_pre_build(config: Any) -> None:
    write()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the page is stale instead of writing")
    args = parser.parse_args(argv)
    stale = write(check=args.check)
    if stale:
        print(("stale: " if args.check else "wrote: ") + str(OUT.relative_to(ROOT)))
    if args.check and stale:
        print("run: python docs/gen_events.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
