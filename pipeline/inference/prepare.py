"""Preprocessing for inference: a source image and a driving video -> the networks' inputs.

Both inputs go through the same code as the DVC stages, so a model sees at test time what it saw in training:

* crop: one person box (``pipeline.extract.person_box.clip_person_box``: MediaPipe on up to
  ``extract.detect_frames`` evenly spaced frames, union of the boxes; a still image is a clip of one frame),
  then ``crop_box_for_person`` + ``apply_crop`` to ``extract.height x extract.width`` (default 256 x 192);
* pose: ``pipeline.pose.mediapipe_body25.estimate_video`` (tracking mode for the video, static mode for the
  still), optional ``pose.smoothing_window`` as in the pose stage;
* parsing: ``pipeline.parsing.stage.make_parser(params.parse)`` (SCHP when its weights exist and
  ``parse.backend`` allows it, else the offline parser - recorded), merged 18 -> 6 regions by ``params.merge``;
* background: the driving video's plate (``pipeline.layout.background.background_plate``: per-pixel temporal median
  of the non-person pixels), which is what ``remot transfer`` composes the person on.

Every failure is a :class:`pipeline.core.errors.RemotError` subclass that names the file and the fix.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.core.errors import RemotError, SkipVideo
from pipeline.core.labels import REGIONS
from pipeline.core.params import Params
from pipeline.extract.crop import CropBox, apply_crop, crop_box_for_person
from pipeline.extract.decode import DecodeError, iter_frames, read_image, source_info
from pipeline.extract.person_box import DETECTOR_NAME, clip_person_box
from pipeline.layout.background import background_plate
from pipeline.layout.merge import merge_layout, merge_lookup
from pipeline.layout.stage import PLATE_FRAMES, evenly_spaced  # the layout stage's plate rule
from pipeline.parsing.stage import Parser, make_parser
from pipeline.pose.mediapipe_body25 import (backend_name, detection_rate, estimate_video, iter_estimate,
                                            smooth_keypoints)
from pipeline.pose.stage import pose_for_frames

BACKGROUND_LABEL = REGIONS.index("background")
BACKGROUND_RULE = ("the driving video's background plate (pipeline.layout.background.background_plate: temporal median "
                   "of the pixels outside the parsed person)")


class NoPersonError(RemotError):
    """No person was found in an input image or video."""


class DrivingVideoError(RemotError):
    """The driving video cannot be used (unreadable, too short, no person)."""


@dataclass
class PreparedSource:
    """The cropped source image and what the networks need from it."""

    path: Path
    image: np.ndarray       # uint8 (H, W, 3) RGB crop
    layout: np.ndarray      # uint8 (H, W) labels 0..5 in ``labels.REGIONS`` order
    keypoints: np.ndarray   # float32 (25, 3) BODY_25 x, y (crop pixels), confidence
    crop_box: CropBox       # in the original image's pixels


@dataclass
class PreparedDriving:
    """The cropped driving video and what the networks need from it."""

    path: Path
    frames: list[np.ndarray]  # T x uint8 (H, W, 3) RGB crops
    keypoints: np.ndarray     # float32 (T, 25, 3)
    layouts: np.ndarray       # uint8 (T, H, W) labels 0..5
    background: np.ndarray    # uint8 (H, W, 3) RGB plate
    fps: float
    crop_box: CropBox
    detection_rate: float     # share of frames where MediaPipe found the person


@dataclass
class StreamedDriving:
    """A driving video prepared without holding its frames: keypoints and plate, crops re-decoded on demand."""

    path: Path
    keypoints: np.ndarray     # float32 (T, 25, 3)
    background: np.ndarray    # uint8 (H, W, 3) RGB plate (from at most PLATE_FRAMES frames)
    fps: float
    crop_box: CropBox
    detection_rate: float
    n_frames: int
    _crops: Any = field(repr=False, default=None)

    def crops(self) -> Iterator[np.ndarray]:
        """The T cropped RGB frames, decoded again (one at a time)."""
        return self._crops()


def _stream_pose(crops: Iterator[np.ndarray], cfg: Any, keep: set[int]
                 ) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[np.ndarray, np.ndarray]]]:
    """MediaPipe Pose over a stream of crops (:func:`iter_estimate`, the code behind :func:`estimate_video`);
    returns (keypoints (T, 25, 3), detected (T,), {t: (crop, person mask)} for the frames in ``keep``)."""
    keypoints, detected, kept = [], [], {}
    crops = iter(crops)
    current: list[np.ndarray] = []

    def remembered() -> Iterator[np.ndarray]:  # the crop iter_estimate is working on, for ``keep``
        for crop in crops:
            current[:] = [crop]
            yield crop

    for t, one in enumerate(iter_estimate(remembered(), cfg.model_complexity, cfg.min_detection_confidence)):
        keypoints.append(one.keypoints)
        detected.append(one.detected)
        if t in keep:
            kept[t] = (current[0], one.mask)
    return np.stack(keypoints).astype(np.float32), np.array(detected, bool), kept


@dataclass
class Preprocessor:
    """The backends the params select, built once (the parser may load SCHP weights)."""

    params: Params
    parser: Parser
    backends: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_params(cls, params: Params, root: Path) -> "Preprocessor":
        parser = make_parser(params.parse, Path(root))
        backends = {"person_box": DETECTOR_NAME, "parser": parser.name, "parser_notes": parser.notes,
                    "merge": "params.merge", "background": BACKGROUND_RULE}
        return cls(params, parser, backends)

    # -------------------------------------------------------------------------------------------- source

    def source(self, path: Path | str) -> PreparedSource:
        """Read, crop, pose-estimate and parse the source image ``path``.

        Raises :class:`NoPersonError` naming the file when MediaPipe finds no person (before or after the crop)
        or the parser labels no person pixel.
        """
        path = Path(path)
        if not path.is_file():
            raise RemotError(f"source image {path} does not exist")
        try:
            rgb = read_image(path, self.params.limits.max_pixels)  # measured from its header before decoding
        except DecodeError as exc:
            raise RemotError(f"source image: {exc}") from None
        cfg = self.params.extract
        box, _ = clip_person_box([rgb])
        if box is None:
            raise NoPersonError(f"no person found in the source image {path}: use a photo of one person, whole "
                                "body visible, not too small in the frame")
        crop_box = crop_box_for_person(box, rgb.shape[1], rgb.shape[0], cfg.height, cfg.width, cfg.margin)
        crop = apply_crop(rgb, crop_box, cfg.height, cfg.width, cfg.pad)
        pose = estimate_video([crop], self.params.pose.model_complexity, self.params.pose.min_detection_confidence,
                              static_image_mode=True)
        self.backends["pose"] = pose.backend
        if not pose.detected[0]:
            raise NoPersonError(f"no person pose found in the cropped source image {path}: use a photo of one "
                                "person, whole body visible")
        layout = self._layout(crop, pose.keypoints[0], pose.person_masks[0])
        if not (layout != BACKGROUND_LABEL).any():
            raise NoPersonError(f"the parser ({self.parser.name}) found no person pixels in the source image "
                                f"{path}: use a clearer photo of one person")
        return PreparedSource(path, crop, layout, pose.keypoints[0], crop_box)

    # -------------------------------------------------------------------------------------------- driving

    def min_driving_frames(self) -> int:
        """The shortest driving video accepted: ``extract.min_frames`` (as extraction), and at least 3 (t-2..t)."""
        return max(3, self.params.extract.min_frames)

    def driving(self, path: Path | str) -> PreparedDriving:
        """Decode (``extract.fps``/``max_frames`` applied), crop, pose-estimate and parse the driving video.

        Raises :class:`DrivingVideoError` naming the file when it cannot be decoded, is shorter than
        :meth:`min_driving_frames`, or shows no person; and when the pose is found on fewer frames than
        ``pose.min_detection_rate`` (the pose stage excludes such videos too).
        """
        path, info = self._open_driving(path)
        cfg = self.params.extract
        try:
            frames = [frame for _, frame in iter_frames(path, False, info.native_fps, cfg.fps, cfg.max_frames,
                                                        self.params.limits.max_pixels)]
        except DecodeError as exc:
            raise DrivingVideoError(f"driving video {path} is unreadable: {exc}") from None
        self._require_length(path, len(frames))
        height, width = frames[0].shape[:2]
        if any(f.shape[:2] != (height, width) for f in frames):
            raise DrivingVideoError(f"driving video {path} changes frame size mid-stream; a clip must keep one size")
        picks = np.linspace(0, len(frames) - 1, min(cfg.detect_frames, len(frames))).round().astype(int)
        box, _ = clip_person_box([frames[i] for i in sorted(set(picks.tolist()))])
        if box is None:
            raise DrivingVideoError(f"no person found in the driving video {path} (checked {len(set(picks))} "
                                    "frames): use a video of one person, whole body visible")
        crop_box = crop_box_for_person(box, width, height, cfg.height, cfg.width, cfg.margin)
        crops = [apply_crop(f, crop_box, cfg.height, cfg.width, cfg.pad) for f in frames]
        try:
            pose, keypoints, rate = pose_for_frames(crops, self.params.pose)
        except SkipVideo as exc:
            raise DrivingVideoError(f"driving video {path}: {exc}") from None
        self.backends["pose"] = pose.backend
        layouts = np.stack([self._layout(c, keypoints[t], pose.person_masks[t]) for t, c in enumerate(crops)])
        try:
            plate = background_plate(crops, [layout != BACKGROUND_LABEL for layout in layouts])
        except ValueError as exc:
            raise DrivingVideoError(f"driving video {path}: no background plate: {exc}") from None
        return PreparedDriving(path, crops, keypoints.astype(np.float32), layouts, plate, float(
            min(cfg.fps, info.native_fps) if cfg.fps else info.native_fps), crop_box, rate)

    def driving_stream(self, path: Path | str) -> "StreamedDriving":
        """:meth:`driving` in bounded memory: the video is decoded in passes, never held whole.

        Pass 1 counts the frames and checks their size; pass 2 keeps only the ``extract.detect_frames`` frames
        the person box is found on; pass 3 crops every frame and runs MediaPipe on it in order (tracking mode,
        as :func:`estimate_video`), keeping the keypoints of every frame (T x 25 x 3 floats) but the crops and
        masks of at most ``PLATE_FRAMES`` frames, which are parsed for the background plate. The crops are
        decoded once more, on demand, by :meth:`StreamedDriving.crops`. Same errors as :meth:`driving`.
        """
        path, info = self._open_driving(path)
        cfg = self.params.extract

        def decoded() -> Iterator[np.ndarray]:
            try:
                for _, frame in iter_frames(path, False, info.native_fps, cfg.fps, cfg.max_frames,
                                            self.params.limits.max_pixels):
                    yield frame
            except DecodeError as exc:
                raise DrivingVideoError(f"driving video {path} is unreadable: {exc}") from None

        n_frames, size = 0, None
        for frame in decoded():  # pass 1
            if size is None:
                size = frame.shape[:2]
            elif frame.shape[:2] != size:
                raise DrivingVideoError(f"driving video {path} changes frame size mid-stream; a clip must keep one "
                                        "size")
            n_frames += 1
        self._require_length(path, n_frames)
        height, width = size
        picks = set(evenly_spaced(n_frames, cfg.detect_frames))
        box, _ = clip_person_box([f for k, f in enumerate(decoded()) if k in picks])  # pass 2
        if box is None:
            raise DrivingVideoError(f"no person found in the driving video {path} (checked {len(picks)} "
                                    "frames): use a video of one person, whole body visible")
        crop_box = crop_box_for_person(box, width, height, cfg.height, cfg.width, cfg.margin)
        keep = set(evenly_spaced(n_frames, PLATE_FRAMES))
        crops_iter = (apply_crop(f, crop_box, cfg.height, cfg.width, cfg.pad) for f in decoded())
        keypoints, detected, kept = _stream_pose(crops_iter, self.params.pose, keep)  # pass 3
        rate = detection_rate(detected)
        pcfg = self.params.pose
        if rate < pcfg.min_detection_rate:
            raise DrivingVideoError(f"driving video {path}: person detected on {rate:.0%} of frames, below "
                                    f"pose.min_detection_rate ({pcfg.min_detection_rate:.0%})")
        if pcfg.smoothing_window > 1:
            keypoints = smooth_keypoints(keypoints, pcfg.smoothing_window)
        self.backends["pose"] = backend_name(pcfg.model_complexity)
        plate_crops, plate_people = [], []
        for t in sorted(kept):
            crop, mask = kept[t]
            plate_crops.append(crop)
            plate_people.append(self._layout(crop, keypoints[t], mask) != BACKGROUND_LABEL)
        try:
            plate = background_plate(plate_crops, plate_people)
        except ValueError as exc:
            raise DrivingVideoError(f"driving video {path}: no background plate: {exc}") from None
        fps = float(min(cfg.fps, info.native_fps) if cfg.fps else info.native_fps)
        return StreamedDriving(path, keypoints.astype(np.float32), plate, fps, crop_box, rate, n_frames,
                               lambda: (apply_crop(f, crop_box, cfg.height, cfg.width, cfg.pad) for f in decoded()))

    # -------------------------------------------------------------------------------------------- helpers

    def _open_driving(self, path: Path | str) -> tuple[Path, Any]:
        """``path`` and its container info, or :class:`DrivingVideoError` when it is missing, unreadable or
        declares frames over ``limits.max_pixels``."""
        path = Path(path)
        if not path.is_file():
            raise DrivingVideoError(f"driving video {path} does not exist")
        try:
            return path, source_info(path, False, self.params.limits.max_pixels)
        except DecodeError as exc:
            raise DrivingVideoError(f"driving video {path} is unreadable: {exc}") from None

    def _require_length(self, path: Path, n_frames: int) -> None:
        """:class:`DrivingVideoError` when ``path`` decoded to no frame or fewer than :meth:`min_driving_frames`."""
        minimum = self.min_driving_frames()
        if n_frames == 0:
            raise DrivingVideoError(f"driving video {path} is unreadable: no frame could be decoded (empty, "
                                    "truncated or corrupt file, or an unsupported codec)")
        if n_frames < minimum:
            raise DrivingVideoError(f"driving video {path} is too short: {n_frames} frames, at least {minimum} "
                                    "are needed (extract.min_frames)")

    def _layout(self, rgb: np.ndarray, keypoints: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """ATR parsing of one crop merged to the 6 regions: uint8 (H, W) labels 0..5."""
        labels = self.parser.parse(rgb, keypoints, mask)
        return merge_layout(labels, merge_lookup(self.params.merge.classes)).astype(np.uint8)
