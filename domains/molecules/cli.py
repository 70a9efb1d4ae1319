"""``guide-gen molecules``: generate molecules toward property targets with a shipped model, and
``guide-gen molecules score FILE.csv``: score a CSV of SMILES with RDKit."""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Literal

from classifiers import load_classifier
from domains.molecules.generate import (
    DATASETS,
    DEFAULT_REMASK,
    DEFAULT_STEPS,
    MODELS,
    REMASK_STEPS,
    sample_molecules,
    sampler_for,
    shipped_checkpoint,
)
from domains.molecules.metrics import evaluate
from domains.molecules.reference import fcd_path, load_novelty
from domains.molecules.report import format_report, samples_table, write_samples
from domains.molecules.scales import DEFAULT_SCALE, FAR_SHARE, measure_record, write_record
from domains.molecules.targets import SYNTAX, Target, TargetError, parse_targets
from guided_diffusion.cli.devices import PRECISION_HELP, PRECISIONS, resolve_device, sampling_autocast
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.cli.tables import read_csv_table
from guided_diffusion.guidance import parse_interval
from guided_diffusion.pipeline import load_model
from guided_diffusion.processes import REMASK_SYNTAX, Remasking

DEFAULT_DATASET = "moses"
DEFAULT_MODEL = "udlm"
SCALE_HELP = (
    "D-CFG gamma, or auto (default): the model's guidance record picks it, stronger for targets far from "
    f"its unguided molecules ({DEFAULT_SCALE:g} for models without one)"
)
TEMPERATURE_HELP = "divides the denoiser's logits at every step: 1 = the model as trained (default), < 1 sharper"
REMASK_HELP = (
    "masked models: ReMDM reverse step, which masks unmasked tokens again so later steps can revise them: "
    f"{REMASK_SYNTAX}, or auto (default): {DEFAULT_REMASK} for masked models, none for the others; "
    "none on a masked model = the MDLM step"
)
CBG_SCALE_HELP = (
    "guidance scale of D-CBG terms (default: a numeric --guidance-scale, else the scale the regressor records, "
    f"else {DEFAULT_SCALE:g})"
)
STEPS_HELP = f"reverse steps (default {DEFAULT_STEPS}; {REMASK_STEPS} with remasking)"


INTERVAL_HELP = (
    "D-CFG only at steps whose time t (1 = noise, 0 = data) lies in [LO, HI], the conditional model alone "
    "at the others, which then cost what unguided steps do (default: every step)"
)


def _generate_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="guide-gen molecules", description="Generate molecules toward property targets.")
    p.add_argument("--target", action="append", default=[], help=f"property target: {SYNTAX} (repeatable)")
    p.add_argument("-n", type=int, default=64, help="number of samples (default 64)")
    p.add_argument(
        "--model", choices=MODELS, default=DEFAULT_MODEL, help="udlm (uniform), mdlm (masked), ar (autoregressive)"
    )
    p.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET, help="training data of the model")
    p.add_argument("--checkpoint", default=None, help="use this checkpoint folder instead of a shipped model")
    p.add_argument(
        "--method",
        choices=["cfg", "cbg", "none"],
        default="cfg",
        help="default guidance of the targets: classifier-free (cfg), noisy-regressor (cbg) or none",
    )
    p.add_argument("--cbg-mode", choices=["exact", "first-order"], default="first-order", help="D-CBG evaluation")
    p.add_argument("--cbg-scale", type=float, default=None, help=CBG_SCALE_HELP)
    p.add_argument("--top-k", type=int, default=None, help="exact D-CBG: candidate tokens scored per position")
    p.add_argument("--classifier", default=None, help="noisy regressor checkpoint for cbg (default: the shipped one)")
    p.add_argument("--template", default=None, help="infilling template: SMILES with '?' for open tokens")
    p.add_argument("--guidance-scale", default="auto", help=SCALE_HELP)
    p.add_argument("--guidance-interval", default=None, metavar="LO,HI", help=INTERVAL_HELP)
    p.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
    p.add_argument("--temperature", type=float, default=1.0, help=TEMPERATURE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--remask", default="auto", help=REMASK_HELP)
    p.add_argument("--seed", type=int, default=0, help="sampler seed")
    p.add_argument("--batch-size", type=int, default=256, help="rows per network batch")
    p.add_argument("--until-valid", action="store_true", help="keep sampling until n valid molecules exist")
    p.add_argument("--out", default=None, help="write samples to a .csv (all) or .sdf (valid) file")
    p.add_argument("--fcd", action="store_true", help="also report FCD against the dataset's test set")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def _score_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="guide-gen molecules score", description="Score a CSV of SMILES (column 'smiles') with RDKit."
    )
    p.add_argument("csv", help="CSV file with a 'smiles' column (one row per raw sample)")
    p.add_argument("--target", action="append", default=[], help=f"property target: {SYNTAX} (repeatable)")
    p.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET, help="reference for novelty and FCD")
    p.add_argument("--no-fcd", action="store_true", help="skip FCD")
    p.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    return p


def _targets(texts: list[str]) -> list[Target]:
    try:
        return parse_targets(texts)
    except TargetError as err:
        raise UsageError(str(err)) from None


def check_positive(name: str, value: int) -> None:
    """A count option must be >= 1."""
    if value < 1:
        raise UsageError(f"{name} must be >= 1, got {value}")


def _temperature(value: float) -> None:
    if not (value > 0 and math.isfinite(value)):
        raise UsageError(f"--temperature must be a number > 0, got {value}")


def _remasking(text: str) -> Remasking | Literal["auto"] | None:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return Remasking.parse(text)
    except ValueError:
        raise UsageError(f"--remask must be auto (the default), {REMASK_SYNTAX}; got {text!r}") from None


def _interval(text: str | None) -> tuple[float, float] | None:
    try:
        return None if text is None else parse_interval(text)
    except ValueError as err:
        raise UsageError(f"--guidance-interval: {err}") from None


def _scale(text: str) -> float | Literal["auto"]:
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value >= 0 and math.isfinite(value)):
        raise UsageError(f"--guidance-scale must be auto (the default) or a number >= 0, got {text!r}")
    return value


def check_scale(flag: str, value: float | None) -> None:
    """A numeric scale option (None = not given) must be finite and >= 0."""
    if value is not None and not (value >= 0 and math.isfinite(value)):
        raise UsageError(f"{flag} must be a number >= 0, got {value}")


def describe_guidance(
    targets: list[Target], method: str, scale: float, cbg_mode: str, *, cbg_scale: float | None = None, why: str = ""
) -> str:
    if method == "none" or not targets:
        return "unguided"
    methods = sorted({t.method or method for t in targets})
    cbg = scale if cbg_scale is None else cbg_scale
    names = {"cfg": f"D-CFG scale {scale:g}", "cbg": f"D-CBG ({cbg_mode}) scale {cbg:g}"}
    text = " + ".join(names[m] for m in methods)
    return text + (f" ({why})" if why and "cfg" in methods and why != "given" else "")


def generate_main(argv: list[str]) -> int:
    args = _generate_parser().parse_args(argv)
    targets = _targets(args.target)
    for name in ("n", "steps", "batch_size", "top_k"):
        if getattr(args, name) is not None:
            check_positive(f"--{name.replace('_', '-')}" if name != "n" else "-n", getattr(args, name))
    scale = _scale(args.guidance_scale)
    check_scale("--cbg-scale", args.cbg_scale)
    _temperature(args.temperature)
    remasking = _remasking(args.remask)
    interval = _interval(args.guidance_interval)
    device = resolve_device(args.device)
    autocast = sampling_autocast(args.precision, device)
    try:
        path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.dataset, args.model)
        model = load_model(path, device=device)
        remasking, steps = sampler_for(model.process, remasking, args.steps)
        classifier = load_classifier(args.classifier, process=model.process, device=device) if args.classifier else None
        start = time.perf_counter()
        out = sample_molecules(
            model,
            classifier=classifier,
            cbg_mode=args.cbg_mode,
            top_k=args.top_k,
            template=args.template,
            cbg_scale=args.cbg_scale,
            n=args.n,
            targets=targets,
            method=args.method,
            guidance_scale=scale,
            steps=steps,
            seed=args.seed,
            batch_size=args.batch_size,
            until_valid=args.until_valid,
            progress=not args.quiet,
            temperature=args.temperature,
            autocast=autocast,
            remasking=remasking,
            guidance_interval=interval,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    dataset = model.domain.dataset
    report, canonical, values = evaluate(
        out.smiles,
        targets=targets,
        properties=model.domain.property_names,
        novelty=load_novelty(dataset),
        fcd_reference=fcd_path(dataset) if args.fcd and fcd_path(dataset).is_file() else None,
    )
    guidance = describe_guidance(
        targets, args.method, out.guidance_scale, args.cbg_mode, cbg_scale=out.cbg_scale, why=out.scale_reason
    )
    print(
        f"{len(out.smiles)} samples from {path.name} ({model.domain.representation.upper()}, "
        f"{model.process.name} noise), {guidance}, {out.steps} steps, "
        + (f"temperature {args.temperature:g}, " if args.temperature != 1.0 else "")
        + ("bf16 network passes, " if autocast is not None else "")
        + (f"remasking {remasking}, " if remasking is not None else "")
        + (f"D-CFG at t in [{interval[0]:g}, {interval[1]:g}], " if interval is not None else "")
        + f"seed {args.seed}: "
        f"{time.perf_counter() - start:.1f} s sampling and scoring"
        + (f", {out.rounds} rounds" if args.until_valid else "")
    )
    print(format_report(report))
    if out.ended_early:
        print(f"{out.ended_early} samples had tokens after their first <pad>; each molecule ends at its first <pad>")
    if args.out:
        names = list(dict.fromkeys([*model.domain.property_names, *(t.name for t in targets)]))
        count = write_samples(samples_table(out.smiles, canonical, values, names), args.out)
        print(f"wrote {count} molecules to {args.out}")
    return 0


def read_smiles_csv(path: Path) -> list[str]:
    """The ``smiles`` column of a CSV, as strings (one-line usage errors for a missing or unreadable file)."""
    table = read_csv_table(path)
    if "smiles" not in table.columns:
        raise UsageError(f"{path} has no 'smiles' column (columns: {', '.join(map(str, table.columns))})")
    return [str(s) for s in table["smiles"]]


def score_main(argv: list[str]) -> int:
    args = _score_parser().parse_args(argv)
    targets = _targets(args.target)
    path = Path(args.csv)
    smiles = read_smiles_csv(path)
    fcd = None if args.no_fcd or not fcd_path(args.dataset).is_file() else fcd_path(args.dataset)
    report, _, _ = evaluate(smiles, targets=targets, novelty=load_novelty(args.dataset), fcd_reference=fcd)
    print(f"{path}: {report.n} samples scored with RDKit against {args.dataset}")
    print(format_report(report))
    if args.json:
        payload = {
            "n": report.n,
            "validity": report.validity,
            "uniqueness": report.uniqueness,
            "novelty": report.novelty,
            "diversity": report.diversity,
            "fcd": report.fcd,
            "properties": report.properties,
            "targets": {
                str(r.target): {"hit_rate": r.hit_rate, "hits": r.hits, "mean": r.mean, "mae": r.mae}
                for r in report.targets
            },
            "all_targets_share": report.all_targets_hits / report.valid if report.valid else 0.0,
        }
        from guided_diffusion.training.checkpoint import atomic_write_text

        atomic_write_text(args.json, json.dumps(payload, indent=2) + "\n")
    return 0


def _evaluate_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="guide-gen molecules evaluate", description="Acceptance table of a checkpoint (n per setting)."
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    p.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL)
    p.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET)
    p.add_argument("-n", type=int, default=512, help="samples per setting (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help=STEPS_HELP)
    p.add_argument("--guidance-scale", default="auto", help=SCALE_HELP)
    p.add_argument("--guidance-interval", default=None, metavar="LO,HI", help=INTERVAL_HELP)
    p.add_argument("--temperature", type=float, default=1.0, help=TEMPERATURE_HELP)
    p.add_argument("--precision", choices=PRECISIONS, default="fp32", help=PRECISION_HELP)
    p.add_argument("--remask", default="auto", help=REMASK_HELP)
    p.add_argument("--no-fcd", action="store_true", help="skip FCD")
    p.add_argument("--setting", action="append", default=None, help="only these guided settings (repeatable)")
    p.add_argument("--cbg-scale", type=float, default=None, help=CBG_SCALE_HELP)
    p.add_argument("--cbg-mode", choices=["exact", "first-order"], default="first-order")
    p.add_argument("--classifier", default=None, help="noisy regressor for D-CBG settings (default: the shipped one)")
    p.add_argument("--out", required=True, help="folder for the CSVs, evaluation.json and evaluation.md")
    return p


def evaluate_main(argv: list[str]) -> int:
    from domains.molecules.evaluation import SETTINGS, evaluate_model

    args = _evaluate_parser().parse_args(argv)
    for name in ("n", "steps"):
        if getattr(args, name) is not None:
            check_positive(f"--{name}" if name != "n" else "-n", getattr(args, name))
    _temperature(args.temperature)
    scale = _scale(args.guidance_scale)
    check_scale("--cbg-scale", args.cbg_scale)
    remasking = _remasking(args.remask)
    interval = _interval(args.guidance_interval)
    device = resolve_device(None)
    autocast = sampling_autocast(args.precision, device)
    try:
        path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.dataset, args.model)
        model = load_model(path, device=device)
        remasking, steps = sampler_for(model.process, remasking, args.steps)
        settings = SETTINGS[model.domain.dataset]
        if args.setting:
            unknown = sorted(set(args.setting) - {label for label, _ in settings})
            if unknown:
                raise UsageError(f"unknown settings {unknown}; allowed: {', '.join(label for label, _ in settings)}")
            settings = [(label, t) for label, t in settings if label in args.setting]
        classifier = load_classifier(args.classifier, process=model.process) if args.classifier else None
        evaluate_model(
            model,
            args.out,
            n=args.n,
            seed=args.seed,
            steps=steps,
            guidance_scale=scale,
            fcd=not args.no_fcd,
            settings=settings,
            cbg_scale=args.cbg_scale,
            cbg_mode=args.cbg_mode,
            temperature=args.temperature,
            classifier=classifier,
            autocast=autocast,
            remasking=remasking,
            guidance_interval=interval,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    print((Path(args.out) / "evaluation.md").read_text())
    return 0


def _calibrate_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="guide-gen molecules calibrate",
        description="Measure a checkpoint's unguided property statistics and store its auto guidance-scale rule "
        "in its model.json.",
    )
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped model)")
    p.add_argument("--model", choices=MODELS, default=DEFAULT_MODEL)
    p.add_argument("--dataset", choices=DATASETS, default=DEFAULT_DATASET)
    p.add_argument("--near-scale", type=float, default=DEFAULT_SCALE, help="D-CFG scale of near targets")
    p.add_argument("--far-scale", type=float, required=True, help="D-CFG scale when some target is far")
    p.add_argument(
        "--far-share",
        type=float,
        default=FAR_SHARE,
        help=f"a target is far when fewer than this share of unguided molecules meet it and their median does "
        f"not (default {FAR_SHARE:g})",
    )
    p.add_argument("-n", type=int, default=1024, help="unguided samples (default 1024)")
    p.add_argument("--seed", type=int, default=1, help="sampler seed (default 1)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def calibrate_main(argv: list[str]) -> int:
    args = _calibrate_parser().parse_args(argv)
    check_positive("-n", args.n)
    check_scale("--near-scale", args.near_scale)
    check_scale("--far-scale", args.far_scale)
    if not 0 < args.far_share <= 1:
        raise UsageError(f"--far-share must be a share in (0, 1], got {args.far_share}")
    try:
        path = Path(args.checkpoint) if args.checkpoint else shipped_checkpoint(args.dataset, args.model)
        model = load_model(path, device=resolve_device(None))
        record = measure_record(
            model,
            near_scale=args.near_scale,
            far_scale=args.far_scale,
            far_share=args.far_share,
            n=args.n,
            seed=args.seed,
            progress=not args.quiet,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    write_record(model.path, record)
    stats = ", ".join(f"{k} {record.means[k]:.3g} (sd {record.sds[k]:.3g})" for k in record.means)
    print(
        f"{model.path}: {record.valid} of {record.n} unguided samples valid (seed {record.seed}, {record.steps} "
        f"steps); means {stats}; auto scale {record.near_scale:g}, or {record.far_scale:g} for targets "
        f"met by fewer than {record.far_share:.0%} of them that leave out their median; written to model.json"
    )
    return 0


def main(argv: list[str]) -> int:
    """Entry point registered as the ``molecules`` command (sub-actions: score, evaluate, calibrate,
    bench-guidance, check-regressor, release)."""
    if argv and argv[0] == "score":
        return score_main(argv[1:])
    if argv and argv[0] == "calibrate":
        return calibrate_main(argv[1:])
    if argv and argv[0] == "evaluate":
        return evaluate_main(argv[1:])
    if argv and argv[0] == "bench-guidance":
        from domains.molecules.bench import main as bench_main

        return bench_main(argv[1:])
    if argv and argv[0] == "check-regressor":
        from domains.molecules.regressor_check import main as check_main

        return check_main(argv[1:])
    if argv and argv[0] == "release":
        from domains.molecules.release import main as release_main

        return release_main(argv[1:])
    return generate_main(argv)
