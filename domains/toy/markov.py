"""Labelled first-order Markov chains: exact sampling, exact bigram statistics and the Bayes classifier.

Each class k has an initial distribution pi_k and a transition matrix T_k = (1 - overlap) S_k + overlap B,
with S_k a sparse class-specific matrix and B shared; ``overlap`` controls how hard labels are to tell apart.
"""

from __future__ import annotations

import torch
from torch import Tensor


class MarkovChains:
    """``num_classes`` Markov chains over ``vocab_size`` symbols.

    Args:
        num_classes: K.
        vocab_size: V.
        overlap: weight of the shared transition matrix in [0, 1].
        successors: likely next symbols per state in each class-specific matrix.
        seed: seed of the random chain parameters.
    """

    def __init__(
        self, *, num_classes: int = 2, vocab_size: int = 8, overlap: float = 0.5, successors: int = 2, seed: int = 0
    ) -> None:
        if num_classes < 1 or vocab_size < 2:
            raise ValueError("toy chains need num_classes >= 1 and vocab_size >= 2")
        if not 0.0 <= overlap <= 1.0:
            raise ValueError(f"overlap must lie in [0, 1], got {overlap}")
        self.num_classes, self.vocab_size = num_classes, vocab_size
        gen = torch.Generator().manual_seed(seed)
        self.initial = torch.softmax(torch.randn(num_classes, vocab_size, generator=gen), dim=-1)  # [K, V]
        shared = self._sparse(vocab_size, successors, gen)
        specific = torch.stack([self._sparse(vocab_size, successors, gen) for _ in range(num_classes)])
        self.transition = (1.0 - overlap) * specific + overlap * shared  # [K, V, V]

    @staticmethod
    def _sparse(vocab: int, successors: int, gen: torch.Generator) -> Tensor:
        """Rows with most mass on ``successors`` random next states (plus a little everywhere)."""
        rows = torch.full((vocab, vocab), 0.02)
        for a in range(vocab):
            nxt = torch.randperm(vocab, generator=gen)[:successors]
            rows[a, nxt] += torch.rand(successors, generator=gen) + 0.5
        return rows / rows.sum(-1, keepdim=True)

    def sample(self, labels: Tensor, length: int, *, generator: torch.Generator) -> Tensor:
        """``[N, length]`` sequences, row i drawn from chain ``labels[i]``."""
        n = labels.shape[0]
        out = torch.empty(n, length, dtype=torch.long)
        out[:, 0] = torch.multinomial(self.initial[labels], 1, generator=generator).squeeze(-1)
        for pos in range(1, length):
            probs = self.transition[labels, out[:, pos - 1]]  # [N, V]
            out[:, pos] = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
        return out

    def bigram_distribution(self, length: int, label: int | None = None) -> Tensor:
        """Exact expected frequency ``[V, V]`` of adjacent pairs (a, b), averaged over positions.

        ``label=None`` gives the equal-weight mixture of all classes.
        """
        labels = range(self.num_classes) if label is None else [label]
        total = torch.zeros(self.vocab_size, self.vocab_size, dtype=torch.float64)
        for k in labels:
            marginal = self.initial[k].double()
            trans = self.transition[k].double()
            for _ in range(length - 1):
                total += marginal.unsqueeze(-1) * trans
                marginal = marginal @ trans
        return total / total.sum()

    def log_likelihood(self, tokens: Tensor) -> Tensor:
        """``[N, K]`` log p(x | class k) of each sequence under each chain."""
        log_init = self.initial.log()[:, tokens[:, 0]].T  # [N, K]
        log_trans = self.transition.log()[:, tokens[:, :-1], tokens[:, 1:]]  # [K, N, L-1]
        return log_init + log_trans.sum(-1).T

    def classify(self, tokens: Tensor) -> Tensor:
        """Bayes-optimal label (equal priors) of each sequence, ``[N]``."""
        return self.log_likelihood(tokens).argmax(dim=-1)


def bigram_tv_distance(tokens: Tensor, expected: Tensor) -> float:
    """Total-variation distance between the empirical adjacent-pair frequencies of ``tokens`` [N, L] and
    ``expected`` [V, V]."""
    vocab = expected.shape[0]
    pairs = tokens[:, :-1] * vocab + tokens[:, 1:]
    counts = torch.bincount(pairs.flatten(), minlength=vocab * vocab).double()
    empirical = (counts / counts.sum()).reshape(vocab, vocab)
    return 0.5 * float((empirical - expected).abs().sum())
