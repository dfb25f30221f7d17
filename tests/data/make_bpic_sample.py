"""Write ``bpic-sample.csv``: a small SYNTHETIC incident log in the BPIC 2013 CSV format.

The real BPI Challenge 2013 log (Volvo IT Belgium,
doi:10.4121/uuid:3537c19d-6c64-4b1d-815d-915ab0e479da) is not part of the repository and
must not be copied into it, so the reader of
``bench/bpic.py`` is tested on this made-up log instead: the same 17 columns, byte-order mark
and CRLF lines, rows grouped by service request and in time order within each, every time
stamp ``+01:00`` as in the real export. The names, products, teams and times are invented
(seeded, so the file is the same on every run); the status sequences cover what the reader
maps — first owner, queued transfers, direct reassignments, level-only handovers, waits,
Resolved then Closed, a reopened request, Major-impact incidents and *Unmatched* rows.

    python tests/data/make_bpic_sample.py          # rewrites tests/data/bpic-sample.csv

tests/test_bpic.py checks that the committed file is what this script writes.
"""

from __future__ import annotations

import random
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "bpic-sample.csv"
SEED = 2013
REQUESTS = 36

COLUMNS = (
    "SR Number", "Change Date+Time", "Status", "Sub Status", "Activity", "Activity Level",
    "Involved ST Function Div", "Involved Org line 3", "Involved ST", "Involved ST 2",
    "ST Level", "SR Latest Impact", "Product", "Country", "Owner Country",
    "Owner First Name", "Resource",
)
# (country code, owner country as the export spells it, invented first names)
PEOPLE = (
    ("se", "Sweden", ("Alva", "Bror", "Cilla")),
    ("pl", "POLAND", ("Darek", "Ewa")),
    ("be", "Belgium", ("Fien", "Gust")),
    ("in", "INDIA", ("Hari", "Isha")),
)
TEAMS = {"L1": ("T1", "Org line C", "F_1"), "L2": ("T2 2nd", "Org line A", "F_2"),
         "L3": ("T3 3rd", "Org line B", "F_3"), "L2/L3": ("T23", "Org line B", "F_3")}
WAITS = ("In Progress", "Assigned", "Wait - User", "Wait", "Wait - Vendor")
OFFSET = timezone(timedelta(hours=1))


def _person(rng: random.Random) -> tuple[str, str, str]:
    code, country, names = rng.choice(PEOPLE)
    return code, country, rng.choice(names)


def _request(rng: random.Random, n: int, start: datetime) -> list[list[str]]:
    """One service request's rows, in time order."""
    sr = f"1-{500000000 + n * 7919}"
    impact = "Major" if n % 7 == 3 else rng.choice(("Low", "Medium", "Medium", "High"))
    product = f"PROD{rng.randint(1, 12)}"
    code = rng.choice(("se", "pl", "be", "in", "0"))  # "0": the export's unknown country
    at = start
    rows: list[list[str]] = []

    def add(status: str, sub: str, level: str, owner: tuple[str, str, str]) -> None:
        nonlocal at
        at += timedelta(minutes=rng.randint(1, 600), seconds=rng.randint(0, 59))
        team, org, div = TEAMS[level]
        _, country, name = owner
        resource = f"{owner[0]}-{name}"
        rows.append([sr, at.isoformat(), status, sub, f"{status}-{sub}",
                     f"{status}-{sub}-{level}", div, org, team, team, level, impact,
                     product, code, country, name, resource])

    owner, level = _person(rng), "L1"
    add("Accepted", "In Progress", level, owner)
    if n % 11 == 5:
        add("Unmatched", "Unmatched", level, owner)
    if n % 10 == 6:  # the rare joint level, queued for
        add("Queued", "Awaiting Assignment", "L2/L3", owner)
        owner, level = _person(rng), "L2/L3"
        add("Accepted", "In Progress", level, owner)
    for _ in range(rng.randint(0, 3)):
        step = rng.random()
        if step < 0.4:  # a transfer through a team queue, accepted by someone at the new level
            level = rng.choice(("L1", "L2", "L2", "L3", "L2/L3"))
            for _ in range(rng.randint(1, 2)):
                add("Queued", "Awaiting Assignment", level, owner)
            owner = _person(rng)
        elif step < 0.55:  # a direct reassignment
            owner = _person(rng)
        elif step < 0.65:  # the same owner moves up a level
            level = "L2" if level == "L1" else "L1"
        add("Accepted", rng.choice(WAITS), level, owner)
    if n % 13 == 4:  # open at the end of the log
        return rows
    add("Completed", rng.choice(("Resolved", "Resolved", "In Call")), level, owner)
    if n % 9 == 2:  # reopened, worked on and resolved again
        add("Accepted", "In Progress", level, owner)
        add("Completed", "Resolved", level, owner)
    if rng.random() < 0.6:
        add("Completed", "Closed", level, ("0", "0", "Siebel"))
    return rows


def rows() -> list[list[str]]:
    """The sample's data rows (no header)."""
    rng = random.Random(SEED)
    out: list[list[str]] = []
    start = datetime(2011, 3, 1, 8, 0, tzinfo=OFFSET)
    for n in range(REQUESTS):
        start += timedelta(minutes=rng.randint(5, 240))
        out.extend(_request(rng, n, start))
    return out


def text() -> str:
    """The whole file: byte-order mark, header, CRLF lines (as the real export)."""
    lines = [",".join(COLUMNS)] + [",".join(r) for r in rows()]
    return "\ufeff" + "".join(line + "\r\n" for line in lines)


def main() -> int:
    OUT.write_bytes(text().encode("utf-8"))
    print(f"wrote {OUT} ({len(rows())} rows)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
