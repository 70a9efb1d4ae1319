"""The training loop shared by denoisers and classifiers: AdamW, warm-up + cosine, EMA, gradient clipping,
periodic validation, throughput logging, atomic checkpoints with exact resume, and DDP under torchrun."""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from guided_diffusion.data import TokenDataset
from guided_diffusion.networks.dit import Denoiser, per_token_parameters
from guided_diffusion.training.checkpoint import (
    FORMAT_VERSION,
    CheckpointError,
    has_checkpoint,
    read_json,
    read_tensors,
    resolve_checkpoint,
    save_checkpoint,
)
from guided_diffusion.training.config import TrainerConfig, TrainResult
from guided_diffusion.training.distributed import DistributedContext, all_reduce_mean, setup_distributed
from guided_diffusion.training.objectives import Objective
from guided_diffusion.training.optim import EMA, learning_rate, load_optimizer_tensors, optimizer_tensors
from guided_diffusion.training.precision import (
    PrecisionChoice,
    choose_precision,
    transformer_flops_per_token,
)
from guided_diffusion.training.stopping import stop_requests


def _mix_seed(*parts: int) -> int:
    value = 0x9E3779B97F4A7C15
    for part in parts:
        value = (value ^ (part + 0x9E3779B97F4A7C15 + (value << 6) + (value >> 2))) & 0xFFFFFFFFFFFF
    return value


class _Batches:
    """Deterministic batches: epoch e uses a permutation seeded by (seed, e); step k -> (epoch, offset)."""

    def __init__(self, data: TokenDataset, batch_size: int, seed: int, ctx: DistributedContext) -> None:
        if batch_size % ctx.world_size:
            raise ValueError(f"batch_size {batch_size} must be divisible by the {ctx.world_size} DDP ranks")
        self.per_epoch = len(data) // batch_size
        if self.per_epoch < 1:
            raise ValueError(f"the training set ({len(data)} rows) is smaller than one batch ({batch_size})")
        self.data, self.batch_size, self.seed, self.ctx = data, batch_size, seed, ctx
        self._epoch, self._perm = -1, torch.empty(0, dtype=torch.long)

    def __call__(self, step: int) -> TokenDataset:
        epoch, offset = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            gen = torch.Generator().manual_seed(_mix_seed(self.seed, epoch))
            self._epoch, self._perm = epoch, torch.randperm(len(self.data), generator=gen)
        rows = self._perm[offset * self.batch_size : (offset + 1) * self.batch_size]
        rows = rows[self.ctx.rank :: self.ctx.world_size]
        batch = self.data.subset(rows)
        device = self.ctx.device
        return TokenDataset(
            tokens=batch.tokens.to(device),
            labels=None if batch.labels is None else batch.labels.to(device),
            values=None if batch.values is None else batch.values.to(device),
        )


def hardware_description(device: str | torch.device) -> str:
    """The hardware a run or measurement used: ``NAME (CUDA)`` for a GPU, ``x86_64 CPU, N threads`` for a CPU."""
    device = torch.device(device)
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    threads = torch.get_num_threads()
    return f"{platform.processor() or platform.machine()} CPU, {threads} thread{'s' * (threads != 1)}"


def train(
    model: nn.Module,
    objective: Objective,
    train_data: TokenDataset,
    val_data: TokenDataset | None,
    config: TrainerConfig,
    run_dir: str | Path,
    *,
    metadata: dict[str, Any] | None = None,
    resume: bool = False,
    log: bool = True,
) -> TrainResult:
    """Train ``model`` on ``objective`` and write checkpoints to ``run_dir/checkpoint``.

    Args:
        model: the network to train (moved to the run's device).
        objective: the loss and validation (e.g. :class:`DenoiserObjective`).
        train_data, val_data: datasets (``val_data`` may be None to skip validation).
        config: trainer hyper-parameters.
        run_dir: output folder: ``checkpoint/`` (model + trainer state) and ``log.jsonl``.
        metadata: JSON-serialisable facts stored in ``model.json`` (network, process, domain, config).
        resume: continue from ``run_dir/checkpoint`` if it exists (it must match model and data).
        log: print progress lines.

    Returns:
        A :class:`TrainResult`.

    Raises:
        CheckpointError: if resuming from a checkpoint of another model, process or dataset.
    """
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    ctx = setup_distributed(config.device)
    run_dir = Path(run_dir)
    ckpt_dir = run_dir / "checkpoint"
    model.to(ctx.device)
    names = [name for name, _ in model.named_parameters()]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay
    )
    ema = EMA(model, decay=config.ema_decay)
    meta = dict(metadata or {})
    meta["data"] = {
        "train_fingerprint": train_data.fingerprint(),
        "train_size": len(train_data),
        "val_fingerprint": None if val_data is None else val_data.fingerprint(),
        "val_size": 0 if val_data is None else len(val_data),
    }
    step, wall_before = 0, 0.0
    metrics: dict[str, float] = {}
    if resume and has_checkpoint(ckpt_dir):
        step, wall_before, metrics = _restore(ckpt_dir, model, optimizer, ema, names, meta)
        if log and ctx.is_main:
            print(f"resumed from {resolve_checkpoint(ckpt_dir)} at step {step}", flush=True)
    elif ckpt_dir.exists() and not resume:
        raise CheckpointError(f"{ckpt_dir} exists; pass resume=true to continue it or choose another run_dir")

    choice = choose_precision(config.precision, ctx.device)
    trained: nn.Module = model
    if config.compile:
        trained = torch.compile(model)  # type: ignore[assignment]
    if ctx.enabled:
        trained = DistributedDataParallel(trained, device_ids=[ctx.local_rank] if ctx.device.type == "cuda" else None)
    batches = _Batches(train_data, config.batch_size, config.seed, ctx)
    flops_per_token = getattr(objective, "flops_per_token", None)
    if flops_per_token is None:
        flops_per_token = _flops_per_token(model, train_data.seq_len)
    if log and ctx.is_main:
        params = sum(p.numel() for p in model.parameters())
        print(
            f"training {params / 1e6:.2f}M parameters on {hardware_description(ctx.device)} x{ctx.world_size}, "
            f"precision {choice.name} (matmul fp32 {choice.fp32_flops / 1e9:.0f} GFLOP/s, "
            f"bf16 {choice.bf16_flops / 1e9:.0f} GFLOP/s), {len(train_data)} training examples",
            flush=True,
        )

    model.train()
    with stop_requests() as stop_requested:
        return _loop(
            trained,
            model,
            objective,
            optimizer,
            ema,
            names,
            meta,
            batches,
            train_data,
            val_data,
            config,
            run_dir,
            ckpt_dir,
            choice,
            ctx,
            step,
            wall_before,
            metrics,
            flops_per_token,
            log,
            stop_requested,
        )


def _loop(
    trained: nn.Module,
    model: nn.Module,
    objective: Objective,
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    names: list[str],
    meta: dict[str, Any],
    batches: _Batches,
    train_data: TokenDataset,
    val_data: TokenDataset | None,
    config: TrainerConfig,
    run_dir: Path,
    ckpt_dir: Path,
    choice: PrecisionChoice,
    ctx: DistributedContext,
    step: int,
    wall_before: float,
    metrics: dict[str, float],
    flops_per_token: float,
    log: bool,
    stop_requested: list[int],
) -> TrainResult:
    start = time.perf_counter()
    window_start, window_loss, window_steps, tokens_per_second = start, 0.0, 0, 0.0
    finished = step >= config.max_steps
    while not finished:
        lr = learning_rate(
            step, peak=config.lr, warmup=config.warmup_steps, total=config.max_steps, min_ratio=config.min_lr_ratio
        )
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = batches(step)
        generator = torch.Generator(device=ctx.device).manual_seed(_mix_seed(config.seed, step, ctx.rank, 1))
        torch.manual_seed(_mix_seed(config.seed, step, ctx.rank, 2))  # dropout layers
        with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=choice.autocast is not None):
            loss = objective.loss(trained, batch, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        ema.update(model)
        step += 1
        window_loss += float(loss.detach())
        window_steps += 1
        finished = step >= config.max_steps
        elapsed_min = (time.perf_counter() - start) / 60.0
        out_of_time = config.max_minutes is not None and elapsed_min >= config.max_minutes
        stop = bool(stop_requested)
        if ctx.enabled:  # every rank stops at the same step, or the next collective would hang
            stop = float(all_reduce_mean(torch.tensor(float(stop), device=ctx.device), ctx)) > 0
        out_of_time = out_of_time or stop

        if step % config.log_every == 0 or finished or out_of_time:
            now = time.perf_counter()
            mean_loss = float(all_reduce_mean(torch.tensor(window_loss / window_steps), ctx))
            tokens = window_steps * config.batch_size * objective.tokens_per_example(batch)
            tokens_per_second = tokens / max(now - window_start, 1e-9)
            mfu = tokens_per_second * flops_per_token / (choice.peak_flops * ctx.world_size)
            record = {"step": step, "loss": mean_loss, "lr": lr, "tokens_per_s": tokens_per_second, "mfu": mfu}
            if ctx.is_main:
                _append_log(run_dir, record)
                if log:
                    print(
                        f"step {step:>7} | loss {mean_loss:.4f} | lr {lr:.2e} | {tokens_per_second:,.0f} tok/s | "
                        f"{100 * mfu:.1f}% of measured matmul peak",
                        flush=True,
                    )
            window_start, window_loss, window_steps = now, 0.0, 0

        validate = val_data is not None and config.val_every > 0 and (step % config.val_every == 0 or finished)
        if validate and val_data is not None:
            if ctx.is_main:
                metrics = _validate(model, ema, objective, val_data, config)
                _append_log(run_dir, {"step": step, **metrics})
                if log:
                    print(
                        f"step {step:>7} | validation " + " | ".join(f"{k} {v:.4f}" for k, v in metrics.items()),
                        flush=True,
                    )
            ctx.barrier()

        checkpoint_now = finished or out_of_time or (config.ckpt_every > 0 and step % config.ckpt_every == 0)
        if checkpoint_now:
            if ctx.is_main:
                wall = wall_before + time.perf_counter() - start
                _save(ckpt_dir, model, optimizer, ema, names, meta, step, wall, metrics, choice.name, ctx, config)
            ctx.barrier()
        if out_of_time and not finished:
            if log and ctx.is_main:
                why = f"signal {stop_requested[0]}" if stop_requested else f"{elapsed_min:.1f} min"
                print(f"stopping after {why} at step {step}; resume=true continues", flush=True)
            break
    return TrainResult(
        step=step, finished=finished, checkpoint=ckpt_dir, metrics=metrics, tokens_per_second=tokens_per_second
    )


def _flops_per_token(model: nn.Module, seq_len: int) -> float:
    if isinstance(model, Denoiser):
        cfg = model.config
        return transformer_flops_per_token(per_token_parameters(model), depth=cfg.depth, dim=cfg.dim, seq_len=seq_len)
    return 6.0 * sum(p.numel() for p in model.parameters())


# Validation draws its times and noise from this seed in every run, whatever trainer.seed is, so that runs,
# and the stages of a continued run (which change the seed for a new batch order), report comparable numbers.
VALIDATION_SEED = 12345


def _validate(
    model: nn.Module, ema: EMA, objective: Objective, data: TokenDataset, config: TrainerConfig
) -> dict[str, float]:
    """Validate the EMA weights (what gets shipped), then restore the raw weights."""
    raw = {name: p.detach().clone() for name, p in model.named_parameters()}
    ema.copy_to(model)
    try:
        subset = data.subset(slice(0, config.val_batches * config.batch_size))
        return objective.evaluate(model, subset, batch_size=config.batch_size, seed=VALIDATION_SEED)
    finally:
        with torch.no_grad():
            for name, p in model.named_parameters():
                p.copy_(raw[name])


def _append_log(run_dir: Path, record: dict[str, Any]) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "log.jsonl", "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def _save(
    ckpt_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    names: list[str],
    meta: dict[str, Any],
    step: int,
    wall: float,
    metrics: dict[str, float],
    precision: str,
    ctx: DistributedContext,
    config: TrainerConfig,
) -> None:
    model_meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "step": step,
        "metrics": metrics,
        "training": {
            "precision": precision,
            "hardware": hardware_description(ctx.device),
            "world_size": ctx.world_size,
            "wall_seconds": round(wall, 1),
            "trainer": asdict(config),
        },
    }
    trainer_meta = {"step": step, "ema_updates": ema.updates, "wall_seconds": wall, "metrics": metrics}
    tensors = {
        "model": {name: value.clone() for name, value in ema.shadow.items()},
        "trainer": {
            **{f"params/{name}": p.detach() for name, p in model.named_parameters()},
            **{f"optim/{k}": v for k, v in optimizer_tensors(optimizer, names).items()},
        },
    }
    save_checkpoint(ckpt_dir, tensors=tensors, meta={"model": model_meta, "trainer": trainer_meta})


def _restore(
    ckpt_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    ema: EMA,
    names: list[str],
    meta: dict[str, Any],
) -> tuple[int, float, dict[str, float]]:
    stored = read_json(ckpt_dir, "model")
    for key in ("kind", "network", "process", "classifier"):
        if json.dumps(stored.get(key), sort_keys=True) != json.dumps(meta.get(key), sort_keys=True):
            raise CheckpointError(f"cannot resume {ckpt_dir}: its {key} differs from this run's")
    if stored.get("data", {}).get("train_fingerprint") != meta["data"]["train_fingerprint"]:
        raise CheckpointError(f"cannot resume {ckpt_dir}: it was trained on different data")
    if "started_from" in stored:  # where the run began is the checkpoint's record, whatever resumes it
        meta["started_from"] = stored["started_from"]
    state = read_json(ckpt_dir, "trainer")
    tensors = read_tensors(ckpt_dir, "trainer")
    device = next(model.parameters()).device
    params = {k.split("/", 1)[1]: v for k, v in tensors.items() if k.startswith("params/")}
    missing = set(names) - set(params)
    if missing:
        raise CheckpointError(f"cannot resume {ckpt_dir}: missing parameters {sorted(missing)[:3]}")
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(params[name])
    optim = {k.split("/", 1)[1]: v.to(device) for k, v in tensors.items() if k.startswith("optim/")}
    load_optimizer_tensors(optimizer, names, optim)
    shadow = read_tensors(ckpt_dir, "model")
    ema.shadow = {name: shadow[name].float().to(device) for name in names}
    ema.updates = int(state["ema_updates"])
    return int(state["step"]), float(state.get("wall_seconds", 0.0)), dict(state.get("metrics", {}))


def steps_for_epochs(epochs: float, train_size: int, batch_size: int) -> int:
    """Number of optimiser steps that cover ``epochs`` passes over ``train_size`` examples."""
    return max(1, math.ceil(epochs * train_size / batch_size))
