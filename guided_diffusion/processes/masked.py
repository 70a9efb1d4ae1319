"""Masked (absorbing-state) diffusion, MDLM (Sahoo et al. 2024): SUBS parameterisation, Eq. 8 reverse
step, Eq. 10 continuous-time NELBO, and the discrete-time (D3PM-style) NELBO."""

from __future__ import annotations

import torch
from torch import Tensor

from guided_diffusion.processes.base import LOG_FLOOR, DiffusionProcess, expand_time


class MaskedProcess(DiffusionProcess):
    """Absorbing-state noise: each token becomes ``mask_id = vocab_size`` with probability 1 - alpha_t.

    States: ``S = vocab_size + 1`` (data tokens, then the mask).
    """

    name = "masked"

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

    def corrupt(self, x0: Tensor, t: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        alpha = self.schedule.alpha(t.float()).reshape(-1, 1)  # [B, 1]
        keep = torch.rand(x0.shape, generator=generator, device=x0.device) < alpha
        return torch.where(keep, x0, torch.full_like(x0, self.mask_id))

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

    def reverse_log_probs(self, clean_log_probs: Tensor, xt: Tensor, t: Tensor | float, s: Tensor | float) -> Tensor:
        batch = xt.shape[0]
        dtype = clean_log_probs.dtype
        alpha_t = self.schedule.alpha(expand_time(t, batch, xt.device, dtype))
        alpha_s = self.schedule.alpha(expand_time(s, batch, xt.device, dtype))
        # p(v) = x_theta[v] (alpha_s - alpha_t) / (1 - alpha_t); p(mask) = (1 - alpha_s) / (1 - alpha_t)
        log_unmask = torch.log(alpha_s - alpha_t) - torch.log1p(-alpha_t)  # [B, 1, 1]
        log_stay = torch.log1p(-alpha_s) - torch.log1p(-alpha_t)
        out = clean_log_probs + log_unmask
        out[..., self.mask_id : self.mask_id + 1] = log_stay.expand(-1, xt.shape[1], 1)
        out = out.clamp_min(LOG_FLOOR)
        # unmasked positions keep their token: clean_log_probs is already one-hot there (SUBS)
        return torch.where(self.is_noise(xt).unsqueeze(-1), out, clean_log_probs)

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
        reverse step: the probability of staying masked, hence the unmasking rate, is unchanged."""
        mixed = scale * cond_clean + (1.0 - scale) * uncond_clean
        mixed[..., self.mask_id] = float("-inf")
        mixed = torch.log_softmax(mixed, dim=-1).clamp_min(LOG_FLOOR)
        mixed = torch.where(self.is_noise(xt).unsqueeze(-1), mixed, uncond_clean)
        return self.reverse_log_probs(mixed, xt, t, s)

    def continuous_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        # -alpha'_t / (1 - alpha_t) * (-log x_theta[x0]) at masked positions (MDLM Eq. 10)
        alpha = self.schedule.alpha(t.to(log_x.dtype))
        weight = (-self.schedule.alpha_prime(t.to(log_x.dtype)) / (1.0 - alpha)).reshape(-1, 1)  # [B, 1]
        nll = -log_x.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # [B, L]
        return torch.where(self.is_noise(xt), weight * nll, torch.zeros_like(nll))

    def discrete_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor, s: Tensor) -> Tensor:
        # KL between the true and model posteriors at a masked position reduces to
        # (alpha_s - alpha_t) / (1 - alpha_t) * (-log x_theta[x0]); unmasked positions contribute 0.
        alpha_t = self.schedule.alpha(t.to(log_x.dtype))
        alpha_s = self.schedule.alpha(s.to(log_x.dtype))
        weight = ((alpha_s - alpha_t) / (1.0 - alpha_t)).reshape(-1, 1)
        nll = -log_x.gather(-1, x0.unsqueeze(-1)).squeeze(-1)
        return torch.where(self.is_noise(xt), weight * nll, torch.zeros_like(nll))
