"""Issue 16 item 4: files as the user expects. Outputs follow the umask (a video of people is not forced
world-readable, a shared project is not locked to 0600); a replaced file keeps its mode."""
from __future__ import annotations

import os
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from pipeline.core import atomic
from pipeline.inference.video_io import write_mp4


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_atomic_writes_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path):
    with umask(0o002):
        atomic.write_bytes(tmp_path / "shared.txt", b"x")
        atomic.write_json(tmp_path / "shared.json", {"a": 1})
    assert mode(tmp_path / "shared.txt") == 0o664 and mode(tmp_path / "shared.json") == 0o664
    with umask(0o077):
        atomic.write_bytes(tmp_path / "private.txt", b"x")
        atomic.write_bytes(tmp_path / "shared.txt", b"replaced")  # kept 0664 though the umask is stricter now
    assert mode(tmp_path / "private.txt") == 0o600
    assert mode(tmp_path / "shared.txt") == 0o664 and (tmp_path / "shared.txt").read_bytes() == b"replaced"
    (tmp_path / "shared.txt").chmod(0o640)
    atomic.write_bytes(tmp_path / "shared.txt", b"again")
    assert mode(tmp_path / "shared.txt") == 0o640


def test_replaced_folder_keeps_its_mode(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o750)
    with atomic.replace_dir(tmp_path / "out") as tmp:
        (tmp / "f").write_text("x")
    assert mode(tmp_path / "out") == 0o750 and (tmp_path / "out" / "f").read_text() == "x"


def test_output_video_follows_the_umask_not_a_forced_0644(tmp_path):
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (0, 80, 160)]
    with umask(0o077):
        write_mp4(tmp_path / "private.mp4", frames, 10.0)
    assert mode(tmp_path / "private.mp4") == 0o600
    with umask(0o002):
        write_mp4(tmp_path / "group.mp4", frames, 10.0)
    assert mode(tmp_path / "group.mp4") == 0o664
    (tmp_path / "group.mp4").chmod(0o660)
    with umask(0o022):
        write_mp4(tmp_path / "group.mp4", frames, 10.0)
    assert mode(tmp_path / "group.mp4") == 0o660


def test_dataset_add_keeps_params_yaml_group_writable(tmp_path, media):
    import shutil

    from pipeline.datasets import add_dataset

    project = tmp_path / "proj"
    project.mkdir()
    params = project / "params.yaml"
    params.write_text("datasets: {}\n")
    params.chmod(0o664)
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(media["videos"][0], clips / "a.mp4")
    with umask(0o022):
        add_dataset(params, "mine", str(clips), "folder")
    assert mode(params) == 0o664 and "mine" in params.read_text()
