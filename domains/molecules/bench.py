"""``guide-gen molecules bench-guidance``: per-step time of unguided, D-CFG and D-CBG sampling on a molecule
model (default: the shipped QM9 UDLM, the paper's QM9 length), measured side by side in one run."""

from __future__ import annotations

from pathlib import Path

import torch

from classifiers import load_classifier
from domains.molecules.cli import check_positive, check_scale
from domains.molecules.generate import (
    DATASETS,
    MODELS,
    classifier_term,
    default_classifier,
    shipped_checkpoint,
    target_condition,
)
from domains.molecules.targets import parse_target
from guided_diffusion.benchmarks.guidance_speed import format_rows, measure, standard_methods
from guided_diffusion.cli.devices import PRECISION_HELP, PRECISIONS, resolve_device, sampling_autocast
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.guidance import ClassifierFreeGuidance, parse_interval
from guided_diffusion.pipeline import load_model
from guided_diffusion.training.trainer import hardware_description


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="guide-gen molecules bench-guidance", description=__doc__.splitlines()[0])
    p.add_argument("--dataset", choices=DATASETS, default="qm9")
    p.add_argument("--model", choices=MODELS, default="udlm")
    p.add_argument("--checkpoint", default=None, help="denoiser checkpoint (default: the shipped one)")
    p.add_argument("--classifier", default=None, help="noisy regressor (default: the shipped one)")
    p.add_argument("--target", default="qed>=0.55", help="target guided by every method")
    p.add_argument("-n", type=int, default=64, help="samples (batch)")
    p.add_argument(
        "--steps",
        type=int,
        default=32,
        help="reverse steps per run (default: the QM9 benchmark's T = 32; exact D-CBG's cost per step falls as T "
        "grows, since each step changes fewer tokens)",
    )
    p.add_argument("--repeats", type=int, default=3, help="interleaved repeats (median is reported)")
    p.add_argument("--top-k", type=int, default=4, help="pruned exact D-CBG candidates per position")
    p.add_argument("--guidance-scale", type=float, default=2.0)
    p.add_argument(
        "--guidance-interval",
        default=None,
        metavar="LO,HI",
        help="also time D-CFG guided only at steps with t in [LO, HI] (the conditional model at the others)",
    )
    p.add_argument(
        "--naive",
        action="store_true",
        help="also time exact D-CBG scoring every candidate (the same draws as the lazy exact rows; slow)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--precision",
        default="fp32",
        help=f"{', '.join(PRECISIONS)}, or several comma-separated (each method is timed in each, interleaved; "
        "ratios are to unguided in the first): " + PRECISION_HELP,
    )
    p.add_argument(
        "--passes",
        default="sliced",
        help="sliced (on a CPU, network passes of about 2,048 tokens each, the default of sampling), whole (one "
        "pass per batch), or both comma-separated (each method timed in each, interleaved)",
    )
    args = p.parse_args(argv)
    for flag, value in (("-n", args.n), ("--steps", args.steps), ("--repeats", args.repeats), ("--top-k", args.top_k)):
        check_positive(flag, value)
    if args.threads is not None:
        check_positive("--threads", args.threads)
    check_scale("--guidance-scale", args.guidance_scale)
    modes = list(dict.fromkeys(x.strip() for x in args.passes.split(",")))
    if not modes or any(m not in ("sliced", "whole") for m in modes):
        raise UsageError(f"--passes takes sliced, whole or both comma-separated, got {args.passes!r}")
    device = resolve_device(args.device)
    names = list(dict.fromkeys(x.strip() for x in args.precision.split(",")))
    precisions = {name: sampling_autocast(name, device) for name in names}
    try:
        interval = parse_interval(args.guidance_interval) if args.guidance_interval else None
    except ValueError as err:
        raise UsageError(f"--guidance-interval: {err}") from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.dataset, args.model)
        model = load_model(path, device=device)
        classifier = load_classifier(args.classifier or default_classifier(model), process=model.process, device=device)
        target = parse_target(args.target)
        condition = target_condition([target], model.domain, torch.device(device))
        term = classifier_term(
            classifier, target, model.domain, guidance_scale=args.guidance_scale, mode="exact", top_k=None
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    standard = standard_methods(
        lambda: ClassifierFreeGuidance(condition, guidance_scale=args.guidance_scale),
        term.log_likelihood,
        guidance_scale=args.guidance_scale,
        top_k=args.top_k,
        naive=args.naive,
    )
    if interval is not None:  # the row after plain D-CFG
        entries = list(standard.items())
        entries.insert(
            2,
            (
                f"D-CFG, t in [{interval[0]:g}, {interval[1]:g}]",
                lambda: ClassifierFreeGuidance(condition, guidance_scale=args.guidance_scale, interval=interval),
            ),
        )
        standard = dict(entries)
    methods, autocast, whole = {}, {}, set()
    for mode in modes:
        for precision, dtype in precisions.items():
            for name, make in standard.items():
                notes = [precision] if len(precisions) > 1 else []
                notes += [f"{mode} passes"] if len(modes) > 1 else []
                label = f"{name} ({', '.join(notes)})" if notes else name
                methods[label], autocast[label] = make, dtype
                if mode == "whole":
                    whole.add(label)
    length = model.denoiser.config.seq_len
    rows = measure(
        model.process,
        model.denoiser,
        methods,
        num_samples=args.n,
        length=length,
        steps=args.steps,
        repeats=args.repeats,
        autocast=autocast,
        whole=whole,
    )
    header = (
        f"{path.name} ({model.process.name} noise, L = {length}, S = {model.process.num_states}), target {target}, "
        f"B = {args.n}, {args.steps} steps x {args.repeats} interleaved repeats (median), "
        f"{hardware_description(device)}, network passes in "
        + ", ".join(
            f"{name} ({'bf16' if dtype else 'fp32'})" if name == "auto" else name for name, dtype in precisions.items()
        )
        + f"; {' and '.join(modes)} passes"
    )
    print(format_rows(rows, naive_rows_per_step=args.n * length * model.process.num_states, header=header))
    return 0
