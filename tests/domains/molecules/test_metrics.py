"""Molecule metrics on hand-made lists with known answers."""

from __future__ import annotations

import pytest

from domains.molecules.metrics import NoveltyReference, canonicalize, evaluate, internal_diversity
from domains.molecules.targets import parse_target


def test_validity_uniqueness_novelty_on_a_known_list():
    # 6 samples: 5 valid; "OCC" and "CCO" are the same molecule; "c1ccccc1" is in the training set
    samples = ["CCO", "OCC", "c1ccccc1", "CCN", "C1CC", "CC(=O)O"]
    train = NoveltyReference.from_smiles([c for c in canonicalize(["c1ccccc1", "CCCC"]) if c])
    report, canonical, _ = evaluate(samples, novelty=train, properties=("qed",))
    assert report.n == 6 and report.valid == 5 and report.unique == 4
    assert report.novel == 3  # CCO, CCN, CC(=O)O
    assert report.validity == pytest.approx(5 / 6)
    assert report.uniqueness == pytest.approx(4 / 5)
    assert report.novelty == pytest.approx(3 / 4)
    assert canonical[0] == canonical[1] == "CCO" and canonical[4] is None


def test_novelty_uses_canonical_forms():
    ref = NoveltyReference.from_smiles([c for c in canonicalize(["OCC"]) if c])
    assert ref.contains(canonicalize(["C(O)C"])).tolist() == [True]  # type: ignore[arg-type]


def test_diversity_known_values():
    assert internal_diversity(["CCO"]) == 0.0
    assert internal_diversity(["CCO", "CCO"]) == pytest.approx(0.0)
    assert internal_diversity(["CCO", "c1ccc2ccccc2c1"]) == pytest.approx(1.0)  # no shared bits


def test_target_hit_rates_and_joint_share():
    samples = ["CCO", "CCCCCCCCCCCCCCCC", "c1ccccc1O", "invalid"]
    targets = [parse_target("mw<=100"), parse_target("rings=1")]
    report, _, values = evaluate(samples, targets=targets, properties=("mw", "rings"))
    mw, rings = report.targets
    assert (mw.hits, mw.valid) == (2, 3)  # ethanol 46, phenol 94
    assert (rings.hits, rings.valid) == (1, 3)
    assert report.all_targets_hits == 1  # phenol
    assert mw.mean == pytest.approx(values[:3, 0].mean())


@pytest.mark.parametrize(
    ("smiles", "reason"),
    [
        ("CCO", None),
        ("C%10CC%10", None),
        ("", "empty"),
        ("CC1CC", "unclosed ring bond"),
        ("C%12CC", "unclosed ring bond"),
        ("[NH3+]1CC", "unclosed ring bond"),
        ("CC(C", "unbalanced parentheses"),
        ("CC)C", "unbalanced parentheses"),
        ("C1C1", "other syntax"),  # a ring bond doubling a chain bond
        ("c1cccc1", "aromaticity"),
        ("C(C)(C)(C)(C)C", "valence"),
    ],
)
def test_invalid_reasons_on_hand_made_smiles(smiles, reason):
    from domains.molecules.properties import invalid_reason

    assert invalid_reason(smiles) == reason


def test_the_report_counts_why_samples_are_invalid():
    from domains.molecules.report import format_report

    report, _, _ = evaluate(["CCO", "CC1CC", "C1CCC", "c1cccc1"], properties=("qed",))
    assert report.invalid_reasons == {"unclosed ring bond": 2, "aromaticity": 1}
    assert "invalid: 3 (unclosed ring bond 2, aromaticity 1)" in format_report(report)
    assert evaluate(["CCO"], properties=("qed",))[0].invalid_reasons == {}
