"""Denoiser networks (they know nothing of noise processes)."""

from guided_diffusion.networks.dit import Denoiser, DenoiserConfig, count_parameters, per_token_parameters

__all__ = ["Denoiser", "DenoiserConfig", "count_parameters", "per_token_parameters"]
