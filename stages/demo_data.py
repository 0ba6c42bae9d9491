"""DVC stage `demo_data`: generate the procedural demo dataset (videos + ground truth) under demo.out."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.demo_data import generate_demo_dataset
from pipeline.params import load_params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args(argv)
    params = load_params(args.params)
    out = Path(args.params).resolve().parent / params.demo.out
    summary = generate_demo_dataset(out, n_clips=params.demo.n_clips, n_frames=params.demo.n_frames,
                                    seed=params.demo.seed, height=params.extract.height,
                                    width=params.extract.width)
    print(f"demo data: {out} ({summary})")
    return 0


if __name__ == "__main__":
    from pipeline.cli import run_guarded  # bad input: one line, exit 2; no traceback

    sys.exit(run_guarded(main))
