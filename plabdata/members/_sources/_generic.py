"""Any other export: CSV, JSON or NDJSON, its fields named with ``column_map``.

Nested objects are flattened to dotted paths; a field ``column_map`` does not name keeps its
path as a header, so the plain sheet's header rules still apply (``E-mail``, ``First name``,
``metadata.<key>``…). ``column_map`` targets: the sheet's fields (never ``password``),
``metadata.<key>``, ``original_user_id``, ``original_created_at`` and ``password_hash``
(the member had a password there: ``password_note`` ``"reset-needed"``). ``migrated_from``
is not set: no platform is known.
"""

from __future__ import annotations

from collections.abc import Iterator

from plabdata.members._readers import SheetSource
from plabdata.members._sources._common import Mapper, metadata_text
from plabdata.members._sources._files import (
    Records,
    Sniffed,
    read_csv_export,
    read_json_document,
    read_ndjson,
)

NAME = "generic"
TITLE = "another platform"


def read(source: SheetSource, sniffed: Sniffed) -> Iterator[Records]:
    """The export's users."""
    if sniffed.kind == "csv":
        yield read_csv_export(source, lambda h: "mail" in h.lower())
    elif sniffed.kind == "ndjson":
        yield from read_ndjson(source)
    else:
        yield read_json_document(source)


def mapper(records: Records) -> Mapper:
    """Every field as its own header (lists as JSON text); ``column_map`` does the rest."""
    m = Mapper(records, None)
    for name in records.names:
        values = records.values(name).tolist()
        if any(isinstance(v, list | dict) for v in values):
            values = [metadata_text(v)[0] if isinstance(v, list | dict) else v for v in values]
        m.put(name, "", values)
    return m


def recognise(keys: set[str], sample: dict[str, object]) -> str | None:
    """Never chosen by ``auto``: a generic export needs ``column_map``."""
    return None
