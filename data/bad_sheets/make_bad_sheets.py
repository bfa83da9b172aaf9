"""Write the deliberately broken member sheets in ``data/bad_sheets/`` (deterministic).

Each file exercises one way a real sheet goes wrong; ``tests/members/test_sheet.py`` holds what
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
stray_quote.csv          a ``"`` opening row 3's name never closes: rows 4–7 would be
                         swallowed into that name (the rows before it are valid)
stray_quotes_pair.csv    two stray quotes (rows 3 and 5 as written): the cell between them
                         swallows two rows, passwords included; rows 2 and 4 (as read) valid
stray_quote_mid.csv      a lone ``"`` inside a name (row 3) and a name with text after its
                         closing quote (row 4); rows 2 and 5 valid
long_cell.csv            a 5,000-character Notes cell on row 3 (an ignored column)
formulas_password.xlsx   a formula in a password cell (B3) and in a name (C4)
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
    _write(
        "stray_quote.csv",
        "\n".join(
            [
                "email,name,verified",
                "ada@example.com,Ada,yes",
                'grace@example.com,"Grace Hopper,yes',
                "linus@example.com,Linus,no",
                "alan@example.com,Alan,yes",
                "barbara@example.com,Barbara,no",
                "ken@example.com,Ken,yes",
            ]
        )
        + "\n",
    )
    _write(
        "stray_quotes_pair.csv",
        "\n".join(
            [
                "email,name,password",
                "ada@example.com,Ada,ada-password-1",
                'grace@example.com,"Grace,grace-password-2',
                "linus@example.com,Linus,linus-password-3",
                'alan@example.com,Alan",alan-password-4',
                "ken@example.com,Ken,ken-password-5",
            ]
        )
        + "\n",
    )
    _write(
        "stray_quote_mid.csv",
        "\n".join(
            [
                "email,name",
                "ada@example.com,Ada",
                'grace@example.com,Grace "Amazing Hopper',
                'linus@example.com,"Linus" Torvalds',
                "alan@example.com,Alan",
            ]
        )
        + "\n",
    )
    _write(
        "long_cell.csv",
        "email,name,Notes\n"
        "ada@example.com,Ada,short\n"
        f"grace@example.com,Grace,{'x' * 5000}\n"
        "linus@example.com,Linus,\n",
    )
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Email", "Password", "Name"])
    sheet.append(["ok@example.com", "plain-password-1", "Okay"])
    sheet.append(["pw@example.com", '=CONCAT("hunter","22")', "Pw"])
    sheet.append(["name@example.com", "plain-password-2", '=UPPER("x")'])
    book.save(HERE / "formulas_password.xlsx")
    (HERE / "corrupt.xlsx").write_bytes(b"PK\x03\x04" + bytes(range(256)) * 4)
    big_sheet(HERE / "big_50k.csv")


if __name__ == "__main__":
    main()
