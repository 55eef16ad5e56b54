"""A real two-node Ray cluster on this machine (a head and a second node with its own
resources, both `ray start`), and a search that joins it with --ray-address."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str:
    return os.path.join(os.path.dirname(sys.executable), "ray")


def token_env() -> dict[str, str]:
    """Ray's default: the cluster runs with token auth (a token is generated if none exists);
    drivers and probes that join by address send it."""
    if not os.path.isfile(os.path.expanduser("~/.ray/auth_token")):
        subprocess.run([ray_cli(), "get-auth-token", "--generate"], capture_output=True,
                       check=True)
    return {**os.environ, "RAY_AUTH_MODE": "token"}


def start_node(args: list[str]) -> subprocess.Popen:
    # --block keeps `ray start` in the foreground; its own session lets teardown stop exactly
    # this node's processes (not every Ray on the machine, as `ray stop` would).
    return subprocess.Popen([ray_cli(), "start", "--block", *args], start_new_session=True,
                            env=token_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_node(node: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(node.pid, sig)
        except ProcessLookupError:
            return
        try:
            node.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_nodes(address: str, count: int, timeout: float = 90) -> list[dict]:
    probe = (f"import ray, json; ray.init(address={address!r}, logging_level='ERROR'); "
             "print(json.dumps([n for n in ray.nodes() if n['Alive']]))")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             timeout=60, env=token_env())
        if run.returncode == 0:
            nodes = json.loads(run.stdout.strip().splitlines()[-1])
            if len(nodes) >= count:
                return nodes
        time.sleep(2)
    raise AssertionError(f"the cluster did not reach {count} nodes")


def test_search_across_a_two_node_cluster(tmp_path):
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(["--head", f"--port={port}", "--num-cpus=1", "--node-ip-address=127.0.0.1",
                       "--dashboard-host=127.0.0.1", f"--dashboard-port={free_port()}",
                       f"--ray-client-server-port={free_port()}"])
    second = None
    try:
        wait_for_nodes(address, 1)
        second = start_node([f"--address={address}", "--num-cpus=1",
                             "--node-ip-address=127.0.0.1", "--resources={\"second\": 1}"])
        nodes = wait_for_nodes(address, 2)
        assert any(n["Resources"].get("second") for n in nodes)

        db = f"sqlite:///{tmp_path / 'cluster.db'}"
        # Trials of a few seconds each: with trials of one second, the first node's reused actor
        # took every trial before the second node's actor had started (seen on a loaded
        # machine), and the test failed although the cluster worked.
        run = subprocess.run(
            [sys.executable, "-m", "archsearch", "search", "builtin:adding?length=32&n=1500",
             "--budget-trials", "4", "--ray-address", address, "--db", db, "--report-dir",
             str(tmp_path), "--cv-folds", "0", "--json"],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            # archsearch itself must turn token mode on for an explicit address
            env={k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"})
        assert run.returncode == 0, run.stderr[-3000:]
        summary = json.loads(run.stdout.strip().splitlines()[-1])
        assert summary["status"] == "completed" and sum(summary["trials"].values()) == 4
        assert "Ray: 2 CPU" in run.stderr  # the driver saw both nodes
        # Both nodes ran trials: every trial records the Ray node it ran on.
        import sqlite3

        with sqlite3.connect(tmp_path / "cluster.db") as conn:
            node_ids = {row[0] for row in conn.execute(
                "SELECT node_id FROM archsearch_trials WHERE node_id IS NOT NULL")}
        assert node_ids <= {n["NodeID"] for n in nodes}
        assert len(node_ids) == 2
    finally:
        if second is not None:
            stop_node(second)
        stop_node(head)
