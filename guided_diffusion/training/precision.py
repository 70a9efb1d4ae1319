"""Choosing the training precision by measurement, and the matmul peak that throughput is reported against.

bf16 autocast pays off only where the hardware has fast bf16 matrix units (CUDA tensor cores, CPUs with
AMX or AVX512-BF16). On other CPUs bf16 matrix products can be far slower than fp32, so ``auto`` measures.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum

import torch


class Precision(StrEnum):
    """Training precision: ``auto`` measures and picks, ``fp32`` or ``bf16`` (autocast) force one."""

    AUTO = "auto"
    FP32 = "fp32"
    BF16 = "bf16"


@dataclass(frozen=True)
class PrecisionChoice:
    """Result of :func:`choose_precision`.

    Attributes:
        autocast: the autocast dtype (``None`` = plain fp32).
        peak_flops: measured matmul throughput (FLOP/s) at the chosen precision.
        fp32_flops, bf16_flops: both measurements (0 when not measured).
    """

    autocast: torch.dtype | None
    peak_flops: float
    fp32_flops: float
    bf16_flops: float

    @property
    def name(self) -> str:
        return "bf16" if self.autocast is torch.bfloat16 else "fp32"


def matmul_flops(dtype: torch.dtype, device: torch.device, *, size: int = 512, seconds: float = 0.25) -> float:
    """Measured FLOP/s of a ``size x size`` matrix product in ``dtype`` on ``device``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    _sync(device)
    a @ b  # warm-up
    _sync(device)
    reps, start = 0, time.perf_counter()
    while True:
        a @ b
        reps += 1
        _sync(device)
        elapsed = time.perf_counter() - start
        if elapsed >= seconds or (reps >= 3 and elapsed > 4 * seconds):
            break
    return 2.0 * size**3 * reps / elapsed


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def choose_precision(precision: Precision | str, device: torch.device) -> PrecisionChoice:
    """Pick the autocast dtype.

    ``auto``: bf16 on CUDA devices that support it; on CPU, bf16 only when a measured bf16 matrix product
    is at least 1.3x faster than fp32.

    Raises:
        ValueError: if ``bf16`` is forced on a device without bf16 support.
    """
    precision = Precision(precision)
    size = 1024 if device.type == "cuda" else 512
    fp32 = matmul_flops(torch.float32, device, size=size)
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        if precision is Precision.BF16:
            raise ValueError("precision=bf16 was asked for, but this CUDA device has no bf16 support")
        return PrecisionChoice(None, fp32, fp32, 0.0)
    # a short probe: a slow bf16 path (tens of GFLOP/s below fp32) shows within a couple of products
    bf16 = matmul_flops(torch.bfloat16, device, size=size, seconds=0.05 if device.type == "cpu" else 0.25)
    if precision is Precision.FP32:
        return PrecisionChoice(None, fp32, fp32, bf16)
    if precision is Precision.BF16 or device.type == "cuda" or bf16 >= 1.3 * fp32:
        return PrecisionChoice(torch.bfloat16, bf16, fp32, bf16)
    return PrecisionChoice(None, fp32, fp32, bf16)


def transformer_flops_per_token(num_params: int, *, depth: int, dim: int, seq_len: int) -> float:
    """Training FLOPs per token: 6 per non-embedding parameter plus attention scores (Kaplan et al. 2020)."""
    return 6.0 * num_params + 12.0 * depth * dim * seq_len
