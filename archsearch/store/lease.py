"""Task leases: the driver running a task proves it still lives by renewing a lease in the
database, so every reader (CLI, API, a restarted server) can tell a live driver from a dead one,
and resume and cancel are fenced by it (see docs/service.md, "Leases")."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable

from archsearch.errors import ArchsearchError
from archsearch.options import seconds_from_env

LEASE_SECONDS = 30.0  # how long a lease lasts unless renewed; a dead driver's task lapses after
LEASE_ENV = "ARCHSEARCH_LEASE_SECONDS"  # a shorter lease for tests and impatient operators
RENEWALS_PER_LEASE = 6  # renew every LEASE/6 s: a few missed renewals do not lose the lease


class LeaseLost(ArchsearchError):
    """The driver lost its task's lease mid-run (another driver took it after it lapsed)."""

    def __init__(self, task_id: int, reason: str) -> None:
        super().__init__(f"task {task_id}: this driver lost the task's lease ({reason}); it "
                         "stopped without writing over the driver that holds it now.")


def lease_seconds() -> float:
    """The lease length: ``$ARCHSEARCH_LEASE_SECONDS``, else LEASE_SECONDS."""
    return seconds_from_env(LEASE_ENV, LEASE_SECONDS, 0.5, 3600, "the lease length")


def new_owner() -> str:
    """A lease owner id: which machine and process, and unique across restarts."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


class LeaseKeeper:
    """Renews a held lease from a background thread every lease/6 seconds. It calls
    ``on_cancel`` once when a cancel was requested in the database, and ``on_lost`` once when
    the lease is lost (another driver took it after it lapsed, or renewals failed until it
    expired); the driver decides how to stop."""

    def __init__(self, renew: Callable[[], tuple[bool, bool]], seconds: float,
                 on_cancel: Callable[[], None], on_lost: Callable[[str], None]) -> None:
        self._renew, self._seconds = renew, seconds
        self._on_cancel, self._on_lost = on_cancel, on_lost
        self._stop = threading.Event()
        self.cancelled = False
        self.error: Exception | None = None  # why the latest renewal failed (None: it did not)
        self._thread = threading.Thread(target=self._run, name="lease", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop renewing (before the driver writes its ending and releases the lease)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        interval = self._seconds / RENEWALS_PER_LEASE
        failing_since: float | None = None
        while not self._stop.wait(interval):
            try:
                held, cancel = self._renew()
                failing_since, self.error = None, None
            except Exception as exc:  # noqa: BLE001  (the database may come back in time)
                self.error = exc
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since < self._seconds:
                    continue
                held, cancel = False, False
                reason = f"the lease could not be renewed for {self._seconds:g} s: {exc}"
            else:
                reason = "another driver took the task's lease after it lapsed"
            if not held:
                self._on_lost(reason)
                return
            if cancel and not self.cancelled:
                self.cancelled = True
                self._on_cancel()
