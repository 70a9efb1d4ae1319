"""Checkpoints: safetensors tensors plus JSON sidecars in one directory, written atomically.

A checkpoint directory is built next to its destination and swapped in with renames, so a killed process
leaves either the old or the new checkpoint, never a mix. Loading never unpickles.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, incomplete or does not match what it is loaded into."""


def creation_mode(*, directory: bool = False) -> int:
    """The permissions a plain ``open`` or ``mkdir`` would give under the current umask (temporary files and
    folders are private; what they are renamed into should not be)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, creation_mode())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(
    directory: str | os.PathLike[str],
    *,
    tensors: dict[str, dict[str, torch.Tensor]],
    meta: dict[str, dict[str, Any]],
) -> Path:
    """Write a checkpoint directory atomically.

    Args:
        directory: destination folder (replaced as a whole if it exists).
        tensors: file stem -> tensors, each written as ``<stem>.safetensors``.
        meta: file stem -> JSON-serialisable dict, each written as ``<stem>.json``.

    Returns:
        The checkpoint directory.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}.", suffix=".tmp"))
    try:
        tmp.chmod(creation_mode(directory=True))
        for stem, group in tensors.items():
            save_file({k: v.detach().contiguous().cpu() for k, v in group.items()}, str(tmp / f"{stem}.safetensors"))
        for stem, data in meta.items():
            (tmp / f"{stem}.json").write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
        mode = creation_mode()
        for child in tmp.iterdir():
            child.chmod(mode)  # safetensors writes its files owner-only
            with open(child, "rb") as handle:
                os.fsync(handle.fileno())
        old = directory.with_name(f".{directory.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if directory.exists():
            os.replace(directory, old)
        os.replace(tmp, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def has_checkpoint(directory: str | os.PathLike[str]) -> bool:
    """Whether :func:`resolve_checkpoint` finds a checkpoint at ``directory`` (or its ``.old`` copy)."""
    directory = Path(directory)
    return directory.is_dir() or directory.with_name(f".{directory.name}.old").is_dir()


def resolve_checkpoint(directory: str | os.PathLike[str]) -> Path:
    """The checkpoint folder to read: ``directory``, or its ``.old`` copy if a swap was interrupted.

    Raises:
        CheckpointError: if neither exists.
    """
    directory = Path(directory)
    if directory.is_dir():
        return directory
    old = directory.with_name(f".{directory.name}.old")
    if old.is_dir():
        return old
    raise CheckpointError(f"no checkpoint at {directory}")


def read_json(directory: str | os.PathLike[str], stem: str) -> dict[str, Any]:
    """Read ``<stem>.json`` from a checkpoint directory.

    Raises:
        CheckpointError: if the file is missing or not valid JSON.
    """
    path = resolve_checkpoint(directory) / f"{stem}.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as err:
        raise CheckpointError(f"checkpoint {directory} has no {stem}.json") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint file {path} is not valid JSON: {err}") from err
    if not isinstance(data, dict):
        raise CheckpointError(f"checkpoint file {path} must hold a JSON object")
    return data


def require_kind(meta: dict[str, Any], directory: str | os.PathLike[str], kind: str) -> None:
    """Check that a checkpoint's ``model.json`` says it holds a ``kind`` (denoiser or classifier).

    Raises:
        CheckpointError: naming the missing field or the kind the folder holds instead.
    """
    found = meta.get("kind")
    if found is None:
        raise CheckpointError(f'{directory}/model.json has no "kind" field; expected "kind": "{kind}"')
    if found != kind:
        raise CheckpointError(f"{directory} holds a {found!r}, not a {kind}")


def read_tensors(directory: str | os.PathLike[str], stem: str, *, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Read ``<stem>.safetensors`` from a checkpoint directory (never unpickles).

    Raises:
        CheckpointError: if the file is missing or corrupt.
    """
    path = resolve_checkpoint(directory) / f"{stem}.safetensors"
    if not path.is_file():
        raise CheckpointError(f"checkpoint {directory} has no {stem}.safetensors")
    try:
        return load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"checkpoint file {path} is corrupt: {err}") from err
