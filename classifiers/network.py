"""Noisy (time-conditioned) classifiers and regressors: a small bidirectional transformer over xt with a
pooled head. They read token ids or one-hot/soft inputs ``[B, L, S]``, so first-order guidance can
differentiate through them (Schiff et al. 2025, Sec. 3.2)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from guided_diffusion.networks.dit import Block, Denoiser, DenoiserConfig
from guided_diffusion.networks.embeddings import TimeEmbedding
from guided_diffusion.networks.rotary import Rotary

Head = Literal["gaussian", "categorical"]


@dataclass(frozen=True)
class ClassifierConfig:
    """Architecture of :class:`NoisyClassifier`.

    Attributes:
        num_states: S, the input states (the denoiser's, mask included for the masked process).
        seq_len: L.
        num_outputs: P regressed properties (gaussian head) or C classes (categorical head).
        head: ``gaussian`` (mean and log-variance per output) or ``categorical`` (class logits).
        dim, depth, heads, mlp_ratio: transformer size.
        time_conditioning: whether the network sees t (recorded; guidance always passes t).
        output_names: names of the outputs (properties or classes).
        reads: ``tokens`` (xt itself) or ``denoised`` (a frozen denoiser's predicted clean-token
            distribution, for NOS and PPLM).
        positions: ``rotary`` or ``rotary+learned`` (learned absolute embeddings added to the inputs too;
            see :class:`guided_diffusion.networks.dit.DenoiserConfig`).
    """

    num_states: int
    seq_len: int
    num_outputs: int
    head: Head = "gaussian"
    dim: int = 128
    depth: int = 2
    heads: int = 4
    mlp_ratio: float = 4.0
    time_conditioning: bool = True
    output_names: tuple[str, ...] = ()
    reads: Literal["tokens", "denoised"] = "tokens"
    positions: Literal["rotary", "rotary+learned"] = "rotary"

    def __post_init__(self) -> None:
        if self.positions not in ("rotary", "rotary+learned"):
            raise ValueError(f"classifier positions must be 'rotary' or 'rotary+learned', got {self.positions!r}")
        if self.reads not in ("tokens", "denoised"):
            raise ValueError(f"classifier reads must be 'tokens' or 'denoised', got {self.reads!r}")
        if self.head not in ("gaussian", "categorical"):
            raise ValueError(f"classifier head must be 'gaussian' or 'categorical', got {self.head!r}")
        if self.num_outputs < 1:
            raise ValueError(f"num_outputs must be >= 1, got {self.num_outputs}")
        if self.head == "categorical" and self.num_outputs < 2:
            raise ValueError("a categorical classifier needs at least 2 classes")
        object.__setattr__(self, "output_names", tuple(self.output_names))

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["output_names"] = list(self.output_names)
        return data


@dataclass(frozen=True)
class ClassifierOutput:
    """Gaussian head: ``mean`` and ``log_var`` ``[B, P]``; categorical head: ``logits`` ``[B, C]``."""

    mean: Tensor | None = None
    log_var: Tensor | None = None
    logits: Tensor | None = None


class NoisyClassifier(nn.Module):
    """``(xt, t) -> ClassifierOutput`` for token ids ``[B, L]`` or one-hot/soft inputs ``[B, L, S]``."""

    def __init__(self, cfg: ClassifierConfig) -> None:
        super().__init__()
        self.config = cfg
        trunk = DenoiserConfig(
            num_states=cfg.num_states,
            seq_len=cfg.seq_len,
            dim=cfg.dim,
            depth=cfg.depth,
            heads=cfg.heads,
            mlp_ratio=cfg.mlp_ratio,
            time_conditioning=cfg.time_conditioning,
        )
        self.embed = nn.Parameter(torch.randn(cfg.num_states, cfg.dim) * 0.02)
        rotary = Rotary(cfg.dim // cfg.heads, cfg.seq_len)
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.dim) * 0.02) if cfg.positions == "rotary+learned" else None
        self.time = TimeEmbedding(cfg.dim) if cfg.time_conditioning else None
        self.blocks = nn.ModuleList(Block(trunk, rotary) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(cfg.dim)
        width = 2 * cfg.num_outputs if cfg.head == "gaussian" else cfg.num_outputs
        self.out = nn.Sequential(nn.Linear(cfg.dim, cfg.dim), nn.SiLU(), nn.Linear(cfg.dim, width))

    def hidden_states(self, x: Tensor, t: Tensor) -> Tensor:
        """The trunk's final hidden states ``[B, L, D]``."""
        # token ids -> embedding rows; one-hot / soft inputs [B, L, S] -> their mixture of rows
        h = F.embedding(x, self.embed) if x.dtype == torch.long else x.to(self.embed.dtype) @ self.embed
        if self.pos is not None:
            h = h + self.pos[: h.shape[1]]
        batch = h.shape[0]
        c = torch.zeros(batch, self.config.dim, device=h.device, dtype=h.dtype)
        if self.time is not None:
            c = c + self.time(t.reshape(-1).expand(batch) if t.numel() == 1 else t)
        for block in self.blocks:
            h = block(h, c)
        return h

    def forward(self, x: Tensor, t: Tensor) -> ClassifierOutput:
        pooled = self.norm(self.hidden_states(x, t)).mean(dim=1)  # [B, D]
        out = self.out(pooled).float()
        if self.config.head == "categorical":
            return ClassifierOutput(logits=out)
        mean, log_var = out.chunk(2, dim=-1)
        return ClassifierOutput(mean=mean, log_var=log_var.clamp(-10.0, 10.0))


def trunk_mismatch(cfg: ClassifierConfig, den: DenoiserConfig) -> str | None:
    """Why a classifier of config ``cfg`` cannot start from a denoiser of config ``den``, or None."""
    mismatches = [
        f"{name} {mine} vs {theirs}"
        for name, mine, theirs in (
            ("states", cfg.num_states, den.num_states),
            ("dim", cfg.dim, den.dim),
            ("heads", cfg.heads, den.heads),
            ("mlp_ratio", cfg.mlp_ratio, den.mlp_ratio),
        )
        if mine != theirs
    ]
    if cfg.depth > den.depth:
        mismatches.append(f"depth {cfg.depth} vs {den.depth} (at most the denoiser's)")
    if den.positions != cfg.positions:
        mismatches.append(f"positions {cfg.positions} vs {den.positions}")
    if not cfg.time_conditioning and (den.time_conditioning or den.num_classes or den.num_properties):
        mismatches.append("the denoiser sees t or a condition, the classifier sees neither")
    if not mismatches:
        return None
    return "cannot start the classifier from the denoiser (classifier vs denoiser): " + ", ".join(mismatches)


def init_from_denoiser(classifier: NoisyClassifier, denoiser: Denoiser) -> None:
    """Start a classifier from a trained denoiser's trunk: token embeddings, time embedding and blocks.

    A classifier shallower than the denoiser takes its first ``depth`` blocks (a smaller checkpoint that
    starts from the denoiser's early features).

    The denoiser's blocks were trained on the conditioning vector ``time(t) + null condition``; the
    classifier's has no condition, so the null condition's embedding is folded into the bias of the time
    embedding's last layer (a denoiser that does not see t gives that constant alone, with the last layer's
    weights zeroed), and the trunk computes the denoiser's unconditional hidden states exactly. The pooled
    head stays freshly initialised.

    Raises:
        ValueError: if the two networks differ in width, heads, states or positions, or the classifier is
            deeper than the denoiser.
    """
    problem = trunk_mismatch(classifier.config, denoiser.config)
    if problem:
        raise ValueError(problem)
    cfg = classifier.config
    device = classifier.embed.device
    with torch.no_grad():
        classifier.embed.copy_(denoiser.embed.weight)
        for mine, theirs in zip(classifier.blocks, denoiser.blocks[: cfg.depth], strict=True):
            mine.load_state_dict(theirs.state_dict())
        if classifier.pos is not None and denoiser.pos is not None:
            classifier.pos.copy_(denoiser.pos)
        null = denoiser.cond(None, 1, device)[0] if denoiser.cond is not None else torch.zeros(cfg.dim, device=device)
        if classifier.time is not None:
            last = classifier.time.mlp[-1]
            assert isinstance(last, nn.Linear)
            if denoiser.time is not None:
                classifier.time.load_state_dict(denoiser.time.state_dict())
            else:
                last.weight.zero_()
                last.bias.zero_()
            last.bias.add_(null)
