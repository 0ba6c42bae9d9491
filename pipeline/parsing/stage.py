"""Parse and layout stages: frames -> 18-class ATR parsing (SCHP or the offline parser) -> 6-class layouts,
background plates and QA contact sheets, per video."""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import cv2
import numpy as np

from pipeline import atomic
from pipeline.artifacts import VideoArtifacts, frame_name
from pipeline.background import background_plate
from pipeline.errors import RemotError, WeightsNotFound
from pipeline.labels import ATR, LIP_LABELS, REGIONS
from pipeline.params import ParseParams
from pipeline.parsing.merge import merge_layout, merge_lookup
from pipeline.parsing.offline import OFFLINE_PARSER_NAME, parse_offline
from pipeline.pose.mediapipe_body25 import read_pose_parquet, table_to_keypoints
from pipeline.pose.stage import load_masks
from pipeline.qa import contact_sheet
from pipeline.video_stage import SkipVideo, iter_frames_on_disk

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
        from pipeline.parsing.schp import load_schp

        try:
            schp = load_schp(root / cfg.schp_weights, cfg.schp_dataset)
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


def qa_sheet_path(root: Path, video: VideoArtifacts) -> Path:
    return root / "reports" / "qa" / video.dataset / f"{video.video}.png"


# The background plate is the temporal median over at most this many evenly spaced frames (every frame of a
# shorter clip): memory stays flat in video length. The layout stage and `remot transfer` share the rule.
PLATE_FRAMES = 64
QA_FRAMES = 4


class SparseFrames:
    """A length-``n`` sequence holding only the items at some indices (what the plate and the QA sheet read),
    so the stage keeps a bounded number of frames in memory whatever the video's length."""

    def __init__(self, n: int, items: dict[int, np.ndarray]):
        self.n, self.items = n, items

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, t: int) -> np.ndarray:
        return self.items[t]


def evenly_spaced(n: int, k: int) -> list[int]:
    return sorted(set(np.linspace(0, n - 1, max(1, min(k, n))).round().astype(int).tolist()))


def layout_video(video: VideoArtifacts, meta: dict, merge: dict[str, list[str]], qa_root: Path) -> dict:
    """Merge 18 -> 6 classes frame by frame, build the background plate from the non-person pixels of at most
    ``PLATE_FRAMES`` evenly spaced frames (every frame of a shorter video), draw the QA sheet."""
    import json

    n = meta["n_frames"]
    parsing_meta = json.loads((video.parsing_dir / "meta.json").read_text())
    lookup = merge_lookup(merge)
    plate_at, qa_at = evenly_spaced(n, PLATE_FRAMES), evenly_spaced(n, QA_FRAMES)
    frames, layouts, person_sum = {}, {}, 0.0
    background = REGIONS.index("background")
    info = {"parser": parsing_meta["parser"], "regions": list(REGIONS)}
    with atomic.replace_dir(video.layout_dir) as tmp:
        for t, frame in enumerate(iter_frames_on_disk(video, n)):
            layout = merge_layout(read_label_pngs(video.parsing_dir, 1, start=t)[0], lookup)
            cv2.imwrite(str(tmp / frame_name(t)), layout, [cv2.IMWRITE_PNG_COMPRESSION, 1])
            person_sum += float((layout != background).mean())
            if t in plate_at or t in qa_at:
                frames[t], layouts[t] = frame, layout
        try:
            plate = background_plate([frames[t] for t in plate_at], [layouts[t] != background for t in plate_at])
        except ValueError as exc:
            raise SkipVideo(f"no background plate: {exc}") from None
        info["person_fraction"] = round(person_sum / n, 4)
        atomic.write_json(tmp / "meta.json", {**info, "n_frames": n})
    ok, png = cv2.imencode(".png", cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))
    atomic.write_bytes(video.background_file, png.tobytes())
    sheet = contact_sheet(SparseFrames(n, frames), read_keypoints(video), SparseFrames(n, layouts), n=QA_FRAMES)
    ok, png = cv2.imencode(".png", cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    atomic.write_bytes(qa_sheet_path(qa_root, video), png.tobytes())
    return info
