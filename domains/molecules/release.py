"""The release recipe: one command trains every shipped molecule model, exports it, evaluates it and writes
its model card. ``--preset cpu`` is the recipe the shipped files were trained with, ``gpu`` the full-size
recipe for one GPU (or several, under torchrun; the largest networks that still ship), ``tiny`` a
seconds-long smoke run.

    guide-gen molecules release --preset gpu --ship
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

from classifiers import LoadedClassifier, load_classifier
from classifiers.cli import main as classifier_main
from domains.molecules.cards import classifier_card, model_card, shown_path
from domains.molecules.generate import CHECKPOINTS, DEFAULT_REMASKING, DEFAULT_STEPS, REMASK_STEPS
from domains.molecules.recipe import (
    CLASSIFIER_EXPERIMENTS,
    CLASSIFIERS,
    CONTINUED,
    CONTINUING_PRESETS,
    MODEL_OVERRIDES,
    MODELS,
    PRESETS,
)
from domains.molecules.scales import DEFAULT_SCALE, measure_record, write_cbg_scale, write_record
from guided_diffusion.cli.devices import resolve_device
from guided_diffusion.cli.errors import ArgumentParser, UsageError
from guided_diffusion.cli.train_cmd import main as train_main
from guided_diffusion.pipeline import VALIDATION_SEEDS, LoadedModel, export_model, load_model, validate_model
from guided_diffusion.training.checkpoint import CheckpointError, atomic_write_text, read_json

# shipped classifier name -> the sampler seeds of its self-labelled training rows: before training, the
# release draws unguided molecules from the classifier's denoiser with each seed (SELF_LABEL_SAMPLES per seed
# under each preset) and passes them as ``extra_data``, labelled by RDKit (seed 0, the evaluations' seed,
# stays out)
SELF_LABELS: dict[str, tuple[int, ...]] = {"moses_udlm_regressor": (11, 12, 13, 14)}
SELF_LABEL_SAMPLES = {"cpu": 4096, "gpu": 4096, "tiny": 32}
# shipped classifier name -> the D-CBG scale its terms take under ``--guidance-scale auto`` (recorded in its
# model.json; chosen on seed 1, never on seed 0, the evaluations' seed: docs/molecules.md, "D-CBG toward
# qed=0.9 with the shipped regressor"). Classifiers not named here take the fixed default scale.
CBG_SCALES: dict[str, float] = {"moses_udlm_regressor": 40.0}


def denoiser_overrides(name: str, preset: str) -> list[str]:
    """The overrides of every run that trains the shipped denoiser ``name`` under ``preset``."""
    return [*PRESETS[preset]["denoiser"], *MODEL_OVERRIDES.get(preset, {}).get(name, [])]


# shipped denoiser -> the D-CFG scale its ``auto`` rule gives targets far from its unguided molecules
# (docs/molecules.md, "The auto guidance scale"); release measures its unguided statistics on
# 2n samples of seed 1. Models not named here keep the fixed default scale.
FAR_SCALES: dict[str, float] = {"moses_udlm": 8.0}
CALIBRATION_SEED = 1


# the largest weights (MiB, all safetensors files of the folder) that ``--ship`` copies into the package:
# 8 MiB per denoiser, 4 MB (3.81 MiB) per classifier
SHIP_LIMIT_MIB = {"denoiser": 8.0, "classifier": 4e6 / 2**20}
# masked models' cards measure the MDLM step and the remasking sampler, their default (ReMDM cap, 128 steps)
CARD_REMASKING, CARD_REMASK_STEPS = DEFAULT_REMASKING, REMASK_STEPS


def default_runs_dir(preset: str) -> Path:
    """``runs`` for the CPU recipe (the shipped cards name it), ``runs/<preset>`` for the others, so that a
    GPU or smoke run never tries to resume a CPU run of a different size."""
    return Path("runs") if preset == "cpu" else Path("runs") / preset


def _too_large(folder: Path, kind: str) -> str | None:
    """Why ``folder`` may not ship (its weights are over the limit of its kind), or None."""
    size = sum(p.stat().st_size for p in folder.glob("*.safetensors")) / 2**20
    limit = SHIP_LIMIT_MIB[kind]
    if size <= limit:
        return None
    return f"not shipped: its weights take {size:.1f} MiB, over the {limit:.2f} MiB limit of a shipped {kind}"


def _ship_within_limit(folder: Path, name: str, kind: str, *, ship: bool) -> tuple[Path, str]:
    """With ``ship``, copy ``folder`` into the package unless it is over the limit of its kind. Returns where
    the model is now, and a status note (empty, or why it was not shipped)."""
    refused = _too_large(folder, kind) if ship else None
    if refused:
        return folder, f" ({refused})"
    return (_ship(folder, name) if ship else folder), ""


def _train(command: list[str], run_dir: Path) -> tuple[bool, int]:
    """Run one training command (resuming); return whether it reached max_steps, and the step."""
    print(f"== guide-gen {' '.join(shlex.quote(o) for o in command)}", flush=True)
    (classifier_main if command[0] == "train-classifier" else train_main)(command[1:])
    return _progress(run_dir)


def _progress(run_dir: Path) -> tuple[bool, int]:
    """Whether the run in ``run_dir`` reached max_steps, and its checkpoint's step."""
    state = read_json(run_dir / "checkpoint", "trainer")
    meta = read_json(run_dir / "checkpoint", "model")
    return int(state["step"]) >= int(meta["training"]["trainer"]["max_steps"]), int(state["step"])


def classifier_experiment(name: str) -> str:
    """The experiment config that trains the shipped classifier ``name``."""
    return CLASSIFIER_EXPERIMENTS.get(name, name)


def self_labelled_samples(name: str, denoiser: Path, runs_dir: Path, preset: str) -> list[Path]:
    """Draw the unguided samples that the classifier ``name`` trains on beside its dataset (see
    :data:`SELF_LABELS`) from ``denoiser``, one CSV per seed under ``runs_dir/selflabel/<its denoiser's
    shipped name>/``, and return their paths. A CSV already there is kept unless the denoiser's weights are
    newer than it."""
    from domains.molecules.cli import generate_main

    folder = runs_dir / "selflabel" / CLASSIFIERS[name]
    weights = max(p.stat().st_mtime for p in denoiser.glob("*.safetensors"))
    paths = []
    for seed in SELF_LABELS.get(name, ()):
        path = folder / f"unguided_seed{seed}.csv"
        paths.append(path)
        if path.is_file() and path.stat().st_mtime > weights:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        argv = ["--checkpoint", str(denoiser), "--method", "none", "-n", str(SELF_LABEL_SAMPLES[preset])]
        argv += ["--seed", str(seed), "--batch-size", "256", "--precision", "auto", "--out", str(path)]
        print(f"== guide-gen molecules {' '.join(shlex.quote(a) for a in argv)}", flush=True)
        if generate_main(argv) != 0:
            raise UsageError(f"sampling the self-labelled rows of {name} failed")
    return paths


def stages(name: str, preset: str) -> tuple[str, ...]:
    """The experiments that train the shipped model ``name`` under ``preset``, in order; the last is exported."""
    return (MODELS[name], *(CONTINUED.get(name, ()) if preset in CONTINUING_PRESETS else ()))


def _not_ready(command: list[str], run_dir: Path, *, train: bool, partial: bool) -> str | None:
    """Train the run (unless ``train`` is False); return why it is not to be exported, or None if it is."""
    if not train and not (run_dir / "checkpoint").exists():
        return f"no run in {run_dir} yet"
    done, step = _train(command, run_dir) if train else _progress(run_dir)
    if not done and not partial:
        return f"paused at step {step} (run the same command again to continue)"
    return None


def _ship(folder: Path, name: str) -> Path:
    """Copy ``folder`` to the package's checkpoints, replacing any older copy only once the new one is whole.

    Files are copied without their permission bits, so the shipped copy gets those of a plain write.
    """
    target = CHECKPOINTS / name
    staging, old = target.with_name(f".{name}.new"), target.with_name(f".{name}.old")
    for leftover in (staging, old):
        if leftover.exists():
            shutil.rmtree(leftover)
    shutil.copytree(folder, staging, copy_function=shutil.copyfile)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


def _calibrate(name: str, folder: Path, n: int) -> str:
    """Write the auto-scale record of a denoiser that :data:`FAR_SCALES` names (from ``2 n`` unguided samples).

    Returns a note for the release's status: empty, or why the model was left without a record (its
    ``auto`` scale is then the fixed default)."""
    if name not in FAR_SCALES:
        return ""
    model = load_model(folder, device=resolve_device(None))
    try:
        record = measure_record(
            model, near_scale=DEFAULT_SCALE, far_scale=FAR_SCALES[name], n=2 * n, seed=CALIBRATION_SEED
        )
    except ValueError as err:
        write_record(folder, None)
        return f" (no auto-scale record: {err})"
    write_record(folder, record)
    return ""


def release(
    names: list[str],
    *,
    preset: str,
    runs_dir: Path,
    ship: bool,
    max_minutes: float | None,
    partial: bool = False,
    train: bool = True,
    cards_only: bool = False,
    n: int,
    extra: list[str],
) -> dict[str, str]:
    """Train (resuming) and export each denoiser, then each classifier (against the exported or shipped
    denoiser), then evaluate every denoiser (with D-CBG settings where its regressor exists) and write the
    model cards. Returns name -> status.

    ``cards_only``: the shipped denoisers among ``names`` are measured again where they lie (auto-scale
    record, evaluation, card); nothing is trained, exported, copied, and classifiers are left alone."""
    from domains.molecules.evaluation import SETTINGS, evaluate_model, format_table

    limit = [] if max_minutes is None else [f"trainer.max_minutes={max_minutes}"]
    status: dict[str, str] = {}
    notes: dict[str, str] = {}  # per exported denoiser: why it was not shipped, or empty
    exported: dict[str, Path] = {}
    regressors: dict[str, Path] = {}  # denoiser -> the regressor exported for it in this run
    for name in [m for m in names if m in MODELS and cards_only]:
        exported[name] = CHECKPOINTS / name
        if not (exported[name] / "model.json").is_file():
            raise UsageError(f"no shipped {name} to measure; ship it first (release --ship)")
        notes[name] = _calibrate(name, exported[name], n)
    for name in [m for m in names if m in MODELS and not cards_only]:
        overrides = denoiser_overrides(name, preset)
        chain = stages(name, preset)
        reason, previous = None, None
        # without training, only the last stage's run matters: it is what gets exported
        for experiment in chain if train else chain[-1:]:
            run_dir = runs_dir / experiment
            start: list[str] = [] if previous is None else [f"init_from={previous / 'checkpoint'}"]
            command = ["train", f"experiment={experiment}", f"run_dir={run_dir}", "resume=true", *start, *overrides]
            # a later stage waits for the one before it to finish, even with --partial
            last = experiment == chain[-1]
            reason = _not_ready([*command, *extra, *limit], run_dir, train=train, partial=partial and last)
            if reason:
                break
            previous = run_dir
        if reason:
            status[name] = reason
            continue
        exported[name] = export_model(run_dir / "checkpoint", run_dir / "shipped")
        calibration = _calibrate(name, exported[name], n)
        # a card from the start, so that an interrupted evaluation never leaves undocumented weights behind
        atomic_write_text(
            exported[name] / "MODEL_CARD.md",
            model_card(name, exported[name], _recipe(preset, name, extra), None, n=n, chain=stages(name, preset)),
        )
        exported[name], notes[name] = _ship_within_limit(exported[name], name, "denoiser", ship=ship)
        notes[name] += calibration
        status[name] = f"trained: {exported[name]}"
    for name in [m for m in names if m in CLASSIFIERS and not cards_only]:
        base = CLASSIFIERS[name]
        denoiser = exported.get(base, CHECKPOINTS / base)
        if not (denoiser / "model.json").is_file():
            status[name] = f"skipped: its denoiser {base} is not trained yet"
            continue
        run_dir = runs_dir / name
        command = [
            "train-classifier",
            f"experiment={classifier_experiment(name)}",
            f"denoiser={shown_path(denoiser)}",
            f"run_dir={run_dir}",
            "resume=true",
        ]
        if name in SELF_LABELS and train:
            drawn = self_labelled_samples(name, denoiser, runs_dir, preset)
            command.append(f"extra_data=[{','.join(shown_path(p) for p in drawn)}]")
        overrides = PRESETS[preset]["classifier"]
        reason = _not_ready([*command, *overrides, *extra, *limit], run_dir, train=train, partial=partial)
        if reason:
            status[name] = reason
            continue
        folder = export_model(run_dir / "checkpoint", run_dir / "shipped")
        write_cbg_scale(folder, CBG_SCALES.get(name))
        atomic_write_text(
            folder / "MODEL_CARD.md",
            classifier_card(name, folder, _recipe(preset, name, extra)),
        )
        folder, note = _ship_within_limit(folder, name, "classifier", ship=ship)
        if name == f"{base}_regressor":
            regressors[base] = folder
        status[name] = f"done: {folder}{note}"
    for name, folder in exported.items():
        device = resolve_device(None)
        model = load_model(folder, device=device)
        classifier = _regressor_for(name, model, regressors.get(name), device)
        rows = evaluate_model(
            model,
            runs_dir / stages(name, preset)[-1] / "evaluation",
            n=n,
            fcd=preset != "tiny",
            classifier=classifier,
        )
        table = format_table(rows, n=n, seed=0, steps=DEFAULT_STEPS)
        remask_evaluation = None
        if model.process.name == "masked":
            remasking, settings = CARD_REMASKING, SETTINGS[model.domain.dataset][:1]
            rows = evaluate_model(
                model,
                runs_dir / stages(name, preset)[-1] / "evaluation_remask",
                n=n,
                steps=CARD_REMASK_STEPS,
                remasking=remasking,
                settings=settings,
                fcd=preset != "tiny",
                classifier=classifier,
            )
            options = f"--steps {CARD_REMASK_STEPS} --remask {remasking}" + "".join(
                f' --setting "{label}"' for label, _ in settings
            )
            remask_evaluation = (
                options,
                format_table(rows, n=n, seed=0, steps=CARD_REMASK_STEPS, remasking=remasking),
            )
        validation = validate_model(model, seeds=VALIDATION_SEEDS).metrics
        atomic_write_text(
            folder / "MODEL_CARD.md",
            model_card(
                name,
                folder,
                _recipe(preset, name, extra),
                table,
                n=n,
                chain=stages(name, preset),
                validation=validation,
                remask_evaluation=remask_evaluation,
                regressor=None if classifier is None else classifier.path,
            ),
        )
        status[name] = f"done: {folder}{notes[name]}"
    return status


def _regressor_for(name: str, model: LoadedModel, trained: Path | None, device: str) -> LoadedClassifier | None:
    """The noisy regressor for the D-CBG rows of ``name``'s card: the one this release exported for it, else
    the shipped one, when it was trained for the same noise over the same vocabulary (an exported
    denoiser outside the package has no regressor beside it). None (no D-CBG rows) when neither fits."""
    folder = trained or CHECKPOINTS / f"{name}_regressor"
    if not (folder / "model.json").is_file():
        return None
    try:
        return load_classifier(folder, denoiser=model, device=device)
    except CheckpointError as err:
        print(f"{name}: no D-CBG rows on its card: {err}", flush=True)
        return None


def _recipe(preset: str, name: str, extra: list[str]) -> str:
    """The release command that trains ``name``, with any extra overrides it was given."""
    return " ".join(["guide-gen molecules release", f"--preset {preset} --models {name}", *map(shlex.quote, extra)])


def main(argv: list[str]) -> int:
    p = ArgumentParser(prog="guide-gen molecules release", description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    every = [*MODELS, *CLASSIFIERS]
    p.add_argument("--models", default=",".join(every), help=f"comma-separated subset of {', '.join(every)}")
    p.add_argument(
        "--runs-dir", default=None, help="where runs, exports and evaluations go (default: runs, or runs/PRESET)"
    )
    p.add_argument(
        "--ship",
        action="store_true",
        help="copy finished models into the package's checkpoints (denoisers up to 8 MiB, classifiers up to 4 MB)",
    )
    p.add_argument(
        "--partial", action="store_true", help="also export (and ship) runs that have not reached max_steps yet"
    )
    p.add_argument(
        "--no-train",
        action="store_true",
        help="export what the runs hold now without training (safe while another process trains them)",
    )
    p.add_argument(
        "--cards-only",
        action="store_true",
        help="measure the shipped denoisers again where they lie (auto-scale record, evaluation, model card); "
        "nothing is trained or copied",
    )
    p.add_argument("--max-minutes", type=float, default=None, help="training time per model in this call")
    p.add_argument("-n", type=int, default=512, help="samples per evaluation setting")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every model")
    args = p.parse_args(argv)
    names = [m for m in args.models.split(",") if m]
    unknown = sorted(set(names) - set(MODELS) - set(CLASSIFIERS))
    if unknown:
        raise UsageError(f"unknown models {unknown}; allowed: {', '.join([*MODELS, *CLASSIFIERS])}")
    if args.cards_only and (args.ship or args.partial or args.no_train or args.max_minutes is not None):
        raise UsageError(
            "--cards-only measures what is shipped; it takes no --ship, --partial, --no-train or --max-minutes"
        )
    status = release(
        names,
        preset=args.preset,
        runs_dir=Path(args.runs_dir) if args.runs_dir else default_runs_dir(args.preset),
        ship=args.ship,
        max_minutes=args.max_minutes,
        partial=args.partial,
        train=not args.no_train,
        cards_only=args.cards_only,
        n=args.n,
        extra=args.overrides,
    )
    print(json.dumps(status, indent=2))
    return 0
