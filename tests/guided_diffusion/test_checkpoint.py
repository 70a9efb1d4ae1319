"""Checkpoint files: atomic swaps, recovery, corruption, no unpickling."""

from __future__ import annotations

import json

import pytest
import torch

from guided_diffusion.training.checkpoint import (
    CheckpointError,
    atomic_write_text,
    read_json,
    read_tensors,
    require_kind,
    resolve_checkpoint,
    save_checkpoint,
)


def test_save_and_read_round_trip(tmp_path):
    tensors = {"model": {"w": torch.arange(6.0).reshape(2, 3)}}
    save_checkpoint(tmp_path / "ckpt", tensors=tensors, meta={"model": {"step": 3}})
    assert read_json(tmp_path / "ckpt", "model") == {"step": 3}
    torch.testing.assert_close(read_tensors(tmp_path / "ckpt", "model")["w"], tensors["model"]["w"])


def test_overwrite_replaces_the_whole_folder_and_leaves_no_temporaries(tmp_path):
    save_checkpoint(tmp_path / "c", tensors={"a": {"x": torch.zeros(1)}}, meta={"m": {"v": 1}})
    save_checkpoint(tmp_path / "c", tensors={"b": {"y": torch.ones(1)}}, meta={"m": {"v": 2}})
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["b.safetensors", "m.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_an_interrupted_swap_falls_back_to_the_old_copy(tmp_path):
    save_checkpoint(tmp_path / "c", tensors={"a": {"x": torch.zeros(1)}}, meta={"m": {"v": 1}})
    (tmp_path / "c").rename(tmp_path / ".c.old")  # killed between the two renames
    assert resolve_checkpoint(tmp_path / "c") == tmp_path / ".c.old"
    assert read_json(tmp_path / "c", "m") == {"v": 1}


def test_missing_and_corrupt_files_raise_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        read_json(tmp_path / "absent", "model")
    save_checkpoint(tmp_path / "c", tensors={"model": {"x": torch.zeros(4)}}, meta={"model": {}})
    (tmp_path / "c" / "model.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt"):
        read_tensors(tmp_path / "c", "model")
    (tmp_path / "c" / "model.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_json(tmp_path / "c", "model")


def test_a_checkpoint_of_the_wrong_kind_or_none_is_named():
    require_kind({"kind": "denoiser"}, "ck", "denoiser")
    with pytest.raises(CheckpointError, match=r"ck holds a 'classifier', not a denoiser"):
        require_kind({"kind": "classifier"}, "ck", "denoiser")
    with pytest.raises(CheckpointError, match=r'ck/model.json has no "kind" field; expected "kind": "classifier"'):
        require_kind({}, "ck", "classifier")


def test_atomic_write_text(tmp_path):
    atomic_write_text(tmp_path / "out.txt", "hello\n")
    atomic_write_text(tmp_path / "out.txt", json.dumps({"a": 1}))
    assert json.loads((tmp_path / "out.txt").read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_atomic_outputs_get_the_permissions_of_a_plain_write(tmp_path):
    """Temporary files and folders are private (0600/0700); what they become follows the umask."""
    import os

    import pandas as pd

    from domains.molecules.report import write_samples

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        save_checkpoint(tmp_path / "c", tensors={"m": {"x": torch.zeros(1)}}, meta={"m": {}})
        write_samples(pd.DataFrame({"smiles": ["CCO"], "valid": [True]}), tmp_path / "s.csv")
        os.umask(0o077)
        atomic_write_text(tmp_path / "private.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "s.csv").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "c" / "m.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "c" / "m.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "private.txt").stat().st_mode & 0o777 == 0o600


def test_package_code_never_unpickles():
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    offenders = []
    for package in ("guided_diffusion", "domains", "classifiers"):
        for path in (root / package).rglob("*.py"):
            text = path.read_text()
            for bad in ("torch.load(", "pickle.load"):
                if bad in text:
                    offenders.append(f"{path.relative_to(root)}: {bad}")
    assert not offenders, offenders
