"""Bidirectional transformer denoiser with adaLN-Zero conditioning (DiT, Peebles & Xie 2023), as used by
MDLM/UDLM. It knows nothing of noise processes: it maps tokens (+ t, + condition) to logits."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from guided_diffusion.conditioning import Condition
from guided_diffusion.networks.embeddings import ConditionEmbedding, TimeEmbedding
from guided_diffusion.networks.rotary import Rotary

POSITIONS = ("rotary", "learned", "rotary+learned")


@dataclass(frozen=True)
class DenoiserConfig:
    """Architecture of :class:`Denoiser`.

    Attributes:
        num_states: S, input and output vocabulary (mask included for the masked process).
        seq_len: maximum sequence length L.
        dim: model width D (divisible by ``heads``).
        depth: number of transformer blocks.
        heads: attention heads.
        mlp_ratio: hidden width of the MLP as a multiple of D.
        dropout: dropout on attention output and MLP (0 for small data regimes is fine).
        positions: ``rotary`` (relative: rotations of queries and keys), ``learned`` (absolute embeddings added
            to the tokens) or ``rotary+learned`` (both). With rotary positions alone every position of an input
            whose tokens are all equal (the masked prior) gets the same output, so a masked denoiser of padded,
            variable-length data cannot tell the start of a sequence from its end at the first steps.
        time_conditioning: whether the network sees t (MDLM usually does not; UDLM does).
        num_classes: C class labels for CFG (0 = none).
        num_properties: P property values for CFG (0 = none).
        causal: causal attention (for the autoregressive baseline); diffusion uses False.
    """

    num_states: int
    seq_len: int
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    positions: Literal["rotary", "learned", "rotary+learned"] = "rotary"
    time_conditioning: bool = True
    num_classes: int = 0
    num_properties: int = 0
    causal: bool = False

    def __post_init__(self) -> None:
        if self.dim % self.heads:
            raise ValueError(f"network dim ({self.dim}) must be divisible by heads ({self.heads})")
        if self.positions not in POSITIONS:
            raise ValueError(f"network positions must be one of {', '.join(POSITIONS)}, got {self.positions!r}")
        for name in ("num_states", "seq_len", "dim", "depth", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"network {name} must be >= 1, got {getattr(self, name)}")

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def _modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    return torch.addcmul(shift.unsqueeze(1), x, 1.0 + scale.unsqueeze(1))


class Block(nn.Module):
    """Pre-norm transformer block whose norms are modulated by the conditioning vector (adaLN-Zero)."""

    def __init__(self, cfg: DenoiserConfig, rotary: Rotary | None) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.causal = cfg.causal
        self.dropout = cfg.dropout
        self.norm1 = nn.LayerNorm(cfg.dim, elementwise_affine=False)
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim)
        self.norm2 = nn.LayerNorm(cfg.dim, elementwise_affine=False)
        hidden = int(cfg.mlp_ratio * cfg.dim)
        self.mlp = nn.Sequential(nn.Linear(cfg.dim, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, cfg.dim))
        self.ada = nn.Linear(cfg.dim, 6 * cfg.dim)
        nn.init.zeros_(self.ada.weight)
        nn.init.zeros_(self.ada.bias)
        self.rotary = rotary

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        batch, length, dim = x.shape
        shift1, scale1, gate1, shift2, scale2, gate2 = self.ada(F.silu(c)).chunk(6, dim=-1)  # 6 x [B, D]
        h = _modulate(self.norm1(x), shift1, scale1)
        qkv = self.qkv(h).reshape(batch, length, 3, self.heads, dim // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, H, L, Dh]
        if self.rotary is not None:
            q, k = self.rotary(q), self.rotary(k)
        attn = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal, dropout_p=self.dropout if self.training else 0.0
        )
        attn = attn.transpose(1, 2).reshape(batch, length, dim)  # [B, L, D]
        x = x + gate1.unsqueeze(1) * F.dropout(self.proj(attn), self.dropout, self.training)
        h = _modulate(self.norm2(x), shift2, scale2)
        return x + gate2.unsqueeze(1) * F.dropout(self.mlp(h), self.dropout, self.training)


class Denoiser(nn.Module):
    """Transformer denoiser: ``(xt [B, L], t [B], condition) -> logits [B, L, S]``."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.config = cfg
        self.embed = nn.Embedding(cfg.num_states, cfg.dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        rotary = Rotary(cfg.dim // cfg.heads, cfg.seq_len) if "rotary" in cfg.positions else None
        self.pos = nn.Parameter(torch.randn(cfg.seq_len, cfg.dim) * 0.02) if "learned" in cfg.positions else None
        self.time = TimeEmbedding(cfg.dim) if cfg.time_conditioning else None
        self.cond = (
            ConditionEmbedding(cfg.dim, num_classes=cfg.num_classes, num_properties=cfg.num_properties)
            if cfg.num_classes or cfg.num_properties
            else None
        )
        self.blocks = nn.ModuleList(Block(cfg, rotary) for _ in range(cfg.depth))
        self.norm_out = nn.LayerNorm(cfg.dim, elementwise_affine=False)
        self.ada_out = nn.Linear(cfg.dim, 2 * cfg.dim)
        self.out = nn.Linear(cfg.dim, cfg.num_states)
        for layer in (self.ada_out, self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    @property
    def time_conditioned(self) -> bool:
        return self.config.time_conditioning

    def conditioning(self, t: Tensor, cond: Condition | None, batch: int) -> Tensor:
        """The adaLN conditioning vector ``[B, D]`` from t (if seen) and the condition."""
        c = torch.zeros(batch, self.config.dim, device=self.embed.weight.device)
        if self.time is not None:
            c = c + self.time(t.expand(batch) if t.dim() == 0 else t)
        if self.cond is not None:
            c = c + self.cond(cond, batch, c.device)
        return c

    def hidden_states(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> tuple[Tensor, Tensor]:
        """Final hidden states ``[B, L, D]`` (before the output layer) and the conditioning ``[B, D]``."""
        batch, length = xt.shape
        if length > self.config.seq_len:
            raise ValueError(f"sequence length {length} exceeds the denoiser's seq_len {self.config.seq_len}")
        c = self.conditioning(t, cond, batch)
        x = self.embed(xt)
        if self.pos is not None:
            x = x + self.pos[:length]
        for block in self.blocks:
            x = block(x, c)
        return x, c

    def head(self, h: Tensor, c: Tensor) -> Tensor:
        """Output layer: hidden states ``[B, L, D]`` -> float32 logits ``[B, L, S]``."""
        shift, scale = self.ada_out(F.silu(c)).chunk(2, dim=-1)
        return self.out(_modulate(self.norm_out(h), shift, scale)).float()

    def forward(self, xt: Tensor, t: Tensor, cond: Condition | None = None) -> Tensor:
        h, c = self.hidden_states(xt, t, cond)
        return self.head(h, c)


def count_parameters(module: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in module.parameters())


def per_token_parameters(model: Denoiser) -> int:
    """Parameters of the matrix products applied to every token (attention, MLP, output layer); the
    embeddings are lookups and the adaLN layers run once per sequence, so neither counts toward FLOPs."""
    total = model.out.weight.numel()
    for block in model.blocks:
        assert isinstance(block, Block)
        total += block.qkv.weight.numel() + block.proj.weight.numel()
        total += sum(layer.weight.numel() for layer in block.mlp if isinstance(layer, nn.Linear))
    return total
