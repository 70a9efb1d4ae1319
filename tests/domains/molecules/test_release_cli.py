"""The molecules release recipe at tiny size, and the molecules command's errors and outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from guided_diffusion.cli.main import main


@pytest.fixture(scope="module")
def tiny_release(tmp_path_factory, data_dir):
    runs = tmp_path_factory.mktemp("release")
    code = main(
        ["molecules", "release", "--preset", "tiny", "--runs-dir", str(runs), "--models", "qm9_udlm", "-n", "8"]
    )
    assert code == 0
    return runs / "qm9_udlm"


def test_tiny_release_trains_exports_evaluates_and_documents(tiny_release):
    shipped = tiny_release / "shipped"
    assert sorted(p.name for p in shipped.iterdir()) == ["MODEL_CARD.md", "model.json", "model.safetensors"]
    card = (shipped / "MODEL_CARD.md").read_text()
    assert "guide-gen molecules release --preset tiny --models qm9_udlm" in card
    assert "| unguided | none |" in card and "rings=3" in card
    assert (tiny_release / "evaluation" / "evaluation.json").is_file()


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
    assert main(["molecules", "score", str(out), "--target", "rings=1", "--no-fcd"]) == 0
    assert "hit rate" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--target", "qed=1.5"], "impossible target 'qed=1.5'"),
        (["--target", "rings=-1"], "impossible target 'rings=-1'"),
        (["--target", "foo=1"], "unknown property 'foo'"),
        (["--target", "qed=0.9", "-n", "0"], "-n must be >= 1"),
        (["--model", "gpt"], "invalid choice"),
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
