"""Model cards of the released molecule models: what each is, the commands and data it was trained with,
and how it scores (denoisers) or how well it fits by diffusion time (classifiers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from guided_diffusion.pipeline import VALIDATION_SEEDS
from guided_diffusion.training.checkpoint import read_json


def _steps(meta: dict) -> str:
    """``"4,000 steps"``, or for a run exported before the end of its schedule, what is left."""
    step, total = int(meta["step"]), int(meta["training"]["trainer"]["max_steps"])
    if step >= total:
        return f"{step:,} steps"
    return f"{step:,} steps (exported early: its schedule runs to {total:,}; resuming the command continues it)"


def model_card(
    name: str,
    folder: Path,
    command: str,
    table: str | None,
    *,
    n: int,
    chain: tuple[str, ...],
    validation: dict[str, float] | None = None,
    remask_evaluation: tuple[str, str] | None = None,
    regressor: Path | None = None,
) -> str:
    """Markdown model card: what, how it was trained (command, data, wall time, hardware), how it scores.

    ``chain`` names the experiment configs the model was trained with, one after the other (its stages).

    ``validation`` is :func:`validate_model`'s bound (whole validation set, fixed seeds), comparable across
    checkpoints; without it the card gives the training log's last validation, which is not.

    ``remask_evaluation`` (masked models): the evaluate options and the table of the evaluation with the
    remasking sampler.

    ``regressor``: the noisy regressor behind the table's D-CBG rows; the card's command names it when it is
    not the one beside ``folder`` (which ``evaluate`` would take by default).
    """
    meta = read_json(folder, "model")
    training, data, domain = meta["training"], meta["data"], meta["domain"]["state"]
    trainer = training["trainer"]
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    net = meta["network"]
    if validation is None:
        source, values = "the training log's last validation, on part of the validation set", meta.get("metrics", {})
    else:
        seeds = ",".join(map(str, VALIDATION_SEEDS))
        source = f"`guide-gen validate <this folder> --seeds {seeds}`: every validation molecule, fixed seeds"
        values = validation
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in values.items())
    process = meta["process"]["name"]
    what = "autoregressive (left-to-right) model" if process == "autoregressive" else f"{process} diffusion"
    evaluate = f"guide-gen molecules evaluate --checkpoint <this folder> -n {n} --seed 0 --out DIR"
    beside = folder.parent / f"{folder.name}_regressor"
    if regressor is not None and regressor.resolve() != beside.resolve():
        evaluate += f" --classifier {shown_path(regressor)}"
    # masked models sample with remasking unless told otherwise; the main table is the MDLM step
    main = evaluate + (" --remask none" if process == "masked" else "")
    if table is None:
        measured = f"Not evaluated yet: `{main}` measures it."
    else:
        measured = f"Measured by `{main}`\n(samples written to CSV, then scored with RDKit):\n\n{table}"
    if remask_evaluation is not None:
        options, remask_table = remask_evaluation
        measured += f"""
## Sampling with remasking

The same model with the ReMDM reverse step (`--remask`, which lets unmasked tokens be masked again and
redrawn; the default sampler of masked models), the unguided setting and the first guided one, measured by
`{evaluate} {options}`:

{remask_table}"""
    return f"""# {name}

{what} over {domain["representation"].upper()} tokens of {domain["dataset"].upper()}
molecules (length {domain["seq_len"]}), conditioned on {", ".join(domain["properties"])} for classifier-free guidance.

- **Command**: `{command}` (equivalently {_equivalent(chain)}, each repeated until
  `max_steps`, then `guide-gen export`); the resolved configuration is in `model.json`.
- **Data**: {data["train_size"]:,} training molecules (`max_train={domain["max_train"]}`, seed {domain["seed"]}),
  fingerprint `{data["train_fingerprint"][:16]}`; validation {data["val_size"]:,} molecules.
- **Network**: width {net["dim"]}, {net["depth"]} blocks, {net["heads"]} heads,
  positions {net.get("positions", "rotary")}, sees t: {net["time_conditioning"]};
  weights {meta.get("weights_dtype", "float32")}, {size:.1f} MiB.
- **Training**: {_steps(meta)} of batch {trainer["batch_size"]}, lr {trainer["lr"]}, EMA {trainer["ema_decay"]};
  {training["wall_seconds"] / 60:.1f} min wall time on {training["hardware"]} x{training["world_size"]},
  precision {training["precision"]}{"; " + _start(meta) if meta.get("started_from") else ""}.
- **Validation** (EMA weights; {source}): {metrics}.
- **Guidance scale** (`--guidance-scale auto`, the default): {_auto_scale(meta)}.

## Evaluation

{measured}"""


def shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (cards and recorded commands name no
    machine's folders)."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _auto_scale(meta: dict[str, Any]) -> str:
    """How ``auto`` picks this model's D-CFG scale (its guidance record, written by calibrate)."""
    from domains.molecules.scales import DEFAULT_SCALE, guidance_record

    record = guidance_record(meta)
    if record is None:
        return f"{DEFAULT_SCALE:g} (no guidance record)"
    stats = ", ".join(f"{k} {record.means[k]:.3g} (sd {record.sds[k]:.3g})" for k in record.means)
    return (
        f"{record.near_scale:g}, or {record.far_scale:g} when a D-CFG target lies in a tail of the model's "
        f"unguided molecules (met by fewer than {record.far_share:.0%} of them, their median outside it), "
        f"judged on a percentile summary of {record.n:,} "
        f"unguided samples ({record.valid:,} valid, seed {record.seed}, {record.steps} steps; "
        f"`guide-gen molecules calibrate --checkpoint <this folder> --far-scale {record.far_scale:g} "
        f"-n {record.n} --seed {record.seed}`); their means: {stats}"
    )


def _equivalent(chain: tuple[str, ...]) -> str:
    """The plain training commands of a release's stages (without the preset's overrides)."""
    parts, previous = [], None
    for experiment in chain:
        start = "" if previous is None else f" init_from=runs/{previous}/checkpoint"
        parts.append(f"`guide-gen train experiment={experiment}{start} resume=true`")
        previous = experiment
    return ", then ".join(parts)


def _start(meta: dict[str, Any]) -> str:
    start = meta.get("started_from")
    if not start:
        return "started from random weights"
    if start.get("kind") == "classifier":
        return f"fine-tuned from the classifier {start['path']} (step {start['step']:,})"
    if start.get("kind") == "denoiser":
        added = f", {start['added']} added" if start.get("added") else ""
        return (
            f"continued from the denoiser {start['path']} (step {start['step']:,}) with a fresh optimiser and "
            f"schedule{added}"
        )
    depth = meta["classifier"]["depth"]
    return f"started from the embeddings and first {depth} blocks of its denoiser at step {start['step']:,}"


def _extra_data(meta: dict[str, Any]) -> str:
    extra = meta.get("extra_data")
    if not extra:
        return ""
    return (
        f" (of which {extra['rows'] * extra['repeat']:,} are the {extra['rows']:,} molecules of {extra['source']}, "
        f"labelled with RDKit, each {extra['repeat']} times)"
    )


def _cbg_scale(meta: dict[str, Any]) -> str:
    """The D-CBG scale this regressor's terms take under ``auto``."""
    from domains.molecules.scales import DEFAULT_SCALE, recorded_cbg_scale

    recorded = recorded_cbg_scale(meta)
    return f"{DEFAULT_SCALE:g} (none recorded)" if recorded is None else f"{recorded:g}, recorded by the release"


def classifier_card(name: str, folder: Path, command: str) -> str:
    """Markdown card of a classifier: what it reads, training facts, and validation error per t bin."""
    meta = read_json(folder, "model")
    cfg, training, data = meta["classifier"], meta["training"], meta["data"]
    metrics = meta.get("metrics", {})
    bins = sorted({k.rsplit("/", 1)[1] for k in metrics if k.startswith("val_rmse/")})
    reads = "xt" if cfg.get("reads", "tokens") == "tokens" else "the predicted clean tokens of its denoiser"
    lines = [
        f"# {name}",
        "",
        f"Noisy {cfg['head']} classifier reading {reads} "
        f"of the {meta['process']['name']} process ({meta['process']['schedule']['name']} schedule), "
        f"outputs {', '.join(cfg['output_names'])} (normalised units: (value - mean) / sd of the training set).",
        "",
        f"- **Command**: `{command}`",
        f"- **Data**: {data['train_size']:,} training rows{_extra_data(meta)}, validation {data['val_size']:,}.",
        f"- **Network**: width {cfg['dim']}, {cfg['depth']} blocks; {_steps(meta)}; "
        f"{training['wall_seconds'] / 60:.1f} min on {training['hardware']}; {_start(meta)}.",
        f"- **D-CBG scale** (`--guidance-scale auto`, the default): {_cbg_scale(meta)}.",
        "",
        "## Validation RMSE (normalised units) by diffusion time",
        "",
    ]
    if not bins:
        every = training["trainer"]["val_every"]
        return "\n".join(
            [*lines, f"Not validated yet: the run stopped before its first validation (every {every} steps).", ""]
        )
    lines += [
        "| output | " + " | ".join(f"t in [{b[1:].replace('-', ', ')})" for b in bins) + " |",
        "|---|" + "---|" * len(bins),
    ]
    for out in cfg["output_names"]:
        values = " | ".join(f"{metrics.get(f'val_rmse/{out}/{b}', float('nan')):.3f}" for b in bins)
        lines.append(f"| {out} | {values} |")
    return "\n".join(lines) + "\n"
