"""The engine of journaled bulk jobs: the journal, its default places, output safety, the runner.

Both bulk jobs — applying a member plan and backfilling events — are thin users of it:

- ``_journal`` (:class:`Journal`), ``_journal_file`` (lock, atomic creation, refusals),
  ``_journal_schema`` (tables and statements);
- ``_open`` (:func:`open_journal`: the one way a job opens its journal, bound to plugin, job
  and API) and ``_places`` (``$PLABDATA_HOME/journals/<plugin id>/<job>.journal``);
- ``_outputs`` (:func:`check_outputs`, plabdata's own files recognised and skipped);
- ``_runner`` (:func:`run_bounded`).

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
