"""The shipped checkpoints: each loads, is small, has a model card, and the main command runs on the default."""

from __future__ import annotations

import pandas as pd
import pytest

from domains.molecules.generate import CHECKPOINTS
from domains.molecules.properties import compute_properties
from domains.molecules.release import CBG_SCALES, CLASSIFIERS, MODELS, SHIP_LIMIT_MIB
from guided_diffusion.cli.main import main
from guided_diffusion.pipeline import load_model

SHIPPED = sorted(p for p in CHECKPOINTS.glob("*") if (p / "model.json").is_file())


def test_the_default_model_is_shipped():
    assert (CHECKPOINTS / "moses_udlm" / "model.json").is_file()


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_each_shipped_checkpoint_is_small_documented_and_named_in_the_release_recipe(folder):
    assert folder.name in MODELS or folder.name in CLASSIFIERS
    size = sum(p.stat().st_size for p in folder.iterdir())
    limit = SHIP_LIMIT_MIB["denoiser" if folder.name in MODELS else "classifier"]
    assert size <= limit * 2**20, f"{folder.name} is {size / 2**20:.1f} MiB (limit {limit:.2f} MiB)"
    card = (folder / "MODEL_CARD.md").read_text()
    assert "**Command**" in card and "guide-gen molecules release" in card
    assert not list(folder.glob("*.pt")) and not list(folder.glob("*.pkl")), "weights must be safetensors"


def test_the_main_command_runs_on_the_shipped_default(tmp_path, capsys):
    model = load_model(CHECKPOINTS / "moses_udlm")
    assert model.domain.dataset == "moses" and "qed" in model.domain.property_names
    out = tmp_path / "s.csv"
    assert main(["molecules", "--target", "qed=0.9", "-n", "16", "--steps", "8", "--out", str(out)]) == 0
    table = pd.read_csv(out, keep_default_na=False)
    assert len(table) == 16 and list(table.columns[:2]) == ["smiles", "valid"] and "qed" in table.columns
    text = capsys.readouterr().out
    assert "validity" in text and "qed=0.9" in text


@pytest.mark.parametrize("name", sorted(CBG_SCALES))
def test_a_shipped_regressor_records_the_d_cbg_scale_of_the_release_recipe(name, capsys):
    from domains.molecules.scales import recorded_cbg_scale
    from guided_diffusion.training.checkpoint import read_json

    assert recorded_cbg_scale(read_json(CHECKPOINTS / name, "model")) == CBG_SCALES[name]
    if name == f"{CLASSIFIERS[name]}_regressor" and CLASSIFIERS[name] == "moses_udlm":  # the default model's
        argv = ["molecules", "--method", "cbg", "--target", "qed=0.9", "-n", "2", "--steps", "2", "--quiet"]
        assert main(argv) == 0
        assert f"D-CBG (first-order) scale {CBG_SCALES[name]:g}," in capsys.readouterr().out


def test_the_shipped_masked_model_samples_with_remasking(tmp_path, capsys):
    argv = ["molecules", "--dataset", "qm9", "--model", "mdlm", "-n", "16", "--steps", "16", "--quiet"]
    assert main([*argv, "--remask", "cap:0.05", "--target", "qed>=0.5"]) == 0
    assert "remasking cap:0.05" in capsys.readouterr().out
    out = tmp_path / "eval"
    assert (
        main(
            [
                "molecules",
                "evaluate",
                *argv[1:5],
                "-n",
                "8",
                "--steps",
                "8",
                "--no-fcd",
                "--remask",
                "rescale:1",
                "--setting",
                "qed>=0.55",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    assert "remasking rescale:1" in (out / "evaluation.md").read_text()


def test_masked_models_sample_with_remasking_unless_told_otherwise(capsys, tmp_path):
    base = ["molecules", "--dataset", "qm9", "-n", "4", "--steps", "4", "--method", "none", "--quiet"]
    assert main([*base, "--model", "mdlm"]) == 0
    assert "remasking cap:0.02" in capsys.readouterr().out
    assert main([*base, "--model", "mdlm", "--remask", "none"]) == 0
    assert "remasking" not in capsys.readouterr().out
    assert main(base) == 0  # the uniform model has no remasking step
    assert "remasking" not in capsys.readouterr().out
    evaluate = ["molecules", "evaluate", "--dataset", "qm9", "--model", "mdlm", "-n", "2", "--steps", "2", "--no-fcd"]
    assert main([*evaluate, "--setting", "qed>=0.55", "--out", str(tmp_path)]) == 0
    assert "remasking cap:0.02" in (tmp_path / "evaluation.md").read_text()


def test_the_default_sampler_of_each_process():
    from domains.molecules.generate import DEFAULT_STEPS, REMASK_STEPS, sampler_for
    from guided_diffusion.processes import AutoregressiveProcess, MaskedProcess, Remasking, UniformProcess
    from guided_diffusion.schedules import LogLinearSchedule

    masked, uniform, ar = (
        cls(8, LogLinearSchedule()) for cls in (MaskedProcess, UniformProcess, AutoregressiveProcess)
    )
    assert sampler_for(masked, "auto", None) == (Remasking("cap", 0.02), REMASK_STEPS)
    assert sampler_for(masked, "auto", 16) == (Remasking("cap", 0.02), 16)
    assert sampler_for(masked, None, None) == (None, DEFAULT_STEPS)
    assert sampler_for(masked, Remasking("rescale", 0.5), None) == (Remasking("rescale", 0.5), REMASK_STEPS)
    assert sampler_for(uniform, "auto", None) == (None, DEFAULT_STEPS)
    assert sampler_for(ar, "auto", 32) == (None, 32)


def test_the_benchmark_runs_every_method_on_the_shipped_qm9_models(tmp_path, capsys):
    from domains.molecules.benchmark import METHODS

    out = tmp_path / "bench"
    argv = ["bench", "molecules", "--quick", "--samples", "8", "--scales", "1", "--out", str(out)]
    assert main(argv) == 0
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["method"]) == set(METHODS) and (frame["samples"] == 8).all()
    assert (frame["valid"] <= 8).all() and (frame["valid"] > 0).any()


def test_check_regressor_scores_validation_and_sampled_molecules(tmp_path, capsys):
    samples = tmp_path / "s.csv"
    pd.DataFrame({"smiles": ["CC1=CC=CC=C1O", "OCC1CC1", "not a molecule", "C1CC2CC1C2N"]}).to_csv(samples, index=False)
    argv = ["molecules", "check-regressor", "--checkpoint", str(CHECKPOINTS / "qm9_udlm"), "--t-bins", "0,0.1"]
    assert main([*argv, "--samples", str(samples), "--by", "rings"]) == 0
    out = capsys.readouterr().out
    grouped = [line.split("|")[1:-1] for line in out.splitlines() if line.count("|") == 8 and "---" not in line]
    by_value = {(r[0].strip(), r[1].strip()): [float(x) for x in r[2:]] for r in grouped[1:]}
    rings = compute_properties(["CC1=CC=CC=C1O", "OCC1CC1", "C1CC2CC1C2N"], ["rings"])[:, 0]
    counts = {f"{v:g}": float((rings == v).sum()) for v in set(rings)}
    assert {k[1]: v[0] for k, v in by_value.items() if k[0] == "samples"} == counts
    for ring in ("0", "1", "2"):  # each group holds its own ring count, read about right at t = 0
        n, true_mean, predicted_mean = by_value[("validation", ring)][:3]
        assert n > 50 and true_mean == float(ring) and abs(predicted_mean - true_mean) < 0.5
    table = [line.split("|")[1:-1] for line in out.splitlines() if line.count("|") == 3 and "---" not in line]
    rmse = {name.strip(): float(value) for name, value in table[1:]}
    assert set(rmse) == {"qed", "rings"} and rmse["rings"] < 0.8  # clean ring counts are easy to read
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.count("|") == 9 and "---" not in line]
    by_group = {(r[0].strip(), r[1].strip()): r for r in rows[1:]}
    assert {k[1] for k in by_group} == {"validation", "samples"}
    assert int(by_group[("rings", "samples")][2]) == 3  # the invalid SMILES is left out
    assert float(by_group[("rings", "validation")][5]) > 0.5  # predicted and true ring counts correlate
    first = ["--first-order", "rings=3", "--first-order-molecules", "2", "--first-order-times", "0.3,0.9"]
    assert main([*argv, *first, "--by", "qed"]) == 0
    out = capsys.readouterr().out
    grouped = [line.split("|")[1:-1] for line in out.splitlines() if line.count("|") == 8 and "---" not in line]
    fifths = [[float(x) for x in r[2:]] for r in grouped[1:]]
    assert len(fifths) == 5 and max(f[0] for f in fifths) - min(f[0] for f in fifths) <= 2  # equal fifths
    assert [f[1] for f in fifths] == sorted(f[1] for f in fifths)  # in order of the true QED
    assert "First-order vs exact D-CBG toward rings=3" in out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.count("|") == 6 and "---" not in line]
    assert [r[0].strip() for r in rows[1:]] == ["0.3", "0.9"]
    for row in rows[1:]:
        assert int(row[1]) == 2 and -1.0 <= float(row[2]) <= 1.0
    for bad, needle in (
        (["--first-order", "qed=2"], "impossible target"),
        (["--first-order", "sa<=3"], "cannot judge 'sa'"),
        (["--by", "logp"], "cannot judge 'logp'"),
        (["--first-order", "qed=0.5", "--first-order-times", "0"], "--first-order-times must be"),
        (["--t-bins", "0.5,0.1"], "--t-bins must be increasing"),
        (["--samples", str(tmp_path / "missing.csv")], "no such file"),
        (["--classifier", str(CHECKPOINTS / "qm9_udlm_denoised_regressor")], "is not a regressor reading xt"),
    ):
        assert main([*argv[:4], *bad]) == 2
        assert needle in capsys.readouterr().err
