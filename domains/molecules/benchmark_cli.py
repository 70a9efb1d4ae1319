"""The command line of ``guide-gen bench molecules``: option parsing, the sweep run, and ``--report``
(the table and plot of rows already on disk)."""

from __future__ import annotations

import math
from dataclasses import asdict, fields
from pathlib import Path

import pandas as pd
import torch

from domains.molecules import benchmark
from domains.molecules.benchmark import (
    METHODS,
    QUICK,
    BenchRow,
    BenchSettings,
    plot,
    run_benchmark,
    summarize,
    to_markdown,
)
from domains.molecules.generate import CHECKPOINTS
from guided_diffusion.training.checkpoint import atomic_write_text


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    atomic_write_text(path, frame.to_csv(index=False))  # the folder comes with the first row, not a failed run


def _parse_scales(text: str) -> tuple[float, ...]:
    from guided_diffusion.cli.errors import UsageError

    try:
        scales = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UsageError(f"--scales takes comma-separated numbers >= 0, got {text!r}") from None
    if not scales or any(not math.isfinite(g) or g < 0 for g in scales):
        raise UsageError(f"--scales takes comma-separated numbers >= 0, got {text!r}")
    return scales


def _parse_target_specs(text: str) -> tuple[str, ...]:
    from domains.molecules.targets import parse_target
    from guided_diffusion.cli.errors import UsageError

    specs = tuple(v.strip() for v in text.split(",") if v.strip())
    if not specs:
        raise UsageError("--targets needs at least one of qed-class, rings-class or a value target such as qed=0.6")
    for spec in specs:
        if spec.endswith("-class"):
            if spec not in ("qed-class", "rings-class"):
                raise UsageError(f"unknown class target {spec!r}; allowed: qed-class, rings-class")
            continue
        try:
            target = parse_target(spec)
        except ValueError as err:
            raise UsageError(str(err)) from None
        if target.name not in ("qed", "rings"):
            raise UsageError(f"the QM9 models are conditioned on qed and rings only, got {spec!r}")
    return specs


def _write_report(frame: pd.DataFrame, settings: BenchSettings, out: Path, device: str | torch.device) -> None:
    summary = summarize(frame)
    atomic_write_text(out / "results.md", to_markdown(summary, settings, device))
    plot(summary, out / "results.png")
    print((out / "results.md").read_text())
    print(f"wrote {out / 'results.csv'}, {out / 'results.md'}, {out / 'results.png'}")


#: the columns that name a run; the other columns of a row are what the run measured
RUN_KEY = ["target", "method", "scale", "seed", "samples"]


def _read_table(csv: Path) -> pd.DataFrame:
    from guided_diffusion.cli.errors import UsageError

    frame = pd.read_csv(csv)
    missing = [f.name for f in fields(BenchRow) if f.name not in frame.columns]
    if missing or frame.empty:
        raise UsageError(f"{csv} is not a benchmark table (no rows, or missing columns {missing})")
    return frame[[f.name for f in fields(BenchRow)]]


def _merge(tables: list[tuple[Path, pd.DataFrame]]) -> pd.DataFrame:
    """The rows of several sweeps (seeds or methods run as separate jobs) as one table. A run found in two
    tables is kept once when both measured the same counts (the sampler is deterministic; only its seconds
    vary) and is an error when they differ."""
    from guided_diffusion.cli.errors import UsageError

    frame = pd.concat([t.assign(_source=str(p)) for p, t in tables], ignore_index=True)
    counts = ["valid", "unique", "novel"]
    for key, group in frame.groupby(RUN_KEY, sort=False):
        if len(group) > 1 and len(group[counts].drop_duplicates()) > 1:
            sources = ", ".join(dict.fromkeys(group["_source"]))
            raise UsageError(f"--merge: the run {dict(zip(RUN_KEY, key, strict=True))} differs between {sources}")
    return frame.drop_duplicates(RUN_KEY).drop(columns="_source").reset_index(drop=True)


def _report(out: Path, device: str | torch.device, merge: list[Path]) -> int:
    """``--report``: the table and plot of the rows already in ``out/results.csv``; with ``--merge``, first
    writes there the union of its rows (if any) and those of the given tables."""
    from guided_diffusion.cli.errors import UsageError

    csv = out / "results.csv"
    missing_inputs = [p for p in merge if not p.is_file()]
    if missing_inputs:
        raise UsageError(f"--merge: no such file {missing_inputs[0]} (give results.csv files of earlier sweeps)")
    if not csv.is_file() and not merge:
        raise UsageError(f"--report reads {csv}, which does not exist (run the sweep with --out {out} first)")
    sources = ([csv] if csv.is_file() else []) + [p for p in merge if p.resolve() != csv.resolve()]
    frame = _merge([(p, _read_table(p)) for p in sources])
    samples = sorted(set(frame["samples"]))
    if len(samples) > 1:
        raise UsageError(
            f"{', '.join(map(str, sources))}: runs of {samples} samples; a table compares runs of one size"
        )
    if merge:
        _write_csv(frame, csv)
    settings = BenchSettings(samples=int(samples[0]), seeds=tuple(sorted(int(s) for s in set(frame["seed"]))))
    _write_report(frame, settings, out, device)
    return 0


def main(argv: list[str]) -> int:
    """``guide-gen bench molecules [--quick] [--out DIR] [--resume | --report]``."""
    from guided_diffusion.cli.devices import resolve_device
    from guided_diffusion.cli.errors import ArgumentParser, UsageError

    p = ArgumentParser(prog="guide-gen bench molecules", description=benchmark.__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="reduced sweep (32 samples, scales 1 and 3, one seed)")
    p.add_argument("--out", default="bench-molecules", help="folder for results.csv, results.md, results.png")
    p.add_argument("--checkpoints", default=str(CHECKPOINTS), help="folder holding the QM9 models and classifiers")
    p.add_argument("--samples", type=int, default=None, help="override samples per run")
    p.add_argument("--seeds", type=int, default=None, help="override the number of seeds")
    p.add_argument(
        "--first-seed",
        type=int,
        default=None,
        help="number the seeds from K (default 0), so that seeds can run as separate jobs and be merged with --report",
    )
    p.add_argument("--scales", default=None, help="override the guidance scales, comma-separated (e.g. 1,3,10)")
    p.add_argument(
        "--targets",
        default=None,
        help="override the targets, comma-separated: qed-class, rings-class (above the 90th percentile) or "
        "value targets such as qed=0.6",
    )
    p.add_argument(
        "--methods",
        default=None,
        help=f"only these methods, comma-separated (default: all of {', '.join(METHODS)})",
    )
    p.add_argument(
        "--resume", action="store_true", help="keep the rows already in DIR/results.csv and run only the rest"
    )
    p.add_argument(
        "--report",
        action="store_true",
        help="run nothing: write results.md and results.png from the rows in DIR/results.csv (a stopped sweep, "
        "or merged subsets), whatever their number of seeds; the header names this machine",
    )
    p.add_argument(
        "--merge",
        default=None,
        help="with --report: first add the rows of these results.csv files (comma-separated; sweeps run as separate "
        "jobs) to DIR/results.csv; a run present twice must have the same counts",
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = p.parse_args(argv)
    device = resolve_device(args.device)
    if args.report:
        # the sweep's options shape runs, and --report runs none: refuse them rather than ignore them
        sweep = {"--quick": args.quick, "--resume": args.resume}
        shaping = ("samples", "seeds", "first_seed", "scales", "targets", "methods")
        sweep |= {"--" + k.replace("_", "-"): getattr(args, k) is not None for k in shaping}
        given = [name for name, on in sweep.items() if on]
        if given:
            raise UsageError(
                f"--report runs nothing, so it takes no sweep options (got {', '.join(given)}); "
                "allowed beside it: --out, --merge, --checkpoints, --threads, --device"
            )
        merge = [Path(v.strip()) for v in (args.merge or "").split(",") if v.strip()]
        return _report(Path(args.out), device, merge)
    if args.merge is not None:
        raise UsageError("--merge goes with --report (it renders rows that earlier sweeps wrote); allowed: --report")
    settings = QUICK if args.quick else BenchSettings()
    if args.scales is not None:
        settings = BenchSettings(**{**asdict(settings), "scales": _parse_scales(args.scales)})
    if args.targets is not None:
        settings = BenchSettings(**{**asdict(settings), "targets": _parse_target_specs(args.targets)})
    if args.methods is not None:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        unknown = [m for m in methods if m not in METHODS]
        if not methods or unknown:
            raise UsageError(f"--methods: unknown {unknown or [args.methods]}; allowed: {', '.join(METHODS)}")
        settings = BenchSettings(**{**asdict(settings), "methods": methods})
    if args.samples is not None:
        if args.samples < 1:
            raise UsageError(f"--samples must be >= 1, got {args.samples}")
        settings = BenchSettings(**{**asdict(settings), "samples": args.samples})
    if args.seeds is not None and args.seeds < 1:
        raise UsageError(f"--seeds must be >= 1, got {args.seeds}")
    if args.first_seed is not None and args.first_seed < 0:
        raise UsageError(f"--first-seed must be >= 0, got {args.first_seed}")
    if args.seeds is not None or args.first_seed is not None:
        first = args.first_seed or 0
        count = args.seeds if args.seeds is not None else len(settings.seeds)
        settings = BenchSettings(**{**asdict(settings), "seeds": tuple(range(first, first + count))})
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    csv = out / "results.csv"
    done = pd.read_csv(csv) if args.resume and csv.is_file() else None
    try:
        frame = run_benchmark(
            settings,
            checkpoints=Path(args.checkpoints),
            done=done,
            on_row=lambda f: _write_csv(f, csv),
            device=device,
        )
    except ValueError as err:
        raise UsageError(" ".join(str(err).split())) from None
    _write_csv(frame, csv)
    _write_report(frame, settings, out, device)
    return 0
