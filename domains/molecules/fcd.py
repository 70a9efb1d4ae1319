"""Frechet ChemNet Distance (Preuer et al. 2018) through the ``fcd`` package, which ships the ChemNet
weights (so it works offline). Reference statistics (mean and covariance of ChemNet activations) are stored
as ``.npz`` files."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np


@cache
def _chemnet() -> Any:
    import fcd

    return fcd.load_ref_model()


def chemnet_activations(canonical: Sequence[str], *, batch_size: int = 256) -> np.ndarray:
    """``[N, 512]`` ChemNet penultimate activations of canonical SMILES."""
    import fcd

    return np.asarray(fcd.get_predictions(_chemnet(), list(canonical), batch_size=batch_size, device="cpu"))


def statistics(canonical: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    act = chemnet_activations(canonical)
    return act.mean(axis=0), np.cov(act.T)


def save_reference(path: str | Path, canonical: Sequence[str]) -> None:
    """Write the ChemNet statistics of a reference set (e.g. the MOSES test set) to ``path`` (.npz)."""
    mu, sigma = statistics(canonical)
    np.savez(path, mu=mu.astype(np.float64), sigma=sigma.astype(np.float32), n=np.array(len(canonical)))


def fcd_to_reference(canonical: Sequence[str], reference: str | Path) -> float:
    """FCD between canonical SMILES and stored reference statistics (lower is closer; depends on n)."""
    import fcd

    with np.load(reference, allow_pickle=False) as ref:
        mu_ref, sigma_ref = ref["mu"], ref["sigma"].astype(np.float64)
    mu, sigma = statistics(canonical)
    return float(fcd.calculate_frechet_distance(mu1=mu, sigma1=sigma, mu2=mu_ref, sigma2=sigma_ref))
