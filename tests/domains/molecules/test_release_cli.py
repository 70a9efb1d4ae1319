"""The molecules release recipe at tiny size, and the molecules command's errors and outputs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from domains.molecules import release as release_module
from domains.molecules.scales import guidance_record
from guided_diffusion.cli.main import main
from guided_diffusion.training.checkpoint import read_json


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory, data_dir):
    runs = tmp_path_factory.mktemp("release")
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(runs)]
    # the release measures the auto scale's unguided statistics of the models given a far scale
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(release_module, "FAR_SCALES", {"qm9_udlm": 6.0})
        # and draws the self-labelled training rows of the classifiers that take them
        patch.setattr(release_module, "SELF_LABELS", {"qm9_udlm_regressor": (11, 12)})
        # and records the D-CBG scale of the classifiers it names
        patch.setattr(release_module, "CBG_SCALES", {"qm9_udlm_regressor": 3.0})
        code = main([*argv, "--models", "qm9_udlm,qm9_udlm_regressor", "-n", "8"])
    assert code == 0
    # qm9_udlm is trained in five stages, each continuing the one before; the last is the one exported
    return runs / "qm9_udlm_positions_continued2"


def test_tiny_release_trains_exports_evaluates_and_documents(tiny_release):
    runs, shipped = tiny_release.parent, tiny_release / "shipped"
    assert sorted(p.name for p in shipped.iterdir()) == ["MODEL_CARD.md", "model.json", "model.safetensors"]
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "guide-gen molecules release --preset tiny --models qm9_udlm" in card
    assert not (tiny_release.parent / "qm9_udlm" / "shipped").exists()
    assert "| unguided | none |" in card and "rings=3" in card
    # the card's validation is guide-gen validate's (comparable across checkpoints), not the training log's
    assert "`guide-gen validate <this folder> --seeds 0,1`: every validation molecule" in card
    assert (tiny_release / "evaluation" / "evaluation.json").is_file()
    record = guidance_record(read_json(shipped, "model"))
    assert record is not None and record.far_scale == 6.0 and record.n == 16 and record.seed == 1
    assert "- **Guidance scale** (`--guidance-scale auto`, the default): 2, or 6 when" in card
    regressor_card = (tiny_release.parent / "qm9_udlm_regressor" / "shipped" / "MODEL_CARD.md").read_text()
    assert "Validation RMSE" in regressor_card and "| qed |" in regressor_card
    # the regressor trained on the exported denoiser's own unguided samples, one CSV per seed
    samples = [runs / "selflabel" / "qm9_udlm" / f"unguided_seed{seed}.csv" for seed in (11, 12)]
    assert all(len(pd.read_csv(path)) == 32 for path in samples)
    extra = read_json(tiny_release.parent / "qm9_udlm_regressor" / "shipped", "model")["extra_data"]
    assert extra["source"] == ", ".join(map(str, samples)) and extra["repeat"] == 1 and extra["rows"] >= 1


def test_cards_only_measures_a_shipped_model_where_it_lies(tiny_release, tmp_path, monkeypatch, capsys):
    import shutil

    shutil.copytree(tiny_release / "shipped", tmp_path / "checkpoints" / "qm9_udlm")
    folder = tmp_path / "checkpoints" / "qm9_udlm"
    (folder / "MODEL_CARD.md").write_text("old card\n")
    weights = (folder / "model.safetensors").read_bytes()
    monkeypatch.setattr(release_module, "CHECKPOINTS", tmp_path / "checkpoints")
    monkeypatch.setattr(release_module, "FAR_SCALES", {"qm9_udlm": 4.0})
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(tmp_path / "runs"), "--models"]
    assert main([*argv, "qm9_udlm,qm9_udlm_regressor", "--cards-only", "-n", "8"]) == 0
    assert '"qm9_udlm": "done: ' in capsys.readouterr().out
    card = (folder / "MODEL_CARD.md").read_text()
    assert "| unguided | none |" in card and "2, or 4 when" in card
    record = guidance_record(read_json(folder, "model"))
    assert record is not None and record.far_scale == 4.0 and record.n == 16
    assert (folder / "model.safetensors").read_bytes() == weights  # measured, not retrained
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["qm9_udlm_positions_continued2"]
    assert main([*argv, "qm9_udlm", "--cards-only", "--ship"]) == 2
    assert "--cards-only measures what is shipped" in capsys.readouterr().err
    assert main([*argv, "qm9_mdlm", "--cards-only"]) == 2
    assert "no shipped qm9_mdlm to measure" in capsys.readouterr().err


@pytest.mark.slow
def test_a_paused_run_is_exported_only_when_asked_and_its_card_says_so(tmp_path, data_dir, capsys):
    runs = str(tmp_path)
    # one optimiser step, then the time budget (0 minutes) pauses the run
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", runs, "--models", "qm9_ar", "-n", "4"]
    assert main([*argv, "--max-minutes", "0"]) == 0
    assert "paused at step 1" in capsys.readouterr().out
    assert not (tmp_path / "qm9_ar" / "shipped").exists()

    assert main([*argv, "--no-train", "--partial"]) == 0
    card = (tmp_path / "qm9_ar" / "shipped" / "MODEL_CARD.md").read_text()
    assert "1 steps (exported early: its schedule runs to 10" in card

    assert main([*argv[:-4], "--models", "qm9_mdlm", "--no-train"]) == 0
    assert "no run in" in capsys.readouterr().out


def test_an_export_is_documented_before_its_evaluation_runs(tmp_path, data_dir, monkeypatch):
    import domains.molecules.evaluation

    # qm9_ar is trained in one stage (the diffusion models' later stages wait for the first to finish)
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(tmp_path), "--models", "qm9_ar", "-n", "4"]
    assert main([*argv, "--max-minutes", "0"]) == 0

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(domains.molecules.evaluation, "evaluate_model", interrupted)
    assert main([*argv, "--no-train", "--partial"]) != 0
    card = (tmp_path / "qm9_ar" / "shipped" / "MODEL_CARD.md").read_text()
    assert "Not evaluated yet" in card and "1 steps (exported early" in card


def test_the_autoregressive_baseline_releases_and_samples_one_token_per_step(tmp_path, data_dir, capsys):
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(tmp_path), "--models", "qm9_ar", "-n", "4"]
    assert main(argv) == 0  # its evaluation asks for 64 steps; the model takes one per position
    shipped = tmp_path / "qm9_ar" / "shipped"
    assert "autoregressive (left-to-right) model over SMILES" in (shipped / "MODEL_CARD.md").read_text()
    capsys.readouterr()
    argv = ["molecules", "--checkpoint", str(shipped), "--target", "rings=1", "-n", "4", "--steps", "64", "--quiet"]
    assert main(argv) == 0
    assert "(SMILES, autoregressive noise), D-CFG scale 2 (auto: this model has no guidance record), 32 steps" in (
        capsys.readouterr().out
    )


def test_molecules_command_writes_csv_and_sdf(tiny_release, tmp_path, capsys):
    ckpt = str(tiny_release / "shipped")
    out = tmp_path / "s.csv"
    args = ["molecules", "--checkpoint", ckpt, "--target", "rings=1", "-n", "6", "--steps", "4", "--quiet"]
    assert main([*args, "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["smiles", "valid"] and len(table) == 6
    assert {"qed", "rings"} <= set(table.columns)
    text = capsys.readouterr().out
    assert "validity" in text and "target rings=1±0" in text
    assert main([*args, "--out", str(tmp_path / "s.sdf")]) == 0
    assert main([*args, "--precision", "bf16"]) == 0
    assert "bf16 network passes" in capsys.readouterr().out
    assert main([*args, "--guidance-interval", "0.5,1"]) == 0
    assert "D-CFG at t in [0.5, 1]" in capsys.readouterr().out
    assert main(["molecules", "score", str(out), "--target", "rings=1", "--no-fcd"]) == 0
    assert "hit rate" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--target", "qed=1.5"], "impossible target 'qed=1.5'"),
        (["--target", "rings=-1"], "impossible target 'rings=-1'"),
        (["--target", "foo=1"], "unknown property 'foo'"),
        (["--target", "qed=0.9", "-n", "0"], "-n must be >= 1"),
        (["--method", "cbg", "--cbg-mode", "exact", "--top-k", "0"], "--top-k must be >= 1, got 0"),
        (["bench-guidance", "--top-k", "0"], "--top-k must be >= 1, got 0"),
        (["bench-guidance", "--repeats", "0"], "--repeats must be >= 1, got 0"),
        (["bench-guidance", "-n", "0"], "-n must be >= 1, got 0"),
        (["bench-guidance", "--guidance-scale", "-1"], "--guidance-scale must be a number >= 0"),
        (["bench-guidance", "--threads", "0"], "--threads must be >= 1, got 0"),
        (["--model", "gpt"], "invalid choice"),
        (["--temperature", "0"], "--temperature must be a number > 0"),
        (["--temperature", "inf"], "--temperature must be a number > 0"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--remask", "cap:2"], "--remask must be auto (the default), none, cap:ETA"),
        (["--remask", "cap:0.1", "-n", "2"], "remasking needs the masked (absorbing-state) process"),
        (["evaluate", "--remask", "loop", "--out", "x"], "--remask must be auto"),
        (["--precision", "fp16"], "invalid choice: 'fp16'"),
        (["--guidance-interval", "0.5"], "--guidance-interval: a guidance interval is LO,HI with 0 <= LO < HI <= 1"),
        (["--guidance-interval", "0.8,0.2"], "--guidance-interval: a guidance interval is LO,HI"),
        (["bench-guidance", "--guidance-interval", "a,b"], "--guidance-interval: a guidance interval is LO,HI"),
        (["evaluate", "--guidance-interval", "0,2", "--out", "x"], "--guidance-interval: a guidance interval is LO,HI"),
        (["evaluate", "--temperature", "-1", "--out", "x"], "--temperature must be a number > 0"),
        (["evaluate", "--classifier", "/nonexistent", "--out", "x"], "no checkpoint at"),
        (["--checkpoint", "/nonexistent"], "no checkpoint at"),
        (["score", "/nonexistent.csv"], "no such file"),
    ],
)
def test_molecules_errors(capsys, argv, needle):
    assert main(["molecules", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err


def test_cfg_on_an_unconditioned_property_is_refused(tiny_release, capsys):
    code = main(["molecules", "--checkpoint", str(tiny_release / "shipped"), "--target", "tpsa<=50", "-n", "2"])
    assert code == 2
    assert "cannot be targeted with classifier-free guidance" in capsys.readouterr().err


@pytest.fixture(scope="module")
def tiny_regressor(tiny_release, tmp_path_factory):
    run = tmp_path_factory.mktemp("regressor")
    code = main(
        [
            "train-classifier",
            f"denoiser={tiny_release / 'shipped'}",
            f"run_dir={run}",
            "classifier.dim=32",
            "classifier.depth=1",
            "trainer.max_steps=5",
            "trainer.batch_size=32",
            "trainer.warmup_steps=1",
            "trainer.val_every=5",
            "trainer.val_batches=1",
            "trainer.log_every=5",
        ]
    )
    assert code == 0
    return run / "checkpoint"


def test_a_classifier_records_the_domain_and_process_of_its_denoiser(tiny_release, tiny_regressor):
    from guided_diffusion.training.checkpoint import read_json

    denoiser, meta = read_json(tiny_release / "shipped", "model"), read_json(tiny_regressor, "model")
    for key in ("domain", "process", "schedule"):  # not the command's unused toy defaults
        assert meta["config"][key] == denoiser["config"][key]
    assert meta["config"]["domain"]["_target_"] == "domains.molecules.MoleculeDomain"


def test_classifier_guidance_and_templates_in_the_molecules_command(tiny_release, tiny_regressor, capsys):
    base = [
        "molecules",
        "--checkpoint",
        str(tiny_release / "shipped"),
        "--classifier",
        str(tiny_regressor),
        "-n",
        "4",
        "--steps",
        "4",
        "--quiet",
    ]
    assert main([*base, "--target", "qed>=0.5", "--method", "cbg"]) == 0
    assert (
        main([*base, "--target", "qed>=0.5@cbg", "--target", "rings=1@cfg", "--cbg-mode", "exact", "--top-k", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "D-CBG (first-order)" in out and "D-CBG (exact) scale 2 + D-CFG scale " in out
    assert main([*base, "--template", "C1CC?C1", "--out", "/dev/null"]) == 0
    assert main([*base, "--template", "C1CC?C1"]) == 0


def test_a_regressor_gives_d_cbg_its_recorded_scale_under_auto(tiny_release, capsys):
    exported = tiny_release.parent / "qm9_udlm_regressor" / "shipped"
    assert read_json(exported, "model")["cbg_scale"] == 3.0
    assert (
        "- **D-CBG scale** (`--guidance-scale auto`, the default): 3, recorded by the release."
        in (exported / "MODEL_CARD.md").read_text()
    )
    base = ["molecules", "--checkpoint", str(tiny_release / "shipped"), "--classifier", str(exported)]
    base += ["-n", "2", "--steps", "2", "--quiet", "--target", "qed=0.9", "--method", "cbg"]
    for extra, scale in (([], "3"), (["--guidance-scale", "1.5"], "1.5"), (["--cbg-scale", "0.5"], "0.5")):
        assert main([*base, *extra]) == 0
        assert f"D-CBG (first-order) scale {scale}," in capsys.readouterr().out, extra
    # a regressor without a record takes the fixed default
    from domains.molecules.scales import write_cbg_scale

    write_cbg_scale(exported, None)
    try:
        assert main(base) == 0
        assert "D-CBG (first-order) scale 2," in capsys.readouterr().out
        write_cbg_scale(exported, 3.0)
        meta = read_json(exported, "model")
        (exported / "model.json").write_text(json.dumps({**meta, "cbg_scale": "high"}))
        assert main(base) == 2
        assert "malformed cbg_scale in the regressor's model.json: 'high'" in capsys.readouterr().err
    finally:
        write_cbg_scale(exported, 3.0)


def test_evaluation_uses_the_regressor_it_is_given(tiny_release, tiny_regressor, tmp_path):
    from classifiers import load_classifier
    from domains.molecules.evaluation import evaluate_model
    from guided_diffusion.pipeline import load_model

    model = load_model(tiny_release / "shipped")
    regressor = load_classifier(tiny_regressor, process=model.process)
    setting = ("qed>=0.55 @cbg", ["qed>=0.55@cbg"])
    # the tiny model has no regressor beside it: without one the D-CBG setting is left out
    assert [r.setting for r in evaluate_model(model, tmp_path / "a", n=4, steps=2, fcd=False, settings=[setting])] == [
        "unguided"
    ]
    rows = evaluate_model(model, tmp_path / "b", n=4, steps=2, fcd=False, settings=[setting], classifier=regressor)
    assert [r.method for r in rows] == ["none", "cbg (first-order) g=2"]
    assert f"D-CBG regressor: {regressor.path}" in (tmp_path / "b" / "evaluation.md").read_text()


def test_evaluation_guides_on_the_interval_it_is_given(tiny_release, tmp_path, monkeypatch):
    import domains.molecules.evaluation as evaluation
    from guided_diffusion.pipeline import load_model

    seen = []
    original = evaluation.sample_molecules

    def recording(*args, **kwargs):
        seen.append((kwargs["method"], kwargs["guidance_interval"]))
        return original(*args, **kwargs)

    monkeypatch.setattr(evaluation, "sample_molecules", recording)
    model = load_model(tiny_release / "shipped")
    rows = evaluation.evaluate_model(
        model,
        tmp_path,
        n=4,
        steps=4,
        fcd=False,
        settings=[("qed>=0.55", ["qed>=0.55"])],
        guidance_scale=4.0,
        guidance_interval=(0.0, 0.5),
    )
    assert [r.method for r in rows] == ["none", "cfg g=4 on t in [0, 0.5]"]
    assert seen == [("none", (0.0, 0.5)), ("cfg", (0.0, 0.5))]
    assert "cfg g=4 on t in [0, 0.5]" in (tmp_path / "evaluation.md").read_text()


def test_the_release_gives_an_unshipped_model_the_regressor_it_exported(tiny_release, capsys):
    import dataclasses

    from domains.molecules.release import _regressor_for
    from guided_diffusion.pipeline import load_model
    from guided_diffusion.processes import MaskedProcess
    from guided_diffusion.schedules import LogLinearSchedule

    model = load_model(tiny_release / "shipped")
    exported = tiny_release.parent / "qm9_udlm_regressor" / "shipped"
    # the exported denoiser has no regressor beside it: the card's D-CBG rows take the one this release made
    assert _regressor_for("qm9_udlm", model, exported, "cpu").path.resolve() == exported.resolve()
    masked = dataclasses.replace(model, process=MaskedProcess(model.process.vocab_size, LogLinearSchedule()))
    assert _regressor_for("qm9_udlm", masked, exported, "cpu") is None
    assert "qm9_udlm: no D-CBG rows on its card: classifier" in capsys.readouterr().out


def test_template_positions_are_kept(tiny_release):
    from domains.molecules.generate import sample_molecules
    from guided_diffusion.pipeline import load_model

    model = load_model(tiny_release / "shipped")
    out = sample_molecules(model, n=6, steps=4, method="none", template="C1CC??")
    assert all(s.startswith("C1CC") for s in out.smiles)


def test_a_regressor_for_another_process_is_refused(tiny_release, tiny_regressor, tmp_path, capsys):
    from classifiers import load_classifier
    from guided_diffusion.processes import MaskedProcess
    from guided_diffusion.schedules import LogLinearSchedule
    from guided_diffusion.training.checkpoint import CheckpointError

    with pytest.raises(CheckpointError, match="trained for uniform noise"):
        load_classifier(tiny_regressor, process=MaskedProcess(40, LogLinearSchedule()))


def test_guidance_speed_benchmark_prints_all_methods(tiny_release, tiny_regressor, capsys):
    code = main(
        [
            "molecules",
            "bench-guidance",
            "--checkpoint",
            str(tiny_release / "shipped"),
            "--classifier",
            str(tiny_regressor),
            "-n",
            "4",
            "--steps",
            "2",
            "--repeats",
            "1",
            "--top-k",
            "2",
            "--naive",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    names = ("unguided", "D-CFG", "D-CBG first-order", "D-CBG exact, top-2", "D-CBG exact, all candidates")
    for name in (*names, "D-CBG exact, every candidate scored"):
        assert f"| {name} |" in out
    assert "fewer" in out and "network passes in fp32" in out
    argv = ["molecules", "bench-guidance", "--checkpoint", str(tiny_release / "shipped"), "--classifier"]
    argv += [str(tiny_regressor), "-n", "4", "--steps", "2", "--repeats", "1", "--precision", "fp32,bf16"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for name in names[:3]:
        assert f"| {name} (fp32) |" in out and f"| {name} (bf16) |" in out
    assert main([*argv[:-1], "fp32,half"]) == 2
    assert "unknown precision 'half'" in capsys.readouterr().err
    assert main([*argv[:-2], "--passes", "sliced,whole"]) == 0
    out = capsys.readouterr().out
    for name in (*names[:3], "D-CBG exact, top-4"):
        assert f"| {name} (sliced passes) |" in out and f"| {name} (whole passes) |" in out
    assert "sliced and whole passes" in out
    assert main([*argv[:-2], "--passes", "halves"]) == 2
    assert "--passes takes sliced, whole or both" in capsys.readouterr().err


def test_the_readme_custom_guidance_example_runs(tiny_release, monkeypatch, capsys):
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[3] / "README.md").read_text()
    block = readme.split("### Custom guidance", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    code = block.replace('"domains/molecules/checkpoints/moses_udlm"', repr(str(tiny_release / "shipped")))
    code = code.replace("num_samples=16, steps=32", "num_samples=3, steps=3")
    assert code != block, "the example must load the shipped model"
    exec(compile(code, "README.md", "exec"), {})
    assert capsys.readouterr().out.startswith("[")


def test_a_classifier_card_says_when_its_run_was_never_validated(tmp_path):
    import json

    from domains.molecules.cards import classifier_card
    from domains.molecules.generate import CHECKPOINTS

    meta = json.loads((CHECKPOINTS / "qm9_udlm_regressor" / "model.json").read_text())
    assert "| qed |" in classifier_card("r", CHECKPOINTS / "qm9_udlm_regressor", "guide-gen molecules release")
    meta["metrics"] = {}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    card = classifier_card("r", tmp_path, "guide-gen molecules release")
    assert "Not validated yet" in card and "| qed |" not in card
    assert "started from random weights" in card
    meta["started_from"] = {"step": 5000, "train_fingerprint": "x", "network": {}}
    (tmp_path / "model.json").write_text(json.dumps(meta))
    depth = meta["classifier"]["depth"]
    assert f"started from the embeddings and first {depth} blocks of its denoiser at step 5,000" in classifier_card(
        "r", tmp_path, "c"
    )


def test_a_regressor_fine_tuned_on_sampled_molecules(tiny_release, tiny_regressor, tmp_path, capsys):
    """extra_data labels a CSV's molecules with RDKit (invalid ones dropped) and adds them, repeated, to the
    training rows; init_from starts from another regressor's weights; both are recorded and carded."""
    from classifiers import load_classifier
    from domains.molecules.cards import classifier_card
    from guided_diffusion.training.checkpoint import read_json

    csv = tmp_path / "samples.csv"
    csv.write_text("smiles,valid\nCCO,True\nC1CC1O,True\nC1CC(,False\nCC(C)O,True\n")
    base = [
        "train-classifier",
        f"denoiser={tiny_release / 'shipped'}",
        "classifier.dim=32",
        "classifier.depth=1",
        "trainer.max_steps=1",
        "trainer.batch_size=32",
        "trainer.warmup_steps=1",
        "trainer.val_every=1",
        "trainer.val_batches=1",
        "trainer.lr=1e-30",
    ]
    run = tmp_path / "tuned"
    code = main([*base, f"run_dir={run}", f"init_from={tiny_regressor}", f"extra_data=[{csv},{csv}]", "extra_repeat=3"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.count("dropped 1 invalid molecules (kept 3)") == 2
    meta = read_json(run / "checkpoint", "model")
    assert meta["extra_data"]["rows"] == 6 and meta["extra_data"]["repeat"] == 3
    assert meta["started_from"]["kind"] == "classifier" and meta["started_from"]["step"] == 5
    plain = read_json(tiny_regressor, "model")
    assert meta["data"]["train_size"] == plain["data"]["train_size"] + 18
    # a negligible learning rate leaves the weights where init_from put them
    tuned, source = load_classifier(run / "checkpoint"), load_classifier(tiny_regressor)
    for name, value in source.classifier.state_dict().items():
        torch.testing.assert_close(tuned.classifier.state_dict()[name], value)
    card = classifier_card("r", run / "checkpoint", "c")
    assert "fine-tuned from the classifier" in card and f"the 6 molecules of {csv}, {csv}" in card
    # one-line usage errors
    bad_csv = tmp_path / "bad.csv"
    bad_csv.write_text("smiles\nC1CC(\n")
    for extra, needle in (
        ([f"init_from={tiny_regressor}", "classifier.dim=64"], "is a different classifier"),
        ([f"init_from={tiny_regressor}", "start_from_denoiser=true"], "choose one"),
        ([f"extra_data={tmp_path / 'none.csv'}"], "no such file"),
        ([f"extra_data={bad_csv}"], "no valid molecule"),
        ([f"extra_data={csv}", "extra_repeat=0"], "extra_repeat must be"),
        ([f"extra_data={csv}", "extra_repeat=2.5"], "extra_repeat must be a whole number >= 1, got 2.5"),
        ([f"extra_data={csv}", "extra_repeat=abc"], "extra_repeat must be"),
    ):
        code = main([*base, f"run_dir={tmp_path / 'bad'}", *extra])
        err = capsys.readouterr().err
        assert code == 2 and needle in err.strip().splitlines()[-1], err


@pytest.mark.parametrize("preset", ["cpu", "gpu", "tiny"])
def test_every_preset_composes_for_every_model_and_the_gpu_one_ships(preset):
    """Each release command's config composes (an error here would otherwise surface only on the machine
    that runs the preset), and the GPU preset's networks, built over the shipped models' vocabularies, stay
    under the ship limit in fp16 while being larger than the CPU ones."""
    import json

    from classifiers.network import ClassifierConfig, NoisyClassifier
    from domains.molecules.generate import CHECKPOINTS
    from domains.molecules.release import (
        CLASSIFIERS,
        MODELS,
        PRESETS,
        SHIP_LIMIT_MIB,
        classifier_experiment,
        denoiser_overrides,
        stages,
    )
    from guided_diffusion.cli.config import build, compose_config
    from guided_diffusion.networks.dit import Denoiser, DenoiserConfig

    checked = 0
    for name in [*MODELS, *CLASSIFIERS]:
        kind = "denoiser" if name in MODELS else "classifier"
        overrides = denoiser_overrides(name, preset) if kind == "denoiser" else PRESETS[preset][kind]
        for experiment in stages(name, preset) if kind == "denoiser" else (classifier_experiment(name),):
            cfg = compose_config(
                "train" if kind == "denoiser" else "train_classifier", [f"experiment={experiment}", *overrides]
            )
            build(cfg.trainer)
        if preset == "gpu" and name in ("moses_udlm", "moses_mdlm"):
            # conditions that hold one property are common in training (the shipped fifth stage's dropout)
            assert float(cfg.objective.value_dropout) == 0.85, name
        folder = CHECKPOINTS / name
        if preset != "gpu" or not (folder / "model.json").is_file():
            continue
        meta = json.loads((folder / "model.json").read_text())
        node = cfg.network if kind == "denoiser" else cfg.classifier
        size = {k: int(node[k]) for k in ("dim", "depth", "heads")}
        if kind == "denoiser":
            cpu, net = DenoiserConfig(**meta["network"]), Denoiser(DenoiserConfig(**{**meta["network"], **size}))
        else:
            cpu = ClassifierConfig(**meta["classifier"])
            net = NoisyClassifier(ClassifierConfig(**{**meta["classifier"], **size}))
        mib = sum(p.numel() for p in net.parameters()) * 2 / 2**20
        assert mib <= SHIP_LIMIT_MIB[kind], (name, mib)
        assert size["dim"] * size["depth"] > cpu.dim * cpu.depth, name
        checked += 1
    assert preset != "gpu" or checked >= 6


def test_ship_refuses_weights_over_the_limit_and_other_presets_keep_their_own_runs(
    tmp_path, data_dir, monkeypatch, capsys
):
    import domains.molecules.release as release

    assert release.default_runs_dir("cpu").as_posix() == "runs"
    assert release.default_runs_dir("gpu").as_posix() == "runs/gpu"
    package = tmp_path / "package"
    package.mkdir()
    monkeypatch.setattr(release, "CHECKPOINTS", package)
    monkeypatch.setattr(release, "SHIP_LIMIT_MIB", {"denoiser": 1e-3, "classifier": 1e-3})
    models = "qm9_udlm,qm9_udlm_regressor"
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(tmp_path / "runs"), "--models", models]
    assert main([*argv, "-n", "4", "--ship"]) == 0
    out = capsys.readouterr().out
    assert out.count("MiB limit of a shipped") == 2, out
    assert list(package.iterdir()) == []
    assert (tmp_path / "runs" / "qm9_udlm_positions_continued2" / "shipped" / "MODEL_CARD.md").is_file()

    monkeypatch.setattr(release, "SHIP_LIMIT_MIB", {"denoiser": 8.0, "classifier": 4.0})
    assert main([*argv, "-n", "4", "--ship", "--no-train"]) == 0
    assert sorted(p.name for p in package.iterdir()) == ["qm9_udlm", "qm9_udlm_regressor"]


def test_shipping_gives_the_copies_the_permissions_of_a_plain_write(tmp_path, monkeypatch):
    import stat

    import domains.molecules.release as release
    from guided_diffusion.training.checkpoint import creation_mode

    package = tmp_path / "package"
    package.mkdir()
    monkeypatch.setattr(release, "CHECKPOINTS", package)
    export = tmp_path / "export"
    export.mkdir()
    weights = export / "model.safetensors"
    weights.write_bytes(b"weights")
    weights.chmod(0o600)  # an export written owner-only must not ship owner-only
    shipped = release._ship(export, "model")
    assert (shipped / "model.safetensors").read_bytes() == b"weights"
    assert stat.S_IMODE((shipped / "model.safetensors").stat().st_mode) == creation_mode()


def test_a_continued_denoiser_card_says_where_it_started(tmp_path):
    import json
    import shutil

    from domains.molecules.cards import model_card
    from domains.molecules.generate import shipped_checkpoint

    folder = tmp_path / "moses_udlm"
    shutil.copytree(shipped_checkpoint("moses", "udlm"), folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["started_from"] = None
    (folder / "model.json").write_text(json.dumps(meta))
    plain = model_card("moses_udlm", folder, "cmd", None, n=8, chain=("moses_udlm_selfies",))
    assert "continued from" not in plain and "started from random weights" not in plain
    assert "the training log's last validation" in plain  # no validation measured for this card
    meta["started_from"] = {"kind": "denoiser", "path": "runs/moses_udlm_selfies/checkpoint", "step": 4000}
    (folder / "model.json").write_text(json.dumps(meta))
    card = model_card("moses_udlm", folder, "cmd", None, n=8, chain=("moses_udlm_selfies",))
    assert "continued from the denoiser runs/moses_udlm_selfies/checkpoint (step 4,000)" in card


def test_a_model_released_in_stages_continues_each_from_the_one_before(tiny_release):
    """qm9_udlm's stages each start from the run before (the third adds learned positions), and its card gives
    every command."""
    import itertools
    import json

    from domains.molecules.release import stages

    runs = tiny_release.parent
    chain = stages("qm9_udlm", "tiny")
    for previous, stage in itertools.pairwise(chain):
        meta = json.loads((runs / stage / "checkpoint" / "model.json").read_text())
        start = meta["started_from"]
        assert start["kind"] == "denoiser" and start["path"] == str(runs / previous / "checkpoint"), stage
        assert start["step"] == json.loads((runs / previous / "checkpoint" / "trainer.json").read_text())["step"]
        assert start["added"] == ("learned positions" if stage == "qm9_udlm_positions" else None), stage
    meta = json.loads((tiny_release / "shipped" / "model.json").read_text())
    assert meta["network"]["positions"] == "rotary+learned"
    card = (tiny_release / "shipped" / "MODEL_CARD.md").read_text()
    commands = [f"guide-gen train experiment={chain[0]} resume=true"] + [
        f"guide-gen train experiment={stage} init_from=runs/{previous}/checkpoint resume=true"
        for previous, stage in itertools.pairwise(chain)
    ]
    assert "`, then `".join(commands) in card
    assert "continued from the denoiser" in card


def test_only_the_cpu_and_tiny_recipes_continue_a_model_in_stages():
    from domains.molecules.release import stages

    staged = (
        "qm9_udlm",
        "qm9_udlm_continued",
        "qm9_udlm_positions",
        "qm9_udlm_positions_continued",
        "qm9_udlm_positions_continued2",
    )
    assert stages("qm9_udlm", "cpu") == staged == stages("qm9_udlm", "tiny")
    assert stages("qm9_udlm", "gpu") == ("qm9_udlm",)
    assert stages("moses_mdlm", "cpu") == ("moses_mdlm_selfies", "moses_mdlm_selfies_positions")
    assert stages("moses_udlm", "cpu")[-1] == "moses_udlm_selfies_single_targets_085"
    assert stages("qm9_mdlm", "cpu") == ("qm9_mdlm", "qm9_mdlm_continued", "qm9_mdlm_continued2")
    assert stages("qm9_ar", "cpu") == ("qm9_ar",)


def test_a_masked_model_card_also_gives_its_remasking_evaluation():
    from domains.molecules.cards import model_card
    from domains.molecules.generate import CHECKPOINTS

    folder = CHECKPOINTS / "qm9_mdlm"
    options = '--steps 128 --remask cap:0.02 --setting "qed>=0.55"'
    card = model_card("qm9_mdlm", folder, "cmd", "TABLE", n=512, chain=("qm9_mdlm",), remask_evaluation=(options, "RT"))
    section = card.split("## Sampling with remasking", 1)[1]
    assert f"-n 512 --seed 0 --out DIR {options}`" in section and section.rstrip().endswith("RT")
    assert "## Sampling with remasking" not in model_card("qm9_mdlm", folder, "cmd", "TABLE", n=512, chain=("x",))


def test_a_card_names_the_regressor_of_its_cbg_rows_unless_it_lies_beside_the_model(tmp_path, monkeypatch):
    from domains.molecules.cards import model_card
    from domains.molecules.generate import CHECKPOINTS

    folder = CHECKPOINTS / "qm9_udlm"
    beside = model_card("qm9_udlm", folder, "cmd", "T", n=8, chain=("x",), regressor=CHECKPOINTS / "qm9_udlm_regressor")
    assert "--classifier" not in beside
    elsewhere = tmp_path / "runs" / "qm9_udlm_regressor" / "shipped"
    (tmp_path / "other").mkdir()
    monkeypatch.chdir(tmp_path / "other")  # not below the working directory: named as given
    card = model_card("qm9_udlm", folder, "cmd", "T", n=8, chain=("x",), regressor=elsewhere)
    assert f"-n 8 --seed 0 --out DIR --classifier {elsewhere}`" in card
    monkeypatch.chdir(tmp_path)  # below the working directory: named relative to it
    card = model_card("qm9_udlm", folder, "cmd", "T", n=8, chain=("x",), regressor=elsewhere)
    assert "--out DIR --classifier runs/qm9_udlm_regressor/shipped`" in card


@pytest.mark.slow
def test_the_masked_release_evaluates_remasking_on_its_card(tmp_path, data_dir):
    argv = ["molecules", "release", "--preset", "tiny", "--runs-dir", str(tmp_path), "--models", "qm9_mdlm", "-n", "4"]
    assert main(argv) == 0
    card = (tmp_path / "qm9_mdlm_continued2" / "shipped" / "MODEL_CARD.md").read_text()
    assert "## Sampling with remasking" in card and "--steps 128 --remask cap:0.02" in card
    assert "128 steps, remasking cap:0.02" in card
