"""Molecule datasets: QM9 (Ramakrishnan et al. 2014; canonical SMILES, seed-42 95/5 split) and MOSES
(Polykovskiy et al. 2020; its own train/test/test_scaffolds), with on-disk caches of computed properties."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from domains.molecules.properties import compute_properties_parallel

QM9_FILE = "molecules/qm9.csv.gz"
MOSES_FILES = {
    "train": "molecules/moses_train.csv.gz",
    "test": "molecules/moses_test.csv.gz",
    "test_scaffolds": "molecules/moses_test_scaffolds.csv.gz",
}


def default_data_dir() -> Path:
    """Where datasets are read from: ``$GUIDE_GEN_DATA``; else a ``shared/data`` folder beside the current
    directory or beside this source checkout; else the user data directory (``~/.local/share/guide-gen``)."""
    env = os.environ.get("GUIDE_GEN_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in (Path.cwd(), Path.cwd().parent, here.parents[2], here.parents[3]):
        candidate = base / "shared" / "data"
        if (candidate / "molecules").is_dir():
            return candidate
    xdg = os.environ.get("XDG_DATA_HOME", str(Path.home() / ".local" / "share"))
    return Path(xdg) / "guide-gen" / "data"


def cache_dir() -> Path:
    """Cache of computed properties and encodings: ``$GUIDE_GEN_CACHE`` or ``~/.cache/guide-gen``."""
    env = os.environ.get("GUIDE_GEN_CACHE")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))) / "guide-gen"


@dataclass(frozen=True)
class MoleculeSplits:
    """SMILES of each split (canonical for QM9; as distributed for MOSES)."""

    train: list[str]
    val: list[str]
    test: list[str]


def canonical_smiles(smiles: str) -> str | None:
    """RDKit canonical SMILES, or None if it does not parse."""
    from domains.molecules.properties import parse_molecule

    mol = parse_molecule(smiles)
    if mol is None:
        return None
    from rdkit import Chem

    return str(Chem.MolToSmiles(mol))


def _require(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{what} not found at {path}; set GUIDE_GEN_DATA (or data_dir=) to a folder holding {path.parent.name}/"
        )
    return path


def _qm9_from_qm9pack() -> list[str]:
    """Canonical SMILES of QM9 from the ``qm9pack`` package's CSV parts (if installed)."""
    from importlib.resources import files

    root = files("qm9pack") / "data"
    frames = [pd.read_csv(str(root / f"qm9_part{i}.csv"), usecols=["SMILES"]) for i in (1, 2, 3)]
    smiles = pd.concat(frames, ignore_index=True).SMILES.tolist()
    return [c for c in (canonical_smiles(s) for s in smiles) if c]


def load_qm9(
    data_dir: str | Path | None = None, *, seed: int = 42, val_fraction: float = 0.05, num_val: int | None = None
) -> MoleculeSplits:
    """QM9 canonical SMILES with a seeded random train/validation split; the held-out 5% is the test set and
    its first ``num_val`` molecules (all by default) the validation set.

    Reads ``molecules/qm9.csv.gz`` under ``data_dir``; if it is absent and ``qm9pack`` is installed, builds the
    list from that package.
    """
    path = Path(data_dir or default_data_dir()) / QM9_FILE
    if path.is_file():
        smiles = pd.read_csv(path, usecols=["smiles"]).smiles.tolist()
    else:
        try:
            smiles = _qm9_from_qm9pack()
        except ModuleNotFoundError:
            _require(path, "QM9 (or the qm9pack package)")
            raise
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(smiles))
    n_val = round(val_fraction * len(smiles))
    test = [smiles[i] for i in order[:n_val]]
    train = [smiles[i] for i in order[n_val:]]
    return MoleculeSplits(train=train, val=test[:num_val] if num_val else test, test=test)


def load_moses(
    data_dir: str | Path | None = None, *, max_train: int | None = None, num_val: int = 10_000, seed: int = 0
) -> MoleculeSplits:
    """MOSES: ``train`` (optionally a seeded random subset of ``max_train``), validation = the first
    ``num_val`` molecules of a seeded shuffle of ``test``, and ``test`` in full."""
    root = Path(data_dir or default_data_dir())
    train = pd.read_csv(_require(root / MOSES_FILES["train"], "MOSES train")).SMILES.tolist()
    test = pd.read_csv(_require(root / MOSES_FILES["test"], "MOSES test")).SMILES.tolist()
    rng = np.random.default_rng(seed)
    if max_train is not None and max_train < len(train):
        train = [train[i] for i in np.sort(rng.choice(len(train), size=max_train, replace=False))]
    val_rows = rng.permutation(len(test))[:num_val]
    return MoleculeSplits(train=train, val=[test[i] for i in val_rows], test=test)


def smiles_digest(smiles: list[str]) -> str:
    digest = hashlib.sha256()
    for item in smiles:
        digest.update(item.encode())
        digest.update(b"\n")
    return digest.hexdigest()[:20]


def cached_properties(smiles: list[str], names: list[str], *, workers: int | None = None) -> np.ndarray:
    """``[N, P]`` RDKit properties of ``smiles``, cached on disk by content, property list and RDKit version."""
    from rdkit import rdBase

    key = hashlib.sha256(f"{smiles_digest(smiles)}|{','.join(names)}|{rdBase.rdkitVersion}".encode()).hexdigest()[:24]
    path = cache_dir() / "properties" / f"{key}.npy"
    if path.is_file():
        values = np.load(path, allow_pickle=False)
        if values.shape == (len(smiles), len(names)):
            return values
    values = compute_properties_parallel(smiles, names, workers=workers)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
    np.save(tmp, values, allow_pickle=False)
    os.replace(tmp, path)
    return values


def cached_tokens(smiles: list[str], representation: str) -> list[list[str] | None]:
    """Tokens of each SMILES in ``representation`` (None where it cannot be tokenized), cached on disk."""
    import gzip

    from domains.molecules.tokenizers import MoleculeTokenizer

    path = cache_dir() / "tokens" / f"{smiles_digest(smiles)}_{representation}.txt.gz"
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")[:-1]
        if len(lines) == len(smiles):
            return [None if line == "\t" else line.split(" ") if line else [] for line in lines]
    probe = MoleculeTokenizer(representation, ["<pad>"])  # type: ignore[arg-type]
    out: list[list[str] | None] = []
    for item in smiles:
        try:
            out.append(probe.tokenize(item))
        except ValueError:
            out.append(None)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as handle:
        handle.write("".join(("\t" if t is None else " ".join(t)) + "\n" for t in out))
    os.replace(tmp, path)
    return out
