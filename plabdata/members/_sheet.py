"""Read a spreadsheet of members into a validated DataFrame, with every problem named by row.

``read_member_sheet`` accepts what operators actually have: a CSV in any common encoding
(UTF-8 with or without BOM, UTF-16 with BOM, Windows-1252) and delimiter (``,`` ``;`` tab
``|``), an XLSX workbook (a named or the first sheet), a Parquet file, or a DataFrame.
Headers are matched the way people write them (``E-mail``, ``Email Address``, ``First name``,
``Surname``…); ``metadata.<key>`` / ``meta.<key>`` columns become metadata keys.

The result splits the sheet in two: ``rows`` (the rows to send, normalised) and ``issues``
(one line per problem: ``row`` as the spreadsheet row number a person sees — header is row 1 —,
``column`` as written in the sheet, ``value`` — passwords shown as ``***`` —, ``problem``, and
``severity``). An ``"error"`` leaves its row out of ``rows``: nothing is sent for it. A
``"warning"`` keeps the row (a short password: PluginLab itself decides, and its refusal comes
back as that row's result). A doubtful CSV parse (a stray quote) and a formula cell, in any
column, are errors.

Passwords are held as :class:`~plabdata.config.Secret` objects from the moment they are read,
so no repr, issue, error or export of these frames shows one.

This module reads and assembles; the column checks and the rules they apply (lengths, yes/no
words, the email fast path) are in :mod:`plabdata.members._sheet_checks`.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from plabdata.config import Secret
from plabdata.errors import ValidationError
from plabdata.members._readers import SheetSource, read_table
from plabdata.members._sheet_checks import (
    ERROR,
    PASSTHROUGH,
    TEXT_FIELDS,
    WARNING,
    check_booleans,
    check_email,
    check_metadata,
    check_notes,
    check_text,
    column_texts,
    formula_issues,
    strip_cells,
    weak_password_warnings,
)
from plabdata.members._sources import read_export

#: The member fields a sheet can set, in the order they appear in ``SheetResult.rows``.
FIELDS = ("email", *TEXT_FIELDS, "is_verified", "password")
#: Per-row notes a platform export carries into the plan (see :mod:`plabdata.members._sources`):
#: ``password_note``, one of ``PASSWORD_NOTES``.
NOTE_FIELDS = ("password_note",)
MASK = "***"
#: The columns of ``SheetResult.issues``.
ISSUE_COLUMNS = {
    "row": "Int64",
    "column": "string",
    "value": "string",
    "problem": "string",
    "severity": "string",
}
#: Every field a column can be mapped to (besides ``metadata.<key>``).
TARGETS = (*FIELDS, *PASSTHROUGH, *NOTE_FIELDS)
_META_PREFIX = re.compile(r"^\s*(?:metadata|meta)\s*\.\s*(?P<key>.*?)\s*$", re.IGNORECASE)

_ALIASES: dict[str, str] = {
    **dict.fromkeys(("email", "emailaddress", "mail", "emailid", "mailaddress"), "email"),
    **dict.fromkeys(("givenname", "firstname", "first", "forename"), "given_name"),
    **dict.fromkeys(("familyname", "lastname", "surname", "last"), "family_name"),
    **dict.fromkeys(("name", "fullname", "displayname"), "name"),
    **dict.fromkeys(("verified", "isverified", "emailverified"), "is_verified"),
    **dict.fromkeys(
        ("picture", "pictureurl", "avatar", "avatarurl", "photo", "photourl"), "picture_url"
    ),
    **dict.fromkeys(("password", "pass"), "password"),
    **dict.fromkeys(("memberid", "id"), "member_id"),
    **dict.fromkeys(("signinmethod",), "sign_in_method"),
}


@dataclass(frozen=True, repr=False)
class SheetResult:
    """What :func:`read_member_sheet` found: the valid rows and every problem.

    Attributes:
        rows: valid rows, one per member — ``row`` (Int64), ``email`` and the text fields
            (``string``), ``is_verified`` (``boolean``), ``password`` (``Secret`` objects, only
            when the sheet has that column), ``metadata.<key>`` (``string``).
        issues: ``row``, ``column``, ``value``, ``problem``, ``severity`` (``"error"``: the
            row is left out; ``"warning"``: the row is kept) — one line per problem.
        source: where the sheet came from (a path, or ``<DataFrame>``).
        header_map: sheet header → field name, for the columns that were used.
        ignored_columns: sheet headers that map to no member field (listed, never guessed).
        source_preset: the platform preset that read the file (``"auth0"``, ``"firebase"``…),
            or None for a plain sheet.
        source_reason: why that preset, in words (with ``source="auto"``: what was recognised).
    """

    rows: pd.DataFrame
    issues: pd.DataFrame
    source: str
    header_map: dict[str, str] = field(default_factory=dict)
    ignored_columns: tuple[str, ...] = ()
    raw: pd.DataFrame = field(default_factory=pd.DataFrame)
    source_preset: str | None = None
    source_reason: str = ""

    @property
    def errors(self) -> pd.DataFrame:
        """The issues that leave their row out (``severity == "error"``)."""
        return self.issues[self.issues["severity"] == ERROR].reset_index(drop=True)

    @property
    def warnings(self) -> pd.DataFrame:
        """The issues that keep their row (``severity == "warning"``)."""
        return self.issues[self.issues["severity"] == WARNING].reset_index(drop=True)

    @property
    def ok(self) -> bool:
        """True when no issue is an error (warnings may remain: see :attr:`warnings`)."""
        return self.errors.empty

    @property
    def invalid_rows(self) -> list[int]:
        """Spreadsheet row numbers left out because of an error."""
        return sorted({int(r) for r in self.errors["row"].dropna()})

    def original_rows(self, rows: Iterable[int], *, reveal_passwords: bool = False) -> pd.DataFrame:
        """The given rows as they were in the sheet (its own headers), indexed by row number.

        The password column is left out unless ``reveal_passwords`` is True: a file written
        from this frame would otherwise hold passwords in clear text. So is any other cell held
        as a secret (a cell a stray quote filled with other rows, passwords included): shown
        as ``***`` unless ``reveal_passwords``.
        """
        wanted = [r for r in dict.fromkeys(int(r) for r in rows) if r in self.raw.index]
        out = self.raw.loc[wanted].copy()
        secret_headers = {h for h, t in self.header_map.items() if t == "password"}
        for header in out.columns:
            if header in secret_headers and not reveal_passwords:
                out = out.drop(columns=header)
            elif out[header].map(lambda v: isinstance(v, Secret)).any():
                out[header] = [
                    (v.reveal() if reveal_passwords else MASK) if isinstance(v, Secret) else v
                    for v in out[header]
                ]
        out.index.name = "row"
        return out

    def __repr__(self) -> str:
        warned = len(self.warnings)
        preset = f", preset={self.source_preset!r}" if self.source_preset else ""
        return (
            f"SheetResult(source={self.source!r}{preset}, valid_rows={len(self.rows)}, "
            f"invalid_rows={len(self.invalid_rows)}, issues={len(self.issues)}"
            + (f", warnings={warned})" if warned else ")")
        )

    __str__ = __repr__

    def _repr_html_(self) -> str:
        # Everything here comes from the file (its name, headers, cells): escape all of it.
        head = f"<p><b>{html.escape(self.source)}</b>: {len(self.rows)} valid rows, "
        head += f"{len(self.invalid_rows)} invalid rows, {len(self.issues)} issues"
        head += f" ({len(self.warnings)} warnings)</p>" if len(self.warnings) else "</p>"
        shown = self.issues.head(50).astype(object)
        shown = shown.where(shown.notna(), "")
        return head + (shown.to_html(index=False, escape=True) if len(shown) else "")


def read_member_sheet(
    path: SheetSource,
    *,
    sheet: str | None = None,
    columns: Mapping[str, str | None] | None = None,
    strict: bool = False,
    source: str | None = None,
    column_map: Mapping[str, str | None] | None = None,
) -> SheetResult:
    """Read and validate a sheet of members, or the user export of another auth platform.

    Args:
        path: a CSV / XLSX / Parquet path or binary file object, or a DataFrame (with
            ``source``: an export file, CSV / JSON / NDJSON, gzipped or not).
        sheet: the XLSX worksheet name (default: the first sheet).
        columns: extra header mapping, sheet header → field (``email``, ``name``,
            ``given_name``, ``family_name``, ``picture_url``, ``is_verified``, ``password``,
            ``metadata.<key>``) or None to ignore a column. Wins over the built-in aliases.
        strict: raise one :class:`ValidationError` listing every issue when any is an error
            (warnings alone never raise).
        source: read a platform's user export with its preset: ``"auth0"``, ``"firebase"``,
            ``"clerk"``, ``"supabase"``, ``"memberstack"``, ``"generic"`` (any export, mapped
            with ``column_map``) or ``"auto"`` (recognise the platform from the file's shape;
            ``source_reason`` says what it saw). Password hashes are never sent: those members
            get a generated password and ``password_note`` ``"reset-needed"`` (see
            ``docs/migrations.md``).
        column_map: another name for ``columns`` (pass one of the two). With ``source``, it
            maps the export's own field paths (``user_metadata.tier``) to fields, over the
            preset's mapping; there it also takes ``original_user_id``,
            ``original_created_at`` and ``password_hash``.

    Returns:
        A :class:`SheetResult` with the rows to send and the issues.

    Raises:
        ValidationError: the file cannot be read, is empty, has no email column, its header
            row's quoting is doubtful, or (with ``strict``) any row has an error. The message
            says which, never a traceback.

    Example:
        >>> result = read_member_sheet("data/members_import.csv")
        >>> result.rows.head(); result.issues
        >>> export = read_member_sheet("users.ndjson", source="auto")
        >>> export.source_reason, export.rows["password_note"].value_counts()
    """
    if column_map is not None and columns is not None and dict(column_map) != dict(columns):
        raise ValidationError("pass columns= or column_map= (the same mapping), not both")
    columns = column_map if column_map is not None else columns
    preset: str | None = None
    reason = ""
    skipped: tuple[str, ...] = ()
    extra: list[pd.DataFrame] = []
    if source is not None:
        export = read_export(path, source, columns, TARGETS)
        table, columns, preset, reason = export.table, export.columns, export.preset, export.reason
        skipped = export.ignored
        extra.append(export.issues)
    else:
        email_headers = {_header_key(k) for k, v in (columns or {}).items() if v == "email"}
        email_headers |= {k for k, v in _ALIASES.items() if v == "email"}
        table = read_table(path, sheet, lambda header: _header_key(header) in email_headers)
    header_map, ignored = _map_headers(table.headers, columns, table.name)
    ignored = [*skipped, *ignored]
    issues: list[pd.DataFrame] = [
        pd.DataFrame(table.parse_issues, columns=["row", "column", "value", "problem"]),
        *extra,
    ]
    frame = table.cells
    blank = _blank_rows(frame)
    frame, row_numbers = frame[~blank.to_numpy()], table.rows[~blank.to_numpy()]
    if frame.empty and not table.parse_issues:
        raise ValidationError(f"{table.name}: the sheet has a header but no data rows")
    frame.index = pd.Index(row_numbers, name="row")
    raw = frame.copy()
    if "password" in header_map.values():
        # A cell a stray quote filled may hold other rows' passwords: keep it as a secret.
        for number, header in table.doubtful_cells:
            cell: Any = raw.at[number, header] if number in raw.index else None
            if isinstance(cell, str):
                raw.at[number, header] = Secret(cell)  # type: ignore[assignment]
    out = pd.DataFrame(index=frame.index)
    clean: dict[str, list[str]] = {}  # fields whose cells are all trimmed text (or blank)
    for header, target in header_map.items():
        values = frame[header]
        texts = column_texts(values)
        # Every mapped column alike, passwords included: a formula is never taken as a value.
        issues.append(formula_issues(values, header, table.formulas.get(header), texts))
        if target == "password":
            raw[header] = pd.Series(
                [Secret(v) if isinstance(v, str) else None for v in values],
                index=raw.index,
                dtype=object,
            )
            out[target] = raw[header]
            issues.append(weak_password_warnings(values, header))
            continue
        out[target] = stripped = strip_cells(values, texts)
        if texts is not None and stripped is values:
            clean[target] = texts
    checks = [check_email, check_booleans, check_text, check_metadata, check_notes]
    for check in checks:
        issues.extend(check(out, header_map, clean))
    found = [i for i in issues if len(i)]
    all_issues = _mask_passwords(
        _issue_frame(pd.concat(found, ignore_index=True) if found else None), header_map
    )
    errors = all_issues[all_issues["severity"] == ERROR]
    rows = _finish_rows(out, set(errors["row"].dropna().astype(int)))
    result = SheetResult(
        rows, all_issues, table.name, header_map, tuple(ignored), raw, preset, reason
    )
    if strict and len(errors):
        raise ValidationError(_describe(all_issues, table.name), all_issues)
    return result


# ---------------------------------------------------------------------------- headers


def _header_key(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", header.lower())


def _map_headers(
    headers: list[str], columns: Mapping[str, str | None] | None, name: str
) -> tuple[dict[str, str], list[str]]:
    """Sheet header → field; ignored headers. Two headers for one field is an error."""
    user = {_header_key(k): v for k, v in (columns or {}).items()}
    valid_targets = set(TARGETS)
    mapping: dict[str, str] = {}
    ignored: list[str] = []
    for header in headers:
        if header in (columns or {}):
            target = (columns or {})[header]
        elif _header_key(header) in user:
            target = user[_header_key(header)]
        elif match := _META_PREFIX.match(header):
            target = f"metadata.{match['key']}" if match["key"] else None
        else:
            target = _ALIASES.get(_header_key(header))
        if target is None:
            ignored.append(header)
            continue
        if target not in valid_targets and not target.startswith("metadata."):
            raise ValidationError(f"{name}: columns= maps {header!r} to unknown field {target!r}")
        if target in mapping.values():
            other = next(h for h, t in mapping.items() if t == target)
            raise ValidationError(
                f"{name}: columns {other!r} and {header!r} both mean "
                f"{target}; remove one or map it with columns="
            )
        mapping[header] = target
    if "email" not in mapping.values():
        raise ValidationError(
            f"{name}: no email column (found: {', '.join(repr(h) for h in headers)}); "
            "name one 'email' or pass columns={'<your header>': 'email'}"
        )
    return mapping, ignored


# ---------------------------------------------------------------------------- issues and rows


def _issue_frame(frame: pd.DataFrame | None) -> pd.DataFrame:
    if frame is None or frame.empty:
        frame = pd.DataFrame({c: [] for c in ISSUE_COLUMNS})
    frame = frame.assign(severity=frame.get("severity", pd.Series(dtype=object)))
    frame["severity"] = frame["severity"].fillna(ERROR)  # reader issues are all errors
    frame = frame[list(ISSUE_COLUMNS)].astype(ISSUE_COLUMNS)
    return frame.sort_values(["row", "column"], kind="stable").reset_index(drop=True)


def _mask_passwords(issues: pd.DataFrame, header_map: Mapping[str, str]) -> pd.DataFrame:
    secret_headers = [h for h, t in header_map.items() if t == "password"]
    issues.loc[issues["column"].isin(secret_headers), "value"] = MASK
    return issues


def _blank_rows(frame: pd.DataFrame) -> pd.Series:
    """Rows with no value at all (``frame.isna().all(axis=1)``, a column at a time: done at
    the first column with no gap)."""
    blank = np.ones(len(frame), dtype=bool)
    for _, column in frame.items():
        blank &= column.isna().to_numpy()
        if not blank.any():
            break
    return pd.Series(blank, index=frame.index)


def _finish_rows(out: pd.DataFrame, bad_rows: set[int]) -> pd.DataFrame:
    rows = out[~out.index.isin(list(bad_rows))].reset_index()
    texts = [c for c in rows.columns if c not in ("row", "is_verified", "password")]
    rows = rows.assign(**{str(c): _string_column(rows[c]) for c in texts})
    rows = rows.astype({"row": "Int64"})
    order = [
        "row",
        *[c for c in (*FIELDS, *PASSTHROUGH, *NOTE_FIELDS) if c in rows],
        *sorted(str(c) for c in rows if str(c).startswith("metadata.")),
    ]
    return rows[order].reset_index(drop=True)


def _string_column(values: pd.Series) -> pd.Series:
    """``values.astype("string")``, by pyarrow's pandas conversion when every value is text
    or missing (a third faster on a 1,000,000-user export)."""
    try:
        array = pa.array(values.to_numpy(dtype=object), pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return values.astype("string")
    return pd.Series(pd.arrays.ArrowStringArray(array), index=values.index, name=values.name)


def _describe(issues: pd.DataFrame, name: str, limit: int = 50) -> str:
    errors = issues[issues["severity"] == ERROR]
    rows = errors["row"].dropna().nunique()
    lines = [f"{name}: {len(errors)} problem(s) in {rows} row(s)"]
    if len(errors) < len(issues):
        lines[0] += f", and {len(issues) - len(errors)} warning(s)"
    for item in issues.head(limit).to_dict("records"):
        where = f"row {item['row']}" if not pd.isna(item["row"]) else "sheet"
        value = f" {item['value']!r}" if item["value"] else ""
        label = "warning: " if item["severity"] == WARNING else ""
        lines.append(f"  {where}, {item['column']}{value}: {label}{item['problem']}")
    if len(issues) > limit:
        lines.append(f"  … and {len(issues) - limit} more (all in .issues)")
    return "\n".join(lines)
