"""``solodance``: the SoloDance dataset (Wei et al., C2F-FWN) — frame sequences in train/ and test/.

::

    SoloDance/
      train/<video>/00000.png ...         (or train/<video>/images/*.png)
      test/<video>/...
"""
from __future__ import annotations

from pathlib import Path

from pipeline.datasets.base import (ENTRY_ERRORS, DatasetError, Scan, UnsafePath, VideoEntry, frames_outside_root,
                                    inside, is_frame_folder, safe_id, unique_ids)


def scan_solodance(name: str, root: Path) -> Scan:
    scan = Scan(dataset=name, kind="solodance", root=root)
    missing = [s for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise DatasetError(f"{root}: a SoloDance root needs train/ and test/ folders of frame sequences; "
                           f"missing {', '.join(missing)}")
    found: list[tuple[str, Path, str]] = []
    for split in ("train", "test"):
        for folder in sorted((root / split).iterdir()):
            try:
                if not folder.is_dir() or folder.name.startswith("."):
                    continue
                inside(root, folder.relative_to(root))
                frames = folder / "images" if is_frame_folder(folder / "images") else folder
                usable = is_frame_folder(frames)
                problem = frames_outside_root(root, frames) if usable else None
            except UnsafePath as exc:
                scan.problems.append(str(exc))
                continue
            except ENTRY_ERRORS as exc:
                scan.skip_entry(folder, exc)
                continue
            if not usable:
                scan.problems.append(f"{folder}: no image frames (expected {folder}/00000.png ... or images/)")
                continue
            if problem:
                scan.problems.append(problem)
                continue
            found.append((f"{split}/{folder.name}", frames, split))
    # ids from the folder name alone (as before); train/Take 1 and test/take_1 both make take_1: told apart below
    ids = unique_ids([(safe_id(rel.split("/", 1)[1]), rel) for rel, _, _ in found], scan.problems)
    scan.videos = [VideoEntry(name, vid, frames, True, split) for vid, (_, frames, split) in zip(ids, found)]
    return scan
