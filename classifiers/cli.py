"""``guide-gen train-classifier [key=value ...]``: train a noisy classifier or regressor
(configs/train_classifier.yaml). With ``denoiser=PATH`` the domain state (tokenizer, normalisers), the process
and the schedule are taken from that denoiser checkpoint, so the classifier matches it exactly;
``classifier.reads=denoised`` trains an attribute model on that denoiser's predictions (NOS, PPLM)."""

from __future__ import annotations

from classifiers.network import trunk_mismatch
from classifiers.pipeline import train_classifier
from guided_diffusion.cli.config import build, compose_config, to_container
from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import UsageError
from guided_diffusion.networks.dit import Denoiser
from guided_diffusion.pipeline import load_model


def main(argv: list[str]) -> int:
    cfg = compose_config("train_classifier", argv)
    denoiser = None
    if cfg.denoiser:
        denoiser = load_model(cfg.denoiser)
        domain, process = denoiser.domain, denoiser.process
    else:
        domain = build(cfg.domain)
        process = build(cfg.process, vocab_size=domain.tokenizer.vocab_size, schedule=build(cfg.schedule))
    if cfg.start_from_denoiser and (denoiser is None or not isinstance(denoiser.denoiser, Denoiser)):
        raise UsageError("start_from_denoiser=true starts from a diffusion denoiser's trunk: pass denoiser=PATH")
    network = build(cfg.classifier, domain=domain, process=process)
    if network.reads == "denoised" and denoiser is None:
        raise UsageError("classifier.reads=denoised reads a denoiser's predictions: pass denoiser=PATH")
    if cfg.start_from_denoiser:
        assert denoiser is not None and isinstance(denoiser.denoiser, Denoiser)
        problem = trunk_mismatch(network, denoiser.denoiser.config)
        if problem:
            raise UsageError(f"{problem}; set classifier.dim, depth and heads to the denoiser's")
    trainer = build(cfg.trainer)
    if trainer.device is not None:
        resolve_device(trainer.device)  # a one-line error when CUDA is asked for and missing
    result = train_classifier(
        domain,
        process,
        network,
        trainer,
        cfg.run_dir,
        denoiser=denoiser,
        start_from_denoiser=bool(cfg.start_from_denoiser),
        resume=bool(cfg.resume),
        config=to_container(cfg),
    )
    state = "finished" if result.finished else "paused (resume=true continues)"
    print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0
