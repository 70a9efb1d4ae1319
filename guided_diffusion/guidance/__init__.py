"""Guidance: objects that turn per-position reverse log-probabilities into guided ones."""

from guided_diffusion.guidance.base import Guidance, GuidanceStep, NoGuidance, apply_log_weights
from guided_diffusion.guidance.cfg import ClassifierFreeGuidance

__all__ = ["ClassifierFreeGuidance", "Guidance", "GuidanceStep", "NoGuidance", "apply_log_weights"]
