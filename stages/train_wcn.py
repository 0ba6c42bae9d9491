"""DVC stage train_wcn: train the REMOT wcn stage (pipeline.training.runner; same code as the Prefect flow).

Usage: python -m stages.train_wcn [--params params.yaml]   (or: torchrun --nproc_per_node=N -m stages.train_wcn)
"""
from __future__ import annotations

import sys

from pipeline.training.runner import stage_cli

if __name__ == "__main__":
    sys.exit(stage_cli("wcn"))
