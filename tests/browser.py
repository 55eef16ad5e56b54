"""A real headless Chromium (Debian's package, installed by scripts/test.sh)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--enable-logging=stderr", "--v=0"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError("Chromium is not installed; scripts/test.sh installs it "
                       "(apt-get install chromium).")


def screenshot(url: str, out: Path, size: str = "1280,2000") -> list[str]:
    """Render ``url`` to ``out`` (PNG); return the page's console messages."""
    with tempfile.TemporaryDirectory() as profile:
        run = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}",
                              f"--window-size={size}", f"--screenshot={out}", url],
                             capture_output=True, text=True, timeout=120)
    if not out.is_file():
        raise RuntimeError(f"Chromium wrote no screenshot: {run.stderr[-2000:]}")
    return [line for line in run.stderr.splitlines() if re.search(r":CONSOLE[:(]", line)]


def distinct_colours(png: Path, limit: int = 64) -> int:
    """Count distinct RGB(A) pixels in the first rows of an 8-bit PNG (up to ``limit``)."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width, channels = 8, b"", 0, 4
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
            channels = {2: 3, 6: 4}[body[9]]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels + 1
    colours: set[bytes] = set()
    previous = bytearray(stride - 1)
    for row_start in range(0, len(raw), stride):
        filter_type, row = raw[row_start], bytearray(raw[row_start + 1:row_start + stride])
        for i in range(len(row)):  # undo the PNG row filters (Sub, Up, Average, Paeth)
            left = row[i - channels] if i >= channels else 0
            up = previous[i]
            up_left = previous[i - channels] if i >= channels else 0
            if filter_type == 1:
                row[i] = (row[i] + left) & 0xFF
            elif filter_type == 2:
                row[i] = (row[i] + up) & 0xFF
            elif filter_type == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                row[i] = (row[i] + (left if pa <= pb and pa <= pc else up if pb <= pc
                                    else up_left)) & 0xFF
        for i in range(0, len(row), channels):
            colours.add(bytes(row[i:i + 3]))
        if len(colours) >= limit:
            break
        previous = row
    return len(colours)


def watch(url: str, expression: str, until: Callable[[Any], bool], timeout: float,
          interval: float = 0.5) -> tuple[list[Any], list[str]]:
    """Open ``url`` in headless Chromium and evaluate the JavaScript ``expression`` every
    ``interval`` seconds over the DevTools protocol until ``until(value)`` holds or ``timeout``
    passes; return every value seen and the page's uncaught exceptions."""
    # Chromium's helper processes may still be writing the profile as it is removed.
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        # Its own session, so that the browser and all its helper processes stop together.
        browser = subprocess.Popen([chromium(), *FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=0", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   start_new_session=True)
        try:
            return asyncio.run(_watch(Path(profile) / "DevToolsActivePort", url, expression,
                                      until, timeout, interval))
        finally:
            os.killpg(browser.pid, signal.SIGKILL)
            browser.wait()


async def _watch(port_file: Path, url: str, expression: str, until: Callable[[Any], bool],
                 timeout: float, interval: float) -> tuple[list[Any], list[str]]:
    import aiohttp  # Ray's dashboard needs it, so it is installed wherever archsearch is

    deadline = time.monotonic() + timeout
    while not port_file.is_file() or not port_file.read_text().strip():
        if time.monotonic() > deadline:
            raise RuntimeError("Chromium did not open its DevTools port")
        await asyncio.sleep(0.1)
    port = port_file.read_text().split()[0]
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
            target = next(t for t in await response.json() if t["type"] == "page")
        async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 1 << 30))
            errors: list[str] = []

            async def call(method: str, **params: Any) -> dict:
                number = next(ids)
                await ws.send_json({"id": number, "method": method, "params": params})
                while True:
                    message = await ws.receive_json()
                    if message.get("method") == "Runtime.exceptionThrown":
                        errors.append(json.dumps(message["params"]["exceptionDetails"])[:2000])
                    if message.get("id") == number:
                        return message.get("result", {})

            await call("Runtime.enable")
            await call("Page.navigate", url=url)
            values: list[Any] = []
            while time.monotonic() < deadline:
                result = await call("Runtime.evaluate", expression=expression,
                                    returnByValue=True)
                values.append(result.get("result", {}).get("value"))
                if until(values[-1]):
                    break
                await asyncio.sleep(interval)
            return values, errors
