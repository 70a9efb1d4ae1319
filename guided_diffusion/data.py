"""Token datasets and the interfaces a domain plugin implements (tokenizer, datasets, domain state).

The engine only sees fixed-length token tensors plus optional labels and property values; domains
(``domains/``) turn their raw data into these.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor


@dataclass(frozen=True)
class TokenDataset:
    """Fixed-length token sequences with optional conditioning targets.

    Attributes:
        tokens: ``[N, L]`` long data ids.
        labels: ``[N]`` long class labels, or ``None``.
        values: ``[N, P]`` float property values (normalised for the network), or ``None``.
    """

    tokens: Tensor
    labels: Tensor | None = None
    values: Tensor | None = None

    def __post_init__(self) -> None:
        if self.tokens.dim() != 2:
            raise ValueError(f"tokens must have shape [N, L], got {tuple(self.tokens.shape)}")
        n = self.tokens.shape[0]
        if self.labels is not None and self.labels.shape != (n,):
            raise ValueError(f"labels must have shape [{n}], got {tuple(self.labels.shape)}")
        if self.values is not None and (self.values.dim() != 2 or self.values.shape[0] != n):
            raise ValueError(f"values must have shape [{n}, P], got {tuple(self.values.shape)}")

    def __len__(self) -> int:
        return int(self.tokens.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.tokens.shape[1])

    def subset(self, index: Tensor | slice) -> TokenDataset:
        return TokenDataset(
            tokens=self.tokens[index],
            labels=None if self.labels is None else self.labels[index],
            values=None if self.values is None else self.values[index],
        )

    @staticmethod
    def concat(parts: list[TokenDataset]) -> TokenDataset:
        """The rows of ``parts`` one after another (all with the same length and the same targets present)."""
        if not parts:
            raise ValueError("concat needs at least one dataset")
        for name in ("labels", "values"):
            present = {getattr(p, name) is not None for p in parts}
            if len(present) > 1:
                raise ValueError(f"cannot concatenate datasets where only some have {name}")
        if len({p.seq_len for p in parts}) > 1:
            raise ValueError(f"cannot concatenate datasets of lengths {sorted({p.seq_len for p in parts})}")

        def cat(name: str) -> Tensor | None:
            tensors = [getattr(p, name) for p in parts]
            return None if tensors[0] is None else torch.cat(tensors)

        tokens = cat("tokens")
        assert tokens is not None
        return TokenDataset(tokens=tokens, labels=cat("labels"), values=cat("values"))

    def fingerprint(self) -> str:
        """sha256 over the tensors' bytes: identifies the exact training data in checkpoints."""
        digest = hashlib.sha256()
        for tensor in (self.tokens, self.labels, self.values):
            if tensor is not None:
                digest.update(str(tuple(tensor.shape)).encode())
                digest.update(tensor.contiguous().cpu().numpy().tobytes())
        return digest.hexdigest()


@runtime_checkable
class Tokenizer(Protocol):
    """Maps domain objects (strings) to fixed-length id sequences and back."""

    @property
    def vocab_size(self) -> int:
        """V, the number of data tokens (padding included)."""
        ...

    def encode(self, items: list[str], length: int) -> Tensor:
        """``[N, length]`` ids; raises ``ValueError`` on unknown tokens or items that are too long."""
        ...

    def decode(self, tokens: Tensor) -> list[str]:
        """Strings for ``[N, L]`` ids."""
        ...

    def to_json(self) -> dict[str, Any]:
        """Everything needed to rebuild the tokenizer (stored in checkpoints)."""
        ...


@runtime_checkable
class Domain(Protocol):
    """What a domain plugin provides to the engine's trainer and sampler."""

    name: str
    seq_len: int
    num_classes: int
    property_names: list[str]

    @property
    def tokenizer(self) -> Tokenizer: ...

    def datasets(self) -> tuple[TokenDataset, TokenDataset]:
        """Training and validation sets."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-serialisable state that rebuilds this domain without its data (vocabulary, normalisers)."""
        ...


@runtime_checkable
class LabellingDomain(Domain, Protocol):
    """A domain whose oracles can label new items (molecules: RDKit properties), so that classifiers can also
    learn from a sampler's own output (``guide-gen train-classifier extra_data=CSV``)."""

    def labelled_dataset(self, items: list[str], *, what: str) -> TokenDataset:
        """Encode and label ``items``; items that cannot be encoded at ``seq_len`` or labelled (for molecules:
        invalid SMILES) are dropped with a count on stderr."""
        ...
