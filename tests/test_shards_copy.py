"""Single images go into the shards as the stages' PNG files, byte for byte, and the loader decodes them to the
same tensors as re-encoded ones; a PNG that is not plain 8-bit RGB / grey is re-encoded instead."""
from __future__ import annotations

import json

import cv2
import numpy as np
import torch

import pipeline.shards.png_bytes as png_bytes
from pipeline.core.artifacts import frame_name
from pipeline.shards.reader import decode_sample
from pipeline.shards.writer import write_shards
from tests.test_shards import collected, fabricate_video, tar_samples


def decoded(out_dir) -> dict[str, dict]:
    samples = {}
    for tar in sorted(out_dir.glob("*/*.tar")):
        for key, fields in tar_samples(tar).items():
            samples[key] = decode_sample({"__key__": key, **fields})
    return samples


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for name, value in a[key].items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, b[key][name]), (key, name)


def test_source_and_background_are_the_files_bytes_and_decode_like_reencoded(tmp_path, monkeypatch):
    art = fabricate_video(tmp_path / "data", "ds", "v0", "train", n_frames=14)
    write_shards(collected(art), tmp_path / "copied", 4, 2, shard_max_samples=3, seed=0)
    for key, fields in sorted(tar_samples(next((tmp_path / "copied").glob("*/*.tar"))).items()):
        source = json.loads(fields["meta.json"])["source_frame"]
        assert fields["source.png"] == (art.frames_dir / frame_name(source)).read_bytes()
        assert fields["source_layout.png"] == (art.layout_dir / frame_name(source)).read_bytes()
        assert fields["background.png"] == art.background_file.read_bytes()
    monkeypatch.setattr(png_bytes, "plain_png", lambda *args: False)  # the old way: decode, re-encode
    write_shards(collected(art), tmp_path / "encoded", 4, 2, shard_max_samples=3, seed=0)
    copied, encoded = decoded(tmp_path / "copied"), decoded(tmp_path / "encoded")
    assert len(copied) == 6
    assert_same_tensors(copied, encoded)


def test_a_png_that_is_not_plain_is_reencoded(tmp_path):
    art = fabricate_video(tmp_path / "data", "ds", "v0", "train", n_frames=8)
    plate = cv2.imread(str(art.background_file), cv2.IMREAD_COLOR)
    cv2.imwrite(str(art.background_file), cv2.cvtColor(plate, cv2.COLOR_BGR2BGRA))  # RGBA: colour type 6
    assert not png_bytes.plain_png(art.background_file.read_bytes(), plate.shape[:2], color=True)
    write_shards(collected(art), tmp_path / "out", 4, 2, shard_max_samples=8, seed=0)
    samples = tar_samples(next((tmp_path / "out").glob("*/*.tar")))
    for fields in samples.values():
        assert fields["background.png"] != art.background_file.read_bytes()
        assert png_bytes.plain_png(fields["background.png"], plate.shape[:2], color=True)
        image = cv2.imdecode(np.frombuffer(fields["background.png"], np.uint8), cv2.IMREAD_COLOR)
        assert np.array_equal(image, plate)
