"""``folder``: any tree of videos and/or frame folders, split by a seeded hash into train, val and test.

::

    my_videos/
      alice_dance.mp4            -> video id "alice_dance"
      bob/warmup.mov             -> "bob__warmup"
      carol_take1/00000.png ...  -> a frame folder, id "carol_take1"

A folder that holds images directly is one video (its subfolders are not searched further).
"""
from __future__ import annotations

import os
from pathlib import Path

from pipeline.core.hashing import text_hex
from pipeline.datasets.base import (ENTRY_ERRORS, Scan, UnsafePath, VideoEntry, frames_outside_root, inside,
                                    is_frame_folder, is_video_file, safe_id, unique_ids)


def split_by_hash(ids: list[str], test_ratio: float, seed: int, val_ratio: float = 0.0) -> dict[str, str]:
    """Assign ``round(test_ratio * n)`` videos to test and ``round(val_ratio * n)`` of the rest to val, chosen
    by a seeded hash of their id; the others are train.

    Stable under additions in the sense that matters for reproducibility: the same ids, ratios and seed always
    give the same split, and a val_ratio never changes which videos are test. ``test_ratio`` 0.0 puts every video
    in train (a training-only dataset), 1.0 every video in test (an evaluation-only one); in between, with at
    least two videos, each split asked for gets at least one and train keeps at least one.
    """
    ranked = sorted(ids, key=lambda i: text_hex(f"{seed}:{i}"))
    if test_ratio >= 1.0:
        n_test = len(ids)
    elif test_ratio <= 0.0 or len(ids) < 2:
        n_test = 0
    else:
        n_test = min(len(ids) - 1, max(1, round(test_ratio * len(ids))))
    left = len(ids) - n_test
    n_val = 0 if val_ratio <= 0.0 or left < 2 else min(left - 1, max(1, round(val_ratio * len(ids))))
    test, val = set(ranked[:n_test]), set(ranked[n_test:n_test + n_val])
    return {i: ("test" if i in test else "val" if i in val else "train") for i in ids}


def scan_folder(name: str, root: Path, test_ratio: float, seed: int, val_ratio: float = 0.0) -> Scan:
    scan = Scan(dataset=name, kind="folder", root=root)
    found: list[tuple[str, Path, bool]] = []

    def walk_error(exc: OSError) -> None:
        # os.walk skips a folder it cannot list without a word unless told: that silence once registered a
        # dataset without the folder's videos, and the stages then removed their outputs
        scan.skip_entry(Path(exc.filename) if exc.filename else root, exc)

    for current, dirs, files in os.walk(root, onerror=walk_error, followlinks=False):
        here = Path(current)
        try:
            frame_folder = here != root and is_frame_folder(here)
        except ENTRY_ERRORS as exc:
            scan.skip_entry(here, exc)
            dirs.clear()
            continue
        if frame_folder:
            found.append((safe_id(str(here.relative_to(root))), here, True))
            dirs.clear()
            continue
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for f in sorted(files):
            path = here / f
            try:
                video_file = is_video_file(path)
            except ENTRY_ERRORS as exc:
                scan.skip_entry(path, exc)
                continue
            if video_file:
                rel = path.relative_to(root).with_suffix("")
                found.append((safe_id(str(rel)), path, False))
            elif path.is_symlink():
                scan.problems.append(f"{path}: symlink skipped")
    if is_frame_folder(root):
        found.append((safe_id(root.name), root, True))
    checked: list[tuple[str, Path, bool]] = []
    for vid, path, frames in sorted(found):
        try:
            inside(root, path.relative_to(root))  # a symlink pointing out of the root is refused
            problem = frames_outside_root(root, path) if frames else None
        except UnsafePath as exc:
            scan.problems.append(str(exc))
            continue
        except ENTRY_ERRORS as exc:
            scan.skip_entry(path, exc)
            continue
        if problem:
            scan.problems.append(problem)
            continue
        checked.append((vid, path, frames))
    ids = unique_ids([(vid, str(path.relative_to(root))) for vid, path, _ in checked], scan.problems)
    safe = [(vid, path, frames) for vid, (_, path, frames) in zip(ids, checked)]
    splits = split_by_hash([vid for vid, _, _ in safe], test_ratio, seed, val_ratio)
    scan.videos = [VideoEntry(name, vid, path, frames, splits[vid]) for vid, path, frames in safe]
    return scan
