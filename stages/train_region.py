"""DVC stage train_region: train the REMOT region stage (pipeline.training.runner; same code as the Prefect flow).

Usage: python -m stages.train_region [--params params.yaml]   (or: torchrun --nproc_per_node=N -m stages.train_region)
"""
from __future__ import annotations

import sys

from pipeline.training.runner import stage_cli

if __name__ == "__main__":
    sys.exit(stage_cli("region"))
