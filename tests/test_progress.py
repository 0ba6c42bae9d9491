"""Off a terminal, a stage run prints periodic one-line summaries (videos, frames, rate, ETA) and a final one."""
from __future__ import annotations

import io

from pipeline.core.errors import SkipVideo
from pipeline.stage.executor import run_all
from pipeline.stage.progress import Progress


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_summary_lines_every_interval_with_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    progress = Progress("pose-demo", 4, 400, stream=out, interval=30, clock=clock)
    clock.now = 10
    progress.update(100)  # before the interval: silent
    assert out.getvalue() == ""
    clock.now = 40
    progress.update(100)
    assert out.getvalue().splitlines() == [
        "pose-demo: 2/4 videos, 200/400 frames, 5.0 frames/s, ETA 0:00:40, elapsed 0:00:40"]
    clock.now = 50
    progress.update(100, skipped=True)
    assert len(out.getvalue().splitlines()) == 1  # 10 s after the last line
    clock.now = 80
    progress.update(100)
    progress.close()
    assert out.getvalue().splitlines()[1:] == [
        "pose-demo: 4/4 videos, 400/400 frames, 1 skipped, 5.0 frames/s, elapsed 0:01:20"]  # not twice


def test_unknown_frame_total_counts_videos():
    clock, out = Clock(), io.StringIO()
    progress = Progress("extract-demo", 3, None, stream=out, interval=0, clock=clock)
    clock.now = 60
    progress.update(32)
    assert out.getvalue().splitlines() == [
        "extract-demo: 1/3 videos, 32 frames, 0.5 frames/s, ETA 0:02:00, elapsed 0:01:00"]


def work(meta: dict) -> dict:
    if meta["n_frames"] == 0:
        raise SkipVideo("empty")
    return {"frames": meta["n_frames"]}


def test_run_all_reports_frames_from_the_items(monkeypatch, capsys):
    monkeypatch.setenv("REMOT_PROGRESS_SECONDS", "0")
    outcomes = run_all(work, [({"n_frames": 8},), ({"n_frames": 0},), ({"n_frames": 24},)], name="flow-demo")
    assert [o.skipped for o in outcomes] == [None, "empty", None]
    lines = capsys.readouterr().err.splitlines()  # pytest's captured stderr is not a terminal
    assert [line.split(", ")[:2] for line in lines] == [
        ["flow-demo: 1/3 videos", "8/32 frames"], ["flow-demo: 2/3 videos", "8/32 frames"],
        ["flow-demo: 3/3 videos", "32/32 frames"]]
    assert ["1 skipped" in line for line in lines] == [False, True, True]
    assert "ETA" in lines[0] and "ETA" not in lines[2]


def test_training_counts_steps_from_where_it_resumed_and_prints_only_its_own_lines():
    """The same class counts a training run's steps: no timed summaries, one line per checkpoint (note), none at
    all on a rank other than 0."""
    import math

    clock, out = Clock(), io.StringIO()
    progress = Progress("train layout", 10, unit="step", initial=4, stream=out, interval=math.inf, clock=clock)
    clock.now = 2
    progress.update(postfix={"g": "1.000"})
    progress.update(postfix={"g": "0.900"})
    assert out.getvalue() == "" and progress.done == 6 and progress.rate() == 1.0
    progress.note("train layout: step 6/10")
    progress.close()
    assert out.getvalue().splitlines() == ["train layout: step 6/10"]
    quiet = Progress("train layout", 10, unit="step", stream=out, interval=0, clock=clock, silent=True)
    quiet.update()
    quiet.note("rank 1")
    quiet.close()
    assert out.getvalue().splitlines() == ["train layout: step 6/10"]
