"""Gumbel-max draws shared by the sampler and the guidance terms that draw their own tokens (so both
consume the random generator identically and give the same samples for the same seed)."""

from __future__ import annotations

import torch
from torch import Tensor


def gumbel_noise(like: Tensor, generator: torch.Generator | None) -> Tensor:
    """Standard Gumbel noise with the shape, dtype and device of ``like``.

    The noise has the dtype of ``like``: float64 avoids the low-precision truncation that lowers sample
    diversity (a known pitfall of float32 Gumbel sampling).
    """
    u = torch.rand(like.shape, generator=generator, device=like.device, dtype=like.dtype)
    tiny = torch.finfo(like.dtype).tiny
    exponential = (-torch.log(u.clamp_min(tiny))).clamp_min(tiny)  # Exp(1) draws, never exactly 0
    return -torch.log(exponential)


def categorical(log_probs: Tensor, generator: torch.Generator | None) -> Tensor:
    """Draw from ``Cat(softmax(log_probs))`` over the last axis with the Gumbel-max trick."""
    return (log_probs + gumbel_noise(log_probs, generator)).argmax(dim=-1)
