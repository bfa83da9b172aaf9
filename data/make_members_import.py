"""Write ``plabdata/samples/members_import.xlsx`` and ``members_import.csv``: a realistic member
sheet.

The sheet is written against the emulator's demo seed of 500 members (``running(seed=500)``),
as an operator's CRM export would be: ~300 rows mixing

- members already in line (160; some emails typed with capitals or stray spaces),
- members with changed names or metadata (50), and 2 whose ``Verified`` differs (which the
  API cannot change: reported as unsupported),
- new members (90; about half with a password, the rest get a generated one),
- a few bad rows: an invalid email (2), the same email twice, a ``Verified`` of "maybe",
  a formula in a password cell.

The content is deterministic (fixed random seed, the seed's own deterministic members); the
XLSX bytes differ between runs only by the zip timestamps.

    python data/make_members_import.py
"""

from __future__ import annotations

import csv
import random
import unicodedata
from pathlib import Path
from typing import Any

import openpyxl
import pandas as pd

from plabdata.client._sync import Admin
from plabdata.emulator import running
from plabdata.members._loaders import load_members

HERE = Path(__file__).resolve().parent
#: The shipped samples live in the package (read with importlib.resources).
SAMPLES = HERE.parent / "plabdata" / "samples"
HEADERS = [
    "E-mail",
    "First name",
    "Last name",
    "Display name",
    "Verified",
    "Password",
    "metadata.company",
    "metadata.source",
    "metadata.team",
    "Notes",
]
FIRST = [
    "José",
    "Zoë",
    "Søren",
    "Aurélie",
    "Łukasz",
    "Mei",
    "Olu",
    "Priya",
    "Ines",
    "Tomás",
    "Hana",
    "Noah",
    "Aisha",
    "Mateo",
    "Freya",
    "Ravi",
    "Chloé",
    "Emil",
    "Nadia",
    "Kofi",
]
LAST = [
    "García",
    "Müller",
    "Okafor",
    "Nakamura",
    "Lindqvist",
    "Haddad",
    "Costa",
    "Dubois",
    "Kowalski",
    "Brennan",
    "Sato",
    "Mensah",
    "Ferreira",
    "Novak",
    "Iyer",
    "Larsen",
]
DOMAINS = ["northwind.io", "contoso.com", "fabrikam.org", "gmail.com", "proton.me"]
COMPANIES = ["Northwind", "Contoso", "Fabrikam", "Globex", "Initech"]
SOURCES = ["beta-list", "webinar", "referral", "crm-import"]
TEAMS = ["Growth", "Platform", "Support", "Research"]


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def build_rows(current: pd.DataFrame, seed: int = 2026) -> list[list[str]]:
    """The sheet's data rows (without the header), in sheet order."""
    rng = random.Random(seed)
    members = current.sort_values("email").reset_index(drop=True)
    picks = rng.sample(range(len(members)), 212)
    rows: list[list[str]] = []

    def existing(i: int) -> list[str]:
        m = members.iloc[i]
        return [
            m["email"],
            _text(m["given_name"]),
            _text(m["family_name"]),
            _text(m["name"]),
            "yes" if m["is_verified"] else "no",
            "",
            _text(m["metadata.company"]),
            _text(m["metadata.source"]),
            "",
            "",
        ]

    for n, i in enumerate(picks[:160]):  # already in line
        row = existing(i)
        if n % 17 == 0:
            row[0] = f" {row[0].upper()} "
        rows.append(row)
    for n, i in enumerate(picks[160:210]):  # changed names or metadata
        row = existing(i)
        kind = n % 3
        if kind == 0 and row[1]:
            row[2] = rng.choice(LAST)
            row[3] = f"{row[1]} {row[2]}"
            row[9] = "changed surname"
        elif kind == 0:
            row[1], row[2] = rng.choice(FIRST), rng.choice(LAST)
            row[3] = f"{row[1]} {row[2]}"
            row[9] = "name added from CRM"
        elif kind == 1:
            row[6] = rng.choice(COMPANIES)
            row[9] = "changed employer"
        else:
            row[8] = rng.choice(TEAMS)
        rows.append(row)
    for i in picks[210:212]:  # is_verified differs: the API cannot change it
        row = existing(i)
        row[4] = "no" if row[4] == "yes" else "yes"
        row[9] = "verified by sales"
        rows.append(row)
    taken = set(members["email"])
    new: list[list[str]] = []
    while len(new) < 90:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        plain = unicodedata.normalize("NFKD", f"{first}.{last}".replace("ł", "l").replace("ø", "o"))
        local = plain.encode("ascii", "ignore").decode().lower()
        email = f"{local}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"
        if email in taken:
            continue
        taken.add(email)
        password = f"Pl-{rng.getrandbits(48):012x}" if rng.random() < 0.5 else ""
        new.append(
            [
                email,
                first,
                last,
                f"{first} {last}",
                rng.choice(["yes", "no", ""]),
                password,
                rng.choice(COMPANIES),
                rng.choice(SOURCES),
                rng.choice([*TEAMS, ""]),
                "beta tester",
            ]
        )
    rows.extend(new)
    rows.extend(
        [
            ["maria.lopez@gmail", "María", "López", "", "yes", "", "", "webinar", "", "typo"],
            ["kenji tanaka@contoso.com", "Kenji", "Tanaka", "", "", "", "Contoso", "", "", ""],
            [new[3][0].upper(), new[3][1], new[3][2], "", "", "", "", "", "", "listed twice"],
            ["li.wei@fabrikam.org", "Li", "Wei", "Li Wei", "maybe", "", "Fabrikam", "", "", ""],
            # A formula pasted into the password cell: an error, as in any other column.
            ["sam.okoro@northwind.io", "Sam", "Okoro", "", "no", '=CONCAT("pw","1234")', *[""] * 4],
        ]
    )
    rng.shuffle(rows)
    return rows


def write(rows: list[list[str]], directory: Path = SAMPLES) -> tuple[Path, Path]:
    """Write the CSV (UTF-8) and the XLSX (sheet "Members", then a "README" sheet)."""
    csv_path, xlsx_path = directory / "members_import.csv", directory / "members_import.xlsx"
    with csv_path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        writer.writerows(rows)
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Members"
    sheet.append(HEADERS)
    for row in rows:
        sheet.append(row)
    notes = book.create_sheet("README")
    notes.append(["Sample member sheet for `plabdata members import` (emulator seed of 500)."])
    book.save(xlsx_path)
    return csv_path, xlsx_path


def main() -> None:
    with running(seed=500) as emu, Admin(emu.settings) as admin:
        current = load_members(admin, progress=False)
    rows = build_rows(current)
    for path in write(rows):
        print(f"wrote {path} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
