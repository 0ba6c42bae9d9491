"""Temporal training windows of one video, and the source frame that goes with each window.

A *window* is ``length`` consecutive frames ``[start, stop)`` of one video; it is the driving clip of one training
sample. Windows start at ``0, stride, 2*stride, ...`` and only whole windows are kept, so the last
``(n_frames - length) % stride`` frames of a video are not the first frames of any window (with
``stride <= length`` every frame except that tail is in at least one window).

Source frame rule (paper 4, "Training": "we select a forward frame in a video as the source image and this video
as the driving video"): the source image of a window is a frame of the *same* video, chosen as follows

* ``start > 0``: uniformly among the frames *before* the window, ``0 .. start-1`` (a forward frame);
* ``start == 0`` (nothing before the window): uniformly among the frames *after* the window,
  ``stop .. n_frames-1``;
* ``start == 0`` and the window covers the whole video: uniformly among all frames ``0 .. n_frames-1``
  (the source then lies inside the window; there is no other frame to use).

The choice is a pure function of a seed and the window's identity: the index is
``sha256(seed material) mod (number of candidates)``, with the seed material built by
:func:`source_seed_material` from (seed, dataset, video, start) (``pipeline.core.hashing.text_int``, not Python's
``hash()``, which is salted per process), so shards come out identical on every run and machine.
"""
from __future__ import annotations

from pipeline.core.hashing import text_int


def plan_windows(n_frames: int, length: int, stride: int) -> list[tuple[int, int]]:
    """Whole windows of a video with ``n_frames`` frames.

    Returns ``[(start, stop), ...]`` with ``stop - start == length``, starts ``0, stride, 2*stride, ...`` and
    ``stop <= n_frames``; empty when the video is shorter than one window.
    """
    if length < 1 or stride < 1:
        raise ValueError(f"window length and stride must be >= 1, got length={length}, stride={stride}")
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    return [(start, start + length) for start in range(0, n_frames - length + 1, stride)]


def source_seed_material(seed: int, dataset: str, video: str, start: int) -> str:
    """The string hashed to pick the source frame of the window starting at ``start`` of (dataset, video)."""
    # "\x1f" (unit separator) cannot appear in sanitised names, so ("a", "b/c") and ("a/b", "c") never collide.
    return "\x1f".join(("remot-source-v1", str(int(seed)), dataset, video, str(int(start))))


def _uniform_index(seed_material: str | bytes, count: int) -> int:
    """A deterministic integer in ``[0, count)`` from ``seed_material`` (sha256; bias < 2**-200)."""
    return text_int(seed_material) % count


def choose_source_frame(n_frames: int, start: int, rng_seed_material: str | bytes, stop: int | None = None) -> int:
    """Index of the source frame for the window ``[start, stop)`` of a video of ``n_frames`` frames.

    Follows the rule in the module docstring. ``stop`` is only consulted when ``start == 0`` (to pick a frame
    after the window); when it is omitted there, the window is taken to be ``[0, 1)``. The result is always in
    ``[0, n_frames)`` and is the same for the same arguments on every run.
    """
    if n_frames < 1:
        raise ValueError(f"a video needs at least one frame to choose a source from, got n_frames={n_frames}")
    if not 0 <= start < n_frames:
        raise ValueError(f"window start {start} is outside the video's frames 0..{n_frames - 1}")
    if start > 0:
        return _uniform_index(rng_seed_material, start)
    after = 1 if stop is None else stop
    if after < n_frames:
        return after + _uniform_index(rng_seed_material, n_frames - after)
    return _uniform_index(rng_seed_material, n_frames)
