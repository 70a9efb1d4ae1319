"""Conditions for classifier-free guidance: class labels and/or vectors of property values.

A label of -1 is the null label; a NaN property value is a nulled entry (Schiff et al. 2025, Sec. 3.1:
the condition is replaced by a null value with some probability during training).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

NULL_LABEL = -1


@dataclass(frozen=True)
class Condition:
    """Per-row conditioning of the denoiser.

    Attributes:
        labels: ``[B]`` long class labels, ``-1`` = null; ``None`` = all null.
        values: ``[B, P]`` float property values (already normalised), ``NaN`` = nulled entry;
            ``None`` = all null.
    """

    labels: Tensor | None = None
    values: Tensor | None = None

    def __post_init__(self) -> None:
        if self.labels is not None and self.labels.dim() != 1:
            raise ValueError(f"condition labels must have shape [B], got {tuple(self.labels.shape)}")
        if self.values is not None and self.values.dim() != 2:
            raise ValueError(f"condition values must have shape [B, P], got {tuple(self.values.shape)}")
        if self.labels is not None and self.values is not None and self.labels.shape[0] != self.values.shape[0]:
            raise ValueError("condition labels and values disagree on the batch size")

    @property
    def is_null(self) -> bool:
        """True when nothing is conditioned on (every row is the null condition)."""
        no_labels = self.labels is None or bool((self.labels == NULL_LABEL).all())
        no_values = self.values is None or bool(torch.isnan(self.values).all())
        return no_labels and no_values

    @property
    def batch_size(self) -> int | None:
        if self.labels is not None:
            return int(self.labels.shape[0])
        if self.values is not None:
            return int(self.values.shape[0])
        return None

    def select(self, rows: Tensor | slice) -> Condition:
        """The condition of a subset of rows (``rows``: index or bool tensor over B, or a slice)."""
        return Condition(
            labels=None if self.labels is None else self.labels[rows],
            values=None if self.values is None else self.values[rows],
        )

    def expand(self, batch_size: int) -> Condition:
        """Broadcast a one-row condition to ``batch_size`` rows (other sizes must already match)."""
        size = self.batch_size
        if size is None or size == batch_size:
            return self
        if size != 1:
            raise ValueError(f"cannot expand a condition of {size} rows to {batch_size}")
        return Condition(
            labels=None if self.labels is None else self.labels.expand(batch_size).clone(),
            values=None if self.values is None else self.values.expand(batch_size, -1).clone(),
        )

    def to(self, device: torch.device | str) -> Condition:
        return Condition(
            labels=None if self.labels is None else self.labels.to(device),
            values=None if self.values is None else self.values.to(device),
        )


def concat_conditions(
    conditions: Sequence[Condition | None],
    batch_sizes: Sequence[int],
    *,
    num_properties: int,
    device: torch.device,
) -> Condition:
    """Concatenate per-chunk conditions along the batch, filling absent parts with nulls.

    Args:
        conditions: one condition (or ``None`` = null) per chunk.
        batch_sizes: the number of rows of each chunk.
        num_properties: P, the width of the property vector the network expects.
        device: where the result lives.
    """
    has_labels = any(c is not None and c.labels is not None for c in conditions)
    has_values = any(c is not None and c.values is not None for c in conditions)
    labels: list[Tensor] = []
    values: list[Tensor] = []
    for cond, size in zip(conditions, batch_sizes, strict=True):
        if has_labels:
            if cond is not None and cond.labels is not None:
                labels.append(cond.expand(size).labels.to(device))  # type: ignore[union-attr]
            else:
                labels.append(torch.full((size,), NULL_LABEL, dtype=torch.long, device=device))
        if has_values:
            if cond is not None and cond.values is not None:
                values.append(cond.expand(size).values.to(device))  # type: ignore[union-attr]
            else:
                values.append(torch.full((size, num_properties), float("nan"), device=device))
    return Condition(
        labels=torch.cat(labels) if has_labels else None,
        values=torch.cat(values) if has_values else None,
    )
