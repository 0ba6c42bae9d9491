"""Flow targets: DIS accuracy on known motion and real footage, the forward-backward check, the pure-PyTorch
FlowNet2 layers and checkpoint loading, RAFT loading, backend selection/fallback and the npz format."""
from __future__ import annotations

import dataclasses
import hashlib
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.flow.base import consistency_mask, warp_image
from pipeline.flow.dis import DisFlowBackend
from pipeline.core.params import validate_params
from pipeline.flow.flownet2_backend import FlowNet2Backend, center_crop_box
from pipeline.flow.select import compute_video_flow, load_flow_npz, make_flow_backend, save_flow_npz
from pipeline.pretrained import raft as raft_weights
from pipeline.pretrained.flownet2 import FLOWNET2_FILE, Correlation, FlowNet2, Resample2d, load_flownet2

torch.set_num_threads(1)


def textured(height: int, width: int, seed: int, sigma: float = 1.5) -> np.ndarray:
    """Smoothed RGB noise in [40, 220]: enough texture everywhere for flow to be well defined."""
    noise = np.random.default_rng(seed).random((height, width, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), sigma)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (40 + smooth * 180).astype(np.uint8)


def shifted_pair(dx: float, dy: float, height: int = 96, width: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """(frame_t, frame_t-1) where the content moved by (dx, dy) from t-1 to t, so the t -> t-1 flow is (-dx, -dy)."""
    margin = 16
    big = textured(height + 2 * margin, width + 2 * margin, seed=3)
    moved = cv2.warpAffine(big, np.float32([[1, 0, dx], [0, 1, dy]]), big.shape[1::-1], flags=cv2.INTER_LINEAR)
    crop = (slice(margin, margin + height), slice(margin, margin + width))
    return moved[crop], big[crop]


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# ------------------------------------------------------------------------------------------------ DIS + warping
@pytest.mark.parametrize("preset", ["ultrafast", "fast", "medium"])
@pytest.mark.parametrize("shift", [(3.0, -2.0), (0.4, 0.7)])
def test_dis_recovers_known_shift(preset, shift):
    current, previous = shifted_pair(*shift)
    flow = DisFlowBackend(preset).compute(current, previous)
    assert flow.shape == (96, 128, 2) and flow.dtype == np.float32
    interior = flow[12:-12, 12:-12]
    epe = np.linalg.norm(interior - np.array([-shift[0], -shift[1]], np.float32), axis=2).mean()
    assert epe < 0.5, f"DIS {preset}: mean end-point error {epe:.3f} px for shift {shift}"


def test_warp_image_follows_the_flow_convention():
    current, previous = shifted_pair(3.0, -2.0)
    true_flow = np.broadcast_to(np.float32([-3.0, 2.0]), current.shape[:2] + (2,)).copy()
    warped = warp_image(previous, true_flow)
    error = np.abs(warped.astype(np.float32) - current)[8:-8, 8:-8].mean()
    unwarped = np.abs(previous.astype(np.float32) - current)[8:-8, 8:-8].mean()
    assert error < 1.0 < unwarped / 5


def test_dis_flow_explains_real_motion(footage_clips):
    backend = DisFlowBackend("medium")
    for clip, folder in footage_clips.items():
        for t in (5, 17, 29):
            current, previous = read_rgb(folder / f"{t:05d}.png"), read_rgb(folder / f"{t - 1:05d}.png")
            to_previous = backend.compute(current, previous)
            valid = consistency_mask(to_previous, backend.compute(previous, current)) > 0
            assert valid.mean() > 0.4, f"{clip} frame {t}: only {valid.mean():.0%} of pixels pass the fw-bw check"
            warped_error = np.abs(warp_image(previous, to_previous).astype(np.float32) - current).mean(2)[valid].mean()
            unwarped_error = np.abs(previous.astype(np.float32) - current).mean(2)[valid].mean()
            assert warped_error < 0.7 * unwarped_error, (
                f"{clip} frame {t}: warped error {warped_error:.2f} vs unwarped {unwarped_error:.2f}"
            )


# ------------------------------------------------------------------------------------------------ consistency
def moving_square(x_prev: int, x_cur: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame_t, frame_t-1): a textured 32 px square moves right from x_prev to x_cur over a static background."""
    background, square = textured(96, 128, seed=0), textured(32, 32, seed=1)
    frames = []
    for x0 in (x_cur, x_prev):
        frame = background.copy()
        frame[32:64, x0 : x0 + 32] = square
        frames.append(frame)
    return frames[0], frames[1]


def test_consistency_mask_marks_disocclusion_with_exact_flows():
    # Square at x in [40, 72) at t-1, [50, 82) at t. Exact flows: t -> t-1 is -10 on the square (in t), 0 elsewhere;
    # t-1 -> t is +10 on the square (in t-1). Background at x in [40, 50) is visible at t but hidden at t-1.
    forward = np.zeros((96, 128, 2), np.float32)
    forward[32:64, 50:82, 0] = -10
    backward = np.zeros((96, 128, 2), np.float32)
    backward[32:64, 40:72, 0] = 10
    valid = consistency_mask(forward, backward)
    assert valid.dtype == np.float32 and set(np.unique(valid)) <= {0.0, 1.0}
    assert valid[32:64, 40:50].max() == 0, "disoccluded strip must be invalid"
    assert valid[32:64, 52:80].min() == 1 and valid[:, 90:].min() == 1 and valid[:30].min() == 1
    # A flow pointing out of the frame has no correspondence either.
    out = np.zeros_like(forward)
    out[:, :4, 0] = -6
    assert consistency_mask(out, np.zeros_like(out))[:, :4].max() == 0


def test_consistency_mask_marks_disocclusion_with_dis():
    current, previous = moving_square(x_prev=40, x_cur=50)
    backend = DisFlowBackend("medium")
    valid = consistency_mask(backend.compute(current, previous), backend.compute(previous, current))
    strip = valid[36:60, 42:48]  # inside the disoccluded strip, away from its fuzzy edges
    assert strip.mean() < 0.3, f"disoccluded strip {strip.mean():.0%} valid"
    assert valid[:, 100:].mean() > 0.95 and valid[:24].mean() > 0.95


# ------------------------------------------------------------------------------------------------ FlowNet2 layers
def test_correlation_matches_its_definition():
    torch.manual_seed(0)
    first, second = torch.randn(1, 3, 5, 6), torch.randn(1, 3, 5, 6)
    result = Correlation()(first, second)
    assert result.shape == (1, 441, 5, 6)
    expected = torch.zeros_like(result)
    for j in range(-10, 11):  # official channel order: (dy index) * 21 + (dx index), displacement = 2 * index
        for i in range(-10, 11):
            for y in range(5):
                for x in range(6):
                    if 0 <= y + 2 * j < 5 and 0 <= x + 2 * i < 6:
                        dot = (first[0, :, y, x] * second[0, :, y + 2 * j, x + 2 * i]).sum() / 3
                        expected[0, (j + 10) * 21 + i + 10, y, x] = dot
    torch.testing.assert_close(result, expected)


def test_resample2d_matches_warp_image():
    image = textured(24, 32, seed=5)
    flow = np.random.default_rng(2).normal(0, 3, (24, 32, 2)).astype(np.float32)
    expected = warp_image(image.astype(np.float32), flow)
    result = Resample2d()(
        torch.from_numpy(image).permute(2, 0, 1)[None].float(), torch.from_numpy(flow).permute(2, 0, 1)[None]
    )
    difference = np.abs(result[0].permute(1, 2, 0).numpy() - expected)
    # cv2.remap quantises interpolation weights to 1/32 px, so single values differ by up to ~1 grey level.
    assert difference.max() < 1.0 and difference.mean() < 0.2


def test_flownet2_has_the_official_parameters():
    with torch.device("meta"):
        model = FlowNet2(init_weights=False)
    keys = model.state_dict().keys()
    # 162,518,834 is the parameter count NVIDIA/flownet2-pytorch states for FlowNet2.
    assert sum(p.numel() for p in model.parameters()) == 162_518_834
    official_keys = (
        "flownetc.conv1.0.weight", "flownetc.conv_redir.0.bias", "flownetc.upsampled_flow6_to_5.bias",
        "flownets_1.conv1.0.weight", "flownets_2.predict_flow2.weight", "flownets_d.inter_conv2.0.weight",
        "flownetfusion.predict_flow0.bias",
    )
    for key in official_keys:
        assert key in keys, key
    assert "flownets_1.upsampled_flow6_to_5.bias" not in keys  # bias-free in the official FlowNetS


# ------------------------------------------------------------------------------------------------ FlowNet2 loading
@pytest.fixture(scope="module")
def random_flownet2_checkpoint(tmp_path_factory) -> Path:
    """Randomly initialised FlowNet2 saved like the official file: ``{"state_dict": ..., "epoch", "best_EPE"}``."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("flownet2") / FLOWNET2_FILE
    torch.save({"epoch": 0, "state_dict": FlowNet2().state_dict(), "best_EPE": 1e10}, path)
    return path


@pytest.fixture(scope="module")
def flownet2_backend(random_flownet2_checkpoint):
    """The backend ``make_flow_backend`` builds from that checkpoint (loaded once: it is 650 MB)."""
    backend, _ = make_flow_backend("flownet2", random_flownet2_checkpoint.parent)
    return backend


def test_flownet2_checkpoint_loads_strictly_and_runs(random_flownet2_checkpoint, flownet2_backend):
    assert flownet2_backend.name == "flownet2"
    assert flownet2_backend.info["weights"] == str(random_flownet2_checkpoint)
    # NVIDIA publishes no digest: the file's sha256 is recorded
    assert flownet2_backend.info["sha256"] == hashlib.sha256(random_flownet2_checkpoint.read_bytes()).hexdigest()
    saved = torch.load(random_flownet2_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    loaded = flownet2_backend.model.state_dict()
    for key in ("flownetc.conv1.0.weight", "flownetfusion.predict_flow0.bias"):
        torch.testing.assert_close(loaded[key], saved[key])

    current, previous = shifted_pair(3.0, -2.0, height=256, width=192)
    start = time.perf_counter()
    flow = flownet2_backend.compute(current, previous)
    seconds = time.perf_counter() - start
    print(f"\nFlowNet2 (random weights) forward at 256x192 on CPU, 1 thread: {seconds:.2f} s")
    assert flow.shape == (256, 192, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


def test_flownet2_pads_sizes_that_are_not_multiples_of_64(flownet2_backend):
    flow = flownet2_backend.compute(*shifted_pair(1.0, 1.0, height=70, width=90))
    assert flow.shape == (70, 90, 2) and np.isfinite(flow).all()
    assert flownet2_backend.coverage(70, 90) is None  # pad (the default): every pixel has a flow


def test_flownet2_crop_is_the_official_centre_crop_and_marks_the_rest_invalid(flownet2_backend):
    """flow.flownet2_fit: crop = NVIDIA's main.py (StaticCenterCrop to the largest multiples of 64)."""
    assert validate_params({}).flow.flownet2_fit == "pad"
    with pytest.raises(Exception, match="flownet2_fit"):
        validate_params({"flow": {"flownet2_fit": "resize"}})
    assert center_crop_box(150, 100) == (slice(11, 139), slice(18, 82))  # (150-128)//2, (100-64)//2
    cropped = FlowNet2Backend(flownet2_backend.model, fit="crop", weights_path=Path(FLOWNET2_FILE))
    assert cropped.name == "flownet2-crop" and cropped.info["fit"] == "crop to multiples of 64"
    current, previous = shifted_pair(1.0, 1.0, height=150, width=100)
    flow = cropped.compute(current, previous)
    rows, cols = center_crop_box(150, 100)
    inside = np.zeros((150, 100), bool)
    inside[rows, cols] = True
    assert flow.shape == (150, 100, 2) and (flow[~inside] == 0).all()
    # the crop's flow is the network's on the cropped frames, exactly what main.py feeds it
    direct = FlowNet2Backend(flownet2_backend.model).compute(current[rows, cols], previous[rows, cols])
    np.testing.assert_array_equal(flow[rows, cols], direct)
    _, valid = compute_video_flow([previous, current], cropped)
    assert not valid[1, 0][~inside].any()
    assert np.array_equal(cropped.coverage(150, 100), inside)
    # where the sides are multiples of 64 the two fits agree
    frames = shifted_pair(1.0, 1.0, height=128, width=64)
    np.testing.assert_array_equal(cropped.compute(*frames), FlowNet2Backend(flownet2_backend.model).compute(*frames))


def cheap_flownet2_state() -> dict[str, torch.Tensor]:
    """Correctly shaped FlowNet2 tensors that cost almost no disk: each is one zero broadcast to its shape."""
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in FlowNet2(init_weights=False).state_dict().items()}
    return {k: torch.zeros(1).expand(shape) for k, shape in shapes.items()}


def test_flownet2_checkpoint_with_missing_key_is_rejected(tmp_path):
    state = cheap_flownet2_state()
    del state["flownets_2.conv3_1.0.weight"]
    path = tmp_path / FLOWNET2_FILE
    torch.save({"state_dict": state}, path)
    with pytest.raises(BadCheckpoint, match=r"1 missing: flownets_2\.conv3_1\.0\.weight"):
        load_flownet2(path)


def test_flownet2_checkpoint_with_wrong_shape_or_garbage_is_rejected(tmp_path):
    state = cheap_flownet2_state()
    state["flownetc.conv1.0.weight"] = torch.zeros(64, 6, 7, 7)
    torch.save({"state_dict": state}, tmp_path / "wrong.pth")
    with pytest.raises(BadCheckpoint, match=r"wrong shape: flownetc\.conv1\.0\.weight"):
        load_flownet2(tmp_path / "wrong.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(BadCheckpoint, match="garbage.pth"):
        load_flownet2(tmp_path / "garbage.pth")


def test_missing_flownet2_weights_fall_back_to_dis(tmp_path):
    with pytest.raises(WeightsNotFound) as missing:
        load_flownet2(tmp_path)
    message = str(missing.value)
    assert FLOWNET2_FILE in message and "NVIDIA/flownet2-pytorch" in message

    with pytest.warns(UserWarning, match=FLOWNET2_FILE):
        backend, notes = make_flow_backend("auto", tmp_path, dis_preset="fast")
    assert isinstance(backend, DisFlowBackend) and backend.name == "opencv-dis-fast"
    assert any("opencv-dis-fast" in note and "flownet2" in note for note in notes)
    # Named explicitly, FlowNet2 without its weights is an error naming the file and the way out, not DIS.
    with pytest.raises(WeightsNotFound, match="set it to 'auto'") as explicit:
        make_flow_backend("flownet2", tmp_path)
    assert FLOWNET2_FILE in str(explicit.value)

    requested, _ = make_flow_backend("dis", None, dis_preset="ultrafast")
    assert requested.name == "opencv-dis-ultrafast"
    with pytest.raises(ValueError, match="unknown flow backend"):
        make_flow_backend("pwcnet", None)


# ------------------------------------------------------------------------------------------------ RAFT
def test_raft_small_weights_load_and_run(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    from pipeline.pretrained.raft import load_raft

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty-hub"))  # only tmp_path may provide weights
    with pytest.raises(WeightsNotFound, match="raft_large_C_T_SKHT_V2-ff5fadd5.pth"):
        make_flow_backend("raft", tmp_path)  # named explicitly: no silent fallback

    torch.manual_seed(0)
    saved = raft_small(weights=None, progress=False).state_dict()
    torch.save(saved, tmp_path / "raft_small_C_T_V2-01064c6d.pth")
    with pytest.raises(BadCheckpoint, match="01064c6d"):  # random weights are not torchvision's file
        make_flow_backend("raft", tmp_path)
    name = "raft_small_C_T_V2-01064c6d.pth"
    digest = hashlib.sha256((tmp_path / name).read_bytes()).hexdigest()
    monkeypatch.setitem(raft_weights.RAFT_WEIGHTS, name, dataclasses.replace(raft_weights.RAFT_WEIGHTS[name],
                                                                             sha256=digest[:8]))
    backend, _ = make_flow_backend("raft", tmp_path)
    assert backend.name == "raft-small"
    for key in list(saved)[:3]:
        torch.testing.assert_close(backend.model.state_dict()[key], saved[key])
    with pytest.raises(WeightsNotFound, match="raft_large_C_T_SKHT_V2"):  # an explicit file is not substituted
        load_raft(tmp_path / "raft_large_C_T_SKHT_V2-ff5fadd5.pth")
    backend.num_flow_updates = 2  # random weights: only shapes and plumbing are checked, keep it quick
    flow = backend.compute(*shifted_pair(2.0, 1.0, height=100, width=124))
    assert flow.shape == (100, 124, 2) and flow.dtype == np.float32 and np.isfinite(flow).all()


# ------------------------------------------------------------------------------------------------ video + npz
def test_video_flow_round_trips_through_npz(footage_clips, tmp_path):
    folder = footage_clips["romp_fitness"] if "romp_fitness" in footage_clips else next(iter(footage_clips.values()))
    frames = [read_rgb(folder / f"{t:05d}.png") for t in range(3)]
    backend = DisFlowBackend("fast")
    flow, valid = compute_video_flow(frames, backend)
    assert flow.shape == (3, 2, 256, 192) and flow.dtype == np.float16
    assert valid.shape == (3, 1, 256, 192) and valid.dtype == np.uint8
    assert not flow[0].any() and not valid[0].any()
    assert valid[1:].mean() > 0.4 and set(np.unique(valid)) <= {0, 1}
    direct = backend.compute(frames[2], frames[1]).transpose(2, 0, 1)
    np.testing.assert_allclose(flow[2].astype(np.float32), direct, atol=0.02, rtol=1e-3)

    path = tmp_path / "flow" / "video.npz"
    save_flow_npz(path, flow, valid, backend.name)
    assert sorted(p.name for p in path.parent.iterdir()) == ["video.npz"]  # no temp file left behind
    loaded_flow, loaded_valid, name = load_flow_npz(path)
    np.testing.assert_array_equal(loaded_flow, flow)
    np.testing.assert_array_equal(loaded_valid, valid)
    assert name == "opencv-dis-fast"
