"""What the processes whose noise is one extra token, the mask, share: masked diffusion (MDLM) and
left-to-right generation (the autoregressive process). Both reveal masked positions and never change a
revealed one, so the denoiser's output is read the same way (SUBS) and D-CFG mixes the same thing."""

from __future__ import annotations

import torch
from torch import Tensor

from guided_diffusion.processes.base import LOG_FLOOR, DiffusionProcess


class AbsorbingProcess(DiffusionProcess):
    """States: ``S = vocab_size + 1`` (data tokens, then the mask ``mask_id = vocab_size``); the prior is
    every position masked. Subclasses give the forward noise, the reverse step and the loss."""

    @property
    def num_states(self) -> int:
        return self.vocab_size + 1

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def time_conditioned_by_default(self) -> bool:
        return False

    def is_noise(self, xt: Tensor) -> Tensor:
        return xt == self.mask_id

    def prior(
        self, batch: int, length: int, *, generator: torch.Generator | None = None, device: torch.device
    ) -> Tensor:
        return torch.full((batch, length), self.mask_id, dtype=torch.long, device=device)

    def clean_log_probs(self, logits: Tensor, xt: Tensor) -> Tensor:
        """SUBS: the mask is never predicted, and unmasked positions copy their token."""
        logits = logits.clone()
        logits[..., self.mask_id] = float("-inf")
        log_x = torch.log_softmax(logits, dim=-1).clamp_min(LOG_FLOOR)
        carry = torch.full_like(log_x, LOG_FLOOR).scatter_(-1, xt.unsqueeze(-1), 0.0)
        return torch.where(self.is_noise(xt).unsqueeze(-1), log_x, carry)

    def classifier_free_log_probs(
        self,
        cond_clean: Tensor,
        uncond_clean: Tensor,
        xt: Tensor,
        t: Tensor | float,
        s: Tensor | float,
        scale: float,
    ) -> Tensor:
        """Mix the clean-token predictions, softmax(g log x(c) + (1 - g) log x(null)), then take the usual
        reverse step: the probability of staying masked, hence the unmasking rate, is unchanged (for the
        autoregressive process: CFG on the next-token distribution)."""
        mixed = scale * cond_clean + (1.0 - scale) * uncond_clean
        mixed[..., self.mask_id] = float("-inf")
        mixed = torch.log_softmax(mixed, dim=-1).clamp_min(LOG_FLOOR)
        mixed = torch.where(self.is_noise(xt).unsqueeze(-1), mixed, uncond_clean)
        return self.reverse_log_probs(mixed, xt, t, s)
