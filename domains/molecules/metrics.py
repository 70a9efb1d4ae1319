"""Sample-quality metrics for molecules: validity, uniqueness and novelty (canonical SMILES, MOSES
conventions), internal diversity, property statistics, per-target hit rates, and FCD (Preuer et al. 2018)
against reference statistics."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from domains.molecules.properties import INVALID_REASONS, compute_properties, invalid_reason, parse_molecule
from domains.molecules.targets import Target


def smiles_hash(smiles: str) -> int:
    """32-bit hash of a canonical SMILES (novelty references store these)."""
    return int.from_bytes(hashlib.blake2b(smiles.encode(), digest_size=4).digest(), "little")


class NoveltyReference:
    """Membership test against a training set, from a sorted array of 32-bit canonical-SMILES hashes.

    A false "seen" happens with probability (set size) / 2^32 per query: 4e-4 for MOSES's 1.6M molecules.
    """

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = np.unique(hashes.astype(np.uint32))

    @classmethod
    def from_smiles(cls, canonical: Sequence[str]) -> NoveltyReference:
        return cls(np.fromiter((smiles_hash(s) for s in canonical), dtype=np.uint32, count=len(canonical)))

    @classmethod
    def load(cls, path: str | Path) -> NoveltyReference:
        return cls(np.load(path, allow_pickle=False))

    def save(self, path: str | Path) -> None:
        np.save(path, self.hashes, allow_pickle=False)

    def __len__(self) -> int:
        return int(self.hashes.size)

    def contains(self, canonical: Sequence[str]) -> np.ndarray:
        keys = np.fromiter((smiles_hash(s) for s in canonical), dtype=np.uint32, count=len(canonical))
        pos = np.searchsorted(self.hashes, keys).clip(max=max(len(self.hashes) - 1, 0))
        return np.asarray(self.hashes[pos] == keys) if len(self.hashes) else np.zeros(len(keys), dtype=bool)


@dataclass(frozen=True)
class TargetResult:
    """How samples met one target: share of valid molecules meeting it, their mean and mean absolute
    error to the target value."""

    target: Target
    hits: int
    valid: int
    mean: float
    mae: float

    @property
    def hit_rate(self) -> float:
        return self.hits / self.valid if self.valid else 0.0


@dataclass(frozen=True)
class MoleculeReport:
    """Metrics of a list of generated SMILES (rates per MOSES: unique/valid, novel/unique)."""

    n: int
    valid: int
    unique: int
    novel: int | None
    diversity: float
    properties: dict[str, tuple[float, float]]
    targets: list[TargetResult] = field(default_factory=list)
    all_targets_hits: int = 0
    fcd: float | None = None
    invalid_reasons: dict[str, int] = field(default_factory=dict)  # why the invalid samples fail (nonzero counts)

    @property
    def validity(self) -> float:
        return self.valid / self.n if self.n else 0.0

    @property
    def uniqueness(self) -> float:
        return self.unique / self.valid if self.valid else 0.0

    @property
    def novelty(self) -> float | None:
        if self.novel is None:
            return None
        return self.novel / self.unique if self.unique else 0.0


def canonicalize(smiles: Sequence[str]) -> list[str | None]:
    """Canonical SMILES of each input (None where invalid)."""
    from rdkit import Chem

    out: list[str | None] = []
    for item in smiles:
        mol = parse_molecule(item)
        out.append(None if mol is None else Chem.MolToSmiles(mol))
    return out


def internal_diversity(canonical: Sequence[str], *, radius: int = 2, bits: int = 2048) -> float:
    """1 - mean pairwise Tanimoto similarity of Morgan fingerprints (distinct pairs); 0 for < 2 molecules."""
    if len(canonical) < 2:
        return 0.0
    from rdkit import DataStructs
    from rdkit.Chem import rdFingerprintGenerator

    gen = rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=bits)
    fps = [gen.GetFingerprint(parse_molecule(s)) for s in canonical]
    total, pairs = 0.0, 0
    for i in range(1, len(fps)):
        sims = DataStructs.BulkTanimotoSimilarity(fps[i], fps[:i])
        total += float(np.sum(sims))
        pairs += i
    return 1.0 - total / pairs


def invalid_reasons(smiles: Sequence[str]) -> dict[str, int]:
    """Counts of :func:`~domains.molecules.properties.invalid_reason` over invalid SMILES, most common first."""
    counts = dict.fromkeys(INVALID_REASONS, 0)
    for item in smiles:
        counts[invalid_reason(item) or "other chemistry"] += 1
    return dict(sorted(((k, v) for k, v in counts.items() if v), key=lambda kv: -kv[1]))


def evaluate(
    smiles: Sequence[str],
    *,
    targets: Sequence[Target] = (),
    properties: Sequence[str] = ("qed", "sa", "logp", "mw", "rings"),
    novelty: NoveltyReference | None = None,
    fcd_reference: Path | None = None,
) -> tuple[MoleculeReport, list[str | None], np.ndarray]:
    """Score generated SMILES.

    Returns:
        The report, the canonical SMILES of each sample (None = invalid), and the ``[N, P]`` property values
        (NaN for invalid) for ``properties`` plus any targeted property not among them.
    """
    names = list(dict.fromkeys([*properties, *(t.name for t in targets)]))
    canonical = canonicalize(smiles)
    valid = [c for c in canonical if c is not None]
    unique = list(dict.fromkeys(valid))
    novel = None if novelty is None else int((~novelty.contains(unique)).sum())
    values = compute_properties([c or "" for c in canonical], names)
    ok = np.array([c is not None for c in canonical], dtype=bool)
    stats = {
        name: (float(np.nanmean(values[ok, j])), float(np.nanstd(values[ok, j]))) if ok.any() else (np.nan, np.nan)
        for j, name in enumerate(names)
    }
    results, together = [], ok.copy()
    for target in targets:
        column = values[:, names.index(target.name)]
        hit = target.satisfied(column) & ok
        together &= hit
        mean = float(np.nanmean(column[ok])) if ok.any() else float("nan")
        mae = float(np.nanmean(np.abs(column[ok] - target.value))) if ok.any() else float("nan")
        results.append(TargetResult(target=target, hits=int(hit.sum()), valid=int(ok.sum()), mean=mean, mae=mae))
    fcd = None
    if fcd_reference is not None and len(valid) >= 2:
        from domains.molecules.fcd import fcd_to_reference

        fcd = fcd_to_reference(valid, fcd_reference)
    report = MoleculeReport(
        n=len(smiles),
        valid=len(valid),
        unique=len(unique),
        novel=novel,
        diversity=internal_diversity(unique),
        properties=stats,
        targets=results,
        all_targets_hits=int(together.sum()) if targets else 0,
        fcd=fcd,
        invalid_reasons=invalid_reasons([s for s, c in zip(smiles, canonical, strict=True) if c is None]),
    )
    return report, canonical, values
