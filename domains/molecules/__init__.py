"""Molecules: SMILES/SELFIES tokenizers, QM9 and MOSES datasets, RDKit property oracles, metrics and the
``guide-gen molecules`` command."""

from domains.molecules.domain import MoleculeDomain
from domains.molecules.properties import PROPERTIES, Property, compute_properties, get_property
from domains.molecules.tokenizers import MoleculeTokenizer

__all__ = ["PROPERTIES", "MoleculeDomain", "MoleculeTokenizer", "Property", "compute_properties", "get_property"]
