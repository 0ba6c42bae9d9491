"""Sample grid PNG: one row per batch item, one column per named image (source | driving pose | layout |
regions | output | ground truth, as far as a network produces them), each column titled."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from pipeline.core import atomic

# RGB per region, in remot_models.REGIONS order (head, top, bottom, shoes, limbs, background).
LAYOUT_PALETTE = torch.tensor([[255, 200, 40], [220, 40, 40], [40, 80, 220], [60, 60, 60], [240, 160, 130],
                               [0, 0, 0]], dtype=torch.float32) / 127.5 - 1.0


def colour_layout(layout: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) layout (one-hot or soft) -> (B, 3, H, W) colour image in [-1, 1] (soft = blended colours)."""
    palette = LAYOUT_PALETTE.to(layout.device, layout.dtype)
    return torch.einsum("bchw,cr->brhw", layout, palette)


def grid_image(columns: dict[str, torch.Tensor], max_rows: int = 4, title_height: int = 14) -> np.ndarray:
    """uint8 (rows*H + title, cols*W, 3) RGB: ``columns`` maps a title to (B, 3, H, W) images in [-1, 1]."""
    tiles = []
    for title, images in columns.items():
        images = images[:max_rows].detach().float().cpu().clamp(-1, 1)
        column = ((images + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        column = np.concatenate(list(column), axis=0)
        header = np.full((title_height, column.shape[1], 3), 255, np.uint8)
        cv2.putText(header, title[:max(1, column.shape[1] // 6)], (2, title_height - 4), cv2.FONT_HERSHEY_PLAIN,
                    0.7, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(np.concatenate([header, column], axis=0))
    return np.concatenate(tiles, axis=1)


def save_grid(path: Path, columns: dict[str, torch.Tensor]) -> Path:
    """Write :func:`grid_image` as a PNG atomically; returns ``path``."""
    image = grid_image(columns)
    ok, data = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode the sample grid for {path}")
    atomic.write_bytes(Path(path), data.tobytes())
    return Path(path)
