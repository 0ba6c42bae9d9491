"""Issue 16 item 5: robust scans. Duplicate ids are reported and both inputs kept under distinct ids, in every
adapter; each bad entry (a 300-character name, a NUL byte, a symlink loop) is one reported problem and the scan
goes on; names without an ASCII spelling get a stable hash-based id; frame symlinks leaving the root are refused."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from pipeline.core.params import DatasetSpec
from pipeline.datasets import scan_dataset
from pipeline.datasets.base import safe_id


def _frames(src: Path, dst: Path, n: int = 4) -> Path:
    dst.mkdir(parents=True)
    for frame in sorted(src.glob("*.png"))[:n]:
        shutil.copy(frame, dst / frame.name)
    return dst


def test_solodance_duplicate_ids_are_both_kept(tmp_path, media):
    root = tmp_path / "SoloDance"
    _frames(media["frame_folders"][0], root / "train" / "Take 1")
    _frames(media["frame_folders"][1], root / "test" / "take_1")
    _frames(media["frame_folders"][2], root / "test" / "other")
    scan = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(root)))
    ids = sorted(v.video for v in scan.videos)
    assert len(ids) == 3 == len(set(ids)) and "take_1" in ids and "other" in ids
    twin = next(v for v in scan.videos if v.video.startswith("take_1_"))
    assert twin.split == "test" and twin.source.name == "take_1"
    assert [p for p in scan.problems if "take_1" in p and "also made by" in p] == [scan.problems[0]]
    again = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(root)))
    assert [v.video for v in again.videos] == [v.video for v in scan.videos]  # stable


def test_iper_bad_list_lines_are_one_problem_each(tmp_path, media):
    root = tmp_path / "iPER"
    _frames(media["frame_folders"][0], root / "images_HD" / "001" / "1" / "1")
    _frames(media["frame_folders"][1], root / "images_HD" / "001__1" / "1")  # also makes id 001__1__1
    _frames(media["frame_folders"][2], root / "images_HD" / "002" / "1" / "1")
    loop = root / "images_HD" / "loop"
    os.symlink(loop, loop)  # a symlink to itself
    long_name = "x" * 300
    (root / "train.txt").write_bytes(b"001/1/1\n" + long_name.encode() + b"\nbad\x00name\nloop/1/1\n002/1/1\n")
    (root / "val.txt").write_text("001__1/1\n")
    scan = scan_dataset("iper", DatasetSpec(kind="iper", path=str(root)))
    ids = {v.video: v for v in scan.videos}
    assert len(ids) == 3 and "001__1__1" in ids and "002__1__1" in ids
    twin = next(v for k, v in ids.items() if k.startswith("001__1__1_"))
    assert twin.split == "test" and twin.source == (root / "images_HD" / "001__1" / "1").resolve()
    assert sum("also made by" in p for p in scan.problems) == 1
    assert sum("x" * 60 in p for p in scan.problems) == 1 and all(len(p) < 400 for p in scan.problems)
    assert sum("NUL" in p or "\\x00" in p for p in scan.problems) == 1
    assert sum("loop" in p for p in scan.problems) == 1
    assert len(scan.problems) == 4


def test_names_without_ascii_spelling_get_stable_hash_ids(tmp_path, media):
    root = tmp_path / "mine"
    root.mkdir()
    for name in ("日本.mp4", "中文.mp4", "bob_日本.mp4", "plain.mp4"):
        shutil.copy(media["videos"][0], root / name)
    scan = scan_dataset("mine", DatasetSpec(kind="folder", path=str(root)))
    ids = sorted(v.video for v in scan.videos)
    assert len(ids) == 4 == len(set(ids)) and "plain" in ids and not scan.problems
    assert all(i.isascii() and "." not in i for i in ids)
    assert safe_id("日本") == safe_id("日本") != safe_id("中文")
    assert safe_id("bob_日本").startswith("bob_") and safe_id("Bob/Warm Up") == "bob__warm_up"  # ASCII unchanged
    assert len(safe_id("y" * 300)) <= 96


def test_folder_duplicate_ids_are_both_kept(tmp_path, media):
    root = tmp_path / "mine"
    root.mkdir()
    shutil.copy(media["videos"][0], root / "a b.mp4")
    shutil.copy(media["videos"][1], root / "a_b.mp4")
    scan = scan_dataset("mine", DatasetSpec(kind="folder", path=str(root)))
    assert len({v.video for v in scan.videos}) == 2 and len(scan.problems) == 1


def test_frame_symlinks_leaving_the_root_are_refused(tmp_path, media):
    outside = _frames(media["frame_folders"][0], tmp_path / "elsewhere")
    root = tmp_path / "mine"
    sneaky = _frames(media["frame_folders"][1], root / "sneaky")
    os.symlink(sorted(outside.glob("*.png"))[0], sneaky / "99999.png")
    inner = _frames(media["frame_folders"][2], root / "fine")
    os.symlink(sorted(inner.glob("*.png"))[0], inner / "99999.png")  # a link inside the root is fine
    scan = scan_dataset("mine", DatasetSpec(kind="folder", path=str(root)))
    assert [v.video for v in scan.videos] == ["fine"]
    assert len(scan.problems) == 1 and "outside the dataset root" in scan.problems[0]
    solo = tmp_path / "SoloDance"
    _frames(media["frame_folders"][0], solo / "train" / "ok")
    leak = _frames(media["frame_folders"][1], solo / "test" / "leak")
    os.symlink(sorted(outside.glob("*.png"))[0], leak / "99999.png")
    scan = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(solo)))
    assert [v.video for v in scan.videos] == ["ok"] and "outside the dataset root" in scan.problems[0]


# ------------------------------------------------------------------ issue 22 item 7: made-up ids are unique too


def _fake_frames(folder: Path, n: int = 2) -> Path:
    """A frame folder as the scans see it (they list names; nothing here is decoded)."""
    folder.mkdir(parents=True)
    for k in range(n):
        (folder / f"{k:05d}.png").write_bytes(b"\x89PNG")
    return folder


def test_a_made_up_id_never_takes_an_id_another_entry_makes(tmp_path):
    from pipeline.datasets.base import name_hash, unique_ids

    crafted = f"a__1__1_{name_hash('A/1/1')}"
    assert crafted == "a__1__1_e7cca0ee97"  # the id the old rule gave the second 'a__1__1' (A/1/1)
    for order in ([crafted, "a/1/1", "A/1/1"], ["a/1/1", "A/1/1", crafted], ["A/1/1", crafted, "a/1/1"]):
        problems: list[str] = []
        ids = unique_ids([(safe_id(entry), entry) for entry in order], problems)
        assert len(set(ids)) == 3, (order, ids)
        assert ids[order.index(crafted)] == crafted  # a name that is its own id keeps it
        assert len(problems) == 1 and "also made by" in problems[0]

    root = tmp_path / "iPER"
    for entry in (crafted, "a/1/1", "A/1/1"):
        _fake_frames(root / "images_HD" / entry)
    (root / "train.txt").write_text(f"{crafted}\na/1/1\nA/1/1\n")
    (root / "val.txt").write_text("")
    scan = scan_dataset("iper", DatasetSpec(kind="iper", path=str(root)))
    ids = [v.video for v in scan.videos]
    assert len(ids) == 3 == len(set(ids)), ids
    assert {v.source.relative_to(root.resolve() / "images_HD").as_posix() for v in scan.videos} == {
        crafted, "a/1/1", "A/1/1"}


def test_folder_and_solodance_made_up_ids_are_unique(tmp_path):
    from pipeline.datasets.base import name_hash

    root = tmp_path / "mine"  # A/1/1 sorts first and keeps a__1__1; a/1/1 was given the crafted folder's id
    for name in ("a/1/1", "A/1/1", f"a__1__1_{name_hash('a/1/1')}"):
        _fake_frames(root / name)
    scan = scan_dataset("mine", DatasetSpec(kind="folder", path=str(root)))
    assert len(scan.videos) == 3 == len({v.video for v in scan.videos})
    solo = tmp_path / "SoloDance"
    for split, name in (("train", "Take 1"), ("test", "take_1"), ("train", f"take_1_{name_hash('test/take_1')}")):
        _fake_frames(solo / split / name)
    scan = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(solo)))
    assert len(scan.videos) == 3 == len({v.video for v in scan.videos})
