"""``guide-gen sample checkpoint=PATH [key=value ...]``: sample from a denoiser, optionally with D-CFG
toward a class label."""

from __future__ import annotations

from pathlib import Path

import torch

from guided_diffusion.cli.config import compose_config, require
from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import UsageError
from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance, Guidance, NoGuidance
from guided_diffusion.pipeline import generate, load_model
from guided_diffusion.training.checkpoint import atomic_write_text


def main(argv: list[str]) -> int:
    cfg = compose_config("sample", argv)
    checkpoint = require(cfg, "checkpoint")
    for key in ("num_samples", "batch_size", "steps"):
        if int(cfg[key]) < 1:
            raise UsageError(f"{key} must be >= 1, got {cfg[key]}")
    if cfg.final_step not in ("sample", "argmax"):
        raise UsageError(f"final_step must be 'sample' or 'argmax', got {cfg.final_step!r}")
    if float(cfg.guidance_scale) < 0:
        raise UsageError(f"guidance_scale must be >= 0, got {cfg.guidance_scale}")
    device = resolve_device(cfg.device)
    model = load_model(checkpoint, device=device)
    guidance: Guidance = NoGuidance()
    label = cfg.label
    if label is not None:
        classes = model.denoiser.config.num_classes
        if not isinstance(label, int) or not 0 <= label < classes:
            allowed = f"0..{classes - 1}" if classes else "none (this model has no class labels)"
            raise UsageError(f"label must be an integer class id; allowed: {allowed}")
        cond = Condition(labels=torch.tensor([label], device=device))
        guidance = ClassifierFreeGuidance(cond, guidance_scale=float(cfg.guidance_scale))
    gen = generate(
        model,
        num_samples=int(cfg.num_samples),
        steps=int(cfg.steps),
        guidance=guidance,
        seed=int(cfg.seed),
        batch_size=int(cfg.batch_size),
        posterior_dtype=torch.float64 if cfg.float64 else torch.float32,
        final_step=str(cfg.final_step),
        progress=bool(cfg.progress),
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
