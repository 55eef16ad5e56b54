"""Start an embedded Ray runtime or join an existing cluster."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass

import ray

from archsearch.errors import UsageError

LOOPBACK = "127.0.0.1"  # where the embedded runtime listens, every service of it


@dataclass(frozen=True)
class RayRuntime:
    dashboard_url: str | None
    resources: dict[str, float]
    embedded: bool

    @property
    def cpus(self) -> float:
        return self.resources.get("CPU", 1.0)

    @property
    def gpus(self) -> float:
        return self.resources.get("GPU", 0.0)


@contextmanager
def ray_runtime(address: str | None) -> Iterator[RayRuntime]:
    """``address=None`` starts a local Ray (shut down on exit); otherwise join the cluster."""
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")  # we store results ourselves
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # Tune's own SIGINT handler ends the run quietly and returns, so an interrupted search would
    # be stored as completed; let Ctrl-C reach the workflow, which stores it as interrupted.
    os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
    # Tune warns that its (disabled) result files are missing and that our Searcher has no
    # save(): our database is the record of the search, so both are expected.
    logging.getLogger("ray.tune").setLevel(logging.ERROR)
    if address is not None:
        _send_token_when_at_hand()
    if ray.is_initialized():
        yield RayRuntime(_dashboard_url(None), ray.cluster_resources(), embedded=False)
        return
    try:
        # "local" always starts a fresh runtime: with address=None Ray would join whatever
        # cluster /tmp/ray/ray_current_cluster names, and hang on one that has died. The
        # embedded runtime binds every service to loopback (see _loopback_node). Its workers
        # keep the driver's priority: Ray's default (nice 15) lets any other busy process on
        # the machine starve the trials, and a time budget then ends with none finished.
        local = {"address": "local", "_node_ip_address": LOOPBACK,
                 "_system_config": {"worker_niceness": 0}}
        with _loopback_node() if address is None else nullcontext():
            context = ray.init(**(local if address is None else {"address": address}),
                               include_dashboard=True, dashboard_host=LOOPBACK,
                               logging_level=logging.WARNING, log_to_driver=False,
                               namespace="archsearch")
    except (ConnectionError, ValueError, RuntimeError) as exc:
        if address is None:
            raise
        raise UsageError(f"cannot join the Ray cluster at '{address}': "
                         f"{str(exc).splitlines()[0]}. Check that `ray start --head` runs there "
                         "and that the address (host:port of the GCS, or 'auto') is right.") \
            from None
    try:
        yield RayRuntime(_dashboard_url(context), ray.cluster_resources(),
                         embedded=address is None)
    finally:
        ray.shutdown()


@contextmanager
def _loopback_node() -> Iterator[None]:
    """Keep the node's address 127.0.0.1 while the embedded runtime starts.

    Ray 2.60's ray.init replaces ``_node_ip_address="127.0.0.1"`` with the machine's routable
    address (services.resolve_ip_for_localhost), unless Ray clusters are switched off (its
    default on Windows and macOS: ray_constants.ENABLE_RAY_CLUSTER). Every service takes its
    bind address from the node's: with 127.0.0.1 the GCS, the raylet, the workers, the dashboard
    agent (gRPC, HTTP, metrics export) and the runtime-env agent listen on loopback only; with
    the routable one they listen on all interfaces. So clusters are off for the start alone
    (afterwards Ray reads the address from the running node)."""
    from ray._private import ray_constants

    saved = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved


def _send_token_when_at_hand() -> None:
    """A cluster started where a token exists runs with token auth, but Ray's driver turns token
    mode on by itself only for clusters it finds on its own, never for an explicit address: do
    it here when a token is at hand, with Ray's own helper (an explicit RAY_AUTH_MODE wins; a
    cluster without auth ignores the token; Ray releases without token auth lack the helper)."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _dashboard_url(context) -> str | None:  # noqa: ANN001
    url = getattr(context, "dashboard_url", None) if context is not None else None
    if not url:
        return None
    return url if url.startswith("http") else f"http://{url}"
