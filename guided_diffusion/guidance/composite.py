"""Several guidance terms at once: the guided log-probabilities are the unguided ones plus the sum of every
term's log-weights, renormalised per position (each term keeps its own guidance scale)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance.base import Guidance, GuidanceStep
from guided_diffusion.guidance.classifier import ClassifierGuidance, lazy_exact_draw


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
        return _summed_weights(self.terms, step, base)

    def draw(self, step: GuidanceStep, *, argmax: bool = False) -> Tensor:
        """Exact D-CBG terms with bounded log-likelihoods draw lazily, together, from the unguided transition
        plus the other terms' log-weights (same tokens as scoring every candidate); otherwise the full draw."""
        lazy = [t for t in self.terms if isinstance(t, ClassifierGuidance) and t.draws_lazily(argmax)]
        if not lazy:
            return super().draw(step, argmax=argmax)
        base = self.base_log_probs(step)
        others = [term for term in self.terms if not any(term is t for t in lazy)]
        return lazy_exact_draw(step, base, lazy, _summed_weights(others, step, base))


def _summed_weights(terms: Sequence[Guidance], step: GuidanceStep, base: Tensor) -> Tensor | None:
    """The sum of the terms' log-weights (None when no term has any)."""
    total: Tensor | None = None
    for term in terms:
        weights = term.log_weights(step, base)
        if weights is not None:
            total = weights if total is None else total + weights
    return total
