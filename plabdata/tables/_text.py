"""Text files as people export them: which encoding, which delimiter, or not text at all.

Shared by every CSV reader (member sheets, event logs) so that a file one of them accepts
the other accepts too. Decisions are made from the file's first bytes (BOMs, UTF-16's zero
bytes, strict UTF-8, else Windows-1252) and its header line (the delimiter that splits it
into the most fields among ``,`` ``;`` tab ``|``).

Windows-1252 is read as the WHATWG ``windows-1252`` encoding (what browsers do): the five
bytes Python's ``cp1252`` leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) decode to the
Latin-1 control characters of the same value, so no byte of a 1252 file ever fails to
decode half-way through a streamed read. The codec is registered as
:data:`WINDOWS_1252` for readers (pyarrow's CSV reader) that take an encoding name.

    >>> sniff_text(b"email;name\\r\\nada@example.com;Ada\\r\\n", "members.csv")
    TextDialect(encoding='utf-8', delimiter=';')
"""

from __future__ import annotations

import codecs
import csv
from dataclasses import dataclass
from typing import Any

from plabdata.errors import ValidationError

__all__ = [
    "DELIMITERS",
    "WINDOWS_1252",
    "TextDialect",
    "decode_text",
    "sniff_delimiter",
    "sniff_text",
]

#: Candidate field delimiters, in order of preference on a tie.
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
#: The codec name of WHATWG windows-1252 (see the module docs).
WINDOWS_1252 = "plabdata-windows-1252"

# Signatures of common binary formats someone may hand over instead of a CSV export.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook?): export it as CSV"),
    (b"\xd0\xcf\x11\xe0", "an old binary .xls workbook: save it as .xlsx or CSV"),
    (b"PAR1", "a Parquet file: give it a .parquet name"),
    (b"\x1f\x8b", "gzip-compressed: name it .csv.gz, or decompress it"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed: name it .csv.zst, or decompress it"),
    (b"BZh", "bzip2-compressed: name it .csv.bz2, or decompress it"),
    (b"%PDF", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
)
# Control characters never found in text exports (tab, LF, CR and form feed are fine).
_CONTROL = frozenset(range(32)) - {9, 10, 12, 13}


def _windows_1252_table() -> str:
    chars = []
    for byte in range(256):
        try:
            chars.append(bytes([byte]).decode("cp1252"))
        except UnicodeDecodeError:
            chars.append(chr(byte))  # WHATWG: undefined bytes map to U+0080..U+009F
    return "".join(chars)


_DECODING_TABLE = _windows_1252_table()
_ENCODING_TABLE = codecs.charmap_build(_DECODING_TABLE)


def _encode(text: str, errors: str = "strict", /) -> tuple[bytes, int]:
    return codecs.charmap_encode(text, errors, _ENCODING_TABLE)


def _decode(data: Any, errors: str = "strict", /) -> tuple[str, int]:
    return codecs.charmap_decode(data, errors, _DECODING_TABLE)


class _IncrementalDecoder(codecs.IncrementalDecoder):
    def decode(self, data: Any, final: bool = False) -> str:
        return codecs.charmap_decode(data, self.errors, _DECODING_TABLE)[0]


class _IncrementalEncoder(codecs.IncrementalEncoder):
    def encode(self, text: str, final: bool = False) -> bytes:
        return codecs.charmap_encode(text, self.errors, _ENCODING_TABLE)[0]


def _search(name: str) -> codecs.CodecInfo | None:
    if name.replace("_", "-") != WINDOWS_1252:
        return None
    return codecs.CodecInfo(
        name=WINDOWS_1252,
        encode=_encode,
        decode=_decode,
        incrementalencoder=_IncrementalEncoder,
        incrementaldecoder=_IncrementalDecoder,
    )


codecs.register(_search)


@dataclass(frozen=True)
class TextDialect:
    """How to read a text file.

    Attributes:
        encoding: A Python codec name (``utf-8``, ``utf-16``, ``utf-16-le``, ``utf-16-be``,
            or :data:`WINDOWS_1252`).
        delimiter: The field delimiter, one of :data:`DELIMITERS`.
    """

    encoding: str
    delimiter: str


def _encodings(data: bytes) -> list[str]:
    """Candidate encodings of ``data``, in order (the BOM ones skip their BOM)."""
    if data.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    # UTF-16 without a BOM: every other byte of ASCII-heavy text is zero.
    if len(data) > 3 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        return ["utf-16-le"]
    if len(data) > 3 and data[0] == 0 and data[2] == 0 and data[1] != 0:
        return ["utf-16-be"]
    return ["utf-8", WINDOWS_1252]


def _decode_sample(data: bytes, encoding: str, complete: bool) -> str | None:
    """``data`` decoded, tolerating a character cut in two at the end of a sample."""
    decoder = codecs.getincrementaldecoder(encoding)()
    try:
        return str(decoder.decode(data, final=complete))
    except UnicodeDecodeError:
        return None


def _not_text(data: bytes, name: str) -> ValidationError | None:
    for magic, what in _MAGIC:
        if data.startswith(magic):
            return ValidationError(f"{name}: not a text file: {what}")
    return None


def _binary_error(name: str) -> ValidationError:
    return ValidationError(
        f"{name}: not a readable text file (binary content, or an encoding other than "
        "UTF-8, UTF-16 or Windows-1252); export it as CSV in UTF-8"
    )


def _looks_binary(text: str) -> bool:
    controls = sum(1 for ch in text[:65536] if ord(ch) in _CONTROL)
    return "\x00" in text or controls > max(2, len(text[:65536]) // 1000)


def sniff_delimiter(text: str) -> str:
    """The candidate delimiter that splits the header line into the most fields.

    Example:
        >>> sniff_delimiter("timestamp|email|source\\n")
        '|'
    """
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: len(next(csv.reader([first], delimiter=d), [])) for d in DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 1 else ","


def sniff_text(sample: bytes, name: str, *, complete: bool = False) -> TextDialect:
    """The encoding and delimiter of a text file, from its first bytes.

    Args:
        sample: The file's first bytes (e.g. 1 MiB), or all of them.
        name: The file, for messages.
        complete: ``sample`` is the whole file (a truncated last character is then an error).

    Raises:
        ValidationError: The file is not text (a workbook, an archive, binary bytes).

    Example:
        >>> sniff_text("a;b\\n1;2\\n".encode("utf-16"), "log.csv").encoding
        'utf-16'
    """
    refusal = _not_text(sample, name)
    if refusal is not None:
        raise refusal
    for encoding in _encodings(sample):
        text = _decode_sample(sample, encoding, complete)
        if text is None:
            continue
        if _looks_binary(text):
            break
        return TextDialect(encoding, sniff_delimiter(text))
    raise _binary_error(name)


def decode_text(data: bytes, name: str) -> tuple[str, TextDialect]:
    """A whole text file decoded (BOM removed), with its dialect.

    Raises:
        ValidationError: The file is not text.

    Example:
        >>> decode_text("é;1\\n".encode("cp1252"), "sheet.csv")[0]
        'é;1\\n'
    """
    dialect = sniff_text(data, name, complete=True)
    return codecs.decode(data, dialect.encoding), dialect
