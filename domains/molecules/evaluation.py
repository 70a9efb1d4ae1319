"""Acceptance evaluation of a molecule checkpoint: sample n molecules per setting, write each CSV, then score
every CSV with RDKit (the same code as ``guide-gen molecules score``) and tabulate guided against unguided
rates. Run with ``guide-gen molecules evaluate --checkpoint DIR``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import pandas as pd
import torch

from classifiers import LoadedClassifier
from domains.molecules.generate import Method, MoleculeSamples, sample_molecules
from domains.molecules.metrics import MoleculeReport, evaluate
from domains.molecules.reference import fcd_path, load_novelty
from domains.molecules.report import samples_table, write_samples
from domains.molecules.targets import parse_targets
from guided_diffusion.pipeline import LoadedModel
from guided_diffusion.processes import Remasking
from guided_diffusion.training.checkpoint import atomic_write_text

# guided settings per dataset: (label, targets); a target's @cbg selects the noisy regressor (D-CBG),
# otherwise D-CFG. Settings with @cbg run only where the model has a shipped regressor.
SETTINGS: dict[str, list[tuple[str, list[str]]]] = {
    "moses": [
        ("qed=0.9", ["qed=0.9"]),
        ("logp=2.0", ["logp=2.0"]),
        ("mw<=300", ["mw<=300"]),
        ("qed>=0.85 sa<=3.0", ["qed>=0.85", "sa<=3.0"]),
        ("qed=0.9 @cbg", ["qed=0.9@cbg"]),
        ("qed>=0.85 sa<=3.0 @cbg", ["qed>=0.85@cbg", "sa<=3.0@cbg"]),
        ("qed>=0.85 @cfg, sa<=3.0 @cbg", ["qed>=0.85@cfg", "sa<=3.0@cbg"]),
    ],
    "qm9": [
        ("qed>=0.55", ["qed>=0.55"]),
        ("rings=3", ["rings=3"]),
    ],
}


@dataclass(frozen=True)
class EvaluationRow:
    """One setting's scores; shares are of valid molecules, each beside the unguided samples' share."""

    setting: str
    method: str
    n: int
    validity: float
    uniqueness: float
    novelty: float | None
    diversity: float
    fcd: float | None
    property_means: dict[str, float]
    seconds: float
    csv: str
    target_shares: dict[str, float] = field(default_factory=dict)
    unguided_shares: dict[str, float] = field(default_factory=dict)
    joint_share: float | None = None
    unguided_joint_share: float | None = None


def score_csv(path: str | Path, targets: list[str], dataset: str, *, fcd: bool) -> MoleculeReport:
    """Score a samples CSV (column ``smiles``) with RDKit, as ``guide-gen molecules score`` does."""
    table = pd.read_csv(path, keep_default_na=False)
    report, _, _ = evaluate(
        [str(s) for s in table["smiles"]],
        targets=parse_targets(targets),
        novelty=load_novelty(dataset),
        fcd_reference=fcd_path(dataset) if fcd and fcd_path(dataset).is_file() else None,
    )
    return report


def _file_name(label: str) -> str:
    name = label.replace("<=", "_le_").replace(">=", "_ge_").replace("=", "_").replace("@", "").replace(",", "")
    return "_".join(name.split()) + ".csv"


def _sample_to_csv(model: LoadedModel, csv: Path, targets: list[str], method: Method, **kw: object) -> MoleculeSamples:
    samples = sample_molecules(model, targets=parse_targets(targets), method=method, **kw)  # type: ignore[arg-type]
    names = model.domain.property_names
    _, canonical, values = evaluate(samples.smiles, properties=names)
    write_samples(samples_table(samples.smiles, canonical, values, names), csv)
    return samples


def evaluate_model(
    model: LoadedModel,
    out_dir: str | Path,
    *,
    n: int = 512,
    seed: int = 0,
    steps: int = 64,
    guidance_scale: float | Literal["auto"] = "auto",
    cbg_scale: float | None = None,
    cbg_mode: str = "first-order",
    fcd: bool = True,
    settings: list[tuple[str, list[str]]] | None = None,
    batch_size: int = 256,
    temperature: float = 1.0,
    classifier: LoadedClassifier | None = None,
    autocast: torch.dtype | None = None,
    remasking: Remasking | None = None,
    guidance_interval: tuple[float, float] | None = None,
) -> list[EvaluationRow]:
    """Sample and score the unguided setting and each guided setting (all at ``temperature``, with
    ``remasking`` for a masked model, D-CFG at the times in ``guidance_interval``); writes the
    CSVs, ``evaluation.json`` and ``evaluation.md`` to ``out_dir``. D-CBG targets use ``classifier``
    (default: the model's shipped regressor; settings with D-CBG targets are skipped when it has none)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = model.domain.dataset
    names = set(model.domain.property_names)
    has_regressor = (
        classifier is not None or (model.path.parent / f"{model.path.name}_regressor" / "model.json").is_file()
    )
    chosen = settings if settings is not None else SETTINGS[dataset]
    chosen = [
        (label, t)
        for label, t in chosen
        if all(x.name in names for x in parse_targets(t) if x.method != "cbg")
        and (has_regressor or all(x.method != "cbg" for x in parse_targets(t)))
    ]
    common = {
        "n": n,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "guidance_scale": guidance_scale,
        "cbg_scale": cbg_scale,
        "cbg_mode": cbg_mode,
        "temperature": temperature,
        "classifier": classifier,
        "autocast": autocast,
        "remasking": remasking,
        "guidance_interval": guidance_interval,
    }
    interval = f" on t in [{guidance_interval[0]:g}, {guidance_interval[1]:g}]" if guidance_interval else ""

    unguided_csv = out_dir / "unguided.csv"
    samples = _sample_to_csv(model, unguided_csv, [], "none", **common)
    base = score_csv(unguided_csv, [], dataset, fcd=fcd)
    rows = [_row("unguided", "none", base, samples.seconds, unguided_csv)]
    for label, targets in chosen:
        csv = out_dir / _file_name(label)
        samples = _sample_to_csv(model, csv, targets, "cfg", **common)
        guided = score_csv(csv, targets, dataset, fcd=fcd)
        reference = score_csv(unguided_csv, targets, dataset, fcd=False)
        methods = {x.method or "cfg" for x in parse_targets(targets)}
        described = [f"cfg g={samples.guidance_scale:g}{interval}"] * ("cfg" in methods) + [
            f"cbg ({cbg_mode}) g={samples.cbg_scale:g}"
        ] * ("cbg" in methods)
        rows.append(
            _row(
                label,
                " + ".join(described),
                guided,
                samples.seconds,
                csv,
                target_shares={str(r.target): r.hit_rate for r in guided.targets},
                unguided_shares={str(r.target): r.hit_rate for r in reference.targets},
                joint_share=_joint(guided),
                unguided_joint_share=_joint(reference),
            )
        )
    atomic_write_text(out_dir / "evaluation.json", json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    table = format_table(
        rows, n=n, seed=seed, steps=steps, temperature=temperature, bf16=autocast is not None, remasking=remasking
    )
    if classifier is not None and any("cbg" in r.method for r in rows):
        table += f"\nD-CBG regressor: {classifier.path}\n"
    atomic_write_text(out_dir / "evaluation.md", table)
    return rows


def _joint(report: MoleculeReport) -> float:
    return report.all_targets_hits / report.valid if report.valid else 0.0


def _row(label: str, method: str, report: MoleculeReport, seconds: float, csv: Path, **shares: object) -> EvaluationRow:
    return EvaluationRow(
        setting=label,
        method=method,
        n=report.n,
        validity=report.validity,
        uniqueness=report.uniqueness,
        novelty=report.novelty,
        diversity=report.diversity,
        fcd=report.fcd,
        property_means={k: v[0] for k, v in report.properties.items()},
        seconds=round(seconds, 1),
        csv=csv.name,
        **shares,  # type: ignore[arg-type]
    )


def format_table(
    rows: list[EvaluationRow],
    *,
    n: int,
    seed: int,
    steps: int,
    temperature: float = 1.0,
    bf16: bool = False,
    remasking: Remasking | None = None,
) -> str:
    """Markdown table: one row per setting; target shares of valid molecules with the unguided share in
    brackets (measured on the unguided samples of the same run)."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = [
        f"n = {n} samples per setting, seed {seed}, {steps} steps"
        + (f", temperature {temperature:g}" if temperature != 1.0 else "")
        + (", bf16 network passes" if bf16 else "")
        + (f", remasking {remasking}" if remasking is not None else "")
        + ". Target shares are of valid molecules, with the "
        "unguided samples' share in brackets; 'all' = every target at once.",
        "",
        "| setting | method | validity | uniqueness | novelty | diversity | FCD | target share (unguided) "
        "| all (unguided) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        shares = ", ".join(f"{k}: {pct(v)} ({pct(r.unguided_shares.get(k))})" for k, v in r.target_shares.items())
        joint = f"{pct(r.joint_share)} ({pct(r.unguided_joint_share)})" if len(r.target_shares) > 1 else "-"
        fcd = "n/a" if r.fcd is None else f"{r.fcd:.2f}"
        lines.append(
            f"| {r.setting} | {r.method} | {pct(r.validity)} | {pct(r.uniqueness)} | {pct(r.novelty)} | "
            f"{r.diversity:.3f} | {fcd} | {shares or '-'} | {joint} |"
        )
    return "\n".join(lines) + "\n"
