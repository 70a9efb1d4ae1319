"""Conditioning embeddings for the denoiser: diffusion time, class labels and property vectors.

Every conditioning entry has a learned null embedding, used when it is dropped (classifier-free
guidance, Ho & Salimans 2022; Schiff et al. 2025, Sec. 3.1).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import NULL_LABEL, Condition


class TimeEmbedding(nn.Module):
    """Sinusoidal features of t in [0, 1] followed by a two-layer MLP. ``t``: [B] -> [B, D]."""

    def __init__(self, dim: int, *, frequency_dim: int = 128) -> None:
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.frequency_dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        angles = 1000.0 * t.float().unsqueeze(-1) * freqs  # [B, half]
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))


class ConditionEmbedding(nn.Module):
    """Sum of a class-label embedding and per-property value embeddings, each with a null embedding.

    Args:
        dim: output width D.
        num_classes: C (0 = no labels); label ``-1`` selects the null embedding.
        num_properties: P (0 = no properties); a NaN value selects that property's null embedding.
        hidden: width of each property's scalar MLP.
    """

    def __init__(self, dim: int, *, num_classes: int = 0, num_properties: int = 0, hidden: int = 64) -> None:
        super().__init__()
        self.dim = dim
        self.num_classes = num_classes
        self.num_properties = num_properties
        self.labels = nn.Embedding(num_classes + 1, dim) if num_classes > 0 else None
        if num_properties > 0:
            # one small MLP per property, evaluated for all properties at once
            self.w1 = nn.Parameter(torch.randn(num_properties, hidden) * 0.5)
            self.b1 = nn.Parameter(torch.zeros(num_properties, hidden))
            self.w2 = nn.Parameter(torch.randn(num_properties, hidden, dim) / math.sqrt(hidden))
            self.null = nn.Parameter(torch.randn(num_properties, dim) * 0.02)

    def forward(self, cond: Condition | None, batch: int, device: torch.device) -> Tensor:
        out = torch.zeros(batch, self.dim, device=device)
        if self.labels is not None:
            labels = cond.labels if cond is not None and cond.labels is not None else None
            if labels is None:
                labels = torch.full((batch,), NULL_LABEL, dtype=torch.long, device=device)
            if bool(((labels < NULL_LABEL) | (labels >= self.num_classes)).any()):
                raise ValueError(f"condition labels must lie in [0, {self.num_classes}) or be -1 (null)")
            # the null label is stored last in the table
            out = out + self.labels(torch.where(labels == NULL_LABEL, self.num_classes, labels))
        if self.num_properties > 0:
            values = cond.values if cond is not None and cond.values is not None else None
            if values is None:
                values = torch.full((batch, self.num_properties), float("nan"), device=device)
            if values.shape[-1] != self.num_properties:
                raise ValueError(
                    f"condition has {values.shape[-1]} property values, the denoiser expects {self.num_properties}"
                )
            present = ~torch.isnan(values)  # [B, P]
            v = torch.where(present, values, torch.zeros_like(values)).float()
            h = torch.nn.functional.silu(v.unsqueeze(-1) * self.w1 + self.b1)  # [B, P, H]
            emb = torch.einsum("bph,phd->bpd", h, self.w2)  # [B, P, D]
            emb = torch.where(present.unsqueeze(-1), emb, self.null.unsqueeze(0))
            out = out + emb.sum(dim=1)
        return out
