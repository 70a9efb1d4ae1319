"""``guide-gen train-classifier [key=value ...]``: train a noisy classifier or regressor
(configs/train_classifier.yaml). With ``denoiser=PATH`` the domain state (tokenizer, normalisers), the process
and the schedule are taken from that denoiser checkpoint, so the classifier matches it exactly;
``classifier=hidden`` trains an attribute model on that denoiser's hidden states (NOS, PPLM)."""

from __future__ import annotations

from classifiers.pipeline import train_classifier
from guided_diffusion.cli.config import build, compose_config, to_container
from guided_diffusion.cli.errors import UsageError
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
    extra = {}
    if str(cfg.classifier._target_).endswith("hidden_classifier_config_for"):
        if denoiser is None:
            raise UsageError("classifier=hidden reads a denoiser's hidden states: pass denoiser=PATH")
        extra["denoiser_dim"] = denoiser.denoiser.config.dim
    network = build(cfg.classifier, domain=domain, process=process, **extra)
    trainer = build(cfg.trainer)
    result = train_classifier(
        domain,
        process,
        network,
        trainer,
        cfg.run_dir,
        denoiser=denoiser,
        resume=bool(cfg.resume),
        config=to_container(cfg),
    )
    state = "finished" if result.finished else "paused (resume=true continues)"
    print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0
