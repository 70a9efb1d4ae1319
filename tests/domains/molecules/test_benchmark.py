"""The QM9 benchmark pipeline end to end on tiny models: every method present in all three outputs."""

from __future__ import annotations

import pandas as pd
import pytest

from domains.molecules.benchmark import METHODS
from guided_diffusion.cli.main import main

pytestmark = pytest.mark.slow  # trains five tiny models and classifiers, then runs every method: minutes

TINY = [
    "network=tiny",
    "domain.max_train=256",
    "domain.num_val=64",
    "domain.workers=1",
    "trainer.max_steps=3",
    "trainer.batch_size=32",
    "trainer.warmup_steps=1",
    "trainer.val_every=0",
    "trainer.log_every=3",
]


@pytest.fixture(scope="module")
def tiny_checkpoints(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("bench")
    runs, ckpts = root / "runs", root / "checkpoints"
    for name in ("qm9_udlm", "qm9_mdlm", "qm9_ar"):
        assert main(["train", f"experiment={name}", f"run_dir={runs / name}", *TINY]) == 0
        assert main(["export", str(runs / name / "checkpoint"), str(ckpts / name)]) == 0
        for suffix, extra in (("regressor", []), ("denoised_regressor", ["classifier=denoised"])):
            run = runs / f"{name}_{suffix}"
            args = [
                "train-classifier",
                f"denoiser={ckpts / name}",
                f"run_dir={run}",
                "classifier.dim=32",
                "classifier.depth=1",
                *extra,
                *[o for o in TINY if o.startswith("trainer.")],
            ]
            assert main(args) == 0
            assert main(["export", str(run / "checkpoint"), str(ckpts / f"{name}_{suffix}")]) == 0
    return ckpts


def test_quick_benchmark_writes_every_method(tiny_checkpoints, tmp_path, capsys):
    out = tmp_path / "bench"
    code = main(
        ["bench", "molecules", "--quick", "--samples", "4", "--out", str(out), "--checkpoints", str(tiny_checkpoints)]
    )
    assert code == 0
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["method"]) == set(METHODS)
    assert set(frame["scale"]) == {1.0, 3.0}
    assert (frame["valid"] <= 4).all() and (frame["novel"] <= frame["unique"]).all()
    table = (out / "results.md").read_text()
    assert all(f"| {m} |" in table for m in METHODS)
    assert (out / "results.png").stat().st_size > 1000


def test_missing_models_are_named(tmp_path, capsys):
    assert main(["bench", "molecules", "--quick", "--checkpoints", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "missing checkpoints" in err and "qm9_ar" in err and len(err.strip().splitlines()) == 1
