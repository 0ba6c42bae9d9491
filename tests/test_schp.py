"""SCHP: official key names, strict checkpoint loading, clear errors, and the inference recipe on real footage.

Real SCHP weights are never on this machine, so the checkpoints here are randomly initialised networks saved
the way SCHP's ``train.py`` saves them (``{"state_dict": {"module.<key>": tensor}}``). They check loading and
the recipe's geometry, never parsing quality.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.core.labels import ATR_LABELS
from pipeline.core.params import validate_params
from pipeline.parsing.schp_parser import affine_transform, flip_permutation, load_schp, person_center_scale
from pipeline.pretrained.schp import SCHP_CHECKPOINTS, ActivatedBatchNorm, AugmentCE2P

# Keys and shapes of the official ResNet-101 AugmentCE2P (networks/AugmentCE2P.py, num_classes=18), as the
# official checkpoint holds them after stripping ``module.``. Note the official spelling "fushion".
OFFICIAL_KEYS_18: dict[str, tuple[int, ...]] = {
    "conv1.weight": (64, 3, 3, 3),
    "bn1.weight": (64,),
    "bn1.running_mean": (64,),
    "conv2.weight": (64, 64, 3, 3),
    "bn2.running_var": (64,),
    "conv3.weight": (128, 64, 3, 3),
    "bn3.bias": (128,),
    "layer1.0.conv1.weight": (64, 128, 1, 1),
    "layer1.0.downsample.0.weight": (256, 128, 1, 1),
    "layer1.0.downsample.1.running_var": (256,),
    "layer2.0.conv2.weight": (128, 128, 3, 3),
    "layer2.3.bn2.weight": (128,),
    "layer3.0.downsample.0.weight": (1024, 512, 1, 1),
    "layer3.22.conv3.weight": (1024, 256, 1, 1),
    "layer3.22.bn3.running_mean": (1024,),
    "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
    "layer4.0.downsample.1.weight": (2048,),
    "layer4.2.conv2.weight": (512, 512, 3, 3),
    "layer4.2.conv3.weight": (2048, 512, 1, 1),
    "layer4.2.bn3.running_var": (2048,),
    "context_encoding.stages.0.1.weight": (512, 2048, 1, 1),
    "context_encoding.stages.0.2.weight": (512,),
    "context_encoding.stages.3.2.running_mean": (512,),
    "context_encoding.bottleneck.0.weight": (512, 4096, 3, 3),
    "context_encoding.bottleneck.1.bias": (512,),
    "edge.conv1.0.weight": (256, 256, 1, 1),
    "edge.conv2.0.weight": (256, 512, 1, 1),
    "edge.conv3.0.weight": (256, 1024, 1, 1),
    "edge.conv3.1.running_var": (256,),
    "edge.conv4.weight": (2, 256, 3, 3),
    "edge.conv4.bias": (2,),
    "edge.conv5.weight": (2, 6, 1, 1),
    "decoder.conv1.0.weight": (256, 512, 1, 1),
    "decoder.conv2.0.weight": (48, 256, 1, 1),
    "decoder.conv2.1.weight": (48,),
    "decoder.conv3.0.weight": (256, 304, 1, 1),
    "decoder.conv3.2.weight": (256, 256, 1, 1),
    "decoder.conv3.3.running_mean": (256,),
    "decoder.conv4.weight": (18, 256, 1, 1),
    "decoder.conv4.bias": (18,),
    "fushion.0.weight": (256, 1024, 1, 1),
    "fushion.1.weight": (256,),
    "fushion.1.running_var": (256,),
    "fushion.3.weight": (18, 256, 1, 1),
    "fushion.3.bias": (18,),
}
OFFICIAL_KEY_COUNT = 603  # conv weights + 4 entries per InPlaceABNSync, no num_batches_tracked


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CI box has 2 shared cores; ResNet-101 at 512 x 512 is the heaviest thing here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    """State dict of a randomly initialised 18-class network (official key names, no prefix).

    Raw random init gives near-constant logits (the deep ResNet washes the input out), which would make the
    recipe tests blind. So the BN scales get random signs (InPlaceABN uses |weight| + eps, which the network
    must reproduce) and the running statistics are set from one train-mode pass over noise, which keeps the
    logits input-dependent.
    """
    torch.manual_seed(0)
    model = AugmentCE2P(num_classes=18)
    for module in model.modules():
        if hasattr(module, "running_var"):
            sign = torch.randint(0, 2, module.weight.shape) * 2 - 1
            module.weight.data.uniform_(0.5, 1.5).mul_(sign)
            module.bias.data.normal_(0, 0.1)
            module.momentum = 1.0  # running stats := this batch's stats
    model.train()
    with torch.no_grad():
        model(F.avg_pool2d(torch.randn(2, 3, 160, 160), 5, stride=1, padding=2) * 3)
    return model.eval().state_dict()


def save_official(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Saves like SCHP's train.py under DataParallel: ``{"state_dict": {"module.<key>": ...}, "cycle_n": n}``."""
    torch.save({"state_dict": {"module." + k: v for k, v in state.items()}, "cycle_n": 3}, path)
    return path


@pytest.fixture(scope="module")
def atr_checkpoint(random_state, tmp_path_factory):
    path = save_official(random_state, tmp_path_factory.mktemp("schp") / SCHP_CHECKPOINTS["atr"].file_name)
    yield path
    path.unlink(missing_ok=True)  # 267 MB: do not leave it in pytest's kept temp dirs


@pytest.fixture(scope="module")
def atr_parser(atr_checkpoint):
    return load_schp(atr_checkpoint, "atr")


def test_state_dict_keys_match_official_names():
    state = AugmentCE2P(num_classes=18).state_dict()
    assert len(state) == OFFICIAL_KEY_COUNT
    assert not [k for k in state if "num_batches_tracked" in k]
    missing = [k for k in OFFICIAL_KEYS_18 if k not in state]
    assert not missing, f"official keys missing from our network: {missing}"
    shapes = {k: tuple(state[k].shape) for k in OFFICIAL_KEYS_18}
    assert shapes == OFFICIAL_KEYS_18


def test_activated_batch_norm_follows_inplace_abn_kernels():
    # InPlaceABN scales by |weight| + eps (its CPU/CUDA kernels), then applies leaky_relu(0.01) or nothing.
    x = torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(2))
    weight, bias = torch.tensor([-2.0, 0.5, 1.0]), torch.tensor([0.1, -0.2, 0.0])
    mean, var = torch.tensor([0.3, -0.1, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    normalised = (x - mean.view(1, 3, 1, 1)) / torch.sqrt(var.view(1, 3, 1, 1) + 1e-5)
    linear = normalised * (weight.abs() + 1e-5).view(1, 3, 1, 1) + bias.view(1, 3, 1, 1)
    for activation, expected in (("none", linear), ("leaky_relu", torch.where(linear > 0, linear, 0.01 * linear))):
        abn = ActivatedBatchNorm(3, activation=activation).eval()
        abn.load_state_dict({"weight": weight, "bias": bias, "running_mean": mean, "running_var": var})
        torch.testing.assert_close(abn(x), expected)


def test_official_checkpoint_loads_strictly_and_gives_full_size_logits(atr_parser, atr_checkpoint, random_state):
    loaded = atr_parser.model.state_dict()
    assert loaded.keys() == random_state.keys()
    assert all(torch.equal(loaded[k], random_state[k]) for k in random_state)
    assert atr_parser.info["backend"] == "schp-atr"
    assert atr_parser.info["sha256"] == hashlib.sha256(atr_checkpoint.read_bytes()).hexdigest()

    x = torch.randn(1, 3, 512, 512, generator=torch.Generator().manual_seed(1))
    logits = atr_parser.forward_logits(x)
    assert logits.shape == (1, 18, 512, 512)
    assert torch.isfinite(logits).all() and logits.std() > 0


def test_bare_state_dict_without_prefix_also_loads(random_state, tmp_path):
    path = tmp_path / "bare.pth"
    torch.save(random_state, path)
    try:
        parser = load_schp(path, "atr")
        assert torch.equal(parser.model.fushion[3].weight, random_state["fushion.3.weight"])
    finally:
        path.unlink()


def test_affine_transform_fits_the_frame_into_the_square_input():
    # A 192 x 256 (w x h) frame into 512 x 512: the box widens to 3:3, so the frame's height fills the input.
    center, scale = person_center_scale(192, 256, aspect_ratio=1.0)
    forward = affine_transform(center, scale, (512, 512))
    inverse = affine_transform(center, scale, (512, 512), inverse=True)
    corners = np.array([[0, 0, 1], [191, 255, 1]], dtype=np.float64).T
    top_left, bottom_right = (forward @ corners).T
    assert top_left[1] == pytest.approx(0, abs=1e-3) and bottom_right[1] == pytest.approx(511, abs=1e-3)
    assert (top_left[0] + bottom_right[0]) / 2 == pytest.approx(255.5, abs=1e-3)  # horizontally centred
    back = inverse @ np.vstack([forward @ corners, np.ones(2)])
    np.testing.assert_allclose(back, corners[:2], atol=1e-3)


@pytest.fixture(scope="module")
def real_frame(footage_clips) -> np.ndarray:
    """First frame of the first shared clip: 256 x 192 x 3 uint8 RGB."""
    frame_path = sorted(next(iter(footage_clips.values())).glob("*.png"))[0]
    return np.asarray(Image.open(frame_path).convert("RGB"))


@pytest.fixture(scope="module")
def real_frame_logits(atr_parser, real_frame) -> np.ndarray:
    return atr_parser.parse_logits(real_frame)


def test_parse_real_frame_gives_atr_labels_of_frame_size(atr_parser, real_frame, real_frame_logits):
    labels = atr_parser.parse(real_frame)
    assert labels.shape == real_frame.shape[:2] and labels.dtype == np.uint8
    assert labels.max() <= len(ATR_LABELS) - 1
    assert real_frame_logits.shape == (18, *real_frame.shape[:2]) and real_frame_logits.dtype == np.float32
    np.testing.assert_array_equal(labels, real_frame_logits.argmax(axis=0))


def test_flip_averaging_makes_parsing_mirror_equivariant(atr_parser, real_frame, real_frame_logits):
    # Parsing the mirrored frame must equal mirroring the parse with left/right classes swapped; this fails
    # if the swap pairs, the flip-back or the centring of the affine transform are wrong.
    logits = real_frame_logits
    mirrored = atr_parser.parse_logits(np.ascontiguousarray(real_frame[:, ::-1]))
    perm = flip_permutation(18, SCHP_CHECKPOINTS["atr"].flip_pairs)
    expected = logits[perm][:, :, ::-1]
    # Not exact: OpenCV's warp rounds sample positions to 1/32 px, so mirrored samples differ slightly.
    assert np.abs(mirrored - expected).mean() < 1e-3 * logits.std()
    # The swap matters: without it the left/right channels disagree far more.
    sided = [9, 10, 12, 13, 14, 15]
    unswapped_error = np.abs(mirrored[sided] - logits[sided][:, :, ::-1]).mean()
    swapped_error = np.abs(mirrored[sided] - expected[sided]).mean()
    assert swapped_error < 0.05 * unswapped_error


def test_without_flip_one_pass_as_simple_extractor(atr_parser, atr_checkpoint, real_frame, real_frame_logits):
    """parse.schp_flip: false is the official simple_extractor.py: one forward pass, no mirrored average."""
    assert validate_params({}).parse.schp_flip is True  # default: the flip average (evaluate.py --flip)
    with pytest.raises(Exception, match="schp_flip"):
        validate_params({"parse": {"schp_flip": "sometimes"}})
    single = load_schp(atr_checkpoint, "atr", flip=False)
    assert single.info["backend"] == "schp-atr-noflip" and atr_parser.info["backend"] == "schp-atr"
    calls = []
    single.model.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    logits = single.parse_logits(real_frame)
    assert calls == [1]                                   # one image, one pass
    assert logits.shape == real_frame_logits.shape and not np.allclose(logits, real_frame_logits)


def test_wrong_key_fails_naming_the_key(random_state, tmp_path):
    state = dict(random_state)
    state["edge.conv4.kernel"] = state.pop("edge.conv4.weight")
    path = save_official(state, tmp_path / "renamed.pth")
    try:
        with pytest.raises(BadCheckpoint) as err:
            load_schp(path, "atr")
    finally:
        path.unlink()
    message = str(err.value)
    assert "edge.conv4.weight" in message and "edge.conv4.kernel" in message and str(path) in message


def test_twenty_class_checkpoint_asked_as_atr_fails_with_class_count(random_state, tmp_path):
    # A LIP-shaped checkpoint: identical except both classifiers have 20 outputs.
    state = dict(random_state)
    for prefix in ("decoder.conv4", "fushion.3"):
        state[f"{prefix}.weight"] = torch.randn(20, 256, 1, 1) * 0.05
        state[f"{prefix}.bias"] = torch.zeros(20)
    path = save_official(state, tmp_path / SCHP_CHECKPOINTS["lip"].file_name)
    try:
        with pytest.raises(BadCheckpoint, match=r"20 classes.*dataset='atr' needs 18"):
            load_schp(path, "atr")
    finally:
        path.unlink()


def test_missing_file_names_file_and_where_to_get_it(tmp_path):
    for dataset in ("atr", "lip"):
        spec = SCHP_CHECKPOINTS[dataset]
        path = tmp_path / spec.file_name
        with pytest.raises(WeightsNotFound) as err:
            load_schp(path, dataset)
        message = str(err.value)
        assert str(path) in message and spec.url in message and "Self-Correction-Human-Parsing" in message


def test_non_checkpoint_file_is_a_bad_checkpoint(tmp_path):
    path = tmp_path / "exp-schp-201908301523-atr.pth"
    path.write_bytes(b"<html>Google Drive virus scan warning</html>")
    with pytest.raises(BadCheckpoint, match="cannot read"):
        load_schp(path, "atr")


def test_parse_rejects_non_uint8_rgb(atr_parser):
    with pytest.raises(ValueError, match="uint8 RGB"):
        atr_parser.parse(np.zeros((8, 8), dtype=np.float32))
