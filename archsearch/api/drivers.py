"""Background searches: one driver process per task, ``python -m archsearch search --resume ID``.

A separate process (not a thread) because a search owns its Ray driver and signal handling, and
the API must stay responsive and run several tasks at once. Whatever way a driver ends, its task
never stays ``queued`` or ``running``: the supervisor thread ends it once the process is gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from archsearch.api.config import ServeConfig
from archsearch.store.lease import new_owner
from archsearch.types import TaskStatus
from archsearch.workflow import CANCELLED, cancel_task, claim, end_unfinished_task


@dataclass
class _Driver:
    process: subprocess.Popen
    owner: str  # the lease owner id it runs as
    cancelled: threading.Event = field(default_factory=threading.Event)


class DriverPool:
    def __init__(self, config: ServeConfig) -> None:
        self.config = config
        self.log_dir = config.data_dir / "logs"
        self._drivers: dict[int, _Driver] = {}
        self._lock = threading.Lock()

    def log_file(self, task_id: int) -> Path:
        return self.log_dir / f"task-{task_id}.log"

    def launch(self, task_id: int) -> None:
        """Start the driver of a stored task (a new one, or one to resume). Its lease is taken
        here first, atomically: LeaseHeld while another live driver holds it."""
        owner = new_owner()
        claim(self.config.db_url, task_id, owner)
        command = [sys.executable, "-m", "archsearch", "search", "--resume", str(task_id),
                   "--db", self.config.db_url, "--lease-owner", owner]
        if self.config.ray_address:
            command += ["--ray-address", self.config.ray_address]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_file(task_id), "ab") as log:
                # Its own session, so that a cancel can stop the driver's whole process group.
                process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log,
                                           stderr=subprocess.STDOUT,
                                           start_new_session=True)
        except OSError as exc:
            end_unfinished_task(self.config.db_url, task_id, TaskStatus.FAILED,
                                f"the driver process could not start: {exc}", owner)
            raise
        driver = _Driver(process, owner)
        with self._lock:
            self._drivers[task_id] = driver
        threading.Thread(target=self._supervise, args=(task_id, driver), daemon=True,
                         name=f"driver-{task_id}").start()

    def running(self, task_id: int) -> bool:
        with self._lock:
            return task_id in self._drivers

    def cancel(self, task_id: int) -> None:
        """Interrupt a task: SIGINT lets its driver store it ``interrupted`` and write the report
        of the trials done; a driver that has not exited after the grace period is killed with
        its process group. A task with no driver here (one started by an earlier server, or
        from the CLI) is cancelled through the database: its live driver is asked to stop and
        does as SIGINT would; with no live driver, it is ended at once."""
        with self._lock:
            driver = self._drivers.get(task_id)
        if driver is None:
            cancel_task(self.config.db_url, task_id)
            return
        if driver.cancelled.is_set():
            return
        driver.cancelled.set()
        _signal(driver.process, signal.SIGINT, group=False)
        threading.Thread(target=self._kill_after_grace, args=(driver,), daemon=True,
                         name=f"cancel-{task_id}").start()

    def shutdown(self) -> None:
        """Stop every driver (the server is going away; their tasks end ``interrupted``)."""
        with self._lock:
            task_ids = list(self._drivers)
        for task_id in task_ids:
            self.cancel(task_id)
        with self._lock:
            drivers = list(self._drivers.values())
        for driver in drivers:
            try:
                driver.process.wait(self.config.cancel_grace_s + 10)
            except subprocess.TimeoutExpired:
                _signal(driver.process, signal.SIGKILL, group=True)

    def _kill_after_grace(self, driver: _Driver) -> None:
        for sig, wait_s in ((signal.SIGTERM, self.config.cancel_grace_s), (signal.SIGKILL, 5.0)):
            try:
                driver.process.wait(wait_s)
                return
            except subprocess.TimeoutExpired:
                _signal(driver.process, sig, group=True)

    def _supervise(self, task_id: int, driver: _Driver) -> None:
        code = driver.process.wait()
        if driver.cancelled.is_set():
            status, reason = TaskStatus.INTERRUPTED, CANCELLED
        else:
            status = TaskStatus.FAILED
            reason = (f"the driver process exited with code {code} before ending the task; see "
                      f"{self.log_file(task_id)}")
        end_unfinished_task(self.config.db_url, task_id, status, reason, driver.owner)
        with self._lock:
            self._drivers.pop(task_id, None)


def _signal(process: subprocess.Popen, sig: signal.Signals, group: bool) -> None:
    try:
        if group:
            os.killpg(process.pid, sig)  # the driver leads its own session: pgid == pid
        else:
            process.send_signal(sig)
    except ProcessLookupError:  # already gone
        pass
