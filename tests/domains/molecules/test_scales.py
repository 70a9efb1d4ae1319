"""The auto guidance scale: targets that few unguided molecules meet get the record's far scale, the others
its near scale; the calibrate command writes the record; auto resolving to a scale samples exactly what that
scale given by hand does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from domains.molecules.generate import CHECKPOINTS
from domains.molecules.scales import (
    DEFAULT_SCALE,
    RECORD_KEY,
    SUMMARY_POINTS,
    GuidanceRecord,
    auto_scale,
    guidance_record,
    summarize,
    write_record,
)
from domains.molecules.targets import parse_target, parse_targets
from guided_diffusion.cli.main import main
from guided_diffusion.pipeline import load_model


def spread(low: float, high: float) -> list[float]:
    """A 100-point summary spread evenly over [low, high]."""
    return [low + (high - low) * i / 99 for i in range(100)]


def record(**kw: object) -> GuidanceRecord:
    fields: dict[str, object] = {
        "near_scale": 2.0,
        "far_scale": 8.0,
        "far_share": 0.2,
        "means": {"qed": 0.67, "logp": 2.2, "rings": 2.0},
        "sds": {"qed": 0.15, "logp": 1.2, "rings": 0.9},
        "percentiles": {
            "qed": spread(0.4, 0.95),  # 0.85-0.95 holds 19 of the 100 points
            "logp": spread(-0.5, 4.45),  # 1.5-2.5 holds 21 points
            "rings": [0.0] * 10 + [1.0] * 20 + [2.0] * 40 + [3.0] * 25 + [4.0] * 5,
        },
        "n": 1024,
        "valid": 1020,
        "seed": 1,
        "steps": 64,
    }
    return GuidanceRecord(**{**fields, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qed=0.9", 0.19),
        ("qed>=0.85", 0.19),
        ("qed<=0.5", 0.19),
        ("logp=2.0", 0.21),
        ("logp=2.0+-0.05", 0.03),
        ("rings=2", 0.40),  # discrete values count exactly, no interpolation between them
        ("rings>=3", 0.30),
        ("rings<=0", 0.10),
    ],
)
def test_share_is_the_part_of_the_unguided_summary_that_meets_the_target(text, expected):
    assert record().share(parse_target(text)) == pytest.approx(expected)


def test_share_is_unknown_for_a_property_without_a_summary():
    assert record().share(parse_target("sa<=3")) is None


def test_rare_targets_get_the_far_scale_common_ones_the_near_scale():
    far = auto_scale(parse_targets(["qed=0.9"]), record())
    assert far.scale == 8.0 and "qed=0.9±0.05 is met by 19% of unguided molecules" in far.reason
    near = auto_scale(parse_targets(["logp=2.0"]), record())
    assert near.scale == 2.0 and "no target in a tail" in near.reason
    # rare but around the unguided median (0.675): a narrow window there is not far
    assert record().share(parse_target("qed=0.68+-0.02")) < 0.2
    assert auto_scale(parse_targets(["qed=0.68+-0.02"]), record()).scale == 2.0
    assert auto_scale(parse_targets(["rings=2"]), record()).scale == 2.0
    # one far D-CFG target is enough; D-CBG targets and unknown properties do not count
    assert auto_scale(parse_targets(["logp=2.0", "qed>=0.85"]), record()).scale == 8.0
    assert auto_scale(parse_targets(["qed=0.9@cbg", "logp=2.0"]), record()).scale == 2.0
    assert auto_scale(parse_targets(["qed=0.9"]), record(), method="cbg").scale == 2.0
    assert auto_scale(parse_targets(["sa<=1.5"]), record()).scale == 2.0
    # a lower threshold turns the same target near
    assert auto_scale(parse_targets(["qed=0.9"]), record(far_share=0.15)).scale == 2.0


def test_summarize_keeps_observed_values_and_skips_invalid_molecules():
    values = np.array([[0.1, 1.0], [0.2, 2.0], [np.nan, np.nan], [0.3, 2.0], [0.4, 3.0]])
    summary = summarize(values, ["qed", "rings"])
    assert len(summary["qed"]) == SUMMARY_POINTS and set(summary["qed"]) == {0.1, 0.2, 0.3, 0.4}
    assert [summary["rings"].count(v) for v in (1.0, 2.0, 3.0)] == [25, 50, 25]
    assert summarize(np.full((3, 1), np.nan), ["qed"]) == {}


def test_models_without_a_record_keep_the_fixed_default():
    choice = auto_scale(parse_targets(["qed=0.9"]), None)
    assert choice.scale == DEFAULT_SCALE and "no guidance record" in choice.reason


def test_a_record_round_trips_through_model_json_and_a_malformed_one_is_refused(tmp_path):
    folder = tmp_path / "m"
    shutil.copytree(CHECKPOINTS / "qm9_udlm", folder)
    assert guidance_record(load_model(folder).meta) is None
    write_record(folder, record())
    assert guidance_record(load_model(folder).meta) == record()
    write_record(folder, None)
    assert RECORD_KEY not in json.loads((folder / "model.json").read_text())
    with pytest.raises(ValueError, match="malformed guidance_defaults"):
        guidance_record({RECORD_KEY: {"near_scale": 2.0}})


def test_calibrate_writes_the_record_and_auto_samples_what_the_chosen_scale_does(tmp_path, capsys):
    folder = tmp_path / "m"
    shutil.copytree(CHECKPOINTS / "qm9_udlm", folder)
    argv = ["molecules", "calibrate", "--checkpoint", str(folder), "--far-scale", "5", "-n", "16", "--quiet"]
    assert main(argv) == 0
    assert "written to model.json" in capsys.readouterr().out
    written = guidance_record(json.loads((folder / "model.json").read_text()))
    assert written is not None and written.n == 16 and written.seed == 1 and written.far_scale == 5.0
    assert 0 < written.valid <= 16 and 0 < written.means["qed"] < 1 and written.sds["qed"] > 0
    assert len(written.percentiles["qed"]) == SUMMARY_POINTS and written.far_share == 0.2
    # a target above every unguided molecule is far: auto gives scale 5, the same samples as --guidance-scale 5
    far = f"qed>={max(written.percentiles['qed']) + 0.001:.4f}"
    common = ["molecules", "--checkpoint", str(folder), "--target", far, "-n", "8", "--steps", "8", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "auto.csv")]) == 0
    assert "D-CFG scale 5 (auto: far target" in capsys.readouterr().out
    assert main([*common, "--guidance-scale", "5", "--out", str(tmp_path / "given.csv")]) == 0
    assert "D-CFG scale 5," in capsys.readouterr().out
    auto, given = pd.read_csv(tmp_path / "auto.csv"), pd.read_csv(tmp_path / "given.csv")
    assert auto["smiles"].tolist() == given["smiles"].tolist()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["molecules", "--guidance-scale", "strong"], "--guidance-scale must be auto (the default) or a number >= 0"),
        (["molecules", "--guidance-scale", "-1"], "--guidance-scale must be auto (the default) or a number >= 0"),
        (["molecules", "--guidance-scale", "nan"], "--guidance-scale must be auto (the default) or a number >= 0"),
        (["molecules", "--cbg-scale", "-2"], "--cbg-scale must be a number >= 0"),
        (["molecules", "calibrate"], "the following arguments are required: --far-scale"),
        (["molecules", "calibrate", "--far-scale", "-3"], "--far-scale must be a number >= 0"),
        (["molecules", "calibrate", "--far-scale", "8", "-n", "0"], "-n must be >= 1"),
        (["molecules", "calibrate", "--far-scale", "8", "--far-share", "0"], "--far-share must be a share in (0, 1]"),
    ],
)
def test_bad_scales_are_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
