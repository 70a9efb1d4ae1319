"""Denoiser networks (they know nothing of noise processes)."""

from guided_diffusion.networks.autoregressive import AutoregressiveDenoiser
from guided_diffusion.networks.dit import Denoiser, DenoiserConfig, count_parameters, per_token_parameters

AnyDenoiser = Denoiser | AutoregressiveDenoiser


def build_denoiser(config: DenoiserConfig) -> AnyDenoiser:
    """The denoiser for a config: causal configs get the shifted-input autoregressive wrapper."""
    return AutoregressiveDenoiser(config) if config.causal else Denoiser(config)


__all__ = [
    "AnyDenoiser",
    "AutoregressiveDenoiser",
    "Denoiser",
    "DenoiserConfig",
    "build_denoiser",
    "count_parameters",
    "per_token_parameters",
]
