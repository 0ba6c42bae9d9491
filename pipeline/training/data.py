"""The training stream, with a loader position that a checkpoint can restore exactly.

What we chose (see pipeline.shards.reader for the stream itself): the **resampled** WindowDataset, endless, keyed by
(seed, epoch, rank, worker). An epoch is exactly ``steps_per_epoch`` batches taken from the stream of that
epoch. The loader position is therefore two integers, (epoch, batches consumed in it); on resume the stream of
that epoch is rebuilt and fast-forwarded by skipping the consumed *raw* samples inside each worker before they
are decoded (reading tar members only, no PNG decoding), which reproduces the uninterrupted order exactly.

With N DataLoader workers the DataLoader takes batch j of an endless stream from worker j mod N, so after k
batches worker w has produced ceil((k - w) / N) of them; each worker skips that many batches of samples.
The DataLoader gets its own seeded ``torch.Generator`` so creating an iterator never consumes the global RNG
(whose state is checkpointed).
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from pipeline.core.errors import RemotError
from pipeline.core.seeds import derive_seed
from pipeline.shards.reader import WindowDataset, collate_windows, decode_sample, shard_urls


class MissingShards(RemotError):
    """No shards where the training params point."""


class ResumableWindows(WindowDataset):
    """Endless resampled :class:`WindowDataset` whose workers first drop ``skip_batches`` batches' worth of samples."""

    def __init__(self, urls: list[str], *, batch_size: int, num_workers: int, **kwargs: Any):
        super().__init__(urls, resampled=True, epoch_length=None, **kwargs)
        self.batch_size = batch_size
        self.num_workers = max(1, num_workers)
        self.skip_batches = 0

    def samples_to_skip(self, worker: int) -> int:
        n, k = self.num_workers, self.skip_batches
        return max(0, -(-(k - worker) // n)) * self.batch_size

    def __iter__(self) -> Iterator[dict[str, Any]]:
        samples, worker, _ = self._samples()
        skip = self.samples_to_skip(worker)
        for count, sample in enumerate(samples):
            if count >= skip:
                yield decode_sample(sample, self.pose_thickness)


def is_shard_url(source: str) -> bool:
    """``train.shards`` names URLs (``pipe:...``, ``file:...``, ``s3://...``) rather than a local shard folder."""
    return "://" in source or source.startswith(("pipe:", "file:"))


def training_urls(shard_dir: Path | str, split: str) -> list[str]:
    """Shard URLs of ``split`` (a local shard folder's ``<split>/*.tar``, or a WebDataset URL pattern / ``::``
    list taken as is) or :class:`MissingShards` naming the command that makes them."""
    if isinstance(shard_dir, str) and is_shard_url(shard_dir):
        return shard_urls(shard_dir)
    try:
        return shard_urls(Path(shard_dir), split)
    except FileNotFoundError:
        raise MissingShards(f"no training shards in {Path(shard_dir) / split} (*.tar): run `dvc repro shards` "
                            f"(or set train.shards / train.split in params.yaml)") from None


def epoch_batches(dataset: ResumableWindows, epoch: int, skip: int, n_batches: int, num_workers: int,
                  seed: int, pin_memory: bool = False) -> Iterator[dict[str, Any]]:
    """Batches ``skip .. n_batches - 1`` of ``epoch`` (exactly those the uninterrupted run would see there)."""
    dataset.set_epoch(epoch)
    dataset.skip_batches = skip
    generator = torch.Generator().manual_seed(derive_seed("loader", seed, epoch) % (2 ** 63))
    loader = DataLoader(dataset, batch_size=dataset.batch_size, num_workers=num_workers,
                        collate_fn=collate_windows, pin_memory=pin_memory, generator=generator,
                        persistent_workers=False)
    iterator = iter(loader)
    try:
        for _ in range(skip, n_batches):
            yield next(iterator)
    finally:
        del iterator  # shuts the workers down


def distinct_videos(urls: list[str], n_samples: int = 64, shuffle_buffer: int = 256, seed: int = 0) -> int:
    """How many different videos (shards hold one video each) the first ``n_samples`` of a training stream
    come from: the mixing the loader achieves, reported by the benchmark."""
    import itertools

    dataset = ResumableWindows(urls, batch_size=1, num_workers=0, shuffle_buffer=shuffle_buffer, seed=seed)
    samples, _, _ = dataset._samples()
    return len({sample["__url__"] for sample in itertools.islice(samples, n_samples)})
