"""Every experiment file composes with exactly one training command, and its comments name that command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from guided_diffusion.cli.config import compose_config
from guided_diffusion.cli.errors import UsageError

EXPERIMENTS = sorted((Path(__file__).resolve().parents[2] / "configs" / "experiment").glob("*.yaml"))
COMMANDS = {"train": "guide-gen train", "train_classifier": "guide-gen train-classifier"}


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_an_experiment_composes_with_the_command_its_comments_name(path):
    composed = {}
    for config in COMMANDS:
        try:
            composed[config] = compose_config(config, [f"experiment={path.stem}"])
        except UsageError:
            continue
    assert len(composed) == 1, f"{path.name} composes with {sorted(composed) or 'nothing'}"
    ((config, cfg),) = composed.items()
    assert re.search(rf"{COMMANDS[config]} experiment={path.stem}\b", path.read_text()), path.name
    assert str(cfg.run_dir).startswith("runs/"), cfg.run_dir
