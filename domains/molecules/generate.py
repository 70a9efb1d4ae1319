"""Molecule generation toward property targets with the shipped (or any) denoiser: the Python API behind
``guide-gen molecules``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from classifiers import LoadedClassifier, NoisyClassifier, gaussian_target, load_classifier
from domains.molecules.domain import MoleculeDomain
from domains.molecules.properties import get_property, parse_molecule
from domains.molecules.scales import DEFAULT_SCALE, ScaleChoice, auto_scale, guidance_record, recorded_cbg_scale
from domains.molecules.targets import Target
from guided_diffusion.conditioning import Condition
from guided_diffusion.guidance import (
    CBGMode,
    ClassifierFreeGuidance,
    ClassifierGuidance,
    ComposedGuidance,
    Guidance,
    LogLikelihood,
    NoGuidance,
)
from guided_diffusion.pipeline import LoadedModel, generate
from guided_diffusion.processes import DiffusionProcess, MaskedProcess, Remasking

CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DATASETS = ("moses", "qm9")
MODELS = ("udlm", "mdlm", "ar")

Method = Literal["cfg", "cbg", "none"]

DEFAULT_STEPS = 64
#: the default sampler of masked models: the ReMDM step with sigma_t capped at 0.02, at 128 steps (more valid
#: SMILES than the MDLM step on the three seeds measured; docs/molecules.md, "QM9 validity: remasking")
DEFAULT_REMASKING = Remasking("cap", 0.02)
DEFAULT_REMASK = str(DEFAULT_REMASKING)
REMASK_STEPS = 128


def sampler_for(
    process: DiffusionProcess, remasking: Remasking | Literal["auto"] | None, steps: int | None
) -> tuple[Remasking | None, int]:
    """The reverse step and step count of a run: ``auto`` remasking is :data:`DEFAULT_REMASKING` for the masked
    process and none (its own step) for the others; the steps default to :data:`REMASK_STEPS` with
    remasking, else :data:`DEFAULT_STEPS`."""
    if remasking == "auto":
        remasking = DEFAULT_REMASKING if isinstance(process, MaskedProcess) else None
    if steps is None:
        steps = REMASK_STEPS if remasking is not None else DEFAULT_STEPS
    return remasking, steps


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
    """Raw samples (every one drawn, valid or not), with sampling cost and the reverse steps taken;
    ``ended_early`` counts samples with tokens after their first ``<pad>``, which decoding left out."""

    smiles: list[str]
    seconds: float
    nfe: int
    rounds: int
    steps: int
    ended_early: int = 0
    guidance_scale: float = DEFAULT_SCALE
    cbg_scale: float = DEFAULT_SCALE
    scale_reason: str = ""


def resolve_scales(
    model: LoadedModel,
    targets: list[Target],
    *,
    method: Method,
    guidance_scale: float | Literal["auto"],
    cbg_scale: float | None = None,
    classifier: LoadedClassifier | None = None,
) -> tuple[ScaleChoice, float]:
    """The D-CFG scale (``auto``: the model's guidance record decides, see :mod:`domains.molecules.scales`)
    and the D-CBG scale (``cbg_scale``, else a numeric ``guidance_scale``, else the scale ``classifier``
    records, else :data:`DEFAULT_SCALE`).

    Raises:
        ValueError: for a malformed guidance record or a scale that is neither ``auto`` nor a number >= 0.
    """
    if guidance_scale == "auto":
        choice = auto_scale(targets, guidance_record(model.meta), method=method)
        if cbg_scale is None:
            recorded = recorded_cbg_scale(classifier.meta) if classifier is not None else None
            cbg_scale = DEFAULT_SCALE if recorded is None else recorded
        return choice, cbg_scale
    if isinstance(guidance_scale, str) or not guidance_scale >= 0:
        raise ValueError(f"guidance scale must be auto or a number >= 0, got {guidance_scale!r}")
    return ScaleChoice(float(guidance_scale), "given"), float(guidance_scale) if cbg_scale is None else cbg_scale


def default_classifier(model: LoadedModel) -> Path:
    """The shipped noisy regressor of a shipped denoiser (``<name>_regressor`` beside it)."""
    path = model.path.parent / f"{model.path.name}_regressor"
    if not (path / "model.json").is_file():
        raise ValueError(f"no noisy regressor for {model.path.name} (looked for {path}); pass a classifier checkpoint")
    return path


def classifier_term(
    classifier: LoadedClassifier,
    target: Target,
    domain: MoleculeDomain,
    *,
    guidance_scale: float,
    mode: CBGMode | str,
    top_k: int | None,
) -> ClassifierGuidance:
    """D-CBG for one target with a noisy regressor of normalised property values."""
    names = list(classifier.classifier.config.output_names)
    if target.name not in names:
        raise ValueError(
            f"the noisy regressor predicts {', '.join(names)}; {target.name!r} cannot be targeted with @cbg"
        )
    log_likelihood = regressor_target(classifier.classifier, target, domain)
    return ClassifierGuidance(log_likelihood, guidance_scale=guidance_scale, mode=mode, top_k=top_k)


def regressor_target(regressor: NoisyClassifier, target: Target, domain: MoleculeDomain) -> LogLikelihood:
    """``log p(target met | input)`` from a regressor of normalised property values: a window of the
    target's tolerance (half a unit for a count given without one), a threshold, or the density of a bare
    value."""
    names = list(regressor.config.output_names)
    mean, std = domain.normalizer[target.name]
    width = target.tolerance if target.tolerance > 0 else (0.5 if get_property(target.name).integer else 0.0)
    return gaussian_target(
        regressor, names.index(target.name), target.op, (target.value - mean) / std, half_width=width / std
    )


def cbg_regressor(model: LoadedModel, classifier: LoadedClassifier | None) -> LoadedClassifier:
    """The noisy regressor of D-CBG terms: ``classifier``, else the model's shipped one on the model's device."""
    if classifier is not None:
        return classifier
    device = next(model.denoiser.parameters()).device
    return load_classifier(default_classifier(model), process=model.process, device=device)


def make_guidance(
    model: LoadedModel,
    targets: list[Target],
    *,
    method: Method,
    guidance_scale: float,
    classifier: LoadedClassifier | None = None,
    cbg_mode: CBGMode | str = CBGMode.FIRST_ORDER,
    top_k: int | None = None,
    cbg_scale: float | None = None,
    guidance_interval: tuple[float, float] | None = None,
) -> Guidance:
    """The guidance for the targets: each uses its own ``@method`` or the default ``method``; D-CFG targets
    share one condition (guided at the times in ``guidance_interval``, every step when None), each D-CBG
    target gets a term of the noisy regressor; all terms are composed."""
    if method == "none" or not targets:
        return NoGuidance()
    if method not in ("cfg", "cbg"):
        raise ValueError(f"unknown method {method!r}; allowed: cfg, cbg, none")
    device = next(model.denoiser.parameters()).device
    cfg_targets = [t for t in targets if (t.method or method) == "cfg"]
    cbg_targets = [t for t in targets if (t.method or method) == "cbg"]
    terms: list[Guidance] = []
    if cfg_targets:
        terms.append(
            ClassifierFreeGuidance(
                target_condition(cfg_targets, model.domain, device),
                guidance_scale=guidance_scale,
                interval=guidance_interval,
            )
        )
    if cbg_targets:
        classifier = cbg_regressor(model, classifier)
        terms += [
            classifier_term(
                classifier,
                t,
                model.domain,
                guidance_scale=guidance_scale if cbg_scale is None else cbg_scale,
                mode=cbg_mode,
                top_k=top_k,
            )
            for t in cbg_targets
        ]
    return terms[0] if len(terms) == 1 else ComposedGuidance(*terms)


def sample_molecules(
    model: LoadedModel,
    *,
    n: int,
    targets: list[Target] | None = None,
    method: Method = "cfg",
    guidance_scale: float | Literal["auto"] = "auto",
    steps: int = 64,
    seed: int = 0,
    batch_size: int = 256,
    until_valid: bool = False,
    max_rounds: int = 20,
    progress: bool = False,
    classifier: LoadedClassifier | None = None,
    cbg_mode: CBGMode | str = CBGMode.FIRST_ORDER,
    top_k: int | None = None,
    template: str | None = None,
    cbg_scale: float | None = None,
    temperature: float = 1.0,
    autocast: torch.dtype | None = None,
    remasking: Remasking | None = None,
    guidance_interval: tuple[float, float] | None = None,
) -> MoleculeSamples:
    """Sample ``n`` molecules (SMILES) from a molecule denoiser.

    Args:
        model: a loaded molecule checkpoint.
        n: number of samples (with ``until_valid``: number of valid molecules wanted).
        targets: property targets (scored always; guided toward unless ``method="none"``).
        method: default guidance of the targets: ``cfg``, ``cbg`` (noisy regressor) or ``none``.
        guidance_scale: gamma of D-CFG, or ``auto``: the model's guidance record picks it for the targets
            (:func:`resolve_scales`; 2 for models without one).
        steps: reverse steps.
        seed: sampler seed.
        batch_size: rows per network batch.
        until_valid: keep sampling rounds until ``n`` valid molecules exist (raw samples are all returned).
        max_rounds: bound on rounds for ``until_valid``.
        progress: progress bar.
        classifier: noisy regressor for ``cbg`` targets (default: the shipped one of this model).
        cbg_mode: ``exact`` or ``first-order``.
        top_k: exact D-CBG: candidates per position.
        template: infilling template (SMILES models): ``?`` marks an open token, positions after it are open.
        cbg_scale: guidance scale of D-CBG terms (default: a numeric ``guidance_scale``, else the scale the
            regressor records, else 2).
        temperature: divides the denoiser's logits at every step (1 = the model as trained).
        autocast: run every network pass in this dtype (``torch.bfloat16``; None = fp32).
        remasking: masked models only: the ReMDM reverse step (None: MDLM's).
        guidance_interval: D-CFG only at steps whose time t is in ``(lo, hi)`` (inclusive), the conditional
            model alone at the others, which then cost what unguided steps do (None: every step).
    """
    if not isinstance(model.domain, MoleculeDomain):
        raise ValueError(f"{model.path} is not a molecule model (domain {model.meta['domain']['name']!r})")
    if method != "none" and any((t.method or method) == "cbg" for t in targets or []):
        classifier = cbg_regressor(model, classifier)  # loaded here: its recorded scale is the D-CBG default
    choice, cbg = resolve_scales(
        model,
        list(targets or []),
        method=method,
        guidance_scale=guidance_scale,
        cbg_scale=cbg_scale,
        classifier=classifier,
    )
    guidance = make_guidance(
        model,
        list(targets or []),
        method=method,
        guidance_scale=choice.scale,
        classifier=classifier,
        cbg_mode=cbg_mode,
        top_k=top_k,
        cbg_scale=cbg,
        guidance_interval=guidance_interval,
    )
    fixed_mask = fixed_tokens = None
    if template is not None:
        mask, tokens = template_positions(template, model.domain)
        fixed_mask, fixed_tokens = mask.expand(n, -1), tokens.expand(n, -1)
    smiles: list[str] = []
    seconds, nfe, rounds, ended_early = 0.0, 0, 0, 0
    while True:
        gen = generate(
            model,
            num_samples=n,
            steps=steps,
            guidance=guidance,
            seed=seed + 1_000_003 * rounds,
            batch_size=batch_size,
            progress=progress,
            fixed_mask=fixed_mask,
            fixed_tokens=fixed_tokens,
            temperature=temperature,
            autocast=autocast,
            remasking=remasking,
        )
        smiles += model.domain.tokenizer.decode(gen.tokens)
        ended_early += int(model.domain.tokenizer.ends_early(gen.tokens).sum())
        seconds, nfe, rounds = seconds + gen.seconds, nfe + gen.nfe, rounds + 1
        valid = sum(parse_molecule(s) is not None for s in smiles)
        if not until_valid or valid >= n or rounds >= max_rounds:
            return MoleculeSamples(
                smiles=smiles,
                seconds=seconds,
                nfe=nfe,
                rounds=rounds,
                steps=gen.steps,
                ended_early=ended_early,
                guidance_scale=choice.scale,
                cbg_scale=cbg,
                scale_reason=choice.reason,
            )


def template_positions(template: str, domain: MoleculeDomain) -> tuple[torch.Tensor, torch.Tensor]:
    """``[1, L]`` fixed-position mask and tokens for an infilling template.

    ``?`` marks one open token; everything else is SMILES tokens held fixed; positions after the template
    stay open, so molecules can extend it. Example: ``c1ccc(?)cc1??`` fixes a benzene ring with one open
    substituent token and two open tokens after it.

    Raises:
        ValueError: for SELFIES models, unknown tokens or a template longer than the model.
    """
    from domains.molecules.tokenizers import split_smiles

    if domain.representation != "smiles":
        raise ValueError("templates need a SMILES model (SELFIES tokens do not map to SMILES positions)")
    tokens: list[str | None] = []
    for i, part in enumerate(template.split("?")):
        if i:
            tokens.append(None)
        tokens += split_smiles(part)
    if len(tokens) > domain.seq_len:
        raise ValueError(f"template has {len(tokens)} tokens, more than the model's {domain.seq_len}")
    vocab = {tok: i for i, tok in enumerate(domain.tokenizer.vocabulary)}
    unknown = sorted({t for t in tokens if t is not None and t not in vocab})
    if unknown:
        raise ValueError(f"template tokens {unknown} are not in this model's vocabulary")
    mask = torch.zeros(1, domain.seq_len, dtype=torch.bool)
    ids = torch.zeros(1, domain.seq_len, dtype=torch.long)
    for pos, tok in enumerate(tokens):
        if tok is not None:
            mask[0, pos] = True
            ids[0, pos] = vocab[tok]
    return mask, ids
