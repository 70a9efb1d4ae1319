"""Property oracles against RDKit directly; target syntax and errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from rdkit import Chem
from rdkit.Chem import QED, Crippen, Descriptors, Lipinski, rdMolDescriptors

from domains.molecules.properties import PROPERTIES, compute_properties
from domains.molecules.targets import Target, TargetError, parse_target, parse_targets

MOLS = ["CC(=O)Oc1ccccc1C(=O)O", "c1ccc2ccccc2c1", "CCN(CC)CC", "OCC1OC(O)C(O)C(O)C1O"]


def test_properties_equal_rdkit_directly():
    names = list(PROPERTIES)
    values = compute_properties([*MOLS, "not a molecule", ""], names)
    for i, smi in enumerate(MOLS):
        mol = Chem.MolFromSmiles(smi)
        expected = {
            "qed": QED.qed(mol),
            "logp": Crippen.MolLogP(mol),
            "mw": Descriptors.MolWt(mol),
            "rings": rdMolDescriptors.CalcNumRings(mol),
            "aromatic_rings": rdMolDescriptors.CalcNumAromaticRings(mol),
            "hbd": Lipinski.NumHDonors(mol),
            "hba": Lipinski.NumHAcceptors(mol),
            "tpsa": rdMolDescriptors.CalcTPSA(mol),
            "heavy_atoms": mol.GetNumHeavyAtoms(),
        }
        for name, value in expected.items():
            assert values[i, names.index(name)] == pytest.approx(value)
        sa = values[i, names.index("sa")]
        assert 1.0 <= sa <= 10.0
        lo, hi = PROPERTIES["qed"].low, PROPERTIES["qed"].high
        assert lo <= values[i, names.index("qed")] <= hi
    assert np.isnan(values[-2:]).all(), "invalid and empty SMILES give NaN"


def test_sa_score_orders_simple_below_complex():
    simple, complex_ = compute_properties(["CCO", "CC12CCC3C(CCC4=CC(=O)CCC34C)C1CCC2O"], ["sa"])[:, 0]
    assert simple < complex_


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("qed=0.9", Target("qed", "=", 0.9, 0.05)),
        ("qed=0.8+-0.1", Target("qed", "=", 0.8, 0.1)),
        ("logp = 2 ± 0.3", Target("logp", "=", 2.0, 0.3)),
        ("mw<=300", Target("mw", "<=", 300.0)),
        ("qed>=.85", Target("qed", ">=", 0.85)),
        ("rings=3", Target("rings", "=", 3.0, 0.0)),
    ],
)
def test_target_syntax(text, expected):
    assert parse_target(text) == expected


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("qed=1.5", "impossible target 'qed=1.5': qed lies in [0, 1]"),
        ("rings=-1", "impossible target 'rings=-1'"),
        ("rings=2.5", "whole number"),
        ("qed>=1.2", "impossible"),
        ("sa<=0.5", "impossible"),
        ("potency=3", "unknown property 'potency'; allowed: qed"),
        ("qed", "malformed target"),
        ("qed>0.5", "malformed target"),
        ("qed>=0.5+-0.1", "only goes with '='"),
    ],
)
def test_bad_targets(text, needle):
    with pytest.raises(TargetError) as err:
        parse_target(text)
    assert needle in str(err.value)


def test_duplicate_targets_and_satisfaction():
    with pytest.raises(TargetError, match="more than once"):
        parse_targets(["qed=0.9", "qed>=0.5"])
    values = np.array([0.84, 0.86, 0.95, math.nan])
    assert parse_target("qed=0.9").satisfied(values).tolist() == [False, True, True, False]
    assert parse_target("qed>=0.85").satisfied(values).tolist() == [False, True, True, False]
    assert parse_target("rings=2").satisfied(np.array([2.0, 3.0])).tolist() == [True, False]
