"""Rotary position embeddings (Su et al. 2021) applied to queries and keys."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Rotary(nn.Module):
    """Precomputed rotation angles for head dimension ``head_dim`` and up to ``max_len`` positions."""

    cos: Tensor
    sin: Tensor

    def __init__(self, head_dim: int, max_len: int, *, base: float = 10_000.0) -> None:
        super().__init__()
        if head_dim % 2:
            raise ValueError(f"rotary embeddings need an even head dimension, got {head_dim}")
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)  # [L, Dh/2]
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Rotate ``x`` of shape [B, H, L, Dh]."""
        length = x.shape[-2]
        cos = self.cos[:length].to(x.dtype)  # [L, Dh/2]
        sin = self.sin[:length].to(x.dtype)
        x1, x2 = x[..., 0::2], x[..., 1::2]
        out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)  # [B, H, L, Dh/2, 2]
        return out.flatten(-2)
