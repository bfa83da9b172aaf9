"""The checks of a member sheet's columns, and the rules they apply.

:func:`~plabdata.members._sheet.read_member_sheet` maps a sheet's headers to fields, then runs
each check here over whole columns: every check returns issue frames (``row``, ``column``,
``value``, ``problem``, ``severity``) and leaves the rows to the reader, which drops a row an
``"error"`` names and keeps one a ``"warning"`` names. ``check_email`` also normalises the
``email`` column in place, and ``check_booleans`` parses ``is_verified``.

Clean columns take fast paths that give the same verdicts: a column of plain text is checked
by C-speed passes over it, and plain ASCII addresses by one regex that accepts only what
``email_validator`` accepts unchanged (``tests/members/test_sources.py`` compares the two).

    >>> issues = check_email(out, {"E-mail": "email"})
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from email_validator import EmailNotValidError, validate_email

from plabdata.members._readers import missing
from plabdata.tables._keys import email_keys

#: The text fields of a member a sheet can set.
TEXT_FIELDS = ("name", "given_name", "family_name", "picture_url")
#: Columns the API never sets; accepted so an edited ``load_members`` export can be re-fed.
PASSTHROUGH = ("member_id", "sign_in_method")
#: A row's ``password_note`` (carried from a platform export, see
#: :mod:`plabdata.members._sources`): ``"reset-needed"`` (the member had a password there, which
#: cannot move) or ``"oauth-only"`` (the member signed in only with Google, GitHub…).
PASSWORD_NOTES = ("reset-needed", "oauth-only")
MAX_NAME_LENGTH = 256
MAX_URL_LENGTH = 2048
#: Shorter passwords get a warning. No public source states a minimum (PluginLab's own SDK
#: example creates a member with ``12345``), so the row is still sent and the API decides.
WEAK_PASSWORD_LENGTH = 6
ERROR, WARNING = "error", "warning"
_HTTP_URL = re.compile(r"^https?://\S+$", re.IGNORECASE)
_TRUE = frozenset({"true", "yes", "y", "t", "1", "x"})
_FALSE = frozenset({"false", "no", "n", "f", "0"})
_WORDS = {**dict.fromkeys(_TRUE, True), **dict.fromkeys(_FALSE, False)}
#: Field → the :func:`column_texts` of its column, for columns already trimmed (every
#: present cell non-empty text): the checks skip their own pass over these.
Clean = Mapping[str, list[str]]
_NONE_CLEAN: Clean = {}


class Unset:
    """No value given (for an argument where None is a value)."""


UNSET = Unset()


# The per-cell checks below are list comprehensions, not ``Series.map``: the same verdicts,
# ~5x faster on a 1,000,000-row export (benchmarks/bench_migrations.py).


def strip_cells(values: pd.Series, texts: list[str] | Unset | None = UNSET) -> pd.Series:
    """The cells trimmed of surrounding whitespace (a blank text cell becomes None): the
    column itself when no cell needs it. ``texts``: its :func:`column_texts`, if known."""
    if isinstance(texts, Unset):
        texts = _texts(values.tolist())
    if texts is not None and list(map(str.strip, texts)) == texts:
        return values
    items = [(v.strip() or None) if isinstance(v, str) else v for v in values.tolist()]
    return pd.Series(items, index=values.index, dtype=object)


def column_texts(values: pd.Series) -> list[str] | None:
    """The present cells of a column when every one is non-empty text, else None: C-speed
    passes over them answer a check for the whole column (no cell starts with ``=``, none is
    too long…), so a clean column skips the per-cell checks. ``read_member_sheet`` reads it
    once per column and hands it to each check (``clean``: field → texts, for the columns
    whose cells are already trimmed)."""
    return _texts(values.tolist())


def _texts(items: list[Any]) -> list[str] | None:
    present = list(filter(None, items))
    if len(present) != len(items) and len(present) + items.count(None) != len(items):
        return None  # an empty cell (or another false value)
    if not set(map(type, present)) <= {str}:
        return None  # a value that is not text
    return present


def _joined(items: list[Any], texts: list[str] | Unset | None = UNSET) -> str | None:
    """:func:`_texts` joined by NUL (None when a cell holds a NUL itself)."""
    if isinstance(texts, Unset):
        texts = _texts(items)
    if texts is None:
        return None
    joined = "\x00".join(texts)
    return joined if joined.count("\x00") == max(len(texts) - 1, 0) else None


def _mask(values: pd.Series, flags: list[bool] | np.ndarray) -> pd.Series:
    return pd.Series(np.asarray(flags, dtype=bool), index=values.index)


_NO_ISSUES = pd.DataFrame({c: [] for c in ("row", "column", "value", "problem", "severity")})


def _issues(
    mask: pd.Series, values: pd.Series, column: str, problem: Any, severity: str = ERROR
) -> pd.DataFrame:
    flags = mask.fillna(False).astype(bool)
    if not flags.any():
        return _NO_ISSUES.copy()  # (a frame of its own: a caller may add to it)
    hit = values[flags]
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


def formula_issues(
    values: pd.Series,
    header: str,
    xlsx_cells: set[int] | None,
    texts: list[str] | Unset | None = UNSET,
) -> pd.DataFrame:
    """Formula cells of one column: an XLSX formula cell, or text starting with ``=`` (a
    formula pasted as text, or a CSV injection). Values are checked as read, before trimming,
    so a password column is checked exactly like the others. ``texts``: the column's
    :func:`column_texts`, if known."""
    items = values.tolist()
    joined = _joined(items, texts)
    starts = _mask(
        values,
        np.zeros(len(items), dtype=bool)
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


def weak_password_warnings(values: pd.Series, header: str) -> pd.DataFrame:
    """A warning per password shorter than :data:`WEAK_PASSWORD_LENGTH` (formula cells are
    :func:`formula_issues`' errors instead)."""
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


def check_email(
    out: pd.DataFrame, header_map: Mapping[str, str], clean: Clean = _NONE_CLEAN
) -> list[pd.DataFrame]:
    """Missing, invalid and duplicate addresses; replaces ``out["email"]`` by its normalised
    form."""
    header = _header_for(header_map, "email")
    raw = out["email"]
    found: list[pd.DataFrame] = [_issues(raw.isna(), raw, header, "email is missing")]
    texts = clean["email"] if "email" in clean else _texts(raw.tolist())
    if texts is not None and len(texts) == len(raw):  # every cell is non-empty text
        items: list[Any] = list(map(str.lower, texts))
        plain = _all_plain(items)
    else:
        items = [v.lower() if isinstance(v, str) else v for v in raw.tolist()]
        plain = False
    index = raw.index
    if plain:  # every address is valid and its own normalised form: no problem to report
        normalised = pd.Series(items, index=index, dtype=object)
    else:
        verdicts = {e: _validate_email(e) for e in dict.fromkeys(items) if isinstance(e, str)}
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
        skip = _mask(raw, _starts_with_equals(raw.tolist(), texts))
        found.append(_issues(problems.notna() & ~skip, raw, header, problems))
    out["email"] = normalised
    # Duplicates by the canonical key the plan matches members with, so that two spellings of
    # one address are caught here, as issues, and never become two members.
    # A plain address is its own key: email_key lower-cases and trims ASCII, nothing more.
    if plain and len(set(items)) == len(items):
        return found  # (one C pass over Python's cached string hashes)
    keys = normalised if plain else email_keys(normalised)
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


def _starts_with_equals(items: list[Any], texts: list[str] | Unset | None = UNSET) -> np.ndarray:
    """Per cell: text starting with ``=`` (a formula, flagged by :func:`formula_issues`)."""
    joined = _joined(items, texts)
    if joined is not None and not joined.startswith("=") and "\x00=" not in joined:
        return np.zeros(len(items), dtype=bool)
    return np.array([isinstance(v, str) and v.startswith("=") for v in items], dtype=bool)


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


def check_booleans(
    out: pd.DataFrame, header_map: Mapping[str, str], clean: Clean = _NONE_CLEAN
) -> list[pd.DataFrame]:
    """``is_verified`` cells that are not a yes/no word; parses the column to ``boolean``."""
    if "is_verified" not in out:
        return []
    raw = out["is_verified"]
    texts = clean.get("is_verified")
    if texts is not None and len(texts) == len(raw):  # every cell is text: C-speed lookups
        words: list[Any] = list(map(_WORDS.get, map(str.lower, texts)))
    else:
        lowered = [v.lower() if isinstance(v, str) else v for v in raw.tolist()]
        words = [True if v in _TRUE else False if v in _FALSE else None for v in lowered]
    parsed = pd.Series(words, index=raw.index, dtype=object)
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


def check_text(
    out: pd.DataFrame, header_map: Mapping[str, str], clean: Clean = _NONE_CLEAN
) -> list[pd.DataFrame]:
    """Text fields and passthrough columns that are not text or too long, and picture URLs
    that are not http(s)."""
    found = []
    for target in (*TEXT_FIELDS, *PASSTHROUGH):
        if target not in out:
            continue
        values, header = out[target], _header_for(header_map, target)
        items = values.tolist()
        limit = MAX_URL_LENGTH if target == "picture_url" else MAX_NAME_LENGTH
        texts = clean[target] if target in clean else _texts(items)
        if texts is None or max(map(len, texts), default=0) > limit:
            not_text = _mask(values, [not isinstance(v, str) and not missing(v) for v in items])
            found.append(_issues(not_text, values, header, "must be text"))
            too_long = _mask(values, [isinstance(v, str) and len(v) > limit for v in items])
            found.append(_issues(too_long, values, header, f"longer than {limit} characters"))
        if target == "picture_url" and not _all_http_urls(items, texts):
            bad = _mask(
                values,
                [
                    isinstance(v, str) and not v.startswith("=") and _HTTP_URL.match(v) is None
                    for v in items
                ],
            )
            found.append(_issues(bad, values, header, "not an http(s) URL"))
    return found


def _all_http_urls(items: list[Any], texts: list[str] | Unset | None = UNSET) -> bool:
    """Whether every present cell is text matching ``_HTTP_URL`` (blank cells pass): the
    fast path of the picture check. True only when the per-cell regex passes every cell; a
    False (also for rare cells the regex would pass, e.g. one ending in a newline) sends the
    column through the per-cell regex."""
    joined = _joined(items, texts)
    if joined is None:
        return False
    if not joined:
        return True
    # C-speed passes over the whole column, never a regex over it (one took 0.9 s on a
    # 1,000,000-user export): no white space (str.split's is re's \s), every cell starting
    # http:// or https:// in any case, one character at least after each "://".
    if joined[0].isspace() or joined[-1].isspace() or len(joined.split(None, 1)) > 1:
        return False
    low = joined.lower()
    starts = low.count("\x00http://") + low.count("\x00https://")
    starts += low.startswith(("http://", "https://"))
    return starts == low.count("\x00") + 1 and "://\x00" not in low and not low.endswith("://")


def check_metadata(
    out: pd.DataFrame, header_map: Mapping[str, str], clean: Clean = _NONE_CLEAN
) -> list[pd.DataFrame]:
    """``metadata.<key>`` values that are not text."""
    found = []
    for header, target in header_map.items():
        if target.startswith("metadata."):
            if target in clean:
                continue  # every value is text
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


def check_notes(
    out: pd.DataFrame, header_map: Mapping[str, str], clean: Clean = _NONE_CLEAN
) -> list[pd.DataFrame]:
    """``password_note`` values outside :data:`PASSWORD_NOTES`."""
    if "password_note" not in out:
        return []
    values = out["password_note"]
    bad = values.notna() & ~values.isin(PASSWORD_NOTES)
    problem = f"password_note must be one of {', '.join(PASSWORD_NOTES)} or blank"
    return [_issues(bad, values, _header_for(header_map, "password_note"), problem)]
