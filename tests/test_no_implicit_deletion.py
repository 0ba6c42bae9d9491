"""Issue 16 item 2: nothing the user made is deleted implicitly. A transient error keeps finished outputs;
outputs leave only with their video's registration; `dataset add` does not silently re-point a name or adopt a
folder the stages write; `remot transfer --out` never overwrites an input, nor an existing file without --force."""
from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import pytest
import yaml

from pipeline.cli import main as remot
from pipeline.core.artifacts import VideoArtifacts
from pipeline.core.params import DatasetSpec, ExtractParams, ParamsError
from pipeline.datasets import scan_dataset
from pipeline.datasets.base import VideoEntry
from pipeline.extract import run as extract_run
from pipeline.extract.run import SourceInsideOutputs, run_extraction
from pipeline.inference.transfer import OutputRefused, check_output
from pipeline.stage.per_video import run_video_stage

FAST = ExtractParams(detect_frames=4, max_frames=12)


def _dataset(tmp_path: Path, videos: list[Path]) -> Path:
    root = tmp_path / "clips"
    root.mkdir(parents=True)
    for video in videos:
        shutil.copy(video, root / video.name)
    return root


def test_transient_eio_keeps_an_up_to_date_video_and_its_downstream_outputs(tmp_path, media, monkeypatch):
    root = _dataset(tmp_path, media["videos"][:2])
    spec = DatasetSpec(kind="folder", path=str(root))
    videos = scan_dataset("clips", spec).videos
    data = tmp_path / "data"
    first = run_extraction("clips", videos, data, FAST, 8, tmp_path / "r.json")
    assert len(first.processed) == 2
    victim = videos[0]
    frames_before = sorted(p.name for p in (data / "frames" / "clips" / victim.video).iterdir())

    # a per-video stage downstream, with real outputs
    def outputs(video: VideoArtifacts) -> list[Path]:
        return [data / "toy" / video.dataset / f"{video.video}.txt"]

    def process(video: VideoArtifacts, meta: dict) -> dict:
        if failing.get(video.video):
            raise OSError(errno.EIO, "Input/output error", str(video.frames_dir))
        outputs(video)[0].parent.mkdir(parents=True, exist_ok=True)
        outputs(video)[0].write_text(meta["input_sha256"])
        return {}

    failing: dict[str, bool] = {}
    toy = run_video_stage("toy", "clips", data, "k1", lambda v, m: [], process, outputs, tmp_path / "toy.json")
    assert len(toy.processed) == 2

    real_fingerprint = extract_run.input_fingerprint

    def eio(video: VideoEntry) -> dict:
        if video.video == victim.video:
            raise OSError(errno.EIO, "Input/output error", str(video.source))
        return real_fingerprint(video)

    monkeypatch.setattr(extract_run, "input_fingerprint", eio)
    second = run_extraction("clips", videos, data, FAST, 8, tmp_path / "r.json")
    assert list(second.skipped) == [f"clips/{victim.video}"] and "Input/output error" in second.skipped[
        f"clips/{victim.video}"]
    assert second.removed == [] and second.kept == [f"clips/{victim.video}"]
    assert sorted(p.name for p in (data / "frames" / "clips" / victim.video).iterdir()) == frames_before

    # the downstream stage fails on it now (a new key forces a redo): its outputs stay, its stamp goes
    failing[victim.video] = True
    again = run_video_stage("toy", "clips", data, "k2", lambda v, m: [], process, outputs, tmp_path / "toy.json")
    assert list(again.skipped) == [f"clips/{victim.video}"] and again.removed == []
    assert outputs(VideoArtifacts(data, "clips", victim.video))[0].is_file()

    # a video that leaves the registry does lose its outputs, in both stages
    monkeypatch.setattr(extract_run, "input_fingerprint", real_fingerprint)
    failing.clear()
    third = run_extraction("clips", videos[1:], data, FAST, 8, tmp_path / "r.json")
    assert third.removed == [f"clips/{victim.video}"]
    gone = run_video_stage("toy", "clips", data, "k2", lambda v, m: [], process, outputs, tmp_path / "toy.json")
    assert gone.removed == [f"clips/{victim.video}"]
    assert not outputs(VideoArtifacts(data, "clips", victim.video))[0].exists()


def test_stage_refuses_a_dataset_inside_its_own_output_folders(tmp_path, media):
    data = tmp_path / "data"
    inside = data / "frames" / "clips" / "raw"
    inside.mkdir(parents=True)
    shutil.copy(media["videos"][0], inside / "a.mp4")
    before = (inside / "a.mp4").read_bytes()
    videos = scan_dataset("clips", DatasetSpec(kind="folder", path=str(inside))).videos
    with pytest.raises(SourceInsideOutputs, match="inside data_root"):
        run_extraction("clips", videos, data, FAST, 8, tmp_path / "r.json")
    assert (inside / "a.mp4").read_bytes() == before


def _project(tmp_path: Path, media) -> Path:
    project = tmp_path / "proj"
    project.mkdir()
    (project / "params.yaml").write_text("data_root: data\ndatasets: {}\n")
    return project


def test_dataset_add_refuses_an_existing_name_without_replace(tmp_path, media, capsys):
    project = _project(tmp_path, media)
    first, second = _dataset(tmp_path / "a", media["videos"][:1]), _dataset(tmp_path / "b", media["videos"][1:2])
    params = str(project / "params.yaml")
    assert remot(["--params", params, "dataset", "add", "mine", str(first), "--kind", "folder"]) == 0
    assert remot(["--params", params, "dataset", "add", "mine", str(second), "--kind", "folder"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "already registered" in error[0] and "--replace" in error[0]
    assert yaml.safe_load((project / "params.yaml").read_text())["datasets"]["mine"]["path"] == str(first)
    assert remot(["--params", params, "dataset", "add", "mine", str(second), "--kind", "folder", "--replace"]) == 0
    assert yaml.safe_load((project / "params.yaml").read_text())["datasets"]["mine"]["path"] == str(second)


def test_dataset_add_refuses_a_folder_the_stages_write(tmp_path, media, capsys):
    project = _project(tmp_path, media)
    inside = _dataset(project / "data" / "frames" / "x", media["videos"][:1])
    raw = _dataset(project / "data" / "raw" / "y", media["videos"][:1])
    params = str(project / "params.yaml")
    assert remot(["--params", params, "dataset", "add", "x", str(inside), "--kind", "folder"]) == 2
    assert "inside data_root" in capsys.readouterr().err
    with pytest.raises(ParamsError, match="inside data_root"):
        from pipeline.datasets import add_dataset

        add_dataset(project / "params.yaml", "x", "data/frames/x/clips", "folder")
    assert remot(["--params", params, "dataset", "add", "y", str(raw), "--kind", "folder"]) == 0


def test_transfer_out_never_overwrites_an_input_or_an_existing_file(tmp_path, media, capsys):
    drv = tmp_path / "drv.mp4"
    shutil.copy(media["videos"][0], drv)
    src = tmp_path / "src.png"
    src.write_bytes(b"not read: refused before")
    drv.chmod(0o444)
    before = drv.read_bytes()
    (tmp_path / "params.yaml").write_text("{}\n")
    params = str(tmp_path / "params.yaml")
    for out, extra in ((drv, []), (drv, ["--force"]), (tmp_path / "." / "drv.mp4", ["--force"])):
        assert remot(["--params", params, "transfer", "--source", str(src), "--driving", str(drv), "--out",
                      str(out), *extra]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "driving input itself" in error[0]
    link = tmp_path / "link.mp4"
    os.link(drv, link)  # another name for the same file
    with pytest.raises(OutputRefused, match="driving input itself"):
        check_output(link, {"driving": drv}, force=True)
    assert drv.read_bytes() == before and stat.S_IMODE(drv.stat().st_mode) == 0o444
    existing = tmp_path / "old.mp4"
    existing.write_bytes(b"an earlier result")
    with pytest.raises(OutputRefused, match="--force"):
        check_output(existing, {"driving": drv})
    assert check_output(existing, {"driving": drv}, force=True) == existing
    existing.chmod(0o444)
    with pytest.raises(OutputRefused, match="read-only"):
        check_output(existing, {"driving": drv}, force=True)
    with pytest.raises(OutputRefused, match="folder"):
        check_output(tmp_path, {"driving": drv}, force=True)
    assert check_output(tmp_path / "new.mp4", {"driving": drv}) == tmp_path / "new.mp4"


def test_transfer_out_never_replaces_the_checkpoint_the_params_or_a_managed_output(tmp_path, capsys):
    """Issue 22 item 8: --out, even with --force, is refused on the checkpoint's files, the params file and
    anything under the project's data, models, metrics, plots and reports folders; nothing there changes."""
    from remot_models.config import ModelConfig
    from tests.test_transfer import save_initialised_checkpoint

    project = tmp_path / "proj"
    project.mkdir()
    params = project / "params.yaml"
    params.write_text("data_root: data\n")
    save_initialised_checkpoint(project / "models", ModelConfig.from_profile("tiny"))
    elsewhere = save_initialised_checkpoint(tmp_path / "ckpt", ModelConfig.from_profile("tiny"))
    for folder in ("data/frames/x", "metrics", "plots", "reports"):
        (project / folder).mkdir(parents=True)
        (project / folder / "kept.json").write_text("{}")
    drv, src = tmp_path / "drv.mp4", tmp_path / "src.png"
    drv.write_bytes(b"never read: refused before")
    src.write_bytes(b"never read: refused before")
    link = tmp_path / "sneaky.mp4"
    os.symlink(project / "models" / "wcn" / "final" / "modules.safetensors", link)
    targets = [(project / "models" / "layout" / "final" / "modules.safetensors", []),
               (project / "models" / "region" / "final" / "state.json", []),
               (project / "models" / "new.mp4", []), (params, []), (link, []),
               (project / "data" / "frames" / "x" / "kept.json", []), (project / "metrics" / "kept.json", []),
               (project / "plots" / "kept.json", []), (project / "reports" / "new.mp4", []),
               (elsewhere / "wcn" / "final" / "modules.safetensors", ["--checkpoint", str(elsewhere)])]
    before = {p: p.read_bytes() for p in [*project.rglob("*"), *elsewhere.rglob("*")] if p.is_file()}
    for out, extra in targets:
        rc = remot(["--params", str(params), "transfer", "--source", str(src), "--driving", str(drv), "--out",
                    str(out), "--force", "--quiet", *extra])
        error = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(error) == 1, (out, error)
        assert "which the pipeline manages" in error[0] or "params file input itself" in error[0], (out, error)
    after = {p: p.read_bytes() for p in [*project.rglob("*"), *elsewhere.rglob("*")] if p.is_file()}
    assert after == before


def make_unreadable(monkeypatch, *folders: Path) -> None:
    """``folders`` behave as after ``chmod 000`` for a non-root user (tests run as root, where chmod blocks
    nothing): listing them raises PermissionError, as os.walk, os.scandir and Path.iterdir would see it."""
    blocked = {os.path.realpath(f) for f in folders}

    def guard(real):
        def call(path=".", *args, **kwargs):
            if isinstance(path, (str, bytes, os.PathLike)) and os.path.realpath(os.fsdecode(path)) in blocked:
                raise PermissionError(errno.EACCES, "Permission denied", os.fsdecode(path))
            return real(path, *args, **kwargs)
        return call

    monkeypatch.setattr(os, "scandir", guard(os.scandir))
    monkeypatch.setattr(os, "listdir", guard(os.listdir))


def test_an_unreadable_folder_is_a_reported_gap_and_removes_nothing(tmp_path, media, monkeypatch):
    """Issue 22 item 3: a sub-folder the scan cannot read is one problem per path; its videos are not taken as
    gone, so neither extraction nor a downstream stage removes their outputs."""
    from pipeline.datasets import describe, read_unreadable, read_video_list, write_video_list

    root = tmp_path / "clips"
    (root / "sub").mkdir(parents=True)
    shutil.copy(media["videos"][0], root / "top.mp4")
    shutil.copy(media["videos"][1], root / "sub" / "inner.mp4")
    spec = DatasetSpec(kind="folder", path=str(root), test_ratio=0.0)
    data = tmp_path / "data"
    registry = data / "registry" / "clips.json"
    write_video_list(registry, [scan_dataset("clips", spec)], tmp_path)
    assert read_unreadable(registry) == []
    first = run_extraction("clips", read_video_list(registry, tmp_path), data, FAST, 8, tmp_path / "r.json")
    assert sorted(first.processed) == ["clips/sub__inner", "clips/top"]

    def outputs(video: VideoArtifacts) -> list[Path]:
        return [data / "toy" / video.dataset / f"{video.video}.txt"]

    def process(video: VideoArtifacts, meta: dict) -> dict:
        outputs(video)[0].parent.mkdir(parents=True, exist_ok=True)
        outputs(video)[0].write_text(meta["input_sha256"])
        return {}

    assert len(run_video_stage("toy", "clips", data, "k", lambda v, m: [], process, outputs,
                               tmp_path / "toy.json").processed) == 2

    make_unreadable(monkeypatch, root / "sub")
    scan = scan_dataset("clips", spec)
    assert [v.video for v in scan.videos] == ["top"]
    assert scan.unreadable == ["sub"] and len(scan.problems) == 1
    assert str(root / "sub") in scan.problems[0] and "cannot be read" in scan.problems[0]
    assert "problems: 1" in describe(scan)
    write_video_list(registry, [scan], tmp_path)
    assert read_unreadable(registry) == ["sub"]
    second = run_extraction("clips", read_video_list(registry, tmp_path), data, FAST, 8, tmp_path / "r.json",
                            unreadable=read_unreadable(registry))
    assert second.removed == [] and second.held == ["clips/sub__inner"]
    assert (data / "frames" / "clips" / "sub__inner" / "meta.json").is_file()
    toy = run_video_stage("toy", "clips", data, "k", lambda v, m: [], process, outputs, tmp_path / "toy.json")
    assert toy.removed == [] and outputs(VideoArtifacts(data, "clips", "sub__inner"))[0].is_file()

    monkeypatch.undo()  # readable again, and the video really gone: now it leaves, as before
    (root / "sub" / "inner.mp4").unlink()
    write_video_list(registry, [scan_dataset("clips", spec)], tmp_path)
    third = run_extraction("clips", read_video_list(registry, tmp_path), data, FAST, 8, tmp_path / "r.json",
                           unreadable=read_unreadable(registry))
    assert third.removed == ["clips/sub__inner"]


def test_every_adapter_reports_unreadable_paths_as_gaps(tmp_path, monkeypatch):
    from tests.test_dataset_scans import _fake_frames

    iper = tmp_path / "iPER"
    for entry in ("001/1/1", "001/1/2"):
        _fake_frames(iper / "images_HD" / entry)
    (iper / "train.txt").write_text("001/1/1\n001/1/2\n")
    (iper / "val.txt").write_text("")
    solo = tmp_path / "SoloDance"
    for folder in ("train/a", "train/b", "test/c"):
        _fake_frames(solo / folder)
    make_unreadable(monkeypatch, iper / "images_HD" / "001" / "1" / "2", solo / "train" / "b")
    scan = scan_dataset("iper", DatasetSpec(kind="iper", path=str(iper)))
    assert [v.video for v in scan.videos] == ["001__1__1"] and scan.unreadable == ["images_HD/001/1/2"]
    assert len(scan.problems) == 1 and "train.txt line 2" in scan.problems[0]
    scan = scan_dataset("solo", DatasetSpec(kind="solodance", path=str(solo)))
    assert sorted(v.video for v in scan.videos) == ["a", "c"] and scan.unreadable == ["train/b"]
