"""read_member_sheet: formats, encodings, header names, validation, row numbers, secrecy."""

from __future__ import annotations

import io
import unicodedata
from pathlib import Path

import openpyxl
import pandas as pd
import pytest

from plabdata.config import Secret
from plabdata.errors import ValidationError
from plabdata.members._readers import _quote_doubts
from plabdata.members._sheet import read_member_sheet

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = Path(__file__).resolve().parents[2] / "plabdata" / "samples"
BAD = DATA / "bad_sheets"
PASSWORD = "correct-horse-battery"


def _csv(tmp_path: Path, text: str, encoding: str = "utf-8", name: str = "s.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _issues(result) -> list[tuple[int, str, str]]:  # type: ignore[no-untyped-def]
    return [
        (int(r), c, p.split(":")[0])
        for r, c, p in result.issues[["row", "column", "problem"]].itertuples(index=False)
    ]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("E-mail", "email"),
        ("Email Address", "email"),
        ("email", "email"),
        ("Mail", "email"),
        ("First name", "given_name"),
        ("Given name", "given_name"),
        ("Last name", "family_name"),
        ("Surname", "family_name"),
        ("Family name", "family_name"),
        ("Full name", "name"),
        ("Name", "name"),
        ("Verified", "is_verified"),
        ("Is verified", "is_verified"),
        ("Picture", "picture_url"),
        ("Avatar URL", "picture_url"),
        ("Password", "password"),
        ("metadata.plan", "metadata.plan"),
        ("meta.plan", "metadata.plan"),
        ("Metadata. Plan ", "metadata.Plan"),
    ],
)
def test_headers_map_to_fields(header: str, field: str) -> None:
    other = "Mail" if field != "email" else "Name"
    value = {
        "email": "a@example.com",
        "is_verified": "yes",
        "password": PASSWORD,
        "picture_url": "https://x.example/a.png",
    }.get(field.split(".")[0], "v")
    frame = pd.DataFrame({header: [value], other: ["a@example.com" if other == "Mail" else "N"]})
    result = read_member_sheet(frame)
    assert result.header_map[header] == field
    assert result.ok and field in result.rows.columns


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_csv_encodings_and_delimiters(tmp_path: Path, encoding: str, delimiter: str) -> None:
    text = delimiter.join(["E-mail", "First name", "Last name"]) + "\r\n"
    text += delimiter.join([" Zoë@Example.COM ", "Zoë", "Müller-Lüdenscheidt"]) + "\r\n"
    text += delimiter.join(["jose@example.es", "José", "Muñoz"]) + "\r\n"
    result = read_member_sheet(_csv(tmp_path, text, encoding))
    assert result.ok, result.issues
    assert result.rows["email"].tolist() == ["zoë@example.com", "jose@example.es"]
    assert result.rows["given_name"].tolist() == ["Zoë", "José"]
    assert result.rows["family_name"].iloc[0] == "Müller-Lüdenscheidt"
    assert result.rows["row"].tolist() == [2, 3]


def test_row_numbers_count_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    text = 'email,name\n\na@example.com,"two\nlines"\n,\nbad-email,x\n'
    result = read_member_sheet(_csv(tmp_path, text))
    assert result.rows["row"].tolist() == [3]
    assert result.rows["name"].iloc[0] == "two\nlines"
    assert _issues(result) == [(5, "email", "not a valid email address")]


def test_values_are_trimmed_typed_and_booleans_parsed(tmp_path: Path) -> None:
    text = "Email,Name,Verified,metadata.plan\n"
    for i, flag in enumerate(["yes", "NO", "true", "False", "1", "0", "x", "", "Y"]):
        text += f"  U{i}@Example.com ,  Name {i}  ,{flag}, pro \n"
    rows = read_member_sheet(_csv(tmp_path, text)).rows
    assert rows["is_verified"].tolist()[:7] == [True, False, True, False, True, False, True]
    assert rows["is_verified"].isna().tolist()[7] and rows["is_verified"].iloc[8]
    assert rows["email"].iloc[0] == "u0@example.com" and rows["name"].iloc[0] == "Name 0"
    assert rows["metadata.plan"].iloc[0] == "pro"
    assert rows["email"].dtype == "string" and rows["is_verified"].dtype == "boolean"
    assert rows["row"].dtype == "Int64"


def test_unparsable_boolean_long_names_bad_url_and_extra_values(tmp_path: Path) -> None:
    long = "x" * 257
    text = (
        "email,name,verified,picture\n"
        f"a@example.com,{long},yes,https://x.example/p.png\n"
        "b@example.com,B,maybe,\n"
        "c@example.com,C,,ftp://x.example/p.png\n"
        "d@example.com,D,,,surplus\n"
    )
    result = read_member_sheet(_csv(tmp_path, text))
    assert _issues(result) == [
        (2, "name", "longer than 256 characters"),
        (3, "verified", "not a yes/no value (use yes/no, true/false, 1/0, x or blank)"),
        (4, "picture", "not an http(s) URL"),
        (5, "", "row has 5 values but the header has 4 columns (a stray delimiter?)"),
    ]
    assert result.rows.empty


def test_metadata_values_must_be_text_in_a_dataframe() -> None:
    frame = pd.DataFrame(
        {"email": ["a@example.com", "b@example.com"], "metadata.tags": [["x"], "fine"]}
    )
    result = read_member_sheet(frame)
    assert _issues(result) == [(2, "metadata.tags", "metadata values must be text, not list")]
    assert result.rows["email"].tolist() == ["b@example.com"]


def test_dataframe_metadata_dict_column_is_flattened() -> None:
    frame = pd.DataFrame({"email": ["a@example.com"], "metadata": [{"plan": "pro"}]})
    assert read_member_sheet(frame).rows["metadata.plan"].tolist() == ["pro"]


def test_xlsx_named_and_first_sheet_and_typed_cells(tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "Intro"
    first.append(["Email", "Name", "Verified", "metadata.seats"])
    first.append(["a@example.com", "A", True, 3.0])
    second = book.create_sheet("Members")
    second.append(["title row"])
    second.append([])
    second.append([None, "E-mail", "Full name"])
    second.append([None, "b@example.com", "B"])
    path = tmp_path / "m.xlsx"
    book.save(path)
    first_rows = read_member_sheet(path).rows
    assert first_rows["is_verified"].tolist() == [True]
    assert first_rows["metadata.seats"].tolist() == ["3"]
    named = read_member_sheet(path, sheet="Members")
    assert named.rows[["row", "email", "name"]].values.tolist() == [[4, "b@example.com", "B"]]
    with pytest.raises(ValidationError, match=r"no sheet named 'Nope'.*Intro, Members"):
        read_member_sheet(path, sheet="Nope")


def test_parquet_and_file_object_sources(tmp_path: Path) -> None:
    frame = pd.DataFrame({"email": ["A@example.com"], "given_name": ["A"]})
    path = tmp_path / "m.parquet"
    frame.to_parquet(path)
    assert read_member_sheet(path).rows["email"].tolist() == ["a@example.com"]
    buffer = io.BytesIO(b"email;name\nb@example.com;B\n")
    assert read_member_sheet(buffer).rows["name"].tolist() == ["B"]


def test_columns_mapping_wins_and_ignored_columns_are_listed() -> None:
    frame = pd.DataFrame({"Work mail": ["a@example.com"], "Nick": ["Al"], "CRM id": ["7"]})
    result = read_member_sheet(frame, columns={"Work mail": "email", "Nick": "given_name"})
    assert result.rows["given_name"].tolist() == ["Al"]
    assert result.ignored_columns == ("CRM id",)
    with pytest.raises(ValidationError, match="unknown field 'nickname'"):
        read_member_sheet(frame, columns={"Work mail": "email", "Nick": "nickname"})


def test_two_headers_for_one_field_is_one_clear_error() -> None:
    frame = pd.DataFrame({"Email": ["a@example.com"], "E-mail": ["b@example.com"]})
    with pytest.raises(ValidationError, match="'Email' and 'E-mail' both mean email"):
        read_member_sheet(frame)


def test_strict_raises_one_error_listing_every_issue() -> None:
    frame = pd.DataFrame(
        {"email": ["bad", "a@example.com", "A@example.com"], "verified": ["", "maybe", ""]}
    )
    with pytest.raises(ValidationError) as caught:
        read_member_sheet(frame, strict=True)
    assert caught.value.issues is not None and len(caught.value.issues) == 4
    message = str(caught.value)
    assert "4 problem(s) in 3 row(s)" in message
    for row in (2, 3, 4):
        assert f"row {row}" in message


def test_passwords_never_show(tmp_path: Path) -> None:
    short = "abc12"
    text = (
        "email,password,verified\n"
        f"a@example.com,{PASSWORD},maybe\n"
        f"b@example.com,{short},\n"
        f"=HYPERLINK(1),{PASSWORD},\n"
    )
    result = read_member_sheet(_csv(tmp_path, text))
    assert (result.issues.loc[result.issues["column"] == "password", "value"] == "***").all()
    assert result.issues.loc[result.issues["row"] == 3, "severity"].tolist() == ["warning"]
    shown = [
        repr(result),
        str(result),
        result.issues.to_string(),
        result.raw.to_string(),
        result._repr_html_(),
        result.original_rows(result.invalid_rows).to_csv(),
    ]
    with pytest.raises(ValidationError) as caught:
        read_member_sheet(_csv(tmp_path, text), strict=True)
    shown.append(str(caught.value))
    for text_shown in shown:
        assert PASSWORD not in text_shown and short not in text_shown
    revealed = result.original_rows([2], reveal_passwords=True)
    assert revealed["password"].tolist() == [PASSWORD]


def test_valid_passwords_are_secrets() -> None:
    frame = pd.DataFrame({"email": ["a@example.com", "b@example.com"], "password": [PASSWORD, ""]})
    rows = read_member_sheet(frame).rows
    assert isinstance(rows["password"].iloc[0], Secret)
    assert rows["password"].iloc[0].reveal() == PASSWORD
    assert rows["password"].iloc[1] is None
    assert PASSWORD not in rows.to_string()


# ---------------------------------------------------------------------------- data/bad_sheets

VALID_EMAIL = "not a valid email address"
DUPLICATE = "duplicate email 'grace@example.com' on rows 3 and 6 (case-insensitive)"
TRIPLE = "duplicate email 'linus@example.com' on rows 4, 7 and 8 (case-insensitive)"
FORMULA = "formula cell"


@pytest.mark.parametrize(
    ("name", "expected", "valid"),
    [
        (
            "duplicates.csv",
            [
                (3, "Email", DUPLICATE),
                (4, "Email", TRIPLE),
                (6, "Email", DUPLICATE),
                (7, "Email", TRIPLE),
                (8, "Email", TRIPLE),
            ],
            2,
        ),
        (
            "invalid_emails.csv",
            [
                (2, "Email Address", VALID_EMAIL),
                (3, "Email Address", VALID_EMAIL),
                (4, "Email Address", VALID_EMAIL),
                (6, "Email Address", VALID_EMAIL),
                (7, "Email Address", "email is missing"),
            ],
            1,
        ),
        ("cp1252.csv", [], 4),
        ("formulas.csv", [(3, "name", FORMULA), (4, "metadata.site", FORMULA)], 1),
        ("formulas.xlsx", [(3, "Name", FORMULA), (5, "metadata.company", FORMULA)], 2),
        (
            "big_50k.csv",
            [
                (1001, "email", VALID_EMAIL),
                (25002, "verified", "not a yes/no value"),
                (49999, "given_name", FORMULA),
            ],
            49_997,
        ),
    ],
)
def test_bad_sheets_give_the_expected_issues(
    name: str, expected: list[tuple[int, str, str]], valid: int
) -> None:
    result = read_member_sheet(BAD / name)
    found = list(result.issues[["row", "column", "problem"]].itertuples(index=False))
    assert [(int(r), c) for r, c, _ in found] == [(r, c) for r, c, _ in expected]
    for (_, _, problem), (_, _, wanted) in zip(found, expected, strict=True):
        assert problem.startswith(wanted), (problem, wanted)
    assert len(result.rows) == valid
    assert not set(result.rows["row"]) & set(result.invalid_rows)


def test_cp1252_sheet_decodes_accents() -> None:
    rows = read_member_sheet(BAD / "cp1252.csv").rows
    assert rows["given_name"].tolist() == ["Zoë", "José", "François", "Renée"]
    assert rows["family_name"].tolist() == ["Dupré", "Muñoz", "Lefèvre", "Côté"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing_email_column.csv", "no email column"),
        ("empty.csv", "the file is empty"),
        ("header_only.csv", "no data rows"),
        ("corrupt.xlsx", "not a readable XLSX workbook"),
    ],
)
def test_unusable_files_give_one_clear_error(name: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        read_member_sheet(BAD / name)
    assert "Traceback" not in str(caught.value) and str(BAD / name) in str(caught.value)


def test_binary_and_missing_files_give_one_clear_error(tmp_path: Path) -> None:
    binary = tmp_path / "x.csv"
    binary.write_bytes(b"\x89PNG\x00\x00\x00\x00" + bytes(range(256)))
    with pytest.raises(ValidationError, match="not a readable text file"):
        read_member_sheet(binary)
    with pytest.raises(ValidationError, match="cannot read the file"):
        read_member_sheet(tmp_path / "absent.csv")


def test_sample_sheet_has_its_few_bad_rows() -> None:
    csv_result = read_member_sheet(SAMPLES / "members_import.csv")
    xlsx_result = read_member_sheet(SAMPLES / "members_import.xlsx", sheet="Members")
    assert csv_result.invalid_rows == xlsx_result.invalid_rows
    assert len(csv_result.invalid_rows) == 6 and len(csv_result.rows) == 301
    problems = " ".join(csv_result.errors["problem"])
    for kind in ("not a valid email", "duplicate email", "not a yes/no value", "formula cell"):
        assert kind in problems
    for result in (csv_result, xlsx_result):  # a formula password is an error, in both formats
        password = result.issues[result.issues["column"] == "Password"]
        assert password["problem"].str.startswith("formula cell").tolist() == [True]
        assert password["value"].tolist() == ["***"]
    assert csv_result.ignored_columns == ("Notes",)


# ---------------------------------------------------------------------------- doubtful CSV

STRAY = "a stray quote may have joined the rows below"


@pytest.mark.parametrize(
    ("name", "expected", "valid_rows"),
    [
        ("stray_quote.csv", [(3, "name", "a quoted cell runs over lines 3–7")], [2]),
        (
            "stray_quotes_pair.csv",
            [(3, "name", "a quoted cell over lines 3–5 holds another email")],
            [2, 4],
        ),
        (
            "stray_quote_mid.csv",
            [
                (3, "name", 'unbalanced quotes on line 3: a stray " character?'),
                (4, "name", "malformed quotes on line 4"),
            ],
            [2, 5],
        ),
        ("long_cell.csv", [(3, "Notes", "a cell of 5,000 characters (line 3; more than")], [2, 4]),
    ],
)
def test_doubtful_csv_parses_are_errors_naming_row_and_lines(
    name: str, expected: list[tuple[int, str, str]], valid_rows: list[int]
) -> None:
    result = read_member_sheet(BAD / name)
    found = list(result.issues[["row", "column", "problem", "severity"]].itertuples(index=False))
    assert [(int(r), c) for r, c, _, _ in found] == [(r, c) for r, c, _ in expected]
    for (_, _, problem, severity), (_, _, wanted) in zip(found, expected, strict=True):
        assert problem.startswith(wanted), (problem, wanted)
        assert severity == "error"
    assert result.rows["row"].tolist() == valid_rows, "the rows around a doubt still proceed"
    assert not result.ok
    # No swallowed text reaches a member: no name holds a line break or another row's email.
    assert not result.rows["name"].str.contains("\n|@", regex=True).any()


def test_a_stray_quote_never_shows_the_passwords_it_swallowed() -> None:
    result = read_member_sheet(BAD / "stray_quotes_pair.csv")
    shown = [
        result.issues.to_string(),
        result.raw.to_string(),
        result.original_rows(result.invalid_rows).to_csv(),
        result._repr_html_(),
    ]
    for text in shown:
        assert "linus-password-3" not in text and "grace-password-2" not in text
    revealed = result.original_rows([3], reveal_passwords=True)
    assert "linus-password-3" in revealed["name"].iloc[0]


def test_a_stray_quote_in_a_big_file_stops_with_the_line_named(tmp_path: Path) -> None:
    # More than the csv module's 131,072-character cell cap is swallowed: it stops reading.
    lines = ["email,name", "ada@example.com,Ada", 'grace@example.com,"Grace']
    lines += [f"u{i}@example.com,User {i}" for i in range(8000)]
    result = read_member_sheet(_csv(tmp_path, "\n".join(lines) + "\n"))
    assert result.rows["email"].tolist() == ["ada@example.com"]
    assert result.invalid_rows == [3]
    problem = result.errors["problem"].iloc[0]
    assert problem.startswith("lines 3–8003 cannot be read as CSV") and "stray quote" in problem


def test_legitimate_quoting_raises_no_doubt(tmp_path: Path) -> None:
    text = (
        "email,name,metadata.address\n"
        'a@example.com,"Lovelace, Ada","1 Main St\nLondon"\n'
        'b@example.com,"Grace ""Amazing"" Hopper",\n'
        'c@example.com,Plain,"a\r\nb\r\nc"\n'
    )
    result = read_member_sheet(_csv(tmp_path, text))
    assert result.issues.empty, result.issues
    assert result.rows["name"].tolist() == ["Lovelace, Ada", 'Grace "Amazing" Hopper', "Plain"]


def test_a_doubtful_header_refuses_the_file(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match=r"header row \(row 1\) cannot be trusted"):
        read_member_sheet(_csv(tmp_path, 'email,"name\na@example.com,A\n'))


# ---------------------------------------------------------------------------- formulas, passwords


def test_formula_cells_are_errors_in_every_column_passwords_included(tmp_path: Path) -> None:
    result = read_member_sheet(BAD / "formulas_password.xlsx")
    assert _issues(result) == [(3, "Password", "formula cell"), (4, "Name", "formula cell")]
    assert result.issues["value"].tolist()[0] == "***", "a password's issue stays masked"
    assert result.rows["email"].tolist() == ["ok@example.com"]
    assert "hunter" not in result.issues.to_string()
    text = 'email,password,member_id\na@example.com,"=CONCAT(""x"",""y"")",\n'
    text += "b@example.com,good-password-1, =HYPERLINK(1)\nc@example.com,good-password-2,\n"
    csv_result = read_member_sheet(_csv(tmp_path, text))
    assert _issues(csv_result) == [
        (2, "password", "formula cell"),
        (3, "member_id", "formula cell"),
    ]
    assert csv_result.rows["email"].tolist() == ["c@example.com"]


def test_short_passwords_are_warnings_and_their_rows_are_kept() -> None:
    frame = pd.DataFrame(
        {
            "email": ["a@example.com", "b@example.com", "c@example.com"],
            "password": ["12345", "", "x"],
        }
    )
    result = read_member_sheet(frame, strict=True)  # warnings never raise
    assert result.ok and result.invalid_rows == []
    assert result.rows["email"].tolist() == ["a@example.com", "b@example.com", "c@example.com"]
    assert result.rows["password"].iloc[0].reveal() == "12345"
    warned = result.warnings
    assert warned["row"].tolist() == [2, 4] and set(warned["severity"]) == {"warning"}
    assert set(warned["value"]) == {"***"}
    assert warned["problem"].iloc[0].startswith("password shorter than 6 characters")
    assert "warnings=2" in repr(result)


def test_issue_columns_and_dtypes() -> None:
    result = read_member_sheet(pd.DataFrame({"email": ["bad", "a@example.com"], "pass": ["", "1"]}))
    assert list(result.issues.columns) == ["row", "column", "value", "problem", "severity"]
    assert result.issues["severity"].dtype == "string" and result.issues["row"].dtype == "Int64"
    assert result.issues["severity"].tolist() == ["error", "warning"]
    assert len(result.errors) == 1 and len(result.warnings) == 1


# ---------------------------------------------------------------------------- one key, HTML


def test_two_spellings_of_one_email_in_a_sheet_are_duplicates() -> None:
    nfd = unicodedata.normalize("NFD", "josé@example.com")
    frame = pd.DataFrame(
        {"email": [nfd, "JOSÉ@example.com", "ü@xn--mnchen-3ya.de", "Ü@MÜNCHEN.de", "z@example.com"]}
    )
    result = read_member_sheet(frame)
    assert result.invalid_rows == [2, 3, 4, 5]
    assert result.rows["email"].tolist() == ["z@example.com"]
    assert set(result.issues["problem"].str[:16]) == {"duplicate email "}


def test_html_escapes_file_names_headers_and_cells(tmp_path: Path) -> None:
    path = _csv(
        tmp_path,
        "<b>bold</b>,name\nbad<script>,x\n",
        name="<img src=x onerror=alert(1)>.csv",
    )
    page = read_member_sheet(path, columns={"<b>bold</b>": "email"})._repr_html_()
    assert "<img" not in page and "<script>" not in page and "<b>bold" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;.csv" in page
    assert "bad&lt;script&gt;" in page and "&lt;b&gt;bold&lt;/b&gt;" in page


def test_a_record_whose_lines_disagree_with_its_cells_is_doubted() -> None:
    # The guard behind every CSV record: the physical lines the reader consumed for it must
    # be its cells' own line breaks plus one; anything else is a parse nobody can trust.
    assert _quote_doubts(["a@example.com", "Ada"], ["a@example.com,Ada\n"], 2, ",") == []
    [(cell, problem)] = _quote_doubts(
        ["a@example.com", "Ada"], ["a@example.com,\n", "Ada\n"], 2, ","
    )
    assert cell is None and problem.startswith("the record on lines 2–3 holds 0 line break(s)")
