"""``guide-gen validate CHECKPOINT [--seeds 0,1] [--batch-size 256]``: a denoiser's NELBO on its domain's whole
validation set, with the same times and noise for every checkpoint (so runs and stages compare)."""

from __future__ import annotations

from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.pipeline import VALIDATION_SEEDS, load_model, validate_model


def _seeds(text: str) -> tuple[int, ...]:
    try:
        seeds = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        seeds = ()
    if not seeds:
        raise UsageError(f"--seeds must be comma-separated integers, got {text!r}")
    return seeds


def main(argv: list[str]) -> int:
    parser = ArgumentParser(prog="guide-gen validate", description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("checkpoint", help="denoiser checkpoint folder")
    default = ",".join(map(str, VALIDATION_SEEDS))
    parser.add_argument("--seeds", default=default, help=f"seeds of the times and noise, averaged (default {default})")
    parser.add_argument("--batch-size", type=int, default=256, help="rows per network pass")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    seeds = _seeds(args.seeds)
    if args.batch_size < 1:
        raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
    model = load_model(args.checkpoint, device=resolve_device(args.device))
    result = validate_model(model, seeds=seeds, batch_size=args.batch_size)
    values = " | ".join(f"{key} {value:.4f}" for key, value in result.metrics.items())
    where = f"{args.checkpoint} (step {model.meta.get('step')}), {result.rows:,} validation rows, seeds {args.seeds}"
    print(f"{where}: {values}")
    return 0
