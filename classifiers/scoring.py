"""Turn a noisy classifier into the log-likelihood ``log p(y | xt, t)`` that classifier-based guidance
needs: a class label, a value window, or a threshold (through the Gaussian CDF of a regressor)."""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor

from classifiers.network import NoisyClassifier
from guided_diffusion.guidance.classifier import BoundedLogLikelihood, LogLikelihood


def log_prob_between(mean: Tensor, std: Tensor, low: float, high: float) -> Tensor:
    """log P(low <= Y <= high) for Y ~ N(mean, std^2), stable in both tails."""
    a, b = (low - mean) / std, (high - mean) / std
    # in the right tail use the mirrored interval, where the CDF is not close to 1
    right = a > 0
    lo, hi = torch.where(right, -b, a), torch.where(right, -a, b)
    log_hi, log_lo = torch.special.log_ndtr(hi), torch.special.log_ndtr(lo)
    return log_hi + torch.log1p(-torch.exp((log_lo - log_hi).clamp(max=-1e-12)))


def gaussian_target(
    classifier: NoisyClassifier,
    output: int,
    op: Literal["=", ">=", "<="],
    value: float,
    *,
    half_width: float = 0.0,
) -> LogLikelihood:
    """``log p(target met | xt, t)`` from a regressor's Gaussian head, all in the regressor's units.

    Args:
        classifier: a gaussian-head noisy regressor.
        output: which output (property) to use.
        op: ``=`` (within ``half_width`` of ``value``), ``>=`` or ``<=``.
        value: target value.
        half_width: window half-width for ``=`` (0 uses the density instead).
    """
    if classifier.config.head != "gaussian":
        raise ValueError("value and threshold targets need a gaussian-head regressor")
    if not 0 <= output < classifier.config.num_outputs:
        raise ValueError(f"output must lie in [0, {classifier.config.num_outputs}), got {output}")

    def log_likelihood(x: Tensor, t: Tensor) -> Tensor:
        out = classifier(x, t)
        assert out.mean is not None and out.log_var is not None
        mean, std = out.mean[:, output], (0.5 * out.log_var[:, output]).exp()
        if op == ">=":
            return torch.special.log_ndtr((mean - value) / std)
        if op == "<=":
            return torch.special.log_ndtr((value - mean) / std)
        if half_width > 0:
            return log_prob_between(mean, std, value - half_width, value + half_width)
        return -0.5 * ((value - mean) / std) ** 2 - torch.log(std)

    # a probability (threshold or window) is bounded by 1; the density of a bare value is not bounded
    return log_likelihood if op == "=" and half_width <= 0 else BoundedLogLikelihood(log_likelihood, 0.0)


def class_target(classifier: NoisyClassifier, label: int) -> LogLikelihood:
    """``log p(label | xt, t)`` from a categorical noisy classifier."""
    if classifier.config.head != "categorical":
        raise ValueError("class targets need a categorical classifier")
    if not 0 <= label < classifier.config.num_outputs:
        raise ValueError(f"label must lie in [0, {classifier.config.num_outputs}), got {label}")

    def log_likelihood(x: Tensor, t: Tensor) -> Tensor:
        logits = classifier(x, t).logits
        assert logits is not None
        return torch.log_softmax(logits, dim=-1)[:, label]

    return BoundedLogLikelihood(log_likelihood, 0.0)
