"""Loading noisy-classifier checkpoints (same format as denoisers), refusing a process mismatch: a
classifier only guides a denoiser whose noise it was trained on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from classifiers.network import ClassifierConfig, NoisyClassifier
from guided_diffusion.processes import DiffusionProcess, process_from_json
from guided_diffusion.training.checkpoint import CheckpointError, read_json, read_tensors, resolve_checkpoint


@dataclass
class LoadedClassifier:
    """A classifier with the process it was trained for and its checkpoint metadata."""

    classifier: NoisyClassifier
    process: DiffusionProcess
    meta: dict[str, Any]
    path: Path


def load_classifier(
    path: str | Path, *, process: DiffusionProcess | None = None, device: str | torch.device = "cpu"
) -> LoadedClassifier:
    """Load a classifier checkpoint; with ``process``, check it was trained on the same noise.

    Raises:
        CheckpointError: if missing/corrupt, not a classifier, or trained for another process or schedule.
    """
    path = resolve_checkpoint(path)
    meta = read_json(path, "model")
    if meta.get("kind") != "classifier":
        raise CheckpointError(f"{path} holds a {meta.get('kind')!r}, not a classifier")
    try:
        cfg = ClassifierConfig(**{**meta["classifier"], "output_names": tuple(meta["classifier"]["output_names"])})
        trained_for = process_from_json(meta["process"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/model.json is incomplete or invalid: {err}") from err
    if process is not None and not trained_for.same_noise_as(process):
        raise CheckpointError(
            f"classifier {path} was trained for {trained_for.name} noise with a {trained_for.schedule.name} "
            f"schedule over {trained_for.vocab_size} tokens; the denoiser uses {process.name} noise with a "
            f"{process.schedule.name} schedule over {process.vocab_size} tokens"
        )
    model = NoisyClassifier(cfg)
    state = {k: v.float() for k, v in read_tensors(path, "model").items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path} does not match its classifier config (missing {missing[:3]})")
    model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return LoadedClassifier(classifier=model, process=trained_for, meta=meta, path=path)
