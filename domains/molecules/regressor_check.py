"""``guide-gen molecules check-regressor``: how well a noisy regressor judges molecules, on the data it was
trained for and on a sampler's own molecules.

D-CBG can only steer as well as its regressor judges the molecules the sampler makes. This prints the
validation RMSE of every output by diffusion time (normalised units), and, for the clean molecules of a
samples CSV (``guide-gen molecules --out``, ``evaluate``'s CSVs) beside as many validation molecules, the
true (RDKit) and predicted means, the correlation, the RMSE and the predicted standard deviation at t = 0.
With ``--first-order TARGET`` it also measures how well first-order D-CBG stands in for exact D-CBG: at a few
times t, for noised molecules, the correlation between the first-order and the exact log p(y | xt with one
token changed) over every change the sampler's step could make, and the largest exact gain of one change.

With ``--by OUTPUT`` it reads that output per group of molecules with like true values (is a regressor that
reads one ring count well reading four rings as well?).

    guide-gen molecules check-regressor --samples runs/eval/unguided.csv --first-order qed=0.9
    guide-gen molecules check-regressor --checkpoint domains/molecules/checkpoints/qm9_udlm --by rings
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from classifiers import LoadedClassifier, load_classifier
from classifiers.objective import ClassifierObjective
from domains.molecules.cli import read_smiles_csv
from domains.molecules.domain import MoleculeDomain
from domains.molecules.generate import classifier_term, default_classifier, shipped_checkpoint
from domains.molecules.properties import compute_properties, get_property, parse_molecule
from domains.molecules.targets import Target, TargetError, parse_targets
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.guidance.base import GuidanceStep
from guided_diffusion.pipeline import LoadedModel, load_model
from guided_diffusion.sampling.cache import DenoiserCache

DEFAULT_BINS = "0,0.02,0.1,0.2,0.35,0.5"
#: validation molecules that ``--by`` groups
BY_MOLECULES = 4096


def _bins(text: str) -> list[float]:
    try:
        edges = [float(x) for x in text.split(",")]
    except ValueError:
        edges = []
    if len(edges) < 2 or any(b <= a for a, b in itertools.pairwise(edges)) or edges[0] < 0 or edges[-1] > 1:
        raise UsageError(f"--t-bins must be increasing comma-separated times in [0, 1], got {text!r}")
    return edges


def _target(text: str) -> Target:
    try:
        targets = parse_targets([text])
    except TargetError as err:
        raise UsageError(str(err)) from None
    return targets[0]


def _times(text: str) -> list[float]:
    try:
        times = [float(x) for x in text.split(",")]
    except ValueError:
        times = []
    if not times or any(not 0 < x <= 1 for x in times):
        raise UsageError(f"--first-order-times must be comma-separated times in (0, 1], got {text!r}")
    return times


@dataclass(frozen=True)
class CleanReadings:
    """A regressor's reading of clean molecules (t = 0), ``[n, outputs]`` in property units: the true (RDKit)
    values, the predicted means and the predicted sds, for ``names`` in order."""

    names: list[str]
    true: np.ndarray
    predicted: np.ndarray
    sd: np.ndarray


def read_clean(
    regressor: torch.nn.Module, domain: MoleculeDomain, smiles: list[str], names: list[str]
) -> CleanReadings:
    """The regressor reads ``smiles`` clean, in one pass. Molecules the tokenizer cannot encode at the model's
    length are left out."""
    tokens, kept = domain.encode_filtered(smiles, what="molecules")
    true = compute_properties([smiles[i] for i in kept], names)
    with torch.no_grad():
        out = regressor(tokens, torch.zeros(len(tokens)))
    mean, std = (np.array([domain.normalizer[name][k] for name in names]) for k in (0, 1))
    pred = out.mean.float().numpy() * std + mean
    sd = np.exp(0.5 * out.log_var.float().numpy()) * std
    return CleanReadings(list(names), true, pred, sd)


def judge(readings: CleanReadings) -> dict[str, dict[str, float]]:
    """Per output: true and predicted means, correlation, RMSE and mean predicted sd, in property units."""
    result = {}
    for j, name in enumerate(readings.names):
        y, p = readings.true[:, j], readings.predicted[:, j]
        result[name] = {
            "n": float(len(y)),
            "true_mean": float(y.mean()),
            "predicted_mean": float(p.mean()),
            "correlation": float(np.corrcoef(p, y)[0, 1]),
            "rmse": float(np.sqrt(((p - y) ** 2).mean())),
            "predicted_sd": float(readings.sd[:, j].mean()),
        }
    return result


def judge_by_value(readings: CleanReadings, by: str) -> list[tuple[str, dict[str, float]]]:
    """The reading of output ``by`` per group of molecules with like true values: one group per whole value
    of a count (rings), else one per fifth of the molecules. Per group: its label, and n, true and predicted
    means, RMSE and mean predicted sd, in property units."""
    j = readings.names.index(by)
    y, p, s = readings.true[:, j], readings.predicted[:, j], readings.sd[:, j]
    if get_property(by).integer:
        groups = [(f"{v:g}", y == v) for v in np.unique(y)]
    else:
        edges = np.quantile(y, np.linspace(0, 1, 6))
        index = np.clip(np.searchsorted(edges, y, side="right") - 1, 0, 4)
        groups = [(f"[{edges[k]:.3g}, {edges[k + 1]:.3g}]", index == k) for k in range(5) if (index == k).any()]
    return [
        (
            label,
            {
                "n": float(inside.sum()),
                "true_mean": float(y[inside].mean()),
                "predicted_mean": float(p[inside].mean()),
                "rmse": float(np.sqrt(((p[inside] - y[inside]) ** 2).mean())),
                "predicted_sd": float(s[inside].mean()),
            },
        )
        for label, inside in groups
    ]


def first_order_agreement(
    model: LoadedModel,
    regressor: LoadedClassifier,
    target: Target,
    smiles: list[str],
    *,
    times: list[float],
    steps: int = 64,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Per time t: the mean (over molecules) correlation between first-order and exact D-CBG scores of every
    one-token change the unguided reverse step from t to t - 1/steps can make, the mean largest exact gain
    of one change over keeping xt (nats), and the molecule count."""
    assert isinstance(model.domain, MoleculeDomain)
    x0, _ = model.domain.encode_filtered(smiles, what="molecules")
    terms = {
        mode: classifier_term(regressor, target, model.domain, guidance_scale=1.0, mode=mode, top_k=None)
        for mode in ("first-order", "exact")
    }
    cache = DenoiserCache(model.denoiser, model.process)
    generator = torch.Generator().manual_seed(seed)
    rows = []
    for t in times:
        xt = model.process.corrupt(x0, torch.full((len(x0),), t), generator=generator)
        step = GuidanceStep(model.process, cache, xt, t, max(t - 1.0 / steps, 0.0))
        base = terms["exact"].base_log_probs(step)
        exact = terms["exact"].candidate_scores(step, base)
        first = terms["first-order"].candidate_scores(step, base)
        current = exact.gather(-1, xt.unsqueeze(-1)).squeeze(-1)[:, 0]  # [B]
        correlations, gains = [], []
        for b in range(len(xt)):
            changes = torch.isfinite(exact[b])
            changes.scatter_(-1, xt[b].unsqueeze(-1), False)
            if changes.sum() < 2:
                continue
            e, f = exact[b][changes].double().numpy(), first[b][changes].double().numpy()
            correlations.append(float(np.corrcoef(e, f)[0, 1]))
            gains.append(float(e.max() - float(current[b])))
        rows.append(
            {
                "t": t,
                "correlation": float(np.mean(correlations)) if correlations else float("nan"),
                "best_gain": float(np.mean(gains)) if gains else float("nan"),
                "current": float(current.mean()),
                "n": float(len(correlations)),
            }
        )
    return rows


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="guide-gen molecules check-regressor", description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default=None, help="denoiser folder (default: the shipped MOSES UDLM)")
    p.add_argument("--classifier", default=None, help="regressor folder (default: the denoiser's shipped one)")
    p.add_argument("--samples", default=None, help="CSV with a 'smiles' column: the sampler's molecules")
    p.add_argument("--t-bins", default=DEFAULT_BINS, help=f"edges of the time bins (default {DEFAULT_BINS})")
    p.add_argument("--threads", type=int, default=None, help="torch threads")
    p.add_argument(
        "--first-order",
        default=None,
        metavar="TARGET",
        help="also compare first-order with exact D-CBG scores toward this target (for example qed=0.9)",
    )
    p.add_argument("--first-order-molecules", type=int, default=8, help="molecules in that comparison (default 8)")
    p.add_argument("--first-order-times", default="0.05,0.3,0.6", help="times t of that comparison")
    p.add_argument(
        "--by",
        default=None,
        metavar="OUTPUT",
        help=f"also read this output at t = 0 per group of like true values (whole counts, else fifths), on "
        f"up to {BY_MOLECULES:,} validation molecules and the samples",
    )
    args = p.parse_args(argv)
    bins = _bins(args.t_bins)
    target = _target(args.first_order) if args.first_order else None
    times = _times(args.first_order_times)
    if args.first_order_molecules < 1:
        raise UsageError(f"--first-order-molecules must be >= 1, got {args.first_order_molecules}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    model = load_model(Path(args.checkpoint) if args.checkpoint else shipped_checkpoint("moses", "udlm"))
    if not isinstance(model.domain, MoleculeDomain):
        raise UsageError(f"{model.path} is not a molecule model")
    try:
        path = Path(args.classifier) if args.classifier else default_classifier(model)
    except ValueError as err:
        raise UsageError(str(err)) from None
    loaded = load_classifier(path, denoiser=model)
    if loaded.config.head != "gaussian" or loaded.config.reads != "tokens":
        raise UsageError(
            f"{path} is not a regressor reading xt (head {loaded.config.head}, reads {loaded.config.reads})"
        )
    names = list(loaded.config.output_names)
    for wanted in (target.name if target else None, args.by):
        if wanted is not None and wanted not in names:
            raise UsageError(f"{path} predicts {', '.join(names)}; it cannot judge {wanted!r}")
    smiles: list[str] = []
    if args.samples:
        smiles = [s for s in read_smiles_csv(Path(args.samples)) if s and parse_molecule(s) is not None]
    _, val = model.domain.datasets()
    objective = ClassifierObjective(model.process, head="gaussian", output_names=names)
    metrics = objective.evaluate(loaded.classifier, val, batch_size=256, seed=0, bins=bins)
    print(f"{path}: validation RMSE (normalised units) on {len(val):,} molecules, seed 0")
    tags = [f"t{lo:.2f}-{hi:.2f}" for lo, hi in itertools.pairwise(bins)]
    print("| output | " + " | ".join(f"t in [{lo:g}, {hi:g})" for lo, hi in itertools.pairwise(bins)) + " |")
    print("|---|" + "---|" * len(tags))
    for name in names:
        print(f"| {name} | " + " | ".join(f"{metrics[f'val_rmse/{name}/{tag}']:.3f}" for tag in tags) + " |")
    print(f"Gaussian NLL over t in [{bins[0]:g}, {bins[-1]:g}): {metrics['val_loss']:.3f}")
    if target is not None:
        pool = smiles or model.domain.tokenizer.decode(val.tokens[: args.first_order_molecules])
        rows = first_order_agreement(model, loaded, target, pool[: args.first_order_molecules], times=times, seed=0)
        source = args.samples if smiles else "validation molecules"
        print(f"\nFirst-order vs exact D-CBG toward {target} ({source}, seed 0, every change the step can make)")
        print("| t | molecules | correlation | largest exact gain of one change (nats) | mean log-likelihood of xt |")
        print("|---|---|---|---|---|")
        for row in rows:
            print(
                f"| {row['t']:g} | {row['n']:.0f} | {row['correlation']:.2f} | {row['best_gain']:.2f} | "
                f"{row['current']:.2f} |"
            )
    sampled = read_clean(loaded.classifier, model.domain, smiles, names) if smiles else None
    if args.by is not None:
        validation = model.domain.tokenizer.decode(val.tokens[:BY_MOLECULES])
        groups = [("validation", read_clean(loaded.classifier, model.domain, validation, names))]
        groups += [("samples", sampled)] if sampled is not None else []
        print(f"\nClean molecules (t = 0) grouped by their true {args.by}, property units")
        print("| inputs | true value | n | true mean | predicted mean | RMSE | predicted sd |")
        print("|---|---|---|---|---|---|---|")
        for label, group in groups:
            for value, stats in judge_by_value(group, args.by):
                print(
                    f"| {label} | {value} | {stats['n']:.0f} | {stats['true_mean']:.3f} | "
                    f"{stats['predicted_mean']:.3f} | {stats['rmse']:.3f} | {stats['predicted_sd']:.3f} |"
                )
    if sampled is None:
        return 0
    reference = read_clean(
        loaded.classifier, model.domain, model.domain.tokenizer.decode(val.tokens[: len(smiles)]), names
    )
    print(f"\nClean molecules (t = 0), property units: {args.samples} against as many validation molecules")
    print("| output | inputs | n | true mean | predicted mean | correlation | RMSE | predicted sd |")
    print("|---|---|---|---|---|---|---|---|")
    for label, readings in (("validation", reference), ("samples", sampled)):
        for name, row in judge(readings).items():
            print(
                f"| {name} | {label} | {row['n']:.0f} | {row['true_mean']:.3f} | {row['predicted_mean']:.3f} | "
                f"{row['correlation']:.2f} | {row['rmse']:.3f} | {row['predicted_sd']:.3f} |"
            )
    return 0
