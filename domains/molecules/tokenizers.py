"""Molecule tokenizers: atom-level SMILES and SELFIES (Krenn et al. 2020), with vocabularies built from the
training data. Inputs and outputs are SMILES whatever the representation; ``<pad>`` (id 0) fills
sequences to a fixed length, so when decoding the first ``<pad>`` ends the molecule."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from typing import Any, Literal

import torch
from torch import Tensor

PAD = "<pad>"

# bracket atoms, two-letter organic-subset elements, one-letter atoms (aliphatic and aromatic), bonds,
# branches, ring closures (one digit, or % and two digits), dots and wildcards
SMILES_TOKEN = re.compile(
    r"(\[[^\]]+\]|Br|Cl|B|C|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%\d{2}|\d)"
)

Representation = Literal["smiles", "selfies"]


def split_smiles(smiles: str) -> list[str]:
    """Atom-level SMILES tokens; ``"".join`` of the result is ``smiles``.

    Raises:
        ValueError: if some characters form no SMILES token.
    """
    tokens = SMILES_TOKEN.findall(smiles)
    if "".join(tokens) != smiles:
        rest = SMILES_TOKEN.sub("", smiles)
        raise ValueError(f"SMILES {smiles!r} has characters that form no token: {rest!r}")
    return tokens


def split_selfies(selfies: str) -> list[str]:
    import selfies as sf

    return list(sf.split_selfies(selfies))


class MoleculeTokenizer:
    """Fixed-length token ids for SMILES strings, in SMILES or SELFIES representation.

    Args:
        representation: ``smiles`` (atom-level tokens) or ``selfies``.
        vocabulary: tokens, ``<pad>`` first (see :meth:`fit`).
    """

    def __init__(self, representation: Representation, vocabulary: list[str]) -> None:
        if representation not in ("smiles", "selfies"):
            raise ValueError(f"representation must be 'smiles' or 'selfies', got {representation!r}")
        if not vocabulary or vocabulary[0] != PAD:
            raise ValueError(f"a molecule vocabulary must start with {PAD!r}")
        self.representation: Representation = representation
        self.vocabulary = list(vocabulary)
        self._index = {tok: i for i, tok in enumerate(self.vocabulary)}

    @classmethod
    def fit(cls, representation: Representation, smiles: Iterable[str]) -> MoleculeTokenizer:
        """Build the vocabulary of ``smiles`` (sorted by frequency, then alphabetically)."""
        probe = cls(representation, [PAD])
        return cls.fit_tokens(representation, (probe.tokenize(item) for item in smiles))

    @classmethod
    def fit_tokens(cls, representation: Representation, token_lists: Iterable[list[str]]) -> MoleculeTokenizer:
        """Build the vocabulary from already tokenized molecules."""
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        ordered = sorted(counts, key=lambda tok: (-counts[tok], tok))
        return cls(representation, [PAD, *ordered])

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary)

    def tokenize(self, smiles: str) -> list[str]:
        """Tokens of one SMILES in this tokenizer's representation.

        Raises:
            ValueError: for SMILES that cannot be tokenized (or converted to SELFIES).
        """
        if self.representation == "smiles":
            return split_smiles(smiles)
        import selfies as sf

        try:
            encoded = sf.encoder(smiles)
        except sf.EncoderError as err:
            raise ValueError(f"SMILES {smiles!r} cannot be converted to SELFIES: {err}") from err
        if encoded is None:
            raise ValueError(f"SMILES {smiles!r} cannot be converted to SELFIES")
        return split_selfies(encoded)

    def token_lengths(self, smiles: Iterable[str]) -> list[int]:
        return [len(self.tokenize(s)) for s in smiles]

    def encode(self, items: list[str], length: int) -> Tensor:
        """``[N, length]`` ids, right-padded with ``<pad>``.

        Raises:
            ValueError: naming the first molecule that is too long or holds a token outside the vocabulary.
        """
        return self.encode_tokens(items, [self.tokenize(item) for item in items], length)

    def encode_tokens(self, items: list[str], token_lists: list[list[str]], length: int) -> Tensor:
        """:meth:`encode` for molecules already split into tokens (``items`` only name them in errors)."""
        out = torch.zeros(len(token_lists), length, dtype=torch.long)
        for row, (item, tokens) in enumerate(zip(items, token_lists, strict=True)):
            if len(tokens) > length:
                raise ValueError(f"molecule {item!r} has {len(tokens)} tokens, more than the model's {length}")
            try:
                out[row, : len(tokens)] = torch.tensor([self._index[tok] for tok in tokens], dtype=torch.long)
            except KeyError as err:
                raise ValueError(
                    f"molecule {item!r} holds the token {err.args[0]!r}, which is not in this model's "
                    f"vocabulary ({', '.join(self.vocabulary[1:])})"
                ) from None
        return out

    def decode_tokens(self, tokens: Tensor) -> list[str]:
        """The representation's strings (SMILES or SELFIES) up to the first ``<pad>``.

        Training sequences are padded only at the end, so a ``<pad>`` ends the molecule; tokens a sampler puts
        after one are not part of it (joining them across the gap would splice a molecule the model never
        wrote). Ids outside the vocabulary (a mask) are skipped.
        """
        vocab = self.vocabulary
        out = []
        for row in tokens.tolist():
            end = row.index(0) if 0 in row else len(row)
            out.append("".join(vocab[i] for i in row[:end] if 0 < i < len(vocab)))
        return out

    @staticmethod
    def ends_early(tokens: Tensor) -> Tensor:
        """``[N]`` bool: rows with tokens after their first ``<pad>`` (which decoding leaves out)."""
        padded = tokens == 0  # [N, L]
        after_pad = padded.long().cummax(dim=-1).values.bool()  # from the first pad on
        return (after_pad & ~padded).any(dim=-1)

    def decode(self, tokens: Tensor) -> list[str]:
        """SMILES strings for ``[N, L]`` ids (SELFIES are decoded to SMILES; "" when nothing decodes)."""
        strings = self.decode_tokens(tokens)
        if self.representation == "smiles":
            return strings
        import selfies as sf

        out = []
        for item in strings:
            try:
                out.append(sf.decoder(item) or "")
            except sf.DecoderError:
                out.append("")
        return out

    def to_json(self) -> dict[str, Any]:
        return {"representation": self.representation, "vocabulary": self.vocabulary}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MoleculeTokenizer:
        return cls(data["representation"], list(data["vocabulary"]))
