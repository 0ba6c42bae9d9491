"""The optical-flow interface shared by every backend, plus warping and the forward-backward validity check.

Flow convention used throughout the project (what warping the previous output frame needs, paper eq. 2b-2c):
a flow computed with ``compute(target, reference)`` is a float32 array (H, W, 2) on the *target* pixel grid, with
channel 0 = dx and channel 1 = dy in pixels, such that ``reference`` sampled at ``x + flow(x)`` matches
``target(x)``. With target = frame t and reference = frame t-1 this is the t -> t-1 flow, and
``warp_image(frame_{t-1}, flow)`` approximates frame t.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import functools

import cv2
import numpy as np


class FlowBackend(ABC):
    """An optical-flow estimator. ``name`` is recorded in every output so readers know which backend ran."""

    name: str
    info: dict

    @abstractmethod
    def compute(self, target_rgb: np.ndarray, reference_rgb: np.ndarray) -> np.ndarray:
        """Flow from ``target_rgb`` into ``reference_rgb`` (both H x W x 3 uint8 RGB, same size).

        Returns float32 (H, W, 2), (dx, dy) in pixels on the target grid: reference(x + flow(x)) ~ target(x).
        """

    def coverage(self, height: int, width: int) -> np.ndarray | None:
        """The pixels of an H x W frame that ``compute`` estimates flow for (bool (H, W)), or None for all of them.
        Pixels outside are marked invalid in the stored validity mask (FlowNet2's official centre crop)."""
        return None


def check_image_pair(target_rgb: np.ndarray, reference_rgb: np.ndarray) -> None:
    """Raise ValueError unless both images are H x W x 3 uint8 of the same size."""
    for label, image in (("target", target_rgb), ("reference", reference_rgb)):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            described = getattr(image, "shape", type(image)), getattr(image, "dtype", None)
            raise ValueError(f"{label} image must be an H x W x 3 uint8 RGB array, got {described}")
    if target_rgb.shape != reference_rgb.shape:
        raise ValueError(f"target {target_rgb.shape} and reference {reference_rgb.shape} differ in size")


def sampling_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling coordinates (map_x, map_y), each float32 (H, W): pixel grid plus ``flow``."""
    grid_y, grid_x = _grid(*flow.shape[:2])
    return grid_x + flow[..., 0].astype(np.float32), grid_y + flow[..., 1].astype(np.float32)


@functools.lru_cache(maxsize=8)
def _grid(height: int, width: int) -> np.ndarray:
    """The float32 pixel grid (y, x) of one frame size, made once: flow calls need it several times per frame."""
    grid = np.mgrid[0:height, 0:width].astype(np.float32)
    grid.flags.writeable = False
    return grid


def warp_image(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """Backward-warp ``img`` by ``flow``: out(x) = img(x + flow(x)), bilinear, border pixels replicated.

    ``img`` is (H, W) or (H, W, C) with C <= 4 of any dtype cv2.remap takes; ``flow`` is (H, W, 2) (dx, dy).
    Returns an array of ``img``'s shape and dtype. So ``warp_image(frame_{t-1}, flow_{t->t-1}) ~ frame_t``.
    """
    if flow.ndim != 3 or flow.shape[2] != 2 or flow.shape[:2] != img.shape[:2]:
        raise ValueError(f"flow must be (H, W, 2) matching the image {img.shape[:2]}, got {flow.shape}")
    map_x, map_y = sampling_maps(flow)
    return cv2.remap(img, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency_mask(
    flow_fw: np.ndarray,
    flow_bw: np.ndarray,
    alpha1: float = 0.01,
    alpha2: float = 0.5,
    *,
    out_of_frame_invalid: bool = True,
) -> np.ndarray:
    """Forward-backward consistency check (Sundaram et al. 2010; Meister et al., UnFlow 2018).

    ``flow_fw`` (H, W, 2) maps frame A's pixels into frame B (e.g. t -> t-1); ``flow_bw`` (H, W, 2) maps B back
    into A (t-1 -> t). A pixel x of A is valid when going there and back lands near x:
    ``|f + b~|^2 < alpha1 (|f|^2 + |b~|^2) + alpha2`` with f = flow_fw(x) and b~ = flow_bw sampled at x + f(x).
    Pixels that fail are occluded in B (or the flow there is wrong). With ``out_of_frame_invalid`` a pixel whose
    target x + f(x) leaves frame B is also invalid, since B has nothing to say about it.

    Returns float32 (H, W) with values in {0, 1}; 1 = valid (non-occluded).
    """
    if flow_fw.shape != flow_bw.shape or flow_fw.ndim != 3 or flow_fw.shape[2] != 2:
        raise ValueError(f"flows must both be (H, W, 2), got {flow_fw.shape} and {flow_bw.shape}")
    forward = flow_fw.astype(np.float32)
    backward_at_target = warp_image(flow_bw.astype(np.float32), forward)
    # x[..., 0] ** 2 + x[..., 1] ** 2 is np.sum(x ** 2, axis=2) to the bit (two terms), without a slow reduction
    # over a length-2 axis.
    total = forward + backward_at_target
    round_trip = total[..., 0] ** 2 + total[..., 1] ** 2
    magnitudes = (forward[..., 0] ** 2 + forward[..., 1] ** 2) + (backward_at_target[..., 0] ** 2
                                                                    + backward_at_target[..., 1] ** 2)
    valid = round_trip < alpha1 * magnitudes + alpha2
    if out_of_frame_invalid:
        height, width = forward.shape[:2]
        map_x, map_y = sampling_maps(forward)
        valid &= (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return valid.astype(np.float32)
