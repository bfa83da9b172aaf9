"""Write the deliberately broken member sheets in ``data/bad_sheets/`` (deterministic).

Each file exercises one way a real sheet goes wrong; ``tests/test_sheets.py`` holds what
``read_member_sheet`` must say about each (row numbers as a spreadsheet shows them):

======================== ===========================================================
missing_email_column.csv no email column at all → one ValidationError
duplicates.csv           the same email on rows 3 and 6 (case differs), and on 4/7/8
invalid_emails.csv       bad addresses on rows 2, 3, 4, 6 and a blank email on row 7
cp1252.csv               Windows-1252 bytes, ``;``-delimited, accented names — all valid
empty.csv                zero bytes → one ValidationError
header_only.csv          a header and no data rows → one ValidationError
formulas.csv             ``=HYPERLINK(…)`` / ``=1+1`` text cells on rows 3 and 4
formulas.xlsx            real formula cells on rows 3 and 5 (B3 and C5)
corrupt.xlsx             an XLSX signature with garbage after it → one ValidationError
big_50k.csv              50,000 data rows; bad rows 1,001 (email), 25,002 (boolean),
                         and 49,999 (a DDE formula as the name); 2.4 MB
======================== ===========================================================

    python data/bad_sheets/make_bad_sheets.py
"""

from __future__ import annotations

from pathlib import Path

import openpyxl

HERE = Path(__file__).resolve().parent
BIG_ROWS = 50_000
#: Spreadsheet rows (header = row 1) that are broken in ``big_50k.csv``.
BIG_BAD_ROWS = {1_001: "email", 25_002: "verified", 49_999: "formula"}


def _write(name: str, text: str, encoding: str = "utf-8") -> None:
    (HERE / name).write_bytes(text.encode(encoding))


def big_sheet(path: Path) -> Path:
    """The 50,000-row sheet with three bad rows (see :data:`BIG_BAD_ROWS`)."""
    lines = ["email,given_name,family_name,verified,metadata.plan"]
    for row in range(2, BIG_ROWS + 2):
        email, verified = f"u{row:05d}@example.com", ("yes", "no", "")[row % 3]
        if BIG_BAD_ROWS.get(row) == "email":
            email = f"u{row:05d}.example.com"
        elif BIG_BAD_ROWS.get(row) == "verified":
            verified = "perhaps"
        given = "=cmd|' /C calc'!A0" if BIG_BAD_ROWS.get(row) == "formula" else f"Given{row}"
        lines.append(f"{email},{given},Family{row},{verified},{('free', 'pro')[row % 2]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def main() -> None:
    _write(
        "missing_email_column.csv",
        "Name,First name,Company\nAda Lovelace,Ada,Analytical\nAlan Turing,Alan,Bletchley\n",
    )
    _write(
        "duplicates.csv",
        "\n".join(
            [
                "Email,Name",
                "ada@example.com,Ada",
                "grace@example.com,Grace",
                "linus@example.com,Linus",
                "alan@example.com,Alan",
                "GRACE@example.com,Grace again",
                "linus@EXAMPLE.com,Linus 2",
                " Linus@example.com ,Linus 3",
            ]
        )
        + "\n",
    )
    _write(
        "invalid_emails.csv",
        "\n".join(
            [
                "Email Address,Full name",
                "no-at-sign.example.com,No At",
                "two@@example.com,Two Ats",
                "user@localhost,Local",
                "fine@example.com,Fine",
                "spaced out@example.com,Spaced",
                ",Nobody",
            ]
        )
        + "\n",
    )
    _write(
        "cp1252.csv",
        "\r\n".join(
            [
                "E-mail;First name;Last name;Verified",
                "zoe@example.fr;Zoë;Dupré;yes",
                "jose@example.es;José;Muñoz;",
                "francois@example.fr;François;Lefèvre;x",
                "renee@example.fr;Renée;Côté;no",
            ]
        )
        + "\r\n",
        encoding="cp1252",
    )
    _write("empty.csv", "")
    _write("header_only.csv", "email,name\n")
    _write(
        "formulas.csv",
        "\n".join(
            [
                "email,name,metadata.site",
                "ok@example.com,Okay,https://example.com",
                'hyper@example.com,"=HYPERLINK(""https://evil.example"",""click"")",x',
                "sum@example.com,Sum,=1+1",
            ]
        )
        + "\n",
    )
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "Members"
    sheet.append(["Email", "Name", "metadata.company"])
    sheet.append(["ok@example.com", "Okay", "Acme"])
    sheet.append(["formula@example.com", '=CONCAT("Ev","il")', "Acme"])
    sheet.append(["plain@example.com", "Plain", "Acme"])
    sheet.append(["calc@example.com", "Calc", "=UPPER(C2)"])
    book.save(HERE / "formulas.xlsx")
    (HERE / "corrupt.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    big_sheet(HERE / "big_50k.csv")


if __name__ == "__main__":
    main()
