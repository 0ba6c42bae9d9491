"""pipeline.pretrained.vgg19: strict loading of torchvision's official VGG19 file, and the announced fallback."""
from __future__ import annotations

import warnings

import pytest
import torch
import torchvision

from pipeline.core.errors import BadCheckpoint
from pipeline.pretrained.vgg19 import VGG19_FILENAME, VGG19_URL, load_vgg19


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


def test_official_file_loads_strictly(tmp_path):
    state = fake_official_state_dict(seed=1)
    torch.save(state, tmp_path / VGG19_FILENAME)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # a found checkpoint must not warn
        vgg, info = load_vgg19(tmp_path)          # a folder holding the official file name
    assert info == {"vgg19": "torchvision-imagenet", "path": str(tmp_path / VGG19_FILENAME)}
    loaded = vgg.state_dict()
    # VGG19Features keeps torchvision's features[:30] (conv1_1 .. conv5_1) under the same key names
    assert set(loaded) == {k for k in state if k.startswith("features.") and int(k.split(".")[1]) < 30}
    assert len(loaded) == 26
    assert all(torch.equal(loaded[k], state[k]) for k in loaded)
    _, info_file = load_vgg19(tmp_path / VGG19_FILENAME)   # or the file itself
    assert info_file["vgg19"] == "torchvision-imagenet"


def test_hub_cache_is_searched(_isolated_hub_cache):
    (_isolated_hub_cache / "checkpoints").mkdir()
    torch.save(fake_official_state_dict(seed=2), _isolated_hub_cache / "checkpoints" / VGG19_FILENAME)
    _, info = load_vgg19(None)
    assert info["vgg19"] == "torchvision-imagenet"


def test_wrong_keys_are_a_clear_error(tmp_path):
    state = fake_official_state_dict(seed=3)
    del state["features.0.bias"]
    torch.save(state, tmp_path / VGG19_FILENAME)
    with pytest.raises(BadCheckpoint, match="features.0.bias"):
        load_vgg19(tmp_path)


def test_missing_file_warns_and_falls_back_to_seeded_random_init(tmp_path):
    torch.manual_seed(42)
    before = torch.get_rng_state()
    with pytest.warns(UserWarning, match=VGG19_FILENAME) as record:
        vgg, info = load_vgg19(tmp_path, seed=0)
    assert VGG19_URL in str(record[0].message)
    assert info["vgg19"] == "random-init(seed=0)" and VGG19_URL in info["reason"]
    assert torch.equal(torch.get_rng_state(), before)          # the caller's RNG is untouched
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        reference = torchvision.models.vgg19(weights=None).features[0].weight
    assert torch.equal(vgg.features[0].weight, reference)      # seeded, so reproducible
