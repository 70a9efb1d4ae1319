"""Training noisy classifiers for a domain and process (behind ``guide-gen train-classifier``): they read xt,
or (NOS, PPLM) a frozen denoiser's predicted clean-token distribution."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from classifiers.hidden import DenoisedObjective
from classifiers.network import ClassifierConfig, Head, NoisyClassifier, init_from_denoiser
from classifiers.objective import ClassifierObjective
from guided_diffusion.data import Domain, TokenDataset
from guided_diffusion.networks.dit import Denoiser
from guided_diffusion.pipeline import LoadedModel
from guided_diffusion.processes import DiffusionProcess
from guided_diffusion.training.trainer import TrainerConfig, TrainResult, train

if TYPE_CHECKING:
    from classifiers.checkpoint import LoadedClassifier


def output_names(domain: Domain, head: Head) -> tuple[str, ...]:
    """The domain's properties (gaussian head) or class ids (categorical head)."""
    if head == "gaussian":
        if not domain.property_names:
            raise ValueError(f"domain {domain.name!r} has no properties to regress")
        return tuple(domain.property_names)
    if domain.num_classes < 2:
        raise ValueError(f"domain {domain.name!r} has no class labels")
    return tuple(str(k) for k in range(domain.num_classes))


def classifier_config_for(domain: Domain, process: DiffusionProcess, *, head: Head, **network: Any) -> ClassifierConfig:
    """A token classifier over the domain's property vector (regressor) or labels (classifier)."""
    names = output_names(domain, head)
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
    denoiser: LoadedModel | None = None,
    start_from_denoiser: bool = False,
    init_from: LoadedClassifier | None = None,
    extra: TokenDataset | None = None,
    extra_repeat: int = 1,
    extra_source: str | None = None,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    log: bool = True,
) -> TrainResult:
    """Train a classifier on ``domain``, corrupting with ``process``; the checkpoint records the process
    and schedule (and, for classifiers reading a denoiser's predictions or started from its trunk, which
    denoiser).

    Args:
        start_from_denoiser: initialise the classifier's embeddings and blocks from ``denoiser`` (same
            width and heads, depth at most its; see :func:`classifiers.network.init_from_denoiser`).
        init_from: fine-tune: start from this classifier's weights (same configuration).
        extra: more labelled training rows (for example the sampler's own output labelled by the domain's
            oracles, so the classifier judges what it will guide), each seen ``extra_repeat`` times per
            epoch; ``extra_source`` names where they came from in the metadata. Validation stays the
            domain's validation set.

    Raises:
        ValueError: if a ``reads=denoised`` classifier or ``start_from_denoiser`` is asked for without a
            denoiser, the denoiser's trunk does not fit the classifier, ``init_from`` has another
            configuration, both starts are asked for, or ``extra_repeat`` < 1.
    """
    if init_from is not None and start_from_denoiser:
        raise ValueError("start either from a denoiser's trunk or from a classifier, not both")
    if init_from is not None and init_from.config != network:
        raise ValueError(f"{init_from.path} is a different classifier: {init_from.config} vs {network}")
    if extra_repeat < 1:
        raise ValueError(f"extra_repeat must be >= 1, got {extra_repeat}")
    train_data, val_data = domain.datasets()
    if extra is not None:
        train_data = TokenDataset.concat([train_data] + [extra] * extra_repeat)
    torch.manual_seed(trainer.seed)
    names = list(network.output_names)
    objective: ClassifierObjective
    if network.reads == "denoised":
        if denoiser is None:
            raise ValueError("a classifier that reads a denoiser's predictions needs denoiser=PATH")
        objective = DenoisedObjective(process, denoiser.denoiser, head=network.head, output_names=names)
    else:
        objective = ClassifierObjective(process, head=network.head, output_names=names)
    model = NoisyClassifier(network)
    if start_from_denoiser:
        if denoiser is None or not isinstance(denoiser.denoiser, Denoiser):
            raise ValueError("starting a classifier from a denoiser needs a diffusion denoiser=PATH")
        init_from_denoiser(model, denoiser.denoiser)
    started_from = denoiser_identity(denoiser) if denoiser is not None and start_from_denoiser else None
    if init_from is not None:
        model.load_state_dict(init_from.classifier.state_dict())
        started_from = {"kind": "classifier", "path": str(init_from.path), "step": init_from.meta.get("step")}
    metadata = {
        "kind": "classifier",
        "classifier": network.to_json(),
        "process": process.to_json(),
        "domain": {"name": domain.name, "state": domain.state(), "property_names": list(domain.property_names)},
        "denoiser": denoiser_identity(denoiser) if denoiser is not None and network.reads == "denoised" else None,
        "started_from": started_from,
        "extra_data": None
        if extra is None
        else {"source": extra_source, "rows": len(extra), "repeat": extra_repeat, "fingerprint": extra.fingerprint()},
        "config": config or {},
    }
    return train(model, objective, train_data, val_data, trainer, run_dir, metadata=metadata, resume=resume, log=log)


def denoiser_identity(model: LoadedModel) -> dict[str, Any]:
    """What identifies a denoiser checkpoint: its training data, step and network."""
    return {
        "train_fingerprint": model.meta["data"]["train_fingerprint"],
        "step": model.meta["step"],
        "network": model.meta["network"],
    }
