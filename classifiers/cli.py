"""``guide-gen train-classifier [key=value ...]``: train a noisy classifier or regressor
(configs/train_classifier.yaml). With ``denoiser=PATH`` the domain state (tokenizer, normalisers), the process
and the schedule are taken from that denoiser checkpoint, so the classifier matches it exactly;
``classifier.reads=denoised`` trains an attribute model on that denoiser's predictions (NOS, PPLM).

``extra_data=CSV`` (or ``extra_data=[A.csv,B.csv]``) adds labelled rows to the training set: the items of
each CSV's first column (``guide-gen molecules --out`` writes ``smiles`` first), labelled by the domain's
oracles. Trained on the sampler's own output, a regressor learns to judge the molecules it will guide, not
only the dataset's. ``init_from=PATH`` fine-tunes a classifier of the same configuration instead of starting
from random weights."""

from __future__ import annotations

from pathlib import Path

from classifiers.checkpoint import load_classifier
from classifiers.network import trunk_mismatch
from classifiers.pipeline import train_classifier
from guided_diffusion.cli.config import build, compose_config, to_container
from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import UsageError
from guided_diffusion.cli.tables import read_csv_table
from guided_diffusion.data import Domain, LabellingDomain, TokenDataset
from guided_diffusion.networks.dit import Denoiser
from guided_diffusion.pipeline import LoadedModel, load_model


def main(argv: list[str]) -> int:
    cfg = compose_config("train_classifier", argv)
    if cfg.init_from and cfg.start_from_denoiser:
        raise UsageError("init_from=PATH and start_from_denoiser=true are two starts: choose one")
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
            raise UsageError(f"{problem}; set classifier.dim and heads to the denoiser's, and depth at most its")
    init_from = None
    if cfg.init_from:
        init_from = load_classifier(cfg.init_from, process=process)
        if init_from.config != network:
            raise UsageError(
                f"init_from={cfg.init_from} is a different classifier ({init_from.config.to_json()}); "
                "set the classifier options to its configuration"
            )
    if not isinstance(cfg.extra_repeat, int) or isinstance(cfg.extra_repeat, bool) or cfg.extra_repeat < 1:
        raise UsageError(f"extra_repeat must be a whole number >= 1, got {cfg.extra_repeat!r}")
    sources = [cfg.extra_data] if isinstance(cfg.extra_data, str) else list(cfg.extra_data or [])
    extra = TokenDataset.concat([read_extra_data(domain, Path(p)) for p in sources]) if sources else None
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
        init_from=init_from,
        extra=extra,
        extra_repeat=cfg.extra_repeat,
        extra_source=", ".join(map(str, sources)) or None,
        resume=bool(cfg.resume),
        config=recorded_config(to_container(cfg), denoiser),
    )
    state = "finished" if result.finished else "paused (resume=true continues)"
    print(f"{state} at step {result.step}; checkpoint: {result.checkpoint}")
    return 0


FROM_DENOISER = ("domain", "process", "schedule")


def recorded_config(config: dict, denoiser: LoadedModel | None) -> dict:
    """The resolved configuration to record in the checkpoint: with a denoiser, its domain, process and
    schedule sections (the ones the classifier was trained with), not this command's unused defaults."""
    if denoiser is None:
        return config
    source = denoiser.meta.get("config", {})
    return {**config, **{key: source[key] for key in FROM_DENOISER if key in source}}


def read_extra_data(domain: Domain, path: Path) -> TokenDataset:
    """The items of ``path``'s first column, labelled by ``domain``'s oracles (one-line usage errors)."""
    if not isinstance(domain, LabellingDomain):
        raise UsageError(f"the {domain.name} domain cannot label extra data; extra_data works for molecules")
    table = read_csv_table(path, what="extra_data")
    if table.empty:
        raise UsageError(f"extra_data: {path} has no rows")
    items = [str(x) for x in table.iloc[:, 0]]
    try:
        return domain.labelled_dataset(items, what=f"extra data {path}")
    except ValueError as err:
        raise UsageError(f"extra_data: {err}") from None
