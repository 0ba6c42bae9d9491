"""Run the three trained REMOT networks end to end over a driving sequence (paper 3.3, "Inference").

The recurrence itself (what each network receives, its own previous outputs, the start of a sequence) is
``remot_models.sequence.generate_sequence``: the same function trains the networks
(``pipeline.training.steps``), so inference feeds them exactly what training did. This module adds the
array <-> tensor conversions, checkpoint loading and per-frame timing.

Checkpoints: ``<checkpoint root>/<network>/final`` for network in layout, region, wcn (``pipeline.core.checkpoint``
format), checked against the params' model config before loading (``check_model_config``).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from pipeline.core import checkpoint as ckpt
from pipeline.core.checkpoint import NETWORKS, build_generator
from pipeline.core.errors import RemotError
from pipeline.core.seeds import init_seed
from pipeline.pose.render import render_pose_map
from remot_models import NUM_REGIONS, LayoutGenerator, RegionGenerator, WholeCompositionNetwork
from remot_models.config import ModelConfig
from remot_models.sequence import START_RULE, Generators, generate_sequence

# Arithmetic of the networks at inference. bf16 runs the Region GAN and the WCN under torch.autocast (convolutions
# and matmuls in bfloat16, other ops as autocast's CPU policy decides) and the Layout GAN in float32
# (_Float32Layout); on CPU their encoders and decoders are moreover held in bfloat16, channels-last
# (_Bfloat16Block): 1.3-1.4x the networks' frames/s in CPU time on this project's AVX512-BF16 CPU (README,
# Benchmarks).
# Training uses float32 on CPU, so bf16 frames approximate the float32 ones, within the tolerance
# tests/test_inference_precision.py asserts.
PRECISIONS = ("fp32", "bf16")


class CheckpointMissing(RemotError):
    """A network's final checkpoint folder is absent or incomplete."""


@dataclass
class Networks:
    """The three generators in eval mode on ``device``, and what was loaded."""

    cfg: ModelConfig
    layout: LayoutGenerator
    region: RegionGenerator
    wcn: WholeCompositionNetwork
    device: torch.device
    folders: dict[str, Path]
    info: dict[str, Any] = field(default_factory=dict)  # per network: step, profile, git revision, vgg19 backend
    # the generators as a precision runs them (_generators), built on first use: later calls reuse them
    prepared: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


def network_folder(checkpoint_root: Path | str, network: str) -> Path:
    return Path(checkpoint_root) / network / "final"


def load_networks(checkpoint_root: Path | str, cfg: ModelConfig, device: torch.device | str = "cpu") -> Networks:
    """Load ``<checkpoint_root>/{layout,region,wcn}/final`` into networks built from ``cfg``.

    Raises :class:`CheckpointMissing` naming the folder and the ``dvc repro train_<network>`` to run, and
    ``BadCheckpoint`` naming every ``model.*`` param on which a checkpoint differs from ``cfg``.
    """
    device = torch.device(device)
    nets = {network: build_generator(network, cfg) for network in NETWORKS}
    folders, info = {}, {}
    for network in NETWORKS:
        folder = network_folder(checkpoint_root, network)
        if not (folder / "state.json").is_file() or not (folder / "modules.safetensors").is_file():
            raise CheckpointMissing(f"no trained {network} checkpoint in {folder}: run `dvc repro train_{network}` "
                                    f"(or `make train`), or pass --checkpoint with a folder holding "
                                    f"{'/final, '.join(NETWORKS)}/final")
        ckpt.check_model_config(folder, cfg.architecture(network), f"`dvc repro train_{network}`")
        ckpt.load_modules(folder, {"generator": nets[network]}, device="cpu")
        meta = ckpt.read_state(folder)
        info[network] = {"folder": str(folder), "step": meta.get("step"), "profile": meta["meta"].get("profile"),
                       "perceptual": (meta["meta"].get("backends") or {}).get("perceptual")}
        folders[network] = folder
    for net in nets.values():
        net.to(device).eval().requires_grad_(False)
    return Networks(cfg, nets["layout"], nets["region"], nets["wcn"], device, folders, info)


def untrained_networks(cfg: ModelConfig, seed: int, device: torch.device | str = "cpu") -> Networks:
    """REMOT's generators at step 0: each initialised exactly as training initialises it from ``train.seed``
    (``pipeline.training.runner``), the evaluation's untrained control."""
    device = torch.device(device)
    nets = {}
    for network in NETWORKS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed(seed, network))
            nets[network] = build_generator(network, cfg).to(device).eval().requires_grad_(False)
    info = {network: {"step": 0, "perceptual": None} for network in NETWORKS}
    return Networks(cfg, nets["layout"], nets["region"], nets["wcn"], device, {}, info)


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
class GeneratedFrame:
    """One frame of :func:`iter_generate`."""

    frame: np.ndarray          # uint8 (H, W, 3) RGB, the final frame I^_d^t
    layout: np.ndarray | None  # uint8 (H, W) generated layout labels 0..5 (None without ``details``)
    coarse: np.ndarray | None  # uint8 (H, W, 3) the Region GAN's foreground FG_r^t (None without ``details``)
    network_seconds: float


class _Float32Layout(torch.nn.Module):
    """The Layout GAN run in float32 inside a bf16 autocast region. Its output is hardened by an argmax, a
    discrete choice that bf16 rounding flips on many pixels and that every later network and frame inherit: with
    it in bf16, 12% of the demo's trained layout pixels differed from float32 over 4 frames (none with it in
    float32, and the frames' mean error fell from 11 to 7 uint8 levels); it is 17% of the networks' time."""

    def __init__(self, layout: LayoutGenerator):
        super().__init__()
        self.layout = layout

    def encode_source(self, source_layout: torch.Tensor) -> torch.Tensor:
        with torch.autocast(source_layout.device.type, enabled=False):
            return self.layout.encode_source(source_layout.float())

    def forward(self, *args):
        with torch.autocast(args[0].device.type, enabled=False):
            return self.layout(*(a.float() if isinstance(a, torch.Tensor) else a for a in args))


class _Bfloat16Block(torch.nn.Module):
    """An encoder or decoder (``remot_models.blocks``) of the Region GAN or the WCN held in bfloat16 and
    channels-last, for ``precision="bf16"`` on CPU: its input is cast once on the way in and its output(s) back to
    float32 on the way out. Under autocast alone the same block ran its convolutions in bfloat16 on NCHW tensors
    (oneDNN's slow layout for 1-27 channels) and cast every activation between float32 (instance norm, ReLU,
    padding, the residual sums) and bfloat16 (each convolution): about a fifth of the bf16 time was those copies.
    Here the norms, ReLUs, paddings and residual sums run in bfloat16 too (the norm's statistics accumulate in
    float32 inside PyTorch's kernel); every convolution still sees bfloat16 inputs and weights, as under autocast,
    so the frames stay within the tolerance of tests/test_inference_precision.py (measured the same error)."""

    def __init__(self, block: torch.nn.Module):
        super().__init__()
        self.block = copy.deepcopy(block).to(dtype=torch.bfloat16, memory_format=torch.channels_last)

    def forward(self, x: torch.Tensor):
        out = self.block(x.to(torch.bfloat16, memory_format=torch.channels_last))
        if isinstance(out, tuple):
            return tuple(o.float() for o in out)
        return out.float()


def _bfloat16_blocks(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose encoders and decoders (direct children) are :class:`_Bfloat16Block`."""
    from remot_models.blocks import Decoder, Encoder, FlowWeightDecoder

    net = copy.copy(net)  # a shallow copy: its own child table, the original's other children (GAM, TAM)
    net._modules = dict(net._modules)
    for name, child in net._modules.items():
        if isinstance(child, (Encoder, Decoder, FlowWeightDecoder)):
            net._modules[name] = _Bfloat16Block(child)
    return net


def _generators(nets: Networks, precision: str) -> Generators:
    """The generators ``precision`` runs, built once per :class:`Networks` (the bf16 copies on CPU)."""
    if precision != "bf16":
        return Generators(nets.layout, nets.region, nets.wcn)
    if "bf16" not in nets.prepared:
        if nets.device.type == "cpu":
            nets.prepared["bf16"] = Generators(_Float32Layout(nets.layout), _bfloat16_blocks(nets.region),
                                               _bfloat16_blocks(nets.wcn))
        else:
            nets.prepared["bf16"] = Generators(_Float32Layout(nets.layout), nets.region, nets.wcn)
    return nets.prepared["bf16"]


def autocast(device: torch.device, precision: str):
    """The autocast context of ``precision`` (:data:`PRECISIONS`) on ``device``; float32 is no autocast."""
    if precision not in PRECISIONS:
        raise RemotError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.inference_mode()
def iter_generate(nets: Networks, source_image: np.ndarray, source_layout: np.ndarray,
                  keypoints: Iterable[np.ndarray], background: np.ndarray,
                  pose_thickness: int = 4, precision: str = "fp32",
                  details: bool = True) -> Iterator[GeneratedFrame]:
    """Generate the source person in the driving poses, on ``background``, one frame at a time.

    ``source_image``: uint8 (H, W, 3) RGB crop; ``source_layout``: uint8 (H, W) labels 0..5; ``keypoints``: an
    iterable of float (25, 3) driving BODY_25 keypoints in crop pixels, one per frame (a (T, 25, 3) array or a
    stream: memory stays flat in the number of frames); ``background``: uint8 (H, W, 3). ``precision``: one of
    :data:`PRECISIONS`. ``details`` False leaves ``layout`` and ``coarse`` of each frame None (``remot transfer``
    writes only the final frame: their device->host copies and argmax are per-frame time it does not need).
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
    cast = autocast(dev, precision)  # refuses an unknown precision before anything is built
    generators = _generators(nets, precision)
    poses = (pose_tensor(np.asarray(kp)[None], h, w, pose_thickness).to(dev) for kp in keypoints)
    frames = generate_sequence(generators, source, src_layout, poses, bg)
    while True:
        started = time.perf_counter()
        with cast:
            out = next(frames, None)
        if out is None:
            return
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        seconds = time.perf_counter() - started
        if not details:
            yield GeneratedFrame(image_array(out.composition.output[0]), None, None, seconds)
            continue
        yield GeneratedFrame(image_array(out.composition.output[0]),
                             out.layout[0].argmax(dim=0).to(torch.uint8).cpu().numpy(),
                             image_array(out.region.foreground[0]), seconds)


def generate_video(nets: Networks, source_image: np.ndarray, source_layout: np.ndarray, keypoints: np.ndarray,
                   background: np.ndarray, pose_thickness: int = 4,
                   on_frame: Callable[[int], None] | None = None, precision: str = "fp32") -> GeneratedVideo:
    """:func:`iter_generate` collected into arrays (evaluation, benchmarks); ``on_frame(t)`` after each frame."""
    frames, layouts, coarse = [], [], []
    seconds = 0.0
    for t, out in enumerate(iter_generate(nets, source_image, source_layout, keypoints, background,
                                          pose_thickness, precision)):
        frames.append(out.frame)
        layouts.append(out.layout)
        coarse.append(out.coarse)
        seconds += out.network_seconds
        if on_frame is not None:
            on_frame(t)
    return GeneratedVideo(np.stack(frames), np.stack(layouts), np.stack(coarse), seconds)
