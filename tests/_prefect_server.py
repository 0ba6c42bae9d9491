"""A real Prefect server on a free loopback port for the tests that need one (flow runs, auth)."""
from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.core.subprocesses import stop


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_prefect_server(home: Path, server_env: dict[str, str] | None = None,
                         startup_s: float = 150) -> Iterator[tuple[str, dict[str, str]]]:
    """Start ``prefect server start`` on 127.0.0.1 with its home in ``home`` (plus ``server_env``), wait for
    /health to answer 200, yield (API base URL, the environment it runs with), and stop it afterwards."""
    port = free_port()
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "DO_NOT_TRACK": "1", **(server_env or {})}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + startup_s
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Prefect server on port {port} did not come up")
            time.sleep(1)
        yield base, env
    finally:
        stop(proc)
