"""`archsearch serve` as a real subprocess on a loopback port: authentication, refused input,
background searches (two at once, one database), report and model downloads, cancel, the live
page in a real headless Chromium, and a bounded schemathesis run of the OpenAPI spec."""

import ast
import dataclasses
import io
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from archsearch.api.views import live_view
from archsearch.data import load_dataset
from archsearch.store import Store, TrialRecord
from archsearch.types import FloorResult, TaskStatus
from archsearch.workflow import STOP_REASONS
from tests.browser import watch
from tests.records import stored_task, task_record, trial_record

TOKEN = "test-token-0123456789abcdef"
TINY = "builtin:adding?length=12&n=120"
SPACE = """version: 1
training: {lr: 1.0e-3, batch_size: 32, max_steps: 2, eval_every: 2, weight_decay: 0.0}
shared: {d_model: 8, dropout: 0.0, pooling: last}
families:
  gru: {n_layers: 1}
"""
FINAL = {"completed", "failed", "interrupted"}
DASHBOARD = "http://127.0.0.1:8265/?<b>x</b>"  # markup in a setting: the pages must escape it


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def env_without_token() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "ARCHSEARCH_API_TOKEN"}


@dataclass
class Server:
    url: str
    db_file: Path
    data_dir: Path
    space: Path

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, headers=self.auth(), timeout=30, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(self.url + path, headers=self.auth(), timeout=60, **kwargs)

    @staticmethod
    def auth() -> dict[str, str]:
        return {"Authorization": f"Bearer {TOKEN}"}

    def submit(self, budget: int, dataset: tuple[str, bytes] | None = None) -> int:
        """Submit the tiny space on an uploaded ``dataset``, or on the built-in TINY."""
        options = {"budget_trials": budget, "cv_folds": 0, "seed": 1}
        files = {"space": ("tiny.yaml", self.space.read_bytes())}
        form = {"options": json.dumps(options)}
        if dataset is None:
            form["builtin"] = TINY
        else:
            files["dataset"] = dataset
        response = self.post("/tasks", data=form, files=files)
        assert response.status_code == 202, response.text
        return response.json()["task_id"]

    def wait(self, task_id: int, timeout: float = 240) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            task = self.get(f"/tasks/{task_id}").json()
            if task["status"] in FINAL and not task["active"]:
                return task
            time.sleep(1)
        raise AssertionError(f"task {task_id} did not end within {timeout} s: {task}")


def start_server(root: Path, env: dict[str, str] | None = None) -> tuple[subprocess.Popen,
                                                                       Server]:
    """`archsearch serve` on a free loopback port, over ``root/api.db``, once it answers."""
    port = free_port()
    space = root / "tiny.yaml"
    space.write_text(SPACE)
    process = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "serve", "--port", str(port),
         "--db", f"sqlite:///{root / 'api.db'}", "--data-dir", str(root / "data"),
         "--report-dir", str(root / "reports"), "--max-upload-mb", "1",
         "--dashboard-url", DASHBOARD],
        cwd=root, env={**os.environ, "ARCHSEARCH_API_TOKEN": TOKEN, **(env or {})},
        stdout=subprocess.DEVNULL, stderr=open(root / "serve.log", "ab"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, (root / "serve.log").read_text()[-3000:]
        try:
            if requests.get(url + "/health", timeout=2).ok:
                break
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.3)
    return process, Server(url, root / "api.db", root / "data", space)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    process, server = start_server(tmp_path_factory.mktemp("serve"))
    yield server
    process.send_signal(signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_refuses_a_public_address_without_a_token(tmp_path):
    run = subprocess.run([sys.executable, "-m", "archsearch", "serve", "--host", "0.0.0.0",
                          "--port", str(free_port()), "--data-dir", str(tmp_path)],
                         cwd=tmp_path, env=env_without_token(), capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 2, run.stderr
    assert "refusing to serve on 0.0.0.0 without an API token" in run.stderr
    assert "Traceback" not in run.stderr


def test_every_api_route_needs_the_token(server):
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": TOKEN}):
        response = requests.get(server.url + "/tasks", headers=headers, timeout=10)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "bearer token" in response.json()["detail"]
    refused = requests.post(server.url + "/tasks", data={"builtin": TINY}, timeout=10)
    assert refused.status_code == 401
    assert server.get("/tasks").status_code == 200


def test_the_token_is_checked_before_the_body_is_read(server):
    """A client declares a body just under the limit and sends none of it: the 401 comes back
    anyway, so the server answered without waiting for (reading) the body; and nothing was
    spooled into the upload folder."""
    host, port = server.url.removeprefix("http://").split(":")
    for authorization in (b"", b"Authorization: Bearer wrong-token-0123456789\r\n"):
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /tasks HTTP/1.1\r\nHost: x\r\n" + authorization
                         + b"Content-Type: multipart/form-data; boundary=b\r\n"
                         b"Content-Length: 1000000\r\n\r\n")
            head = sock.recv(4096)  # a server that reads the body first would time out here
        assert head.startswith(b"HTTP/1.1 401"), head
    uploads = server.data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def _read_answer(sock: socket.socket) -> tuple[bytes, bytes]:
    """One HTTP/1.1 answer with a Content-Length: its status line and its body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                      if line.lower().startswith(b"content-length:")))
    while len(body) < length:
        body += sock.recv(65536)
    return head.split(b"\r\n")[0], body


def test_a_chunked_upload_is_limited_while_it_arrives(server):
    """A chunked body (no Content-Length) over the limit is answered 413 with the paragraph,
    though it never said its size; the connection then serves the next request, and nothing
    was kept. A chunked body under the limit is read as any other."""
    host, port = server.url.removeprefix("http://").split(":")
    part = (b'--b\r\nContent-Disposition: form-data; name="dataset"; filename="big.npz"\r\n'
            b"Content-Type: application/octet-stream\r\n\r\n")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /tasks HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                     + TOKEN.encode() + b"\r\nContent-Type: multipart/form-data; boundary=b"
                     b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        for chunk in [part] + [b"\0" * 65536] * 20:  # 1.25 MiB: over the 1 MiB limit
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        status, body = _read_answer(sock)
        assert status.startswith(b"HTTP/1.1 413"), (status, body)
        assert "accepts at most 1048576" in json.loads(body)["detail"]
        sock.sendall(b"0\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_answer(sock) == (b"HTTP/1.1 200 OK", b'{"status":"ok"}')
    under = requests.post(server.url + "/tasks", data=iter([b"builtin=%2Fetc%2Fpasswd"]),
                          headers={**server.auth(),
                                   "Content-Type": "application/x-www-form-urlencoded"},
                          timeout=30)
    assert under.request.headers["Transfer-Encoding"] == "chunked"
    assert under.status_code == 422 and "does not start with 'builtin:'" in under.text
    uploads = server.data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())


def test_pages_are_public_escaped_shells(server):
    for path in ("/", "/ui/tasks/1"):
        page = requests.get(server.url + path, timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "?&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert requests.get(server.url + "/ui/tasks/0", timeout=10).status_code == 422


def test_bad_input_is_refused_and_nothing_is_kept(server):
    before = server.get("/tasks").json()
    cases = [
        ({"data": {"options": "{}"}, "dataset": ("broken.npz", b"not a zip")}, 422,
         "'broken.npz'"),
        ({"data": {"options": "{}"}, "dataset": ("data.exe", b"MZ")}, 422,
         "must end in one of"),
        ({"data": {"options": json.dumps({"budget_trials": 0}), "builtin": TINY}}, 422,
         "budget_trials"),
        ({"data": {"options": json.dumps({"shots": 3}), "builtin": TINY}}, 422, "shots"),
        ({"data": {"options": json.dumps({"constraints": {"max_params": -1}}),
                   "builtin": TINY}}, 422, "max_params"),
        ({"data": {"options": json.dumps({"load": {"lookback": 0}}), "builtin": TINY}}, 422,
         "lookback"),
        ({"data": {"options": json.dumps({"load": {"windows": 3}}), "builtin": TINY}}, 422,
         "windows"),
        ({"data": {"builtin": "builtin:nosuchset"}}, 422, "nosuchset"),
        ({"data": {"builtin": "/etc/passwd"}}, 422, "does not start with 'builtin:'"),
        ({"data": {"options": "{"}, "dataset": ("big.npz", b"\0" * (1024 * 1024 + 1))}, 413,
         "at most 1048576"),
    ]
    for request, status, words in cases:
        files = {"dataset": request["dataset"]} if "dataset" in request else None
        response = requests.post(server.url + "/tasks", headers=server.auth(),
                                 data=request["data"], files=files, timeout=60)
        assert response.status_code == status, (request, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and words in detail, detail
    assert server.get("/tasks").json() == before
    uploads = server.data_dir / "uploads"
    assert not uploads.exists() or not any(uploads.iterdir())
    assert server.get("/tasks/999999").status_code == 404
    assert server.get("/tasks/1/report").status_code in (404, 409)


def test_listings_come_in_pages_with_a_link_to_the_next(server):
    store = Store(f"sqlite:///{server.db_file}")
    try:
        added = [stored_task(store, TaskStatus.COMPLETED, source=TINY,
                             options={"report_dir": str(server.data_dir.parent / "reports")})
                 for _ in range(3)]
        for number in range(3):
            store.start_trial(added[0], number, "gru", {})
    finally:
        store.close()
    every = [t["task_id"] for t in server.get("/tasks").json()]
    assert every == sorted(every) and every[-3:] == added
    seen, page = [], server.get("/tasks?limit=2")
    while "next" in page.links:
        seen += [t["task_id"] for t in page.json()]
        assert len(page.json()) == 2
        page = server.get(page.links["next"]["url"])
    assert seen + [t["task_id"] for t in page.json()] == every
    newest = server.get("/tasks?order=desc&limit=2")
    assert [t["task_id"] for t in newest.json()] == added[:0:-1]
    assert newest.links["next"]["url"] == "/tasks?order=desc&limit=2&offset=2"
    trials = server.get(f"/tasks/{added[0]}/trials?limit=2&offset=1")
    assert [t["number"] for t in trials.json()] == [1, 2] and "next" not in trials.links
    first = server.get(f"/tasks/{added[0]}/trials?limit=2")
    assert first.links["next"]["url"] == f"/tasks/{added[0]}/trials?limit=2&offset=2"
    for bad in ("limit=0", "limit=1001", "offset=-1", "order=up"):
        assert server.get(f"/tasks?{bad}").status_code == 422


@pytest.mark.slow
def test_two_tasks_run_at_once_and_the_live_page_fills(server, tmp_path):
    data = load_dataset(TINY)
    npz = io.BytesIO()
    np.savez(npz, X=data.X, y=data.y)
    first = server.submit(3, dataset=("adding.npz", npz.getvalue()))
    second = server.submit(2)

    # The live page of the first task, in a real browser, while both run.
    probe = ("JSON.stringify({status: document.getElementById('status').textContent, "
             "rows: [...document.querySelectorAll('#trials tbody tr')]"
             ".map(r => r.dataset.status), "
             "pareto: document.querySelectorAll('#pareto-chart circle').length, "
             "floor: document.getElementById('floor').textContent})")
    samples, errors = watch(f"{server.url}/ui/tasks/{first}#token={TOKEN}", probe,
                            until=lambda v: v is not None and json.loads(v)["status"] in FINAL,
                            timeout=240)
    seen = [json.loads(v) for v in samples if v]
    assert not errors, errors
    # Filling: the page showed the task with an empty table (Ray still starting), then trial
    # rows while it was still running, then every trial finished.
    assert any(s["status"] in ("queued", "running") and not s["rows"] for s in seen), seen
    assert any(s["status"] == "running" and s["rows"] for s in seen), seen
    assert seen[-1]["status"] == "completed" and seen[-1]["rows"] == ["completed"] * 3
    assert seen[-1]["pareto"] >= 1
    assert seen[-1]["floor"].startswith("Floor (minirocket+ridge, fitted before"), seen[-1]

    tasks = {task_id: server.wait(task_id) for task_id in (first, second)}
    for task_id, budget in ((first, 3), (second, 2)):
        task = tasks[task_id]
        assert task["status"] == "completed", task
        assert task["trials"]["completed"] == budget and task["progress"] == 1.0
        assert task["best"]["family"] == "gru"
        assert task["floor"]["method"] == "minirocket+ridge" and task["floor"]["val_score"] > 0
        trials = server.get(f"/tasks/{task_id}/trials").json()
        assert [t["number"] for t in trials] == list(range(budget))
        report = server.get(f"/tasks/{task_id}/report")
        assert report.status_code == 200 and report.headers["content-type"].startswith(
            "text/html")
        assert "gru" in report.text
        model = server.get(f"/tasks/{task_id}/model")
        assert model.status_code == 200
        names = zipfile.ZipFile(io.BytesIO(model.content)).namelist()
        assert {"state_dict.pt", "config.json", "load_model.py"} <= set(names)
    with sqlite3.connect(server.db_file) as conn:
        counts = dict(conn.execute("SELECT task_id, count(*) FROM archsearch_trials "
                                   "GROUP BY task_id").fetchall())
    assert counts[first] == 3 and counts[second] == 2
    assert server.post(f"/tasks/{first}/cancel").status_code == 409

    # The front page lists both, with links to their live pages.
    links, errors = watch(f"{server.url}/#token={TOKEN}",
                          "[...document.querySelectorAll('#tasks tbody a')].map(a => a.pathname)",
                          until=lambda v: bool(v), timeout=60)
    assert not errors, errors
    assert {f"/ui/tasks/{first}", f"/ui/tasks/{second}"} <= set(links[-1])


@pytest.mark.slow
def test_completed_means_report_and_model_at_once(server):
    """The first poll that reads ``completed`` can fetch the report and the model."""
    task_id = server.submit(2)
    deadline = time.monotonic() + 240
    while (status := server.get(f"/tasks/{task_id}").json()["status"]) not in FINAL:
        assert time.monotonic() < deadline, status
        time.sleep(0.05)
    assert status == "completed"
    assert server.get(f"/tasks/{task_id}/report").status_code == 200
    assert server.get(f"/tasks/{task_id}/model").status_code == 200


@pytest.mark.slow
def test_cancel_ends_a_running_task_interrupted(server):
    task_id = server.submit(200)
    deadline = time.monotonic() + 180
    while not server.get(f"/tasks/{task_id}/trials").json():
        assert time.monotonic() < deadline, server.get(f"/tasks/{task_id}").json()
        time.sleep(0.5)
    cancelled = server.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 202, cancelled.text
    task = server.wait(task_id, timeout=90)
    assert task["status"] == "interrupted", task
    assert sum(task["trials"].values()) < 200 and task["trials"]["running"] == 0
    # SIGINT let the driver finish properly: a report of the trials done.
    assert task["report_ready"] and server.get(f"/tasks/{task_id}/report").status_code == 200


@pytest.mark.slow
def test_a_driver_the_server_did_not_start_is_fenced(server, tmp_path):
    """A driver started outside this server (as one that outlived its server), and deaf to
    SIGINT (as a background job of a shell script is): resume is refused while its lease
    lives, a cancel reaches it through the database, and a resume through the API then keeps
    the trials that ended on their own, runs again those the cancel cut short and meets the
    budget exactly."""
    budget = 6
    # Trials of ~150 steps: the search outlasts the requests below even on a loaded machine
    # (they follow the first finished trial; four or more trials are still to run).
    space = tmp_path / "longer.yaml"
    space.write_text(SPACE.replace("max_steps: 2, eval_every: 2", "max_steps: 150, eval_every: 25"))
    known = {t["task_id"] for t in server.get("/tasks").json()}
    driver = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "search", TINY, "--space", str(space),
         "--budget-trials", str(budget), "--cv-folds", "0", "--seed", "1",
         "--db", f"sqlite:///{server.db_file}", "--report-dir", str(tmp_path)],
        cwd=tmp_path, env={**os.environ, "ARCHSEARCH_LEASE_SECONDS": "6"},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / "driver.log", "wb"))
    deadline = time.monotonic() + 180
    while True:
        assert driver.poll() is None and time.monotonic() < deadline, \
            (tmp_path / "driver.log").read_text()[-3000:]
        new = [t for t in server.get("/tasks").json() if t["task_id"] not in known]
        if new and sum(new[0]["trials"].values()):
            break
        time.sleep(0.2)
    task_id = new[0]["task_id"]
    refused = server.post(f"/tasks/{task_id}/resume")
    assert refused.status_code == 409 and "another live driver" in refused.json()["detail"]
    cancelled = server.post(f"/tasks/{task_id}/cancel")
    assert cancelled.status_code == 202 and cancelled.json()["status"] == "running"
    assert driver.wait(120) == 130  # it wound its search down and stored the end itself
    task = server.get(f"/tasks/{task_id}").json()
    assert task["status"] == "interrupted" and task["error"] == "cancelled through the API"
    assert task["report_ready"] and sum(task["trials"].values()) < budget
    # The cancel wound the search down (its SIGINT is ignored): the trials it cut short say
    # so, and the resume runs them again; the trials that ended on their own are kept.
    listed = server.get(f"/tasks/{task_id}/trials").json()
    cut_short = {t["number"] for t in listed if t["error"] in STOP_REASONS}
    kept = {(t["number"], t["status"]) for t in listed if t["number"] not in cut_short}

    resumed = server.post(f"/tasks/{task_id}/resume")
    assert resumed.status_code == 202, resumed.text
    task = server.wait(task_id)
    assert task["status"] == "completed" and sum(task["trials"].values()) == budget
    after = {(t["number"], t["status"]) for t in server.get(f"/tasks/{task_id}/trials").json()}
    assert kept <= after and len(after) == budget
    assert not cut_short & {number for number, _ in after}
    assert server.post(f"/tasks/{task_id}/resume").status_code == 409  # completed


@pytest.mark.slow
def test_a_server_killed_with_its_driver_is_found_out_after_a_restart(tmp_path):
    """kill -9 of `archsearch serve` and of its driver mid-search: after a restart the task
    reads interrupted once its lease lapsed (nobody wrote it), and a resume through the API
    keeps every finished trial and meets the budget exactly."""
    import psutil  # a dev dependency; Ray also ships it (ray/thirdparty_files)

    budget, lease = 8, {"ARCHSEARCH_LEASE_SECONDS": "4"}
    process, server = start_server(tmp_path, lease)
    try:
        task_id = server.submit(budget)
        deadline = time.monotonic() + 180
        while not any(t["status"] != "running"
                      for t in server.get(f"/tasks/{task_id}/trials").json()):
            assert time.monotonic() < deadline, server.get(f"/tasks/{task_id}").json()
            time.sleep(0.3)
        # The server, then its driver (in a session of its own) and the driver's Ray.
        tree = psutil.Process(process.pid).children(recursive=True)
        process.kill()
        for child in tree:
            try:
                child.kill()
            except psutil.NoSuchProcess:
                pass
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    killed = time.monotonic()
    with sqlite3.connect(server.db_file) as conn:
        kept = set(conn.execute("SELECT number, status, finished_at FROM archsearch_trials "
                                "WHERE status != 'running'").fetchall())
        assert conn.execute("SELECT status FROM archsearch_tasks").fetchone() == ("running",)

    process, server = start_server(tmp_path, lease)
    try:
        time.sleep(max(0.0, killed + 5 - time.monotonic()))
        task = server.get(f"/tasks/{task_id}").json()
        assert task["status"] == "interrupted" and f"--resume {task_id}" in task["error"], task
        assert server.post(f"/tasks/{task_id}/cancel").status_code == 409  # already ended
        assert server.post(f"/tasks/{task_id}/resume").status_code == 202
        task = server.wait(task_id)
        assert task["status"] == "completed" and sum(task["trials"].values()) == budget, task
        with sqlite3.connect(server.db_file) as conn:
            after = set(conn.execute("SELECT number, status, finished_at FROM "
                                     "archsearch_trials").fetchall())
        assert kept <= after and len(after) == budget
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(60)


@pytest.mark.slow
def test_openapi_fuzz_finds_no_server_error(server, tmp_path):
    schemathesis = Path(sys.executable).parent / "schemathesis"
    run = subprocess.run(
        [str(schemathesis), "run", f"{server.url}/openapi.json", "--checks",
         "not_a_server_error", "--phases", "examples,coverage,fuzzing", "--max-examples", "8",
         "--workers", "1", "--seed", "7", "--request-timeout", "30", "--no-shrink",
         "--header", f"Authorization: Bearer {TOKEN}", "--report", "junit",
         "--report-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-4000:]
    junit = next(tmp_path.glob("*.xml")).read_text()
    assert "/tasks" in junit and "/recommend" in junit  # the spec's routes were exercised


def record(number: int, status: str, val: float | None, latency: float | None) -> TrialRecord:
    return trial_record(id=number + 1, number=number, status=status, params=100, flops=None,
                        latency_ms=latency, latency_p95_ms=latency, memory_method="",
                        val_score=val, test_score=val)


def test_live_view_best_so_far_and_pareto_front():
    task = task_record(status="running", source="x", space_name="s", budget_trials=6)
    trials = [record(0, "completed", 0.5, 2.0), record(1, "completed", 0.7, 1.0),
              record(2, "completed", 0.3, 3.0), record(3, "pruned", 0.9, 0.5),
              record(4, "completed", float("nan"), 0.1), record(5, "running", None, None)]
    live = live_view(task, trials, "http://127.0.0.1:8265", active=True)
    assert [(p.x, p.y) for p in live.best_so_far] == [(0, 0.5), (1, 0.5), (2, 0.3)]
    # Lower latency and lower mse both win: trial 1 (fastest), trial 0, trial 2 (best).
    assert [(p.x, p.y) for p in live.pareto] == [(1.0, 0.7), (2.0, 0.5), (3.0, 0.3)]
    assert live.task.best.trial == 2 and live.task.trials["running"] == 1
    assert live.task.progress == 5 / 6
    assert live.trials[4].val_score is None  # NaN is not JSON: shown as missing


def test_progress_under_a_time_budget_is_the_time_used():
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    task = task_record(status="running", budget_trials=None, budget_minutes=10.0,
                       created_at=now - timedelta(minutes=5))
    progress = live_view(task, [], "http://x", True).task.progress
    assert 0.45 < progress < 0.55
    done = dataclasses.replace(task, status="completed")
    assert live_view(done, [], "http://x", True).task.progress == 1.0


def test_live_view_shows_the_floor_beside_the_best_so_far():
    trials = [record(0, "completed", 0.5, 2.0), record(1, "completed", 0.3, 1.0)]
    floor = FloorResult("minirocket+ridge", 0.4, float("nan"), 0.2, 1.0, 0.3, 40)
    view = live_view(task_record(status="running", floor=floor), trials, "http://x", True)
    assert view.task.floor.val_score == 0.4 and view.task.floor.test_score is None
    assert not view.task.floor.beats_best  # the best so far (mse 0.3) beats it
    losing = live_view(task_record(status="running", floor=dataclasses.replace(
        floor, val_score=0.2)), trials, "http://x", True)
    assert losing.task.floor.beats_best
    assert live_view(task_record(), trials, "http://x", True).task.floor is None


def test_the_api_sits_on_top():
    """Only the CLI imports the API room, and the API imports neither Ray nor Optuna."""
    package = Path(__file__).resolve().parents[1] / "archsearch"
    for source in package.rglob("*.py"):
        names = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        inside_api = source.parent.name == "api"
        if not inside_api and source.name != "cli.py":
            assert not any(n.startswith("archsearch.api") for n in names), source
        if inside_api:
            assert not any(n.split(".")[0] in ("ray", "optuna") for n in names), source
