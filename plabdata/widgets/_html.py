"""HTML pieces shared by the widgets and their fallbacks outside Jupyter."""

from __future__ import annotations

import html
from collections.abc import Mapping

import pandas as pd

#: Enough style for the fallbacks to read well in a plain browser (Jupyter styles its own).
STYLE = """<style>
.plabdata {overflow-x: auto}
.plabdata table.dataframe {border-collapse: collapse; font-size: 12px; margin: 4px 0 10px}
.plabdata table.dataframe th, .plabdata table.dataframe td {
  padding: 2px 8px; border-bottom: 1px solid #ddd; text-align: left; white-space: nowrap}
.plabdata table.dataframe thead th {border-bottom: 2px solid #999}
.plabdata .counts span {display: inline-block; margin-right: 14px}
.plabdata .note {color: #666; font-size: 12px}
.plabdata .error {color: #b00020}
</style>"""


def table(frame: pd.DataFrame, *, limit: int = 50, empty: str = "nothing") -> str:
    """``frame`` as an escaped HTML table, cut at ``limit`` rows with a note saying so."""
    if frame.empty:
        return f'<p class="note">{html.escape(empty)}</p>'
    shown = frame.head(limit)
    shown = shown.astype(object).where(shown.notna(), "")  # pd.NA would print as "<NA>"
    out = shown.to_html(index=False, escape=True, border=0)
    if len(frame) > limit:
        out += f'<p class="note">first {limit:,} of {len(frame):,} rows</p>'
    return out


def counts(items: Mapping[str, int]) -> str:
    """``create: 3  update: 1 …`` as one line of HTML."""
    cells = "".join(f"<span>{html.escape(k)}: <b>{v:,}</b></span>" for k, v in items.items())
    return f'<div class="counts">{cells}</div>'


def wrap(body: str) -> str:
    """A fallback fragment: the style and the body in one ``plabdata`` block."""
    return f'{STYLE}<div class="plabdata">{body}</div>'
