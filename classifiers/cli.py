"""``guide-gen train-classifier [key=value ...]``: train a noisy classifier or regressor
(configs/train_classifier.yaml). With ``denoiser=PATH`` the domain state (tokenizer, normalisers), the process
and the schedule are taken from that denoiser checkpoint, so the classifier matches it exactly."""

from __future__ import annotations

from classifiers.pipeline import train_classifier
from guided_diffusion.cli.config import build, compose_config, to_container
from guided_diffusion.processes import process_from_json
from guided_diffusion.registry import domain_from_state
from guided_diffusion.training.checkpoint import read_json


def main(argv: list[str]) -> int:
    cfg = compose_config("train_classifier", argv)
    if cfg.denoiser:
        meta = read_json(cfg.denoiser, "model")
        domain = domain_from_state(meta["domain"]["name"], meta["domain"]["state"])
        process = process_from_json(meta["process"])
    else:
        domain = build(cfg.domain)
        process = build(cfg.process, vocab_size=domain.tokenizer.vocab_size, schedule=build(cfg.schedule))
    network = build(cfg.classifier, domain=domain, process=process)
    trainer = build(cfg.trainer)
    result = train_classifier(
        domain, process, network, trainer, cfg.run_dir, resume=bool(cfg.resume), config=to_container(cfg)
    )
    state = "finished" if result.finished else "paused (resume=true continues)"
    print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0
