"""Molecule generation toward property targets with the shipped (or any) denoiser: the Python API behind
``guide-gen molecules``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from domains.molecules.domain import MoleculeDomain
from domains.molecules.properties import parse_molecule
from domains.molecules.targets import Target
from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import ClassifierFreeGuidance, Guidance, NoGuidance
from guided_diffusion.pipeline import LoadedModel, generate

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DATASETS = ("moses", "qm9")
MODELS = ("udlm", "mdlm")

Method = Literal["cfg", "none"]


def shipped_checkpoint(dataset: str, model: str) -> Path:
    """Folder of a shipped checkpoint (``<dataset>_<model>``).

    Raises:
        ValueError: for unknown names, or when that checkpoint is not installed.
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(DATASETS)}")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    path = CHECKPOINTS / f"{dataset}_{model}"
    if not (path / "model.json").is_file():
        shipped = sorted(p.name for p in CHECKPOINTS.glob("*") if (p / "model.json").is_file())
        raise ValueError(f"no shipped checkpoint {path.name}; shipped: {', '.join(shipped) or 'none'}")
    return path


def conditioning_value(target: Target, domain: MoleculeDomain) -> float:
    """The raw property value a D-CFG model is conditioned on for ``target``.

    ``=`` targets use their value. A threshold uses the training-set median of the region it allows
    (for ``qed>=0.85``, the median of training molecules with QED >= 0.85), so the condition stays in the
    data's support.
    """
    if target.op == "=":
        return target.value
    quantiles = domain.quantiles.get(target.name)
    if quantiles:
        grid = np.linspace(0.0, 1.0, len(quantiles))
        q = np.asarray(quantiles)
        level = float(np.interp(target.value, q, grid))
        middle = (level + 1.0) / 2.0 if target.op == ">=" else level / 2.0
        return float(np.interp(middle, grid, q))
    mean, std = domain.normalizer[target.name]  # no stored quantiles: one standard deviation inside
    return max(target.value, mean) + 0.5 * std if target.op == ">=" else min(target.value, mean) - 0.5 * std


def target_condition(targets: list[Target], domain: MoleculeDomain, device: torch.device) -> Condition:
    """A one-row condition: targeted properties set, all others nulled (NaN).

    Raises:
        ValueError: if a targeted property is not among the model's conditioning properties.
    """
    values = torch.full((1, len(domain.property_names)), float("nan"))
    for target in targets:
        if target.name not in domain.property_names:
            raise ValueError(
                f"this model is conditioned on {', '.join(domain.property_names)}; "
                f"{target.name!r} cannot be targeted with classifier-free guidance"
            )
        values[0, domain.property_names.index(target.name)] = conditioning_value(target, domain)
    return Condition(values=domain.normalize(values).to(device))


@dataclass(frozen=True)
class MoleculeSamples:
    """Raw samples (every one drawn, valid or not), with sampling cost."""

    smiles: list[str]
    seconds: float
    nfe: int
    rounds: int


def make_guidance(model: LoadedModel, targets: list[Target], *, method: Method, guidance_scale: float) -> Guidance:
    """The guidance for a method: D-CFG toward the targets, or none."""
    if method == "none" or not targets:
        return NoGuidance()
    if method == "cfg":
        device = next(model.denoiser.parameters()).device
        return ClassifierFreeGuidance(target_condition(targets, model.domain, device), guidance_scale=guidance_scale)
    raise ValueError(f"unknown method {method!r}; allowed: cfg, none")


def sample_molecules(
    model: LoadedModel,
    *,
    n: int,
    targets: list[Target] | None = None,
    method: Method = "cfg",
    guidance_scale: float = 2.0,
    steps: int = 64,
    seed: int = 0,
    batch_size: int = 256,
    until_valid: bool = False,
    max_rounds: int = 20,
    progress: bool = False,
) -> MoleculeSamples:
    """Sample ``n`` molecules (SMILES) from a molecule denoiser.

    Args:
        model: a loaded molecule checkpoint.
        n: number of samples (with ``until_valid``: number of valid molecules wanted).
        targets: property targets (scored always; guided toward unless ``method="none"``).
        method: ``cfg`` (classifier-free guidance) or ``none``.
        guidance_scale: gamma.
        steps: reverse steps.
        seed: sampler seed.
        batch_size: rows per network batch.
        until_valid: keep sampling rounds until ``n`` valid molecules exist (raw samples are all returned).
        max_rounds: bound on rounds for ``until_valid``.
        progress: progress bar.
    """
    if not isinstance(model.domain, MoleculeDomain):
        raise ValueError(f"{model.path} is not a molecule model (domain {model.meta['domain']['name']!r})")
    guidance = make_guidance(model, list(targets or []), method=method, guidance_scale=guidance_scale)
    smiles: list[str] = []
    seconds, nfe, rounds = 0.0, 0, 0
    while True:
        gen = generate(
            model,
            num_samples=n,
            steps=steps,
            guidance=guidance,
            seed=seed + 1_000_003 * rounds,
            batch_size=batch_size,
            progress=progress,
        )
        smiles += model.domain.tokenizer.decode(gen.tokens)
        seconds, nfe, rounds = seconds + gen.seconds, nfe + gen.nfe, rounds + 1
        valid = sum(parse_molecule(s) is not None for s in smiles)
        if not until_valid or valid >= n or rounds >= max_rounds:
            return MoleculeSamples(smiles=smiles, seconds=seconds, nfe=nfe, rounds=rounds)
