"""vid2vid / pix2pixHD building blocks shared by the REMOT generators, and the flow warp of eq. 2c.

Tensor conventions used across ``remot_models`` (documented once here):

* images: float, (B, 3, H, W), values in [-1, 1]. A region or foreground image is 0 (mid-grey) outside its
  mask, so that region images add up to the foreground (eq. 11) and foreground + masked background compose
  the frame (eq. 15).
* layouts: float, (B, 6, H, W), one-hot or softmax over ``REGIONS`` (channel order below).
* pose maps: float, (B, 3, H, W) in [-1, 1] (OpenPose-coloured limbs on black = -1).
* flow: float, (B, 2, H, W) in pixels, channel 0 = dx, channel 1 = dy, backward-warp convention
  ``out(x, y) = image(x + dx, y + dy)``.
* temporal state is passed in explicitly (outputs at t-1 and t-2); before t = 2 the caller passes zeros.

The generator layout follows vid2vid's ``CompositeGenerator``: a 7x7 stem, ``n_downsample`` stride-2 3x3 convs
(channels doubling), then ``n_blocks - n_blocks // 2`` residual blocks end every encoder, the encoders' outputs
are summed, and every decoder starts with ``n_blocks // 2`` residual blocks before transposed-conv upsampling
and a 7x7 output conv.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from remot_models.config import ModelConfig

# Copy of ``pipeline.core.labels.REGIONS`` (remot_models must not import the data pipeline): channel i of a layout
# is region REGIONS[i]. Keep the two in sync; tests/test_models*.py checks they agree.
REGIONS: tuple[str, ...] = ("head", "top", "bottom", "shoes", "limbs", "background")
NUM_REGIONS = len(REGIONS)          # 6 layout channels
NUM_PERSON_REGIONS = 5              # the first 5 channels are the person (eq. 11 sums them)
BACKGROUND = REGIONS.index("background")


def norm_layer(kind: str, channels: int) -> nn.Module:
    """``instance`` (no affine, as pix2pixHD), ``batch`` or ``none`` (identity)."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected instance | batch | none")


def conv_norm_act(in_ch: int, out_ch: int, kernel: int, stride: int, norm: str,
                  reflect_pad: int = 0) -> nn.Sequential:
    """Conv -> norm -> ReLU. The conv has no bias when a norm follows (it would be cancelled by the mean
    subtraction and get an all-zero gradient)."""
    layers: list[nn.Module] = []
    if reflect_pad:
        layers.append(nn.ReflectionPad2d(reflect_pad))
    layers += [
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=0 if reflect_pad else kernel // 2,
                  bias=norm == "none"),
        norm_layer(norm, out_ch),
        nn.ReLU(inplace=True),
    ]
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """pix2pixHD ``ResnetBlock``: x + (reflect-pad, 3x3 conv, norm, ReLU, reflect-pad, 3x3 conv, norm)(x)."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=norm == "none"),
            norm_layer(norm, channels), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=norm == "none"),
            norm_layer(norm, channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def bottleneck_channels(cfg: ModelConfig) -> int:
    """Channels of every encoder output / decoder input: ``ngf * 2**n_downsample``."""
    return cfg.ngf * 2 ** cfg.n_downsample


class Encoder(nn.Module):
    """(B, in_channels, H, W) -> (B, ngf * 2**n, H / 2**n, W / 2**n) features (vid2vid ``model_down_*``)."""

    def __init__(self, in_channels: int, cfg: ModelConfig):
        super().__init__()
        self.in_channels = in_channels
        self.factor = 2 ** cfg.n_downsample
        layers: list[nn.Module] = [conv_norm_act(in_channels, cfg.ngf, 7, 1, cfg.norm, reflect_pad=3)]
        ch = cfg.ngf
        for _ in range(cfg.n_downsample):
            layers.append(conv_norm_act(ch, ch * 2, 3, 2, cfg.norm))
            ch *= 2
        layers += [ResidualBlock(ch, cfg.norm) for _ in range(cfg.n_blocks - cfg.n_blocks // 2)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"encoder expects (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ValueError(f"H and W must be divisible by 2**n_downsample = {self.factor}, "
                             f"got {tuple(x.shape[-2:])}; resize/crop the frames or lower n_downsample")
        return self.net(x)


class DecoderTrunk(nn.Module):
    """Bottleneck features -> (B, ngf, H, W): n_blocks//2 residual blocks, then transposed-conv upsampling."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        ch = bottleneck_channels(cfg)
        layers: list[nn.Module] = [ResidualBlock(ch, cfg.norm) for _ in range(cfg.n_blocks // 2)]
        for _ in range(cfg.n_downsample):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 3, stride=2, padding=1, output_padding=1, bias=cfg.norm == "none"),
                norm_layer(cfg.norm, ch // 2),
                nn.ReLU(inplace=True),
            ]
            ch //= 2
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def output_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """vid2vid's final layer: reflection pad 3 + 7x7 conv (with bias), no activation."""
    return nn.Sequential(nn.ReflectionPad2d(3), nn.Conv2d(in_channels, out_channels, 7))


class Decoder(nn.Module):
    """Bottleneck features -> (B, out_channels, H, W) pre-activation output (the caller applies tanh/softmax)."""

    def __init__(self, cfg: ModelConfig, out_channels: int):
        super().__init__()
        self.trunk = DecoderTrunk(cfg)
        self.head = output_conv(cfg.ngf, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(x))


# ``cfg.refine``: a network corrects an image it is given instead of drawing one from nothing (the paper's WCN
# "refines the coarse person image"; the Region GAN refines the GAM-aligned source person). Inputs are pulled in
# to +-REFINE_LIMIT before atanh so saturated pixels keep a usable gradient (tanh' = 1 - 0.99^2 = 0.02), at a cost
# of at most 1.3 grey levels before training.
REFINE_LIMIT = 0.99


def refine(base: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``tanh(atanh(base) + residual)``: ``base`` in [-1, 1] corrected in tanh space (a zero residual returns
    ``base``, to REFINE_LIMIT)."""
    return torch.tanh(torch.atanh(base.clamp(-REFINE_LIMIT, REFINE_LIMIT)) + residual)


def refine_probability(prior: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """``sigmoid(logit(prior) + residual)``: a probability map ``prior`` in [0, 1] corrected in logit space."""
    return torch.sigmoid(torch.logit(prior, eps=1.0 - REFINE_LIMIT) + residual)


def zero_head(decoder: Decoder) -> Decoder:
    """Zero ``decoder``'s last conv, so a refining network starts as the identity on what it refines
    (gradients still reach the zeroed weights through their input features)."""
    conv = decoder.head[-1]
    nn.init.zeros_(conv.weight)
    nn.init.zeros_(conv.bias)
    return decoder


class FlowWeightDecoder(nn.Module):
    """vid2vid's flow branch: bottleneck features -> (flow (B,2,H,W) in pixels, weight (B,1,H,W) in (0,1)).

    The flow head output is multiplied by ``cfg.flow_scale`` (vid2vid: 20) so that a unit-scale conv output
    can express motions of tens of pixels.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.trunk = DecoderTrunk(cfg)
        self.flow_head = output_conv(cfg.ngf, 2)
        self.weight_head = output_conv(cfg.ngf, 1)
        self.flow_scale = cfg.flow_scale

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feat = self.trunk(x)
        return self.flow_head(feat) * self.flow_scale, torch.sigmoid(self.weight_head(feat))


def blend_with_warped_previous(raw: torch.Tensor, previous: torch.Tensor, flow: torch.Tensor,
                               weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2c: ``raw * w + Warp(previous, O) * (1 - w)``. Returns (blended output, warped previous)."""
    warped = flow_warp(previous, flow)
    return raw * weight + warped * (1.0 - weight), warped


def flow_warp(image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Backward-warp ``image`` (B, C, H, W) by ``flow`` (B, 2, H, W) in pixels: out(x, y) = image(x+dx, y+dy).

    Bilinear interpolation with border padding (sample positions are clamped to the image, like
    ``F.grid_sample(..., padding_mode="border", align_corners=True)``), differentiable in both inputs.

    We gather the four neighbours ourselves instead of calling ``F.grid_sample``: grid_sample takes positions
    normalised to [-1, 1], and float32 cannot represent integer pixel positions exactly in that range, so a
    zero flow moves values by up to ~1e-4 at 256x192. Here positions stay in pixels, so zero flow is exactly
    the identity and an integer flow moves pixels exactly (the fractional weight is exactly 0).
    Returns a tensor shaped and typed like ``image``.
    """
    if image.dim() != 4 or flow.dim() != 4 or flow.shape[1] != 2:
        raise ValueError(f"flow_warp expects image (B,C,H,W) and flow (B,2,H,W), got {tuple(image.shape)} "
                         f"and {tuple(flow.shape)}")
    if image.shape[0] != flow.shape[0] or image.shape[-2:] != flow.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and flow {tuple(flow.shape)} differ in batch or size")
    b, c, h, w = image.shape
    flow = flow.to(image.dtype)
    ys = torch.arange(h, device=image.device, dtype=image.dtype).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=image.dtype).view(1, 1, w)
    x = (xs + flow[:, 0]).clamp(0, w - 1)
    y = (ys + flow[:, 1]).clamp(0, h - 1)
    x0 = x.detach().floor()
    y0 = y.detach().floor()
    wx = (x - x0).unsqueeze(1)  # (B, 1, H, W) fractional parts carry the gradient w.r.t. flow
    wy = (y - y0).unsqueeze(1)
    x0 = x0.long()
    y0 = y0.long()
    x1 = (x0 + 1).clamp(max=w - 1)
    y1 = (y0 + 1).clamp(max=h - 1)

    flat = image.reshape(b, c, h * w)

    def gather(yi: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        index = (yi * w + xi).view(b, 1, h * w).expand(b, c, h * w)
        return flat.gather(2, index).view(b, c, h, w)

    top = gather(y0, x0) * (1 - wx) + gather(y0, x1) * wx
    bottom = gather(y1, x0) * (1 - wx) + gather(y1, x1) * wx
    return top * (1 - wy) + bottom * wy
