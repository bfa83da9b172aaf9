"""The admin client: PluginLab's endpoints, one method each, typed records back.

- ``_core``: :class:`AsyncAdmin`, the one async core (several small httpx pools, retries);
- ``_sync``: :class:`Admin`, the blocking facade on its own loop thread, and ``connect``;
- ``_records``: ``Member``, ``Identity``, ``QuotaUsage``, ``MembersPage`` from the wire JSON;
- ``_retry``: the retry policies (tenacity values), failure classes and per-call tracing;
- ``_ratelimit``: the shared, adaptive rate limiter.

Modules here are private: the public names are re-exported by :mod:`plabdata`.
"""
