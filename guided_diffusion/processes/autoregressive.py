"""Autoregressive generation as a deterministic masking process: at time t the first round((1 - t) L)
tokens are clean and the rest masked. Ancestral sampling with one step per position is then exactly
left-to-right sampling, so autoregressive baselines (CFG, FUDGE, PPLM) use the same sampler and guidance
hook as the diffusion models."""

from __future__ import annotations

import torch
from torch import Tensor

from guided_diffusion.processes.absorbing import AbsorbingProcess
from guided_diffusion.processes.base import LOG_FLOOR, DenoiseFn, LossOutput


class AutoregressiveProcess(AbsorbingProcess):
    """Left-to-right unmasking. States: ``S = vocab_size + 1`` (data tokens, then the mask).

    Its denoiser must be causal and read the sequence shifted by one (``AutoregressiveDenoiser``): the
    logits at position j predict x_j from x_<j. The likelihood is exact, so ``loss`` is the teacher-forced
    negative log-likelihood; the schedule and loss options of other processes are ignored.
    """

    name = "autoregressive"
    causal = True

    @staticmethod
    def clean_prefix(t: Tensor | float, length: int) -> Tensor:
        """Number of clean leading tokens at time ``t``: round((1 - t) L)."""
        return torch.round((1.0 - torch.as_tensor(t, dtype=torch.float64)) * length).long()

    def corrupt(self, x0: Tensor, t: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        """Keep a prefix of round((1 - t) L) tokens and mask the rest (deterministic given t)."""
        prefix = self.clean_prefix(t.detach().cpu(), x0.shape[1]).to(x0.device).reshape(-1, 1)  # [B, 1]
        keep = torch.arange(x0.shape[1], device=x0.device) < prefix
        return torch.where(keep, x0, torch.full_like(x0, self.mask_id))

    def reverse_log_probs(self, clean_log_probs: Tensor, xt: Tensor, t: Tensor | float, s: Tensor | float) -> Tensor:
        """The next position takes the denoiser's next-token distribution; every other position stays.

        Raises:
            ValueError: if the step from t to s would reveal more than one position (steps != length).
        """
        length = xt.shape[1]
        first, last = int(self.clean_prefix(t, length).max()), int(self.clean_prefix(s, length).min())
        if last - first > 1:
            raise ValueError(f"autoregressive sampling takes one step per position: use steps = length ({length})")
        stay = torch.full_like(clean_log_probs, LOG_FLOOR).scatter_(-1, xt.unsqueeze(-1), 0.0)
        reveal = (torch.arange(length, device=xt.device) == first) & (first < last)  # [L]
        return torch.where((reveal & self.is_noise(xt)).unsqueeze(-1), clean_log_probs, stay)

    def _teacher_forced_nll(self, logits: Tensor, x0: Tensor) -> Tensor:
        log_p = torch.log_softmax(logits[..., : self.vocab_size].float(), dim=-1)
        return -log_p.gather(-1, x0.unsqueeze(-1)).squeeze(-1)  # [B, L]

    def continuous_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        raise ValueError("the autoregressive process has an exact likelihood: use loss()")

    def discrete_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor, s: Tensor) -> Tensor:
        raise ValueError("the autoregressive process has an exact likelihood: use loss()")

    def loss(
        self,
        denoise_fn: DenoiseFn,
        x0: Tensor,
        *,
        generator: torch.Generator | None = None,
        t: Tensor | None = None,
    ) -> LossOutput:
        """Exact negative log-likelihood: sum over positions of -log p(x_j | x_<j)."""
        times = torch.zeros(x0.shape[0], device=x0.device)
        nll = self._teacher_forced_nll(denoise_fn(x0, times), x0).sum(dim=1)  # [B]
        return LossOutput(loss=nll.mean() / x0.shape[1], nelbo=nll, t=times)
