"""Discrete classifier-free guidance, D-CFG (Schiff et al. 2025, Sec. 3.1):
p_gamma(xs | xt, y) proportional to p(xs | xt, y)^gamma p(xs | xt)^(1 - gamma)."""

from __future__ import annotations

import math

from torch import Tensor

from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance.base import Guidance, GuidanceStep


def _check_interval(lo: float, hi: float, shown: object) -> None:
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"a guidance interval is LO,HI with 0 <= LO < HI <= 1 (times; e.g. 0.5,1), got {shown!r}")


def parse_interval(text: str) -> tuple[float, float]:
    """A guidance interval ``"LO,HI"`` as ``(lo, hi)``.

    Raises:
        ValueError: unless the text is two numbers with ``0 <= lo < hi <= 1``.
    """
    parts = text.split(",")
    try:
        lo, hi = (float(x) for x in parts) if len(parts) == 2 else (math.nan, math.nan)
    except ValueError:
        lo = hi = math.nan
    _check_interval(lo, hi, text)
    return lo, hi


class ClassifierFreeGuidance(Guidance):
    """D-CFG toward ``condition``.

    The mixing rule belongs to the process (:meth:`DiffusionProcess.classifier_free_log_probs`): the
    masked process mixes clean-token predictions so the unmasking rate is unchanged; the uniform process
    mixes the reverse posteriors. The conditional and null passes share one batched network call.

    With ``interval=(lo, hi)`` the guidance applies only at steps whose current time t lies in
    ``[lo, hi]``; the other steps draw from the conditional model alone (gamma = 1), which needs no null
    pass, so a step outside the interval costs what an unguided step does (a guidance interval, as
    Kynkäänniemi et al. 2024 propose for continuous diffusion). A step taken at gamma = 1 never runs the
    null pass either.

    Args:
        condition: what to condition on (labels and/or property values; NaN entries are free).
        guidance_scale: the paper's gamma; 0 = unconditional, 1 = conditional, > 1 = stronger.
        interval: the times ``(lo, hi)``, ``0 <= lo < hi <= 1``, at which gamma applies (None: every step).

    Raises:
        ValueError: for a negative scale or an interval outside ``0 <= lo < hi <= 1``.
    """

    def __init__(
        self,
        condition: Condition,
        *,
        guidance_scale: float = 1.0,
        interval: tuple[float, float] | None = None,
    ) -> None:
        if guidance_scale < 0:
            raise ValueError(f"guidance_scale must be >= 0, got {guidance_scale}")
        if interval is not None:
            _check_interval(interval[0], interval[1], tuple(interval))
        self.condition = condition
        self.guidance_scale = float(guidance_scale)
        self.interval = None if interval is None else (float(interval[0]), float(interval[1]))

    def scale_at(self, t: float) -> float:
        """The guidance scale of a step at time ``t``: gamma inside the interval, 1 outside it."""
        if self.interval is None or self.interval[0] <= t <= self.interval[1]:
            return self.guidance_scale
        return 1.0

    def conditions(self) -> list[Condition | None]:
        return [self.condition]

    def __call__(self, step: GuidanceStep) -> Tensor:
        if self.scale_at(step.t) == 1.0:  # the conditional model itself: one pass, no null condition
            step.prefetch([self.condition])
            return step.reverse_log_probs(self.condition)
        return super().__call__(step)

    def log_weights(self, step: GuidanceStep, base: Tensor) -> Tensor | None:
        scale = self.scale_at(step.t)
        if scale == 0.0:
            return None
        guided = step.process.classifier_free_log_probs(
            step.clean_log_probs(self.condition),
            step.clean_log_probs(None),
            step.xt,
            step.t,
            step.s,
            scale,
        )
        return guided - base
