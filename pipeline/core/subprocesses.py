"""Ending a child process we started: politely first, then for sure."""
from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM ``process`` (if still running), wait up to ``grace_s`` for it, then SIGKILL it; always reaped."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
