"""Offline reference data shipped with the package: training-set hashes for novelty and ChemNet statistics
for FCD. Rebuild with ``python -m domains.molecules.reference [--data-dir DIR]``."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from domains.molecules.datasets import load_moses, load_qm9
from domains.molecules.metrics import NoveltyReference, canonicalize

PACKAGE_DATA = Path(__file__).resolve().parent / "data"


def novelty_path(dataset: str) -> Path:
    return PACKAGE_DATA / f"{dataset}_train_hashes.npy"


def fcd_path(dataset: str) -> Path:
    return PACKAGE_DATA / f"{dataset}_test_chemnet.npz"


def load_novelty(dataset: str) -> NoveltyReference | None:
    """The shipped novelty reference of ``dataset`` (None if absent)."""
    path = novelty_path(dataset)
    return NoveltyReference.load(path) if path.is_file() else None


def build(dataset: str, *, data_dir: str | None = None, fcd_size: int = 20_000, seed: int = 0) -> None:
    """Write ``<dataset>_train_hashes.npy`` (all training molecules, canonical) and
    ``<dataset>_test_chemnet.npz`` (ChemNet statistics of a seeded ``fcd_size`` sample of the test set)."""
    from domains.molecules.fcd import save_reference

    splits = load_qm9(data_dir) if dataset == "qm9" else load_moses(data_dir)
    PACKAGE_DATA.mkdir(parents=True, exist_ok=True)
    train = [c for c in canonicalize(splits.train) if c]
    NoveltyReference.from_smiles(train).save(novelty_path(dataset))
    rng = np.random.default_rng(seed)
    rows = rng.permutation(len(splits.test))[:fcd_size]
    test = [c for c in canonicalize([splits.test[i] for i in rows]) if c]
    save_reference(fcd_path(dataset), test)
    print(f"{dataset}: {len(train)} training hashes, ChemNet statistics of {len(test)} test molecules")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", choices=["qm9", "moses"], action="append")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--fcd-size", type=int, default=20_000)
    args = parser.parse_args()
    for dataset in args.dataset or ["qm9", "moses"]:
        build(dataset, data_dir=args.data_dir, fcd_size=args.fcd_size)


if __name__ == "__main__":
    main()
