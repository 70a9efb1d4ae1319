"""Toy models shared by the behaviour tests: each trained once per session for a fixed number of steps
(under a minute on a quiet 2-core machine)."""

from __future__ import annotations

import os

import pytest

from classifiers import load_classifier
from classifiers.pipeline import classifier_config_for, train_classifier
from domains.toy import ToyDomain
from guided_diffusion.pipeline import denoiser_config_for, load_model, train_denoiser
from guided_diffusion.processes import AutoregressiveProcess, MaskedProcess, UniformProcess
from guided_diffusion.schedules import LogLinearSchedule
from tests.domains.toy_helpers import toy_trainer

# optional wall-time cap on toy training in minutes (unset: train every step, so that the models, and the
# behaviour tests judging them, do not depend on how loaded the machine is)
_BUDGET = os.environ.get("GUIDE_GEN_TOY_BUDGET_MINUTES")
BUDGET_MINUTES = float(_BUDGET) if _BUDGET else None
PROCESSES = {"masked": MaskedProcess, "uniform": UniformProcess, "autoregressive": AutoregressiveProcess}
_models: dict[str, object] = {}
_classifiers: dict[tuple[str, str], object] = {}


@pytest.fixture(scope="session")
def toy_domain():
    return ToyDomain(num_train=20_000, num_val=512)


@pytest.fixture(scope="session")
def toy_models(toy_domain, tmp_path_factory):
    """``get(process_name)`` -> a LoadedModel trained on the toy chains (800 steps, batch 128)."""

    def get(name: str):
        if name not in _models:
            process = PROCESSES[name](toy_domain.tokenizer.vocab_size, LogLinearSchedule())
            network = denoiser_config_for(
                toy_domain, process, dim=64, depth=2, heads=4, time_conditioning=process.time_conditioned_by_default
            )
            trainer = toy_trainer(800, 50, max_minutes=BUDGET_MINUTES)
            run = tmp_path_factory.mktemp(name)
            train_denoiser(toy_domain, process, network, trainer, run, log=False)
            _models[name] = load_model(run / "checkpoint")
        return _models[name]

    return get


@pytest.fixture(scope="session")
def toy_classifiers(toy_domain, toy_models, tmp_path_factory):
    """``get(process_name, kind)`` -> a label classifier for that model: ``tokens`` (reads xt; for the
    autoregressive process it reads prefixes, as FUDGE needs) or ``hidden`` (reads the denoiser's predicted
    clean tokens, for the hidden-state guidance of NOS and PPLM)."""

    def get(name: str, kind: str):
        key = (name, kind)
        if key not in _classifiers:
            model = toy_models(name)
            reads = "denoised" if kind == "hidden" else "tokens"
            cfg = classifier_config_for(
                toy_domain, model.process, head="categorical", dim=64, depth=2, heads=4, reads=reads
            )
            trainer = toy_trainer(400, 20)
            run = tmp_path_factory.mktemp(f"{name}_{kind}")
            train_classifier(toy_domain, model.process, cfg, trainer, run, denoiser=model, log=False)
            _classifiers[key] = load_classifier(run / "checkpoint", denoiser=model)
        return _classifiers[key]

    return get
