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
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from email_validator import EmailNotValidError, validate_email

from plabdata.config import Secret
from plabdata.errors import ValidationError
from plabdata.members._readers import SheetSource, missing, read_table
from plabdata.members._sources import read_export
from plabdata.tables._keys import email_keys

#: The member fields a sheet can set, in the order they appear in ``SheetResult.rows``.
TEXT_FIELDS = ("name", "given_name", "family_name", "picture_url")
FIELDS = ("email", *TEXT_FIELDS, "is_verified", "password")
#: Columns the API never sets; accepted so an edited ``load_members`` export can be re-fed.
PASSTHROUGH = ("member_id", "sign_in_method")
#: Per-row notes a platform export carries into the plan (see :mod:`plabdata.members._sources`):
#: ``password_note`` is ``"reset-needed"`` (the member had a password there, which cannot move)
#: or ``"oauth-only"`` (the member signed in only with Google, GitHub…).
NOTE_FIELDS = ("password_note",)
PASSWORD_NOTES = ("reset-needed", "oauth-only")
MAX_NAME_LENGTH = 256
MAX_URL_LENGTH = 2048
#: Shorter passwords get a warning. No public source states a minimum (PluginLab's own SDK
#: example creates a member with ``12345``), so the row is still sent and the API decides.
WEAK_PASSWORD_LENGTH = 6
MASK = "***"
#: The columns of ``SheetResult.issues``.
ISSUE_COLUMNS = {
    "row": "Int64",
    "column": "string",
    "value": "string",
    "problem": "string",
    "severity": "string",
}
ERROR, WARNING = "error", "warning"
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
_HTTP_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_TRUE = frozenset({"true", "yes", "y", "t", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})


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
    blank = frame.isna().all(axis=1)
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
    for header, target in header_map.items():
        values = frame[header]
        # Every mapped column alike, passwords included: a formula is never taken as a value.
        issues.append(_formula_issues(values, header, table.formulas.get(header)))
        if target == "password":
            raw[header] = pd.Series(
                [Secret(v) if isinstance(v, str) else None for v in values],
                index=raw.index,
                dtype=object,
            )
            out[target] = raw[header]
            issues.append(_weak_password_warnings(values, header))
            continue
        out[target] = _strip(values)
    checks = [_check_email, _check_booleans, _check_text, _check_metadata, _check_notes]
    for check in checks:
        issues.extend(check(out, header_map))
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


# ---------------------------------------------------------------------------- checks


# The per-cell checks below are list comprehensions, not ``Series.map``: the same verdicts,
# ~5x faster on a 1,000,000-row export (benchmarks/bench_migrations.py).


def _strip(values: pd.Series) -> pd.Series:
    items = values.tolist()
    texts = _texts(items)
    if texts is None or list(map(str.strip, texts)) != texts:
        items = [(v.strip() or None) if isinstance(v, str) else v for v in items]
    return pd.Series(items, index=values.index, dtype=object)


def _texts(items: list[Any]) -> list[str] | None:
    """The present cells when every one is non-empty text, else None: C-speed passes over
    them answer a check for the whole column (no cell starts with ``=``, none is too long…),
    so a clean column skips the per-cell checks."""
    present = list(filter(None, items))
    if len(present) + items.count(None) != len(items) or not set(map(type, present)) <= {str}:
        return None  # an empty cell, or a value that is not text
    return present


def _joined(items: list[Any]) -> str | None:
    """:func:`_texts` joined by NUL (None when a cell holds a NUL itself)."""
    texts = _texts(items)
    if texts is None:
        return None
    joined = "\x00".join(texts)
    return joined if joined.count("\x00") == max(len(texts) - 1, 0) else None


def _mask(values: pd.Series, flags: list[bool]) -> pd.Series:
    return pd.Series(np.array(flags, dtype=bool), index=values.index)


def _issues(
    mask: pd.Series, values: pd.Series, column: str, problem: Any, severity: str = ERROR
) -> pd.DataFrame:
    hit = values[mask.fillna(False).astype(bool)]
    texts = problem if isinstance(problem, pd.Series) else pd.Series(problem, index=hit.index)
    return pd.DataFrame(
        {
            "row": hit.index,
            "column": column,
            "value": hit.map(lambda v: "" if missing(v) else str(v)).to_numpy(),
            "problem": texts.loc[hit.index].to_numpy(),
            "severity": severity,
        }
    )


def _formula_issues(values: pd.Series, header: str, xlsx_cells: set[int] | None) -> pd.DataFrame:
    """Formula cells of one column: an XLSX formula cell, or text starting with ``=`` (a
    formula pasted as text, or a CSV injection). Values are checked as read, before trimming,
    so a password column is checked exactly like the others."""
    items = values.tolist()
    joined = _joined(items)
    starts = _mask(
        values,
        [False] * len(items)
        if joined is not None and "=" not in joined
        else [isinstance(v, str) and "=" in v and v.lstrip().startswith("=") for v in items],
    )
    mask = starts | values.index.isin(list(xlsx_cells or ()))
    return _issues(
        mask,
        values,
        header,
        "formula cell: plabdata reads values, not formulas (copy and paste as values)",
    )


def _weak_password_warnings(values: pd.Series, header: str) -> pd.DataFrame:
    short = values.map(
        lambda v: (
            isinstance(v, str) and not v.lstrip().startswith("=") and len(v) < WEAK_PASSWORD_LENGTH
        )
    )
    return _issues(
        short,
        values,
        header,
        f"password shorter than {WEAK_PASSWORD_LENGTH} characters: PluginLab may refuse it "
        "as weak (the row is still sent; a refusal comes back as its result)",
        severity=WARNING,
    )


def _header_for(header_map: Mapping[str, str], target: str) -> str:
    return next(h for h, t in header_map.items() if t == target)


def _check_email(out: pd.DataFrame, header_map: Mapping[str, str]) -> list[pd.DataFrame]:
    header = _header_for(header_map, "email")
    raw = out["email"]
    found: list[pd.DataFrame] = [_issues(raw.isna(), raw, header, "email is missing")]
    texts = _texts(raw.tolist())
    if texts is not None and len(texts) == len(raw):  # every cell is text
        items: list[Any] = list(map(str.lower, texts))
    else:
        items = [v.lower() if isinstance(v, str) else v for v in raw.tolist()]
    texts = _texts(items)
    plain = texts is not None and len(texts) == len(items) and _all_plain(texts)
    # Plain: every address is valid and its own normalised form.
    verdicts = (
        _PlainVerdicts()
        if plain
        else {e: _validate_email(e) for e in dict.fromkeys(items) if isinstance(e, str)}
    )
    index = raw.index
    if plain:
        normalised = pd.Series(items, index=index, dtype=object)
        problems = pd.Series([None] * len(items), index=index, dtype=object)
    else:
        normalised = pd.Series(
            [verdicts[v][0] if isinstance(v, str) else None for v in items],
            index=index,
            dtype=object,
        )
        problems = pd.Series(
            [verdicts[v][1] if isinstance(v, str) else None for v in items],
            index=index,
            dtype=object,
        )
    skip = _mask(raw, [isinstance(v, str) and v.startswith("=") for v in raw.tolist()])
    found.append(_issues(problems.notna() & ~skip, raw, header, problems))
    out["email"] = normalised
    # Duplicates by the canonical key the plan matches members with, so that two spellings of
    # one address are caught here, as issues, and never become two members.
    # A plain address is its own key: email_key lower-cases and trims ASCII, nothing more.
    keys = normalised.astype("string") if plain else email_keys(normalised)
    dup = keys.notna() & keys.duplicated(keep=False)
    if dup.any():
        groups = keys[dup].groupby(keys[dup]).groups
        text = {
            e: f"duplicate email {e!r} on rows "
            f"{', '.join(map(str, idx[:-1]))} and {idx[-1]} (case-insensitive): "
            "keep one"
            for e, idx in groups.items()
        }
        found.append(_issues(dup, raw, header, keys[dup].map(text)))
    return found


def _validate_email(email: str) -> tuple[str | None, str | None]:
    if _plain_email(email):
        return email, None  # what email_validator says of it (tests/members/test_sources.py)
    try:
        info = validate_email(email, check_deliverability=False)
    except EmailNotValidError as exc:
        return None, f"not a valid email address: {exc}"
    return info.normalized.lower(), None


#: A lower-case ASCII address email_validator accepts and normalises to itself, by one regex
#: that is ~20x faster (a 1,000,000-user export): at most 254 characters, no ``--`` anywhere
#: (Punycode and its look-alikes go the slow way), a dot-atom local part of at most 64
#: characters, LDH domain labels under a letters-only top-level domain that is not special-use.
#: Anything else: email_validator.
_SPECIAL_USE = ("arpa", "invalid", "local", "localhost", "onion", "test")
_PLAIN_EMAIL = re.compile(
    r"(?=.{1,254}$)(?!.*--)(?=[^@]{1,64}@)"
    r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
    + "".join(rf"(?<!\.{tld})" for tld in _SPECIAL_USE),
    re.DOTALL,
)


def _plain_email(email: str) -> bool:
    return _PLAIN_EMAIL.fullmatch(email) is not None


def _all_plain(emails: list[str]) -> bool:
    """:func:`_plain_email` of every address (C-speed iteration)."""
    return all(map(_PLAIN_EMAIL.fullmatch, emails))


class _PlainVerdicts(dict[str, tuple[str | None, str | None]]):
    """Every address valid as written (see :func:`_all_plain`)."""

    def __missing__(self, email: str) -> tuple[str | None, str | None]:
        return email, None


def _check_booleans(out: pd.DataFrame, header_map: Mapping[str, str]) -> list[pd.DataFrame]:
    if "is_verified" not in out:
        return []
    raw = out["is_verified"]
    lowered = [v.lower() if isinstance(v, str) else v for v in raw.tolist()]
    parsed = pd.Series(
        [True if v in _TRUE else False if v in _FALSE else None for v in lowered],
        index=raw.index,
        dtype=object,
    )
    bad = raw.notna() & parsed.isna()
    out["is_verified"] = parsed.astype("boolean")
    return [
        _issues(
            bad,
            raw,
            _header_for(header_map, "is_verified"),
            "not a yes/no value (use yes/no, true/false, 1/0, x or blank)",
        )
    ]


def _check_text(out: pd.DataFrame, header_map: Mapping[str, str]) -> list[pd.DataFrame]:
    found = []
    for target in (*TEXT_FIELDS, *PASSTHROUGH):
        if target not in out:
            continue
        values, header = out[target], _header_for(header_map, target)
        items = values.tolist()
        limit = MAX_URL_LENGTH if target == "picture_url" else MAX_NAME_LENGTH
        texts = _texts(items)
        if texts is None or max(map(len, texts), default=0) > limit:
            not_text = _mask(values, [not isinstance(v, str) and not missing(v) for v in items])
            found.append(_issues(not_text, values, header, "must be text"))
            too_long = _mask(values, [isinstance(v, str) and len(v) > limit for v in items])
            found.append(_issues(too_long, values, header, f"longer than {limit} characters"))
        if target == "picture_url":
            bad = _mask(
                values,
                [
                    isinstance(v, str) and not v.startswith("=") and _HTTP_URL.match(v) is None
                    for v in items
                ],
            )
            found.append(_issues(bad, values, header, "not an http(s) URL"))
    return found


def _check_metadata(out: pd.DataFrame, header_map: Mapping[str, str]) -> list[pd.DataFrame]:
    found = []
    for header, target in header_map.items():
        if target.startswith("metadata."):
            values = out[target]
            items = values.tolist()
            if _texts(items) is not None:
                continue  # every value is text
            bad = _mask(values, [not isinstance(v, str) and not missing(v) for v in items])
            found.append(
                _issues(
                    bad,
                    values,
                    header,
                    "metadata values must be text, not "
                    + values[bad].map(lambda v: type(v).__name__),
                )
            )
    return found


def _check_notes(out: pd.DataFrame, header_map: Mapping[str, str]) -> list[pd.DataFrame]:
    if "password_note" not in out:
        return []
    values = out["password_note"]
    bad = values.notna() & ~values.isin(PASSWORD_NOTES)
    problem = f"password_note must be one of {', '.join(PASSWORD_NOTES)} or blank"
    return [_issues(bad, values, _header_for(header_map, "password_note"), problem)]


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


def _finish_rows(out: pd.DataFrame, bad_rows: set[int]) -> pd.DataFrame:
    rows = out[~out.index.isin(list(bad_rows))].reset_index()
    dtypes = {c: "string" for c in rows.columns if c not in ("row", "is_verified", "password")}
    rows = rows.astype({"row": "Int64", **dtypes})
    order = [
        "row",
        *[c for c in (*FIELDS, *PASSTHROUGH, *NOTE_FIELDS) if c in rows],
        *sorted(str(c) for c in rows if str(c).startswith("metadata.")),
    ]
    return rows[order].reset_index(drop=True)


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
