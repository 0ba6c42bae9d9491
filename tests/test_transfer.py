"""`remot transfer` end to end on the shared real footage with a tiny checkpoint, and its error cases: each
gives a clear message naming the file (or param) at fault and leaves no output file."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from pipeline.cli import main as cli_main
from pipeline.core import checkpoint as ckpt
from pipeline.core.checkpoint import NETWORKS
from pipeline.core.errors import BadCheckpoint
from pipeline.core.params import Params
from pipeline.inference.generate import CheckpointMissing
from pipeline.inference.prepare import DrivingVideoError, NoPersonError
from pipeline.inference.transfer import run_transfer
from pipeline.inference.video_io import count_frames, read_video, write_mp4
from remot_models import LayoutGenerator, RegionGenerator, WholeCompositionNetwork
from remot_models.config import ModelConfig

torch.set_num_threads(1)


def save_initialised_checkpoint(root: Path, cfg: ModelConfig, profile: str = "tiny", seed: int = 0) -> Path:
    """Freshly initialised generators saved under the real final-checkpoint layout ``root/<stage>/final``."""
    torch.manual_seed(seed)
    nets = {"layout": LayoutGenerator(cfg), "region": RegionGenerator(cfg), "wcn": WholeCompositionNetwork(cfg)}
    for stage in NETWORKS:
        folder = root / stage / "final"
        folder.mkdir(parents=True, exist_ok=True)
        # "stage", the key checkpoints named their network under before it was "network": they must still load
        state = ckpt.TrainingState(meta={"stage": stage, "profile": profile, "model_config": cfg.to_dict()})
        ckpt.write_checkpoint_files(folder, state, {"generator": nets[stage]}, {}, {})
    return root


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return save_initialised_checkpoint(tmp_path_factory.mktemp("ckpt"), ModelConfig.from_profile("tiny"))


@pytest.fixture(scope="module")
def inputs(footage_dir: Path) -> tuple[Path, Path]:
    return footage_dir / "sources" / "ipercore_akun1_f0195.png", footage_dir / "videos" / "romp_fitness.mp4"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_transfer_cli_writes_driving_length_video_at_crop_size(tiny_checkpoint, inputs, tmp_path, capsys):
    source, driving = inputs
    (tmp_path / "params.yaml").write_text("data_root: data\n")
    out = tmp_path / "out" / "dance.mp4"
    rc = cli_main(["--params", str(tmp_path / "params.yaml"), "transfer", "--source", str(source), "--driving",
                   str(driving), "--out", str(out), "--checkpoint", str(tiny_checkpoint), "--quiet"])
    assert rc == 0
    frames, fps = read_video(out)
    driving_frames, driving_fps = read_video(driving)
    assert len(frames) == len(driving_frames) == 32
    assert frames[0].shape == (256, 192, 3)
    assert fps == pytest.approx(driving_fps, rel=1e-3)
    assert leftovers(out.parent) == ["dance.mp4"]  # no temporary left behind
    # the frames follow the driving motion: not one frame repeated
    assert np.abs(frames[0].astype(int) - frames[-1].astype(int)).mean() > 0.5
    printed = capsys.readouterr().out
    assert "32 frames, 192x256" in printed and "frames/s" in printed and "background plate" in printed
    assert "parser offline" in printed or "parser schp" in printed


def test_no_person_in_source_names_the_file(tiny_checkpoint, inputs, tmp_path):
    flat = tmp_path / "flat.png"
    cv2.imwrite(str(flat), np.full((256, 192, 3), 128, np.uint8))
    out = tmp_path / "out.mp4"
    with pytest.raises(NoPersonError, match="flat.png"):
        run_transfer(Params(), tmp_path, flat, inputs[1], out, checkpoint=tiny_checkpoint, progress=False)
    assert not out.exists() and leftovers(tmp_path) == ["flat.png"]


def test_unreadable_or_short_driving_video_is_named(tiny_checkpoint, inputs, footage_dir, tmp_path):
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video" * 100)
    out = tmp_path / "out.mp4"
    with pytest.raises(DrivingVideoError, match="broken.mp4.*unreadable"):
        run_transfer(Params(), tmp_path, inputs[0], broken, out, checkpoint=tiny_checkpoint, progress=False)
    assert not out.exists()

    clip = sorted((footage_dir / "clips" / "romp_fitness").glob("*.png"))[:4]
    short = write_mp4(tmp_path / "short.mp4", [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in clip],
                      25.0)
    assert count_frames(short) == 4
    with pytest.raises(DrivingVideoError, match=r"short.mp4 is too short: 4 frames, at least 8"):
        run_transfer(Params(), tmp_path, inputs[0], short, out, checkpoint=tiny_checkpoint, progress=False)
    assert not out.exists() and leftovers(tmp_path) == ["broken.mp4", "short.mp4"]


def test_missing_checkpoint_names_folder_and_command(inputs, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    empty = tmp_path / "models"
    empty.mkdir()
    with pytest.raises(CheckpointMissing) as err:
        run_transfer(Params(), tmp_path, inputs[0], inputs[1], out, checkpoint=empty, progress=False)
    assert str(empty / "layout" / "final") in str(err.value) and "dvc repro train_layout" in str(err.value)
    # the CLI prints it as an error without a traceback and exits 2
    (tmp_path / "params.yaml").write_text("data_root: data\n")
    rc = cli_main(["--params", str(tmp_path / "params.yaml"), "transfer", "--source", str(inputs[0]),
                   "--driving", str(inputs[1]), "--out", str(out), "--quiet"])
    assert rc == 2
    assert "dvc repro train_layout" in capsys.readouterr().err
    assert not out.exists()


def test_checkpoint_of_another_model_config_names_the_param(inputs, tmp_path):
    other = save_initialised_checkpoint(tmp_path / "other", ModelConfig.from_profile("tiny", ngf=4))
    out = tmp_path / "out.mp4"
    with pytest.raises(BadCheckpoint) as err:
        run_transfer(Params(), tmp_path, inputs[0], inputs[1], out, checkpoint=other, progress=False)
    message = str(err.value)
    assert "model.ngf: checkpoint 4 vs params 8" in message and "dvc repro train_layout" in message
    assert not out.exists()


def test_loss_weights_do_not_make_a_checkpoint_incompatible(tmp_path):
    """A checkpoint trained with other loss knobs (they build no layer) loads; one of another architecture does not."""
    from pipeline.inference.generate import load_networks

    cfg = ModelConfig.from_profile("tiny")
    trained = save_initialised_checkpoint(tmp_path / "a", ModelConfig.from_profile("tiny", lambda_adv=0.1,
                                                                                    lambda_feat=5.0))
    assert load_networks(trained, cfg).cfg == cfg
    assert "lambda_adv" not in cfg.architecture() and "ngf" in cfg.architecture()
    other = save_initialised_checkpoint(tmp_path / "b", ModelConfig.from_profile("tiny", n_blocks=1))
    with pytest.raises(BadCheckpoint, match="model.n_blocks: checkpoint 1 vs params 2"):
        load_networks(other, cfg)


def test_a_knob_of_one_network_does_not_bind_the_others_checkpoints(tmp_path):
    """The WCN's temporal blend builds layers of the WCN only: a WCN without it trains on Layout and Region GAN
    checkpoints of a run with it (the selection study wcn_blend does), while its own checkpoint still must match."""
    from pipeline.core.checkpoint import check_model_config

    trained = save_initialised_checkpoint(tmp_path / "a", ModelConfig.from_profile("tiny"))
    no_blend = ModelConfig.from_profile("tiny", wcn_blend=False)
    for network in ("layout", "region"):
        check_model_config(trained / network / "final", no_blend.architecture(network), "retrain")
    with pytest.raises(BadCheckpoint, match="model.wcn_blend: checkpoint True vs params False"):
        check_model_config(trained / "wcn" / "final", no_blend.architecture("wcn"), "retrain")
    with pytest.raises(BadCheckpoint, match="model.layout_blend"):
        check_model_config(trained / "layout" / "final",
                           ModelConfig.from_profile("tiny", layout_blend=False).architecture("layout"), "retrain")
