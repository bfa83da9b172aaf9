"""Frames: the dtypes, record → DataFrame conversion and exports every job shares.

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
