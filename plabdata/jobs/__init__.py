"""The engine of journaled bulk jobs: the journal, outcomes, the bounded runner.

Both bulk jobs — applying a member plan and backfilling events — are thin users of it.
Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
