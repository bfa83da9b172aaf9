"""The blocking facade: :class:`Admin` runs the async core on its own event-loop thread.

It works the same in a script and in a Jupyter cell whose loop is already running.

    >>> admin = connect()                      # PLUGINLAB_* from the environment
    >>> admin.get_member_by_email("ada@example.com")
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import weakref
from collections.abc import Coroutine
from typing import Any, TypeVar

from plabdata.client._core import AsyncAdmin
from plabdata.client._records import Identity, Member, MembersPage, QuotaUsage
from plabdata.config import Secret, Settings

T = TypeVar("T")


class Admin:
    """Blocking facade over :class:`AsyncAdmin`, for scripts and notebooks.

    It owns an event loop on a daemon thread; ``run(coro)`` executes any coroutine there, so
    it works the same in a script and in a Jupyter cell. Ctrl-C cancels the running job
    (its ``finally`` blocks run, journals are flushed) and re-raises KeyboardInterrupt.

    Example:
        >>> with Admin(Settings.from_env()) as admin:
        ...     admin.get_member("mem_...")
    """

    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        if settings is None:
            settings = Settings.from_env(**overrides)
        elif overrides:
            settings = settings.replace(**overrides)
        self.settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="plabdata-loop", daemon=True
        )
        self._thread.start()
        self._finalizer = weakref.finalize(self, _stop_loop, self._loop, self._thread)
        self.aio: AsyncAdmin = self.run(_make_async_admin(settings))

    def __repr__(self) -> str:
        return f"Admin(plugin_id={self.settings.plugin_id!r}, auth_url={self.settings.auth_url!r})"

    def __enter__(self) -> Admin:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close connections and stop the loop thread (idempotent)."""
        if self._finalizer.alive:
            try:
                self.run(self.aio.aclose())
            finally:
                self._finalizer()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on this Admin's loop and return its result (blocking)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("Admin.run() called from its own loop: await the coroutine instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            # Let the job's finally blocks (journal flushes) run before we re-raise.
            with contextlib.suppress(BaseException):
                future.result(timeout=10)
            raise

    # The single-call surface, blocking. Each mirrors the AsyncAdmin method of the same name.

    def list_members_page(
        self, limit: int | None = None, start_after: str | None = None
    ) -> MembersPage:
        return self.run(self.aio.list_members_page(limit, start_after))

    def get_member(self, member_id: str) -> Member | None:
        return self.run(self.aio.get_member(member_id))

    def get_member_by_email(self, email: str) -> Member | None:
        return self.run(self.aio.get_member_by_email(email))

    def get_identities(self, member_id: str) -> dict[str, Identity]:
        return self.run(self.aio.get_identities(member_id))

    def create_member(
        self,
        email: str,
        password: str | Secret,
        *,
        is_verified: bool | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Member:
        return self.run(
            self.aio.create_member(email, password, is_verified=is_verified, metadata=metadata)
        )

    def update_member(self, member_id: str, **fields: Any) -> Member:
        return self.run(self.aio.update_member(member_id, **fields))

    def delete_member(self, member_id: str) -> None:
        self.run(self.aio.delete_member(member_id))

    def refresh_identity_token(self, member_id: str, provider: str) -> Identity:
        return self.run(self.aio.refresh_identity_token(member_id, provider))

    def create_event(
        self,
        event_source: str,
        *,
        member_id: str | None = None,
        country_code: str | None = None,
        subdivision_code: str | None = None,
        is_in_quota: bool | None = None,
        retry_in_doubt: bool = False,
    ) -> None:
        self.run(
            self.aio.create_event(
                event_source,
                member_id=member_id,
                country_code=country_code,
                subdivision_code=subdivision_code,
                is_in_quota=is_in_quota,
                retry_in_doubt=retry_in_doubt,
            )
        )

    def get_quota_usage(self, member_id: str) -> QuotaUsage:
        return self.run(self.aio.get_quota_usage(member_id))


async def _make_async_admin(settings: Settings) -> AsyncAdmin:
    return AsyncAdmin(settings)


def _stop_loop(loop: asyncio.AbstractEventLoop, thread: threading.Thread) -> None:
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)
    if not loop.is_running():
        loop.close()


def connect(settings: Settings | None = None, **overrides: Any) -> Admin:
    """An :class:`Admin` from ``settings``, or from ``PLUGINLAB_*`` environment variables.

    Example:
        >>> admin = plabdata.connect()
        >>> admin.get_member_by_email("ada@example.com")
    """
    return Admin(settings, **overrides)
