"""Layout stage: 18-class parsing -> REMOT's 6-region layouts (paper 3.1), background plates and QA contact
sheets, per video."""
from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from pipeline.core import atomic
from pipeline.core.artifacts import VideoArtifacts, frame_name
from pipeline.core.labels import REGIONS
from pipeline.core.params import section_fingerprint
from pipeline.layout.background import background_plate
from pipeline.layout.merge import merge_layout, merge_lookup
from pipeline.layout.qa import contact_sheet
from pipeline.parsing.stage import read_keypoints, read_label_pngs
from pipeline.stage.entry import Stage, StageContext, summary
from pipeline.stage.per_video import SkipVideo, iter_frames_on_disk, run_video_stage, upstream_stamp


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


def body(ctx: StageContext) -> str:
    merge = ctx.params.merge
    report = run_video_stage(
        "layout", ctx.dataset, ctx.data_root, "layout-v1:" + section_fingerprint(merge),
        lambda video, meta: [upstream_stamp(ctx.data_root, "parsing", video),
                             upstream_stamp(ctx.data_root, "pose", video)],
        partial(layout_video, merge=merge.classes, qa_root=ctx.root),
        lambda video: [video.layout_dir, video.background_file, qa_sheet_path(ctx.root, video)],
        ctx.report_path("layout"), ctx.params.preprocess)
    return summary("layout", ctx.dataset, report.run_log()["counts"], ctx.report_path("layout"))


STAGE = Stage("DVC stage `layout@<dataset>`: merge 18 ATR classes into REMOT's 6 regions, background plates, "
              "QA sheets.", body)
