"""Tiny deterministic denoisers for unit tests."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition


class TableDenoiser(nn.Module):
    """Logits from a fixed random table indexed by (position, current token), shifted by the label.

    It ignores t, like an MDLM denoiser, unless ``time_conditioned`` is set (then logits scale with t).
    """

    def __init__(
        self, num_states: int, length: int, *, num_classes: int = 2, time_conditioned: bool = False, seed: int = 0
    ):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.table = nn.Parameter(torch.randn(length, num_states, num_states, generator=gen))
        self.label_shift = nn.Parameter(torch.randn(num_classes + 1, num_states, generator=gen))
        self.time_conditioned = time_conditioned
        self.calls = 0

    def forward(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> Tensor:
        self.calls += 1
        batch, length = xt.shape
        logits = self.table[torch.arange(length), xt]  # [B, L, S]
        labels = torch.full((batch,), -1, dtype=torch.long)
        if cond is not None and cond.labels is not None:
            labels = cond.labels
        logits = logits + self.label_shift[torch.where(labels < 0, self.label_shift.shape[0] - 1, labels)].unsqueeze(1)
        if self.time_conditioned:
            logits = logits * (1.0 + t.reshape(-1, 1, 1))
        return logits
