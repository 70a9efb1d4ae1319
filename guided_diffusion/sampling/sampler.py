"""Ancestral sampling for any discrete diffusion process with a pluggable guidance (Sahoo et al. 2024,
Sec. 3.3; Schiff et al. 2025, Alg. 1 and 2). The sampler owns neither the process, the denoiser nor the
guidance."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from guided_diffusion.guidance.base import Guidance, GuidanceStep, NoGuidance, draw_from
from guided_diffusion.processes.base import DiffusionProcess
from guided_diffusion.processes.masked import Remasking
from guided_diffusion.sampling.cache import DenoiserCache


@dataclass(frozen=True)
class SampleResult:
    """Output of :func:`sample`.

    Attributes:
        tokens: ``[B, L]`` sampled token ids (no mask survives).
        nfe: number of denoiser forward calls.
        rows_evaluated: rows passed through the denoiser over all calls (``<= nfe * B`` with caching).
        steps: number of reverse steps taken.
    """

    tokens: Tensor
    nfe: int
    rows_evaluated: int
    steps: int


def sample(
    process: DiffusionProcess,
    denoiser: nn.Module,
    *,
    num_samples: int,
    length: int,
    steps: int = 128,
    guidance: Guidance | Callable[[GuidanceStep], Tensor] | None = None,
    generator: torch.Generator | None = None,
    fixed_mask: Tensor | None = None,
    fixed_tokens: Tensor | None = None,
    posterior_dtype: torch.dtype = torch.float32,
    final_step: Literal["sample", "argmax"] = "sample",
    reuse_outputs: bool = True,
    autocast: torch.dtype | None = None,
    progress: bool = False,
    device: torch.device | str | None = None,
    temperature: float = 1.0,
    remasking: Remasking | None = None,
) -> SampleResult:
    """Draw samples by ancestral sampling on the grid t_i = i / steps, from t = 1 down to t = 0.

    The last step goes to s = 0, where the reverse process keeps no mask (noise removal); with
    ``final_step="argmax"`` it takes the most likely token instead of sampling.

    Args:
        process: the noise process.
        denoiser: the network, ``(xt [B, L], t [B], condition) -> logits [B, L, S]``.
        num_samples: B.
        length: L.
        steps: number of reverse steps T (>= 1).
        guidance: a :class:`Guidance`, or any callable from a :class:`GuidanceStep` to guided log-probabilities
            ``[B, L, S]`` (default: unguided, unconditional).
        generator: explicit random generator (seeded by the caller for reproducibility).
        fixed_mask: ``[B, L]`` bool, positions held fixed (infilling); re-imposed after every step.
        fixed_tokens: ``[B, L]`` the tokens at fixed positions.
        posterior_dtype: float32 or float64 for the posterior and Gumbel noise.
        final_step: how the last step picks tokens, ``sample`` or ``argmax``.
        reuse_outputs: reuse denoiser outputs of unchanged rows when the network ignores t.
        autocast: optional autocast dtype (``torch.bfloat16``) for every network pass of a step: the denoiser's
            and the guidance terms' (classifiers, NOS and PPLM optimisation). The posterior, the guidance
            arithmetic and the draw stay at ``posterior_dtype``.
        progress: show a progress bar.
        device: where to sample (default: the denoiser's device).
        temperature: divides the denoiser's logits before every reverse step (1 = the model as trained; below
            1 trades diversity for more typical samples). Guidance applies to the tempered transition.
        remasking: masked process only: the ReMDM reverse step (Wang et al. 2025), which masks unmasked tokens
            again at a rate sigma_t and so lets later steps revise them (None: the MDLM step). Guidance applies
            to the remasking transition.

    Returns:
        A :class:`SampleResult`.

    Raises:
        ValueError: for invalid arguments.
    """
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    if num_samples < 1 or length < 1:
        raise ValueError(f"num_samples and length must be >= 1, got {num_samples} and {length}")
    if final_step not in ("sample", "argmax"):
        raise ValueError(f"final_step must be 'sample' or 'argmax', got {final_step!r}")
    if posterior_dtype not in (torch.float32, torch.float64):
        raise ValueError(f"posterior_dtype must be float32 or float64, got {posterior_dtype}")
    if (fixed_mask is None) != (fixed_tokens is None):
        raise ValueError("fixed_mask and fixed_tokens must be given together")
    if device is None:
        device = next(denoiser.parameters()).device
    device = torch.device(device)
    guidance = guidance or NoGuidance()
    process = process.with_remasking(remasking)
    if fixed_mask is not None and fixed_tokens is not None:
        if fixed_mask.shape != (num_samples, length) or fixed_tokens.shape != (num_samples, length):
            raise ValueError(f"fixed_mask and fixed_tokens must have shape {(num_samples, length)}")
        fixed_mask = fixed_mask.to(device)
        fixed_tokens = fixed_tokens.to(device)
        if bool((fixed_tokens[fixed_mask] >= process.vocab_size).any() or (fixed_tokens[fixed_mask] < 0).any()):
            raise ValueError(f"fixed tokens must be data tokens in [0, {process.vocab_size})")

    was_training = denoiser.training
    denoiser.eval()
    cache = DenoiserCache(denoiser, process, dtype=posterior_dtype, reuse=reuse_outputs, temperature=temperature)
    xt = process.prior(num_samples, length, generator=generator, device=device)
    if fixed_mask is not None:
        xt = torch.where(fixed_mask, fixed_tokens, xt)  # type: ignore[arg-type]
    precision = torch.autocast(device_type=device.type, dtype=autocast) if autocast else nullcontext()
    try:
        for i in tqdm(range(steps, 0, -1), disable=not progress, desc="sampling", leave=False):
            t, s = i / steps, (i - 1) / steps
            last = i == 1 and final_step == "argmax"
            step = GuidanceStep(process, cache, xt, t, s, generator=generator)
            with precision:
                if isinstance(guidance, Guidance):
                    xt = guidance.draw(step, argmax=last)
                else:  # any callable step -> guided log-probabilities [B, L, S]
                    xt = draw_from(guidance(step), step, argmax=last)
            if fixed_mask is not None:
                xt = torch.where(fixed_mask, fixed_tokens, xt)  # type: ignore[arg-type]
    finally:
        denoiser.train(was_training)
    return SampleResult(tokens=xt, nfe=cache.nfe, rows_evaluated=cache.rows_evaluated, steps=steps)
