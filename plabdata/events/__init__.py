"""Usage events from logs: read, validate, fingerprint, preview and backfill.

- ``_read``: stream CSV / Parquet / DataFrames in bounded chunks;
- ``_parse``, ``_validate``: vectorised checks, email → member resolution;
- ``_fingerprint``: the row fingerprints that make a re-run send nothing twice;
- ``_backfill``, ``_upload``, ``_report``: the journaled upload and its report.

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
