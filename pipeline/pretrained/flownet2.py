"""FlowNet 2.0 (Ilg et al., CVPR 2017) in pure PyTorch, matching NVIDIA/flownet2-pytorch's ``FlowNet2``.

The official implementation needs three custom CUDA extensions (Correlation, Resample2d, ChannelNorm); here they
are written with plain tensor ops so the network runs on CPU and GPU without a build step:

* ``Correlation`` — the FlowNetC cost volume, restricted to the one configuration FlowNetC uses
  (pad 20, kernel 1, max displacement 20, stride1 1, stride2 2): 21 x 21 = 441 output channels, channel index
  ``(dy_index) * 21 + dx_index``, each the channel-mean of ``f1(x) * f2(x + d)`` with zero padding.
* ``Resample2d`` — bilinear backward warp ``out(x) = img(x + flow(x))`` with edge clamping (``grid_sample``).
* ``ChannelNorm`` — the per-pixel L2 norm over channels, (B, C, H, W) -> (B, 1, H, W).

Module attribute names follow the official code exactly, so ``FlowNet2().load_state_dict(ckpt["state_dict"])``
accepts the official ``FlowNet2_checkpoint.pth.tar`` strictly (keys ``flownetc.conv1.0.weight``,
``flownets_1.*``, ``flownets_2.*``, ``flownets_d.*``, ``flownetfusion.*``); :func:`load_flownet2` (the end of
this module) reads it. The flow stage's backend around the network is ``pipeline.flow.flownet2_backend``.

Input of ``FlowNet2.forward``: (B, 3, 2, H, W) float RGB in [0, rgb_max] (rgb_max = 255 for uint8 frames), image 0
at ``[:, :, 0]``; H and W must be multiples of 64. Output: (B, 2, H, W) flow in pixels on image 0's grid such that
image 1 sampled at x + flow(x) matches image 0(x).

``nn.Upsample(mode="bilinear")`` is kept as in the official code, i.e. with PyTorch's current default
``align_corners=False``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn import init

import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint, WeightsNotFound


# ---------------------------------------------------------------------------------------------- building blocks
def conv(batch_norm: bool, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv + LeakyReLU(0.1); with ``batch_norm`` a bias-free conv + BatchNorm (official ``submodules.conv``)."""
    padding = (kernel_size - 1) // 2
    if batch_norm:
        return nn.Sequential(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=False),
            nn.BatchNorm2d(out_planes),
            nn.LeakyReLU(0.1, inplace=True),
        )
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def i_conv(batch_norm: bool, in_planes: int, out_planes: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv without activation (official ``submodules.i_conv``), used before FlowNetSD/Fusion predictions."""
    padding = (kernel_size - 1) // 2
    if batch_norm:
        return nn.Sequential(
            nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True),
            nn.BatchNorm2d(out_planes),
        )
    return nn.Sequential(nn.Conv2d(in_planes, out_planes, kernel_size, stride, padding, bias=True))


def predict_flow(in_planes: int) -> nn.Conv2d:
    return nn.Conv2d(in_planes, 2, kernel_size=3, stride=1, padding=1, bias=True)


def deconv(in_planes: int, out_planes: int) -> nn.Sequential:
    """x2 transposed conv + LeakyReLU(0.1)."""
    return nn.Sequential(
        nn.ConvTranspose2d(in_planes, out_planes, kernel_size=4, stride=2, padding=1, bias=True),
        nn.LeakyReLU(0.1, inplace=True),
    )


def init_official(module: nn.Module) -> None:
    """The official initialisation: Xavier-uniform weights, U(0, 1) biases, for every (transposed) conv.

    Only matters for random-weight runs (speed tests); real use loads the checkpoint over it.
    """
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            if m.bias is not None:
                init.uniform_(m.bias)
            init.xavier_uniform_(m.weight)


class Correlation(nn.Module):
    """FlowNetC correlation layer in plain PyTorch.

    ``forward(f1, f2)`` with f1, f2 (B, C, H, W) returns (B, D*D, H, W), D = 2 * max_displacement // stride2 + 1;
    channel ``(j + r) * D + (i + r)`` (r = max_displacement // stride2) holds
    ``mean_c f1[c, y, x] * f2[c, y + j*stride2, x + i*stride2]``, zero outside f2 — the same values and order as
    the official CUDA kernel. Only kernel_size 1, stride1 1 and pad_size == max_displacement (FlowNetC's setting)
    are implemented.
    """

    def __init__(self, pad_size=20, kernel_size=1, max_displacement=20, stride1=1, stride2=2, corr_multiply=1):
        super().__init__()
        if kernel_size != 1 or stride1 != 1 or pad_size != max_displacement or corr_multiply != 1:
            raise NotImplementedError(
                "only FlowNetC's correlation (kernel_size=1, stride1=1, pad_size=max_displacement, "
                f"corr_multiply=1) is implemented; got kernel_size={kernel_size}, stride1={stride1}, "
                f"pad_size={pad_size}, max_displacement={max_displacement}, corr_multiply={corr_multiply}"
            )
        self.max_displacement = max_displacement
        self.stride2 = stride2

    def forward(self, input1: torch.Tensor, input2: torch.Tensor) -> torch.Tensor:
        height, width = input1.shape[-2:]
        pad = self.max_displacement
        padded2 = F.pad(input2, (pad, pad, pad, pad))
        offsets = range(0, 2 * pad + 1, self.stride2)  # pad + displacement, displacement in [-pad, pad]
        planes = []
        for oy in offsets:  # outer loop over dy, inner over dx: the official channel order
            rows = padded2[:, :, oy : oy + height]
            for ox in offsets:
                planes.append((input1 * rows[:, :, :, ox : ox + width]).mean(dim=1))
        return torch.stack(planes, dim=1)


class Resample2d(nn.Module):
    """Bilinear backward warp: ``forward(img (B,C,H,W), flow (B,2,H,W)) -> img(x + flow(x))``, edges clamped."""

    def forward(self, image: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        _, _, height, width = image.shape
        ys = torch.arange(height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
        xs = torch.arange(width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
        # align_corners=True maps -1/+1 to the centres of the edge pixels, i.e. plain pixel coordinates.
        grid_x = (xs + flow[:, 0]) * (2.0 / max(width - 1, 1)) - 1.0
        grid_y = (ys + flow[:, 1]) * (2.0 / max(height - 1, 1)) - 1.0
        grid = torch.stack((grid_x, grid_y), dim=-1)
        return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


class ChannelNorm(nn.Module):
    """Per-pixel L2 norm over channels: (B, C, H, W) -> (B, 1, H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.linalg.vector_norm(x, ord=2, dim=1, keepdim=True)


# ---------------------------------------------------------------------------------------------- sub-networks
class FlowNetC(nn.Module):
    """Correlation network; input (B, 6, H, W) = two normalised RGB images; returns ``(flow2, ...)`` at 1/4 scale
    (only flow2 in eval mode, flow2..flow6 in training mode), in units of pixels / div_flow."""

    def __init__(self, batch_norm: bool = False, div_flow: float = 20.0):
        super().__init__()
        self.batchNorm = batch_norm
        self.div_flow = div_flow
        self.conv1 = conv(batch_norm, 3, 64, kernel_size=7, stride=2)
        self.conv2 = conv(batch_norm, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(batch_norm, 128, 256, kernel_size=5, stride=2)
        self.conv_redir = conv(batch_norm, 256, 32, kernel_size=1, stride=1)
        self.corr = Correlation(pad_size=20, kernel_size=1, max_displacement=20, stride1=1, stride2=2, corr_multiply=1)
        self.corr_activation = nn.LeakyReLU(0.1, inplace=True)
        self.conv3_1 = conv(batch_norm, 473, 256)  # 32 redirected channels + 441 correlation channels
        self.conv4 = conv(batch_norm, 256, 512, stride=2)
        self.conv4_1 = conv(batch_norm, 512, 512)
        self.conv5 = conv(batch_norm, 512, 512, stride=2)
        self.conv5_1 = conv(batch_norm, 512, 512)
        self.conv6 = conv(batch_norm, 512, 1024, stride=2)
        self.conv6_1 = conv(batch_norm, 1024, 1024)

        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)

        self.predict_flow6 = predict_flow(1024)
        self.predict_flow5 = predict_flow(1026)
        self.predict_flow4 = predict_flow(770)
        self.predict_flow3 = predict_flow(386)
        self.predict_flow2 = predict_flow(194)

        self.upsampled_flow6_to_5 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=True)
        self.upsampled_flow5_to_4 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=True)
        self.upsampled_flow4_to_3 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=True)
        self.upsampled_flow3_to_2 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x1, x2 = x[:, 0:3], x[:, 3:]
        out_conv2a = self.conv2(self.conv1(x1))
        out_conv3a = self.conv3(out_conv2a)
        out_conv3b = self.conv3(self.conv2(self.conv1(x2)))

        out_corr = self.corr_activation(self.corr(out_conv3a, out_conv3b))
        in_conv3_1 = torch.cat((self.conv_redir(out_conv3a), out_corr), 1)

        out_conv3_1 = self.conv3_1(in_conv3_1)
        out_conv4 = self.conv4_1(self.conv4(out_conv3_1))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))

        flow6 = self.predict_flow6(out_conv6)
        concat5 = torch.cat((out_conv5, self.deconv5(out_conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(concat5)
        concat4 = torch.cat((out_conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(concat4)
        concat3 = torch.cat((out_conv3_1, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(concat3)
        concat2 = torch.cat((out_conv2a, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        flow2 = self.predict_flow2(concat2)

        if self.training:
            return flow2, flow3, flow4, flow5, flow6
        return (flow2,)


class FlowNetS(nn.Module):
    """Simple (stacked-input) network; input (B, input_channels, H, W); returns ``(flow2, ...)`` like FlowNetC."""

    def __init__(self, input_channels: int = 12, batch_norm: bool = False):
        super().__init__()
        self.batchNorm = batch_norm
        self.conv1 = conv(batch_norm, input_channels, 64, kernel_size=7, stride=2)
        self.conv2 = conv(batch_norm, 64, 128, kernel_size=5, stride=2)
        self.conv3 = conv(batch_norm, 128, 256, kernel_size=5, stride=2)
        self.conv3_1 = conv(batch_norm, 256, 256)
        self.conv4 = conv(batch_norm, 256, 512, stride=2)
        self.conv4_1 = conv(batch_norm, 512, 512)
        self.conv5 = conv(batch_norm, 512, 512, stride=2)
        self.conv5_1 = conv(batch_norm, 512, 512)
        self.conv6 = conv(batch_norm, 512, 1024, stride=2)
        self.conv6_1 = conv(batch_norm, 1024, 1024)

        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)

        self.predict_flow6 = predict_flow(1024)
        self.predict_flow5 = predict_flow(1026)
        self.predict_flow4 = predict_flow(770)
        self.predict_flow3 = predict_flow(386)
        self.predict_flow2 = predict_flow(194)

        # bias-free in the official FlowNetS (unlike FlowNetC/SD): the checkpoint has no ``.bias`` for these
        self.upsampled_flow6_to_5 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)
        self.upsampled_flow5_to_4 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)
        self.upsampled_flow4_to_3 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)
        self.upsampled_flow3_to_2 = nn.ConvTranspose2d(2, 2, 4, 2, 1, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out_conv2 = self.conv2(self.conv1(x))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4 = self.conv4_1(self.conv4(out_conv3))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))

        flow6 = self.predict_flow6(out_conv6)
        concat5 = torch.cat((out_conv5, self.deconv5(out_conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(concat5)
        concat4 = torch.cat((out_conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(concat4)
        concat3 = torch.cat((out_conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(concat3)
        concat2 = torch.cat((out_conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        flow2 = self.predict_flow2(concat2)

        if self.training:
            return flow2, flow3, flow4, flow5, flow6
        return (flow2,)


class FlowNetSD(nn.Module):
    """Small-displacement network; input (B, 6, H, W); returns ``(flow2, ...)`` like FlowNetC."""

    def __init__(self, batch_norm: bool = False):
        super().__init__()
        self.batchNorm = batch_norm
        self.conv0 = conv(batch_norm, 6, 64)
        self.conv1 = conv(batch_norm, 64, 64, stride=2)
        self.conv1_1 = conv(batch_norm, 64, 128)
        self.conv2 = conv(batch_norm, 128, 128, stride=2)
        self.conv2_1 = conv(batch_norm, 128, 128)
        self.conv3 = conv(batch_norm, 128, 256, stride=2)
        self.conv3_1 = conv(batch_norm, 256, 256)
        self.conv4 = conv(batch_norm, 256, 512, stride=2)
        self.conv4_1 = conv(batch_norm, 512, 512)
        self.conv5 = conv(batch_norm, 512, 512, stride=2)
        self.conv5_1 = conv(batch_norm, 512, 512)
        self.conv6 = conv(batch_norm, 512, 1024, stride=2)
        self.conv6_1 = conv(batch_norm, 1024, 1024)

        self.deconv5 = deconv(1024, 512)
        self.deconv4 = deconv(1026, 256)
        self.deconv3 = deconv(770, 128)
        self.deconv2 = deconv(386, 64)

        self.inter_conv5 = i_conv(batch_norm, 1026, 512)
        self.inter_conv4 = i_conv(batch_norm, 770, 256)
        self.inter_conv3 = i_conv(batch_norm, 386, 128)
        self.inter_conv2 = i_conv(batch_norm, 194, 64)

        self.predict_flow6 = predict_flow(1024)
        self.predict_flow5 = predict_flow(512)
        self.predict_flow4 = predict_flow(256)
        self.predict_flow3 = predict_flow(128)
        self.predict_flow2 = predict_flow(64)

        self.upsampled_flow6_to_5 = nn.ConvTranspose2d(2, 2, 4, 2, 1)
        self.upsampled_flow5_to_4 = nn.ConvTranspose2d(2, 2, 4, 2, 1)
        self.upsampled_flow4_to_3 = nn.ConvTranspose2d(2, 2, 4, 2, 1)
        self.upsampled_flow3_to_2 = nn.ConvTranspose2d(2, 2, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out_conv0 = self.conv0(x)
        out_conv1 = self.conv1_1(self.conv1(out_conv0))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))
        out_conv3 = self.conv3_1(self.conv3(out_conv2))
        out_conv4 = self.conv4_1(self.conv4(out_conv3))
        out_conv5 = self.conv5_1(self.conv5(out_conv4))
        out_conv6 = self.conv6_1(self.conv6(out_conv5))

        flow6 = self.predict_flow6(out_conv6)
        concat5 = torch.cat((out_conv5, self.deconv5(out_conv6), self.upsampled_flow6_to_5(flow6)), 1)
        flow5 = self.predict_flow5(self.inter_conv5(concat5))
        concat4 = torch.cat((out_conv4, self.deconv4(concat5), self.upsampled_flow5_to_4(flow5)), 1)
        flow4 = self.predict_flow4(self.inter_conv4(concat4))
        concat3 = torch.cat((out_conv3, self.deconv3(concat4), self.upsampled_flow4_to_3(flow4)), 1)
        flow3 = self.predict_flow3(self.inter_conv3(concat3))
        concat2 = torch.cat((out_conv2, self.deconv2(concat3), self.upsampled_flow3_to_2(flow3)), 1)
        flow2 = self.predict_flow2(self.inter_conv2(concat2))

        if self.training:
            return flow2, flow3, flow4, flow5, flow6
        return (flow2,)


class FlowNetFusion(nn.Module):
    """Fuses the large- and small-displacement flows; input (B, 11, H, W); returns full-resolution flow (B, 2, H, W)."""

    def __init__(self, batch_norm: bool = False):
        super().__init__()
        self.batchNorm = batch_norm
        self.conv0 = conv(batch_norm, 11, 64)
        self.conv1 = conv(batch_norm, 64, 64, stride=2)
        self.conv1_1 = conv(batch_norm, 64, 128)
        self.conv2 = conv(batch_norm, 128, 128, stride=2)
        self.conv2_1 = conv(batch_norm, 128, 128)

        self.deconv1 = deconv(128, 32)
        self.deconv0 = deconv(162, 16)

        self.inter_conv1 = i_conv(batch_norm, 162, 32)
        self.inter_conv0 = i_conv(batch_norm, 82, 16)

        self.predict_flow2 = predict_flow(128)
        self.predict_flow1 = predict_flow(32)
        self.predict_flow0 = predict_flow(16)

        self.upsampled_flow2_to_1 = nn.ConvTranspose2d(2, 2, 4, 2, 1)
        self.upsampled_flow1_to_0 = nn.ConvTranspose2d(2, 2, 4, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_conv0 = self.conv0(x)
        out_conv1 = self.conv1_1(self.conv1(out_conv0))
        out_conv2 = self.conv2_1(self.conv2(out_conv1))

        flow2 = self.predict_flow2(out_conv2)
        concat1 = torch.cat((out_conv1, self.deconv1(out_conv2), self.upsampled_flow2_to_1(flow2)), 1)
        flow1 = self.predict_flow1(self.inter_conv1(concat1))
        concat0 = torch.cat((out_conv0, self.deconv0(concat1), self.upsampled_flow1_to_0(flow1)), 1)
        return self.predict_flow0(self.inter_conv0(concat0))


# ---------------------------------------------------------------------------------------------- the full stack
class FlowNet2(nn.Module):
    """FlowNet2 = FlowNetC -> FlowNetS -> FlowNetS (large displacements) || FlowNetSD (small), fused.

    ``forward(inputs)``: inputs (B, 3, 2, H, W) float RGB in [0, rgb_max], image 0 = ``inputs[:, :, 0]``,
    H and W multiples of 64. Returns (B, 2, H, W) float flow in pixels, image 0 -> image 1 (image 1 sampled at
    x + flow(x) matches image 0). ``with_bn=False`` matches the official FlowNet2 checkpoint.
    """

    def __init__(
        self, rgb_max: float = 255.0, div_flow: float = 20.0, with_bn: bool = False, init_weights: bool = True
    ):
        super().__init__()
        self.batchNorm = with_bn
        self.div_flow = div_flow
        self.rgb_max = rgb_max

        self.channelnorm = ChannelNorm()

        self.flownetc = FlowNetC(batch_norm=with_bn)
        self.upsample1 = nn.Upsample(scale_factor=4, mode="bilinear")
        self.resample1 = Resample2d()

        self.flownets_1 = FlowNetS(batch_norm=with_bn)
        self.upsample2 = nn.Upsample(scale_factor=4, mode="bilinear")
        self.resample2 = Resample2d()

        self.flownets_2 = FlowNetS(batch_norm=with_bn)

        self.flownets_d = FlowNetSD(batch_norm=with_bn)
        self.upsample3 = nn.Upsample(scale_factor=4, mode="nearest")
        self.upsample4 = nn.Upsample(scale_factor=4, mode="nearest")
        self.resample3 = Resample2d()
        self.resample4 = Resample2d()

        self.flownetfusion = FlowNetFusion(batch_norm=with_bn)

        if init_weights:
            init_official(self)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        if inputs.ndim != 5 or inputs.shape[1] != 3 or inputs.shape[2] != 2:
            raise ValueError(f"FlowNet2 expects (B, 3, 2, H, W), got {tuple(inputs.shape)}")
        if inputs.shape[-2] % 64 or inputs.shape[-1] % 64:
            raise ValueError(f"FlowNet2 needs H and W to be multiples of 64, got {tuple(inputs.shape[-2:])}")
        # Per-sample, per-channel mean over both images, then scale to about [-1, 1] (official normalisation).
        rgb_mean = inputs.reshape(inputs.shape[:2] + (-1,)).mean(dim=-1).view(inputs.shape[:2] + (1, 1, 1))
        x = (inputs - rgb_mean) / self.rgb_max
        x = torch.cat((x[:, :, 0], x[:, :, 1]), dim=1)
        img0, img1 = x[:, :3], x[:, 3:]

        # FlowNetC, then warp image 1 towards image 0 and measure the brightness error left over.
        flownetc_flow = self.upsample1(self.flownetc(x)[0] * self.div_flow)
        resampled_img1 = self.resample1(img1, flownetc_flow)
        norm_diff_img0 = self.channelnorm(img0 - resampled_img1)
        concat1 = torch.cat((x, resampled_img1, flownetc_flow / self.div_flow, norm_diff_img0), dim=1)

        # FlowNetS 1 refines.
        flownets1_flow = self.upsample2(self.flownets_1(concat1)[0] * self.div_flow)
        resampled_img1 = self.resample2(img1, flownets1_flow)
        norm_diff_img0 = self.channelnorm(img0 - resampled_img1)
        concat2 = torch.cat((x, resampled_img1, flownets1_flow / self.div_flow, norm_diff_img0), dim=1)

        # FlowNetS 2 refines again (large-displacement branch).
        flownets2_flow = self.upsample4(self.flownets_2(concat2)[0] * self.div_flow)
        norm_flownets2_flow = self.channelnorm(flownets2_flow)
        diff_flownets2_img1 = self.channelnorm(img0 - self.resample4(img1, flownets2_flow))

        # FlowNetSD (small-displacement branch). The division by div_flow (not multiplication) is what the
        # official code does, and the released fusion weights were trained with it; keep it.
        flownetsd_flow = self.upsample3(self.flownets_d(x)[0] / self.div_flow)
        norm_flownetsd_flow = self.channelnorm(flownetsd_flow)
        diff_flownetsd_img1 = self.channelnorm(img0 - self.resample3(img1, flownetsd_flow))

        concat3 = torch.cat(
            (
                img0,
                flownetsd_flow,
                flownets2_flow,
                norm_flownetsd_flow,
                norm_flownets2_flow,
                diff_flownetsd_img1,
                diff_flownets2_img1,
            ),
            dim=1,
        )
        return self.flownetfusion(concat3)


# ---------------------------------------------------------------------------------------------- loading
FLOWNET2_FILE = "FlowNet2_checkpoint.pth.tar"
FLOWNET2_SOURCE = (
    "NVIDIA/flownet2-pytorch, README section 'Converted Caffe Pre-trained Models' "
    "(https://github.com/NVIDIA/flownet2-pytorch#converted-caffe-pre-trained-models): the 'FlowNet2' [620MB] "
    "Google Drive file https://drive.google.com/file/d/1LLYdnObBYzs7rDYYUCGscuC2nwO7y85I "
    f"(saved as {FLOWNET2_FILE}; note its licence terms)"
)
FLOWNET2_WEIGHTS = wf.WeightsFile("FlowNet2", FLOWNET2_FILE, None, FLOWNET2_SOURCE)  # no published digest


def resolve_flownet2_path(path: Path | str | None) -> Path:
    """The checkpoint file: ``path`` itself, or ``path / FlowNet2_checkpoint.pth.tar`` when ``path`` is a folder.

    ``None`` means "not configured" and resolves to the bare file name, which then is reported as missing.
    """
    if path is None:
        return Path(FLOWNET2_FILE)
    path = Path(path)
    return path / FLOWNET2_FILE if path.is_dir() else path


def _state_dict_from(checkpoint: object, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint: the official ``{"state_dict": ..., "epoch", "best_EPE"}`` or a bare dict."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get("state_dict"), dict):
        checkpoint = checkpoint["state_dict"]
    if not isinstance(checkpoint, dict) or not all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        raise BadCheckpoint(
            f"{path}: expected a FlowNet2 state dict (or the official {{'state_dict': ...}} wrapper), "
            f"got {type(checkpoint).__name__}. Use the official {FLOWNET2_FILE}."
        )
    # Checkpoints saved from nn.DataParallel prefix every key with "module."; that prefix carries no meaning.
    if checkpoint and all(k.startswith("module.") for k in checkpoint):
        checkpoint = {k[len("module."):]: v for k, v in checkpoint.items()}
    return dict(checkpoint)


def _describe_mismatch(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], limit: int = 5) -> str:
    """A short human-readable list of the first missing, unexpected and wrongly shaped keys ("" when none)."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    wrong_shape = [
        f"{k} {tuple(found[k].shape)} != {tuple(expected[k].shape)}"
        for k in expected
        if k in found and tuple(found[k].shape) != tuple(expected[k].shape)
    ]
    parts = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong_shape)):
        if items:
            more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
            parts.append(f"{len(items)} {label}: {', '.join(items[:limit])}{more}")
    return "; ".join(parts)


def load_flownet2(path: Path | str | None, device: str | torch.device = "cpu") -> FlowNet2:
    """Load the official FlowNet2 checkpoint strictly; returns the network in eval mode on ``device`` (float32).

    ``path`` is the checkpoint file or the folder holding ``FlowNet2_checkpoint.pth.tar``.
    Raises ``WeightsNotFound`` when the file is absent (naming where it is published) and ``BadCheckpoint`` when
    it cannot be read or its keys/shapes differ from the network (naming the first differing keys). NVIDIA
    publishes no digest: the file's sha256 is computed (``pipeline.pretrained.weights.verify``) and returned in
    ``model.sha256`` for the record.
    """
    file = resolve_flownet2_path(path)
    if not file.is_file():
        raise WeightsNotFound("FlowNet2", file, FLOWNET2_SOURCE)
    digest = wf.verify(FLOWNET2_WEIGHTS, file)
    try:
        checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for corrupt/foreign files; all mean the same here
        raise BadCheckpoint(
            f"{file}: cannot be read as a weights-only PyTorch checkpoint ({error}). "
            f"Re-download {FLOWNET2_FILE} from {FLOWNET2_SOURCE}."
        ) from error
    state = _state_dict_from(checkpoint, file)

    # Build on the meta device: no 650 MB random initialisation that the checkpoint would overwrite anyway.
    with torch.device("meta"):
        model = FlowNet2(init_weights=False)
    mismatch = _describe_mismatch(model.state_dict(), state)
    if mismatch:
        raise BadCheckpoint(f"{file} does not match FlowNet2 (with_bn=False): {mismatch}")
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.sha256 = digest
    return model.to(device).eval()
