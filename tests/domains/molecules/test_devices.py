"""Everything a GPU machine is asked to run, run on each device: training with automatic precision, the
molecules command with every guidance method, both benchmarks. The ``cuda`` cases are marked ``gpu``
(``pytest -m gpu`` on a machine with CUDA); the ``cpu`` cases run by default and keep the tests honest."""

from __future__ import annotations

import json

import pytest
import torch

from domains.molecules.benchmark import METHODS, BenchSettings, run_benchmark
from guided_diffusion.cli.main import main
from guided_diffusion.pipeline import load_model

DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")],
    ),
]


@pytest.mark.parametrize("device", DEVICES)
def test_training_on_the_device_gives_a_checkpoint_the_cpu_loads(device, tmp_path, capsys):
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "experiment=toy_masked",
        f"run_dir={run_dir}",
        "domain.num_train=512",
        "domain.num_val=64",
        "trainer.max_steps=20",
        "trainer.batch_size=32",
        "trainer.warmup_steps=2",
        "trainer.val_every=20",
        "trainer.val_batches=1",
        f"trainer.device={device}",
        "trainer.precision=auto",
    ]
    assert main(argv) == 0
    assert "finished at step 20" in capsys.readouterr().out
    meta = json.loads((run_dir / "checkpoint" / "model.json").read_text())
    loss = meta["metrics"]["val_nats_per_token"]
    assert 0.0 < loss < 10.0
    model = load_model(run_dir / "checkpoint", device="cpu")
    assert next(model.denoiser.parameters()).device.type == "cpu"


@pytest.mark.parametrize("device", DEVICES)
def test_the_molecules_command_guides_on_the_device(device, capsys):
    base = ["molecules", "--device", device, "--dataset", "qm9", "-n", "4", "--steps", "3", "--quiet"]
    mixed = ["--target", "qed>=0.5@cbg", "--target", "rings=2@cfg", "--cbg-mode", "exact", "--top-k", "2"]
    assert main([*base, *mixed]) == 0
    assert main([*base, "--model", "mdlm", "--target", "qed>=0.5", "--method", "cbg"]) == 0
    assert main([*base, "--template", "C1CC?C1", "--target", "rings=2"]) == 0
    out = capsys.readouterr().out
    assert "D-CBG (exact) scale 2 + D-CFG scale 2" in out and "D-CBG (first-order)" in out


@pytest.mark.parametrize("device", DEVICES)
def test_the_benchmark_runs_every_method_on_the_device(device):
    settings = BenchSettings(samples=4, scales=(2.0,), seeds=(0,), targets=("qed-class",), steps=2, batch_size=4)
    frame = run_benchmark(settings, device=device, progress=lambda _: None)
    assert sorted(frame["method"]) == sorted(METHODS)
    assert ((frame["valid"] >= 0) & (frame["valid"] <= 4) & (frame["novel"] <= frame["unique"])).all()


@pytest.mark.parametrize("device", DEVICES)
def test_the_guidance_speed_benchmark_runs_on_the_device(device, capsys):
    argv = ["molecules", "bench-guidance", "--device", device, "-n", "4", "--steps", "2", "--repeats", "1"]
    assert main([*argv, "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert ("CPU" in out) == (device == "cpu")
    for name in ("unguided", "D-CFG", "D-CBG first-order", "D-CBG exact, top-2"):
        assert f"| {name} |" in out
