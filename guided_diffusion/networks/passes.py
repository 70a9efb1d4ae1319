"""How many rows one network pass takes.

On a CPU the elementwise work of a transformer block (GELU, norms, adaLN modulation, rotary embeddings) is
bound by memory traffic: over a large batch its activations leave the cache, and a pass over 512-1,024
rows of 32 tokens runs about 1.3x (the QM9 denoiser) to 1.9x (a small noisy regressor) slower than the
same rows in slices of 64. Each output row depends only on its own input row, so the slices give the same
outputs (bitwise on the CPU measured; in general up to the rounding of a differently blocked matrix
product). On an accelerator one large pass is fastest, and the batch is not split.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# tokens (rows x sequence length) per pass on a CPU; measured best at 1-2k tokens for widths 128-192
CPU_TOKENS_PER_PASS = 2048


_slicing = [True]  # False inside whole_batches()


@contextmanager
def whole_batches() -> Iterator[None]:
    """Within it, passes on a CPU take their whole batch too (to measure what slicing gains)."""
    _slicing.append(False)
    try:
        yield
    finally:
        _slicing.pop()


def rows_per_pass(device: torch.device | str, seq_len: int, *, limit: int | None = None) -> int | None:
    """Rows per network pass over sequences of ``seq_len`` tokens on ``device``: about
    :data:`CPU_TOKENS_PER_PASS` tokens on a CPU, unsplit (None) elsewhere or inside :func:`whole_batches`;
    never more than ``limit``."""
    sliced = _slicing[-1] and torch.device(device).type == "cpu"
    rows = max(1, CPU_TOKENS_PER_PASS // max(1, seq_len)) if sliced else None
    if limit is not None:
        rows = limit if rows is None else min(rows, limit)
    return rows


def row_slices(total: int, rows: int | None) -> Iterator[slice]:
    """Consecutive slices of at most ``rows`` rows covering ``range(total)`` (one slice when None)."""
    step = total if rows is None else rows
    for start in range(0, total, max(1, step)):
        yield slice(start, min(total, start + step))
