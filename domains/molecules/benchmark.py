"""``guide-gen bench molecules``: the QM9 comparison of Schiff et al. (2025): autoregressive (CFG, FUDGE,
PPLM), masked and uniform diffusion (D-CFG, exact and first-order D-CBG, NOS; masked D-CFG also with the
ReMDM remasking step) over guidance scales, beside each model sampled unguided, toward "above the 90th
percentile" of QED and of ring count (and value targets), scored on 1,024 samples with T = 32 steps over
several seeds. Writes results.csv, results.md and a plot."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy.stats import t as student_t

from classifiers import load_classifier
from domains.molecules.generate import (
    CHECKPOINTS,
    DEFAULT_REMASKING,
    classifier_term,
    regressor_target,
    target_condition,
)
from domains.molecules.metrics import NoveltyReference, canonicalize
from domains.molecules.properties import compute_properties, get_property
from domains.molecules.reference import load_novelty
from domains.molecules.targets import Target
from guided_diffusion.guidance import ClassifierFreeGuidance, NoGuidance
from guided_diffusion.guidance.hidden import HiddenStateGuidance
from guided_diffusion.pipeline import Generation, LoadedModel, generate, load_model
from guided_diffusion.processes import Remasking
from guided_diffusion.training.trainer import hardware_description

# method -> (model, guidance kind, classifier checkpoint suffix or None); "none" is each model unguided, the
# reference every guided row is read against (one row per target and seed, at scale 0)
METHODS: dict[str, tuple[str, str, str | None]] = {
    "AR unguided": ("qm9_ar", "none", None),
    "AR CFG": ("qm9_ar", "cfg", None),
    "AR FUDGE": ("qm9_ar", "cbg-exact", "regressor"),
    "AR PPLM": ("qm9_ar", "hidden", "denoised_regressor"),
    "MDLM unguided": ("qm9_mdlm", "none", None),
    "MDLM D-CFG": ("qm9_mdlm", "cfg", None),
    "MDLM D-CFG ReMDM": ("qm9_mdlm", "cfg", None),
    "MDLM D-CBG exact": ("qm9_mdlm", "cbg-exact", "regressor"),
    "MDLM D-CBG first-order": ("qm9_mdlm", "cbg-first-order", "regressor"),
    "MDLM NOS": ("qm9_mdlm", "hidden", "denoised_regressor"),
    "UDLM unguided": ("qm9_udlm", "none", None),
    "UDLM D-CFG": ("qm9_udlm", "cfg", None),
    "UDLM D-CBG exact": ("qm9_udlm", "cbg-exact", "regressor"),
    "UDLM D-CBG first-order": ("qm9_udlm", "cbg-first-order", "regressor"),
    "UDLM NOS": ("qm9_udlm", "hidden", "denoised_regressor"),
}
#: methods that sample with the ReMDM reverse step instead of the masked process's own: the default sampler of
#: masked models in ``guide-gen molecules``, here at the sweep's T (the paper's MDLM rows take the MDLM step)
REMASKING: dict[str, Remasking] = {"MDLM D-CFG ReMDM": DEFAULT_REMASKING}


@dataclass(frozen=True)
class BenchSettings:
    """Sweep size: samples per run, guidance scales, seeds, targets, reverse steps, exact D-CBG top-k, and
    which methods (names of :data:`METHODS`)."""

    samples: int = 1024
    scales: tuple[float, ...] = (1.0, 2.0, 3.0, 5.0, 10.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    targets: tuple[str, ...] = ("qed-class", "rings-class", "qed=0.6", "rings=4")
    steps: int = 32
    top_k: int = 4
    batch_size: int = 256
    methods: tuple[str, ...] = tuple(METHODS)


# exact D-CBG is the costliest method of the quick sweep (docs/benchmarks.md gives its run times)
QUICK = BenchSettings(samples=32, scales=(1.0, 3.0), seeds=(0,), targets=("qed-class",), batch_size=32)


def class_target(name: str, model: LoadedModel) -> Target:
    """The paper's class target: strictly above the training set's 90th percentile of ``name``."""
    q90 = model.domain.quantiles[name][90]
    if get_property(name).integer:
        return Target(name=name, op=">=", value=float(math.floor(q90) + 1))
    return Target(name=name, op=">=", value=float(q90))


def resolve_target(spec: str, model: LoadedModel) -> Target:
    from domains.molecules.targets import parse_target

    return class_target(spec.removesuffix("-class"), model) if spec.endswith("-class") else parse_target(spec)


def _guidance(kind: str, model: LoadedModel, target: Target, scale: float, classifier_dir: Path | None, top_k: int):
    device = next(model.denoiser.parameters()).device
    if kind == "none":
        return NoGuidance()
    if kind == "cfg":
        return ClassifierFreeGuidance(target_condition([target], model.domain, device), guidance_scale=scale)
    assert classifier_dir is not None
    if kind.startswith("cbg"):
        classifier = load_classifier(classifier_dir, process=model.process, device=device)
        mode = kind.removeprefix("cbg-")
        return classifier_term(
            classifier, target, model.domain, guidance_scale=scale, mode=mode, top_k=top_k if mode == "exact" else None
        )
    attribute = load_classifier(classifier_dir, denoiser=model, device=device)
    log_likelihood = regressor_target(attribute.classifier, target, model.domain)
    return HiddenStateGuidance(model.denoiser, log_likelihood, guidance_scale=scale)


@dataclass(frozen=True)
class BenchRow:
    target: str
    method: str
    scale: float
    seed: int
    samples: int
    valid: int
    unique: int
    novel: int
    novel_mean: float
    novel_hit_rate: float
    seconds: float


def score(
    model: LoadedModel, tokens: torch.Tensor, target: Target, reference: NoveltyReference | None
) -> tuple[int, int, int, float, float]:
    """Valid / unique / novel counts of sampled tokens (novel: not in ``reference``, the training molecules;
    all unique ones without it), and the novel molecules' property mean and hit rate."""
    canonical = [c for c in canonicalize(model.domain.tokenizer.decode(tokens)) if c]
    unique = list(dict.fromkeys(canonical))
    novel = [s for s, seen in zip(unique, reference.contains(unique), strict=True) if not seen] if reference else unique
    values = compute_properties(novel, [target.name])[:, 0] if novel else np.array([])
    mean = float(np.nanmean(values)) if len(values) else float("nan")
    hit = float(target.satisfied(values).mean()) if len(values) else float("nan")
    return len(canonical), len(unique), len(novel), mean, hit


def run_benchmark(
    settings: BenchSettings,
    *,
    checkpoints: Path = CHECKPOINTS,
    progress: Callable[[str], None] = print,
    done: pd.DataFrame | None = None,
    on_row: Callable[[pd.DataFrame], None] | None = None,
    device: str | torch.device = "cpu",
) -> pd.DataFrame:
    """Every method x target x scale x seed; one row each, sampled on ``device``. Rows already in ``done``
    (same target, method, scale, seed and samples) are kept, not rerun; ``on_row`` sees the whole table after
    every new row."""
    models: dict[str, LoadedModel] = {}
    # unguided samples do not depend on the target: sampled once per model and seed, scored for every target
    unguided: dict[tuple[str, int], Generation] = {}
    reference = load_novelty("qm9")
    rows = [] if done is None else [BenchRow(**r) for r in done.to_dict("records")]
    finished = {(r.target, r.method, float(r.scale), int(r.seed), int(r.samples)) for r in rows}
    unknown = [m for m in settings.methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; allowed: {', '.join(METHODS)}")
    chosen = {m: METHODS[m] for m in METHODS if m in settings.methods}
    needed = {name for name, _, _ in chosen.values()} | {f"{n}_{s}" for n, _, s in chosen.values() if s}
    missing = [name for name in sorted(needed) if not (checkpoints / name / "model.json").is_file()]
    if missing:
        raise ValueError(
            f"missing checkpoints in {checkpoints}: {', '.join(missing)} (docs/benchmarks.md gives the commands "
            "that train them)"
        )
    for spec in settings.targets:
        for method, (name, kind, suffix) in chosen.items():
            if name not in models:
                models[name] = load_model(checkpoints / name, device=device)
            model = models[name]
            target = resolve_target(spec, model)
            for scale in (0.0,) if kind == "none" else settings.scales:
                seeds = [
                    seed
                    for seed in settings.seeds
                    if (str(target), method, float(scale), seed, settings.samples) not in finished
                ]
                if not seeds:
                    continue
                guidance = _guidance(
                    kind,
                    model,
                    target,
                    scale,
                    None if suffix is None else checkpoints / f"{name}_{suffix}",
                    settings.top_k,
                )
                for seed in seeds:
                    out = unguided.get((name, seed)) if kind == "none" else None
                    if out is None:
                        out = generate(
                            model,
                            num_samples=settings.samples,
                            steps=settings.steps,
                            guidance=guidance,
                            seed=seed,
                            batch_size=settings.batch_size,
                            remasking=REMASKING.get(method),
                        )
                    if kind == "none":
                        unguided[name, seed] = out
                    valid, unique, novel, mean, hit = score(model, out.tokens, target, reference)
                    seconds = out.seconds
                    rows.append(
                        BenchRow(
                            str(target),
                            method,
                            scale,
                            seed,
                            settings.samples,
                            valid,
                            unique,
                            novel,
                            mean,
                            hit,
                            round(seconds, 2),
                        )
                    )
                    progress(
                        f"{target} | {method} | g={scale:g} | seed {seed}: {valid}/{unique}/{novel} "
                        f"valid/unique/novel, novel mean {mean:.3f}, {seconds:.1f} s"
                    )
                    if on_row is not None:
                        on_row(_frame(rows))
    return _frame(rows)


def _frame(rows: list[BenchRow]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows], columns=[f.name for f in fields(BenchRow)])


def summarize(frame: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% confidence half-width over seeds (Student's t with n - 1 degrees of freedom: with
    two or three seeds a normal approximation would be far too narrow); NaN for a single seed, which gives no
    interval."""
    keys = ["target", "method", "scale"]
    stats = frame.groupby(keys, sort=False)[["valid", "unique", "novel", "novel_mean", "novel_hit_rate", "seconds"]]
    mean, sd, n = stats.mean(), stats.std(ddof=1), stats.count()
    half = sd * student_t.ppf(0.975, n.clip(lower=2) - 1) / np.sqrt(n.clip(lower=1))
    out = mean.join(half.add_suffix("_ci")).join(n["valid"].rename("seeds")).reset_index()  # one row per seed
    # rows in the sweep's order whatever order the runs finished in (merged subsets, resumed runs): targets as
    # first seen, methods as in METHODS (others after them), scales ascending
    targets = {t: i for i, t in enumerate(dict.fromkeys(out["target"]))}
    others = [m for m in dict.fromkeys(out["method"]) if m not in METHODS]
    methods = {m: i for i, m in enumerate([*METHODS, *others])}
    ranked = out.assign(_target=out["target"].map(targets), _method=out["method"].map(methods))
    ranked = ranked.sort_values(["_target", "_method", "scale"], kind="stable")
    return ranked.drop(columns=["_target", "_method"]).reset_index(drop=True)


def to_markdown(summary: pd.DataFrame, settings: BenchSettings, device: str | torch.device = "cpu") -> str:
    """The results table; rows run with different numbers of seeds (a resumed or merged sweep) get a seeds
    column, and only rows with several seeds an interval."""
    counts = sorted(set(summary["seeds"]))
    mixed = len(counts) > 1
    if mixed:
        seeds = f"{counts[0]}-{counts[-1]} seeds per row (the seeds column)"
        interval = "± is a 95% interval over seeds, on the rows with several."
    else:
        seeds = f"seeds {list(settings.seeds)}" if counts[0] == len(settings.seeds) else f"{counts[0]} seeds per row"
        interval = "± is a 95% interval over seeds." if counts[0] > 1 else "one seed, so no interval."
    lines = [
        f"Samples per run: {settings.samples}; T = {settings.steps} reverse steps (autoregressive: one step per "
        f"token); {seeds}; exact D-CBG / FUDGE top-{settings.top_k}; "
        f"{hardware_description(device)}. Counts are out of {settings.samples}; "
        "mean and hit rate are over novel molecules; " + interval,
    ]

    def cell(value: float, half: float, digits: int) -> str:
        return f"{value:.{digits}f}" + (f"±{half:.{digits}f}" if math.isfinite(half) else "")

    for target, part in summary.groupby("target", sort=False):
        lines += [
            "",
            f"### {target}",
            "",
            "| method | g |" + " seeds |" * mixed + " valid | unique | novel | novel mean | hit rate | s/run |",
            "|---|---|" + "---|" * mixed + "---|---|---|---|---|---|",
        ]
        for r in part.itertuples(index=False):
            # no novel molecule in any seed: no mean, no hit rate
            none = not math.isfinite(r.novel_mean)
            mean = "-" if none else cell(r.novel_mean, r.novel_mean_ci, 3)
            hit = "-" if none else f"{100 * r.novel_hit_rate:.0f}%"
            lines.append(
                f"| {r.method} | {r.scale:g} |" + (f" {r.seeds} |" if mixed else "") + " "
                f"{cell(r.valid, r.valid_ci, 0)} | {cell(r.unique, r.unique_ci, 0)} | "
                f"{cell(r.novel, r.novel_ci, 0)} | {mean} | {hit} | {r.seconds:.1f} |"
            )
    return "\n".join(lines) + "\n"


def plot(summary: pd.DataFrame, path: Path) -> None:
    """Novel count against the novel molecules' mean property, one line per method, marker size = scale; each
    model's unguided run is a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.artist import Artist

    targets = list(dict.fromkeys(summary["target"]))
    # one colour per method (tab20 has enough for every method of the sweep), one line style per model
    methods = list(dict.fromkeys(summary["method"]))
    colours = {m: plt.get_cmap("tab20")(i % 20) for i, m in enumerate(methods)}
    styles = {"AR": ":", "MDLM": "--", "UDLM": "-"}
    fig, axes = plt.subplots(1, len(targets), figsize=(6 * len(targets), 4.5), squeeze=False)
    for ax, target in zip(axes[0], targets, strict=True):
        part = summary[summary["target"] == target]
        for method, rows in part.groupby("method", sort=False):
            style, colour = styles.get(str(method).split()[0], "-"), colours[method]
            if (rows["scale"] == 0).all():
                ax.plot(rows["novel"], rows["novel_mean"], "*", markersize=12, color=colour, label=method)
                continue
            ax.plot(rows["novel"], rows["novel_mean"], style, color=colour, alpha=0.8, label=method)
            ax.scatter(rows["novel"], rows["novel_mean"], s=12 * rows["scale"], color=colour, alpha=0.8)
        ax.set_xlabel("novel molecules")
        ax.set_ylabel(f"mean {target.split('>')[0].split('=')[0]} of novel molecules")
        ax.set_title(target)
    # one legend for the figure, with every method of any panel (panels may hold different methods)
    handles: dict[str, Artist] = {}
    for ax in axes[0]:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    fig.legend(list(handles.values()), list(handles), fontsize=7, loc="center right")
    fig.tight_layout(rect=(0.0, 0.0, 1.0 - 1.6 / fig.get_figwidth(), 1.0))
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
