"""``iper``: the iPER dataset (Liu et al., ICCV 2019) with its official protocol lists.

::

    iPER/
      train.txt                 one video per line: <person>/<clothing>/<action>, e.g. 001/1/1
      val.txt                   the official test videos (REMOT and iPER report on these)
      images_HD/001/1/1/*.png   frame folders (the images_HD release) ...
      iPER_256_video_release/001_1_1.mp4   ... or the video release (either, or both)

``train.txt`` -> split ``train``; ``val.txt`` (and ``test.txt`` where present) -> split ``test``.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.datasets.base import (ENTRY_ERRORS, DatasetError, Scan, UnsafePath, VideoEntry, entry_error,
                                    frames_outside_root, inside, is_frame_folder, is_unreadable, is_video_file,
                                    safe_id, unique_ids)

LISTS = {"train.txt": "train", "val.txt": "test", "test.txt": "test"}
FRAME_ROOTS = ("images_HD", "images", "iPER_256_images", ".")
VIDEO_ROOTS = ("iPER_256_video_release", "iPER_1024_video_release", "videos", ".")


def _read_list(path: Path) -> list[str]:
    # undecodable bytes survive as surrogates, so one bad line is one reported entry, not a failed scan
    text = path.read_bytes().decode("utf-8", "surrogateescape")
    return [line.strip().strip("/") for line in text.splitlines() if line.strip()]


def _locate(root: Path, entry: str) -> tuple[Path, bool] | None:
    for folder in FRAME_ROOTS:
        candidate = inside(root, Path(folder) / entry)
        if is_frame_folder(candidate):
            return candidate, True
    flat = entry.replace("/", "_")
    for folder in VIDEO_ROOTS:
        for name in (flat, entry):
            candidate = inside(root, Path(folder) / f"{name}.mp4")
            if is_video_file(candidate):
                return candidate, False
    return None


def scan_iper(name: str, root: Path) -> Scan:
    scan = Scan(dataset=name, kind="iper", root=root)
    lists = [(root / f, split) for f, split in LISTS.items() if (root / f).is_file()]
    if not any(f.name == "train.txt" for f, _ in lists) or not any(s == "test" for _, s in lists):
        raise DatasetError(f"{root}: an iPER root needs train.txt and val.txt (the official protocol lists, "
                           "published with the dataset); found " + (", ".join(f.name for f, _ in lists) or "none"))
    assigned: dict[str, str] = {}
    found: list[tuple[str, Path, bool, str]] = []
    for list_file, split in lists:
        for number, entry in enumerate(_read_list(list_file), 1):
            shown = repr(entry[:80] + ("..." if len(entry) > 80 else ""))
            if entry in assigned:
                if assigned[entry] != split:
                    scan.problems.append(f"{list_file.name}: {entry} is also listed for {assigned[entry]}; kept there")
                continue
            try:
                if "\0" in entry or not entry.isprintable():
                    raise ValueError("control character or NUL byte in the name")
                located = _locate(root, entry)
                problem = frames_outside_root(root, located[0]) if located and located[1] else None
            except UnsafePath as exc:
                scan.problems.append(f"{list_file.name}: {exc}")
                continue
            except ENTRY_ERRORS as exc:
                if is_unreadable(exc):
                    scan.cannot_read(Path(exc.filename) if exc.filename else root / entry, exc,
                                     f"{list_file.name} line {number}: ")
                else:
                    scan.problems.append(f"{list_file.name} line {number}: entry {shown} cannot be used "
                                         f"({entry_error(exc)}); skipped")
                continue
            if located is None:
                scan.problems.append(f"{list_file.name}: {entry} has neither a frame folder nor an mp4 "
                                     f"(looked under {', '.join(FRAME_ROOTS[:-1])} and {', '.join(VIDEO_ROOTS[:-1])})")
                continue
            if problem:
                scan.problems.append(problem)
                continue
            assigned[entry] = split
            found.append((entry, located[0], located[1], split))
    ids = unique_ids([(safe_id(entry), entry) for entry, *_ in found], scan.problems)
    scan.videos = [VideoEntry(name, vid, path, frames, split) for vid, (_, path, frames, split) in zip(ids, found)]
    return scan
