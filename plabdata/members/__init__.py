"""The member base: loaders, sheet reading, diff, plan, apply, identity refresh.

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
