"""The shard sample format, written by ``writer`` and read by ``reader``: the field names of one sample (the
tar member suffixes after ``<key>.``) and the format version the writer stamps into meta.json and the reader
checks."""
from __future__ import annotations

from typing import Any

from pipeline.core.errors import RemotError

# Bump on any change to a field's name, encoding or meaning; the reader refuses other versions.
FORMAT_VERSION = 2  # 2: flow as int16 in 1/FLOW_STEPS_PER_PIXEL px (1: float16)

# Flow is stored in fixed point: rounding moves a vector by at most 1/64 px, far below the error of any flow
# estimator and of bilinear warping on 8-bit frames, and the integers deflate to a sixth of float16's bytes
# (whose low mantissa bits are noise to deflate), four times faster. int16 covers +-1023 px.
FLOW_STEPS_PER_PIXEL = 32

BACKGROUND = "background.png"      # uint8 RGB (H, W)
FLOW = "flow.npy.gz"               # gzip of int16 (T, 2, H, W) t -> t-1 in 1/32 px, flow[0] = 0
FRAMES = "frames.png"              # uint8 RGB, T frames stacked vertically (T*H, W)
LAYOUTS = "layouts.png"            # uint8 region index, stacked like FRAMES
META = "meta.json"                 # format, key, dataset, video, split, window, source frame, size, backends
POSE = "pose.npy"                  # float32 (T, 25, 3) BODY_25 keypoints
SOURCE = "source.png"              # uint8 RGB (H, W): the source (forward) frame of the same video
SOURCE_LAYOUT = "source_layout.png"
SOURCE_POSE = "source_pose.npy"    # float32 (25, 3)
VALID = "valid.png"                # uint8 {0, 1} flow validity, stacked like FRAMES; valid[0] = 0

FIELDS = (BACKGROUND, FLOW, FRAMES, LAYOUTS, META, POSE, SOURCE, SOURCE_LAYOUT, SOURCE_POSE, VALID)


class ShardFormatError(RemotError):
    """A shard written in another format version than this reader reads."""


def check_format(meta: dict[str, Any], key: str, url: str | None) -> None:
    """Refuse a sample whose meta.json declares another ``FORMAT_VERSION``, naming the shard file."""
    found = meta.get("format")
    if found != FORMAT_VERSION:
        raise ShardFormatError(f"{url or 'shard'}: sample {key} is shard format {found!r}, this reader reads format "
                               f"{FORMAT_VERSION}; rebuild the shards with this code (`dvc repro shards`)")
