"""The guidance hook: an object mapping the denoiser's per-position reverse log-probabilities at one
step to guided ones, ``[B, L, S]``.

Every guidance is the unguided reverse transition times per-candidate weights, renormalised per position:
``log p_guided(xs^l = v) = log p(xs^l = v | xt) + sum_k w_k[l, v] - log Z`` (Schiff et al. 2025, Eqs. 6
and 8). Terms only supply log-weights, so classifier-free, classifier-based and user terms compose by
addition, and the sampler never needs to know which ones are present.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition
from guided_diffusion.gumbel import categorical
from guided_diffusion.processes.base import LOG_FLOOR, DiffusionProcess

if TYPE_CHECKING:
    from guided_diffusion.sampling.cache import DenoiserCache


class GuidanceStep:
    """Everything a guidance term may read at one reverse step from time ``t`` to ``s < t``.

    Denoiser outputs are computed lazily, once per condition, and :meth:`prefetch` batches several
    conditions into one network pass.

    Attributes:
        process: the noise process.
        xt: ``[B, L]`` current tokens.
        t, s: current and next time (floats in [0, 1]).
        generator: the sampler's random generator (for stochastic guidance).
    """

    def __init__(
        self,
        process: DiffusionProcess,
        cache: DenoiserCache,
        xt: Tensor,
        t: float,
        s: float,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        self.process = process
        self.xt = xt
        self.t = t
        self.s = s
        self.generator = generator
        self._cache = cache
        self._clean: dict[int, Tensor] = {}
        self._reverse: dict[int, Tensor] = {}
        self._hidden: tuple[Tensor, Tensor] | None = None

    @property
    def denoiser(self) -> nn.Module:
        """The sampler's denoiser."""
        return self._cache.denoiser

    def hidden_states(self) -> tuple[Tensor, Tensor]:
        """The denoiser's final hidden states ``[B, L, D]`` and conditioning ``[B, D]`` at ``xt`` under the null
        condition, for guidance that perturbs them (NOS, PPLM). Asked for before the unguided transition, the
        same network pass gives the null condition's clean-token log-probabilities."""
        if self._hidden is None:
            h, c, out = self._cache.null_hidden_states(self.xt, self.t)
            self._clean.setdefault(_key(None), out)
            self._hidden = (h, c)
        return self._hidden

    def logits_to_clean_log_probs(self, logits: Tensor) -> Tensor:
        """Clean-token log-probabilities ``[B, L, S]`` of denoiser ``logits`` for ``xt``, at the sampler's
        temperature: for guidance that computes its own logits (NOS, PPLM)."""
        return self._cache.tempered_clean_log_probs(logits, self.xt)

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the posterior computations (float32, or float64 when asked for)."""
        return self._cache.dtype

    def prefetch(self, conditions: Sequence[Condition | None]) -> None:
        """Evaluate the denoiser for every listed condition not yet evaluated, in one batched pass."""
        todo: dict[int, Condition | None] = {}
        for cond in conditions:
            key = _key(cond)
            if key not in self._clean and key not in todo:
                todo[key] = cond
        if todo:
            outputs = self._cache.clean_log_probs(list(todo.values()), self.xt, self.t)
            self._clean.update(zip(todo.keys(), outputs, strict=True))

    def clean_log_probs(self, cond: Condition | None = None) -> Tensor:
        """log x_theta(xt, cond): the denoiser's clean-token log-probabilities ``[B, L, S]``."""
        self.prefetch([cond])
        return self._clean[_key(cond)]

    def reverse_log_probs(self, cond: Condition | None = None) -> Tensor:
        """log p_theta(xs | xt, cond) ``[B, L, S]``."""
        key = _key(cond)
        if key not in self._reverse:
            self._reverse[key] = self.process.reverse_log_probs(self.clean_log_probs(cond), self.xt, self.t, self.s)
        return self._reverse[key]


def _key(cond: Condition | None) -> int:
    return 0 if cond is None else id(cond)


def apply_log_weights(base: Tensor, weights: Tensor | None) -> Tensor:
    """Add ``weights`` to ``base`` log-probabilities and renormalise per position, keeping the support of
    ``base`` (guidance can re-weight only transitions the unguided process allows)."""
    if weights is None:
        return base
    guided = torch.where(base > 0.5 * LOG_FLOOR, base + weights, torch.full_like(base, float("-inf")))
    return torch.log_softmax(guided, dim=-1).clamp_min(LOG_FLOOR)


class Guidance(ABC):
    """A guidance: maps a :class:`GuidanceStep` to guided reverse log-probabilities ``[B, L, S]``.

    Subclasses implement :meth:`log_weights` relative to the unguided reverse transition of
    :attr:`base_condition` (the null condition unless stated otherwise).
    """

    #: condition of the unguided transition the weights are applied to (``None`` = null condition)
    base_condition: Condition | None = None

    def conditions(self) -> list[Condition | None]:
        """Conditions this guidance will ask the denoiser for (batched into one pass per step)."""
        return []

    @abstractmethod
    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        """Per-candidate log-weights ``[B, L, S]`` (or ``None`` for none) to add to ``base``."""

    def base_log_probs(self, step: GuidanceStep) -> Tensor:
        """The unguided reverse transition the weights apply to, after one batched pass for every condition."""
        step.prefetch([self.base_condition, *self.conditions()])
        return step.reverse_log_probs(self.base_condition)

    def __call__(self, step: GuidanceStep) -> Tensor:
        base = self.base_log_probs(step)
        return apply_log_weights(base, self.log_weights(step, base))

    def draw(self, step: GuidanceStep, *, argmax: bool = False) -> Tensor:
        """The next tokens ``[B, L]``: a draw from the guided transition (its most likely tokens with
        ``argmax``). Terms that can draw without every candidate's weight override this; the draw must equal
        the Gumbel-max draw from ``self(step)`` with the same generator."""
        return draw_from(self(step), step, argmax=argmax)


def draw_from(log_probs: Tensor, step: GuidanceStep, *, argmax: bool = False) -> Tensor:
    """The Gumbel-max draw (or the argmax) of ``log_probs`` ``[B, L, S]`` with the step's generator."""
    return log_probs.argmax(dim=-1) if argmax else categorical(log_probs, step.generator)


class NoGuidance(Guidance):
    """Unguided sampling, optionally from the conditional denoiser ``p(xs | xt, condition)``."""

    def __init__(self, condition: Condition | None = None) -> None:
        self.base_condition = condition

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        return None
