"""Writing molecule samples (CSV or SDF, atomically) and printing readable reports."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from domains.molecules.metrics import MoleculeReport
from domains.molecules.properties import parse_molecule
from guided_diffusion.training.checkpoint import creation_mode


def samples_table(raw: list[str], canonical: list[str | None], values: np.ndarray, names: list[str]) -> pd.DataFrame:
    """One row per raw sample: ``smiles`` (canonical when valid), ``valid``, then one column per property."""
    table = pd.DataFrame(
        {
            "smiles": [c if c is not None else r for r, c in zip(raw, canonical, strict=True)],
            "valid": [c is not None for c in canonical],
        }
    )
    for j, name in enumerate(names):
        table[name] = values[:, j]
    return table


def write_samples(table: pd.DataFrame, path: str | Path) -> int:
    """Write ``table`` to ``path`` atomically: CSV, or SDF (valid molecules only, properties as SD fields)
    when the name ends in ``.sdf``. Returns the number of records written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, creation_mode())
    os.close(fd)
    try:
        if path.suffix.lower() == ".sdf":
            from rdkit import Chem

            count = 0
            with Chem.SDWriter(tmp) as writer:
                for row in table.itertuples(index=False):
                    mol = parse_molecule(row.smiles) if row.valid else None
                    if mol is None:
                        continue
                    mol.SetProp("_Name", row.smiles)
                    for name in table.columns[2:]:
                        mol.SetProp(name, f"{getattr(row, name):.6g}")
                    writer.write(mol)
                    count += 1
        else:
            table.to_csv(tmp, index=False, float_format="%.6g")
            count = len(table)
        os.replace(tmp, path)
        return count
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_report(report: MoleculeReport) -> str:
    """A few readable lines: rates with counts, targets, property means."""

    def pct(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:.1f}%"

    lines = [
        f"validity {pct(report.validity)} ({report.valid}/{report.n}) | "
        f"uniqueness {pct(report.uniqueness)} ({report.unique}/{report.valid}) | "
        f"novelty {pct(report.novelty)}"
        + ("" if report.novel is None else f" ({report.novel}/{report.unique})")
        + f" | diversity {report.diversity:.3f}"
        + ("" if report.fcd is None else f" | FCD {report.fcd:.2f}")
    ]
    if report.invalid_reasons:
        why = ", ".join(f"{reason} {count}" for reason, count in report.invalid_reasons.items())
        lines.append(f"invalid: {report.n - report.valid} ({why})")
    for res in report.targets:
        lines.append(
            f"target {res.target}: hit rate {pct(res.hit_rate)} of valid ({res.hits}/{res.valid}) | "
            f"mean {res.mean:.3f} | MAE {res.mae:.3f}"
        )
    if len(report.targets) > 1:
        share = report.all_targets_hits / report.valid if report.valid else 0.0
        lines.append(f"all targets at once: {pct(share)} of valid ({report.all_targets_hits}/{report.valid})")
    props = " | ".join(f"{k} {m:.3g}±{s:.2g}" for k, (m, s) in report.properties.items())
    lines.append(f"properties of valid molecules (mean±sd): {props}")
    return "\n".join(lines)
