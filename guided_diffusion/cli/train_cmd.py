"""``guide-gen train [key=value ...]``: train a denoiser from the Hydra config ``configs/train.yaml``.

``init_from=FOLDER`` continues training a denoiser checkpoint of the same network, process and data with a
fresh optimiser and learning-rate schedule (a warm restart), recorded as ``started_from`` in the checkpoint.
Resuming such a run (``resume=true`` with a checkpoint in ``run_dir``) no longer needs the ``init_from`` folder:
the run's own checkpoint holds the weights and its ``started_from`` record.
"""

from __future__ import annotations

from pathlib import Path

from guided_diffusion.cli.config import build, compose_config, to_container
from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import UsageError
from guided_diffusion.pipeline import InitFromMismatch, load_model, train_denoiser
from guided_diffusion.training.checkpoint import CheckpointError, has_checkpoint


def main(argv: list[str]) -> int:
    cfg = compose_config("train", argv)
    domain = build(cfg.domain)
    schedule = build(cfg.schedule)
    process = build(cfg.process, vocab_size=domain.tokenizer.vocab_size, schedule=schedule)
    network = build(cfg.network, domain=domain, process=process)
    objective = build(cfg.objective, process=process)
    trainer = build(cfg.trainer)
    if trainer.device is not None:
        resolve_device(trainer.device)  # a one-line error when CUDA is asked for and missing
    init_from = None
    if cfg.get("init_from") and not (cfg.resume and has_checkpoint(Path(cfg.run_dir) / "checkpoint")):
        try:
            init_from = load_model(cfg.init_from)
        except CheckpointError as err:
            raise UsageError(f"init_from: {err}") from None
    try:
        result = train_denoiser(
            domain,
            process,
            network,
            trainer,
            cfg.run_dir,
            objective=objective,
            resume=bool(cfg.resume),
            config=to_container(cfg),
            init_from=init_from,
        )
    except InitFromMismatch as err:
        raise UsageError(str(err)) from None
    state = "finished" if result.finished else "paused (resume=true continues)"
    print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0
