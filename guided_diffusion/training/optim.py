"""Optimiser pieces of the training loop: warm-up + cosine learning rate, EMA of weights, and the
conversion of optimiser state to flat tensors for safetensors."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def learning_rate(step: int, *, peak: float, warmup: int, total: int, min_ratio: float) -> float:
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``min_ratio * peak``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class EMA:
    """Exponential moving average of a module's parameters (fp32 shadow copies).

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not
    dominated by the random initialisation.
    """

    def __init__(self, module: nn.Module, *, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.shadow = {name: p.detach().float().clone() for name, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in module.named_parameters():
            self.shadow[name].lerp_(p.detach().float(), 1.0 - decay)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        for name, p in module.named_parameters():
            p.copy_(self.shadow[name].to(p.dtype))


def optimizer_tensors(optimizer: torch.optim.Optimizer, names: list[str]) -> dict[str, Tensor]:
    """Flatten per-parameter optimiser state to ``{"<param name>/<key>": tensor}``."""
    state = optimizer.state_dict()["state"]
    out: dict[str, Tensor] = {}
    for index, name in enumerate(names):
        for key, value in state.get(index, {}).items():
            out[f"{name}/{key}"] = value if isinstance(value, Tensor) else torch.tensor(value)
    return out


def load_optimizer_tensors(optimizer: torch.optim.Optimizer, names: list[str], tensors: dict[str, Tensor]) -> None:
    """Inverse of :func:`optimizer_tensors`."""
    index_of = {name: i for i, name in enumerate(names)}
    state: dict[int, dict[str, Tensor]] = {}
    for flat, value in tensors.items():
        name, key = flat.rsplit("/", 1)
        if name not in index_of:
            raise ValueError(f"optimiser state names an unknown parameter {name!r}")
        state.setdefault(index_of[name], {})[key] = value
    full = optimizer.state_dict()
    full["state"] = state
    optimizer.load_state_dict(full)
