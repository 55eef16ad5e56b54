"""The embedded Ray runtime listens on loopback only: every listening TCP socket of the
processes it starts (GCS, raylet, workers, the dashboard and its agents) is on 127.0.0.1 or ::1.
"""

from __future__ import annotations

import ipaddress
import os
import time

import pytest
import ray

from archsearch.search.ray_backend.runtime import ray_runtime

pytestmark = pytest.mark.slow

# The services that must be seen listening, so that the test cannot pass on an empty list.
SERVICES = {"gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent"}


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)  # ::ffff:127.0.0.1, a dual-stack socket's view
    return (mapped or ip).is_loopback


def listening_sockets() -> set[tuple[str, int, str]]:
    """(address, port, process name) of every listening TCP socket of this process's tree."""
    import psutil  # a dev dependency; Ray also ships it (ray/thirdparty_files, on sys.path)

    me = psutil.Process(os.getpid())
    found = set()
    for process in [me, *me.children(recursive=True)]:
        try:
            for conn in process.net_connections(kind="tcp"):
                if conn.status == psutil.CONN_LISTEN:
                    found.add((conn.laddr.ip, conn.laddr.port, process.name()))
        except psutil.Error:  # a worker that exited meanwhile
            continue
    return found


def test_the_embedded_runtime_listens_on_loopback_only():
    with ray_runtime(None) as runtime:
        assert runtime.embedded
        assert ray.get(ray.remote(lambda: 1).remote()) == 1  # a worker process up and serving
        seen: set[tuple[str, int, str]] = set()
        deadline = time.monotonic() + 60
        # The agents start beside the raylet, not before ray.init returns: look until each
        # service listens (and then once more, for the sockets opened last).
        while not SERVICES <= {name for _, _, name in seen} and time.monotonic() < deadline:
            seen |= listening_sockets()
            time.sleep(1)
        time.sleep(2)
        seen |= listening_sockets()
    assert SERVICES <= {name for _, _, name in seen}, seen
    public = sorted(s for s in seen if not is_loopback(s[0]))
    assert not public, f"listening beyond loopback: {public}"


def test_the_embedded_runtime_runs_trials_at_the_driver_s_priority():
    # Ray's default (nice 15) lets any other busy process starve the trials of a time budget
    with ray_runtime(None):
        assert ray.get(ray.remote(lambda: os.nice(0)).remote()) == os.nice(0)
