"""User tokens and webhooks, for a plugin's own server (no pandas, no admin secret).

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
