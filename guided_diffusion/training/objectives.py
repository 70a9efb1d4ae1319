"""Training objectives: what the generic training loop minimises and how it validates.

The denoiser objective is the process's NELBO with condition dropout for classifier-free guidance
(Schiff et al. 2025, Sec. 3.1). Classifier objectives (``classifiers/``) implement the same protocol.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import NULL_LABEL, Condition
from guided_diffusion.data import TokenDataset
from guided_diffusion.processes.base import DenoiseFn, DiffusionProcess


class Objective(Protocol):
    """A loss over batches of a :class:`TokenDataset` and a validation report."""

    def loss(self, model: nn.Module, batch: TokenDataset, generator: torch.Generator) -> Tensor:
        """Scalar loss to minimise."""
        ...

    def evaluate(self, model: nn.Module, data: TokenDataset, *, batch_size: int, seed: int) -> dict[str, float]:
        """Validation metrics (deterministic given ``seed``)."""
        ...

    def tokens_per_example(self, batch: TokenDataset) -> int:
        """Tokens one example contributes (for throughput reporting)."""
        ...


def drop_condition(
    batch: TokenDataset, *, drop_all: float, drop_entry: float, generator: torch.Generator
) -> Condition | None:
    """The batch's condition with classifier-free dropout.

    Each row loses its whole condition with probability ``drop_all`` (this trains the unconditional model
    that D-CFG needs); each remaining property entry is dropped independently with probability
    ``drop_entry`` (so any subset of properties can be targeted at sampling time).
    """
    if batch.labels is None and batch.values is None:
        return None
    rows = len(batch)
    device = batch.tokens.device
    drop_row = torch.rand(rows, generator=generator, device=device) < drop_all  # [B]
    labels = values = None
    if batch.labels is not None:
        labels = torch.where(drop_row, torch.full_like(batch.labels, NULL_LABEL), batch.labels)
    if batch.values is not None:
        drop = torch.rand(batch.values.shape, generator=generator, device=device) < drop_entry
        drop = drop | drop_row.unsqueeze(-1)
        values = torch.where(drop, torch.full_like(batch.values, float("nan")), batch.values)
    return Condition(labels=labels, values=values)


class DenoiserObjective:
    """NELBO of a diffusion process, with condition dropout.

    Args:
        process: the noise process (also used by classifiers, so corruption never drifts).
        cond_dropout: probability of dropping a row's whole condition.
        value_dropout: probability of dropping each property entry of the remaining rows.
    """

    def __init__(self, process: DiffusionProcess, *, cond_dropout: float = 0.1, value_dropout: float = 0.0) -> None:
        for name, value in (("cond_dropout", cond_dropout), ("value_dropout", value_dropout)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {value}")
        self.process = process
        self.cond_dropout = cond_dropout
        self.value_dropout = value_dropout

    def loss(self, model: nn.Module, batch: TokenDataset, generator: torch.Generator) -> Tensor:
        cond = drop_condition(batch, drop_all=self.cond_dropout, drop_entry=self.value_dropout, generator=generator)
        out = self.process.loss(_bind(model, cond), batch.tokens, generator=generator)
        return out.loss

    def tokens_per_example(self, batch: TokenDataset) -> int:
        return batch.seq_len

    @torch.no_grad()
    def evaluate(self, model: nn.Module, data: TokenDataset, *, batch_size: int, seed: int) -> dict[str, float]:
        """Unconditional (and, with conditions, conditional) NELBO on ``data`` in nats and bits per token,
        with the perplexity bound exp(nats/token)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        generator = torch.Generator(device=device).manual_seed(seed)
        has_cond = data.labels is not None or data.values is not None
        totals = {"uncond": 0.0, "cond": 0.0}
        tokens = 0
        for start in range(0, len(data), batch_size):
            batch = data.subset(slice(start, start + batch_size))
            x0 = batch.tokens.to(device)
            state = generator.get_state()
            nelbo = self.process.loss(_bind(model, None), x0, generator=generator).nelbo
            totals["uncond"] += float(nelbo.sum())
            if has_cond:
                generator.set_state(state)  # same t and noise for a paired comparison
                cond = Condition(
                    labels=None if batch.labels is None else batch.labels.to(device),
                    values=None if batch.values is None else batch.values.to(device),
                )
                nelbo = self.process.loss(_bind(model, cond), x0, generator=generator).nelbo
                totals["cond"] += float(nelbo.sum())
            tokens += x0.numel()
        model.train(was_training)
        nats = totals["uncond"] / tokens
        metrics = {
            "val_nats_per_token": nats,
            "val_bits_per_token": nats / math.log(2),
            "val_ppl_bound": math.exp(nats),
        }
        if has_cond:
            metrics["val_cond_nats_per_token"] = totals["cond"] / tokens
        return metrics


def _bind(model: nn.Module, cond: Condition | None) -> DenoiseFn:
    """``(xt, t) -> model(xt, t, cond)``."""

    def denoise(xt: Tensor, t: Tensor) -> Tensor:
        return model(xt, t, cond)

    return denoise
