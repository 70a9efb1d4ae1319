"""A causal transformer as a denoiser for :class:`AutoregressiveProcess`: the input is shifted right behind a
beginning-of-sequence token, so the logits at position j predict x_j from x_<j."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition
from guided_diffusion.networks.dit import Denoiser, DenoiserConfig


class AutoregressiveDenoiser(nn.Module):
    """Wraps a causal :class:`Denoiser` whose vocabulary has one extra input token (BOS, the last id).

    Exposes the denoiser interface (``forward``, ``hidden_states``, ``head``, ``config``), with outputs over
    the process states (the BOS logit is dropped).
    """

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        if not cfg.causal or cfg.time_conditioning:
            raise ValueError("an autoregressive denoiser must be causal and must not see t")
        self.net = Denoiser(cfg)
        self.config = cfg
        self.bos_id = cfg.num_states - 1

    @property
    def time_conditioned(self) -> bool:
        return False

    def hidden_states(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        bos = torch.full_like(xt[:, :1], self.bos_id)
        return self.net.hidden_states(torch.cat([bos, xt[:, :-1]], dim=1), t, cond)  # shifted [B, L]

    def head(self, h: Tensor, c: Tensor) -> Tensor:
        return self.net.head(h, c)[..., : self.bos_id]

    def forward(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> Tensor:
        h, c = self.hidden_states(xt, t, cond)
        return self.head(h, c)
