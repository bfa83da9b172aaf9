"""The sheet-reader core on small real files: ``plabdata.members._readers`` (every cell as
text, rows numbered as a spreadsheet shows them, doubtful CSV parses) and the column checks
of ``plabdata.members._sheet_checks`` (formula cells, emails and their duplicates), called
directly.

``tests/members/test_sheet.py`` checks :func:`read_member_sheet` end to end on the sample
files; here each piece is driven on its own, so a failure names the piece that broke.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plabdata.errors import ValidationError
from plabdata.members._readers import (
    MAX_CELL_CHARS,
    _decode,
    _quote_doubts,
    _sniff_delimiter,
    read_table,
)
from plabdata.members._sheet import read_member_sheet
from plabdata.members._sheet_checks import (
    _HTTP_URL,
    _all_http_urls,
    check_booleans,
    check_email,
    check_metadata,
    check_notes,
    check_text,
    column_texts,
    formula_issues,
    strip_cells,
)


def _is_email(header: str) -> bool:
    return header.strip().lower() in ("email", "e-mail")


def _write(tmp_path: Path, text: str, name: str = "members.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _xlsx(tmp_path: Path, *sheets: tuple[str, list[list[object]]]) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for title, rows in sheets:
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / "members.xlsx"
    book.save(path)
    return path


# ---------------------------------------------------------------------------- CSV


def test_a_stray_quote_is_flagged_on_its_row_and_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "Members export\n\nemail,name\n"  # a title row and a blank line above the header
        "ada@example.com,Ada\n"
        'grace@example.com,Gr"ace\n'
        "linus@example.com,Linus\n",
    )
    table = read_table(path, None, _is_email)
    assert table.headers == ["email", "name"]
    assert table.rows.tolist() == [4, 5, 6]  # as a spreadsheet numbers them: header = row 3
    assert table.parse_issues == [
        (5, "name", "", 'unbalanced quotes on line 5: a stray " character?')
    ]
    assert table.doubtful_cells == [(5, "name")]
    assert table.cells["email"].tolist() == [
        "ada@example.com",
        "grace@example.com",
        "linus@example.com",
    ]


def test_a_quote_that_swallows_the_next_rows_is_flagged_with_its_lines(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        'email,name,password\nada@example.com,"Ada,pw-ada-1\nbob@example.com,Bob,pw-bob-2\n"'
        ",x\nlinus@example.com,Linus,pw-linus-3\n",
    )
    table = read_table(path, None, _is_email)
    # Rows count records: the swallowing record is row 2, Linus (on line 5) is row 3.
    assert table.rows.tolist() == [2, 3]
    (row, column, value, problem), *others = table.parse_issues
    assert (row, column, value, others) == (2, "name", "", [])
    assert problem.startswith("a quoted cell over lines 2–4 holds another email on a later")
    # The swallowed text (Bob's password included) is marked doubtful, never shown as a value.
    assert table.doubtful_cells == [(2, "name")]


def test_quote_doubts_of_single_records() -> None:
    assert _quote_doubts(["a@x.io", "Ada"], ["a@x.io,Ada\n"], 2, ",") == []
    assert _quote_doubts(["a@x.io", "Lovelace, Ada"], ['a@x.io,"Lovelace, Ada"\n'], 2, ",") == []
    assert _quote_doubts(["a@x.io", 'Gr"ace'], ['a@x.io,Gr"ace\n'], 9, ",") == [
        (1, 'unbalanced quotes on line 9: a stray " character?')
    ]
    five_lines = "1\n2\n3\n4\n5"
    raw = ['a@x.io,"1\n', "2\n", "3\n", "4\n", '5"\n']
    [(cell, problem)] = _quote_doubts(["a@x.io", five_lines], raw, 2, ",")
    assert cell == 1 and problem.startswith("a quoted cell runs over lines 2–6 (more than 3")
    long = "x" * (MAX_CELL_CHARS + 1)
    [(cell, problem)] = _quote_doubts(["a@x.io", long], [f'a@x.io,"{long}"\n'], 4, ",")
    assert cell == 1 and problem.startswith(f"a cell of {MAX_CELL_CHARS + 1:,} characters (line 4")


def test_delimiters_and_encodings_are_recognised() -> None:
    assert _sniff_delimiter("email;name\na@x.io;A\n") == ";"
    assert _sniff_delimiter("email\tname\n") == "\t"
    assert _sniff_delimiter("email|name|verified\n") == "|"
    assert _sniff_delimiter("email\n") == ","  # one column: nothing to split
    assert _decode("Zoë".encode("cp1252"), "x.csv") == "Zoë"
    assert _decode("\ufeffemail".encode(), "x.csv") == "email"  # the BOM goes
    assert _decode("email,Zoë".encode("utf-16"), "x.csv") == "email,Zoë"
    with pytest.raises(ValidationError, match=r"x\.csv: not a readable text file"):
        _decode(b"\x00\x01\x02\x03\x00\x05", "x.csv")


def test_duplicate_emails_are_flagged_with_their_rows(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "E-mail,Name\nada@example.com,Ada\nü@münchen.de,Ü\nADA@Example.com,Ada again\n"
        "Ü@XN--MNCHEN-3YA.DE,Ü again\nlinus@example.com,Linus\n",
    )
    result = read_member_sheet(path)
    ada = "duplicate email 'ada@example.com' on rows 2 and 4 (case-insensitive): keep one"
    muenchen = "duplicate email 'ü@münchen.de' on rows 3 and 5 (case-insensitive): keep one"
    assert result.issues[["row", "column", "problem"]].values.tolist() == [
        [2, "E-mail", ada],
        [3, "E-mail", muenchen],
        [4, "E-mail", ada],
        [5, "E-mail", muenchen],
    ]
    assert result.rows["row"].tolist() == [6]


def test_check_email_names_missing_invalid_and_duplicate_addresses() -> None:
    emails = pd.Series(
        ["ada@example.com", None, "bad@", "jose\u0301@example.com", "JOS\u00c9@example.com"],
        index=pd.Index([2, 3, 4, 5, 6], name="row"),
        dtype=object,
    )
    out = pd.DataFrame({"email": emails})
    found = pd.concat(check_email(out, {"Email Address": "email"}), ignore_index=True)
    by_row = {int(r): (c, p) for r, c, p in found[["row", "column", "problem"]].values}
    assert set(by_row) == {3, 4, 5, 6}
    assert by_row[3] == ("Email Address", "email is missing")
    assert by_row[4][1].startswith("not a valid email address")
    assert "on rows 5 and 6" in by_row[5][1] and by_row[5] == by_row[6]
    assert out["email"].tolist()[0] == "ada@example.com"  # normalised in place


# ---------------------------------------------------------------------------- formulas


def test_formula_issues_flag_formulas_as_read() -> None:
    values = pd.Series(["Ada", " =HYPERLINK(1)", "a=b", "=1+1", None], index=[2, 3, 4, 5, 6])
    issues = formula_issues(values, "Name", xlsx_cells={6})
    assert issues["row"].tolist() == [3, 5, 6]  # text starting with "=", and an XLSX formula
    assert issues["value"].tolist() == [" =HYPERLINK(1)", "=1+1", ""]
    assert set(issues["column"]) == {"Name"} and set(issues["severity"]) == {"error"}
    assert formula_issues(pd.Series(["a", "b"], index=[2, 3]), "Name", set()).empty


# ---------------------------------------------------------------------------- XLSX


def test_xlsx_cells_are_read_as_text_with_formula_cells_noted(tmp_path: Path) -> None:
    path = _xlsx(
        tmp_path,
        (
            "Members",
            [
                ["Email", "Name", "Verified", "Score", "Joined"],
                ["ada@example.com", "Ada", True, 1.0, dt.datetime(2026, 10, 1, 9, 30)],
                ["bob@example.com", '=UPPER("bob")', False, 2.5, None],
            ],
        ),
        ("Other", [["email"], ["z@example.com"]]),
    )
    table = read_table(path, None, _is_email)  # the first sheet
    assert table.headers == ["Email", "Name", "Verified", "Score", "Joined"]
    assert table.rows.tolist() == [2, 3]
    assert table.cells.values.tolist() == [
        ["ada@example.com", "Ada", "true", "1", "2026-10-01T09:30:00"],
        ["bob@example.com", '=UPPER("bob")', "false", "2.5", None],
    ]
    assert table.formulas == {**{header: set() for header in table.headers}, "Name": {3}}
    other = read_table(path, "Other", _is_email)
    assert other.name.endswith("[Other]") and other.cells["email"].tolist() == ["z@example.com"]
    with pytest.raises(ValidationError, match=r"no sheet named 'Nope' \(sheets: Members, Other\)"):
        read_table(path, "Nope", _is_email)


def test_an_xlsx_issue_names_its_row_and_the_column_as_written(tmp_path: Path) -> None:
    path = _xlsx(
        tmp_path,
        (
            "Members",
            [
                ["Club members 2026"],  # a title row: the header is row 2
                ["E-mail", "First name", "Password"],
                ["ada@example.com", "Ada", "pw-ada-12345"],
                ["grace@example", "Grace", "pw-grace-12345"],
                ["linus@example.com", "Linus", '=CONCAT("pw","x")'],
            ],
        ),
    )
    result = read_member_sheet(path)
    issues = result.issues[["row", "column", "value"]].values.tolist()
    assert issues == [[4, "E-mail", "grace@example"], [5, "Password", "***"]]
    assert result.issues["problem"].iloc[1].startswith("formula cell")
    assert result.rows["row"].tolist() == [3]
    assert result.header_map == {
        "E-mail": "email",
        "First name": "given_name",
        "Password": "password",
    }


@pytest.mark.parametrize("delimiter", [";", "\t", "|"])
def test_a_title_row_above_the_header_does_not_hide_the_delimiter(
    tmp_path: Path, delimiter: str
) -> None:
    path = tmp_path / "members.csv"
    lines = ["Members export, December", delimiter.join(["email", "given_name", "family_name"])]
    lines.append(delimiter.join(["ada@example.com", "Ada", "Lovelace, Countess"]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_member_sheet(path)
    assert result.rows["email"].tolist() == ["ada@example.com"]
    assert result.rows["family_name"].tolist() == ["Lovelace, Countess"]


@pytest.mark.parametrize(
    "cells",
    [
        ["https://a.example/p.png", "HTTP://B.example/x", None],
        ["https://a.example/p.png", "ftp://b.example/x"],
        ["https://a.example/a b.png"],
        ["https://a.example/p.png\n"],  # the per-cell regex's `$` allows one trailing newline
        ["https://"],
        ['=HYPERLINK("x")', "https://ok.example"],
        [None, None],
        ["https://a.example/\x00b"],
        [42, "https://ok.example"],
    ],
)
def test_the_picture_check_fast_path_gives_the_per_cell_verdicts(cells: list[object]) -> None:
    per_cell = [
        i
        for i, v in enumerate(cells)
        if isinstance(v, str) and not v.startswith("=") and _HTTP_URL.match(v) is None
    ]
    if _all_http_urls(cells):
        assert per_cell == []
    out = pd.DataFrame({"picture_url": pd.Series(cells, dtype=object)})
    flagged = [
        row
        for found in check_text(out, {"Picture": "picture_url"})
        for row, problem in zip(found["row"], found["problem"], strict=True)
        if problem == "not an http(s) URL"
    ]
    assert flagged == per_cell


# ---------------------------------------------------------------------------- clean columns

_CELLS = st.one_of(
    st.none(),
    st.sampled_from(["ada@example.com", "ADA@Example.com", " b@x.io ", "", "  ", "=1+1", "a\x00b"]),
    st.sampled_from(["https://x.io/a.png", "ftp://x", "x" * 300, "yes", "reset-needed"]),
    st.text(max_size=6),
    st.integers(-2, 2),
)
_TARGETS = {"E": "email", "N": "name", "P": "picture_url", "V": "is_verified", "M": "metadata.k"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(*[_CELLS] * len(_TARGETS)), min_size=1, max_size=8))
def test_checks_told_a_column_is_clean_give_the_verdicts_they_find_alone(
    cells: list[tuple[object, ...]],
) -> None:
    """``read_member_sheet`` hands each check the texts of the columns it found clean; the
    checks must then say exactly what they say reading those columns themselves."""
    frame = pd.DataFrame(cells, columns=list(_TARGETS), dtype=object)
    frame.index = pd.Index(range(2, 2 + len(cells)), name="row")
    out, clean = pd.DataFrame(index=frame.index), {}
    for header, target in _TARGETS.items():
        texts = column_texts(frame[header])
        assert formula_issues(frame[header], header, set(), texts).equals(
            formula_issues(frame[header], header, set())
        )
        out[target] = stripped = strip_cells(frame[header], texts)
        trimmed = [(v.strip() or None) if isinstance(v, str) else v for v in frame[header]]
        assert stripped.tolist() == strip_cells(frame[header]).tolist() == trimmed
        if texts is not None and stripped is frame[header]:
            clean[target] = texts
    header_map = {h: t for h, t in _TARGETS.items()}
    for check in (check_email, check_booleans, check_text, check_metadata, check_notes):
        told, alone = out.copy(), out.copy()
        found_told = check(told, header_map, clean)
        found_alone = check(alone, header_map)
        assert len(found_told) == len(found_alone)
        for a, b in zip(found_told, found_alone, strict=True):
            pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))
        pd.testing.assert_frame_equal(told, alone)


_URL_PARTS = st.sampled_from(
    [
        "http://",
        "https://",
        "HTTPS://",
        "httpſ://",
        "ftp://",
        "://",
        "x",
        "é",
        "/",
        " ",
        "\u00a0",
        "\u2028",
        "\x1c",
        "\n",
        "\t",
        "İ",
        "K",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(_URL_PARTS, max_size=5).map("".join)), max_size=6))
def test_the_picture_fast_path_never_passes_a_cell_the_regex_refuses(cells: list[object]) -> None:
    per_cell = [
        v
        for v in cells
        if isinstance(v, str) and not v.startswith("=") and _HTTP_URL.match(v) is None
    ]
    if _all_http_urls(cells):
        assert per_cell == []


def test_the_picture_fast_path_takes_a_clean_column() -> None:
    assert _all_http_urls(["https://a.example/p.png", "HTTP://B.example/x", None])
    assert _all_http_urls(["http://x"] * 3)
    assert not _all_http_urls(["http://x", "https://"])


def test_plain_addresses_written_twice_are_duplicates() -> None:
    emails = pd.Series(
        ["ada@example.com", "bob@example.com", "ADA@example.com"],
        index=pd.Index([2, 3, 4], name="row"),
        dtype=object,
    )
    out = pd.DataFrame({"email": emails})
    found = pd.concat(check_email(out, {"Email": "email"}, {"email": list(emails)}))
    assert found["row"].tolist() == [2, 4]
    assert set(found["problem"]) == {
        "duplicate email 'ada@example.com' on rows 2 and 4 (case-insensitive): keep one"
    }
    assert out["email"].tolist() == ["ada@example.com", "bob@example.com", "ada@example.com"]
    assert pd.concat(check_email(out.head(2), {"Email": "email"})).empty
