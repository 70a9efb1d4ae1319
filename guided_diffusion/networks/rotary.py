"""Rotary position embeddings (Su et al. 2021) applied to queries and keys."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Rotary(nn.Module):
    """Rotations of consecutive channel pairs (2i, 2i+1) by position-dependent angles, for head dimension
    ``head_dim`` and up to ``max_len`` positions.

    The pairs are rotated as complex numbers, which is several times faster on CPU than slicing the even
    and odd channels apart.
    """

    freqs: Tensor

    def __init__(self, head_dim: int, max_len: int, *, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # [L, Dh/2]
        self.register_buffer("freqs", torch.polar(torch.ones_like(angles), angles), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Rotate ``x`` of shape [B, H, L, Dh]."""
        length = x.shape[-2]
        pairs = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))  # [B, H, L, Dh/2]
        return torch.view_as_real(pairs * self.freqs[:length]).flatten(-2).to(x.dtype)
