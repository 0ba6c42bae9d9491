"""Streaming training loader over the window shards written by :mod:`pipeline.shards.writer`, built on ``webdataset``.

``make_dataset`` returns an iterable of decoded samples (dicts of tensors, see :func:`decode_sample`);
``make_loader`` wraps it in a ``torch.utils.data.DataLoader`` whose batches stack every tensor and keep ``meta``
as a list.

How samples are spread and ordered (everything is seeded; the same seed, epoch, world size and worker count
give the same stream):

* **Non-resampled** (one pass over the data per epoch): the shard list is shuffled with a seed derived from
  (seed, epoch) that is the same on every rank, then split across DDP ranks with ``wds.split_by_node`` and across
  DataLoader workers with ``wds.split_by_worker``. Ranks therefore see disjoint samples that together cover the
  split, and with N workers each sample comes out exactly once per epoch. The split is by shard, so ranks can get
  unequal sample counts (and ranks x workers should not exceed the number of shards, or some get nothing); for
  DDP training use ``resampled=True`` with ``epoch_length`` so every rank takes the same number of steps.
* **Resampled** (step-based epochs): every (rank, worker) cycles through the shards, each cycle in a fresh random
  order from its own RNG, seeded from (seed, epoch, rank, worker), so streams differ across ranks; ``epoch_length`` samples per rank per epoch
  (split over the workers), or an endless stream when ``epoch_length`` is None.
* Resampled streams read ``INTERLEAVED_SHARDS`` shards at once, taking each sample from a random one of them
  (shards hold one video each, so consecutive samples come from different videos).
* A shuffle buffer of ``shuffle_buffer`` samples (seeded from seed, epoch, rank, worker) mixes samples across
  shards; 0 disables every shuffle (shards in sorted order, samples in file order), for evaluation.
* Call ``dataset.set_epoch(epoch)`` before each epoch (like ``DistributedSampler``) to get a new order; the
  DataLoader re-pickles the dataset into its workers every epoch (``persistent_workers=False``), so the new epoch
  reaches them.

Sources: a shard directory (``<dir>/<split>/*.tar`` is globbed, so temporaries of a killed writer, which never end
in ``.tar``, are never read), or explicit URLs: local paths, ``file:/path`` or a brace pattern. URLs that
``webdataset.gopen`` opens by running a command (``pipe:``, http(s), s3, gs, ...) are refused unless
``allow_shell_urls=True`` (``train.allow_shell_urls``): a shard list must never run code by default. Every tar
member's declared size is capped before it is read, every sample's members against its declared geometry before it
enters the shuffle buffer, and its PNG / npy headers before anything is decoded.
"""
from __future__ import annotations

import io
import json
import random
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import webdataset as wds
from torch.utils.data import DataLoader, IterableDataset

from pipeline.core.errors import RemotError
from pipeline.core.labels import REGIONS
from pipeline.core.png import SIGNATURE
from pipeline.core.seeds import derive_seed  # noqa: F401  (re-exported: training imports it from here)
from pipeline.pose.render import render_pose_map
from pipeline.shards import schema

N_REGIONS = len(REGIONS)
INTERLEAVED_SHARDS = 16  # shards (videos) a resampled training stream reads at once


def shard_urls(source: str | Path | Sequence[str | Path], split: str | None = None) -> list[str]:
    """The shard URLs of ``source``: ``<dir>/<split>/*.tar`` sorted for a directory (``split`` required),
    the brace-expanded list for a URL pattern, or the given list as is."""
    if isinstance(source, (str, Path)) and Path(source).is_dir():
        if split is None:
            raise ValueError(f"{source} is a shard directory: pass split= (one of its sub-folders)")
        urls = sorted(str(p) for p in (Path(source) / split).glob("*.tar"))
        if not urls:
            raise FileNotFoundError(f"no *.tar shards in {Path(source) / split}: run the shards stage first")
        return urls
    if isinstance(source, (str, Path)):
        return list(wds.shardlists.expand_urls(str(source)))
    return [str(u) for u in source]


# ----------------------------------------------------------------------------------------------- decode


def _png(data: bytes, color: bool) -> np.ndarray:
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("undecodable PNG in shard")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if color else image


def _npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def _rgb_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) -> float32 (..., 3, H, W) in [-1, 1]."""
    # numpy rather than torch ops: these small element-wise ops run in every sample, and torch's intra-op
    # thread pool only adds contention to them (DataLoader workers are single-threaded anyway).
    scaled = np.ascontiguousarray(np.moveaxis(image, -1, -3)).astype(np.float32)
    scaled /= np.float32(127.5)
    scaled -= np.float32(1.0)
    return torch.from_numpy(scaled)


def _one_hot(labels: np.ndarray, where: str) -> torch.Tensor:
    """uint8 labels (..., H, W) -> float32 one-hot (..., 6, H, W)."""
    if labels.max(initial=0) >= N_REGIONS:
        raise ValueError(f"{where}: layout label {int(labels.max())} outside 0..{N_REGIONS - 1}")
    regions = np.arange(N_REGIONS, dtype=labels.dtype).reshape(N_REGIONS, 1, 1)
    return torch.from_numpy((labels[..., None, :, :] == regions).astype(np.float32))


def decode_sample(sample: dict[str, Any], pose_thickness: int = 4) -> dict[str, Any]:
    """Decode one raw WebDataset sample (field -> bytes) into tensors.

    T = window length, H x W = frame size. Returns
      ``frames``          float32 (T, 3, H, W) RGB in [-1, 1]
      ``poses``           float32 (T, 3, H, W) in [-1, 1]: OpenPose-coloured skeletons drawn from the stored
                          keypoints with ``pose_thickness`` (:func:`pipeline.pose.render.render_pose_map`);
                          black (-1) where nothing is drawn
      ``keypoints``       float32 (T, 25, 3): x, y in pixels (origin top-left), confidence in [0, 1]
      ``layouts``         float32 (T, 6, H, W) one-hot over ``labels.REGIONS``
      ``flow``            float32 (T, 2, H, W) t -> t-1 in pixels (dx, dy); flow[0] = 0
      ``valid``           float32 (T, 1, H, W) in {0, 1}; valid[0] = 0
      ``background``      float32 (3, H, W) in [-1, 1]
      ``source``          float32 (3, H, W) in [-1, 1]: the source (forward) frame of the same video
      ``source_layout``   float32 (6, H, W) one-hot
      ``source_pose``     float32 (3, H, W) in [-1, 1], rendered like ``poses``
      ``source_keypoints`` float32 (25, 3)
      ``meta``            dict from meta.json plus ``key`` and ``url`` (which shard it came from)
    """
    key = sample["__key__"]
    meta = json.loads(sample[schema.META])
    meta["key"], meta["url"] = key, sample.get("__url__")
    schema.check_format(meta, key, meta["url"])
    t, height, width = sample_geometry(meta, key)
    strip = (t * height, width)
    frames = checked_png(sample[schema.FRAMES], True, strip, f"{key}.{schema.FRAMES}").reshape(t, height, width, 3)
    layouts = checked_png(sample[schema.LAYOUTS], False, strip, f"{key}.{schema.LAYOUTS}").reshape(t, height, width)
    valid = checked_png(sample[schema.VALID], False, strip, f"{key}.{schema.VALID}").reshape(t, 1, height, width)
    flow_shape = (t, 2, height, width)
    # int16 payload plus a generous allowance for the .npy header
    flow_bytes = gunzip_bounded(sample[schema.FLOW], 2 * t * 2 * height * width + 4096, f"{key}.{schema.FLOW}")
    flow = checked_npy(flow_bytes, flow_shape, f"{key}.{schema.FLOW}")
    if flow.dtype != np.int16:
        raise ValueError(f"{key}.{schema.FLOW}: array is {flow.dtype}, expected int16 (fixed-point flow, shard "
                         f"format {schema.FORMAT_VERSION})")
    flow = flow.astype(np.float32) * np.float32(1 / schema.FLOW_STEPS_PER_PIXEL)
    keypoints = checked_npy(sample[schema.POSE], (t, 25, 3), f"{key}.{schema.POSE}").astype(np.float32)
    source_keypoints = checked_npy(sample[schema.SOURCE_POSE], (25, 3), f"{key}.{schema.SOURCE_POSE}").astype(np.float32)
    poses = np.stack([render_pose_map(k, height, width, thickness=pose_thickness) for k in keypoints])
    return {
        "frames": _rgb_to_tensor(frames),
        "poses": _rgb_to_tensor(poses),
        "keypoints": torch.from_numpy(keypoints),
        "layouts": _one_hot(layouts, key),
        "flow": torch.from_numpy(flow),
        "valid": torch.from_numpy(valid.astype(np.float32)),
        "background": _rgb_to_tensor(checked_png(sample[schema.BACKGROUND], True, (height, width),
                                                 f"{key}.{schema.BACKGROUND}")),
        "source": _rgb_to_tensor(checked_png(sample[schema.SOURCE], True, (height, width), f"{key}.{schema.SOURCE}")),
        "source_layout": _one_hot(checked_png(sample[schema.SOURCE_LAYOUT], False, (height, width),
                                              f"{key}.{schema.SOURCE_LAYOUT}"), key),
        "source_pose": _rgb_to_tensor(render_pose_map(source_keypoints, height, width, thickness=pose_thickness)),
        "source_keypoints": torch.from_numpy(source_keypoints),
        "meta": meta,
    }


# ----------------------------------------------------------------------------------------------- untrusted input
# A shard is data, possibly from someone else: it must not run commands, and a small sample must not be able to
# make the loader allocate gigabytes (a PNG declaring 20000x20000, a gzip bomb) or hand the networks arrays of a
# shape nobody checked.

# webdataset opens these through a shell (``pipe:`` runs its text; http/s3/gs/... build curl/aws/gsutil command
# lines that embed the URL), so any scheme other than a plain path or ``file:`` needs the explicit opt-in.
SAFE_SCHEMES = ("", "file")
MAX_SIDE = 4096            # pixels per frame side
MAX_WINDOW = 256           # frames per sample
MAX_SAMPLE_PIXELS = 1 << 26  # T * H * W over a sample's stacked strip (64 Mpx, ~200 MB as RGB)


# A tar header declares its member's size, and a 10 KB tar can declare a 2 GiB (sparse) member: every member's
# declared size is checked before it is read, and every assembled sample against what its meta.json geometry
# needs before it enters the shuffle buffer (``train.shuffle_buffer`` raw samples are held at once).
MAX_MEMBER_BYTES = 4 * MAX_SAMPLE_PIXELS + (1 << 20)  # the int16 flow of the largest sample the loader accepts
MAX_META_BYTES = 1 << 20


class UnsafeShardURL(RemotError, ValueError):
    """A shard URL that webdataset would open by running a shell command, without the opt-in."""


class BadShard(RemotError, ValueError):
    """A shard member that is larger than any sample within the loader's limits needs, or not a shard field."""


def url_scheme(url: str) -> str:
    from urllib.parse import urlparse

    scheme = urlparse(str(url)).scheme.lower()
    return "" if len(scheme) == 1 else scheme  # a one-letter "scheme" is a Windows drive letter


def check_shard_urls(urls: Sequence[str], allow_shell_urls: bool = False) -> list[str]:
    """``urls`` unchanged when every one is a local path or ``file:``; else :class:`UnsafeShardURL` naming the first
    URL that would run a command, unless ``allow_shell_urls`` (``train.allow_shell_urls``) trusts it."""
    urls = [str(u) for u in urls]
    if not allow_shell_urls:
        for url in urls:
            if url_scheme(url) not in SAFE_SCHEMES:
                raise UnsafeShardURL(
                    f"shard URL {url[:120]!r} is opened by running a shell command ({url_scheme(url)}:); only local "
                    "paths and file: are read by default: set train.allow_shell_urls: true in a params file you "
                    "trust to allow it")
    return urls


def png_size(data: bytes, where: str) -> tuple[int, int]:
    """(height, width) from a PNG's IHDR chunk, read before any pixel is decoded."""
    if len(data) < 24 or data[:8] != SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError(f"{where}: not a PNG (no PNG signature / IHDR header)")
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    return height, width


def checked_png(data: bytes, color: bool, expected: tuple[int, int], where: str) -> np.ndarray:
    """:func:`_png` after checking the header declares exactly ``expected`` (height, width) pixels."""
    size = png_size(data, where)
    if size != tuple(expected):
        raise ValueError(f"{where}: PNG is {size[1]}x{size[0]}, expected {expected[1]}x{expected[0]} "
                         "(width x height) from meta.json")
    return _png(data, color)


def gunzip_bounded(data: bytes, limit: int, where: str) -> bytes:
    """gzip-decompress at most ``limit`` bytes; a stream that would expand further is refused (a gzip bomb)."""
    import zlib

    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"{where}: damaged gzip stream ({exc})") from None
    if len(out) > limit or inflater.unconsumed_tail:
        raise ValueError(f"{where}: decompresses to more than the {limit} bytes its shape allows (a gzip bomb?)")
    return out


def checked_npy(data: bytes, shape: tuple[int, ...], where: str) -> np.ndarray:
    """:func:`_npy` of a numeric array of exactly ``shape`` (checked from the header before the data is read)."""
    buffer = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buffer)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in read_header:
            raise ValueError(f"unsupported .npy version {version}")
        header_shape, _, dtype = read_header[version](buffer)
    except ValueError as exc:
        raise ValueError(f"{where}: not a .npy array ({exc})") from None
    if tuple(header_shape) != tuple(shape) or dtype.kind not in "fiu" or dtype.hasobject:
        raise ValueError(f"{where}: array is {dtype} {tuple(header_shape)}, expected numbers of shape {tuple(shape)}")
    return _npy(data)


def sample_geometry(meta: dict[str, Any], key: str) -> tuple[int, int, int]:
    """(T, H, W) a sample declares in its meta.json, refused when outside the loader's caps."""
    try:
        height, width = int(meta["height"]), int(meta["width"])
        t = int(meta["window_stop"]) - int(meta["window_start"]) if "window_stop" in meta else len(meta["frames"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{key}: meta.json lacks a valid height/width/window ({exc})") from None
    if not (0 < height <= MAX_SIDE and 0 < width <= MAX_SIDE and 0 < t <= MAX_WINDOW
            and t * height * width <= MAX_SAMPLE_PIXELS):
        raise ValueError(f"{key}: declared window {t} x {height} x {width} is outside the loader's limits "
                         f"(sides <= {MAX_SIDE}, T <= {MAX_WINDOW}, T*H*W <= {MAX_SAMPLE_PIXELS})")
    return t, height, width


def member_bytes_limit(field: str, t: int, height: int, width: int) -> int | None:
    """The most bytes member ``field`` of a T x H x W sample can hold (None: not a field of this format): its raw
    pixels or numbers, plus what PNG or gzip add to incompressible data (a filter byte per row, block and chunk
    headers: well under 1/64) and a header allowance."""
    strip, plane = t * height * width, height * width
    raw = {schema.FRAMES: 3 * strip, schema.LAYOUTS: strip, schema.VALID: strip, schema.FLOW: 2 * 2 * strip,
           schema.BACKGROUND: 3 * plane, schema.SOURCE: 3 * plane, schema.SOURCE_LAYOUT: plane,
           schema.POSE: t * 25 * 3 * 8, schema.SOURCE_POSE: 25 * 3 * 8, schema.META: MAX_META_BYTES}.get(field)
    return None if raw is None else raw + raw // 64 + t * height + (64 << 10)


def tar_files(shards: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """``webdataset``'s stream of tar members (``fname``, ``data``, ``__url__``; ``{}`` after each shard), with
    every member's declared size checked against :data:`MAX_MEMBER_BYTES` before a byte of it is read."""
    import tarfile

    for shard in shards:
        url = shard["url"]
        stream = wds.gopen(url)  # the URLs were checked by check_shard_urls when the dataset was made
        try:
            with tarfile.open(fileobj=stream, mode="r|*") as archive:
                for member in archive:
                    if not member.isreg() or member.name.startswith("__"):  # webdataset's own metadata
                        continue
                    if member.size > MAX_MEMBER_BYTES:
                        raise BadShard(f"{url}: member {member.name} declares {member.size:,} bytes, more than the "
                                       f"{MAX_MEMBER_BYTES:,} any shard member may hold (a damaged or crafted "
                                       "shard): rebuild it with `dvc repro shards`, or remove it")
                    yield {"fname": member.name, "data": archive.extractfile(member).read(), "__url__": url}
                    archive.members = []  # a stream of any length keeps no member list
        finally:
            stream.close()
        yield {}  # end of shard: no sample spans two shards


def admit_sample(sample: dict[str, Any]) -> dict[str, Any]:
    """``sample`` (raw bytes per field) when its format and declared geometry are within the loader's limits and
    each member holds no more than that geometry needs; else an error naming the shard and member. Runs before
    the sample enters the shuffle buffer."""
    key, url = sample["__key__"], sample.get("__url__")
    try:
        meta = json.loads(sample[schema.META])
        if not isinstance(meta, dict):
            raise ValueError("not a JSON object")
    except KeyError:
        raise BadShard(f"{url}: sample {key} has no {schema.META} member") from None
    except ValueError as exc:
        raise BadShard(f"{url}: member {key}.{schema.META} is not a JSON object ({exc})") from None
    schema.check_format(meta, key, url)
    t, height, width = sample_geometry(meta, key)
    for field, data in sample.items():
        if field.startswith("__"):
            continue
        limit = member_bytes_limit(field, t, height, width)
        if limit is None:
            raise BadShard(f"{url}: member {key}.{field} is not a field of shard format {schema.FORMAT_VERSION} "
                           f"({', '.join(schema.FIELDS)})")
        if len(data) > limit:
            raise BadShard(f"{url}: member {key}.{field} holds {len(data):,} bytes, more than the {limit:,} a "
                           f"{t} x {height} x {width} sample needs (a damaged or crafted shard)")
    return sample


def tar_samples(shards: Iterator[dict[str, str]]) -> Iterator[dict[str, Any]]:
    """Raw samples of ``shards``, each admitted (:func:`admit_sample`) as soon as it is complete."""
    return map(admit_sample, wds.tariterators.group_by_keys(tar_files(shards)))


# ----------------------------------------------------------------------------------------------- dataset


def _buffer_shuffle(samples: Iterator[Any], size: int, rng: random.Random) -> Iterator[Any]:
    """Yield ``samples`` through a buffer of ``size``, picking a random buffered item each time."""
    buffer: list[Any] = []
    for sample in samples:
        buffer.append(sample)
        if len(buffer) >= size:
            index = rng.randrange(len(buffer))
            buffer[index], buffer[-1] = buffer[-1], buffer[index]
            yield buffer.pop()
    rng.shuffle(buffer)
    yield from buffer


def _interleave(shards: Iterator[dict[str, str]], width: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """Samples of ``width`` shards read at once, each next sample from a random one of them; an exhausted shard is
    replaced by the next. Shards are per video, so this mixes videos from the first sample on, where a shuffle
    buffer alone holds one or two videos' consecutive windows until it has filled."""
    def open_next() -> Iterator[dict[str, Any]] | None:
        shard = next(shards, None)
        return None if shard is None else tar_samples(iter([shard]))

    streams = [s for s in (open_next() for _ in range(width)) if s is not None]
    while streams:
        index = rng.randrange(len(streams))
        sample = next(streams[index], None)
        if sample is None:
            replacement = open_next()
            if replacement is None:
                streams.pop(index)
            else:
                streams[index] = replacement
            continue
        yield sample


class WindowDataset(IterableDataset):
    """Decoded window samples streamed from WebDataset shards; see the module docstring for order and splitting."""

    def __init__(self, urls: list[str], *, shuffle_buffer: int = 64, seed: int = 0, resampled: bool = False,
                 epoch_length: int | None = None, pose_thickness: int = 4, allow_shell_urls: bool = False):
        if not urls:
            raise ValueError("no shard URLs given")
        check_shard_urls(urls, allow_shell_urls)  # before any URL reaches webdataset's shell-running openers
        if epoch_length is not None and epoch_length < 1:
            raise ValueError(f"epoch_length must be >= 1 or None, got {epoch_length}")
        self.urls = list(urls)
        self.shuffle_buffer = int(shuffle_buffer)
        self.seed = int(seed)
        self.resampled = bool(resampled)
        self.epoch_length = epoch_length
        self.pose_thickness = int(pose_thickness)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose shard order, resampling and shuffle buffer to use."""
        self.epoch = int(epoch)

    def _shards(self, rank: int, world: int, worker: int, n_workers: int) -> Iterator[dict[str, str]]:
        if self.resampled:
            rng = random.Random(derive_seed("resample", self.seed, self.epoch, rank, worker))
            while True:  # endless cycles, each a fresh random order of every shard
                for url in rng.sample(self.urls, len(self.urls)):
                    yield {"url": url}
        urls = list(self.urls)
        if self.shuffle_buffer > 0:
            # Same seed on every rank and worker, so split_by_node/worker partition one common order.
            random.Random(derive_seed("shards", self.seed, self.epoch)).shuffle(urls)
        if worker == 0 and rank == 0 and len(urls) < world * n_workers:
            warnings.warn(f"{len(urls)} shards for {world} ranks x {n_workers} workers: some get no samples")
        stream = ({"url": u} for u in urls)
        yield from wds.split_by_worker(wds.split_by_node(stream))

    def _quota(self, rank_quota: int | None, worker: int, n_workers: int) -> int | None:
        """This worker's share of the per-rank ``epoch_length``."""
        if rank_quota is None:
            return None
        return rank_quota // n_workers + (1 if worker < rank_quota % n_workers else 0)

    def _samples(self) -> tuple[Iterator[dict[str, Any]], int, int]:
        """This (rank, worker)'s undecoded, shuffled sample stream; returns (stream, worker, n_workers)."""
        rank, world, worker, n_workers = wds.utils.pytorch_worker_info()
        shards = self._shards(rank, world, worker, n_workers)
        if self.resampled and self.shuffle_buffer > 1:
            mix = random.Random(derive_seed("interleave", self.seed, self.epoch, rank, worker))
            samples = _interleave(iter(shards), INTERLEAVED_SHARDS, mix)
        else:
            samples = tar_samples(shards)
        if self.shuffle_buffer > 1:
            rng = random.Random(derive_seed("samples", self.seed, self.epoch, rank, worker))
            samples = _buffer_shuffle(samples, self.shuffle_buffer, rng)
        return samples, worker, n_workers

    def __iter__(self) -> Iterator[dict[str, Any]]:
        samples, worker, n_workers = self._samples()
        quota = self._quota(self.epoch_length, worker, n_workers)
        for count, sample in enumerate(samples):
            if quota is not None and count >= quota:
                break
            yield decode_sample(sample, self.pose_thickness)


def make_dataset(source: str | Path | Sequence[str | Path], split: str | None = None, *, shuffle_buffer: int = 64,
                 seed: int = 0, resampled: bool = False, epoch_length: int | None = None,
                 pose_thickness: int = 4, allow_shell_urls: bool = False) -> WindowDataset:
    """A :class:`WindowDataset` over a shard directory's ``split`` or over explicit shard URLs.

    ``epoch_length``: samples per rank per epoch (summed over DataLoader workers); in non-resampled mode it caps
    the pass (use it to equalise ranks), in resampled mode it ends the otherwise endless stream.
    """
    return WindowDataset(shard_urls(source, split), shuffle_buffer=shuffle_buffer, seed=seed, resampled=resampled,
                         epoch_length=epoch_length, pose_thickness=pose_thickness, allow_shell_urls=allow_shell_urls)


def collate_windows(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack every tensor field to (B, ...) and keep ``meta`` as a list of B dicts."""
    out: dict[str, Any] = {"meta": [sample["meta"] for sample in batch]}
    for name, value in batch[0].items():
        if name != "meta":
            out[name] = torch.stack([sample[name] for sample in batch])
    return out


def make_loader(source: str | Path | Sequence[str | Path], split: str | None = None, *, batch_size: int = 1,
                num_workers: int = 0, shuffle_buffer: int = 64, seed: int = 0, resampled: bool = False,
                epoch_length: int | None = None, pose_thickness: int = 4, pin_memory: bool = False,
                allow_shell_urls: bool = False) -> DataLoader:
    """A DataLoader over :func:`make_dataset` with :func:`collate_windows`; ``loader.dataset.set_epoch(e)`` per epoch.

    Batches are formed inside each worker, so a worker's last batch of an epoch may be short.
    """
    dataset = make_dataset(source, split, shuffle_buffer=shuffle_buffer, seed=seed, resampled=resampled,
                           epoch_length=epoch_length, pose_thickness=pose_thickness,
                           allow_shell_urls=allow_shell_urls)
    return DataLoader(dataset, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_windows,
                      pin_memory=pin_memory, persistent_workers=False)
