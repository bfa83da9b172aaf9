"""Usage events from logs: read, validate, preview and backfill into PluginLab custom events.

The public names of the events job, gathered from the modules that implement them:

- :func:`read_events` (:mod:`plabdata.events_read`): stream CSV / Parquet / DataFrames.
- :func:`validate_events`, :func:`quota_impact`, :data:`UPLOAD_TIME_NOTE`
  (:mod:`plabdata.events_validate`): checks, email → member resolution, fingerprints.
- :func:`backfill_events`, :class:`BackfillReport` (:mod:`plabdata.backfill`): the
  journaled, resumable upload and its report.

    >>> report = backfill_events(admin, "data/web_ui_events.parquet", source_name="WEB_UI",
    ...                          journal="web_ui.journal.sqlite", dry_run=True)
    >>> print(report.summary())
"""

from plabdata.backfill import backfill_events
from plabdata.backfill_report import BackfillReport
from plabdata.events_read import CANONICAL_COLUMNS, read_events
from plabdata.events_validate import UPLOAD_TIME_NOTE, quota_impact, validate_events

__all__ = [
    "CANONICAL_COLUMNS",
    "UPLOAD_TIME_NOTE",
    "BackfillReport",
    "backfill_events",
    "quota_impact",
    "read_events",
    "validate_events",
]
