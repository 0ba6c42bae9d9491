"""Window planning, the source-frame rule and the shard writer, on tiny videos fabricated per test."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.pose.mediapipe_body25 import keypoints_to_table, write_pose_parquet
from pipeline.shards.windows import choose_source_frame, plan_windows, source_seed_material
from pipeline.shards.writer import (
    INDEX_NAME, MANIFEST_SCHEMA, index_path, ShardInputError, Skip, VideoInputs, collect_video, find_videos, write_manifest, write_shards,
)

FIELDS = {"background.png", "flow.npy.gz", "frames.png", "layouts.png", "meta.json", "pose.npy", "source.png",
          "source_layout.png", "source_pose.npy", "valid.png"}


# ----------------------------------------------------------------------------------------------- fixtures


def fabricate_video(root: Path, dataset: str, video: str, split: str, *, n_frames: int = 12, height: int = 48,
                    width: int = 64, fps: float = 25.0, speed: int = 2, offset: int = 0) -> VideoArtifacts:
    """Write every artefact of a tiny synthetic video under ``root`` (the layout of pipeline.core.artifacts).

    A 5-band "person" rectangle (labels head/top/bottom/shoes/limbs) moves ``speed`` px right per frame over a
    gradient background; the flow is the t -> t-1 motion (dx = -speed on the person, plus a sub-pixel dy = 0.3
    that no shard stores exactly), keypoints follow it.
    """
    art = VideoArtifacts(root, dataset, video)
    yy, xx = np.mgrid[0:height, 0:width]
    background = np.stack([xx * 255 // width, yy * 255 // height, np.full_like(xx, 90 + offset)], -1).astype(np.uint8)
    colours = np.array([[230, 190, 160], [200, 30, 30], [30, 30, 200], [20, 20, 20], [230, 180, 150]], np.uint8)
    flow = np.zeros((n_frames, 2, height, width), np.float16)
    valid = np.ones((n_frames, 1, height, width), np.uint8)
    valid[0] = 0
    keypoints = np.zeros((n_frames, 25, 3), np.float32)
    for directory in (art.frames_dir, art.layout_dir, art.parsing_dir):
        directory.mkdir(parents=True, exist_ok=True)
    for t in range(n_frames):
        x0, y0, w, h = 4 + offset + speed * t, 6, 14, 35
        labels = np.full((height, width), 5, np.uint8)
        for band in range(5):
            labels[y0 + band * 7:y0 + (band + 1) * 7, x0:x0 + w] = band
        frame = background.copy()
        person = labels < 5
        frame[person] = colours[labels[person]]
        cv2.imwrite(str(art.frames_dir / frame_name(t)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(art.layout_dir / frame_name(t)), labels)
        cv2.imwrite(str(art.parsing_dir / frame_name(t)), labels)  # stand-in ATR labels; shards only read layout
        if t > 0:
            flow[t, 0][person] = -speed
            flow[t, 1][person] = 0.3  # sub-pixel: the shards store 1/32 px steps
        for joint in range(25):
            conf = 0.0 if joint in (19, 20) else 0.9  # two undetected toes
            keypoints[t, joint] = (x0 + (joint * 3) % w, y0 + joint, conf)
    art.frames_meta.write_text(json.dumps({"dataset": dataset, "video": video, "split": split, "fps": fps,
                                           "n_frames": n_frames}))
    (art.layout_dir / "meta.json").write_text(json.dumps({"parser": "test-parser"}))
    (art.parsing_dir / "meta.json").write_text(json.dumps({"parser": "test-parser"}))
    write_pose_parquet(art.pose_table, keypoints_to_table(video, keypoints), {"backend": "test-pose"})
    art.flow_file.parent.mkdir(parents=True, exist_ok=True)
    np.savez(art.flow_file, flow=flow, valid=valid, backend=np.array("test-flow"))
    art.background_file.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(art.background_file), cv2.cvtColor(background, cv2.COLOR_RGB2BGR))
    return art


def collected(*arts: VideoArtifacts) -> list[VideoInputs]:
    out = [collect_video(a) for a in arts]
    assert all(isinstance(v, VideoInputs) for v in out), out
    return out


def tar_stamps(out_dir: Path) -> dict[str, tuple[str, int]]:
    """Relative tar path -> (sha256, mtime_ns) for every final tar."""
    return {p.relative_to(out_dir).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(out_dir.glob("*/*.tar"))}


def tar_samples(path: Path) -> dict[str, dict[str, bytes]]:
    """key -> {field: bytes} of one tar, split at the first dot like WebDataset does."""
    samples: dict[str, dict[str, bytes]] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            key, field = member.name.split(".", 1)
            samples.setdefault(key, {})[field] = tar.extractfile(member).read()
    return samples


# ----------------------------------------------------------------------------------------------- windows


def test_plan_windows_whole_windows_only():
    assert plan_windows(12, 4, 4) == [(0, 4), (4, 8), (8, 12)]
    assert plan_windows(13, 4, 3) == [(0, 4), (3, 7), (6, 10), (9, 13)]
    assert plan_windows(14, 4, 3) == [(0, 4), (3, 7), (6, 10), (9, 13)]  # frame 13 starts no window
    assert plan_windows(3, 4, 1) == []
    with pytest.raises(ValueError):
        plan_windows(10, 0, 1)
    with pytest.raises(ValueError):
        plan_windows(10, 4, 0)


def test_source_frame_is_forward_deterministic_and_seeded():
    n, length = 40, 6
    picks = {}
    for start, stop in plan_windows(n, length, 3):
        material = source_seed_material(7, "ds", "vid", start)
        source = choose_source_frame(n, start, material, stop=stop)
        assert source == choose_source_frame(n, start, material, stop=stop)
        if start > 0:
            assert 0 <= source < start, (start, source)
        else:
            assert stop <= source < n, (stop, source)
        picks[start] = source
    other_seed = {s: choose_source_frame(n, s, source_seed_material(8, "ds", "vid", s), stop=s + length)
                  for s in picks}
    other_video = {s: choose_source_frame(n, s, source_seed_material(7, "ds", "vid2", s), stop=s + length)
                   for s in picks}
    assert other_seed != picks and other_video != picks
    # Uniform over the candidates: a late window draws many different earlier frames across seeds.
    draws = {choose_source_frame(n, 30, source_seed_material(seed, "ds", "vid", 30)) for seed in range(200)}
    assert len(draws) > 20 and max(draws) < 30
    # A window covering the whole video has no frame outside it: the source lies inside.
    assert 0 <= choose_source_frame(6, 0, "x", stop=6) < 6


# ----------------------------------------------------------------------------------------------- writer


def test_two_runs_give_identical_tar_bytes_with_fixed_metadata(tmp_path):
    arts = [fabricate_video(tmp_path / "data", "ds", f"v{i}", "train", offset=i) for i in range(2)]
    videos = collected(*arts)
    first = write_shards(videos, tmp_path / "a", window_length=4, stride=3, shard_max_samples=2, seed=3)
    second = write_shards(collected(*arts), tmp_path / "b", window_length=4, stride=3, shard_max_samples=2, seed=3)
    tars_a, tars_b = sorted((tmp_path / "a").glob("*/*.tar")), sorted((tmp_path / "b").glob("*/*.tar"))
    assert [p.relative_to(tmp_path / "a") for p in tars_a] == [p.relative_to(tmp_path / "b") for p in tars_b]
    assert len(tars_a) == 4  # 2 videos x 3 windows, at most 2 per tar
    for a, b in zip(tars_a, tars_b):
        assert a.read_bytes() == b.read_bytes(), a.name
    assert len(first.written) == len(second.written) == 4
    with tarfile.open(tars_a[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {(0, 0, 0, "", "", 0o644)}
    # A different seed changes the source frames, hence the bytes.
    write_shards(collected(*arts), tmp_path / "c", window_length=4, stride=3, shard_max_samples=2, seed=4)
    assert any(a.read_bytes() != c.read_bytes() for a, c in zip(tars_a, sorted((tmp_path / "c").glob("*/*.tar"))))


def test_worker_processes_write_the_same_tars_and_report_bad_input(tmp_path):
    """workers=2 (executor pool): every video's tars are the bytes one process writes, the manifest rows are the
    same, and a bad input in a worker stops the run naming the file, as in-process."""
    arts = [fabricate_video(tmp_path / "data", "ds", f"v{i}", "train" if i else "test", offset=i)
            for i in range(3)]
    serial = write_shards(collected(*arts), tmp_path / "a", 4, 3, 2, seed=3)
    parallel = write_shards(collected(*arts), tmp_path / "b", 4, 3, 2, seed=3, workers=2)
    assert tar_stamps(tmp_path / "a").keys() == tar_stamps(tmp_path / "b").keys() and len(parallel.written) == 6
    for tar in sorted((tmp_path / "a").glob("*/*.tar")):
        assert (tmp_path / "b" / tar.relative_to(tmp_path / "a")).read_bytes() == tar.read_bytes(), tar.name
    assert parallel.rows == serial.rows and parallel.videos == serial.videos
    labels = cv2.imread(str(arts[2].layout_dir / frame_name(5)), -1)
    labels[0, 0] = 9
    cv2.imwrite(str(arts[2].layout_dir / frame_name(5)), labels)
    with pytest.raises(ShardInputError, match=str(arts[2].layout_dir / frame_name(5))):
        write_shards(collected(*arts), tmp_path / "c", 4, 3, 2, workers=2)


def test_flow_is_stored_in_32nds_of_a_pixel_and_refuses_what_int16_cannot_hold(tmp_path):
    from pipeline.shards.writer import fixed_point_flow

    flow = np.random.default_rng(0).normal(0, 20, (3, 2, 8, 8)).astype(np.float16)
    steps = fixed_point_flow(flow, tmp_path / "v.npz")
    assert steps.dtype == np.int16
    error = np.abs(steps.astype(np.float32) / 32 - flow.astype(np.float32))
    assert error.max() <= 1 / 64 and error.max() > 0
    for bad in (np.float16(1100), np.float16(np.nan)):
        broken = flow.copy()
        broken[1, 0, 2, 3] = bad
        with pytest.raises(ShardInputError, match="v.npz.*rerun the `flow` stage"):
            fixed_point_flow(broken, tmp_path / "v.npz")


def test_keys_have_no_dots_and_samples_hold_every_field(tmp_path):
    art = fabricate_video(tmp_path / "data", "my.data set", "clip.01", "train")
    report = write_shards(collected(art), tmp_path / "out", window_length=4, stride=4, shard_max_samples=10)
    (tar,) = sorted((tmp_path / "out" / "train").glob("*.tar"))
    assert tar.name == "my-data-set__clip-01-000000.tar"
    samples = tar_samples(tar)
    assert sorted(samples) == ["my-data-set__clip-01__w000000", "my-data-set__clip-01__w000004",
                               "my-data-set__clip-01__w000008"]
    for key, fields in samples.items():
        assert "." not in key and set(fields) == FIELDS
        meta = json.loads(fields["meta.json"])
        assert meta["key"] == key and (meta["dataset"], meta["video"]) == ("my.data set", "clip.01")
        assert meta["backends"] == {"pose": "test-pose", "parser": "test-parser", "flow": "test-flow"}
        assert meta["frames"] == list(range(meta["window_start"], meta["window_start"] + 4))
    assert [r["key"] for r in report.rows] == sorted(samples)


@pytest.mark.parametrize("broken", ["flow", "truncated_flow", "short_flow", "pose", "pose_frames", "layout",
                                   "background"])
def test_video_with_missing_input_is_skipped_with_reason(tmp_path, broken):
    good = fabricate_video(tmp_path / "data", "ds", "good", "train")
    bad = fabricate_video(tmp_path / "data", "ds", "bad", "train")
    if broken == "flow":
        bad.flow_file.unlink()
        named, stage = bad.flow_file, "`flow` stage"
    elif broken == "truncated_flow":
        bad.flow_file.write_bytes(bad.flow_file.read_bytes()[:500])
        named, stage = bad.flow_file, "`flow` stage"
    elif broken == "short_flow":
        with np.load(bad.flow_file) as npz:
            np.savez(bad.flow_file, flow=npz["flow"][:-1], valid=npz["valid"][:-1], backend=npz["backend"])
        named, stage = bad.flow_file, "`flow` stage"
    elif broken == "pose":
        bad.pose_table.unlink()
        named, stage = bad.pose_table, "`pose` stage"
    elif broken == "pose_frames":
        table = pq.read_table(bad.pose_table)
        pq.write_table(table.filter(pc.not_equal(table["frame"], 5)), bad.pose_table)
        named, stage = bad.pose_table, "`pose` stage"
    elif broken == "layout":
        (bad.layout_dir / frame_name(7)).unlink()
        named, stage = bad.layout_dir / frame_name(7), "`layout` stages"
    else:
        bad.background_file.unlink()
        named, stage = bad.background_file, "`layout` stage"
    result = collect_video(bad)
    assert isinstance(result, Skip)
    assert str(named) in result.reason and stage in result.reason, result.reason
    report = write_shards([collect_video(good), result], tmp_path / "out", 4, 4, 10)
    assert report.skipped == [result]
    assert [p.name for p in (tmp_path / "out").glob("*/*.tar")] == ["ds__good-000000.tar"]
    assert {r["video"] for r in report.rows} == {"good"}


def test_bad_layout_labels_stop_the_run_naming_the_file(tmp_path):
    art = fabricate_video(tmp_path / "data", "ds", "v", "train")
    labels = cv2.imread(str(art.layout_dir / frame_name(3)), -1)
    labels[0, 0] = 9  # an ATR label that was never merged into the 6 regions
    cv2.imwrite(str(art.layout_dir / frame_name(3)), labels)
    with pytest.raises(ShardInputError, match=str(art.layout_dir / frame_name(3))):
        write_shards(collected(art), tmp_path / "out", 4, 4, 10)
    assert not list((tmp_path / "out").glob("*/*.tar"))


def test_splits_never_mix_a_video(tmp_path):
    root = tmp_path / "data"
    arts = [fabricate_video(root, "ds", "a", "train"), fabricate_video(root, "ds", "b", "train", offset=2),
            fabricate_video(root, "ds", "c", "test", offset=4)]
    (root / "frames" / "ds" / ".tmp-d-123").mkdir()  # a killed extract run's temporary is not a video
    assert find_videos(root) == arts
    out = tmp_path / "out"
    write_shards(collected(*arts), out, 4, 4, 2)
    layout = {split: sorted(p.name for p in (out / split).glob("*.tar")) for split in ("train", "test")}
    assert layout == {"train": ["ds__a-000000.tar", "ds__a-000001.tar", "ds__b-000000.tar", "ds__b-000001.tar"],
                      "test": ["ds__c-000000.tar", "ds__c-000001.tar"]}
    for tar in out.glob("*/*.tar"):
        for fields in tar_samples(tar).values():
            assert json.loads(fields["meta.json"])["split"] == tar.parent.name
    # The same video twice (even with another split) is refused.
    moved = dataclasses.replace(collected(arts[1])[0], split="test")
    with pytest.raises(ValueError, match="exactly one split"):
        write_shards([*collected(*arts), moved], out, 4, 4, 2)
    # Re-splitting b moves its tars: none are left behind in train.
    meta = json.loads(arts[1].frames_meta.read_text())
    arts[1].frames_meta.write_text(json.dumps({**meta, "split": "test"}))
    report = write_shards(collected(*arts), out, 4, 4, 2)
    assert sorted(p.name for p in (out / "train").glob("*.tar")) == ["ds__a-000000.tar", "ds__a-000001.tar"]
    assert sorted(p.name for p in (out / "test").glob("*.tar"))[:2] == ["ds__b-000000.tar", "ds__b-000001.tar"]
    assert {p.name for p in report.removed} == {"ds__b-000000.tar", "ds__b-000001.tar"}
    assert {(r["video"], r["split"]) for r in report.rows} == {("a", "train"), ("b", "test"), ("c", "test")}


def test_adding_a_video_keeps_existing_tars_and_writes_only_new_ones(tmp_path):
    root, out = tmp_path / "data", tmp_path / "out"
    arts = [fabricate_video(root, "ds", f"v{i}", "train", offset=i) for i in range(2)]
    write_shards(collected(*arts), out, 4, 4, 2)
    before = tar_stamps(out)
    assert len(before) == 4
    arts.append(fabricate_video(root, "ds", "v2", "train", offset=5))
    report = write_shards(collected(*arts), out, 4, 4, 2)
    after = tar_stamps(out)
    assert {k: after[k] for k in before} == before  # same sha256 and mtime: untouched
    assert sorted(p.relative_to(out).as_posix() for p in report.written) == ["train/ds__v2-000000.tar",
                                                                             "train/ds__v2-000001.tar"]
    assert set(after) - set(before) == {"train/ds__v2-000000.tar", "train/ds__v2-000001.tar"}
    # A run with nothing new writes nothing; changing one video's input rewrites only that video.
    assert write_shards(collected(*arts), out, 4, 4, 2).written == []
    cv2.imwrite(str(arts[0].background_file), np.zeros((48, 64, 3), np.uint8))
    report = write_shards(collected(*arts), out, 4, 4, 2)
    assert sorted(p.name for p in report.written) == ["ds__v0-000000.tar", "ds__v0-000001.tar"]
    final = tar_stamps(out)
    assert {k: final[k] for k in after if "v0" not in k} == {k: after[k] for k in after if "v0" not in k}


def test_killed_run_leftovers_are_ignored_by_loader_and_cleaned_by_rerun(tmp_path):
    from pipeline.shards.reader import make_dataset, shard_urls

    root, out = tmp_path / "data", tmp_path / "out"
    arts = [fabricate_video(root, "ds", f"v{i}", "train", offset=i) for i in range(2)]
    report = write_shards(collected(*arts), out, 4, 4, 2)
    good = tar_stamps(out)
    # What kill -9 during a run leaves: a half-written temporary beside the finished tars ...
    temp = out / "train" / ".tmp-ds__v1-000001.tar-k1ll3d"
    temp.write_bytes((out / "train" / "ds__v1-000001.tar").read_bytes()[:700])
    # ... and a tar that got truncated on disk after it was finished.
    victim = out / "train" / "ds__v0-000001.tar"
    victim.write_bytes(victim.read_bytes()[:1000])
    assert str(temp) not in shard_urls(out, "train")
    os.replace(victim, tmp_path / "truncated.tar")  # keep the loader check to the temporary alone
    keys = [s["meta"]["key"] for s in make_dataset(out, "train", shuffle_buffer=0)]
    assert len(keys) == len(report.rows) - 1  # all samples of the complete tars, nothing from the temporary
    os.replace(tmp_path / "truncated.tar", victim)
    rerun = write_shards(collected(*arts), out, 4, 4, 2)
    assert not temp.exists() and temp in rerun.removed
    assert [p.name for p in rerun.written] == ["ds__v0-000001.tar"]
    assert {k: v[0] for k, v in tar_stamps(out).items()} == {k: v[0] for k, v in good.items()}


def test_manifest_has_one_row_per_sample_and_summary(tmp_path):
    root, out = tmp_path / "data", tmp_path / "out"
    arts = [fabricate_video(root, "ds", "a", "train", n_frames=12, fps=25.0),
            fabricate_video(root, "ds", "b", "test", n_frames=10, fps=30.0, offset=3),
            fabricate_video(root, "ds", "c", "val", n_frames=9, fps=20.0, offset=1)]
    report = write_shards(collected(*arts), out, 4, 2, 3)
    summary = write_manifest(report, out / "manifest.parquet", out / "metrics.json")
    table = pq.read_table(out / "manifest.parquet")
    assert table.schema.equals(MANIFEST_SCHEMA)
    in_tars = {(p.relative_to(out).as_posix(), k) for p in out.glob("*/*.tar") for k in tar_samples(p)}
    assert table.num_rows == len(in_tars) == 5 + 4 + 3
    assert set(zip(table["shard"].to_pylist(), table["key"].to_pylist())) == in_tars
    row = table.filter(pc.equal(table["key"], "ds__a__w000004")).to_pylist()[0]
    assert row["frames"] == [4, 5, 6, 7] and 0 <= row["source_frame"] < 4
    assert json.loads((out / "metrics.json").read_text()) == summary
    assert summary["train"] == {"samples": 5, "videos": 1, "frames": 12, "hours": pytest.approx(12 / 25 / 3600)}
    assert summary["test"]["samples"] == 4 and summary["val"]["hours"] == pytest.approx(9 / 20 / 3600)
    assert index_path(out).is_file() and not (out / INDEX_NAME).exists()  # the index stays out of the output
    # The manifest is rebuilt from the index for videos that were kept, not re-encoded.
    again = write_shards(collected(*arts), out, 4, 2, 3)
    assert again.written == [] and again.rows == report.rows


def test_real_footage_frames_survive_sharding_bit_exactly(tmp_path, footage_clips):
    """Real 256x192 frames from the shared footage (other artefacts fabricated to match) are stored losslessly."""
    name, clip = next(iter(footage_clips.items()))
    art = fabricate_video(tmp_path / "data", "footage", name, "train", n_frames=16, height=256, width=192)
    for t in range(16):  # replace the synthetic frames by the clip's first 16 real frames
        (art.frames_dir / frame_name(t)).write_bytes((clip / frame_name(t)).read_bytes())
    write_shards(collected(art), tmp_path / "out", 8, 8, 10, seed=1)
    write_shards(collected(art), tmp_path / "again", 8, 8, 10, seed=1)
    (tar,) = sorted((tmp_path / "out" / "train").glob("*.tar"))
    assert tar.read_bytes() == (tmp_path / "again" / "train" / tar.name).read_bytes()
    for fields in tar_samples(tar).values():
        meta = json.loads(fields["meta.json"])
        strip = cv2.imdecode(np.frombuffer(fields["frames.png"], np.uint8), cv2.IMREAD_COLOR)
        assert strip.shape == (8 * 256, 192, 3)
        for i, index in enumerate(meta["frames"]):
            np.testing.assert_array_equal(strip[i * 256:(i + 1) * 256], cv2.imread(str(clip / frame_name(index))))


def test_reader_refuses_another_format_version_naming_the_shard():
    from pipeline.shards.reader import decode_sample
    from pipeline.shards.schema import FORMAT_VERSION, META, ShardFormatError

    meta = {"format": FORMAT_VERSION + 1, "height": 4, "width": 4, "window_start": 0, "window_stop": 1}
    sample = {"__key__": "ds__v-000000", "__url__": "data/shards/train/ds__v-000000.tar",
              META: json.dumps(meta).encode()}
    with pytest.raises(ShardFormatError, match=r"data/shards/train/ds__v-000000\.tar: sample ds__v-000000 is shard "
                                               rf"format {FORMAT_VERSION + 1}, this reader reads format {FORMAT_VERSION}"):
        decode_sample(sample)
