"""Parsing primitives for event logs: text columns, booleans, problem texts.

Timestamps have modules of their own: :mod:`._timestamps` decides how an input's column is
read, :mod:`._datetimes` parses it.

Vectorised over Arrow arrays. Text columns are handled as *distinct values + one code per
row*: logs repeat the same emails, sources and countries endlessly, so every check and hash
runs over a few thousand values instead of millions of rows.

    >>> text = Text.of(pa.chunked_array([["us", " US", ""]]), 3, case="upper")
    >>> text.codes.tolist(), text.values.to_pylist()
    ([0, 1, -1], ['US', 'US', ''])
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from plabdata.events._fingerprint import NULL_HASH, hash_strings, splitmix

__all__ = ["Problems", "Text", "as_numpy", "parse_booleans"]

_TRUE = ("true", "yes", "1")
_FALSE = ("false", "no", "0")


class Text:
    """A text column as its distinct normalised values plus one code per row (-1: blank).

    Checks and hashes run over the distinct values only (logs repeat the same emails,
    sources and countries endlessly), then spread to rows by indexing with the codes.
    """

    def __init__(self, values: pa.Array, codes: np.ndarray) -> None:
        self.values = values
        self.codes = codes

    @classmethod
    def of(cls, column: pa.ChunkedArray | None, n: int, case: str | None = None) -> Text:
        if column is None:
            return cls(pa.array([], pa.string()), np.full(n, -1, np.int32))
        array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        values = array.dictionary
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        codes = pc.fill_null(array.indices, -1).to_numpy(zero_copy_only=False).astype(np.int32)
        values = pc.utf8_trim_whitespace(values)
        if case == "lower":
            values = pc.utf8_lower(values)
        elif case == "upper":
            values = pc.utf8_upper(values)
        blank = as_numpy(pc.equal(values, "")) | ~as_numpy(pc.is_valid(values))
        if blank.any():
            codes = np.where(np.append(blank, True)[codes], -1, codes).astype(np.int32)
        return cls(values, codes)

    @classmethod
    def constant(cls, value: str, n: int) -> Text:
        return cls(pa.array([value], pa.string()), np.zeros(n, np.int32))

    @property
    def present(self) -> np.ndarray:
        return self.codes >= 0

    def rows(self, value_mask: np.ndarray) -> np.ndarray:
        """Spread a per-value boolean to rows (blank rows: False)."""
        spread: np.ndarray = np.append(np.asarray(value_mask, bool), False)[self.codes]
        return spread

    def array(self) -> pa.Array:
        """The per-row values, dictionary-encoded (null where blank)."""
        indices = pa.array(self.codes, pa.int32(), mask=self.codes < 0)
        return pa.DictionaryArray.from_arrays(indices, self.values)

    def hashes(self, key: str, salt: np.uint64 | None = None) -> np.ndarray:
        hashed = hash_strings(self.values, key)
        if salt is not None:
            hashed = splitmix(hashed ^ salt)
        spread: np.ndarray = np.append(hashed, NULL_HASH)[self.codes]
        return spread


def as_numpy(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    filled = pc.fill_null(mask, False)
    if isinstance(filled, pa.ChunkedArray):
        filled = filled.combine_chunks()
    return np.asarray(filled.to_numpy(zero_copy_only=False), dtype=bool)


def parse_booleans(column: pa.ChunkedArray | None, n: int) -> tuple[np.ndarray, np.ndarray, Text]:
    """(value per row with -1 = blank / 0 / 1, mask of values that are not booleans, text)."""
    if column is not None and pa.types.is_boolean(column.type):
        array = column.combine_chunks()
        value = pc.fill_null(array.cast(pa.int8()), -1).to_numpy(zero_copy_only=False)
        return value.astype(np.int8), np.zeros(n, bool), Text.of(None, n)
    text = Text.of(column, n, case="lower")
    words = text.values
    if column is not None and pa.types.is_floating(column.type):
        words = pc.replace_substring_regex(words, r"\.0+$", "")
    truthy = as_numpy(pc.is_in(words, value_set=pa.array(_TRUE)))
    falsy = as_numpy(pc.is_in(words, value_set=pa.array(_FALSE)))
    per_value = np.where(truthy, 1, np.where(falsy, 0, -2)).astype(np.int8)
    value = np.append(per_value, -1)[text.codes]
    return np.where(value == -2, -1, value).astype(np.int8), value == -2, text


class Problems:
    """Per-row problem texts, built only for the rows that have one."""

    def __init__(self, n: int) -> None:
        self.texts: np.ndarray = np.full(n, None, dtype=object)

    def add(self, mask: np.ndarray, message: str, values: Text | pa.Array | None = None) -> None:
        rows = np.flatnonzero(mask)
        if rows.size == 0:
            return
        if isinstance(values, Text):
            shown = values.values.take(pa.array(values.codes[rows])).to_pylist()
        elif values is not None:
            shown = values.take(pa.array(rows)).to_pylist()
        else:
            shown = [None] * rows.size
        for row, value in zip(rows.tolist(), shown, strict=True):
            text = message.format(value=value)
            old = self.texts[row]
            self.texts[row] = text if old is None else f"{old}; {text}"

    @property
    def mask(self) -> np.ndarray:
        return np.asarray(pd.notna(self.texts), dtype=bool)
