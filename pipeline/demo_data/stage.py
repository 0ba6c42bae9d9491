"""Demo-data stage: generate the procedural demo dataset (videos + ground truth) under ``demo.out``."""
from __future__ import annotations

from pipeline.demo_data.generate import generate_demo_dataset
from pipeline.stage.entry import Stage, StageContext


def body(ctx: StageContext) -> str:
    demo = ctx.params.demo
    out = ctx.root / demo.out
    done = generate_demo_dataset(out, n_clips=demo.n_clips, n_frames=demo.n_frames, seed=demo.seed,
                                 height=ctx.params.extract.height, width=ctx.params.extract.width)
    return f"demo data: {out} ({done})"


STAGE = Stage("DVC stage `demo_data`: generate the procedural demo dataset (videos + ground truth) under demo.out.",
              body, dataset=False, quiet_native=False)
