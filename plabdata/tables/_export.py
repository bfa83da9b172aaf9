"""Exports: Parquet keeps every dtype; CSV and XLSX are for people (formulas neutralised).

>>> export_frame(load_members(admin), "members.parquet")
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from plabdata.tables._dtypes import STRING

# ---------------------------------------------------------------------------- export

#: A cell starting with one of these is read as a formula by Excel, LibreOffice and Sheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formulas(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose text cells cannot run as spreadsheet formulas (prefixed with ``'``).

    Applied to CSV and XLSX exports only; Parquet keeps values exactly.
    """
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if not (pd.api.types.is_string_dtype(column) or column.dtype == object):
            continue
        text = column.astype(STRING)
        risky = text.str.startswith(FORMULA_PREFIXES).fillna(False).astype(bool)
        if risky.any():
            out[name] = text.where(~risky, "'" + text)
    return out


def export_frame(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a frame as Parquet, CSV or XLSX, by the file's suffix.

    Parquet round-trips dtypes exactly; CSV and XLSX are for people, so times are written as
    ISO 8601 in UTC and formula-looking cells are neutralised.

    Example:
        >>> export_frame(load_members(admin), "members.parquet")
    """
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        frame.to_parquet(path, index=False)
    elif suffix in (".csv", ".xlsx"):
        safe = neutralise_formulas(frame)
        for name in safe.columns:
            if isinstance(safe[name].dtype, pd.DatetimeTZDtype):
                if suffix == ".xlsx":
                    # Excel has no time zones: write naive UTC, said in the column name.
                    safe[name] = safe[name].dt.tz_localize(None)
                else:
                    safe[name] = safe[name].dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ").str[:-4] + "Z"
        if suffix == ".csv":
            safe.to_csv(path, index=False)
        else:
            safe = safe.rename(
                columns={
                    c: f"{c} (UTC)"
                    for c in frame.columns
                    if isinstance(frame[c].dtype, pd.DatetimeTZDtype)
                }
            )
            safe.to_excel(path, index=False)
    else:
        raise ValueError(f"cannot export to {path.name!r}: use .parquet, .csv or .xlsx")
    return path
