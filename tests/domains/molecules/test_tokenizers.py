"""Molecule tokenizers: round trips on real data, bracket atoms and %nn rings, unknown tokens, lengths."""

from __future__ import annotations

import pandas as pd
import pytest

from domains.molecules.tokenizers import PAD, MoleculeTokenizer, split_smiles


@pytest.mark.parametrize(
    ("smiles", "tokens"),
    [
        ("CCO", ["C", "C", "O"]),
        ("c1ccccc1Cl", ["c", "1", "c", "c", "c", "c", "c", "1", "Cl"]),
        ("[NH3+]CC(=O)[O-]", ["[NH3+]", "C", "C", "(", "=", "O", ")", "[O-]"]),
        ("C%12CC%12Br", ["C", "%12", "C", "C", "%12", "Br"]),
        ("F/C=C/F", ["F", "/", "C", "=", "C", "/", "F"]),
        ("C#N", ["C", "#", "N"]),
        ("[C@@H](N)(O)S", ["[C@@H]", "(", "N", ")", "(", "O", ")", "S"]),
    ],
)
def test_atom_level_smiles_tokens(smiles, tokens):
    assert split_smiles(smiles) == tokens


def test_untokenizable_smiles_is_an_error():
    with pytest.raises(ValueError, match="form no token"):
        split_smiles("C&C")


def test_round_trip_on_all_of_qm9(data_dir):
    smiles = pd.read_csv(data_dir / "molecules" / "qm9.csv.gz", usecols=["smiles"]).smiles.tolist()
    assert len(smiles) == 130_831
    tok = MoleculeTokenizer.fit("smiles", smiles)
    ids = tok.encode(smiles, 32)
    assert tok.decode(ids) == smiles


@pytest.mark.parametrize("representation", ["smiles", "selfies"])
def test_round_trip_on_a_moses_sample(data_dir, representation):
    from rdkit import Chem

    smiles = pd.read_csv(data_dir / "molecules" / "moses_test.csv.gz", nrows=3000).SMILES.tolist()
    tok = MoleculeTokenizer.fit(representation, smiles)
    decoded = tok.decode(tok.encode(smiles, 64))
    if representation == "smiles":
        assert decoded == smiles
    else:  # SELFIES decode to an equivalent molecule, written differently
        canon = [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in smiles]
        assert [Chem.MolToSmiles(Chem.MolFromSmiles(s)) for s in decoded] == canon


def test_vocabulary_pad_first_unknown_token_and_length_errors():
    tok = MoleculeTokenizer.fit("smiles", ["CCO", "CCN"])
    assert tok.vocabulary[0] == PAD and set(tok.vocabulary[1:]) == {"C", "O", "N"}
    ids = tok.encode(["CO"], 5)
    assert ids.tolist() == [[tok.vocabulary.index("C"), tok.vocabulary.index("O"), 0, 0, 0]]
    with pytest.raises(ValueError, match=r"token 'Cl'.*not in this model's vocabulary"):
        tok.encode(["CCl"], 5)
    with pytest.raises(ValueError, match="more than the model's 2"):
        tok.encode(["CCO"], 2)
    again = MoleculeTokenizer.from_json(tok.to_json())
    assert again.vocabulary == tok.vocabulary


def test_the_first_pad_ends_a_molecule_and_selfies_never_fails():
    import torch

    tok = MoleculeTokenizer.fit("smiles", ["CCO"])
    c, o = tok.vocabulary.index("C"), tok.vocabulary.index("O")
    rows = torch.tensor([[c, o, 0, 0], [c, 0, o, 0], [0, c, c, o], [c, c, c, o]])
    assert tok.decode(rows) == ["CO", "C", "", "CCCO"]
    assert tok.ends_early(rows).tolist() == [False, True, True, False]
    sf = MoleculeTokenizer.fit("selfies", ["CCO", "c1ccccc1"])
    out = sf.decode(torch.randint(0, sf.vocab_size, (50, 12)))
    assert all(isinstance(s, str) for s in out)
