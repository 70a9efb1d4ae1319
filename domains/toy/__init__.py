"""A synthetic domain with known statistics: one Markov chain per class label."""

from domains.toy.domain import ToyDomain
from domains.toy.markov import MarkovChains

__all__ = ["MarkovChains", "ToyDomain"]
