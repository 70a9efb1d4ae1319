"""Several guidance terms at once: the guided log-probabilities are the unguided ones plus the sum of every
term's log-weights, renormalised per position (each term keeps its own guidance scale)."""

from __future__ import annotations

from torch import Tensor

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance.base import Guidance, GuidanceStep
from guided_diffusion.guidance.classifier import ClassifierGuidance


class ComposedGuidance(Guidance):
    """Apply ``terms`` together, e.g. D-CFG on one property and D-CBG on another.

    Raises:
        ValueError: if the terms disagree on the unguided transition they weight (``base_condition``).
    """

    def __init__(self, *terms: Guidance) -> None:
        if not terms:
            raise ValueError("ComposedGuidance needs at least one term")
        bases = {id(t.base_condition) for t in terms}
        if len(bases) > 1:
            raise ValueError("composed guidance terms must share one base condition")
        self.terms = terms
        self.base_condition = terms[0].base_condition

    def conditions(self) -> list[Condition | None]:
        return [cond for term in self.terms for cond in term.conditions()]

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        total: Tensor | None = None
        for term in self.terms:
            weights = term.log_weights(step, base)
            if weights is not None:
                total = weights if total is None else total + weights
        return total

    def draw(self, step: GuidanceStep, *, argmax: bool = False) -> Tensor:
        """With one lazily drawing exact D-CBG term, the other terms' log-weights are computed in full and that
        term draws from them (same tokens as scoring every candidate); otherwise the full guided draw."""
        lazy = [t for t in self.terms if isinstance(t, ClassifierGuidance) and t.draws_lazily(argmax)]
        if len(lazy) != 1:
            return super().draw(step, argmax=argmax)
        step.prefetch([self.base_condition, *self.conditions()])
        base = step.reverse_log_probs(self.base_condition)
        extra: Tensor | None = None
        for term in self.terms:
            if term is not lazy[0]:
                weights = term.log_weights(step, base)
                if weights is not None:
                    extra = weights if extra is None else extra + weights
        return lazy[0].draw_exact(step, base, extra)
