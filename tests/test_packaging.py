"""Packaging: an installed (non-editable) wheel finds its Hydra configs and plugins; lint and types."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_installed_wheel_finds_its_configs(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("guide_gen-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    probe = (
        "import guided_diffusion, configs\n"
        "from guided_diffusion.cli.config import compose_config\n"
        "from guided_diffusion.registry import available\n"
        "cfg = compose_config('train', ['experiment=toy_uniform'])\n"
        "print(guided_diffusion.__file__)\n"
        "print(cfg.run_dir, cfg.process._target_)\n"
        "print(','.join(available('guide_gen.domains')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith(str(target)), "the probe must import the installed copy"
    assert out[1] == "runs/toy_uniform guided_diffusion.processes.UniformProcess"
    assert "toy" in out[2].split(",")


@pytest.mark.skipif(shutil.which("ruff") is None, reason="ruff is not installed")
def test_ruff_is_clean():
    out = subprocess.run(
        ["ruff", "check", "guided_diffusion", "domains", "classifiers", "tests"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.skipif(shutil.which("mypy") is None, reason="mypy is not installed")
def test_mypy_is_clean():
    out = subprocess.run(["mypy"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]
