"""Helpers for the fault-injection tests: killing a stage process at a chosen moment, a disk that fills up
after N bytes, and checks that a file under its final name is complete."""
from __future__ import annotations

import contextlib
import errno
import os
import signal
import subprocess
import sys
import tarfile
import time
import types
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def start_stage(module: str, *args: str) -> subprocess.Popen:
    """``python -m <module> <args>`` from the project root, one torch thread, output discarded."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", REMOT_TORCH_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_stage_cli(module: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", REMOT_TORCH_THREADS="1")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120, poll: float = 0.005) -> bool:
    """Poll ``ready()`` until it is true (or ``proc`` exits, or ``timeout``), then SIGKILL ``proc``.

    Returns True when the kill landed while the process was still running (False: it had already finished).
    """
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None and not ready():
        time.sleep(poll)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return alive


def temporaries(folder: Path) -> list[Path]:
    """Every ``.tmp-*`` entry anywhere under ``folder`` (what a killed atomic writer leaves)."""
    return sorted(p for p in Path(folder).rglob(".tmp-*")) if Path(folder).exists() else []


def check_npz(path: Path) -> dict[str, np.ndarray]:
    """Load every array of ``path`` without pickle (raises on a truncated or corrupt file)."""
    with np.load(path, allow_pickle=False) as npz:
        return {k: np.asarray(npz[k]) for k in npz.files}


def check_tar(path: Path) -> list[str]:
    """Open ``path``, read every member to its end; returns the member names (raises on truncation)."""
    names = []
    with tarfile.open(path, mode="r:") as tar:
        for member in tar:
            handle = tar.extractfile(member)
            data = handle.read() if handle is not None else b""
            if len(data) != member.size:
                raise tarfile.ReadError(f"{path}: member {member.name} is {len(data)} of {member.size} bytes")
            names.append(member.name)
    return names


class _FullDiskFile:
    """A writable file wrapper that accepts ``budget[0]`` more bytes, writes what fits, then raises ENOSPC."""

    def __init__(self, handle, budget: list[int], path: str):
        self._handle, self._budget, self._path = handle, budget, path

    def write(self, data) -> int:
        data = bytes(data)
        room = max(0, self._budget[0])
        if len(data) > room:
            self._handle.write(data[:room])
            self._handle.flush()
            self._budget[0] = 0
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), self._path)
        self._budget[0] -= len(data)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._handle.close()
        return False


def full_disk_os(under: Path, budget_bytes: int) -> types.SimpleNamespace:
    """A stand-in for the ``os`` module whose ``fdopen`` returns files that run out of space after
    ``budget_bytes`` bytes in total, for files under ``under`` (found through /proc/self/fd); everything else
    is the real ``os``. Install it with ``monkeypatch.setattr(module, "os", full_disk_os(...))``."""
    budget = [budget_bytes]
    under = str(Path(under).resolve())

    def fdopen(fd, *args, **kwargs):
        handle = os.fdopen(fd, *args, **kwargs)
        path = os.readlink(f"/proc/self/fd/{fd}")
        if path.startswith(under):
            return _FullDiskFile(handle, budget, path)
        return handle

    namespace = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    namespace.fdopen = fdopen
    return namespace


@contextlib.contextmanager
def small_tmpfs(mountpoint: Path, size: str) -> Iterator[Path | None]:
    """Mount a tmpfs of ``size`` at ``mountpoint`` (needs root); yields None where mounting is not allowed."""
    mountpoint.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mountpoint)],
                             capture_output=True).returncode == 0 if os.geteuid() == 0 else False
    try:
        yield mountpoint if mounted else None
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True)
