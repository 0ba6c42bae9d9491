"""The streaming loader: decoded tensors, seeded order, worker and DDP-rank splitting, resampling, URL kinds."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pipeline.core.artifacts import frame_name
from pipeline.pose.render import render_pose_map
from pipeline.shards.reader import make_dataset, make_loader, shard_urls
from pipeline.shards.writer import collect_video, write_shards
from tests.test_shards import fabricate_video

torch.set_num_threads(1)  # tiny tensors; extra threads only fight the other jobs on this machine

N_TRAIN_SAMPLES = 15  # 3 videos x 5 windows (12 frames, length 4, stride 2)


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory) -> Path:
    """Shards of 3 train videos (2 tars each: 3 + 2 windows) and 1 test video, plus the data root beside them."""
    base = tmp_path_factory.mktemp("loader")
    arts = [fabricate_video(base / "data", "ds", f"v{i}", "train", offset=3 * i, speed=i + 1) for i in range(3)]
    arts.append(fabricate_video(base / "data", "ds", "t0", "test", offset=1))
    report = write_shards([collect_video(a) for a in arts], base / "shards", window_length=4, stride=2,
                          shard_max_samples=3, seed=0)
    assert sum(r["split"] == "train" for r in report.rows) == N_TRAIN_SAMPLES
    return base / "shards"


def all_train_keys(shard_dir: Path) -> list[str]:
    return sorted(f"ds__v{i}__w{s:06d}" for i in range(3) for s in range(0, 9, 2))


def keys_of(samples) -> list[str]:
    return [s["meta"]["key"] for s in samples]


def test_decoded_sample_shapes_dtypes_ranges_and_content(shard_dir):
    data_root = shard_dir.parent / "data"
    samples = list(make_dataset(shard_dir, "train", shuffle_buffer=0, pose_thickness=3))
    assert len(samples) == N_TRAIN_SAMPLES
    t, h, w = 4, 48, 64
    shapes = {"frames": (t, 3, h, w), "poses": (t, 3, h, w), "keypoints": (t, 25, 3), "layouts": (t, 6, h, w),
              "flow": (t, 2, h, w), "valid": (t, 1, h, w), "background": (3, h, w), "source": (3, h, w),
              "source_layout": (6, h, w), "source_pose": (3, h, w), "source_keypoints": (25, 3)}
    for sample in samples[:6]:
        meta = sample["meta"]
        for name, shape in shapes.items():
            assert sample[name].shape == shape and sample[name].dtype == torch.float32, name
        for name in ("frames", "poses", "background", "source", "source_pose"):
            assert sample[name].min() >= -1 and sample[name].max() <= 1, name
        assert torch.all(sample["layouts"].sum(1) == 1) and torch.all(sample["source_layout"].sum(0) == 1)
        assert set(sample["valid"].unique().tolist()) <= {0.0, 1.0} and sample["valid"][0].max() == 0

        # Content equals the inputs on disk for the window's frames and the chosen source frame.
        frames_dir = data_root / "frames" / "ds" / meta["video"]
        for i, index in enumerate(meta["frames"]):
            rgb = cv2.cvtColor(cv2.imread(str(frames_dir / frame_name(index))), cv2.COLOR_BGR2RGB)
            decoded = ((sample["frames"][i] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
            np.testing.assert_array_equal(decoded, rgb)
            labels = cv2.imread(str(data_root / "layout" / "ds" / meta["video"] / frame_name(index)), -1)
            np.testing.assert_array_equal(sample["layouts"][i].argmax(0).numpy(), labels)
        source = meta["source_frame"]
        assert (0 <= source < meta["window_start"]) or (meta["window_start"] == 0 and source >= meta["window_stop"])
        rgb = cv2.cvtColor(cv2.imread(str(frames_dir / frame_name(source))), cv2.COLOR_BGR2RGB)
        np.testing.assert_array_equal(((sample["source"] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(), rgb)
        with np.load(data_root / "flow" / "ds" / f"{meta['video']}.npz") as npz:
            flow = npz["flow"][meta["window_start"]:meta["window_stop"]].astype(np.float32)
        flow[0] = 0
        np.testing.assert_allclose(sample["flow"].numpy(), flow, rtol=0, atol=1 / 64)  # stored in 1/32 px
        assert sample["flow"][1:, 0].min() < 0  # the person really moves between window frames
        pose = render_pose_map(sample["keypoints"][2].numpy(), h, w, thickness=3)
        np.testing.assert_array_equal(((sample["poses"][2] + 1) * 127.5).round().byte().permute(1, 2, 0).numpy(),
                                      pose)
        assert sample["poses"][2].max() > -1  # a skeleton was drawn
        assert meta["backends"] == {"pose": "test-pose", "parser": "test-parser", "flow": "test-flow"}


def test_order_is_seeded_and_covers_the_split(shard_dir):
    run = lambda seed, epoch=0: keys_of(_with_epoch(make_dataset(shard_dir, "train", shuffle_buffer=8, seed=seed),
                                                    epoch))
    first = run(1)
    assert first == run(1)
    assert first != run(2) and first != run(1, epoch=1)
    assert sorted(first) == sorted(run(2)) == all_train_keys(shard_dir)
    assert keys_of(make_dataset(shard_dir, "train", shuffle_buffer=0)) == all_train_keys(shard_dir)


def _with_epoch(dataset, epoch):
    dataset.set_epoch(epoch)
    return dataset


def test_two_workers_see_each_sample_exactly_once(shard_dir):
    loader = make_loader(shard_dir, "train", batch_size=2, num_workers=2, shuffle_buffer=4, seed=5)
    keys = [k for batch in loader for k in (m["key"] for m in batch["meta"])]
    assert sorted(keys) == all_train_keys(shard_dir)
    batch = next(iter(loader))
    assert batch["frames"].shape == (2, 4, 3, 48, 64) and isinstance(batch["meta"], list)
    again = [k for batch in loader for k in (m["key"] for m in batch["meta"])]
    assert again == keys  # same seed and epoch: same order, even across worker processes
    loader.dataset.set_epoch(1)  # reaches the workers: they are started afresh every epoch
    next_epoch = [k for batch in loader for k in (m["key"] for m in batch["meta"])]
    assert next_epoch != keys and sorted(next_epoch) == sorted(keys)


def _rank_main(rank: int, shard_dir: str, store_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", store=dist.FileStore(store_path, 2), rank=rank, world_size=2)
    try:
        keys = keys_of(make_dataset(shard_dir, "train", shuffle_buffer=4, seed=11))
        resampled = keys_of(make_dataset(shard_dir, "train", shuffle_buffer=4, seed=11, resampled=True,
                                         epoch_length=5))
        Path(out_dir, f"rank{rank}.json").write_text(json.dumps({"keys": keys, "resampled": resampled}))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_two_ddp_ranks_see_disjoint_samples_covering_the_split(shard_dir, tmp_path):
    mp.spawn(_rank_main, args=(str(shard_dir), str(tmp_path / "store"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    keys0, keys1 = ranks[0]["keys"], ranks[1]["keys"]
    assert keys0 and keys1 and not set(keys0) & set(keys1)
    assert sorted(keys0 + keys1) == all_train_keys(shard_dir)
    assert len(ranks[0]["resampled"]) == len(ranks[1]["resampled"]) == 5
    assert ranks[0]["resampled"] != ranks[1]["resampled"]  # rank-aware resampling seeds


def test_resampled_mode_yields_epoch_length_samples(shard_dir):
    dataset = make_dataset(shard_dir, "train", shuffle_buffer=4, seed=3, resampled=True, epoch_length=7)
    keys = keys_of(dataset)
    assert len(keys) == 7 and keys == keys_of(dataset)
    assert set(keys) <= set(all_train_keys(shard_dir))
    loader = make_loader(shard_dir, "train", batch_size=1, num_workers=2, shuffle_buffer=4, seed=3, resampled=True,
                         epoch_length=7)
    assert sum(len(b["meta"]) for b in loader) == 7
    # A non-resampled pass can be capped too (to equalise DDP ranks).
    assert len(keys_of(make_dataset(shard_dir, "train", shuffle_buffer=0, epoch_length=4))) == 4


def test_pipe_and_file_urls_read_the_same_samples(shard_dir):
    tars = shard_urls(shard_dir, "test")
    local = keys_of(make_dataset(tars, shuffle_buffer=0))
    assert len(local) == 5
    assert keys_of(make_dataset([f"pipe:cat {p}" for p in tars], shuffle_buffer=0, allow_shell_urls=True)) == local
    assert keys_of(make_dataset([f"file:{p}" for p in tars], shuffle_buffer=0)) == local
    with pytest.raises(FileNotFoundError, match="no \\*.tar shards"):
        make_dataset(shard_dir, "val")
