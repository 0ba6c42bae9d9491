"""The Prefect API a flow run talks to when the user runs no server of their own: private to this run.

Without ``PREFECT_API_URL`` Prefect starts a temporary API server itself: plain HTTP on a 127.0.0.1 port, with
no password, on the shared database ``$PREFECT_HOME/prefect.db``. Loopback is reachable by every account on the
machine, so any of them could read and change the runs (and, through the shared database, those of a
password-protected ``make serve`` server). Our flow runs (``make train``; executors ``local-dask`` and ``dask``,
``dask_executors``) start their own instead (:func:`private_temporary_server`):

* its own database, in a fresh folder only this user can read (mode 0700), deleted with the run;
* a random password (HTTP basic auth, ``PREFECT_SERVER_API_AUTH_STRING``) that only this process and its
  children know (environment variables and in-memory settings; Dask workers get it in the task context);
* a socket bound here, on 127.0.0.1 port 0, and handed to the server process (``uvicorn --fd``): no window in which
  another account could take the port first and receive the password.

It waits up to 180 s for the server (``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS`` when set): start-up
(imports, database migrations) takes seconds on an idle machine and more than Prefect's default 20 s on a loaded
shared server or a CI runner, and our runs take minutes to days.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pipeline.core.errors import RemotError
from pipeline.core.subprocesses import stop

STARTUP_TIMEOUT_ENV = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
STARTUP_TIMEOUT_S = 180


@dataclass(frozen=True)
class PrivateServer:
    """Where the private server of a run listens and keeps its database (None when the user runs their own)."""

    api_url: str
    database: Path


def startup_timeout() -> float:
    """Seconds to wait for the server: the user's ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS``, else 180."""
    try:
        return float(os.environ[STARTUP_TIMEOUT_ENV])
    except (KeyError, ValueError):
        return STARTUP_TIMEOUT_S


def _wait_healthy(process: subprocess.Popen, api_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RemotError(f"the private Prefect API server exited with code {process.returncode} before it "
                             "answered; rerun with PREFECT_LOGGING_LEVEL=DEBUG to see why")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(api_url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RemotError(f"the private Prefect API server did not answer within {timeout:.0f} s (a loaded machine: set "
                     f"{STARTUP_TIMEOUT_ENV} higher)")


def _drain_background_senders() -> None:
    """Send what Prefect's background workers still hold (log lines, events) while the server is up: once it is
    gone they would only print connection errors at exit."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(Exception):
            worker.drain_all(timeout=5)


@contextlib.contextmanager
def private_temporary_server() -> Iterator[PrivateServer | None]:
    """Within the block, Prefect clients of this process (and the Dask workers its flows start) use a private
    API server (see the module docstring); yields where it is. A server of the user's own
    (``PREFECT_API_URL``) is used as it is: its address and credentials are theirs; yields None then."""
    import prefect
    from prefect.settings import (PREFECT_API_AUTH_STRING, PREFECT_API_URL, PREFECT_SERVER_API_AUTH_STRING,
                                  PREFECT_SERVER_DATABASE_CONNECTION_URL, get_current_settings, temporary_settings)

    if PREFECT_API_URL.value():
        yield None
        return
    secret = "remot:" + secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="remot-prefect-") as folder:  # created 0700
        database = Path(folder) / "prefect.db"
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        api_url = f"http://127.0.0.1:{listener.getsockname()[1]}/api"
        with temporary_settings({PREFECT_SERVER_API_AUTH_STRING: secret,
                                 PREFECT_SERVER_DATABASE_CONNECTION_URL: f"sqlite+aiosqlite:///{database}"}):
            # the settings this process runs with (profiles, temporary settings), as Prefect's own temporary
            # server gets them, plus what makes the server ours
            env = {**os.environ, **get_current_settings().to_environment_variables(exclude_unset=True),
                   "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1", "PREFECT__SERVER_FINAL": "1"}
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--app-dir", str(prefect.__module_path__.parent), "--factory",
             "prefect.server.api.server:create_app", "--fd", str(listener.fileno()), "--log-level", "error",
             "--lifespan", "on"], env=env, pass_fds=[listener.fileno()])
        listener.close()  # the server process holds the socket now
        try:
            _wait_healthy(process, api_url, startup_timeout())
            with temporary_settings({PREFECT_API_URL: api_url, PREFECT_API_AUTH_STRING: secret}):
                try:
                    yield PrivateServer(api_url, database)
                finally:
                    _drain_background_senders()
        finally:
            stop(process)
