"""Discrete classifier-based guidance, D-CBG (Schiff et al. 2025, Sec. 3.2; Nisonoff et al. 2025):
p_gamma(xs^l = v | xt, y) proportional to p(xs^l = v | xt) p(y | xt with position l set to v)^gamma,
evaluated exactly over one-token changes or to first order from one gradient.

Exact guidance can draw its tokens lazily when the log-likelihood has a known upper bound (0 for any
log-probability): the Gumbel-max draw of each position is ``argmax_v log p(v | xt) + gamma log p(y | xt^(l->v))
+ G_v``, and a candidate whose bound ``log p(v | xt) + gamma * bound + G_v`` is already below the best score
found cannot win, so it is never scored. Candidates are scored in order of their bounds, so the draw is the
one that scoring every candidate gives, for the same generator, at a fraction of the classifier calls.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

import torch
import torch.nn.functional as F
from torch import Tensor

from guided_diffusion.guidance.base import Guidance, GuidanceStep
from guided_diffusion.gumbel import gumbel_noise
from guided_diffusion.networks.passes import row_slices, rows_per_pass
from guided_diffusion.processes.base import LOG_FLOOR

# log p(y | x, t): x is [B, L] token ids (or [B, L, S] one-hot / soft for first-order guidance), t is [B]
LogLikelihood = Callable[[Tensor, Tensor], Tensor]


class BoundedLogLikelihood:
    """A log-likelihood with a known upper bound (0 for a log-probability); exact D-CBG uses the bound to
    draw lazily. Calls pass through to ``fn``."""

    def __init__(self, fn: LogLikelihood, upper_bound: float) -> None:
        self.fn = fn
        self.upper_bound = float(upper_bound)

    def __call__(self, x: Tensor, t: Tensor) -> Tensor:
        return self.fn(x, t)


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
        max_rows: exact mode: candidate sequences per classifier call at most (memory bound; fewer on a CPU).
        upper_bound: an upper bound on ``log_likelihood`` (0 for a log-probability); default: the bound of a
            :class:`BoundedLogLikelihood`, else none. With a bound, exact mode draws tokens lazily (see the
            module docstring).
        lazy: exact mode with an ``upper_bound``: draw lazily (False scores every candidate, same draws).
    """

    def __init__(
        self,
        log_likelihood: LogLikelihood,
        *,
        guidance_scale: float = 1.0,
        mode: CBGMode | str = CBGMode.EXACT,
        top_k: int | None = None,
        max_rows: int = 4096,
        upper_bound: float | None = None,
        lazy: bool = True,
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
        if upper_bound is None and isinstance(log_likelihood, BoundedLogLikelihood):
            upper_bound = log_likelihood.upper_bound
        self.upper_bound = upper_bound
        self.lazy = lazy
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

    def _candidates(self, base: Tensor, xt: Tensor) -> Tensor:
        """``[B, L, S]`` bool: the one-token changes to score, i.e. the states the unguided step can reach other
        than the current token, pruned to the ``top_k`` most likely under the denoiser."""
        allowed = base > 0.5 * LOG_FLOOR
        allowed.scatter_(-1, xt.unsqueeze(-1), False)
        if self.top_k is not None and self.top_k < base.shape[-1] - 1:
            ranked = torch.where(allowed, base, torch.full_like(base, float("-inf")))
            keep = torch.zeros_like(allowed)
            keep.scatter_(-1, ranked.topk(self.top_k, dim=-1).indices, True)
            allowed &= keep
        return allowed

    def _score(self, xt: Tensor, times: Tensor, rows: Tensor, pos: Tensor, val: Tensor) -> Tensor:
        """log p(y | xt[rows] with position ``pos`` set to ``val``), one per triple, in chunks of at most
        max_rows (on a CPU, of the rows that keep a pass's activations in cache: see networks.passes)."""
        out = []
        for part in row_slices(rows.numel(), rows_per_pass(xt.device, xt.shape[1], limit=self.max_rows)):
            r, p, v = rows[part], pos[part], val[part]
            candidates = xt[r].clone()  # [C, L]
            candidates[torch.arange(r.numel(), device=xt.device), p] = v
            out.append(self.log_likelihood(candidates, times[r]))
            self.classifier_calls += r.numel()
        return torch.cat(out) if out else torch.zeros(0, device=xt.device)

    @torch.no_grad()
    def _exact(self, step: GuidanceStep, base: Tensor) -> Tensor:
        xt = step.xt
        length = xt.shape[1]
        times = self._times(step)
        current = self.log_likelihood(xt, times).to(base.dtype)  # [B]
        self.classifier_calls += xt.shape[0]
        scores = torch.full_like(base, float("-inf"))
        scores.scatter_(-1, xt.unsqueeze(-1), current.reshape(-1, 1, 1).expand(-1, length, 1))
        rows, pos, val = self._candidates(base, xt).nonzero(as_tuple=True)  # one candidate per triple
        scores[rows, pos, val] = self._score(xt, times, rows, pos, val).to(base.dtype)
        return scores

    def draws_lazily(self, argmax: bool) -> bool:
        """Whether :meth:`draw` skips candidates that cannot win (exact mode, a known bound, a random draw)."""
        return (
            self.lazy
            and self.mode is CBGMode.EXACT
            and self.upper_bound is not None
            and self.guidance_scale > 0
            and not argmax
        )

    def draw(self, step: GuidanceStep, *, argmax: bool = False) -> Tensor:
        if not self.draws_lazily(argmax):
            return super().draw(step, argmax=argmax)
        return lazy_exact_draw(step, self.base_log_probs(step), [self])


@torch.no_grad()
def lazy_exact_draw(
    step: GuidanceStep, base: Tensor, terms: list[ClassifierGuidance], extra: Tensor | None = None
) -> Tensor:
    """The Gumbel-max draw from ``base`` guided by the exact D-CBG ``terms`` (each with an upper bound) and
    other terms' log-weights ``extra``, scoring a candidate only while its upper bound can still beat the best
    score found at its position.

    Uses the generator exactly as the sampler's draw from the fully scored transition does, so both give the
    same tokens. A candidate is one every term scores (the intersection of their top-k sets).
    """
    if not terms or any(t.upper_bound is None for t in terms):
        raise ValueError("a lazy exact draw needs terms whose log-likelihoods have an upper_bound")
    xt = step.xt
    times = terms[0]._times(step)
    support = base > 0.5 * LOG_FLOOR
    logits = base if extra is None else base + extra
    logits = torch.where(support, logits, torch.full_like(logits, float("-inf")))
    perturbed = logits + gumbel_noise(base, step.generator)  # [B, L, S]
    currents, slack = [], torch.zeros(xt.shape[0], dtype=base.dtype, device=xt.device)
    allowed = torch.ones_like(support)
    for term in terms:
        current = term.log_likelihood(xt, times).to(base.dtype)  # [B]
        term.classifier_calls += xt.shape[0]
        currents.append(current)
        slack += term.guidance_scale * (float(term.upper_bound or 0.0) - current)
        allowed &= term._candidates(base, xt)
    # staying keeps the current log-likelihoods: its weight relative to the current sequence is 0
    best = perturbed.gather(-1, xt.unsqueeze(-1)).squeeze(-1)  # [B, L]
    winner = xt.clone()
    bounds = torch.where(allowed, perturbed + slack.reshape(-1, 1, 1), torch.full_like(perturbed, float("-inf")))
    bounds, order = bounds.sort(dim=-1, descending=True)
    for rank in range(bounds.shape[-1]):  # the rank-th best bound of every position still open
        open_ = bounds[..., rank] > best
        if not bool(open_.any()):
            break
        rows, pos = open_.nonzero(as_tuple=True)
        val = order[rows, pos, rank]
        z = perturbed[rows, pos, val]
        for term, current in zip(terms, currents, strict=True):
            score = term._score(xt, times, rows, pos, val).to(base.dtype)
            z = z + term.guidance_scale * (score - current[rows])
        better = z > best[rows, pos]
        best[rows[better], pos[better]] = z[better]
        winner[rows[better], pos[better]] = val[better]
    return winner
