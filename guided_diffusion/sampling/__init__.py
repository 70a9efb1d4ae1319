"""Ancestral sampling with a guidance hook."""

from guided_diffusion.gumbel import categorical
from guided_diffusion.sampling.cache import DenoiserCache
from guided_diffusion.sampling.sampler import SampleResult, sample

__all__ = ["DenoiserCache", "SampleResult", "categorical", "sample"]
