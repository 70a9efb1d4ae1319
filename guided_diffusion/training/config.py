"""The trainer's settings (the Hydra ``trainer.*`` keys) and what a training run returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from guided_diffusion.training.precision import Precision


@dataclass
class TrainerConfig:
    """Hyper-parameters of :func:`train` (every field is also a Hydra ``trainer.*`` key).

    Attributes:
        max_steps: optimiser steps of the full run (the cosine schedule ends here).
        batch_size: global batch size (split evenly across DDP ranks).
        lr: peak learning rate.
        warmup_steps: linear warm-up length.
        min_lr_ratio: final learning rate as a fraction of ``lr``.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        grad_clip: max gradient norm (0 disables clipping).
        ema_decay: EMA decay of the weights that are validated and shipped.
        log_every, val_every, ckpt_every: intervals in steps (0 disables validation/checkpoints).
        val_batches: validation batches (of ``batch_size``) per validation.
        max_minutes: stop after this much wall time, with a checkpoint (resumable chunks); None = no limit.
        precision: ``auto`` (measure and pick), ``fp32`` or ``bf16``.
        seed: base seed of data order, noise and dropout.
        num_threads: CPU threads for torch (None = torch's default).
        device: ``cpu``, ``cuda`` or None (CUDA when available).
        compile: wrap the model in ``torch.compile`` for training.
    """

    max_steps: int = 1000
    batch_size: int = 64
    lr: float = 1e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    log_every: int = 50
    val_every: int = 500
    val_batches: int = 8
    ckpt_every: int = 500
    max_minutes: float | None = None
    precision: str = "auto"
    seed: int = 0
    num_threads: int | None = None
    device: str | None = None
    compile: bool = False

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1:
            raise ValueError("trainer.max_steps and trainer.batch_size must be >= 1")
        if self.lr <= 0:
            raise ValueError(f"trainer.lr must be > 0, got {self.lr}")
        Precision(self.precision)  # raises on unknown values
        if self.device not in (None, "cpu", "cuda"):
            raise ValueError(f"trainer.device must be cpu, cuda or null (CUDA when available), got {self.device!r}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` returns."""

    step: int
    finished: bool
    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)
    tokens_per_second: float = 0.0
