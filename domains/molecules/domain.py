"""The molecules domain: SMILES/SELFIES token datasets from QM9 or MOSES, conditioned on a vector of
RDKit property values (normalised with training-set statistics)."""

from __future__ import annotations

import sys
from functools import cached_property
from typing import Any

import numpy as np
import torch
from torch import Tensor

from domains.molecules.datasets import MoleculeSplits, cached_properties, cached_tokens, load_moses, load_qm9
from domains.molecules.properties import compute_properties_parallel, get_property
from domains.molecules.tokenizers import MoleculeTokenizer, Representation
from guided_diffusion.data import TokenDataset

DATASETS = ("qm9", "moses")


class MoleculeDomain:
    """Molecules as fixed-length token sequences with property conditioning.

    Args:
        dataset: ``qm9`` or ``moses``.
        representation: ``smiles`` or ``selfies`` (inputs and outputs stay SMILES).
        seq_len: model length L; longer molecules are filtered out (and counted).
        properties: conditioning properties (names of :data:`PROPERTIES`), in network order.
        max_train: use a seeded random subset of this many training molecules (None = all).
        num_val: validation molecules (MOSES: drawn from its test set).
        seed: seed of subsets and splits.
        data_dir: data folder (default: :func:`default_data_dir`).
        tokenizer: stored tokenizer state (from a checkpoint); None = fit on the training set.
        normalizer: stored ``{property: [mean, std]}``; None = training-set statistics.
        quantiles: stored ``{property: [101 quantiles]}``; None = training-set statistics.
        workers: processes for property computation.
    """

    name = "molecules"
    num_classes = 0

    def __init__(
        self,
        *,
        dataset: str = "moses",
        representation: Representation = "smiles",
        seq_len: int = 56,
        properties: list[str] | tuple[str, ...] = ("qed", "sa", "logp", "mw", "rings"),
        max_train: int | None = None,
        num_val: int = 10_000,
        seed: int = 0,
        data_dir: str | None = None,
        tokenizer: dict[str, Any] | None = None,
        normalizer: dict[str, list[float]] | None = None,
        quantiles: dict[str, list[float]] | None = None,
        workers: int | None = None,
    ) -> None:
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
        if representation not in ("smiles", "selfies"):
            raise ValueError(f"representation must be 'smiles' or 'selfies', got {representation!r}")
        for prop in properties:
            get_property(prop)
        if seq_len < 2:
            raise ValueError(f"seq_len must be >= 2, got {seq_len}")
        self.dataset = dataset
        self.representation: Representation = representation
        self.seq_len = int(seq_len)
        self.property_names = list(properties)
        self.max_train, self.num_val, self.seed = max_train, num_val, seed
        self.data_dir, self.workers = data_dir, workers
        self._tokenizer = None if tokenizer is None else MoleculeTokenizer.from_json(tokenizer)
        self._quantiles = quantiles
        self._token_memo: tuple[tuple[str, ...], list[list[str] | None]] | None = None
        self._normalizer = (
            None if normalizer is None else {k: (float(v[0]), float(v[1])) for k, v in normalizer.items()}
        )

    # ------------------------------------------------------------------ data
    @cached_property
    def splits(self) -> MoleculeSplits:
        if self.dataset == "qm9":
            return load_qm9(self.data_dir, num_val=self.num_val)
        return load_moses(self.data_dir, max_train=self.max_train, num_val=self.num_val, seed=self.seed)

    @property
    def tokenizer(self) -> MoleculeTokenizer:
        if self._tokenizer is None:
            self._tokenizer = MoleculeTokenizer.fit_tokens(
                self.representation, (t for t in self._tokenized(tuple(self._train_smiles())) if t is not None)
            )
        return self._tokenizer

    def _tokenized(self, smiles: tuple[str, ...]) -> list[list[str] | None]:
        """Tokens of each molecule in this representation (None where it cannot be tokenized), memoised for
        the last list seen and cached on disk: SELFIES conversion is the slow part of building a dataset."""
        if self._token_memo is None or self._token_memo[0] != smiles:
            self._token_memo = (smiles, cached_tokens(list(smiles), self.representation))
        return self._token_memo[1]

    def _train_smiles(self) -> list[str]:
        train = self.splits.train
        if self.dataset == "qm9" and self.max_train is not None:
            rng = np.random.default_rng(self.seed)
            train = [
                train[i] for i in np.sort(rng.choice(len(train), size=min(self.max_train, len(train)), replace=False))
            ]
        return train

    @property
    def normalizer(self) -> dict[str, tuple[float, float]]:
        """Per property (mean, std) of the training set, used to scale conditioning values."""
        if self._normalizer is None:
            self._fit_statistics()
        assert self._normalizer is not None
        return self._normalizer

    @property
    def quantiles(self) -> dict[str, list[float]]:
        """Per property, the 0%, 1%, ..., 100% quantiles of the training set (maps threshold targets to
        conditioning values); empty when a stored state predates them."""
        if self._quantiles is None:
            if self._tokenizer is not None and self._normalizer is not None:
                return {}
            self._fit_statistics()
        return self._quantiles or {}

    def _fit_statistics(self) -> None:
        values = cached_properties(self._train_smiles(), self.property_names, workers=self.workers)
        self._normalizer = {
            name: (float(np.nanmean(values[:, j])), float(np.nanstd(values[:, j]) or 1.0))
            for j, name in enumerate(self.property_names)
        }
        grid = np.linspace(0.0, 1.0, 101)
        self._quantiles = {
            name: [round(float(v), 6) for v in np.nanquantile(values[:, j], grid)]
            for j, name in enumerate(self.property_names)
        }

    def normalize(self, values: Tensor) -> Tensor:
        """Scale raw property values ``[N, P]`` for the network (NaN stays NaN)."""
        mean = torch.tensor([self.normalizer[n][0] for n in self.property_names], dtype=torch.float32)
        std = torch.tensor([self.normalizer[n][1] for n in self.property_names], dtype=torch.float32)
        return (values.float() - mean.to(values.device)) / std.to(values.device)

    def encode_filtered(self, smiles: list[str], *, what: str) -> tuple[Tensor, list[int]]:
        """Encode molecules that fit ``seq_len`` and the vocabulary; report how many were dropped."""
        tok = self.tokenizer
        known = set(tok.vocabulary)
        keep: list[str] = []
        lists: list[list[str]] = []
        rows: list[int] = []
        too_long = unknown = 0
        for i, (item, tokens) in enumerate(zip(smiles, self._tokenized(tuple(smiles)), strict=True)):
            if tokens is None or any(t not in known for t in tokens):
                unknown += 1
            elif len(tokens) > self.seq_len:
                too_long += 1
            else:
                keep.append(item)
                lists.append(tokens)
                rows.append(i)
        if too_long or unknown:
            print(
                f"{what}: dropped {too_long} molecules longer than {self.seq_len} tokens and {unknown} with "
                f"tokens outside the vocabulary (kept {len(keep)} of {len(smiles)})",
                file=sys.stderr,
            )
        return tok.encode_tokens(keep, lists, self.seq_len), rows

    def _dataset(self, smiles: list[str], what: str) -> TokenDataset:
        tokens, rows = self.encode_filtered(smiles, what=what)
        if not self.property_names:
            return TokenDataset(tokens=tokens)
        values = cached_properties(smiles, self.property_names, workers=self.workers)[rows]
        return TokenDataset(tokens=tokens, values=self.normalize(torch.from_numpy(values)))

    def datasets(self) -> tuple[TokenDataset, TokenDataset]:
        return self._dataset(self._train_smiles(), f"{self.dataset} train"), self._dataset(
            self.splits.val, f"{self.dataset} validation"
        )

    def labelled_dataset(self, items: list[str], *, what: str) -> TokenDataset:
        """Molecules labelled with RDKit (for example a sampler's own output, for classifiers that should judge
        it): those that do not fit the model or are not valid molecules are dropped, with counts on stderr.

        Raises:
            ValueError: if no molecule is left.
        """
        if not self.property_names:
            raise ValueError("this molecules domain has no properties to label molecules with")
        tokens, rows = self.encode_filtered(items, what=what)
        values = compute_properties_parallel([items[i] for i in rows], self.property_names, workers=self.workers)
        valid = ~np.isnan(values).any(axis=1)
        if not valid.all():
            print(f"{what}: dropped {int((~valid).sum())} invalid molecules (kept {int(valid.sum())})", file=sys.stderr)
        if not valid.any():
            raise ValueError(f"{what}: no valid molecule to learn from")
        keep = torch.from_numpy(np.flatnonzero(valid))
        return TokenDataset(tokens=tokens[keep], values=self.normalize(torch.from_numpy(values[valid])))

    # ------------------------------------------------------------------ checkpoint state
    def state(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "representation": self.representation,
            "seq_len": self.seq_len,
            "properties": self.property_names,
            "max_train": self.max_train,
            "num_val": self.num_val,
            "seed": self.seed,
            "tokenizer": self.tokenizer.to_json(),
            "normalizer": {k: list(v) for k, v in self.normalizer.items()},
            "quantiles": self.quantiles,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> MoleculeDomain:
        return cls(**state)
