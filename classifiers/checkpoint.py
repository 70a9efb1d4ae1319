"""Loading classifier checkpoints (same format as denoisers), refusing mismatches: a classifier only guides
a denoiser whose noise it was trained on, and one reading a denoiser's predictions only that denoiser."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from classifiers.network import ClassifierConfig, NoisyClassifier
from classifiers.pipeline import denoiser_identity
from guided_diffusion.pipeline import LoadedModel
from guided_diffusion.processes import DiffusionProcess, process_from_json
from guided_diffusion.training.checkpoint import (
    CheckpointError,
    read_json,
    read_tensors,
    require_kind,
    resolve_checkpoint,
)


@dataclass
class LoadedClassifier:
    """A classifier with the process it was trained for and its checkpoint metadata."""

    classifier: NoisyClassifier
    process: DiffusionProcess
    meta: dict[str, Any]
    path: Path

    @property
    def config(self) -> ClassifierConfig:
        return self.classifier.config


def load_classifier(
    path: str | Path,
    *,
    process: DiffusionProcess | None = None,
    denoiser: LoadedModel | None = None,
    device: str | torch.device = "cpu",
) -> LoadedClassifier:
    """Load a classifier checkpoint; with ``process`` (or ``denoiser``), check it matches.

    Raises:
        CheckpointError: if missing/corrupt, not a classifier, trained for another process or schedule, or
            (``reads=denoised``) on another denoiser's predictions.
    """
    path = resolve_checkpoint(path)
    meta = read_json(path, "model")
    require_kind(meta, path, "classifier")
    try:
        cfg = ClassifierConfig(**{**meta["classifier"], "output_names": tuple(meta["classifier"]["output_names"])})
        trained_for = process_from_json(meta["process"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/model.json is incomplete or invalid: {err}") from err
    process = process or (denoiser.process if denoiser is not None else None)
    if process is not None and not trained_for.same_noise_as(process):
        raise CheckpointError(
            f"classifier {path} was trained for {trained_for.name} noise with a {trained_for.schedule.name} "
            f"schedule over {trained_for.vocab_size} tokens; the denoiser uses {process.name} noise with a "
            f"{process.schedule.name} schedule over {process.vocab_size} tokens"
        )
    if cfg.reads == "denoised" and denoiser is not None and meta.get("denoiser") != denoiser_identity(denoiser):
        raise CheckpointError(f"classifier {path} reads the predictions of another denoiser than {denoiser.path}")
    model = NoisyClassifier(cfg)
    state = {k: v.float() for k, v in read_tensors(path, "model").items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match its classifier config (missing {missing[:3]})")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedClassifier(classifier=model, process=trained_for, meta=meta, path=path)
