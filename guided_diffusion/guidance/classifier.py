"""Discrete classifier-based guidance, D-CBG (Schiff et al. 2025, Sec. 3.2; Nisonoff et al. 2025):
p_gamma(xs^l = v | xt, y) proportional to p(xs^l = v | xt) p(y | xt with position l set to v)^gamma,
evaluated exactly over one-token changes or to first order from one gradient."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import Tensor

from guided_diffusion.guidance.base import Guidance, GuidanceStep
from guided_diffusion.processes.base import LOG_FLOOR

# log p(y | x, t): x is [B, L] token ids (or [B, L, S] one-hot / soft for first-order guidance), t is [B]
LogLikelihood = Callable[[Tensor, Tensor], Tensor]


class CBGMode(StrEnum):
    """How log p(y | xt with one token changed) is obtained."""

    EXACT = "exact"  # evaluate every candidate sequence (chunked, optionally pruned to the top-k)
    FIRST_ORDER = "first-order"  # log p(y | xt) + g[l, v] - g[l, xt^l], g the gradient wrt the one-hot input


class ClassifierGuidance(Guidance):
    """D-CBG with a noisy classifier's log-likelihood.

    Args:
        log_likelihood: ``(x, t) -> [B]`` log p(y | x, t); must accept ``[B, L, S]`` one-hot floats and be
            differentiable for ``first-order`` mode.
        guidance_scale: the paper's gamma (0 = unguided).
        mode: ``exact`` or ``first-order``.
        top_k: exact mode only: per position, score only the ``top_k`` most likely changes under the
            denoiser (the others are excluded, as in top-k sampling); None scores every candidate.
        max_rows: exact mode: candidate sequences per classifier call (memory bound).
    """

    def __init__(
        self,
        log_likelihood: LogLikelihood,
        *,
        guidance_scale: float = 1.0,
        mode: CBGMode | str = CBGMode.EXACT,
        top_k: int | None = None,
        max_rows: int = 4096,
    ) -> None:
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if top_k is not None and top_k < 1:
            raise ValueError(f"top_k must be >= 1 or None, got {top_k}")
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        self.log_likelihood = log_likelihood
        self.guidance_scale = float(guidance_scale)
        self.mode = CBGMode(mode)
        self.top_k = top_k
        self.max_rows = max_rows
        self.classifier_calls = 0  # sequences scored, for cost reporting

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        if self.guidance_scale == 0.0:
            return None
        scores = self.candidate_scores(step, base)
        return self.guidance_scale * scores

    def candidate_scores(self, step: GuidanceStep, base: Tensor) -> Tensor:
        """``[B, L, S]`` log p(y | xt with position l set to v); -inf for pruned candidates."""
        if self.mode is CBGMode.FIRST_ORDER:
            return self._first_order(step, base)
        return self._exact(step, base)

    def _times(self, step: GuidanceStep) -> Tensor:
        return torch.full((step.xt.shape[0],), float(step.t), device=step.xt.device)

    def _first_order(self, step: GuidanceStep, base: Tensor) -> Tensor:
        xt = step.xt
        with torch.enable_grad():
            one_hot = F.one_hot(xt, base.shape[-1]).to(base.dtype).requires_grad_(True)  # [B, L, S]
            current = self.log_likelihood(one_hot, self._times(step))  # [B]
            (grad,) = torch.autograd.grad(current.sum(), one_hot)
        self.classifier_calls += xt.shape[0]
        at_current = grad.gather(-1, xt.unsqueeze(-1))  # [B, L, 1]
        scores = current.detach().reshape(-1, 1, 1) + grad - at_current
        return scores.to(base.dtype)

    @torch.no_grad()
    def _exact(self, step: GuidanceStep, base: Tensor) -> Tensor:
        xt = step.xt
        batch, length, states = base.shape
        times = self._times(step)
        current = self.log_likelihood(xt, times).to(base.dtype)  # [B]
        self.classifier_calls += batch
        # candidates: states the unguided step can reach, other than the current token
        allowed = base > 0.5 * LOG_FLOOR  # [B, L, S]
        allowed.scatter_(-1, xt.unsqueeze(-1), False)
        if self.top_k is not None and self.top_k < states - 1:
            ranked = torch.where(allowed, base, torch.full_like(base, float("-inf")))
            keep = torch.zeros_like(allowed)
            keep.scatter_(-1, ranked.topk(self.top_k, dim=-1).indices, True)
            allowed &= keep
        scores = torch.full_like(base, float("-inf"))
        scores.scatter_(-1, xt.unsqueeze(-1), current.reshape(-1, 1, 1).expand(-1, length, 1))
        rows, pos, val = allowed.nonzero(as_tuple=True)  # one candidate per triple
        for start in range(0, rows.numel(), self.max_rows):
            r, p, v = (idx[start : start + self.max_rows] for idx in (rows, pos, val))
            candidates = xt[r].clone()  # [C, L]
            candidates[torch.arange(r.numel(), device=xt.device), p] = v
            scores[r, p, v] = self.log_likelihood(candidates, times[r]).to(base.dtype)
            self.classifier_calls += r.numel()
        return scores
