"""The release recipe: one command trains every shipped molecule model, exports it, evaluates it and writes
its model card. ``--preset cpu`` is the recipe the shipped files were trained with, ``gpu`` the full-size
recipe for one GPU (or several, under torchrun), ``tiny`` a seconds-long smoke run.

    guide-gen molecules release --preset gpu --ship
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from domains.molecules.generate import CHECKPOINTS
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.cli.train_cmd import main as train_main
from guided_diffusion.pipeline import export_model, load_model
from guided_diffusion.training.checkpoint import atomic_write_text, read_json

# shipped name -> experiment config (configs/experiment/<name>.yaml)
MODELS: dict[str, str] = {
    "moses_udlm": "moses_udlm_selfies",
    "moses_mdlm": "moses_mdlm_selfies",
    "qm9_udlm": "qm9_udlm",
    "qm9_mdlm": "qm9_mdlm",
}

PRESETS: dict[str, list[str]] = {
    # the experiment files as they are: the CPU recipe of the shipped models
    "cpu": [],
    # full size for one H100-class GPU (~92M-parameter-class budget scaled to these datasets)
    "gpu": [
        "network=base",
        "domain.max_train=null",
        "trainer.batch_size=512",
        "trainer.max_steps=60000",
        "trainer.lr=5.0e-4",
        "trainer.warmup_steps=2000",
        "trainer.ckpt_every=2000",
        "trainer.val_every=5000",
        "trainer.log_every=500",
        "trainer.device=cuda",
        "trainer.precision=auto",
    ],
    # a smoke run of the whole recipe in seconds (tests)
    "tiny": [
        "network=tiny",
        "domain.max_train=256",
        "domain.num_val=64",
        "domain.workers=1",
        "trainer.max_steps=10",
        "trainer.batch_size=32",
        "trainer.warmup_steps=2",
        "trainer.log_every=5",
        "trainer.val_every=10",
        "trainer.val_batches=1",
        "trainer.ckpt_every=10",
    ],
}


def release(
    names: list[str],
    *,
    preset: str,
    runs_dir: Path,
    ship: bool,
    max_minutes: float | None,
    n: int,
    extra: list[str],
) -> dict[str, str]:
    """Train (resuming), export, evaluate and document each model; returns name -> status."""
    from domains.molecules.evaluation import evaluate_model, format_table

    status = {}
    for name in names:
        run_dir = runs_dir / name
        overrides = [f"experiment={MODELS[name]}", f"run_dir={run_dir}", "resume=true", *PRESETS[preset], *extra]
        if max_minutes is not None:
            overrides.append(f"trainer.max_minutes={max_minutes}")
        print(f"== {name}: guide-gen train {' '.join(shlex.quote(o) for o in overrides)}", flush=True)
        train_main(overrides)
        state = read_json(run_dir / "checkpoint", "trainer")
        meta = read_json(run_dir / "checkpoint", "model")
        if int(state["step"]) < int(meta["training"]["trainer"]["max_steps"]):
            status[name] = f"paused at step {state['step']} (run the same command again to continue)"
            continue
        shipped = export_model(run_dir / "checkpoint", run_dir / "shipped")
        rows = evaluate_model(load_model(shipped), run_dir / "evaluation", n=n, fcd=preset != "tiny")
        table = format_table(rows, n=n, seed=0, steps=64)
        command = f"guide-gen molecules release --preset {preset} --models {name}"
        atomic_write_text(shipped / "MODEL_CARD.md", model_card(name, shipped, command, table, n=n))
        if ship:
            target = CHECKPOINTS / name
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(shipped, target)
        status[name] = f"done: {shipped}" + (f" -> {CHECKPOINTS / name}" if ship else "")
    return status


def model_card(name: str, folder: Path, command: str, table: str, *, n: int) -> str:
    """Markdown model card: what, how it was trained (command, data, wall time, hardware), how it scores."""
    meta = read_json(folder, "model")
    training, data, domain = meta["training"], meta["data"], meta["domain"]["state"]
    trainer = training["trainer"]
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    net = meta["network"]
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in meta.get("metrics", {}).items())
    return f"""# {name}

{meta["process"]["name"]} diffusion over {domain["representation"].upper()} tokens of {domain["dataset"].upper()}
molecules (length {domain["seq_len"]}), conditioned on {", ".join(domain["properties"])} for classifier-free guidance.

- **Command**: `{command}` (equivalently `guide-gen train experiment={MODELS[name]} resume=true`, repeated until
  `max_steps`, then `guide-gen export`); the resolved configuration is in `model.json`.
- **Data**: {data["train_size"]:,} training molecules (`max_train={domain["max_train"]}`, seed {domain["seed"]}),
  fingerprint `{data["train_fingerprint"][:16]}`; validation {data["val_size"]:,} molecules.
- **Network**: width {net["dim"]}, {net["depth"]} blocks, {net["heads"]} heads, sees t: {net["time_conditioning"]};
  weights {meta.get("weights_dtype", "float32")}, {size:.1f} MiB.
- **Training**: {meta["step"]:,} steps of batch {trainer["batch_size"]}, lr {trainer["lr"]}, EMA {trainer["ema_decay"]};
  {training["wall_seconds"] / 60:.1f} min wall time on {training["hardware"]} x{training["world_size"]},
  precision {training["precision"]}.
- **Validation** (EMA weights): {metrics}.

## Evaluation

Measured by `guide-gen molecules evaluate --checkpoint <this folder> -n {n} --seed 0 --out DIR`
(samples written to CSV, then scored with RDKit):

{table}"""


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="guide-gen molecules release", description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated subset of {', '.join(MODELS)}")
    p.add_argument("--runs-dir", default="runs/release", help="where runs, exports and evaluations go")
    p.add_argument("--ship", action="store_true", help="copy finished models into the package's checkpoints")
    p.add_argument("--max-minutes", type=float, default=None, help="training time per model in this call")
    p.add_argument("-n", type=int, default=512, help="samples per evaluation setting")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every model")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise UsageError(f"unknown models {unknown}; allowed: {', '.join(MODELS)}")
    status = release(
        names,
        preset=args.preset,
        runs_dir=Path(args.runs_dir),
        ship=args.ship,
        max_minutes=args.max_minutes,
        n=args.n,
        extra=args.overrides,
    )
    print(json.dumps(status, indent=2))
    return 0
