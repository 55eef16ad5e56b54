"""A bounded load test of the HTTP API: `archsearch serve` on 127.0.0.1, ten clients, no 5xx.

    python benchmarks/api_load.py [--requests 400] [--clients 10] [--tasks 20] [--trials 12]

Starts `archsearch serve` as a subprocess over a temporary SQLite database filled with
``--tasks`` completed tasks of ``--trials`` trials each (written through the store, no search
runs). Then ``--clients`` threads, each with its own keep-alive connection (requests), send:

1. the baseline: ``--requests`` / 4 calls of ``GET /health`` (no database, no token check
   beyond the public path), so the ratios below hold whatever the machine's load;
2. the mix: ``--requests`` calls drawn (seeded) over the routes a user polls: the task list
   (a page, and the newest page), one task, its trials, its live view, a request without a
   token (401), a task that does not exist (404), and a small ``POST /recommend`` on a built-in
   data set (no training).

Every call's status is checked against the one its route should give. The last line printed
is one JSON object: the calls, the answers by status class, the unexpected ones, the 5xx count
(must be 0), latency percentiles of the mix and of the baseline and their ratios. Exit status 1
when any answer was 5xx or unexpected.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

TOKEN = "load-test-token-0123456789abcdef"
RECOMMEND_DATA = "builtin:adding?length=12&n=120"


@dataclass(frozen=True)
class Call:
    route: str  # the route's name in the results
    method: str
    path: str
    expected: int
    authorised: bool = True
    form: dict[str, str] | None = None


def draw_call(task_ids: list[int]) -> Call:
    """One call of the mix, drawn by the routes' weights; a call on a task picks one of
    ``task_ids``."""
    task = random.choice(task_ids)
    weighted = [
        (0.20, Call("list", "GET", "/tasks?limit=20", 200)),
        (0.10, Call("list_newest", "GET", "/tasks?order=desc&limit=20", 200)),
        (0.20, Call("task", "GET", f"/tasks/{task}", 200)),
        (0.15, Call("trials", "GET", f"/tasks/{task}/trials", 200)),
        (0.10, Call("live", "GET", f"/tasks/{task}/live", 200)),
        (0.10, Call("no_token", "GET", "/tasks", 401, authorised=False)),
        (0.10, Call("missing", "GET", f"/tasks/{2**31 - 1}", 404)),
        (0.05, Call("recommend", "POST", "/recommend", 200,
                    form={"builtin": RECOMMEND_DATA, "options": "{}"})),
    ]
    return random.choices([call for _, call in weighted], [w for w, _ in weighted])[0]


def seed_database(url: str, n_tasks: int, n_trials: int) -> list[int]:
    """Completed tasks with completed trials, written through the store."""
    from archsearch.store import Store
    from archsearch.types import CostMeasurement, Metric, TaskStatus, TrialOutcome, TrialStatus

    cost = CostMeasurement(params=10_000, flops=100_000, latency_ms=0.5, latency_p95_ms=0.7,
                           peak_memory_mb=2.0, memory_method="seeded", device="cpu", threads=1)
    store = Store(url)
    try:
        task_ids = []
        for _ in range(n_tasks):
            task_id = store.create_task(
                source=RECOMMEND_DATA, dataset_name="adding", task_kind="regression",
                metric=Metric("mse", "minimize"), seed=0, constraints={},
                options={"report_dir": str(Path(url.removeprefix("sqlite:///")).parent)},
                space_name="default", meta_features={}, fingerprint=None,
                budget_trials=n_trials, budget_minutes=None, status=TaskStatus.COMPLETED)
            for number in range(n_trials):
                store.start_trial(task_id, number, "gru", {"model": {"d_model": 16}})
                store.finish_trial(task_id, number, TrialOutcome(
                    TrialStatus.COMPLETED, cost, 3, 2, 0.1 + number / 100, 0.12, 1.0))
            task_ids.append(task_id)
        return task_ids
    finally:
        store.close()


def start_server(root: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--db", f"sqlite:///{root / 'load.db'}", "--data-dir", str(root / "data"),
         "--report-dir", str(root / "reports")],
        cwd=root, env={**os.environ, "ARCHSEARCH_API_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL, stderr=open(root / "serve.log", "wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        if process.poll() is not None:
            raise SystemExit((root / "serve.log").read_text()[-3000:])
        try:
            if requests.get(url + "/health", timeout=2).ok:
                return process, url
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not come up within 180 s")
        time.sleep(0.3)


class Clients:
    """``n`` threads, each with its own keep-alive session; every call's latency and status."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.n = url, n
        self.failures: list[str] = []  # the calls that got no answer, and why
        self._local = threading.local()

    def run(self, calls: list[Call]) -> list[tuple[Call, int, float]]:
        with ThreadPoolExecutor(max_workers=self.n) as pool:
            return list(pool.map(self._send, calls))

    def _send(self, call: Call) -> tuple[Call, int, float]:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}"} if call.authorised else {}
        started = time.perf_counter()
        try:
            response = session.request(call.method, self.url + call.path, headers=headers,
                                       data=call.form, timeout=60)
            status = response.status_code
        except requests.RequestException as exc:
            status = 0  # no answer at all: counted as unexpected
            self.failures.append(f"{call.route}: {exc!r}"[:300])
        return call, status, time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def latency_ms(seconds: list[float]) -> dict[str, float]:
    return {f"p{q}": round(1000 * percentile(seconds, q), 1) for q in (50, 95, 99)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    random.seed(args.seed)

    with tempfile.TemporaryDirectory(prefix="archsearch-load-") as folder:
        root = Path(folder)
        task_ids = seed_database(f"sqlite:///{root / 'load.db'}", args.tasks, args.trials)
        process, url = start_server(root)
        try:
            clients = Clients(url, args.clients)
            warm = [Call("warm", "POST", "/recommend", 200,
                         form={"builtin": RECOMMEND_DATA, "options": "{}"})]
            clients.run(warm)  # the first recommend imports the recommender: not measured
            health = clients.run([Call("health", "GET", "/health", 200, authorised=False)]
                                 * max(1, args.requests // 4))
            mix = [draw_call(task_ids) for _ in range(args.requests)]
            started = time.perf_counter()
            results = clients.run(mix)
            wall_s = time.perf_counter() - started
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(60)
        if any(status != call.expected for call, status, _ in results):
            print((root / "serve.log").read_text()[-6000:], file=sys.stderr)  # what went wrong

    classes = Counter(f"{status // 100}xx" if status else "no answer" for _, status, _ in results)
    unexpected = Counter(f"{call.route}: {status}" for call, status, _ in results
                         if status != call.expected)
    mix_ms, health_ms = (latency_ms([s for _, _, s in runs]) for runs in (results, health))
    by_route = {route: latency_ms([s for call, _, s in results if call.route == route])
                for route in sorted({call.route for call, _, _ in results})}
    summary = {
        "requests": len(results), "clients": args.clients, "tasks": args.tasks,
        "trials_per_task": args.trials, "by_class": dict(classes),
        "server_errors": classes.get("5xx", 0), "unexpected": dict(unexpected),
        "latency_ms": mix_ms, "health_latency_ms": health_ms,
        "vs_health": {q: round(mix_ms[q] / max(health_ms[q], 0.1), 1) for q in mix_ms},
        "by_route_ms": by_route, "no_answer": clients.failures, "wall_s": round(wall_s, 2),
        "requests_per_s": round(len(results) / wall_s, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }
    print(json.dumps(summary))
    return 1 if summary["server_errors"] or unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
