"""User-written guidance: turn a scoring function or a differentiable module into a guidance term.

A *scorer* maps token sequences ``[B, L]`` (or, for a module, one-hot ``[B, L, S]`` floats) to log-weights
``[B]`` (higher = preferred). It is applied to the noisy sequences of each step, like a noisy classifier.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor, nn

from guided_diffusion.guidance.classifier import CBGMode, ClassifierGuidance


def custom_guidance(
    scorer: Callable[[Tensor], Tensor] | nn.Module,
    *,
    guidance_scale: float = 1.0,
    mode: CBGMode | str | None = None,
    top_k: int | None = None,
    max_rows: int = 4096,
    takes_time: bool = False,
    upper_bound: float | None = None,
) -> ClassifierGuidance:
    """A guidance term from a user scorer.

    Args:
        scorer: ``f(x) -> [B]`` log-weights, or ``f(x, t)`` with ``takes_time``. A plain function receives
            token ids ``[B, L]``; an ``nn.Module`` must also accept one-hot floats ``[B, L, S]`` (and be
            differentiable in them) to allow first-order guidance.
        guidance_scale: gamma, the weight of the scorer's log-weights.
        mode: ``exact`` or ``first-order``; default first-order for modules, exact for functions.
        top_k: exact mode: score only the top-k candidate tokens per position.
        max_rows: exact mode: sequences per scorer call.
        takes_time: the scorer also takes the diffusion time ``t`` ``[B]``.
        upper_bound: a bound on the scorer's values (0 for log-probabilities), if known: exact mode then
            draws lazily, scoring only candidates that can still win (same samples, fewer scorer calls).

    Raises:
        ValueError: when first-order guidance is asked of a plain function.
    """
    is_module = isinstance(scorer, nn.Module)
    chosen = CBGMode(mode) if mode is not None else (CBGMode.FIRST_ORDER if is_module else CBGMode.EXACT)
    if chosen is CBGMode.FIRST_ORDER and not is_module:
        raise ValueError("first-order guidance needs a differentiable torch module; use mode='exact' for functions")

    def log_likelihood(x: Tensor, t: Tensor) -> Tensor:
        out = scorer(x, t) if takes_time else scorer(x)  # type: ignore[call-arg]
        if out.shape != (x.shape[0],):
            raise ValueError(f"a guidance scorer must return shape [B] = [{x.shape[0]}], got {tuple(out.shape)}")
        return out

    return ClassifierGuidance(
        log_likelihood,
        guidance_scale=guidance_scale,
        mode=chosen,
        top_k=top_k,
        max_rows=max_rows,
        upper_bound=upper_bound,
    )
