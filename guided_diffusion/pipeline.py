"""Library entry points behind the CLI: train a denoiser for a domain, load a checkpoint, generate.

Everything here is plain Python (no Hydra): the CLI only turns config files into these arguments.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from guided_diffusion.data import Domain
from guided_diffusion.guidance.base import Guidance
from guided_diffusion.networks import AnyDenoiser, build_denoiser
from guided_diffusion.networks.dit import DenoiserConfig
from guided_diffusion.processes import DiffusionProcess, Remasking, process_from_json
from guided_diffusion.registry import domain_from_state
from guided_diffusion.sampling.sampler import sample
from guided_diffusion.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    read_json,
    read_tensors,
    require_kind,
    resolve_checkpoint,
    save_checkpoint,
)
from guided_diffusion.training.objectives import DenoiserObjective
from guided_diffusion.training.trainer import TrainerConfig, TrainResult, train


def denoiser_config_for(domain: Domain, process: DiffusionProcess, **network: Any) -> DenoiserConfig:
    """A :class:`DenoiserConfig` with the sizes implied by ``domain`` and ``process`` filled in (a causal
    process gets a causal network without t and one extra input token, BOS)."""
    if process.causal:
        network = {**network, "causal": True, "time_conditioning": False}
    return DenoiserConfig(
        num_states=process.num_states + int(process.causal),
        seq_len=domain.seq_len,
        num_classes=domain.num_classes,
        num_properties=len(domain.property_names),
        **network,
    )


class InitFromMismatch(ValueError):
    """``init_from`` names a denoiser of another process, domain or network than the run it should start."""


def train_denoiser(
    domain: Domain,
    process: DiffusionProcess,
    network: DenoiserConfig,
    trainer: TrainerConfig,
    run_dir: str | Path,
    *,
    objective: DenoiserObjective | None = None,
    resume: bool = False,
    config: dict[str, Any] | None = None,
    log: bool = True,
    init_from: LoadedModel | None = None,
) -> TrainResult:
    """Train a denoiser on ``domain`` and checkpoint it (with everything needed to sample from it).

    Args:
        domain: the domain plugin (tokenizer, datasets, state).
        process: the noise process.
        network: denoiser architecture (see :func:`denoiser_config_for`).
        trainer: loop hyper-parameters.
        run_dir: output folder.
        objective: loss (default: NELBO with 10% condition dropout).
        resume: continue an interrupted run in ``run_dir``.
        config: the resolved configuration to record in the checkpoint.
        log: print progress.
        init_from: continue training this denoiser's (EMA) weights with a fresh optimiser and schedule; it
            must have the same network, process and domain state (vocabulary, normalisation).

    Raises:
        ValueError: for a vocabulary mismatch.
        InitFromMismatch: for an ``init_from`` that differs in network, process or domain.
    """
    if process.vocab_size != domain.tokenizer.vocab_size:
        raise ValueError(
            f"process vocab_size {process.vocab_size} != tokenizer vocab_size {domain.tokenizer.vocab_size}"
        )
    train_data, val_data = domain.datasets()
    torch.manual_seed(trainer.seed)  # network initialisation
    model = build_denoiser(network)
    metadata = {
        "kind": "denoiser",
        "network": network.to_json(),
        "process": process.to_json(),
        "domain": {"name": domain.name, "state": domain.state(), "property_names": list(domain.property_names)},
        "started_from": None,
        "config": config or {},
    }
    if init_from is not None:
        adds_positions = _adds_learned_positions(init_from.meta["network"], network.to_json())
        for key in ("process", "domain", "network"):
            if _json_equal(init_from.meta[key], metadata[key]) or (key == "network" and adds_positions):
                continue
            raise InitFromMismatch(
                f"init_from={init_from.path} has another {key} than this run "
                f"({_first_difference(init_from.meta[key], metadata[key])}); it can only start a run of the same "
                "network (or the same with learned positions added to rotary ones), process and data"
            )
        missing, _ = model.load_state_dict(init_from.denoiser.state_dict(), strict=not adds_positions)
        if adds_positions:  # the positions are the only new weights; at zero the start computes the old network
            pos = model.pos
            assert missing == ["pos"] and isinstance(pos, torch.nn.Parameter)
            with torch.no_grad():
                pos.zero_()
        metadata["started_from"] = {
            "kind": "denoiser",
            "path": str(init_from.path),
            "step": init_from.meta.get("step"),
            "added": "learned positions" if adds_positions else None,
        }
    return train(
        model,
        objective or DenoiserObjective(process),
        train_data,
        val_data,
        trainer,
        run_dir,
        metadata=metadata,
        resume=resume,
        log=log,
    )


def _adds_learned_positions(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether network ``new`` is network ``old`` (rotary positions) with learned absolute positions added."""
    if old.get("positions") != "rotary" or new.get("positions") != "rotary+learned":
        return False
    return _json_equal({**old, "positions": None}, {**new, "positions": None})


def _json_equal(a: Any, b: Any) -> bool:
    """Equality after a JSON round trip (tuples become lists, as they do in a checkpoint's metadata)."""
    return bool(json.loads(json.dumps(a)) == json.loads(json.dumps(b)))


def _first_difference(a: Any, b: Any, where: str = "") -> str:
    """Where two JSON-like values first differ, as ``key.sub: x vs y``."""
    a, b = json.loads(json.dumps(a)), json.loads(json.dumps(b))
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{where}.{key}" if where else str(key))
    text_a, text_b = (str(x) if len(str(x)) <= 40 else str(x)[:37] + "..." for x in (a, b))
    return f"{where or 'value'}: {text_a} vs {text_b}"


@dataclass
class LoadedModel:
    """A denoiser checkpoint ready to sample from."""

    denoiser: AnyDenoiser
    process: DiffusionProcess
    domain: Any
    meta: dict[str, Any]
    path: Path


def load_model(path: str | Path, *, device: str | torch.device = "cpu") -> LoadedModel:
    """Load a denoiser checkpoint (a folder holding ``model.safetensors`` and ``model.json``).

    Raises:
        CheckpointError: if the folder is missing, incomplete, corrupt or not a denoiser.
    """
    path = resolve_checkpoint(path)
    meta = read_json(path, "model")
    require_kind(meta, path, "denoiser")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path} was written by a newer guide-gen (format {meta['format_version']})")
    try:
        network = DenoiserConfig(**meta["network"])
        process = process_from_json(meta["process"])
        domain = domain_from_state(meta["domain"]["name"], meta["domain"]["state"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/model.json is incomplete or invalid: {err}") from err
    model = build_denoiser(network)
    state = {k: v.float() for k, v in read_tensors(path, "model").items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its network config (missing {missing[:3]}, extra {unexpected[:3]})"
        )
    model.to(device).eval()
    return LoadedModel(denoiser=model, process=process, domain=domain, meta=meta, path=path)


# the seeds of the times and noise of :func:`validate_model` unless told otherwise (``guide-gen validate``, cards)
VALIDATION_SEEDS = (0, 1)


@dataclass(frozen=True)
class Validation:
    """Output of :func:`validate_model`: the mean metrics over seeds and the number of validation rows."""

    metrics: dict[str, float]
    rows: int


def validate_model(
    model: LoadedModel, *, seeds: tuple[int, ...] = VALIDATION_SEEDS, batch_size: int = 256
) -> Validation:
    """The denoiser's NELBO on its domain's whole validation set (nats and bits per token, unconditional and,
    with conditions, conditional), averaged over ``seeds`` of the times and noise: one estimator for every
    checkpoint, unlike the training log's, which sees ``val_batches`` batches.

    Raises:
        ValueError: for no seeds or a batch size below 1.
    """
    if not seeds or batch_size < 1:
        raise ValueError(f"validate_model needs at least one seed and batch_size >= 1, got {seeds} and {batch_size}")
    _, val = model.domain.datasets()
    objective = DenoiserObjective(model.process)
    runs = [objective.evaluate(model.denoiser, val, batch_size=batch_size, seed=seed) for seed in seeds]
    return Validation(metrics={key: sum(r[key] for r in runs) / len(runs) for key in runs[0]}, rows=len(val))


def export_model(src: str | Path, dst: str | Path, *, dtype: torch.dtype = torch.float16) -> Path:
    """Write a shippable copy of a checkpoint: EMA weights cast to ``dtype`` plus ``model.json``
    (no optimiser state)."""
    meta = read_json(src, "model")
    tensors = {k: v.to(dtype) for k, v in read_tensors(src, "model").items()}
    meta = {**meta, "weights_dtype": str(dtype).removeprefix("torch.")}
    return save_checkpoint(dst, tensors={"model": tensors}, meta={"model": meta})


@dataclass(frozen=True)
class Generation:
    """Output of :func:`generate`: tokens ``[N, L]``, network calls, wall time and reverse steps taken."""

    tokens: torch.Tensor
    nfe: int
    seconds: float
    steps: int


def generate(
    model: LoadedModel,
    *,
    num_samples: int,
    steps: int = 128,
    guidance: Guidance | None = None,
    seed: int = 0,
    batch_size: int = 256,
    posterior_dtype: torch.dtype = torch.float64,
    final_step: str = "sample",
    progress: bool = False,
    fixed_mask: torch.Tensor | None = None,
    fixed_tokens: torch.Tensor | None = None,
    temperature: float = 1.0,
    autocast: torch.dtype | None = None,
    remasking: Remasking | None = None,
) -> Generation:
    """Sample ``num_samples`` sequences in batches of ``batch_size`` with one seeded generator.

    ``guidance`` is shared by all batches, so its conditions must have one row (broadcast to every sample).
    ``temperature`` divides the denoiser's logits and ``autocast`` (``torch.bfloat16``) runs every network
    pass in that precision; ``remasking`` is the masked process's ReMDM reverse step (see
    :func:`guided_diffusion.sampling.sample`).
    An autoregressive model always takes one step per position, whatever ``steps`` says.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if model.process.causal:
        steps = model.denoiser.config.seq_len
    device = next(model.denoiser.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    chunks, nfe, start = [], 0, time.perf_counter()
    for first in range(0, num_samples, batch_size):
        rows = min(batch_size, num_samples - first)
        result = sample(
            model.process,
            model.denoiser,
            num_samples=rows,
            length=model.denoiser.config.seq_len,
            steps=steps,
            guidance=guidance,
            generator=generator,
            fixed_mask=None if fixed_mask is None else fixed_mask[first : first + rows],
            fixed_tokens=None if fixed_tokens is None else fixed_tokens[first : first + rows],
            posterior_dtype=posterior_dtype,
            final_step=final_step,  # type: ignore[arg-type]
            progress=progress,
            temperature=temperature,
            autocast=autocast,
            remasking=remasking,
        )
        chunks.append(result.tokens.cpu())
        nfe += result.nfe
    return Generation(tokens=torch.cat(chunks), nfe=nfe, seconds=time.perf_counter() - start, steps=steps)
