"""Every `remot` subcommand and stage turns bad input into one line naming the value or file, exit code 2, and
never a traceback; native MediaPipe log lines stay off the terminal unless --verbose.

The commands run as a user runs them (subprocesses), in a scratch project folder holding a copy of params.yaml.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from pipeline.cli import main as cli_main
from pipeline.core.native_logs import NATIVE_LINE
from pipeline.demo_data.generate import plan_clip, render_clip
from remot_models.config import ModelConfig
from tests.test_transfer import save_initialised_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list[str], cwd: Path, module: str = "pipeline.cli") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A scratch project: params.yaml, one short real-looking clip, a text file posing as media, a checkpoint."""
    project = tmp_path_factory.mktemp("cli_project")
    shutil.copy(ROOT / "params.yaml", project / "params.yaml")
    (project / "bad.yaml").write_text("extract:\n  height: -5\n")
    (project / "broken.yaml").write_text("extract: [unclosed\n")
    (project / "typo.yaml").write_text("extract:\n  hieght: 256\n")
    (project / "text.png").write_text("I am not an image")
    (project / "text.mp4").write_text("I am not a video")
    (project / "a_file").write_text("")
    videos = project / "videos"
    videos.mkdir()
    frames, _, _ = render_clip(plan_clip(0, 0, 8, 256, 192, 25.0), 256, 192)  # a procedural person walking
    writer = cv2.VideoWriter(str(videos / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (192, 256))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    cv2.imwrite(str(project / "person.png"), cv2.cvtColor(frames[0], cv2.COLOR_RGB2BGR))
    save_initialised_checkpoint(project / "ckpt", ModelConfig.from_profile("tiny"))
    return project


# (arguments, what the one line must name)
CASES = [
    (["--params", "missing.yaml", "params", "check"], "missing.yaml"),
    (["--params", "bad.yaml", "params", "check"], "extract.height"),
    (["--params", "broken.yaml", "params", "check"], "broken.yaml"),
    (["--params", "typo.yaml", "params", "check"], "hieght"),
    (["dataset", "add", "held", "videos", "--kind", "folder", "--test-ratio", "1.5"], "test_ratio"),
    (["dataset", "add", "held", "videos", "--kind", "folder", "--test-ratio", "-0.1"], "test_ratio"),
    (["dataset", "add", "Bad-Name", "videos", "--kind", "folder"], "Bad-Name"),
    (["dataset", "add", "held", "no_such_folder", "--kind", "folder"], "no_such_folder"),
    (["dataset", "add", "held", "a_file", "--kind", "iper"], "a_file"),
    (["dataset", "add", "held", "videos", "--kind", "folder", "--test-ratio", "lots"], "lots"),  # argparse
    (["dataset", "add", "held", "videos", "--kind", "bogus"], "bogus"),  # argparse
    (["dataset", "check", "nope"], "nope"),
    (["--params", "bad.yaml", "dataset", "list"], "extract.height"),
    (["--params", "bad.yaml", "model", "info"], "extract.height"),
    (["demo-data", "--out", "a_file"], "a_file"),
    (["transfer", "--source", "missing.png", "--driving", "videos/clip.mp4", "--out", "o.mp4",
      "--checkpoint", "ckpt"], "missing.png"),
    (["transfer", "--source", "text.png", "--driving", "videos/clip.mp4", "--out", "o.mp4",
      "--checkpoint", "ckpt"], "text.png"),
    (["transfer", "--source", "person.png", "--driving", "text.mp4", "--out", "o.mp4",
      "--checkpoint", "ckpt"], "text.mp4"),
    (["transfer", "--source", "person.png", "--driving", "videos/clip.mp4", "--out", "o.mp4",
      "--checkpoint", "no_ckpt"], "no_ckpt"),
    (["transfer", "--source", "person.png", "--driving", "videos/clip.mp4", "--out", "o.mp4",
      "--checkpoint", "ckpt", "--device", "tpu"], "tpu"),  # argparse
]


@pytest.mark.parametrize("args,named", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_bad_input_is_one_line_exit_2_without_traceback(project, args, named, monkeypatch, capsys):
    # In-process (the same main() and run_guarded() as the console script; a subprocess per case would cost
    # seconds of imports each): argparse's own errors exit 2 through SystemExit.
    monkeypatch.chdir(project)
    try:
        code = cli_main(args)
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    assert code == 2, (code, err[-3000:])
    assert "Traceback" not in err and "Traceback" not in out, err[-3000:]
    errors = [line for line in err.splitlines() if "error:" in line]
    assert len(errors) == 1, err
    assert named in errors[0], (named, errors[0])


def test_console_command_gives_the_same_one_line(project):
    result = _run(["dataset", "add", "held", "videos", "--kind", "folder", "--test-ratio", "1.5"], project)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stderr.strip().splitlines() == [
        "error: test_ratio: Input should be less than or equal to 1 (got 1.5)"]


def test_test_ratio_accepts_0_and_1(project, tmp_path, monkeypatch, capsys):
    shutil.copy(project / "params.yaml", tmp_path / "params.yaml")
    shutil.copytree(project / "videos", tmp_path / "videos")
    shutil.copy(tmp_path / "videos" / "clip.mp4", tmp_path / "videos" / "clip2.mp4")
    monkeypatch.chdir(tmp_path)
    assert cli_main(["dataset", "add", "held", "videos", "--kind", "folder", "--test-ratio", "1.0"]) == 0
    assert "train 0, val 0, test 2" in capsys.readouterr().out  # evaluation-only
    assert cli_main(["dataset", "add", "trainonly", "videos", "--kind", "folder", "--test-ratio", "0"]) == 0
    assert "train 2, val 0, test 0" in capsys.readouterr().out  # training-only


@pytest.mark.parametrize("module,args,named", [
    ("stages.extract", ["--dataset", "nope"], "nope"),
    ("stages.pose", ["--params", "bad.yaml", "--dataset", "demo"], "extract.height"),
    ("stages.shards", ["--params", "bad.yaml"], "extract.height"),
    ("stages.demo_data", ["--params", "typo.yaml"], "hieght"),
    ("stages.evaluate", ["--params", "bad.yaml"], "extract.height"),
])
def test_stages_report_bad_input_in_one_line(project, module, args, named):
    result = _run(args, project, module)
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and named in errors[0], result.stderr


# absl/glog lines as MediaPipe writes them ("W0000 00:00:1796292483.872745   24246 inference_feedback_manager.cc:114]
# ..."), matched independently of the filter's own pattern so a pattern that misses real lines fails here
RAW_NATIVE = re.compile(r"^[WIEF]\d{4} .*\.cc:\d+\] ")

# One small MediaPipe call in the stage process and one in a spawned pool worker, through the real stage entry
# (pipeline.stage.entry.run with the process's own argv, as `dvc repro` runs a stage).
STAGE_CODE = """
import sys, numpy as np
from pipeline.stage.entry import Stage, run
from pipeline.stage.executor import spawned_pool
from pipeline.extract.person_box import clip_person_box

def detect():
    clip_person_box([np.full((256, 192, 3), 90, np.uint8)] * 2)
    return 'ok'

def body(ctx):
    detect()
    with spawned_pool(1, 1) as pool:
        pool.submit(detect).result()
    print('python warning line', file=sys.stderr)
    return 'stage done'

if __name__ == '__main__':
    sys.exit(run(Stage('native log test', body, dataset=False)))
"""


def test_native_log_lines_are_filtered_unless_verbose(tmp_path):
    # The person-box detector runs MediaPipe, whose C++ code logs "W0000 ... .cc:NNN] ..." lines to fd 2.
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    script = tmp_path / "native_stage.py"
    script.write_text(STAGE_CODE)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def stage(*flags: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(script), *flags], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)

    loud, quiet = stage("--verbose"), stage()
    assert loud.returncode == 0 and quiet.returncode == 0, (loud.stderr[-3000:], quiet.stderr[-3000:])
    native = [line for line in loud.stderr.splitlines() if RAW_NATIVE.match(line)]
    # the lines exist without the filter, from the stage process and its pool worker alike
    assert len(native) >= 2, loud.stderr
    assert all(NATIVE_LINE.match(line.encode()) for line in native), native  # the filter's pattern knows them
    for out in (quiet.stdout, quiet.stderr):
        assert not [line for line in out.splitlines() if RAW_NATIVE.match(line) or NATIVE_LINE.match(line.encode())
                    or "W0000" in line or "I0000" in line], out
    assert "python warning line" in quiet.stderr  # everything else still reaches the terminal
    assert "stage done" in quiet.stdout


def test_stages_running_mediapipe_filter_native_lines():
    # extract (person boxes), pose and evaluate (pose of the generated clips) run MediaPipe
    from pipeline.evaluation.stage import STAGE as evaluate
    from pipeline.extract.stage import STAGE as extract
    from pipeline.pose.stage import STAGE as pose

    assert extract.quiet_native and pose.quiet_native and evaluate.quiet_native
