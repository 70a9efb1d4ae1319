"""The toy domain: sequences over letters drawn from labelled Markov chains (tests, examples, README)."""

from __future__ import annotations

import string
from typing import Any

import torch
from torch import Tensor

from domains.toy.markov import MarkovChains, bigram_tv_distance
from guided_diffusion.data import TokenDataset


class LetterTokenizer:
    """One lower-case letter per token; sequences have a fixed length (no padding)."""

    def __init__(self, vocab_size: int) -> None:
        if not 2 <= vocab_size <= 26:
            raise ValueError(f"the toy tokenizer supports 2..26 symbols, got {vocab_size}")
        self.symbols = string.ascii_lowercase[:vocab_size]
        self._index = {ch: i for i, ch in enumerate(self.symbols)}

    @property
    def vocab_size(self) -> int:
        return len(self.symbols)

    def encode(self, items: list[str], length: int) -> Tensor:
        out = torch.empty(len(items), length, dtype=torch.long)
        for row, item in enumerate(items):
            if len(item) != length:
                raise ValueError(f"toy sequence {item!r} has length {len(item)}, expected {length}")
            unknown = sorted(set(item) - set(self.symbols))
            if unknown:
                raise ValueError(f"toy sequence {item!r} has unknown symbols {unknown}; allowed: {self.symbols}")
            out[row] = torch.tensor([self._index[ch] for ch in item])
        return out

    def decode(self, tokens: Tensor) -> list[str]:
        return [
            "".join(self.symbols[int(i)] if 0 <= int(i) < len(self.symbols) else "?" for i in row) for row in tokens
        ]

    def to_json(self) -> dict[str, Any]:
        return {"symbols": self.symbols}


class ToyDomain:
    """Labelled Markov-chain sequences with exactly known statistics.

    Args:
        num_classes: number of labels (chains).
        vocab_size: number of symbols.
        seq_len: sequence length L.
        overlap: how similar the chains are (0 = disjoint structure, 1 = identical).
        num_train, num_val: dataset sizes.
        seed: seed of the chain parameters and of the data draw.
    """

    name = "toy"

    def __init__(
        self,
        *,
        num_classes: int = 2,
        vocab_size: int = 8,
        seq_len: int = 16,
        overlap: float = 0.5,
        num_train: int = 20_000,
        num_val: int = 1_000,
        seed: int = 0,
    ) -> None:
        self.num_classes = num_classes
        self.seq_len = seq_len
        self.property_names: list[str] = []
        self.overlap, self.num_train, self.num_val, self.seed = overlap, num_train, num_val, seed
        self.chains = MarkovChains(num_classes=num_classes, vocab_size=vocab_size, overlap=overlap, seed=seed)
        self._tokenizer = LetterTokenizer(vocab_size)

    @property
    def tokenizer(self) -> LetterTokenizer:
        return self._tokenizer

    def draw(self, n: int, *, seed: int, label: int | None = None) -> TokenDataset:
        """``n`` fresh labelled sequences (balanced labels unless ``label`` is given)."""
        gen = torch.Generator().manual_seed(seed)
        labels = torch.arange(n) % self.num_classes if label is None else torch.full((n,), label, dtype=torch.long)
        return TokenDataset(tokens=self.chains.sample(labels, self.seq_len, generator=gen), labels=labels)

    def datasets(self) -> tuple[TokenDataset, TokenDataset]:
        return self.draw(self.num_train, seed=self.seed + 1), self.draw(self.num_val, seed=self.seed + 2)

    def state(self) -> dict[str, Any]:
        return {
            "num_classes": self.num_classes,
            "vocab_size": self.tokenizer.vocab_size,
            "seq_len": self.seq_len,
            "overlap": self.overlap,
            "num_train": self.num_train,
            "num_val": self.num_val,
            "seed": self.seed,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ToyDomain:
        return cls(**state)

    def summarize(self, tokens: Tensor, *, label: int | None = None) -> dict[str, float]:
        """Sample quality: bigram TV distance to the exact chain statistics and, with a label, the share of
        samples the Bayes classifier assigns to it."""
        tokens = tokens.cpu()
        expected = self.chains.bigram_distribution(self.seq_len, label)
        out = {"bigram_tv": bigram_tv_distance(tokens, expected)}
        predicted = self.chains.classify(tokens)
        for k in range(self.num_classes):
            out[f"share_label_{k}"] = float((predicted == k).double().mean())
        return out
