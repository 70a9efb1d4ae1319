"""Uniform-noise diffusion, UDLM (Schiff et al. 2025, Sec. 4): closed-form reverse posterior and the
closed-form continuous-time NELBO (valid for any schedule alpha_t), plus the discrete-time NELBO."""

from __future__ import annotations

import torch
from torch import Tensor

from guided_diffusion.processes.base import LOG_FLOOR, DiffusionProcess, expand_time


class UniformProcess(DiffusionProcess):
    """Uniform noise: q(xt | x0) = Cat(alpha_t x0 + (1 - alpha_t) / V); noise draws data tokens only.

    States: ``S = vocab_size`` (there is no mask).
    """

    name = "uniform"

    @property
    def num_states(self) -> int:
        return self.vocab_size

    @property
    def time_conditioned_by_default(self) -> bool:
        return True

    def is_noise(self, xt: Tensor) -> Tensor:
        return torch.zeros_like(xt, dtype=torch.bool)

    def corrupt(self, x0: Tensor, t: Tensor, *, generator: torch.Generator | None = None) -> Tensor:
        alpha = self.schedule.alpha(t.float()).reshape(-1, 1)  # [B, 1]
        keep = torch.rand(x0.shape, generator=generator, device=x0.device) < alpha
        noise = torch.randint(0, self.vocab_size, x0.shape, generator=generator, device=x0.device)
        return torch.where(keep, x0, noise)

    def prior(
        self, batch: int, length: int, *, generator: torch.Generator | None = None, device: torch.device
    ) -> Tensor:
        return torch.randint(0, self.vocab_size, (batch, length), generator=generator, device=device)

    def clean_log_probs(self, logits: Tensor, xt: Tensor) -> Tensor:
        return torch.log_softmax(logits, dim=-1).clamp_min(LOG_FLOOR)

    def reverse_log_probs(self, clean_log_probs: Tensor, xt: Tensor, t: Tensor | float, s: Tensor | float) -> Tensor:
        """log q(xs | xt, x = x_theta), computed in log space:
        [alpha_t N x*xt + (alpha_{t|s} - alpha_t) xt + (alpha_s - alpha_t) x
         + (1 - alpha_{t|s})(1 - alpha_s)/N] / (alpha_t N <x, xt> + 1 - alpha_t)."""
        batch = xt.shape[0]
        n = self.vocab_size
        dtype = clean_log_probs.dtype
        alpha_t = self.schedule.alpha(expand_time(t, batch, xt.device, dtype))  # [B, 1, 1]
        alpha_s = self.schedule.alpha(expand_time(s, batch, xt.device, dtype))
        alpha_ts = alpha_t / alpha_s
        const = (1.0 - alpha_ts) * (1.0 - alpha_s) / n  # weight on every state
        log_num = torch.logaddexp(torch.log(alpha_s - alpha_t) + clean_log_probs, torch.log(const))
        # the state xt gets two extra terms: alpha_t N x[xt] and (alpha_{t|s} - alpha_t)
        log_x_at = clean_log_probs.gather(-1, xt.unsqueeze(-1))  # [B, L, 1]
        log_num_at = torch.logaddexp(
            torch.log(alpha_s - alpha_t + alpha_t * n) + log_x_at,
            torch.log(const + alpha_ts - alpha_t),
        )
        log_num = log_num.scatter(-1, xt.unsqueeze(-1), log_num_at)
        return torch.log_softmax(log_num, dim=-1).clamp_min(LOG_FLOOR)

    def classifier_free_log_probs(
        self,
        cond_clean: Tensor,
        uncond_clean: Tensor,
        xt: Tensor,
        t: Tensor | float,
        s: Tensor | float,
        scale: float,
    ) -> Tensor:
        """Mix the reverse posteriors in log space and renormalise per position."""
        cond = self.reverse_log_probs(cond_clean, xt, t, s)
        uncond = self.reverse_log_probs(uncond_clean, xt, t, s)
        return torch.log_softmax(scale * cond + (1.0 - scale) * uncond, dim=-1).clamp_min(LOG_FLOOR)

    def _log_xbar(self, log_x: Tensor, alpha: Tensor) -> Tensor:
        """log(N alpha x + 1 - alpha) for ``log_x`` [B, L, N] and ``alpha`` [B, 1, 1]."""
        return torch.logaddexp(torch.log(self.vocab_size * alpha) + log_x, torch.log1p(-alpha))

    def continuous_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor) -> Tensor:
        n = self.vocab_size
        alpha = self.schedule.alpha(t.to(log_x.dtype)).reshape(-1, 1, 1)  # [B, 1, 1]
        dalpha = self.schedule.alpha_prime(t.to(log_x.dtype)).reshape(-1, 1)  # [B, 1]
        log_xbar_theta = self._log_xbar(log_x, alpha)  # [B, L, N]
        # xbar for the one-hot x0: 1 - alpha everywhere, plus N alpha at x0
        xbar = (1.0 - alpha).expand_as(log_x).clone()
        xbar.scatter_add_(-1, x0.unsqueeze(-1), (n * alpha).expand(-1, x0.shape[1], 1))
        log_xbar = torch.log(xbar)
        xbar_i = xbar.gather(-1, xt.unsqueeze(-1)).squeeze(-1)  # [B, L]
        log_xbar_i = log_xbar.gather(-1, xt.unsqueeze(-1)).squeeze(-1)
        log_xbar_theta_i = log_xbar_theta.gather(-1, xt.unsqueeze(-1)).squeeze(-1)
        term1 = n / xbar_i - n * torch.exp(-log_xbar_theta_i)
        # sum_j xbar_j / xbar_i [log xbar_theta_i - log xbar_theta_j + log xbar_j - log xbar_i],
        # using sum_j xbar_j = N
        # xbar_j = 0 only where alpha_t rounds to 1 (t ~ 0): those states contribute nothing
        kl_like = torch.where(xbar > 0, xbar * (log_xbar - log_xbar_theta), torch.zeros_like(xbar)).sum(-1)
        term2 = (kl_like + n * (log_xbar_theta_i - log_xbar_i)) / xbar_i
        return dalpha / (n * alpha.reshape(-1, 1)) * (term1 - term2)

    def discrete_nelbo_terms(self, log_x: Tensor, x0: Tensor, xt: Tensor, t: Tensor, s: Tensor) -> Tensor:
        one_hot = torch.full_like(log_x, LOG_FLOOR).scatter_(-1, x0.unsqueeze(-1), 0.0)
        log_q = self.reverse_log_probs(one_hot, xt, t, s)
        log_p = self.reverse_log_probs(log_x, xt, t, s)
        return (log_q.exp() * (log_q - log_p)).sum(-1)
