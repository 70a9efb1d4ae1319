"""Training a noisy classifier for a domain and process (behind ``guide-gen train-classifier``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from classifiers.network import ClassifierConfig, Head, NoisyClassifier
from classifiers.objective import ClassifierObjective
from guided_diffusion.data import Domain
from guided_diffusion.processes import DiffusionProcess
from guided_diffusion.training.trainer import TrainerConfig, TrainResult, train


def classifier_config_for(domain: Domain, process: DiffusionProcess, *, head: Head, **network: Any) -> ClassifierConfig:
    """A :class:`ClassifierConfig` with the sizes implied by the domain and process: a regressor over the
    domain's property vector, or a classifier over its labels."""
    if head == "gaussian":
        if not domain.property_names:
            raise ValueError(f"domain {domain.name!r} has no properties to regress")
        names = tuple(domain.property_names)
    else:
        if domain.num_classes < 2:
            raise ValueError(f"domain {domain.name!r} has no class labels")
        names = tuple(str(k) for k in range(domain.num_classes))
    return ClassifierConfig(
        num_states=process.num_states,
        seq_len=domain.seq_len,
        num_outputs=len(names),
        head=head,
        output_names=names,
        **network,
    )


def train_classifier(
    domain: Domain,
    process: DiffusionProcess,
    network: ClassifierConfig,
    trainer: TrainerConfig,
    run_dir: str | Path,
    *,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    log: bool = True,
) -> TrainResult:
    """Train a noisy classifier on ``domain``, corrupting with ``process``, and checkpoint it with the
    process and schedule it was trained for."""
    train_data, val_data = domain.datasets()
    torch.manual_seed(trainer.seed)
    model = NoisyClassifier(network)
    objective = ClassifierObjective(process, head=network.head, output_names=list(network.output_names))
    metadata = {
        "kind": "classifier",
        "classifier": network.to_json(),
        "process": process.to_json(),
        "domain": {"name": domain.name, "state": domain.state(), "property_names": list(domain.property_names)},
        "config": config or {},
    }
    return train(model, objective, train_data, val_data, trainer, run_dir, metadata=metadata, resume=resume, log=log)
