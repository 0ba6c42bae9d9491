"""Quality-assurance pictures: a contact sheet showing pose and layout over a few frames of a video."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import cv2
import numpy as np

from pipeline.core.labels import REGIONS
from pipeline.pose.render import render_pose_map

# One RGB colour per REMOT region, in ``labels.REGIONS`` order (background black: it is not blended).
REGION_COLORS: tuple[tuple[int, int, int], ...] = (
    (255, 200, 40),   # head: amber
    (230, 40, 40),    # top: red
    (40, 90, 230),    # bottom: blue
    (240, 240, 240),  # shoes: white
    (40, 200, 70),    # limbs: green
    (0, 0, 0),        # background
)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LEGEND_ROW = 16


def overlay_pose(frame: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    """The frame (HxWx3 uint8 RGB) with the BODY_25 skeleton of ``keypoints`` (25, 3) drawn over it."""
    skeleton = render_pose_map(keypoints, frame.shape[0], frame.shape[1], thickness=2)
    drawn = skeleton.any(axis=2)
    out = frame.copy()
    out[drawn] = skeleton[drawn]
    return out


def overlay_layout(frame: np.ndarray, layout: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """The frame with the layout's person regions (values 0..4) colour-coded and blended at ``alpha``."""
    colours = np.array(REGION_COLORS, dtype=np.float32)[layout]
    person = (layout != REGIONS.index("background"))[..., None]
    blended = frame.astype(np.float32) * (1 - alpha) + colours * alpha
    return np.where(person, blended, frame.astype(np.float32)).round().astype(np.uint8)


def _legend(width: int) -> np.ndarray:
    """Rows of colour swatches with region names, wrapped to ``width``; returns HxWx3 uint8 (white)."""
    entries = []
    for name, colour in zip(REGIONS, REGION_COLORS):
        (text_w, _), _ = cv2.getTextSize(name, _FONT, 0.35, 1)
        entries.append((name, colour, 14 + text_w + 10))
    rows, x = [[]], 4
    for entry in entries:
        if x + entry[2] > width and rows[-1]:
            rows.append([])
            x = 4
        rows[-1].append((x, entry))
        x += entry[2]
    legend = np.full((_LEGEND_ROW * len(rows), width, 3), 255, dtype=np.uint8)
    for r, row in enumerate(rows):
        y = r * _LEGEND_ROW
        for x, (name, colour, _) in row:
            cv2.rectangle(legend, (x, y + 3), (x + 10, y + 13), colour, -1)
            cv2.rectangle(legend, (x, y + 3), (x + 10, y + 13), (0, 0, 0), 1)
            cv2.putText(legend, name, (x + 14, y + 12), _FONT, 0.35, (0, 0, 0), 1, cv2.LINE_AA)
    return legend


def contact_sheet(frames, keypoints: np.ndarray, layouts, n: int = 4) -> np.ndarray:
    """A QA picture of ``n`` evenly spaced frames (fewer if the video is shorter).

    ``frames``: sequence of T HxWx3 uint8 RGB; ``keypoints``: (T, 25, 3); ``layouts``: sequence of T HxW uint8
    in ``labels.REGIONS`` order. Each chosen frame becomes a pair of tiles, side by side: frame with skeleton
    | layout blended over the frame, labelled with its frame number; pairs run left to right, under a legend
    of the region colours. Returns an (legend + H) x (n_shown * 2W) x 3 uint8 RGB image.
    """
    count = len(frames)
    if count == 0:
        raise ValueError("contact_sheet: no frames")
    if len(keypoints) != count or len(layouts) != count:
        raise ValueError(f"contact_sheet: {count} frames but {len(keypoints)} keypoint sets and "
                         f"{len(layouts)} layouts")
    picks = np.unique(np.linspace(0, count - 1, max(1, min(n, count))).round().astype(int))
    tiles = []
    for t in picks:
        frame = np.asarray(frames[t], dtype=np.uint8)
        layout = np.asarray(layouts[t])
        if layout.shape != frame.shape[:2]:
            raise ValueError(f"contact_sheet: layout {t} has shape {layout.shape}, frame has {frame.shape[:2]}")
        pose_tile = overlay_pose(frame, np.asarray(keypoints[t]))
        layout_tile = overlay_layout(frame, layout)
        pair = np.concatenate([pose_tile, layout_tile], axis=1)
        cv2.rectangle(pair, (0, 0), (pair.shape[1] - 1, pair.shape[0] - 1), (255, 255, 255), 1)
        cv2.putText(pair, f"frame {t}", (4, 14), _FONT, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(pair, f"frame {t}", (4, 14), _FONT, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
        tiles.append(pair)
    body = np.concatenate(tiles, axis=1)
    return np.concatenate([_legend(body.shape[1]), body], axis=0)


def save_png_atomic(path: str | os.PathLike, rgb: np.ndarray) -> None:
    """Write an HxWx3 uint8 RGB (or HxW uint8) image as PNG via a temp file and ``os.replace``."""
    path = Path(path)
    image = np.asarray(rgb)
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"save_png_atomic: expected HxW or HxWx3 uint8, got {image.dtype} {image.shape}")
    ok, data = cv2.imencode(".png", image[..., ::-1] if image.ndim == 3 else image)
    if not ok:
        raise ValueError(f"save_png_atomic: could not encode {path}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
