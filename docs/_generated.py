"""What the docs generators (gen_policies.py, gen_shapes.py) share: writing a directory of
generated pages, and the command line that writes or checks them."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def write_pages(wanted: dict[Path, str], out: Path, check: bool = False) -> list[Path]:
    """Write the pages of ``wanted`` that changed and delete the other pages of ``out``;
    with ``check``, write nothing and return the stale ones."""
    stale = []
    for path, text in wanted.items():
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for path in out.glob("*.md"):
        if path not in wanted:  # what it documented is gone
            stale.append(path)
            if not check:
                path.unlink()
    return stale


def main(doc: str | None, write: Callable[[bool], list[Path]], script: str, root: Path,
         argv: list[str] | None = None) -> int:
    """``python docs/<script>`` writes the pages; ``--check`` exits 1 if one is stale."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if a page is stale instead of writing")
    args = parser.parse_args(argv)
    stale = write(args.check)
    for path in stale:
        print(("stale: " if args.check else "wrote: ") + str(path.relative_to(root)))
    if args.check and stale:
        print(f"run: python docs/{script}", file=sys.stderr)
        return 1
    return 0
