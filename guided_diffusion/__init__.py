"""guide-gen engine: discrete diffusion processes, denoiser, sampler, guidance and training.

The engine is domain-agnostic; domains (``domains/``) and classifiers (``classifiers/``) build on it.
"""

__version__ = "0.1.0"
