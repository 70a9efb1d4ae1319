"""Discrete classifier-free guidance, D-CFG (Schiff et al. 2025, Sec. 3.1):
p_gamma(xs | xt, y) proportional to p(xs | xt, y)^gamma p(xs | xt)^(1 - gamma)."""

from __future__ import annotations

from torch import Tensor

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance.base import Guidance, GuidanceStep


class ClassifierFreeGuidance(Guidance):
    """D-CFG toward ``condition``.

    The mixing rule belongs to the process (:meth:`DiffusionProcess.classifier_free_log_probs`): the
    masked process mixes clean-token predictions so the unmasking rate is unchanged; the uniform process
    mixes the reverse posteriors. The conditional and null passes share one batched network call.

    Args:
        condition: what to condition on (labels and/or property values; NaN entries are free).
        guidance_scale: the paper's gamma; 0 = unconditional, 1 = conditional, > 1 = stronger.
    """

    def __init__(self, condition: Condition, *, guidance_scale: float = 1.0) -> None:
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        self.condition = condition
        self.guidance_scale = float(guidance_scale)

    def conditions(self) -> list[Condition | None]:
        return [self.condition]

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        if self.guidance_scale == 0.0:
            return None
        guided = step.process.classifier_free_log_probs(
            step.clean_log_probs(self.condition),
            step.clean_log_probs(None),
            step.xt,
            step.t,
            step.s,
            self.guidance_scale,
        )
        return guided - base
