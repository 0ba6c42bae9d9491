"""Run the three trained REMOT networks end to end over a driving sequence (paper 3.3, "Inference").

Per driving frame t (tensor conventions of ``remot_models.blocks``; batch of one)::

    L^_d^t   = LayoutGenerator(L_s, P_d^{t-2..t}, L^_d^{t-2..t-1})              eq. 2, then one-hot (argmax)
    regions  = RegionGenerator(L^_d^t, I_s, L_s, regions^{t-2..t-1})            eq. 3-5 and 11, GAM inside
    I^_d^t   = WCN(L^_d^{t-2..t}, P_d^{t-2..t}, FG_r^t, FG^{t-2..t-1}, GAM(FG_s), BG, I^_d^{t-1})   eq. 12-15

Each network gets exactly the inputs ``pipeline.training.steps`` gives it in training, with its OWN previous
outputs where training had ground truth:

* layouts: training feeds one-hot ground-truth layouts to all three networks, so the Layout GAN's output is
  made one-hot (argmax over the 6 regions) before it is fed back or passed on;
* previous region images, WCN foregrounds and WCN frames: the networks' own outputs of t-1 and t-2;
* poses before frame 0 (t-2, t-1 at t < 2) repeat frame 0's pose.

Start of a sequence (``START_RULE``): training always starts from REAL previous frames (vid2vid's "real
previous frames"), never from zeros; no real frame exists for a new identity at test time. So we bootstrap:
frame 0 is generated once with all-zero state, that output is taken as both "previous" frames (a person
standing still before the video starts), and frame 0 is generated again from that state. Every later frame
uses the true previous outputs. Transfer and evaluation use the same rule.

Checkpoints: ``<checkpoint root>/<stage>/final`` for stage in layout, region, wcn (``pipeline.training.state``
format), checked against the params' model config before loading (``check_model_config``).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from pipeline.errors import RemotError
from pipeline.pose.render import render_pose_map
from pipeline.training import state as ckpt
from remot_models import NUM_PERSON_REGIONS, NUM_REGIONS, LayoutGenerator, RegionGenerator, WholeCompositionNetwork
from remot_models.config import ModelConfig

STAGES = ("layout", "region", "wcn")
START_RULE = ("bootstrap-v1: frame 0 generated from zero state, then regenerated with its own first output as "
              "both previous frames; later frames use the networks' own previous outputs")


class CheckpointMissing(RemotError):
    """A stage's final checkpoint folder is absent or incomplete."""


@dataclass
class Networks:
    """The three generators in eval mode on ``device``, and what was loaded."""

    cfg: ModelConfig
    layout: LayoutGenerator
    region: RegionGenerator
    wcn: WholeCompositionNetwork
    device: torch.device
    folders: dict[str, Path]
    info: dict[str, Any] = field(default_factory=dict)  # per stage: step, profile, git revision, vgg19 backend


def choose_device(preference: str = "auto") -> torch.device:
    """``auto``: CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if preference == "cuda" and not torch.cuda.is_available():
        raise RemotError("device 'cuda' was asked for but no CUDA device is available: use auto or cpu")
    return torch.device("cuda" if preference in ("auto", "cuda") and torch.cuda.is_available() else "cpu")


def stage_folder(checkpoint_root: Path | str, stage: str) -> Path:
    return Path(checkpoint_root) / stage / "final"


def load_networks(checkpoint_root: Path | str, cfg: ModelConfig, device: torch.device | str = "cpu") -> Networks:
    """Load ``<checkpoint_root>/{layout,region,wcn}/final`` into networks built from ``cfg``.

    Raises :class:`CheckpointMissing` naming the folder and the ``dvc repro train_<stage>`` to run, and
    ``BadCheckpoint`` naming every ``model.*`` param on which a checkpoint differs from ``cfg``.
    """
    device = torch.device(device)
    nets = {"layout": LayoutGenerator(cfg), "region": RegionGenerator(cfg), "wcn": WholeCompositionNetwork(cfg)}
    folders, info = {}, {}
    for stage in STAGES:
        folder = stage_folder(checkpoint_root, stage)
        if not (folder / "state.json").is_file() or not (folder / "modules.safetensors").is_file():
            raise CheckpointMissing(f"no trained {stage} checkpoint in {folder}: run `dvc repro train_{stage}` "
                                    f"(or `make train`), or pass --checkpoint with a folder holding "
                                    f"{'/final, '.join(STAGES)}/final")
        ckpt.check_model_config(folder, cfg.to_dict(), f"`dvc repro train_{stage}`")
        ckpt.load_modules(folder, {"generator": nets[stage]}, device="cpu")
        meta = ckpt.read_state(folder)
        info[stage] = {"folder": str(folder), "step": meta.get("step"), "profile": meta["meta"].get("profile"),
                       "git_revision": meta["meta"].get("git_revision"),
                       "vgg19": (meta["meta"].get("backends") or {}).get("vgg19")}
        folders[stage] = folder
    for net in nets.values():
        net.to(device).eval().requires_grad_(False)
    return Networks(cfg, nets["layout"], nets["region"], nets["wcn"], device, folders, info)


# ------------------------------------------------------------------------------------------------ tensors


def image_tensor(rgb: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W, 3) RGB -> float32 (..., 3, H, W) in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(rgb, -1, -3))).float() / 127.5 - 1.0


def image_array(x: torch.Tensor) -> np.ndarray:
    """float (..., 3, H, W), nominally [-1, 1] (clamped) -> uint8 (..., H, W, 3) RGB."""
    scaled = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8).cpu().numpy()
    return np.moveaxis(scaled, -3, -1)


def one_hot(labels: np.ndarray) -> torch.Tensor:
    """uint8 (..., H, W) labels 0..5 -> float32 (..., 6, H, W) one-hot."""
    labels = torch.from_numpy(np.asarray(labels).astype(np.int64))
    return torch.nn.functional.one_hot(labels, NUM_REGIONS).movedim(-1, -3).float()


def pose_tensor(keypoints: np.ndarray, height: int, width: int, thickness: int) -> torch.Tensor:
    """(T, 25, 3) keypoints -> (T, 3, H, W) OpenPose-coloured pose maps in [-1, 1], as the loader renders them."""
    return torch.stack([image_tensor(render_pose_map(k, height, width, thickness=thickness)) for k in keypoints])


def harden(layout: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) per-pixel distribution -> one-hot of its argmax (the form training feeds)."""
    return torch.nn.functional.one_hot(layout.argmax(dim=1), NUM_REGIONS).movedim(-1, 1).to(layout.dtype)


# ------------------------------------------------------------------------------------------------ generation


@dataclass
class GeneratedVideo:
    """Output of :func:`generate_video`."""

    frames: np.ndarray        # uint8 (T, H, W, 3) RGB, the final frames I^_d^t
    layouts: np.ndarray       # uint8 (T, H, W) generated layout labels 0..5 (argmax of L^_d^t)
    coarse: np.ndarray        # uint8 (T, H, W, 3) the Region GAN's foreground FG_r^t (0 = mid-grey outside)
    network_seconds: float    # wall time inside the three networks (device-synchronised)
    start_rule: str = START_RULE


@dataclass
class _State:
    """The previous two outputs of every network, oldest first."""

    layouts: torch.Tensor      # (1, 2, 6, H, W)
    regions: torch.Tensor      # (1, 2, 5, 3, H, W)
    foregrounds: torch.Tensor  # (1, 2, 3, H, W)
    frame: torch.Tensor        # (1, 3, H, W) the previous final frame

    @classmethod
    def zeros(cls, h: int, w: int, device: torch.device) -> "_State":
        z = lambda *s: torch.zeros(*s, device=device)  # noqa: E731
        return cls(z(1, 2, NUM_REGIONS, h, w), z(1, 2, NUM_PERSON_REGIONS, 3, h, w), z(1, 2, 3, h, w), z(1, 3, h, w))

    @classmethod
    def still(cls, out: "_Step") -> "_State":
        """Both previous frames = ``out`` (the bootstrap's standing-still start)."""
        two = lambda x: torch.stack([x, x], dim=1)  # noqa: E731
        return cls(two(out.layout), two(out.regions), two(out.foreground), out.frame)

    def push(self, out: "_Step") -> "_State":
        shift = lambda old, new: torch.cat([old[:, 1:], new[:, None]], dim=1)  # noqa: E731
        return _State(shift(self.layouts, out.layout), shift(self.regions, out.regions),
                      shift(self.foregrounds, out.foreground), out.frame)


@dataclass
class _Step:
    layout: torch.Tensor      # (1, 6, H, W) one-hot
    regions: torch.Tensor     # (1, 5, 3, H, W)
    coarse: torch.Tensor      # (1, 3, H, W)
    foreground: torch.Tensor  # (1, 3, H, W) WCN foreground
    frame: torch.Tensor       # (1, 3, H, W)


def _step(nets: Networks, state: _State, source: torch.Tensor, source_layout: torch.Tensor,
          poses: torch.Tensor, background: torch.Tensor) -> _Step:
    window = poses.unsqueeze(0)                                                   # (1, 3, 3, H, W)
    layout = harden(nets.layout(source_layout, window, state.layouts).layout)
    coarse = nets.region(layout, source, source_layout, state.regions)
    layouts = torch.cat([state.layouts, layout[:, None]], dim=1)                  # (1, 3, 6, H, W)
    out = nets.wcn(layouts, window, coarse.foreground, state.foregrounds, coarse.aligned_foreground, background,
                   state.frame)
    return _Step(layout, coarse.regions, coarse.foreground, out.foreground, out.output)


@dataclass
class GeneratedFrame:
    """One frame of :func:`iter_generate`."""

    frame: np.ndarray    # uint8 (H, W, 3) RGB, the final frame I^_d^t
    layout: np.ndarray   # uint8 (H, W) generated layout labels 0..5
    coarse: np.ndarray   # uint8 (H, W, 3) the Region GAN's foreground FG_r^t
    network_seconds: float


@torch.no_grad()
def iter_generate(nets: Networks, source_image: np.ndarray, source_layout: np.ndarray,
                  keypoints: Iterable[np.ndarray], background: np.ndarray,
                  pose_thickness: int = 4) -> Iterator[GeneratedFrame]:
    """Generate the source person in the driving poses, on ``background``, one frame at a time.

    ``source_image``: uint8 (H, W, 3) RGB crop; ``source_layout``: uint8 (H, W) labels 0..5; ``keypoints``: an
    iterable of float (25, 3) driving BODY_25 keypoints in crop pixels, one per frame (a (T, 25, 3) array or a
    stream: memory stays flat in the number of frames); ``background``: uint8 (H, W, 3).
    """
    h, w = source_image.shape[:2]
    if source_layout.shape != (h, w) or background.shape != (h, w, 3):
        raise ValueError(f"source {source_image.shape}, layout {source_layout.shape} and background "
                         f"{background.shape} must share one H x W")
    n = nets.cfg.n_downsample
    if h % 2 ** n or w % 2 ** n:
        raise RemotError(f"frames of {h}x{w} do not divide by 2**model.n_downsample = {2 ** n}: set "
                         "extract.height/width to multiples of it")
    dev = nets.device
    source = image_tensor(source_image)[None].to(dev)
    src_layout = one_hot(source_layout)[None].to(dev)
    bg = image_tensor(background)[None].to(dev)

    state = _State.zeros(h, w, dev)
    poses: torch.Tensor | None = None  # the last three pose maps (t-2, t-1, t)
    for t, kp in enumerate(keypoints):
        started = time.perf_counter()
        pose = pose_tensor(np.asarray(kp)[None], h, w, pose_thickness).to(dev)
        poses = pose.repeat(3, 1, 1, 1) if poses is None else torch.cat([poses[1:], pose])
        if t == 0:  # bootstrap (START_RULE)
            state = _State.still(_step(nets, state, source, src_layout, poses, bg))
        out = _step(nets, state, source, src_layout, poses, bg)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - started
        state = state.push(out)
        yield GeneratedFrame(image_array(out.frame[0]), out.layout[0].argmax(dim=0).to(torch.uint8).cpu().numpy(),
                             image_array(out.coarse[0]), seconds)


def generate_video(nets: Networks, source_image: np.ndarray, source_layout: np.ndarray, keypoints: np.ndarray,
                   background: np.ndarray, pose_thickness: int = 4,
                   on_frame: Callable[[int], None] | None = None) -> GeneratedVideo:
    """:func:`iter_generate` collected into arrays (evaluation, benchmarks); ``on_frame(t)`` after each frame."""
    frames, layouts, coarse = [], [], []
    seconds = 0.0
    for t, out in enumerate(iter_generate(nets, source_image, source_layout, keypoints, background,
                                          pose_thickness)):
        frames.append(out.frame)
        layouts.append(out.layout)
        coarse.append(out.coarse)
        seconds += out.network_seconds
        if on_frame is not None:
            on_frame(t)
    return GeneratedVideo(np.stack(frames), np.stack(layouts), np.stack(coarse), seconds)
