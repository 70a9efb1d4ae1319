"""The ``--device`` choice of the sampling and benchmark commands, checked up front."""

from __future__ import annotations

import torch

from guided_diffusion.cli.errors import UsageError


def resolve_device(name: str | None) -> str:
    """``cpu``, ``cuda`` or ``cuda:N``; ``None`` means CUDA when available, else the CPU.

    Raises:
        UsageError: for another name, or a CUDA device this machine does not have.
    """
    if name is None or name == "":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = name.partition(":")
    if kind not in ("cpu", "cuda") or (index and (kind == "cpu" or not index.isdigit())):
        raise UsageError(f"unknown device {name!r}; allowed: cpu, cuda, cuda:N")
    if kind == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise UsageError(f"device {name!r}: no CUDA device is available here; use cpu")
        if index and int(index) >= count:
            raise UsageError(f"device {name!r}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    return name


PRECISIONS = ("fp32", "bf16", "auto")
PRECISION_HELP = (
    "network passes while sampling: fp32 (default), bf16 (autocast; faster where the hardware has bf16 matrix "
    "units, slightly different samples) or auto (bf16 on CUDA, and on a CPU whose measured bf16 products are "
    "at least 1.3x faster)"
)


def sampling_autocast(name: str, device: str | torch.device) -> torch.dtype | None:
    """The autocast dtype of a ``--precision`` choice on ``device`` (``None`` = plain fp32).

    Raises:
        UsageError: for an unknown name, or bf16 on a CUDA device without bf16 support.
    """
    from guided_diffusion.training.precision import choose_precision

    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; allowed: {', '.join(PRECISIONS)}")
    if name == "fp32":
        return None
    try:
        return choose_precision(name, torch.device(device)).autocast
    except ValueError as err:
        raise UsageError(str(err)) from None
