"""Atomic writes: a reader (or a re-run after kill -9) sees the old complete output or the new one, never half.

Files are written to a temporary sibling and ``os.replace``d into place; folders are built under a temporary
sibling named ``.tmp-<name>-<pid>`` and renamed. Leftover temporaries from killed runs are removed by
:func:`remove_stale_temps` at the start of the next run.

Permissions are what the user would get from a plain ``open()``: a new file gets ``0666 & ~umask`` (mkstemp's
0600 would lock collaborators out of a shared project), and a file that is replaced keeps its mode (a
params.yaml made group-writable stays so). See :func:`target_mode`.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

TEMP_PREFIX = ".tmp-"


def current_umask() -> int:
    """The process umask, read without changing it where Linux reports it (os.umask would race with threads)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def target_mode(path: Path) -> int:
    """The permission bits an atomic replacement of ``path`` should get: the existing file's (so replacing keeps
    them), else a new file's under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~current_umask()


def set_mode_like(tmp: Path | str | int, path: Path) -> None:
    """Give the temporary (path or open fd) that is about to replace ``path`` the mode of :func:`target_mode`."""
    mode = target_mode(path)
    if isinstance(tmp, int):
        os.fchmod(tmp, mode)
    else:
        os.chmod(tmp, mode)


def write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX + path.name + "-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            set_mode_like(handle.fileno(), path)
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_json(path: Path, obj: Any) -> None:
    write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n").encode())


@contextlib.contextmanager
def replace_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; on success it replaces ``final`` whole, on error it is removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f"{TEMP_PREFIX}{final.name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            with contextlib.suppress(OSError):
                os.chmod(tmp, os.stat(final).st_mode & 0o7777)  # a replaced folder keeps its permissions
            # Two renames keep the window without any complete output as short as possible.
            old = final.parent / f"{TEMP_PREFIX}{final.name}-old-{os.getpid()}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temps(folder: Path) -> list[Path]:
    """Delete temporaries left by killed runs directly under ``folder``; returns what was removed."""
    folder = Path(folder)
    removed = []
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.name.startswith(TEMP_PREFIX):
                if entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                else:
                    entry.unlink(missing_ok=True)
                removed.append(entry)
    return removed
