"""The REMOT recurrence over a driving sequence (paper 3.2 "utilize the previous generations", 3.3 inference).

Written once and used by training (``pipeline.training.steps``), evaluation and ``remot transfer``
(``pipeline.inference.generate``), so the networks are trained on exactly the inputs they see when used.
Per driving frame t (tensor conventions of ``remot_models.blocks``)::

    L^_d^t  = harden(LayoutGenerator(L_s, P_d^{t-2..t}, L^_d^{t-2..t-1}))          eq. 2, then one-hot (argmax)
    regions = RegionGenerator(L^_d^t, I_s, L_s, regions^{t-2..t-1})                 eq. 3-5 and 11, GAM inside
    I^_d^t  = WCN(L^_d^{t-2..t}, P_d^{t-2..t}, FG_r^t, FG^{t-2..t-1}, GAM(FG_s), BG, I^_d^{t-1})   eq. 12-15

Every "previous" input is the network's OWN previous output (vid2vid trains on generated previous frames too),
and the Region GAN and WCN receive the Layout GAN's hardened prediction, never the ground-truth layout.

Start of a sequence (:data:`START_RULE`): no real previous frame exists for a new identity, so frame 0 is
generated once from all-zero state, that output becomes both "previous" frames (a person standing still before
the video starts), and frame 0 is generated again from that state. Poses before frame 0 repeat frame 0's pose.

Gradients do not flow through the recurrence: the state fed to the next frame is detached (vid2vid detaches
its previous generated frames as well). Each frame's loss trains the network on the inputs its own earlier
outputs produced, at the memory cost of one frame's graph per frame of the sequence.

Warm-up (``no_grad_frames``): training runs the first frames of a long window without autograd and scores only
the rest, so the scored frames see the state that many frames of the network's own outputs leave behind - the
state of frame 10 of an evaluation clip - at the cost of forward passes only. Trained on 3-frame rollouts only,
the Layout GAN blended 2/3 of every frame from its warped previous layout; over 16 evaluation frames its person
IoU fell from 0.82 to 0.47 and the person kept the first frame's pose (README, "Learning on a CPU").

``nets.region`` / ``nets.wcn`` may be None: the recurrence then stops after that network (training the Layout
GAN needs no Region GAN). Frozen upstream networks (``requires_grad_(False)``) build no autograd graph.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from remot_models.blocks import NUM_PERSON_REGIONS, NUM_REGIONS
from remot_models.layout_gan import LayoutGenerator, LayoutOutput
from remot_models.region_gan import PreparedSource, RegionGenerator, RegionOutput
from remot_models.wcn import CompositionOutput, WholeCompositionNetwork

START_RULE = ("bootstrap-v1: frame 0 generated from zero state, then regenerated with its own first output as "
              "both previous frames; later frames use the networks' own previous outputs")


def harden(layout: torch.Tensor) -> torch.Tensor:
    """(B, 6, H, W) per-pixel distribution -> one-hot of its argmax (the layout passed on and fed back).

    The argmax runs over the last axis of a channels-last copy: the same indices (first maximum on ties) as
    ``argmax(dim=1)``, whose strided reduction over 6 channels took ~10x longer on CPU (a few % of a frame)."""
    labels = layout.movedim(1, -1).contiguous().argmax(dim=-1)
    return F.one_hot(labels, NUM_REGIONS).movedim(-1, 1).to(layout.dtype)


@dataclass
class Generators:
    """The three generators; ``region`` / ``wcn`` None stops the recurrence after the one before."""

    layout: LayoutGenerator
    region: RegionGenerator | None = None
    wcn: WholeCompositionNetwork | None = None


@dataclass
class Previous:
    """The two previous outputs of every network, oldest first, detached."""

    layouts: torch.Tensor      # (B, 2, 6, H, W) hardened layouts
    regions: torch.Tensor      # (B, 2, 5, 3, H, W)
    foregrounds: torch.Tensor  # (B, 2, 3, H, W) WCN foregrounds
    frame: torch.Tensor        # (B, 3, H, W) the previous final frame

    @classmethod
    def zeros(cls, b: int, h: int, w: int, like: torch.Tensor) -> "Previous":
        z = lambda *s: like.new_zeros(s)  # noqa: E731
        return cls(z(b, 2, NUM_REGIONS, h, w), z(b, 2, NUM_PERSON_REGIONS, 3, h, w), z(b, 2, 3, h, w),
                   z(b, 3, h, w))

    def push(self, out: "FrameOutput", still: bool = False) -> "Previous":
        """The state after ``out``; ``still`` makes ``out`` both previous frames (the bootstrap)."""
        def shift(old: torch.Tensor, new: torch.Tensor | None) -> torch.Tensor:
            if new is None:
                return old
            new = new.detach()[:, None]
            return torch.cat([new, new], dim=1) if still else torch.cat([old[:, 1:], new], dim=1)

        regions = out.region.regions if out.region is not None else None
        fg = out.composition.foreground if out.composition is not None else None
        frame = out.composition.output.detach() if out.composition is not None else self.frame
        return Previous(shift(self.layouts, out.layout), shift(self.regions, regions),
                        shift(self.foregrounds, fg), frame)


@dataclass
class FrameOutput:
    """Everything one frame produced; ``layout_out``/``region``/``composition`` keep their autograd graphs."""

    t: int
    layout_out: LayoutOutput
    layout: torch.Tensor                     # (B, 6, H, W) hardened L^_d^t, as passed on
    layouts: torch.Tensor                    # (B, 3, 6, H, W) hardened L^_d^{t-2..t} (the WCN's input)
    poses: torch.Tensor                      # (B, 3, 3, H, W) P_d^{t-2..t}
    region: RegionOutput | None
    composition: CompositionOutput | None


def generate_frame(nets: Generators, prev: Previous, source: torch.Tensor, source_layout: torch.Tensor,
                   poses: torch.Tensor, background: torch.Tensor, t: int = 0,
                   source_features: torch.Tensor | None = None,
                   region_source: PreparedSource | None = None) -> FrameOutput:
    """One step of the recurrence. ``poses``: (B, 3, 3, H, W) = P_d^{t-2..t}; ``source_features``: the Layout
    GAN's E1(L_s), ``region_source``: the Region GAN's ``prepare_source(source, source_layout)``, each computed
    here when None."""
    layout_out = nets.layout(source_layout, poses, prev.layouts, source_features)
    layout = harden(layout_out.layout.detach())
    layouts = torch.cat([prev.layouts, layout[:, None]], dim=1)
    region = composition = None
    if nets.region is not None:
        region = nets.region(layout, source, source_layout, prev.regions, region_source)
        if nets.wcn is not None:
            composition = nets.wcn(layouts, poses, region.foreground, prev.foregrounds, region.aligned_foreground,
                                   background, prev.frame)
    return FrameOutput(t, layout_out, layout, layouts, poses, region, composition)


def generate_sequence(nets: Generators, source: torch.Tensor, source_layout: torch.Tensor,
                      poses: Iterable[torch.Tensor], background: torch.Tensor,
                      no_grad_frames: int = 0) -> Iterator[FrameOutput]:
    """Run the recurrence over driving pose maps ``poses`` (an iterable of (B, 3, H, W), one per frame; a
    (B, T, 3, H, W) tensor's frames via ``poses.unbind(1)``). ``source`` (B, 3, H, W), ``source_layout``
    (B, 6, H, W), ``background`` (B, 3, H, W). Yields one :class:`FrameOutput` per driving frame, so memory is
    flat in the sequence length; :data:`START_RULE` starts it. Frames ``t < no_grad_frames`` are generated
    without autograd (the warm-up, module docstring); the source encoding keeps its graph for the later frames.
    Everything that depends on the source alone (E1(L_s), the Region GAN's source regions and GAM source box) is
    computed once here, before the first frame."""
    b, _, h, w = source.shape
    prev = Previous.zeros(b, h, w, source)
    # E1(L_s) depends on the source alone: once per sequence, not once per frame (one shared autograd node
    # when the Layout GAN trains: the window's single backward accumulates every frame's gradient through it)
    source_features = nets.layout.encode_source(source_layout)
    # the source region images I_s,i and the GAM's source person box: plain functions of the data (no parameters)
    region_source = nets.region.prepare_source(source, source_layout) if nets.region is not None else None
    window: torch.Tensor | None = None
    for t, pose in enumerate(poses):
        window = pose[:, None].repeat(1, 3, 1, 1, 1) if window is None else torch.cat([window[:, 1:], pose[:, None]], 1)
        if t == 0:
            with torch.no_grad():
                prev = prev.push(generate_frame(nets, prev, source, source_layout, window, background,
                                                source_features=source_features, region_source=region_source),
                                 still=True)
        with torch.set_grad_enabled(torch.is_grad_enabled() and t >= no_grad_frames):
            out = generate_frame(nets, prev, source, source_layout, window, background, t, source_features,
                                 region_source)
        prev = prev.push(out)
        yield out


def frozen(module: nn.Module) -> nn.Module:
    """``module`` in eval mode with no trainable parameters (an upstream network of the stage being trained)."""
    return module.eval().requires_grad_(False)
