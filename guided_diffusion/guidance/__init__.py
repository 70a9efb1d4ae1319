"""Guidance: objects that turn per-position reverse log-probabilities into guided ones."""

from guided_diffusion.guidance.base import Guidance, GuidanceStep, NoGuidance, apply_log_weights
from guided_diffusion.guidance.cfg import ClassifierFreeGuidance, parse_interval
from guided_diffusion.guidance.classifier import BoundedLogLikelihood, CBGMode, ClassifierGuidance, LogLikelihood
from guided_diffusion.guidance.composite import ComposedGuidance
from guided_diffusion.guidance.custom import custom_guidance

__all__ = [
    "BoundedLogLikelihood",
    "CBGMode",
    "ClassifierFreeGuidance",
    "ClassifierGuidance",
    "ComposedGuidance",
    "Guidance",
    "GuidanceStep",
    "LogLikelihood",
    "NoGuidance",
    "apply_log_weights",
    "custom_guidance",
    "parse_interval",
]
