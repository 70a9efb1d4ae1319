"""Helpers shared by the toy-domain tests: the sampler call they all make, and the trainer settings of the
session-scoped toy models and classifiers."""

from __future__ import annotations

import torch

from guided_diffusion.sampling import sample
from guided_diffusion.training import TrainerConfig

N = 512  # samples per toy draw
LENGTH = 16  # toy sequence length


def draw(model, guidance=None, *, seed: int = 0, num_samples: int = N) -> torch.Tensor:
    """``num_samples`` toy sequences (32 reverse steps; one per position for the autoregressive model)."""
    steps = LENGTH if model.process.name == "autoregressive" else 32
    return sample(
        model.process,
        model.denoiser,
        num_samples=num_samples,
        length=LENGTH,
        steps=steps,
        guidance=guidance,
        generator=torch.Generator().manual_seed(seed),
        posterior_dtype=torch.float64,
    ).tokens


def toy_trainer(max_steps: int, warmup_steps: int, max_minutes: float | None = None) -> TrainerConfig:
    """CPU trainer settings of the toy fixtures (no validation or checkpoints until the end)."""
    return TrainerConfig(
        max_steps=max_steps,
        batch_size=128,
        lr=2e-3,
        warmup_steps=warmup_steps,
        ema_decay=0.99,
        val_every=0,
        ckpt_every=0,
        log_every=400,
        device="cpu",
        max_minutes=max_minutes,
    )
