"""Property oracles computed with RDKit: QED (Bickerton et al. 2012), synthetic accessibility (Ertl &
Schuffenhauer 2009, RDKit Contrib), Crippen logP, molecular weight, ring counts, H-bond donors/acceptors,
TPSA and heavy atoms. Each declares its valid range and a default tolerance for value targets."""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Property:
    """One molecular property oracle.

    Attributes:
        name: identifier used in targets (``qed=0.9``).
        description: what it measures.
        low, high: the range a molecule can have (targets outside are impossible).
        tolerance: default half-width of a value target (``name=value`` means within this).
        integer: whether values are counts.
    """

    name: str
    description: str
    low: float
    high: float
    tolerance: float
    integer: bool = False

    def compute(self, mol: Any) -> float:
        return float(_FUNCTIONS[self.name]()(mol))


@cache
def _sa_scorer() -> Callable[[Any], float]:
    from rdkit import RDConfig

    path = os.path.join(RDConfig.RDContribDir, "SA_Score")
    if path not in sys.path:
        sys.path.append(path)
    import sascorer

    return sascorer.calculateScore


def _qed() -> Callable[[Any], float]:
    from rdkit.Chem import QED

    return QED.qed


def _rd(name: str) -> Callable[[], Callable[[Any], float]]:
    def get() -> Callable[[Any], float]:
        from rdkit.Chem import Crippen, Descriptors, Lipinski, rdMolDescriptors

        return {
            "logp": Crippen.MolLogP,  # type: ignore[attr-defined]
            "mw": Descriptors.MolWt,  # type: ignore[attr-defined]
            "rings": rdMolDescriptors.CalcNumRings,
            "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings,
            "hbd": Lipinski.NumHDonors,  # type: ignore[attr-defined]
            "hba": Lipinski.NumHAcceptors,  # type: ignore[attr-defined]
            "tpsa": rdMolDescriptors.CalcTPSA,
            "heavy_atoms": lambda m: m.GetNumHeavyAtoms(),
        }[name]

    return get


_FUNCTIONS: dict[str, Callable[[], Callable[[Any], float]]] = {
    "qed": _qed,
    "sa": _sa_scorer,
    **{name: _rd(name) for name in ("logp", "mw", "rings", "aromatic_rings", "hbd", "hba", "tpsa", "heavy_atoms")},
}

PROPERTIES: dict[str, Property] = {
    p.name: p
    for p in [
        Property("qed", "quantitative estimate of drug-likeness", 0.0, 1.0, 0.05),
        Property("sa", "synthetic accessibility score (1 easy .. 10 hard)", 1.0, 10.0, 0.25),
        Property("logp", "Crippen octanol-water logP", -15.0, 15.0, 0.5),
        Property("mw", "molecular weight (Da)", 0.0, 2000.0, 25.0),
        Property("rings", "number of rings", 0, 30, 0.0, integer=True),
        Property("aromatic_rings", "number of aromatic rings", 0, 20, 0.0, integer=True),
        Property("hbd", "hydrogen-bond donors", 0, 30, 0.0, integer=True),
        Property("hba", "hydrogen-bond acceptors", 0, 40, 0.0, integer=True),
        Property("tpsa", "topological polar surface area", 0.0, 500.0, 10.0),
        Property("heavy_atoms", "number of heavy atoms", 1, 150, 0.0, integer=True),
    ]
}


def get_property(name: str) -> Property:
    """Look up an oracle by name.

    Raises:
        ValueError: naming the allowed properties.
    """
    if name not in PROPERTIES:
        raise ValueError(f"unknown property {name!r}; allowed: {', '.join(PROPERTIES)}")
    return PROPERTIES[name]


def parse_molecule(smiles: str) -> Any:
    """RDKit molecule, or ``None`` for invalid or empty SMILES."""
    from rdkit import Chem, RDLogger

    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    if not smiles:
        return None
    mol = Chem.MolFromSmiles(smiles)
    if mol is None or mol.GetNumAtoms() == 0:
        return None
    return mol


# why RDKit rejects a SMILES, in the order the checks run (see :func:`invalid_reason`)
INVALID_REASONS = (
    "empty",
    "unclosed ring bond",
    "unbalanced parentheses",
    "other syntax",
    "aromaticity",
    "valence",
    "other chemistry",
)
_BRACKET_ATOM = re.compile(r"\[[^\]]*\]")
_RING_LABEL = re.compile(r"%\d\d|\d")


def invalid_reason(smiles: str) -> str | None:
    """Why RDKit rejects ``smiles`` (one of :data:`INVALID_REASONS`), or ``None`` when it is a molecule.

    Syntax first: a ring-bond label (a digit or ``%nn`` outside bracket atoms) used an odd number of times, then
    ``(`` and ``)`` that do not pair, then any other parse failure; a string that parses fails sanitisation on
    aromaticity (kekulisation) or valence.
    """
    from rdkit import Chem, RDLogger

    if parse_molecule(smiles) is not None:
        return None
    if not smiles:
        return "empty"
    RDLogger.DisableLog("rdApp.*")  # type: ignore[attr-defined]
    mol = Chem.MolFromSmiles(smiles, sanitize=False)
    if mol is None or mol.GetNumAtoms() == 0:
        bare = _BRACKET_ATOM.sub("A", smiles)
        labels = _RING_LABEL.findall(bare)
        if any(labels.count(label) % 2 for label in set(labels)):
            return "unclosed ring bond"
        depth = 0
        for char in bare:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                break
        return "unbalanced parentheses" if depth != 0 else "other syntax"
    try:
        Chem.SanitizeMol(mol)
    except Chem.KekulizeException:
        return "aromaticity"
    except Chem.AtomValenceException:
        return "valence"
    except Exception:  # RDKit raises several other sanitisation errors
        return "other chemistry"
    return "other chemistry"


def compute_properties(smiles: Sequence[str], names: Sequence[str]) -> np.ndarray:
    """``[N, P]`` float64 property values (NaN for invalid molecules)."""
    props = [get_property(n) for n in names]
    out = np.full((len(smiles), len(props)), np.nan)
    for i, item in enumerate(smiles):
        mol = parse_molecule(item)
        if mol is None:
            continue
        for j, prop in enumerate(props):
            try:
                out[i, j] = prop.compute(mol)
            except (ValueError, RuntimeError, ZeroDivisionError):
                out[i, j] = math.nan
    return out


def _compute_chunk(args: tuple[list[str], list[str]]) -> np.ndarray:
    return compute_properties(args[0], args[1])


def compute_properties_parallel(
    smiles: Sequence[str], names: Sequence[str], *, workers: int | None = None
) -> np.ndarray:
    """:func:`compute_properties` over several processes (RDKit descriptors are CPU-bound)."""
    workers = workers or os.cpu_count() or 1
    if workers <= 1 or len(smiles) < 2000:
        return compute_properties(smiles, names)
    from concurrent.futures import ProcessPoolExecutor

    size = math.ceil(len(smiles) / (workers * 8))
    chunks = [(list(smiles[i : i + size]), list(names)) for i in range(0, len(smiles), size)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        return np.concatenate(list(pool.map(_compute_chunk, chunks)))
