"""CSV logs through pyarrow, in whatever encoding and delimiter they were exported with.

The dialect (encoding, delimiter) is sniffed from the first MiB of the file's text — after
decompression for ``.csv.gz`` and friends — by :func:`plabdata.tables._text.sniff_text`, the
rules member sheets follow. UTF-8 (with or without BOM) is parsed natively; UTF-16 and
Windows-1252 are transcoded by pyarrow while streaming. Columns are read as bytes
(dictionary-encoded but for the dense timestamp column), so a byte that is not text rejects
its row in validation rather than stopping the file half-way.

    >>> dialect = sniff(Path("export.csv"), "export.csv")
    >>> header(Path("export.csv"), dialect)
    ('time', 'email', 'source')
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv

from plabdata.errors import ValidationError
from plabdata.tables._text import TextDialect, sniff_text

__all__ = ["batches", "count_lines", "header", "sniff"]

_SNIFF_BYTES = 1 << 20
_DICT_BYTES = pa.dictionary(pa.int32(), pa.binary())


def sniff(path: Path, name: str) -> TextDialect:
    """The file's encoding and delimiter, from its first MiB.

    Raises:
        ValidationError: The file is not text (binary, a workbook, an archive).
    """
    try:
        with pa.input_stream(str(path), compression="detect") as stream:
            sample = stream.read(_SNIFF_BYTES)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValidationError(f"{name}: cannot read the file ({exc})") from None
    return sniff_text(sample, name, complete=len(sample) < _SNIFF_BYTES)


def _open(
    path: Path,
    dialect: TextDialect,
    *,
    block_size: int,
    convert: pacsv.ConvertOptions | None = None,
) -> pacsv.CSVStreamingReader:
    # UTF-8, BOM or not, is pyarrow's own: no transcoding on the common path.
    encoding = "utf8" if dialect.encoding in ("utf-8", "utf-8-sig") else dialect.encoding
    return pacsv.open_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=block_size, encoding=encoding),
        parse_options=pacsv.ParseOptions(delimiter=dialect.delimiter),
        convert_options=convert,
    )


def header(path: Path, dialect: TextDialect) -> tuple[str, ...]:
    """The column names (pyarrow errors, e.g. "Empty CSV file", propagate)."""
    reader = _open(path, dialect, block_size=1 << 20)
    names = tuple(reader.schema.names)
    reader.close()
    return names


def batches(
    path: Path, dialect: TextDialect, include: list[str], dense: frozenset[str], chunk_rows: int
) -> Iterator[pa.RecordBatch]:
    """Record batches of the ``include`` columns as bytes; ``dense`` ones not dictionary-encoded."""
    reader = _open(
        path,
        dialect,
        block_size=max(1 << 20, min(chunk_rows * 96, 1 << 26)),
        convert=pacsv.ConvertOptions(
            column_types={name: pa.binary() if name in dense else _DICT_BYTES for name in include},
            include_columns=include,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            null_values=[""],
        ),
    )
    try:
        yield from reader
    finally:
        reader.close()


def count_lines(path: Path, dialect: TextDialect) -> int | None:
    """Records in an uncompressed CSV file by its newlines (None: compressed or UTF-16)."""
    if not path.name.lower().endswith((".csv", ".tsv")) or dialect.encoding.startswith("utf-16"):
        return None  # no cheap exact count: the progress bar shows no ETA
    lines, last = 0, b"\n"
    with open(path, "rb") as handle:
        while block := handle.read(1 << 24):
            lines += block.count(b"\n")
            last = block[-1:]
    if last != b"\n":
        lines += 1
    return max(lines - 1, 0)
