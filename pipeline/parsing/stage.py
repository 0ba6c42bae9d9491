"""Parse stage: frames -> 18-class ATR parsing per video (SCHP, or the offline parser without its weights)."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.core.errors import RemotError, WeightsNotFound
from pipeline.core.labels import ATR, LIP_LABELS
from pipeline.core.params import ParseParams
from pipeline.parsing.offline import OFFLINE_PARSER_NAME, parse_offline
from pipeline.pose.mediapipe_body25 import read_pose_parquet, table_to_keypoints
from pipeline.pose.stage import load_masks
from pipeline.stage.entry import Stage, StageContext, summary
from pipeline.stage.per_video import SkipVideo, iter_frames_on_disk, run_video_stage, upstream_stamp

# LIP classes without an ATR twin go to the nearest ATR class; the side of a glove or sock is unknown, which
# only matters before the 18 -> 6 merge (both arms and both legs are "limbs").
LIP_TO_ATR_EXTRA = {"glove": "left_arm", "coat": "upper_clothes", "socks": "left_leg", "jumpsuits": "pants"}
LIP_TO_ATR = np.array([ATR[LIP_TO_ATR_EXTRA.get(name, name)] for name in LIP_LABELS], dtype=np.uint8)


@dataclass(frozen=True)
class Parser:
    name: str
    parse: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]  # (rgb, keypoints, mask) -> ATR labels
    notes: str


def make_parser(cfg: ParseParams, root: Path) -> Parser:
    """SCHP when asked for (``schp``) or available (``auto``), else the offline parser — said out loud."""
    if cfg.backend in ("auto", "schp"):
        from pipeline.parsing.schp_parser import load_schp

        try:
            schp = load_schp(root / cfg.schp_weights, cfg.schp_dataset, flip=cfg.schp_flip)
        except WeightsNotFound as exc:
            if cfg.backend == "schp":
                raise RemotError(f"{exc} (parse.backend is 'schp'; set it to 'auto' or 'offline' to run the "
                                 "offline parser instead)") from None
            warnings.warn(f"{exc}; using the offline parser {OFFLINE_PARSER_NAME} instead", stacklevel=2)
            # The recorded note is short and names the file as params.yaml does (relative to the project), so
            # the outputs that carry it are the same in every clone; the full message with the source went to
            # the warning above.
            note = f"SCHP weights {cfg.schp_weights} not found: offline parser used"
        else:
            def run_schp(rgb, _kps, _mask):
                labels = schp.parse(rgb)
                return LIP_TO_ATR[labels] if cfg.schp_dataset == "lip" else labels

            return Parser(schp.info["backend"], run_schp, f"SCHP checkpoint sha256 {schp.info['sha256']}")
    else:
        note = "parse.backend is 'offline'"
    return Parser(OFFLINE_PARSER_NAME, parse_offline, note)


def read_keypoints(video: VideoArtifacts) -> np.ndarray:
    if not video.pose_table.is_file():
        raise SkipVideo(f"{video.pose_table} is missing; run the pose stage")
    table, _ = read_pose_parquet(video.pose_table)
    return table_to_keypoints(table)


def write_label_pngs(folder: Path, labels: Iterable[np.ndarray]) -> int:
    """Write the label maps as they come (a generator keeps one in memory); returns how many."""
    count = 0
    for k, label in enumerate(labels):
        cv2.imwrite(str(folder / frame_name(k)), label, [cv2.IMWRITE_PNG_COMPRESSION, 1])
        count += 1
    return count


def read_label_pngs(folder: Path, n_frames: int, start: int = 0) -> list[np.ndarray]:
    labels = []
    for k in range(start, start + n_frames):
        image = cv2.imread(str(folder / frame_name(k)), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SkipVideo(f"{folder / frame_name(k)} is missing or unreadable; re-run the stage that writes it")
        labels.append(image)
    return labels


def parse_video(video: VideoArtifacts, meta: dict, parser: Parser) -> dict:
    keypoints = read_keypoints(video)
    masks = load_masks(video)
    # frame by frame: one decoded frame and one label map in memory at a time, whatever the video's length
    frames = iter_frames_on_disk(video, meta["n_frames"])
    labels = (parser.parse(frame, keypoints[t], masks[t]) for t, frame in enumerate(frames))
    info = {"parser": parser.name, "notes": parser.notes}
    with atomic.replace_dir(video.parsing_dir) as tmp:
        count = write_label_pngs(tmp, labels)
        atomic.write_json(tmp / "meta.json", {**info, "labels": "atr-18", "n_frames": count})
    return info


def body(ctx: StageContext) -> str:
    parser = make_parser(ctx.params.parse, ctx.root)
    print(f"parser: {parser.name} ({parser.notes})")
    # the folder is "parsing" (data/parsing/<dataset>), the stage and its report are "parse"
    report = run_video_stage("parsing", ctx.dataset, ctx.data_root, f"parse-v1:{parser.name}",
                             lambda video, meta: [upstream_stamp(ctx.data_root, "pose", video)],
                             partial(parse_video, parser=parser), lambda video: [video.parsing_dir],
                             ctx.report_path("parse"), ctx.params.preprocess)
    return summary("parse", ctx.dataset, report.run_log()["counts"], ctx.report_path("parse"))


STAGE = Stage("DVC stage `parse@<dataset>`: 18-class ATR human parsing per frame (SCHP, or the offline parser "
              "without its weights; the parser that ran is recorded in every output).", body)
