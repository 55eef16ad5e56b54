"""Hostile inputs (issue 14): bombs and degenerate data sets, built on the fly, never committed.

Each file goes through the real command line (``python -m archsearch.cli search FILE``) under a
memory watch of the process tree, and is uploaded to a real ``archsearch serve``: the command
must end in exit code 2 with one paragraph on stderr (no traceback) within 30 s, the process
tree must stay under 2 GiB, and no task row may be written; the server must answer 422 with the
same paragraph and go on answering.

The generators write in seconds what inflates to gigabytes: a gzip file of repeated members,
and a ZIP64 member whose deflate stream repeats one flushed segment of zeros.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import signal
import sqlite3
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import requests

from archsearch.cli import _load_options, build_parser
from archsearch.data import DataLimits, LoadOptions, load_dataset, prepare, reuse_loads
from archsearch.errors import DataError, UsageError
from archsearch.trial.crossval import cross_validation_folds
from archsearch.workflow import SearchRequest
from tests.test_api import TOKEN, free_port

MEMORY_LIMIT = 2 * 2**30  # peak RSS of the whole process tree, bytes
TIME_LIMIT_S = 30.0
MIB = 1 << 20
SERVER_MAX_SERIES = 1000  # a `serve --limit` setting (none of the hostile files reaches it)


# --------------------------------------------------------------------------- generators


def gzip_bomb(path: Path, inflated: int = 3600 * 10**6, block: int = 32 * MIB) -> Path:
    """A ``.csv.gz`` of valid-looking long-format rows (40 features, ~250 bytes a row) that
    inflates to ``inflated`` bytes: one gzip member compressed once (level 9) and repeated
    (gzip readers read every member)."""
    features = 40
    rows = "".join(f"s{i},{t}," + ",".join(f"{(i * 7 + t + f) % 100 / 100:.3f}"
                                           for f in range(features)) + f",c{i % 3}\n"
                   for i in range(6) for t in range(10)).encode()
    member = gzip.compress(rows * (block // len(rows)), 9, mtime=0)
    size = len(rows) * (block // len(rows))
    names = ",".join(f"x{f}" for f in range(features))
    with open(path, "wb") as out:
        out.write(gzip.compress(f"series_id,step,{names},target\n".encode(), 9, mtime=0))
        for _ in range(inflated // size + 1):
            out.write(member)
    return path


def _gf2_times(matrix: list[int], vector: int) -> int:
    total, i = 0, 0
    while vector:
        if vector & 1:
            total ^= matrix[i]
        vector >>= 1
        i += 1
    return total


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC-32 of A+B from crc(A), crc(B) and len(B) (zlib's crc32_combine, in Python)."""
    if len2 <= 0:
        return crc1
    odd = [0xEDB88320] + [1 << (n - 1) for n in range(1, 32)]
    even = [_gf2_times(odd, odd[n]) for n in range(32)]
    odd = [_gf2_times(even, even[n]) for n in range(32)]
    while True:
        even = [_gf2_times(odd, odd[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(even, crc1)
        len2 >>= 1
        if not len2:
            break
        odd = [_gf2_times(even, even[n]) for n in range(32)]
        if len2 & 1:
            crc1 = _gf2_times(odd, crc1)
        len2 >>= 1
        if not len2:
            break
    return crc1 ^ crc2


def _npy_header(shape: tuple[int, ...], dtype: str) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def npz_zero_bomb(path: Path, segments: int = 128, segment: int = 64 * MIB) -> Path:
    """An NPZ whose ``X`` member inflates to ``segments * segment`` bytes of zeros (8 GiB by
    default, ~8 MB on disk) with a matching ``y``: a valid ZIP64 archive (right sizes and
    CRC), its deflate stream one fully flushed segment of zeros repeated."""
    count = segments * segment // 8
    side = round(count ** (1 / 3))
    shape = (side, side, count // side**2)
    assert math.prod(shape) == count
    header = _npy_header(shape, "<f8")
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(segment)
    first = compressor.compress(header) + compressor.compress(zeros)
    first += compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    again = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert repeat == again, "a flushed deflate segment of zeros must repeat exactly"
    stream = [first] + [repeat] * (segments - 1) + [compressor.flush(zlib.Z_FINISH)]
    crc_zeros, length = zlib.crc32(zeros), segment
    total_zeros = 0
    crc_all = 0
    for bit in range(segments.bit_length()):  # crc of segments * segment zero bytes
        if segments >> bit & 1:
            crc_all = crc32_combine(crc_all, crc_zeros, length) if total_zeros else crc_zeros
            total_zeros += length
        crc_zeros, length = crc32_combine(crc_zeros, crc_zeros, length), 2 * length
    crc = crc32_combine(zlib.crc32(header), crc_all, total_zeros)
    size = len(header) + segments * segment
    y = io.BytesIO()
    np.save(y, np.arange(shape[0]) % 2)
    with open(path, "wb") as out:
        central = [_zip_member(out, "X.npy", stream, crc, size, zip64=True),
                   _zip_member(out, "y.npy", [y.getvalue()], zlib.crc32(y.getvalue()),
                               len(y.getvalue()), stored=True)]
        start = out.tell()
        for record in central:
            out.write(record)
        end = out.tell()
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 2, 2, end - start, start, 0))
    return path


def _zip_member(out: io.BufferedWriter, name: str, chunks: list[bytes], crc: int, size: int,
                zip64: bool = False, stored: bool = False) -> bytes:
    """Write one local header and its data; return its central directory record."""
    offset = out.tell()
    compressed = sum(len(c) for c in chunks)
    method, version = (0, 20) if stored else (8, 45 if zip64 else 20)
    sizes = (0xFFFFFFFF, 0xFFFFFFFF) if zip64 else (compressed, size)
    extra = struct.pack("<HHQQ", 1, 16, size, compressed) if zip64 else b""
    encoded = name.encode()
    out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, version, 0, method, 0, 0x21, crc,
                          *sizes, len(encoded), len(extra)) + encoded + extra)
    for chunk in chunks:
        out.write(chunk)
    return struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, version, version, 0, method, 0, 0x21,
                       crc, *sizes, len(encoded), len(extra), 0, 0, 0, 0, offset) + encoded + extra


def wide_csv(path: Path, columns: int = 200_000) -> Path:
    """A ~1.9 MB CSV whose header row has ``columns`` columns, and one data row."""
    header = "series_id,step,target," + ",".join(f"c{i}" for i in range(columns - 3))
    path.write_text(header + "\n" + ",".join(["0"] * columns) + "\n")
    return path


def long_npz(path: Path, n: int = 4, steps: int = 2_000_000) -> Path:
    """4 sequences x 2,000,000 steps (32 MB of float32 before compression)."""
    X = np.tile(np.sin(np.arange(1000, dtype=np.float32) / 7), (n, steps // 1000))
    np.savez_compressed(path, X=X, y=np.arange(n) % 2)
    return path


def label_per_series_csv(path: Path, n: int = 500, steps: int = 10) -> Path:
    """The long format with every series its own class: 500 series, 500 classes."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"series_id": np.repeat(np.arange(n), steps),
                          "step": np.tile(np.arange(steps), n),
                          "x": rng.normal(size=n * steps).round(4),
                          "label": np.repeat([f"class{i}" for i in range(n)], steps)})
    frame.to_csv(path, index=False)
    return path


def long_csv(path: Path, n: int = 40, steps: int = 10, classes: int = 2) -> Path:
    """A valid long-format classification CSV."""
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"series_id": np.repeat(np.arange(n), steps),
                          "step": np.tile(np.arange(steps), n),
                          "x": rng.normal(size=n * steps).round(4),
                          "target": np.repeat(np.arange(n) % classes, steps)})
    frame.to_csv(path, index=False)
    return path


def constant_target_csv(path: Path, n: int = 200, steps: int = 10) -> Path:
    """A regression data set whose target is the same number for every series."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"series_id": np.repeat(np.arange(n), steps),
                          "step": np.tile(np.arange(steps), n),
                          "x": rng.normal(size=n * steps).round(4), "target": 3.5})
    frame.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class Hostile:
    name: str
    file_name: str
    make: Callable[[Path], Path]
    expect: tuple[str, ...]  # fragments of the refusal


HOSTILE = [
    Hostile("gzip_bomb", "bomb.csv.gz", gzip_bomb, ("max_inflated_mb", "more than 1,024 MiB")),
    Hostile("npz_zero_bomb", "zeros.npz", npz_zero_bomb, ("max_inflated_mb", "8,192 MiB")),
    Hostile("wide_header", "wide.csv", wide_csv, ("max_columns", "200,000 columns")),
    Hostile("long_sequences", "long.npz", long_npz, ("max_steps", "2,000,000 steps")),
    Hostile("label_per_series", "labels.csv", label_per_series_csv,
            ("class of its own", "500 classes")),
    Hostile("constant_target", "constant.csv", constant_target_csv, ("constant target",)),
]


# --------------------------------------------------------------------------- memory watch


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def tree_rss(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, bytes."""
    tree, total, todo = _children(), 0, [pid]
    while todo:
        current = todo.pop()
        todo.extend(tree.get(current, []))
        try:
            with open(f"/proc/{current}/status") as fh:
                for line in fh:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


@dataclass
class Watched:
    code: int
    seconds: float
    peak_bytes: int
    stderr: str


# Runs the command in a child of a fresh, small process and writes the child's peak RSS (KiB):
# the peak that wait4 reports for a child of pytest itself would start at pytest's size, since
# Linux keeps a process's high-water mark across fork and exec.
_LAUNCHER = """import os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_watched(command: list[str], cwd: Path, log: Path, timeout: float = 120) -> Watched:
    """Run ``command``, polling the memory of its process tree every 50 ms; the peak also
    counts the high-water mark of the command's process (and of the children it waited for),
    so that a short spike between two polls is not missed."""
    peak_file = log.with_suffix(".maxrss")
    start = time.monotonic()
    with open(log, "wb") as err:
        process = subprocess.Popen([sys.executable, "-c", _LAUNCHER, str(peak_file), *command],
                                   cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=err, start_new_session=True)
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_rss(process.pid))
        if time.monotonic() - start > timeout:
            os.killpg(process.pid, signal.SIGKILL)
        time.sleep(0.05)
    seconds = time.monotonic() - start
    high_water = int(peak_file.read_text() or 0) * 1024 if peak_file.exists() else 0
    return Watched(process.returncode, seconds, max(peak, high_water),
                   log.read_text(errors="replace"))


# --------------------------------------------------------------------------- the runs


@dataclass
class Runs:
    files: dict[str, Path]
    cli: dict[str, Watched]
    db: Path
    server: subprocess.Popen
    url: str


def _start_server(root: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "archsearch", "serve", "--port", str(port),
         "--db", f"sqlite:///{root / 'api.db'}", "--data-dir", str(root / "data"),
         "--report-dir", str(root / "reports"), "--max-upload-mb", "64",
         "--limit", f"max_series={SERVER_MAX_SERIES}"],
        cwd=root, env={**os.environ, "ARCHSEARCH_API_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL, stderr=open(root / "serve.log", "wb"),
        start_new_session=True)
    return process, f"http://127.0.0.1:{port}"


def _wait_up(process: subprocess.Popen, url: str, log: Path) -> None:
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, log.read_text()[-3000:]
        try:
            if requests.get(url + "/health", timeout=2).ok:
                return
        except requests.ConnectionError:
            pass
        assert time.monotonic() < deadline, "the server did not come up"
        time.sleep(0.3)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    root = tmp_path_factory.mktemp("hostile")
    files = {h.name: h.make(root / h.file_name) for h in HOSTILE}
    db = root / "cli.db"
    server, url = _start_server(root)  # it imports while the command lines run

    def run(hostile: Hostile) -> tuple[str, Watched]:
        command = [sys.executable, "-m", "archsearch.cli", "search",
                   str(files[hostile.name]), "--budget-trials", "2", "--db", f"sqlite:///{db}",
                   "--report-dir", str(root / "reports")]
        return hostile.name, run_watched(command, root, root / f"{hostile.name}.err")

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            cli = dict(pool.map(run, HOSTILE))
        _wait_up(server, url, root / "serve.log")
        yield Runs(files, cli, db, server, url)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def _message(watched: Watched) -> str:
    lines = [line for line in watched.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, watched.stderr  # one paragraph, nothing else
    assert lines[0].startswith("archsearch: error: "), watched.stderr
    return lines[0][len("archsearch: error: "):]


def _task_rows(db: Path) -> int:
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "archsearch_tasks" not in tables:
            return 0
        return conn.execute("SELECT COUNT(*) FROM archsearch_tasks").fetchone()[0]


@pytest.mark.parametrize("hostile", HOSTILE, ids=[h.name for h in HOSTILE])
def test_the_command_line_refuses_it_quickly_and_within_memory(runs, hostile):
    watched = runs.cli[hostile.name]
    print(f"{hostile.name}: exit {watched.code} in {watched.seconds:.1f} s, peak "
          f"{watched.peak_bytes / MIB:.0f} MiB")
    assert watched.code == 2, watched.stderr
    assert "Traceback" not in watched.stderr
    message = _message(watched)
    for fragment in hostile.expect:
        assert fragment in message, message
    assert watched.seconds < TIME_LIMIT_S
    assert watched.peak_bytes < MEMORY_LIMIT
    assert _task_rows(runs.db) == 0


def test_the_server_refuses_every_upload_and_stays_up(runs):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    peak = 0
    for hostile in HOSTILE:
        path = runs.files[hostile.name]
        with open(path, "rb") as fh:
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=1) as pool:
                answer = pool.submit(requests.post, runs.url + "/tasks", headers=headers,
                                     data={"options": json.dumps({"budget_trials": 2})},
                                     files={"dataset": (path.name, fh)}, timeout=60)
                while not answer.done():
                    peak = max(peak, tree_rss(runs.server.pid))
                    time.sleep(0.05)
                response = answer.result()
        seconds = time.monotonic() - started
        print(f"{hostile.name}: HTTP {response.status_code} in {seconds:.1f} s")
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail == _message(runs.cli[hostile.name])  # the same paragraph
        assert seconds < TIME_LIMIT_S
        assert requests.get(runs.url + "/health", timeout=10).ok  # still up
    # The server's own limits (serve --limit), which a request cannot change.
    many = long_csv(runs.files["gzip_bomb"].parent / "many.csv", n=SERVER_MAX_SERIES + 200)
    response = requests.post(runs.url + "/tasks", headers=headers,
                             data={"options": json.dumps({"budget_trials": 2})},
                             files={"dataset": ("many.csv", many.read_bytes())}, timeout=60)
    assert response.status_code == 422, response.text
    assert "'many.csv' has 1,200 sequences, over the data limit max_series = 1,000" in \
        response.json()["detail"]
    assert "archsearch serve --limit" in response.json()["detail"]
    response = requests.post(runs.url + "/tasks", headers=headers, data={
        "options": json.dumps({"load": {"limits": None}}), "builtin": "builtin:parity"},
        timeout=60)
    assert response.status_code == 422 and "serve --limit" in response.json()["detail"]
    tasks = requests.get(runs.url + "/tasks", headers=headers, timeout=10)
    assert tasks.status_code == 200 and tasks.json() == []  # no task row for a refused input
    print(f"server peak {peak / MIB:.0f} MiB")
    assert peak < MEMORY_LIMIT
    assert not any((Path(runs.files["gzip_bomb"]).parent / "data" / "uploads").glob("*"))


# --------------------------------------------------------------------------- in process


def _limited(**values: int) -> LoadOptions:
    return LoadOptions(limits=DataLimits(**values))


def _refused(source: Path | str, options: LoadOptions | None, *fragments: str) -> str:
    with pytest.raises(DataError) as info:
        load_dataset(str(source), options)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_a_wide_header_is_refused_in_well_under_a_second(tmp_path):
    path = wide_csv(tmp_path / "wide.csv")
    started = time.monotonic()
    _refused(path, None, "'wide.csv' has 200,000 columns in its header line",
             "max_columns = 10,000 columns", "--limit max_columns=N")
    assert time.monotonic() - started < 0.5


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".tsv", ".parquet"])
def test_rows_and_columns_of_a_table_are_counted_before_parsing(tmp_path, suffix):
    path = long_csv(tmp_path / "long.csv", n=40, steps=10)
    frame = pd.read_csv(path)
    target = tmp_path / f"data{suffix}"
    if suffix == ".parquet":
        frame.to_parquet(target)
    else:
        frame.to_csv(target, index=False, sep="\t" if suffix == ".tsv" else ",")
    assert load_dataset(str(target), _limited(max_rows=400, max_columns=4)).n_sequences == 40
    _refused(target, _limited(max_rows=399), "400 rows" if suffix == ".parquet"
             else "more than 399 data rows", "max_rows = 399")
    _refused(target, _limited(max_columns=3), "4 columns", "max_columns = 3")


def test_the_inflated_size_of_a_table_is_counted_while_reading(tmp_path):
    path = long_csv(tmp_path / "big.csv", n=4000, steps=40)  # ~2.6 MiB of text
    _refused(path, _limited(max_inflated_mb=1), "MiB of text", "max_inflated_mb = 1 MiB")
    with open(path, "rb") as src, gzip.open(tmp_path / "big.csv.gz", "wb") as out:
        out.write(src.read())
    _refused(tmp_path / "big.csv.gz", _limited(max_inflated_mb=1),
             "inflates to more than 1 MiB of text (reading stopped there")
    pd.read_csv(path).to_parquet(tmp_path / "big.parquet")
    _refused(tmp_path / "big.parquet", _limited(max_inflated_mb=1),
             "MiB of column data once decompressed")


def test_npz_limits_and_shapes_come_from_the_headers_before_any_data(tmp_path, monkeypatch):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.zeros((50, 30, 3), np.float32), y=np.arange(50) % 2)
    assert load_dataset(str(path)).X.shape == (50, 30, 3)

    def no_data(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("array data was read before the limits were checked")

    monkeypatch.setattr(np.lib.format, "read_array", no_data)
    _refused(path, _limited(max_series=49), "has 50 sequences", "max_series = 49")
    _refused(path, _limited(max_steps=29), "has sequences of 30 steps", "max_steps = 29")
    _refused(path, _limited(max_channels=2), "has 3 channels per step")
    _refused(path, _limited(max_values=4499), "= 4,500 values", "max_values = 4,499")
    np.savez(path, X=np.zeros((100, 100, 30)), y=np.arange(100) % 2)  # 2.3 MiB of float64
    _refused(path, _limited(max_inflated_mb=1), "declares arrays of 2 MiB once inflated",
             "'X', has shape (100, 100, 30) of float64")
    np.savez(path, X=np.zeros((50, 30)), y=np.arange(49) % 2)
    _refused(path, None, "y has shape (49,); it must be (50,)")
    np.savez(path, X=np.zeros((50, 30)), y=np.arange(50) % 2, X_test=np.zeros((60, 30)),
             y_test=np.arange(60) % 2)
    _refused(path, _limited(max_series=100), "has 110 sequences (50 + 60 in the fixed test split)")


def test_classes_and_built_in_data_sets_meet_the_limits(tmp_path):
    path = tmp_path / "classes.npz"
    np.savez(path, X=np.zeros((60, 4)), y=np.arange(60) % 30)
    assert load_dataset(str(path)).n_outputs == 30
    _refused(path, _limited(max_classes=29), "has 30 classes", "max_classes = 29")
    _refused("builtin:adding", _limited(max_steps=99), "builtin:adding has sequences of 100 steps")
    assert load_dataset("builtin:adding", _limited(max_steps=100)).seq_len == 100


def test_a_class_per_sequence_is_refused_but_a_few_single_sequence_classes_are_kept(tmp_path):
    path = tmp_path / "ids.npz"
    np.savez(path, X=np.zeros((6, 4)), y=np.arange(6), X_test=np.zeros((6, 4)), y_test=np.arange(6))
    _refused(path, None, "each of its 6 training sequences has a class of its own")
    for y in (np.array([0] * 10 + [1] * 10 + [2, 3]), np.arange(5) % 4):
        np.savez(path, X=np.random.default_rng(0).normal(size=(len(y), 4)), y=y)
        prepared = prepare(load_dataset(str(path)), seed=0)
        folds = cross_validation_folds(prepared, 5, seed=0)  # plain folds: no ValueError
        held = np.concatenate([fold.val.y for fold in folds])
        assert len(held) == len(prepared.train) + len(prepared.val)


def test_a_constant_target_is_refused(tmp_path):
    path = tmp_path / "constant.npz"
    np.savez(path, X=np.random.default_rng(0).normal(size=(20, 4)), y=np.full(20, 2.5))
    _refused(path, None, "every target value ('y') is 2.5", "constant target")
    series = tmp_path / "flat.csv"
    pd.DataFrame({"time": np.arange(200), "value": 7.0}).to_csv(series, index=False)
    _refused(series, None, "every forecast target value", "is 7")


def test_limit_settings_parse_and_travel_with_a_stored_task():
    assert DataLimits.from_items(["max_rows=5", "max-steps=1_000"]) == \
        DataLimits(max_rows=5, max_steps=1000)
    for bad in (["rows=5"], ["max_rows=0"], ["max_rows=x"], ["max_rows"]):
        with pytest.raises(UsageError):
            DataLimits.from_items(bad)
    args = build_parser().parse_args(["search", "data.csv", "--limit", "max_rows=5",
                                      "--limit", "max_classes=3", "--target", "y"])
    options = _load_options(args)
    assert options.limits == DataLimits(max_rows=5, max_classes=3) and options.target == "y"
    assert build_parser().parse_args(["serve", "--limit", "max_steps=7"]).limit == ["max_steps=7"]
    stored = json.loads(json.dumps(SearchRequest("data.csv", load=options).to_options()))
    assert stored["load"]["limits"]["max_rows"] == 5
    resumed = SearchRequest.from_options(stored, "sqlite://", None)
    assert resumed.load == options  # a resumed task reads its data within the same limits
    older = {k: v for k, v in stored["load"].items() if k != "limits"}  # stored before limits
    assert LoadOptions.from_dict(older).limits == DataLimits()
    with pytest.raises(DataError, match="unknown data limit"):
        LoadOptions.from_dict({"limits": {"max_rowz": 1}})


def test_the_command_line_reuses_the_data_set_it_loaded_first(tmp_path):
    path = long_csv(tmp_path / "data.csv")
    assert load_dataset(str(path)) is not load_dataset(str(path))
    with reuse_loads():
        first = load_dataset(str(path))
        assert load_dataset(str(path)) is first
        assert load_dataset(str(path), LoadOptions(target="target")) is not first
        long_csv(path, n=50)
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert load_dataset(str(path)).n_sequences == 50  # the file changed: read again
    assert load_dataset(str(path)) is not load_dataset(str(path))


# --------------------------------------------------------------------------- cost estimates

# The data limits allow 20,000 steps; softmax attention over a padded batch of them needs tens
# of GB, which its estimate says before any model exists, while a convolution trains. On a CPU
# a batch runs in chunks down to one series, so the attention here is 16 layers deep: their
# T x T masks hold about 30 GB for one series.
LONG_SPACE = """\
version: 1
training:
  lr: 1.0e-3
  batch_size: 16
  max_steps: 2
  eval_every: 1
shared:
  d_model: 8
  dropout: 0.1
  pooling: mean
families:
  transformer: {n_layers: 16, n_heads: 2, ff_mult: 2}
  attn_rnn: {cell: gru, n_layers: 16, n_heads: 2, window: 16}
  tcn: {n_layers: 3, kernel_size: 2}
"""


def ragged_long_npz(path: Path, n: int = 60, steps: int = 20_000) -> Path:
    """n sequences of up to ``steps`` (every other one half as long), within the data limits."""
    rng = np.random.default_rng(0)
    lengths = np.where(np.arange(n) % 2 == 0, steps, steps // 2)
    X = rng.normal(size=(n, steps)).astype(np.float32) * (np.arange(steps) < lengths[:, None])
    np.savez_compressed(path, X=X, y=np.arange(n) % 2, lengths=lengths)
    return path


def _estimates(path: Path, space: Path) -> dict[str, float]:
    """The estimated run memory (MB) of each family's configuration in ``space``."""
    from archsearch.space import load_space
    from archsearch.trial.preflight import trial_estimate
    from archsearch.trial.runner import model_io
    from archsearch.types import Constraints

    data = prepare(load_dataset(str(path)), 0)
    loaded = load_space(space)
    io = model_io(data, Constraints())
    return {family: trial_estimate(arch, io, data, train.batch_size, on_cpu=True).run_mb
            for family in loaded.families for arch, train in loaded.smallest(family)}


@pytest.mark.slow  # a real search with Ray: about 2.5 minutes on 2 cores, its report included
def test_attention_over_long_sequences_ends_infeasible_by_estimate_and_the_rest_is_searched(
        tmp_path):
    from archsearch.measure import available_memory_mb
    from archsearch.trial.preflight import MEMORY_SHARE

    path = ragged_long_npz(tmp_path / "long.npz")
    space = tmp_path / "long.yaml"
    space.write_text(LONG_SPACE)
    estimates = _estimates(path, space)
    share = MEMORY_SHARE * available_memory_mb()
    if min(estimates["transformer"], estimates["attn_rnn"]) < 2 * share:
        pytest.skip(f"this machine's memory ({share:,.0f} MB for a trial) would hold attention "
                    f"over 20,000 steps ({estimates})")
    assert estimates["tcn"] < share / 3
    db = tmp_path / "long.db"
    watched = run_watched(
        [sys.executable, "-m", "archsearch.cli", "search", str(path), "--space", str(space),
         "--budget-trials", "3", "--cv-folds", "0", "--db", f"sqlite:///{db}",
         "--report-dir", str(tmp_path / "reports")], tmp_path, tmp_path / "long.err",
        timeout=300)
    print(f"exit {watched.code} in {watched.seconds:.1f} s, peak "
          f"{watched.peak_bytes / MIB:.0f} MiB")
    assert watched.code == 0, watched.stderr[-3000:]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT family, status, epochs_run, error, params "
                            "FROM archsearch_trials").fetchall()
    by_family = {family: (status, epochs, error, params)
                 for family, status, epochs, error, params in rows}
    assert set(by_family) == {"transformer", "attn_rnn", "tcn"}
    for family in ("transformer", "attn_rnn"):
        status, epochs, error, params = by_family[family]
        assert status == "infeasible" and epochs == 0, by_family[family]
        assert "estimated before building the model" in error and "--lookback" in error
        assert params is None  # never built, never measured
    assert by_family["tcn"][0] == "completed", by_family["tcn"]
    assert watched.peak_bytes < 4 * 2**30  # Ray included; no attention was ever allocated


def test_a_data_set_too_long_for_every_family_is_refused_before_a_task_row(tmp_path):
    path = ragged_long_npz(tmp_path / "long.npz", n=20, steps=4_000)
    space = tmp_path / "attention.yaml"
    space.write_text(LONG_SPACE.split("  transformer:")[0]
                     + "  attn_rnn: {cell: gru, n_layers: 1, n_heads: 2, window: "
                       "{type: categorical, choices: [16, 64]}}\n")
    db = tmp_path / "refused.db"
    # A windowed attention masks even one sequence: its batch-1 forward holds T x T masks
    # (about 200 MB at 4,000 steps), whichever window, so no configuration of the space fits.
    watched = run_watched(
        [sys.executable, "-m", "archsearch.cli", "search", str(path), "--space", str(space),
         "--constraint", "max_memory_mb=100", "--budget-trials", "2",
         "--db", f"sqlite:///{db}", "--report-dir", str(tmp_path / "reports")],
        tmp_path, tmp_path / "refused.err")
    assert watched.code == 2, watched.stderr
    message = _message(watched)
    for fragment in ("sequences of 4,000 steps are too long for every family",
                     "max_memory_mb=100", "--lookback", "d_model"):
        assert fragment in message, message
    assert watched.seconds < TIME_LIMIT_S and _task_rows(db) == 0
