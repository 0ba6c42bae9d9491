"""``solodance``: the SoloDance dataset (Wei et al., C2F-FWN) — frame sequences in train/ and test/.

::

    SoloDance/
      train/<video>/00000.png ...         (or train/<video>/images/*.png)
      test/<video>/...
"""
from __future__ import annotations

from pathlib import Path

from pipeline.datasets.base import DatasetError, Scan, UnsafePath, VideoEntry, inside, is_frame_folder, safe_id


def scan_solodance(name: str, root: Path) -> Scan:
    scan = Scan(dataset=name, kind="solodance", root=root)
    missing = [s for s in ("train", "test") if not (root / s).is_dir()]
    if missing:
        raise DatasetError(f"{root}: a SoloDance root needs train/ and test/ folders of frame sequences; "
                           f"missing {', '.join(missing)}")
    for split in ("train", "test"):
        for folder in sorted(p for p in (root / split).iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                inside(root, folder.relative_to(root))
            except UnsafePath as exc:
                scan.problems.append(str(exc))
                continue
            frames = folder / "images" if is_frame_folder(folder / "images") else folder
            if not is_frame_folder(frames):
                scan.problems.append(f"{folder}: no image frames (expected {folder}/00000.png ... or images/)")
                continue
            scan.videos.append(VideoEntry(name, safe_id(folder.name), frames, True, split))
    return scan
