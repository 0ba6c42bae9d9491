"""The training stream mixes videos: consecutive samples do not all come from one clip (issue: per-video tars
fed a 16-sample shuffle buffer, so a run of samples held one or two videos)."""
from __future__ import annotations

from pipeline.shards.writer import collect_video, write_shards
from pipeline.training.data import distinct_videos, training_urls
from tests.test_shards import fabricate_video


def test_64_samples_span_most_videos(tmp_path):
    arts = [fabricate_video(tmp_path / "art", "ds", f"v{i:02d}", "train", offset=i % 5, n_frames=20)
            for i in range(12)]
    write_shards([collect_video(a) for a in arts], tmp_path / "shards", window_length=3, stride=1,
                 shard_max_samples=64, seed=0)
    urls = training_urls(tmp_path / "shards", "train")
    assert len(urls) == 12  # one shard per video, 18 windows each
    assert distinct_videos(urls, 64, shuffle_buffer=256) == 12
    assert distinct_videos(urls, 64, shuffle_buffer=16) >= 10   # the interleave mixes even with a small buffer
    assert distinct_videos(urls, 64, shuffle_buffer=0) <= 4     # no shuffling: shard after shard, in order
