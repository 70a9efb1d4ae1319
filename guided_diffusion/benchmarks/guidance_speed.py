"""Per-step sampling time of unguided, D-CFG, first-order D-CBG and exact D-CBG sampling, measured side by
side in one run (interleaved repeats, median), with the classifier work of exact D-CBG compared to the naive
method that scores all B * L * S one-token changes at every step. Exact D-CBG with a bounded log-likelihood
draws lazily (see :mod:`guided_diffusion.guidance.classifier`): the same draws as scoring every candidate."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Collection, Mapping
from contextlib import nullcontext
from dataclasses import dataclass

import torch
from torch import nn

from guided_diffusion.guidance.base import Guidance, NoGuidance
from guided_diffusion.guidance.classifier import ClassifierGuidance
from guided_diffusion.networks.passes import whole_batches
from guided_diffusion.processes.base import DiffusionProcess
from guided_diffusion.sampling.sampler import sample


@dataclass(frozen=True)
class SpeedRow:
    """One method: median seconds per step, its ratio to unguided, and classifier sequences per step."""

    method: str
    seconds_per_step: float
    ratio: float
    classifier_rows_per_step: float | None


def measure(
    process: DiffusionProcess,
    denoiser: nn.Module,
    methods: dict[str, Callable[[], Guidance]],
    *,
    num_samples: int,
    length: int,
    steps: int,
    repeats: int = 3,
    seed: int = 0,
    autocast: torch.dtype | Mapping[str, torch.dtype | None] | None = None,
    whole: Collection[str] = (),
) -> list[SpeedRow]:
    """Time each method ``repeats`` times, interleaved (so machine noise hits all alike); the first method
    is the baseline of the ratios. ``autocast`` runs the methods' network passes in that dtype (a mapping gives
    each method its own; absent names run in fp32). The methods named in ``whole`` pass whole batches on a CPU
    too (see :mod:`guided_diffusion.networks.passes`). Runs on the denoiser's device; on CUDA each method first
    runs once untimed (kernel loading, allocator warm-up) and every timing waits for the device to finish."""
    device = next(denoiser.parameters()).device
    precisions = dict(autocast) if isinstance(autocast, Mapping) else dict.fromkeys(methods, autocast)

    def run(name: str, guidance: Guidance, num_steps: int) -> None:
        with whole_batches() if name in whole else nullcontext():
            sample(
                process,
                denoiser,
                num_samples=num_samples,
                length=length,
                steps=num_steps,
                guidance=guidance,
                generator=torch.Generator(device=device).manual_seed(seed),
                autocast=precisions.get(name),
            )
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    if device.type == "cuda":
        for name, make in methods.items():
            run(name, make(), min(steps, 2))
    times: dict[str, list[float]] = {name: [] for name in methods}
    calls: dict[str, float | None] = {}
    for _ in range(repeats):
        for name, make in methods.items():
            guidance = make()
            start = time.perf_counter()
            run(name, guidance, steps)
            times[name].append((time.perf_counter() - start) / steps)
            rows = getattr(guidance, "classifier_calls", None)
            if rows is None and hasattr(guidance, "terms"):
                rows = sum(getattr(t, "classifier_calls", 0) for t in guidance.terms) or None
            calls[name] = None if rows is None else rows / steps
    base = statistics.median(times[next(iter(methods))])
    return [SpeedRow(name, statistics.median(v), statistics.median(v) / base, calls[name]) for name, v in times.items()]


def format_rows(rows: list[SpeedRow], *, naive_rows_per_step: int, header: str) -> str:
    lines = [
        header,
        "",
        "| method | s / step | x unguided | classifier sequences / step |",
        "|---|---|---|---|",
    ]
    for r in rows:
        seqs = "-" if r.classifier_rows_per_step is None else f"{r.classifier_rows_per_step:,.0f}"
        lines.append(f"| {r.method} | {r.seconds_per_step:.4f} | {r.ratio:.2f} | {seqs} |")
    exact = [r for r in rows if r.method.startswith("D-CBG exact") and r.classifier_rows_per_step]
    lines.append("")
    lines.append(f"naive exact D-CBG scores B * L * S = {naive_rows_per_step:,} sequences per step.")
    for r in exact:
        assert r.classifier_rows_per_step is not None
        lines.append(
            f"{r.method} scores {r.classifier_rows_per_step:,.0f}: "
            f"{naive_rows_per_step / r.classifier_rows_per_step:.1f}x fewer."
        )
    return "\n".join(lines)


def standard_methods(
    cfg: Callable[[], Guidance],
    log_likelihood: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    *,
    guidance_scale: float,
    top_k: int | None,
    naive: bool = False,
) -> dict[str, Callable[[], Guidance]]:
    """Unguided, D-CFG, first-order D-CBG, exact D-CBG with top-k pruning and without (drawn lazily when the
    log-likelihood has a bound), and with ``naive`` the exact method scoring every candidate (same draws)."""

    def exact(k: int | None, lazy: bool = True) -> Callable[[], Guidance]:
        return lambda: ClassifierGuidance(
            log_likelihood, guidance_scale=guidance_scale, mode="exact", top_k=k, lazy=lazy
        )

    methods: dict[str, Callable[[], Guidance]] = {
        "unguided": NoGuidance,
        "D-CFG": cfg,
        "D-CBG first-order": lambda: ClassifierGuidance(
            log_likelihood, guidance_scale=guidance_scale, mode="first-order"
        ),
    }
    if top_k is not None:
        methods[f"D-CBG exact, top-{top_k}"] = exact(top_k)
    methods["D-CBG exact, all candidates"] = exact(None)
    if naive:
        methods["D-CBG exact, every candidate scored"] = exact(None, lazy=False)
    return methods
