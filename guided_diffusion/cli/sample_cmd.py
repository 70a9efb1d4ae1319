"""``guide-gen sample checkpoint=PATH [key=value ...]``: sample from a denoiser, optionally with D-CFG
toward a class label."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from guided_diffusion.cli.config import compose_config, require
from guided_diffusion.cli.devices import resolve_device, sampling_autocast
from guided_diffusion.cli.errors import UsageError
from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance, Guidance, NoGuidance
from guided_diffusion.pipeline import generate, load_model
from guided_diffusion.processes import Remasking
from guided_diffusion.training.checkpoint import atomic_write_text


def _number(cfg: DictConfig, key: str, kind: type[int] | type[float], *, allowed: str, ok: Callable[[Any], bool]):
    """``cfg[key]`` as an int or float, checked with ``ok``; otherwise a one-line error naming what is allowed."""
    value = cfg[key]
    try:
        number = None if kind is int and isinstance(value, float) and not value.is_integer() else kind(value)
    except (TypeError, ValueError):
        number = None
    if number is None or isinstance(value, bool) or not ok(number) or (kind is float and not math.isfinite(number)):
        raise UsageError(f"{key} must be {allowed}, got {value!r}")
    return number


def main(argv: list[str]) -> int:
    cfg = compose_config("sample", argv)
    checkpoint = require(cfg, "checkpoint")
    counts = {
        key: _number(cfg, key, int, allowed="an integer >= 1", ok=lambda v: v >= 1)
        for key in ("num_samples", "batch_size", "steps")
    }
    seed = _number(cfg, "seed", int, allowed="an integer", ok=lambda v: True)
    if cfg.final_step not in ("sample", "argmax"):
        raise UsageError(f"final_step must be 'sample' or 'argmax', got {cfg.final_step!r}")
    scale = _number(cfg, "guidance_scale", float, allowed="a number >= 0", ok=lambda v: v >= 0)
    temperature = _number(cfg, "temperature", float, allowed="a number > 0", ok=lambda v: v > 0)
    try:
        remasking = Remasking.parse(str(cfg.remask))
    except ValueError as err:
        raise UsageError(f"remask: {err}") from None
    device = resolve_device(cfg.device)
    autocast = sampling_autocast(str(cfg.precision), device)
    model = load_model(checkpoint, device=device)
    try:
        model.process.with_remasking(remasking)
    except ValueError as err:
        raise UsageError(f"remask: {err}") from None
    guidance: Guidance = NoGuidance()
    label = cfg.label
    if label is not None:
        classes = model.denoiser.config.num_classes
        if not isinstance(label, int) or not 0 <= label < classes:
            allowed = f"0..{classes - 1}" if classes else "none (this model has no class labels)"
            raise UsageError(f"label must be an integer class id; allowed: {allowed}")
        cond = Condition(labels=torch.tensor([label], device=device))
        guidance = ClassifierFreeGuidance(cond, guidance_scale=scale)
    gen = generate(
        model,
        num_samples=counts["num_samples"],
        steps=counts["steps"],
        guidance=guidance,
        seed=seed,
        batch_size=counts["batch_size"],
        posterior_dtype=torch.float64 if cfg.float64 else torch.float32,
        final_step=str(cfg.final_step),
        temperature=temperature,
        remasking=remasking,
        progress=bool(cfg.progress),
        autocast=autocast,
    )
    texts = model.domain.tokenizer.decode(gen.tokens)
    if cfg.out:
        atomic_write_text(Path(cfg.out), "\n".join(texts) + "\n")
        print(f"wrote {len(texts)} samples to {cfg.out}")
    else:
        print("\n".join(texts))
    print(f"{len(texts)} samples, {gen.nfe} network calls, {gen.seconds:.1f} s")
    summarize = getattr(model.domain, "summarize", None)
    if summarize is not None:
        stats = summarize(gen.tokens, label=label)
        print(" | ".join(f"{k} {v:.3f}" for k, v in stats.items()))
    return 0
