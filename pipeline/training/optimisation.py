"""The optimisers and their learning-rate schedule, built together: Adam for the generator and for the
discriminators (paper 4.1), the rate constant and then (vid2vid) decaying linearly towards 0 over the last
``lr_decay_epochs`` epochs; the schedule steps once per epoch."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn


def lr_factor(epochs: int, decay: int) -> Callable[[int], float]:
    """Constant lr, then a linear decay towards 0 over the last ``decay`` epochs."""
    def factor(epoch: int) -> float:
        if decay <= 0 or epoch < epochs - decay:
            return 1.0
        return max(0.0, (epochs - epoch) / (decay + 1))
    return factor


def build_optimisation(generator: nn.Module, discriminators: list[nn.Module], lr: float,
                       betas: tuple[float, float], epochs: int = 1, lr_decay_epochs: int = 0
                       ) -> tuple[dict[str, torch.optim.Optimizer], dict[str, torch.optim.lr_scheduler.LambdaLR]]:
    """``({"generator": Adam, "discriminator": Adam}, their LambdaLR schedules)``, keyed alike (checkpoints
    store both by these names)."""
    optimizers = {
        "generator": torch.optim.Adam(generator.parameters(), lr=lr, betas=betas),
        "discriminator": torch.optim.Adam([p for d in discriminators for p in d.parameters()], lr=lr, betas=betas),
    }
    schedulers = {name: torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(epochs, lr_decay_epochs))
                  for name, opt in optimizers.items()}
    return optimizers, schedulers
